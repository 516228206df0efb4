//! Settings and commands from the engine, through the agents' shared side of management
//! (`hearth_common::manage`): this module says what the sensor agent applies and how it carries
//! out each command.
//!
//! The agent pulls: the engine's answer to a report says what waits (`pending`), and only then
//! does the agent fetch its settings or commands with its device credential, so an agent that
//! is never managed costs nothing more than before. What it applies is bounded by its LOCAL
//! configuration (`remote_settings`, `remote_min_interval_s`/`remote_max_interval_s`,
//! `remote_min_resolution_bits`/`remote_max_resolution_bits`, `remote_max_offset_c`, a sensor
//! its `[[sensors]]` table disables, a screen whose jump check stays on): a value outside it is
//! refused with a reason the engine stores and shows, never applied, so a compromised engine
//! cannot take away this host's own limits.
//!
//! Everything applies to the running agent, without a restart: the interval to the report
//! loop's ticker, aliases to the next report, and the resolution, enabled sensors, offsets and
//! screen to the probes (the screen layer and its backend, [`Manager::configure`]).
//!
//! The settings last received are kept in one JSON file in the queue directory and applied
//! again at start, within the limits of the configuration of that start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use hearth_common::manage::After;
use hearth_common::manage::{Agent, Managed, Outcome, done, failed};
pub use hearth_common::manage::{RESTART_EXIT_CODE, RestartRequested};
use hearth_probes::TemperatureSource as _;
use hearth_probes::screen::{ScreenRules, SensorSetting};
use hearth_proto::agents::AgentKind;
use hearth_proto::client::EngineClient;
use hearth_proto::manage::{
    AgentSensorSettings, AgentSettings, Command, CommandKind, CommandReport, MAX_AGENT_OFFSET_C,
    MAX_AGENT_SENSORS, MAX_REFUSALS, MAX_SCREEN_RATE_C_PER_MIN, MAX_STEP_REJECTIONS, Pending,
    Refusal, ScreenSettings, SensorAgentSettings, sensor_id_ok,
};
use hearth_proto::sensors::MAX_REPORT_TEXT_CHARS;

use crate::config::SensorConfig;

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
    /// The resolutions the engine may set, bits.
    pub(crate) min_resolution_bits: u8,
    pub(crate) max_resolution_bits: u8,
    /// The largest calibration offset the engine may set either way, °C.
    pub(crate) max_offset_c: f64,
}

/// What the agent runs with when the engine sets nothing: its configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Local {
    pub(crate) interval: Duration,
    /// The configured sensors (the simulator's, for the simulated backend).
    pub(crate) sensors: Vec<SensorConfig>,
    pub(crate) screen: ScreenRules,
}

/// What is in force: the configuration with what the engine set within the limits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effective {
    pub(crate) interval: Duration,
    /// None: each sensor converts at its own resolution.
    pub(crate) resolution_bits: Option<u8>,
    /// The configured sensors with the engine's changes, then sensors only the engine named.
    pub(crate) sensors: Vec<SensorConfig>,
    pub(crate) screen: ScreenRules,
}

impl Effective {
    /// The configuration alone, as when the engine sets nothing.
    fn of(local: &Local) -> Self {
        Self {
            interval: local.interval,
            resolution_bits: None,
            sensors: local.sensors.clone(),
            screen: local.screen.clone(),
        }
    }

    /// The aliases to report, by lower-case sensor id.
    fn aliases(&self) -> BTreeMap<String, String> {
        self.sensors
            .iter()
            .filter_map(|s| Some((s.id.to_ascii_lowercase(), s.alias.clone()?)))
            .collect()
    }

    /// In the shape of the settings document, for the engine. A local value beyond what the
    /// engine could set (an offset of 8 °C in the agent's own file, say) is left out rather
    /// than make the engine refuse the whole report.
    fn in_force(&self) -> AgentSettings {
        let sensors = self
            .sensors
            .iter()
            .filter(|s| sensor_id_ok(&s.id))
            .take(MAX_AGENT_SENSORS)
            .map(|s| {
                let alias = s.alias.clone().filter(|a| a.chars().count() <= MAX_REPORT_TEXT_CHARS);
                let offset = Some(s.offset_c).filter(|o| o.abs() <= MAX_AGENT_OFFSET_C);
                let entry =
                    AgentSensorSettings { enabled: Some(s.enabled), alias, offset_c: offset };
                (s.id.clone(), entry)
            })
            .collect();
        let ScreenRules { max_rate_c_per_min: rate, step_rejections: steps } = self.screen;
        let screen = ScreenSettings {
            max_rate_c_per_min: Some(rate).filter(|r| *r > 0.0 && *r <= MAX_SCREEN_RATE_C_PER_MIN),
            step_rejections: Some(steps).filter(|n| *n <= MAX_STEP_REJECTIONS),
        };
        AgentSettings {
            sensor: Some(SensorAgentSettings {
                interval_s: Some(self.interval.as_secs_f64()),
                resolution_bits: self.resolution_bits,
                sensors,
                screen: Some(screen),
            }),
            ..AgentSettings::default()
        }
    }
}

