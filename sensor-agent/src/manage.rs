//! Settings and commands from the engine.
//!
//! The agent pulls: the engine's answer to a report says what waits (`pending`), and only then
//! does the agent fetch its settings or commands with its device credential, so an agent that
//! is never managed costs nothing more than before. What it applies is bounded by its LOCAL
//! configuration (`remote_settings`, `remote_min_interval_s`, `remote_max_interval_s`): a value
//! outside it is refused with a reason the engine stores and shows, never applied, so a
//! compromised engine cannot take away this host's own limits.
//!
//! The settings last received are kept in one JSON file in the queue directory (written to a
//! temporary file, then renamed over the old one, so a crash leaves the old or the new file),
//! and applied again at start, within the limits of the configuration of that start. A file
//! that cannot be read is logged and ignored: the agent runs with its configuration.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hearth_proto::Timestamp;
use hearth_proto::agents::AgentKind;
use hearth_proto::client::{ClientError, EngineClient};
use hearth_proto::manage::{
    AgentSettings, AppliedSettings, Command, CommandKind, CommandReport, CommandState, Pending,
    Refusal, SensorAgentSettings,
};
use serde::{Deserialize, Serialize};

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

/// The settings last received, as kept on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Kept {
    revision: u64,
    desired: AgentSettings,
}

/// What the loop must do after a management step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Carry on.
    Continue,
    /// Exit so that systemd starts the agent afresh (the `restart` command, answered).
    Restart,
}

/// The exit of a `restart` command: the binary exits with [`RESTART_EXIT_CODE`], which the
/// unit's `Restart=on-failure` restarts.
#[derive(Debug)]
pub struct RestartRequested;

impl std::fmt::Display for RestartRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("restarting, as the engine asked")
    }
}

impl std::error::Error for RestartRequested {}

/// The exit code of a restart the engine asked for (EX_TEMPFAIL: not a success, so systemd's
/// `Restart=on-failure` starts the agent again).
pub const RESTART_EXIT_CODE: u8 = 75;

/// The agent's management state.
#[derive(Debug)]
pub(crate) struct Manager {
    host_id: String,
    limits: Limits,
    /// The configured interval: what applies when the engine sets none (or a refused one).
    local_interval: Duration,
    file: PathBuf,
    kept: Kept,
    started: Instant,
}

impl Manager {
    /// The manager, with the settings kept by an earlier run (if readable).
    pub(crate) fn open(host_id: &str, queue_dir: &Path, limits: Limits, local: Duration) -> Self {
        let file = queue_dir.join(SETTINGS_FILE);
        let kept = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(kept) => kept,
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e,
                        "ignoring the remote settings file (unreadable); using the configuration");
                    Kept::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Kept::default(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e,
                    "ignoring the remote settings file; using the configuration");
                Kept::default()
            }
        };
        Self {
            host_id: host_id.to_owned(),
            limits,
            local_interval: local,
            file,
            kept,
            started: Instant::now(),
        }
    }

    /// The interval in force: the remote one when the limits allow it, else the configured one.
    pub(crate) fn interval(&self) -> Duration {
        self.apply(&self.kept.desired).0
    }

    /// What `desired` gives within the limits: the interval, and what was refused.
    fn apply(&self, desired: &AgentSettings) -> (Duration, Vec<Refusal>) {
        let mut refused = Vec::new();
        let mut interval = self.local_interval;
        if let Some(s) = desired.sensor.as_ref().and_then(|s| s.interval_s) {
            let Limits { allowed, min_interval_s: min, max_interval_s: max } = self.limits;
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
                (None, Err(e)) => refused
                    .push(Refusal { field: "sensor.interval_s".into(), reason: e.to_string() }),
            }
        }
        (interval, refused)
    }

    fn keep(&self) -> std::io::Result<()> {
        let tmp = self.file.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.kept).map_err(std::io::Error::other)?;
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.file)
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
        if pending.settings_revision != self.kept.revision
            && let Err(e) = self.settings(client).await
        {
            tracing::warn!(error = %e, "cannot fetch or confirm the settings from the engine");
        }
        if pending.commands == 0 {
            return After::Continue;
        }
        let commands = match client.pending_commands(&self.host_id, AgentKind::Sensor).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the commands from the engine");
                return After::Continue;
            }
        };
        // Oldest first, as they were asked.
        for command in commands.into_iter().rev() {
            if self.command(&command, client, diagnostics, source).await == After::Restart {
                return After::Restart;
            }
        }
        After::Continue
    }

    async fn settings(&mut self, client: &EngineClient) -> Result<(), ClientError> {
        let state = client.agent_settings(&self.host_id).await?;
        let (interval, refused) = self.apply(&state.desired);
        self.kept = Kept { revision: state.revision, desired: state.desired };
        if let Err(e) = self.keep() {
            tracing::warn!(file = %self.file.display(), error = %e,
                "cannot keep the remote settings on disk; they apply until the agent stops");
        }
        for r in &refused {
            tracing::warn!(revision = state.revision, field = %r.field, reason = %r.reason,
                "refused a setting from the engine");
        }
        tracing::info!(
            revision = state.revision,
            interval_s = interval.as_secs_f64(),
            refused = refused.len(),
            "settings from the engine applied"
        );
        let applied = AppliedSettings {
            agent: AgentKind::Sensor,
            revision: state.revision,
            in_force: AgentSettings {
                sensor: Some(SensorAgentSettings {
                    interval_s: Some(interval.as_secs_f64()),
                    ..Default::default()
                }),
                relay: None,
            },
            refused,
            local: None,
        };
        if let Err(e) = client.report_applied(&self.host_id, &applied).await {
            // Applied, but the engine does not know: fetched and reported again next time.
            self.kept.revision = 0;
            return Err(e);
        }
        Ok(())
    }

    async fn command(
        &self,
        command: &Command,
        client: &EngineClient,
        diagnostics: &crate::status::Board,
        source: &mut Option<Box<dyn hearth_probes::TemperatureSource>>,
    ) -> After {
        let id = command.id;
        let what = command.command.as_str();
        tracing::info!(id, command = what, asked_by = %command.asked_by, "command from the engine");
        let delivered =
            CommandReport { state: CommandState::Delivered, message: None, result: None };
        if let Err(e) = client.command_outcome(&self.host_id, id, &delivered).await {
            // Expired or already answered (409), or the engine went away: not run.
            tracing::warn!(id, command = what, error = %e, "command not taken up");
            return After::Continue;
        }
        let (outcome, after) = match command.command {
            CommandKind::Identify => {
                tracing::warn!(
                    "==================== IDENTIFY: this is hearth-sensor-agent on host {} \
                     ====================",
                    self.host_id
                );
                (done(identify_led(&self.host_id), None), After::Continue)
            }
            CommandKind::Rescan => (rescan(source).await, After::Continue),
            CommandKind::Diagnostics => {
                let result = diagnostics.diagnostics(self.started.elapsed(), self.interval());
                (done("diagnostics read".to_owned(), Some(result)), After::Continue)
            }
            CommandKind::Restart => (done("restarting now".to_owned(), None), After::Restart),
        };
        tracing::info!(
            id,
            command = what,
            state = outcome.state.as_str(),
            message = outcome.message.as_deref().unwrap_or(""),
            "command carried out"
        );
        if let Err(e) = client.command_outcome(&self.host_id, id, &outcome).await {
            tracing::warn!(id, command = what, error = %e, "cannot report the command's outcome");
        }
        after
    }
}

