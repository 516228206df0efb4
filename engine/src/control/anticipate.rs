//! Predictive start plus a learned heat anticipator: the heat goes off early enough that the
//! heat still in the heater and emitters carries the room to its setpoint, not past it.
//!
//! A furnace, a boiler's radiators or a screed keep giving heat after the relay opens: with a
//! lag of τ seconds and a room rising at r °C/h, about r·τ more (the energy that took τ to build
//! up is given back as it fades). The house teaches both: the learned rate is r, and the learned
//! dead time (the intercept of `duration = dead + rise / rate`, `learn`) is τ, the probe's own
//! lag included. So the room will peak near `temp + r·ramp·τ`, where `ramp = 1 − e^(−on/τ)` is
//! how far the output has built up since the heat went on; after the heat stops, what is left
//! of that coast fades as `e^(−off/τ)`.
//!
//! The swing is kept as wide as plain hysteresis swings, and centred on the setpoint: the heat
//! stops when the room will peak at `setpoint + h + C/2` and starts below `setpoint − h − C/2`
//! (C = r·τ, the full coast), so the room neither overshoots by the whole coast nor cycles more
//! often than a hysteresis thermostat would. Without a learned lag there is nothing to
//! anticipate, and it decides as `predictive` does (with a longer reach, and a preheat that
//! does not restart inside the coming setpoint's band).
//!
//! The lag is often not learned (runs too alike to fit the line: dead time 0), so the coast is
//! also observed directly (`learn::CoastWatch`: the turn of the room after each switch, and how
//! long after a switch-off the room peaks). With it, the switch points replace the rules above
//! (`centred`), as far apart as keeps the house cycling no more often than hysteresis would
//! (`learned_width`), or as `band_c` sets.
//!
//! Before the setpoint falls (the end of a comfort period) the last run is spared, or cut
//! short, when the room falling at its learned rate stays within `stop_early_c` of the
//! setpoint until then (`optimum_stop`, the optimum stop of building controls): the heat a
//! plain thermostat gives in those minutes goes to the setback.

use hearth_proto::control::{Mode, ReasonCode, System};

use super::algorithm::{Algorithm, Ctx, ParamSpec, Params, Proposal};
use super::hysteresis::HYSTERESIS_C;
use super::learn::{Coast, Rate};
use super::predictive::{
    DEFAULT_COOL_RATE, DEFAULT_HEAT_RATE, MARGIN_MIN, MAX_LEAD_MIN, Predictive, runs_on,
};
use super::text::{small, temp};

/// Predictive start's maximum lead, with room for an underfloor house's hours of lag (the same
/// key, so the predictive start it builds on reads it).
const LONG_MAX_LEAD_MIN: ParamSpec = ParamSpec { max: 720.0, default: 360.0, ..MAX_LEAD_MIN };

/// How much wider than hysteresis's the centred switch points are at least. Centring the
/// swing takes the overshoot out of it, so the room spends far less time outside ±0.5 °C than
/// with hysteresis at the same width; a fifth more width spends part of that gain on longer
/// cycles (`cargo xtask bench control`: 10–25 % fewer cycles per hour for about 0.1 K·h per
/// day more discomfort in every house type).
const WIDEN: f64 = 1.2;
/// How much wider than hysteresis's the learned switch points are at most: with the default
/// hysteresis the room then swings about ±0.9 °C plus its coast, beyond which it would spend
/// most of every cycle outside the ±0.5 °C comfort band whatever the cycles saved.
const MAX_WIDEN: f64 = 3.0;
/// How far ahead the schedule is read for the hours a plain thermostat would hold the setpoint
/// (`hold_ratio`): a day, the period every schedule repeats in (weekdays aside).
const HOLD_HORIZON_S: i64 = 24 * 3600;
/// Rates in a cycle outside this are not the house (a probe's glitch, a window), °C/h: the
/// same bounds as the rates learned from runs.
const SANE_CYCLE_RATE: std::ops::RangeInclusive<f64> = 0.05..=20.0;

/// The centred switch points' distance when the user sets it; 0 learns it (`learned_width`).
const BAND_C: ParamSpec = ParamSpec {
    key: "band_c",
    title: "Switching band",
    description: "How far apart the heat's switch points are once the coast is learned, °C, \
                  centred so that the room's swing is centred on the setpoint. 0 (the default) \
                  learns it from the house: as wide as keeps it cycling no more often than \
                  hysteresis would, from how fast the room rises and falls in a cycle, how far \
                  it coasts and how much longer it is kept at its setpoint; at least 1.2 × and \
                  at most 3 × twice the hysteresis.",
    integer: false,
    min: 0.0,
    max: 3.0,
    default: 0.0,
};

/// How far below the setpoint the room may fall by the end of a comfort period (optimum stop).
const STOP_EARLY_C: ParamSpec = ParamSpec {
    key: "stop_early_c",
    title: "Optimum stop",
    description: "Before the setpoint falls (the end of a comfort period), how far below it the \
                  room may have fallen by then, °C: the heat stops, or is not started again, \
                  when the room, falling as fast as it was seen to in a cycle, stays above that \
                  until the lower setpoint begins. 0 heats to the end.",
    integer: false,
    min: 0.0,
    max: 2.0,
    default: 1.0,
};
/// A lower setpoint shorter than this is not stopped early for: the heat saved before it would
/// be spent again at once after it, in one more run.
const MIN_STOP_S: i64 = 3600;

/// Predictive start with a learned heat anticipator.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Anticipate;

impl Algorithm for Anticipate {
    fn id(&self) -> &'static str {
        "anticipate"
    }

    fn name(&self) -> &'static str {
        "Anticipating"
    }

    fn description(&self) -> &'static str {
        "Predictive start, plus a heat anticipator learned from the house's own runs: the heat \
         goes off before the room reaches the top of its band when the heat still in the \
         heater and radiators will carry it there, and stays off while that heat is still \
         arriving. The swing around the setpoint stays as wide as hysteresis's, centred on the \
         setpoint instead of above it. Once it has watched how far the room rises after the \
         heat stops and falls after it starts, it switches so that the whole swing is centred \
         on the setpoint. Until then it decides as predictive start, with a longer maximum \
         lead for slow houses. Before the setpoint falls, it spares the last run when the room \
         will stay within the optimum stop's allowance until then."
    }

    fn params(&self) -> &'static [ParamSpec] {
        const PARAMS: [ParamSpec; 7] = [
            HYSTERESIS_C,
            LONG_MAX_LEAD_MIN,
            DEFAULT_HEAT_RATE,
            DEFAULT_COOL_RATE,
            MARGIN_MIN,
            BAND_C,
            STOP_EARLY_C,
        ];
        &PARAMS
    }

    fn propose(&self, ctx: &Ctx<'_>, params: &Params) -> Proposal {
        let p = Predictive.propose(ctx, params);
        let h = params.get(&HYSTERESIS_C);
        let held = preheat_latch(ctx, &p, h, params)
            .or_else(|| centred(ctx, &p, h, params))
            .or_else(|| coast(ctx, &p, h))
            .or_else(|| preheat_band(ctx, &p, h))
            .unwrap_or(p);
        optimum_stop(ctx, &held, params).unwrap_or(held)
    }
}

