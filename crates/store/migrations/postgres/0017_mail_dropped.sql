-- A mail the worker settled without sending: a code mail whose code expired before the relay
-- took it (issue #15, point 4). Like a sent mail it is no longer pending and leaves the outbox
-- after the retention period; unlike one, it never reached the member.
ALTER TABLE mail_outbox ADD COLUMN dropped_at BIGINT;