/// How long the activity LED blinks for `identify`.
const IDENTIFY_BLINK: Duration = Duration::from_secs(5);

/// Blink the activity LED, when the board has one, on a thread of its own (the runtime's one
/// blocking thread reads the sensors); what was done, for the command's message.
fn identify_led(host_id: &str) -> String {
    let Some(led) = hearth_probes::led::find(&hearth_probes::led::ACTIVITY_LEDS) else {
        return format!("identified: banner logged on host {host_id} (no activity LED found)");
    };
    let shown = led.display().to_string();
    let spawned = std::thread::Builder::new().name("hearth-identify".into()).spawn(move || {
        if let Err(e) = hearth_probes::led::blink(&led, IDENTIFY_BLINK, Duration::from_millis(500))
        {
            tracing::warn!(led = %led.display(), error = %e, "cannot blink the activity LED");
        }
    });
    match spawned {
        Ok(_) => format!(
            "identified: banner logged on host {host_id}, {shown} blinking for {} s",
            IDENTIFY_BLINK.as_secs()
        ),
        Err(e) => format!("identified: banner logged on host {host_id} (LED: {e})"),
    }
}

fn done(message: String, result: Option<serde_json::Value>) -> CommandReport {
    CommandReport { state: CommandState::Done, message: Some(message), result }
}

/// Read the bus afresh (the backends search it on every read): the sensors found.
async fn rescan(source: &mut Option<Box<dyn hearth_probes::TemperatureSource>>) -> CommandReport {
    let Some(mut src) = source.take() else {
        return CommandReport {
            state: CommandState::Failed,
            message: Some("the sensors are being read; try again".into()),
            result: None,
        };
    };
    let joined = tokio::task::spawn_blocking(move || {
        let readings = src.read_all();
        (src, readings)
    })
    .await;
    let Ok((src, readings)) = joined else {
        return CommandReport {
            state: CommandState::Failed,
            message: Some("reading the bus failed".into()),
            result: None,
        };
    };
    *source = Some(src);
    let found: Vec<serde_json::Value> = readings
        .iter()
        .map(|r| match &r.value {
            Ok(v) => serde_json::json!({"id": r.id, "type": r.kind, "value_c": v}),
            Err(e) => serde_json::json!({"id": r.id, "type": r.kind, "error": e.to_string()}),
        })
        .collect();
    let ok = readings.iter().filter(|r| r.value.is_ok()).count();
    done(
        format!("{} sensors found, {ok} read", readings.len()),
        Some(serde_json::json!({"sensors": found, "at": Timestamp::now()})),
    )
}

#[cfg(test)]
mod tests {
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
        m.kept = Kept { revision: 3, desired: desired(30.0) };
        m.keep()?;
        let again = Manager::open("pi", dir.path(), LIMITS, Duration::from_secs(10));
        assert_eq!((again.kept.revision, again.interval()), (3, Duration::from_secs(30)));
        // The local file narrowed since: the kept value no longer applies.
        let narrower = Limits { max_interval_s: 20.0, ..LIMITS };
        let again = Manager::open("pi", dir.path(), narrower, Duration::from_secs(10));
        assert_eq!(again.interval(), Duration::from_secs(10));
        // An unreadable file is ignored.
        std::fs::write(dir.path().join(SETTINGS_FILE), b"{not json")?;
        let again = Manager::open("pi", dir.path(), LIMITS, Duration::from_secs(10));
        assert_eq!((again.kept.revision, again.interval()), (0, Duration::from_secs(10)));
        Ok(())
    }
}
