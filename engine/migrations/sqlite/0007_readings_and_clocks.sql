-- Hearth engine schema v7: readings within the range a probe can report, values that stop
-- moving, and agents whose clocks misdate readings.

-- Before the API checked the range (−55..125 °C, `hearth_proto::sensors::MIN_READING_C` /
-- `MAX_READING_C`), impossible values (±1e308, −273.15, −127) were stored as readings: their
-- sums overflowed the rollups (a bucket's mean came back null, "every reading failed"). They
-- were never temperatures: they become what they stand for, failed readings (NULL), and the
-- rollup rows of their buckets are recomputed from the raw rows. Buckets without one are left
-- as they are.
CREATE TEMP TABLE impossible_minutes AS
SELECT DISTINCT sensor_id, ts - ((ts % 60000) + 60000) % 60000 AS bucket
FROM readings
WHERE value < -55 OR value > 125;

UPDATE readings SET value = NULL WHERE value < -55 OR value > 125;
UPDATE sensors SET last_value = NULL WHERE last_value < -55 OR last_value > 125;

DELETE FROM readings_minute
WHERE (sensor_id, bucket) IN (SELECT sensor_id, bucket FROM impossible_minutes);

INSERT INTO readings_minute (sensor_id, bucket, n, sum, min, max)
SELECT r.sensor_id, m.bucket, COUNT(r.value), COALESCE(SUM(r.value), 0), MIN(r.value),
       MAX(r.value)
FROM impossible_minutes m
JOIN readings r ON r.sensor_id = m.sensor_id AND r.ts >= m.bucket AND r.ts < m.bucket + 60000
GROUP BY r.sensor_id, m.bucket;

CREATE TEMP TABLE impossible_hours AS
SELECT DISTINCT sensor_id, bucket - ((bucket % 3600000) + 3600000) % 3600000 AS bucket
FROM impossible_minutes;

DELETE FROM readings_hour
WHERE (sensor_id, bucket) IN (SELECT sensor_id, bucket FROM impossible_hours);

INSERT INTO readings_hour (sensor_id, bucket, n, sum, min, max)
SELECT m.sensor_id, h.bucket, SUM(m.n), SUM(m.sum), MIN(m.min), MAX(m.max)
FROM impossible_hours h
JOIN readings_minute m
  ON m.sensor_id = h.sensor_id AND m.bucket >= h.bucket AND m.bucket < h.bucket + 3600000
GROUP BY m.sensor_id, h.bucket;

DROP TABLE impossible_minutes;
DROP TABLE impossible_hours;

-- Since when a sensor's newest value has been the same (Unix ms, on the same scale as
-- `last_ts`): a probe whose value does not move while the heating or cooling runs is stuck.
-- Existing sensors start counting from their newest reading.
ALTER TABLE sensors ADD COLUMN value_since INTEGER;
UPDATE sensors SET value_since = last_ts;

-- Readings an agent sent that the engine could not place in time (stamped after their
-- receipt, or inconsistent with the agent's clock): stored as received, counted here so the
-- agent is flagged in `GET /v1/agents` with when it last happened.
ALTER TABLE agents ADD COLUMN misdated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN misdated_at INTEGER;
