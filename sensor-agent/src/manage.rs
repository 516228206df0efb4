//! Settings and commands from the engine, through the agents' shared side of management
//! (`hearth_common::manage`): this module says what the sensor agent applies and how it carries
//! out each command.
//!
//! The agent pulls: the engine's answer to a report says what waits (`pending`), and only then
//! does the agent fetch its settings or commands with its device credential, so an agent that
//! is never managed costs nothing more than before. What it applies is bounded by its LOCAL
//! configuration (`remote_settings`, `remote_min_interval_s`, `remote_max_interval_s`): a value
//! outside it is refused with a reason the engine stores and shows, never applied, so a
//! compromised engine cannot take away this host's own limits.
//!
//! The settings last received are kept in one JSON file in the queue directory and applied
//! again at start, within the limits of the configuration of that start.

use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use hearth_common::manage::After;
use hearth_common::manage::{Agent, Managed, Outcome, done, failed};
pub use hearth_common::manage::{RESTART_EXIT_CODE, RestartRequested};
use hearth_proto::agents::AgentKind;
use hearth_proto::client::EngineClient;
use hearth_proto::manage::{
    AgentSettings, Command, CommandKind, CommandReport, Pending, Refusal, SensorAgentSettings,
};

/// The file, in the queue directory, that keeps the settings last received.
pub const SETTINGS_FILE: &str = "remote-settings.json";

/// What the local configuration lets the engine change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// False: the engine may change nothing (every remote value is refused).
    pub(crate) allowed: bool,
    /// The interval the engine may set, seconds.
    pub(crate) min_interval_s: f64,
    pub(crate) max_interval_s: f64,
}

/// The agent's management state.
#[derive(Debug)]
pub(crate) struct Manager {
    managed: Managed,
    host_id: String,
    limits: Limits,
    /// The configured interval: what applies when the engine sets none (or a refused one).
    local_interval: Duration,
    started: Instant,
}

impl Manager {
    /// The manager, with the settings kept by an earlier run (if readable).
    pub(crate) fn open(host_id: &str, queue_dir: &Path, limits: Limits, local: Duration) -> Self {
        Self {
            managed: Managed::open(host_id, AgentKind::Sensor, Some(queue_dir), SETTINGS_FILE),
            host_id: host_id.to_owned(),
            limits,
            local_interval: local,
            started: Instant::now(),
        }
    }

    /// The interval in force: the remote one when the limits allow it, else the configured one.
    pub(crate) fn interval(&self) -> Duration {
        self.apply(&self.managed.kept().desired).0
    }

    /// What `desired` gives within the limits: the interval, and what was refused.
    fn apply(&self, desired: &AgentSettings) -> (Duration, Vec<Refusal>) {
        within(self.limits, self.local_interval, desired)
    }

    /// Do what the engine said waits; whether to restart. The loop reads [`Self::interval`]
    /// afterwards. A failure is logged and tried again with the next report (the engine says
    /// it again).
    pub(crate) async fn step(
        &mut self,
        pending: Pending,
        client: &EngineClient,
        diagnostics: &crate::status::Board,
        source: &mut Option<Box<dyn hearth_probes::TemperatureSource>>,
    ) -> After {
        let mut agent = SensorAgent {
            host_id: &self.host_id,
            limits: self.limits,
            local_interval: self.local_interval,
            started: self.started,
            interval: self.interval(),
            diagnostics,
            source,
        };
        self.managed.step(pending, client, &mut agent).await
    }
}

/// What `desired` gives within `limits` (`local`: the configured interval): the interval, and
/// what was refused.
fn within(limits: Limits, local: Duration, desired: &AgentSettings) -> (Duration, Vec<Refusal>) {
    let mut refused = Vec::new();
    let mut interval = local;
    if let Some(s) = desired.sensor.as_ref().and_then(|s| s.interval_s) {
        let Limits { allowed, min_interval_s: min, max_interval_s: max } = limits;
        let reason = if !allowed {
            Some(
                "this agent's configuration does not let the engine change settings \
                  (remote_settings = false)"
                    .to_owned(),
            )
        } else if !(s >= min && s <= max) {
            Some(format!(
                "{s} s is outside this agent's local limits of {min} to {max} s \
                 (remote_min_interval_s, remote_max_interval_s)"
            ))
        } else {
            None
        };
        match (reason, Duration::try_from_secs_f64(s)) {
            (None, Ok(d)) => interval = d,
            (Some(reason), _) => {
                refused.push(Refusal { field: "sensor.interval_s".into(), reason })
            }
            (None, Err(e)) => {
                refused.push(Refusal { field: "sensor.interval_s".into(), reason: e.to_string() })
            }
        }
    }
    (interval, refused)
}

