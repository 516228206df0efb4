//! Hearth sensor agent: reads temperatures (kernel 1-Wire sysfs, 1-Wire bit-banged on a GPIO
//! pin, or simulated sensors) on a fixed schedule and reports them to the engine with
//! `PUT /v1/sensors/update`.
//!
//! The binary is a thin shell around [`run`]. Layers:
//! - [`config`]: flags, `HEARTH_SENSOR_*` environment variables and the TOML file.
//! - `open_source`: the configured backend of [`hearth_probes`] (the
//!   [`hearth_probes::TemperatureSource`]s and the screen layer over them; the only code that
//!   touches `/sys`, GPIO or the simulator's files), opened from the configuration.
//! - `report`: the schedule, the wire format and delivery to wherever discovery says the engine
//!   is; what it could not deliver waits in the [`queue`] and is replayed.

pub mod config;
pub mod manage;
pub mod queue;
mod report;
mod share;
mod status;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hearth_common::discovery::Locator;

pub use config::{Config, Hardware, SensorConfig};

use hearth_probes::TemperatureSource;
#[cfg(feature = "gpio")]
use hearth_probes::onewire::gpio;
use hearth_probes::screen::{Screened, SensorSetting};
use hearth_probes::sim::{RoomModel, SimSensor, SimSource};
use hearth_probes::w1::W1Source;

/// The probes as the agent holds them: the configured backend inside the screen layer, which
/// the engine's settings reconfigure while running (`manage`).
pub(crate) type Source = Screened<Box<dyn TemperatureSource>>;

/// The configured backend inside the screen layer (disabled sensors, missing sensors, the
/// plausibility screen, calibration), so every backend obeys the same rules. Fails, with the
/// fix in the message, when the hardware is not there.
fn open_source(config: &Config) -> anyhow::Result<Source> {
    let named = config.named_sensors();
    let disabled: Vec<String> =
        named.iter().filter(|s| !s.enabled).map(|s| s.id.to_ascii_lowercase()).collect();
    let settings: Vec<SensorSetting> = named
        .iter()
        .map(|s| SensorSetting { id: s.id.clone(), offset_c: s.offset_c, enabled: s.enabled })
        .collect();
    let backend: Box<dyn TemperatureSource> = match config.hardware {
        Hardware::W1 => Box::new(W1Source::open(&config.w1_dir)?.skipping(disabled)),
        #[cfg(feature = "gpio")]
        Hardware::BitbangRppal => {
            let pin = u8::try_from(config.gpio_pin)
                .with_context(|| format!("gpio_pin {} is not a BCM number", config.gpio_pin))?;
            Box::new(gpio::open_rppal(pin)?.skipping(disabled))
        }
        #[cfg(feature = "gpio")]
        Hardware::BitbangCdev => {
            Box::new(gpio::open_cdev(&config.gpio_chip, config.gpio_pin)?.skipping(disabled))
        }
        #[cfg(not(feature = "gpio"))]
        Hardware::BitbangRppal | Hardware::BitbangCdev => anyhow::bail!(
            "this build of hearth-sensor-agent has no GPIO support (built without the `gpio` \
             feature): use --hardware w1 or --hardware simulated, or a default build"
        ),
        Hardware::Simulated => {
            let sensors = named
                .iter()
                .filter(|s| s.enabled)
                .map(|s| SimSensor { id: s.id.clone(), profile: s.sim.clone().unwrap_or_default() })
                .collect();
            let mut sim = SimSource::new(
                RoomModel::new(config.sim_start_c, config.sim_outside_c),
                sensors,
                config.sim_world_path(),
                config.sim_time_scale,
            )
            .with_seed(config.sim_seed)
            .with_heated_by(config.sim_heated_by());
            tracing::info!(
                world = %config.sim_world_path().display(),
                heated_by = %config.sim_heated_by(),
                "the simulated room is heated by the world file's outputs"
            );
            if let Some(faults) = &config.sim_faults {
                sim = sim.with_faults_file(faults.clone());
            }
            Box::new(sim)
        }
    };
    Ok(Screened::new(backend, config.screen_rules(), settings))
}

