//! Counters for `GET /metrics` (Prometheus text format), kept with atomics so the hot paths
//! (ingest, relay commands) pay one relaxed add. Gauges (temperatures, relay states, the
//! decision) are read from the store and the controller at scrape time instead of being
//! mirrored here: one source of truth.

use std::sync::atomic::{AtomicU64, Ordering};

/// Everything counted since the engine started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Readings in committed ingest batches (a replayed duplicate counts again).
    pub(crate) readings_committed: AtomicU64,
    /// Ingest transactions committed.
    pub(crate) ingest_commits: AtomicU64,
    /// Ingest transactions that failed.
    pub(crate) ingest_failures: AtomicU64,
    /// Decisions recorded (outcome, reason or rule changed).
    pub(crate) decisions_recorded: AtomicU64,
    /// Relay commands carried out (200/202).
    pub(crate) relay_commands_done: AtomicU64,
    /// Relay commands the agent refused (409: interlock, minimum off time).
    pub(crate) relay_commands_refused: AtomicU64,
    /// Relay commands that got no usable answer.
    pub(crate) relay_commands_failed: AtomicU64,
    /// Raw readings deleted by retention.
    pub(crate) retention_deleted_readings: AtomicU64,
    /// Minute rollups deleted by retention.
    pub(crate) retention_deleted_minutes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The exposition text builder, shared with the agents and hearth-web.
pub(crate) use hearth_common::metrics::Exposition;
