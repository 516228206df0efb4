//! The agent's configuration: flags > environment (`HEARTH_SENSOR_*`) > TOML file (`--config`)
//! > defaults, layered by [`hearth_common::config::load`].
//!
//! Field names are the clap ids and the TOML keys at once (plain snake_case, no serde renames),
//! because the layering matches file keys against clap ids.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hearth_common::auth::Secret;
use serde::{Deserialize, Serialize};

/// Configuration of `hearth-sensor-agent`.
#[derive(Debug, Clone, clap::Parser, Serialize, Deserialize)]
#[command(
    name = "hearth-sensor-agent",
    version,
    about = "Reads DS18B20 temperatures (kernel w1 or simulated) and reports them to the Hearth engine"
)]
pub struct Config {
    /// A TOML file with any of these settings (keys are the long flag names with `_`), and the
    /// `[[sensors]]` tables. Flags and environment variables override it.
    #[arg(long, env = "HEARTH_SENSOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The engine's base URL, e.g. `http://10.0.0.2:8080`. Skips mDNS discovery.
    #[arg(long, env = "HEARTH_SENSOR_ENGINE", value_name = "URL")]
    pub engine: Option<String>,

    /// The id this host reports under. Default: the Raspberry Pi serial, else /etc/machine-id.
    #[arg(long, env = "HEARTH_SENSOR_HOST_ID", value_name = "ID")]
    pub host_id: Option<String>,

    /// This device's key, `<site id>.<64 hex>` (required). `hearth-engine device-key <host-id>`
    /// on the engine's host prints it.
    #[arg(long, env = "HEARTH_SENSOR_DEVICE_KEY", value_name = "KEY", hide_env_values = true)]
    pub device_key: Option<Secret>,

    /// Where temperatures come from.
    #[arg(long, env = "HEARTH_SENSOR_HARDWARE", value_enum, default_value_t = Hardware::W1)]
    pub hardware: Hardware,

    /// The kernel's 1-Wire devices directory (w1 backend).
    #[arg(
        long,
        env = "HEARTH_SENSOR_W1_DIR",
        value_name = "DIR",
        default_value = "/sys/bus/w1/devices"
    )]
    pub w1_dir: PathBuf,

    /// Seconds between reports (more than 0, at most 3600).
    #[arg(long, env = "HEARTH_SENSOR_INTERVAL_S", value_name = "SECONDS", default_value_t = 10.0)]
    pub interval_s: f64,

    /// The world file the simulated relay agent writes (simulated backend). Default:
    /// `hearth-sim-world.json` in the temporary directory.
    #[arg(long, env = "HEARTH_SENSOR_SIM_WORLD", value_name = "FILE")]
    pub sim_world: Option<PathBuf>,

    /// Simulated room: temperature at start, °C.
    #[arg(long, env = "HEARTH_SENSOR_SIM_START_C", value_name = "CELSIUS", default_value_t = 17.0)]
    pub sim_start_c: f64,

    /// Simulated room: outside temperature, °C.
    #[arg(
        long,
        env = "HEARTH_SENSOR_SIM_OUTSIDE_C",
        value_name = "CELSIUS",
        default_value_t = 5.0
    )]
    pub sim_outside_c: f64,

    /// Simulated room: simulated seconds per real second (e.g. 600 warms the room in seconds).
    #[arg(
        long,
        env = "HEARTH_SENSOR_SIM_TIME_SCALE",
        value_name = "FACTOR",
        default_value_t = 1.0
    )]
    pub sim_time_scale: f64,

    /// Sensors (config file only, `[[sensors]]` tables). For the w1 backend they give aliases
    /// to discovered sensors; for the simulator they name the simulated sensors.
    #[arg(skip)]
    #[serde(default)]
    pub sensors: Vec<SensorConfig>,
}

/// Where temperatures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardware {
    /// The kernel 1-Wire driver's sysfs files (`dtoverlay=w1-gpio` on a Raspberry Pi).
    W1,
    /// A simulated room heated by the simulated relay agent's heater.
    Simulated,
}

/// One `[[sensors]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// The sensor id: the 1-Wire device name (e.g. `28-0316a2797bff`), or any id for the
    /// simulator.
    pub id: String,
    /// A human name reported with the readings.
    #[serde(default)]
    pub alias: Option<String>,
}

/// The simulator's sensor when none are configured.
pub const DEFAULT_SIM_SENSOR_ID: &str = "28-00000000a001";
/// The alias of [`DEFAULT_SIM_SENSOR_ID`].
pub const DEFAULT_SIM_SENSOR_ALIAS: &str = "living room";

