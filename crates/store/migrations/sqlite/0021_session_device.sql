-- Account settings (#16 point 5): the session list shows each session's device as a coarse
-- label made from the User-Agent at login ("Chrome / Android"); only that label is kept.
ALTER TABLE sessions ADD COLUMN device TEXT;
