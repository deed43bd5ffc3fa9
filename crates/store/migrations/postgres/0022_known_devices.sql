-- Account settings (#16 point 5): the browsers a member has logged in from, each remembered by
-- the MAC of a long-lived random device cookie (never the cookie itself), so that a login from
-- a new one can be told to the member by mail.
CREATE TABLE known_devices (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_mac    BYTEA NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_mac)
);
