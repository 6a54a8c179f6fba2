-- 005: one index on online_status, not two. users_presence (online_status,
-- last_seen DESC, id) leads with online_status, so it serves every query on
-- online_status alone (filters, counts, decay) as well as the online list.
-- The single-column index was pure write cost: on every status change both
-- moved an entry, and it alone took about half of each UPDATE's time
-- (12.0 µs → 5.2 µs per status UPDATE at 1,000 users, 16 → 7 µs at
-- 1,000,000; bench/NOTES.md).
DROP INDEX IF EXISTS users_online_status;
