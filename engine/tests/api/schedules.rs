//! Schedules, overrides and the timeline over the API.

use super::*;

/// An engine reading its schedule in Europe/Berlin.
async fn berlin() -> R<Fixture> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), &["--time-zone", "Europe/Berlin"])?).await?;
    Ok(Fixture { engine, _dir: dir })
}

fn mornings() -> Value {
    json!({"name": "Weekday mornings",
        "when": {"type": "weekly", "days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "start": "06:30", "end": "08:30"},
        "heat_c": 21.0, "sensors": [{"sensor_id": "28-0000072a1b3c"}]})
}

#[tokio::test]
async fn rules_round_trip() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    assert_eq!(f.get("/v1/schedules").await?, json!([]));

    let (status, created) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&mornings().to_string())).await?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap_or_default();
    assert_eq!(created["layer"], "day");
    assert_eq!(created["enabled"], true, "defaults filled in");
    assert_eq!(created["sensors"][0]["weight"], 1.0);
    assert_eq!(created["when"]["start"], "06:30");
    assert_eq!(f.get("/v1/schedules").await?, json!([created.clone()]));
    assert_eq!(f.get(&format!("/v1/schedules/{id}")).await?, created);

    // PUT replaces (a client may send back the `id` and `layer` it got); all seven days make
    // it an every_day rule.
    let mut changed = created.clone();
    changed["when"]["days"] =
        json!(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]);
    changed["heat_c"] = json!(20.5);
    let path = format!("/v1/schedules/{id}");
    let (status, replaced) = f.call("PUT", &path, Some(&admin), Some(&changed.to_string())).await?;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["layer"], "every_day");
    assert_eq!(replaced["heat_c"], 20.5);
    assert_eq!(f.get(&path).await?, replaced);

    // The default target.
    assert_eq!(
        f.get("/v1/schedule/default").await?,
        json!({"heat_c": 20.0, "cool_c": 26.0, "sensors": []})
    );
    let d = json!({"heat_c": 19.0, "cool_c": 25.0, "sensors": [{"sensor_id": "a", "weight": 2}]});
    let got = f.call("PUT", "/v1/schedule/default", Some(&admin), Some(&d.to_string())).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(f.get("/v1/schedule/default").await?, got.1);
    assert_eq!(got.1["sensors"][0]["weight"], 2.0);

    let (status, _) = f.call("DELETE", &path, Some(&admin), None).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(f.get("/v1/schedules").await?, json!([]));
    Ok(())
}

#[tokio::test]
async fn the_timeline_shows_the_winner_and_what_it_beat() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    let all_day = json!({"name": "Background", "when": {"type": "weekly", "days":
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        "start": "06:00", "end": "10:00"}, "heat_c": 19.0});
    let (_, background) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&all_day.to_string())).await?;
    let (_, block) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&mornings().to_string())).await?;

    // Wednesday 2026-01-14, CET (UTC+1).
    let t = f.get("/v1/schedule/timeline?from=2026-01-14T00:00:00Z&hours=12").await?;
    assert_eq!(t["time_zone"], "Europe/Berlin");
    assert_eq!(t["from"], "2026-01-14T00:00:00Z");
    assert_eq!(t["to"], "2026-01-14T12:00:00Z");
    let segs = t["segments"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(&str, &str, Value, f64)> = segs
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap_or_default(),
                s["rule"]["layer"].as_str().unwrap_or_default(),
                s["rule"]["id"].clone(),
                s["heat_c"].as_f64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("2026-01-14T00:00:00Z", "default", Value::Null, 20.0),
            ("2026-01-14T05:00:00Z", "every_day", background["id"].clone(), 19.0),
            ("2026-01-14T05:30:00Z", "day", block["id"].clone(), 21.0),
            ("2026-01-14T07:30:00Z", "every_day", background["id"].clone(), 19.0),
            ("2026-01-14T09:00:00Z", "default", Value::Null, 20.0),
        ]
    );
    let won = &segs[2];
    assert_eq!(won["start_local"], "2026-01-14T06:30:00+01:00[Europe/Berlin]");
    assert_eq!(won["end"], "2026-01-14T07:30:00Z");
    assert_eq!(won["rule"]["name"], "Weekday mornings");
    assert_eq!(won["cool_c"], 26.0, "from the default target");
    assert_eq!(won["sensors"], json!([{"sensor_id": "28-0000072a1b3c", "weight": 1.0}]));
    assert_eq!(
        won["beaten"],
        json!([
            {"layer": "every_day", "id": background["id"], "name": "Background"},
            {"layer": "default", "id": null, "name": "default"},
        ])
    );
    assert_eq!(segs[0]["beaten"], json!([]));

    for bad in ["hours=0", "hours=337", "hours=x", "from=yesterday"] {
        let got = f.call("GET", &format!("/v1/schedule/timeline?{bad}"), None, None).await?;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", got.1);
    }
    let t = f.get("/v1/schedule/timeline").await?;
    assert_eq!(t["segments"].as_array().map(|s| !s.is_empty()), Some(true));
    Ok(())
}

