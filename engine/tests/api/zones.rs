//! Zones and plants over the API: configuring a house, every bad house refused naming its
//! problem with nothing changed, deleting a zone that still has a schedule, and the per-zone
//! routes beside the single-zone ones (unchanged for the default zone).

use super::*;

fn zone(name: &str, sensors: &[&str], valves: &[&str]) -> String {
    json!({"name": name, "sensors": sensors, "valves": valves}).to_string()
}

fn boiler(zones: &[&str]) -> Value {
    json!({"name": "Boiler", "kind": "heat", "heat_relay": "demo-relay/boiler", "zones": zones,
        "min_on_s": 180, "min_off_s": 300, "changeover_s": 600, "valve_delay_s": 60,
        "overrun_s": 120})
}

/// A house of two zones with valves, served by a boiler (and by the default plant, which every
/// new zone joins).
async fn two_zones(f: &Fixture) -> R {
    let admin = f.admin();
    for (id, sensor, valve) in [("living", "28-a1", "valve-1"), ("bedroom", "28-b1", "valve-2")] {
        let body = zone(&id.to_uppercase(), &[sensor], &[&format!("demo-relay/{valve}")]);
        let got = f.call("PUT", &format!("/v1/zones/{id}"), Some(&admin), Some(&body)).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    }
    let body = boiler(&["living", "bedroom"]).to_string();
    let got = f.call("PUT", "/v1/plants/boiler", Some(&admin), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    Ok(())
}

#[tokio::test]
async fn a_house_is_configured_and_read_back() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    // Every installation: the default zone (every sensor), the default plant (the heat and
    // cool outputs, protected by the control settings' times).
    let fresh = f.get("/v1/zones").await?;
    assert_eq!(
        fresh["zones"],
        json!([{"id": "house", "name": "House", "sensors": [], "valves": [], "heat_relay": null,
            "cool_relay": null, "default": true, "rules": 0, "overrides": 0}])
    );
    assert_eq!(
        fresh["plants"],
        json!([{"id": "house", "name": "Heating and cooling", "kind": "heat_cool",
            "heat_relay": "function:heat", "cool_relay": "function:cool", "zones": ["house"],
            "min_on_s": 180, "min_off_s": 180, "changeover_s": 300, "max_run_s": null,
            "valve_delay_s": 0, "overrun_s": 0, "min_calling_zones": 1, "bypass_zone": null}])
    );

    two_zones(&f).await?;
    let body = zone("Living room", &["28-a1", "28-a2"], &["demo-relay/valve-1"]);
    let (status, living) = f.call("PUT", "/v1/zones/living", Some(&admin), Some(&body)).await?;
    assert_eq!(status, StatusCode::OK, "replaced: {living}");
    assert_eq!(
        living,
        json!({"id": "living", "name": "Living room", "sensors": ["28-a1", "28-a2"],
            "valves": ["demo-relay/valve-1"], "heat_relay": null, "cool_relay": null,
            "default": false, "rules": 0, "overrides": 0})
    );
    let house = f.get("/v1/zones").await?;
    let ids: Vec<&str> =
        house["zones"].as_array().into_iter().flatten().filter_map(|z| z["id"].as_str()).collect();
    assert_eq!(ids, ["house", "living", "bedroom"]);
    assert_eq!(house["zones"][1], living);
    let plants: Vec<&Value> = house["plants"].as_array().into_iter().flatten().collect();
    assert_eq!(plants[0]["id"], "boiler");
    assert_eq!(plants[0]["zones"], json!(["living", "bedroom"]));
    assert_eq!(plants[1]["zones"], json!(["house", "living", "bedroom"]), "new zones join it");

    // A new zone's settings are the default zone's; its decision is the loop's.
    let view = f.get("/v1/control?zone=living").await?;
    assert_eq!(view["settings"], f.get("/v1/control").await?["settings"]);
    assert_eq!(view["decision"], Value::Null);

    // Changes need the admin credential.
    let got = f.call("PUT", "/v1/zones/attic", None, Some(&zone("Attic", &["28-c1"], &[]))).await?;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    let got = f.call("DELETE", "/v1/plants/boiler", Some(&f.agent("h")), None).await?;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
    Ok(())
}

