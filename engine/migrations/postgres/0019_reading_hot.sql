-- Hearth engine schema v19 (as SQLite's 0019): the readings not yet counted in the rollups are
-- kept in time order in `reading_hot`, keyed by (ts, sensor), so that a write of many sensors'
-- readings extends the last pages of one index instead of changing a page per sensor; the
-- rollups' flush moves them into `reading_rows` in (sensor, ts) order once a minute. A reading
-- taken before the stored `rollups_before` is in `reading_rows` only, one taken at or after it
-- in `reading_hot` only.
CREATE TABLE reading_hot (
    ts     BIGINT NOT NULL,
    sensor BIGINT NOT NULL,
    value  DOUBLE PRECISION,
    PRIMARY KEY (ts, sensor)
);

DROP VIEW readings;
DROP VIEW reading_values;

CREATE VIEW reading_values AS
SELECT sensor, ts, value FROM reading_rows
UNION ALL
SELECT sensor, ts, value FROM reading_hot;

CREATE VIEW readings AS
SELECT k.sensor_id AS sensor_id, r.ts AS ts, r.value AS value
FROM reading_rows r JOIN sensor_keys k ON k.key = r.sensor
UNION ALL
SELECT k.sensor_id, h.ts, h.value
FROM reading_hot h JOIN sensor_keys k ON k.key = h.sensor;
