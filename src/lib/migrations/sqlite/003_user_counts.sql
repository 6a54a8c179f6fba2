-- 003: statistics without a scan. One row of counters kept by triggers in
-- the same transaction as every change, so /statistics and the online count
-- read one row at any number of users.
CREATE TABLE user_counts (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    total  INTEGER NOT NULL,
    active INTEGER NOT NULL,
    staff  INTEGER NOT NULL,
    online INTEGER NOT NULL,
    away   INTEGER NOT NULL
);
INSERT INTO user_counts (id, total, active, staff, online, away)
SELECT 1, count(*), coalesce(sum(is_active <> 0), 0), coalesce(sum(is_staff <> 0), 0),
       coalesce(sum(online_status = 2), 0), coalesce(sum(online_status = 1), 0)
FROM users;

CREATE TRIGGER users_count_insert AFTER INSERT ON users
BEGIN
    UPDATE user_counts SET total = total + 1, active = active + (NEW.is_active <> 0),
        staff = staff + (NEW.is_staff <> 0), online = online + (NEW.online_status = 2),
        away = away + (NEW.online_status = 1)
    WHERE id = 1;
END;

CREATE TRIGGER users_count_delete AFTER DELETE ON users
BEGIN
    UPDATE user_counts SET total = total - 1, active = active - (OLD.is_active <> 0),
        staff = staff - (OLD.is_staff <> 0), online = online - (OLD.online_status = 2),
        away = away - (OLD.online_status = 1)
    WHERE id = 1;
END;

CREATE TRIGGER users_count_update AFTER UPDATE OF is_active, is_staff, online_status ON users
WHEN OLD.is_active IS NOT NEW.is_active OR OLD.is_staff IS NOT NEW.is_staff
     OR OLD.online_status IS NOT NEW.online_status
BEGIN
    UPDATE user_counts SET
        active = active + (NEW.is_active <> 0) - (OLD.is_active <> 0),
        staff = staff + (NEW.is_staff <> 0) - (OLD.is_staff <> 0),
        online = online + (NEW.online_status = 2) - (OLD.online_status = 2),
        away = away + (NEW.online_status = 1) - (OLD.online_status = 1)
    WHERE id = 1;
END;
