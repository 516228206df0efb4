//! The decision loop: it gathers the inputs of `control::decide` from the store and the
//! schedule, records and publishes the decision, and hands it to the relay commander
//! (`commander.rs`).
//!
//! Each pass derives everything from stored state, never from the previous pass: the target
//! from the schedule at this instant, the temperature from the newest readings, the equipment
//! state from what the relay agents last reported. So a restart, an outage or a relay that
//! blipped cannot leave the loop believing something stale (a missed schedule edge, a lost
//! minimum-off timer). The only memory kept across passes is what was last commanded and
//! recorded, to avoid repeating commands and records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hearth_common::auth::SiteSecret;
use hearth_common::sse::EventBus;
use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::events::Event;
use hearth_proto::history::Run;
use hearth_proto::relays::RelayFunction;
use jiff::SignedDuration;
use tokio::sync::{Notify, watch};

use crate::commander::Commander;
use crate::control::{self, Decision, Equipment, Inputs, Learned, Running, STUCK_WINDOW, Settings};
use crate::metrics::Counters;
use crate::readings::Readings;
use crate::store::Schedules;
use crate::store::{RelayRow, Store, from_millis};
use crate::zones::ZoneId;
use crate::zones::live::Zones;

/// How soon to repeat a command a relay agent refused (its minimum off time, an interlock).
const REFUSED_RETRY: Duration = Duration::from_secs(5);

/// How far ahead the loop resolves the schedule: predictive start looks up to its max lead
/// time (at most 4 h) past the next change.
const LOOKAHEAD: SignedDuration = SignedDuration::from_hours(26);

/// Runs of the last this-long teach the predictive algorithm the house's heating rate.
const LEARN_WINDOW: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The changeover delay is at most 2 h (`check_settings`): older runs cannot hold anything.
const CHANGEOVER_WINDOW: SignedDuration = SignedDuration::from_hours(2);

/// Re-learn at least this often even without a run ending (old runs age out).
const RELEARN_EVERY: Duration = Duration::from_secs(3600);

/// Timing of the loop.
#[derive(Debug, Clone)]
pub(crate) struct ControllerConfig {
    /// Re-evaluate at least this often even without new readings.
    pub(crate) tick: Duration,
    /// Lease granted with every `on` command; renewed every quarter lease.
    pub(crate) lease_s: u32,
}

