//! The report loop: read every sensor on a fixed schedule, send the readings to the engine
//! wherever the [`Locator`] says it is, and keep what the engine did not take in the replay
//! [`Queue`].
//!
//! Delivery policy, per reading:
//! - 2xx: delivered.
//! - no engine known (mDNS), no answer, 5xx, 401/403 (a key may be fixed on the engine), any
//!   other status: queued on disk with its timestamp, replayed later.
//! - 400/413/422: dropped with an error in the log. The engine says the report itself is wrong,
//!   so it would be refused forever and block the queue. Except a clock verdict: a refusal
//!   whose message names a `timestamp` or `agent_time` (error messages name the field) refuses
//!   what this agent's clock wrote, not the report. Clocks get corrected, and engines that
//!   place readings whatever the clock (this one does) or a later retry take it: the report is
//!   kept like an outage's, never dropped. Hearth engines before that refused readings stamped
//!   10 minutes ahead with `sensors.<id>.timestamp … is in the future`.
//!
//! Replay: each interval sends the LIVE reading first; only when it was delivered does one
//! batch of queued reports follow (oldest first, `--queue-replay-batch` of them, one
//! `PUT /v1/sensors/backlog`), abandoned if it is not answered before the next reading is due.
//! A backlog never delays the current temperature, and a week's backlog drains within the hour.
//! The queue forgets a batch only after the engine's 2xx; a batch the engine refuses as invalid
//! is halved until the offending report is alone, which is then dropped (logged). An engine
//! without the backlog endpoint (404/405: a third-party engine that speaks only the seed
//! contract) gets the queued reports one `PUT /v1/sensors/update` each, without `agent_time`,
//! so it takes their timestamps as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use hearth_common::discovery::{EngineTarget, Locator};
use hearth_proto::Timestamp;
use hearth_proto::client::{ClientError, EngineClient};
use hearth_proto::sensors::{SensorBacklog, SensorReport, SensorUpdate};
use tokio::time::MissedTickBehavior;

use crate::queue::{Pos, Queue};
use hearth_probes::{RawReading, TemperatureSource};

/// What the loop needs besides the hardware and the locator.
pub(crate) struct Reporter {
    /// The id this host reports under.
    pub(crate) host_id: String,
    /// The bearer credential `<host_id>.<agent token>`. Never logged.
    pub(crate) credential: String,
    /// Time between reads at start (the configured interval, or the one the engine set
    /// earlier within the local limits); the engine may change it while running.
    pub(crate) period: Duration,
    /// Most queued reports per replay request.
    pub(crate) replay_batch: usize,
    /// What `GET /v1/status` shows (when `--status-listen` serves it).
    pub(crate) status: crate::status::Board,
}

