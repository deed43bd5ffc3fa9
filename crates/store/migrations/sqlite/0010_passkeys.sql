-- Passkeys (WebAuthn) registered after 健診・医療アクセス認証, the step-up before health data.
-- The credential is sealed by the application (data_enc); credential_id is public (sent by
-- the authenticator with every assertion) and unique.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    data_enc      BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id, created_at);
