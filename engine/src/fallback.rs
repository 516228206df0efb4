//! The fallback program the engine gives each relay agent: what the agent does by itself when
//! it loses the engine (a dead SD card, power supply or network), so the house is neither
//! heated without end (the lease) nor left cold (this program).
//!
//! The program is made from the engine's settings and the outputs' functions: a heat output
//! keeps the frost floor from a probe of the agent's own host when the engine knows one (a
//! sensor reported under the relay agent's host id), running the sensor-loss duty while it
//! reads nothing; cooling, fans, aux and outputs nobody assigned stay off. `after_s` is the
//! engine's lease: it renews every quarter lease, so a whole lease of silence means it is lost.
//!
//! A heat output an admin pointed at a sensor agent of the site (`sensor_agent`) reads it over
//! the LAN: the engine fills in that sensor agent's read token (derived from its device key,
//! which the engine can derive) in every program it hands over, and never takes one from a
//! client.
//!
//! It reaches the agent twice over: in the answer to every registration, and pushed by the
//! control loop ([`Pusher`], `PUT /v1/fallback`) whenever it changes (a function assigned, the
//! frost floor changed, the agent's probe first reported), since an agent the engine commands
//! does not register again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hearth_common::auth::SiteSecret;
use hearth_proto::Timestamp;
use hearth_proto::agents::{AgentKind, KeyRole};
use hearth_proto::client::{ClientError, RelayAgentClient};
use hearth_proto::fallback::{
    AgentFallback, BlindDuty, FallbackProgram, FallbackStatus, OutputProgram, SensorSource,
};
use hearth_proto::relays::RelayFunction;

use crate::control::Settings;
use crate::store::{RelayRow, SensorRow, Store};

/// The program for relay agent `host_id` with `outputs` (id, the agent's function hint).
pub(crate) async fn program_for(
    store: &Store,
    site: &SiteSecret,
    settings: &Settings,
    lease_s: u32,
    host_id: &str,
    outputs: &[OutputHint<'_>],
) -> FallbackProgram {
    let relays = store.relays().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read relay functions; the fallback program uses hints");
        Vec::new()
    });
    let sensors = store.sensors().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read sensors; the fallback program runs blind");
        Vec::new()
    });
    let chosen = chosen(store).await;
    let read_tokens = read_tokens(store, site).await;
    program(
        settings,
        lease_s,
        &Inputs { relays: &relays, sensors: &sensors, chosen: &chosen, read_tokens: &read_tokens },
        host_id,
        outputs,
    )
}

/// Each sensor agent's read token, by host id: derived from the device key of the role it last
/// reported with (a sensor key when no role was recorded). None when the agents cannot be read
/// (a program then reads no sensor agent and runs its blind duty there).
async fn read_tokens(store: &Store, site: &SiteSecret) -> ReadTokens {
    let agents = store.agents().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the agents; fallback programs read no sensor agent");
        Vec::new()
    });
    agents
        .into_iter()
        .filter(|a| a.kind == AgentKind::Sensor)
        .map(|a| {
            let role = a.key_role.unwrap_or(KeyRole::Sensor);
            let token = site.device_key(&a.host_id, role).read_token();
            (a.host_id, token)
        })
        .collect()
}

/// Read tokens by sensor agent host id.
type ReadTokens = HashMap<String, String>;

/// What the programs are made from, as read from the store.
struct Inputs<'a> {
    relays: &'a [RelayRow],
    sensors: &'a [SensorRow],
    /// The admin's choices, by (host id, output id).
    chosen: &'a Chosen,
    /// The sensor agents' read tokens, filled into the choices that read one.
    read_tokens: &'a ReadTokens,
}

type Chosen = HashMap<(String, String), OutputProgram>;

/// The admin's choices; none when they cannot be read (the defaults still protect).
async fn chosen(store: &Store) -> Chosen {
    store.relay_fallbacks().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the fallback choices; using the defaults");
        Chosen::new()
    })
}

