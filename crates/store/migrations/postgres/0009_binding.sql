-- #13 Binding health data to the person.
-- 1 while an automatically completed eKYC application waits for a reviewer's look
-- afterwards (a sampled share of automatic completions); 0 otherwise.
ALTER TABLE ekyc_applications ADD COLUMN sampled BIGINT NOT NULL DEFAULT 0;
CREATE INDEX ekyc_sampled ON ekyc_applications (submitted_at) WHERE sampled = 1;

-- An operator withdrew a member's binding: the roster link removed and/or the eKYC
-- authentication revoked. The audit row points here; the reason is a code, the note sealed.
CREATE TABLE binding_withdrawals (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    operator_id TEXT NOT NULL,
    unlinked    BIGINT NOT NULL,
    revoked_application_id TEXT,
    reason      TEXT NOT NULL,
    note_enc    BYTEA,
    at          BIGINT NOT NULL
);
CREATE INDEX binding_withdrawals_user ON binding_withdrawals (user_id, at);
