//! Hearth sensor agent: reads temperatures (kernel 1-Wire sysfs, or a simulated room) on a fixed
//! schedule and reports them to the engine with `PUT /v1/sensors/update`.
//!
//! The binary is a thin shell around [`run`]. Layers:
//! - [`config`]: flags, `HEARTH_SENSOR_*` environment variables and the TOML file.
//! - [`hw`]: the [`hw::TemperatureSource`] backends; the only code that touches `/sys` or the
//!   simulator's world file.
//! - `report`: the schedule, the wire format and delivery to wherever discovery says the engine
//!   is.

pub mod config;
pub mod hw;
mod report;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hearth_common::discovery::Locator;

pub use config::{Config, Hardware, SensorConfig};

use hw::TemperatureSource;
use hw::sim::{RoomModel, SimSource};
use hw::w1::W1Source;

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
    )?;
    let period = Duration::try_from_secs_f64(config.interval_s)
        .with_context(|| format!("interval_s {} is not a duration", config.interval_s))?;

    let source: Box<dyn TemperatureSource> = match config.hardware {
        Hardware::W1 => Box::new(W1Source::open(&config.w1_dir)?),
        Hardware::Simulated => Box::new(SimSource::new(
            RoomModel::new(config.sim_start_c, config.sim_outside_c),
            config.sim_sensors().into_iter().map(|s| s.id).collect(),
            config.sim_world_path(),
            config.sim_time_scale,
        )),
    };
    let locator = match &config.engine {
        Some(url) => Locator::fixed(url),
        None => Locator::browse(Some(key.site_id.clone()))
            .context("cannot start mDNS discovery of the engine (--engine URL skips it)")?,
    };

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        host_id,
        host_id_source = ?host_id_source,
        hardware = source.name(),
        engine = config.engine.as_deref().unwrap_or("mDNS discovery"),
        site_id = key.site_id,
        interval_s = config.interval_s,
        "hearth-sensor-agent starting"
    );

    let named = match config.hardware {
        Hardware::W1 => config.sensors.clone(),
        Hardware::Simulated => config.sim_sensors(),
    };
    let aliases: BTreeMap<String, String> =
        named.iter().filter_map(|s| Some((s.id.to_ascii_lowercase(), s.alias.clone()?))).collect();
    let reporter =
        report::Reporter { credential: key.agent_credential(&host_id), host_id, aliases, period };
    let result = reporter.run(source, &locator, shutdown).await;
    locator.shutdown();
    result
}
