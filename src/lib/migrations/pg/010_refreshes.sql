-- 010: refreshes in bulk (API.md §7, "Refreshes"). The writer queues the
-- moves of last_seen/last_used that change no status and writes them here,
-- one statement per flush: each user and session once (its latest `at`),
-- in id order (two processes flushing the same users lock them in the same
-- order), where the stored value is older than `at` less the activity
-- interval. presence's copy of last_seen moves in the same statement (the
-- row trigger stands aside while usersd.batch is on). A refresh logs
-- nothing, and its commit does not wait for the disk: API.md lets a crash
-- lose the last second of refreshes, and PostgreSQL's WAL writer flushes
-- an asynchronous commit within three wal_writer_delay (600 ms by default);
-- p_async says so (not inside the writer's batch, whose status changes
-- must be durable before their replies). Returns the users whose last_seen
-- moved.
CREATE FUNCTION usersd_refresh(p_users BIGINT[], p_sessions BIGINT[], p_at BIGINT[],
                               p_interval BIGINT, p_async BOOLEAN) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    IF p_async THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM set_config('usersd.batch', 'on', true);
    WITH j AS (SELECT id, max(at) AS at FROM unnest(p_users, p_at) AS a(id, at)
               GROUP BY id ORDER BY id),
         u AS (UPDATE users SET last_seen = j.at FROM j
               WHERE users.id = j.id AND NOT users.status_manual
                     AND (users.last_seen IS NULL OR users.last_seen < j.at - p_interval)
               RETURNING users.id, users.last_seen),
         p AS (UPDATE presence SET last_seen = u.last_seen FROM u
               WHERE presence.user_id = u.id),
         k AS (SELECT id, max(at) AS at FROM unnest(p_sessions, p_at) AS b(id, at)
               WHERE id > 0 GROUP BY id ORDER BY id),
         s AS (UPDATE sessions SET last_used = k.at FROM k
               WHERE sessions.id = k.id AND sessions.last_used < k.at - p_interval)
    SELECT count(*) INTO n FROM u;
    PERFORM set_config('usersd.batch', 'off', true);
    RETURN n;
END $$;
