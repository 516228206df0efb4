//! The agents' side of management from the engine (`hearth_proto::manage`), shared by the
//! sensor and the relay agent: what each does differently (which settings it applies within
//! which local limits, how it carries out a command) is an [`Agent`]; the rest is here.
//!
//! The agent pulls: told what waits ([`Pending`]), it fetches its settings when their revision
//! is not the one it has, applies them through [`Agent::apply`] (its LOCAL configuration is the
//! ceiling: what lies outside it is refused with a reason, never applied), keeps them on disk
//! and reports what it runs with; then it fetches its pending commands and, for each, says
//! `delivered`, carries it out ([`Agent::carry`]) and reports the outcome.
//!
//! The settings last received are kept in one JSON file (written to a temporary file, synced,
//! then renamed over the old one, so a crash leaves the old or the new file), read again at
//! start and applied within the limits of that start's configuration. A file that cannot be
//! read is logged and ignored: the agent runs with its configuration.

use std::path::{Path, PathBuf};

use hearth_proto::agents::AgentKind;
use hearth_proto::client::{ClientError, EngineClient};
use hearth_proto::manage::{
    AgentSettings, AppliedSettings, Command, CommandReport, CommandState, Pending, Refusal,
};
use serde::{Deserialize, Serialize};

/// The exit code of a restart the engine asked for (EX_TEMPFAIL: not a success, so systemd's
/// `Restart=on-failure` starts the agent again).
pub const RESTART_EXIT_CODE: u8 = 75;

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

/// What the agent must do after a management step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Carry on.
    Continue,
    /// Exit so that systemd starts the agent afresh (the `restart` command, answered).
    Restart,
}

/// The settings last received, as kept on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// Their revision (0: none).
    pub revision: u64,
    /// What the engine asked for.
    pub desired: AgentSettings,
}

/// What an agent runs with after applying a settings document within its limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The values in force.
    pub in_force: AgentSettings,
    /// What was refused, and why.
    pub refused: Vec<Refusal>,
    /// The agent's own configured values, when it shows them.
    pub local: Option<AgentSettings>,
}

/// What differs between the agents.
// Used with concrete types only (no `dyn`, no generic code that needs `Send`).
#[allow(async_fn_in_trait)]
pub trait Agent {
    /// Apply `desired` within the local limits, from now on; what is in force and what was
    /// refused. Called at start with the kept settings too.
    fn apply(&mut self, desired: &AgentSettings) -> Outcome;

    /// Carry out a command (already reported `delivered`); its outcome, and whether to exit.
    async fn carry(&mut self, command: &Command) -> (CommandReport, After);
}

/// A `done` outcome.
pub fn done(message: String, result: Option<serde_json::Value>) -> CommandReport {
    CommandReport { state: CommandState::Done, message: Some(message), result }
}

/// A `failed` outcome.
pub fn failed(message: impl Into<String>) -> CommandReport {
    CommandReport { state: CommandState::Failed, message: Some(message.into()), result: None }
}

/// The outcome of a `rescan`: what each sensor read (id, type, value or error), for people
/// and structured.
pub fn rescanned<'a>(
    found: impl IntoIterator<Item = (&'a str, &'a str, Result<f64, String>)>,
) -> CommandReport {
    let mut sensors = Vec::new();
    let mut ok = 0;
    for (id, kind, value) in found {
        sensors.push(match value {
            Ok(v) => {
                ok += 1;
                serde_json::json!({"id": id, "type": kind, "value_c": v})
            }
            Err(e) => serde_json::json!({"id": id, "type": kind, "error": e}),
        });
    }
    done(
        format!("{} sensors found, {ok} read", sensors.len()),
        Some(serde_json::json!({"sensors": sensors, "at": hearth_proto::Timestamp::now()})),
    )
}

/// One agent's management state: its host, its kind, and the settings it keeps.
#[derive(Debug)]
pub struct Managed {
    host_id: String,
    kind: AgentKind,
    /// None: kept in memory only.
    file: Option<PathBuf>,
    kept: Kept,
}

