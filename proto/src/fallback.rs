//! The fallback program: what a relay agent does with its outputs by itself when the engine is
//! lost (no engine contact for a whole lease), so a dead engine leaves the house neither heated
//! without end (the lease) nor cold (this program).
//!
//! The engine makes one program per relay agent from its settings (frost floor, sensor-loss
//! duty) and the outputs' functions, and hands it over in its answer to the agent's
//! registration ([`crate::relays::RelayRegistrationAck::fallback`]). The registration is the
//! moment the agent and the engine meet (at the agent's start, after a fallback, after a minute
//! of silence), so the agent holds an up-to-date program before the engine can be lost, with no
//! call path of its own. The agent validates it ([`FallbackProgram::check`]), keeps its previous
//! program when the new one is invalid, and stores it on disk so it survives a restart without
//! the engine.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// [`OutputProgram::Frost`]'s `setpoint_c`, °C (the frost floor's range).
pub const SETPOINT_C: RangeInclusive<f64> = crate::control::FROST_FLOOR_C;
/// The frost setpoint when nobody chose one: the engine's default frost floor, °C.
pub const DEFAULT_SETPOINT_C: f64 = 7.0;
/// [`BlindDuty::pct`], percent (the engine's sensor-loss duty range).
pub const DUTY_PCT: RangeInclusive<u32> = crate::control::SENSOR_LOSS_DUTY_PCT;
/// [`BlindDuty::period_s`], seconds.
pub const PERIOD_S: RangeInclusive<u32> = 60..=86_400;
/// The blind duty's period when nobody chose one: the engine's sensor-loss period, seconds.
pub const DEFAULT_PERIOD_S: u32 = crate::control::SENSOR_LOSS_PERIOD_S;
/// The blind duty when nobody chose one: the engine's sensor-loss duty, percent.
pub const DEFAULT_DUTY_PCT: u32 = 10;
/// [`FallbackProgram::after_s`], seconds: the leases a relay agent grants.
pub const AFTER_S: RangeInclusive<u32> = crate::relays::LEASE_S;
/// Longest sensor id or host id in a [`SensorSource`], characters.
pub const MAX_ID_CHARS: usize = 64;
/// Longest token in a [`SensorSource::SensorAgent`], characters.
pub const MAX_TOKEN_CHARS: usize = 256;

/// A relay agent's fallback program: one [`OutputProgram`] per output. Outputs it does not
/// name are `off` (held in their safe state, as before fallback programs existed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"after_s": 120, "outputs": {
    "heat": {"mode": "frost", "setpoint_c": 7.0, "sensor": {"kind": "local", "id": "28-00000000a001"},
             "blind": {"pct": 10, "period_s": 1800}},
    "cool": {"mode": "off"}}}))]
#[serde(deny_unknown_fields)]
pub struct FallbackProgram {
    /// Seconds without any engine command after which the agent runs this program: the
    /// engine's lease (it renews every quarter lease, so a whole lease of silence means it is
    /// lost).
    pub after_s: u32,
    /// Output id → what it does in fallback.
    pub outputs: BTreeMap<String, OutputProgram>,
}

/// What one output does while its agent is in fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputProgram {
    /// Keep the room at or above `setpoint_c` (on below it minus [`FROST_BAND_C`], off above
    /// it plus the band) from `sensor`; while no fresh plausible reading comes, run `blind`.
    Frost {
        /// The frost setpoint, °C.
        setpoint_c: f64,
        /// Where the temperature comes from; null: none, `blind` only.
        #[serde(default)]
        sensor: Option<SensorSource>,
        /// The duty while the sensor gives nothing usable.
        blind: BlindDuty,
    },
    /// On for `pct` percent of every `period_s`, from the fallback's start.
    BlindDuty(BlindDuty),
    /// Held on for the whole fallback: a zone valve or damper, so that heating running its
    /// own frost program never fires against closed valves (the engine refuses it for any
    /// output whose function is not `valve`).
    On,
    /// Held in its safe state.
    Off,
}

