-- A mail the relay refused for good (an SMTP 5xx: no such mailbox, an address it cannot take):
-- retrying would never deliver it (issue #15, point 4). It is settled like a dropped mail
-- (`dropped_at` is set too, so it is no longer pending and leaves with the retention period)
-- and listed for operators; the member is told on the code screen.
ALTER TABLE mail_outbox ADD COLUMN refused_at BIGINT;
CREATE INDEX mail_outbox_refused ON mail_outbox (refused_at) WHERE refused_at IS NOT NULL;
-- The mail that carried each one-time code: the code screen says when it was refused or
-- dropped (its code expired before the relay took it).
ALTER TABLE one_time_codes ADD COLUMN mail_id TEXT;
