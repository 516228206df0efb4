//! What the store confirmed in the last seconds, kept to be written again after a fault: the
//! aging that the readings (`acked.rs`) and the changes people made (`changes.rs`) share.
//!
//! What is kept is bounded by age ([`KEEP_FOR`]) and by weight (each module's bound: a burst of
//! readings, a script that edits in a loop); the newest item stays whatever it weighs, as it is
//! the one most at risk. When a fault turns the store degraded, aging stops
//! ([`Window::freeze`]): however long the outage, what was confirmed just before it is written
//! again when the storage recovers, and aging goes on only once that is done
//! ([`Window::recovered`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a confirmed item is kept. A fault shows at the next write (a fraction of a second
/// in a busy house, a report interval in a quiet one) or at the next filesystem check
/// (`health::PROBE_EVERY`), which a commit the storage then loses preceded by moments.
pub(super) const KEEP_FOR: Duration = Duration::from_secs(10);

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Window<T> {
    state: Mutex<State<T>>,
    /// The most weight kept, but for the newest item.
    most: usize,
    weight: fn(&T) -> usize,
}

#[derive(Debug)]
struct State<T> {
    /// Confirmed items, oldest first, with when they were confirmed.
    items: VecDeque<(Instant, T)>,
    /// The weight of `items`.
    weight: usize,
    /// A fault was found: nothing ages out until the recovery has written it again.
    frozen: bool,
}

impl<T> Window<T> {
    /// A window that keeps at most `most` of `weight` (but for the newest item).
    pub(super) fn new(most: usize, weight: fn(&T) -> usize) -> Self {
        let state = State { items: VecDeque::new(), weight: 0, frozen: false };
        Self { state: Mutex::new(state), most, weight }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // Plain data, consistent after every statement: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prune_locked(&self, state: &mut State<T>, now: Instant) {
        if state.frozen {
            return;
        }
        while let Some((at, item)) = state.items.front() {
            let over = state.weight > self.most && state.items.len() > 1;
            if !over && now.saturating_duration_since(*at) < KEEP_FOR {
                break;
            }
            state.weight -= (self.weight)(item);
            state.items.pop_front();
        }
        if state.items.is_empty() {
            // Give a burst's slots back, not only their contents.
            state.items = VecDeque::new();
        }
    }

    /// Items confirmed at `now`.
    pub(super) fn keep(&self, items: impl IntoIterator<Item = T>, now: Instant) {
        let mut state = self.lock();
        for item in items {
            state.weight += (self.weight)(&item);
            state.items.push_back((now, item));
        }
        self.prune_locked(&mut state, now);
    }

    /// Let what is older than [`KEEP_FOR`] go (when nothing else comes); the weight still
    /// kept.
    pub(super) fn prune(&self, now: Instant) -> usize {
        let mut state = self.lock();
        self.prune_locked(&mut state, now);
        state.weight
    }

    /// A fault was found at `now`: what was kept then is kept until [`Self::recovered`].
    pub(super) fn freeze(&self, now: Instant) {
        let mut state = self.lock();
        self.prune_locked(&mut state, now);
        state.frozen = true;
    }

    /// What is kept, oldest first, as `each` gives it of every item.
    pub(super) fn replay<R, I: IntoIterator<Item = R>>(&self, each: impl FnMut(&T) -> I) -> Vec<R> {
        self.lock().items.iter().map(|(_, item)| item).flat_map(each).collect()
    }

    /// The replay is stored: aging goes on.
    pub(super) fn recovered(&self, now: Instant) {
        let mut state = self.lock();
        state.frozen = false;
        self.prune_locked(&mut state, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window<usize> {
        Window::new(100, |n| *n)
    }

    #[test]
    fn items_age_out_and_a_burst_keeps_its_newest_items() {
        let w = window();
        let t0 = Instant::now();
        w.keep([10], t0);
        w.keep([10], t0 + Duration::from_secs(5));
        assert_eq!(w.prune(t0), 20);
        assert_eq!(w.prune(t0 + KEEP_FOR), 10, "the first item aged out");
        assert_eq!(w.prune(t0 + KEEP_FOR + Duration::from_secs(5)), 0);

        // A burst: the newest items up to the bound, and always the newest one whole.
        w.keep([30; 10], t0);
        assert_eq!(w.prune(t0), 90);
        w.keep([101], t0);
        assert_eq!(w.prune(t0), 101);
        assert_eq!(w.replay(|n| Some(*n)), [101]);
    }

    #[test]
    fn a_fault_keeps_what_was_confirmed_until_the_recovery() {
        let w = window();
        let t0 = Instant::now();
        w.keep([3], t0);
        w.freeze(t0 + Duration::from_secs(1));
        // An hour of outage, and more confirmed by a write in flight: over the bound too.
        w.keep([100], t0 + Duration::from_secs(2));
        assert_eq!(w.prune(t0 + Duration::from_secs(3_600)), 103);
        assert_eq!(w.replay(|n| [*n, *n]), [3, 3, 100, 100], "oldest first, as `each` gives");
        w.recovered(t0 + Duration::from_secs(3_600));
        assert_eq!(w.prune(t0 + Duration::from_secs(3_600)), 0, "aging goes on after it");
    }
}