/// With a coast observed (`Learned::heat_coast`): the switch points, in what the probes read,
/// placed so that the room's true swing (up to `up` past the switch-off, down to `down` past
/// the switch-on) is centred on the setpoint, and kept `2·WIDEN·h` apart. A house whose heat
/// overshoots by itself gets a switch-on point lowered by as much: fewer, longer cycles
/// instead of a band that is symmetric only in the readings. None: no coast learned, or the
/// proposal is not about heating to a setpoint.
fn centred(ctx: &Ctx<'_>, p: &Proposal, h: f64, params: &Params) -> Option<Proposal> {
    if !matches!(ctx.mode, Mode::Heat | Mode::Auto) || p.cool {
        return None;
    }
    let c = ctx.learned.heat_coast?;
    let target = match p.code {
        ReasonCode::HeatBelowBand | ReasonCode::HeatInBand | ReasonCode::HeatAboveBand => {
            ctx.heat_c
        }
        ReasonCode::Preheat => p.outlook.as_ref()?.target_c,
        _ => return None,
    };
    let hold = hold_ratio(ctx);
    let band = width(params, h, &c, hold);
    let (on_below, off_above) = switch_points(target, &c, band);
    let (t, label) = (ctx.temp_c, ctx.temp_label);
    let mut out = if ctx.equipment.heat.on {
        if t >= off_above {
            Proposal::new(
                false,
                false,
                ReasonCode::HeatCoast,
                format!(
                    "heat off early: {label} ≥ {} °C; the heat still coming brings about {} °C \
                     more",
                    small(off_above),
                    small(c.up_c)
                ),
            )
        } else {
            let code = if p.code == ReasonCode::Preheat { p.code } else { ReasonCode::HeatInBand };
            Proposal::new(
                true,
                false,
                code,
                format!(
                    "heat stays on: {label} < {} °C, where it stops early for the coast of {} °C",
                    small(off_above),
                    small(c.up_c)
                ),
            )
        }
    } else if t <= on_below {
        let code = if p.code == ReasonCode::Preheat { p.code } else { ReasonCode::HeatBelowBand };
        Proposal::new(
            true,
            false,
            code,
            format!(
                "heat on: {label} ≤ {} °C; the room still falls about {} °C before the heat \
                 arrives (switch points {} °C apart, {})",
                small(on_below),
                small(c.down_c),
                small(band),
                width_why(params, &c, hold)
            ),
        )
    } else {
        Proposal::new(
            false,
            false,
            if p.heat { ReasonCode::HeatCoast } else { p.code },
            format!(
                "heat stays off: {label} > {} °C, where it starts for the lag of {} °C (switch \
                 points {} °C apart, {})",
                small(on_below),
                small(c.down_c),
                small(band),
                width_why(params, &c, hold)
            ),
        )
    };
    out.outlook = p.outlook.clone();
    // When the setpoint is expected holds only for what was proposed.
    out.expected_at = p.expected_at.filter(|_| out.heat == p.heat);
    Some(out)
}

/// How far apart the centred switch points are, °C: `band_c` when set, else learned from the
/// coast and the hold ratio (see `learned_width`).
fn width(params: &Params, h: f64, c: &Coast, hold: f64) -> f64 {
    match params.get(&BAND_C) {
        set if set > 0.0 => set,
        _ => learned_width(h, c, hold),
    }
}

/// The centred switch points (on below, off above) for `target`, `band` apart: the band is
/// moved down by half the difference of the coasts, so the room's true swing is centred.
fn switch_points(target: f64, c: &Coast, band: f64) -> (f64, f64) {
    let mid = target - (c.up_c - c.down_c) / 2.0;
    (mid - band / 2.0, mid + band / 2.0)
}

