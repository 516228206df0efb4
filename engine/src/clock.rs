//! Agents' clocks: where a reading belongs in time when its agent's clock is wrong, which
//! agents to flag, and when to say so in the log.
//!
//! Pi Zeros have no real-time clock: they boot with the time of the last shutdown (or 1970)
//! until NTP syncs, and NTP may then step the clock by hours. An agent sends its clock with
//! each request (`agent_time`); the difference to the engine's clock at receipt is the agent's
//! offset (network delay is noise next to the limit). Beyond `--clock-skew-max-s` (30 s) the
//! agent is "skewed": `GET /v1/agents` says so and the log says when it becomes and stops being
//! so.
//!
//! # Placing a reading
//! Every reading's timestamp was written by the agent's clock at the moment it was read, which
//! may not be the clock state it reports now. [`ReportClock::place`] decides, per reading:
//!
//! - **Re-timed** when the agent is skewed and the reading is consistent with the offset it
//!   reports now: moved by the offset, it lands at a moment it can have been read, no later
//!   than its receipt and no earlier than [`LIVE_MAX_AGE`] before it for a live update (a live
//!   reading is taken moments before it is sent), [`REPLAY_MAX_AGE`] for a backlog. This is
//!   what a Pi that booted in 1970, or one an hour ahead, needs: its readings become the
//!   sensor's latest and its outage backlog lands where it belongs, however large the offset.
//!   The consistency check, not the size of the offset, is what refuses to move a reading by
//!   centuries: an `agent_time` of year 3000 with a reading stamped now would re-time it to the
//!   year 1053, which is no moment it can have been read.
//! - **Stored as received** otherwise: at its own timestamp, never moved. When the engine could
//!   not place it (a skewed agent and an inconsistent reading, or a reading stamped more than
//!   the skew limit after its receipt: it was read while the clock was ahead and the clock has
//!   been corrected since), it is *misdated*: stored all the same (never dropped: a clock
//!   verdict must not cost a reading), counted against its agent (`misdated_readings` and
//!   `last_misdated` in `GET /v1/agents`) and logged at most once an hour per agent.
//!
//! The offset applied is steady: a new measurement within [`JITTER`] of the one applied keeps
//! it, so a report sent twice (its answer was lost, the agent queued and replayed it) is
//! re-timed to the same instants and stored once (readings are unique per sensor and time).
//!
//! # The latest reading
//! A reading competes to be its sensor's latest at the earlier of its time and its receipt, so
//! a sensor's latest is never after now and a clock a few seconds ahead cannot hold it. A
//! reading stamped after its receipt by more than the skew limit (live) or at all (backlog: a
//! queued reading is older than the live one sent before it) never becomes the latest: a
//! replayed backlog from a clock that was ahead cannot freeze a sensor at an old value while
//! newer live readings arrive.
//!
//! # What cannot be known
//! A backlog that spans a clock step (NTP corrected the clock during the outage) carries
//! readings from two clock states, and only the present one is reported. Those from the other
//! state are stored as received: in the past they are indistinguishable from readings taken
//! then; after their receipt they are misdated. Nothing is lost, the latest is never frozen,
//! and the agent is flagged; only the chart places them by the clock that was wrong.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hearth_proto::Timestamp;
use hearth_proto::agents::AgentKind;
use jiff::SignedDuration;

/// A live reading is read moments before its report is sent; one re-timed to more than this
/// before its receipt was not read by the clock the report carries.
pub(crate) const LIVE_MAX_AGE: SignedDuration = SignedDuration::from_mins(10);
/// A queued reading waits at most weeks for its replay (the agent's queue is bounded); one
/// re-timed to more than a year before its receipt was not read by the clock the backlog
/// carries.
pub(crate) const REPLAY_MAX_AGE: SignedDuration = SignedDuration::from_hours(366 * 24);
/// How far a new offset measurement may stray from the applied offset and keep it: network
/// delay and a busy engine, not a change of the agent's clock.
pub(crate) const JITTER: SignedDuration = SignedDuration::from_secs(2);
/// A re-timed reading may land this far after its receipt (rounding), and counts as received.
const LANDING_SLACK_MS: i64 = 1_000;
/// Misdated readings are logged at most this often per agent.
const MISDATED_LOG_EVERY: Duration = Duration::from_secs(3600);

/// Which request a reading came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `PUT /v1/sensors/update`: read moments ago.
    Live,
    /// `PUT /v1/sensors/backlog`: queued during an outage, older than the live reading.
    Backlog,
}

/// Where a reading is stored and whether it may be its sensor's latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Its time as stored, Unix ms.
    pub(crate) ts: i64,
    /// The time it competes to be the sensor's latest at (never after its receipt); None: it
    /// never becomes the latest.
    pub(crate) latest_at: Option<i64>,
    /// Stored as received although the engine could not place it in time.
    pub(crate) misdated: bool,
}

