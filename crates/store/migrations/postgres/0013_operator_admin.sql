-- Operators as a managed population: an admin disables and re-enables them (a disabled
-- operator cannot log in and loses every session), and may scope one to organizations: an
-- operator with scope rows sees only those organizations' cases, imports and roster data.
ALTER TABLE operators ADD COLUMN disabled_at BIGINT;
CREATE TABLE operator_orgs (
    operator_id TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    PRIMARY KEY (operator_id, org_id)
);
