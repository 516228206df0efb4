//! The engine on PostgreSQL: what a wrong configuration says at start, and a server that goes
//! away while the engine runs. Each test starts a real server of its own
//! (`hearth_harness::postgres`), so it can stop it.

use hearth_harness::postgres::{PASSWORD, Postgres};

use super::*;

/// Open an engine on `url` (data dir `dir`); the error's text when it does not open.
async fn open_error(dir: &std::path::Path, url: &str) -> R<String> {
    match Engine::open(&config(dir, &["--database-url", url])?).await {
        Ok(_) => anyhow::bail!("the engine opened on {url}"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

#[tokio::test]
async fn a_postgres_url_that_cannot_work_stops_the_start_saying_what_to_fix() -> R {
    let dir = tempfile::tempdir()?;
    let mut pg = Postgres::start()?;
    let url = pg.create_database("start")?;

    let bad = open_error(dir.path(), "postgres://hearth:pw@[::1/x").await?;
    assert!(bad.contains("bad database URL"), "{bad}");
    assert!(!bad.contains("pw@"), "the password is shown: {bad}");

    let wrong = url.replace(PASSWORD, "not-the-password");
    let refused = open_error(dir.path(), &wrong).await?;
    assert!(refused.contains("user and password"), "{refused}");
    assert!(!refused.contains("not-the-password"), "the password is shown: {refused}");

    let missing = open_error(dir.path(), &url.replace("/start_1?", "/no_such_db?")).await?;
    assert!(missing.contains("Create the database"), "{missing}");

    let schema =
        open_error(dir.path(), &format!("{url}&options=-c%20search_path%3DBad-Name")).await?;
    assert!(schema.contains("cannot hold a site"), "{schema}");

    // A database a newer engine migrated: refused, and left as it was.
    Engine::open(&config(dir.path(), &["--database-url", &url])?).await?;
    pg.psql_in(
        "start_1",
        "INSERT INTO hearth._sqlx_migrations \
         (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, '\\x00'::bytea, 0)",
    )?;
    let tables = |pg: &Postgres| {
        pg.psql_in("start_1", "SELECT count(*) FROM pg_tables WHERE schemaname = 'hearth'")
    };
    let before = tables(&pg)?;
    let newer = open_error(dir.path(), &url).await?;
    assert!(newer.contains("newer engine"), "{newer}");
    assert_eq!(tables(&pg)?, before, "a refused database was changed");

    // A server that is down at start.
    pg.stop()?;
    let down = open_error(dir.path(), &url).await?;
    assert!(down.contains("Is the server running"), "{down}");
    Ok(())
}

#[tokio::test]
async fn a_server_that_goes_away_is_a_storage_fault_until_it_returns() -> R {
    let dir = tempfile::tempdir()?;
    let mut pg = Postgres::start()?;
    let url = pg.create_database("away")?;
    let engine = Engine::open(&config(dir.path(), &["--database-url", &url])?).await?;
    let f = Fixture { engine, _dir: dir };
    let cred = f.agent("pi");
    let put = |v: f64| {
        let body = update("pi", json!(v));
        let cred = cred.clone();
        let router = f.engine.router();
        async move { call(router, "PUT", "/v1/sensors/update", Some(&cred), Some(&body)).await }
    };
    let (status, body) = put(20.5).await?;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = f.call("GET", "/v1/status", None, None).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("PostgreSQL stores and answers"), "{body}");

    pg.stop()?;
    // Not acknowledged: the agent keeps the reading queued and sends it again.
    let (status, body) = put(21.0).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = f.call("GET", "/v1/status", None, None).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.to_string().contains("PostgreSQL cannot store"), "{body}");

    pg.resume()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = f.call("GET", "/v1/status", None, None).await?;
        if status == StatusCode::OK {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no recovery within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The queued reading, sent again, is stored; the one acknowledged before is still there.
    let (status, body) = put(21.0).await?;
    assert!(status.is_success(), "{status} {body}");
    let values: Vec<f64> =
        f.stored("1058F50F01080047").await?.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, [20.5, 21.0]);
    Ok(())
}

/// `hearth-engine migrate-store`, the binary: a house's SQLite database copied to PostgreSQL
/// with the target's URL (and password) from the environment, counts printed, the password
/// never; a source that does not exist is an error exit.
#[tokio::test]
async fn migrate_store_copies_a_house_to_postgres_without_showing_the_password() -> R {
    let dir = tempfile::tempdir()?;
    let source = format!("sqlite://{}", dir.path().join("hearth.db").display());
    drop(Engine::open(&config(dir.path(), &["--database-url", &source])?).await?);
    let mut pg = Postgres::start()?;
    let target = pg.create_database("moved")?;
    let run = |from: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hearth-engine"))
            .args(["migrate-store", "--from", from])
            .env("HEARTH_MIGRATE_TO", &target)
            .output()
    };

    let out = run(&source)?;
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.lines().any(|l| l.split_whitespace().eq(["zones", "1", "1"])), "{stdout}");
    assert!(stderr.contains("hour_rows"), "no progress line: {stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD), "{stdout}{stderr}");
    assert_eq!(pg.psql_in("moved_1", "SELECT name FROM hearth.zones")?, "House");

    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let out = run(&missing)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    pg.stop()?;
    Ok(())
}

