-- Hearth engine schema v1 (SQLite). Times are Unix milliseconds (UTC).

-- Every sensor ever reported; last_* is the newest reading by its own timestamp, so a replay of
-- old readings never hides a newer one.
CREATE TABLE sensors (
    id         TEXT PRIMARY KEY NOT NULL,
    host_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    alias      TEXT,
    extra      TEXT,
    last_ts    INTEGER,
    last_value REAL
);

-- Raw readings. The natural key (sensor, timestamp) makes a replayed reading idempotent.
-- value NULL = the sensor reported a failed reading.
CREATE TABLE readings (
    sensor_id TEXT NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL,
    PRIMARY KEY (sensor_id, ts)
) WITHOUT ROWID;

-- Agents by (host, kind): a host may run both a sensor and a relay agent.
CREATE TABLE agents (
    host_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('sensor', 'relay')),
    url             TEXT,
    last_seen       INTEGER NOT NULL,
    clock_offset_ms INTEGER,
    PRIMARY KEY (host_id, kind)
);

-- Relay outputs as registered by relay agents. `function` is the engine-side assignment;
-- NULL means "use the agent's hint".
CREATE TABLE relays (
    host_id       TEXT NOT NULL,
    output_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    function_hint TEXT,
    function      TEXT,
    state         TEXT NOT NULL CHECK (state IN ('on', 'off')),
    updated       INTEGER NOT NULL,
    PRIMARY KEY (host_id, output_id)
);

-- Decisions of the control loop, recorded when the outcome or its reason changes.
CREATE TABLE decisions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             INTEGER NOT NULL,
    heat           INTEGER NOT NULL,
    effective_temp REAL,
    setpoint       REAL NOT NULL,
    reason_code    TEXT NOT NULL,
    reason         TEXT NOT NULL,
    detail         TEXT NOT NULL -- the whole Decision as JSON
);
CREATE INDEX decisions_ts ON decisions (ts);

-- Small key/value settings (JSON values), e.g. the control settings.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
