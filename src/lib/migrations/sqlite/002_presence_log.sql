-- 002: what the presence change log needs to be pruned safely: the highest
-- sequence number ever pruned (a reader asking for changes since an older
-- one has missed some and must resync), and an index to find old rows.
CREATE TABLE presence_meta (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);
INSERT INTO presence_meta (id, pruned_through) VALUES (1, 0);
CREATE INDEX presence_changes_at ON presence_changes (at);