impl Reporter {
    /// Run until `shutdown` resolves. Errors only when reading the hardware panicked.
    ///
    /// The queue's file operations are synchronous (one small append and fsync per interval
    /// during an outage, reads of a batch during replay): this loop is the agent's only task,
    /// so there is nothing for them to hold up.
    pub(crate) async fn run(
        &self,
        source: crate::Source,
        locator: &Locator,
        queue: &mut Queue,
        manager: &mut crate::manage::Manager,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut period = self.period;
        let mut ticker = tokio::time::interval(period);
        // A slow read or send postpones the schedule instead of firing a burst of catch-up
        // reads afterwards.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut source = Some(source);
        let mut link: Option<(String, EngineClient)> = None;
        let mut delivery = Delivery::Starting;
        let mut failing = FailingSensors::default();
        let mut waiting_announced = false;
        let mut replay = Replay::new(self.replay_batch);

        loop {
            // systemd's watchdog: fed while the loop waits for its own schedule (the interval
            // may be longer than WatchdogSec) and after every read below. A read or a send
            // that hangs stops the pings, and systemd restarts the agent.
            self.status.queue_depth(queue.len());
            let tick = tokio::select! {
                biased;
                () = &mut shutdown => break,
                tick = ticker.tick() => tick,
                never = hearth_common::systemd::keep_alive_while_waiting() => match never {},
            };
            let next_tick = tick + period;

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
            hearth_common::systemd::ping();
            self.status.read_done(taken_at, &readings);
            failing.log_changes(&readings);
            // The aliases in force (configured, or set by the engine), by lower-case sensor id:
            // sysfs names are lower case; people may type the ROM id in upper case.
            let mut update = build_update(&self.host_id, readings, manager.aliases(), taken_at);

            let target = match locator.current() {
                Some(target) => Some(target),
                None => {
                    if !std::mem::replace(&mut waiting_announced, true) {
                        tracing::info!(
                            "waiting for an engine to be discovered (mDNS); readings are queued"
                        );
                    }
                    // Keep the schedule: if no engine shows up before the next reading is
                    // due, this one is queued and the next one waits instead.
                    tokio::select! {
                        biased;
                        () = &mut shutdown => {
                            keep(queue, &update);
                            break;
                        }
                        target = locator.wait() => Some(target),
                        () = tokio::time::sleep_until(next_tick) => None,
                        never = hearth_common::systemd::keep_alive_while_waiting() => match never {},
                    }
                }
            };
            self.status.engine(target.as_ref().map(|t| t.url.as_str()));
            let Some(target) = target else {
                keep(queue, &update);
                continue;
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
                () = &mut shutdown => {
                    // Delivered or not, we cannot tell: keep it (a second copy is stored once).
                    update.agent_time = None;
                    keep(queue, &update);
                    break;
                }
                result = client.sensor_update(&update) => result,
            };
            update.agent_time = None;
            match result {
                Ok(ack) => {
                    delivery.delivered(&target.url, &self.host_id, ack.ids.len());
                    self.status.delivered();
                    // Settings or commands wait: carried out between reports (a command's
                    // read of the bus takes the source like a report's).
                    if let Some(pending) = ack.pending {
                        let after = manager.step(pending, client, &self.status, &mut source).await;
                        if after == crate::manage::After::Restart {
                            tracing::info!(queued = queue.len(), "sensor agent restarting");
                            return Err(crate::manage::RestartRequested.into());
                        }
                        let interval = manager.interval();
                        if interval != period {
                            tracing::info!(
                                from_s = period.as_secs_f64(),
                                to_s = interval.as_secs_f64(),
                                "report interval changed"
                            );
                            period = interval;
                            ticker = tokio::time::interval_at(
                                tokio::time::Instant::now() + period,
                                period,
                            );
                            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        }
                    }
                }
                Err(e) => {
                    self.status.delivery_failed(&describe(&e));
                    if matches!(e, ClientError::Transport(_)) {
                        // Lets mDNS forget a dead engine in ~2 s, so a restarted one (new port)
                        // is found; a no-op for a configured URL.
                        locator.report_unreachable(&target);
                    }
                    let kept = worth_keeping(&e);
                    if kept {
                        keep(queue, &update);
                    }
                    delivery.failed(&target.url, &self.host_id, &e, kept, queue.len());
                    continue;
                }
            }
            if queue.is_empty() {
                continue;
            }
            // The live reading is in; the backlog gets what is left of this interval.
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = replay.one_batch(self, queue, client, locator, &target) => {}
                () = tokio::time::sleep_until(next_tick) => {
                    tracing::debug!("replay batch not answered before the next reading; resent later");
                }
                never = hearth_common::systemd::keep_alive_while_waiting() => match never {},
            }
        }
        tracing::info!(queued = queue.len(), "sensor agent stopping");
        Ok(())
    }
}

/// Whether a report the engine did not take should be queued (see the module docs).
fn worth_keeping(error: &ClientError) -> bool {
    match error {
        ClientError::Api { status: 400 | 413 | 422, .. } => clock_verdict(error),
        _ => true,
    }
}

/// A refusal of this agent's clock rather than of its report: the message names one of the
/// fields the clock wrote.
fn clock_verdict(error: &ClientError) -> bool {
    match error {
        ClientError::Api { status: 400..=499, body } => {
            body.error.contains("timestamp") || body.error.contains("agent_time")
        }
        _ => false,
    }
}

/// Queue a report for replay; a failure to queue loses it, loudly.
fn keep(queue: &mut Queue, update: &SensorUpdate) {
    if update.sensors.is_empty() {
        // Nothing was read (no sensor on the bus): nothing to replay.
        return;
    }
    let result = serde_json::to_vec(update)
        .map_err(std::io::Error::other)
        .and_then(|payload| queue.push(&payload));
    match result {
        Ok(outcome) if outcome.dropped > 0 => tracing::warn!(
            dropped = outcome.dropped,
            queued = queue.len(),
            "the replay queue is full (--queue-max-bytes): dropped its oldest readings"
        ),
        Ok(_) => tracing::debug!(queued = queue.len(), "report queued"),
        Err(e) => tracing::error!(
            error = %e,
            dir = %queue.dir().display(),
            "cannot queue a report that was not delivered; it is lost"
        ),
    }
}

/// Replay state that lives across intervals.
#[derive(Debug)]
struct Replay {
    /// Reports per request: the configured batch, halved while isolating a refused report.
    limit: usize,
    full: usize,
    /// The engine URL that has no backlog endpoint, if the current one does not.
    single_at: Option<String>,
    /// Reports replayed since the backlog was first seen, for the log.
    replayed: u64,
    /// Whether this backlog's replay was logged.
    announced: bool,
}

impl Replay {
    fn new(full: usize) -> Self {
        Self { limit: full, full, single_at: None, replayed: 0, announced: false }
    }

