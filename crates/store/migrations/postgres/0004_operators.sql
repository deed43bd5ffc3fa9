-- Operator console: operator accounts (password + TOTP), their sessions, eKYC review decisions
-- and the append-only audit log. Operators' email and name are sealed by the application like
-- members' data; the email is found through its keyed blind index.

CREATE TABLE operators (
    id              TEXT PRIMARY KEY,
    email_index     BYTEA NOT NULL UNIQUE,
    email_enc       BYTEA NOT NULL,
    name_enc        BYTEA NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('reviewer', 'admin')),
    password_hash   TEXT NOT NULL,
    -- The TOTP secret, sealed (AES-256-GCM).
    totp_secret_enc BYTEA NOT NULL,
    -- The newest TOTP time step accepted: a code of this or an earlier step is a replay.
    totp_last_step  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);

-- Separate from members' sessions: another table, another cookie, another MAC purpose.
CREATE TABLE operator_sessions (
    id_hash      BYTEA PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);

-- One decision per application (the primary key), written in the same transaction as the
-- application's versioned update, the member's mail and the audit row.
CREATE TABLE ekyc_reviews (
    application_id TEXT PRIMARY KEY REFERENCES ekyc_applications(id) ON DELETE CASCADE,
    operator_id    TEXT NOT NULL REFERENCES operators(id),
    decision       TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reason         TEXT,
    -- The reviewer's free text, sealed.
    note_enc       BYTEA,
    decided_at     BIGINT NOT NULL
);

-- Who did what, to which record, when and from where. Never personal data: ids, action names
-- and the client address only. Append-only: rows cannot be changed or removed.
CREATE TABLE audit_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    operator_id TEXT REFERENCES operators(id),
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    client_ip   TEXT NOT NULL
);
CREATE INDEX audit_log_by_operator ON audit_log (operator_id, seq);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
