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

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;
use crate::agents::AgentKind;
use crate::sensors::{MAX_REPORT_TEXT_CHARS, MAX_SENSOR_ID_CHARS};

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

/// The largest settings revision: the engine counts them in a signed 64-bit column, and the
/// documents say `int64`.
pub const MAX_REVISION: u64 = i64::MAX as u64;

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
    pub outputs: BTreeMap<String, OutputProtection>,
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

/// DS18B20 resolutions, bits: 9 (0.5 °C steps, 94 ms per conversion), 10 (0.25 °C, 188 ms),
/// 11 (0.125 °C, 375 ms), 12 (0.0625 °C, 750 ms).
pub const RESOLUTION_BITS: RangeInclusive<u8> = 9..=12;
/// Largest calibration offset the engine may set on an agent, either way, °C. Narrower than
/// the agent's own `offset_c` (±10 °C): a remote change is a correction, not a relabelling.
pub const MAX_AGENT_OFFSET_C: f64 = 5.0;
/// Most sensors one settings document may name.
pub const MAX_AGENT_SENSORS: usize = 64;
/// Fastest `screen.max_rate_c_per_min`, °C per minute; it must be more than 0.
pub const MAX_SCREEN_RATE_C_PER_MIN: f64 = 100.0;
/// Most `screen.step_rejections` (the agent's own bound).
pub const MAX_STEP_REJECTIONS: u32 = 1000;

/// A sensor agent's remotely settable settings. Everything is optional: what is left out
/// is what the agent's own configuration says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"interval_s": 30, "resolution_bits": 11,
    "sensors": {"28-0316a2797bff": {"alias": "hall", "offset_c": -0.25}},
    "screen": {"max_rate_c_per_min": 3}}))]
pub struct SensorAgentSettings {
    /// Seconds between reports. The agent refuses a value outside its local
    /// `remote_min_interval_s..=remote_max_interval_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    /// Resolution of the DS18B20s, bits: finer costs conversion time (9 bit: 0.5 °C steps in
    /// 94 ms; 12 bit: 0.0625 °C in 750 ms, and the agent's read of the bus takes that long).
    /// Written to the sensors' RAM while the agent runs (again at start and whenever a sensor
    /// appears), never to their EEPROM. Left out: the sensors keep their own. The agent
    /// refuses a value outside its local `remote_min_resolution_bits..=
    /// remote_max_resolution_bits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_bits: Option<u8>,
    /// Per sensor, by sensor id (matched without regard to case): what to change of it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensors: BTreeMap<String, AgentSensorSettings>,
    /// The agent's plausibility screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<ScreenSettings>,
}

/// One sensor's settings on its agent. Left out: what the agent's `[[sensors]]` table says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSensorSettings {
    /// False: the agent neither reads nor reports the sensor. A sensor the agent's own file
    /// lists with `enabled = false` stays off (the agent refuses `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The alias the agent reports with the sensor's readings (the engine shows it unless
    /// people named the sensor in its settings); empty: none. It replaces the alias of the
    /// agent's `[[sensors]]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The AGENT's calibration, °C: added by the agent to every reading that passes its
    /// screen, so what it reports (stored as measured by the engine) and what it serves to
    /// relay agents in fallback already include it; it replaces the `offset_c` of the agent's
    /// `[[sensors]]` table. Not the engine's own offset (`PUT /v1/sensors/{id}/settings`),
    /// which the engine adds on top when it uses a reading: the two add up, each applied
    /// once, so correct a sensor in one place. The agent refuses more than its local
    /// `remote_max_offset_c` either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_c: Option<f64>,
}

/// The agent's plausibility screen (what its `screen_*` settings say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenSettings {
    /// The fastest change a room can make, °C per minute: a bigger jump is reported as a
    /// failed reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate_c_per_min: Option<f64>,
    /// Rejected jumps in a row that agree with each other before the new level is accepted;
    /// 0 turns the jump check off, which only the agent's own file may do: the agent refuses
    /// 0 from the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_rejections: Option<u32>,
}

/// A value of a settings document outside the bounds every engine and agent share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where, as a path in [`AgentSettings`], e.g. `sensor.sensors.28-0000.offset_c`.
    pub field: String,
    /// What it must be, and what it was.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

/// True for a sensor id of a report: 1 to [`MAX_SENSOR_ID_CHARS`] characters without `/` or
/// control characters.
pub fn sensor_id_ok(id: &str) -> bool {
    (1..=MAX_SENSOR_ID_CHARS).contains(&id.chars().count())
        && !id.chars().any(|c| c.is_control() || c == '/')
}

impl AgentSettings {
    /// The shared bounds of every value (the first one outside them). An agent's local limits
    /// narrow them further.
    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(s) = &self.sensor {
            s.check()?;
        }
        match &self.relay {
            Some(r) => r.check(),
            None => Ok(()),
        }
    }
}

