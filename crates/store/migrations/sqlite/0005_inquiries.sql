-- F6 customer center: inquiries from members and visitors, and operators' replies. The contact
-- email, the message and every reply are sealed by the application (AES-256-GCM); the columns
-- are what the operators' inbox needs. The confirmation and reply mails go through the outbox
-- in the same transaction as the row they belong to.

CREATE TABLE inquiries (
    id          TEXT PRIMARY KEY,
    -- The signed-in member who chose to attach their account; NULL for a visitor.
    user_id     TEXT REFERENCES users(id) ON DELETE SET NULL,
    category    TEXT NOT NULL,
    email_enc   BLOB NOT NULL,
    message_enc BLOB NOT NULL,
    -- The language of the mails to the sender.
    locale      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX inquiries_inbox ON inquiries (status, created_at);
CREATE INDEX inquiries_by_user ON inquiries (user_id);

CREATE TABLE inquiry_replies (
    id          TEXT PRIMARY KEY,
    inquiry_id  TEXT NOT NULL REFERENCES inquiries(id) ON DELETE CASCADE,
    operator_id TEXT NOT NULL REFERENCES operators(id),
    -- The operator's reply text, sealed.
    body_enc    BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX inquiry_replies_by_inquiry ON inquiry_replies (inquiry_id, created_at);