/// Why everything is refused when the configuration says `remote_settings = false`.
const LOCKED: &str =
    "this agent's configuration does not let the engine change settings (remote_settings = false)";

/// Whether the value at `field` may be applied: refused (and recorded) when the engine may
/// change nothing, or when `problem` says why not.
fn accept(allowed: bool, refused: &mut Vec<Refusal>, field: &str, problem: Option<String>) -> bool {
    let reason = if allowed { problem } else { Some(LOCKED.to_owned()) };
    match reason {
        Some(reason) => {
            refused.push(Refusal { field: field.to_owned(), reason });
            false
        }
        None => true,
    }
}

/// The agent's management state.
#[derive(Debug)]
pub(crate) struct Manager {
    managed: Managed,
    host_id: String,
    limits: Limits,
    /// The configuration: what applies where the engine sets nothing (or a refused value).
    local: Local,
    /// Lower-case ids of the configured, enabled sensors: reported missing when the bus lacks
    /// them. A sensor only the engine names is not (a typo must not invent a missing sensor).
    listed: BTreeSet<String>,
    /// What is in force, from the kept settings within the limits.
    effective: Effective,
    /// The aliases of `effective`, by lower-case id.
    aliases: BTreeMap<String, String>,
    started: Instant,
}

impl Manager {
    /// The manager, with the settings kept by an earlier run (if readable), applied within the
    /// limits of this start. [`Self::configure`] gives them to the probes.
    pub(crate) fn open(host_id: &str, queue_dir: &Path, limits: Limits, local: Local) -> Self {
        let managed = Managed::open(host_id, AgentKind::Sensor, Some(queue_dir), SETTINGS_FILE);
        let (effective, refused) = within(limits, &local, &managed.kept().desired);
        for r in &refused {
            tracing::warn!(field = %r.field, reason = %r.reason,
                "a kept setting from the engine is outside this start's limits; not applied");
        }
        let listed =
            local.sensors.iter().filter(|s| s.enabled).map(|s| s.id.to_ascii_lowercase()).collect();
        Self {
            managed,
            host_id: host_id.to_owned(),
            limits,
            local,
            listed,
            aliases: effective.aliases(),
            effective,
            started: Instant::now(),
        }
    }

    /// The interval in force: the remote one when the limits allow it, else the configured one.
    pub(crate) fn interval(&self) -> Duration {
        self.effective.interval
    }

    /// The aliases to report, by lower-case sensor id.
    pub(crate) fn aliases(&self) -> &BTreeMap<String, String> {
        &self.aliases
    }

    /// Give what is in force to the probes (at start; [`Self::step`] does it when the settings
    /// change). A backend that cannot set the resolution makes it a refusal.
    pub(crate) fn configure(&mut self, source: &mut crate::Source) -> Option<Refusal> {
        configure(&mut self.effective, &self.listed, source)
    }

    /// What `desired` gives within the limits (for tests: [`Self::step`] applies).
    #[cfg(test)]
    fn apply(&self, desired: &AgentSettings) -> (Effective, Vec<Refusal>) {
        within(self.limits, &self.local, desired)
    }

    /// Do what the engine said waits; whether to restart. The loop reads [`Self::interval`]
    /// and [`Self::aliases`] afterwards; the probes are reconfigured here. A failure is logged
    /// and tried again with the next report (the engine says it again).
    pub(crate) async fn step(
        &mut self,
        pending: Pending,
        client: &EngineClient,
        diagnostics: &crate::status::Board,
        source: &mut Option<crate::Source>,
    ) -> After {
        let mut agent = SensorAgent {
            host_id: &self.host_id,
            limits: self.limits,
            local: &self.local,
            listed: &self.listed,
            effective: &mut self.effective,
            started: self.started,
            diagnostics,
            source,
        };
        let after = self.managed.step(pending, client, &mut agent).await;
        self.aliases = self.effective.aliases();
        after
    }
}

