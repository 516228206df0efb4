//! Settings and commands from the engine, through the agents' shared side of management
//! (`hearth_common::manage`): this module says what the relay agent applies (each output's
//! protection times) and how it carries out each command.
//!
//! **The local file is the ceiling.** The engine may only make an output's protection
//! STRICTER than its configuration: a longer minimum on or off time, up to
//! `remote_max_protection_s`; a shorter maximum on time (or one where none is configured),
//! down to `remote_min_max_on_s`; never a maximum on time that is not more than the minimum on
//! time. Anything else, an output this agent does not have, and everything when
//! `remote_settings = false`, is refused with a reason (shown by the engine), never applied.
//! What is applied takes effect at once, on the running cycle too (`Controller::set_times`),
//! and is kept in `remote-settings.json` in the state directory, applied again at start within
//! that start's limits.
//!
//! The agent learns that something waits from the answer to its registration and from the
//! engine's nudge (`POST /v1/manage/pending`); both land on one `watch` channel that
//! [`Manager::run`] follows. No command ever switches a relay.

use std::sync::Arc;
use std::time::Instant;

use hearth_common::auth::DeviceCredential;
use hearth_common::discovery::Locator;
use hearth_common::manage::{After, Agent, Managed, Outcome, done, failed};
use hearth_proto::Timestamp;
use hearth_proto::agents::AgentKind;
use hearth_proto::client::EngineClient;
use hearth_proto::manage::{
    AgentSettings, Command, CommandKind, CommandReport, MAX_REFUSALS, OutputProtection, Pending,
    Refusal, RelayAgentSettings,
};
use tokio::sync::watch;

use crate::fallback::{Probe, ProgramStore};
use crate::relays::{Controller, Times};

/// The file, in the state directory, that keeps the settings last received.
pub const SETTINGS_FILE: &str = "remote-settings.json";

/// What the local configuration lets the engine change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// False: the engine may change nothing (every remote value is refused).
    pub allowed: bool,
    /// The longest minimum on or off time the engine may set, seconds.
    pub max_protection_s: u32,
    /// The shortest maximum on time the engine may set, seconds.
    pub min_max_on_s: u32,
}

/// What `desired` gives each output of `local` (its configured times) within `limits`: the
/// times in force, in the order of `local`, and what was refused (at most
/// [`MAX_REFUSALS`], what the engine takes).
pub fn within(
    limits: Limits,
    local: &[(String, Times)],
    desired: &AgentSettings,
) -> (Vec<(String, Times)>, Vec<Refusal>) {
    let none = RelayAgentSettings::default();
    let wanted = desired.relay.as_ref().unwrap_or(&none);
    let mut refused = Vec::new();
    let mut refuse = |field: String, reason: String| refused.push(Refusal { field, reason });
    for id in wanted.outputs.keys() {
        if !local.iter().any(|(o, _)| o == id) {
            refuse(format!("relay.outputs.{id}"), format!("this agent has no output {id:?}"));
        }
    }
    let in_force = local
        .iter()
        .map(|(id, local)| {
            let Some(want) = wanted.outputs.get(id) else { return (id.clone(), *local) };
            let field = |name: &str| format!("relay.outputs.{id}.{name}");
            if !limits.allowed {
                for name in set_fields(want) {
                    refuse(
                        field(name),
                        "this agent's configuration does not let the engine change settings \
                         (remote_settings = false)"
                            .to_owned(),
                    );
                }
                return (id.clone(), *local);
            }
            let mut times = *local;
            let max = limits.max_protection_s;
            for (name, what, wanted, configured, slot) in [
                ("min_on_s", "minimum on", want.min_on_s, local.min_on_s, &mut times.min_on_s),
                ("min_off_s", "minimum off", want.min_off_s, local.min_off_s, &mut times.min_off_s),
            ] {
                let Some(w) = wanted else { continue };
                if w < configured {
                    refuse(
                        field(name),
                        format!(
                            "{w} s is shorter than this output's configured {what} time of \
                             {configured} s: the engine may only make it longer"
                        ),
                    );
                } else if w > configured && w > max {
                    refuse(
                        field(name),
                        format!(
                            "{w} s is beyond this agent's local limit of {max} s \
                             (remote_max_protection_s)"
                        ),
                    );
                } else {
                    *slot = w;
                }
            }
            if let Some(w) = want.max_on_s {
                let floor = limits.min_max_on_s;
                match local.max_on_s {
                    Some(configured) if w > configured => refuse(
                        field("max_on_s"),
                        format!(
                            "{w} s is longer than this output's configured maximum on time of \
                             {configured} s: the engine may only make it shorter"
                        ),
                    ),
                    configured if Some(w) != configured && w < floor => refuse(
                        field("max_on_s"),
                        format!(
                            "{w} s is below this agent's local limit of {floor} s \
                             (remote_min_max_on_s)"
                        ),
                    ),
                    _ => times.max_on_s = Some(w),
                }
            }
            // A maximum on time must leave room for the minimum: the remote maximum gives way
            // first, then the remote minimum (the configured pair is valid by itself).
            if times.max_on_s.is_some_and(|m| m <= times.min_on_s)
                && times.max_on_s != local.max_on_s
            {
                refuse(
                    field("max_on_s"),
                    format!(
                        "{} s is not more than the minimum on time in force of {} s",
                        times.max_on_s.unwrap_or_default(),
                        times.min_on_s
                    ),
                );
                times.max_on_s = local.max_on_s;
            }
            if times.max_on_s.is_some_and(|m| m <= times.min_on_s) {
                refuse(
                    field("min_on_s"),
                    format!(
                        "{} s is not less than this output's maximum on time of {} s",
                        times.min_on_s,
                        times.max_on_s.unwrap_or_default()
                    ),
                );
                times.min_on_s = local.min_on_s;
            }
            (id.clone(), times)
        })
        .collect();
    refused.truncate(MAX_REFUSALS);
    (in_force, refused)
}

