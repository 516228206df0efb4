//! Readings history, runs and analytics over the API.

use hearth_proto::control::System;

use super::*;

const SENSOR: &str = "28-0316a2797bff";

/// A backlog of one sensor's readings `(minute index from 2026-01-01T00:00Z, value)`.
fn backlog(readings: &[(i64, Option<f64>)]) -> R<String> {
    let base: Timestamp = "2026-01-01T00:00:00Z".parse()?;
    let updates: Vec<Value> = readings
        .iter()
        .map(|&(minute, value)| {
            let at = base.checked_add(jiff::SignedDuration::from_mins(minute))?;
            Ok(json!({"host_id": "pi", "sensors": {SENSOR: {
                "type": "DS18B20", "value": value, "timestamp": at.to_string()}}}))
        })
        .collect::<R<_>>()?;
    Ok(json!({"host_id": "pi", "updates": updates}).to_string())
}

/// Two days of 1-minute readings: 20 °C + 0.125 °C per minute into each half hour, the last
/// minute of every half hour failed (null).
fn two_days() -> Vec<(i64, Option<f64>)> {
    (0..2 * 1440).map(|m| (m, (m % 30 != 29).then_some(20.0 + (m % 30) as f64 * 0.125))).collect()
}

async fn load(f: &Fixture, readings: &[(i64, Option<f64>)]) -> R {
    let cred = f.agent("pi");
    for chunk in readings.chunks(1000) {
        let got = f.call("PUT", "/v1/sensors/backlog", Some(&cred), Some(&backlog(chunk)?)).await?;
        anyhow::ensure!(got.0 == StatusCode::CREATED, "backlog: {got:?}");
    }
    Ok(())
}

