//! One way to open the probes, for both agents: the backend an agent's options choose (the
//! kernel's w1 driver, 1-Wire bit-banged on a GPIO line, or the simulated room) with its
//! options, opened inside the [`Screened`] layer.
//!
//! The options are plain data ([`ProbeOptions`]): each agent fills them from its own flags,
//! whose names differ (the sensor agent's `--hardware`, `--w1-dir`, `--gpio-pin`; the relay
//! agent's `--probe`, `--probe-w1-dir`, `--probe-gpio-pin`, beside its own relay `--hardware`
//! and `--gpio-chip`), so [`Flags`] says them and every start error names the flag to change.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::TemperatureSource;
use crate::screen::{ScreenRules, Screened, SensorSetting};
use crate::sim::{HeatedBy, RoomModel, SimSensor, SimSource};
use crate::w1::W1Source;

/// An opened probe: the backend inside the screen layer, which settings from the engine can
/// reconfigure while it runs ([`Screened::reconfigure`]).
pub type Opened = Screened<Box<dyn TemperatureSource>>;

/// Where temperatures come from. The flag values and the file's strings are the kebab-case
/// names (`w1`, `bitbang-rppal`, `bitbang-cdev`, `simulated`), the same in both agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The kernel 1-Wire driver's sysfs files (`dtoverlay=w1-gpio` on a Raspberry Pi).
    W1,
    /// 1-Wire bit-banged on a GPIO pin (its BCM number) through the Raspberry Pi's GPIO
    /// registers (rppal).
    BitbangRppal,
    /// 1-Wire bit-banged on a line of a GPIO character device (any Linux board).
    BitbangCdev,
    /// Simulated sensors in a simulated room, warmed by the simulated relays' heat outputs of
    /// the world file (demos and tests).
    Simulated,
}

impl Backend {
    /// The name the flag and the file use.
    pub fn name(self) -> &'static str {
        match self {
            Self::W1 => "w1",
            Self::BitbangRppal => "bitbang-rppal",
            Self::BitbangCdev => "bitbang-cdev",
            Self::Simulated => "simulated",
        }
    }

    /// True for the bit-banged backends, which need a GPIO line.
    pub fn bit_banged(self) -> bool {
        matches!(self, Self::BitbangRppal | Self::BitbangCdev)
    }
}

/// How an agent names the probe options, for the errors that say what to change.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// The agent's program name, e.g. `hearth-sensor-agent` (also the consumer the kernel
    /// shows for a requested GPIO line).
    pub agent: &'static str,
    /// The flag choosing the [`Backend`], e.g. `--hardware`.
    pub backend: &'static str,
    /// What the other options' flags start with: `--` for `--w1-dir`, `--gpio-pin` and
    /// `--gpio-chip`, or e.g. `--probe-`.
    pub prefix: &'static str,
}

impl Flags {
    /// The flag of one option, e.g. `option("gpio-pin")` is `--probe-gpio-pin`.
    pub fn option(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The flag choosing `backend`, e.g. `--probe w1`.
    pub fn choose(&self, backend: Backend) -> String {
        format!("{} {}", self.backend, backend.name())
    }
}

/// What a probe is opened from.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The backend.
    pub backend: Backend,
    /// The kernel's 1-Wire devices directory (w1).
    pub w1_dir: PathBuf,
    /// The GPIO the 1-Wire data line is on (bit-banged): the BCM number for rppal, the line
    /// offset on `gpio_chip` for the character device. None: not configured (an error for
    /// the bit-banged backends).
    pub gpio_pin: Option<u32>,
    /// The GPIO character device (bitbang-cdev).
    pub gpio_chip: PathBuf,
    /// The simulated room (simulated).
    pub sim: SimOptions,
    /// The configured sensors: disabled ones are not read, the others get their calibration;
    /// one configured and never seen is reported missing.
    pub sensors: Vec<SensorSetting>,
    /// The plausibility screen's limits.
    pub screen: ScreenRules,
}

/// The simulated room's options.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The world file the simulated relays write.
    pub world: PathBuf,
    /// Temperature at start, °C.
    pub start_c: f64,
    /// Outside temperature, °C.
    pub outside_c: f64,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Which outputs of the world file heat the room.
    pub heated_by: HeatedBy,
    /// A file of faults to inject, re-read when it changes.
    pub faults: Option<PathBuf>,
    /// The seed of the simulated CRC noise; None keeps the simulator's own.
    pub seed: Option<u64>,
    /// The simulated sensors.
    pub sensors: Vec<SimSensor>,
}

/// A GPIO line a bit-banged bus runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A Raspberry Pi GPIO by its BCM number, through the GPIO registers.
    Rppal {
        /// The BCM number.
        pin: u8,
    },
    /// A line of a GPIO character device.
    Cdev {
        /// The device, e.g. `/dev/gpiochip0`.
        chip: PathBuf,
        /// The line offset.
        line: u32,
    },
}

