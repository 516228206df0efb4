//! Relays: the relay agent's own API (`/v1/relays/{id}`) and the engine's relay registry.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;

/// The state of one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelayState {
    /// Energised: the equipment runs.
    On,
    /// De-energised: the equipment is stopped.
    Off,
}

impl RelayState {
    /// `On` for true.
    pub fn from_on(on: bool) -> Self {
        if on { Self::On } else { Self::Off }
    }

    /// True for `On`.
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

/// What an output drives in the house.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelayFunction {
    /// A furnace, boiler or heat pump's heat call.
    Heat,
    /// An air conditioner's cool call.
    Cool,
    /// A circulation fan.
    Fan,
    /// Anything else (auxiliary heat, humidifier); never commanded by the decision loop.
    Aux,
    /// A zone valve or damper: commanded by the decision loop only when a zone names it
    /// (`/v1/zones`), opened while its zone calls or its plant needs an outlet.
    Valve,
}

/// One output of a relay agent, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputStatus {
    /// The output's id, unique within its agent (e.g. `heat`).
    pub id: String,
    /// A human name (e.g. `Furnace`).
    pub name: String,
    /// The state the output is in now.
    pub state: RelayState,
    /// The state the output falls back to when its lease runs out or the agent stops.
    pub safe_state: RelayState,
    /// What the agent's configuration says this output drives, if anything.
    pub function_hint: Option<RelayFunction>,
    /// Seconds left on the current lease when the output is on by lease; null otherwise.
    pub lease_remaining_s: Option<f64>,
    /// Seconds since the output last switched (or since the agent took it over at start, when
    /// it was driven to its safe state). Relative, so an agent's wrong clock does not matter.
    #[serde(default)]
    pub changed_s_ago: f64,
    /// How many times the output was switched on since the agent started.
    #[serde(default)]
    pub cycles: u64,
    /// The equipment protection this output enforces by itself.
    #[serde(default)]
    pub protection: Protection,
    /// Seconds until a deferred `off` happens: the engine asked for off, but the minimum on
    /// time had not passed yet. Null when no off is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_off_in_s: Option<f64>,
    /// Seconds until an `on` command would be accepted (the minimum off time still running),
    /// when the output is off. Null when `on` is possible now (interlocks aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_blocked_for_s: Option<f64>,
    /// The last command the engine sent, and what came of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_command: Option<LastCommand>,
    /// The last time the agent returned the output to its safe state by itself (lease run out,
    /// maximum on time), if it ever did since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fallback: Option<Fallback>,
}

/// Equipment protection of one output, enforced at the relay agent whatever the engine says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// Minimum seconds on before an `off` is carried out (an earlier `off` is deferred).
    pub min_on_s: u32,
    /// Minimum seconds off before an `on` is accepted (an earlier `on` is refused with
    /// `short_cycle`).
    pub min_off_s: u32,
    /// Maximum continuous seconds on; then the output returns to its safe state however often
    /// its lease is renewed. Null: no limit.
    pub max_on_s: Option<u32>,
    /// Outputs that can never be on together with this one (interlock groups); an `on` while
    /// one of them is on is refused with `interlock`.
    pub interlocked_with: Vec<String>,
}

/// The last command an output received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LastCommand {
    /// The state asked for.
    pub state: RelayState,
    /// The lease asked for, for `on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<u32>,
    /// Seconds since the command arrived.
    pub s_ago: f64,
    /// What the agent did with it.
    pub outcome: CommandOutcome,
    /// Why, in words, when it was deferred or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a relay agent did with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Carried out at once (switched, renewed, or already in that state).
    Done,
    /// Accepted but carried out later: an `off` waits for the minimum on time.
    Deferred,
    /// Refused: an interlock or the minimum off time.
    Refused,
}

/// The agent returned an output to its safe state by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// Why.
    pub reason: FallbackReason,
    /// Seconds ago.
    pub s_ago: f64,
}

/// Why an output fell back to its safe state without a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// The engine did not renew the lease in time (engine down, network down, engine wedged).
    LeaseExpired,
    /// The output was on for its maximum continuous on time.
    MaxOnTime,
}