/// One report's clock: its receipt and the agent's offset applied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportClock {
    /// The engine's time at receipt, Unix ms.
    pub(crate) now_ms: i64,
    /// Agent clock minus engine clock, ms, as applied (steady within [`JITTER`]); None when the
    /// report did not carry the agent's clock.
    pub(crate) offset_ms: Option<i64>,
    /// The offset is beyond the limit.
    pub(crate) skewed: bool,
    /// The limit, ms.
    max_ms: i64,
}

impl ReportClock {
    /// A report's clock from its parts (the handlers get it from [`ClockWatch::report`]).
    pub(crate) fn new(now_ms: i64, offset_ms: Option<i64>, max: SignedDuration) -> Self {
        let max_ms = max.as_millis().clamp(0, i128::from(i64::MAX)) as i64;
        let skewed = offset_ms.is_some_and(|o| o.unsigned_abs() > max_ms.unsigned_abs());
        Self { now_ms, offset_ms, skewed, max_ms }
    }

    /// Place one reading stamped `stamp` (None: the engine's time of receipt); see the module
    /// docs for the rules.
    pub(crate) fn place(&self, stamp: Option<Timestamp>, kind: Kind) -> Placed {
        let now = self.now_ms;
        let Some(stamp) = stamp else {
            return Placed { ts: now, latest_at: Some(now), misdated: false };
        };
        let stamp = stamp.as_millisecond();
        // How far after its receipt a reading's time may be and still compete for the latest
        // (at its receipt): a clock within the limit for a live reading; nothing for a queued
        // one, which is older than the live reading that went before it.
        let ahead_ok = match kind {
            Kind::Live => self.max_ms,
            Kind::Backlog => 0,
        };
        let latest_at = |ts: i64| (ts <= now.saturating_add(ahead_ok)).then_some(ts.min(now));
        if let (true, Some(offset)) = (self.skewed, self.offset_ms) {
            let retimed = stamp.saturating_sub(offset);
            let max_age = match kind {
                Kind::Live => LIVE_MAX_AGE,
                Kind::Backlog => REPLAY_MAX_AGE,
            };
            let oldest = now.saturating_sub(max_age.as_millis() as i64);
            if (oldest..=now.saturating_add(LANDING_SLACK_MS)).contains(&retimed) {
                return Placed {
                    ts: retimed,
                    latest_at: match kind {
                        Kind::Live => Some(retimed.min(now)),
                        Kind::Backlog => latest_at(retimed),
                    },
                    misdated: false,
                };
            }
            // Not read by the clock reported now: as received, flagged.
            return Placed { ts: stamp, latest_at: latest_at(stamp), misdated: true };
        }
        let misdated = stamp > now.saturating_add(self.max_ms);
        Placed { ts: stamp, latest_at: latest_at(stamp), misdated }
    }
}

/// The skew limit, the offsets applied per sensor agent, and what has been logged.
#[derive(Debug)]
pub(crate) struct ClockWatch {
    max: SignedDuration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Agents currently beyond the limit (their transitions are logged).
    skewed: BTreeSet<String>,
    /// The offset applied to each sensor agent's reports, ms.
    applied: HashMap<String, i64>,
    /// When each agent's misdated readings were last logged.
    misdated_logged: HashMap<String, Instant>,
}

