//! History: a sensor's readings as a chart series (`GET /v1/sensors/{id}/readings`), the
//! heating and cooling runs (`GET /v1/runs`) and their analytics per local day
//! (`GET /v1/analytics/daily`) and per shorter period (`GET /v1/analytics/periods`).

use axum::extract::{Path, State};
use hearth_proto::control::System;
use hearth_proto::history::{
    DAYS, DEFAULT_DAYS, DEFAULT_PERIOD_HOURS, DEFAULT_PERIOD_MIN, DailyQuery, DayStats,
    MAX_SPAN_DAYS, PERIOD_HOURS, PERIOD_MINUTES, PeriodStats, PeriodsQuery, Run, RunsQuery,
};
use hearth_proto::sensors::{DEFAULT_POINTS, POINTS, ReadingsPage, ReadingsQuery};
use hearth_proto::{ErrorBody, Timestamp};
use jiff::SignedDuration;
use jiff::tz::TimeZone;

use super::AppState;
use super::error::{ApiError, Query, bounded};
use crate::store::from_millis;

/// Longest range a readings or runs request may span.
const MAX_RANGE: SignedDuration = SignedDuration::from_hours(MAX_SPAN_DAYS * 24);
/// Runs shorter than this say little about how fast the house warms or cools.
const MIN_RATE_RUN: SignedDuration = SignedDuration::from_mins(10);

/// `[from, to)` from optional ends: `to` defaults to now, `from` to `default_span` before it.
fn range(
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    default_span: SignedDuration,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let to = to.unwrap_or_else(Timestamp::now);
    let from = match from {
        Some(f) => f,
        None => to.checked_sub(default_span).unwrap_or(Timestamp::MIN),
    };
    if from >= to {
        return Err(ApiError::invalid(format!("from ({from}) must be before to ({to})")));
    }
    if to.duration_since(from) > MAX_RANGE {
        return Err(ApiError::invalid(format!(
            "from ({from}) and to ({to}) may be at most {MAX_SPAN_DAYS} days apart"
        )));
    }
    Ok((from, to))
}

