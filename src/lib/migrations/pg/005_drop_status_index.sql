-- 005: one index on online_status, not two. users_presence (online_status,
-- last_seen DESC NULLS LAST, id) leads with online_status, so it serves every
-- query on online_status alone (filters, counts, decay) as well as the
-- online list; the single-column index was only write cost on every status
-- change (see the SQLite migration of the same number).
DROP INDEX IF EXISTS users_online_status;
