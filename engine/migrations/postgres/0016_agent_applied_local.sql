-- Hearth engine schema v16 (engine/migrations/sqlite/0016_agent_applied_local.sql): an agent's
-- own configured values next to what it applied. JSON in the `AgentSettings` shape; NULL for
-- reports that did not carry them.
ALTER TABLE agent_applied ADD COLUMN local TEXT;
