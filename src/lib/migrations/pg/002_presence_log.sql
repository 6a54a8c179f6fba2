-- 002: the highest pruned sequence (readers from before it must resync) and
-- an index to find old log rows.
CREATE TABLE presence_meta (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);
INSERT INTO presence_meta (id, pruned_through) VALUES (1, 0);
CREATE INDEX presence_changes_at ON presence_changes (at);
