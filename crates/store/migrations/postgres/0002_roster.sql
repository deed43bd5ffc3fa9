-- Insurer rosters (名簿) and the links between roster records and accounts (本人確認).
-- Personal data (card symbol/number, names, birth date) is sealed in data_enc by the
-- application; matching uses keyed blind indexes (HMAC of normalized values) only.
-- Eligibility dates are ISO 'YYYY-MM-DD' text, so they compare correctly as strings.

CREATE TABLE roster_records (
    id             TEXT PRIMARY KEY,
    -- No foreign key: organizations are never deleted, and a per-row FK check dominates bulk
    -- imports (millions of rows). The import checks the organization exists first.
    org_id         TEXT NOT NULL,
    record_key     BYTEA NOT NULL,
    card_index     BYTEA NOT NULL,
    branch_index   BYTEA,
    person_index   BYTEA NOT NULL,
    data_enc       BYTEA NOT NULL,
    eligible_from  TEXT NOT NULL,
    eligible_until TEXT,
    import_id      TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);
-- The blind indexes are keyed per organization, so they are unique across organizations.
CREATE UNIQUE INDEX roster_records_key ON roster_records (record_key);
CREATE INDEX roster_records_card ON roster_records (card_index);
CREATE INDEX roster_records_org ON roster_records (org_id);

-- One account per roster record and one roster record per account: the primary key and the
-- unique constraint decide races between accounts.
CREATE TABLE roster_links (
    record_id TEXT PRIMARY KEY REFERENCES roster_records(id),
    user_id   TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    linked_at BIGINT NOT NULL
);

CREATE TABLE roster_imports (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    row_count   BIGINT NOT NULL,
    ended       BIGINT NOT NULL,
    finished_at BIGINT NOT NULL
);