/// `POST /v1/relays/{id}` on a relay agent: switch one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"state": "on", "lease_s": 120}))]
#[serde(deny_unknown_fields)]
pub struct RelayCommand {
    /// The state wanted.
    pub state: RelayState,
    /// For `on`: how long the output may stay on without a renewal, seconds. Required for
    /// `on`; `off` needs none (one sent anyway must be in range too). When it runs out the
    /// output returns to its safe state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<u32>,
}

/// The longest lease a relay agent grants, in seconds.
pub const MAX_LEASE_S: u32 = 3600;
/// The leases a relay agent grants, in seconds.
pub const LEASE_S: RangeInclusive<u32> = 1..=MAX_LEASE_S;
/// Most outputs one relay agent may register.
pub const MAX_OUTPUTS: usize = 32;
/// Longest URL a relay agent may register, characters.
pub const MAX_URL_CHARS: usize = 256;
/// Longest output name the engine registers, characters.
pub const MAX_OUTPUT_NAME_CHARS: usize = 64;
/// Longest output id a relay agent accepts in its configuration, characters.
pub const MAX_OUTPUT_ID_CHARS: usize = 32;

/// True when `id` is an output id a relay agent accepts: 1 to [`MAX_OUTPUT_ID_CHARS`] of
/// [A-Za-z0-9_-] (it appears in URLs). Whoever names a relay agent's output (the agent's own
/// configuration, a simulated room heated by it) checks it with this one rule.
pub fn valid_output_id(id: &str) -> bool {
    (1..=MAX_OUTPUT_ID_CHARS).contains(&id.len()) && id.chars().all(crate::agents::is_host_id_char)
}

/// What [`valid_output_id`] asks, for error messages.
pub const OUTPUT_ID_RULE: &str = "1 to 32 characters of letters, digits, '-' and '_'";

/// `GET /v1/relays` on a relay agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RelayList {
    /// The agent's host id.
    pub host_id: String,
    /// Every output, in configuration order.
    pub outputs: Vec<OutputStatus>,
    /// Set while the agent runs its fallback program (the engine lost): since when, why, what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<crate::fallback::FallbackStatus>,
}

/// `GET /v1/status` on a relay agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RelayAgentStatus {
    /// Service health (backend check included).
    #[serde(flatten)]
    pub service: crate::status::ServiceStatus,
    /// The agent's host id.
    pub host_id: String,
    /// The hardware backend in use, e.g. `simulated`.
    pub backend: String,
    /// Every output with its state and lease.
    pub outputs: Vec<OutputStatus>,
    /// Seconds since the engine last commanded this agent successfully; null if never.
    pub since_engine_contact_s: Option<f64>,
    /// Set while the agent runs its fallback program (the engine lost): since when, why, what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<crate::fallback::FallbackStatus>,
}

/// `POST /v1/relays/register` on the engine: a relay agent announces itself and its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayRegistration {
    /// The relay agent's host id (must match its credential).
    pub host_id: String,
    /// The base URL where the engine reaches the agent's API, e.g. `http://10.0.0.7:8081`.
    pub url: String,
    /// Every output with its current state.
    pub outputs: Vec<OutputStatus>,
    /// The agent's clock when it sent this, so the engine can flag a wrong clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_time: Option<Timestamp>,
    /// The hardware backend that drives the outputs: `rppal`, `gpio-cdev`, or `simulated`
    /// when the outputs switch no equipment at all (demos, tests; the engine and the
    /// dashboard then say so). Another implementation names its own (at most
    /// 32 characters of letters, digits, `-` and `_`). Absent from agents that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32, pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub backend: Option<String>,
    /// Set while the agent runs its fallback program: the engine learns since when and why
    /// (sent only then, so an engine that predates it still accepts every other registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<crate::fallback::FallbackStatus>,
}

/// The backend name of relay outputs that switch no equipment
/// ([`RelayRegistration::backend`]).
pub const SIMULATED_BACKEND: &str = "simulated";

/// Reply to an accepted [`RelayRegistration`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RelayRegistrationAck {
    /// Always `"ok"`.
    pub status: String,
    /// The id of the engine that accepted the registration.
    pub engine_id: String,
    /// The program the agent runs when it loses the engine (stored on its disk). Absent from
    /// engines that predate it: the agent keeps the program it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<crate::fallback::FallbackProgram>,
    /// Management work waiting for this relay agent (settings, commands); absent when nothing
    /// was ever set or asked, and from engines that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<crate::manage::Pending>,
}

