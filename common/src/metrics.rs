//! Prometheus text exposition (format 0.0.4) for every binary's `GET /metrics`: `# HELP` and
//! `# TYPE` once per family, then its samples, label values escaped as the format requires.
//! Std only, so the sensor agent links it without a server crate.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The content type of the text this builds.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds the exposition text: `# HELP`/`# TYPE` once per family, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Start a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample; `labels` are (name, value) pairs, values escaped as the format requires.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
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

    /// A family of one counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: &AtomicU64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value.load(Ordering::Relaxed) as f64);
    }

    /// The text.
    pub fn finish(self) -> String {
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