impl RelayAgentSettings {
    /// The shared bounds (see [`AgentSettings::check`]).
    pub fn check(&self) -> Result<(), Invalid> {
        self.check_ids()?;
        for (id, p) in &self.outputs {
            let field = |name: &str| format!("relay.outputs.{id}.{name}");
            for (name, value) in [("min_on_s", p.min_on_s), ("min_off_s", p.min_off_s)] {
                if let Some(v) = value
                    && v > MAX_PROTECTION_S
                {
                    return Err(Invalid {
                        field: field(name),
                        message: format!("must be 0 to {MAX_PROTECTION_S} seconds, got {v}"),
                    });
                }
            }
            if let Some(v) = p.max_on_s
                && !MAX_ON_S.contains(&v)
            {
                return Err(Invalid {
                    field: field("max_on_s"),
                    message: format!(
                        "must be {} to {} seconds, got {v}",
                        MAX_ON_S.start(),
                        MAX_ON_S.end()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The output ids alone: well-formed, at most `relays::MAX_OUTPUTS` of them.
    pub fn check_ids(&self) -> Result<(), Invalid> {
        use crate::relays::{MAX_OUTPUTS, OUTPUT_ID_RULE, valid_output_id};
        if self.outputs.len() > MAX_OUTPUTS {
            return Err(Invalid {
                field: "relay.outputs".into(),
                message: format!("must name at most {MAX_OUTPUTS} outputs"),
            });
        }
        match self.outputs.keys().find(|id| !valid_output_id(id)) {
            Some(id) => Err(Invalid {
                field: "relay.outputs".into(),
                message: format!("key {id:?} is not an output id ({OUTPUT_ID_RULE})"),
            }),
            None => Ok(()),
        }
    }
}

impl SensorAgentSettings {
    /// The shared bounds (see [`AgentSettings::check`]).
    pub fn check(&self) -> Result<(), Invalid> {
        let bad = |field: String, message: String| Err(Invalid { field, message });
        if let Some(v) = self.interval_s
            && !interval_ok(v)
        {
            return bad(
                "sensor.interval_s".into(),
                format!("must be more than 0 and at most {MAX_INTERVAL_S} seconds, got {v}"),
            );
        }
        if let Some(bits) = self.resolution_bits
            && !RESOLUTION_BITS.contains(&bits)
        {
            return bad(
                "sensor.resolution_bits".into(),
                format!(
                    "must be {} to {} bits, got {bits}",
                    RESOLUTION_BITS.start(),
                    RESOLUTION_BITS.end()
                ),
            );
        }
        if self.sensors.len() > MAX_AGENT_SENSORS {
            return bad(
                "sensor.sensors".into(),
                format!("must name at most {MAX_AGENT_SENSORS} sensors"),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (id, s) in &self.sensors {
            if !sensor_id_ok(id) {
                return bad(
                    "sensor.sensors".into(),
                    format!(
                        "key {id:?} must be a sensor id of 1 to {MAX_SENSOR_ID_CHARS} characters \
                         without '/' or control characters"
                    ),
                );
            }
            if !seen.insert(id.to_ascii_lowercase()) {
                return bad(
                    "sensor.sensors".into(),
                    format!("names sensor {id:?} twice (ids are matched without regard to case)"),
                );
            }
            let field = |name: &str| format!("sensor.sensors.{id}.{name}");
            if let Some(alias) = &s.alias
                && alias.chars().count() > MAX_REPORT_TEXT_CHARS
            {
                return bad(
                    field("alias"),
                    format!("must be at most {MAX_REPORT_TEXT_CHARS} characters"),
                );
            }
            if let Some(offset) = s.offset_c
                && !(-MAX_AGENT_OFFSET_C..=MAX_AGENT_OFFSET_C).contains(&offset)
            {
                return bad(
                    field("offset_c"),
                    format!(
                        "must be -{MAX_AGENT_OFFSET_C} to {MAX_AGENT_OFFSET_C} °C, got {offset}"
                    ),
                );
            }
        }
        if let Some(screen) = &self.screen {
            if let Some(rate) = screen.max_rate_c_per_min
                && !(rate > 0.0 && rate <= MAX_SCREEN_RATE_C_PER_MIN)
            {
                return bad(
                    "sensor.screen.max_rate_c_per_min".into(),
                    format!(
                        "must be more than 0 and at most {MAX_SCREEN_RATE_C_PER_MIN} °C per \
                         minute, got {rate}"
                    ),
                );
            }
            if let Some(n) = screen.step_rejections
                && n > MAX_STEP_REJECTIONS
            {
                return bad(
                    "sensor.screen.step_rejections".into(),
                    format!("must be at most {MAX_STEP_REJECTIONS}, got {n}"),
                );
            }
        }
        Ok(())
    }
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
    /// another. At most [`MAX_REVISION`].
    pub settings_revision: u64,
    /// Commands waiting for the agent (any u32: `int32`, the default for it, would document
    /// half of what is taken).
    #[schema(format = Int64, maximum = 4294967295_u64)]
    pub commands: u32,
}
