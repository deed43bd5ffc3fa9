-- Why an unsent mail's next_attempt_at is in the future: 0 claimed by a worker (a lease: it is
-- being sent), 1 waiting out its backoff after the relay could not be reached or deferred it
-- (4xx), 2 waiting after a permanent refusal (5xx). When a delivery succeeds after a relay
-- outage, the mails waiting with 1 are made due at once — never the claimed ones, which another
-- worker is sending (issue #15, point 4).
ALTER TABLE mail_outbox ADD COLUMN retry_wait INTEGER NOT NULL DEFAULT 0;
