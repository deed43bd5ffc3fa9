-- Insurer rosters (名簿) and the links between roster records and accounts (本人確認).
-- Personal data (card symbol/number, names, birth date) is sealed in data_enc by the
-- application; matching uses keyed blind indexes (HMAC of normalized values) only.
-- Eligibility dates are ISO 'YYYY-MM-DD' text, so they compare correctly as strings.

-- One B-tree serves everything: the primary key (organization, card, record) keeps each
-- organization's records together, finds a card's records for a verification by prefix, and
-- identifies a record across imports. record_key is a MAC of card, branch and person, so it
-- alone already tells records apart; card_index in front of it is what look-ups use.
CREATE TABLE roster_records (
    -- No foreign key: organizations are never deleted, and a per-row FK check dominates bulk
    -- imports (millions of rows). The import locks the organization's row first.
    org_id         TEXT NOT NULL,
    card_index     BYTEA NOT NULL,
    record_key     BYTEA NOT NULL,
    branch_index   BYTEA,
    person_index   BYTEA NOT NULL,
    -- A MAC of the whole record as imported: an import skips records whose MAC and
    -- eligibility are unchanged, so re-importing a file rewrites only what changed.
    content_mac    BYTEA NOT NULL,
    data_enc       BYTEA NOT NULL,
    eligible_from  TEXT NOT NULL,
    eligible_until TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (org_id, card_index, record_key)
);

-- One account per roster record and one roster record per account: the primary key and the
-- unique constraint decide races between accounts.
CREATE TABLE roster_links (
    org_id     TEXT NOT NULL,
    card_index BYTEA NOT NULL,
    record_key BYTEA NOT NULL,
    user_id    TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    linked_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, card_index, record_key),
    FOREIGN KEY (org_id, card_index, record_key) REFERENCES roster_records (org_id, card_index, record_key)
);

CREATE TABLE roster_imports (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    row_count   BIGINT NOT NULL,
    inserted    BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    ended       BIGINT NOT NULL,
    finished_at BIGINT NOT NULL
);