/// The fields `p` sets.
fn set_fields(p: &OutputProtection) -> Vec<&'static str> {
    [("min_on_s", p.min_on_s.is_some()), ("min_off_s", p.min_off_s.is_some())]
        .into_iter()
        .chain([("max_on_s", p.max_on_s.is_some())])
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}

/// `times` in the [`AgentSettings`] shape.
fn as_settings(times: &[(String, Times)]) -> AgentSettings {
    let outputs = times
        .iter()
        .map(|(id, t)| {
            let p = OutputProtection {
                min_on_s: Some(t.min_on_s),
                min_off_s: Some(t.min_off_s),
                max_on_s: t.max_on_s,
            };
            (id.clone(), p)
        })
        .collect();
    AgentSettings { relay: Some(RelayAgentSettings { outputs }), ..AgentSettings::default() }
}

/// The relay agent as the shared management code sees it.
#[derive(Debug)]
pub struct RelayAgent {
    /// This agent's host id.
    pub host_id: String,
    /// The relays.
    pub controller: Arc<Controller>,
    /// The fallback program (diagnostics show it).
    pub fallback: Arc<ProgramStore>,
    /// The local probe, if any (`rescan` reads it).
    pub probe: Option<Probe>,
    /// The local limits.
    pub limits: Limits,
    /// When the agent started (diagnostics).
    pub started: Instant,
}

impl Agent for RelayAgent {
    fn apply(&mut self, desired: &AgentSettings) -> Outcome {
        let local = self.controller.local_times();
        let (in_force, refused) = within(self.limits, &local, desired);
        self.controller.set_times(&in_force);
        Outcome { in_force: as_settings(&in_force), refused, local: Some(as_settings(&local)) }
    }

    async fn carry(&mut self, command: &Command) -> (CommandReport, After) {
        match command.command {
            CommandKind::Identify => (
                // The banner and the LED only: identifying a device never clicks a relay.
                done(hearth_probes::led::identify("hearth-relay-agent", &self.host_id), None),
                After::Continue,
            ),
            CommandKind::Rescan => (self.rescan().await, After::Continue),
            CommandKind::Diagnostics => {
                (done("diagnostics read".to_owned(), Some(self.diagnostics())), After::Continue)
            }
            CommandKind::Restart => (done("restarting now".to_owned(), None), After::Restart),
        }
    }
}

impl RelayAgent {
    /// What the local probe reads now, or that there is none (an answer, not a failure).
    async fn rescan(&self) -> CommandReport {
        let Some(probe) = &self.probe else {
            return done(
                "no probe on this agent (--probe is not set): nothing to rescan".to_owned(),
                Some(serde_json::json!({"sensors": [], "probe": null, "at": Timestamp::now()})),
            );
        };
        match probe.read().await {
            Some(readings) => hearth_common::manage::rescanned(readings.iter().map(|r| {
                (r.id.as_str(), r.kind.as_str(), r.value.clone().map_err(|e| e.to_string()))
            })),
            None => failed("reading the probe failed"),
        }
    }

