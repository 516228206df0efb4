//! The simulated world shared by the simulated relay bank and the simulated room.
//!
//! The relay agent's simulator writes the state of its outputs to a small JSON file; the sensor
//! agent's simulator reads it to know whether the heater runs. A file (replaced atomically) keeps
//! the two processes independent: either can start first or restart, as on real hardware.
//! One relay agent writes one world file.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_proto::relays::RelayFunction;
use serde::{Deserialize, Serialize};

/// What the simulated relays are doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RelayWorld {
    /// Output id → its state.
    pub outputs: BTreeMap<String, SimOutput>,
}

/// One simulated output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimOutput {
    /// True when energised.
    pub on: bool,
    /// What it drives (from the relay agent's configuration).
    pub function_hint: Option<RelayFunction>,
}

/// Where both simulators meet when not configured: one file in the temp dir.
pub fn default_path() -> std::path::PathBuf {
    std::env::temp_dir().join("hearth-sim-world.json")
}

/// Which outputs of the world heat a simulated room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HeatedBy {
    /// Any output whose function is heat: one room, one furnace.
    #[default]
    AnyHeat,
    /// Only while every one of these outputs is on: a room behind a zone valve is heated when
    /// its valve is open AND the boiler fires, not by the boiler heating another zone. Empty
    /// never heats.
    All(Vec<String>),
}

impl std::fmt::Display for HeatedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AnyHeat => f.write_str("any heat output"),
            Self::All(ids) => write!(f, "all of {}", ids.join(", ")),
        }
    }
}

impl RelayWorld {
    /// True when any output that drives `function` is on.
    pub fn is_on(&self, function: RelayFunction) -> bool {
        self.outputs.values().any(|o| o.on && o.function_hint == Some(function))
    }

    /// True when a room heated `by` these outputs is being heated. An output the world does
    /// not have (its relay agent not started, a typo) is off.
    pub fn heats(&self, by: &HeatedBy) -> bool {
        match by {
            HeatedBy::AnyHeat => self.is_on(RelayFunction::Heat),
            HeatedBy::All(ids) => {
                !ids.is_empty() && ids.iter().all(|id| self.outputs.get(id).is_some_and(|o| o.on))
            }
        }
    }

    /// Read the world file; a missing file is an empty world (the relay agent has not started).
    pub fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Replace the world file atomically (write a temporary file, then rename), so a reader
    /// never sees half a file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        assert_eq!(RelayWorld::read(&path)?, RelayWorld::default());
        let mut world = RelayWorld::default();
        world.outputs.insert(
            "heat".into(),
            SimOutput { on: true, function_hint: Some(RelayFunction::Heat) },
        );
        world.write(&path)?;
        let back = RelayWorld::read(&path)?;
        assert!(back.is_on(RelayFunction::Heat));
        assert!(!back.is_on(RelayFunction::Cool));
        Ok(())
    }

    #[test]
    fn a_room_behind_a_valve_needs_every_named_output_on() {
        let output = |on, f| SimOutput { on, function_hint: Some(f) };
        let world = |boiler, v1, v2| RelayWorld {
            outputs: [
                ("boiler".to_owned(), output(boiler, RelayFunction::Heat)),
                ("valve-1".to_owned(), output(v1, RelayFunction::Valve)),
                ("valve-2".to_owned(), output(v2, RelayFunction::Valve)),
            ]
            .into(),
        };
        let by = |ids: &[&str]| HeatedBy::All(ids.iter().map(|s| (*s).to_owned()).collect());
        let room1 = by(&["valve-1", "boiler"]);
        assert!(world(true, true, false).heats(&room1));
        // The boiler heating the other zone, or an open valve with the boiler off: no heat.
        assert!(!world(true, false, true).heats(&room1));
        assert!(!world(false, true, true).heats(&room1));
        // Any heat output, as before, whatever the valves.
        assert!(world(true, false, false).heats(&HeatedBy::AnyHeat));
        assert!(!world(false, true, true).heats(&HeatedBy::AnyHeat));
        // An output the world lacks is off; an empty list heats nothing.
        assert!(!world(true, true, true).heats(&by(&["valve-1", "valve-3"])));
        assert!(!world(true, true, true).heats(&by(&[])));
        assert_eq!(room1.to_string(), "all of valve-1, boiler");
    }
}
