-- F5 特定健診 results imported from the insurers' HL7 CDA files, matched to roster records.
-- The whole document (examinee, items, values) is personal health data: sealed by the
-- application (AES-256-GCM, AAD "checkup_results") in data_enc. The columns are only what
-- look-ups and the one-result-per-examination rule need.

CREATE TABLE checkup_imports (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    file_name   TEXT NOT NULL,
    -- Checkup documents in the file, new results, results that replaced a stored one.
    documents   BIGINT NOT NULL DEFAULT 0,
    inserted    BIGINT NOT NULL DEFAULT 0,
    replaced    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- One result per roster record and examination date: re-importing a file replaces the
-- stored result instead of adding a second one. The unique key also serves the member's
-- list (prefix organization, card, record; examination dates in order).
CREATE TABLE checkup_results (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    card_index  BYTEA NOT NULL,
    record_key  BYTEA NOT NULL,
    -- ISO 'YYYY-MM-DD'.
    examined_on TEXT NOT NULL,
    data_enc    BYTEA NOT NULL,
    import_id   TEXT NOT NULL REFERENCES checkup_imports(id),
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, card_index, record_key, examined_on),
    FOREIGN KEY (org_id, card_index, record_key) REFERENCES roster_records (org_id, card_index, record_key)
);
CREATE INDEX checkup_results_by_import ON checkup_results (import_id);
