-- MAC keys have ids (`MIMOTO_SECRET_KEY=m0:…,m1:…`; a key given bare is `m0`), so the MAC key
-- can be rotated. Two kinds of stored MACs name the key they were made under; NULL is `m0`,
-- the only key there was before this migration.

-- The MAC key of an organization's roster family: the blind indexes and record keys of its
-- roster records and links, and the record keys and de-duplication keys of its checkup
-- results and health entries. `mimoto keys rotate` re-keys one organization at a time, in one
-- transaction, and then names the new key here.
ALTER TABLE organizations ADD COLUMN roster_mac_key TEXT;

-- The MAC key an audit row's chain hash was made under: the chain is never rewritten, so a
-- row keeps the key it was linked with and `mimoto audit verify` checks each row under it.
ALTER TABLE audit_log ADD COLUMN chain_key TEXT;
