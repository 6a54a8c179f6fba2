-- 013: a session's refresh (last_used, API.md §7) becomes a heap-only
-- update. PostgreSQL 15 can update a row in place on its page (HOT, no new
-- index entries) only when no indexed column changes, and last_used was in
-- two indexes, so every refresh wrote a new row version and three index
-- entries. The listing of one user's sessions needs only user_id (a user
-- has a few; they are sorted after); the expiry sweep now walks the table,
-- at most once a minute at the default time to live (sse.c), which costs
-- less than the index entries of a second's refreshes. The free tenth of
-- each page is where the new versions go.
DROP INDEX sessions_last_used;
DROP INDEX sessions_user;
CREATE INDEX sessions_user ON sessions (user_id);
ALTER TABLE sessions SET (fillfactor = 90);
