-- 009: manual status and do not disturb (API.md §12; see the SQLite
-- migration of the same number).
-- users keeps the truth (status_manual beside online_status); presence's
-- copy carries it too (manual), so that decay, which finds the users due
-- through presence's index, passes over a manual status without reading
-- users. The partial index holds only the marked rows.
ALTER TABLE users ADD COLUMN status_manual BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE presence ADD COLUMN manual BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX presence_manual ON presence (user_id) WHERE manual;

-- NULL when off, else its end, 9223372036854775807 for none.
ALTER TABLE users ADD COLUMN dnd_until BIGINT;
CREATE INDEX users_dnd ON users (dnd_until) WHERE dnd_until IS NOT NULL;
ALTER TABLE presence_changes ADD COLUMN dnd_until BIGINT;

CREATE OR REPLACE FUNCTION usersd_presence_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO presence (user_id, online_status, last_seen, manual)
        SELECT n.id, n.online_status, n.last_seen, n.status_manual FROM new_rows n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION usersd_presence_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE presence SET online_status = NEW.online_status, last_seen = NEW.last_seen,
                        manual = NEW.status_manual
        WHERE user_id = NEW.id;
    RETURN NULL;
END $$;
DROP TRIGGER users_presence_update ON users;
CREATE TRIGGER users_presence_update AFTER UPDATE OF online_status, last_seen, status_manual
    ON users
    FOR EACH ROW WHEN ((OLD.online_status IS DISTINCT FROM NEW.online_status
                        OR OLD.last_seen IS DISTINCT FROM NEW.last_seen
                        OR OLD.status_manual IS DISTINCT FROM NEW.status_manual)
                       AND current_setting('usersd.batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION usersd_presence_update();

-- usersd_set_presence (008) with how each job sets: p_how[k] 0 sets
-- the status and ends a manual one, 1 sets a manual one, 2 is automatic
-- (a user with a manual status keeps it, and its last_seen; the session's
-- last_used still moves). A manual status's last_seen is not the caller's
-- activity either (p_touch moves only the session), as touch's
-- `NOT status_manual` has it. The row returned gains status_manual and
-- dnd_until; a logged change carries the user's do not disturb.
DROP FUNCTION usersd_set_presence(BIGINT[], SMALLINT[], BIGINT[], BOOLEAN[], BIGINT[], BIGINT[],
                                  BIGINT[], BOOLEAN);
CREATE FUNCTION usersd_set_presence(p_ids BIGINT[], p_status SMALLINT[], p_seen BIGINT[],
                                    p_touch BOOLEAN[], p_before BIGINT[], p_session BIGINT[],
                                    p_now BIGINT[], p_how SMALLINT[], p_history BOOLEAN)
RETURNS TABLE (o_ord INT, o_id BIGINT, o_username TEXT, o_email TEXT, o_first_name TEXT,
               o_last_name TEXT, o_is_active BOOLEAN, o_is_staff BOOLEAN,
               o_date_joined BIGINT, o_online_status SMALLINT, o_last_seen BIGINT,
               o_status_text TEXT, o_status_expires BIGINT, o_status_manual BOOLEAN,
               o_dnd_until BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    rounds INT;
    changed BOOLEAN := false;
    d_online BIGINT := 0;
    d_away BIGINT := 0;
    x RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(1970496359);
    PERFORM set_config('usersd.batch', 'on', true);
    SELECT max(c) INTO rounds FROM (SELECT count(*) AS c FROM unnest(p_ids) AS i(id)
                                    GROUP BY id) AS per_user;
    FOR r IN 1 .. coalesce(rounds, 0) LOOP
        FOR x IN
            WITH j AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY a.id ORDER BY a.ord) AS k
                                      FROM unnest(p_ids, p_status, p_seen, p_touch, p_before,
                                                  p_session, p_now, p_how)
                                           WITH ORDINALITY AS a(id, status, seen, touch, before,
                                                                session, at, how, ord)) AS b
                       WHERE b.k = r),
                 o AS (SELECT u.id, u.online_status AS was, u.last_seen AS was_seen,
                              (j.how = 2 AND u.status_manual) AS keep
                       FROM users u JOIN j ON j.id = u.id),
                 upd AS (UPDATE users u SET
                             online_status = CASE WHEN o.keep THEN o.was ELSE j.status END,
                             last_seen = CASE WHEN o.keep THEN o.was_seen
                                              WHEN j.touch AND j.how <> 1
                                                   AND (coalesce(j.seen, u.last_seen) IS NULL
                                                                OR coalesce(j.seen, u.last_seen) < j.before)
                                              THEN j.at ELSE coalesce(j.seen, u.last_seen) END,
                             status_manual = o.keep OR j.how = 1
                         FROM j JOIN o ON o.id = j.id
                         WHERE u.id = j.id
                         RETURNING j.ord, j.at, o.was,
                                   CASE WHEN o.keep THEN o.was_seen
                                        ELSE coalesce(j.seen, o.was_seen) END AS seen, u.id,
                                   u.username, u.email, u.first_name, u.last_name, u.is_active,
                                   u.is_staff, u.date_joined, u.online_status, u.last_seen,
                                   u.status_text, u.status_expires, u.status_manual, u.dnd_until),
                 m AS (UPDATE presence p SET online_status = upd.online_status,
                                             last_seen = upd.last_seen,
                                             manual = upd.status_manual
                       FROM upd WHERE p.user_id = upd.id),
                 l AS (INSERT INTO presence_changes (user_id, username, online_status, last_seen,
                                                     at, kind, dnd_until)
                       SELECT upd.id, upd.username, upd.online_status, upd.seen, upd.at, 0,
                              upd.dnd_until
                       FROM upd WHERE upd.was <> upd.online_status ORDER BY upd.ord),
                 h AS (INSERT INTO presence_history (user_id, at, status, prev)
                       SELECT upd.id, upd.at, upd.online_status, upd.was
                       FROM upd WHERE p_history AND upd.was <> upd.online_status
                       ON CONFLICT (user_id, at) DO UPDATE SET status = excluded.status),
                 s AS (UPDATE sessions t SET last_used = j.at FROM j
                       WHERE j.touch AND j.session > 0 AND t.id = j.session
                             AND t.last_used < j.before)
            SELECT * FROM upd
        LOOP
            IF x.was <> x.online_status THEN
                changed := true;
                d_online := d_online + (x.online_status = 2)::int - (x.was = 2)::int;
                d_away := d_away + (x.online_status = 1)::int - (x.was = 1)::int;
            END IF;
            o_ord := x.ord;
            o_id := x.id;
            o_username := x.username;
            o_email := x.email;
            o_first_name := x.first_name;
            o_last_name := x.last_name;
            o_is_active := x.is_active;
            o_is_staff := x.is_staff;
            o_date_joined := x.date_joined;
            o_online_status := x.online_status;
            o_last_seen := x.last_seen;
            o_status_text := x.status_text;
            o_status_expires := x.status_expires;
            o_status_manual := x.status_manual;
            o_dnd_until := x.dnd_until;
            RETURN NEXT;
        END LOOP;
    END LOOP;
    IF d_online <> 0 OR d_away <> 0 THEN
        UPDATE user_counts SET online = online + d_online, away = away + d_away,
                               online_peak = greatest(online_peak, online + d_online)
            WHERE id = 1;
    END IF;
    IF changed THEN
        PERFORM pg_notify('usersd_presence', '');
    END IF;
    PERFORM set_config('usersd.batch', 'off', true);
END $$;