/// Where the bit-banged backends get their line: the board ([`Board`]) or, in tests, a
/// simulated bus (`onewire::simbus`, cargo feature `simbus`).
pub trait Wiring: Sync {
    /// The bit-banged bus on `line`, not reading the sensors in `skip` (lower-case ids).
    fn one_wire(
        &self,
        line: &Line,
        flags: &Flags,
        skip: Vec<String>,
    ) -> anyhow::Result<Box<dyn TemperatureSource>>;
}

/// This machine's GPIO (cargo feature `gpio`; without it the bit-banged backends fail at
/// start, saying so).
#[derive(Debug, Clone, Copy, Default)]
pub struct Board;

impl Wiring for Board {
    #[cfg(feature = "gpio")]
    fn one_wire(
        &self,
        line: &Line,
        flags: &Flags,
        skip: Vec<String>,
    ) -> anyhow::Result<Box<dyn TemperatureSource>> {
        use crate::onewire::gpio;
        Ok(match line {
            Line::Rppal { pin } => Box::new(gpio::open_rppal(*pin, flags)?.skipping(skip)),
            Line::Cdev { chip, line } => {
                Box::new(gpio::open_cdev(chip, *line, flags)?.skipping(skip))
            }
        })
    }

    #[cfg(not(feature = "gpio"))]
    fn one_wire(
        &self,
        _line: &Line,
        flags: &Flags,
        _skip: Vec<String>,
    ) -> anyhow::Result<Box<dyn TemperatureSource>> {
        anyhow::bail!(
            "this build of {} has no GPIO support (built without the `gpio` feature): use {} \
             or {}, or a default build",
            flags.agent,
            flags.choose(Backend::W1),
            flags.choose(Backend::Simulated)
        )
    }
}

impl ProbeOptions {
    /// Check what can be checked before opening anything: a bit-banged backend needs its
    /// GPIO, and rppal's is a BCM number. The error names the flag.
    pub fn check(&self, flags: &Flags) -> anyhow::Result<()> {
        if !self.backend.bit_banged() {
            return Ok(());
        }
        let Some(pin) = self.gpio_pin else {
            anyhow::bail!(
                "{} needs the GPIO its 1-Wire data line is on: set {}",
                flags.choose(self.backend),
                flags.option("gpio-pin")
            );
        };
        if self.backend == Backend::BitbangRppal && pin > 53 {
            anyhow::bail!(
                "{} {pin} is not a Raspberry Pi BCM GPIO number (0-53), as {} needs",
                flags.option("gpio-pin"),
                flags.choose(self.backend)
            );
        }
        Ok(())
    }

    /// The line of a bit-banged backend (after [`Self::check`]).
    fn line(&self, pin: u32) -> anyhow::Result<Line> {
        Ok(match self.backend {
            Backend::BitbangRppal => Line::Rppal {
                pin: u8::try_from(pin).with_context(|| format!("GPIO {pin} is no BCM number"))?,
            },
            _ => Line::Cdev { chip: self.gpio_chip.clone(), line: pin },
        })
    }

    /// Open the configured backend on this machine, inside the screen. Fails, naming the flag
    /// and the fix, when an option is wrong or the hardware is not there.
    pub fn open(&self, flags: &Flags) -> anyhow::Result<Opened> {
        self.open_wired(flags, &Board)
    }

    /// As [`Self::open`], the bit-banged backends on `wiring`'s lines.
    pub fn open_wired(&self, flags: &Flags, wiring: &dyn Wiring) -> anyhow::Result<Opened> {
        self.check(flags)?;
        let skip: Vec<String> =
            self.sensors.iter().filter(|s| !s.enabled).map(|s| s.id.to_ascii_lowercase()).collect();
        let backend: Box<dyn TemperatureSource> = match self.backend {
            Backend::W1 => Box::new(
                W1Source::open(&self.w1_dir)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{e}, point {} at it, or use {}",
                            flags.option("w1-dir"),
                            flags.choose(Backend::Simulated)
                        )
                    })?
                    .skipping(skip),
            ),
            Backend::BitbangRppal | Backend::BitbangCdev => {
                let pin = self.gpio_pin.unwrap_or_default();
                wiring.one_wire(&self.line(pin)?, flags, skip)?
            }
            Backend::Simulated => Box::new(self.sim.open()),
        };
        Ok(Screened::new(backend, self.screen.clone(), self.sensors.clone()))
    }
}