fn points(page: &Value) -> Vec<Value> {
    page["points"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn readings_are_downsampled_from_rollups_and_replays_count_once() -> R {
    let f = fixture().await?;
    let data = two_days();
    load(&f, &data).await?;
    // The same backlog again (an agent that did not see the answer): stored once.
    load(&f, &data[..1000]).await?;

    let day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    // Half-hour buckets from the minute rollups: 29 readings each, the same in every bucket.
    let page = f.get(&format!("/v1/sensors/{SENSOR}/readings?{day}&max_points=48")).await?;
    assert_eq!(page["bucket_s"], 1800, "{page}");
    assert_eq!(
        (page["from"].as_str(), page["to"].as_str()),
        (Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z"))
    );
    let pts = points(&page);
    assert_eq!(pts.len(), 48);
    assert_eq!(pts[1]["at"], "2026-01-01T00:30:00Z");
    for p in &pts {
        assert_eq!((p["count"].as_u64(), p["min"].as_f64()), (Some(29), Some(20.0)), "{p}");
        // Mean of 0..=28 steps of 0.125: 14 steps.
        assert_eq!((p["mean"].as_f64(), p["max"].as_f64()), (Some(21.75), Some(23.5)), "{p}");
    }

    // Two days into two points: whole days from the hour rollups.
    let both = "from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z";
    let page = f.get(&format!("/v1/sensors/{SENSOR}/readings?{both}&max_points=2")).await?;
    assert_eq!(page["bucket_s"], 86_400, "{page}");
    let pts = points(&page);
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[0]["count"], 48 * 29);
    assert_eq!(pts[1]["at"], "2026-01-02T00:00:00Z");

    // An hour holds 60 readings, under the default 500: raw, the failed ones with nulls.
    let hour = "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z";
    let page = f.get(&format!("/v1/sensors/{SENSOR}/readings?{hour}")).await?;
    assert_eq!(page["bucket_s"], 0);
    let pts = points(&page);
    assert_eq!(pts.len(), 60);
    assert_eq!(
        pts[3],
        json!({"at": "2026-01-01T00:03:00Z",
            "min": 20.375, "mean": 20.375, "max": 20.375, "count": 1})
    );
    assert_eq!(
        pts[29],
        json!({"at": "2026-01-01T00:29:00Z", "min": null, "mean": null, "max": null, "count": 0})
    );

    // An unaligned range read from the minute rollups is served widened to whole minutes.
    let odd = "from=2026-01-01T00:00:30Z&to=2026-01-01T01:00:30Z";
    let page = f.get(&format!("/v1/sensors/{SENSOR}/readings?{odd}&max_points=20")).await?;
    assert_eq!(page["bucket_s"], 240, "{page}");
    assert_eq!(
        (page["from"].as_str(), page["to"].as_str()),
        (Some("2026-01-01T00:00:00Z"), Some("2026-01-01T01:01:00Z"))
    );
    assert_eq!(points(&page).len(), 16);
    Ok(())
}

#[tokio::test]
async fn readings_queries_are_checked() -> R {
    let f = fixture().await?;
    load(&f, &two_days()[..10]).await?;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let url = |q: &str| format!("/v1/sensors/{SENSOR}/readings?{q}");
    let cases = [
        (url("max_points=1"), "max_points must be 2 to 10000, got 1"),
        (url("max_points=10001"), "max_points must be 2 to 10000, got 10001"),
        (url("max_points=-3"), "max_points"),
        (url("max_points=many"), "max_points"),
        (url("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), "must be before to"),
        (url("from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"), "must be before to"),
        (url("from=2010-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"), "at most 3653 days apart"),
        (url("from=yesterday"), "from"),
    ];
    for (path, text) in cases {
        let got = f.call("GET", &path, None, None).await?;
        assert_error(&got, unprocessable, "invalid_field", text);
    }
    let got = f.call("GET", "/v1/sensors/28-nope/readings", None, None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "28-nope");
    // Ten years exactly is fine; the default range (the last day) is empty here.
    let page =
        f.get(&url("from=2016-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&max_points=2")).await?;
    assert_eq!(points(&page).len(), 0, "{page}");
    let page = f.get(&url("")).await?;
    assert_eq!(page["sensor_id"], SENSOR);
    assert_eq!(points(&page).len(), 0);
    Ok(())
}

#[tokio::test]
async fn runs_and_daily_analytics_are_served() -> R {
    let f = fixture().await?;
    let (_, empty) = f.call("GET", "/v1/analytics/daily", None, None).await?;
    assert_eq!(empty, json!([]), "no system ever ran: no rows");
    assert_eq!(f.get("/v1/runs").await?, json!([]));

    // The control loop records runs; no route does, so write them through a second handle on
    // the engine's database.
    let db = database_url(f._dir.path())?;
    let store = hearth_engine::bench::Store::open(&db).await?;
    let t = |s: &str| s.parse::<Timestamp>();
    store.start_run(System::Cool, t("2026-01-01T10:00:00Z")?, Some(26.0)).await?;
    store.end_run(System::Cool, t("2026-01-01T11:00:00Z")?, Some(25.0)).await?;
    let hour_ago = Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(1))?;
    store.start_run(System::Heat, hour_ago, Some(19.0)).await?;
    store.close().await;

    let runs = f.get("/v1/runs?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z").await?;
    assert_eq!(
        runs,
        json!([{"system": "cool", "start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00Z",
            "start_temp_c": 26.0, "end_temp_c": 25.0}])
    );
    // The last 7 days: the heat run still going.
    let recent = f.get("/v1/runs").await?;
    assert_eq!(recent.as_array().map(Vec::len), Some(1), "{recent}");
    assert_eq!((recent[0]["system"].as_str(), &recent[0]["end"]), (Some("heat"), &Value::Null));

    // The open heat run (an hour, split over yesterday and today if it crossed midnight), and
    // zero rows for the cool, which ran long ago.
    let days = f.get("/v1/analytics/daily?days=2").await?;
    let rows = days.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 4, "{days}");
    let heat: Vec<&Value> = rows.iter().filter(|r| r["system"] == "heat").collect();
    let runtime: u64 = heat.iter().filter_map(|r| r["runtime_s"].as_u64()).sum();
    let cycles: u64 = heat.iter().filter_map(|r| r["cycles"].as_u64()).sum();
    assert!((3600..3700).contains(&runtime) && cycles == 1, "{days}");
    assert!(rows.iter().filter(|r| r["system"] == "cool").all(|r| r["runtime_s"] == 0));
    assert!(rows[0]["date"].as_str() < rows[3]["date"].as_str(), "oldest day first");
    assert_eq!(f.get("/v1/analytics/daily").await?.as_array().map(Vec::len), Some(14));

    // The same hour of heat per quarter hour over the last two hours: 8 periods per system,
    // the open run's whole hour in them, its start in one of them.
    let quarters = f.get("/v1/analytics/periods?hours=2&period_min=15").await?;
    let rows = quarters.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 16, "{quarters}");
    let heat: Vec<&Value> = rows.iter().filter(|r| r["system"] == "heat").collect();
    let runtime: u64 = heat.iter().filter_map(|r| r["runtime_s"].as_u64()).sum();
    let cycles: u64 = heat.iter().filter_map(|r| r["cycles"].as_u64()).sum();
    // Whole seconds per period: up to a second lost at each of the five edges.
    assert!((3595..3700).contains(&runtime) && cycles == 1, "{quarters}");
    assert_eq!(heat[0]["end"], heat[1]["start"], "periods follow each other");
    // By default: per hour over the last day.
    assert_eq!(f.get("/v1/analytics/periods").await?.as_array().map(Vec::len), Some(48));

    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for (path, text) in [
        ("/v1/analytics/daily?days=0", "days must be 1 to 366, got 0"),
        ("/v1/analytics/daily?days=367", "days must be 1 to 366, got 367"),
        ("/v1/analytics/daily?days=week", "days"),
        ("/v1/analytics/periods?hours=0", "hours must be 1 to 168, got 0"),
        ("/v1/analytics/periods?hours=169", "hours must be 1 to 168, got 169"),
        ("/v1/analytics/periods?period_min=7", "period_min must be one of 5, 10, 15, 20, 30, 60"),
        ("/v1/analytics/periods?period_min=0", "period_min must be one of"),
        ("/v1/analytics/periods?hours=a", "hours"),
        ("/v1/runs?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "must be before to"),
        ("/v1/runs?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "3653 days"),
        ("/v1/runs?to=soon", "to"),
    ] {
        let got = f.call("GET", path, None, None).await?;
        assert_error(&got, unprocessable, "invalid_field", text);
    }
    Ok(())
}

/// The value of an unlabelled or labelled sample in `/metrics`, by its exact name and labels.
async fn metric(f: &Fixture, sample: &str) -> R<Option<f64>> {
    let (status, text) = f.call("GET", "/metrics", None, None).await?;
    anyhow::ensure!(status == StatusCode::OK, "/metrics: {status}");
    let text = text.as_str().unwrap_or_default().to_owned();
    Ok(text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok()))
}

/// Retention, as the engine runs it: readings past `--keep-raw-days` are deleted by the task,
/// counted in `/metrics`, and charts over those days come from the rollups.
#[tokio::test]
async fn retention_deletes_old_readings_and_charts_still_answer() -> R {
    let f = fixture_with(&["--keep-raw-days", "30", "--keep-minutes-days", "0"]).await?;
    // Two days of January 2026: older than 30 days by now.
    load(&f, &two_days()).await?;
    let day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let hour = "from=2026-01-01T10:00:00Z&to=2026-01-01T11:00:00Z";
    let fine = f.get(&format!("/v1/sensors/{SENSOR}/readings?{hour}&max_points=500")).await?;
    assert_eq!((fine["bucket_s"].as_i64(), points(&fine).len()), (Some(0), 60), "{fine}");
    let half_hours = f.get(&format!("/v1/sensors/{SENSOR}/readings?{day}&max_points=48")).await?;
    assert!(metric(&f, "hearth_oldest_reading_age_seconds").await?.is_some());

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let retention = f.engine.spawn_retention(stopped);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let deleted = "hearth_retention_deleted_rows_total{table=\"readings\"}";
    while metric(&f, deleted).await? != Some(2880.0) {
        anyhow::ensure!(std::time::Instant::now() < deadline, "retention deleted nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let minutes = "hearth_retention_deleted_rows_total{table=\"readings_minute\"}";
    assert_eq!(metric(&f, minutes).await?, Some(0.0));
    assert_eq!(metric(&f, "hearth_oldest_reading_age_seconds").await?, None, "none left");
    // The hour that was 60 raw points: 60 minute buckets, the same values.
    let page = f.get(&format!("/v1/sensors/{SENSOR}/readings?{hour}&max_points=500")).await?;
    assert_eq!(page["bucket_s"], 60, "{page}");
    let values = |p: &Value| points(p).iter().map(|x| x["mean"].clone()).collect::<Vec<_>>();
    assert_eq!(values(&page), values(&fine));
    // A chart from the rollups already is unchanged.
    let again = f.get(&format!("/v1/sensors/{SENSOR}/readings?{day}&max_points=48")).await?;
    assert_eq!(again, half_hours);
    stop.send(true)?;
    retention.await?;
    Ok(())
}

#[tokio::test]
async fn retention_settings_are_checked_at_start() -> R {
    for (args, wants) in [
        (["--keep-raw-days", "400", "--keep-minutes-days", "30"], "keep_minutes_days (30)"),
        (["--keep-raw-days", "0", "--keep-minutes-days", "30"], "keep_minutes_days (30)"),
        (["--keep-raw-days", "40000", "--keep-minutes-days", "0"], "keep_raw_days must be"),
    ] {
        let Err(e) = fixture_with(&args).await else {
            anyhow::bail!("{args:?} was accepted");
        };
        assert!(e.to_string().contains(wants), "{args:?}: {e}");
    }
    Ok(())
}