/// One sensor's readings over `[from, to)` (default: the last 24 hours) as at most
/// `max_points` points, oldest first.
///
/// When the range holds at most `max_points` readings they are returned raw (`bucket_s` 0; a
/// failed reading is a point with null values and `count` 0). Otherwise they are downsampled
/// into buckets of equal width with min/mean/max each: the range divided by `max_points`,
/// rounded up to whole hours (from hourly aggregates) when it is at least an hour, to whole
/// minutes (from per-minute aggregates) when at least a minute, else to whole seconds (from
/// the readings). Buckets start at `from`: the range served (`from`, `to` in the reply) is the
/// requested one widened to whole hours, minutes or seconds like the buckets, so that each
/// point covers exactly `[at, at + bucket_s)` (the last one ends at `to`). Empty buckets are
/// left out; a bucket whose readings all failed has null values and `count` 0.
#[utoipa::path(get, path = "/v1/sensors/{id}/readings", operation_id = "get_readings", tag = "sensors",
    params(("id" = String, Path, description = "Sensor id"), ReadingsQuery),
    responses(
        (status = 200, description = "The points, oldest first", body = ReadingsPage),
        (status = 404, description = "Unknown sensor", body = ErrorBody),
        (status = 422, description = "Bad range or max_points", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn readings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ReadingsQuery>,
) -> Result<axum::Json<ReadingsPage>, ApiError> {
    let max_points = bounded("max_points", q.max_points, DEFAULT_POINTS, &POINTS)?;
    let (from, to) = range(q.from, q.to, SignedDuration::from_hours(24))?;
    let Some(series) = state.inner.readings.series(&id, from, to, max_points).await? else {
        return Err(ApiError::not_found(format!("no sensor {id:?}")));
    };
    Ok(axum::Json(ReadingsPage {
        sensor_id: id,
        from: from_millis(series.from_ms),
        to: from_millis(series.to_ms),
        bucket_s: u64::try_from(series.bucket_ms / 1000).unwrap_or(0),
        points: series.points,
    }))
}

/// Heating and cooling runs overlapping `[from, to)` (default: the last 7 days): started
/// before `to`, and ended at or after `from` or still running (`end` null); oldest first.
#[utoipa::path(get, path = "/v1/runs", operation_id = "list_runs", tag = "history",
    params(RunsQuery),
    responses(
        (status = 200, description = "The runs, oldest first", body = Vec<Run>),
        (status = 422, description = "Bad range", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<axum::Json<Vec<Run>>, ApiError> {
    let (from, to) = range(q.from, q.to, SignedDuration::from_hours(7 * 24))?;
    Ok(axum::Json(state.inner.store.runs(from, to).await?))
}

/// Runtime per local day (the engine's time zone) and system for the last `days` days, today
/// included, oldest day first, heat before cool.
///
/// Runs are split at local midnights; a run still going counts up to now. Days are 23 or 25
/// hours long across DST changes. `cycles` counts the runs that started that day;
/// `cycles_per_hour` and `duty_cycle` are over the elapsed part of the day (today: until now).
/// `rate_c_per_h` is the mean temperature change per hour of that day's finished runs of at
/// least 10 minutes with both temperatures: the rise for heat, the fall for cool (negative when
/// the system lost ground).
///
/// Every system that has ever run gets a row for every day, with zeros on days it did not run
/// (a chart shows a continuous series); a system that never ran has no rows.
#[utoipa::path(get, path = "/v1/analytics/daily", operation_id = "get_daily_analytics", tag = "history",
    params(DailyQuery),
    responses(
        (status = 200, description = "One row per day and system, oldest day first", body = Vec<DayStats>),
        (status = 422, description = "days out of range", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn daily(
    State(state): State<AppState>,
    Query(q): Query<DailyQuery>,
) -> Result<axum::Json<Vec<DayStats>>, ApiError> {
    let days = bounded("days", q.days, DEFAULT_DAYS, &DAYS)?;
    let now = Timestamp::now();
    let tz = &state.inner.time_zone;
    let first = first_day_start(now, tz, days).map_err(|e| {
        ApiError::invalid(format!("days={days} reaches beyond the supported dates: {e}"))
    })?;
    let store = &state.inner.store;
    let systems = store.run_systems().await?;
    let runs = store.runs(first, now).await?;
    let stats = daily_stats(&runs, &systems, tz, now, days)
        .map_err(|e| ApiError::invalid(format!("days={days}: {e}")))?;
    Ok(axum::Json(stats))
}

/// Runtime per period (default: per hour) and system over the last `hours` hours, the
/// current period included, oldest first, heat before cool: for views
/// shorter than a day, where one bar per day says nothing.
///
/// Periods of `period_min` minutes start on the local clock's
/// multiples of it (the engine's time zone) and last that long; the last one holds now and
/// counts up to now. Otherwise as `GET /v1/analytics/daily`: runs split at period edges,
/// `cycles` the runs that started in the period, rates from runs of at least 10 minutes, every
/// system that has ever run gets a row for every period.
#[utoipa::path(get, path = "/v1/analytics/periods", operation_id = "get_period_analytics",
    tag = "history",
    params(PeriodsQuery),
    responses(
        (status = 200, description = "Runtime per period and system, oldest first",
            body = Vec<PeriodStats>),
        (status = 422, description = "hours or period_min out of range", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn periods(
    State(state): State<AppState>,
    Query(q): Query<PeriodsQuery>,
) -> Result<axum::Json<Vec<PeriodStats>>, ApiError> {
    let hours = bounded("hours", q.hours, DEFAULT_PERIOD_HOURS, &PERIOD_HOURS)?;
    let period_min = q.period_min.unwrap_or(DEFAULT_PERIOD_MIN);
    if !PERIOD_MINUTES.contains(&period_min) {
        let offered: Vec<String> = PERIOD_MINUTES.iter().map(u32::to_string).collect();
        return Err(ApiError::invalid(format!(
            "period_min must be one of {}, got {period_min}",
            offered.join(", ")
        )));
    }
    let now = Timestamp::now();
    // A period before the first hour asked for may still be cut off: read runs from an hour
    // earlier than the span.
    let from =
        now.checked_sub(SignedDuration::from_hours(i64::from(hours) + 1)).unwrap_or(Timestamp::MIN);
    let store = &state.inner.store;
    let systems = store.run_systems().await?;
    let runs = store.runs(from, now).await?;
    let stats = period_stats(&runs, &systems, &state.inner.time_zone, now, hours, period_min)
        .map_err(|e| ApiError::invalid(format!("hours={hours}: {e}")))?;
    Ok(axum::Json(stats))
}

/// Start of the oldest local day of the `days` ending today.
fn first_day_start(now: Timestamp, tz: &TimeZone, days: u32) -> Result<Timestamp, jiff::Error> {
    let today = now.to_zoned(tz.clone()).date();
    let first = today.checked_sub(jiff::Span::new().days(i64::from(days) - 1))?;
    Ok(first.to_zoned(tz.clone())?.timestamp())
}

/// The daily statistics of `systems` over the `days` local days ending today, from the runs
/// overlapping them. Pure: the clock and the zone are parameters.
pub(crate) fn daily_stats(
    runs: &[Run],
    systems: &[System],
    tz: &TimeZone,
    now: Timestamp,
    days: u32,
) -> Result<Vec<DayStats>, jiff::Error> {
    let today = now.to_zoned(tz.clone()).date();
    let mut day = today.checked_sub(jiff::Span::new().days(i64::from(days.max(1)) - 1))?;
    let mut out = Vec::new();
    while day <= today {
        // Midnight, or the first instant of the day when midnight falls in a DST gap.
        let start = day.to_zoned(tz.clone())?.timestamp();
        let next = day.tomorrow()?;
        let end = next.to_zoned(tz.clone())?.timestamp();
        for &system in systems {
            let s = span_stats(runs, system, start, end, now);
            out.push(DayStats {
                date: day.to_string(),
                system,
                runtime_s: s.runtime_s,
                cycles: s.cycles,
                cycles_per_hour: s.cycles_per_hour,
                duty_cycle: s.duty_cycle,
                rate_c_per_h: s.rate_c_per_h,
            });
        }
        day = next;
    }
    Ok(out)
}

/// The statistics of `systems` per period of `period_min` minutes over the last `hours`
/// hours, the period holding `now` last. Periods start on the local clock's multiples of
/// `period_min` (which divides an hour) and are that long in real time, across DST changes
/// too. Pure: the clock and the zone are parameters.
pub(crate) fn period_stats(
    runs: &[Run],
    systems: &[System],
    tz: &TimeZone,
    now: Timestamp,
    hours: u32,
    period_min: u32,
) -> Result<Vec<PeriodStats>, jiff::Error> {
    let period_min = period_min.clamp(1, 60);
    let local = now.to_zoned(tz.clone());
    let floor = i8::try_from(u32::from(local.minute().unsigned_abs()) / period_min * period_min)
        .unwrap_or(0);
    let current = local.with().minute(floor).second(0).subsec_nanosecond(0).build()?.timestamp();
    let step = SignedDuration::from_mins(i64::from(period_min));
    let count = i64::from(hours.max(1)) * 60 / i64::from(period_min);
    let mut start = current.checked_sub(step * i32::try_from(count - 1).unwrap_or(0))?;
    let mut out = Vec::new();
    for _ in 0..count {
        let end = start.checked_add(step)?;
        for &system in systems {
            let s = span_stats(runs, system, start, end, now);
            out.push(PeriodStats {
                start,
                end,
                system,
                runtime_s: s.runtime_s,
                cycles: s.cycles,
                cycles_per_hour: s.cycles_per_hour,
                duty_cycle: s.duty_cycle,
                rate_c_per_h: s.rate_c_per_h,
            });
        }
        start = end;
    }
    Ok(out)
}

/// One system's runtime over `[start, end)`, as far as it has elapsed at `now`.
struct SpanStats {
    runtime_s: u64,
    cycles: u32,
    cycles_per_hour: f64,
    duty_cycle: f64,
    rate_c_per_h: Option<f64>,
}

fn span_stats(
    runs: &[Run],
    system: System,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> SpanStats {
    let elapsed_end = end.min(now);
    let elapsed_s = elapsed_end.duration_since(start).as_secs_f64().max(0.0);
    let mine = || runs.iter().filter(move |r| r.system == system);
    let pieces = || mine().map(|r| (r.start.max(start), r.end.unwrap_or(now).min(elapsed_end)));
    let runtime: SignedDuration =
        pieces().map(|(from, to)| to.duration_since(from).max(SignedDuration::ZERO)).sum();
    // Whole seconds from the instants' whole seconds, not each piece's duration truncated: a
    // run split at midnight then adds up to its whole length (truncating both halves lost a
    // second whenever the run's start and now had fractions).
    let runtime_whole_s: i64 =
        pieces().map(|(from, to)| (to.as_second() - from.as_second()).max(0)).sum();
    let started: Vec<&Run> = mine().filter(|r| r.start >= start && r.start < end).collect();
    let rates: Vec<f64> = started
        .iter()
        .filter_map(|r| {
            let length = r.end?.duration_since(r.start);
            if length < MIN_RATE_RUN {
                return None;
            }
            let change = r.end_temp_c? - r.start_temp_c?;
            let toward = if system == System::Heat { change } else { -change };
            Some(toward / (length.as_secs_f64() / 3600.0))
        })
        .collect();
    let runtime_s = runtime.as_secs_f64();
    let cycles = u32::try_from(started.len()).unwrap_or(u32::MAX);
    SpanStats {
        runtime_s: runtime_whole_s.unsigned_abs(),
        cycles,
        cycles_per_hour: if elapsed_s > 0.0 {
            f64::from(cycles) / (elapsed_s / 3600.0)
        } else {
            0.0
        },
        duty_cycle: if elapsed_s > 0.0 { (runtime_s / elapsed_s).clamp(0.0, 1.0) } else { 0.0 },
        rate_c_per_h: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn run(system: System, start: &str, end: Option<&str>, temps: (f64, f64)) -> Run {
        Run {
            system,
            start: ts(start),
            end: end.map(ts),
            start_temp_c: Some(temps.0),
            end_temp_c: Some(temps.1),
        }
    }

    fn zone(name: &str) -> anyhow::Result<TimeZone> {
        Ok(TimeZone::get(name)?)
    }

    #[test]
    fn a_run_split_at_midnight_adds_up_to_its_whole_seconds() -> anyhow::Result<()> {
        // An hour and a bit, started and read at instants with fractions, crossing midnight.
        let runs = [run(System::Heat, "2026-12-02T23:16:04.700Z", None, (19.0, 19.0))];
        let now = ts("2026-12-03T00:16:04.500Z");
        let stats = daily_stats(&runs, &[System::Heat], &TimeZone::UTC, now, 2)?;
        let total: u64 = stats.iter().map(|d| d.runtime_s).sum();
        assert_eq!(total, 3600, "{stats:?}");
        Ok(())
    }

    #[test]
    fn runs_are_split_at_local_midnight_and_an_open_run_counts_until_now() -> anyhow::Result<()> {
        let tz = zone("Europe/Berlin")?; // UTC+1 in January
        let runs = [
            // 23:30 to 00:30 local: half an hour on each day; counts as a cycle of the first.
            run(System::Heat, "2026-01-10T22:30:00Z", Some("2026-01-10T23:30:00Z"), (19.0, 20.0)),
            // 06:00 to 06:05 local: too short for the rate.
            run(System::Heat, "2026-01-11T05:00:00Z", Some("2026-01-11T05:05:00Z"), (19.0, 25.0)),
            // Open since 11:00 local; now is 12:00 local.
            run(System::Heat, "2026-01-11T10:00:00Z", None, (19.0, 19.0)),
        ];
        let now = ts("2026-01-11T11:00:00Z");
        let stats = daily_stats(&runs, &[System::Heat], &tz, now, 2)?;
        assert_eq!(stats.len(), 2);
        let (d1, d2) = (&stats[0], &stats[1]);
        assert_eq!((d1.date.as_str(), d1.runtime_s, d1.cycles), ("2026-01-10", 1800, 1));
        assert!((d1.duty_cycle - 1800.0 / 86_400.0).abs() < 1e-9);
        assert!((d1.cycles_per_hour - 1.0 / 24.0).abs() < 1e-9);
        // One hour of run, +1 °C: 1 °C/h.
        assert_eq!(d1.rate_c_per_h, Some(1.0));
        // Today: 30 min + 5 min + 1 h open, over the 12 elapsed hours.
        assert_eq!((d2.date.as_str(), d2.runtime_s, d2.cycles), ("2026-01-11", 5700, 2));
        assert!((d2.duty_cycle - 5700.0 / 43_200.0).abs() < 1e-9);
        assert!((d2.cycles_per_hour - 2.0 / 12.0).abs() < 1e-9);
        assert_eq!(d2.rate_c_per_h, None);
        Ok(())
    }

    #[test]
    fn dst_days_are_23_and_25_hours_long() -> anyhow::Result<()> {
        let tz = zone("Europe/Berlin")?;
        // Clocks go forward on 2026-03-29 (23 h) and back on 2026-10-25 (25 h). A cool run
        // covering each whole day has a duty cycle of exactly 1 and runs 23 h / 25 h.
        for (date, start, end, now, hours) in [
            (
                "2026-03-29",
                "2026-03-28T23:00:00Z",
                "2026-03-29T22:00:00Z",
                "2026-03-30T12:00:00Z",
                23,
            ),
            (
                "2026-10-25",
                "2026-10-24T22:00:00Z",
                "2026-10-25T23:00:00Z",
                "2026-10-26T12:00:00Z",
                25,
            ),
        ] {
            let runs = [
                run(System::Cool, "2026-03-01T00:00:00Z", Some(start), (25.0, 24.0)),
                run(System::Cool, start, Some(end), (26.0, 26.0 - hours as f64 * 0.5)),
            ];
            let stats = daily_stats(&runs, &[System::Cool], &tz, ts(now), 2)?;
            let day = &stats[0];
            assert_eq!(day.date, date);
            assert_eq!(day.runtime_s, hours * 3600, "{date}");
            assert_eq!(day.cycles, 1, "{date}");
            assert!((day.duty_cycle - 1.0).abs() < 1e-12, "{date}: {}", day.duty_cycle);
            // Fell 0.5 °C per hour.
            assert!(day.rate_c_per_h.is_some_and(|r| (r - 0.5).abs() < 1e-9), "{date}");
            assert!((day.cycles_per_hour - 1.0 / hours as f64).abs() < 1e-12, "{date}");
            // The next day starts at local midnight: nothing ran.
            assert_eq!((stats[1].runtime_s, stats[1].cycles), (0, 0), "{date}");
        }
        Ok(())
    }

    #[test]
    fn periods_are_on_the_local_clock_and_split_runs() -> anyhow::Result<()> {
        let runs = [
            // 09:50 to 10:20, and one open since 10:35; now is 10:37.
            run(System::Heat, "2026-01-11T09:50:00Z", Some("2026-01-11T10:20:00Z"), (19.0, 20.0)),
            run(System::Heat, "2026-01-11T10:35:00Z", None, (19.0, 19.0)),
        ];
        let now = ts("2026-01-11T10:37:00Z");
        let stats = period_stats(&runs, &[System::Heat], &TimeZone::UTC, now, 1, 15)?;
        let got: Vec<(String, u64, u32)> =
            stats.iter().map(|s| (s.start.to_string(), s.runtime_s, s.cycles)).collect();
        let want = [
            ("2026-01-11T09:45:00Z", 600, 1),
            ("2026-01-11T10:00:00Z", 900, 0),
            ("2026-01-11T10:15:00Z", 300, 0),
            ("2026-01-11T10:30:00Z", 120, 1),
        ];
        let want: Vec<(String, u64, u32)> =
            want.iter().map(|&(t, r, c)| (t.to_owned(), r, c)).collect();
        assert_eq!(got, want);
        // The current period: 2 of its 7 elapsed minutes; the 30 min run gives a rate.
        assert!((stats[3].duty_cycle - 2.0 / 7.0).abs() < 1e-9);
        assert_eq!(stats[3].end, ts("2026-01-11T10:45:00Z"));
        assert_eq!(stats[0].rate_c_per_h, Some(2.0));

        // Half-hour offset: hours start at the local hour (UTC :30).
        let kolkata = zone("Asia/Kolkata")?;
        let stats =
            period_stats(&[], &[System::Heat], &kolkata, ts("2026-01-11T05:07:00Z"), 2, 60)?;
        let starts: Vec<String> = stats.iter().map(|s| s.start.to_string()).collect();
        assert_eq!(starts, ["2026-01-11T03:30:00Z", "2026-01-11T04:30:00Z"]);

        // Spring forward in Berlin (02:00 CET → 03:00 CEST): every period an hour of real time.
        let berlin = zone("Europe/Berlin")?;
        let stats = period_stats(&[], &[System::Heat], &berlin, ts("2026-03-29T01:30:00Z"), 3, 60)?;
        let spans: Vec<(String, String)> =
            stats.iter().map(|s| (s.start.to_string(), s.end.to_string())).collect();
        let want = [
            ("2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z"),
            ("2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"),
            ("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"),
        ];
        let want: Vec<(String, String)> =
            want.iter().map(|&(a, b)| (a.to_owned(), b.to_owned())).collect();
        assert_eq!(spans, want);
        Ok(())
    }

    #[test]
    fn systems_that_ran_get_zero_days_and_others_none() -> anyhow::Result<()> {
        let tz = TimeZone::UTC;
        let runs =
            [run(System::Heat, "2026-01-01T10:00:00Z", Some("2026-01-01T11:00:00Z"), (18.0, 17.0))];
        let now = ts("2026-01-03T12:00:00Z");
        let stats = daily_stats(&runs, &[System::Heat], &tz, now, 3)?;
        let got: Vec<(&str, u64, u32)> =
            stats.iter().map(|s| (s.date.as_str(), s.runtime_s, s.cycles)).collect();
        assert_eq!(got, [("2026-01-01", 3600, 1), ("2026-01-02", 0, 0), ("2026-01-03", 0, 0)]);
        // The heat lost ground: a negative rise.
        assert_eq!(stats[0].rate_c_per_h, Some(-1.0));
        assert_eq!((stats[1].duty_cycle, stats[1].cycles_per_hour), (0.0, 0.0));
        assert!(daily_stats(&runs, &[], &tz, now, 3)?.is_empty());
        Ok(())
    }
}
