//! Agents' clocks: flag the ones that are wrong, and log when one becomes or stops being so.
//!
//! Pi Zeros have no real-time clock: they boot with the time of the last shutdown (or 1970)
//! until NTP syncs. An agent sends its clock with each report (`agent_time`); the difference to
//! the engine's clock at receipt is the agent's offset (network delay is noise next to the
//! limit). Beyond `--clock-skew-max-s` the agent is "skewed": `GET /v1/agents` says so, and its
//! LIVE readings are re-timed by the offset (a reading timestamped 1970 would otherwise never
//! become a sensor's latest, and the decision loop would lose the sensor). Backlog readings
//! are not re-timed: the offset when they were read is unknown, since NTP may have corrected
//! the clock between reading and replay.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use jiff::SignedDuration;

/// The skew limit and which agents are currently beyond it (for logging transitions).
#[derive(Debug)]
pub(crate) struct ClockWatch {
    max: SignedDuration,
    skewed: Mutex<BTreeSet<String>>,
}

impl ClockWatch {
    pub(crate) fn new(max: SignedDuration) -> Self {
        Self { max, skewed: Mutex::new(BTreeSet::new()) }
    }

    /// True when an offset is beyond the limit.
    pub(crate) fn is_skewed(&self, offset: SignedDuration) -> bool {
        offset.abs() > self.max
    }

    /// True when a stored offset (milliseconds) is beyond the limit.
    pub(crate) fn is_skewed_ms(&self, offset_ms: i64) -> bool {
        self.is_skewed(SignedDuration::from_millis(offset_ms))
    }

    /// Record a sensor agent's offset; true when it is skewed. Logs once when the agent becomes
    /// skewed and once when it is back within the limit.
    pub(crate) fn observe(&self, host_id: &str, offset: SignedDuration) -> bool {
        let skewed = self.is_skewed(offset);
        let mut set = self.skewed.lock().unwrap_or_else(PoisonError::into_inner);
        let offset_s = offset.as_secs_f64();
        if skewed && set.insert(host_id.to_owned()) {
            tracing::warn!(
                host_id,
                offset_s,
                max_s = self.max.as_secs_f64(),
                "agent clock is wrong; its live readings are re-timed by the engine until it \
                 is fixed (check NTP on the agent)"
            );
        } else if !skewed && set.remove(host_id) {
            tracing::info!(host_id, offset_s, "agent clock is right again");
        }
        skewed
    }

    /// Record a relay agent's offset (sent with its registration); true when it is skewed.
    /// Logged once when it becomes and once when it stops being so, like a sensor agent's. A
    /// relay agent's clock changes nothing the engine does (its status durations are
    /// relative), so the log only asks for the clock to be fixed. Tracked apart from a sensor
    /// agent on the same host, so each logs its own transitions.
    pub(crate) fn observe_relay(&self, host_id: &str, offset: SignedDuration) -> bool {
        let skewed = self.is_skewed(offset);
        let key = format!("relay agent {host_id}");
        let mut set = self.skewed.lock().unwrap_or_else(PoisonError::into_inner);
        let offset_s = offset.as_secs_f64();
        if skewed && set.insert(key.clone()) {
            tracing::warn!(
                host_id,
                offset_s,
                max_s = self.max.as_secs_f64(),
                "relay agent clock is wrong (check NTP on the agent)"
            );
        } else if !skewed && set.remove(&key) {
            tracing::info!(host_id, offset_s, "relay agent clock is right again");
        }
        skewed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_symmetric_and_transitions_are_tracked() {
        let w = ClockWatch::new(SignedDuration::from_secs(30));
        assert!(!w.observe("pi", SignedDuration::from_secs(29)));
        assert!(w.observe("pi", SignedDuration::from_secs(-31)));
        assert!(w.observe("pi", SignedDuration::from_hours(-24 * 365)));
        assert!(w.is_skewed_ms(31_000) && !w.is_skewed_ms(-30_000));
        assert!(!w.observe("pi", SignedDuration::ZERO));
        let set = w.skewed.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(set.is_empty());
    }
}
