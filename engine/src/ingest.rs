//! The ingest path: sensor reports are group-committed.
//!
//! Handlers submit a validated report and wait for its acknowledgement; one writer task takes
//! every report that is waiting, writes them all in one transaction with multi-row INSERTs, and
//! acknowledges each only after the commit. One transaction per request would cap ingest at the
//! ~20k statements/s SQLite manages one at a time (shared notes/performance.md); batching
//! concurrent requests is what reaches the 100k readings/s target.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::metrics::Counters;
use crate::store::{NewReport, Store};

/// At most this many reports go into one transaction.
const MAX_BATCH: usize = 512;

struct Job {
    report: NewReport,
    ack: oneshot::Sender<Result<(), String>>,
}

/// Submits reports to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Ingest {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("host_id", &self.report.host_id).finish_non_exhaustive()
    }
}

impl Ingest {
    /// Start the writer task. `committed` is notified after every commit, so the decision loop
    /// reacts to a reading at once instead of on its next tick.
    pub(crate) fn spawn(store: Store, committed: Arc<Notify>, counters: Arc<Counters>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        tokio::spawn(async move {
            // Ends when every `Ingest` handle is dropped (server shut down).
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (reports, acks): (Vec<NewReport>, Vec<_>) =
                    jobs.into_iter().map(|j| (j.report, j.ack)).unzip();
                let result = store.write_reports(&reports).await.map_err(|e| e.to_string());
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
                    committed.notify_one();
                } else {
                    Counters::add(&counters.ingest_failures, 1);
                }
            }
        });
        Self { tx }
    }

    /// Store `report`; returns once it is committed.
    pub(crate) async fn submit(&self, report: NewReport) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Job { report, ack }).await.map_err(|_| "ingest stopped".to_owned())?;
        done.await.map_err(|_| "ingest stopped".to_owned())?
    }
}
