//! What the binaries write to their logs. Values from the network (a URL path, a sensor's
//! alias, a rule's name, another service's error message) are escaped, so a forged request
//! cannot write a line of its own; `RUST_LOG` levels below INFO are shown.

use std::io::{Read, Write};
use std::time::Duration;

use hearth_e2e::{House, Proc, engine_credential, eventually, in_private_netns};
use hearth_harness::{RELAY_AGENT, SENSOR_AGENT};

const WAIT: Duration = Duration::from_secs(30);

/// What an attacker would like journald to store as a line of its own.
const FORGED: &str = "FORGED hearth_relay_agent::relays: switched output=heat state=On";

/// A line as tracing-subscriber writes it without colour: an RFC 3339 UTC timestamp, then the
/// level. (The forged text starts otherwise, so it can only hide inside such a line.)
fn looks_like_tracing(line: &str) -> bool {
    let Some((time, rest)) = line.split_once(' ') else { return false };
    let b = time.as_bytes();
    let time_ok = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && time.ends_with('Z');
    let level = rest.trim_start().split(' ').next().unwrap_or("");
    time_ok && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
}

/// Every line of `proc`'s stderr is a tracing line, none holds a raw control character or line
/// separator, and the forged text is in it, escaped, on the line of `what`.
fn assert_clean(proc: &Proc, what: &str) {
    let lines = proc.lines();
    for line in &lines {
        assert!(looks_like_tracing(line), "a line that is not a log line: {line:?}\n{lines:#?}");
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "a raw control character or line separator: {line:?}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains(what) && l.contains(&format!("\\n{FORGED}"))),
        "the forged value was not logged (escaped) with {what:?}: {lines:#?}"
    );
}

/// `METHOD path` with `auth` and `body` over a raw socket: the path goes out byte for byte.
fn raw_request(base: &str, method: &str, path: &str, auth: Option<&str>, body: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        request.push_str(&format!("Authorization: Bearer {a}\r\n"));
    }
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let mut answer = String::new();
    let sent = std::net::TcpStream::connect(addr).and_then(|mut s| {
        s.set_read_timeout(Some(WAIT))?;
        s.write_all(request.as_bytes())?;
        s.read_to_string(&mut answer)
    });
    if let Err(e) = sent {
        answer = format!("no answer: {e}");
    }
    answer
}

