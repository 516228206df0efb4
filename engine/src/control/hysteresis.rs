//! Bang-bang control with a hysteresis band around each setpoint.

use hearth_proto::Timestamp;
use hearth_proto::control::{Mode, ReasonCode, System};

use super::algorithm::{Algorithm, Ctx, ParamSpec, Params, Proposal};
use super::text::{small, temp};

pub(crate) const HYSTERESIS_C: ParamSpec = ParamSpec {
    key: "hysteresis_c",
    title: "Hysteresis",
    description: "Half the band around the setpoint, °C: heat starts below setpoint − \
                  hysteresis and stops above setpoint + hysteresis (mirrored for cooling).",
    integer: false,
    min: 0.1,
    max: 3.0,
    default: 0.3,
};

/// Heat on below `heat − h`, off above `heat + h`, in the band the heat relay keeps its state;
/// cooling mirrored around the cooling setpoint; auto does both and nothing in between.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Hysteresis;

impl Algorithm for Hysteresis {
    fn id(&self) -> &'static str {
        "hysteresis"
    }

    fn name(&self) -> &'static str {
        "Hysteresis"
    }

    fn description(&self) -> &'static str {
        "Classic thermostat: heat starts when the temperature falls below the setpoint minus \
         the hysteresis and stops above the setpoint plus the hysteresis; inside that band the \
         equipment keeps doing what it does. Cooling mirrors it. Targets change when the \
         schedule changes, so the house reaches a new setpoint after the segment has begun."
    }

    fn params(&self) -> &'static [ParamSpec] {
        const PARAMS: [ParamSpec; 1] = [HYSTERESIS_C];
        &PARAMS
    }

    fn propose(&self, ctx: &Ctx<'_>, params: &Params) -> Proposal {
        let mut p = band(ctx, params.get(&HYSTERESIS_C));
        p.expected_at = expected_at(ctx, &p);
        p
    }
}

/// The hysteresis decision for the mode in force.
pub(crate) fn band(ctx: &Ctx<'_>, h: f64) -> Proposal {
    match ctx.mode {
        Mode::Heat | Mode::Off => heat_band(ctx, h),
        Mode::Cool => cool_band(ctx, h),
        Mode::Auto => {
            let t = ctx.temp_c;
            let cooling = ctx.equipment.cool.on;
            // Bands can overlap when 2h exceeds the deadband: the running system keeps its
            // band, so auto never flips straight from one to the other.
            if (cooling && t >= ctx.cool_c - h) || t > ctx.cool_c + h {
                cool_band(ctx, h)
            } else if t <= ctx.heat_c + h {
                heat_band(ctx, h)
            } else if t >= ctx.cool_c - h {
                cool_band(ctx, h)
            } else {
                Proposal::new(
                    false,
                    false,
                    ReasonCode::AutoDeadband,
                    format!(
                        "idle: {} between heat {} + {} and cool {} − {} °C",
                        ctx.temp_label,
                        temp(ctx.heat_c),
                        small(h),
                        temp(ctx.cool_c),
                        small(h)
                    ),
                )
            }
        }
    }
}

fn heat_band(ctx: &Ctx<'_>, h: f64) -> Proposal {
    let (t, sp, label) = (ctx.temp_c, ctx.heat_c, ctx.temp_label);
    if t < sp - h {
        Proposal::new(
            true,
            false,
            ReasonCode::HeatBelowBand,
            format!("heat on: {label} < {} − {} °C", temp(sp), small(h)),
        )
    } else if t > sp + h {
        Proposal::new(
            false,
            false,
            ReasonCode::HeatAboveBand,
            format!("heat off: {label} > {} + {} °C", temp(sp), small(h)),
        )
    } else {
        let on = ctx.equipment.heat.on;
        Proposal::new(
            on,
            false,
            ReasonCode::HeatInBand,
            format!(
                "heat stays {}: {label} within {} ± {} °C",
                if on { "on" } else { "off" },
                temp(sp),
                small(h)
            ),
        )
    }
}

fn cool_band(ctx: &Ctx<'_>, h: f64) -> Proposal {
    let (t, sp, label) = (ctx.temp_c, ctx.cool_c, ctx.temp_label);
    if t > sp + h {
        Proposal::new(
            false,
            true,
            ReasonCode::CoolAboveBand,
            format!("cool on: {label} > {} + {} °C", temp(sp), small(h)),
        )
    } else if t < sp - h {
        Proposal::new(
            false,
            false,
            ReasonCode::CoolBelowBand,
            format!("cool off: {label} < {} − {} °C", temp(sp), small(h)),
        )
    } else {
        let on = ctx.equipment.cool.on;
        Proposal::new(
            false,
            on,
            ReasonCode::CoolInBand,
            format!(
                "cool stays {}: {label} within {} ± {} °C",
                if on { "on" } else { "off" },
                temp(sp),
                small(h)
            ),
        )
    }
}

/// When the system the proposal runs reaches its setpoint at the LEARNED rate (null when
/// nothing is learned, or nothing runs towards a setpoint).
pub(crate) fn expected_at(ctx: &Ctx<'_>, p: &Proposal) -> Option<Timestamp> {
    let (system, gap) = if p.heat {
        (System::Heat, ctx.heat_c - ctx.temp_c)
    } else if p.cool {
        (System::Cool, ctx.temp_c - ctx.cool_c)
    } else {
        return None;
    };
    let rate = ctx.learned.rate(system)?;
    rate.eta(ctx.now, gap)
}
