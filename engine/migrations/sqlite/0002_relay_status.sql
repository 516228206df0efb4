-- Hearth engine schema v2: what relay agents report beyond on/off.

-- The output's whole status (JSON `OutputStatus`: lease, protection, cycles, last fallback) as
-- the agent last reported it, at `updated`; NULL until an agent that reports it does.
ALTER TABLE relays ADD COLUMN status TEXT;
-- Why the agent refused the engine's last command (interlock, minimum off time); NULL when the
-- last command was carried out.
ALTER TABLE relays ADD COLUMN command_error TEXT;
