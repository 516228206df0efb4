//! The relay agent's configuration: flags > `HEARTH_RELAY_*` env vars > TOML file > defaults
//! (layered by [`hearth_common::config::load`]).
//!
//! Field names are the clap ids and the serde names at once (plain snake_case, no renames), which
//! is what the layering needs: a key in the file is the long flag with `_` for `-`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use hearth_common::auth::Secret;
use hearth_probes::open::{Flags, ProbeOptions, SimOptions};
use hearth_probes::sim::{HeatedBy, SimProfile, SimSensor};
use hearth_proto::relays::{OUTPUT_ID_RULE, RelayFunction, RelayState, valid_output_id};
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
    /// `hearth-engine device-key --role relay <host-id>`.
    #[arg(long, env = "HEARTH_RELAY_DEVICE_KEY", value_name = "KEY", hide_env_values = true)]
    pub device_key: Option<Secret>,

    /// Address and port the REST API listens on.
    #[arg(long, env = "HEARTH_RELAY_LISTEN", value_name = "ADDR", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,

    /// The URL the engine should use to reach this agent. Default: the local address the OS
    /// would use to reach the engine, with the listening port.
    #[arg(long, env = "HEARTH_RELAY_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,

    /// The relay hardware backend (required, no default): `rppal` (Raspberry Pi GPIO, pins are
    /// BCM numbers), `gpio-cdev` (any Linux board, the GPIO character device `--gpio-chip`; pins
    /// are line offsets) or `simulated` (switches nothing: demos and tests; the engine and the
    /// dashboard show it). Each output's `pin` and `active_low` come from `[[outputs]]`.
    #[arg(long, env = "HEARTH_RELAY_HARDWARE", value_enum)]
    pub hardware: Option<Hardware>,

    /// The GPIO character device for `--hardware gpio-cdev` (`gpiodetect` lists them).
    #[arg(
        long,
        env = "HEARTH_RELAY_GPIO_CHIP",
        value_name = "DEVICE",
        default_value = "/dev/gpiochip0"
    )]
    pub gpio_chip: PathBuf,

    /// The world file shared with the simulated sensor agent (simulated hardware only).
    /// Default: `hearth-sim-world.json` in the temporary directory.
    #[arg(long, env = "HEARTH_RELAY_SIM_WORLD", value_name = "FILE")]
    pub sim_world: Option<PathBuf>,

    /// Where the agent keeps what must survive a restart: the engine's fallback program
    /// (`fallback.json`). The packaged configuration sets `/var/lib/hearth-relay-agent` (the
    /// unit's `StateDirectory=`). Absent: the program is held in memory only, so an agent
    /// restarted without the engine has none until the engine is back (tests, demos, several
    /// agents on one machine never share a file by accident).
    #[arg(long, env = "HEARTH_RELAY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A temperature probe on this host the fallback program can read when the engine is
    /// lost, with the sensor agent's backends: `w1` (the kernel's 1-Wire driver,
    /// `--probe-w1-dir`), `bitbang-rppal` or `bitbang-cdev` (1-Wire bit-banged on
    /// `--probe-gpio-pin`, of `--probe-gpio-chip` for cdev) or `simulated` (the simulated room
    /// of the world file). Absent: none; a frost program then runs its blind duty.
    #[arg(long, env = "HEARTH_RELAY_PROBE", value_enum)]
    pub probe: Option<ProbeHardware>,

    /// How often the fallback program checks the engine's silence and, while it runs, reads
    /// the probe and sets the outputs, seconds (0.1 to 10).
    #[arg(
        long,
        env = "HEARTH_RELAY_FALLBACK_TICK_S",
        value_name = "SECONDS",
        default_value_t = 1.0
    )]
    pub fallback_tick_s: f64,

    /// The kernel's 1-Wire devices, for `--probe w1`.
    #[arg(
        long,
        env = "HEARTH_RELAY_PROBE_W1_DIR",
        value_name = "DIR",
        default_value = "/sys/bus/w1/devices"
    )]
    pub probe_w1_dir: PathBuf,

    /// The simulated probe's id, for `--probe simulated`.
    #[arg(
        long,
        env = "HEARTH_RELAY_PROBE_SIM_ID",
        value_name = "ID",
        default_value = "28-00000000b001"
    )]
    pub probe_sim_id: String,

    /// The GPIO the probe's 1-Wire data line is on, for `--probe bitbang-rppal` (its BCM
    /// number) or `--probe bitbang-cdev` (the line offset on `--probe-gpio-chip`; the same on a
    /// Pi). No default: it must not be a relay's pin.
    #[arg(long, env = "HEARTH_RELAY_PROBE_GPIO_PIN", value_name = "N")]
    pub probe_gpio_pin: Option<u32>,

    /// The GPIO character device of `--probe bitbang-cdev`. Default: `--gpio-chip`.
    #[arg(long, env = "HEARTH_RELAY_PROBE_GPIO_CHIP", value_name = "DEVICE")]
    pub probe_gpio_chip: Option<PathBuf>,

    /// Simulated room of `--probe simulated`: temperature at start, °C.
    #[arg(long, env = "HEARTH_RELAY_SIM_START_C", value_name = "CELSIUS", default_value_t = 17.0)]
    pub sim_start_c: f64,

    /// Simulated room of `--probe simulated`: outside temperature, °C.
    #[arg(long, env = "HEARTH_RELAY_SIM_OUTSIDE_C", value_name = "CELSIUS", default_value_t = 5.0)]
    pub sim_outside_c: f64,

    /// Simulated room of `--probe simulated`: simulated seconds per real second.
    #[arg(long, env = "HEARTH_RELAY_SIM_TIME_SCALE", value_name = "FACTOR", default_value_t = 1.0)]
    pub sim_time_scale: f64,

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

    /// Whether the engine may change this agent's settings (the outputs' protection times) at
    /// all. False: every remote value is refused (and the refusal shown by the engine).
    #[arg(long, env = "HEARTH_RELAY_REMOTE_SETTINGS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub remote_settings: bool,

    /// The longest minimum on or off time the engine may set, seconds: a local limit the
    /// engine cannot lift. The engine may only lengthen an output's configured minimum times,
    /// up to this.
    #[arg(
        long,
        env = "HEARTH_RELAY_REMOTE_MAX_PROTECTION_S",
        value_name = "SECONDS",
        default_value_t = 1800
    )]
    pub remote_max_protection_s: u32,

    /// The shortest maximum on time the engine may set, seconds: a local limit the engine
    /// cannot lower. The engine may only shorten an output's configured maximum on time (or
    /// set one where none is configured), down to this.
    #[arg(
        long,
        env = "HEARTH_RELAY_REMOTE_MIN_MAX_ON_S",
        value_name = "SECONDS",
        default_value_t = 1800
    )]
    pub remote_min_max_on_s: u32,

    /// The outputs (file only, `[[outputs]]` tables). Empty means the default set: `heat`,
    /// `cool` and `fan`.
    #[arg(skip)]
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,

    /// Interlock groups (file only, `[[interlocks]]` tables): at most one output of a group is
    /// on at any instant. Absent: every output hinted `heat` is interlocked with every output
    /// hinted `cool`. An empty list (`interlocks = []`) means no interlocks.
    #[arg(skip)]
    #[serde(default)]
    pub interlocks: Option<Vec<InterlockConfig>>,

    /// What to do (default: run the agent).
    #[command(subcommand)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
}

