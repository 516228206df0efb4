-- Hearth engine schema v16: an agent's own configured values next to what it applied (the
-- relay agent's local protection times, which the engine may only tighten). JSON in the
-- `AgentSettings` shape; NULL for reports that did not carry them.
ALTER TABLE agent_applied ADD COLUMN local TEXT;
