//! The decision loop and relay commanding.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hearth_common::auth::SiteSecret;
use hearth_proto::Timestamp;
use hearth_proto::client::{ClientError, RelayAgentClient};
use hearth_proto::control::{ControlSettings, Decision};
use hearth_proto::relays::{RelayCommand, RelayFunction, RelayState};
use hearth_proto::schedules::{Layer, RuleRef, Segment};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::{Equipment, Inputs, Learned, Running, SensorSnapshot, decide};
use crate::store::{RelayRow, Store, from_millis, millis};

/// How soon to repeat a command a relay agent refused (its minimum off time, an interlock).
const REFUSED_RETRY: Duration = Duration::from_secs(5);

/// Timing of the loop.
#[derive(Debug, Clone)]
pub(crate) struct ControllerConfig {
    /// Re-evaluate at least this often even without new readings.
    pub(crate) tick: Duration,
    /// A reading older than this no longer counts.
    pub(crate) stale_after: jiff::SignedDuration,
    /// Lease granted with every `on` command; renewed every quarter lease.
    pub(crate) lease_s: u32,
}

/// Owns the control settings and the latest decision; `run` is the loop.
pub(crate) struct Controller {
    store: Store,
    site: SiteSecret,
    config: ControllerConfig,
    /// Watch channels hold the current value without lock poisoning, and let the coming event
    /// stream subscribe to changes.
    settings: watch::Sender<ControlSettings>,
    latest: watch::Sender<Option<Decision>>,
    wake: Arc<Notify>,
    /// Set when relays registered: command them now rather than at the next renewal.
    resend: AtomicBool,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Controller {
    pub(crate) async fn new(
        store: Store,
        site: SiteSecret,
        config: ControllerConfig,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let settings = store.load_settings().await?.unwrap_or_default();
        let latest = store.decisions(1).await?.into_iter().next();
        Ok(Self {
            store,
            site,
            config,
            settings: watch::Sender::new(settings),
            latest: watch::Sender::new(latest),
            wake,
            resend: AtomicBool::new(false),
        })
    }

    pub(crate) fn settings(&self) -> ControlSettings {
        self.settings.borrow().clone()
    }

    /// Store new settings, then let the loop decide with them at once.
    pub(crate) async fn set_settings(&self, settings: ControlSettings) -> Result<(), sqlx::Error> {
        self.store.save_settings(&settings).await?;
        self.settings.send_replace(settings);
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn latest(&self) -> Option<Decision> {
        self.latest.borrow().clone()
    }

    /// Relays (re)registered: command them on the next pass.
    pub(crate) fn relays_changed(&self) {
        self.resend.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    async fn sensors(&self) -> Result<Vec<SensorSnapshot>, sqlx::Error> {
        Ok(self
            .store
            .sensors()
            .await?
            .into_iter()
            .map(|s| SensorSnapshot {
                id: s.id,
                name: s.alias,
                value: s.last_value,
                at: s.last_ts.map(from_millis),
            })
            .collect())
    }

    /// Decide, command, record; until `shutdown` turns true. Relays are not switched off on
    /// shutdown: their leases run out within `lease_s`, and a quick restart (upgrade) does not
    /// cycle the furnace.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commander = Commander::new(self.store.clone(), self.site.clone());
        // Read what the relays are doing before commanding anything: after a restart the
        // engine neither re-commands blindly nor flaps a furnace that is running, and the
        // minimum on/off times continue from the real switch time.
        let mut heat = commander.reconcile().await;
        // `Config::lease_s` guarantees at least 4 s, so this is at least a second.
        let renew_every = Duration::from_secs(u64::from(self.config.lease_s / 4));
        let mut next_renew = tokio::time::Instant::now();
        let mut recorded = self.latest().map(|d| (d.heat, d.reason_code));
        loop {
            match self.sensors().await {
                Ok(sensors) => {
                    let now = Timestamp::now();
                    let settings = self.settings();
                    let segments = [interim_segment(now)];
                    let learned = Learned::default();
                    let decision = decide(&Inputs {
                        now,
                        settings: &settings,
                        segments: &segments,
                        sensors: &sensors,
                        stale_after: self.config.stale_after,
                        equipment: Equipment { heat, cool: Running::OFF_UNKNOWN },
                        learned: &learned,
                    });
                    let changed = decision.heat != heat.on;
                    if changed {
                        heat = Running { on: decision.heat, since: Some(decision.at) };
                        tracing::info!(heat = decision.heat, reason = %decision.reason, "decision");
                    }
                    // Publish and record first: the decision exists before it is acted on.
                    self.latest.send_replace(Some(decision.clone()));
                    if recorded != Some((decision.heat, decision.reason_code)) {
                        recorded = Some((decision.heat, decision.reason_code));
                        if let Err(e) = self.store.record_decision(&decision).await {
                            tracing::error!(error = %e, "cannot record decision");
                        }
                    }
                    let resend = self.resend.swap(false, Ordering::Relaxed);
                    if changed || resend || tokio::time::Instant::now() >= next_renew {
                        let refused =
                            commander.command_heat(decision.heat, self.config.lease_s).await;
                        // A refusal (minimum off time, interlock) usually clears within
                        // seconds: ask again soon rather than a quarter lease later.
                        let wait =
                            if refused { renew_every.min(REFUSED_RETRY) } else { renew_every };
                        next_renew = tokio::time::Instant::now() + wait;
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read sensors; decision skipped"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.tick) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
}

/// Sends the decision to every relay output whose function is heat.
struct Commander {
    store: Store,
    site: SiteSecret,
    clients: HashMap<String, (String, RelayAgentClient)>,
    /// Relays that failed last time, and how: log changes, not every failure.
    failing: HashMap<(String, String), String>,
}

impl Commander {
    fn new(store: Store, site: SiteSecret) -> Self {
        Self { store, site, clients: HashMap::new(), failing: HashMap::new() }
    }

    fn client(&mut self, host_id: &str, url: &str) -> RelayAgentClient {
        match self.clients.get(host_id) {
            Some((u, c)) if u == url => c.clone(),
            _ => {
                let credential = self.site.device_key(host_id).engine_credential();
                let c = RelayAgentClient::new(url, Some(credential));
                self.clients.insert(host_id.to_owned(), (url.to_owned(), c.clone()));
                c
            }
        }
    }

    /// Read every known relay agent's outputs (in parallel), record them, and return the heat
    /// state they show. An agent that does not answer keeps its last report, and says so.
    async fn reconcile(&mut self) -> Running {
        let mut relays = match self.store.relays().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read relays");
                return Running::OFF_UNKNOWN;
            }
        };
        let agents: BTreeMap<String, String> =
            relays.iter().filter_map(|r| Some((r.host_id.clone(), r.url.clone()?))).collect();
        let mut reads = JoinSet::new();
        for (host_id, url) in agents {
            let client = self.client(&host_id, &url);
            reads.spawn(async move { (host_id, client.relays().await) });
        }
        while let Some(joined) = reads.join_next().await {
            let Ok((host_id, result)) = joined else { continue };
            match result {
                Ok(list) => {
                    let now = millis(Timestamp::now());
                    for output in &list.outputs {
                        if let Err(e) =
                            self.store.set_relay_status(&host_id, output, false, now).await
                        {
                            tracing::error!(error = %e, "cannot record relay state");
                        }
                        // The rows read above, brought up to date, decide the heat state.
                        if let Some(row) = relays
                            .iter_mut()
                            .find(|r| r.host_id == host_id && r.output_id == output.id)
                        {
                            row.state = output.state;
                            row.updated = now;
                            row.status = Some(output.clone());
                        }
                    }
                    let states: Vec<String> =
                        list.outputs.iter().map(|o| format!("{}={:?}", o.id, o.state)).collect();
                    tracing::info!(%host_id, outputs = %states.join(" "), "read relay states before commanding");
                }
                Err(e) => tracing::warn!(
                    %host_id,
                    error = %e,
                    "cannot read the relay agent's state before commanding; using its last report"
                ),
            }
        }
        heat_state(&relays)
    }

    /// Command every heat relay; true when an agent refused (409).
    async fn command_heat(&mut self, on: bool, lease_s: u32) -> bool {
        let relays = match self.store.relays().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read relays");
                return false;
            }
        };
        let mut refused = false;
        let command = if on {
            RelayCommand { state: RelayState::On, lease_s: Some(lease_s) }
        } else {
            RelayCommand { state: RelayState::Off, lease_s: None }
        };
        let mut calls = JoinSet::new();
        for relay in
            relays.into_iter().filter(|r| r.effective_function() == Some(RelayFunction::Heat))
        {
            let Some(url) = relay.url.clone() else { continue };
            let client = self.client(&relay.host_id, &url);
            let command = command.clone();
            calls.spawn(async move {
                let result = client.command(&relay.output_id, &command).await;
                (relay.host_id, relay.output_id, result)
            });
        }
        while let Some(joined) = calls.join_next().await {
            let Ok((host_id, output_id, result)) = joined else { continue };
            let now = millis(Timestamp::now());
            let key = (host_id.clone(), output_id.clone());
            let recorded = match result {
                Ok(status) => {
                    if self.failing.remove(&key).is_some() {
                        tracing::info!(%host_id, %output_id, "relay carries out commands again");
                    }
                    if let Some(left) = status.pending_off_in_s {
                        tracing::debug!(%host_id, %output_id, left_s = left,
                            "the relay agent defers the off (its minimum on time)");
                    }
                    self.store.set_relay_status(&host_id, &status, true, now).await
                }
                // The agent answered and refused (an interlock, its minimum off time): record
                // why, for the user and for the next decision; the command is repeated at the
                // next renewal.
                Err(ClientError::Api { status: 409, body }) => {
                    refused = true;
                    if self.failing.insert(key, body.error.clone()).as_ref() != Some(&body.error) {
                        tracing::warn!(%host_id, %output_id, code = ?body.code, reason = %body.error,
                            "the relay agent refused the command");
                    }
                    self.store.set_relay_refusal(&host_id, &output_id, &body.error, now).await
                }
                Err(e) => {
                    let text = e.to_string();
                    if self.failing.insert(key, text.clone()).as_ref() != Some(&text) {
                        tracing::warn!(%host_id, %output_id, error = %text, "relay command failed");
                    }
                    Ok(())
                }
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "cannot record relay state");
            }
        }
        refused
    }
}

/// The heat state the relays show: on when any heat relay is on. `since` comes from the
/// agents' own reports (how long ago the output switched, counted from the report), so the
/// minimum on/off times survive an engine restart; unknown without a report.
fn heat_state(relays: &[RelayRow]) -> Running {
    let heat: Vec<&RelayRow> =
        relays.iter().filter(|r| r.effective_function() == Some(RelayFunction::Heat)).collect();
    let on = heat.iter().any(|r| r.state.is_on());
    let switched = |r: &&RelayRow| -> Option<Timestamp> {
        let status = r.status.as_ref()?;
        let ago = jiff::SignedDuration::try_from_secs_f64(status.changed_s_ago).ok()?;
        from_millis(r.updated).checked_sub(ago).ok()
    };
    // On: since the first heat relay went on. Off: since the last one went off.
    let since = if on {
        heat.iter().filter(|r| r.state.is_on()).map(switched).min().flatten()
    } else {
        heat.iter().map(switched).max().flatten()
    };
    Running { on, since }
}

/// Interim until the loop reads the schedule: 20 °C heat / 26 °C cool all day, every sensor.
fn interim_segment(now: Timestamp) -> Segment {
    let day = jiff::SignedDuration::from_hours(24);
    Segment {
        start: now,
        end: now.checked_add(day).unwrap_or(now),
        start_local: now.to_string(),
        end_local: now.to_string(),
        heat_c: 20.0,
        cool_c: 26.0,
        sensors: Vec::new(),
        rule: RuleRef { layer: Layer::Default, id: None, name: "default".to_owned() },
        beaten: Vec::new(),
    }
}
