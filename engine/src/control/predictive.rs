//! Hysteresis plus predictive start: "be at 21 °C by 06:30", not "start heating at 06:30".

use hearth_proto::control::{Mode, Outlook, ReasonCode, System};
use hearth_proto::schedules::Segment;

use super::algorithm::{Algorithm, Ctx, ParamSpec, Params, Proposal, setpoints};
use super::hysteresis::{HYSTERESIS_C, band, expected_at};
use super::learn::Rate;
use super::text::{small, span, temp};

pub(super) const MAX_LEAD_MIN: ParamSpec = ParamSpec {
    key: "max_lead_min",
    title: "Maximum lead time",
    description: "Never start more than this many minutes before a segment begins.",
    integer: true,
    min: 0.0,
    max: 240.0,
    default: 120.0,
};
pub(super) const DEFAULT_HEAT_RATE: ParamSpec = ParamSpec {
    key: "default_heat_rate_c_per_h",
    title: "Default heating rate",
    description: "How fast the house warms, °C per hour, until it has learned its own rate \
                  from recorded heating runs.",
    integer: false,
    min: 0.1,
    max: 10.0,
    default: 1.5,
};
pub(super) const DEFAULT_COOL_RATE: ParamSpec = ParamSpec {
    key: "default_cool_rate_c_per_h",
    title: "Default cooling rate",
    description: "How fast the house cools with the air conditioner, °C per hour, until it \
                  has learned its own rate from recorded cooling runs.",
    integer: false,
    min: 0.1,
    max: 10.0,
    default: 1.0,
};
pub(super) const MARGIN_MIN: ParamSpec = ParamSpec {
    key: "margin_min",
    title: "Safety margin",
    description: "Minutes added to every computed lead time.",
    integer: true,
    min: 0.0,
    max: 60.0,
    default: 5.0,
};

/// Hysteresis, and before a segment with a higher heating (lower cooling) setpoint, an early
/// start timed by the learned rate so the setpoint is reached when the segment begins.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Predictive;

impl Algorithm for Predictive {
    fn id(&self) -> &'static str {
        "predictive"
    }

    fn name(&self) -> &'static str {
        "Predictive start"
    }

    fn description(&self) -> &'static str {
        "Hysteresis, plus an early start before the schedule raises the heating setpoint (or \
         lowers the cooling one), so the house is at the new setpoint when the segment begins. \
         The lead time comes from the rate the house showed in its own recent heating and \
         cooling runs (dead time included), bounded by a maximum lead."
    }

    fn params(&self) -> &'static [ParamSpec] {
        const PARAMS: [ParamSpec; 5] =
            [HYSTERESIS_C, MAX_LEAD_MIN, DEFAULT_HEAT_RATE, DEFAULT_COOL_RATE, MARGIN_MIN];
        &PARAMS
    }

    fn propose(&self, ctx: &Ctx<'_>, params: &Params) -> Proposal {
        let h = params.get(&HYSTERESIS_C);
        let mut base = band(ctx, h);
        base.expected_at = expected_at(ctx, &base);
        let mut looks: Vec<Look> = Vec::new();
        if matches!(ctx.mode, Mode::Heat | Mode::Auto) {
            looks.extend(look(ctx, params, System::Heat));
        }
        if matches!(ctx.mode, Mode::Cool | Mode::Auto) {
            looks.extend(look(ctx, params, System::Cool));
        }
        // Start the one that is due (the sooner segment first); else show the sooner outlook.
        looks.sort_by_key(|l| l.outlook.segment_start);
        let due = looks.iter().find(|l| l.due).cloned();
        let Some(look) = due.or_else(|| looks.first().cloned()) else { return base };
        let o = &look.outlook;
        let toward = format!("{} °C in {}", temp(o.target_c), span(look.ahead_s));
        let learned = if o.samples == 0 {
            "default rate".to_owned()
        } else {
            format!("learned from {} runs", o.samples)
        };
        let verb = match o.system {
            System::Heat => "heat",
            System::Cool => "cool",
        };
        if look.due && !base.heat && !base.cool {
            let code = match o.system {
                System::Heat => ReasonCode::Preheat,
                System::Cool => ReasonCode::Precool,
            };
            let mut p = Proposal::new(
                o.system == System::Heat,
                o.system == System::Cool,
                code,
                format!(
                    "{verb} on: {} for {toward}: {} needs {} at {} °C/h ({learned})",
                    if o.system == System::Heat { "preheat" } else { "precool" },
                    ctx.temp_label,
                    span(o.lead_s as i64),
                    small(o.rate_c_per_h),
                ),
            );
            let gap = (o.target_c - ctx.temp_c).abs();
            p.expected_at = look.rate.eta(ctx.now, gap);
            p.outlook = Some(look.outlook);
            p
        } else {
            if !look.due && look.starts_in_s > 0 {
                base.reason = format!(
                    "{}; {verb} for {toward} starts in {}",
                    base.reason,
                    span(look.starts_in_s)
                );
            }
            base.outlook = Some(look.outlook);
            base
        }
    }
}

