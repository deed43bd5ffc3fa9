-- Member-side audit rows (who: a member instead of an operator) and the audit log's hash chain
-- (see store::audit_chain): each row carries the hash of the row before it and its own, an
-- HMAC under a key the database never sees. Rows from before this migration stay unchained.
ALTER TABLE audit_log ADD COLUMN member_id TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_log ADD COLUMN hash BYTEA;
CREATE INDEX audit_log_by_member ON audit_log (member_id, seq);

-- One row, written first by every append (a row lock until commit): appends happen one at a
-- time, each after the last.
CREATE TABLE audit_chain_lock (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    appended BIGINT NOT NULL
);
INSERT INTO audit_chain_lock (id, appended) VALUES (1, 0);
