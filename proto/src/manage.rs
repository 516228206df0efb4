//! Agents managed from the engine: the settings people want an agent to run with, what the
//! agent applied or refused, and commands with their results.
//!
//! Agents PULL: the engine stores the desired settings and a queue of commands per host, says
//! that something is waiting ([`Pending`]), and the agent fetches them with its device credential
//! (`GET /v1/agents/{host_id}/settings`, `GET /v1/agents/{host_id}/commands`), applies them
//! within its own local limits, and reports what it applied (`PUT .../settings/applied`) and
//! each command's outcome (`PUT .../commands/{id}`). The agent's local file is the ceiling: a
//! value outside its limits is refused with a reason, never applied, so a compromised engine
//! cannot remove an agent's own protections.
//!
//! How an agent learns that something waits:
//! - a sensor agent reports every few seconds: [`Pending`] comes in `SensorUpdateAck`;
//! - a relay agent does not report readings, so [`Pending`] comes in `RelayRegistrationAck`
//!   (it registers at start, when the engine moves, and after a minute without engine
//!   contact) AND, within seconds of an admin's change, in `POST /v1/manage/pending` on the
//!   agent: a nudge with the engine's credential (as for relay commands) that carries only
//!   the [`Pending`] summary; the agent then pulls as above. Both are additive: an agent that
//!   predates them ignores the ack's field and answers the nudge 404 (the engine logs it and
//!   carries on), and an engine that predates them never sends either.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;
use crate::agents::AgentKind;

/// The longest `interval_s`, seconds; it must be more than 0. The sensor agent's own range,
/// so what an agent reports running with always fits; its local
/// `remote_min_interval_s`/`remote_max_interval_s` narrow what the engine may set.
pub const MAX_INTERVAL_S: f64 = 3600.0;

/// True for an `interval_s` within the bounds: more than 0, at most [`MAX_INTERVAL_S`].
pub fn interval_ok(seconds: f64) -> bool {
    seconds > 0.0 && seconds <= MAX_INTERVAL_S
}
/// Longest reason of a refused setting, or message of a command outcome, characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Most refusals one applied report may carry.
pub const MAX_REFUSALS: usize = 32;
/// Largest structured `result` of a command outcome, bytes of JSON.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;
/// Seconds after which a command no agent finished is shown `expired` (and never run).
pub const COMMAND_EXPIRY_S: i64 = 600;
/// `limit` of a command list.
pub const COMMANDS_LIMIT: RangeInclusive<u32> = 1..=200;
/// `limit` when the query leaves it out.
pub const DEFAULT_COMMANDS_LIMIT: u32 = 50;

/// `PUT /v1/agents/{host_id}/settings` (admin): what the agents of a host should run with.
/// A section or field left out means "the agent's own configuration". Each `PUT` replaces
/// the whole document and bumps its `revision`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sensor": {"interval_s": 30}}))]
pub struct AgentSettings {
    /// For the host's sensor agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<SensorAgentSettings>,
    /// For the host's relay agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayAgentSettings>,
}

/// The longest protection time (`min_on_s`, `min_off_s`, `max_on_s`) the engine accepts in a
/// settings document, seconds: the relay agent's own ceiling for its configured minimum times.
/// Each agent narrows it with its local limits.
pub const MAX_PROTECTION_S: u32 = 4 * 3600;
/// The `max_on_s` the engine accepts, seconds (0 would mean "no limit": never stricter).
pub const MAX_ON_S: RangeInclusive<u32> = 1..=MAX_PROTECTION_S;

/// A relay agent's remotely settable settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outputs": {"boiler": {"min_off_s": 600}}}))]
pub struct RelayAgentSettings {
    /// Protection times by output id (at most `relays::MAX_OUTPUTS`). The agent refuses an
    /// output it does not have.
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, OutputProtection>,
}

/// One relay output's protection times. The agent's local configuration is the ceiling: the
/// engine may only make them STRICTER (a longer minimum on or off time, a shorter maximum on
/// time), within the agent's local `remote_max_protection_s` and `remote_min_max_on_s`;
/// anything else is refused. A field left out keeps the agent's own value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputProtection {
    /// Minimum seconds on before an `off` is carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_on_s: Option<u32>,
    /// Minimum seconds off before an `on` is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_off_s: Option<u32>,
    /// Maximum continuous seconds on. In what an agent reports in force, absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_on_s: Option<u32>,
}

/// A sensor agent's remotely settable settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorAgentSettings {
    /// Seconds between reports. The agent refuses a value outside its local
    /// `remote_min_interval_s..=remote_max_interval_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
}

/// A setting an agent did not apply, and why (its local limits, or a key it does not let the
/// engine change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// The setting, as a path in [`AgentSettings`], e.g. `sensor.interval_s`.
    pub field: String,
    /// Why, for people.
    pub reason: String,
}

/// `PUT /v1/agents/{host_id}/settings/applied` (the agent's device credential): what the agent
/// runs with after it read a revision of the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"agent": "sensor", "revision": 2, "in_force": {"sensor": {"interval_s": 10}},
    "refused": [{"field": "sensor.interval_s", "reason": "1 s is outside this agent's local limits of 5 to 300 s"}]}))]
