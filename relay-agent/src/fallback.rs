//! The fallback program: what the agent does with its outputs by itself when the engine is lost.
//!
//! The lease protects against a furnace left on; this protects against a house left cold. The
//! engine hands the agent a [`FallbackProgram`] (in its answer to each registration, or with
//! `PUT /v1/fallback`); the agent checks it, keeps it in [`ProgramStore`] (on disk, so it
//! survives a restart without the engine) and, once the engine has been silent for the
//! program's `after_s` (its lease), [`Runner`] runs it: per output a frost thermostat from a
//! probe the agent reads itself (`--probe`) or from a sensor agent of the site on the LAN (its
//! read API, `GET /v1/readings`, with the read token the engine put in the program), a blind
//! duty while no fresh plausible reading comes, or off. Every switch goes through the [`Controller`] like an engine command, so the
//! minimum on/off times, the maximum on time and the interlocks hold; the engine's first command
//! ends the fallback (`Controller::command`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hearth_probes::TemperatureSource;
use hearth_proto::client::{ClientError, SensorAgentClient};
use hearth_proto::fallback::{
    BlindDuty, FROST_BAND_C, FallbackDoing, FallbackProgram, FallbackStatus, FallbackWhy,
    OutputProgram, SensorSource, SharedReadings,
};
use hearth_proto::relays::{RelayCommand, RelayState};
use hearth_proto::sensors::{MAX_READING_C, MIN_READING_C};
use tokio::time::Instant;

use crate::relays::Controller;

/// The stored program's file name in the state directory.
pub const FILE_NAME: &str = "fallback.json";

/// The lease the program grants its own `on`s, renewed every tick (`--fallback-tick-s`, at most
/// 10 s): if the program's task ever stopped, the output would still return to its safe state.
pub const LEASE_S: u32 = 20;

/// A reading older than this many ticks, and older than [`FRESH_MIN`], is stale: the blind
/// duty takes over.
const FRESH_TICKS: u32 = 3;
/// The least age at which a reading is stale: three of a sensor agent's default 10 s intervals,
/// so a sensor agent's reading, which is up to an interval old when it is read, stays usable
/// with a tick of a second. A room does not cool by a kelvin in half a minute.
const FRESH_MIN: Duration = Duration::from_secs(30);
/// How long one read of a sensor agent may take: the tick waits for it.
pub const SENSOR_AGENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The program the agent holds, in memory and in its state directory.
#[derive(Debug)]
pub struct ProgramStore {
    /// None: held in memory only.
    path: Option<PathBuf>,
    outputs: Vec<String>,
    program: Mutex<Option<FallbackProgram>>,
}

impl ProgramStore {
    /// The store of an agent with `outputs`, loading `dir/fallback.json` when it holds a valid
    /// program. A missing file is no program; a torn, unreadable or invalid one is logged and
    /// ignored (the engine hands a new one at the next registration), never a failed start.
    pub fn open(dir: &Path, outputs: Vec<String>) -> Self {
        let path = dir.join(FILE_NAME);
        let program = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<FallbackProgram>(&bytes) {
                Ok(program) => match program.check(&ids(&outputs)) {
                    Ok(()) => {
                        tracing::info!(file = %path.display(), "fallback program loaded");
                        Some(program)
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e,
                            "the stored fallback program is invalid for these outputs; ignored");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e,
                        "the stored fallback program is unreadable (torn?); ignored");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e,
                    "cannot read the stored fallback program; ignored");
                None
            }
        };
        Self { path: Some(path), outputs, program: Mutex::new(program) }
    }

    /// A store that keeps its program in memory only (tests, an agent run in-process).
    pub fn in_memory(outputs: Vec<String>) -> Self {
        Self { path: None, outputs, program: Mutex::new(None) }
    }

    /// The program held, if any.
    pub fn get(&self) -> Option<FallbackProgram> {
        self.program.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Check `program` against this agent's outputs and hold it (the previous one is kept when
    /// it is refused); the error names the field. It is written to disk atomically (a
    /// temporary file, synced, then renamed); a write failure is logged and the program is
    /// held in memory anyway: it still protects the house until the next restart.
    pub fn set(&self, program: FallbackProgram) -> Result<(), String> {
        program.check(&ids(&self.outputs))?;
        let mut held = self.program.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref() == Some(&program) {
            return Ok(());
        }
        if let Some(path) = &self.path {
            match write_atomically(path, &program) {
                Ok(()) => tracing::info!(file = %path.display(), "fallback program stored"),
                Err(e) => tracing::error!(file = %path.display(), error = %e,
                    "cannot store the fallback program; it holds until the agent restarts"),
            }
        }
        *held = Some(program);
        Ok(())
    }
}

