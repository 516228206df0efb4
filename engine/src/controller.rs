//! The decision loop: per zone it gathers the inputs of `zones::decide_zone` from the store
//! and the zone's schedule, plans the house (`zones::plan`: every valve and plant), records
//! and publishes each zone's decision and the house plan, and hands the plan's relays to the
//! relay commander (`commander.rs`). A house of one zone and one plant without valves (every
//! installation from before zones) decides and commands exactly as `control::decide` did.
//!
//! Each pass derives everything from stored state, never from the previous pass: the target
//! from the schedule at this instant, the temperature from the newest readings, the equipment
//! state from what the relay agents last reported. So a restart, an outage or a relay that
//! blipped cannot leave the loop believing something stale (a missed schedule edge, a lost
//! minimum-off timer). The only memory kept across passes is what was last commanded and
//! recorded, to avoid repeating commands and records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hearth_common::auth::SiteSecret;
use hearth_common::sse::EventBus;
use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::events::Event;
use hearth_proto::history::Run;
use hearth_proto::zones::HouseStatus;
use jiff::SignedDuration;
use tokio::sync::{Notify, watch};

use crate::commander::Commander;
use crate::control::{self, Decision, Equipment, Learned, STUCK_WINDOW, Settings};
use crate::metrics::Counters;
use crate::readings::Readings;
use crate::store::Schedules;
use crate::store::Store;
use crate::zones::live::Zones;
use crate::zones::plan::HousePlan;
use crate::zones::resolve::Outputs;
use crate::zones::{self, House, RelayId, ZoneCall, ZoneId, ZoneInputs};

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

