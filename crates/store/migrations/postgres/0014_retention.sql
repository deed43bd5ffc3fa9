-- Retention (see `store::retention`): the periodic purges find what is old enough to go through
-- these partial indexes instead of reading the whole table every ten minutes.

-- Sent mails, by when they were sent (unsent ones are never purged).
CREATE INDEX mail_outbox_sent ON mail_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Closed inquiries, by when they were closed.
CREATE INDEX inquiries_closed ON inquiries (closed_at) WHERE status = 'closed';

-- Open eKYC applications never submitted, by their last step (abandoned ones lose their
-- images and face embeddings).
CREATE INDEX ekyc_unsubmitted ON ekyc_applications (updated_at) WHERE open = 1 AND submitted_at IS NULL;