/// How much further than the run is long the planned start may be for the run to go on: a
/// run of a few minutes that is half an hour ahead of its plan is still the preheat (the
/// benchmark's slow houses: fewer cycles, the same comfort).
const RUN_ON_GRACE_S: i64 = 1800;

/// Whether the equipment already running toward `o` should run on past the switch-off point
/// of the setpoint in force, as one run to `o`'s (`anticipate` does; `predictive` itself
/// keeps to its plan, stopping when a run gets ahead of it, for the arrival on time it
/// promises): predictive start re-plans every pass, and a run that got ahead of its plan (the
/// room warming faster than learned) is told to stop and start again minutes later, a short
/// cycle every minimum on + off time. It runs on while the planned start is nearer than the run is long (so a
/// run started for the band in force hours before a preheat is not stretched into it; plus
/// [`RUN_ON_GRACE_S`]), and until the room reaches the coming setpoint's switch-off point
/// (`top`).
pub(super) fn runs_on(ctx: &Ctx<'_>, o: &Outlook, top: f64, starts_in_s: i64) -> bool {
    let (running, short) = match o.system {
        System::Heat => (ctx.equipment.heat, ctx.temp_c < top),
        System::Cool => (ctx.equipment.cool, ctx.temp_c > top),
    };
    let on_s = running.since.map(|s| ctx.now.duration_since(s).as_secs());
    running.on && short && on_s.is_some_and(|on| starts_in_s <= on + RUN_ON_GRACE_S)
}

#[derive(Debug, Clone)]
struct Look {
    outlook: Outlook,
    rate: Rate,
    /// The early start is due now (and the temperature still needs it).
    due: bool,
    /// Seconds until the early start (0 when due).
    starts_in_s: i64,
    /// Seconds until the segment begins.
    ahead_s: i64,
}

/// The first upcoming segment within the maximum lead that needs `system` earlier.
fn look(ctx: &Ctx<'_>, params: &Params, system: System) -> Option<Look> {
    let h = params.get(&HYSTERESIS_C);
    let max_lead_s = params.get(&MAX_LEAD_MIN) * 60.0;
    let margin_s = params.get(&MARGIN_MIN) * 60.0;
    let current = match system {
        System::Heat => ctx.heat_c,
        System::Cool => ctx.cool_c,
    };
    let next: &Segment = ctx.upcoming.iter().find(|seg| {
        let ahead = seg.start.duration_since(ctx.now).as_secs_f64();
        let target = target(ctx, seg, system);
        ahead > 0.0 && ahead <= max_lead_s && improves(system, target, current)
    })?;
    let target = target(ctx, next, system);
    let (rate, samples) = match ctx.learned.rate(system) {
        Some(r) => (r, r.samples),
        None => {
            let spec = if system == System::Heat { DEFAULT_HEAT_RATE } else { DEFAULT_COOL_RATE };
            (Rate { c_per_h: params.get(&spec), dead_s: 0.0, samples: 0 }, 0)
        }
    };
    // How far the house still has to go; signed so "already there" needs no lead.
    let gap = match system {
        System::Heat => target - ctx.temp_c,
        System::Cool => ctx.temp_c - target,
    };
    // Aim at the bottom of the target's band, where hysteresis itself counts it reached (and
    // stops): aiming at the setpoint would arrive early by the band's width every time.
    let lead_s = if gap > h { (rate.lead_s(gap - h) + margin_s).min(max_lead_s) } else { 0.0 };
    let ahead_s = next.start.duration_since(ctx.now).as_secs_f64();
    let starts_in_s = (ahead_s - lead_s).max(0.0);
    // Only while short of the target's band: the heat already in the radiators (or the cold
    // in the ducts) carries the house the rest of the way.
    let needs = gap > h;
    Some(Look {
        outlook: Outlook {
            system,
            target_c: target,
            segment_start: next.start,
            rate_c_per_h: rate.c_per_h,
            samples,
            lead_s: lead_s.round() as u64,
        },
        rate,
        // Whole seconds: float noise in the lead must not delay a start by a tick.
        due: starts_in_s.round() <= 0.0 && needs,
        starts_in_s: starts_in_s.round() as i64,
        ahead_s: ahead_s.round() as i64,
    })
}

/// The setpoint `seg` will put in force for `system`, clamped as the current one is.
fn target(ctx: &Ctx<'_>, seg: &Segment, system: System) -> f64 {
    let (heat, cool) = setpoints(ctx.settings, seg.heat_c, seg.cool_c);
    match system {
        System::Heat => heat,
        System::Cool => cool,
    }
}

fn improves(system: System, target: f64, current: f64) -> bool {
    match system {
        System::Heat => target > current,
        System::Cool => target < current,
    }
}