    /// Version, uptime, backend, outputs with their state and protections in force (and the
    /// configured ones), the fallback, the last errors, the clock.
    fn diagnostics(&self) -> serde_json::Value {
        let outputs = self.controller.outputs();
        let hardware = self.controller.healthy().err().map(|e| e.to_string());
        // The last refusals and hardware errors: what someone diagnosing wants first.
        let mut last_errors: Vec<serde_json::Value> = outputs
            .iter()
            .filter_map(|o| {
                let c = o.last_command.as_ref()?;
                let detail = c.detail.as_ref()?;
                (c.outcome == hearth_proto::relays::CommandOutcome::Refused)
                    .then(|| serde_json::json!({"output": o.id, "s_ago": c.s_ago, "error": detail}))
            })
            .collect();
        if let Some(e) = &hardware {
            last_errors.push(serde_json::json!({"hardware": e}));
        }
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "host_id": self.host_id,
            "uptime_s": self.started.elapsed().as_secs(),
            "hardware": self.controller.backend(),
            "hardware_error": hardware,
            "outputs": outputs,
            "local_protection": as_settings(&self.controller.local_times()).relay,
            "fallback": {
                "running": crate::fallback::status(&self.controller, &self.fallback),
                "program": self.fallback.get(),
            },
            "since_engine_contact_s": self.controller.since_engine_contact().map(|d| d.as_secs_f64()),
            "last_errors": last_errors,
            // The engine knows the offset (it compares the registrations' agent_time with its
            // own clock and shows it in GET /v1/agents); the agent says what its clock reads.
            "agent_time": Timestamp::now(),
        })
    }
}

/// The management task: applies the kept settings at start, then does what the engine says
/// waits, whenever it says so.
#[derive(Debug)]
pub struct Manager {
    managed: Managed,
    agent: RelayAgent,
    locator: Arc<Locator>,
    credential: DeviceCredential,
}

impl Manager {
    /// The manager, with the settings kept in `state_dir` by an earlier run applied within
    /// today's limits (in memory only without a state directory).
    pub fn open(
        mut agent: RelayAgent,
        state_dir: Option<&std::path::Path>,
        locator: Arc<Locator>,
        credential: DeviceCredential,
    ) -> Self {
        let managed = Managed::open(&agent.host_id, AgentKind::Relay, state_dir, SETTINGS_FILE);
        let kept = managed.kept();
        if kept.revision > 0 {
            let outcome = agent.apply(&kept.desired);
            for r in &outcome.refused {
                tracing::warn!(revision = kept.revision, field = %r.field, reason = %r.reason,
                    "a kept setting from the engine is refused by this start's configuration");
            }
            tracing::info!(
                revision = kept.revision,
                refused = outcome.refused.len(),
                "settings kept from the engine applied"
            );
        }
        Self { managed, agent, locator, credential }
    }

