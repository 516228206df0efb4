//! The OpenAPI contract, checked from outside with tools nobody on the project wrote, against
//! the real binaries: both documents (committed and served) pass an OpenAPI 3.1 validator, and
//! schemathesis sends schema-generated requests (valid and invalid) to every operation of the
//! engine and the relay agent, without credentials and with each kind of credential. It fails
//! on any server error, any response that its schema does not describe (status, content type,
//! body), and any request the schema says is invalid that the server accepts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hearth_e2e::{House, Proc, engine_credential, in_private_netns, python_tools, simulated};
use hearth_harness::RELAY_AGENT;

/// Generated test cases per operation and phase, per credential: bounded so that both
/// services take about two minutes on two cores.
const EXAMPLES: &str = "12";

/// Operations schemathesis cannot test: the event stream never ends (its answer is checked in
/// `main.rs` and the web tests, and its schema is validated here with the rest).
const UNTESTABLE: &[&str] = &["stream_events"];

const RELAY_HOST: &str = "contract-relay";

#[test]
fn openapi_documents_are_valid_and_the_servers_keep_them() -> anyhow::Result<()> {
    // Outside the namespace: the first run installs the tools from PyPI.
    let tools = python_tools()?;
    in_private_netns("contract::openapi_documents_are_valid_and_the_servers_keep_them", || {
        run(tools)
    })
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run `tool` from the venv with `args` in `dir`; fail with its output unless it succeeds.
fn tool(tools: &Path, dir: &Path, tool: &str, args: &[&str]) -> anyhow::Result<String> {
    let started = Instant::now();
    let out = Command::new(tools.join(tool)).args(args).current_dir(dir).output()?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The credentials are a throwaway site's, but a log is no place for them.
    let shown: Vec<&str> = args
        .iter()
        .map(|a| if a.starts_with("Authorization:") { "Authorization: …" } else { a })
        .collect();
    eprintln!("{tool} {shown:?}: {} in {:.0} s", out.status, started.elapsed().as_secs_f64());
    anyhow::ensure!(out.status.success(), "{tool} {args:?} failed ({}):\n{text}", out.status);
    Ok(text)
}

/// schemathesis against `url` with its document `doc`, with `credential` (or none).
fn schemathesis(
    tools: &Path,
    dir: &Path,
    doc: &Path,
    url: &str,
    credential: Option<&str>,
) -> anyhow::Result<()> {
    let doc = doc.to_string_lossy().to_string();
    let auth = credential.map(|c| format!("Authorization: Bearer {c}"));
    let mut args = vec![
        "run",
        &doc,
        "--url",
        url,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,\
         response_headers_conformance,response_schema_conformance,negative_data_rejection,\
         unsupported_method,missing_required_header",
        "--max-examples",
        EXAMPLES,
        // Deterministic: the same requests every run.
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--no-color",
    ];
    for op in UNTESTABLE {
        args.extend(["--exclude-operation-id", op]);
    }
    if let Some(auth) = &auth {
        args.extend(["--header", auth]);
    }
    let out = tool(tools, dir, "schemathesis", &args)?;
    // The summary, for the log: how many cases ran.
    for line in out.lines().filter(|l| l.contains("generated") || l.contains("Tested:")) {
        eprintln!("  {}", line.trim());
    }
    Ok(())
}

/// Fetch `url` into `path`.
async fn download(url: &str, path: &Path) -> anyhow::Result<()> {
    let body = reqwest::get(url).await?.error_for_status()?.bytes().await?;
    std::fs::write(path, &body)?;
    Ok(())
}

/// The engine (no mDNS) and a simulated relay agent with `relay_key` told where it is, both on
/// loopback ports of their choosing: each process and its URL.
async fn engine_and_relay(
    house: &House,
    relay_key: &str,
) -> anyhow::Result<(Proc, String, Proc, String)> {
    let data_s = house.data_s();
    let world = house.world_s();
    let engine = Proc::start(
        "engine",
        "hearth-engine",
        &["--data-dir", &data_s, "--listen", "127.0.0.1:0", "--mdns", "false"],
    )?;
    let engine_url = engine.listening_url().await?;
    let mut args = vec!["--listen", "127.0.0.1:0", "--engine", &engine_url];
    args.extend(simulated(RELAY_HOST, relay_key, &world));
    let relay = Proc::start("relay", "hearth-relay-agent", &args)?;
    let relay_url = relay.listening_url().await?;
    Ok((engine, engine_url, relay, relay_url))
}

async fn run(tools: PathBuf) -> anyhow::Result<()> {
    let house = House::new()?;
    let work = house.dir.path();
    let admin = house.admin()?;
    let relay_key = engine_credential(&house.data, &["device-key", "--role", "both", RELAY_HOST])?;
    let key: hearth_common::auth::DeviceCredential = relay_key.parse()?;
    let agent = key.agent_credential(RELAY_HOST);
    let engine_cred = key.engine_credential();

    let (_engine, engine_url, mut relay, relay_url) = engine_and_relay(&house, &relay_key).await?;

    // Both documents, as committed and as served, are valid OpenAPI 3.1.
    let served_engine = work.join("engine-served.json");
    let served_relay = work.join("relay-agent-served.json");
    download(&format!("{engine_url}/v1/openapi.json"), &served_engine).await?;
    download(&format!("{relay_url}/v1/openapi.json"), &served_relay).await?;
    let committed_engine = repo().join("openapi/engine.json");
    let committed_relay = repo().join("openapi/relay-agent.json");
    for doc in [&committed_engine, &committed_relay, &served_engine, &served_relay] {
        let out = tool(&tools, work, "openapi-spec-validator", &[&doc.to_string_lossy()])?;
        anyhow::ensure!(out.contains("OK"), "{}: {out}", doc.display());
    }

    // Schema-generated requests against the running servers: anonymous, then with each kind of
    // credential each accepts. The relay agent first: the engine's admin requests include the
    // agent's `restart` command, which it obeys (it exits for systemd to start it again).
    let started = Instant::now();
    for credential in [None, Some(engine_cred.as_str())] {
        schemathesis(&tools, work, &served_relay, &relay_url, credential)?;
    }
    let status = reqwest::get(format!("{relay_url}/v1/status")).await?.status();
    anyhow::ensure!(status.is_success(), "{relay_url}/v1/status: {status}");
    for credential in [None, Some(admin.as_str()), Some(agent.as_str())] {
        schemathesis(&tools, work, &served_engine, &engine_url, credential)?;
    }
    eprintln!("schemathesis: both services in {:.0} s", started.elapsed().as_secs_f64());
    // Still up after all that; the relay agent up, or gone only by the restart it was asked.
    let status = reqwest::get(format!("{engine_url}/v1/status")).await?.status();
    anyhow::ensure!(status.is_success(), "{engine_url}/v1/status: {status}");
    if let Some(exit) = relay.try_wait()? {
        anyhow::ensure!(
            exit.code() == Some(i32::from(hearth_common::manage::RESTART_EXIT_CODE)),
            "the relay agent exited with {exit}, not for an asked restart"
        );
    }
    Ok(())
}

#[test]
fn every_server_refuses_in_json_on_a_real_socket() -> anyhow::Result<()> {
    in_private_netns("contract::every_server_refuses_in_json_on_a_real_socket", refusals)
}

/// Send `request` raw to `base` (`http://ADDR`) and read the answer until the server closes
/// (every request here ends its connection: a refused head, or `connection: close`).
fn exchange(base: &str, request: &[u8]) -> anyhow::Result<(u16, String, serde_json::Value)> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    Ok((status, head.to_ascii_lowercase(), json))
}

