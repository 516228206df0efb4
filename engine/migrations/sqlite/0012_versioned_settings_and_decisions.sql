-- Hearth engine schema v12: the stored control settings and decisions carry the version of
-- their format (`"v"` in their JSON, `store/format.rs`), so that a row this engine cannot read
-- is reported instead of skipped (decisions) or replaced by the defaults (settings). The rows
-- written until now are format 1: decisions with both setpoints (since schema v5), settings
-- with an algorithm. Older rows are left without a version, and reported as unreadable.
UPDATE settings SET value = json_set(value, '$.v', 1)
WHERE key = 'control' AND json_valid(value) AND json_type(value, '$.algorithm') = 'text';
UPDATE decisions SET detail = json_set(detail, '$.v', 1)
WHERE json_valid(detail) AND json_type(detail, '$.cool_setpoint_c') IN ('integer', 'real');
