-- Schedule rules and overrides. Bodies are the JSON the client sent (proto NewRule /
-- NewOverride); the columns beside them are what queries select on.
CREATE TABLE rules (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    body    TEXT NOT NULL,
    created INTEGER NOT NULL -- ms since the epoch
);

-- An override holds from start_ms to end_ms (NULL: until deleted). Its body's `start` is the
-- resolved start; `end_ms` is moved earlier when the schedule is resumed.
CREATE TABLE overrides (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    body     TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms   INTEGER,
    created  INTEGER NOT NULL
);
CREATE INDEX overrides_end ON overrides (end_ms);

-- The default target lives in `settings` under the key 'schedule_default'.
