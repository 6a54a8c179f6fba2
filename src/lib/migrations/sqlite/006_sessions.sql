-- 006: sessions. Every login is a session: its token (stored only as a
-- hash) is its key, and it records where it came from and when it was last
-- used, so people see and revoke their devices and presence can be judged
-- across them (API.md §7). The tokens of earlier versions become sessions
-- last used when they were created.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    hash       BLOB    NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created    INTEGER NOT NULL,
    last_used  INTEGER NOT NULL,
    user_agent TEXT    NOT NULL DEFAULT '',
    client_ip  TEXT    NOT NULL DEFAULT ''
);
INSERT INTO sessions (hash, user_id, created, last_used)
SELECT hash, user_id, created, created FROM tokens ORDER BY created;
DROP TABLE tokens;
-- A user's sessions (list, revoke all, the presence rule) and the expiry
-- sweep's range.
CREATE INDEX sessions_user ON sessions (user_id, last_used);
CREATE INDEX sessions_last_used ON sessions (last_used);

-- How many sessions exist, for the metrics gauge without a scan.
ALTER TABLE user_counts ADD COLUMN sessions INTEGER NOT NULL DEFAULT 0;
UPDATE user_counts SET sessions = (SELECT count(*) FROM sessions) WHERE id = 1;
CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions
BEGIN
    UPDATE user_counts SET sessions = sessions + 1 WHERE id = 1;
END;
CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions
BEGIN
    UPDATE user_counts SET sessions = sessions - 1 WHERE id = 1;
END;

-- The change log carries more than presence changes: the end of a session
-- (session_id, 0 for all of the user's) rides it too, so every process
-- closes the streams of a revoked session at once.
ALTER TABLE presence_changes ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE presence_changes ADD COLUMN session_id INTEGER;
