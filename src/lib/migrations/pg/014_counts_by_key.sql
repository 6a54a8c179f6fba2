-- 014: the 64 counter rows (011) are summed through their key. A table
-- of 64 rows is read whole by a scan of its file, and the file keeps the
-- size its busiest moment gave it: a bulk load (`usersd seed`, `usersd
-- copy`), or a long transaction that kept old row versions, leaves
-- thousands of pages behind (1,102 after seeding 300,000 users), which
-- vacuum frees but does not give back while the live rows sit at the end.
-- Every count then read them all (12 ms a sum under load, against 0.2 ms
-- through the key). usersd's statements say `WHERE id BETWEEN 1 AND 64`
-- too (store_pg.c); the peak's sum runs in status batches.
CREATE OR REPLACE FUNCTION usersd_raise_peak() RETURNS void LANGUAGE sql AS $$
    WITH t AS (SELECT sum(online) AS online FROM user_counts WHERE id BETWEEN 1 AND 64),
         r AS (SELECT c.id FROM user_counts c, t WHERE c.id = 1 AND c.online_peak < t.online
               FOR UPDATE OF c SKIP LOCKED)
    UPDATE user_counts SET online_peak = t.online FROM t, r WHERE user_counts.id = r.id
$$;
