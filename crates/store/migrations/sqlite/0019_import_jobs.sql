-- Import jobs started from the console (issue #15, point 5): kept in the database so that every
-- node lists them and a job whose node stopped is marked failed instead of running forever.
-- Nothing personal: the file name, counts, and for a refused file the entries' names or line
-- numbers with the reasons (never the data itself).
CREATE TABLE import_jobs (
    id             TEXT PRIMARY KEY,
    -- What the file holds; roster and export jobs may follow.
    kind           TEXT NOT NULL CHECK (kind IN ('checkups', 'medications', 'expenses', 'roster', 'export')),
    org_id         TEXT NOT NULL REFERENCES organizations(id),
    insurer_number TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    operator_id    TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    -- 'running' until the node writes the outcome; 'failed' when its heartbeat lapsed (the
    -- node stopped: the import's transaction was never committed, nothing was written).
    state          TEXT NOT NULL CHECK (state IN ('running', 'done', 'refused', 'failed')),
    -- Records written so far and in all (updated at most about once a second).
    done           INTEGER NOT NULL DEFAULT 0,
    total          INTEGER NOT NULL DEFAULT 0,
    -- The outcome as JSON (counts and notes, or the refused entries with their reasons).
    result         TEXT,
    -- The node running the job (random per process start), and its last sign of life.
    node           TEXT NOT NULL,
    heartbeat_at   INTEGER NOT NULL,
    finished_at    INTEGER
);
CREATE INDEX import_jobs_by_start ON import_jobs (started_at);
CREATE INDEX import_jobs_running ON import_jobs (heartbeat_at) WHERE state = 'running';