#[tokio::test]
async fn an_override_wins_until_the_schedule_is_resumed() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    let now_body = json!({"heat_c": 22, "hold": {"type": "next_change"}}).to_string();
    // Nothing ever changes without rules: "until the next change" would be forever.
    let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&now_body)).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "no schedule change");

    // Two rules alternating every 12 hours.
    let every = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    for (name, start, end, heat) in
        [("day", "07:00", "19:00", 20.0), ("night", "19:00", "07:00", 17.0)]
    {
        let r = json!({"name": name, "when": {"type": "weekly", "days": every, "start": start,
            "end": end}, "heat_c": heat});
        let got = f.call("POST", "/v1/schedules", Some(&admin), Some(&r.to_string())).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    }
    let before = f.get("/v1/schedule/timeline?hours=24").await?;
    let scheduled = before["segments"][0]["rule"].clone();

    let (status, o) = f.call("POST", "/v1/overrides", Some(&admin), Some(&now_body)).await?;
    assert_eq!(status, StatusCode::CREATED, "{o}");
    assert_eq!(o["hold"], json!({"type": "next_change"}));
    // It holds until the scheduled rule's segment ends.
    let next = before["segments"][0]["end"].clone();
    assert_eq!(o["end"], next);
    assert_eq!(f.get("/v1/overrides").await?, json!([o.clone()]));

    let t = f.get("/v1/schedule/timeline?hours=1").await?;
    let now = &t["segments"][0];
    assert_eq!(now["rule"], json!({"layer": "override", "id": o["id"], "name": "override"}));
    assert_eq!(now["heat_c"], 22.0);
    assert_eq!(now["beaten"][0], scheduled);

    // Resume: the override in force ends, a future one stays.
    let future =
        json!({"heat_c": 18, "start": "2099-01-01T00:00:00Z", "hold": {"type": "indefinite"}});
    let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&future.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "at most 366 days ahead");
    let soon = Timestamp::now().checked_add(jiff::SignedDuration::from_hours(48))?;
    let future = json!({"heat_c": 18, "start": soon, "hold": {"type": "for", "minutes": 60}});
    let (status, fut) =
        f.call("POST", "/v1/overrides", Some(&admin), Some(&future.to_string())).await?;
    assert_eq!(status, StatusCode::CREATED, "{fut}");
    let got = f.call("DELETE", "/v1/overrides", Some(&admin), None).await?;
    assert_eq!(got, (StatusCode::OK, json!({"ended": 1})));
    let t = f.get("/v1/schedule/timeline?hours=1").await?;
    assert_eq!(t["segments"][0]["rule"], scheduled);
    assert_eq!(f.get("/v1/overrides").await?, json!([fut.clone()]));

    let path = format!("/v1/overrides/{}", fut["id"]);
    assert_eq!(f.call("DELETE", &path, Some(&admin), None).await?.0, StatusCode::NO_CONTENT);
    assert_eq!(f.get("/v1/overrides").await?, json!([]));
    let got = f.call("DELETE", &path, Some(&admin), None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "no override");
    Ok(())
}