/// Every refusal the HTTP layers can produce, on the three servers' real sockets: a URI too
/// long (414), header fields too large or too many (431), a request that is not HTTP (400), a
/// method the path lacks (405): each an `ErrorBody` with `content-type: application/json`.
/// (A body over the limit, 413, is refused by the router layer that the crates' own tests
/// check route by route: on a socket the refused rest of the body would race the answer.)
async fn refusals() -> anyhow::Result<()> {
    let house = House::new()?;
    let relay_key = house.key(RELAY_AGENT, RELAY_HOST)?;
    let (engine, engine_url, relay, relay_url) = engine_and_relay(&house, &relay_key).await?;
    let web =
        Proc::start("web", "hearth-web", &["--listen", "127.0.0.1:0", "--engine", &engine_url])?;
    let web_url = web.listening_url().await?;

    let long_uri = format!("GET /v1/{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many = format!("GET /v1/status HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    // Never finished: hyper refuses a head once its buffer passes the limit (~400 KB) and the
    // head is still incomplete; a whole head that arrived in one large read could be parsed
    // and served (a 404 here once in CI), so the test never lets it be whole.
    let huge = format!("GET /v1/status HTTP/1.1\r\nhost: x\r\nx-big: {}", "b".repeat(500_000));
    let garbage = "HELLO THERE\r\n\r\n".to_owned();
    let wrong_method =
        |path: &str| format!("PATCH {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    for (name, url, path) in [
        ("engine", &engine_url, "/v1/sensors"),
        ("relay agent", &relay_url, "/v1/relays"),
        ("hearth-web", &web_url, "/api/session"),
    ] {
        for (what, request, status, code) in [
            ("long URI", long_uri.clone(), 414, "too_large"),
            ("many headers", many.clone(), 431, "too_large"),
            ("huge header", huge.clone(), 431, "too_large"),
            ("not HTTP", garbage.clone(), 400, "bad_request"),
            ("wrong method", wrong_method(path), 405, "unsupported"),
        ] {
            let (got, head, json) = exchange(url, request.as_bytes())?;
            anyhow::ensure!(
                got == status
                    && head.contains("content-type: application/json")
                    && json["status"] == "error"
                    && json["code"] == code,
                "{name}, {what}: expected {status} {code}, got {got}\n{head}\n{json}"
            );
        }
    }
    drop((engine, relay, web));
    Ok(())
}