/// `POST /v1/relays/fan%0A<forged line>` without a credential: the relay agent refuses it and
/// logs the refusal with the output id, decoded from the path.
#[test]
fn a_forged_relay_path_stays_inside_its_log_line() -> anyhow::Result<()> {
    in_private_netns("logs::a_forged_relay_path_stays_inside_its_log_line", || async {
        let house = House::new()?;
        let key = house.key(RELAY_AGENT, "log-relay")?;
        let config = house.relay_toml(0)?;
        let world = house.world_s();
        let relay = Proc::start(
            "relay",
            "hearth-relay-agent",
            &[
                "--config",
                &config,
                "--engine",
                "http://127.0.0.1:9",
                "--host-id",
                "log-relay",
                "--device-key",
                &key,
                "--hardware",
                "simulated",
                "--sim-world",
                &world,
                "--listen",
                "127.0.0.1:0",
            ],
        )?;
        let url = relay.listening_url().await?;
        let path = format!("/v1/relays/fan%0A{}", FORGED.replace(' ', "%20"));
        let answer = raw_request(&url, "POST", &path, None, r#"{"state":"on","lease_s":60}"#);
        anyhow::ensure!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        relay.wait_for_line("refused relay command", WAIT).await?;
        assert_clean(&relay, "refused relay command");
        Ok(())
    })
}

/// A sensor agent's alias goes into the engine's decision reason, which the engine logs; a
/// rule's name into "schedule rule added". Neither can start a line.
#[test]
fn a_forged_alias_or_rule_name_stays_inside_the_engines_log_line() -> anyhow::Result<()> {
    in_private_netns(
        "logs::a_forged_alias_or_rule_name_stays_inside_the_engines_log_line",
        || async {
            let house = House::new()?;
            let (data, data_s) = (&house.data, house.data_s());
            let sensor = house.key(SENSOR_AGENT, "log-pi")?;
            let bearer =
                engine_credential(data, &["device-key", "--role", "sensor", "--bearer", "log-pi"])?;
            let sensor_key: hearth_common::auth::DeviceCredential = sensor.parse()?;
            assert_eq!(bearer, sensor_key.agent_credential("log-pi"));
            let admin = engine_credential(data, &["admin-token"])?;
            let engine = Proc::start(
                "engine",
                "hearth-engine",
                &[
                    "--data-dir",
                    &data_s,
                    "--listen",
                    "127.0.0.1:0",
                    "--mdns",
                    "false",
                    "--tick-s",
                    "0.2",
                ],
            )?;
            let url = engine.listening_url().await?;
            let alias = format!("hall\n{FORGED}");
            let body = serde_json::json!({"host_id": "log-pi", "sensors": {"28-000000000f0f":
            {"type": "DS18B20", "value": 12.5, "alias": alias}}});
            let answer =
                raw_request(&url, "PUT", "/v1/sensors/update", Some(&bearer), &body.to_string());
            anyhow::ensure!(answer.starts_with("HTTP/1.1 201"), "{answer}");
            engine.wait_for_line(&format!("hall\\n{FORGED}"), WAIT).await?;

            let rule = serde_json::json!({"name": format!("night\u{2028}{FORGED}"),
            "when": {"type": "weekly", "days": ["monday"], "start": "22:00", "end": "06:00"},
            "heat_c": 17});
            let answer =
                raw_request(&url, "POST", "/v1/schedules", Some(&admin), &rule.to_string());
            anyhow::ensure!(answer.starts_with("HTTP/1.1 201"), "{answer}");
            let rule_line = engine.wait_for_line("schedule rule added", WAIT).await?;
            assert!(rule_line.contains("night\\u{2028}FORGED"), "{rule_line}");
            assert_clean(&engine, "decision");
            Ok(())
        },
    )
}

/// hearth-web logs what the engine answers when its event stream cannot be opened: an error
/// message from the network, which must not start a line either.
#[test]
fn a_forged_engine_error_stays_inside_hearth_webs_log_line() -> anyhow::Result<()> {
    in_private_netns("logs::a_forged_engine_error_stays_inside_hearth_webs_log_line", || async {
        // A stand-in engine that refuses everything with a JSON error body.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let engine_url = format!("http://{}", listener.local_addr()?);
        let body = serde_json::json!({"status": "error", "code": "forbidden",
            "error": format!("no\n{FORGED}")})
        .to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head);
                let _ = write!(
                    s,
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let web = Proc::start(
            "web",
            "hearth-web",
            &["--listen", "127.0.0.1:0", "--engine", &engine_url],
        )?;
        web.wait_for_line("cannot open the engine's event stream", WAIT).await?;
        assert_clean(&web, "cannot open the engine's event stream");
        Ok(())
    })
}

/// A foreign mDNS peer on the LAN advertises an "engine" of the agents' site (the site id is
/// public) whose TXT `scheme` carries a forged line: the sensor agent logs the URL it cannot
/// reach, and the line stays one line.
#[test]
fn a_forged_mdns_record_stays_inside_the_sensor_agents_log_line() -> anyhow::Result<()> {
    in_private_netns(
        "logs::a_forged_mdns_record_stays_inside_the_sensor_agents_log_line",
        || async {
            let house = House::new()?;
            let key = house.key(SENSOR_AGENT, "log-sensor")?;
            let site = key.split('.').next().unwrap_or_default().to_owned();
            let daemon = mdns_sd::ServiceDaemon::new()?;
            let scheme = format!("http\n{FORGED}");
            let txt = [("api", "v1"), ("id", "0badc0ffee00"), ("site", &site), ("scheme", &scheme)];
            let info = mdns_sd::ServiceInfo::new(
                hearth_proto::mdns::SERVICE_TYPE,
                "hearth-0badc0ffee00",
                "hearth-0badc0ffee00.local.",
                "127.0.0.1",
                9,
                &txt[..],
            )?;
            daemon.register(info)?;
            let world = house.world_s();
            let sensor = Proc::start(
                "sensor",
                "hearth-sensor-agent",
                &[
                    "--host-id",
                    "log-sensor",
                    "--device-key",
                    &key,
                    "--hardware",
                    "simulated",
                    "--sim-world",
                    &world,
                    "--interval-s",
                    "0.2",
                ],
            )?;
            sensor.wait_for_line("cannot deliver sensor readings", WAIT).await?;
            assert_clean(&sensor, "cannot deliver sensor readings");
            let _ = daemon.shutdown();
            Ok(())
        },
    )
}

/// `RUST_LOG=debug` shows debug lines (the fmt subscriber's own INFO default used to hide
/// them), and a target directive too.
#[test]
fn rust_log_debug_shows_debug_lines() -> anyhow::Result<()> {
    in_private_netns("logs::rust_log_debug_shows_debug_lines", || async {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("engine").to_string_lossy().to_string();
        let engine = Proc::start_with_env(
            "engine",
            "hearth-engine",
            &["--data-dir", &data, "--listen", "127.0.0.1:0", "--mdns", "false"],
            &[("RUST_LOG", "debug")],
        )?;
        engine.wait_for_line(" DEBUG ", WAIT).await?;
        let web = Proc::start_with_env(
            "web",
            "hearth-web",
            &["--listen", "127.0.0.1:0", "--engine", "http://127.0.0.1:9"],
            &[("RUST_LOG", "warn,hearth_common=debug")],
        )?;
        web.wait_for_line(" DEBUG hearth_common", WAIT).await?;
        // The default stays INFO.
        let data = dir.path().join("engine-2").to_string_lossy().to_string();
        let quiet = Proc::start(
            "engine-info",
            "hearth-engine",
            &["--data-dir", &data, "--listen", "127.0.0.1:0", "--mdns", "false"],
        )?;
        quiet.listening_url().await?;
        let debug = eventually("the engine's startup lines", WAIT, || async {
            let lines = quiet.lines();
            Ok(lines.iter().any(|l| l.contains("listening on")).then_some(lines))
        })
        .await?;
        assert!(!debug.iter().any(|l| l.contains(" DEBUG ")), "{debug:#?}");
        Ok(())
    })
}