impl Config {
    /// Check the values clap and serde cannot check on their own.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.interval_s > 0.0 && self.interval_s <= 3600.0) {
            anyhow::bail!(
                "interval_s must be more than 0 and at most 3600, got {}",
                self.interval_s
            );
        }
        if !(self.sim_time_scale > 0.0 && self.sim_time_scale.is_finite()) {
            anyhow::bail!("sim_time_scale must be a positive number, got {}", self.sim_time_scale);
        }
        for (name, v) in [("sim_start_c", self.sim_start_c), ("sim_outside_c", self.sim_outside_c)]
        {
            if !(-60.0..=60.0).contains(&v) {
                anyhow::bail!("{name} must be between -60 and 60 °C, got {v}");
            }
        }
        if let Some(url) = &self.engine {
            // The agent carries no TLS stack (it must stay small on a Pi Zero), so an https URL
            // could never work; say so now rather than at every report.
            if !url.starts_with("http://") || url.len() <= "http://".len() {
                anyhow::bail!(
                    "--engine must be an http:// URL (e.g. http://10.0.0.2:8080), got {url:?}"
                );
            }
        }
        let mut seen = BTreeSet::new();
        for s in &self.sensors {
            if s.id.trim().is_empty() {
                anyhow::bail!("a [[sensors]] entry has an empty id");
            }
            // The engine's limits, checked here so a bad entry stops the agent at start
            // instead of getting every report refused.
            if s.id.len() > 64 || s.id.chars().any(|c| c.is_control() || c == '/') {
                anyhow::bail!(
                    "sensor id {:?} must be at most 64 characters without '/' or control characters",
                    s.id
                );
            }
            if s.alias.as_ref().is_some_and(|a| a.len() > 256) {
                anyhow::bail!("the alias of sensor {:?} is longer than 256 characters", s.id);
            }
            if !seen.insert(s.id.to_ascii_lowercase()) {
                anyhow::bail!("sensor {:?} is listed twice in [[sensors]]", s.id);
            }
        }
        Ok(())
    }

    /// The world file of the simulated relays.
    pub fn sim_world_path(&self) -> PathBuf {
        self.sim_world.clone().unwrap_or_else(hearth_common::simworld::default_path)
    }

    /// The simulated sensors: the configured ones, else one default sensor.
    pub fn sim_sensors(&self) -> Vec<SensorConfig> {
        if self.sensors.is_empty() {
            vec![SensorConfig {
                id: DEFAULT_SIM_SENSOR_ID.to_owned(),
                alias: Some(DEFAULT_SIM_SENSOR_ALIAS.to_owned()),
            }]
        } else {
            self.sensors.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_common::config::load_from;

    #[test]
    fn defaults() -> anyhow::Result<()> {
        let c: Config = load_from(["hearth-sensor-agent"])?;
        assert_eq!(c.hardware, Hardware::W1);
        assert_eq!(c.w1_dir, PathBuf::from("/sys/bus/w1/devices"));
        assert_eq!(c.interval_s, 10.0);
        assert_eq!((c.sim_start_c, c.sim_outside_c, c.sim_time_scale), (17.0, 5.0, 1.0));
        assert!(c.sensors.is_empty());
        c.validate()?;
        assert_eq!(c.sim_sensors()[0].id, DEFAULT_SIM_SENSOR_ID);
        assert!(c.sim_world_path().ends_with("hearth-sim-world.json"));
        Ok(())
    }

    #[test]
    fn flags_parse_and_validate() -> anyhow::Result<()> {
        let c: Config = load_from([
            "a",
            "--hardware",
            "simulated",
            "--interval-s",
            "0.5",
            "--engine",
            "http://127.0.0.1:1",
            "--device-key",
            "abc.def",
        ])?;
        assert_eq!(c.hardware, Hardware::Simulated);
        c.validate()?;
        assert_eq!(c.device_key.as_ref().map(Secret::expose), Some("abc.def"));
        assert!(!format!("{c:?}").contains("abc.def"), "Debug must not show the device key");

        for bad in ["0", "-1", "3601", "NaN"] {
            let c: Config = load_from(["a".to_owned(), format!("--interval-s={bad}")])?;
            assert!(c.validate().is_err(), "interval {bad} accepted");
        }
        let c: Config = load_from(["a", "--engine", "https://x:1"])?;
        assert!(c.validate().is_err());
        assert!(load_from::<Config, _, _>(["a", "--hardware", "gpio"]).is_err());
        Ok(())
    }

    #[test]
    fn file_layers_under_flags() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "hardware = \"simulated\"\ninterval_s = 30\n\
             [[sensors]]\nid = \"28-1\"\nalias = \"hall\"\n[[sensors]]\nid = \"28-2\"\n",
        )?;
        let f = file.to_string_lossy().into_owned();
        let c: Config = load_from(["a", "--config", &f, "--interval-s", "5"])?;
        assert_eq!((c.hardware, c.interval_s), (Hardware::Simulated, 5.0));
        assert_eq!(c.sensors.len(), 2);
        assert_eq!(c.sensors[0].alias.as_deref(), Some("hall"));
        assert_eq!(c.sim_sensors(), c.sensors);

        std::fs::write(&file, "[[sensors]]\nid = \"28-1\"\n[[sensors]]\nid = \"28-1\"\n")?;
        let c: Config = load_from(["a", "--config", &f])?;
        assert!(c.validate().is_err(), "duplicate sensor ids accepted");
        std::fs::write(&file, "[[sensors]]\nid = \"a/b\"\n")?;
        let c: Config = load_from(["a", "--config", &f])?;
        assert!(c.validate().is_err(), "sensor id with '/' accepted");
        std::fs::write(&file, "[[sensors]]\nid = \"a\"\nlabel = \"x\"\n")?;
        assert!(load_from::<Config, _, _>(["a", "--config", &f]).is_err(), "unknown key accepted");
        Ok(())
    }
}
