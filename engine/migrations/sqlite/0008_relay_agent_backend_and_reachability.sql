-- Hearth engine schema v8: what the engine knows about each relay agent beyond its last contact.

-- The hardware backend the agent registered with (`rppal`, `gpio-cdev`, `simulated`); NULL for
-- sensor agents and relay agents that do not say. `simulated` outputs switch no equipment.
ALTER TABLE agents ADD COLUMN backend TEXT;
-- When the engine's calls to the agent (renewals, commands, reads) started getting no answer
-- (Unix ms); NULL while it answers. Set at the first failed call, cleared by the next answer.
ALTER TABLE agents ADD COLUMN unreachable_since INTEGER;
-- Why the engine's last call to the agent failed (no answer, or an error status other than a
-- refusal); NULL when it succeeded.
ALTER TABLE agents ADD COLUMN contact_error TEXT;
