-- Hearth engine schema v18 (as SQLite's 0018): `reading_values`, the raw readings by sensor key
-- without the join to `sensor_keys`, so that a query naming the key reads the primary key's
-- range in time order and stops at its LIMIT.
CREATE VIEW reading_values AS
SELECT sensor, ts, value FROM reading_rows;