/// Give what is in force to the probes: the screen's rules, each sensor's offset and whether it
/// is read, and the resolution. A backend that cannot set the resolution makes it a refusal
/// (and none is in force).
fn configure(
    effective: &mut Effective,
    listed: &BTreeSet<String>,
    source: &mut crate::Source,
) -> Option<Refusal> {
    let settings = effective
        .sensors
        .iter()
        .map(|s| SensorSetting { id: s.id.clone(), offset_c: s.offset_c, enabled: s.enabled })
        .collect();
    source.reconfigure(effective.screen.clone(), settings, listed);
    match source.set_resolution(effective.resolution_bits) {
        Err(reason) if effective.resolution_bits.is_some() => {
            effective.resolution_bits = None;
            Some(Refusal { field: "sensor.resolution_bits".into(), reason })
        }
        _ => None,
    }
}

/// What `desired` gives within `limits` over the configuration `local`: what is in force, and
/// what was refused.
fn within(limits: Limits, local: &Local, desired: &AgentSettings) -> (Effective, Vec<Refusal>) {
    let mut e = Effective::of(local);
    let mut refused = Vec::new();
    let Some(s) = desired.sensor.as_ref() else { return (e, refused) };
    let l = limits;
    let ok = l.allowed;
    if let Some(v) = s.interval_s {
        let (min, max) = (l.min_interval_s, l.max_interval_s);
        let problem = (!(v >= min && v <= max)).then(|| {
            format!(
                "{v} s is outside this agent's local limits of {min} to {max} s \
                 (remote_min_interval_s, remote_max_interval_s)"
            )
        });
        if accept(ok, &mut refused, "sensor.interval_s", problem) {
            match Duration::try_from_secs_f64(v) {
                Ok(d) => e.interval = d,
                Err(why) => refused
                    .push(Refusal { field: "sensor.interval_s".into(), reason: why.to_string() }),
            }
        }
    }
    if let Some(bits) = s.resolution_bits {
        let (min, max) = (l.min_resolution_bits, l.max_resolution_bits);
        let problem = (!(min..=max).contains(&bits)).then(|| {
            format!(
                "{bits} bits is outside this agent's local limits of {min} to {max} bits \
                 (remote_min_resolution_bits, remote_max_resolution_bits)"
            )
        });
        if accept(ok, &mut refused, "sensor.resolution_bits", problem) {
            e.resolution_bits = Some(bits);
        }
    }
    for (id, remote) in &s.sensors {
        if !sensor_id_ok(id) {
            let problem = Some(format!("{id:?} is not a sensor id"));
            accept(ok, &mut refused, "sensor.sensors", problem);
            continue;
        }
        let field = |name: &str| format!("sensor.sensors.{id}.{name}");
        let at = e.sensors.iter().position(|c| c.id.eq_ignore_ascii_case(id));
        let mut sensor = at.map_or_else(|| SensorConfig::new(id.clone()), |i| e.sensors[i].clone());
        let locally_off = local.sensors.iter().any(|c| c.id.eq_ignore_ascii_case(id) && !c.enabled);
        if let Some(on) = remote.enabled {
            let problem = (on && locally_off).then(|| {
                "this sensor is disabled in this agent's own file ([[sensors]] enabled = \
                 false), which the engine cannot lift"
                    .to_owned()
            });
            if accept(ok, &mut refused, &field("enabled"), problem) {
                sensor.enabled = on;
            }
        }
        if let Some(alias) = &remote.alias {
            let problem = (alias.chars().count() > MAX_REPORT_TEXT_CHARS)
                .then(|| format!("longer than {MAX_REPORT_TEXT_CHARS} characters"));
            if accept(ok, &mut refused, &field("alias"), problem) {
                // Empty: report none.
                sensor.alias = Some(alias.clone()).filter(|a| !a.is_empty());
            }
        }
        if let Some(offset) = remote.offset_c {
            let max = l.max_offset_c;
            let problem = (offset.is_nan() || offset.abs() > max).then(|| {
                format!(
                    "{offset} °C is beyond this agent's local limit of ±{max} °C \
                     (remote_max_offset_c)"
                )
            });
            if accept(ok, &mut refused, &field("offset_c"), problem) {
                sensor.offset_c = offset;
            }
        }
        match at {
            Some(i) => e.sensors[i] = sensor,
            None if sensor != SensorConfig::new(id.clone()) => e.sensors.push(sensor),
            None => {}
        }
    }
    if let Some(screen) = &s.screen {
        if let Some(rate) = screen.max_rate_c_per_min {
            let problem = (!(rate > 0.0 && rate <= MAX_SCREEN_RATE_C_PER_MIN)).then(|| {
                format!("{rate} °C per minute is not more than 0 and at most {MAX_SCREEN_RATE_C_PER_MIN}")
            });
            if accept(ok, &mut refused, "sensor.screen.max_rate_c_per_min", problem) {
                e.screen.max_rate_c_per_min = rate;
            }
        }
        if let Some(n) = screen.step_rejections {
            let problem = if n == 0 {
                Some(
                    "0 turns the jump check off, which only this agent's own file may do \
                     (screen_step_rejections)"
                        .to_owned(),
                )
            } else {
                (n > MAX_STEP_REJECTIONS).then(|| format!("more than {MAX_STEP_REJECTIONS}"))
            };
            if accept(ok, &mut refused, "sensor.screen.step_rejections", problem) {
                e.screen.step_rejections = n;
            }
        }
    }
    if refused.len() > MAX_REFUSALS {
        // The engine takes at most MAX_REFUSALS; the last one counts the rest.
        let rest = refused.len() - (MAX_REFUSALS - 1);
        refused.truncate(MAX_REFUSALS - 1);
        refused.push(Refusal {
            field: "sensor".into(),
            reason: format!("{rest} more settings refused"),
        });
    }
    (e, refused)
}

