//! Counters for `GET /metrics` (Prometheus text format), kept with atomics so the hot paths
//! (ingest, relay commands) pay one relaxed add. Gauges (temperatures, relay states, the
//! decision) are read from the store and the controller at scrape time instead of being
//! mirrored here: one source of truth.

use std::fmt::Write as _;
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
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Builds the exposition text: `# HELP`/`# TYPE` once per family, then its samples.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    text: String,
}

impl Exposition {
    /// Start a metric family.
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample; `labels` are (name, value) pairs, values escaped as the format requires.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub(crate) fn counter(&mut self, name: &str, help: &str, value: &AtomicU64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value.load(Ordering::Relaxed) as f64);
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_families_announced() {
        let mut e = Exposition::default();
        e.family("hearth_x", "gauge", "An example.");
        e.sample("hearth_x", &[("sensor", "a\"b\\c\nd")], 1.5);
        e.sample("hearth_x", &[], 2.0);
        assert_eq!(
            e.finish(),
            "# HELP hearth_x An example.\n# TYPE hearth_x gauge\n\
             hearth_x{sensor=\"a\\\"b\\\\c\\nd\"} 1.5\nhearth_x 2\n"
        );
    }
}