/// The relay agent's subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Drive every configured output to its safe state and exit (no engine, key or network
    /// needed). For systemd's `ExecStopPost=`, which runs after the agent ended in any way
    /// (SIGKILL, a crash, the watchdog): a GPIO line can keep the last level a dead agent
    /// wrote. Not while the agent runs: it owns the lines then.
    SafeState,
}

// Debug by hand so that printing a Config can never leak the device key.
/// The relay hardware backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hardware {
    /// Raspberry Pi GPIO through rppal (`/dev/gpiomem`); `pin` is the BCM GPIO number.
    Rppal,
    /// The Linux GPIO character device (any board); `pin` is the line offset on the chip.
    GpioCdev,
    /// In-memory relays that publish their state to the simulated world file.
    Simulated,
}

impl Hardware {
    /// True for the backends that drive real GPIO lines (and so need each output's `pin`).
    pub fn uses_pins(self) -> bool {
        matches!(self, Self::Rppal | Self::GpioCdev)
    }

    /// The name used by the flag and the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rppal => "rppal",
            Self::GpioCdev => "gpio-cdev",
            Self::Simulated => "simulated",
        }
    }
}

/// The probe backends the fallback program can read (`--probe`): the sensor agent's.
pub use hearth_probes::open::Backend as ProbeHardware;

