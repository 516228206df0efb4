//! The agent's configuration: flags > environment (`HEARTH_SENSOR_*`) > TOML file (`--config`)
//! > defaults, layered by [`hearth_common::config::load`].
//!
//! Field names are the clap ids and the TOML keys at once (plain snake_case, no serde renames),
//! because the layering matches file keys against clap ids.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hearth_common::auth::Secret;
use serde::{Deserialize, Serialize};

use hearth_probes::open::{Flags, ProbeOptions, SimOptions};
use hearth_probes::screen::{ScreenRules, SensorSetting};
use hearth_probes::sim::{HeatedBy, SimProfile, SimSensor};
use hearth_proto::relays::{OUTPUT_ID_RULE, valid_output_id};

/// Configuration of `hearth-sensor-agent`.
#[derive(Debug, Clone, clap::Parser, Serialize, Deserialize)]
#[command(
    name = "hearth-sensor-agent",
    version,
    about = "Reads DS18B20 temperatures (kernel w1, bit-banged 1-Wire on a GPIO pin, or simulated) \
             and reports them to the Hearth engine",
    after_help = "Every reading passes a plausibility screen (the DS18B20 range, the 85 °C power-on \
                  value, jumps faster than --screen-max-rate-c-per-min) before the per-sensor \
                  calibration offset is added. Per-sensor settings (alias, offset_c, enabled, \
                  simulator profile) are [[sensors]] tables in the --config file; see \
                  deploy/config/sensor-agent.toml."
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

    /// This device's key, `<site id>.<64 hex>` (required). `hearth-engine device-key --role
    /// sensor <host-id>` on the engine's host prints it.
    #[arg(long, env = "HEARTH_SENSOR_DEVICE_KEY", value_name = "KEY", hide_env_values = true)]
    pub device_key: Option<Secret>,

    /// Where temperatures come from.
    #[arg(long, env = "HEARTH_SENSOR_HARDWARE", value_enum, default_value_t = Hardware::W1)]
    pub hardware: Hardware,

    /// The GPIO the 1-Wire data line is on (bitbang backends): the BCM number for
    /// bitbang-rppal, the line offset on --gpio-chip for bitbang-cdev (the same on a Pi).
    #[arg(long, env = "HEARTH_SENSOR_GPIO_PIN", value_name = "N", default_value_t = 4)]
    pub gpio_pin: u32,

    /// The GPIO character device (bitbang-cdev backend).
    #[arg(
        long,
        env = "HEARTH_SENSOR_GPIO_CHIP",
        value_name = "DEVICE",
        default_value = "/dev/gpiochip0"
    )]
    pub gpio_chip: PathBuf,

    /// Plausibility screen: the fastest change a room can make, °C per minute. A bigger jump
    /// since the last accepted reading is reported as a failed reading.
    #[arg(
        long,
        env = "HEARTH_SENSOR_SCREEN_MAX_RATE_C_PER_MIN",
        value_name = "CELSIUS",
        default_value_t = 5.0
    )]
    pub screen_max_rate_c_per_min: f64,

    /// Plausibility screen: after this many rejected jumps in a row that agree with each other,
    /// the next agreeing reading is accepted as a real new level (a sensor moved). 0 turns the
    /// jump check off.
    #[arg(
        long,
        env = "HEARTH_SENSOR_SCREEN_STEP_REJECTIONS",
        value_name = "N",
        default_value_t = 3
    )]
    pub screen_step_rejections: u32,

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

    /// Whether the engine may change this agent's settings (interval, resolution, sensors'
    /// enabled/alias/offset, the screen) at all. False: every remote value is refused (and the
    /// refusal shown by the engine).
    #[arg(long, env = "HEARTH_SENSOR_REMOTE_SETTINGS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub remote_settings: bool,

    /// The shortest report interval the engine may set, seconds: a local limit the engine
    /// cannot lift.
    #[arg(
        long,
        env = "HEARTH_SENSOR_REMOTE_MIN_INTERVAL_S",
        value_name = "SECONDS",
        default_value_t = 5.0
    )]
    pub remote_min_interval_s: f64,

    /// The longest report interval the engine may set, seconds (at most 3600).
    #[arg(
        long,
        env = "HEARTH_SENSOR_REMOTE_MAX_INTERVAL_S",
        value_name = "SECONDS",
        default_value_t = 300.0
    )]
    pub remote_max_interval_s: f64,

    /// The coarsest DS18B20 resolution the engine may set, bits (9 to 12).
    #[arg(
        long,
        env = "HEARTH_SENSOR_REMOTE_MIN_RESOLUTION_BITS",
        value_name = "BITS",
        default_value_t = 9
    )]
    pub remote_min_resolution_bits: u8,

    /// The finest DS18B20 resolution the engine may set, bits (9 to 12).
    #[arg(
        long,
        env = "HEARTH_SENSOR_REMOTE_MAX_RESOLUTION_BITS",
        value_name = "BITS",
        default_value_t = 12
    )]
    pub remote_max_resolution_bits: u8,

    /// The largest calibration offset the engine may give a sensor either way, °C (0 to 5; 0
    /// keeps the offsets of this file).
    #[arg(
        long,
        env = "HEARTH_SENSOR_REMOTE_MAX_OFFSET_C",
        value_name = "CELSIUS",
        default_value_t = 2.0
    )]
    pub remote_max_offset_c: f64,

    /// Where readings the engine did not acknowledge wait for replay (created if missing; one
    /// agent per directory). systemd: `StateDirectory=hearth-sensor-agent`.
    #[arg(
        long,
        env = "HEARTH_SENSOR_QUEUE_DIR",
        value_name = "DIR",
        default_value = "/var/lib/hearth-sensor-agent/queue"
    )]
    pub queue_dir: PathBuf,

    /// Most bytes the replay queue may take on disk (at least 65536). When full, the oldest
    /// queued readings are dropped (and counted in the log). Default 32 MiB: about two weeks
    /// of two sensors at 10 s.
    #[arg(long, env = "HEARTH_SENSOR_QUEUE_MAX_BYTES", value_name = "BYTES", default_value_t = crate::queue::DEFAULT_MAX_BYTES)]
    pub queue_max_bytes: u64,

    /// Most queued reports replayed per request, one request per interval after the live
    /// reading (1 to 1000). Default 360: an hour of 10 s reports each interval.
    #[arg(
        long,
        env = "HEARTH_SENSOR_QUEUE_REPLAY_BATCH",
        value_name = "REPORTS",
        default_value_t = 360
    )]
    pub queue_replay_batch: usize,

    /// Serve `GET /v1/status` (version, host id, engine in use, last read, queue depth; 503
    /// when no sensor read) on this address, e.g. `127.0.0.1:8082`; port 0 picks a free one
    /// (logged). Off by default: the agent needs no open port to work. The same listener
    /// serves `GET /v1/readings` to relay agents holding its read token (their fallback
    /// program; an admin names this address as the `url` of their fallback choice).
    #[arg(long, env = "HEARTH_SENSOR_STATUS_LISTEN", value_name = "ADDR")]
    // A string, parsed at start: serde's and clap's `SocketAddr` support cost ~4 KB on ARMv6.
    pub status_listen: Option<String>,

    /// The world file the simulated relay agent writes (simulated backend). Default:
    /// `hearth-sim-world.json` in the temporary directory.
    #[arg(long, env = "HEARTH_SENSOR_SIM_WORLD", value_name = "FILE")]
    pub sim_world: Option<PathBuf>,

    /// Simulated room behind a zone valve: heated only while EVERY one of these outputs of the
    /// world file is on, e.g. `valve-1,boiler` (its zone's valve and the boiler behind it).
    /// Default: while any heat output is on.
    #[arg(
        long,
        env = "HEARTH_SENSOR_SIM_HEATED_BY",
        value_name = "OUTPUT,...",
        value_delimiter = ','
    )]
    pub sim_heated_by: Option<Vec<String>>,

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

    /// Faults to inject into simulated sensors (simulated backend): a TOML file with a table per
    /// sensor id (`unplugged`, `dropout`, `crc_error_rate`, `spike_85`, `stuck`), re-read when
    /// it changes.
    #[arg(long, env = "HEARTH_SENSOR_SIM_FAULTS", value_name = "FILE")]
    pub sim_faults: Option<PathBuf>,

    /// Seed of the simulated CRC noise, so a run repeats exactly.
    #[arg(long, env = "HEARTH_SENSOR_SIM_SEED", value_name = "N", default_value_t = 1)]
    pub sim_seed: u64,

    /// Simulated room: simulated seconds per real second (e.g. 600 warms the room in seconds).
    #[arg(
        long,
        env = "HEARTH_SENSOR_SIM_TIME_SCALE",
        value_name = "FACTOR",
        default_value_t = 1.0
    )]
    pub sim_time_scale: f64,

    /// Sensors (config file only, `[[sensors]]` tables). For the hardware backends they give
    /// settings to discovered sensors (and a configured sensor not found is reported missing);
    /// for the simulator they are the simulated sensors.
    #[arg(skip)]
    #[serde(default)]
    pub sensors: Vec<SensorConfig>,
}

