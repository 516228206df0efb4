//! The report loop: read every sensor on a fixed schedule and send the readings to the engine
//! wherever the [`Locator`] says it is.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use hearth_common::discovery::Locator;
use hearth_proto::Timestamp;
use hearth_proto::client::{ClientError, EngineClient};
use hearth_proto::sensors::{SensorReport, SensorUpdate};
use tokio::time::MissedTickBehavior;

use crate::hw::{RawReading, TemperatureSource};

/// What the loop needs besides the hardware and the locator.
pub(crate) struct Reporter {
    /// The id this host reports under.
    pub(crate) host_id: String,
    /// The bearer credential `<host_id>.<agent token>`. Never logged.
    pub(crate) credential: String,
    /// Configured aliases by lower-case sensor id (sysfs names are lower case; people may
    /// type the ROM id in upper case).
    pub(crate) aliases: BTreeMap<String, String>,
    /// Time between reads.
    pub(crate) period: Duration,
}

impl Reporter {
    /// Run until `shutdown` resolves. Errors only when reading the hardware panicked.
    pub(crate) async fn run(
        &self,
        source: Box<dyn TemperatureSource>,
        locator: &Locator,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(self.period);
        // A slow read or send postpones the schedule instead of firing a burst of catch-up
        // reads afterwards.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut source = Some(source);
        let mut link: Option<(String, EngineClient)> = None;
        let mut delivery = Delivery::Starting;
        let mut failing = FailingSensors::default();
        let mut waiting_announced = false;

        loop {
            let tick = tokio::select! {
                biased;
                () = &mut shutdown => break,
                tick = ticker.tick() => tick,
            };
            let next_tick = tick + self.period;

            // The read blocks (~750 ms per DS18B20 conversion), so it runs on the blocking
            // pool; the source travels there and back because the trait is not Sync.
            let Some(mut src) = source.take() else { break };
            let taken_at = Timestamp::now();
            let read = tokio::task::spawn_blocking(move || {
                let readings = src.read_all();
                (src, readings)
            });
            let (src, readings) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                joined = read => joined.map_err(|e| anyhow::anyhow!("reading the sensors failed: {e}"))?,
            };
            source = Some(src);
            failing.log_changes(&readings);
            let mut update = build_update(&self.host_id, readings, &self.aliases, taken_at);

            let target = match locator.current() {
                Some(target) => target,
                None => {
                    if !std::mem::replace(&mut waiting_announced, true) {
                        tracing::info!("waiting for an engine to be discovered (mDNS)");
                    }
                    // Keep the schedule: if no engine shows up before the next reading is
                    // due, this one is dropped and the next one waits instead.
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        target = locator.wait() => target,
                        () = tokio::time::sleep_until(next_tick) => {
                            tracing::debug!("no engine known yet; reading dropped");
                            continue;
                        }
                    }
                }
            };
            waiting_announced = false;

            let client = match &link {
                Some((url, client)) if *url == target.url => client,
                _ => {
                    let client = EngineClient::new(&target.url, Some(self.credential.clone()));
                    &link.insert((target.url.clone(), client)).1
                }
            };
            update.agent_time = Some(Timestamp::now());
            let result = tokio::select! {
                biased;
                () = &mut shutdown => break,
                result = client.sensor_update(&update) => result,
            };
            match result {
                Ok(ack) => delivery.delivered(&target.url, &self.host_id, ack.ids.len()),
                Err(e) => {
                    if matches!(e, ClientError::Transport(_)) {
                        // Lets mDNS forget a dead engine in ~2 s, so a restarted one (new port)
                        // is found; a no-op for a configured URL.
                        locator.report_unreachable(&target);
                    }
                    // Dropped for now: the bounded on-disk replay queue (readings kept with
                    // their timestamps and replayed when the engine is back) is the next issue.
                    delivery.failed(&target.url, &self.host_id, &e);
                }
            }
        }
        tracing::info!("sensor agent stopping");
        Ok(())
    }
}

