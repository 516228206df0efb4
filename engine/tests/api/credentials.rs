//! Device keys with roles: what each may do, the untyped keys of earlier versions, and the
//! credential the engine presents to a relay agent.

use super::*;

impl Fixture {
    fn agent_as(&self, host: &str, role: KeyRole) -> String {
        self.engine.device_key(host, role).agent_credential(host)
    }
}

#[tokio::test]
async fn a_key_does_only_what_its_role_allows() -> R {
    let f = fixture().await?;
    let reading = update("hall", json!(20.5));
    let register = registration("hall", "http://10.0.0.7:8081");

    // A sensor key cannot register relay outputs (which the engine would then believe and
    // command), and a relay key cannot report readings.
    let sensor = f.agent_as("hall", KeyRole::Sensor);
    let got = f.call("POST", "/v1/relays/register", Some(&sensor), Some(&register)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "is a sensor key");
    assert!(
        got.1["error"].as_str().is_some_and(|e| e.contains("device-key --role relay hall")),
        "{}",
        got.1
    );
    let relay = f.agent_as("hall", KeyRole::Relay);
    let got = f.call("PUT", "/v1/sensors/update", Some(&relay), Some(&reading)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "is a relay key");
    let backlog = json!({"host_id": "hall", "updates": [{"host_id": "hall", "sensors":
        {"28-01": {"type": "DS18B20", "value": 20.0, "timestamp": "2026-01-01T00:00:00Z"}}}]});
    let got =
        f.call("PUT", "/v1/sensors/backlog", Some(&relay), Some(&backlog.to_string())).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "is a relay key");
    assert_eq!(f.get("/v1/relays").await?, json!([]), "the refusal registered nothing");
    assert_eq!(f.get("/v1/sensors").await?, json!([]), "the refusals stored nothing");
    assert_eq!(f.get("/v1/agents").await?, json!([]));

    // Each does its own job.
    let got = f.call("PUT", "/v1/sensors/update", Some(&sensor), Some(&reading)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let got = f.call("POST", "/v1/relays/register", Some(&relay), Some(&register)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let agents = f.get("/v1/agents").await?;
    let roles: Vec<(&str, &str)> = agents
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["kind"].as_str().unwrap_or(""), a["key_role"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(roles, [("relay", "relay"), ("sensor", "sensor")], "{agents}");

    // A key for both, on a host that runs both agents.
    let both = f.agent_as("node", KeyRole::Both);
    let body = update("node", json!(19));
    let got = f.call("PUT", "/v1/sensors/update", Some(&both), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let reg = registration("node", "http://10.0.0.8:8081");
    let got = f.call("POST", "/v1/relays/register", Some(&both), Some(&reg)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);

    // A key is bound to its host id whatever its role.
    let got = f.call("PUT", "/v1/sensors/update", Some(&both), Some(&reading)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "cannot act for host");

    // GET /v1/auth says what a credential is, for a third-party agent checking its own.
    let got = f.call("GET", "/v1/auth", Some(&sensor), None).await?;
    assert_eq!(got.1, json!({"role": "agent", "host_id": "hall", "key_role": "sensor"}));
    Ok(())
}

#[tokio::test]
async fn untyped_keys_of_earlier_versions_keep_working_and_are_shown() -> R {
    let f = fixture().await?;
    let untyped = f.agent_as("old-pi", KeyRole::Untyped);
    // An agent provisioned before keys had roles reports and registers as it did.
    let body = update("old-pi", json!(19));
    let got = f.call("PUT", "/v1/sensors/update", Some(&untyped), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let reg = registration("old-pi", "http://10.0.0.9:8081");
    let got = f.call("POST", "/v1/relays/register", Some(&untyped), Some(&reg)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let agents = f.get("/v1/agents").await?;
    for a in agents.as_array().into_iter().flatten() {
        assert_eq!(a["key_role"], "untyped", "{a}");
    }
    let got = f.call("GET", "/v1/auth", Some(&untyped), None).await?;
    assert_eq!(got.1["key_role"], "untyped");

    // Re-issued with a role, the agent's next contact shows it.
    let typed = f.agent_as("old-pi", KeyRole::Sensor);
    let body = update("old-pi", json!(19));
    let got = f.call("PUT", "/v1/sensors/update", Some(&typed), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let agents = f.get("/v1/agents").await?;
    let sensor = agents.as_array().into_iter().flatten().find(|a| a["kind"] == "sensor");
    assert_eq!(sensor.map(|a| a["key_role"].clone()), Some(json!("sensor")), "{agents}");

    // Once every agent is re-issued, untyped keys can be refused.
    let dir = tempfile::tempdir()?;
    let strict = Engine::open(&config(dir.path(), &["--allow-untyped-keys", "false"])?).await?;
    let untyped = strict.device_key("old-pi", KeyRole::Untyped).agent_credential("old-pi");
    let got = call(
        strict.router(),
        "PUT",
        "/v1/sensors/update",
        Some(&untyped),
        Some(&update("old-pi", json!(19))),
    )
    .await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "untyped device key refused");
    let typed = strict.device_key("old-pi", KeyRole::Sensor).agent_credential("old-pi");
    let got = call(
        strict.router(),
        "PUT",
        "/v1/sensors/update",
        Some(&typed),
        Some(&update("old-pi", json!(19))),
    )
    .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    Ok(())
}

/// The engine commands a relay agent with the engine token of the key the agent holds: the
/// untyped one until the agent registers with a re-issued key, then that key's.
#[tokio::test]
async fn relay_agents_are_commanded_with_their_own_keys_token() -> R {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), &["--tick-s", "0.1", "--lease-s", "8"])?).await?;
    let f = Fixture { engine, _dir: dir };
    let (url, mut commands) = fake_relay_agent().await?;
    heat_to(&f, 20.0, 0, 0).await?;
    let sensor = f.agent_as("pi", KeyRole::Sensor);
    f.call("PUT", "/v1/sensors/update", Some(&sensor), Some(&update("pi", json!(18.0)))).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control = f.engine.spawn_control(stop_rx);

    for role in [KeyRole::Untyped, KeyRole::Relay, KeyRole::Both] {
        let cred = f.agent_as("relay1", role);
        let got = f
            .call("POST", "/v1/relays/register", Some(&cred), Some(&registration("relay1", &url)))
            .await?;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        // Commands sent before the registration was stored may still carry the previous key's
        // token; the next renewal carries this one.
        let want =
            Some(format!("Bearer {}", f.engine.device_key("relay1", role).engine_credential()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, auth, _) = tokio::time::timeout_at(deadline, commands.recv())
                .await
                .map_err(|_| anyhow::anyhow!("no command with the {role:?} key's token"))?
                .ok_or_else(|| anyhow::anyhow!("relay agent gone"))?;
            if auth == want {
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    control.await?;
    Ok(())
}