/// Where temperatures come from: the probes' backends, shared with the relay agent's `--probe`.
pub use hearth_probes::open::Backend as Hardware;

/// How this agent names the probe options, for the errors that say what to change.
pub const FLAGS: Flags =
    Flags { agent: "hearth-sensor-agent", backend: "--hardware", prefix: "--" };

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
    /// Calibration: added to every reading that passes the plausibility screen, °C (−10..10).
    #[serde(default)]
    pub offset_c: f64,
    /// False: the sensor is neither read nor reported.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Simulator only: how the sensor's temperature evolves, e.g.
    /// `sim = { profile = "cyclic", period_s = 86400, min_c = -2, max_c = 8 }`. Default: in the
    /// simulated room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimProfile>,
}

fn enabled_by_default() -> bool {
    true
}

impl SensorConfig {
    /// A sensor with just an id: enabled, no alias, no offset, in the simulated room.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), alias: None, offset_c: 0.0, enabled: true, sim: None }
    }
}

/// The simulator's sensor when none are configured.
pub const DEFAULT_SIM_SENSOR_ID: &str = "28-00000000a001";
/// The alias of [`DEFAULT_SIM_SENSOR_ID`].
pub const DEFAULT_SIM_SENSOR_ALIAS: &str = "living room";

impl Config {
    /// What the engine may change, by this configuration.
    pub(crate) fn remote_limits(&self) -> crate::manage::Limits {
        crate::manage::Limits {
            allowed: self.remote_settings,
            min_interval_s: self.remote_min_interval_s,
            max_interval_s: self.remote_max_interval_s,
            min_resolution_bits: self.remote_min_resolution_bits,
            max_resolution_bits: self.remote_max_resolution_bits,
            max_offset_c: self.remote_max_offset_c,
        }
    }