fn ids(outputs: &[String]) -> Vec<&str> {
    outputs.iter().map(String::as_str).collect()
}

fn write_atomically(path: &Path, program: &FallbackProgram) -> std::io::Result<()> {
    use std::io::Write as _;
    let bytes = serde_json::to_vec_pretty(program).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable once the directory is synced.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The program's status for `GET /v1/relays` and `GET /v1/status`: set while it runs.
pub fn status(controller: &Controller, store: &ProgramStore) -> Option<FallbackStatus> {
    let (since, why, doing) = controller.fallback()?;
    let program = store.get()?;
    Some(FallbackStatus { since_s_ago: since.elapsed().as_secs_f64(), why, program, doing })
}

/// A probe of this host, read off the async runtime.
#[derive(Clone)]
pub struct Probe(Arc<Mutex<Box<dyn TemperatureSource>>>);

impl Probe {
    /// Wrap an opened (screened) source.
    pub fn new(source: Box<dyn TemperatureSource>) -> Self {
        Self(Arc::new(Mutex::new(source)))
    }

    /// Read every sensor of the probe once, off the runtime (a conversion blocks ~750 ms);
    /// None when the read panicked.
    pub async fn read(&self) -> Option<Vec<hearth_probes::RawReading>> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || {
            probe.0.lock().unwrap_or_else(PoisonError::into_inner).read_all()
        })
        .await
        .ok()
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

/// Runs the program whenever the engine is lost.
#[derive(Debug)]
pub struct Runner {
    /// The relays.
    pub controller: Arc<Controller>,
    /// The program.
    pub store: Arc<ProgramStore>,
    /// The local probe (`--probe`), if any.
    pub probe: Option<Probe>,
    /// How often the silence is checked and, in fallback, the probe read and the outputs set.
    pub tick: Duration,
}

impl Runner {
    /// Watch the engine's silence every tick and run the program while it lasts; forever
    /// (abort the task to stop).
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The last good reading of each local sensor, and when it was read.
        let mut readings: BTreeMap<String, (f64, Instant)> = BTreeMap::new();
        let mut remote = Remote::default();
        let fresh_limit = (self.tick * FRESH_TICKS).max(FRESH_MIN);
        loop {
            ticks.tick().await;
            let Some(program) = self.store.get() else { continue };
            // Nothing to do (every output off): no fallback to show either. An agent whose
            // outputs the engine never commands (a fan, aux) is not "lost" by its silence.
            if program.outputs.values().all(|p| *p == OutputProgram::Off) {
                continue;
            }
            let after = Duration::from_secs(u64::from(program.after_s));
            let since = match self.controller.fallback() {
                Some((since, _, _)) => since,
                None => {
                    let (silent, ever) = self.controller.engine_silence();
                    if silent < after {
                        continue;
                    }
                    let why = if ever {
                        FallbackWhy::EngineSilent
                    } else {
                        FallbackWhy::NoEngineSinceStart
                    };
                    match self.controller.enter_fallback(why, after) {
                        Some(since) => since,
                        None => continue,
                    }
                }
            };
            if let Some(probe) = &self.probe {
                read_probe(probe, &mut readings).await;
            }
            // Over HTTP, before any output is touched: the controller is not held meanwhile.
            remote.read(&program).await;
            let now = Instant::now();
            for (id, output) in &program.outputs {
                let on_now = self.controller.output(id).is_some_and(|o| o.state.is_on());
                let doing = match output {
                    OutputProgram::Off => {
                        FallbackDoing { on: false, temp_c: None, detail: "off".to_owned() }
                    }
                    OutputProgram::On => FallbackDoing {
                        on: true,
                        temp_c: None,
                        detail: "held open (a zone valve or damper)".to_owned(),
                    },
                    OutputProgram::BlindDuty(duty) => blind(duty, since, now, "blind duty"),
                    OutputProgram::Frost { setpoint_c, sensor, blind: duty } => {
                        let fresh = |id: &str| {
                            readings
                                .get(&id.to_ascii_lowercase())
                                .filter(|(_, at)| now.saturating_duration_since(*at) <= fresh_limit)
                                .map(|(t, _)| *t)
                        };
                        let reading = match sensor {
                            Some(SensorSource::Local { id }) => fresh(id)
                                .ok_or_else(|| format!("no fresh plausible reading of {id}")),
                            Some(SensorSource::SensorAgent { url, host, id, .. }) => {
                                remote.judge(url, host, id, now, fresh_limit)
                            }
                            None => Err("no sensor".to_owned()),
                        };
                        match reading {
                            Ok(t) => frost(t, *setpoint_c, on_now),
                            Err(why) => blind(duty, since, now, &format!("blind duty ({why})")),
                        }
                    }
                };
                let command = if doing.on {
                    RelayCommand { state: RelayState::On, lease_s: Some(LEASE_S) }
                } else {
                    RelayCommand { state: RelayState::Off, lease_s: None }
                };
                match self.controller.fallback_command(id, &command, doing) {
                    Ok(Some(_)) => {}
                    // The engine is back: its command ended the fallback.
                    Ok(None) => break,
                    // The controller's protections said no (minimum off time, an interlock):
                    // the next tick asks again.
                    Err(e) => tracing::debug!(output = %id, error = %e, "fallback switch refused"),
                }
            }
        }
    }
}