/// Passes start at least this far apart. Every report that arrives wakes the loop, and a pass
/// reads the sensors, relays and runs from the store: under a burst of reports the loop ran
/// passes back to back and cost more than the ingest it reacted to. A quarter second is far
/// below anything a house or a relay's minimum times can notice, and a wake that comes during
/// it is not lost (it is taken by the pass that follows). A shorter tick (configured) wins.
const MIN_PASS_GAP: Duration = Duration::from_millis(250);

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
    /// The latest house plan, with every zone's decision.
    planned: watch::Sender<Option<Arc<Planned>>>,
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
            planned: watch::Sender::new(None),
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

    /// The default zone's latest decision: what the single-zone routes show.
    pub(crate) fn latest(&self) -> Option<Decision> {
        self.latest.borrow().clone()
    }

    /// A zone's latest decision; None before the loop decided for it (or for a zone that does
    /// not exist).
    pub(crate) fn latest_in(&self, zone: &ZoneId) -> Option<Decision> {
        if zone.is_default() {
            return self.latest();
        }
        let planned = self.planned.borrow().clone()?;
        planned.plan.zones.iter().find(|o| &o.zone == zone).map(|o| o.decision.clone())
    }

    /// The latest house plan as people see it; None before the loop's first pass.
    pub(crate) fn house(&self) -> Option<HouseStatus> {
        self.planned.borrow().as_ref().map(|p| p.status.clone())
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

    /// One pass: derive every zone's inputs, decide per zone, plan the house. Fails only when
    /// the store does.
    async fn decide(
        &self,
        now: Timestamp,
        recent: &[Run],
        learned: &Learned,
    ) -> Result<Pass, sqlx::Error> {
        let relays = self.store.relays().await?;
        let sensors = self.readings.snapshots().await?;
        let house = self.zones.house(&sensors);
        let (state, equipment) = Outputs::new(&house, &relays).state(recent, now);
        let until = now.checked_add(LOOKAHEAD).unwrap_or(Timestamp::MAX);
        let calls: Vec<ZoneCall> = house
            .zones
            .iter()
            .map(|zone| {
                // A zone created a moment ago may have no schedule yet: it holds its frost
                // floor until it has (as `control::propose` does without a timeline).
                let segments = self
                    .schedules
                    .zone_snapshot(&zone.id)
                    .map(|s| s.segments(now, until))
                    .unwrap_or_default();
                let inputs = ZoneInputs {
                    now,
                    segments: &segments,
                    sensors: &sensors,
                    stale_after: self.readings.stale_after(),
                    learned,
                    runs: recent,
                };
                zones::decide_zone(&house, zone, &inputs, &state)
            })
            .collect();
        let plan = zones::plan(&house, &calls, &state, now);
        Ok(Pass { house, calls, plan, equipment, at: now })
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
        let mut fallbacks = crate::fallback::Pusher::default();
        let mut schedule = self.schedules.subscribe();
        // `Config::lease_s` guarantees at least 4 s, so this is at least a second.
        let renew_every = Duration::from_secs(u64::from(self.config.lease_s / 4));
        let mut next_renew = tokio::time::Instant::now();
        let mut zones_changed = self.zones.subscribe();
        let mut commanded: Option<BTreeMap<RelayId, bool>> = None;
        // A relay agent was read and waits for its first command.
        let mut fresh = false;
        // Per zone, the key of the decision last recorded, from the stored ones: a restart
        // records no zone's unchanged decision again.
        let mut recorded: BTreeMap<ZoneId, RecordKey> = BTreeMap::new();
        if let Some(d) = self.latest() {
            recorded.insert(ZoneId::default_zone(), record_key(&d));
        }
        for zone in self.zones.stored().zones.iter().filter(|z| !z.id.is_default()) {
            // Without the database nothing is known: the first pass records.
            let stored = self.store.decisions(&zone.id, None, None, 1).await.ok();
            if let Some(d) = stored.and_then(|d| d.into_iter().next()) {
                recorded.insert(zone.id.clone(), record_key(&d));
            }
        }
        let mut published: Option<Shown> = None;
        let mut published_house: Option<HouseShown> = None;
        let mut learned = self.learn(Timestamp::now()).await;
        let mut learned_at = tokio::time::Instant::now();
        // The coast after each switch of the heat, watched in the temperatures decided on;
        // what an earlier run of the engine watched counts from the first pass.
        let mut coast_watch = match self.store.load_learned(Timestamp::now()).await {
            Ok(watch) => watch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the learned coast; learning it again");
                crate::control::CoastWatch::default()
            }
        };
        learned.heat_coast = coast_watch.coast(Timestamp::now());
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
            let pass_began = tokio::time::Instant::now();
            // Read what a relay agent is doing before deciding for it and commanding it: after
            // this engine's start, and after the agent was silent or registered again. The
            // engine neither re-commands blindly nor flaps a furnace that is running, and the
            // minimum on/off times count from the agent's real switch times (its fallback
            // program's too). An agent read now is commanded in this pass.
            fresh |= commander.reconcile(renew_every).await;
            let pass = async {
                let now = Timestamp::now();
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
                let pass = self.decide(now, recent, &learned).await?;
                // The default zone's temperature against the house's heat: learning (the
                // heating rate, the coast) stays house-wide, as the runs do.
                let temp = pass.default_decision().and_then(|d| d.effective_temp_c);
                if coast_watch.observe(now, pass.equipment.heat.on, temp)
                    && let Err(e) = self.store.save_learned(&coast_watch.watched()).await
                {
                    // Only a restart loses it: the watch in memory goes on.
                    tracing::warn!(error = %e, "cannot store the learned coast");
                }
                // Runs follow the relays, not the decisions: a refused or deferred command is
                // not a run, a relay that fell back by itself ended one. They are history: a
                // storage fault that keeps them from being written must not stop the commands.
                let ended = match self.track_runs(pass.equipment, recent, temp).await {
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
                Ok::<_, sqlx::Error>((pass, ended))
            };
            match pass.await {
                Ok((pass, ended)) => {
                    if ended || learned_at.elapsed() >= RELEARN_EVERY {
                        learned = self.learn(pass.at).await;
                        learned_at = tokio::time::Instant::now();
                    }
                    learned.heat_coast = coast_watch.coast(pass.at);
                    // Publish and record first: the decisions exist before they are acted on.
                    for outcome in &pass.plan.zones {
                        let (zone, decision) = (&outcome.zone, &outcome.decision);
                        let key = record_key(decision);
                        if recorded.get(zone) == Some(&key) {
                            continue;
                        }
                        recorded.insert(zone.clone(), key);
                        tracing::info!(zone = %zone, heat = decision.heat, cool = decision.cool,
                            reason = %decision.reason, "decision");
                        Counters::add(&self.counters.decisions_recorded, 1);
                        if let Err(e) = self.store.record_decision(zone, decision).await {
                            tracing::error!(error = %e, zone = %zone, "cannot record decision");
                        }
                    }
                    if let Some(decision) = pass.default_decision() {
                        self.latest.send_replace(Some(decision.clone()));
                        let shown = Shown::of(decision);
                        if published.as_ref() != Some(&shown) {
                            published = Some(shown);
                            self.events.publish(Event::Decision {
                                decision: Box::new(decision.clone().into()),
                            });
                        }
                    }
                    let status =
                        zones::status::house_status(&pass.house, &pass.calls, &pass.plan, pass.at);
                    let shown = HouseShown::of(&pass.plan);
                    let changed = published_house.as_ref() != Some(&shown);
                    self.planned.send_replace(Some(Arc::new(Planned {
                        status: status.clone(),
                        plan: pass.plan.clone(),
                    })));
                    if changed {
                        published_house = Some(shown);
                        self.events.publish(Event::House { house: Box::new(status) });
                    }
                    let want = pass.plan.relays;
                    let resend = self.resend.swap(false, Ordering::Relaxed);
                    if commanded.as_ref() != Some(&want)
                        || resend
                        || fresh
                        || tokio::time::Instant::now() >= next_renew
                    {
                        fresh = false;
                        let refused =
                            commander.command(&pass.house, &want, self.config.lease_s).await;
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
                _ = zones_changed.changed() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep_until(pass_began + MIN_PASS_GAP.min(tick)) => {}
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
type RecordKey = (bool, bool, hearth_proto::control::ReasonCode, Option<i64>);

fn record_key(d: &Decision) -> RecordKey {
    (d.heat, d.cool, d.reason_code, d.rule.id)
}

/// One pass's outcome.
struct Pass {
    /// The house decided with (the default zone holding the sensors no other zone names).
    house: House,
    calls: Vec<ZoneCall>,
    plan: HousePlan,
    /// What the plants' relays report, per system for the whole house: the runs follow it.
    equipment: Equipment,
    at: Timestamp,
}

impl Pass {
    /// The default zone's decision: what `GET /v1/control` and the `decision` event show.
    fn default_decision(&self) -> Option<&Decision> {
        self.plan.zones.iter().find(|o| o.zone.is_default()).map(|o| &o.decision)
    }
}

/// The latest plan, kept for the API.
#[derive(Debug)]
struct Planned {
    status: HouseStatus,
    plan: HousePlan,
}

/// What a dashboard shows of a house plan: the `house` event is published whenever any of it
/// changes (each zone's decision as [`Shown`], each valve and plant with its reason), but not
/// at every pass while only a countdown moves: the reason of a valve delay, an overrun or a
/// protection's hold counts its seconds down (`GET /v1/house` shows them as they run; a
/// protection's end is `held_until`), so it is left out while its code stays.
#[derive(Debug, Clone, PartialEq)]
struct HouseShown {
    zones: Vec<Shown>,
    valves: Vec<zones::plan::ValvePlan>,
    plants: Vec<zones::plan::PlantPlan>,
}

impl HouseShown {
    fn of(plan: &HousePlan) -> Self {
        use zones::plan::{PlantCode, ValveCode};
        let counting = |code| {
            matches!(
                code,
                PlantCode::ValveDelay
                    | PlantCode::Overrun
                    | PlantCode::MinOnTime
                    | PlantCode::MinOffTime
            )
        };
        let mut valves = plan.valves.clone();
        valves.iter_mut().filter(|v| v.code == ValveCode::Overrun).for_each(|v| v.reason.clear());
        let mut plants = plan.plants.clone();
        plants.iter_mut().filter(|p| counting(p.code)).for_each(|p| p.reason.clear());
        Self { zones: plan.zones.iter().map(|o| Shown::of(&o.decision)).collect(), valves, plants }
    }
}

/// What a dashboard shows of a decision: it is published (`decision` event) whenever any of
/// it changes, recorded or not, so the temperature on the face and the reason that names it
/// always come from one decision instead of a live number beside an old sentence.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    recorded: RecordKey,
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
