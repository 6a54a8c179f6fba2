-- 007: status messages and presence history (API.md §8, §9).
-- A status message lives on the user; status_expires (NULL: no end) is
-- indexed where set, so the sweep that clears ended ones reads only those.
ALTER TABLE users ADD COLUMN status_text TEXT;
ALTER TABLE users ADD COLUMN status_expires INTEGER;
CREATE INDEX users_status_expires ON users (status_expires) WHERE status_expires IS NOT NULL;

-- The log carries message events (kind 1) with the message they set.
ALTER TABLE presence_changes ADD COLUMN message TEXT;
ALTER TABLE presence_changes ADD COLUMN message_expires INTEGER;

-- Every status change, kept for --history-days, written in the same
-- transaction as the change: the new status and the one it replaced (so
-- the status before a user's oldest kept change is known too). Rows are
-- only ever appended (rowid order is time order), so keeping history costs
-- a write to the hot end of one table; a user's history is a chain: each
-- row names the user's previous row (back) and the user names their latest
-- (history_head), so reading it touches only that user's rows, and no
-- index keyed by user takes a random write per change. Pruning deletes from
-- the oldest end.
CREATE TABLE presence_history (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    status  INTEGER NOT NULL,
    prev    INTEGER NOT NULL,
    back    INTEGER
);
ALTER TABLE users ADD COLUMN history_head INTEGER;
-- Since when the history is complete (NULL: not kept). Before it, unknown.
ALTER TABLE presence_meta ADD COLUMN history_since INTEGER;

-- Users by status, once a minute, from the counters: what "how many were
-- online at 9:00 yesterday" reads, never the changes. online_max is the
-- peak within the minute, kept by the counters' triggers in online_peak.
CREATE TABLE presence_minutes (
    minute     INTEGER PRIMARY KEY,
    online     INTEGER NOT NULL,
    away       INTEGER NOT NULL,
    offline    INTEGER NOT NULL,
    online_max INTEGER NOT NULL
);
ALTER TABLE user_counts ADD COLUMN online_peak INTEGER NOT NULL DEFAULT 0;
UPDATE user_counts SET online_peak = online WHERE id = 1;

DROP TRIGGER users_count_insert;
CREATE TRIGGER users_count_insert AFTER INSERT ON users
BEGIN
    UPDATE user_counts SET total = total + 1, active = active + (NEW.is_active <> 0),
        staff = staff + (NEW.is_staff <> 0), online = online + (NEW.online_status = 2),
        away = away + (NEW.online_status = 1),
        online_peak = max(online_peak, online + (NEW.online_status = 2))
    WHERE id = 1;
END;

DROP TRIGGER users_count_update;
CREATE TRIGGER users_count_update AFTER UPDATE OF is_active, is_staff, online_status ON users
WHEN OLD.is_active IS NOT NEW.is_active OR OLD.is_staff IS NOT NEW.is_staff
     OR OLD.online_status IS NOT NEW.online_status
BEGIN
    UPDATE user_counts SET
        active = active + (NEW.is_active <> 0) - (OLD.is_active <> 0),
        staff = staff + (NEW.is_staff <> 0) - (OLD.is_staff <> 0),
        online = online + (NEW.online_status = 2) - (OLD.online_status = 2),
        away = away + (NEW.online_status = 1) - (OLD.online_status = 1),
        online_peak = max(online_peak,
                          online + (NEW.online_status = 2) - (OLD.online_status = 2))
    WHERE id = 1;
END;
