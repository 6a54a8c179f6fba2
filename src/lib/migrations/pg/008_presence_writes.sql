-- 008: presence writes at scale: without the wide row's indexes, and in
-- one statement per batch.
--
-- 1. A presence write no longer touches users' indexes. users keeps
-- online_status and last_seen (the truth, read with the rest of the row),
-- but no index of users covers them any more, so changing them is a
-- heap-only (HOT) update: none of users' indexes (four of them trigram
-- GINs, each re-entered on every other update) gets an entry. fillfactor
-- leaves room for the new versions in each page (pages written from now
-- on; the others gain it as old versions are pruned). What presence needs
-- an index for (the online page, decay, ordering by last_seen) reads
-- `presence`, a narrow copy of the two columns kept in step by triggers on
-- users, or, in usersd_set_presence, by the statement itself.
ALTER TABLE users SET (fillfactor = 80);

CREATE TABLE presence (
    user_id       BIGINT PRIMARY KEY,
    online_status SMALLINT NOT NULL,
    last_seen     BIGINT
);
INSERT INTO presence (user_id, online_status, last_seen)
    SELECT id, online_status, last_seen FROM users;
CREATE INDEX presence_by_status ON presence (online_status, last_seen DESC NULLS LAST, user_id);
CREATE INDEX presence_last_seen ON presence (last_seen);
DROP INDEX users_presence;
DROP INDEX users_last_seen;

-- Inserts and deletes: one statement per statement (a bulk load, a seed).
CREATE FUNCTION usersd_presence_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO presence (user_id, online_status, last_seen)
        SELECT n.id, n.online_status, n.last_seen FROM new_rows n;
    RETURN NULL;
END $$;
CREATE TRIGGER users_presence_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION usersd_presence_insert();

CREATE FUNCTION usersd_presence_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM presence p USING old_rows o WHERE p.user_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER users_presence_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION usersd_presence_delete();

-- Updates: per row, and not inside usersd_set_presence (usersd.batch on),
-- which keeps presence and the counters itself, once per statement.
CREATE FUNCTION usersd_presence_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE presence SET online_status = NEW.online_status, last_seen = NEW.last_seen
        WHERE user_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER users_presence_update AFTER UPDATE OF online_status, last_seen ON users
    FOR EACH ROW WHEN ((OLD.online_status IS DISTINCT FROM NEW.online_status
                        OR OLD.last_seen IS DISTINCT FROM NEW.last_seen)
                       AND current_setting('usersd.batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION usersd_presence_update();

DROP TRIGGER users_count_update ON users;
CREATE TRIGGER users_count_update AFTER UPDATE OF is_active, is_staff, online_status ON users
    FOR EACH ROW WHEN ((OLD.is_active IS DISTINCT FROM NEW.is_active
                        OR OLD.is_staff IS DISTINCT FROM NEW.is_staff
                        OR OLD.online_status IS DISTINCT FROM NEW.online_status)
                       AND current_setting('usersd.batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION usersd_count_users();

-- 2. Presence writes in one statement per batch (store_pg.c: set_status
-- and the writer's group commit), keeping presence and the counters
-- itself, once per statement. Job k, at p_now[k], sets user p_ids[k] to
-- p_status[k], last_seen to p_seen[k] (NULL keeps it); p_touch[k]: it is
-- also its caller's own activity: last_seen = p_now[k] where still null or
-- older than p_before[k], and session p_session[k] (when > 0) used at
-- p_now[k] where older. A real change is logged (at p_now[k], in job
-- order) with its history row when p_history, and wakes the listeners at
-- commit. The change log's lock (1970496359, the driver's P_LOCK_LOG) is
-- taken before any row: the order every writer of the log uses. One row
-- per job whose user exists, o_ord its place (from 1); a user asked twice
-- is written twice, in job order. One statement does every job (one
-- executor start, not nine per job), presence and the counters included
-- (the row triggers stand aside while usersd.batch is on).
CREATE FUNCTION usersd_set_presence(p_ids BIGINT[], p_status SMALLINT[], p_seen BIGINT[],
                                    p_touch BOOLEAN[], p_before BIGINT[], p_session BIGINT[],
                                    p_now BIGINT[], p_history BOOLEAN)
RETURNS TABLE (o_ord INT, o_id BIGINT, o_username TEXT, o_email TEXT, o_first_name TEXT,
               o_last_name TEXT, o_is_active BOOLEAN, o_is_staff BOOLEAN,
               o_date_joined BIGINT, o_online_status SMALLINT, o_last_seen BIGINT,
               o_status_text TEXT, o_status_expires BIGINT)
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
    -- round k holds each user's k-th job: one statement cannot change a
    -- row twice
    SELECT max(c) INTO rounds FROM (SELECT count(*) AS c FROM unnest(p_ids) AS i(id)
                                    GROUP BY id) AS per_user;
    FOR r IN 1 .. coalesce(rounds, 0) LOOP
        FOR x IN
            WITH j AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY a.id ORDER BY a.ord) AS k
                                      FROM unnest(p_ids, p_status, p_seen, p_touch, p_before,
                                                  p_session, p_now)
                                           WITH ORDINALITY AS a(id, status, seen, touch, before,
                                                                session, at, ord)) AS b
                       WHERE b.k = r),
                 o AS (SELECT u.id, u.online_status AS was, u.last_seen AS was_seen
                       FROM users u JOIN j ON j.id = u.id),
                 upd AS (UPDATE users u SET online_status = j.status,
                             last_seen = CASE WHEN j.touch AND (coalesce(j.seen, u.last_seen) IS NULL
                                                                OR coalesce(j.seen, u.last_seen) < j.before)
                                              THEN j.at ELSE coalesce(j.seen, u.last_seen) END
                         FROM j JOIN o ON o.id = j.id
                         WHERE u.id = j.id
                         RETURNING j.ord, j.at, o.was, coalesce(j.seen, o.was_seen) AS seen, u.id,
                                   u.username, u.email, u.first_name, u.last_name, u.is_active,
                                   u.is_staff, u.date_joined, u.online_status, u.last_seen,
                                   u.status_text, u.status_expires),
                 m AS (UPDATE presence p SET online_status = upd.online_status,
                                             last_seen = upd.last_seen
                       FROM upd WHERE p.user_id = upd.id),
                 l AS (INSERT INTO presence_changes (user_id, username, online_status, last_seen,
                                                     at, kind)
                       SELECT upd.id, upd.username, upd.online_status, upd.seen, upd.at, 0
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

ANALYZE presence;
