-- Hearth engine schema v17: the readings and their rollups stored compactly (a year of 10
-- sensors every 10 s took 49 B per reading, 1.5 GB; the goal is at most 24 B).
--
-- - A sensor is a small integer in these tables (`sensor_keys`), not its 15-character id
--   repeated in every row.
-- - A raw value is stored as the shortest exact form (`store/encoding.rs` writes it; the
--   view below reads it): an even integer 2k is k/16 °C (the DS18B20's own step: 2 bytes),
--   an odd integer 2k+1 is k/10000 °C (any value of at most four decimals: 3 bytes), a REAL
--   anything else (8 bytes). NULL is a failed reading.
-- - The rollups' sum, min and max are stored in units of 1/10000 °C: whole numbers for the
--   values above, which SQLite writes as integers in a REAL column (3 bytes, not 8).
--
-- The names every reader uses (`readings`, `readings_minute`, `readings_hour`) become views
-- that give back the sensor's id and the values in °C, so what reads them is unchanged; the
-- writers write the `*_rows` tables.

CREATE TABLE sensor_keys (
    key       INTEGER PRIMARY KEY,
    sensor_id TEXT NOT NULL UNIQUE
);

INSERT INTO sensor_keys (sensor_id)
SELECT id FROM sensors
UNION SELECT sensor_id FROM readings_hour
UNION SELECT sensor_id FROM readings_minute
UNION SELECT DISTINCT sensor_id FROM readings
ORDER BY 1;

CREATE TABLE reading_rows (
    sensor INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    value,
    PRIMARY KEY (sensor, ts)
) WITHOUT ROWID;

INSERT INTO reading_rows (sensor, ts, value)
SELECT k.key, r.ts,
       CASE
         WHEN r.value IS NULL THEN NULL
         WHEN abs(r.value) < 1048576 AND r.value * 16 = round(r.value * 16)
           THEN CAST(r.value * 16 AS INTEGER) * 2
         WHEN abs(r.value) < 1048576 AND round(r.value * 10000) / 10000.0 = r.value
           THEN CAST(round(r.value * 10000) AS INTEGER) * 2 + 1
         ELSE r.value
       END
FROM readings r JOIN sensor_keys k ON k.sensor_id = r.sensor_id
ORDER BY 1, 2;

DROP TABLE readings;

CREATE VIEW readings AS
SELECT k.sensor_id AS sensor_id, r.ts AS ts,
       CASE WHEN typeof(r.value) = 'integer' THEN
              CASE WHEN (r.value & 1) = 0 THEN r.value / 32.0 ELSE (r.value - 1) / 20000.0 END
            ELSE r.value END AS value
FROM reading_rows r JOIN sensor_keys k ON k.key = r.sensor;

CREATE TABLE minute_rows (
    sensor INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    sum    REAL NOT NULL,
    min    REAL,
    max    REAL,
    PRIMARY KEY (sensor, bucket)
) WITHOUT ROWID;

CREATE TABLE hour_rows (
    sensor INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    sum    REAL NOT NULL,
    min    REAL,
    max    REAL,
    PRIMARY KEY (sensor, bucket)
) WITHOUT ROWID;

-- Scaled by 10000 and rounded when that is exact (as `encoding::scaled` does).
INSERT INTO minute_rows (sensor, bucket, n, sum, min, max)
SELECT k.key, m.bucket, m.n,
       CASE WHEN round(m.sum * 10000) / 10000.0 = m.sum THEN round(m.sum * 10000)
            ELSE m.sum * 10000 END,
       CASE WHEN round(m.min * 10000) / 10000.0 = m.min THEN round(m.min * 10000)
            ELSE m.min * 10000 END,
       CASE WHEN round(m.max * 10000) / 10000.0 = m.max THEN round(m.max * 10000)
            ELSE m.max * 10000 END
FROM readings_minute m JOIN sensor_keys k ON k.sensor_id = m.sensor_id
ORDER BY 1, 2;

INSERT INTO hour_rows (sensor, bucket, n, sum, min, max)
SELECT k.key, h.bucket, h.n,
       CASE WHEN round(h.sum * 10000) / 10000.0 = h.sum THEN round(h.sum * 10000)
            ELSE h.sum * 10000 END,
       CASE WHEN round(h.min * 10000) / 10000.0 = h.min THEN round(h.min * 10000)
            ELSE h.min * 10000 END,
       CASE WHEN round(h.max * 10000) / 10000.0 = h.max THEN round(h.max * 10000)
            ELSE h.max * 10000 END
FROM readings_hour h JOIN sensor_keys k ON k.sensor_id = h.sensor_id
ORDER BY 1, 2;

DROP TABLE readings_minute;
DROP TABLE readings_hour;

CREATE VIEW readings_minute AS
SELECT k.sensor_id AS sensor_id, m.bucket AS bucket, m.n AS n, m.sum / 10000.0 AS sum,
       m.min / 10000.0 AS min, m.max / 10000.0 AS max
FROM minute_rows m JOIN sensor_keys k ON k.key = m.sensor;

CREATE VIEW readings_hour AS
SELECT k.sensor_id AS sensor_id, h.bucket AS bucket, h.n AS n, h.sum / 10000.0 AS sum,
       h.min / 10000.0 AS min, h.max / 10000.0 AS max
FROM hour_rows h JOIN sensor_keys k ON k.key = h.sensor;
