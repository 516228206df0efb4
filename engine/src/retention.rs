//! The retention task: once at start and then every hour, old raw readings and minute
//! rollups are deleted (`store::retention`: small batches, rollups checked first), counted in
//! `/metrics`. It runs beside ingest and the loop and stops between two batches when the
//! engine stops.

use std::sync::Arc;
use std::time::Duration;

use hearth_proto::Timestamp;
use tokio::sync::watch;

use crate::metrics::Counters;
use crate::store::{Policy, Store, Table};

const DAY_MS: i64 = 86_400_000;
/// Cutoffs fall on whole hours: a deletion never splits an hour, so the rows kept are whole
/// hours of readings too.
const HOUR_MS: i64 = 3_600_000;

/// How often a pass runs: new rows come of age continuously, an hour's worth is a few
/// batches.
const EVERY: Duration = Duration::from_secs(3600);

/// Rows per transaction: a few milliseconds of deleting on a Pi's SD card.
pub(crate) const BATCH: u32 = 5_000;
/// Between two transactions: ingest, which waits for SQLite's one write lock, gets it at once.
pub(crate) const PAUSE: Duration = Duration::from_millis(100);

/// What the configuration keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    /// Days of raw readings; None keeps every one.
    pub(crate) raw_days: Option<u32>,
    /// Days of minute rollups; None keeps every one.
    pub(crate) minutes_days: Option<u32>,
    /// Rows per transaction.
    pub(crate) batch: u32,
    /// Between two transactions.
    pub(crate) pause: Duration,
}

impl Keep {
    /// The policy of a pass at `now_ms`.
    pub(crate) fn policy(&self, now_ms: i64) -> Policy {
        let before = |days: Option<u32>| {
            days.map(|d| {
                let t = now_ms.saturating_sub(i64::from(d) * DAY_MS);
                t - t.rem_euclid(HOUR_MS)
            })
        };
        Policy {
            raw_before: before(self.raw_days),
            minutes_before: before(self.minutes_days),
            batch: self.batch,
            pause: self.pause,
        }
    }
}

/// Start the task; it ends when `stop` turns true (between two batches at the latest).
pub(crate) fn spawn(
    store: Store,
    keep: Keep,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if keep.raw_days.is_none() && keep.minutes_days.is_none() {
            return;
        }
        loop {
            // A degraded store has nothing to spare; the next pass catches up.
            if store.health().is_healthy() {
                let policy = keep.policy(Timestamp::now().as_millisecond());
                let mut counted = |table: Table, n: u64| {
                    let counter = match table {
                        Table::Raw => &counters.retention_deleted_readings,
                        Table::Minute => &counters.retention_deleted_minutes,
                    };
                    Counters::add(counter, n);
                };
                match store.retain(&policy, &stop, &mut counted).await {
                    Ok(pass) if pass.raw + pass.minutes > 0 => tracing::info!(
                        readings = pass.raw,
                        minute_rollups = pass.minutes,
                        transactions = pass.transactions,
                        "retention deleted old history"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention pass failed; next in an hour"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_whole_hours_the_configured_days_back() {
        let keep = Keep { raw_days: Some(400), minutes_days: None, batch: BATCH, pause: PAUSE };
        // 2026-12-03T07:41:05.250Z
        let now = 1_796_283_665_250;
        let p = keep.policy(now);
        assert_eq!(p.raw_before, Some(now - 400 * DAY_MS - (now % HOUR_MS)));
        assert_eq!(p.raw_before.map(|t| t % HOUR_MS), Some(0));
        assert_eq!(p.minutes_before, None, "kept for ever");
        assert_eq!((p.batch, p.pause), (BATCH, PAUSE));
    }
}
