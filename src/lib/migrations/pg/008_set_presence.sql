-- Presence writes in one statement per batch (store_pg.c: set_status and
-- the writer's group commit). Job k, at p_now[k], sets user p_ids[k] to
-- p_status[k], last_seen to p_seen[k] (NULL keeps it); p_touch[k]: it is
-- also its caller's own activity: last_seen = p_now[k] where still null or
-- older than p_before[k], and session p_session[k] (when > 0) used at
-- p_now[k] where older. A real change is logged (at p_now[k], in job order) with its
-- history row
-- when p_history, and wakes the listeners at commit. The change log's lock
-- (1970496359, the driver's P_LOCK_LOG) is taken before any row: the order
-- every writer of the log uses. One row per job whose user exists, o_ord
-- its place (from 1); a user asked twice is written twice, in job order.
-- One statement does every job (one executor start, not nine per job).
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
    x RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(1970496359);
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
            changed := changed OR x.was <> x.online_status;
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
    IF changed THEN
        PERFORM pg_notify('usersd_presence', '');
    END IF;
END $$;
