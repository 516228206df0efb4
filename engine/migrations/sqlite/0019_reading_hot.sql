-- Hearth engine schema v19: the readings not yet counted in the rollups are kept in time order.
--
-- `reading_rows` is keyed by (sensor, ts), so that a sensor's range is read in time order. But
-- a write of many sensors' readings then changed one page per sensor: with 1,000 sensors a
-- commit rewrote about as many pages as it stored readings (the ingest benchmark), which
-- halved ingest. Ingest now appends live readings to `reading_hot`, keyed by (ts, sensor): its
-- new rows share the last pages. The rollups' flush (`store/rollups.rs`) moves the rows it
-- counts into `reading_rows` in (sensor, ts) order, once a minute, in its own transaction:
-- then each sensor's page is written once for a minute of readings.
--
-- The invariant (kept by `store/history.rs` and `store/rollups.rs`): a reading taken before
-- the stored `rollups_before` is in `reading_rows` only, one taken at or after it in
-- `reading_hot` only (an engine of schema 18 left its readings in `reading_rows`: the first
-- write of this one counts and moves them, as after any restart). So a replayed reading is
-- looked up in one table, whichever its age.
CREATE TABLE reading_hot (
    ts     INTEGER NOT NULL,
    sensor INTEGER NOT NULL,
    value,
    PRIMARY KEY (ts, sensor)
) WITHOUT ROWID;

-- The views read both tables. Each branch joins its own table, so that a query's terms reach
-- both keys (a join with a compound subquery would be planned as a scan of its result).
DROP VIEW readings;
DROP VIEW reading_values;

CREATE VIEW reading_values AS
SELECT r.sensor AS sensor, r.ts AS ts,
       CASE WHEN typeof(r.value) = 'integer' THEN
              CASE WHEN (r.value & 1) = 0 THEN r.value / 32.0 ELSE (r.value - 1) / 20000.0 END
            ELSE r.value END AS value
FROM reading_rows r
UNION ALL
SELECT h.sensor, h.ts,
       CASE WHEN typeof(h.value) = 'integer' THEN
              CASE WHEN (h.value & 1) = 0 THEN h.value / 32.0 ELSE (h.value - 1) / 20000.0 END
            ELSE h.value END
FROM reading_hot h;

CREATE VIEW readings AS
SELECT k.sensor_id AS sensor_id, r.ts AS ts,
       CASE WHEN typeof(r.value) = 'integer' THEN
              CASE WHEN (r.value & 1) = 0 THEN r.value / 32.0 ELSE (r.value - 1) / 20000.0 END
            ELSE r.value END AS value
FROM reading_rows r JOIN sensor_keys k ON k.key = r.sensor
UNION ALL
SELECT k.sensor_id, h.ts,
       CASE WHEN typeof(h.value) = 'integer' THEN
              CASE WHEN (h.value & 1) = 0 THEN h.value / 32.0 ELSE (h.value - 1) / 20000.0 END
            ELSE h.value END
FROM reading_hot h JOIN sensor_keys k ON k.key = h.sensor;