/// The sensor agents a program reads: a client per URL, each sensor's last good reading, and
/// why the latest answer gave nothing usable.
#[derive(Debug, Default)]
struct Remote {
    /// By (URL, read token): a program handed over anew may carry another token.
    clients: BTreeMap<(String, String), SensorAgentClient>,
    /// By (URL, sensor id in lower case): the last plausible value and when it was read, by
    /// this agent's clock.
    good: BTreeMap<(String, String), (f64, Instant)>,
    /// By (URL, sensor id in lower case): why the latest read gave no usable value.
    why: BTreeMap<(String, String), String>,
}

impl Remote {
    /// Read every sensor agent `program` names, once each.
    async fn read(&mut self, program: &FallbackProgram) {
        // By (URL, read token): the (host, sensor id) pairs read there.
        type Sensors<'a> = Vec<(&'a str, &'a str)>;
        let mut sources: BTreeMap<(&str, Option<&str>), Sensors<'_>> = BTreeMap::new();
        for output in program.outputs.values() {
            if let OutputProgram::Frost {
                sensor: Some(SensorSource::SensorAgent { url, host, id, token }),
                ..
            } = output
            {
                sources.entry((url, token.as_deref())).or_default().push((host, id));
            }
        }
        for ((url, token), sensors) in sources {
            let answer = match token {
                None => Err("no read token in the program (an engine too old to give one)".into()),
                Some(token) => {
                    let key = (url.to_owned(), token.to_owned());
                    let client = self.clients.entry(key).or_insert_with(|| {
                        SensorAgentClient::new(url, token, SENSOR_AGENT_TIMEOUT)
                    });
                    client.readings().await.map_err(|e| refusal(&e))
                }
            };
            let at = Instant::now();
            for (host, id) in sensors {
                let key = (url.to_owned(), id.to_ascii_lowercase());
                match answer.as_ref().map_err(Clone::clone).and_then(|r| usable(r, host, id)) {
                    Ok((t, ago)) => {
                        // An age no clock can give (negative, huge) reads as stale, never as
                        // new.
                        let read_at = Duration::try_from_secs_f64(ago)
                            .ok()
                            .and_then(|ago| at.checked_sub(ago));
                        match read_at {
                            Some(read_at) => {
                                self.good.insert(key.clone(), (t, read_at));
                                self.why.remove(&key);
                            }
                            None => {
                                self.why.insert(key, format!("{id}: read {ago} s ago"));
                            }
                        }
                    }
                    Err(why) => {
                        self.why.insert(key, why);
                    }
                }
            }
        }
    }

    /// The reading of sensor `id` of the sensor agent at `url`, or why there is none usable:
    /// its last plausible value while it is fresh, else what went wrong.
    fn judge(
        &self,
        url: &str,
        host: &str,
        id: &str,
        now: Instant,
        limit: Duration,
    ) -> Result<f64, String> {
        let key = (url.to_owned(), id.to_ascii_lowercase());
        if let Some((t, at)) = self.good.get(&key) {
            let age = now.saturating_duration_since(*at);
            if age <= limit {
                return Ok(*t);
            }
            if !self.why.contains_key(&key) {
                return Err(format!(
                    "stale reading of {id} from sensor agent {host}: {:.0} s old",
                    age.as_secs_f64()
                ));
            }
        }
        Err(match self.why.get(&key) {
            Some(why) => format!("sensor agent {host}: {why}"),
            None => format!("no reading of {id} from sensor agent {host} yet"),
        })
    }
}

/// Sensor `id`'s value and age in a sensor agent's answer, when plausible; else why not.
fn usable(answer: &SharedReadings, host: &str, id: &str) -> Result<(f64, f64), String> {
    if answer.host_id != host {
        // Another Pi at the address (DHCP gave it away): not the room the program names.
        return Err(format!("the agent at the URL is {}, not {host}", clip(&answer.host_id)));
    }
    let reading = answer
        .readings
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| format!("no reading of {id}"))?;
    match reading.value {
        None => {
            Err(format!("{id} failed ({})", clip(reading.error.as_deref().unwrap_or("no value"))))
        }
        Some(t) if !(MIN_READING_C..=MAX_READING_C).contains(&t) => {
            Err(format!("implausible reading of {id}: {t} °C"))
        }
        Some(t) => Ok((t, reading.read_s_ago)),
    }
}

