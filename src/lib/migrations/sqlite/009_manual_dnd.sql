-- 009: manual status and do not disturb (API.md §12).
-- A manual status (away, or offline: "invisible") is a mark on the presence
-- row that every automatic write (activity, heartbeats, streams, login,
-- session ends, decay) leaves alone; the partial index holds only the few
-- marked rows, so it costs a presence write nothing and counts them at once.
ALTER TABLE presence ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
CREATE INDEX presence_manual ON presence (user_id) WHERE manual <> 0;

-- Do not disturb lives on the user like the status message: NULL when
-- off, else its end, 9223372036854775807 for none (so the sweep's range
-- `<= now` never meets it). Indexed where set: the sweep and the count
-- read only those.
ALTER TABLE users ADD COLUMN dnd_until INTEGER;
CREATE INDEX users_dnd ON users (dnd_until) WHERE dnd_until IS NOT NULL;

-- The log's DND events (kind 3) carry the new state, its presence events
-- the state at the change (every status object shows it).
ALTER TABLE presence_changes ADD COLUMN dnd_until INTEGER;