impl ClockWatch {
    pub(crate) fn new(max: SignedDuration) -> Self {
        Self { max, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when an offset is beyond the limit.
    pub(crate) fn is_skewed(&self, offset: SignedDuration) -> bool {
        offset.abs() > self.max
    }

    /// True when a stored offset (milliseconds) is beyond the limit.
    pub(crate) fn is_skewed_ms(&self, offset_ms: i64) -> bool {
        self.is_skewed(SignedDuration::from_millis(offset_ms))
    }

    /// Record a sensor agent's offset; true when it is skewed. Logs once when the agent
    /// becomes skewed and once when it is back within the limit.
    pub(crate) fn observe(&self, host_id: &str, offset: SignedDuration) -> bool {
        self.transition(
            AgentKind::Sensor,
            host_id,
            offset,
            "agent clock is wrong; the engine re-times its readings by the offset where they \
             are consistent with it, and stores the others as received (check NTP on the agent)",
        )
    }

    /// Record a relay agent's offset (sent with its registration); true when it is skewed,
    /// logged as a sensor agent's. A relay agent's clock changes nothing the engine does (its
    /// status durations are relative), so the log only asks for the clock to be fixed.
    pub(crate) fn observe_relay(&self, host_id: &str, offset: SignedDuration) -> bool {
        self.transition(
            AgentKind::Relay,
            host_id,
            offset,
            "relay agent clock is wrong (check NTP on the agent)",
        )
    }

    /// Whether `offset` is beyond the limit, logging when that changes for the agent. A sensor
    /// and a relay agent of one host are tracked apart: each logs its own transitions.
    fn transition(
        &self,
        kind: AgentKind,
        host_id: &str,
        offset: SignedDuration,
        wrong: &str,
    ) -> bool {
        let skewed = self.is_skewed(offset);
        let (key, who) = match kind {
            AgentKind::Sensor => (host_id.to_owned(), "agent"),
            AgentKind::Relay => (format!("relay agent {host_id}"), "relay agent"),
        };
        let mut state = self.state();
        let offset_s = offset.as_secs_f64();
        if skewed && state.skewed.insert(key.clone()) {
            tracing::warn!(host_id, offset_s, max_s = self.max.as_secs_f64(), "{wrong}");
        } else if !skewed && state.skewed.remove(&key) {
            tracing::info!(host_id, offset_s, "{who} clock is right again");
        }
        skewed
    }

    /// A sensor agent's report received at `now` with its clock `agent_time`: measure the
    /// offset, keep the applied one when the measurement is within [`JITTER`] of it, flag and
    /// log as [`Self::observe`] does.
    pub(crate) fn report(
        &self,
        host_id: &str,
        agent_time: Option<Timestamp>,
        now: Timestamp,
    ) -> ReportClock {
        let now_ms = now.as_millisecond();
        let Some(agent_time) = agent_time else {
            return ReportClock::new(now_ms, None, self.max);
        };
        let measured = agent_time.as_millisecond().saturating_sub(now_ms);
        let jitter = JITTER.as_millis() as i64;
        let applied = {
            let mut state = self.state();
            let slot = state.applied.entry(host_id.to_owned()).or_insert(measured);
            if slot.abs_diff(measured) > jitter.unsigned_abs() {
                *slot = measured;
            }
            *slot
        };
        self.observe(host_id, SignedDuration::from_millis(applied));
        ReportClock::new(now_ms, Some(applied), self.max)
    }

    /// Log that an agent sent `count` readings the engine stored as received without being
    /// able to place them (at most once an hour per agent; `GET /v1/agents` counts them all).
    pub(crate) fn misdated(&self, host_id: &str, count: usize, offset_ms: Option<i64>) {
        if count == 0 {
            return;
        }
        let mut state = self.state();
        let due =
            state.misdated_logged.get(host_id).is_none_or(|at| at.elapsed() >= MISDATED_LOG_EVERY);
        if due {
            state.misdated_logged.insert(host_id.to_owned(), Instant::now());
            tracing::warn!(
                host_id,
                count,
                offset_s = offset_ms.map(|ms| ms as f64 / 1000.0),
                "stored readings the engine cannot place in time (stamped after they were \
                 received, or not by the clock the agent reports now): kept at their own \
                 timestamps (none stamped after its receipt becomes a sensor's latest), \
                 counted in GET /v1/agents (the agent's clock was wrong when it read them; \
                 check NTP on the agent)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: SignedDuration = SignedDuration::from_secs(30);
    const NOW: i64 = 1_800_000_000_000;
    const S: i64 = 1_000;
    const H: i64 = 3_600 * S;

    fn at(ms: i64) -> Option<Timestamp> {
        Timestamp::from_millisecond(ms).ok()
    }

    fn clock(offset_ms: Option<i64>) -> ReportClock {
        ReportClock::new(NOW, offset_ms, MAX)
    }

    fn placed(ts: i64, latest_at: Option<i64>, misdated: bool) -> Placed {
        Placed { ts, latest_at, misdated }
    }

    #[test]
    fn limit_is_symmetric_and_transitions_are_tracked() {
        let w = ClockWatch::new(MAX);
        assert!(!w.observe("pi", SignedDuration::from_secs(29)));
        assert!(w.observe("pi", SignedDuration::from_secs(-31)));
        assert!(w.observe("pi", SignedDuration::from_hours(-24 * 365)));
        assert!(w.is_skewed_ms(31_000) && !w.is_skewed_ms(-30_000));
        assert!(!w.observe("pi", SignedDuration::ZERO));
        assert!(w.state().skewed.is_empty());
    }

    #[test]
    fn a_right_clock_is_stored_as_stamped() {
        let c = clock(Some(-40));
        assert_eq!(
            c.place(at(NOW - 2 * S), Kind::Live),
            placed(NOW - 2 * S, Some(NOW - 2 * S), false)
        );
        // No timestamp: the receipt.
        assert_eq!(c.place(None, Kind::Live), placed(NOW, Some(NOW), false));
        // A few seconds ahead (within the limit): stored so, competing at its receipt.
        assert_eq!(c.place(at(NOW + 10 * S), Kind::Live), placed(NOW + 10 * S, Some(NOW), false));
        // The same from a backlog never competes: the live reading went before it.
        assert_eq!(c.place(at(NOW + 10 * S), Kind::Backlog), placed(NOW + 10 * S, None, false));
        // A week-old queued reading, as stamped.
        let week = NOW - 7 * 24 * H;
        assert_eq!(c.place(at(week), Kind::Backlog), placed(week, Some(week), false));
    }

    #[test]
    fn consistent_readings_of_a_skewed_clock_are_re_timed_by_any_offset() {
        // Booted in 1970: read 2 s before the report was sent by its clock.
        let boot = 1_000 * S;
        let c = clock(Some(boot - NOW));
        assert!(c.skewed);
        assert_eq!(
            c.place(at(boot - 2 * S), Kind::Live),
            placed(NOW - 2 * S, Some(NOW - 2 * S), false)
        );
        // Its outage backlog, read by the same clock an hour ago.
        assert_eq!(c.place(at(boot - H), Kind::Backlog), placed(NOW - H, Some(NOW - H), false));
        // An hour ahead: live and backlog come back to their moments; none after the receipt.
        let c = clock(Some(H));
        assert_eq!(c.place(at(NOW + H - S), Kind::Live), placed(NOW - S, Some(NOW - S), false));
        assert_eq!(
            c.place(at(NOW + H - 10 * 60 * S), Kind::Backlog),
            placed(NOW - 10 * 60 * S, Some(NOW - 10 * 60 * S), false)
        );
    }

    #[test]
    fn inconsistent_readings_are_never_moved_by_centuries() {
        // agent_time in the year 3000, the reading stamped now: as received, flagged.
        let year_3000 = 32_503_680_000_000;
        let c = clock(Some(year_3000 - NOW));
        assert_eq!(c.place(at(NOW), Kind::Live), placed(NOW, Some(NOW), true));
        assert_eq!(c.place(at(NOW - H), Kind::Backlog), placed(NOW - H, Some(NOW - H), true));
        // A live reading an hour older than the report, by the same wrong clock: not live.
        let c = clock(Some(-2 * H));
        assert_eq!(
            c.place(at(NOW - 3 * H), Kind::Live),
            placed(NOW - 3 * H, Some(NOW - 3 * H), true)
        );
        // A Pi back in 1970 replays readings queued before its reboot, stamped by the right
        // clock: re-timed they would land 56 years ahead. As stamped, and right.
        let c = clock(Some(1_000 * S - NOW));
        assert_eq!(c.place(at(NOW - H), Kind::Backlog), placed(NOW - H, Some(NOW - H), true));
        // Stamped after the report by the same clock: no moment it can have been read.
        let c = clock(Some(H));
        assert_eq!(c.place(at(NOW + 2 * H), Kind::Live), placed(NOW + 2 * H, None, true));
    }

    #[test]
    fn readings_from_a_clock_corrected_since_are_kept_but_never_latest() {
        // The clock is right now; the backlog was read while it was an hour ahead.
        let c = clock(Some(5));
        assert_eq!(
            c.place(at(NOW + 50 * 60 * S), Kind::Backlog),
            placed(NOW + 50 * 60 * S, None, true)
        );
        // Or five minutes ahead: beyond the limit as well.
        assert_eq!(
            c.place(at(NOW + 5 * 60 * S), Kind::Backlog),
            placed(NOW + 5 * 60 * S, None, true)
        );
        // Without agent_time (a third-party sensor), a future stamp is misdated too.
        let c = clock(None);
        assert_eq!(c.place(at(NOW + H), Kind::Live), placed(NOW + H, None, true));
        assert_eq!(c.place(at(NOW + 20 * S), Kind::Live), placed(NOW + 20 * S, Some(NOW), false));
    }

    #[test]
    fn the_applied_offset_is_steady_within_the_jitter() {
        let w = ClockWatch::new(MAX);
        let now = at(NOW).unwrap_or(Timestamp::UNIX_EPOCH);
        let sent = |offset_ms: i64| at(NOW + offset_ms);
        let first = w.report("pi", sent(H), now);
        assert_eq!((first.offset_ms, first.skewed), (Some(H), true));
        // Network delay moves the measurement by less than the jitter: the same offset, so a
        // re-sent report lands on the same instants.
        assert_eq!(w.report("pi", sent(H - 1_500), now).offset_ms, Some(H));
        assert_eq!(w.report("pi", sent(H + 1_999), now).offset_ms, Some(H));
        // NTP stepped the clock: the new offset.
        let fixed = w.report("pi", sent(-20), now);
        assert_eq!((fixed.offset_ms, fixed.skewed), (Some(-20), false));
        // Another agent has its own; no agent_time, no offset.
        assert_eq!(w.report("zero", sent(-H), now).offset_ms, Some(-H));
        assert_eq!(w.report("zero", None, now), ReportClock::new(NOW, None, MAX));
    }
}
