-- Hearth engine schema v4: readings rollups for charts, and heating/cooling runs.

-- Per-minute and per-hour aggregates of `readings`, maintained on ingest in the same
-- transaction (only rows actually inserted count, so replays add nothing). `bucket` is the
-- bucket's start (Unix ms, floored to the minute/hour); `n` counts readings with a value, `sum`
-- their sum (0 when none), `min`/`max` are NULL when every reading in the bucket failed. A
-- year's chart reads 8,760 hour rows per sensor instead of 525,600 raw ones.
CREATE TABLE readings_minute (
    sensor_id TEXT NOT NULL,
    bucket    INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL,
    max       REAL,
    PRIMARY KEY (sensor_id, bucket)
) WITHOUT ROWID;

CREATE TABLE readings_hour (
    sensor_id TEXT NOT NULL,
    bucket    INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL,
    max       REAL,
    PRIMARY KEY (sensor_id, bucket)
) WITHOUT ROWID;

-- Floor division (readings before 1970 would round the wrong way with `/`).
INSERT INTO readings_minute (sensor_id, bucket, n, sum, min, max)
SELECT sensor_id, ts - ((ts % 60000) + 60000) % 60000 AS b,
       COUNT(value), COALESCE(SUM(value), 0), MIN(value), MAX(value)
FROM readings
GROUP BY sensor_id, b;

INSERT INTO readings_hour (sensor_id, bucket, n, sum, min, max)
SELECT sensor_id, bucket - ((bucket % 3600000) + 3600000) % 3600000 AS b,
       SUM(n), SUM(sum), MIN(min), MAX(max)
FROM readings_minute
GROUP BY sensor_id, b;

-- Periods during which heating or cooling ran, recorded by the control loop. "end" is NULL
-- while the run goes on; temperatures are the effective temperature then, if known.
CREATE TABLE runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    system     TEXT NOT NULL CHECK (system IN ('heat', 'cool')),
    start      INTEGER NOT NULL,
    "end"      INTEGER,
    start_temp REAL,
    end_temp   REAL
);
CREATE INDEX runs_start ON runs (start);
-- At most one open run per system: starting one that is already open is a no-op.
CREATE UNIQUE INDEX runs_one_open ON runs (system) WHERE "end" IS NULL;
