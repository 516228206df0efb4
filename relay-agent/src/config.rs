//! The relay agent's configuration: flags > `HEARTH_RELAY_*` env vars > TOML file > defaults
//! (layered by [`hearth_common::config::load`]).
//!
//! Field names are the clap ids and the serde names at once (plain snake_case, no renames), which
//! is what the layering needs: a key in the file is the long flag with `_` for `-`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use hearth_common::auth::Secret;
use hearth_proto::relays::{RelayFunction, RelayState};
use serde::{Deserialize, Serialize};

/// Hearth relay agent: switches furnace and air-conditioner relays on the engine's leased
/// commands and falls back to each output's safe state when the engine goes silent.
#[derive(Debug, Clone, clap::Parser, Serialize, Deserialize)]
#[command(name = "hearth-relay-agent", version, about, long_about = None)]
pub struct Config {
    /// TOML configuration file (keys are the long flag names with `_`; `[[outputs]]` tables
    /// define the outputs).
    #[arg(long, env = "HEARTH_RELAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The engine's base URL, e.g. `http://10.0.0.2:8080`. Skips mDNS discovery.
    #[arg(long, env = "HEARTH_RELAY_ENGINE", value_name = "URL")]
    pub engine: Option<String>,

    /// This host's id (1-64 chars of [A-Za-z0-9_-]). Default: the Raspberry Pi serial, else
    /// /etc/machine-id.
    #[arg(long, env = "HEARTH_RELAY_HOST_ID", value_name = "ID")]
    pub host_id: Option<String>,

    /// This device's key, `<site id>.<64 hex>` (required). Print one on the engine's host with
    /// `hearth-engine device-key <host-id>`.
    #[arg(long, env = "HEARTH_RELAY_DEVICE_KEY", value_name = "KEY", hide_env_values = true)]
    pub device_key: Option<Secret>,

    /// Address and port the REST API listens on.
    #[arg(long, env = "HEARTH_RELAY_LISTEN", value_name = "ADDR", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,

    /// The URL the engine should use to reach this agent. Default: the local address the OS
    /// would use to reach the engine, with the listening port.
    #[arg(long, env = "HEARTH_RELAY_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,

    /// The relay hardware backend.
    #[arg(long, env = "HEARTH_RELAY_HARDWARE", value_enum, default_value_t = Hardware::Simulated)]
    pub hardware: Hardware,

    /// The world file shared with the simulated sensor agent (simulated hardware only).
    /// Default: `hearth-sim-world.json` in the temporary directory.
    #[arg(long, env = "HEARTH_RELAY_SIM_WORLD", value_name = "FILE")]
    pub sim_world: Option<PathBuf>,

    /// Register again with the engine after this many seconds without a command or
    /// registration, so the engine's view of this agent stays fresh.
    #[arg(
        long,
        env = "HEARTH_RELAY_REREGISTER_AFTER_S",
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub reregister_after_s: u64,

    /// The outputs (file only, `[[outputs]]` tables). Empty means the default set: `heat`,
    /// `cool` and `fan`.
    #[arg(skip)]
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,
}

// Debug by hand so that printing a Config can never leak the device key.
/// The relay hardware backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardware {
    /// In-memory relays that publish their state to the simulated world file.
    Simulated,
}

/// One output (`[[outputs]]` in the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Unique id within this agent, 1-32 chars of [A-Za-z0-9_-]; appears in URLs.
    pub id: String,
    /// A human name, e.g. `Furnace`.
    pub name: String,
    /// What the output drives, as a hint for the engine.
    #[serde(default)]
    pub function_hint: Option<RelayFunction>,
    /// The state the output falls back to at start, at stop and when a lease runs out.
    #[serde(default = "default_safe_state")]
    pub safe_state: RelayState,
}

fn default_safe_state() -> RelayState {
    RelayState::Off
}

impl OutputConfig {
    fn new(id: &str, name: &str, hint: RelayFunction) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            function_hint: Some(hint),
            safe_state: RelayState::Off,
        }
    }
}

/// The outputs used when the configuration names none: a furnace, an air conditioner, a fan.
pub fn default_outputs() -> Vec<OutputConfig> {
    vec![
        OutputConfig::new("heat", "Furnace", RelayFunction::Heat),
        OutputConfig::new("cool", "Air conditioner", RelayFunction::Cool),
        OutputConfig::new("fan", "Fan", RelayFunction::Fan),
    ]
}