/// How this agent names its probe options, for the errors that say what to change.
pub const PROBE_FLAGS: Flags =
    Flags { agent: "hearth-relay-agent", backend: "--probe", prefix: "--probe-" };

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
    /// The GPIO pin (BCM number for `rppal`, line offset for `gpio-cdev`); required by those
    /// backends, ignored by the simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<u32>,
    /// True when the relay board energises the relay on a LOW pin (most opto-isolated boards).
    #[serde(default)]
    pub active_low: bool,
    /// Minimum seconds on before an `off` is carried out. Default: 180 for `cool` (compressor),
    /// 120 for `heat`, 0 otherwise (a `valve` opens and closes freely).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_on_s: Option<u32>,
    /// Minimum seconds off before an `on` is accepted, counted from the agent's start too.
    /// Default: 300 for `cool` (compressor), 120 for `heat`, 0 otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_off_s: Option<u32>,
    /// Maximum continuous seconds on, whatever the engine says; 0 = no limit. Default: 14400
    /// (4 h) for `heat` and `cool`, no limit otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_on_s: Option<u32>,
}

/// One interlock group (`[[interlocks]]` in the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterlockConfig {
    /// A name for logs and errors, e.g. `heat-cool`. Default: the output ids joined by `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The output ids of the group (at least two); at most one of them is on at any instant.
    pub outputs: Vec<String>,
}

/// An interlock group, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interlock {
    /// Its name, for errors.
    pub name: String,
    /// Its outputs.
    pub outputs: Vec<String>,
}

fn default_safe_state() -> RelayState {
    RelayState::Off
}

/// One hour in seconds, for the defaults below.
const HOUR_S: u32 = 3600;

