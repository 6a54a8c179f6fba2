-- 003: statistics without a scan. One row of counters kept by a trigger in
-- the same transaction as every change, so /statistics and the online count
-- read one row at any number of users.
CREATE TABLE user_counts (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    total  BIGINT NOT NULL,
    active BIGINT NOT NULL,
    staff  BIGINT NOT NULL,
    online BIGINT NOT NULL,
    away   BIGINT NOT NULL
);
INSERT INTO user_counts (id, total, active, staff, online, away)
SELECT 1, count(*), count(*) FILTER (WHERE is_active), count(*) FILTER (WHERE is_staff),
       count(*) FILTER (WHERE online_status = 2), count(*) FILTER (WHERE online_status = 1)
FROM users;

CREATE FUNCTION usersd_count_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    dt BIGINT := 0; da BIGINT := 0; ds BIGINT := 0; dn BIGINT := 0; dw BIGINT := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        dt := dt + 1;
        da := da + NEW.is_active::int;
        ds := ds + NEW.is_staff::int;
        dn := dn + (NEW.online_status = 2)::int;
        dw := dw + (NEW.online_status = 1)::int;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        dt := dt - 1;
        da := da - OLD.is_active::int;
        ds := ds - OLD.is_staff::int;
        dn := dn - (OLD.online_status = 2)::int;
        dw := dw - (OLD.online_status = 1)::int;
    END IF;
    IF dt <> 0 OR da <> 0 OR ds <> 0 OR dn <> 0 OR dw <> 0 THEN
        UPDATE user_counts SET total = total + dt, active = active + da, staff = staff + ds,
            online = online + dn, away = away + dw WHERE id = 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_count_insert_delete AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION usersd_count_users();
CREATE TRIGGER users_count_update AFTER UPDATE OF is_active, is_staff, online_status ON users
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active
                       OR OLD.is_staff IS DISTINCT FROM NEW.is_staff
                       OR OLD.online_status IS DISTINCT FROM NEW.online_status)
    EXECUTE FUNCTION usersd_count_users();
