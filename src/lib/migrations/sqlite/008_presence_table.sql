-- 008: presence in a narrow table of its own. A status change rewrote a
-- page of the wide users row (names, emails, the password hash: ~470 bytes
-- a user, 460 MB at a million) and moved entries in two indexes; at a
-- million users every change dirtied random pages of all three, read from
-- the OS and written to the log and again at checkpoint. Here a user's
-- presence is a row of about 20 bytes (a million fit in 20 MB, so they stay
-- in the page cache) with one index, (online_status, last_seen DESC, id),
-- which serves the online list, the status filters, decay and the counts.
CREATE TABLE presence (
    user_id       INTEGER PRIMARY KEY,
    online_status INTEGER NOT NULL DEFAULT 0 CHECK (online_status IN (0, 1, 2)),
    last_seen     INTEGER,
    history_head  INTEGER
);
INSERT INTO presence (user_id, online_status, last_seen, history_head)
SELECT id, online_status, last_seen, history_head FROM users;
CREATE INDEX presence_by_status ON presence (online_status, last_seen DESC, user_id);

-- The counters: total, active and staff follow users; online, away and the
-- online peak follow presence.
DROP TRIGGER users_count_insert;
DROP TRIGGER users_count_delete;
DROP TRIGGER users_count_update;
DROP INDEX users_presence;
DROP INDEX users_last_seen;
ALTER TABLE users DROP COLUMN online_status;
ALTER TABLE users DROP COLUMN last_seen;
ALTER TABLE users DROP COLUMN history_head;

CREATE TRIGGER users_count_insert AFTER INSERT ON users
BEGIN
    UPDATE user_counts SET total = total + 1, active = active + (NEW.is_active <> 0),
        staff = staff + (NEW.is_staff <> 0)
    WHERE id = 1;
END;

CREATE TRIGGER users_count_delete AFTER DELETE ON users
BEGIN
    UPDATE user_counts SET total = total - 1, active = active - (OLD.is_active <> 0),
        staff = staff - (OLD.is_staff <> 0)
    WHERE id = 1;
END;

CREATE TRIGGER users_count_update AFTER UPDATE OF is_active, is_staff ON users
WHEN OLD.is_active IS NOT NEW.is_active OR OLD.is_staff IS NOT NEW.is_staff
BEGIN
    UPDATE user_counts SET
        active = active + (NEW.is_active <> 0) - (OLD.is_active <> 0),
        staff = staff + (NEW.is_staff <> 0) - (OLD.is_staff <> 0)
    WHERE id = 1;
END;

CREATE TRIGGER presence_count_insert AFTER INSERT ON presence
WHEN NEW.online_status <> 0
BEGIN
    UPDATE user_counts SET online = online + (NEW.online_status = 2),
        away = away + (NEW.online_status = 1),
        online_peak = max(online_peak, online + (NEW.online_status = 2))
    WHERE id = 1;
END;

CREATE TRIGGER presence_count_delete AFTER DELETE ON presence
WHEN OLD.online_status <> 0
BEGIN
    UPDATE user_counts SET online = online - (OLD.online_status = 2),
        away = away - (OLD.online_status = 1)
    WHERE id = 1;
END;

CREATE TRIGGER presence_count_update AFTER UPDATE OF online_status ON presence
WHEN OLD.online_status IS NOT NEW.online_status
BEGIN
    UPDATE user_counts SET
        online = online + (NEW.online_status = 2) - (OLD.online_status = 2),
        away = away + (NEW.online_status = 1) - (OLD.online_status = 1),
        online_peak = max(online_peak,
                          online + (NEW.online_status = 2) - (OLD.online_status = 2))
    WHERE id = 1;
END;
