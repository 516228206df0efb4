-- Hearth engine schema: an admin's choice of what one relay output does in its agent's
-- fallback program (the JSON of hearth_proto::fallback::OutputProgram). Outputs without a row
-- get the default made from the settings and the output's function.
CREATE TABLE relay_fallback (
    host_id TEXT NOT NULL,
    output_id TEXT NOT NULL,
    program TEXT NOT NULL,
    PRIMARY KEY (host_id, output_id)
);