/// True when `id` is a valid output id: 1-32 chars of [A-Za-z0-9_-].
pub fn valid_output_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Config {
    /// The configured outputs, or the default set when none are configured; validated (ids
    /// well-formed and unique, names not empty).
    pub fn effective_outputs(&self) -> anyhow::Result<Vec<OutputConfig>> {
        if self.outputs.is_empty() {
            return Ok(default_outputs());
        }
        let mut seen = HashSet::new();
        for (i, output) in self.outputs.iter().enumerate() {
            if !valid_output_id(&output.id) {
                anyhow::bail!(
                    "outputs[{i}]: id {:?} is invalid: use 1 to 32 characters of letters, digits, \
                     '-' and '_'",
                    output.id
                );
            }
            if !seen.insert(output.id.as_str()) {
                anyhow::bail!("outputs[{i}]: duplicate output id {:?}", output.id);
            }
            if output.name.trim().is_empty() {
                anyhow::bail!("outputs[{i}] ({}): name must not be empty", output.id);
            }
        }
        Ok(self.outputs.clone())
    }

    /// The simulated world file, defaulted.
    pub fn sim_world_path(&self) -> PathBuf {
        self.sim_world.clone().unwrap_or_else(hearth_common::simworld::default_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> anyhow::Result<Config> {
        hearth_common::config::load_from(
            std::iter::once("hearth-relay-agent").chain(args.iter().copied()),
        )
    }

    #[test]
    fn defaults() -> anyhow::Result<()> {
        let c = load(&[])?;
        assert_eq!(c.listen, "0.0.0.0:8081".parse()?);
        assert_eq!(c.hardware, Hardware::Simulated);
        assert_eq!(c.reregister_after_s, 60);
        assert!(load(&["--reregister-after-s", "0"]).is_err());
        // The key is never printed with the configuration.
        let key = format!("0123456789abcdef.{}", "ab".repeat(32));
        let c = load(&["--device-key", &key])?;
        assert!(!format!("{c:?}").contains("abab"));
        let ids: Vec<_> = c.effective_outputs()?.into_iter().map(|o| o.id).collect();
        assert_eq!(ids, ["heat", "cool", "fan"]);
        Ok(())
    }

    #[test]
    fn output_validation() -> anyhow::Result<()> {
        let mut c = load(&[])?;
        c.outputs = vec![
            OutputConfig::new("a", "A", RelayFunction::Heat),
            OutputConfig::new("a", "B", RelayFunction::Cool),
        ];
        let err = c.effective_outputs().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("duplicate output id \"a\""), "{err}");
        c.outputs = vec![OutputConfig::new("bad id", "A", RelayFunction::Heat)];
        let err = c.effective_outputs().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("id \"bad id\" is invalid"), "{err}");
        c.outputs = vec![OutputConfig::new(&"x".repeat(33), "A", RelayFunction::Heat)];
        assert!(c.effective_outputs().is_err());
        c.outputs = vec![OutputConfig::new(&"x".repeat(32), "A", RelayFunction::Heat)];
        assert!(c.effective_outputs().is_ok());
        Ok(())
    }

    #[test]
    fn outputs_come_from_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nhardware = \"simulated\"\n\
             [[outputs]]\nid = \"boiler\"\nname = \"Boiler\"\nfunction_hint = \"heat\"\n\
             [[outputs]]\nid = \"dehum\"\nname = \"Dehumidifier\"\nsafe_state = \"on\"\n",
        )?;
        let f = file.to_string_lossy().to_string();
        let c = load(&["--config", &f, "--listen", "127.0.0.1:9001"])?;
        // The flag wins over the file.
        assert_eq!(c.listen, "127.0.0.1:9001".parse()?);
        let outputs = c.effective_outputs()?;
        assert_eq!(outputs.len(), 2);
        assert_eq!(outputs[0].function_hint, Some(RelayFunction::Heat));
        assert_eq!(outputs[0].safe_state, RelayState::Off);
        assert_eq!(outputs[1].function_hint, None);
        assert_eq!(outputs[1].safe_state, RelayState::On);
        Ok(())
    }
}
