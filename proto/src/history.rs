//! What the equipment did: heating and cooling runs, and runtime analytics per day and per
//! shorter period (`/v1/runs`, `/v1/analytics/daily`, `/v1/analytics/periods`).

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::control::System;

/// One period during which heating or cooling ran, as the relays reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Heating or cooling.
    pub system: System,
    /// When it started.
    pub start: Timestamp,
    /// When it ended; null while it runs.
    pub end: Option<Timestamp>,
    /// Effective temperature at the start, °C, if known.
    pub start_temp_c: Option<f64>,
    /// Effective temperature at the end, °C, if known.
    pub end_temp_c: Option<f64>,
}

/// Longest span between `from` and `to` of a readings or runs query, days: ten years, with
/// their leap days.
pub const MAX_SPAN_DAYS: i64 = 3653;
/// `days` of `GET /v1/analytics/daily`.
pub const DAYS: RangeInclusive<u32> = 1..=366;
/// `days` when the query leaves it out.
pub const DEFAULT_DAYS: u32 = 7;

/// Query of `GET /v1/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Runs that ended at or after this instant (or still run). Default: 7 days before `to`.
    pub from: Option<Timestamp>,
    /// Runs that started before this instant. Default: now.
    pub to: Option<Timestamp>,
}

/// Query of `GET /v1/analytics/daily`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// How many local days back from today, today included.
    pub days: Option<u32>,
}

/// One local day of one system's runtime (`GET /v1/analytics/daily`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayStats {
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// Heating or cooling.
    pub system: System,
    /// Seconds it ran that day (runs crossing midnight are split).
    pub runtime_s: u64,
    /// Runs that started that day.
    pub cycles: u32,
    /// Cycles per hour it could have run (the elapsed part of the day).
    pub cycles_per_hour: f64,
    /// Share of the day's elapsed time it ran, 0..=1.
    pub duty_cycle: f64,
    /// Mean temperature change per hour of run over that day's runs of at least 10 minutes,
    /// °C/h (rise for heat, fall for cool); null without such runs.
    pub rate_c_per_h: Option<f64>,
}

/// `hours` of `GET /v1/analytics/periods`: back from now, a week at most.
pub const PERIOD_HOURS: RangeInclusive<u32> = 1..=168;
/// `hours` when the query leaves it out.
pub const DEFAULT_PERIOD_HOURS: u32 = 24;
/// The period lengths `GET /v1/analytics/periods` offers, minutes: each divides an hour, so
/// periods start on the local clock's round minutes.
pub const PERIOD_MINUTES: [u32; 6] = [5, 10, 15, 20, 30, 60];
/// `period_min` when the query leaves it out.
pub const DEFAULT_PERIOD_MIN: u32 = 60;

/// Query of `GET /v1/analytics/periods`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodsQuery {
    /// How many hours back from now, the current period included.
    pub hours: Option<u32>,
    /// Length of each period, minutes.
    pub period_min: Option<u32>,
}

/// One period (e.g. an hour) of one system's runtime (`GET /v1/analytics/periods`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeriodStats {
    /// Start of the period (inclusive), on the local clock's round minutes.
    pub start: Timestamp,
    /// End of the period (exclusive); the last period ends after now.
    pub end: Timestamp,
    /// Heating or cooling.
    pub system: System,
    /// Seconds it ran in the period (runs are split at period edges; a running one counts up
    /// to now).
    pub runtime_s: u64,
    /// Runs that started in the period.
    pub cycles: u32,
    /// Cycles per hour over the elapsed part of the period.
    pub cycles_per_hour: f64,
    /// Share of the period's elapsed time it ran, 0..=1.
    pub duty_cycle: f64,
    /// Mean temperature change per hour of run over the runs of at least 10 minutes that
    /// started in the period, °C/h (rise for heat, fall for cool); null without such runs.
    pub rate_c_per_h: Option<f64>,
}
