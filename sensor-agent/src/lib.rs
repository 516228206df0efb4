//! Hearth sensor agent: reads temperatures (kernel 1-Wire sysfs, 1-Wire bit-banged on a GPIO
//! pin, or simulated sensors) on a fixed schedule and reports them to the engine with
//! `PUT /v1/sensors/update`.
//!
//! The binary is a thin shell around [`run`]. Layers:
//! - [`config`]: flags, `HEARTH_SENSOR_*` environment variables and the TOML file.
//! - the configured backend of [`hearth_probes`] (the [`hearth_probes::TemperatureSource`]s and
//!   the screen layer over them; the only code that touches `/sys`, GPIO or the simulator's
//!   files), opened from the configuration by [`hearth_probes::open`].
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

use hearth_probes::TemperatureSource as _;

/// The probes as the agent holds them: the configured backend inside the screen layer, which
/// the engine's settings reconfigure while running (`manage`).
pub(crate) type Source = hearth_probes::open::Opened;

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

    // The configured backend inside the screen layer (disabled sensors, missing sensors, the
    // plausibility screen, calibration), opened as the relay agent opens its probe; fails, with
    // the flag and the fix in the message, when the hardware is not there.
    let mut source = config.probe_options().open(&config::FLAGS)?;
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
