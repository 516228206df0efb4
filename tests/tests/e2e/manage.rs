//! Agents managed from the engine, for real: a setting changed through hearth-web (an admin
//! session with its CSRF token, as the dashboard sends it) reaches a running sensor agent,
//! which reports at the new interval without a restart; a value beyond the agent's local limit
//! is refused and the refusal is visible through the engine's API; every remote command
//! round-trips with its result, and a non-admin credential is refused. The sensor agent's
//! other settings (resolution, per-sensor alias/enabled/offset) change what it reports the
//! same way. And for a relay agent: a stricter protection time reaches it without a restart
//! and holds (an `on` inside a longer minimum off time is refused), a looser one is refused
//! and shown, its commands round-trip, and what the engine set survives its restart.

use std::time::Duration;

use hearth_e2e::{FAST_ENGINE, House, Proc, engine_credential, eventually, in_private_netns};
use hearth_harness::SENSOR_AGENT;
use hearth_proto::agents::AgentKind;
use hearth_proto::client::EngineClient;
use hearth_proto::manage::{AgentSettingsState, Command, CommandState};
use serde_json::{Value, json};

use super::{RELAY, SENSOR, SENSOR_ID, start_relay, start_sensor};

const WAIT: Duration = Duration::from_secs(30);

/// A hearth-web session: its cookie and CSRF token, and the headers a same-origin page sends.
struct Session {
    web: String,
    cookie: String,
    csrf: String,
    http: reqwest::Client,
}

impl Session {
    async fn login(web: &str, admin: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
        let resp =
            http.post(format!("{web}/api/login")).json(&json!({"token": admin})).send().await?;
        anyhow::ensure!(resp.status() == 200, "login: {}", resp.status());
        let cookie = resp
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or_else(|| anyhow::anyhow!("login without a cookie"))?
            .to_owned();
        let session: Value = resp.json().await?;
        let csrf = session["csrf"].as_str().unwrap_or_default().to_owned();
        Ok(Self { web: web.to_owned(), cookie, csrf, http })
    }