/// Half the frost thermostat's hysteresis band, K: on below `setpoint_c − band`, off above
/// `setpoint_c + band`. Narrower than the ±0.5 K a room thermostat might use: a fallback
/// thermostat reads about once a second and must not let the room fall below the setpoint by
/// more than half a kelvin.
pub const FROST_BAND_C: f64 = 0.3;

/// A duty cycle run without a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlindDuty {
    /// Percent of each period the output is on.
    pub pct: u32,
    /// The period, seconds.
    pub period_s: u32,
}

impl Default for BlindDuty {
    fn default() -> Self {
        Self { pct: DEFAULT_DUTY_PCT, period_s: DEFAULT_PERIOD_S }
    }
}

/// A temperature the relay agent can read without the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SensorSource {
    /// A probe on the relay agent's own host (its `probe_hardware`).
    Local {
        /// The sensor id, e.g. `28-0316a2797bff`.
        id: String,
    },
    /// A sensor agent of the site on the LAN, through its read API ([`READINGS_PATH`] on its
    /// status listener).
    SensorAgent {
        /// The sensor agent's status listener, e.g. `http://10.0.0.5:9100` (http only, no
        /// user info).
        url: String,
        /// The sensor agent's host id.
        host: String,
        /// The sensor id.
        id: String,
        /// The read token the engine derived for that sensor agent
        /// (`hearth_common::auth::DeviceCredential::read_token`). Filled in by the engine in
        /// the program it hands to a relay agent; an admin's choice must leave it out (the
        /// engine refuses one with 422: it never takes a token from a client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
}

/// The sensor agent's read API on its status listener (`--status-listen`): `GET` with
/// `Authorization: Bearer <read token>` answers [`SharedReadings`].
pub const READINGS_PATH: &str = "/v1/readings";

/// `GET /v1/readings` on a sensor agent: its last screened readings, for a relay agent's
/// frost program while the engine is lost. Times are relative (a Pi's clock may be wrong).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedReadings {
    /// The sensor agent's host id.
    pub host_id: String,
    /// One entry per sensor of the last read (none before the first read).
    pub readings: Vec<SharedReading>,
}

/// One sensor's last screened reading in [`SharedReadings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedReading {
    /// The sensor id, e.g. `28-0316a2797bff`.
    pub id: String,
    /// °C, calibrated; null when the read failed or the screen refused it (`error` says why).
    pub value: Option<f64>,
    /// Why `value` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds since it was read, by the sensor agent's monotonic clock.
    pub read_s_ago: f64,
}

/// Why a relay agent is in fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackWhy {
    /// No engine command for the program's `after_s` since the last one.
    EngineSilent,
    /// The agent started (with a stored program) and no engine commanded it for `after_s`.
    NoEngineSinceStart,
}

/// A relay agent running its fallback program (`fallback` in its `GET /v1/relays` and
/// `GET /v1/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackStatus {
    /// Seconds since it entered fallback (relative: a Pi's clock may be wrong).
    pub since_s_ago: f64,
    /// Why.
    pub why: FallbackWhy,
    /// The program it runs.
    pub program: FallbackProgram,
    /// Per output: what the program does with it now.
    #[serde(default)]
    pub doing: BTreeMap<String, FallbackDoing>,
}

/// `PUT /v1/relays/{host_id}/{output_id}/fallback` on the engine (admin): what one output does
/// in its agent's fallback program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"program": {"mode": "blind_duty", "pct": 20, "period_s": 1800}}))]
#[serde(deny_unknown_fields)]
pub struct OutputFallbackChoice {
    /// The output's program, or null for the default (heat: frost at the frost floor; the rest
    /// off). Required (explicit null), so an empty object is an error rather than a reset.
    #[serde(deserialize_with = "Option::deserialize")]
    pub program: Option<OutputProgram>,
}

