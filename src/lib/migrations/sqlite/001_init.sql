-- 001: users, tokens and the presence change log.
-- Times are integer microseconds since the Unix epoch (UTC).
-- online_status: 0 offline, 1 away, 2 online.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    email         TEXT    NOT NULL DEFAULT '',
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    password      TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    is_staff      INTEGER NOT NULL DEFAULT 0,
    date_joined   INTEGER NOT NULL,
    online_status INTEGER NOT NULL DEFAULT 0 CHECK (online_status IN (0, 1, 2)),
    last_seen     INTEGER
);
CREATE UNIQUE INDEX users_email_uq ON users (lower(email)) WHERE email <> '';
CREATE INDEX users_online_status ON users (online_status);
CREATE INDEX users_last_seen ON users (last_seen);
-- Serves the online list (status = online, newest last_seen first, ties by
-- id) straight from the index, without a sort.
CREATE INDEX users_presence ON users (online_status, last_seen DESC, id);

CREATE TABLE tokens (
    hash    BLOB    PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_user ON tokens (user_id);

-- Every online_status change, written in the same transaction as the change.
CREATE TABLE presence_changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL,
    username      TEXT    NOT NULL,
    online_status INTEGER NOT NULL,
    last_seen     INTEGER,
    at            INTEGER NOT NULL
);