/// A weekly rule on the Berlin day and time (whole minutes) about `min` minutes from now,
/// lasting an hour, and the instant it starts.
fn block_in(name: &str, min: i64, heat: f64) -> R<(Value, Timestamp)> {
    let tz = jiff::tz::TimeZone::get("Europe/Berlin")?;
    let t = Timestamp::now().checked_add(jiff::SignedDuration::from_mins(min))?;
    let z = t.to_zoned(tz).with().second(0).subsec_nanosecond(0).build()?;
    let end = z.checked_add(jiff::SignedDuration::from_mins(60))?;
    let day = format!("{:?}", z.weekday()).to_lowercase();
    let rule = json!({"name": name, "when": {"type": "weekly", "days": [day],
        "start": format!("{:02}:{:02}", z.hour(), z.minute()),
        "end": format!("{:02}:{:02}", end.hour(), end.minute())}, "heat_c": heat});
    Ok((rule, z.timestamp()))
}

#[tokio::test]
async fn a_hold_until_the_next_change_follows_later_schedule_edits() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    let (evening, evening_at) = block_in("Evening", 180, 21.0)?;
    let got = f.call("POST", "/v1/schedules", Some(&admin), Some(&evening.to_string())).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let plus = json!({"heat_c": 23, "hold": {"type": "next_change"}}).to_string();
    let (status, o) = f.call("POST", "/v1/overrides", Some(&admin), Some(&plus)).await?;
    assert_eq!(status, StatusCode::CREATED, "{o}");
    assert_eq!(o["end"], json!(evening_at), "until Evening starts");
    let end = || async { R::Ok(f.get("/v1/overrides").await?[0]["end"].clone()) };

    // A block added after the press, before Evening: the hold now ends when it starts, and it
    // wins from then on.
    let (later, later_at) = block_in("Later", 60, 19.0)?;
    let (status, added) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&later.to_string())).await?;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(end().await?, json!(later_at));
    let t = f.get(&format!("/v1/schedule/timeline?from={later_at}&hours=1")).await?;
    assert_eq!(t["segments"][0]["rule"]["name"], "Later", "{t}");

    // Moved later, the hold follows; deleted, the hold is back to Evening.
    let (moved, moved_at) = block_in("Later", 120, 19.0)?;
    let path = format!("/v1/schedules/{}", added["id"]);
    let got = f.call("PUT", &path, Some(&admin), Some(&moved.to_string())).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(end().await?, json!(moved_at));
    assert_eq!(f.call("DELETE", &path, Some(&admin), None).await?.0, StatusCode::NO_CONTENT);
    assert_eq!(end().await?, json!(evening_at));
    // The rest of the override is as it was made.
    let now = &f.get("/v1/overrides").await?[0];
    assert_eq!((&now["id"], &now["heat_c"], &now["hold"]), (&o["id"], &o["heat_c"], &o["hold"]));
    Ok(())
}

/// Everything GET shows of the schedule, to compare before and after a refused request.
async fn state(f: &Fixture) -> R<Value> {
    Ok(json!([
        f.get("/v1/schedules").await?,
        f.get("/v1/schedule/default").await?,
        f.get("/v1/overrides").await?,
    ]))
}

#[tokio::test]
async fn every_change_needs_the_admin_credential() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    let (_, rule) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&mornings().to_string())).await?;
    let o = json!({"heat_c": 22, "hold": {"type": "indefinite"}}).to_string();
    let (_, ovr) = f.call("POST", "/v1/overrides", Some(&admin), Some(&o)).await?;
    let rule_path = format!("/v1/schedules/{}", rule["id"]);
    let ovr_path = format!("/v1/overrides/{}", ovr["id"]);
    let rule_body = mornings().to_string();
    let default = json!({"heat_c": 15, "cool_c": 30}).to_string();
    let routes: Vec<(&str, &str, Option<&str>)> = vec![
        ("POST", "/v1/schedules", Some(&rule_body)),
        ("PUT", &rule_path, Some(&rule_body)),
        ("DELETE", &rule_path, None),
        ("PUT", "/v1/schedule/default", Some(&default)),
        ("POST", "/v1/overrides", Some(&o)),
        ("DELETE", &ovr_path, None),
        ("DELETE", "/v1/overrides", None),
    ];
    let before = state(&f).await?;
    let agent = f.agent("pi");
    for (method, path, body) in routes {
        let got = f.call(method, path, None, body).await?;
        assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", "credential required");
        let got = f.call(method, path, Some(&agent), body).await?;
        assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "admin credential");
        assert_eq!(state(&f).await?, before, "{method} {path} changed nothing");
    }
    Ok(())
}

