-- Hearth engine schema v6: what people set per sensor (the dashboard's sensor settings).
-- `name` replaces the agent's alias on screen and in reasons; `weight` counts the sensor when
-- the rule in force names no sensors (0: only when a rule names it, e.g. an outdoor probe);
-- `offset_c` calibrates: readings are stored as measured and the offset is added wherever the
-- engine serves or uses a temperature.
ALTER TABLE sensors ADD COLUMN name TEXT;
ALTER TABLE sensors ADD COLUMN weight REAL NOT NULL DEFAULT 1;
ALTER TABLE sensors ADD COLUMN offset_c REAL NOT NULL DEFAULT 0;
