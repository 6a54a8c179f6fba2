-- 011: the change log without a cluster-wide lock (docs/internals/presence.md,
-- "Many writers, one log").
--
-- Until now every writer of the log took one advisory lock until its commit,
-- so that seqs committed in the order they were handed out. Now writers run
-- side by side, and a reader reads only up to a horizon below which no seq
-- can still commit:
--
-- 1. A transaction about to insert log rows first takes a shared advisory
--    lock (never waits: nobody takes it exclusively) whose key is the
--    sequence's last value K at that moment; every seq it then takes is > K.
--    The lock is released when the transaction ends, whichever way (a
--    backend that dies ends its transaction too). A statement trigger does
--    it, so no way into the log can forget it.
-- 2. usersd_log_horizon() reads the sequence's last value L, then the
--    smallest key held: H = min(L, K). Every seq <= H is committed or gone
--    for good: one taken after the reader read L is > L; one taken before
--    belongs to a transaction that had its claim K < seq in place before,
--    and if that transaction still runs, H <= K.
-- 3. usersd_changes() reads rows <= H in a statement of its own, so with a
--    snapshot taken after H was known: it sees every row <= H that will
--    ever exist. A reader never passes a seq that commits later, and its
--    cursor never goes back, so no row is seen twice.
--
-- The keys are the two-int4 form (namespace 1970496359, the low 32 bits of
-- K); a reader puts K back together from L (K <= L, and no transaction
-- stays open across four billion seqs).
CREATE FUNCTION usersd_log_last() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
    FROM presence_changes_seq_seq
$$;

CREATE FUNCTION usersd_log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k BIGINT := usersd_log_last() % 4294967296;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1970496359,
        (CASE WHEN k >= 2147483648 THEN k - 4294967296 ELSE k END)::INT);
    RETURN NULL;
END $$;
CREATE TRIGGER presence_changes_claim BEFORE INSERT ON presence_changes
    FOR EACH STATEMENT EXECUTE FUNCTION usersd_log_claim();

-- Two statements, in this order: L, then the claims (step 2).
CREATE FUNCTION usersd_log_horizon() RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    l BIGINT := usersd_log_last();
    k BIGINT;
BEGIN
    SELECT min(l - ((l - objid::BIGINT) % 4294967296 + 4294967296) % 4294967296) INTO k
    FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 1970496359 AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
    RETURN least(l, coalesce(k, l));
END $$;

