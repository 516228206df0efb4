-- Hearth engine schema v14: agents managed from the engine. The settings people want a host's
-- agents to run with (one JSON document per host, its revision bumped by every change), what
-- each agent reported applying or refusing of it, and the remote commands with their results.
CREATE TABLE agent_settings (
    host_id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    desired TEXT NOT NULL,
    set_at INTEGER NOT NULL,
    set_by TEXT NOT NULL
);

CREATE TABLE agent_applied (
    host_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    revision INTEGER NOT NULL,
    in_force TEXT NOT NULL,
    refused TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (host_id, kind)
);

CREATE TABLE agent_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    command TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    asked_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    message TEXT,
    result TEXT
);
CREATE INDEX agent_commands_by_host ON agent_commands (host_id, kind, state);
