-- Hearth engine schema: one row the storage probe rewrites. A storage fault ends only when a
-- write to the database commits again (with its fsync); this is the write.
CREATE TABLE storage_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