/// Owns the control settings and the latest decision; `run` is the loop.
pub(crate) struct Controller {
    store: Store,
    /// The sensors, as the rest of the engine sees them.
    readings: Arc<Readings>,
    site: SiteSecret,
    config: ControllerConfig,
    schedules: Arc<Schedules>,
    events: EventBus,
    counters: Arc<Counters>,
    /// The zones and plants, and each zone's settings.
    zones: Arc<Zones>,
    /// Watch channels hold the current value without lock poisoning.
    latest: watch::Sender<Option<Decision>>,
    wake: Arc<Notify>,
    /// Set when relays registered: command them now rather than at the next renewal.
    resend: AtomicBool,
    /// Each relay agent's latest fallback (it lost the engine), for the API.
    pub(crate) fallbacks: Arc<crate::fallback::Seen>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Controller {
    #[expect(
        clippy::too_many_arguments,
        reason = "the loop's collaborators, each wired once by Engine::open"
    )]
    pub(crate) async fn new(
        store: Store,
        readings: Arc<Readings>,
        site: SiteSecret,
        config: ControllerConfig,
        schedules: Arc<Schedules>,
        events: EventBus,
        counters: Arc<Counters>,
        wake: Arc<Notify>,
        zones: Arc<Zones>,
    ) -> anyhow::Result<Self> {
        // Without the database (a start on a damaged card) there is no last decision to show.
        let latest = store
            .decisions(&ZoneId::default_zone(), None, None, 1)
            .await
            .ok()
            .and_then(|d| d.into_iter().next());
        Ok(Self {
            store,
            readings,
            site,
            config,
            schedules,
            events,
            counters,
            zones,
            latest: watch::Sender::new(latest),
            wake,
            resend: AtomicBool::new(false),
            fallbacks: Arc::default(),
        })
    }

    /// Read the house again (the database came back after a storage fault) and decide with
    /// it at once.
    pub(crate) async fn reload_settings(&self) {
        self.zones.reload().await;
        self.wake.notify_one();
    }

    /// The lease granted with every `on`: a relay agent silent-for-a-lease runs its fallback.
    pub(crate) fn lease_s(&self) -> u32 {
        self.config.lease_s
    }

    /// The default zone's settings: what the single-zone routes show.
    pub(crate) fn settings(&self) -> Settings {
        self.zones.default_settings()
    }

    /// Store a zone's new (checked) settings, then let the loop decide with them at once.
    /// False when the zone does not exist.
    pub(crate) async fn set_settings(
        &self,
        zone: &ZoneId,
        settings: Settings,
    ) -> Result<bool, sqlx::Error> {
        let found = self.zones.set_settings(zone, settings).await?;
        self.wake.notify_one();
        Ok(found)
    }

    pub(crate) fn latest(&self) -> Option<Decision> {
        self.latest.borrow().clone()
    }

    /// A zone's latest decision (the loop decides for the default zone only, so far).
    pub(crate) fn latest_in(&self, zone: &ZoneId) -> Option<Decision> {
        if zone.is_default() { self.latest() } else { None }
    }

    /// Sensor settings changed (weights, calibration): decide again at once.
    pub(crate) fn sensors_changed(&self) {
        self.wake.notify_one();
    }

    /// Relays (re)registered: command them on the next pass.
    pub(crate) fn relays_changed(&self) {
        self.resend.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    async fn learn(&self, now: Timestamp) -> Learned {
        let from = now.checked_sub(LEARN_WINDOW).unwrap_or(Timestamp::MIN);
        match self.store.runs(from, now).await {
            Ok(runs) => control::learn(&runs, now),
            Err(e) => {
                tracing::error!(error = %e, "cannot read runs; predictive start uses its defaults");
                control::learn(&[], now)
            }
        }
    }

    /// One pass: derive the inputs, decide. Fails only when the store does.
    async fn decide(
        &self,
        now: Timestamp,
        equipment: Equipment,
        learned: &Learned,
        runs: &[Run],
    ) -> Result<Decision, sqlx::Error> {
        let sensors = self.readings.snapshots().await?;
        let until = now.checked_add(LOOKAHEAD).unwrap_or(Timestamp::MAX);
        let segments = self.schedules.snapshot().segments(now, until);
        let settings = self.settings();
        Ok(control::decide(&Inputs {
            now,
            settings: &settings,
            segments: &segments,
            sensors: &sensors,
            stale_after: self.readings.stale_after(),
            equipment,
            learned,
            runs,
        }))
    }

    /// Decide, command, record; until `shutdown` turns true. Relays are not switched off on
    /// shutdown: their leases run out within `lease_s`, and a quick restart (upgrade) does not
    /// cycle the furnace.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commander = Commander::new(
            self.store.clone(),
            self.site.clone(),
            self.events.clone(),
            self.counters.clone(),
        );
        commander.fallbacks = self.fallbacks.clone();
        // Read what the relays are doing before commanding anything: after a restart the
        // engine neither re-commands blindly nor flaps a furnace that is running, and the
        // minimum on/off times continue from the real switch time.
        commander.reconcile().await;
        let mut fallbacks = crate::fallback::Pusher::default();
        let mut schedule = self.schedules.subscribe();
        // `Config::lease_s` guarantees at least 4 s, so this is at least a second.
        let renew_every = Duration::from_secs(u64::from(self.config.lease_s / 4));
        let mut next_renew = tokio::time::Instant::now();
        let mut commanded: Option<(bool, bool)> = None;
        let mut recorded = self.latest().map(|d| record_key(&d));
        let mut published: Option<Shown> = None;
        let mut learned = self.learn(Timestamp::now()).await;
        let mut learned_at = tokio::time::Instant::now();
        // The coast after each switch of the heat, watched in the temperatures decided on.
        let mut coast_watch = crate::control::CoastWatch::default();
        // The runs of the changeover window as last read: when the database does not answer,
        // the changeover delay still counts from the last run known, not from nothing.
        let mut recent_runs: Vec<Run> = Vec::new();
        // Storage failures of the runs are logged when they start and end, not every pass.
        let (mut runs_read, mut runs_unread, mut runs_unrecorded) = (false, false, false);
        // Under a systemd watchdog a pass must complete at least every half WatchdogSec, even
        // with a longer tick: each pass pings it, so a wedged pass (store, commanding) stops
        // the pings and systemd restarts the engine. Passes are idempotent, so waking more
        // often only costs a few queries.
        let tick = hearth_common::systemd::ping_every()
            .map_or(self.config.tick, |every| every.min(self.config.tick));
        loop {
            let pass = async {
                let now = Timestamp::now();
                let relays = self.store.relays().await?;
                // Runs of the changeover window and of the stuck-sensor window; open runs are
                // always among them.
                let window = CHANGEOVER_WINDOW.max(STUCK_WINDOW);
                let from = now.checked_sub(window).unwrap_or(Timestamp::MIN);
                // While storage is degraded nothing new is recorded: the runs last read stand
                // (and no file of a failed filesystem is kept open by reading them each pass).
                let read = if self.store.health().is_healthy() || !runs_read {
                    self.store.runs(from, now).await
                } else {
                    Ok(recent_runs.clone())
                };
                match read {
                    Ok(runs) => {
                        recent_runs = runs;
                        runs_unread = false;
                        runs_read = true;
                    }
                    Err(e) => {
                        if !std::mem::replace(&mut runs_unread, true) {
                            tracing::warn!(error = %e, "cannot read runs; using the last read");
                        }
                    }
                }
                let recent = &recent_runs;
                let equipment = equipment(&relays, recent, now);
                let decision = self.decide(now, equipment, &learned, recent).await?;
                coast_watch.observe(now, equipment.heat.on, decision.effective_temp_c);
                // Runs follow the relays, not the decisions: a refused or deferred command is
                // not a run, a relay that fell back by itself ended one. They are history: a
                // storage fault that keeps them from being written must not stop the commands.
                let ended =
                    match self.track_runs(equipment, recent, decision.effective_temp_c).await {
                        Ok(ended) => {
                            if std::mem::replace(&mut runs_unrecorded, false) {
                                tracing::info!("runs recorded again");
                            }
                            ended
                        }
                        Err(e) => {
                            if !std::mem::replace(&mut runs_unrecorded, true) {
                                tracing::warn!(error = %e, "cannot record runs");
                            }
                            false
                        }
                    };
                Ok::<_, sqlx::Error>((decision, ended))
            };
            match pass.await {
                Ok((decision, ended)) => {
                    if ended || learned_at.elapsed() >= RELEARN_EVERY {
                        learned = self.learn(decision.at).await;
                        learned_at = tokio::time::Instant::now();
                    }
                    learned.heat_coast = coast_watch.coast(decision.at);
                    // Publish and record first: the decision exists before it is acted on.
                    self.latest.send_replace(Some(decision.clone()));
                    let key = record_key(&decision);
                    if recorded.as_ref() != Some(&key) {
                        recorded = Some(key);
                        tracing::info!(heat = decision.heat, cool = decision.cool,
                            reason = %decision.reason, "decision");
                        Counters::add(&self.counters.decisions_recorded, 1);
                        if let Err(e) =
                            self.store.record_decision(&ZoneId::default_zone(), &decision).await
                        {
                            tracing::error!(error = %e, "cannot record decision");
                        }
                    }
                    let shown = Shown::of(&decision);
                    if published.as_ref() != Some(&shown) {
                        published = Some(shown);
                        self.events.publish(Event::Decision {
                            decision: Box::new(decision.clone().into()),
                        });
                    }
                    let want = (decision.heat, decision.cool);
                    let resend = self.resend.swap(false, Ordering::Relaxed);
                    if commanded != Some(want)
                        || resend
                        || tokio::time::Instant::now() >= next_renew
                    {
                        let refused = commander.command(want, self.config.lease_s).await;
                        // Each relay agent holds the program it runs if this engine is lost.
                        let settings = self.settings();
                        fallbacks
                            .push(
                                &self.store,
                                &self.site,
                                &settings,
                                self.config.lease_s,
                                |h, u, r| commander.client(h, u, r),
                            )
                            .await;
                        commanded = Some(want);
                        // A refusal (minimum off time, interlock) usually clears within
                        // seconds: ask again soon rather than a quarter lease later.
                        let wait =
                            if refused { renew_every.min(REFUSED_RETRY) } else { renew_every };
                        next_renew = tokio::time::Instant::now() + wait;
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the store; decision skipped"),
            }
            // The pass completed (a store error included: the loop is alive, and a restart
            // would not mend a broken database). Every HTTP call in it has a timeout.
            hearth_common::systemd::ping();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = schedule.changed() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    /// Open and close runs as the relays report heat and cool on and off, at the instants the
    /// agents report. True when a run ended.
    async fn track_runs(
        &self,
        eq: Equipment,
        recent: &[Run],
        temp: Option<f64>,
    ) -> Result<bool, sqlx::Error> {
        let mut ended = false;
        for (system, running) in [(System::Heat, eq.heat), (System::Cool, eq.cool)] {
            let is_open = recent.iter().any(|r| r.system == system && r.end.is_none());
            let at = running.since.unwrap_or_else(Timestamp::now);
            if running.on && !is_open {
                self.store.start_run(system, at, temp).await?;
            } else if !running.on && is_open {
                self.store.end_run(system, at, temp).await?;
                ended = true;
            }
        }
        Ok(ended)
    }
}

/// Decisions are recorded when any of these change.
fn record_key(d: &Decision) -> (bool, bool, hearth_proto::control::ReasonCode, Option<i64>) {
    (d.heat, d.cool, d.reason_code, d.rule.id)
}

/// What a dashboard shows of a decision: it is published (`decision` event) whenever any of
/// it changes, recorded or not, so the temperature on the face and the reason that names it
/// always come from one decision instead of a live number beside an old sentence.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    recorded: (bool, bool, hearth_proto::control::ReasonCode, Option<i64>),
    layer: hearth_proto::schedules::Layer,
    mode: hearth_proto::control::Mode,
    /// With its numbers: the temperature, the setpoint, the minutes left of a hold.
    reason: String,
    /// Bit patterns: a temperature that moved in the third decimal is shown again too (the
    /// reason text rounds to one).
    temp: Option<u64>,
    setpoints: (u64, u64),
    held_until: Option<Timestamp>,
}

impl Shown {
    fn of(d: &Decision) -> Self {
        Self {
            recorded: record_key(d),
            layer: d.rule.layer,
            mode: d.mode,
            reason: d.reason.clone(),
            temp: d.effective_temp_c.map(f64::to_bits),
            setpoints: (d.heat_setpoint_c.to_bits(), d.cool_setpoint_c.to_bits()),
            held_until: d.held_until,
        }
    }
}

/// What the relays show: per system, on when any of its relays is on. `since` comes from the
/// agents' own reports (how long ago the output switched, counted from the report), so the
/// minimum on/off times survive an engine restart and follow a relay that blipped; unknown
/// without a report. `ran_until` comes from the recorded runs of the changeover window
/// (`recent`): when each system last stopped after really running.
pub(crate) fn equipment(relays: &[RelayRow], recent: &[Run], now: Timestamp) -> Equipment {
    let mut eq = Equipment {
        heat: running(relays, RelayFunction::Heat),
        cool: running(relays, RelayFunction::Cool),
    };
    for (system, running) in [(System::Heat, &mut eq.heat), (System::Cool, &mut eq.cool)] {
        if running.on {
            continue;
        }
        let mine = || recent.iter().filter(|r| r.system == system);
        running.ran_until = if mine().any(|r| r.end.is_none()) {
            // Its relays report off but the run is not closed yet (this pass closes it): it
            // stopped when the relays say.
            running.since.or(Some(now))
        } else {
            mine().filter_map(|r| r.end).max()
        };
    }
    eq
}

fn running(relays: &[RelayRow], function: RelayFunction) -> Running {
    let outputs: Vec<&RelayRow> =
        relays.iter().filter(|r| r.effective_function() == Some(function)).collect();
    let on = outputs.iter().any(|r| r.state.is_on());
    let switched = |r: &&RelayRow| -> Option<Timestamp> {
        let status = r.status.as_ref()?;
        let ago = SignedDuration::try_from_secs_f64(status.changed_s_ago).ok()?;
        from_millis(r.updated).checked_sub(ago).ok()
    };
    // On: since the first output went on. Off: since the last one went off.
    let since = if on {
        outputs.iter().filter(|r| r.state.is_on()).map(switched).min().flatten()
    } else {
        outputs.iter().map(switched).max().flatten()
    };
    Running { on, since, ran_until: None }
}
