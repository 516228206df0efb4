//! The simulated relay bank: states in memory, published to the world file that the simulated
//! sensor agent reads to know whether the heating or cooling runs.

use std::path::{Path, PathBuf};

use hearth_common::simworld::{RelayWorld, SimOutput};

use super::{HwError, RelayBank};
use crate::config::OutputConfig;

/// Simulated relays. Every change (and the start) rewrites the whole world file atomically, so
/// the sensor agent never sees half a file and either process can restart at any time.
#[derive(Debug)]
pub struct SimBank {
    path: PathBuf,
    world: RelayWorld,
    /// The error of the last failed write, if the last write failed: the "hardware" is the file,
    /// so a file we cannot write is an unhealthy backend.
    last_error: Option<String>,
}

impl SimBank {
    /// A bank with `outputs`, all released, published to `path` at once (an unwritable path is
    /// an error, as a missing GPIO chip would be).
    pub fn new(path: impl Into<PathBuf>, outputs: &[OutputConfig]) -> Result<Self, HwError> {
        let world = RelayWorld {
            outputs: outputs
                .iter()
                .map(|o| (o.id.clone(), SimOutput { on: false, function_hint: o.function_hint }))
                .collect(),
        };
        let mut bank = Self { path: path.into(), world, last_error: None };
        bank.publish()?;
        Ok(bank)
    }

    /// The world file this bank writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn publish(&mut self) -> Result<(), HwError> {
        match self.world.write(&self.path) {
            Ok(()) => {
                self.last_error = None;
                Ok(())
            }
            Err(source) => {
                let context = format!("writing simulated world file {}", self.path.display());
                self.last_error = Some(format!("{context}: {source}"));
                Err(HwError::Io { context, source })
            }
        }
    }
}

impl RelayBank for SimBank {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn set(&mut self, id: &str, on: bool) -> Result<(), HwError> {
        let output =
            self.world.outputs.get_mut(id).ok_or_else(|| HwError::UnknownOutput(id.to_owned()))?;
        let before = output.on;
        output.on = on;
        let result = self.publish();
        if result.is_err() {
            // The world did not change, so neither did the "relay": keep memory and file equal.
            if let Some(output) = self.world.outputs.get_mut(id) {
                output.on = before;
            }
        }
        result
    }

    fn get(&self, id: &str) -> Result<bool, HwError> {
        self.world
            .outputs
            .get(id)
            .map(|o| o.on)
            .ok_or_else(|| HwError::UnknownOutput(id.to_owned()))
    }

    fn healthy(&self) -> Result<(), HwError> {
        match &self.last_error {
            None => Ok(()),
            Some(e) => Err(HwError::Device(e.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_outputs;
    use hearth_proto::relays::RelayFunction;

    #[test]
    fn publishes_at_start_and_on_change() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        let mut bank = SimBank::new(&path, &default_outputs())?;
        let world = RelayWorld::read(&path)?;
        assert_eq!(world.outputs.len(), 3);
        assert!(world.outputs.values().all(|o| !o.on));
        assert_eq!(
            world.outputs.get("cool").and_then(|o| o.function_hint),
            Some(RelayFunction::Cool)
        );

        bank.set("heat", true)?;
        assert!(bank.get("heat")?);
        assert!(RelayWorld::read(&path)?.is_on(RelayFunction::Heat));
        bank.set("heat", false)?;
        assert!(!RelayWorld::read(&path)?.is_on(RelayFunction::Heat));

        assert!(matches!(bank.set("nope", true), Err(HwError::UnknownOutput(_))));
        assert!(bank.healthy().is_ok());
        Ok(())
    }

    #[test]
    fn valves_are_in_the_world_like_any_output() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        let outputs = [
            OutputConfig::new("boiler", "Boiler", RelayFunction::Heat),
            OutputConfig::new("valve-1", "Living room valve", RelayFunction::Valve),
        ];
        let mut bank = SimBank::new(&path, &outputs)?;
        bank.set("valve-1", true)?;
        let world = RelayWorld::read(&path)?;
        let valve = world.outputs.get("valve-1");
        assert_eq!(valve, Some(&SimOutput { on: true, function_hint: Some(RelayFunction::Valve) }));
        // An open valve is not heat.
        assert!(!world.is_on(RelayFunction::Heat));
        Ok(())
    }

    #[test]
    fn unwritable_world_is_an_error() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("missing-dir").join("world.json");
        assert!(matches!(SimBank::new(&path, &default_outputs()), Err(HwError::Io { .. })));
        Ok(())
    }

    #[test]
    fn failed_write_keeps_state_and_marks_unhealthy() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub)?;
        let path = sub.join("world.json");
        let mut bank = SimBank::new(&path, &default_outputs())?;
        std::fs::remove_dir_all(&sub)?;
        assert!(bank.set("heat", true).is_err());
        assert!(!bank.get("heat")?);
        assert!(bank.healthy().is_err());
        std::fs::create_dir(&sub)?;
        bank.set("heat", true)?;
        assert!(bank.healthy().is_ok());
        Ok(())
    }
}