impl SimOptions {
    /// The simulated room with its sensors.
    fn open(&self) -> SimSource {
        let mut sim = SimSource::new(
            RoomModel::new(self.start_c, self.outside_c),
            self.sensors.clone(),
            self.world.clone(),
            self.time_scale,
        )
        .with_heated_by(self.heated_by.clone());
        if let Some(seed) = self.seed {
            sim = sim.with_seed(seed);
        }
        if let Some(faults) = &self.faults {
            sim = sim.with_faults_file(faults.clone());
        }
        tracing::info!(
            world = %self.world.display(),
            heated_by = %self.heated_by,
            "the simulated room is heated by the world file's outputs"
        );
        sim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onewire::rom_id;
    use crate::onewire::simbus::{Bus, OnLine, SlaveModel};

    const SENSOR: Flags =
        Flags { agent: "hearth-sensor-agent", backend: "--hardware", prefix: "--" };
    const RELAY: Flags =
        Flags { agent: "hearth-relay-agent", backend: "--probe", prefix: "--probe-" };

    fn options(backend: Backend) -> ProbeOptions {
        ProbeOptions {
            backend,
            w1_dir: PathBuf::from("/nonexistent/w1"),
            gpio_pin: None,
            gpio_chip: PathBuf::from("/nonexistent/gpiochip9"),
            sim: SimOptions {
                world: PathBuf::from("/nonexistent/world.json"),
                start_c: 17.0,
                outside_c: 5.0,
                time_scale: 1.0,
                heated_by: HeatedBy::AnyHeat,
                faults: None,
                seed: None,
                sensors: vec![SimSensor { id: "28-1".into(), profile: Default::default() }],
            },
            sensors: Vec::new(),
            screen: ScreenRules::default(),
        }
    }

    fn error(result: anyhow::Result<Opened>) -> String {
        result.err().map(|e| format!("{e:#}")).unwrap_or_default()
    }

    #[test]
    fn bad_options_name_the_agents_own_flag() {
        // A bit-banged backend without its GPIO.
        let err = error(options(Backend::BitbangCdev).open(&RELAY));
        assert!(
            err.contains("--probe bitbang-cdev needs") && err.contains("--probe-gpio-pin"),
            "{err}"
        );
        // A pin rppal cannot have.
        let rppal = ProbeOptions { gpio_pin: Some(60), ..options(Backend::BitbangRppal) };
        let err = error(rppal.open(&SENSOR));
        assert!(err.contains("--gpio-pin 60 is not a Raspberry Pi BCM GPIO"), "{err}");
        // No 1-Wire directory.
        let err = error(options(Backend::W1).open(&RELAY));
        assert!(
            err.contains("no 1-Wire devices directory at /nonexistent/w1")
                && err.contains("point --probe-w1-dir at it, or use --probe simulated"),
            "{err}"
        );
        // No chip at the path: the board's error, with this agent's flags.
        #[cfg(feature = "gpio")]
        {
            let cdev = ProbeOptions { gpio_pin: Some(4), ..options(Backend::BitbangCdev) };
            let err = error(cdev.open(&RELAY));
            assert!(
                err.contains("no GPIO character device at /nonexistent/gpiochip9")
                    && err.contains("--probe-gpio-chip")
                    && err.contains("--probe w1"),
                "{err}"
            );
        }
        // The simulated room opens anywhere.
        assert!(options(Backend::Simulated).open(&RELAY).is_ok());
    }

    #[test]
    fn a_bit_banged_bus_opens_on_its_line_inside_the_screen() -> anyhow::Result<()> {
        let (a, b) = (SlaveModel::ds18b20(0x01, 5.5), SlaveModel::ds18b20(0x02, 20.0));
        let (id_a, id_b) = (rom_id(a.address()), rom_id(b.address()));
        let wiring = OnLine { line: 17, bus: Bus::new(vec![a, b]) };
        for backend in [Backend::BitbangRppal, Backend::BitbangCdev] {
            let mut options = ProbeOptions { gpio_pin: Some(17), ..options(backend) };
            // The screen's settings hold: a calibration, a disabled sensor neither read nor
            // reported.
            options.sensors = vec![
                SensorSetting { id: id_a.clone(), offset_c: 0.25, enabled: true },
                SensorSetting { id: id_b.to_uppercase(), offset_c: 0.0, enabled: false },
            ];
            let mut source = options.open_wired(&RELAY, &wiring)?;
            let got: Vec<_> = source.read_all().into_iter().map(|r| (r.id, r.value)).collect();
            assert_eq!(got, [(id_a.clone(), Ok(5.75))], "{backend:?}");
            // Another line has no bus.
            options.gpio_pin = Some(4);
            let err = error(options.open_wired(&RELAY, &wiring));
            assert!(err.contains("no 1-Wire bus on GPIO 4"), "{err}");
        }
        Ok(())
    }
}