/// The sensor agent as the shared management code sees it, for one step.
struct SensorAgent<'a> {
    host_id: &'a str,
    limits: Limits,
    local_interval: Duration,
    started: Instant,
    /// The interval in force (diagnostics report it).
    interval: Duration,
    diagnostics: &'a crate::status::Board,
    source: &'a mut Option<Box<dyn hearth_probes::TemperatureSource>>,
}

impl Agent for SensorAgent<'_> {
    fn apply(&mut self, desired: &AgentSettings) -> Outcome {
        let (interval, refused) = within(self.limits, self.local_interval, desired);
        self.interval = interval;
        let in_force = AgentSettings {
            sensor: Some(SensorAgentSettings {
                interval_s: Some(interval.as_secs_f64()),
                ..Default::default()
            }),
            ..AgentSettings::default()
        };
        Outcome { in_force, refused, local: None }
    }

    async fn carry(&mut self, command: &Command) -> (CommandReport, After) {
        match command.command {
            CommandKind::Identify => (
                done(hearth_probes::led::identify("hearth-sensor-agent", self.host_id), None),
                After::Continue,
            ),
            CommandKind::Rescan => (rescan(self.source).await, After::Continue),
            CommandKind::Diagnostics => {
                let result = self.diagnostics.diagnostics(self.started.elapsed(), self.interval);
                (done("diagnostics read".to_owned(), Some(result)), After::Continue)
            }
            CommandKind::Restart => (done("restarting now".to_owned(), None), After::Restart),
        }
    }
}

/// Read the bus afresh (the backends search it on every read): the sensors found.
async fn rescan(source: &mut Option<Box<dyn hearth_probes::TemperatureSource>>) -> CommandReport {
    let Some(mut src) = source.take() else {
        return failed("the sensors are being read; try again");
    };
    let joined = tokio::task::spawn_blocking(move || {
        let readings = src.read_all();
        (src, readings)
    })
    .await;
    let Ok((src, readings)) = joined else {
        return failed("reading the bus failed");
    };
    *source = Some(src);
    hearth_common::manage::rescanned(
        readings
            .iter()
            .map(|r| (r.id.as_str(), r.kind.as_str(), r.value.clone().map_err(|e| e.to_string()))),
    )
}

#[cfg(test)]
mod tests {
    use hearth_common::manage::Kept;

    use super::*;

    const LIMITS: Limits = Limits { allowed: true, min_interval_s: 5.0, max_interval_s: 60.0 };

    fn desired(interval_s: f64) -> AgentSettings {
        AgentSettings {
            sensor: Some(SensorAgentSettings {
                interval_s: Some(interval_s),
                ..Default::default()
            }),
            ..AgentSettings::default()
        }
    }

    #[test]
    fn the_local_limits_are_the_ceiling() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let m = Manager::open("pi", dir.path(), LIMITS, Duration::from_secs(10));
        assert_eq!(m.interval(), Duration::from_secs(10), "nothing set: the configuration");
        let (interval, refused) = m.apply(&desired(20.0));
        assert_eq!((interval, refused.len()), (Duration::from_secs(20), 0));
        for beyond in [1.0, 61.0, f64::NAN] {
            let (interval, refused) = m.apply(&desired(beyond));
            assert_eq!(interval, Duration::from_secs(10), "{beyond}: the configured one");
            assert_eq!(refused[0].field, "sensor.interval_s");
            assert!(refused[0].reason.contains("local limits of 5 to 60 s"), "{refused:?}");
        }
        let locked = Manager::open(
            "pi",
            dir.path(),
            Limits { allowed: false, ..LIMITS },
            Duration::from_secs(10),
        );
        let (interval, refused) = locked.apply(&desired(20.0));
        assert_eq!(interval, Duration::from_secs(10));
        assert!(refused[0].reason.contains("remote_settings = false"), "{refused:?}");
        Ok(())
    }

    #[test]
    fn settings_are_kept_across_starts_within_the_limits_of_each_start() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut m = Manager::open("pi", dir.path(), LIMITS, Duration::from_secs(10));
        m.managed.keep(Kept { revision: 3, desired: desired(30.0) })?;
        let again = Manager::open("pi", dir.path(), LIMITS, Duration::from_secs(10));
        assert_eq!((again.managed.kept().revision, again.interval()), (3, Duration::from_secs(30)));
        // The local file narrowed since: the kept value no longer applies.
        let narrower = Limits { max_interval_s: 20.0, ..LIMITS };
        let again = Manager::open("pi", dir.path(), narrower, Duration::from_secs(10));
        assert_eq!(again.interval(), Duration::from_secs(10));
        // An unreadable file is ignored.
        std::fs::write(dir.path().join(SETTINGS_FILE), b"{not json")?;
        let again = Manager::open("pi", dir.path(), LIMITS, Duration::from_secs(10));
        assert_eq!((again.managed.kept().revision, again.interval()), (0, Duration::from_secs(10)));
        Ok(())
    }
}