/// A relay agent's latest fallback as the engine learned it (`fallback` in `GET /v1/agents`,
/// `agent_fallback` in `GET /v1/relays`): from the agent's registration or from the state the
/// engine reads before commanding it (after the engine's start, the agent's return from
/// silence or its new registration). Held in the engine's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentFallback {
    /// When the agent entered fallback (by the engine's clock).
    pub since: crate::Timestamp,
    /// Why.
    pub why: FallbackWhy,
    /// When the engine took over again; null while the agent still runs its program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<crate::Timestamp>,
}

/// What a running fallback program does with one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackDoing {
    /// True when the program wants the output on (the agent's protections may still hold it).
    pub on: bool,
    /// The temperature the frost thermostat read, °C; null when it runs blind or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<f64>,
    /// In words, e.g. `frost: 6.62 °C, setpoint 7.0 °C, on` or `blind duty (no sensor): 10%
    /// of 1800 s, off`.
    pub detail: String,
}

impl FallbackProgram {
    /// The program of an agent nobody told anything: every output held in its safe state.
    pub fn all_off(after_s: u32) -> Self {
        Self { after_s, outputs: BTreeMap::new() }
    }

    /// Check every bound; `outputs` are the agent's output ids (a program for an output it
    /// does not have is refused). The error names the field, e.g.
    /// `outputs.heat.blind.period_s must be between 60 and 86400, got 5`.
    pub fn check(&self, outputs: &[&str]) -> Result<(), String> {
        within("after_s", self.after_s, &AFTER_S)?;
        for (id, program) in &self.outputs {
            if !outputs.contains(&id.as_str()) {
                return Err(format!("outputs.{}: no such output", escape(id)));
            }
            program.check(&format!("outputs.{id}"))?;
        }
        Ok(())
    }
}

impl OutputProgram {
    /// Check every bound; `at` names this program's place in errors.
    pub fn check(&self, at: &str) -> Result<(), String> {
        match self {
            Self::Frost { setpoint_c, sensor, blind } => {
                if !setpoint_c.is_finite() || !SETPOINT_C.contains(setpoint_c) {
                    return Err(format!(
                        "{at}.setpoint_c must be between {} and {} °C, got {setpoint_c}",
                        SETPOINT_C.start(),
                        SETPOINT_C.end()
                    ));
                }
                if let Some(sensor) = sensor {
                    sensor.check(&format!("{at}.sensor"))?;
                }
                blind.check(&format!("{at}.blind"))
            }
            Self::BlindDuty(duty) => duty.check(at),
            Self::On | Self::Off => Ok(()),
        }
    }
}

impl BlindDuty {
    /// Check both bounds; `at` names this duty's place in errors.
    pub fn check(&self, at: &str) -> Result<(), String> {
        within(&format!("{at}.pct"), self.pct, &DUTY_PCT)?;
        within(&format!("{at}.period_s"), self.period_s, &PERIOD_S)
    }
}