#[tokio::test]
async fn bad_rules_get_422_with_the_field_and_store_nothing() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    let with = |key: &str, v: Value| {
        let mut r = mornings();
        r[key] = v;
        r
    };
    let when = |v: Value| with("when", v);
    let weekly = |days: Value, start: &str, end: &str| {
        when(json!({"type": "weekly", "days": days, "start": start, "end": end}))
    };
    let no = |key: &str| {
        let mut r = mornings();
        r.as_object_mut().map(|o| o.remove(key));
        r
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!([1]), "invalid_field", "body must be a JSON object"),
        (no("name"), "missing_field", "name field is missing"),
        (with("name", json!("")), "invalid_field", "name field must be 1 to 80 characters"),
        (with("name", json!(7)), "invalid_field", "name field must be a string"),
        (no("when"), "missing_field", "when field is missing"),
        (
            with("heat_c", json!(99)),
            "invalid_field",
            "heat_c field must be between 5 and 30 °C, got 99",
        ),
        (with("heat_c", json!("warm")), "invalid_field", "heat_c field must be a number"),
        (no("heat_c"), "invalid_field", "heat_c or cool_c field is required"),
        (
            with("cool_c", json!(21.2)),
            "invalid_field",
            "cool_c field must be at least heat_c + 0.5",
        ),
        (with("enabled", json!("yes")), "invalid_field", "enabled field must be true or false"),
        (with("heat", json!(21)), "invalid_field", "heat field is unknown"),
        (when(json!({"days": ["monday"]})), "missing_field", "when.type field is missing"),
        (
            when(json!({"type": "weekley"})),
            "invalid_field",
            "when.type field must be one of weekly, cron",
        ),
        (when(json!("weekly")), "invalid_field", "when field must be an object"),
        (
            weekly(json!([]), "06:00", "08:00"),
            "invalid_field",
            "when.days field must list at least one day",
        ),
        (
            weekly(json!(["monday", "mon"]), "06:00", "08:00"),
            "invalid_field",
            "when.days[1] field must be a day of the week",
        ),
        (
            weekly(json!("monday"), "06:00", "08:00"),
            "invalid_field",
            "when.days field must be an array",
        ),
        (
            weekly(json!(["monday"]), "25:00", "08:00"),
            "invalid_field",
            "when.start field must be a time HH:MM (00:00 to 23:59), got \"25:00\"",
        ),
        (
            when(json!({"type": "weekly", "days": ["monday"], "start": "06:00"})),
            "missing_field",
            "when.end field is missing",
        ),
        (
            when(
                json!({"type": "weekly", "days": ["monday"], "start": "06:00", "end": "07:00", "expr": "x"}),
            ),
            "invalid_field",
            "when.expr field is unknown",
        ),
        (
            when(json!({"type": "cron", "expr": "0 30 6 * * *", "duration_min": 60})),
            "invalid_field",
            "when.expr field must have five fields",
        ),
        (
            when(json!({"type": "cron", "expr": "0 25 * * *", "duration_min": 60})),
            "invalid_field",
            "when.expr field is not a valid cron expression",
        ),
        (
            when(json!({"type": "cron", "expr": "0 6 * * *", "duration_min": -5})),
            "invalid_field",
            "when.duration_min field must be a whole number",
        ),
        (
            when(json!({"type": "cron", "expr": "0 6 * * *", "duration_min": 20000})),
            "invalid_field",
            "when.duration_min field must be between 1 and 10080",
        ),
        (
            when(json!({"type": "exception", "date": "2026-13-01"})),
            "invalid_field",
            "when.date field must be a date YYYY-MM-DD",
        ),
        (
            when(
                json!({"type": "vacation", "start": "2026-12-24T10:00", "end": "2026-12-20T10:00"}),
            ),
            "invalid_field",
            "when.end field must be after when.start",
        ),
        (
            with("sensors", json!([{"sensor_id": "a", "weight": 0}])),
            "invalid_field",
            "sensors[0].weight field must be greater than 0",
        ),
        (
            with("sensors", json!([{"sensor_id": "a"}, {"sensor_id": "a"}])),
            "invalid_field",
            "sensors[1].sensor_id field names \"a\" a second time",
        ),
        (
            with("sensors", json!([{"weight": 1}])),
            "missing_field",
            "sensors[0].sensor_id field is missing",
        ),
    ];
    for (body, code, msg) in cases {
        let got = f.call("POST", "/v1/schedules", Some(&admin), Some(&body.to_string())).await?;
        assert_error(&got, unprocessable, code, msg);
    }
    let got = f.call("POST", "/v1/schedules", Some(&admin), Some("{not json")).await?;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed_json", "not valid JSON");
    assert_eq!(f.get("/v1/schedules").await?, json!([]));

    // The same checks guard PUT, the default target and overrides.
    let (_, rule) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&mornings().to_string())).await?;
    let path = format!("/v1/schedules/{}", rule["id"]);
    let bad = weekly(json!(["monday"]), "06:00", "24:01").to_string();
    let got = f.call("PUT", &path, Some(&admin), Some(&bad)).await?;
    assert_error(&got, unprocessable, "invalid_field", "when.end field must be a time");
    assert_eq!(f.get(&path).await?, rule);
    let got = f
        .call("PUT", "/v1/schedule/default", Some(&admin), Some(&json!({"heat_c": 20}).to_string()))
        .await?;
    assert_error(&got, unprocessable, "missing_field", "cool_c field is missing");
    let overrides: Vec<(Value, &str)> = vec![
        (json!({"heat_c": 22}), "hold field is missing"),
        (json!({"heat_c": 22, "hold": {"type": "for"}}), "hold.minutes field is missing"),
        (
            json!({"heat_c": 22, "hold": {"type": "for", "minutes": 0}}),
            "hold.minutes field must be between 1 and 43200",
        ),
        (
            json!({"heat_c": 22, "hold": {"type": "until", "at": "2020-01-01T00:00:00Z"}}),
            "hold.at field must be after the start",
        ),
        (json!({"heat_c": 22, "hold": {"type": "forever"}}), "hold.type field must be one of"),
        (json!({"hold": {"type": "indefinite"}}), "heat_c or cool_c field is required"),
        (
            json!({"heat_c": 22, "start": "soon", "hold": {"type": "indefinite"}}),
            "start field must be an RFC 3339 time",
        ),
    ];
    for (body, msg) in overrides {
        let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&body.to_string())).await?;
        assert_eq!(got.0, unprocessable, "{body}: {}", got.1);
        let err = got.1["error"].as_str().unwrap_or_default();
        assert!(err.contains(msg), "{err:?} lacks {msg:?}");
    }
    assert_eq!(f.get("/v1/overrides").await?, json!([]));
    assert_eq!(f.get("/v1/schedule/default").await?["heat_c"], 20.0);
    Ok(())
}

#[tokio::test]
async fn unknown_ids_are_404() -> R {
    let f = berlin().await?;
    let admin = f.admin();
    let body = mornings().to_string();
    for (method, path, body) in [
        ("GET", "/v1/schedules/999", None),
        ("GET", "/v1/schedules/abc", None),
        ("PUT", "/v1/schedules/999", Some(body.as_str())),
        ("DELETE", "/v1/schedules/999", None),
        ("DELETE", "/v1/overrides/999", None),
    ] {
        let got = f.call(method, path, Some(&admin), body).await?;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", "no ");
    }
    assert_eq!(f.get("/v1/schedules").await?, json!([]));
    Ok(())
}
