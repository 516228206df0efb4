//! Equipment protection: minimum on/off times and the heat↔cool changeover delay.
//!
//! Judged from what the RELAYS report (state and when it last switched), not from the last
//! decision: a relay that blipped off (power cut, agent restart) stays off for the minimum off
//! time, and an engine that restarts while the furnace runs keeps it on for what is left of
//! the minimum on time. An unknown switch time holds nothing.

use hearth_proto::Timestamp;
use hearth_proto::control::{ReasonCode, System};

use super::algorithm::Proposal;
use super::safety::is_safety;
use super::text::span;
use super::{Equipment, Running, Settings};

/// The decision after protection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub(crate) heat: bool,
    pub(crate) cool: bool,
    pub(crate) code: ReasonCode,
    pub(crate) reason: String,
    /// When the hold ends (see `Decision::held_until`).
    pub(crate) until: Option<Timestamp>,
}

/// Seconds left of `min_s` since `since`; None when nothing is left or `since` is unknown.
fn left(now: Timestamp, since: Option<Timestamp>, min_s: u32) -> Option<i64> {
    let elapsed = now.duration_since(since?).as_secs();
    let min = i64::from(min_s);
    (elapsed < min).then(|| (min - elapsed).min(min))
}

/// `min_s` after `since`: when a hold counted from `since` ends (exact, so every pass during
/// the hold gives the same instant).
fn until(since: Option<Timestamp>, min_s: u32) -> Option<Timestamp> {
    since?.checked_add(jiff::SignedDuration::from_secs(i64::from(min_s))).ok()
}

fn name(system: System) -> &'static str {
    match system {
        System::Heat => "heat",
        System::Cool => "cool",
    }
}

pub(crate) fn protect(s: &Settings, now: Timestamp, eq: Equipment, p: &Proposal) -> Held {
    let mut want = [p.heat, p.cool];
    let relays: [Running; 2] = [eq.heat, eq.cool];
    let systems = [System::Heat, System::Cool];
    let mut hold: Option<(ReasonCode, String, Option<Timestamp>)> = None;
    let mut note = |code: ReasonCode, text: String, until: Option<Timestamp>| {
        if hold.is_none() {
            hold = Some((code, format!("{text} ({})", p.reason), until));
        }
    };

    // Stopping: safety stops at once; anything else waits for the minimum on time.
    for i in 0..2 {
        if relays[i].on
            && !want[i]
            && !is_safety(p.code)
            && let Some(left) = left(now, relays[i].since, s.min_on_s)
        {
            want[i] = true;
            note(
                ReasonCode::MinOnTime,
                format!("{} held on: min on time, {} left", name(systems[i]), span(left)),
                until(relays[i].since, s.min_on_s),
            );
        }
    }
    // Starting: also against the frost floor (short cycles break compressors; minutes do not
    // freeze a house).
    for i in 0..2 {
        let (me, other) = (systems[i], systems[1 - i]);
        if relays[i].on || !want[i] {
            continue;
        }
        if let Some(left) = left(now, relays[i].since, s.min_off_s) {
            want[i] = false;
            note(
                ReasonCode::MinOffTime,
                format!("{} held off: min off time, {} left", name(me), span(left)),
                until(relays[i].since, s.min_off_s),
            );
        } else if relays[1 - i].on {
            want[i] = false;
            note(
                ReasonCode::Changeover,
                format!("{} held off: changeover, {} still running", name(me), name(other)),
                None,
            );
        } else if let Some(left) = left(now, relays[1 - i].ran_until, s.changeover_s) {
            want[i] = false;
            note(
                ReasonCode::Changeover,
                format!(
                    "{} held off: changeover from {}, {} left",
                    name(me),
                    name(other),
                    span(left)
                ),
                until(relays[1 - i].ran_until, s.changeover_s),
            );
        }
    }
    // Never both: only when both relays already ran; keep what the proposal wants.
    if want[0] && want[1] {
        want = [p.heat, p.cool && !p.heat];
    }
    let (code, reason, until) = hold.unwrap_or_else(|| (p.code, p.reason.clone(), None));
    Held { heat: want[0], cool: want[1], code, reason, until }
}
