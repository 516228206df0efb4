//! The decision loop and relay commanding.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hearth_common::auth::SiteSecret;
use hearth_proto::Timestamp;
use hearth_proto::client::RelayAgentClient;
use hearth_proto::control::{ControlSettings, Decision, Mode};
use hearth_proto::relays::{RelayCommand, RelayFunction, RelayState};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::{Algorithm, HeatState, Inputs, SensorSnapshot};
use crate::store::{Store, from_millis, millis};

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

/// The settings used until someone changes them (stored in the database from then on).
fn default_settings() -> ControlSettings {
    ControlSettings {
        mode: Mode::Heat,
        setpoint_c: 20.0,
        hysteresis_c: 0.3,
        min_on_s: 180,
        min_off_s: 180,
    }
}

/// Owns the control settings and the latest decision; `run` is the loop.
pub(crate) struct Controller {
    store: Store,
    site: SiteSecret,
    config: ControllerConfig,
    algorithm: Box<dyn Algorithm>,
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
        algorithm: Box<dyn Algorithm>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let settings = store.load_settings().await?.unwrap_or_else(default_settings);
        let latest = store.decisions(1).await?.into_iter().next();
        Ok(Self {
            store,
            site,
            config,
            algorithm,
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

    async fn inputs(&self, heat: HeatState) -> Result<Inputs, sqlx::Error> {
        let sensors = self
            .store
            .sensors()
            .await?
            .into_iter()
            .map(|s| SensorSnapshot {
                id: s.id,
                value: s.last_value,
                at: s.last_ts.map(from_millis),
            })
            .collect();
        Ok(Inputs {
            now: Timestamp::now(),
            settings: self.settings(),
            sensors,
            stale_after: self.config.stale_after,
            heat,
        })
    }

    /// Decide, command, record; until `shutdown` turns true. Relays are not switched off on
    /// shutdown: their leases run out within `lease_s`, and a quick restart (upgrade) does not
    /// cycle the furnace.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commander = Commander::new(self.store.clone(), self.site.clone());
        let mut heat = HeatState { on: commander.heat_relays_on().await, since: None };
        // `Config::lease_s` guarantees at least 4 s, so this is at least a second.
        let renew_every = Duration::from_secs(u64::from(self.config.lease_s / 4));
        let mut next_renew = tokio::time::Instant::now();
        let mut recorded = self.latest().map(|d| (d.heat, d.reason_code));
        loop {
            match self.inputs(heat).await {
                Ok(inputs) => {
                    let decision = self.algorithm.decide(&inputs);
                    let changed = decision.heat != heat.on;
                    if changed {
                        heat = HeatState { on: decision.heat, since: Some(decision.at) };
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
                        commander.command_heat(decision.heat, self.config.lease_s).await;
                        next_renew = tokio::time::Instant::now() + renew_every;
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
    /// Relays that failed last time: log their recovery, not every failure.
    failing: HashSet<(String, String)>,
}

impl Commander {
    fn new(store: Store, site: SiteSecret) -> Self {
        Self { store, site, clients: HashMap::new(), failing: HashSet::new() }
    }

    /// True when any heat relay was last reported on (the engine's belief after a restart).
    async fn heat_relays_on(&self) -> bool {
        match self.store.relays().await {
            Ok(relays) => relays
                .iter()
                .any(|r| r.effective_function() == Some(RelayFunction::Heat) && r.state.is_on()),
            Err(_) => false,
        }
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

    async fn command_heat(&mut self, on: bool, lease_s: u32) {
        let relays = match self.store.relays().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read relays");
                return;
            }
        };
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
            let key = (host_id.clone(), output_id.clone());
            match result {
                Ok(status) => {
                    if self.failing.remove(&key) {
                        tracing::info!(%host_id, %output_id, "relay reachable again");
                    }
                    let now = millis(Timestamp::now());
                    if let Err(e) =
                        self.store.set_relay_state(&host_id, &output_id, status.state, now).await
                    {
                        tracing::error!(error = %e, "cannot record relay state");
                    }
                }
                Err(e) => {
                    if self.failing.insert(key) {
                        tracing::warn!(%host_id, %output_id, error = %e, "relay command failed");
                    }
                }
            }
        }
    }
}