    /// Send the oldest queued reports once; acknowledge them in the queue after the 2xx.
    async fn one_batch(
        &mut self,
        reporter: &Reporter,
        queue: &mut Queue,
        client: &EngineClient,
        locator: &Locator,
        target: &EngineTarget,
    ) {
        let batch = match queue.read_batch(self.limit) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replay queue");
                return;
            }
        };
        if !std::mem::replace(&mut self.announced, true) {
            tracing::info!(queued = queue.len(), engine = %target.url, "replaying queued readings");
        }
        let mut updates: Vec<(Pos, SensorUpdate)> = Vec::with_capacity(batch.records.len());
        for (pos, payload) in batch.records {
            match serde_json::from_slice::<SensorUpdate>(&payload) {
                Ok(mut u) => {
                    // The sensors are on this host, whatever id it reported under when it read
                    // them; only this host's credential can deliver them.
                    u.host_id.clone_from(&reporter.host_id);
                    u.agent_time = None;
                    updates.push((pos, u));
                }
                Err(e) => tracing::warn!(error = %e, "dropping an unreadable queued report"),
            }
        }
        if updates.is_empty() {
            if let Some(end) = batch.end {
                self.ack(queue, end, 0);
            }
            return;
        }
        if self.single_at.as_deref() == Some(target.url.as_str()) {
            for (pos, u) in updates {
                match client.sensor_update(&u).await {
                    Ok(_) => self.ack(queue, pos, 1),
                    Err(e) => {
                        self.refused(queue, pos, 1, &e, locator, target);
                        return;
                    }
                }
            }
            return;
        }
        let n = updates.len();
        let last = updates.last().map(|(pos, _)| *pos);
        let end = batch.end.or(last);
        let backlog = SensorBacklog {
            host_id: reporter.host_id.clone(),
            updates: updates.into_iter().map(|(_, u)| u).collect(),
            agent_time: Some(Timestamp::now()),
        };
        match client.sensor_backlog(&backlog).await {
            Ok(_) => {
                if let Some(end) = end {
                    self.ack(queue, end, n as u64);
                }
            }
            Err(ClientError::Api { status: 404 | 405, .. }) => {
                tracing::info!(
                    engine = %target.url,
                    "the engine has no PUT /v1/sensors/backlog; replaying one report per request"
                );
                self.single_at = Some(target.url.clone());
            }
            Err(e) => {
                if let Some(end) = end {
                    self.refused(queue, end, n, &e, locator, target);
                }
            }
        }
    }

    fn ack(&mut self, queue: &mut Queue, pos: Pos, n: u64) {
        if let Err(e) = queue.ack(pos) {
            tracing::warn!(error = %e, "cannot update the replay queue; reports may be resent");
        }
        self.replayed += n;
        if queue.is_empty() {
            tracing::info!(replayed = self.replayed, "queued readings delivered");
            self.replayed = 0;
            self.announced = false;
            self.limit = self.full;
        }
    }

    /// The engine did not take `n` reports ending at `end`.
    fn refused(
        &mut self,
        queue: &mut Queue,
        end: Pos,
        n: usize,
        error: &ClientError,
        locator: &Locator,
        target: &EngineTarget,
    ) {
        if matches!(error, ClientError::Transport(_)) {
            locator.report_unreachable(target);
        }
        if worth_keeping(error) {
            // Kept (an outage, or a clock verdict: never dropped); the next interval tries
            // again. The live send logs the outage.
            tracing::debug!(error = %describe(error), "replay batch not delivered");
        } else if n > 1 {
            // One of them is refused for good: halve until it is alone.
            self.limit = (n / 2).max(1);
            tracing::debug!(error = %describe(error), limit = self.limit, "replay batch refused");
        } else {
            tracing::error!(
                error = %describe(error),
                "the engine refuses a queued report as invalid; dropping it"
            );
            self.ack(queue, end, 0);
            self.limit = self.full;
        }
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

    fn failed(&mut self, url: &str, host_id: &str, error: &ClientError, kept: bool, queued: u64) {
        let (cause, rejected) = match error {
            ClientError::Transport(_) => ("unreachable".to_owned(), false),
            ClientError::Api { status, .. } => {
                (format!("HTTP {status}"), matches!(status, 401 | 403))
            }
        };
        let clock = clock_verdict(error);
        let error = describe(error);
        if matches!(self, Self::Failing { cause: current } if *current == cause) {
            tracing::debug!(engine = %url, error, queued, "report not delivered");
            return;
        }
        if clock {
            tracing::warn!(
                engine = %url,
                error,
                queued,
                "the engine refuses the times this agent's clock gave its readings; they are \
                 queued and sent again (check NTP on this host: `timedatectl`)"
            );
        } else if !kept {
            tracing::error!(
                engine = %url,
                error,
                "the engine refuses this agent's reports as invalid; they are dropped, since \
                 it would refuse them again (is the agent older or newer than the engine?)"
            );
        } else if rejected {
            tracing::warn!(
                engine = %url,
                error,
                queued,
                "the engine rejects this agent's credential; readings are queued until it \
                 accepts them (check the device key: `hearth-engine device-key --role sensor \
                 {host_id}` prints the right one; a relay key may not report readings)"
            );
        } else {
            tracing::warn!(
                engine = %url,
                error,
                queued,
                "cannot deliver sensor readings; queuing them until the engine answers"
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
    use hearth_probes::ReadError;

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