/// The program for relay agent `host_id` with `outputs` (id, the agent's function hint).
fn program(
    settings: &Settings,
    lease_s: u32,
    inputs: &Inputs<'_>,
    host_id: &str,
    outputs: &[OutputHint<'_>],
) -> FallbackProgram {
    let Inputs { relays, sensors, chosen, read_tokens } = inputs;
    let blind = BlindDuty {
        pct: settings.sensor_loss_duty_pct,
        period_s: hearth_proto::fallback::DEFAULT_PERIOD_S,
    };
    let sensor = local_sensor(sensors, host_id);
    let mut program = FallbackProgram::all_off(lease_s);
    for &(id, hint) in outputs {
        let function = relays
            .iter()
            .find(|r| r.host_id == host_id && r.output_id == id)
            .map_or(hint, RelayRow::effective_function);
        if let Some(mine) = chosen.get(&(host_id.to_owned(), id.to_owned())) {
            let mut mine = mine.clone();
            if let OutputProgram::Frost {
                sensor: Some(SensorSource::SensorAgent { host, token, .. }),
                ..
            } = &mut mine
            {
                *token = read_tokens.get(host.as_str()).cloned();
            }
            program.outputs.insert(id.to_owned(), mine);
            continue;
        }
        let default = match function {
            Some(RelayFunction::Heat) => OutputProgram::Frost {
                setpoint_c: settings.frost_floor_c,
                sensor: sensor.clone(),
                blind,
            },
            // A boiler running its frost program on another output (or another agent) must
            // have somewhere for the heat to go: every zone valve is held open, as the
            // planner never leaves a running plant without an open valve.
            Some(RelayFunction::Valve) => OutputProgram::On,
            _ => OutputProgram::Off,
        };
        program.outputs.insert(id.to_owned(), default);
    }
    program
}

/// A sensor reported under `host_id` (a probe of the relay agent's own host), the one with the
/// greatest weight, then by id; never a weight-0 (outdoor) probe.
fn local_sensor(sensors: &[SensorRow], host_id: &str) -> Option<SensorSource> {
    let mut mine: Vec<&SensorRow> =
        sensors.iter().filter(|s| s.host_id == host_id && s.weight > 0.0).collect();
    mine.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
    mine.first().map(|s| SensorSource::Local { id: s.id.clone() })
}

/// An output as the program needs it: its id and the agent's function hint.
pub(crate) type OutputHint<'a> = (&'a str, Option<RelayFunction>);

/// Pushes each relay agent's program when it differs from the last one it accepted.
#[derive(Debug, Default)]
pub(crate) struct Pusher {
    /// By host: the program last accepted (or refused for good: an agent without the route).
    pushed: HashMap<String, FallbackProgram>,
}

impl Pusher {
    /// Bring every registered relay agent's program up to date; `client` gives the engine's
    /// client for an agent (host, URL, key role). A failed push is tried again next time.
    pub(crate) async fn push(
        &mut self,
        store: &Store,
        site: &SiteSecret,
        settings: &Settings,
        lease_s: u32,
        mut client: impl FnMut(&str, &str, Option<KeyRole>) -> RelayAgentClient,
    ) {
        let Ok(relays) = store.relays().await else { return };
        let Ok(sensors) = store.sensors().await else { return };
        let chosen = chosen(store).await;
        let read_tokens = read_tokens(store, site).await;
        let inputs = Inputs {
            relays: &relays,
            sensors: &sensors,
            chosen: &chosen,
            read_tokens: &read_tokens,
        };
        let mut agents: HashMap<&str, (&str, Option<KeyRole>, Vec<OutputHint<'_>>)> =
            HashMap::new();
        for r in &relays {
            // An agent that does not answer would cost the loop a timeout per pass: it gets its
            // program with its next registration, or here once it answers again.
            if r.unreachable_since.is_some() {
                continue;
            }
            let Some(url) = r.url.as_deref() else { continue };
            let agent = agents.entry(&r.host_id).or_insert((url, r.key_role, Vec::new()));
            agent.2.push((&r.output_id, r.function_hint));
        }
        for (host_id, (url, role, outputs)) in agents {
            let program = program(settings, lease_s, &inputs, host_id, &outputs);
            if self.pushed.get(host_id) == Some(&program) {
                continue;
            }
            match client(host_id, url, role).put_fallback(&program).await {
                Ok(_) => {
                    tracing::info!(%host_id, "fallback program handed to the relay agent");
                    self.pushed.insert(host_id.to_owned(), program);
                }
                Err(ClientError::Api { status: 404 | 405, .. }) => {
                    // An agent that predates fallback programs: it keeps its safe states.
                    tracing::warn!(%host_id, "this relay agent runs no fallback program (upgrade \
                        it): a lost engine leaves its outputs in their safe states");
                    self.pushed.insert(host_id.to_owned(), program);
                }
                Err(ClientError::Api { status, body }) if status < 500 => {
                    // Refused (a program for outputs it no longer has): asking again each pass
                    // would not help; the next change or registration tries again.
                    tracing::warn!(%host_id, status, error = %body.error,
                        "the relay agent refused its fallback program");
                    self.pushed.insert(host_id.to_owned(), program);
                }
                Err(e) => {
                    tracing::debug!(%host_id, error = %e, "cannot hand over the fallback program");
                }
            }
        }
    }
}

/// What each registered output does in its agent's fallback program as it now stands, by
/// (host id, output id), with whether it is an admin's choice; read tokens withheld (they are
/// for relay agents). Empty when the sensors or the choices cannot be read: a program shown
/// without them could be wrong (the store reports the fault; a read route does not log it
/// again at every request).
pub(crate) async fn in_force(
    store: &Store,
    settings: &Settings,
    lease_s: u32,
    relays: &[RelayRow],
) -> HashMap<(String, String), (OutputProgram, bool)> {
    let (Ok(sensors), Ok(chosen)) = (store.sensors().await, store.relay_fallbacks().await) else {
        return HashMap::new();
    };
    let no_tokens = ReadTokens::new();
    let inputs = Inputs { relays, sensors: &sensors, chosen: &chosen, read_tokens: &no_tokens };
    let mut by_host: std::collections::BTreeMap<&str, Vec<OutputHint<'_>>> = Default::default();
    for r in relays {
        by_host.entry(&r.host_id).or_default().push((&r.output_id, r.function_hint));
    }
    let mut shown = HashMap::new();
    for (host_id, outputs) in by_host {
        for (id, output) in program(settings, lease_s, &inputs, host_id, &outputs).outputs {
            let key = (host_id.to_owned(), id);
            let mine = chosen.contains_key(&key);
            shown.insert(key, (output, mine));
        }
    }
    shown
}

/// `program` as an admin is shown it: the read tokens withheld (they are for relay agents).
pub(crate) fn without_tokens(mut program: FallbackProgram) -> FallbackProgram {
    for output in program.outputs.values_mut() {
        if let OutputProgram::Frost {
            sensor: Some(SensorSource::SensorAgent { token, .. }), ..
        } = output
        {
            *token = None;
        }
    }
    program
}

/// Each relay agent's latest fallback, as the engine learned it: from a registration sent while
/// the agent ran its program, or from its state read before commanding it (after the engine's
/// own start, the agent's return from silence or its new registration). In memory: the agent reports a fallback still running at the engine's next start.
#[derive(Debug, Default)]
pub(crate) struct Seen(Mutex<HashMap<String, AgentFallback>>);

impl Seen {
    /// What agent `host_id` says now: in fallback (`Some`) or not. True when that changes what
    /// the engine shows.
    pub(crate) fn note(
        &self,
        host_id: &str,
        status: Option<&FallbackStatus>,
        now: Timestamp,
    ) -> bool {
        let Some(status) = status else { return self.ended(host_id, now) };
        let since = jiff::SignedDuration::try_from_secs_f64(status.since_s_ago)
            .ok()
            .and_then(|ago| now.checked_sub(ago).ok())
            .unwrap_or(now);
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let running = seen.get(host_id).filter(|f| f.ended_at.is_none() && f.why == status.why);
        if running.is_some() {
            return false;
        }
        tracing::warn!(%host_id, why = ?status.why, %since,
            "the relay agent runs its fallback program: it lost this engine");
        seen.insert(host_id.to_owned(), AgentFallback { since, why: status.why, ended_at: None });
        true
    }

