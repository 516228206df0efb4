-- Hearth engine schema v5: decisions call for cooling too. Older rows' `detail` is in the
-- heat-only format; the API skips rows it cannot read rather than fail.
ALTER TABLE decisions ADD COLUMN cool INTEGER NOT NULL DEFAULT 0;