/// Run the agent until `shutdown` resolves.
///
/// Fails at start on a bad configuration (no device key, no host id, no 1-Wire bus, ...) with
/// a message naming the fix. Once running, an unreachable or failing engine is logged and
/// retried at every interval, never fatal.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let (host_id, host_id_source) = hearth_common::host_id::resolve(
        config.host_id.as_deref(),
        Path::new("/proc/cpuinfo"),
        Path::new("/etc/machine-id"),
    )?;
    let key = hearth_common::auth::device_credential(
        config.device_key.as_ref(),
        &host_id,
        "HEARTH_SENSOR_DEVICE_KEY",
        hearth_proto::agents::KeyRole::Sensor,
    )?;
    let local_period = Duration::try_from_secs_f64(config.interval_s)
        .with_context(|| format!("interval_s {} is not a duration", config.interval_s))?;

    let mut source = open_source(&config)?;
    // Before discovery starts: a queue that cannot be used is a configuration error, and a
    // thermostat sensor that silently loses readings in an outage is worse than one that
    // refuses to start with the fix in its message.
    let mut queue =
        queue::Queue::open(&config.queue_dir, config.queue_max_bytes).with_context(|| {
            format!(
                "cannot use the replay queue directory {} (set --queue-dir / \
                 HEARTH_SENSOR_QUEUE_DIR to a writable directory; the systemd unit's \
                 StateDirectory=hearth-sensor-agent provides the default)",
                config.queue_dir.display()
            )
        })?;
    // Bound at start, before discovery: a taken port is a configuration error, with the fix.
    let status_listener = match &config.status_listen {
        Some(addr) => Some(status::bind(addr).await?),
        None => None,
    };
    let locator = match &config.engine {
        Some(url) => Locator::fixed(url),
        None => Locator::browse(Some(key.site_id.clone()))
            .context("cannot start mDNS discovery of the engine (--engine URL skips it)")?,
    };

    // The read API answers relay agents holding this agent's read token.
    let status = status::Board::new(&host_id, source.name()).sharing_with(key.clone());

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        host_id,
        host_id_source = ?host_id_source,
        hardware = source.name(),
        engine = config.engine.as_deref().unwrap_or("mDNS discovery"),
        site_id = key.site_id,
        interval_s = config.interval_s,
        queue_dir = %config.queue_dir.display(),
        queued = queue.len(),
        "hearth-sensor-agent starting"
    );

    // The settings the engine set earlier (kept beside the queue), within today's limits.
    let local = manage::Local {
        interval: local_period,
        sensors: config.named_sensors(),
        screen: config.screen_rules(),
    };
    let mut manager =
        manage::Manager::open(&host_id, &config.queue_dir, config.remote_limits(), local);
    if let Some(r) = manager.configure(&mut source) {
        tracing::warn!(field = %r.field, reason = %r.reason, "a kept setting cannot be applied");
    }
    let period = manager.interval();
    if period != local_period {
        tracing::info!(interval_s = period.as_secs_f64(), "report interval set by the engine");
    }
    let reporter = report::Reporter {
        credential: key.agent_credential(&host_id),
        host_id,
        period,
        replay_batch: config.queue_replay_batch,
        status,
    };
    // Ready for systemd (Type=notify): the hardware and the queue are open and the loop
    // starts now; it feeds the watchdog (report.rs). An engine that cannot be reached is not a
    // reason to hold back readiness: readings queue until it answers.
    hearth_common::systemd::ready();
    // The status endpoint runs beside the loop in the same task (not spawned: a task of its own
    // costs ~3 KB of ARMv6 code) and ends with it.
    let status_server = status::serve(status_listener, reporter.status.clone());
    let result = tokio::select! {
        result = reporter.run(source, &locator, &mut queue, &mut manager, shutdown) => result,
        never = status_server => match never {},
    };
    hearth_common::systemd::stopping();
    locator.shutdown();
    result
}