pub struct AppliedSettings {
    /// Which agent of the host reports.
    pub agent: AgentKind,
    /// The revision it read (0: none yet; it reports what it runs with).
    pub revision: u64,
    /// The values now in force (remote or local), in the [`AgentSettings`] shape.
    pub in_force: AgentSettings,
    /// What it refused of the revision.
    #[serde(default)]
    pub refused: Vec<Refusal>,
    /// The agent's own configured values, in the [`AgentSettings`] shape, so people see what
    /// the engine may only tighten (relay agents send it; absent from agents that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<AgentSettings>,
}

/// What an agent last reported applying ([`AppliedSettings`]), with when the engine heard it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppliedState {
    /// Which agent of the host.
    pub agent: AgentKind,
    /// The revision it read.
    pub revision: u64,
    /// The values in force.
    pub in_force: AgentSettings,
    /// What it refused of the revision, and why.
    pub refused: Vec<Refusal>,
    /// The agent's own configured values, when it reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<AgentSettings>,
    /// When the engine received the report.
    pub at: Timestamp,
}

/// `GET /v1/agents/{host_id}/settings`: the desired settings and what each agent applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSettingsState {
    /// The host.
    pub host_id: String,
    /// Bumped by every `PUT`; 0 when nothing was ever set.
    pub revision: u64,
    /// What people asked for.
    pub desired: AgentSettings,
    /// When it was set (absent at revision 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_at: Option<Timestamp>,
    /// Who set it (the admin principal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
    /// What the host's agents reported applying, one entry per agent kind.
    pub applied: Vec<AppliedState>,
}

/// A remote command. None of them switches a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Show which device this is: a banner in the agent's log, and the Pi's activity LED
    /// blinking for a few seconds where the agent may drive it.
    Identify,
    /// Search the 1-Wire bus again and read it: the sensors found (sensor agent; a relay
    /// agent reads its fallback probe, or answers that it has none).
    Rescan,
    /// Version, uptime, hardware backend and bus state, last errors, queue depth, clock.
    Diagnostics,
    /// Exit after answering, so that systemd starts the agent afresh (`Restart=on-failure`).
    Restart,
}

impl CommandKind {
    /// The name on the wire (`identify`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identify => "identify",
            Self::Rescan => "rescan",
            Self::Diagnostics => "diagnostics",
            Self::Restart => "restart",
        }
    }
}

/// Where a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Waiting for the agent to fetch it.
    Pending,
    /// The agent has it and is carrying it out.
    Delivered,
    /// Carried out; see `result`.
    Done,
    /// The agent could not carry it out; see `message`.
    Failed,
    /// Not finished within [`COMMAND_EXPIRY_S`] of being asked: never carried out after that.
    Expired,
}

impl CommandState {
    /// The name on the wire (`pending`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// True when nothing will change it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Expired)
    }
}

/// `POST /v1/agents/{host_id}/commands` (admin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"agent": "sensor", "command": "diagnostics"}))]
pub struct NewCommand {
    /// Which agent of the host.
    pub agent: AgentKind,
    /// What to do.
    pub command: CommandKind,
}

/// A command and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Command {
    /// Its id.
    pub id: i64,
    /// The host.
    pub host_id: String,
    /// Which agent of the host.
    pub agent: AgentKind,
    /// What to do.
    pub command: CommandKind,
    /// Who asked (the admin principal).
    pub asked_by: String,
    /// When.
    pub asked_at: Timestamp,
    /// Where it is.
    pub state: CommandState,
    /// When the state last changed.
    pub updated_at: Timestamp,
    /// What the agent said, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What came back, structured (diagnostics, the sensors a rescan found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// `PUT /v1/agents/{host_id}/commands/{id}` (the agent's device credential): the command's
/// progress. `delivered` first (so a restart that never answers again still shows it was
/// received), then `done` or `failed`. A final state is not changed again (409).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"state": "done", "message": "1 sensors found, 1 read"}))]
pub struct CommandReport {
    /// `delivered`, `done` or `failed`.
    pub state: CommandState,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Structured result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// Query of `GET /v1/agents/{host_id}/commands`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandsQuery {
    /// Only this agent's commands.
    #[serde(default)]
    pub agent: Option<AgentKind>,
    /// Only commands in this state (an agent asks for `pending`).
    #[serde(default)]
    pub state: Option<CommandState>,
    /// Most commands, newest first.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The relay agent's route through which the engine says that management work waits.
pub const PENDING_PATH: &str = "/v1/manage/pending";

/// Management work waiting for one agent of a host: in the answer to a sensor report (the
/// sensor agent), to a relay registration and in `POST /v1/manage/pending` (the relay agent).
/// Absent from the answers when nothing was ever set or asked.
// Open to unknown fields: it is read in the answers old agents decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"settings_revision": 3, "commands": 1}))]
pub struct Pending {
    /// The revision of the desired settings; the agent fetches them when it has applied
    /// another.
    pub settings_revision: u64,
    /// Commands waiting for the agent.
    pub commands: u32,
}