/// Why a read of a sensor agent failed, in a few words.
fn refusal(e: &ClientError) -> String {
    match e {
        ClientError::Api { status: 401 | 403, .. } => {
            "refused the read token (HTTP 401): re-issued key?".to_owned()
        }
        ClientError::Api { status: 404 | 405, .. } => {
            "no read API at the URL (an older sensor agent, or not its status listener)".to_owned()
        }
        ClientError::Api { status, body } => format!("HTTP {status}: {}", clip(&body.error)),
        ClientError::Transport(e) if e.is_timeout() => "no answer within 2 s".to_owned(),
        ClientError::Transport(_) => "unreachable".to_owned(),
    }
}

/// A peer's text as it goes into `doing`: at most 80 characters.
fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Read the probe once (off the runtime: a conversion blocks ~750 ms) and keep the good values.
async fn read_probe(probe: &Probe, readings: &mut BTreeMap<String, (f64, Instant)>) {
    let Some(read) = probe.read().await else { return };
    let at = Instant::now();
    for r in read {
        if let Ok(t) = r.value {
            readings.insert(r.id.to_ascii_lowercase(), (t, at));
        }
    }
}

/// The frost thermostat: on below the setpoint minus the band, off above it plus the band,
/// else as it is.
fn frost(t: f64, setpoint_c: f64, on_now: bool) -> FallbackDoing {
    let want = if t < setpoint_c - FROST_BAND_C {
        true
    } else if t > setpoint_c + FROST_BAND_C {
        false
    } else {
        on_now
    };
    let word = if want { "on" } else { "off" };
    let detail = format!("frost: {t:.2} °C, setpoint {setpoint_c:.1} °C, {word}");
    FallbackDoing { on: want, temp_c: Some(t), detail }
}

/// The blind duty: on for the last `pct` percent of every period, counted from `since`. Off
/// first: the engine was heating the house until it was lost, so the first minutes need no
/// heat, and a furnace the lease just stopped is not started again at once.
fn blind(duty: &BlindDuty, since: Instant, now: Instant, label: &str) -> FallbackDoing {
    let period = f64::from(duty.period_s.max(1));
    let phase = now.saturating_duration_since(since).as_secs_f64() % period;
    let want = phase >= period * (1.0 - f64::from(duty.pct) / 100.0);
    let word = if want { "on" } else { "off" };
    let detail = format!("{label}: {}% of {} s, {word}", duty.pct, duty.period_s);
    FallbackDoing { on: want, temp_c: None, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frost_hysteresis() {
        assert!(frost(6.6, 7.0, false).on);
        assert!(!frost(6.8, 7.0, false).on);
        assert!(frost(7.2, 7.0, true).on);
        assert!(!frost(7.4, 7.0, true).on);
    }

    #[tokio::test(start_paused = true)]
    async fn blind_duty_phase() {
        let since = Instant::now();
        let duty = BlindDuty { pct: 10, period_s: 100 };
        assert!(!blind(&duty, since, since, "").on);
        assert!(!blind(&duty, since, since + Duration::from_secs(89), "").on);
        assert!(blind(&duty, since, since + Duration::from_secs(91), "").on);
        assert!(!blind(&duty, since, since + Duration::from_secs(105), "").on);
        assert!(blind(&duty, since, since + Duration::from_secs(195), "").on);
        assert!(!blind(&BlindDuty { pct: 0, period_s: 60 }, since, since, "").on);
    }

    #[test]
    fn store_survives_restart_and_ignores_torn_files() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let outputs = vec!["heat".to_owned(), "cool".to_owned()];
        let store = ProgramStore::open(dir.path(), outputs.clone());
        assert_eq!(store.get(), None);
        let mut program = FallbackProgram::all_off(60);
        program.outputs.insert("heat".into(), OutputProgram::BlindDuty(BlindDuty::default()));
        store.set(program.clone()).map_err(anyhow::Error::msg)?;
        // Refused: the old program stays, in memory and on disk.
        let mut bad = program.clone();
        bad.outputs.insert("boiler".into(), OutputProgram::Off);
        assert_eq!(store.set(bad), Err("outputs.boiler: no such output".to_owned()));
        assert_eq!(store.get().as_ref(), Some(&program));
        assert_eq!(ProgramStore::open(dir.path(), outputs.clone()).get(), Some(program));
        // A torn file is no program, not a failed start.
        std::fs::write(dir.path().join(FILE_NAME), b"{\"after_s\": 60, \"outp")?;
        assert_eq!(ProgramStore::open(dir.path(), outputs).get(), None);
        Ok(())
    }
}
