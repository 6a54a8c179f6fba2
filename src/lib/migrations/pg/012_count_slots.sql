-- 012: a counter row of its own for every writing backend.
--
-- 011 spread the counters over 64 rows, a backend's row being
-- 1 + pid % 64. Two backends whose pids fall on the same row then wait for
-- each other's commits, batch after batch, for as long as they live: with
-- four usersd processes (a writer, a sweep and request handles each) the
-- odds of such a pair are one in three, and a bench run that drew one
-- spent a fifth of its backends' time waiting on that row.
--
-- Now a backend claims a row the first time it counts: the first of rows
-- 2-64 whose session-level advisory lock (namespace 1970496371) it can
-- take, kept until the backend ends, whichever way; the claim is
-- remembered in the session setting usersd.count_slot. Row 1 is left out:
-- it holds the online peak, which any writer may lock for a moment
-- (usersd_raise_peak), and a backend counting there would wait for it.
-- Two live backends never share a row while there are 63 rows to go
-- round; past that, a row by pid, as before. The function is STABLE to its callers (the same answer for the
-- whole session once claimed), so `WHERE id = usersd_count_slot()` stays
-- an index lookup evaluated once.
--
-- A claim made in a transaction that rolls back keeps its lock but loses
-- the setting; the next call takes the first free row again, most often
-- the same one (a session's advisory locks are its own to take twice).
CREATE OR REPLACE FUNCTION usersd_count_slot() RETURNS INT LANGUAGE plpgsql STABLE AS $$
DECLARE
    s TEXT := current_setting('usersd.count_slot', true);
BEGIN
    IF s IS NOT NULL AND s <> '' THEN
        RETURN s::INT;
    END IF;
    FOR i IN 2..64 LOOP
        IF pg_try_advisory_lock(1970496371, i) THEN
            PERFORM set_config('usersd.count_slot', i::TEXT, false);
            RETURN i;
        END IF;
    END LOOP;
    RETURN 2 + pg_backend_pid() % 63;
END $$;