    /// The engine commanded agent `host_id` successfully: a fallback it ran has ended. True
    /// when one was running.
    pub(crate) fn ended(&self, host_id: &str, now: Timestamp) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get_mut(host_id) {
            Some(f) if f.ended_at.is_none() => {
                f.ended_at = Some(now);
                tracing::info!(%host_id, since = %f.since, why = ?f.why,
                    "took over from fallback: the relay agent carries out this engine's commands \
                    again");
                true
            }
            _ => false,
        }
    }

    /// Agent `host_id`'s latest fallback, if any was seen.
    pub(crate) fn get(&self, host_id: &str) -> Option<AgentFallback> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(host_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zoned house's relay agent: the boiler keeps the frost floor on its own, and every
    /// zone valve is held open, so the boiler never fires against closed valves while the
    /// engine is lost; anything else is held off.
    #[test]
    fn a_boiler_in_fallback_always_has_an_open_valve() {
        let settings = Settings::default();
        let (chosen, tokens) = (Chosen::new(), ReadTokens::new());
        let inputs = Inputs { relays: &[], sensors: &[], chosen: &chosen, read_tokens: &tokens };
        let outputs = [
            ("boiler", Some(RelayFunction::Heat)),
            ("valve-1", Some(RelayFunction::Valve)),
            ("valve-2", Some(RelayFunction::Valve)),
            ("fan", Some(RelayFunction::Fan)),
        ];
        let program = program(&settings, 120, &inputs, "zones", &outputs);
        assert!(matches!(program.outputs["boiler"], OutputProgram::Frost { .. }), "{program:?}");
        assert_eq!(program.outputs["valve-1"], OutputProgram::On);
        assert_eq!(program.outputs["valve-2"], OutputProgram::On);
        assert_eq!(program.outputs["fan"], OutputProgram::Off);
        let ids: Vec<&str> = outputs.iter().map(|o| o.0).collect();
        assert_eq!(program.check(&ids), Ok(()));
    }
}