/// Each configuration that cannot work is refused with 422 `invalid_house` naming the
/// problem, and the house stays as it was.
#[tokio::test]
async fn every_bad_house_is_refused_naming_it_and_changes_nothing() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    // The default plant serves the default zone, which has no valve: a new zone without valves
    // beside it could never be heated alone.
    let before = f.get("/v1/zones").await?;
    let attic = zone("Attic", &["28-d1"], &[]);
    let got = f.call("PUT", "/v1/zones/attic", Some(&admin), Some(&attic)).await?;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_house",
        "plant Heating and cooling serves zones House, Attic and none of them has a valve",
    );
    assert_eq!(f.get("/v1/zones").await?, before);

    two_zones(&f).await?;
    let before = f.get("/v1/zones").await?;
    let cases = [
        (
            "/v1/zones/bath",
            zone("Bath", &["28-c1"], &["demo-relay/valve-1"]),
            "valve demo-relay/valve-1 is assigned to zones LIVING and Bath",
        ),
        (
            "/v1/plants/stove",
            json!({"name": "Stove", "kind": "heat", "heat_relay": "demo-relay/stove", "zones": [],
                "min_on_s": 0, "min_off_s": 0, "changeover_s": 0})
            .to_string(),
            "plant Stove serves no zone",
        ),
        (
            "/v1/zones/bath",
            zone("Bath", &["28-c1"], &["demo-relay/boiler"]),
            "every output of zone Bath belongs to another plant: demo-relay/boiler (plant Boiler)",
        ),
        ("/v1/zones/bath", zone("Bath", &[], &["demo-relay/valve-3"]), "zone Bath has no sensors"),
        (
            "/v1/plants/boiler",
            boiler(&["living", "attic"]).to_string(),
            "plant Boiler serves zone attic, which does not exist",
        ),
    ];
    for (path, body, problem) in cases {
        let got = f.call("PUT", path, Some(&admin), Some(&body)).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_house", problem);
        assert_eq!(f.get("/v1/zones").await?, before, "{path} changed the house");
    }
    // The default plant is the only one serving the default zone.
    let got = f.call("DELETE", "/v1/plants/house", Some(&admin), None).await?;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_house",
        "zone House is served by no plant and has no relay of its own",
    );
    assert_eq!(f.get("/v1/zones").await?, before);

    // Fields are checked before the house, each named.
    let bad = [
        ("/v1/zones/Bad", zone("Bad", &["28-c1"], &[]), "zone_id must be 1 to 32 characters"),
        (
            "/v1/zones/bath",
            zone("Bath", &["28-c1"], &["valve-3"]),
            "valves[0] field must be a relay id",
        ),
        ("/v1/zones/bath", zone(" ", &["28-c1"], &[]), "name field must be 1 to 64 characters"),
        (
            "/v1/zones/bath",
            zone("Bath", &["28-c1", "28-C1"], &[]),
            "sensors[1] names \"28-C1\" a second time",
        ),
    ];
    for (path, body, problem) in bad {
        let got = f.call("PUT", path, Some(&admin), Some(&body)).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", problem);
    }
    let mut body = boiler(&["living"]);
    body["min_calling_zones"] = json!(0);
    let got = f.call("PUT", "/v1/plants/boiler", Some(&admin), Some(&body.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "min_calling_zones");
    body["min_calling_zones"] = json!(1);
    body["surprise"] = json!(1);
    let got = f.call("PUT", "/v1/plants/boiler", Some(&admin), Some(&body.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "surprise");
    assert_eq!(f.get("/v1/zones").await?, before);
    Ok(())
}

/// A zone with rules or overrides is deleted only with somewhere to move them; the default zone
/// never.
#[tokio::test]
async fn a_zone_with_a_schedule_moves_it_before_it_goes() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    two_zones(&f).await?;
    let rule = json!({"name": "Bedtime", "zone": "bedroom",
        "when": {"type": "weekly", "days": ["monday"], "start": "21:00", "end": "23:00"},
        "heat_c": 19.0});
    let (status, rule) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&rule.to_string())).await?;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["zone"], "bedroom");
    let hold = json!({"heat_c": 22.0, "hold": {"type": "indefinite"}, "zone": "bedroom"});
    let (status, held) =
        f.call("POST", "/v1/overrides", Some(&admin), Some(&hold.to_string())).await?;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["zone"], "bedroom");
    // Each zone's schedule is its own.
    assert_eq!(f.get("/v1/schedules").await?, json!([]));
    assert_eq!(f.get("/v1/overrides").await?, json!([]));
    assert_eq!(f.get("/v1/schedules?zone=bedroom").await?, json!([rule.clone()]));
    assert_eq!(f.get("/v1/overrides?zone=bedroom").await?, json!([held.clone()]));
    let zones = f.get("/v1/zones").await?;
    let bedroom = &zones["zones"][2];
    assert_eq!(bedroom["id"], "bedroom");
    assert_eq!((&bedroom["rules"], &bedroom["overrides"]), (&json!(1), &json!(1)));

    // Its valve does not move with its schedule: the delete is refused until the valve is
    // moved or unassigned (else it would be left in no zone, never opened again).
    let got = f.call("DELETE", "/v1/zones/bedroom?move_to=living", Some(&admin), None).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_house", "demo-relay/valve-2");
    assert_eq!(f.get("/v1/zones").await?, zones);
    // Unassigned: the boiler serves the living room alone first (a valveless bedroom heated by
    // the boiler and cooled by the default plant would get both at once).
    let body = boiler(&["living"]).to_string();
    let got = f.call("PUT", "/v1/plants/boiler", Some(&admin), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let body = zone("BEDROOM", &["28-b1"], &[]);
    let got = f.call("PUT", "/v1/zones/bedroom", Some(&admin), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let zones = f.get("/v1/zones").await?;

    let got = f.call("DELETE", "/v1/zones/bedroom", Some(&admin), None).await?;
    assert_error(&got, StatusCode::CONFLICT, "zone_not_empty", "still has 1 rules and 1 overrides");
    let got = f.call("DELETE", "/v1/zones/bedroom?move_to=attic", Some(&admin), None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "zone \"attic\" does not exist");
    let got = f.call("DELETE", "/v1/zones/bedroom?move_to=bedroom", Some(&admin), None).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "another zone");
    assert_eq!(f.get("/v1/zones").await?, zones);

    let got = f.call("DELETE", "/v1/zones/bedroom?move_to=living", Some(&admin), None).await?;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    let moved = f.get("/v1/schedules?zone=living").await?;
    assert_eq!(moved[0]["id"], rule["id"]);
    assert_eq!(moved[0]["zone"], "living");
    assert_eq!(f.get("/v1/overrides?zone=living").await?[0]["id"], held["id"]);
    let after = f.get("/v1/zones").await?;
    let ids: Vec<&str> =
        after["zones"].as_array().into_iter().flatten().filter_map(|z| z["id"].as_str()).collect();
    assert_eq!(ids, ["house", "living"]);
    assert_eq!(after["plants"][0]["zones"], json!(["living"]), "the boiler no longer serves it");
    let got = f.call("GET", "/v1/schedules?zone=bedroom", None, None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "zone \"bedroom\" does not exist");

    let got = f.call("DELETE", "/v1/zones/house", Some(&admin), None).await?;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "default zone");
    let got = f.call("DELETE", "/v1/zones/attic", Some(&admin), None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "zone \"attic\" does not exist");
    Ok(())
}