/// `v` when it is a finite, non-negative coast, lag or rate; else 0 (counted as none).
fn nonneg(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

/// Where the switch points' distance comes from, in the decision's words.
fn width_why(params: &Params, c: &Coast, hold: f64) -> String {
    if params.get(&BAND_C) > 0.0 {
        return "as set".to_owned();
    }
    match cycle_rates(c) {
        Some((rise, fall)) => format!(
            "for cycles no shorter than hysteresis's in a room that rises {} °C/h and falls {} \
             °C/h, kept at its setpoint {}× as long",
            small(rise),
            small(fall),
            small(sane_hold(hold))
        ),
        None => format!(
            "for cycles no shorter than hysteresis's in a room kept at its setpoint {}× as long",
            small(sane_hold(hold))
        ),
    }
}

/// The rise and fall in a cycle (`Coast`), when both were learned and are believable.
fn cycle_rates(c: &Coast) -> Option<(f64, f64)> {
    let sane = |r: Option<f64>| r.filter(|r| SANE_CYCLE_RATE.contains(r));
    Some((sane(c.rise_c_per_h)?, sane(c.fall_c_per_h)?))
}

/// The hold ratio as `learned_width` uses it: at least 1, at most `MAX_WIDEN` (a larger one
/// would ask for a band wider than the widest allowed anyway); nonsense is 1.
fn sane_hold(hold: f64) -> f64 {
    if hold.is_finite() { hold.clamp(1.0, MAX_WIDEN) } else { 1.0 }
}

/// The switch points' distance learned from the house, °C: the narrowest band whose cycles,
/// over the hours it holds the setpoint, are no more than a hysteresis thermostat's in the
/// same house over the hours it would hold it.
///
/// A thermostat's cycle in a house that coasts is about `lag_off + (W + up) / fall + lag_on +
/// (W + down) / rise` for switch points `W` apart: after a switch-off the room peaks `up`
/// past it `lag_off` later, falls at `fall` to the switch-on point, falls `down` more for
/// `lag_on`, then rises at `rise` to the switch-off point (all learned by `CoastWatch`; the
/// centring moves the band, not its length). Hysteresis's band is `2h`. Both cycle only while
/// they hold a setpoint, and this controller holds it longer: its preheat reaches each rise of
/// the setpoint on time where hysteresis is still catching up, so over a day it holds the
/// setpoint `hold` (`hold_ratio`) times as long. Cycling no more often over the day asks for a
/// cycle `hold` times as long: `W = hold·2h + (hold − 1)·F/S`, with `F` the part of the cycle
/// a band does not change and `S` its hours per °C of band. Without learned rates, the band
/// `hold·2h` (what the formula gives where the coast is quick against the swing).
///
/// A heavy, slow house (radiators in masonry, a heat pump) falls slowly and catches up late,
/// so it gets a wide band, which its slow swing makes cheap in comfort; a forced-air house
/// answers within minutes, so it keeps a narrow one. Bounds: at least `2·WIDEN·h` (the width
/// measured to beat hysteresis's cycles in a fast house: centring alone would match them, a
/// fifth more width saves cycles for little comfort), at most `2·MAX_WIDEN·h`. Nonsense
/// (non-finite, negative) coasts, lags and rates count as none.
pub(crate) fn learned_width(h: f64, c: &Coast, hold: f64) -> f64 {
    let (narrowest, widest) = (2.0 * WIDEN * h, 2.0 * MAX_WIDEN * h);
    let plain = 2.0 * h;
    let hold = sane_hold(hold);
    let needed = match cycle_rates(c) {
        Some((rise, fall)) => {
            let per_c = 1.0 / rise + 1.0 / fall;
            let fixed = (nonneg(c.lag_s) + nonneg(c.on_lag_s)) / 3600.0
                + nonneg(c.up_c) / fall
                + nonneg(c.down_c) / rise;
            plain * hold + (hold - 1.0) * fixed / per_c
        }
        None => plain * hold,
    };
    if needed.is_finite() { needed.clamp(narrowest, widest) } else { narrowest }
}

/// How much longer this controller holds the setpoint than a plain thermostat would over the
/// coming day (≥ 1): for every rise of the setpoint in the schedule, hysteresis starts heating
/// at the segment's start and holds the setpoint only after the learned time to rise that far
/// (`Rate::lead_s`), where predictive start holds it from the start. After a fall of the
/// setpoint neither holds anything (neither cycles) until the room has fallen that far at
/// the learned fall rate (`Coast::long_fall_c_per_h`; without it, the fall is taken as
/// instant), and a rise after a setback too short to fall all the way starts from where the
/// room got to. 1 without a learned rate or a rise ahead.
pub(crate) fn hold_ratio(ctx: &Ctx<'_>) -> f64 {
    let heat_c = |seg: &hearth_proto::schedules::Segment| {
        super::algorithm::setpoints(ctx.settings, seg.heat_c, seg.cool_c).0
    };
    schedule_hold_ratio(
        ctx.now,
        ctx.heat_c,
        ctx.upcoming.iter().map(|s| (s.start, s.end, heat_c(s))),
        ctx.learned.heat,
        ctx.learned.heat_coast.and_then(|c| c.long_fall_c_per_h),
    )
}

/// `hold_ratio` from the setpoint in force, the coming segments (start, end, heating
/// setpoint), the learned rate and the fall rate in a cycle, °C/h.
pub(crate) fn schedule_hold_ratio(
    now: hearth_proto::Timestamp,
    heat_c: f64,
    upcoming: impl Iterator<Item = (hearth_proto::Timestamp, hearth_proto::Timestamp, f64)>,
    rate: Option<Rate>,
    fall_c_per_h: Option<f64>,
) -> f64 {
    let Some(rate) = rate.filter(|r| r.c_per_h > 0.0) else { return 1.0 };
    let fall = fall_c_per_h.filter(|r| SANE_CYCLE_RATE.contains(r));
    let horizon = now.as_second().saturating_add(HOLD_HORIZON_S);
    // Seconds of the day, seconds neither holds, seconds only this controller holds.
    let (mut total_s, mut coasting_s, mut lost_s) = (0.0, 0.0, 0.0);
    // Where the room is at the start of each segment: at the setpoint in force now, then
    // wherever the last segment left it (a short setback is not fallen all the way).
    let (mut at, mut room_c) = (now.as_second(), heat_c);
    for (start, end, c) in upcoming {
        let (start, end) = (start.as_second().max(at), end.as_second().min(horizon));
        if start >= horizon || end <= start {
            break;
        }
        // The setpoint in force up to this segment, then this segment's.
        total_s += (start - at) as f64;
        let len_s = (end - start) as f64;
        total_s += len_s;
        if c > room_c {
            lost_s += rate.lead_s(c - room_c).min(len_s);
            room_c = c;
        } else if let Some(fall) = fall {
            coasting_s += ((room_c - c) / fall * 3600.0).min(len_s);
            room_c = c.max(room_c - fall * len_s / 3600.0);
        } else {
            room_c = c;
        }
        at = end;
    }
    total_s += (horizon - at).max(0) as f64;
    let (mine_s, theirs_s) = (total_s - coasting_s, total_s - coasting_s - lost_s);
    if theirs_s > 0.0 { mine_s / theirs_s } else { MAX_WIDEN }
}

/// Optimum stop: heat that would hold the setpoint in its last minutes is not needed when the
/// setpoint falls soon after. With the room falling at the rate learned in a cycle
/// (`Coast::fall_c_per_h`), after the coast still to come when the heat is on, the heat stops
/// (or stays off) when the room stays above the setpoint − `stop_early_c` until a lower
/// setpoint begins that lasts at least `MIN_STOP_S`. A plain thermostat keeps heating to the
/// last minute and the house gives that heat to the setback; stopping saves the last run, or
/// its end. None: not holding a setpoint with a fall learned, no such lower setpoint ahead, or
/// the room would fall too far.
fn optimum_stop(ctx: &Ctx<'_>, p: &Proposal, params: &Params) -> Option<Proposal> {
    let stop_c = params.get(&STOP_EARLY_C);
    let holding = matches!(p.code, ReasonCode::HeatBelowBand | ReasonCode::HeatInBand);
    let heating = matches!(ctx.mode, Mode::Heat | Mode::Auto) && p.heat && !p.cool;
    if !heating || !holding || stop_c <= 0.0 {
        return None;
    }
    let h = params.get(&HYSTERESIS_C);
    let c = ctx.learned.heat_coast?;
    let fall = c.fall_c_per_h.filter(|r| SANE_CYCLE_RATE.contains(r))?;
    let next = ctx.upcoming.first()?;
    let next_c = super::algorithm::setpoints(ctx.settings, next.heat_c, next.cool_c).0;
    let lasts_s = next.end.duration_since(next.start).as_secs();
    if next_c >= ctx.heat_c || lasts_s < MIN_STOP_S {
        return None;
    }
    let left_s = next.start.duration_since(ctx.now).as_secs_f64();
    if left_s <= 0.0 {
        return None;
    }
    let floor = ctx.heat_c - stop_c;
    // Once stopped, the heat starts again only when the room, from where it is, would end a
    // hysteresis below the floor; a stop must hold by that rule too, so that a fall a little
    // faster than the learned one, or a coast that does not come, never turns one stop into a
    // restart minutes later.
    if ctx.temp_c - fall * left_s / 3600.0 < floor - h {
        return None;
    }
    if ctx.equipment.heat.on {
        // Only the last run is cut: one that would reach its switch-off point before the
        // setpoint falls ends by itself, and cutting it short would only bring the next one
        // sooner.
        let rise = c.rise_c_per_h.filter(|r| SANE_CYCLE_RATE.contains(r))?;
        let off_above = switch_points(ctx.heat_c, &c, width(params, h, &c, hold_ratio(ctx))).1;
        if (off_above - ctx.temp_c) / rise * 3600.0 < left_s {
            return None;
        }
        // The room first coasts `up_c` for `lag_s`, as far as this run has built it up, then
        // falls; it must stay above the floor itself.
        let lag = nonneg(c.lag_s);
        let on_s = ctx
            .equipment
            .heat
            .since
            .map_or(0.0, |s| ctx.now.duration_since(s).as_secs_f64().max(0.0));
        let built = if lag > 0.0 { 1.0 - (-on_s / lag).exp() } else { 1.0 };
        let at_end = ctx.temp_c + nonneg(c.up_c) * built - fall * (left_s - lag).max(0.0) / 3600.0;
        if at_end < floor {
            return None;
        }
    }
    let (label, minutes) = (ctx.temp_label, (left_s / 60.0).round());
    let verb = if ctx.equipment.heat.on { "heat off early" } else { "heat stays off" };
    let mut out = Proposal::new(
        false,
        false,
        ReasonCode::HeatCoast,
        format!(
            "{verb}: the setpoint falls to {} °C in {minutes} min; {label}, falling about {} \
             °C/h, stays above {} °C until then",
            temp(next_c),
            small(fall),
            temp(floor)
        ),
    );
    out.outlook = p.outlook.clone();
    Some(out)
}

/// The switch points' distance learned from `c` with the default hysteresis, °C.
pub(crate) fn default_band_c(c: &Coast, hold: f64) -> f64 {
    learned_width(HYSTERESIS_C.default, c, hold)
}

/// The heat running for a preheat runs on as predictive start's does (`runs_on`), to the
/// coming setpoint's centred switch-off point rather than hysteresis's.
fn preheat_latch(ctx: &Ctx<'_>, p: &Proposal, h: f64, params: &Params) -> Option<Proposal> {
    if !matches!(ctx.mode, Mode::Heat | Mode::Auto) || p.heat || p.cool {
        return None;
    }
    let o = p.outlook.as_ref().filter(|o| o.system == System::Heat && o.segment_start > ctx.now)?;
    let top = match ctx.learned.heat_coast {
        Some(c) => switch_points(o.target_c, &c, width(params, h, &c, hold_ratio(ctx))).1,
        None => o.target_c + h,
    };
    let lead = jiff::SignedDuration::from_secs(i64::try_from(o.lead_s).unwrap_or(i64::MAX));
    let start = o.segment_start.checked_sub(lead).unwrap_or(ctx.now);
    let starts_in_s = start.duration_since(ctx.now).as_secs();
    if !runs_on(ctx, o, top, starts_in_s) {
        return None;
    }
    let mut on = Proposal::new(
        true,
        false,
        ReasonCode::Preheat,
        format!(
            "heat stays on: preheat for {} °C runs on to {} °C as one run ({})",
            small(o.target_c),
            small(top),
            ctx.temp_label
        ),
    );
    on.outlook = p.outlook.clone();
    Some(on)
}

/// A preheat that already reached the coming setpoint's band and stopped starts again only
/// below the band, as hysteresis would inside the segment: predictive start alone restarts as
/// soon as the room dips under the band's bottom, which turns the hour before a segment into
/// short runs.
fn preheat_band(ctx: &Ctx<'_>, p: &Proposal, h: f64) -> Option<Proposal> {
    if p.code != ReasonCode::Preheat || ctx.equipment.heat.on {
        return None;
    }
    let target = p.outlook.as_ref()?.target_c;
    (ctx.temp_c >= target - 2.0 * h).then(|| {
        let mut held = Proposal::new(
            false,
            false,
            ReasonCode::HeatInBand,
            format!(
                "heat stays off: {} within {} ± {} °C of the coming setpoint",
                ctx.temp_label,
                temp(target - h),
                small(h)
            ),
        );
        held.outlook = p.outlook.clone();
        held
    })
}

/// The heat's lag and full coast from what was learned; None when there is nothing to
/// anticipate (no rate, no lag).
fn learned_lag(rate: Option<Rate>) -> Option<(Rate, f64)> {
    let r = rate?;
    (r.dead_s > 0.0 && r.c_per_h > 0.0).then(|| (r, r.c_per_h * r.dead_s / 3600.0))
}

/// The proposal turned to "heat off" when the heat already given will do; None: keep `p`.
fn coast(ctx: &Ctx<'_>, p: &Proposal, h: f64) -> Option<Proposal> {
    if !matches!(ctx.mode, Mode::Heat | Mode::Auto) || !p.heat || p.cool {
        return None;
    }
    let (rate, full) = learned_lag(ctx.learned.heat)?;
    let tau = rate.dead_s;
    // What the heat runs towards: the setpoint in force, or the one a preheat is for.
    let target = match p.code {
        ReasonCode::HeatBelowBand | ReasonCode::HeatInBand => ctx.heat_c,
        ReasonCode::Preheat => p.outlook.as_ref()?.target_c,
        _ => return None,
    };
    let label = ctx.temp_label;
    let heat = ctx.equipment.heat;
    let secs = |since: Option<hearth_proto::Timestamp>| {
        since.map(|s| ctx.now.duration_since(s).as_secs_f64().max(0.0))
    };
    if heat.on {
        // Unknown start: assume the output has built up fully (the larger coast).
        let ramp = secs(heat.since).map_or(1.0, |on| 1.0 - (-on / tau).exp());
        let rising = rate.c_per_h * ramp;
        let peak = ctx.temp_c + rising * tau / 3600.0;
        let top = target + h + full / 2.0;
        (peak >= top).then(|| {
            Proposal::new(
                false,
                false,
                ReasonCode::HeatCoast,
                format!(
                    "heat off early: {label} and rising {} °C/h; the room will coast to {} °C \
                     (aiming below {} °C)",
                    small(rising),
                    temp(peak),
                    small(top)
                ),
            )
        })
    } else {
        // Off: what is left of the last run's coast (None: it never ran lately).
        let off = secs(heat.ran_until)?;
        let left = full * (-off / tau).exp();
        let bottom = target - h - full / 2.0;
        (ctx.temp_c >= bottom && ctx.temp_c + left > target - h).then(|| {
            Proposal::new(
                false,
                false,
                ReasonCode::HeatCoast,
                format!(
                    "heat stays off: {label}, and the heat still in the radiators brings \
                     {} °C more (starts below {} °C)",
                    small(left),
                    small(bottom)
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::control::Settings;
    use hearth_proto::Timestamp;
    use hearth_proto::schedules::{Layer, RuleRef, Segment};

    use super::super::learn::Learned;
    use super::super::{Equipment, Running};
    use super::*;

    const NOW: Timestamp = Timestamp::constant(1_800_000_000, 0);

    fn ago(min: i64) -> Option<Timestamp> {
        Some(NOW - jiff::SignedDuration::from_mins(min))
    }

    /// One decision: room `temp_c`, setpoint 21, heat on for `on_min` (None: off for
    /// `off_min`), learned 3 °C/h with `dead_min` of lag.
    fn decide(temp_c: f64, on_min: Option<i64>, off_min: i64, dead_min: f64) -> Proposal {
        decide_with(21.0, &[], temp_c, on_min, off_min, dead_min, None, 0.0)
    }

    /// The same with setpoint `heat_c` in force, `upcoming` segments, an observed coast and
    /// `band_c` set (0: learned).
    #[allow(clippy::too_many_arguments)]
    fn decide_with(
        heat_c: f64,
        upcoming: &[Segment],
        temp_c: f64,
        on_min: Option<i64>,
        off_min: i64,
        dead_min: f64,
        heat_coast: Option<Coast>,
        band_c: f64,
    ) -> Proposal {
        let learned = Learned {
            heat: Some(Rate { c_per_h: 3.0, dead_s: dead_min * 60.0, samples: 20 }),
            cool: None,
            heat_coast,
        };
        let heat = match on_min {
            Some(m) => Running { on: true, since: ago(m), ran_until: ago(m + 30) },
            None => Running { on: false, since: ago(off_min), ran_until: ago(off_min) },
        };
        propose_with(heat_c, upcoming, temp_c, heat, &learned, &[(BAND_C.key, band_c)])
    }

    /// One decision with the parameters' defaults but for `set`.
    fn propose_with(
        heat_c: f64,
        upcoming: &[Segment],
        temp_c: f64,
        heat: Running,
        learned: &Learned,
        set: &[(&'static str, f64)],
    ) -> Proposal {
        let settings = Settings { algorithm: "anticipate".to_owned(), ..Default::default() };
        let ctx = Ctx {
            now: NOW,
            mode: Mode::Heat,
            heat_c,
            cool_c: 26.0,
            temp_c,
            temp_label: &format!("living room {} °C", temp(temp_c)),
            equipment: Equipment { heat, cool: Running::OFF_UNKNOWN },
            upcoming,
            settings: &settings,
            learned,
        };
        let params = Anticipate
            .params()
            .iter()
            .map(|p| (p.key, set.iter().find(|s| s.0 == p.key).map_or(p.default, |s| s.1)))
            .collect();
        Anticipate.propose(&ctx, &params)
    }

    #[test]
    fn decisions() {
        // 10 min lag at 3 °C/h: a full coast of 0.5 °C, so the swing is 21 ± 0.55 °C.
        // (room, on for, off for, lag min, heat, code, reason or "" for any)
        type Case = (f64, Option<i64>, i64, f64, bool, ReasonCode, &'static str);
        let cases: [Case; 8] = [
            // Running for an hour, 21.0 °C: peaks at 21.5 ≥ 21.55? No: keeps heating.
            (21.0, Some(60), 0, 10.0, true, ReasonCode::HeatInBand, ""),
            // 21.1 °C: will coast to 21.6 ≥ 21.55: off early.
            (
                21.1,
                Some(120),
                0,
                10.0,
                false,
                ReasonCode::HeatCoast,
                "heat off early: living room 21.1 °C and rising 3 °C/h; the room will coast to \
                 21.6 °C (aiming below 21.55 °C)",
            ),
            // Just switched on (1 min): the output has barely built up, so little coast.
            (20.9, Some(1), 0, 10.0, true, ReasonCode::HeatInBand, ""),
            // Off for 5 min at 20.6: 0.3 °C still coming, 20.9 > 20.7: stays off.
            (
                20.6,
                None,
                5,
                10.0,
                false,
                ReasonCode::HeatCoast,
                "heat stays off: living room 20.6 °C, and the heat still in the radiators brings \
                 0.3 °C more (starts below 20.45 °C)",
            ),
            // Off for an hour at 20.6: the coast is spent; below the band, heat on.
            (20.6, None, 60, 10.0, true, ReasonCode::HeatBelowBand, ""),
            // Off for 5 min but below the swing's bottom: heat on.
            (20.4, None, 5, 10.0, true, ReasonCode::HeatBelowBand, ""),
            // Nothing to anticipate without a lag: hysteresis decides (off above 21.3).
            (21.2, Some(60), 0, 0.0, true, ReasonCode::HeatInBand, ""),
            (21.31, Some(60), 0, 0.0, false, ReasonCode::HeatAboveBand, ""),
        ];
        for (t, on, off, dead, heat, code, reason) in cases {
            let p = decide(t, on, off, dead);
            assert_eq!((p.heat, p.cool, p.code), (heat, false, code), "{t} {on:?} {off}: {p:?}");
            if !reason.is_empty() {
                assert_eq!(p.reason, reason);
            }
        }
    }

    #[test]
    fn an_observed_coast_centres_the_swing() {
        // 0.4 °C past a switch-off, 0.1 past a switch-on: the switch points, 21 − 0.15 ±
        // 1.2 × 0.3, are 21.21 (off) and 20.49 (on), so the room swings 20.39..21.61.
        // The room peaks at once: the narrowest learned band, 2 × 1.2 × 0.3 °C.
        let coast = Coast { lag_s: 0.0, ..coast(0.4, 0.1) };
        // (room, on for (None: off for 30 min), heat, code)
        let cases = [
            (21.2, Some(60), true, ReasonCode::HeatInBand),
            (21.22, Some(60), false, ReasonCode::HeatCoast),
            // Below hysteresis's 20.7, but the swing is centred: stays off.
            (20.5, None, false, ReasonCode::HeatCoast),
            (20.48, None, true, ReasonCode::HeatBelowBand),
            // With no lag learned (dead time 0) the coast still centres the swing.
        ];
        for dead in [0.0, 10.0] {
            for (t, on, heat, code) in cases {
                let p = decide_with(21.0, &[], t, on, 30, dead, Some(coast), 0.0);
                assert_eq!((p.heat, p.code), (heat, code), "{t} {on:?} {dead}: {p:?}");
            }
        }
        let p = decide_with(21.0, &[], 21.25, Some(60), 30, 0.0, Some(coast), 0.0);
        assert_eq!(
            p.reason,
            "heat off early: living room 21.3 °C ≥ 21.21 °C; the heat still coming brings about \
             0.4 °C more"
        );
    }

    /// A coast of `up_c` / `down_c` °C, with 10 min of lag each way, no cycle rates.
    fn coast(up_c: f64, down_c: f64) -> Coast {
        Coast {
            up_c,
            down_c,
            lag_s: 600.0,
            on_lag_s: 600.0,
            rise_c_per_h: None,
            fall_c_per_h: None,
            long_fall_c_per_h: None,
            samples: 8,
        }
    }

    #[test]
    fn the_band_is_learned_from_how_the_house_cycles() {
        // A house rising `rise` and falling `fall` °C/h in a cycle, peaking `lag` min after a
        // switch-off and bottoming 10 min after a switch-on, coasting `up` / 0.05 °C, held at
        // its setpoint `hold` times as long as hysteresis would.
        // (rise, fall, lag min, up °C, hold, hysteresis °C, band °C)
        type Case = (Option<f64>, Option<f64>, f64, f64, f64, f64, f64);
        let cases: [Case; 13] = [
            // Forced air: rises 8, falls 1 °C/h, peaks after 4 min, on time within minutes
            // (hold 1.08): the cycle hysteresis's band gives is nearly enough; the narrowest.
            (Some(8.0), Some(1.0), 4.0, 0.45, 1.08, 0.3, 0.72),
            // Radiators in masonry: rises 1.5, falls 0.3 °C/h, hysteresis catches up two hours
            // late twice a day (hold 1.7): 0.6 × 1.7 + 0.7 × 1.1 / 4 = 1.2125 °C.
            (Some(1.5), Some(0.3), 8.0, 0.23, 1.7, 0.3, 1.2125),
            // A heat pump: rises 0.8, falls 0.4 °C/h, hysteresis four hours late twice a day
            // (hold 2.2): 0.6 × 2.2 + 1.2 × 0.97083 / 3.75 = 1.63067 °C.
            (Some(0.8), Some(0.4), 13.0, 0.21, 2.2, 0.3, 1.63067),
            // The same house arriving as late as hysteresis (hold 1): the narrowest.
            (Some(0.8), Some(0.4), 13.0, 0.21, 1.0, 0.3, 0.72),
            // No rates learned yet: hold × 2h.
            (None, None, 8.0, 0.23, 1.7, 0.3, 1.02),
            (Some(1.5), None, 8.0, 0.23, 1.7, 0.3, 1.02),
            // Bounds: never beyond 3 × 2h, never below 1.2 × 2h.
            (Some(0.1), Some(0.06), 200.0, 2.0, 2.9, 0.3, 1.8),
            (Some(0.8), Some(0.4), 13.0, 0.21, 2.2, 0.1, 0.6),
            (Some(20.0), Some(20.0), 0.0, 0.0, 1.0, 0.5, 1.2),
            // Nonsense is none: a rate out of bounds or not a number, a hold not a number or
            // below 1, a hold beyond the widest band.
            (Some(f64::NAN), Some(0.3), 8.0, 0.23, 1.7, 0.3, 1.02),
            (Some(-1.5), Some(0.3), 8.0, 0.23, 1.7, 0.3, 1.02),
            (Some(1.5), Some(0.3), 8.0, 0.23, f64::NAN, 0.3, 0.72),
            (Some(1.5), Some(0.3), 8.0, 0.23, 0.2, 0.3, 0.72),
        ];
        for (rise, fall, lag_min, up_c, hold, h, band) in cases {
            let c = Coast {
                lag_s: lag_min * 60.0,
                rise_c_per_h: rise,
                fall_c_per_h: fall,
                ..coast(up_c, 0.05)
            };
            let got = learned_width(h, &c, hold);
            assert!((got - band).abs() < 1e-3, "{rise:?} {fall:?} {hold} h {h}: {got}, not {band}");
        }
        // Nonsense coasts and lags count as none, and the bounds hold for anything.
        let c = Coast {
            up_c: f64::INFINITY,
            lag_s: f64::NAN,
            on_lag_s: -600.0,
            rise_c_per_h: Some(1.5),
            fall_c_per_h: Some(0.3),
            ..coast(0.0, f64::NAN)
        };
        assert!((learned_width(0.3, &c, 1.7) - 1.02).abs() < 1e-9);
        for i in 0..=400 {
            let x = f64::from(i);
            let c = Coast {
                lag_s: x * 60.0,
                rise_c_per_h: Some(0.05 + x / 20.0),
                fall_c_per_h: Some(20.0 - x / 20.0),
                ..coast(x / 100.0, x / 200.0)
            };
            let (h, hold) = (0.1 + f64::from(i % 30) * 0.1, 1.0 + f64::from(i % 7) / 2.0);
            let got = learned_width(h, &c, hold);
            assert!(got >= 2.0 * WIDEN * h - 1e-9 && got <= 2.0 * MAX_WIDEN * h + 1e-9, "{got}");
        }
    }

    #[test]
    fn the_hold_ratio_is_the_time_hysteresis_loses_catching_up() {
        let at = |h: f64| NOW + jiff::SignedDuration::from_secs_f64(h * 3600.0);
        let rate = |c_per_h: f64| Some(Rate { c_per_h, dead_s: 600.0, samples: 10 });
        // (setpoint now, coming segments (from h, to h, °C), rate, ratio)
        type Case = (f64, &'static [(f64, f64, f64)], Option<Rate>, f64);
        let cases: [Case; 7] = [
            // 17 °C, then 21 °C for 4 h from in an hour: 4 °C at 2 °C/h and 10 min of dead
            // time is 2 h 10 min lost of 24 h.
            (17.0, &[(1.0, 5.0, 21.0), (5.0, 30.0, 17.0)], rate(2.0), 24.0 / (24.0 - 13.0 / 6.0)),
            // Two rises a day.
            (
                17.0,
                &[(1.0, 5.0, 21.0), (5.0, 10.0, 17.0), (10.0, 14.0, 21.0), (14.0, 30.0, 17.0)],
                rate(2.0),
                24.0 / (24.0 - 13.0 / 3.0),
            ),
            // A rise that takes longer than its segment loses the segment, not more.
            (17.0, &[(1.0, 2.0, 21.0), (2.0, 30.0, 17.0)], rate(0.5), 24.0 / 23.0),
            // Falls lose nothing; nothing ahead loses nothing; no rate learned: 1.
            (21.0, &[(1.0, 5.0, 17.0)], rate(2.0), 1.0),
            (21.0, &[], rate(2.0), 1.0),
            (17.0, &[(1.0, 5.0, 21.0)], None, 1.0),
            // Beyond the next day is not read.
            (17.0, &[(25.0, 30.0, 21.0)], rate(2.0), 1.0),
        ];
        for (now_c, segments, rate, ratio) in cases {
            let upcoming = segments.iter().map(|&(from, to, c)| (at(from), at(to), c));
            let got = schedule_hold_ratio(NOW, now_c, upcoming, rate, None);
            assert!((got - ratio).abs() < 1e-9, "{segments:?}: {got}, not {ratio}");
        }
        // After a fall neither holds a setpoint until the room has fallen: at 0.5 °C/h, 4 °C
        // take 8 h of the day; a fall rate out of bounds is none.
        let day = [(at(1.0), at(5.0), 21.0), (at(5.0), at(30.0), 17.0)];
        let lost = 13.0 / 6.0;
        for (fall, ratio) in [
            (Some(0.5), 16.0 / (16.0 - lost)),
            (Some(f64::NAN), 24.0 / (24.0 - lost)),
            (Some(-0.5), 24.0 / (24.0 - lost)),
            (Some(0.0), 24.0 / (24.0 - lost)),
        ] {
            let got = schedule_hold_ratio(NOW, 17.0, day.into_iter(), rate(2.0), fall);
            assert!((got - ratio).abs() < 1e-9, "{fall:?}: {got}, not {ratio}");
        }
        // A setback of 2 h at 0.5 °C/h falls 1 °C, not 4: the rise after it is 1 °C (40 min
        // with the dead time), and the 2 h are not held by either.
        let short = [(at(1.0), at(3.0), 17.0), (at(3.0), at(30.0), 21.0)];
        let got = schedule_hold_ratio(NOW, 21.0, short.into_iter(), rate(2.0), Some(0.5));
        let ratio = 22.0 / (22.0 - 2.0 / 3.0);
        assert!((got - ratio).abs() < 1e-9, "{got}, not {ratio}");
        // A day spent catching up: the widest band's ratio.
        let all = [(at(0.0), at(30.0), 21.0)].into_iter();
        assert_eq!(schedule_hold_ratio(NOW, 17.0, all, rate(0.1), None), MAX_WIDEN);
    }

    #[test]
    fn the_band_is_the_learned_one_unless_set_and_the_decision_says_which() {
        // Coast +0.4 / −0.1 °C: centred on 20.85 °C. Nothing ahead, so held as long as by
        // hysteresis: the narrowest band learned, 0.72 °C, heat on at or below 20.49 °C; set
        // to 1 °C: at or below 20.35 °C.
        let coast = Coast { rise_c_per_h: Some(2.0), fall_c_per_h: Some(0.5), ..coast(0.4, 0.1) };
        // (room, band set, heat, code)
        let cases = [
            (20.5, 0.0, false, ReasonCode::HeatCoast),
            (20.48, 0.0, true, ReasonCode::HeatBelowBand),
            (20.36, 1.0, false, ReasonCode::HeatCoast),
            (20.34, 1.0, true, ReasonCode::HeatBelowBand),
        ];
        for (t, band, heat, code) in cases {
            let p = decide_with(21.0, &[], t, None, 30, 0.0, Some(coast), band);
            assert_eq!((p.heat, p.code), (heat, code), "{t} {band}: {p:?}");
        }
        let p = decide_with(21.0, &[], 20.4, None, 30, 0.0, Some(coast), 0.0);
        assert_eq!(
            p.reason,
            "heat on: living room 20.4 °C ≤ 20.49 °C; the room still falls about 0.1 °C before \
             the heat arrives (switch points 0.72 °C apart, for cycles no shorter than \
             hysteresis's in a room that rises 2 °C/h and falls 0.5 °C/h, kept at its setpoint \
             1× as long)"
        );
        // A comfort setpoint ahead that hysteresis would reach 80 min late (4 °C at 3 °C/h):
        // held 24 / (24 − 4/3) times as long.
        let p = decide_with(17.0, &[comfort_in(60)], 16.3, None, 30, 0.0, Some(coast), 0.0);
        assert!(p.reason.contains("kept at its setpoint 1.06× as long"), "{}", p.reason);
        let p = decide_with(21.0, &[], 20.5, None, 30, 0.0, Some(coast), 1.0);
        assert!(p.reason.ends_with("(switch points 1 °C apart, as set)"), "{}", p.reason);
    }

    /// Two hours at 21 °C from `min` minutes after `NOW`.
    fn comfort_in(min: i64) -> Segment {
        let at = NOW + jiff::SignedDuration::from_mins(min);
        Segment {
            start: at,
            end: at + jiff::SignedDuration::from_hours(2),
            start_local: String::new(),
            end_local: String::new(),
            heat_c: 21.0,
            cool_c: 26.0,
            sensors: Vec::new(),
            rule: RuleRef { layer: Layer::Day, id: Some(1), name: "comfort".to_owned() },
            beaten: Vec::new(),
        }
    }

    /// A segment of `heat_c` from `in_min` minutes from now, `hours` long.
    fn segment_in(in_min: i64, hours: i64, heat_c: f64) -> Segment {
        let at = NOW + jiff::SignedDuration::from_mins(in_min);
        Segment { end: at + jiff::SignedDuration::from_hours(hours), heat_c, ..comfort_in(in_min) }
    }

    /// Optimum stop: the last run before a setback is spared, or cut short, when the room
    /// stays above the setpoint − `stop_early_c` until the setback begins; any other run is
    /// left alone.
    #[test]
    fn the_last_run_before_a_setback_is_spared_when_the_room_will_hold() {
        // Switch points 1 °C apart around 21 − (0.2 − 0.05) / 2: on at 20.425, off at 21.425;
        // the room rises 2 °C/h and falls 1.2 °C/h in a cycle and peaks 10 min after a
        // switch-off. The default stop_early_c (1 °C): the floor is 20 °C, and a stopped heat
        // restarts only below 19.7 °C at the setback's start.
        let cycling = Coast {
            up_c: 0.2,
            down_c: 0.05,
            rise_c_per_h: Some(2.0),
            fall_c_per_h: Some(1.2),
            ..coast(0.2, 0.05)
        };
        let learned = |c: Coast| Learned { heat: None, cool: None, heat_coast: Some(c) };
        let off = Running { on: false, since: ago(30), ran_until: ago(30) };
        let on_for = |m: i64| Running { on: true, since: ago(m), ran_until: ago(m + 30) };
        let setback_in = |m: i64| [segment_in(m, 8, 17.0)];
        // (what, room, relay, coming segments, coast, stop_early_c, heat, code)
        type Case = (&'static str, f64, Running, [Segment; 1], Coast, f64, bool, ReasonCode);
        let cases: [Case; 10] = [
            (
                "20 min to the setback: 20.4 − 0.4 ≥ 19.7",
                20.4,
                off,
                setback_in(20),
                cycling,
                1.0,
                false,
                ReasonCode::HeatCoast,
            ),
            (
                "an hour to it: 19.2 < 19.7",
                20.4,
                off,
                setback_in(60),
                cycling,
                1.0,
                true,
                ReasonCode::HeatBelowBand,
            ),
            (
                "a setback of 30 min is no setback",
                20.4,
                off,
                [segment_in(20, 0, 17.0)],
                cycling,
                1.0,
                true,
                ReasonCode::HeatBelowBand,
            ),
            (
                "the setpoint rises next",
                20.4,
                off,
                [segment_in(20, 8, 22.0)],
                cycling,
                1.0,
                true,
                ReasonCode::HeatBelowBand,
            ),
            (
                "no fall learned",
                20.4,
                off,
                setback_in(20),
                coast(0.2, 0.05),
                1.0,
                true,
                ReasonCode::HeatBelowBand,
            ),
            (
                "turned off",
                20.4,
                off,
                setback_in(20),
                cycling,
                0.0,
                true,
                ReasonCode::HeatBelowBand,
            ),
            (
                "a run that reaches 21.425 in 25 min, before the setback in 30, ends by itself",
                20.6,
                on_for(60),
                setback_in(30),
                cycling,
                1.0,
                true,
                ReasonCode::HeatInBand,
            ),
            (
                "the last run: 20.6 + 0.2 − 1.2 × 10 / 60 = 20.6 ≥ 20, and 20.2 ≥ 19.7",
                20.6,
                on_for(60),
                setback_in(20),
                cycling,
                1.0,
                false,
                ReasonCode::HeatCoast,
            ),
            (
                "the last run, just started: its coast is not built up (19.82 < 20)",
                20.0,
                on_for(1),
                setback_in(20),
                cycling,
                1.0,
                true,
                ReasonCode::HeatInBand,
            ),
            (
                "an allowance of 0.3 °C: the same run would end at 20.6 < 20.7",
                20.6,
                on_for(60),
                setback_in(20),
                cycling,
                0.3,
                true,
                ReasonCode::HeatInBand,
            ),
        ];
        for (what, t, heat, upcoming, c, stop_c, want_heat, code) in cases {
            let set = [(BAND_C.key, 1.0), (STOP_EARLY_C.key, stop_c)];
            let p = propose_with(21.0, &upcoming, t, heat, &learned(c), &set);
            assert_eq!((p.heat, p.code), (want_heat, code), "{what}: {p:?}");
        }
        let set = [(BAND_C.key, 1.0)];
        let stay = propose_with(21.0, &setback_in(20), 20.4, off, &learned(cycling), &set);
        assert_eq!(
            stay.reason,
            "heat stays off: the setpoint falls to 17.0 °C in 20 min; living room 20.4 °C, \
             falling about 1.2 °C/h, stays above 20.0 °C until then"
        );
        let stop = propose_with(21.0, &setback_in(20), 20.6, on_for(60), &learned(cycling), &set);
        assert!(stop.reason.starts_with("heat off early: the setpoint falls"), "{stop:?}");
    }

    /// A preheat that got ahead of its plan runs on as one run instead of stopping to start
    /// again minutes later; a preheat not started yet still waits for its plan.
    #[test]
    fn a_running_preheat_runs_on_to_the_coming_setpoint() {
        // 17 °C now, 21 °C in 60 min; the room at 19 °C needs 40 min at the learned 3 °C/h.
        let upcoming = [comfort_in(60)];
        let running = decide_with(17.0, &upcoming, 19.0, Some(20), 30, 0.0, None, 0.0);
        assert_eq!((running.heat, running.code), (true, ReasonCode::Preheat), "{running:?}");
        assert!(running.reason.contains("as one run"), "{}", running.reason);
        let waiting = decide_with(17.0, &upcoming, 19.0, None, 30, 0.0, None, 0.0);
        assert!(!waiting.heat, "{waiting:?}");
        // At the coming setpoint's switch-off point (21 + 0.3) it stops.
        let there = decide_with(17.0, &upcoming, 21.3, Some(20), 30, 0.0, None, 0.0);
        assert!(!there.heat, "{there:?}");
        // A run for the setback's own band, hours before the preheat, is not stretched into it.
        let later = [comfort_in(300)];
        let band = decide_with(17.0, &later, 17.4, Some(10), 30, 0.0, None, 0.0);
        assert!(!band.heat, "{band:?}");
    }

    #[test]
    fn a_preheat_that_reached_the_band_waits_below_it() {
        // 17 °C now, 21 °C from in 5 min; nothing to anticipate (no lag learned).
        let upcoming = [comfort_in(5)];
        let cases = [
            // Off at 20.5 °C, within 21 − 0.3 ± 0.3: stays off (predictive alone restarts).
            (20.5, None, false, ReasonCode::HeatInBand),
            (20.3, None, true, ReasonCode::Preheat),
            // Already preheating: it runs on.
            (20.5, Some(20), true, ReasonCode::Preheat),
        ];
        for (t, on, heat, code) in cases {
            let p = decide_with(17.0, &upcoming, t, on, 30, 0.0, None, 0.0);
            assert_eq!((p.heat, p.code), (heat, code), "{t} {on:?}: {p:?}");
            assert!(p.outlook.is_some(), "{p:?}");
        }
        let p = decide_with(17.0, &upcoming, 20.5, None, 30, 0.0, None, 0.0);
        assert_eq!(
            p.reason,
            "heat stays off: living room 20.5 °C within 20.7 ± 0.3 °C of the coming setpoint"
        );
    }
}