impl Managed {
    /// The state, with the settings kept in `dir/file` by an earlier run (if readable); `dir`
    /// None keeps them in memory only.
    pub fn open(host_id: &str, kind: AgentKind, dir: Option<&Path>, file: &str) -> Self {
        let file = dir.map(|d| d.join(file));
        let kept = file.as_deref().map(read_kept).unwrap_or_default();
        Self { host_id: host_id.to_owned(), kind, file, kept }
    }

    /// The settings kept (the last received, or those of an earlier run).
    pub fn kept(&self) -> &Kept {
        &self.kept
    }

    /// Keep `kept` (on disk when there is a file). Public for tests that prepare a file.
    pub fn keep(&mut self, kept: Kept) -> std::io::Result<()> {
        self.kept = kept;
        let Some(file) = &self.file else { return Ok(()) };
        let tmp = file.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.kept).map_err(std::io::Error::other)?;
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, file)
    }

    /// Do what the engine said waits; whether to restart. A failure is logged and tried again
    /// the next time the engine says it.
    pub async fn step(
        &mut self,
        pending: Pending,
        client: &EngineClient,
        agent: &mut impl Agent,
    ) -> After {
        if pending.settings_revision != self.kept.revision
            && let Err(e) = self.settings(client, agent).await
        {
            tracing::warn!(error = %e, "cannot fetch or confirm the settings from the engine");
        }
        if pending.commands == 0 {
            return After::Continue;
        }
        let commands = match client.pending_commands(&self.host_id, self.kind).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the commands from the engine");
                return After::Continue;
            }
        };
        // Oldest first, as they were asked.
        for command in commands.into_iter().rev() {
            if self.command(&command, client, agent).await == After::Restart {
                return After::Restart;
            }
        }
        After::Continue
    }

    async fn settings(
        &mut self,
        client: &EngineClient,
        agent: &mut impl Agent,
    ) -> Result<(), ClientError> {
        let state = client.agent_settings(&self.host_id).await?;
        let outcome = agent.apply(&state.desired);
        let revision = state.revision;
        if let Err(e) = self.keep(Kept { revision, desired: state.desired }) {
            let file = self.file.as_deref().unwrap_or(Path::new("")).display().to_string();
            tracing::warn!(%file, error = %e,
                "cannot keep the remote settings on disk; they apply until the agent stops");
        }
        for r in &outcome.refused {
            tracing::warn!(revision, field = %r.field, reason = %r.reason,
                "refused a setting from the engine");
        }
        tracing::info!(
            revision,
            in_force = %serde_json::to_string(&outcome.in_force).unwrap_or_default(),
            refused = outcome.refused.len(),
            "settings from the engine applied"
        );
        let applied = AppliedSettings {
            agent: self.kind,
            revision,
            in_force: outcome.in_force,
            refused: outcome.refused,
            local: outcome.local,
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
        agent: &mut impl Agent,
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
        let (outcome, after) = agent.carry(command).await;
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

/// The settings kept in `file`, or none (logged when the file exists but cannot be read).
fn read_kept(file: &Path) -> Kept {
    match std::fs::read(file) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_settings_survive_a_restart_and_a_bad_file_is_ignored() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut m = Managed::open("pi", AgentKind::Relay, Some(dir.path()), "remote.json");
        assert_eq!(m.kept(), &Kept::default());
        let desired: AgentSettings = serde_json::from_value(
            serde_json::json!({"relay": {"outputs": {"heat": {"min_off_s": 600}}}}),
        )?;
        m.keep(Kept { revision: 4, desired: desired.clone() })?;
        let again = Managed::open("pi", AgentKind::Relay, Some(dir.path()), "remote.json");
        assert_eq!(again.kept(), &Kept { revision: 4, desired });
        assert!(!dir.path().join("remote.json.tmp").exists(), "renamed into place");
        std::fs::write(dir.path().join("remote.json"), b"{not json")?;
        let again = Managed::open("pi", AgentKind::Relay, Some(dir.path()), "remote.json");
        assert_eq!(again.kept(), &Kept::default());
        // Without a directory: in memory only.
        let mut m = Managed::open("pi", AgentKind::Relay, None, "remote.json");
        m.keep(Kept { revision: 1, desired: AgentSettings::default() })?;
        assert_eq!(m.kept().revision, 1);
        Ok(())
    }
}
