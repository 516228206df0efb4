-- Hearth engine schema v18: `reading_values`, the raw readings by sensor key with their values
-- in °C (as the `readings` view of 0017 decodes them), without the join to `sensor_keys`. A
-- query that names the key itself (`sensor = (SELECT key FROM sensor_keys WHERE ...)`) reads
-- the primary key's range in time order and can stop at its LIMIT; through the join
-- PostgreSQL read and sorted a whole year of one sensor for the first 500 rows (1.1 s).
CREATE VIEW reading_values AS
SELECT r.sensor AS sensor, r.ts AS ts,
       CASE WHEN typeof(r.value) = 'integer' THEN
              CASE WHEN (r.value & 1) = 0 THEN r.value / 32.0 ELSE (r.value - 1) / 20000.0 END
            ELSE r.value END AS value
FROM reading_rows r;