/// Turn the hardware's readings into the wire report: a failed reading is sent as a null
/// value so the engine records the failure, rather than the sensor silently going quiet.
pub(crate) fn build_update(
    host_id: &str,
    readings: Vec<RawReading>,
    aliases: &BTreeMap<String, String>,
    taken_at: Timestamp,
) -> SensorUpdate {
    let sensors = readings
        .into_iter()
        .map(|r| {
            let report = SensorReport {
                kind: r.kind,
                value: r.value.ok(),
                alias: aliases.get(&r.id.to_ascii_lowercase()).cloned(),
                extra: None,
                timestamp: Some(taken_at),
            };
            (r.id, report)
        })
        .collect();
    SensorUpdate { host_id: host_id.to_owned(), sensors, agent_time: None }
}

/// Logs each sensor's failures when they start and end, not at every read.
#[derive(Debug, Default)]
struct FailingSensors(BTreeSet<String>);

impl FailingSensors {
    fn log_changes(&mut self, readings: &[RawReading]) {
        for r in readings {
            match &r.value {
                Err(e) if self.0.insert(r.id.clone()) => {
                    tracing::warn!(sensor = %r.id, error = %e, "sensor reading failed");
                }
                Err(e) => tracing::debug!(sensor = %r.id, error = %e, "sensor reading failed"),
                Ok(_) if self.0.remove(&r.id) => {
                    tracing::info!(sensor = %r.id, "sensor reads again");
                }
                Ok(_) => {}
            }
        }
    }
}

/// The delivery state, so an outage is logged once when it starts (and when its cause changes)
/// and once when it ends, not at every interval.
#[derive(Debug)]
enum Delivery {
    Starting,
    Delivering { url: String },
    Failing { cause: String },
}

impl Delivery {
    fn delivered(&mut self, url: &str, host_id: &str, sensors: usize) {
        match self {
            Self::Delivering { url: current } if current == url => {
                tracing::debug!(sensors, "report delivered");
            }
            _ => {
                tracing::info!(host_id, sensors, "reporting to {url}");
                *self = Self::Delivering { url: url.to_owned() };
            }
        }
    }

    fn failed(&mut self, url: &str, host_id: &str, error: &ClientError) {
        let (cause, rejected) = match error {
            ClientError::Transport(_) => ("unreachable".to_owned(), false),
            ClientError::Api { status, .. } => {
                (format!("HTTP {status}"), matches!(status, 401 | 403))
            }
        };
        let error = describe(error);
        if matches!(self, Self::Failing { cause: current } if *current == cause) {
            tracing::debug!(engine = %url, error, "report not delivered");
            return;
        }
        if rejected {
            tracing::warn!(
                engine = %url,
                error,
                "the engine rejects this agent's credential; readings are dropped until it \
                 accepts them (check the device key: `hearth-engine device-key {host_id}` \
                 prints the right one)"
            );
        } else {
            tracing::warn!(
                engine = %url,
                error,
                "cannot deliver sensor readings; dropping them until the engine answers"
            );
        }
        *self = Self::Failing { cause };
    }
}

/// The error with its causes: reqwest's own message ("error sending request") hides the useful
/// part ("Connection refused") in its source chain.
fn describe(error: &ClientError) -> String {
    let mut text = error.to_string();
    if let ClientError::Transport(e) = error {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::ReadError;

    #[test]
    fn update_has_the_seed_contract_shape() -> anyhow::Result<()> {
        let readings = vec![
            RawReading { id: "28-00000000000a".into(), kind: "DS18B20".into(), value: Ok(21.5) },
            RawReading {
                id: "28-00000000000b".into(),
                kind: "DS18B20".into(),
                value: Err(ReadError::Crc),
            },
        ];
        let aliases = BTreeMap::from([("28-00000000000a".to_owned(), "hall".to_owned())]);
        let at: Timestamp = "2026-11-21T06:55:00Z".parse()?;
        let update = build_update("pi-a", readings, &aliases, at);
        let json = serde_json::to_value(&update)?;
        assert_eq!(
            json,
            serde_json::json!({
                "host_id": "pi-a",
                "sensors": {
                    "28-00000000000a": {"type": "DS18B20", "value": 21.5, "alias": "hall",
                                        "timestamp": "2026-11-21T06:55:00Z"},
                    "28-00000000000b": {"type": "DS18B20", "value": null,
                                        "timestamp": "2026-11-21T06:55:00Z"}
                }
            })
        );
        Ok(())
    }
}
