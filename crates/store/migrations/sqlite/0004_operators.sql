-- Operator console: operator accounts (password + TOTP), their sessions, eKYC review decisions
-- and the append-only audit log. Operators' email and name are sealed by the application like
-- members' data; the email is found through its keyed blind index.

CREATE TABLE operators (
    id              TEXT PRIMARY KEY,
    email_index     BLOB NOT NULL UNIQUE,
    email_enc       BLOB NOT NULL,
    name_enc        BLOB NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('reviewer', 'admin')),
    password_hash   TEXT NOT NULL,
    -- The TOTP secret, sealed (AES-256-GCM).
    totp_secret_enc BLOB NOT NULL,
    -- The newest TOTP time step accepted: a code of this or an earlier step is a replay.
    totp_last_step  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

-- Separate from members' sessions: another table, another cookie, another MAC purpose.
CREATE TABLE operator_sessions (
    id_hash      BLOB PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
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
    note_enc       BLOB,
    decided_at     INTEGER NOT NULL
);

-- Who did what, to which record, when and from where. Never personal data: ids, action names
-- and the client address only. Append-only: rows cannot be changed or removed.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    operator_id TEXT REFERENCES operators(id),
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    client_ip   TEXT NOT NULL
);
CREATE INDEX audit_log_by_operator ON audit_log (operator_id, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