    /// Check the values clap and serde cannot check on their own.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.remote_min_interval_s > 0.0
            && self.remote_min_interval_s <= self.remote_max_interval_s
            && self.remote_max_interval_s <= 3600.0)
        {
            anyhow::bail!(
                "remote_min_interval_s and remote_max_interval_s must satisfy 0 < min <= max <= \
                 3600, got {} and {}",
                self.remote_min_interval_s,
                self.remote_max_interval_s
            );
        }
        let bits = hearth_proto::manage::RESOLUTION_BITS;
        if !(bits.contains(&self.remote_min_resolution_bits)
            && bits.contains(&self.remote_max_resolution_bits)
            && self.remote_min_resolution_bits <= self.remote_max_resolution_bits)
        {
            anyhow::bail!(
                "remote_min_resolution_bits and remote_max_resolution_bits must satisfy {} <= \
                 min <= max <= {}, got {} and {}",
                bits.start(),
                bits.end(),
                self.remote_min_resolution_bits,
                self.remote_max_resolution_bits
            );
        }
        let max_offset = hearth_proto::manage::MAX_AGENT_OFFSET_C;
        if !(0.0..=max_offset).contains(&self.remote_max_offset_c) {
            anyhow::bail!(
                "remote_max_offset_c must be 0 to {max_offset} °C, got {}",
                self.remote_max_offset_c
            );
        }
        if !(self.interval_s > 0.0 && self.interval_s <= 3600.0) {
            anyhow::bail!(
                "interval_s must be more than 0 and at most 3600, got {}",
                self.interval_s
            );
        }
        if self.queue_max_bytes < crate::queue::MIN_MAX_BYTES {
            anyhow::bail!(
                "queue_max_bytes must be at least {}, got {}",
                crate::queue::MIN_MAX_BYTES,
                self.queue_max_bytes
            );
        }
        if !(1..=hearth_proto::sensors::MAX_BACKLOG_UPDATES).contains(&self.queue_replay_batch) {
            anyhow::bail!(
                "queue_replay_batch must be between 1 and {}, got {}",
                hearth_proto::sensors::MAX_BACKLOG_UPDATES,
                self.queue_replay_batch
            );
        }
        if !(self.screen_max_rate_c_per_min > 0.0 && self.screen_max_rate_c_per_min.is_finite()) {
            anyhow::bail!(
                "screen_max_rate_c_per_min must be a positive number, got {}",
                self.screen_max_rate_c_per_min
            );
        }
        if self.screen_step_rejections > 1000 {
            anyhow::bail!(
                "screen_step_rejections must be at most 1000, got {}",
                self.screen_step_rejections
            );
        }
        self.probe_options().check(&FLAGS)?;
        if !(self.sim_time_scale > 0.0 && self.sim_time_scale.is_finite()) {
            anyhow::bail!("sim_time_scale must be a positive number, got {}", self.sim_time_scale);
        }
        if let Some(ids) = &self.sim_heated_by {
            if ids.is_empty() {
                anyhow::bail!(
                    "sim_heated_by must name at least one output (leave it out to heat the \
                     simulated room by any heat output)"
                );
            }
            // The relay agent's own rule: a name it could never have is a typo, said now
            // rather than left as a room that never warms.
            if let Some(bad) = ids.iter().find(|id| !valid_output_id(id)) {
                anyhow::bail!("sim_heated_by: output id {bad:?} is invalid: use {OUTPUT_ID_RULE}");
            }
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
            // A real calibration is a fraction of a degree (DS18B20: ±0.5 °C); more is a typo.
            if !(s.offset_c.is_finite() && s.offset_c.abs() <= 10.0) {
                anyhow::bail!(
                    "offset_c of sensor {:?} must be between -10 and 10 °C, got {}",
                    s.id,
                    s.offset_c
                );
            }
            if let Some(profile) = &s.sim
                && let Err(e) = profile.validate()
            {
                anyhow::bail!("sim profile of sensor {:?}: {e}", s.id);
            }
        }
        Ok(())
    }

    /// The world file of the simulated relays.
    pub fn sim_world_path(&self) -> PathBuf {
        self.sim_world.clone().unwrap_or_else(hearth_common::simworld::default_path)
    }

    /// Which outputs of the world file heat the simulated room.
    pub fn sim_heated_by(&self) -> HeatedBy {
        self.sim_heated_by.clone().map_or(HeatedBy::AnyHeat, HeatedBy::All)
    }

    /// The simulated sensors: the configured ones, else one default sensor.
    pub fn sim_sensors(&self) -> Vec<SensorConfig> {
        if self.sensors.is_empty() {
            vec![SensorConfig {
                alias: Some(DEFAULT_SIM_SENSOR_ALIAS.to_owned()),
                ..SensorConfig::new(DEFAULT_SIM_SENSOR_ID)
            }]
        } else {
            self.sensors.clone()
        }
    }

    /// The sensors with settings for this backend: the simulated ones, or the configured ones.
    pub fn named_sensors(&self) -> Vec<SensorConfig> {
        match self.hardware {
            Hardware::Simulated => self.sim_sensors(),
            Hardware::W1 | Hardware::BitbangRppal | Hardware::BitbangCdev => self.sensors.clone(),
        }
    }

    /// What the probes are opened from: the backend and its options, the named sensors'
    /// settings (the simulated ones, for the simulator, in the room or on their profile).
    pub fn probe_options(&self) -> ProbeOptions {
        let named = self.named_sensors();
        ProbeOptions {
            backend: self.hardware,
            w1_dir: self.w1_dir.clone(),
            gpio_pin: Some(self.gpio_pin),
            gpio_chip: self.gpio_chip.clone(),
            sim: SimOptions {
                world: self.sim_world_path(),
                start_c: self.sim_start_c,
                outside_c: self.sim_outside_c,
                time_scale: self.sim_time_scale,
                heated_by: self.sim_heated_by(),
                faults: self.sim_faults.clone(),
                seed: Some(self.sim_seed),
                sensors: named
                    .iter()
                    .filter(|s| s.enabled)
                    .map(|s| SimSensor {
                        id: s.id.clone(),
                        profile: s.sim.clone().unwrap_or_default(),
                    })
                    .collect(),
            },
            sensors: named
                .iter()
                .map(|s| SensorSetting {
                    id: s.id.clone(),
                    offset_c: s.offset_c,
                    enabled: s.enabled,
                })
                .collect(),
            screen: self.screen_rules(),
        }
    }

    /// The plausibility screen's limits.
    pub fn screen_rules(&self) -> ScreenRules {
        ScreenRules {
            max_rate_c_per_min: self.screen_max_rate_c_per_min,
            step_rejections: self.screen_step_rejections,
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
        assert_eq!(c.queue_dir, PathBuf::from("/var/lib/hearth-sensor-agent/queue"));
        assert_eq!((c.queue_max_bytes, c.queue_replay_batch), (32 * 1024 * 1024, 360));
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
        for bad in [["--queue-max-bytes", "1000"], ["--queue-replay-batch", "0"]] {
            let c: Config = load_from(["a", bad[0], bad[1]])?;
            assert!(c.validate().is_err(), "{bad:?} accepted");
        }
        let c: Config = load_from(["a", "--queue-replay-batch", "1001"])?;
        assert!(c.validate().is_err());
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

    #[test]
    fn sim_heated_by_from_flag_and_file() -> anyhow::Result<()> {
        let by = |ids: &[&str]| HeatedBy::All(ids.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(load_from::<Config, _, _>(["a"])?.sim_heated_by(), HeatedBy::AnyHeat);
        let c: Config = load_from(["a", "--sim-heated-by", "valve-1,boiler"])?;
        c.validate()?;
        assert_eq!(c.sim_heated_by(), by(&["valve-1", "boiler"]));

        let dir = tempfile::tempdir()?;
        let file = dir.path().join("s.toml");
        let f = file.to_string_lossy().into_owned();
        std::fs::write(&file, "sim_heated_by = [\"valve-2\", \"boiler\"]\n")?;
        let c: Config = load_from(["a", "--config", &f])?;
        c.validate()?;
        assert_eq!(c.sim_heated_by(), by(&["valve-2", "boiler"]));
        // The flag wins over the file.
        let c: Config = load_from(["a", "--config", &f, "--sim-heated-by", "valve-1"])?;
        assert_eq!(c.sim_heated_by(), by(&["valve-1"]));

        // A bad output id stops the agent at start, naming it.
        for (bad, named) in [
            ("valve 1,boiler", "\"valve 1\""),
            ("valve-1,,boiler", "\"\""),
            (&*"x".repeat(33), "\"xxx"),
        ] {
            let c: Config = load_from(["a", "--sim-heated-by", bad])?;
            let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains("sim_heated_by: output id") && err.contains(named),
                "{bad}: {err}"
            );
        }
        std::fs::write(&file, "sim_heated_by = []\n")?;
        let err = load_from::<Config, _, _>(["a", "--config", &f])?.validate().err();
        assert!(err.is_some_and(|e| e.to_string().contains("at least one output")));
        std::fs::write(&file, "sim_heated_by = \"boiler\"\n")?;
        assert!(load_from::<Config, _, _>(["a", "--config", &f]).is_err(), "a string, not a list");
        Ok(())
    }

    #[test]
    fn hardware_backends_and_per_sensor_settings() -> anyhow::Result<()> {
        let c: Config = load_from(["a"])?;
        assert_eq!(
            (c.gpio_pin, c.gpio_chip.as_path()),
            (4, std::path::Path::new("/dev/gpiochip0"))
        );
        assert_eq!(c.screen_rules(), ScreenRules::default());
        assert_eq!((c.sim_faults.as_ref(), c.sim_seed), (None, 1));
        for (name, hw) in [
            ("w1", Hardware::W1),
            ("bitbang-rppal", Hardware::BitbangRppal),
            ("bitbang-cdev", Hardware::BitbangCdev),
            ("simulated", Hardware::Simulated),
        ] {
            let c: Config = load_from(["a", "--hardware", name])?;
            assert_eq!(c.hardware, hw);
            // The file spells them the same way.
            assert_eq!(serde_json::to_value(hw)?, serde_json::json!(name));
        }
        let c: Config = load_from(["a", "--hardware", "bitbang-rppal", "--gpio-pin", "300"])?;
        assert!(c.validate().is_err(), "BCM pin 300 accepted");
        for bad in [["--screen-max-rate-c-per-min", "0"], ["--screen-step-rejections", "5000"]] {
            let c: Config = load_from(["a", bad[0], bad[1]])?;
            assert!(c.validate().is_err(), "{bad:?} accepted");
        }

        let dir = tempfile::tempdir()?;
        let file = dir.path().join("s.toml");
        let f = file.to_string_lossy().into_owned();
        std::fs::write(
            &file,
            "hardware = \"bitbang-cdev\"\ngpio_pin = 17\n\
             [[sensors]]\nid = \"28-0316A2797BFF\"\noffset_c = -0.25\n\
             [[sensors]]\nid = \"28-2\"\nenabled = false\n\
             [[sensors]]\nid = \"28-3\"\n\
             sim = { profile = \"cyclic\", period_s = 86400, min_c = -2, max_c = 8 }\n",
        )?;
        let c: Config = load_from(["a", "--config", &f])?;
        c.validate()?;
        assert_eq!((c.hardware, c.gpio_pin), (Hardware::BitbangCdev, 17));
        assert_eq!((c.sensors[0].offset_c, c.sensors[0].enabled), (-0.25, true));
        assert!(!c.sensors[1].enabled);
        assert_eq!(
            c.sensors[2].sim,
            Some(SimProfile::Cyclic { period_s: 86400.0, min_c: -2.0, max_c: 8.0 })
        );
        assert_eq!(c.named_sensors(), c.sensors);

        for bad in [
            "[[sensors]]\nid = \"a\"\noffset_c = 15\n",
            "[[sensors]]\nid = \"a\"\nsim = { profile = \"cyclic\", period_s = 0, min_c = 0, max_c = 1 }\n",
        ] {
            std::fs::write(&file, bad)?;
            let c: Config = load_from(["a", "--config", &f])?;
            assert!(c.validate().is_err(), "accepted: {bad}");
        }
        for bad in [
            "[[sensors]]\nid = \"a\"\nsim = { profile = \"room\", speed = 1 }\n",
            "[[sensors]]\nid = \"a\"\nsim = { profile = \"sawtooth\" }\n",
            "hardware = \"gpio\"\n",
        ] {
            std::fs::write(&file, bad)?;
            assert!(load_from::<Config, _, _>(["a", "--config", &f]).is_err(), "parsed: {bad}");
        }
        Ok(())
    }
}