impl SensorSource {
    /// Check the ids, URL and token; `at` names this source's place in errors.
    pub fn check(&self, at: &str) -> Result<(), String> {
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.chars().count() <= MAX_ID_CHARS
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        let id_error =
            |field: &str| format!("{at}.{field} must be 1 to {MAX_ID_CHARS} of [A-Za-z0-9._-]");
        match self {
            Self::Local { id } => {
                if !id_ok(id) {
                    return Err(id_error("id"));
                }
            }
            Self::SensorAgent { url, host, id, token } => {
                let url_ok = url.starts_with("http://")
                    && url.chars().count() <= crate::relays::MAX_URL_CHARS
                    && !url.chars().any(|c| c.is_whitespace() || c.is_control());
                // No user info: the read token is the credential, and a URL with a password in
                // it would show it wherever the program is shown.
                let authority = url.trim_start_matches("http://").split('/').next();
                if !url_ok || authority.is_none_or(|a| a.is_empty() || a.contains('@')) {
                    return Err(format!(
                        "{at}.url must be an http:// URL without user info of at most {} \
                         characters",
                        crate::relays::MAX_URL_CHARS
                    ));
                }
                if !id_ok(host) {
                    return Err(id_error("host"));
                }
                if !id_ok(id) {
                    return Err(id_error("id"));
                }
                if let Some(token) = token
                    && (token.is_empty()
                        || token.chars().count() > MAX_TOKEN_CHARS
                        || !token.chars().all(|c| c.is_ascii_graphic()))
                {
                    return Err(format!(
                        "{at}.token must be 1 to {MAX_TOKEN_CHARS} printable ASCII characters"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `value` of `field` within `range`, or the error that says so.
fn within(field: &str, value: u32, range: &RangeInclusive<u32>) -> Result<(), String> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(format!("{field} must be between {} and {}, got {value}", range.start(), range.end()))
}

/// An output id from a request as it goes into an error message: at most 64 characters,
/// control characters escaped (the message may reach a log).
fn escape(id: &str) -> String {
    id.chars().take(64).flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frost() -> OutputProgram {
        OutputProgram::Frost {
            setpoint_c: 7.0,
            sensor: Some(SensorSource::Local { id: "28-00000000a001".into() }),
            blind: BlindDuty::default(),
        }
    }

    #[test]
    fn wire_form_and_checks() -> Result<(), String> {
        let mut program = FallbackProgram::all_off(120);
        program.outputs.insert("heat".into(), frost());
        program.outputs.insert("cool".into(), OutputProgram::Off);
        let json = serde_json::to_value(&program).map_err(|e| e.to_string())?;
        assert_eq!(json["outputs"]["heat"]["mode"], "frost");
        assert_eq!(json["outputs"]["heat"]["sensor"]["kind"], "local");
        assert_eq!(json["outputs"]["cool"], serde_json::json!({"mode": "off"}));
        let back: FallbackProgram = serde_json::from_value(json).map_err(|e| e.to_string())?;
        assert_eq!(back, program);
        program.check(&["heat", "cool"])?;

        let err = program.check(&["heat"]).err().unwrap_or_default();
        assert_eq!(err, "outputs.cool: no such output");
        let mut bad = program.clone();
        bad.outputs.insert(
            "heat".into(),
            OutputProgram::Frost {
                setpoint_c: 7.0,
                sensor: None,
                blind: BlindDuty { pct: 10, period_s: 5 },
            },
        );
        let err = bad.check(&["heat", "cool"]).err().unwrap_or_default();
        assert_eq!(err, "outputs.heat.blind.period_s must be between 60 and 86400, got 5");
        bad.outputs.insert(
            "heat".into(),
            OutputProgram::Frost {
                setpoint_c: f64::NAN,
                sensor: None,
                blind: BlindDuty::default(),
            },
        );
        let err = bad.check(&["heat", "cool"]).err().unwrap_or_default();
        assert!(err.starts_with("outputs.heat.setpoint_c must be between 0 and 15"), "{err}");
        bad.outputs
            .insert("heat".into(), OutputProgram::BlindDuty(BlindDuty { pct: 51, period_s: 60 }));
        let err = bad.check(&["heat", "cool"]).err().unwrap_or_default();
        assert_eq!(err, "outputs.heat.pct must be between 0 and 50, got 51");
        let err = FallbackProgram::all_off(0).check(&[]).err().unwrap_or_default();
        assert_eq!(err, "after_s must be between 1 and 3600, got 0");
        Ok(())
    }

    #[test]
    fn sensor_agent_urls_are_plain_http_without_user_info() {
        let source = |url: &str| SensorSource::SensorAgent {
            url: url.into(),
            host: "hall".into(),
            id: "28-1".into(),
            token: None,
        };
        assert_eq!(source("http://10.0.0.5:8082").check("s"), Ok(()));
        assert_eq!(source("http://hall.local:8082/").check("s"), Ok(()));
        for bad in ["https://10.0.0.5", "http://me:pw@10.0.0.5", "http://", "http:///x", "ftp://x"]
        {
            let err = source(bad).check("s").err().unwrap_or_default();
            assert!(err.starts_with("s.url must be an http:// URL without user info"), "{bad}");
        }
    }
}
