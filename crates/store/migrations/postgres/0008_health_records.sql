-- F5 お薬履歴 (medication history) and 医療費通知 (medical expense notices) imported from the
-- insurers' CSV files, matched to roster records. One pair of tables for both kinds.
-- Every row (drug, pharmacy, facility, amounts, examinee) is personal health data: sealed by
-- the application (AES-256-GCM, AAD "health_entries" bound to kind, organization, record and
-- date) in data_enc. The columns are only what look-ups and de-duplication need.

CREATE TABLE health_imports (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    -- 'medication' or 'expense'.
    kind        TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    -- Data rows in the file, rows not stored before (the others were stored already).
    row_count   BIGINT NOT NULL DEFAULT 0,
    inserted    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- One row per roster record, kind and content: row_key is a keyed MAC (HMAC-SHA256, 128 bits)
-- of the organization, record and the row's normalized content, so re-importing a file adds
-- nothing. The unique key also serves the member's list (prefix organization, card, record).
CREATE TABLE health_entries (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    card_index  BYTEA NOT NULL,
    record_key  BYTEA NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('medication', 'expense')),
    -- ISO 'YYYY-MM-DD': the dispensing date, or the first day of the notice's month.
    occurred_on TEXT NOT NULL,
    row_key     BYTEA NOT NULL,
    data_enc    BYTEA NOT NULL,
    import_id   TEXT NOT NULL REFERENCES health_imports(id),
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, card_index, record_key, kind, row_key),
    FOREIGN KEY (org_id, card_index, record_key) REFERENCES roster_records (org_id, card_index, record_key)
);
CREATE INDEX health_entries_by_import ON health_entries (import_id);
