//! The contract as someone outside the project meets it: the credential commands of the engine
//! binary, a sensor written in shell from the README alone, and device keys with roles held by
//! the real agents (an untyped key of an earlier version included).

use std::process::Command;
use std::time::Duration;

use hearth_common::auth::{DeviceCredential, SiteSecret};
use hearth_e2e::{House, Proc, binary, eventually, in_private_netns, simulated};
use hearth_harness::{RELAY_AGENT, SENSOR_AGENT};
use hearth_proto::agents::KeyRole;
use hearth_proto::client::EngineClient;

const WAIT: Duration = Duration::from_secs(30);

/// `hearth-engine ARGS` → (success, stdout, stderr).
fn engine_cli(args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new(binary("hearth-engine")).args(args).output()?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// An engine on loopback without mDNS, and its URL.
async fn start_engine(data: &str) -> anyhow::Result<(Proc, String)> {
    let args = ["--data-dir", data, "--listen", "127.0.0.1:0", "--mdns", "false"];
    let engine = Proc::start("engine", "hearth-engine", &args)?;
    let url = engine.listening_url().await?;
    Ok((engine, url))
}

/// The options go before or after the subcommand; the role is required; the key is alone on
/// stdout (a key file), the bearer credential on stderr, or alone with `--bearer`.
#[test]
fn device_key_prints_a_key_with_a_role_and_its_bearer_credential() -> anyhow::Result<()> {
    // Builds the binaries; nothing here needs the namespace, but the harness is the same.
    in_private_netns(
        "third_party::device_key_prints_a_key_with_a_role_and_its_bearer_credential",
        || async {
            let dir = tempfile::tempdir()?;
            let data = dir.path().to_string_lossy().to_string();
            let (ok, key, note) =
                engine_cli(&["device-key", "--data-dir", &data, "--role", "sensor", "hall"])?;
            anyhow::ensure!(ok, "options after the subcommand: {note}");
            let parsed: DeviceCredential = key.trim().parse()?;
            assert_eq!(key.lines().count(), 1, "stdout is the key alone: {key:?}");
            let secret = std::fs::read_to_string(dir.path().join("site.secret"))?;
            let site = SiteSecret::from_hex(&secret)?;
            assert_eq!(parsed, site.device_key("hall", KeyRole::Sensor));
            let credential = parsed.agent_credential("hall");
            assert!(note.contains(&format!("Authorization: Bearer {credential}")), "{note}");
            assert!(note.contains("sensor"), "{note}");

            let (ok, out, _) = engine_cli(&[
                "--data-dir",
                &data,
                "device-key",
                "--role",
                "sensor",
                "--bearer",
                "hall",
            ])?;
            assert!(ok);
            assert_eq!(out.trim(), credential);
            let (ok, relay, _) =
                engine_cli(&["--data-dir", &data, "device-key", "--role", "relay", "hall"])?;
            assert!(ok);
            assert_ne!(relay.trim(), key.trim(), "each role has its own key");

            // Without a role: refused, saying which roles there are.
            let (ok, out, err) = engine_cli(&["--data-dir", &data, "device-key", "hall"])?;
            assert!(!ok && out.is_empty(), "{out}");
            assert!(err.contains("--role"), "{err}");
            let (ok, _, err) =
                engine_cli(&["--data-dir", &data, "device-key", "--role", "admin", "hall"])?;
            assert!(!ok && err.contains("sensor") && err.contains("relay"), "{err}");
            // admin-token takes the options after it too.
            let (ok, admin, err) = engine_cli(&["admin-token", "--data-dir", &data])?;
            assert!(ok && admin.trim() == site.admin_credential(), "{err}");
            Ok(())
        },
    )
}

/// The README's ten-line shell sensor, taken from the README itself, reports a reading to the
/// real engine with nothing but what the README says: the device key as printed, curl, openssl.
#[test]
fn the_readmes_shell_sensor_reports_to_the_engine() -> anyhow::Result<()> {
    in_private_netns("third_party::the_readmes_shell_sensor_reports_to_the_engine", || async {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))?;
        let script = readme
            .split("```sh\n")
            .filter_map(|block| block.split_once("\n```").map(|(code, _)| code))
            .find(|code| code.starts_with("#!/bin/sh\n# hearth-sensor.sh"))
            .ok_or_else(|| anyhow::anyhow!("no hearth-sensor.sh in the README"))?;
        let lines = script.lines().count();
        assert!(lines <= 14, "the README promises about ten lines, the script has {lines}");
        for tool in ["curl", "openssl", "awk"] {
            let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output()?;
            anyhow::ensure!(found.status.success(), "the shell sensor test needs {tool}");
        }

        let house = House::new()?;
        let (dir, data_s) = (&house.dir, house.data_s());
        let key = house.key(SENSOR_AGENT, "shell-pi")?;
        let (_engine, url) = start_engine(&data_s).await?;
        // A kernel w1 bus with two DS18B20s, as sysfs shows them (millidegrees).
        let w1 = dir.path().join("w1");
        for (id, milli) in [("28-00000a1b2c3d", "21562"), ("28-00000a1b2c3e", "-1250")] {
            std::fs::create_dir_all(w1.join(id))?;
            std::fs::write(w1.join(id).join("temperature"), format!("{milli}\n"))?;
        }
        std::fs::create_dir_all(w1.join("w1_bus_master1"))?;
        let out = Command::new("sh")
            .args(["-c", script])
            .env("ENGINE", &url)
            .env("HOST_ID", "shell-pi")
            .env("DEVICE_KEY", &key)
            .env("W1", &w1)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "the script failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.matches(r#"{"status":"ok""#).count(), 2, "{stdout}");
        let sensors = EngineClient::new(&url, None).sensors().await?;
        let got: Vec<(&str, &str, Option<f64>)> = sensors
            .iter()
            .map(|s| (s.id.as_str(), s.host_id.as_str(), s.latest.as_ref().and_then(|r| r.value)))
            .collect();
        assert_eq!(
            got,
            [
                ("28-00000a1b2c3d", "shell-pi", Some(21.562)),
                ("28-00000a1b2c3e", "shell-pi", Some(-1.25))
            ]
        );
        Ok(())
    })
}