/// A relay output as the engine knows it (`GET /v1/relays`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RelayInfo {
    /// The relay agent's host id.
    pub host_id: String,
    /// The output's id within its agent.
    pub output_id: String,
    /// The output's human name.
    pub name: String,
    /// The agent's API base URL.
    pub url: String,
    /// The function assigned in the engine; falls back to the agent's hint until assigned.
    pub function: Option<RelayFunction>,
    /// The function hint from the agent's configuration.
    pub function_hint: Option<RelayFunction>,
    /// The last state the agent reported.
    pub state: RelayState,
    /// When that state was reported.
    pub updated_at: Timestamp,
    /// The output's whole status as the agent reported it at `updated_at` (lease, protection,
    /// cycles, last fallback to its safe state); its `*_s_ago` fields count from `updated_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<OutputStatus>,
    /// Why the agent refused the engine's last command (an interlock, the minimum off time);
    /// null when it carried it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_error: Option<String>,
    /// Seconds since `updated_at`, by the engine's clock when it answered: how old `state` is.
    /// While the agent answers it stays below a quarter lease for the outputs the engine
    /// commands; while it does not (`agent_reachable` false) `state` is only the last known
    /// one, and this says how old.
    #[serde(default)]
    pub age_s: f64,
    /// False while the engine's calls to the agent (lease renewals, commands, reads) get no
    /// answer, since `agent_unreachable_since`. What the output does meanwhile is unknown:
    /// it returns to its safe state when its lease runs out if the agent process lives (a
    /// partition); it may keep its last level if the process died (docs/relay-safety.md).
    #[serde(default = "yes")]
    pub agent_reachable: bool,
    /// When the engine's calls to the agent started failing; null while it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_unreachable_since: Option<Timestamp>,
    /// The agent's hardware backend as it registered it (`rppal`, `gpio-cdev`, `simulated`);
    /// null for an agent that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// True when the backend is `simulated`: the output switches no equipment.
    #[serde(default)]
    pub simulated: bool,
    /// The agent's latest fallback (it lost the engine and ran its fallback program), as in
    /// `GET /v1/agents`; null if never seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_fallback: Option<crate::fallback::AgentFallback>,
    /// What this output does in its agent's fallback program as the engine now hands it over
    /// (read tokens withheld): an admin's choice (`fallback_chosen`), else the engine's default
    /// for its function. Null when the engine cannot read its sensors or the choices (a storage
    /// fault), or from an engine that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_program: Option<crate::fallback::OutputProgram>,
    /// True when `fallback_program` is an admin's choice (`PUT …/fallback`); false when it is
    /// the engine's default (heat: frost at the frost floor; a valve: held open; the rest off).
    #[serde(default)]
    pub fallback_chosen: bool,
}

fn yes() -> bool {
    true
}

/// `PUT /v1/relays/{host_id}/{output_id}/function`: assign what an output drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"function": "heat"}))]
#[serde(deny_unknown_fields)]
pub struct FunctionAssignment {
    /// The function, or null to fall back to the agent's hint. Required (explicit null), so
    /// an empty object is an error rather than a silent reset.
    #[serde(deserialize_with = "Option::deserialize")]
    pub function: Option<RelayFunction>,
}

/// Path of the engine's per-output relay routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RelayPath {
    /// The relay agent's host id.
    pub host_id: String,
    /// The output's id within its agent.
    pub output_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_ids() {
        for ok in ["heat", "valve-1", "Boiler_2", &"x".repeat(MAX_OUTPUT_ID_CHARS)] {
            assert!(valid_output_id(ok), "{ok:?} refused");
        }
        for bad in ["", "valve 1", "a/b", "ü", "a,b", &"x".repeat(MAX_OUTPUT_ID_CHARS + 1)] {
            assert!(!valid_output_id(bad), "{bad:?} accepted");
        }
        assert!(OUTPUT_ID_RULE.contains(&MAX_OUTPUT_ID_CHARS.to_string()));
    }
}
