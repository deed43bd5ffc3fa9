-- Mimoto schema, PostgreSQL. Times are unix seconds (BIGINT). Personal data is sealed by the
-- application (AES-256-GCM) before it reaches this database: *_enc and data columns are opaque.

CREATE TABLE organizations (
    id             TEXT PRIMARY KEY,
    insurer_number TEXT NOT NULL UNIQUE,
    org_type       TEXT NOT NULL,
    name           TEXT NOT NULL,
    point_name     TEXT,
    checkup_linked BOOLEAN NOT NULL,
    card_pattern   INTEGER NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations(id),
    email_index         BYTEA NOT NULL UNIQUE,
    email_enc           BYTEA NOT NULL,
    password_hash       TEXT NOT NULL,
    locale              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE user_consents (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    doc         TEXT NOT NULL,
    version     TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, doc, version)
);

CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    data       BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX flows_expires ON flows (expires_at);

CREATE TABLE one_time_codes (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    code_mac    BYTEA NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT,
    voided_at   BIGINT
);
CREATE INDEX one_time_codes_subject ON one_time_codes (purpose, subject, created_at);

CREATE TABLE sessions (
    id_hash      BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);

CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    payload         BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
