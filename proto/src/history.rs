//! What the equipment did: heating and cooling runs, and runtime analytics per day and per
//! shorter period (`/v1/runs`, `/v1/analytics/daily`, `/v1/analytics/periods`).

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
    /// How many local days back from today, today included (1..=366, default 7).
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

/// Longest span of `GET /v1/analytics/periods`, hours (a week).
pub const MAX_PERIOD_HOURS: u32 = 168;
/// The period lengths `GET /v1/analytics/periods` offers, minutes: each divides an hour, so
/// periods start on the local clock's round minutes.
pub const PERIOD_MINUTES: [u32; 6] = [5, 10, 15, 20, 30, 60];

/// Query of `GET /v1/analytics/periods`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodsQuery {
    /// How many hours back from now, the current period included (1..=168, default 24).
    #[param(minimum = 1, maximum = 168)]
    pub hours: Option<u32>,
    /// Length of each period, minutes: 5, 10, 15, 20, 30 or 60 (default 60).
    #[param(minimum = 5, maximum = 60)]
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