-- Step 3: the horizon, then the rows in a statement of their own (a
-- volatile function's statements each take a new snapshot).
CREATE FUNCTION usersd_changes(p_after BIGINT, p_limit INT, p_kinds INT)
RETURNS TABLE (seq BIGINT, user_id BIGINT, username TEXT, online_status SMALLINT,
               last_seen BIGINT, at BIGINT, kind SMALLINT, session_id BIGINT, message TEXT,
               message_expires BIGINT, dnd_until BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    h BIGINT := usersd_log_horizon();
BEGIN
    RETURN QUERY
        SELECT c.seq, c.user_id, c.username, c.online_status, c.last_seen, c.at, c.kind,
               coalesce(c.session_id, 0), c.message, c.message_expires, c.dnd_until
        FROM presence_changes c
        WHERE c.seq > p_after AND c.seq <= h AND (p_kinds >> c.kind) & 1 = 1
        ORDER BY c.seq LIMIT p_limit;
END $$;

-- The counters were one row that every change updated, so every writer's
-- commit waited for the one before: now 64 rows that add up (each backend
-- adds its deltas to row 1 + pid % 64); row 1 keeps the online peak, which
-- a change that brings users online raises when the sum passes it, unless
-- another transaction is raising it at that moment (SKIP LOCKED: a writer
-- never waits for the peak; the one raising it is as high, give or take
-- the changes of that instant).
ALTER TABLE user_counts DROP CONSTRAINT user_counts_id_check;
ALTER TABLE user_counts ADD CONSTRAINT user_counts_slot CHECK (id BETWEEN 1 AND 64);
INSERT INTO user_counts (id, total, active, staff, online, away, sessions, online_peak)
    SELECT g, 0, 0, 0, 0, 0, 0, 0 FROM generate_series(2, 64) AS g;

CREATE FUNCTION usersd_count_slot() RETURNS INT LANGUAGE sql STABLE AS $$
    SELECT 1 + pg_backend_pid() % 64
$$;

CREATE FUNCTION usersd_raise_peak() RETURNS void LANGUAGE sql AS $$
    WITH t AS (SELECT sum(online) AS online FROM user_counts),
         r AS (SELECT c.id FROM user_counts c, t WHERE c.id = 1 AND c.online_peak < t.online
               FOR UPDATE OF c SKIP LOCKED)
    UPDATE user_counts SET online_peak = t.online FROM t, r WHERE user_counts.id = r.id
$$;

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
            online = online + dn, away = away + dw WHERE id = usersd_count_slot();
    END IF;
    RETURN NULL;
END $$;

-- The peak once per statement, not per row: a sum of the 64 rows per row
-- brought online made one statement over 200,000 users never end (each
-- sum read the versions the statement's own updates had left).
CREATE FUNCTION usersd_peak_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM usersd_raise_peak();
    RETURN NULL;
END $$;
CREATE TRIGGER users_peak AFTER INSERT OR UPDATE OF online_status ON users
    FOR EACH STATEMENT WHEN (current_setting('usersd.batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION usersd_peak_after();

CREATE OR REPLACE FUNCTION usersd_count_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_counts SET sessions = sessions + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END
        WHERE id = usersd_count_slot();
    RETURN NULL;
END $$;

-- usersd_set_presence (009) without the log's lock. Each job's row is
-- locked, in id order, before its status is read (o): a concurrent change
-- of the same user waits for this one to commit and then reads what it
-- wrote, so a change is logged once, from the status it really left. The
-- counters go to this backend's row. The listeners are woken by the
-- caller after the commit (a NOTIFY inside the transaction would take
-- PostgreSQL's one lock that serializes notifying commits); o_changed
-- says whether this job changed the status.
DROP FUNCTION usersd_set_presence(BIGINT[], SMALLINT[], BIGINT[], BOOLEAN[], BIGINT[], BIGINT[],
                                  BIGINT[], SMALLINT[], BOOLEAN);
CREATE FUNCTION usersd_set_presence(p_ids BIGINT[], p_status SMALLINT[], p_seen BIGINT[],
                                    p_touch BOOLEAN[], p_before BIGINT[], p_session BIGINT[],
                                    p_now BIGINT[], p_how SMALLINT[], p_history BOOLEAN)
RETURNS TABLE (o_ord INT, o_id BIGINT, o_username TEXT, o_email TEXT, o_first_name TEXT,
               o_last_name TEXT, o_is_active BOOLEAN, o_is_staff BOOLEAN,
               o_date_joined BIGINT, o_online_status SMALLINT, o_last_seen BIGINT,
               o_status_text TEXT, o_status_expires BIGINT, o_status_manual BOOLEAN,
               o_dnd_until BIGINT, o_changed BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    rounds INT;
    d_online BIGINT := 0;
    d_away BIGINT := 0;
    x RECORD;
BEGIN
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
                       FROM users u JOIN j ON j.id = u.id
                       ORDER BY u.id FOR UPDATE OF u),
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
            o_changed := x.was <> x.online_status;
            IF o_changed THEN
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
        UPDATE user_counts SET online = online + d_online, away = away + d_away
            WHERE id = usersd_count_slot();
    END IF;
    IF d_online > 0 THEN
        PERFORM usersd_raise_peak();
    END IF;
    PERFORM set_config('usersd.batch', 'off', true);
END $$;
