-- Hearth engine schema v17 (as SQLite's 0017): a sensor is a small integer in the readings and
-- rollup tables (`sensor_keys`), and the rollups' sum, min and max are stored in units of
-- 1/10000 °C. A raw value stays a DOUBLE PRECISION here (a row's header dwarfs it). The names
-- every reader uses become views that give back the sensor's id and the values in °C.

CREATE TABLE sensor_keys (
    key       BIGINT PRIMARY KEY,
    sensor_id TEXT NOT NULL UNIQUE
);

INSERT INTO sensor_keys (key, sensor_id)
SELECT row_number() OVER (ORDER BY id), id
FROM (SELECT id FROM sensors
      UNION SELECT sensor_id FROM readings_hour
      UNION SELECT sensor_id FROM readings_minute
      UNION SELECT sensor_id FROM readings) AS ids;

CREATE TABLE reading_rows (
    sensor BIGINT NOT NULL,
    ts     BIGINT NOT NULL,
    value  DOUBLE PRECISION,
    PRIMARY KEY (sensor, ts)
);

INSERT INTO reading_rows (sensor, ts, value)
SELECT k.key, r.ts, r.value
FROM readings r JOIN sensor_keys k ON k.sensor_id = r.sensor_id
ORDER BY 1, 2;

DROP TABLE readings;

CREATE VIEW readings AS
SELECT k.sensor_id AS sensor_id, r.ts AS ts, r.value AS value
FROM reading_rows r JOIN sensor_keys k ON k.key = r.sensor;

CREATE TABLE minute_rows (
    sensor BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    n      BIGINT NOT NULL,
    sum    DOUBLE PRECISION NOT NULL,
    min    DOUBLE PRECISION,
    max    DOUBLE PRECISION,
    PRIMARY KEY (sensor, bucket)
);

CREATE TABLE hour_rows (
    sensor BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    n      BIGINT NOT NULL,
    sum    DOUBLE PRECISION NOT NULL,
    min    DOUBLE PRECISION,
    max    DOUBLE PRECISION,
    PRIMARY KEY (sensor, bucket)
);

INSERT INTO minute_rows (sensor, bucket, n, sum, min, max)
SELECT k.key, m.bucket, m.n,
       CASE WHEN round(m.sum * 10000) / 10000.0 = m.sum THEN round(m.sum * 10000)
            ELSE m.sum * 10000 END,
       CASE WHEN round(m.min * 10000) / 10000.0 = m.min THEN round(m.min * 10000)
            ELSE m.min * 10000 END,
       CASE WHEN round(m.max * 10000) / 10000.0 = m.max THEN round(m.max * 10000)
            ELSE m.max * 10000 END
FROM readings_minute m JOIN sensor_keys k ON k.sensor_id = m.sensor_id;

INSERT INTO hour_rows (sensor, bucket, n, sum, min, max)
SELECT k.key, h.bucket, h.n,
       CASE WHEN round(h.sum * 10000) / 10000.0 = h.sum THEN round(h.sum * 10000)
            ELSE h.sum * 10000 END,
       CASE WHEN round(h.min * 10000) / 10000.0 = h.min THEN round(h.min * 10000)
            ELSE h.min * 10000 END,
       CASE WHEN round(h.max * 10000) / 10000.0 = h.max THEN round(h.max * 10000)
            ELSE h.max * 10000 END
FROM readings_hour h JOIN sensor_keys k ON k.sensor_id = h.sensor_id;

DROP TABLE readings_minute;
DROP TABLE readings_hour;

CREATE VIEW readings_minute AS
SELECT k.sensor_id AS sensor_id, m.bucket AS bucket, m.n AS n,
       m.sum / CAST(10000 AS DOUBLE PRECISION) AS sum,
       m.min / CAST(10000 AS DOUBLE PRECISION) AS min,
       m.max / CAST(10000 AS DOUBLE PRECISION) AS max
FROM minute_rows m JOIN sensor_keys k ON k.key = m.sensor;

CREATE VIEW readings_hour AS
SELECT k.sensor_id AS sensor_id, h.bucket AS bucket, h.n AS n,
       h.sum / CAST(10000 AS DOUBLE PRECISION) AS sum,
       h.min / CAST(10000 AS DOUBLE PRECISION) AS min,
       h.max / CAST(10000 AS DOUBLE PRECISION) AS max
FROM hour_rows h JOIN sensor_keys k ON k.key = h.sensor;