    /// A change through the dashboard's relay: the engine's status and body.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .request(method, format!("{}/api{path}", self.web))
            .header("cookie", &self.cookie)
            .header("x-hearth-csrf", &self.csrf)
            .header("origin", &self.web)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

impl Session {
    /// Ask `host`'s agent of kind `agent` to carry out `command`, through the dashboard: the
    /// new command's id.
    async fn ask(&self, host: &str, agent: &str, command: &str) -> anyhow::Result<i64> {
        let path = format!("/v1/agents/{host}/commands");
        let body = json!({"agent": agent, "command": command});
        let (status, body) = self.send(reqwest::Method::POST, &path, body).await?;
        anyhow::ensure!(status == 201, "{command}: {status} {body}");
        body["id"].as_i64().ok_or_else(|| anyhow::anyhow!("{command}: no id in {body}"))
    }
}

/// Command `id` of `host` once it is final.
async fn finished(api: &EngineClient, host: &str, id: i64) -> anyhow::Result<Command> {
    eventually(&format!("command {id} of {host} finished"), WAIT, || async {
        let list = api.commands(host).await?;
        Ok(list.into_iter().find(|c| c.id == id && c.state.is_final()))
    })
    .await
}

/// The times of the sensor's readings at the engine, oldest first.
async fn reading_times(api: &EngineClient) -> anyhow::Result<Vec<f64>> {
    let page = api.readings(SENSOR_ID).await?;
    Ok(page.points.iter().map(|p| p.at.as_millisecond() as f64 / 1000.0).collect())
}

fn gaps(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The house's engine (fast flags) and a hearth-web relaying it, with their URLs.
async fn engine_and_web(house: &House) -> anyhow::Result<(Proc, String, Proc, String)> {
    let data_s = house.data_s();
    let mut args = vec!["--data-dir", data_s.as_str(), "--listen", "127.0.0.1:0"];
    args.extend(FAST_ENGINE);
    let engine = Proc::start("engine", "hearth-engine", &args)?;
    let url = engine.listening_url().await?;
    let web = Proc::start("web", "hearth-web", &["--listen", "127.0.0.1:0", "--engine", &url])?;
    let web_url = web.listening_url().await?;
    Ok((engine, url, web, web_url))
}

#[test]
fn settings_and_commands_reach_a_running_sensor_agent() -> anyhow::Result<()> {
    in_private_netns(
        "manage::settings_and_commands_reach_a_running_sensor_agent",
        settings_and_commands,
    )
}

/// A house, its engine with hearth-web in front and an admin session on it, the sensor agent's
/// key: what each test of a managed sensor agent starts from.
struct Managed {
    house: House,
    world_s: String,
    key: String,
    engine: Proc,
    url: String,
    _web: Proc,
    api: EngineClient,
    session: Session,
}

impl Managed {
    async fn start() -> anyhow::Result<Self> {
        let house = House::new()?;
        let world_s = house.world_s();
        let key = house.key(SENSOR_AGENT, SENSOR)?;
        let admin = house.admin()?;
        let (engine, url, _web, web_url) = engine_and_web(&house).await?;
        let api = EngineClient::new(&url, None);
        let session = Session::login(&web_url, &admin).await?;
        Ok(Self { house, world_s, key, engine, url, _web, api, session })
    }
}

async fn settings_and_commands() -> anyhow::Result<()> {
    let Managed { house, world_s, key, engine, url, _web, api, session } = Managed::start().await?;

    // The queue dir is the agent's state: kept across the restart below, as systemd's
    // StateDirectory is.
    let state = tempfile::tempdir()?;
    let state_s = state.path().to_string_lossy().into_owned();
    let sensor_flags = [
        "--engine",
        url.as_str(),
        "--queue-dir",
        state_s.as_str(),
        "--interval-s",
        "0.5",
        "--remote-min-interval-s",
        "1",
        "--remote-max-interval-s",
        "10",
    ];
    let sensor = start_sensor(&key, &world_s, &sensor_flags)?;
    eventually("readings every 0.5 s", WAIT, || async {
        Ok((reading_times(&api).await?.len() >= 4).then_some(()))
    })
    .await?;

    // The engine's own bounds, through the dashboard: its 422 names the field.
    let path = format!("/v1/agents/{SENSOR}/settings");
    let (status, body) =
        session.send(reqwest::Method::PUT, &path, json!({"sensor": {"interval_s": 0}})).await?;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("sensor.interval_s"), "{body}");

    // 2 s, within the agent's limits: applied without a restart.
    let (status, body) =
        session.send(reqwest::Method::PUT, &path, json!({"sensor": {"interval_s": 2}})).await?;
    assert_eq!((status, body["revision"].as_u64()), (200, Some(1)), "{body}");
    let applied = eventually("the agent applying revision 1", WAIT, || async {
        let s: AgentSettingsState = api.agent_settings(SENSOR).await?;
        Ok(s.applied.into_iter().find(|a| a.revision == 1))
    })
    .await?;
    assert_eq!(applied.refused, vec![]);
    let in_force = applied.in_force.sensor.and_then(|s| s.interval_s);
    assert_eq!(in_force, Some(2.0));
    let since = applied.at.as_millisecond() as f64 / 1000.0;
    let after = eventually("four reports after the change", WAIT, || async {
        let times: Vec<f64> =
            reading_times(&api).await?.into_iter().filter(|t| *t > since).collect();
        Ok((times.len() >= 4).then_some(times))
    })
    .await?;
    let before: Vec<f64> = reading_times(&api).await?.into_iter().filter(|t| *t <= since).collect();
    println!("gaps between reports before: {:?}", gaps(&before));
    println!("gaps between reports after: {:?}", gaps(&after));
    // The ticker spaces reads by at least the interval; a 0.5 s agent never waits 1.5 s.
    assert!(gaps(&after).iter().all(|g| *g >= 1.5), "not every 2 s: {:?}", gaps(&after));
    assert!(gaps(&before).iter().any(|g| *g < 1.0), "was not every 0.5 s: {:?}", gaps(&before));
    assert_eq!(sensor.count_lines("report interval changed"), 1);

    // Commands: a device credential (the agent's own) and no credential are refused.
    let device =
        engine_credential(&house.data, &["device-key", "--role", "sensor", "--bearer", SENSOR])?;
    let commands = format!("{url}/v1/agents/{SENSOR}/commands");
    let http = reqwest::Client::new();
    let ask = json!({"agent": "sensor", "command": "diagnostics"});
    let resp = http.post(&commands).bearer_auth(&device).json(&ask).send().await?;
    assert_eq!(resp.status(), 403);
    let resp = http.post(&commands).json(&ask).send().await?;
    assert_eq!(resp.status(), 401);

    // Each command through the dashboard, carried out by the running agent.
    let mut results = Vec::new();
    for command in ["identify", "rescan", "diagnostics"] {
        let done = finished(&api, SENSOR, session.ask(SENSOR, "sensor", command).await?).await?;
        assert_eq!(done.state, CommandState::Done, "{done:?}");
        assert_eq!(done.asked_by, "admin");
        results.push(done);
    }
    sensor.wait_for_line("IDENTIFY: this is hearth-sensor-agent on host e2e-sensor", WAIT).await?;
    let rescan = results[1].result.clone().unwrap_or_default();
    assert_eq!(rescan["sensors"][0]["id"], SENSOR_ID, "{rescan}");
    let diagnostics = results[2].result.clone().unwrap_or_default();
    assert_eq!(diagnostics["version"], env!("CARGO_PKG_VERSION"), "{diagnostics}");
    assert_eq!(diagnostics["hardware"], "simulated", "{diagnostics}");
    assert_eq!(diagnostics["interval_s"], 2.0, "{diagnostics}");
    for field in ["uptime_s", "queue_depth", "last_errors", "bus", "agent_time"] {
        assert!(diagnostics.get(field).is_some(), "{field} missing: {diagnostics}");
    }

    // Restart: answered, then the agent exits with the code systemd restarts.
    let id = session.ask(SENSOR, "sensor", "restart").await?;
    sensor.wait_for_line("restarting, as the engine asked", WAIT).await?;
    let exit = sensor.terminate()?;
    assert_eq!(exit.code(), Some(75), "{exit:?}");
    let list = api.commands(SENSOR).await?;
    let restart = list.iter().find(|c| c.id == id);
    assert_eq!(restart.map(|c| c.state), Some(CommandState::Done), "{list:?}");

    // As systemd would: started again, it runs with the settings kept on disk (2 s, the
    // engine's revision 1) before it hears from the engine.
    let again = start_sensor(&key, &world_s, &sensor_flags)?;
    again.wait_for_line("report interval set by the engine", WAIT).await?;

    // 60 s is beyond the agent's local limit of 10 s: refused by the (restarted) agent, and
    // shown by the engine.
    let (status, body) =
        session.send(reqwest::Method::PUT, &path, json!({"sensor": {"interval_s": 60}})).await?;
    assert_eq!(status, 200, "{body}");
    let refused = eventually("the agent refusing revision 2", WAIT, || async {
        let s = api.agent_settings(SENSOR).await?;
        Ok(s.applied.into_iter().find(|a| a.revision == 2))
    })
    .await?;
    let refusal = refused.refused.first().cloned();
    let refusal = refusal.ok_or_else(|| anyhow::anyhow!("no refusal: {refused:?}"))?;
    assert_eq!(refusal.field, "sensor.interval_s");
    assert!(refusal.reason.contains("local limits of 1 to 10 s"), "{}", refusal.reason);
    // A refused value leaves the agent on its own configured interval.
    let in_force = refused.in_force.sensor.and_then(|s| s.interval_s);
    assert_eq!(in_force, Some(0.5));

    drop(engine);
    Ok(())
}

/// The second simulated sensor of [`sensor_settings`].
const HALL_ID: &str = "28-00000000a002";

/// The values of a sensor's readings taken after `since` (seconds), oldest first.
async fn values_since(api: &EngineClient, id: &str, since: f64) -> anyhow::Result<Vec<f64>> {
    let page = api.readings(id).await?;
    Ok(page
        .points
        .iter()
        .filter(|p| p.at.as_millisecond() as f64 / 1000.0 > since)
        .filter_map(|p| p.mean)
        .collect())
}

#[test]
fn sensor_settings_reach_a_running_sensor_agent() -> anyhow::Result<()> {
    in_private_netns("manage::sensor_settings_reach_a_running_sensor_agent", sensor_settings)
}

/// Resolution, alias and a disabled sensor, set through the dashboard, change what a running
/// simulated agent reports without a restart; an offset beyond its local limit is refused in
/// the same revision, shown by the engine, and not applied.
async fn sensor_settings() -> anyhow::Result<()> {
    // The house is kept to the end: its temporary directory holds the engine's data.
    let Managed { house: _house, world_s, key, engine, url, _web, api, session } =
        Managed::start().await?;

    let state = tempfile::tempdir()?;
    let toml = state.path().join("sensor.toml");
    std::fs::write(
        &toml,
        format!(
            "[[sensors]]\nid = \"{SENSOR_ID}\"\nalias = \"living room\"\n\
             [[sensors]]\nid = \"{HALL_ID}\"\nalias = \"hall\"\n"
        ),
    )?;
    let (toml_s, queue_s) = (toml.to_string_lossy(), state.path().join("q"));
    let queue_s = queue_s.to_string_lossy();
    let sensor = start_sensor(
        &key,
        &world_s,
        &[
            "--engine",
            url.as_str(),
            "--config",
            &toml_s,
            "--queue-dir",
            &queue_s,
            "--interval-s",
            "0.5",
            // 17.3 °C reads 17.3125 at 12 bits, and 17.0 at 9 (the low bits cleared).
            "--sim-start-c",
            "17.3",
            "--remote-max-offset-c",
            "1",
        ],
    )?;
    let before = eventually("readings of both sensors", WAIT, || async {
        let (a, b) =
            (values_since(&api, SENSOR_ID, 0.0).await?, values_since(&api, HALL_ID, 0.0).await?);
        Ok((a.len() >= 2 && !b.is_empty()).then_some(a))
    })
    .await?;
    let on_half = |v: &f64| (v * 2.0).fract() == 0.0;
    assert!(before.iter().any(|v| !on_half(v)), "12 bits: 1/16 °C steps, got {before:?}");

    let path = format!("/v1/agents/{SENSOR}/settings");
    let settings = json!({"sensor": {"resolution_bits": 9, "sensors": {
        SENSOR_ID: {"alias": "lounge"},
        HALL_ID: {"enabled": false, "offset_c": 3},
    }}});
    let (status, body) = session.send(reqwest::Method::PUT, &path, settings).await?;
    assert_eq!((status, body["revision"].as_u64()), (200, Some(1)), "{body}");
    let applied = eventually("the agent applying revision 1", WAIT, || async {
        let s: AgentSettingsState = api.agent_settings(SENSOR).await?;
        Ok(s.applied.into_iter().find(|a| a.revision == 1))
    })
    .await?;
    // The offset beyond the local ±1 °C is refused, with the reason; the rest applies.
    let fields: Vec<&str> = applied.refused.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(fields, [format!("sensor.sensors.{HALL_ID}.offset_c")], "{applied:?}");
    assert!(applied.refused[0].reason.contains("local limit of ±1 °C"), "{applied:?}");
    let in_force = applied.in_force.sensor.clone().unwrap_or_default();
    assert_eq!(in_force.resolution_bits, Some(9));
    assert_eq!(in_force.sensors[SENSOR_ID].alias.as_deref(), Some("lounge"));
    assert_eq!(in_force.sensors[HALL_ID].enabled, Some(false));
    assert_eq!(in_force.sensors[HALL_ID].offset_c, Some(0.0), "the refused offset is not in force");

    // Without a restart: 9-bit values, the new alias, and no more readings of the hall.
    let since = applied.at.as_millisecond() as f64 / 1000.0;
    let after = eventually("four readings after the change", WAIT, || async {
        let v = values_since(&api, SENSOR_ID, since).await?;
        Ok((v.len() >= 4).then_some(v))
    })
    .await?;
    assert!(after.iter().all(on_half), "9 bits: 0.5 °C steps, got {after:?}");
    let sensors = api.sensors().await?;
    let lounge = sensors.iter().find(|s| s.id == SENSOR_ID).and_then(|s| s.alias.clone());
    assert_eq!(lounge.as_deref(), Some("lounge"));
    assert_eq!(values_since(&api, HALL_ID, since).await?, Vec::<f64>::new(), "disabled");
    assert_eq!(sensor.count_lines("hearth-sensor-agent starting"), 1, "not restarted");

    drop(engine);
    Ok(())
}

/// `promtool check metrics` on the `/metrics` of every binary: the engine, both agents (the
/// sensor agent on its status listener) and hearth-web.
#[test]
fn every_binary_serves_metrics_promtool_accepts() -> anyhow::Result<()> {
    in_private_netns("manage::every_binary_serves_metrics_promtool_accepts", metrics)
}

async fn metrics() -> anyhow::Result<()> {
    let house = House::new()?;
    let world_s = house.world_s();
    let sensor_key = house.key(SENSOR_AGENT, SENSOR)?;
    let relay_key = house.key(hearth_harness::RELAY_AGENT, super::RELAY)?;
    let relay_toml = house.relay_toml(0)?;
    let (_engine, url, _web, web_url) = engine_and_web(&house).await?;
    let relay = super::start_relay(&relay_toml, &relay_key, &world_s)?;
    let relay_url = relay.listening_url().await?;
    let sensor = start_sensor(
        &sensor_key,
        &world_s,
        &["--engine", &url, "--interval-s", "0.5", "--status-listen", "127.0.0.1:0"],
    )?;
    let line = sensor.wait_for_line("status endpoint listening on http://", WAIT).await?;
    let status = hearth_harness::procs::listening_url_in(&line).unwrap_or_default();
    let sensor_url = status.trim_end_matches("/v1/status").to_owned();
    let api = EngineClient::new(&url, None);
    eventually("a reading and a relay registration", WAIT, || async {
        let relays = api.relays().await?;
        Ok((!relays.is_empty() && !api.sensors().await?.is_empty()).then_some(()))
    })
    .await?;
    // A refusal, so the relay agent's refusal counter has a sample with a label.
    let refused = reqwest::Client::new()
        .post(format!("{relay_url}/v1/relays/heat"))
        .json(&json!({"state": "on", "lease_s": 5}))
        .send()
        .await?;
    assert_eq!(refused.status(), 401);

    for (who, base, family) in [
        ("engine", url.as_str(), "hearth_"),
        ("relay agent", relay_url.as_str(), "hearth_relay_agent_output_on{output=\"heat\"}"),
        ("sensor agent", sensor_url.as_str(), "hearth_sensor_agent_readings_total"),
        ("hearth-web", web_url.as_str(), "hearth_web_sessions"),
    ] {
        let resp = reqwest::get(format!("{base}/metrics")).await?;
        assert_eq!(resp.status(), 200, "{who}");
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{who}: {content_type}");
        let text = resp.text().await?;
        assert!(text.contains(family), "{who}: no {family} in\n{text}");
        // A short blocking run: the servers are other processes.
        let mut check = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let mut stdin = check.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        std::io::Write::write_all(&mut stdin, text.as_bytes())?;
        drop(stdin);
        let out = check.wait_with_output()?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "promtool on the {who}'s /metrics: {}",
            if said.is_empty() { "clean" } else { &said }
        );
        assert!(out.status.success() && said.trim().is_empty(), "{who}: {said}\n{text}");
    }
    Ok(())
}