/// The sensor agent as the shared management code sees it, for one step.
struct SensorAgent<'a> {
    host_id: &'a str,
    limits: Limits,
    local: &'a Local,
    listed: &'a BTreeSet<String>,
    effective: &'a mut Effective,
    started: Instant,
    diagnostics: &'a crate::status::Board,
    source: &'a mut Option<crate::Source>,
}

impl Agent for SensorAgent<'_> {
    fn apply(&mut self, desired: &AgentSettings) -> Outcome {
        let (effective, mut refused) = within(self.limits, self.local, desired);
        *self.effective = effective;
        match self.source.as_mut() {
            Some(source) => {
                if let Some(r) = configure(self.effective, self.listed, source) {
                    refused.truncate(MAX_REFUSALS - 1);
                    refused.push(r);
                }
            }
            // The loop steps only after its read gave the source back.
            None => {
                tracing::warn!("the sensors are being read; settings apply to the probes later")
            }
        }
        let local = Effective::of(self.local).in_force();
        Outcome { in_force: self.effective.in_force(), refused, local: Some(local) }
    }

    async fn carry(&mut self, command: &Command) -> (CommandReport, After) {
        match command.command {
            CommandKind::Identify => (
                done(hearth_probes::led::identify("hearth-sensor-agent", self.host_id), None),
                After::Continue,
            ),
            CommandKind::Rescan => (rescan(self.source).await, After::Continue),
            CommandKind::Diagnostics => {
                let interval = self.effective.interval;
                let result = self.diagnostics.diagnostics(self.started.elapsed(), interval);
                (done("diagnostics read".to_owned(), Some(result)), After::Continue)
            }
            CommandKind::Restart => (done("restarting now".to_owned(), None), After::Restart),
        }
    }
}

