-- F4 健診・医療アクセス認証 (eKYC): applications, their images and one-time capture tokens.
-- The application's details (document kind, answers, scores, instruction) are sealed by the
-- application in `data`; the columns are what queues, locks and retention need. Images live in
-- the object store, sealed; this database keeps their ids and hashes only.

CREATE TABLE ekyc_applications (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id       TEXT NOT NULL REFERENCES organizations(id),
    state        TEXT NOT NULL,
    -- 1 while the application is open (not completed, approved or rejected): the partial
    -- unique index below allows one open application per member.
    open         INTEGER NOT NULL,
    data         BLOB NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    submitted_at INTEGER,
    decided_at   INTEGER
);
CREATE UNIQUE INDEX ekyc_one_open_per_user ON ekyc_applications (user_id) WHERE open = 1;
CREATE INDEX ekyc_by_user ON ekyc_applications (user_id, created_at);
CREATE INDEX ekyc_queue ON ekyc_applications (state, submitted_at);

CREATE TABLE ekyc_images (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES ekyc_applications(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    sha256         BLOB NOT NULL,
    size           INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE INDEX ekyc_images_by_application ON ekyc_images (application_id);

-- A capture token is shown with one capture step and accepted once, before it expires.
CREATE TABLE ekyc_capture_tokens (
    token_hash     BLOB PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES ekyc_applications(id) ON DELETE CASCADE,
    purpose        TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
