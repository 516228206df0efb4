//! The ingest path: sensor reports are group-committed.
//!
//! The readings domain (`readings.rs`) submits a validated report and waits for its
//! acknowledgement; one writer task takes every report that is waiting, writes them all in one
//! transaction with multi-row INSERTs, and acknowledges each only after the commit, which is
//! durable (`synchronous = FULL`: the WAL is synced). One transaction per request would cap
//! ingest at the ~20k statements/s SQLite manages one at a time (measured with sqlx: ~50 µs a
//! statement, against 668k rows/s for one multi-row INSERT of 1000), and one fsync per request
//! at a few hundred; batching concurrent requests is what reaches the 100k readings/s target.
//!
//! A storage fault is not an acknowledgement's problem to hide: while the store is degraded
//! every report is refused at once (503), so agents keep it queued as for an outage. Its
//! readings are held in memory all the same, for control: they are the freshest truth about
//! the house whether or not the disk can take them. A batch acknowledged is kept for a few
//! seconds more (`store/acked.rs`): a storage that fails right after confirming a commit may
//! lose it, and the store writes those readings again when it recovers.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::metrics::Counters;
use crate::store::{NewReport, StorageHealth, Store};

/// At most this many reports go into one transaction.
const MAX_BATCH: usize = 512;

/// While reports arrive, memory a burst of them left behind is given back this often (see
/// `memory.rs`): within a minute of a burst, at the cost of a millisecond.
const RELIEF_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

struct Job {
    report: NewReport,
    ack: oneshot::Sender<Result<(), String>>,
}

/// Submits reports to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Ingest {
    tx: mpsc::Sender<Job>,
    store: Store,
    /// Notified when readings arrive (stored or only held), so the decision loop reacts to a
    /// reading at once instead of on its next tick.
    arrived: Arc<Notify>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("host_id", &self.report.host_id).finish_non_exhaustive()
    }
}

/// Why a report cannot be stored now, for its 503.
fn refusal(health: &StorageHealth) -> Option<String> {
    match health {
        StorageHealth::Healthy => None,
        StorageHealth::Degraded { reason, since } => {
            Some(format!("storage unavailable since {since}: {reason}"))
        }
    }
}

impl Ingest {
    /// Start the writer task.
    pub(crate) fn spawn(store: Store, arrived: Arc<Notify>, counters: Arc<Counters>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let writer = store.clone();
        tokio::spawn(async move {
            let store = writer;
            let mut relief = tokio::time::interval(RELIEF_EVERY);
            relief.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // A release of memory is due: reports were written since the last one, or what is
            // kept of them (`acked.rs`) has yet to age out.
            let mut due = false;
            loop {
                let first = tokio::select! {
                    job = rx.recv() => job,
                    _ = relief.tick(), if due => {
                        due = store.release_memory().await;
                        continue;
                    }
                };
                // Ends when every `Ingest` handle is dropped (server shut down).
                let Some(first) = first else { break };
                due = true;
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (reports, acks): (Vec<NewReport>, Vec<_>) =
                    jobs.into_iter().map(|j| (j.report, j.ack)).unzip();
                // Reports that waited behind the batch that found the fault are refused
                // without another try at the disk.
                let result = match refusal(&store.health()) {
                    Some(why) => Err(why),
                    None => store.commit_reports(&reports).await.map_err(|e| e.to_string()),
                };
                if let Err(e) = &result {
                    tracing::error!(error = %e, reports = reports.len(), "storing readings failed");
                }
                for ack in acks {
                    // The request may have been abandoned by its client; nothing to do then.
                    let _ = ack.send(result.clone());
                }
                if result.is_ok() {
                    let n = reports.iter().map(|r| r.readings.len() as u64).sum();
                    Counters::add(&counters.readings_committed, n);
                    Counters::add(&counters.ingest_commits, 1);
                } else {
                    Counters::add(&counters.ingest_failures, 1);
                }
            }
        });
        Self { tx, store, arrived }
    }

    /// Store `report`; returns once it is committed (durably), or with why it is not stored.
    pub(crate) async fn submit(&self, report: NewReport) -> Result<(), String> {
        self.store.hold_readings(&report);
        // Stored or not, the loop decides with these readings now.
        self.arrived.notify_one();
        if let Some(why) = refusal(&self.store.health()) {
            return Err(why);
        }
        let (ack, done) = oneshot::channel();
        self.tx.send(Job { report, ack }).await.map_err(|_| "ingest stopped".to_owned())?;
        done.await.map_err(|_| "ingest stopped".to_owned())?
    }
}