impl OutputConfig {
    /// An output with default protection and no pin (simulated hardware).
    pub fn new(id: &str, name: &str, hint: RelayFunction) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            function_hint: Some(hint),
            safe_state: RelayState::Off,
            pin: None,
            active_low: false,
            min_on_s: None,
            min_off_s: None,
            max_on_s: None,
        }
    }

    /// The minimum on time, defaulted by function: compressors need a few minutes of running
    /// to return their oil; a furnace's heat exchanger should reach temperature.
    pub fn min_on_s(&self) -> u32 {
        self.min_on_s.unwrap_or(match self.function_hint {
            Some(RelayFunction::Cool) => 180,
            Some(RelayFunction::Heat) => 120,
            _ => 0,
        })
    }

    /// The minimum off time, defaulted by function: a compressor restarted against high head
    /// pressure stalls and overheats, hence the 5 minutes.
    pub fn min_off_s(&self) -> u32 {
        self.min_off_s.unwrap_or(match self.function_hint {
            Some(RelayFunction::Cool) => 300,
            Some(RelayFunction::Heat) => 120,
            _ => 0,
        })
    }

    /// The maximum continuous on time, if limited. Four hours for heating and cooling: long
    /// enough for the coldest night (the engine renews, the limit forces a short break), short
    /// enough that a runaway controller cannot run the equipment for days.
    pub fn max_on_s(&self) -> Option<u32> {
        match self.max_on_s {
            Some(0) => None,
            Some(s) => Some(s),
            None => match self.function_hint {
                Some(RelayFunction::Heat | RelayFunction::Cool) => Some(4 * HOUR_S),
                _ => None,
            },
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

impl Config {
    /// The configured hardware backend. There is no default: a relay agent installed for real
    /// that quietly ran the simulator would show "Furnace: on" and heat nothing, frost
    /// protection included. The error names the fix.
    pub fn hardware(&self) -> anyhow::Result<Hardware> {
        self.hardware.ok_or_else(|| {
            let file = self.config.as_ref().map_or_else(
                || "the configuration file (--config; the service's is /etc/hearth/relay-agent.toml)"
                    .to_owned(),
                |path| path.display().to_string(),
            );
            anyhow::anyhow!(
                "no relay hardware configured: set `hardware = \"rppal\"` (Raspberry Pi GPIO) or \
                 `hardware = \"gpio-cdev\"` (any board's /dev/gpiochipN), with each output's `pin`, \
                 in {file}, or pass --hardware (HEARTH_RELAY_HARDWARE). \
                 `--hardware simulated` switches nothing: only for demos and tests"
            )
        })
    }

    /// True when the configured backend drives GPIO lines (and so needs each output's `pin`).
    fn uses_pins(&self) -> bool {
        self.hardware.is_some_and(Hardware::uses_pins)
    }

    /// The configured backend's name, for messages.
    fn hardware_name(&self) -> &'static str {
        self.hardware.map_or("(none)", Hardware::name)
    }

    /// The configured outputs, or the default set when none are configured; validated (ids
    /// well-formed and unique, names not empty, protection times consistent, pins present and
    /// unique when the backend drives GPIO).
    pub fn effective_outputs(&self) -> anyhow::Result<Vec<OutputConfig>> {
        if self.outputs.is_empty() {
            if self.uses_pins() {
                anyhow::bail!(
                    "--hardware {} needs the outputs and their pins: add [[outputs]] tables \
                     with `pin` to the configuration file (see the example relay-agent.toml)",
                    self.hardware_name()
                );
            }
            return Ok(default_outputs());
        }
        let mut seen = HashSet::new();
        let mut pins = HashSet::new();
        for (i, output) in self.outputs.iter().enumerate() {
            if !valid_output_id(&output.id) {
                anyhow::bail!("outputs[{i}]: id {:?} is invalid: use {OUTPUT_ID_RULE}", output.id);
            }
            if !seen.insert(output.id.as_str()) {
                anyhow::bail!("outputs[{i}]: duplicate output id {:?}", output.id);
            }
            if output.name.trim().is_empty() {
                anyhow::bail!("outputs[{i}] ({}): name must not be empty", output.id);
            }
            for (key, value) in [("min_on_s", output.min_on_s()), ("min_off_s", output.min_off_s())]
            {
                if value > 4 * HOUR_S {
                    anyhow::bail!(
                        "outputs[{i}] ({}): {key} = {value} is more than 4 hours",
                        output.id
                    );
                }
            }
            if let Some(max) = output.max_on_s()
                && max <= output.min_on_s()
            {
                anyhow::bail!(
                    "outputs[{i}] ({}): max_on_s ({max}) must be more than min_on_s ({})",
                    output.id,
                    output.min_on_s()
                );
            }
            if self.uses_pins() {
                let Some(pin) = output.pin else {
                    anyhow::bail!(
                        "outputs[{i}] ({}): `pin` is required with --hardware {}",
                        output.id,
                        self.hardware_name()
                    );
                };
                if self.hardware == Some(Hardware::Rppal) && pin > 53 {
                    anyhow::bail!(
                        "outputs[{i}] ({}): pin {pin} is not a Raspberry Pi BCM GPIO (0-53)",
                        output.id
                    );
                }
                if !pins.insert(pin) {
                    anyhow::bail!("outputs[{i}] ({}): pin {pin} is used twice", output.id);
                }
            }
        }
        Ok(self.outputs.clone())
    }

    /// The interlock groups for `outputs` (validated ones from [`Self::effective_outputs`]):
    /// the configured ones, checked, or by default each `heat` output paired with each `cool`
    /// output.
    pub fn effective_interlocks(&self, outputs: &[OutputConfig]) -> anyhow::Result<Vec<Interlock>> {
        let Some(groups) = &self.interlocks else {
            let with = |f| outputs.iter().filter(move |o| o.function_hint == Some(f));
            return Ok(with(RelayFunction::Heat)
                .flat_map(|h| {
                    with(RelayFunction::Cool).map(move |c| Interlock {
                        name: format!("{}-{}", h.id, c.id),
                        outputs: vec![h.id.clone(), c.id.clone()],
                    })
                })
                .collect());
        };
        let mut result = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            let name = group.name.clone().unwrap_or_else(|| group.outputs.join("-"));
            if group.outputs.len() < 2 {
                anyhow::bail!("interlocks[{i}] ({name}): a group needs at least two outputs");
            }
            let mut members = HashSet::new();
            for id in &group.outputs {
                let Some(output) = outputs.iter().find(|o| o.id == *id) else {
                    anyhow::bail!("interlocks[{i}] ({name}): no output {id:?}");
                };
                if !members.insert(id.as_str()) {
                    anyhow::bail!("interlocks[{i}] ({name}): output {id:?} is listed twice");
                }
                // Two interlocked outputs that are both "safe when on" would be switched on
                // together at start, at stop and when leases run out.
                if output.safe_state.is_on() {
                    anyhow::bail!(
                        "interlocks[{i}] ({name}): output {id:?} has safe_state = \"on\"; \
                         interlocked outputs must be safe when off"
                    );
                }
            }
            result.push(Interlock { name, outputs: group.outputs.clone() });
        }
        Ok(result)
    }

    /// What the configuration lets the engine change (`remote_*`).
    pub fn remote_limits(&self) -> crate::manage::Limits {
        crate::manage::Limits {
            allowed: self.remote_settings,
            max_protection_s: self.remote_max_protection_s,
            min_max_on_s: self.remote_min_max_on_s,
        }
    }

    /// What the fallback program's probe is opened from (`--probe`), or None. A bit-banged
    /// probe on the GPIO of one of `outputs` (validated ones) is refused: bit-banging a relay's
    /// line would chatter its relay.
    pub fn probe_options(&self, outputs: &[OutputConfig]) -> anyhow::Result<Option<ProbeOptions>> {
        let Some(backend) = self.probe else { return Ok(None) };
        let gpio_chip = self.probe_gpio_chip.clone().unwrap_or_else(|| self.gpio_chip.clone());
        if let Some(pin) = self.probe_gpio_pin.filter(|_| backend.bit_banged() && self.uses_pins())
        {
            // Two character devices are two sets of lines; every other pairing numbers the
            // same header (rppal's BCM numbers are gpiochip0's offsets on a Pi).
            let other_chip = self.hardware == Some(Hardware::GpioCdev)
                && backend == ProbeHardware::BitbangCdev
                && gpio_chip != self.gpio_chip;
            if let Some(output) =
                outputs.iter().find(|o| o.pin == Some(pin)).filter(|_| !other_chip)
            {
                anyhow::bail!(
                    "--probe-gpio-pin {pin} is the pin of output {:?}: the probe's 1-Wire line \
                     needs a GPIO of its own",
                    output.id
                );
            }
        }
        Ok(Some(ProbeOptions {
            backend,
            w1_dir: self.probe_w1_dir.clone(),
            gpio_pin: self.probe_gpio_pin,
            gpio_chip,
            sim: SimOptions {
                world: self.sim_world_path(),
                start_c: self.sim_start_c,
                outside_c: self.sim_outside_c,
                time_scale: self.sim_time_scale,
                heated_by: HeatedBy::AnyHeat,
                faults: None,
                seed: None,
                sensors: vec![SimSensor {
                    id: self.probe_sim_id.clone(),
                    profile: SimProfile::default(),
                }],
            },
            sensors: Vec::new(),
            screen: hearth_probes::screen::ScreenRules::default(),
        }))
    }

    /// The simulated world file, defaulted.
    pub fn sim_world_path(&self) -> PathBuf {
        self.sim_world.clone().unwrap_or_else(hearth_common::simworld::default_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;
    use std::path::Path;

    fn load(args: &[&str]) -> anyhow::Result<Config> {
        hearth_common::config::load_from(
            std::iter::once("hearth-relay-agent").chain(args.iter().copied()),
        )
    }

    #[test]
    fn defaults() -> anyhow::Result<()> {
        let c = load(&[])?;
        assert_eq!(c.listen, "0.0.0.0:8081".parse()?);
        // No hardware by default: the agent refuses to start, and says how to choose one.
        assert_eq!(c.hardware, None);
        let err = c.hardware().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("hardware = \"rppal\"") && err.contains("--hardware"), "{err}");
        assert_eq!(load(&["--hardware", "simulated"])?.hardware()?, Hardware::Simulated);
        assert_eq!(c.command, None);
        assert_eq!(load(&["safe-state"])?.command, Some(Command::SafeState));
        assert_eq!(c.reregister_after_s, 60);
        // The engine may tighten the protection times by default, within these local limits.
        let limits = c.remote_limits();
        assert_eq!(
            (limits.allowed, limits.max_protection_s, limits.min_max_on_s),
            (true, 1800, 1800)
        );
        let locked = load(&["--remote-settings", "false", "--remote-max-protection-s", "600"])?;
        assert_eq!(
            (locked.remote_limits().allowed, locked.remote_limits().max_protection_s),
            (false, 600)
        );
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

    fn from_file(text: &str, args: &[&str]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("relay.toml");
        std::fs::write(&file, text)?;
        let f = file.to_string_lossy().to_string();
        let mut all = vec!["--config", f.as_str()];
        all.extend_from_slice(args);
        load(&all)
    }

    fn interlock_error(text: &str) -> String {
        let result = from_file(text, &[]).and_then(|c| {
            let outputs = c.effective_outputs()?;
            c.effective_interlocks(&outputs)
        });
        result.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn interlocks_default_and_validation() -> anyhow::Result<()> {
        // Default: heat with cool, fan free.
        let c = load(&[])?;
        let groups = c.effective_interlocks(&c.effective_outputs()?)?;
        assert_eq!(
            groups,
            [Interlock { name: "heat-cool".into(), outputs: vec!["heat".into(), "cool".into()] }]
        );
        // Explicitly none.
        let c = from_file("interlocks = []\n", &[])?;
        assert!(c.effective_interlocks(&c.effective_outputs()?)?.is_empty());
        let c = from_file(
            "[[interlocks]]\nname = \"hvac\"\noutputs = [\"heat\", \"cool\", \"fan\"]\n",
            &[],
        )?;
        assert_eq!(c.effective_interlocks(&c.effective_outputs()?)?[0].outputs.len(), 3);

        let err = interlock_error("[[interlocks]]\noutputs = [\"heat\"]\n");
        assert!(err.contains("at least two outputs"), "{err}");
        let err = interlock_error("[[interlocks]]\noutputs = [\"heat\", \"boiler\"]\n");
        assert!(err.contains("no output \"boiler\""), "{err}");
        let err = interlock_error("[[interlocks]]\noutputs = [\"heat\", \"heat\"]\n");
        assert!(err.contains("listed twice"), "{err}");
        let err = interlock_error(
            "[[outputs]]\nid = \"a\"\nname = \"A\"\nsafe_state = \"on\"\n\
             [[outputs]]\nid = \"b\"\nname = \"B\"\n\
             [[interlocks]]\noutputs = [\"a\", \"b\"]\n",
        );
        assert!(err.contains("must be safe when off"), "{err}");
        let err = interlock_error("[[interlocks]]\noutputs = [\"heat\", \"cool\"]\nextra = 1\n");
        assert!(err.contains("unknown field"), "{err}");
        Ok(())
    }

    #[test]
    fn protection_defaults_and_validation() -> anyhow::Result<()> {
        let outputs = default_outputs();
        let times: Vec<_> =
            outputs.iter().map(|o| (o.min_on_s(), o.min_off_s(), o.max_on_s())).collect();
        assert_eq!(times, [(120, 120, Some(14_400)), (180, 300, Some(14_400)), (0, 0, None)]);
        let c = from_file(
            "[[outputs]]\nid = \"heat\"\nname = \"Furnace\"\nfunction_hint = \"heat\"\n\
             min_on_s = 30\nmin_off_s = 0\nmax_on_s = 0\n",
            &[],
        )?;
        let o = &c.effective_outputs()?[0];
        assert_eq!((o.min_on_s(), o.min_off_s(), o.max_on_s()), (30, 0, None));
        let bad = from_file(
            "[[outputs]]\nid = \"heat\"\nname = \"F\"\nmin_on_s = 600\nmax_on_s = 300\n",
            &[],
        )?;
        let err = bad.effective_outputs().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("max_on_s (300) must be more than min_on_s (600)"), "{err}");
        // A zone valve opens and closes freely: the engine's plant protects the boiler behind
        // it, and a valve held open by a minimum time would heat a satisfied zone.
        let c = from_file(
            "[[outputs]]\nid = \"valve-1\"\nname = \"Bedroom valve\"\nfunction_hint = \"valve\"\n",
            &[],
        )?;
        let o = &c.effective_outputs()?[0];
        assert_eq!(o.function_hint, Some(RelayFunction::Valve));
        assert_eq!((o.min_on_s(), o.min_off_s(), o.max_on_s()), (0, 0, None));
        Ok(())
    }

    #[test]
    fn gpio_backends_need_pins() -> anyhow::Result<()> {
        let err = load(&["--hardware", "rppal"])?.effective_outputs().err();
        assert!(err.is_some_and(|e| e.to_string().contains("add [[outputs]] tables with `pin`")));
        let two = "[[outputs]]\nid = \"heat\"\nname = \"F\"\npin = 17\nactive_low = true\n\
                   [[outputs]]\nid = \"cool\"\nname = \"AC\"\n";
        let err = from_file(two, &["--hardware", "gpio-cdev"])?.effective_outputs().err();
        assert!(err.is_some_and(|e| e.to_string().contains("`pin` is required")));
        let dup = two.replace("name = \"AC\"", "name = \"AC\"\npin = 17");
        let err = from_file(&dup, &["--hardware", "gpio-cdev"])?.effective_outputs().err();
        assert!(err.is_some_and(|e| e.to_string().contains("pin 17 is used twice")));
        let high = two.replace("name = \"AC\"", "name = \"AC\"\npin = 60");
        let err = from_file(&high, &["--hardware", "rppal"])?.effective_outputs().err();
        assert!(err.is_some_and(|e| e.to_string().contains("not a Raspberry Pi BCM GPIO")));
        // The simulator ignores pins, and the file's spelling of the backend works.
        let c = from_file(&format!("hardware = \"gpio-cdev\"\n{}", high), &[])?;
        assert_eq!(c.hardware, Some(Hardware::GpioCdev));
        assert_eq!(c.effective_outputs()?[1].pin, Some(60));
        assert!(c.effective_outputs()?[0].active_low);
        Ok(())
    }

    #[test]
    fn probe_options_from_flags_and_file() -> anyhow::Result<()> {
        use hearth_probes::open::Backend;
        // No probe by default; the bit-banged ones take the sensor agent's names.
        assert!(load(&[])?.probe_options(&[])?.is_none());
        let c = load(&["--probe", "bitbang-cdev", "--probe-gpio-pin", "4"])?;
        let o = c.probe_options(&c.effective_outputs()?)?.context("no probe")?;
        assert_eq!((o.backend, o.gpio_pin), (Backend::BitbangCdev, Some(4)));
        // The chip defaults to the relays' own.
        assert_eq!(o.gpio_chip, PathBuf::from("/dev/gpiochip0"));
        let c = from_file(
            "probe = \"bitbang-cdev\"\nprobe_gpio_pin = 5\ngpio_chip = \"/dev/gpiochip4\"\n",
            &[],
        )?;
        let o = c.probe_options(&[])?.context("no probe")?;
        assert_eq!((o.gpio_pin, o.gpio_chip.as_path()), (Some(5), Path::new("/dev/gpiochip4")));
        let c =
            from_file("probe = \"bitbang-rppal\"\nprobe_gpio_chip = \"/dev/gpiochip1\"\n", &[])?;
        let o = c.probe_options(&[])?.context("no probe")?;
        assert_eq!(
            (o.backend, o.gpio_chip.as_path()),
            (Backend::BitbangRppal, Path::new("/dev/gpiochip1"))
        );

        // A probe on a relay's pin is refused, naming both; on another chip it is another line.
        let relays =
            "hardware = \"gpio-cdev\"\n[[outputs]]\nid = \"boiler\"\nname = \"B\"\npin = 17\n";
        let c = from_file(relays, &["--probe", "bitbang-cdev", "--probe-gpio-pin", "17"])?;
        let err = c.probe_options(&c.effective_outputs()?).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("--probe-gpio-pin 17 is the pin of output \"boiler\"")),
            "{err:?}"
        );
        let c = from_file(relays, &["--probe", "bitbang-rppal", "--probe-gpio-pin", "17"])?;
        assert!(c.probe_options(&c.effective_outputs()?).is_err());
        let other = ["--probe-gpio-chip", "/dev/gpiochip1"];
        let c = from_file(
            relays,
            &["--probe", "bitbang-cdev", "--probe-gpio-pin", "17", other[0], other[1]],
        )?;
        assert!(c.probe_options(&c.effective_outputs()?)?.is_some());
        // w1 and simulated keep their options.
        let c = load(&["--probe", "simulated", "--probe-sim-id", "28-9"])?;
        let o = c.probe_options(&[])?.context("no probe")?;
        assert_eq!(o.sim.sensors[0].id, "28-9");
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
