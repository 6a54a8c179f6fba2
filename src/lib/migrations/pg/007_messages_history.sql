-- 007: status messages and presence history (see the SQLite migration of
-- the same number).
ALTER TABLE users ADD COLUMN status_text TEXT;
ALTER TABLE users ADD COLUMN status_expires BIGINT;
CREATE INDEX users_status_expires ON users (status_expires) WHERE status_expires IS NOT NULL;

ALTER TABLE presence_changes ADD COLUMN message TEXT;
ALTER TABLE presence_changes ADD COLUMN message_expires BIGINT;

CREATE TABLE presence_history (
    user_id BIGINT   NOT NULL,
    at      BIGINT   NOT NULL,
    status  SMALLINT NOT NULL,
    prev    SMALLINT NOT NULL,
    PRIMARY KEY (user_id, at)
);
CREATE INDEX presence_history_at ON presence_history (at);
ALTER TABLE presence_meta ADD COLUMN history_since BIGINT;

CREATE TABLE presence_minutes (
    minute     BIGINT PRIMARY KEY,
    online     BIGINT NOT NULL,
    away       BIGINT NOT NULL,
    offline    BIGINT NOT NULL,
    online_max BIGINT NOT NULL
);
ALTER TABLE user_counts ADD COLUMN online_peak BIGINT NOT NULL DEFAULT 0;
UPDATE user_counts SET online_peak = online WHERE id = 1;

CREATE OR REPLACE FUNCTION usersd_count_users() RETURNS trigger LANGUAGE plpgsql AS $$
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
            online = online + dn, away = away + dw,
            online_peak = greatest(online_peak, online + dn) WHERE id = 1;
    END IF;
    RETURN NULL;
END $$;