    /// Follow `pending` (the registration's answers and the engine's nudges) until a `restart`
    /// command was answered: then return, for the agent to exit with the restart code.
    pub async fn run(mut self, mut pending: watch::Receiver<Option<Pending>>) {
        loop {
            if pending.changed().await.is_err() {
                // The API is gone: nobody will say anything again.
                return std::future::pending().await;
            }
            let Some(now) = *pending.borrow_and_update() else { continue };
            let Some(target) = self.locator.current() else { continue };
            let credential = self.credential.agent_credential(self.agent.host_id.as_str());
            let client = EngineClient::new(&target.url, Some(credential));
            if self.managed.step(now, &client, &mut self.agent).await == After::Restart {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { allowed: true, max_protection_s: 1800, min_max_on_s: 600 };

    fn local() -> Vec<(String, Times)> {
        vec![
            ("boiler".into(), Times { min_on_s: 120, min_off_s: 120, max_on_s: Some(14_400) }),
            ("valve".into(), Times { min_on_s: 0, min_off_s: 0, max_on_s: None }),
        ]
    }

    fn desired(json: serde_json::Value) -> anyhow::Result<AgentSettings> {
        Ok(serde_json::from_value(serde_json::json!({"relay": {"outputs": json}}))?)
    }

    fn fields(refused: &[Refusal]) -> Vec<&str> {
        refused.iter().map(|r| r.field.as_str()).collect()
    }

    #[test]
    fn stricter_is_applied() -> anyhow::Result<()> {
        let (times, refused) = within(
            LIMITS,
            &local(),
            &desired(serde_json::json!({
                "boiler": {"min_on_s": 300, "min_off_s": 1800, "max_on_s": 3600},
                "valve": {"min_off_s": 60, "max_on_s": 7200}}))?,
        )
        .clone();
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(times[0].1, Times { min_on_s: 300, min_off_s: 1800, max_on_s: Some(3600) });
        assert_eq!(times[1].1, Times { min_on_s: 0, min_off_s: 60, max_on_s: Some(7200) });
        // Nothing asked: the configuration.
        let (times, refused) = within(LIMITS, &local(), &AgentSettings::default());
        assert_eq!((times, refused.len()), (local(), 0));
        Ok(())
    }

    #[test]
    fn looser_or_beyond_the_local_limits_is_refused() -> anyhow::Result<()> {
        let (times, refused) = within(
            LIMITS,
            &local(),
            &desired(serde_json::json!({
                "boiler": {"min_on_s": 60, "min_off_s": 1801, "max_on_s": 20000},
                "valve": {"max_on_s": 30}}))?,
        );
        assert_eq!(times, local(), "nothing applied");
        assert_eq!(
            fields(&refused),
            [
                "relay.outputs.boiler.min_on_s",
                "relay.outputs.boiler.min_off_s",
                "relay.outputs.boiler.max_on_s",
                "relay.outputs.valve.max_on_s"
            ]
        );
        assert!(refused[0].reason.contains("may only make it longer"), "{refused:?}");
        assert!(refused[1].reason.contains("remote_max_protection_s"), "{refused:?}");
        assert!(refused[2].reason.contains("may only make it shorter"), "{refused:?}");
        assert!(refused[3].reason.contains("remote_min_max_on_s"), "{refused:?}");
        // A maximum on time that leaves no room for the minimum gives way.
        let (times, refused) = within(
            LIMITS,
            &local(),
            &desired(serde_json::json!({"boiler": {"min_on_s": 1200, "max_on_s": 900}}))?,
        );
        assert_eq!(times[0].1, Times { min_on_s: 1200, min_off_s: 120, max_on_s: Some(14_400) });
        assert_eq!(fields(&refused), ["relay.outputs.boiler.max_on_s"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_kept_setting_is_applied_again_at_start_within_that_starts_limits()
    -> anyhow::Result<()> {
        use hearth_common::manage::Kept;
        let dir = tempfile::tempdir()?;
        let outputs = vec![crate::config::OutputConfig {
            min_off_s: Some(0),
            ..crate::config::OutputConfig::new(
                "boiler",
                "Boiler",
                hearth_proto::relays::RelayFunction::Heat,
            )
        }];
        let mut kept = Managed::open("pi", AgentKind::Relay, Some(dir.path()), SETTINGS_FILE);
        kept.keep(Kept {
            revision: 2,
            desired: desired(serde_json::json!({"boiler": {"min_off_s": 600}}))?,
        })?;
        let start = |limits: Limits| -> anyhow::Result<Arc<Controller>> {
            let bank = crate::hw::SimBank::new(dir.path().join("world.json"), &outputs)?;
            let controller = Arc::new(Controller::new(Box::new(bank), outputs.clone(), &[])?);
            let agent = RelayAgent {
                host_id: "pi".into(),
                controller: controller.clone(),
                fallback: Arc::new(ProgramStore::in_memory(vec!["boiler".into()])),
                probe: None,
                limits,
                started: Instant::now(),
            };
            let secret = hearth_common::auth::SiteSecret::from_hex(&"11".repeat(32))?;
            let key = secret.device_key("pi", hearth_proto::agents::KeyRole::Relay);
            Manager::open(
                agent,
                Some(dir.path()),
                Arc::new(Locator::fixed("http://127.0.0.1:9")),
                key,
            );
            Ok(controller)
        };
        let protection = |c: &Controller| c.output("boiler").map(|o| o.protection.min_off_s);
        assert_eq!(protection(&*start(LIMITS)?), Some(600), "kept and applied again");
        // This start's configuration allows less: the configured time.
        let narrower = Limits { max_protection_s: 300, ..LIMITS };
        assert_eq!(protection(&*start(narrower)?), Some(0));
        Ok(())
    }

    #[test]
    fn an_unknown_output_and_a_locked_agent_are_refused() -> anyhow::Result<()> {
        let asked = desired(serde_json::json!({"furnace": {"min_off_s": 600},
            "boiler": {"min_off_s": 600}}))?;
        let (times, refused) = within(LIMITS, &local(), &asked);
        assert_eq!(fields(&refused), ["relay.outputs.furnace"]);
        assert!(refused[0].reason.contains("no output \"furnace\""), "{refused:?}");
        assert_eq!(times[0].1.min_off_s, 600, "the known output is applied");
        let locked = Limits { allowed: false, ..LIMITS };
        let (times, refused) = within(locked, &local(), &asked);
        assert_eq!(times, local());
        assert_eq!(fields(&refused), ["relay.outputs.furnace", "relay.outputs.boiler.min_off_s"]);
        assert!(refused[1].reason.contains("remote_settings = false"), "{refused:?}");
        Ok(())
    }
}