/// Read the bus afresh (the backends search it on every read): the sensors found.
async fn rescan(source: &mut Option<crate::Source>) -> CommandReport {
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
    use hearth_probes::screen::Screened;
    use hearth_probes::sim::{RoomModel, SimSensor, SimSource};

    const LIMITS: Limits = Limits {
        allowed: true,
        min_interval_s: 5.0,
        max_interval_s: 60.0,
        min_resolution_bits: 10,
        max_resolution_bits: 12,
        max_offset_c: 1.0,
    };

    fn local() -> Local {
        let sensor = |id: &str, enabled: bool| SensorConfig {
            alias: Some(format!("{id} here")),
            offset_c: 0.25,
            enabled,
            ..SensorConfig::new(id)
        };
        Local {
            interval: Duration::from_secs(10),
            sensors: vec![sensor("28-a", true), sensor("28-off", false)],
            screen: ScreenRules::default(),
        }
    }

    fn desired(sensor: SensorAgentSettings) -> AgentSettings {
        AgentSettings { sensor: Some(sensor), ..AgentSettings::default() }
    }

    fn interval(interval_s: f64) -> AgentSettings {
        desired(SensorAgentSettings { interval_s: Some(interval_s), ..Default::default() })
    }

    fn one_sensor(id: &str, s: AgentSensorSettings) -> AgentSettings {
        desired(SensorAgentSettings {
            sensors: BTreeMap::from([(id.to_owned(), s)]),
            ..Default::default()
        })
    }

    #[test]
    fn the_local_limits_are_the_ceiling() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let m = Manager::open("pi", dir.path(), LIMITS, local());
        assert_eq!(m.interval(), Duration::from_secs(10), "nothing set: the configuration");
        let (e, refused) = m.apply(&interval(20.0));
        assert_eq!((e.interval, refused.len()), (Duration::from_secs(20), 0));
        for beyond in [1.0, 61.0, f64::NAN] {
            let (e, refused) = m.apply(&interval(beyond));
            assert_eq!(e.interval, Duration::from_secs(10), "{beyond}: the configured one");
            assert_eq!(refused[0].field, "sensor.interval_s");
            assert!(refused[0].reason.contains("local limits of 5 to 60 s"), "{refused:?}");
        }
        let locked = Manager::open("pi", dir.path(), Limits { allowed: false, ..LIMITS }, local());
        let (e, refused) = locked.apply(&interval(20.0));
        assert_eq!(e.interval, Duration::from_secs(10));
        assert!(refused[0].reason.contains("remote_settings = false"), "{refused:?}");
        Ok(())
    }

    #[test]
    fn resolution_sensors_and_screen_within_the_limits() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let m = Manager::open("pi", dir.path(), LIMITS, local());
        let resolution = |bits| {
            desired(SensorAgentSettings { resolution_bits: Some(bits), ..Default::default() })
        };
        assert_eq!(
            m.apply(&resolution(11)),
            (Effective { resolution_bits: Some(11), ..m.effective.clone() }, vec![])
        );
        let (e, refused) = m.apply(&resolution(9));
        assert_eq!(e.resolution_bits, None);
        assert_eq!(refused[0].field, "sensor.resolution_bits");
        assert!(refused[0].reason.contains("local limits of 10 to 12 bits"), "{refused:?}");

        // Alias and offset of a configured sensor (matched without regard to case).
        let set = AgentSensorSettings {
            alias: Some("hall".into()),
            offset_c: Some(-0.75),
            ..Default::default()
        };
        let (e, refused) = m.apply(&one_sensor("28-A", set));
        assert_eq!(refused, vec![]);
        assert_eq!((e.sensors[0].alias.as_deref(), e.sensors[0].offset_c), (Some("hall"), -0.75));
        assert_eq!(e.aliases()["28-a"], "hall");
        // Beyond remote_max_offset_c: refused, the configured offset stays.
        let far = AgentSensorSettings { offset_c: Some(1.5), ..Default::default() };
        let (e, refused) = m.apply(&one_sensor("28-a", far));
        assert_eq!(e.sensors[0].offset_c, 0.25);
        assert_eq!(refused[0].field, "sensor.sensors.28-a.offset_c");
        assert!(refused[0].reason.contains("local limit of ±1 °C"), "{refused:?}");
        // A sensor the file disables stays off; one it enables may be turned off.
        let on = AgentSensorSettings { enabled: Some(true), ..Default::default() };
        let (e, refused) = m.apply(&one_sensor("28-off", on));
        assert!(!e.sensors[1].enabled);
        assert_eq!(refused[0].field, "sensor.sensors.28-off.enabled");
        assert!(refused[0].reason.contains("enabled = false"), "{refused:?}");
        let off = AgentSensorSettings { enabled: Some(false), ..Default::default() };
        let (e, refused) = m.apply(&one_sensor("28-a", off.clone()));
        assert_eq!((e.sensors[0].enabled, refused.len()), (false, 0));
        // A sensor only the engine names gets its settings (for when it shows up).
        let (e, _) = m.apply(&one_sensor("28-new", off));
        assert_eq!((e.sensors[2].id.as_str(), e.sensors[2].enabled), ("28-new", false));

        // The screen: tighter or looser, but never off.
        let screen = |rate, steps| {
            desired(SensorAgentSettings {
                screen: Some(ScreenSettings {
                    max_rate_c_per_min: Some(rate),
                    step_rejections: Some(steps),
                }),
                ..Default::default()
            })
        };
        let (e, refused) = m.apply(&screen(2.0, 5));
        assert_eq!(
            (e.screen.clone(), refused.len()),
            (ScreenRules { max_rate_c_per_min: 2.0, step_rejections: 5 }, 0)
        );
        let (e, refused) = m.apply(&screen(2.0, 0));
        assert_eq!(e.screen.step_rejections, 3);
        assert_eq!(refused[0].field, "sensor.screen.step_rejections");

        // Locked: every field is refused, each by its path.
        let locked = Manager::open("pi", dir.path(), Limits { allowed: false, ..LIMITS }, local());
        let all = desired(SensorAgentSettings {
            resolution_bits: Some(12),
            sensors: BTreeMap::from([(
                "28-a".to_owned(),
                AgentSensorSettings {
                    enabled: Some(false),
                    alias: Some("x".into()),
                    offset_c: Some(0.0),
                },
            )]),
            ..Default::default()
        });
        let (e, refused) = locked.apply(&all);
        assert_eq!(e, locked.effective);
        let fields: Vec<&str> = refused.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "sensor.resolution_bits",
                "sensor.sensors.28-a.enabled",
                "sensor.sensors.28-a.alias",
                "sensor.sensors.28-a.offset_c"
            ]
        );
        // Never more refusals than the engine takes.
        let many = desired(SensorAgentSettings {
            sensors: (0..40)
                .map(|i| {
                    (
                        format!("28-{i}"),
                        AgentSensorSettings { offset_c: Some(0.0), ..Default::default() },
                    )
                })
                .collect(),
            ..Default::default()
        });
        let (_, refused) = locked.apply(&many);
        assert_eq!(refused.len(), MAX_REFUSALS);
        assert_eq!(refused[MAX_REFUSALS - 1].reason, "9 more settings refused");
        Ok(())
    }

    #[test]
    fn what_is_in_force_fits_the_engines_bounds() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut wide = local();
        // The agent's own file may calibrate by up to 10 °C; the engine's document by 5.
        wide.sensors[0].offset_c = 8.0;
        let m = Manager::open("pi", dir.path(), LIMITS, wide);
        let in_force = m.effective.in_force();
        in_force.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        let sensor = in_force.sensor.unwrap_or_default();
        assert_eq!(sensor.sensors["28-a"].offset_c, None);
        assert_eq!(sensor.sensors["28-off"].enabled, Some(false));
        assert_eq!(sensor.sensors["28-off"].offset_c, Some(0.25));
        Ok(())
    }

    #[test]
    fn the_probes_follow_the_settings_in_force() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut m = Manager::open("pi", dir.path(), LIMITS, local());
        let sims =
            ["28-a", "28-b"].map(|id| SimSensor { id: id.into(), profile: Default::default() });
        let sim =
            SimSource::new(RoomModel::new(17.0, 5.0), sims.to_vec(), dir.path().join("w"), 1.0);
        let mut source: crate::Source =
            Screened::new(Box::new(sim), ScreenRules::default(), Vec::new());
        let settings = desired(SensorAgentSettings {
            resolution_bits: Some(10),
            sensors: BTreeMap::from([(
                "28-b".to_owned(),
                AgentSensorSettings { enabled: Some(false), ..Default::default() },
            )]),
            ..Default::default()
        });
        let (e, _) = m.apply(&settings);
        m.effective = e;
        assert_eq!(m.configure(&mut source), None);
        let got: Vec<_> = source.read_all().into_iter().map(|r| (r.id, r.value)).collect();
        // 17 °C plus the configured 0.25, at 10 bits; 28-b is no longer read.
        assert_eq!(got, vec![("28-a".to_owned(), Ok(17.25))]);
        Ok(())
    }

    #[test]
    fn settings_are_kept_across_starts_within_the_limits_of_each_start() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut m = Manager::open("pi", dir.path(), LIMITS, local());
        m.managed.keep(Kept { revision: 3, desired: interval(30.0) })?;
        let again = Manager::open("pi", dir.path(), LIMITS, local());
        assert_eq!((again.managed.kept().revision, again.interval()), (3, Duration::from_secs(30)));
        // The local file narrowed since: the kept value no longer applies.
        let narrower = Limits { max_interval_s: 20.0, ..LIMITS };
        let again = Manager::open("pi", dir.path(), narrower, local());
        assert_eq!(again.interval(), Duration::from_secs(10));
        // An unreadable file is ignored.
        std::fs::write(dir.path().join(SETTINGS_FILE), b"{not json")?;
        let again = Manager::open("pi", dir.path(), LIMITS, local());
        assert_eq!((again.managed.kept().revision, again.interval()), (0, Duration::from_secs(10)));
        Ok(())
    }
}
