-- Hearth engine schema v15: zones and plants. A house is zones (rooms with their own sensors,
-- schedule and decision) served by plants (heating and cooling equipment). Each zone's and
-- plant's configuration is a versioned JSON document (`spec`, format 1, `store/format.rs`);
-- the columns beside it are what queries select and order on.
CREATE TABLE zones (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL, -- the order people see the zones in
    spec     TEXT NOT NULL     -- {"v":1,"sensors":[..],"valves":[..],"heat_relay":..,"cool_relay":..}
);

CREATE TABLE plants (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL -- {"v":1,"kind":..,"heat_relay":..,"zones":[..],"min_on_s":..,...}
);

-- Rules, overrides and decisions belong to a zone; everything stored before zones belongs to
-- the zone every installation opens as. The default zone keeps its control settings under the
-- key 'control' and its default target under 'schedule_default'; another zone's are keyed
-- 'control:<zone>' and 'schedule_default:<zone>'.
ALTER TABLE rules ADD COLUMN zone_id TEXT NOT NULL DEFAULT 'house';
ALTER TABLE overrides ADD COLUMN zone_id TEXT NOT NULL DEFAULT 'house';
ALTER TABLE decisions ADD COLUMN zone_id TEXT NOT NULL DEFAULT 'house';
CREATE INDEX decisions_zone_ts ON decisions (zone_id, ts);

-- The default zone: no sensor named, so it decides from every sensor no other zone names.
INSERT INTO zones (id, name, position, spec) VALUES
    ('house', 'House', 0, '{"v":1,"sensors":[],"valves":[],"heat_relay":null,"cool_relay":null}');

-- The default plant: the heat and cool function groups (the outputs the engine commanded
-- before zones), protected by the stored settings' times as the settings protected them
-- before (the contract's defaults when no settings, or unreadable ones, are stored).
INSERT INTO plants (id, name, spec)
SELECT 'house', 'Heating and cooling', json_object(
    'v', 1,
    'kind', 'heat_cool',
    'heat_relay', 'function:heat',
    'cool_relay', 'function:cool',
    'min_on_s', coalesce(json_extract(c.value, '$.min_on_s'), 180),
    'min_off_s', coalesce(json_extract(c.value, '$.min_off_s'), 180),
    'changeover_s', coalesce(json_extract(c.value, '$.changeover_s'), 300),
    'max_run_s', NULL,
    'zones', json_array('house'),
    'valve_delay_s', 0,
    'overrun_s', 0,
    'min_calling_zones', 1,
    'bypass_zone', NULL)
FROM (SELECT NULL) LEFT JOIN (
    SELECT value FROM settings WHERE key = 'control' AND json_valid(value)
) AS c;