/// The relay agent's configuration for the management test: a furnace the engine's plan may
/// command, and an aux output it never does, both without protection times; the engine may
/// lengthen a minimum time up to 900 s; the state directory keeps what the engine set.
fn relay_config(state_dir: &str) -> String {
    format!(
        "state_dir = \"{state_dir}\"\nremote_max_protection_s = 900\nremote_min_max_on_s = 600\n\
         [[outputs]]\nid = \"heat\"\nname = \"Furnace\"\nfunction_hint = \"heat\"\n\
         min_on_s = 0\nmin_off_s = 0\nmax_on_s = 0\n\
         [[outputs]]\nid = \"aux\"\nname = \"Humidifier\"\nmin_on_s = 0\nmin_off_s = 0\n"
    )
}

#[test]
fn settings_and_commands_reach_a_running_relay_agent() -> anyhow::Result<()> {
    in_private_netns(
        "manage::settings_and_commands_reach_a_running_relay_agent",
        relay_settings_and_commands,
    )
}

async fn relay_settings_and_commands() -> anyhow::Result<()> {
    use hearth_proto::relays::{RelayCommand, RelayState};
    let house = House::new()?;
    let world_s = house.world_s();
    let key = house.key(hearth_harness::RELAY_AGENT, RELAY)?;
    let admin = house.admin()?;
    let (_engine, url, _web, web_url) = engine_and_web(&house).await?;
    let api = EngineClient::new(&url, None);
    let session = Session::login(&web_url, &admin).await?;
    let state = tempfile::tempdir()?;
    let config =
        house.file("relay-managed.toml", &relay_config(&state.path().to_string_lossy()))?;
    let relay = start_relay(&config, &key, &world_s)?;
    let relay_url = relay.listening_url().await?;
    eventually("the relay agent registered", WAIT, || async {
        let relays = api.relays().await?;
        Ok(relays.iter().any(|r| r.host_id == RELAY && r.output_id == "aux").then_some(()))
    })
    .await?;
    let credential: hearth_common::auth::DeviceCredential = key.parse()?;
    let agent = hearth_proto::client::RelayAgentClient::new(
        &relay_url,
        Some(credential.engine_credential()),
    );
    let on = RelayCommand { state: RelayState::On, lease_s: Some(60) };
    let off = RelayCommand { state: RelayState::Off, lease_s: None };
    // No protection configured: aux switches freely.
    agent.command("aux", &on).await?;
    agent.command("aux", &off).await?;

    // A non-admin credential is refused; a malformed value is a 422 naming its field.
    let path = format!("/v1/agents/{RELAY}/settings");
    let device = credential.agent_credential(RELAY);
    let http = reqwest::Client::new();
    let stricter = json!({"relay": {"outputs": {"aux": {"min_off_s": 600}}}});
    let resp = http.put(format!("{url}{path}")).bearer_auth(&device).json(&stricter).send().await?;
    assert_eq!(resp.status(), 403);
    let ask = json!({"agent": "relay", "command": "diagnostics"});
    let commands = format!("{url}/v1/agents/{RELAY}/commands");
    let resp = http.post(&commands).bearer_auth(&device).json(&ask).send().await?;
    assert_eq!(resp.status(), 403);
    let (status, body) = session
        .send(
            reqwest::Method::PUT,
            &path,
            json!({"relay": {"outputs": {"aux": {"min_off_s": -5}}}}),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("relay.outputs.aux.min_off_s"), "{body}");

    // Looser than the local file, beyond its limit, an output it does not have: refused by the
    // agent, and shown by the engine; nothing applied.
    let looser = json!({"relay": {"outputs": {"heat": {"max_on_s": 300},
        "aux": {"min_off_s": 1000}, "boiler": {"min_on_s": 60}}}});
    let (status, body) = session.send(reqwest::Method::PUT, &path, looser).await?;
    assert_eq!((status, body["revision"].as_u64()), (200, Some(1)), "{body}");
    let refused = eventually("the relay agent refusing revision 1", WAIT, || async {
        let s = api.agent_settings(RELAY).await?;
        Ok(s.applied.into_iter().find(|a| a.agent == AgentKind::Relay && a.revision == 1))
    })
    .await?;
    let mut fields: Vec<&str> = refused.refused.iter().map(|r| r.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["relay.outputs.aux.min_off_s", "relay.outputs.boiler", "relay.outputs.heat.max_on_s"],
        "{refused:?}"
    );
    assert!(refused.refused.iter().any(|r| r.reason.contains("remote_max_protection_s")));
    let aux = |s: &hearth_proto::manage::AgentSettings| {
        s.relay.as_ref().and_then(|r| r.outputs.get("aux").copied())
    };
    assert_eq!(aux(&refused.in_force).and_then(|p| p.min_off_s), Some(0), "{refused:?}");
    agent.command("aux", &on).await?;
    agent.command("aux", &off).await?;

    // Stricter, within the local limit: applied without a restart, within seconds.
    let asked = std::time::Instant::now();
    let (status, body) = session.send(reqwest::Method::PUT, &path, stricter.clone()).await?;
    assert_eq!((status, body["revision"].as_u64()), (200, Some(2)), "{body}");
    let applied = eventually("the relay agent applying revision 2", WAIT, || async {
        let s = api.agent_settings(RELAY).await?;
        Ok(s.applied.into_iter().find(|a| a.agent == AgentKind::Relay && a.revision == 2))
    })
    .await?;
    println!(
        "a relay setting reached the running agent and was reported applied in {:.2} s",
        asked.elapsed().as_secs_f64()
    );
    assert_eq!(applied.refused, vec![]);
    assert_eq!(aux(&applied.in_force).and_then(|p| p.min_off_s), Some(600));
    let local = applied.local.clone().unwrap_or_default();
    assert_eq!(aux(&local).and_then(|p| p.min_off_s), Some(0), "{applied:?}");
    // The longer minimum off time holds: an `on` inside it is refused by the agent.
    match agent.command("aux", &on).await {
        Err(hearth_proto::client::ClientError::Api { status: 409, body }) => {
            assert!(body.error.contains("minimum off time: 600 s"), "{body:?}");
        }
        other => anyhow::bail!("an on inside the new minimum off time: {other:?}"),
    }
    assert_eq!(agent.relay("aux").await?.protection.min_off_s, 600);

    // Each command round-trips with its result; none switches a relay.
    let mut results = Vec::new();
    for command in ["identify", "rescan", "diagnostics"] {
        let done = finished(&api, RELAY, session.ask(RELAY, "relay", command).await?).await?;
        assert_eq!(done.state, CommandState::Done, "{done:?}");
        results.push(done);
    }
    relay.wait_for_line("IDENTIFY: this is hearth-relay-agent on host e2e-relay", WAIT).await?;
    let message = results[1].message.clone().unwrap_or_default();
    assert!(message.contains("no probe on this agent"), "{message}");
    let diagnostics = results[2].result.clone().unwrap_or_default();
    assert_eq!(diagnostics["version"], env!("CARGO_PKG_VERSION"), "{diagnostics}");
    assert_eq!(diagnostics["hardware"], "simulated", "{diagnostics}");
    let outputs = diagnostics["outputs"].as_array().cloned().unwrap_or_default();
    let aux_diag = outputs.iter().find(|o| o["id"] == "aux").cloned().unwrap_or_default();
    assert_eq!(aux_diag["protection"]["min_off_s"], 600, "{diagnostics}");
    for field in ["uptime_s", "fallback", "last_errors", "local_protection", "agent_time"] {
        assert!(diagnostics.get(field).is_some(), "{field} missing: {diagnostics}");
    }
    assert!(agent.relays().await?.outputs.iter().all(|o| o.state == RelayState::Off));

    // Restart: answered, then the agent exits with the code systemd restarts.
    let id = session.ask(RELAY, "relay", "restart").await?;
    relay.wait_for_line("restarting, as the engine asked", WAIT).await?;
    let exit = relay.terminate()?;
    assert_eq!(exit.code(), Some(75), "{exit:?}");
    assert_eq!(finished(&api, RELAY, id).await?.state, CommandState::Done);

    // As systemd would: started again, it applies the settings kept in its state directory
    // before it hears from the engine.
    let again = start_relay(&config, &key, &world_s)?;
    again.wait_for_line("settings kept from the engine applied", WAIT).await?;
    let again_url = again.listening_url().await?;
    let status = hearth_proto::client::RelayAgentClient::new(&again_url, None).relay("aux").await?;
    assert_eq!(status.protection.min_off_s, 600);
    Ok(())
}