/// Two sites on one database, told apart only by the URL's `search_path`: each migrates its
/// own schema, and nothing written through one engine shows through the other.
#[tokio::test]
async fn two_sites_share_a_database_and_never_see_each_others_rows() -> R {
    let (url, database) = Postgres::with_shared(|server| server.create_named("sites"))?;
    let mut sites = Vec::new();
    for (schema, sensor, heat_c, zone) in
        [("site_a", "28-aaaa", 20.0, "attic"), ("site_b", "28-bbbb", 18.0, "cellar")]
    {
        let dir = tempfile::tempdir()?;
        let site_url = format!("{url}&options=-c%20search_path%3D{schema}");
        let engine = Engine::open(&config(dir.path(), &["--database-url", &site_url])?).await?;
        let f = Fixture { engine, _dir: dir };
        let admin = f.admin();
        let body =
            json!({"host_id": "pi", "sensors": {sensor: {"type": "DS18B20", "value": 21.0}}});
        let got = f
            .call("PUT", "/v1/sensors/update", Some(&f.agent("pi")), Some(&body.to_string()))
            .await?;
        assert_eq!(got.0, StatusCode::CREATED, "{schema}: {got:?}");
        let name =
            json!({"name": format!("{schema} sensor"), "weight": 1, "offset_c": 0}).to_string();
        let got = f
            .call("PUT", &format!("/v1/sensors/{sensor}/settings"), Some(&admin), Some(&name))
            .await?;
        assert_eq!(got.0, StatusCode::OK, "{schema}: {got:?}");
        heat_to(&f, heat_c, 60, 60).await?;
        let rule = json!({"name": format!("{schema} mornings"), "when": {"type": "weekly",
            "days": ["monday"], "start": "06:30", "end": "08:30"}, "heat_c": heat_c});
        let got = f.call("POST", "/v1/schedules", Some(&admin), Some(&rule.to_string())).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{schema}: {got:?}");
        let valve = format!("relay-{schema}/valve-1");
        let body = json!({"name": zone, "sensors": [sensor], "valves": [valve]}).to_string();
        let got = f.call("PUT", &format!("/v1/zones/{zone}"), Some(&admin), Some(&body)).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{schema}: {got:?}");
        sites.push((schema, sensor, heat_c, zone, f));
    }
    for (schema, sensor, heat_c, zone, f) in &sites {
        let (status, body) = f.call("GET", "/v1/status", None, None).await?;
        assert_eq!(status, StatusCode::OK, "{schema}: {body}");
        let sensors = f.get("/v1/sensors").await?;
        let ids: Vec<&str> =
            sensors.as_array().into_iter().flatten().filter_map(|s| s["id"].as_str()).collect();
        assert_eq!(ids, [*sensor], "{schema}: {sensors}");
        assert_eq!(sensors[0]["name"], format!("{schema} sensor"), "{schema}: {sensors}");
        let rules = f.get("/v1/schedules").await?;
        let names: Vec<&str> =
            rules.as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, [format!("{schema} mornings")], "{schema}: {rules}");
        let zones = f.get("/v1/zones").await?;
        let ids: Vec<&str> = zones["zones"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| z["id"].as_str())
            .collect();
        assert_eq!(ids, ["house", *zone], "{schema}: {zones}");
        let target = f.get("/v1/schedule/default").await?;
        assert_eq!(target["heat_c"], *heat_c, "{schema}: {target}");
        let readings = f.get(&format!("/v1/sensors/{sensor}/readings?max_points=10")).await?;
        assert_eq!(points_of(&readings), 1, "{schema}: {readings}");
    }
    // Each schema migrated on its own, to the same version; the default schema was never made.
    Postgres::with_shared(|server| {
        let schemas = server.psql_in(
            &database,
            "SELECT string_agg(schema_name, ',' ORDER BY schema_name)
             FROM information_schema.schemata WHERE schema_name IN ('hearth', 'site_a', 'site_b')",
        )?;
        assert_eq!(schemas.trim(), "site_a,site_b");
        let version = |schema: &str| {
            let sql = format!("SELECT max(version) FROM {schema}._sqlx_migrations");
            server.psql_in(&database, &sql)
        };
        assert_eq!(version("site_a")?, version("site_b")?);
        assert!(!version("site_a")?.trim().is_empty());
        Ok(())
    })
}

fn points_of(page: &Value) -> usize {
    page["points"].as_array().map_or(0, Vec::len)
}