/// Real sensor agents with a typed key, a relay's key, and the untyped key an earlier version
/// printed (as an installation being upgraded has on its Pis).
#[test]
fn sensor_agents_are_served_by_what_their_key_allows() -> anyhow::Result<()> {
    in_private_netns("third_party::sensor_agents_are_served_by_what_their_key_allows", || async {
        let house = House::new()?;
        let (data, data_s, world) = (&house.data, house.data_s(), house.world_s());
        let typed = house.key(SENSOR_AGENT, "typed-pi")?;
        let relay = house.key(RELAY_AGENT, "relay-pi")?;
        let site = SiteSecret::from_hex(&std::fs::read_to_string(data.join("site.secret"))?)?;
        let untyped = site.device_key("old-pi", KeyRole::Untyped).to_string();
        let (engine, url) = start_engine(&data_s).await?;
        let agent = |host: &str, key: &str| {
            let mut args = vec!["--engine", &url, "--interval-s", "0.2"];
            args.extend(simulated(host, key, &world));
            Proc::start(host, "hearth-sensor-agent", &args)
        };
        let _typed = agent("typed-pi", &typed)?;
        let refused = agent("relay-pi", &relay)?;
        let _old = agent("old-pi", &untyped)?;

        let api = EngineClient::new(&url, None);
        let agents = eventually("both sensor agents reporting", WAIT, || async {
            let agents = api.agents().await?;
            Ok((agents.len() == 2).then_some(agents))
        })
        .await?;
        let roles: Vec<(&str, Option<KeyRole>)> =
            agents.iter().map(|a| (a.host_id.as_str(), a.key_role)).collect();
        assert_eq!(
            roles,
            [("old-pi", Some(KeyRole::Untyped)), ("typed-pi", Some(KeyRole::Sensor))]
        );
        // The relay key's readings are refused; the agent says so and keeps them queued.
        refused.wait_for_line("the engine rejects this agent's credential", WAIT).await?;
        engine.wait_for_line("refused: report readings with a relay key", WAIT).await?;
        assert!(api.sensors().await?.iter().all(|s| s.host_id != "relay-pi"));

        // The untyped key is warned about once, however often the agent reports.
        let seen = |agents: &[hearth_proto::agents::AgentInfo]| {
            agents.iter().find(|a| a.host_id == "old-pi").map(|a| a.last_seen)
        };
        let first = seen(&agents);
        eventually("more reports of the old agent", WAIT, || async {
            Ok((seen(&api.agents().await?) > first).then_some(()))
        })
        .await?;
        let warnings: Vec<String> = engine
            .lines()
            .into_iter()
            .filter(|l| l.contains("untyped device key") && l.contains("old-pi"))
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(warnings[0].contains("device-key --role sensor old-pi"), "{}", warnings[0]);
        Ok(())
    })
}
