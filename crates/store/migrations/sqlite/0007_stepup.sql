-- F5 step-up: the secret question (set in F4) is asked again before health data is shown.
-- A correct answer opens health data for a limited time in that session only;
-- wrong answers count per member (not per session, so a new login does not reset them)
-- and lock the step-up for a while after too many.

ALTER TABLE sessions ADD COLUMN step_up_until INTEGER;

CREATE TABLE step_up_failures (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    -- Wrong answers since the last correct one or the end of the last lock.
    failures     INTEGER NOT NULL,
    -- Set when failures reached the limit; no answer is checked before it.
    locked_until INTEGER,
    updated_at   INTEGER NOT NULL
);