/// A zone that still has valves is not deleted, with or without `move_to` (which moves rules
/// and overrides, not valves): the refusal names each valve and says what to do, and nothing
/// changes.
#[tokio::test]
async fn a_zone_with_valves_is_not_deleted() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    two_zones(&f).await?;
    let body = zone("Bath", &["28-c1"], &["demo-relay/valve-3", "demo-relay/valve-4"]);
    let got = f.call("PUT", "/v1/zones/bath", Some(&admin), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let before = f.get("/v1/zones").await?;
    for path in ["/v1/zones/bath", "/v1/zones/bath?move_to=living"] {
        let got = f.call("DELETE", path, Some(&admin), None).await?;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_house",
            "zone Bath still has valves demo-relay/valve-3, demo-relay/valve-4: move them to \
             another zone or unassign them first",
        );
        assert_eq!(f.get("/v1/zones").await?, before, "{path}");
    }
    Ok(())
}

/// Without `zone`, every route means the default zone, as before zones; with it, that zone;
/// an unknown zone is 404 naming it everywhere.
#[tokio::test]
async fn per_zone_routes_beside_the_single_zone_ones() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    two_zones(&f).await?;
    for path in [
        "/v1/control",
        "/v1/control/decisions",
        "/v1/schedules",
        "/v1/schedule/default",
        "/v1/overrides",
        "/v1/schedule/timeline",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let zoned = format!("{path}{sep}zone=house");
        if path != "/v1/schedule/timeline" {
            assert_eq!(f.get(path).await?, f.get(&zoned).await?, "{path}");
        }
        let got = f.call("GET", &format!("{path}{sep}zone=attic"), None, None).await?;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", "zone \"attic\" does not exist");
    }
    for (method, path, body) in [
        ("PUT", "/v1/control/settings?zone=attic", json!({"mode": "off"})),
        ("PUT", "/v1/schedule/default?zone=attic", json!({"heat_c": 18.0, "cool_c": 26.0})),
        ("DELETE", "/v1/overrides?zone=attic", Value::Null),
        (
            "POST",
            "/v1/overrides",
            json!({"heat_c": 22.0, "hold": {"type": "indefinite"}, "zone": "attic"}),
        ),
    ] {
        let body = (!body.is_null()).then(|| body.to_string());
        let got = f.call(method, path, Some(&admin), body.as_deref()).await?;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", "zone \"attic\" does not exist");
    }

    // Settings per zone; the default zone's protection times are the default plant's.
    let off = json!({"mode": "off"}).to_string();
    let got = f.call("PUT", "/v1/control/settings?zone=living", Some(&admin), Some(&off)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(f.get("/v1/control?zone=living").await?["settings"]["mode"], "off");
    assert_eq!(f.get("/v1/control").await?["settings"]["mode"], "heat");
    let quick = json!({"mode": "heat", "min_on_s": 60, "min_off_s": 90, "changeover_s": 120});
    let got = f.call("PUT", "/v1/control/settings", Some(&admin), Some(&quick.to_string())).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let plants = f.get("/v1/zones").await?["plants"].clone();
    let house = plants.as_array().into_iter().flatten().find(|p| p["id"] == "house").cloned();
    let times =
        house.map(|p| (p["min_on_s"].clone(), p["min_off_s"].clone(), p["changeover_s"].clone()));
    assert_eq!(times, Some((json!(60), json!(90), json!(120))));

    // A zone's default target and timeline.
    let cool = json!({"heat_c": 16.5, "cool_c": 27.0, "sensors": []});
    let got = f
        .call("PUT", "/v1/schedule/default?zone=bedroom", Some(&admin), Some(&cool.to_string()))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(f.get("/v1/schedule/default?zone=bedroom").await?, cool);
    assert_eq!(f.get("/v1/schedule/default").await?["heat_c"], 20.0);
    let timeline = f.get("/v1/schedule/timeline?zone=bedroom&hours=1").await?;
    assert_eq!(timeline["segments"][0]["heat_c"], 16.5);

    // Resume ends only that zone's overrides.
    let hold = |zone: &str| {
        json!({"heat_c": 22.0, "hold": {"type": "indefinite"}, "zone": zone}).to_string()
    };
    for z in ["house", "bedroom"] {
        let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&hold(z))).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    }
    let got = f.call("DELETE", "/v1/overrides?zone=bedroom", Some(&admin), None).await?;
    assert_eq!(got.1["ended"], 1, "{}", got.1);
    assert_eq!(f.get("/v1/overrides").await?.as_array().map(Vec::len), Some(1));
    assert_eq!(f.get("/v1/overrides?zone=bedroom").await?, json!([]));

    // A rule keeps its zone when replaced without one, and moves with one.
    let rule = json!({"name": "Nap", "zone": "bedroom",
        "when": {"type": "weekly", "days": ["sunday"], "start": "14:00", "end": "15:00"},
        "heat_c": 20.0});
    let (_, created) =
        f.call("POST", "/v1/schedules", Some(&admin), Some(&rule.to_string())).await?;
    let path = format!("/v1/schedules/{}", created["id"]);
    let mut edit = rule.clone();
    edit.as_object_mut().map(|o| o.remove("zone"));
    edit["heat_c"] = json!(20.5);
    let (status, kept) = f.call("PUT", &path, Some(&admin), Some(&edit.to_string())).await?;
    assert_eq!((status, &kept["zone"]), (StatusCode::OK, &json!("bedroom")), "{kept}");
    edit["zone"] = json!("living");
    let (_, moved) = f.call("PUT", &path, Some(&admin), Some(&edit.to_string())).await?;
    assert_eq!(moved["zone"], "living");
    assert_eq!(f.get(&path).await?, moved);
    assert_eq!(f.get("/v1/schedules?zone=bedroom").await?, json!([]));
    Ok(())
}

/// A change of the zones or plants is announced on `GET /v1/events` as `changed: zones`.
#[tokio::test]
async fn a_house_change_is_announced() -> R {
    let f = fixture().await?;
    let events = Request::builder().uri("/v1/events").body(Body::empty())?;
    let mut body = f.engine.router().oneshot(events).await?.into_body();
    let body_text = zone("Bedroom", &["28-b1"], &["demo-relay/valve-2"]);
    let got = f.call("PUT", "/v1/zones/bedroom", Some(&f.admin()), Some(&body_text)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let event =
        super::control::next_event(&mut body, &mut String::new(), "changed", deadline).await?;
    assert_eq!(event, json!({"type": "changed", "what": "zones"}));
    Ok(())
}
