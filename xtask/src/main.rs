//! `cargo xtask <command>`: the project's two front-door commands and helpers.
//!
//! - `demo`: the whole system on this machine (engine with SQLite, simulated sensor and relay
//!   agents sharing one simulated room), prints the URL, stops on Ctrl-C.
//! - `test`: installs the system tools the tests need, then fmt, clippy and every test.
//! - `openapi`: regenerate the committed OpenAPI documents after an intended API change.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hearth_proto::client::EngineClient;
use hearth_proto::control::{ControlSettings, Mode};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(),
        Some("openapi") => openapi(),
        _ => {
            eprintln!("usage: cargo xtask <demo [--port N] [--no-discovery] | test | openapi>");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd.status().map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    anyhow::ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tests need `ip` (iproute2) and `unshare` (util-linux) to make private network
/// namespaces for mDNS. Install them with apt when missing.
fn ensure_system_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = [("ip", "iproute2"), ("unshare", "util-linux")]
        .into_iter()
        .filter(|(tool, _)| !have(tool))
        .map(|(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        have("apt-get"),
        "install {missing:?} (needed for network namespaces in tests)"
    );
    let sudo: &[&str] = if have("id")
        && Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        &[]
    } else {
        &["sudo"]
    };
    let apt = |args: &[&str]| {
        let mut c = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run("apt-get update", &mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    run(&format!("apt-get install {missing:?}"), &mut install)
}

fn test() -> anyhow::Result<()> {
    let started = Instant::now();
    ensure_system_tools()?;
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run("cargo test", cargo().args(["test", "--workspace", "--locked"]))?;
    eprintln!("xtask: all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn openapi() -> anyhow::Result<()> {
    for (pkg, test) in [("hearth-engine", "api"), ("hearth-relay-agent", "api")] {
        run(
            &format!("regenerate {pkg} OpenAPI"),
            cargo().args(["test", "-p", pkg, "--test", test, "openapi"]).env("HEARTH_BLESS", "1"),
        )?;
    }
    eprintln!("xtask: openapi/ regenerated; review with `git diff openapi/` and commit");
    Ok(())
}

/// Children that are stopped with SIGTERM (then killed) when the demo ends.
struct Children(Vec<(&'static str, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, c) in &self.0 {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, c) in &mut self.0 {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(c.try_wait(), Ok(None)) {
                eprintln!("xtask: {name} did not stop; killing it");
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn demo(args: &[String]) -> anyhow::Result<()> {
    let mut port = 8080u16;
    let mut discovery = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--port needs a number"))?
            }
            "--no-discovery" => discovery = false,
            other => anyhow::bail!("unknown demo option {other}"),
        }
    }
    run(
        "build the binaries",
        cargo().args([
            "build",
            "--bins",
            "-p",
            "hearth-engine",
            "-p",
            "hearth-sensor-agent",
            "-p",
            "hearth-relay-agent",
        ]),
    )?;
    let bin = |name: &str| root().join("target/debug").join(name);
    let data = root().join("target/demo");
    std::fs::create_dir_all(&data)?;
    let data_s = data.to_string_lossy().to_string();
    let world = data.join("sim-world.json").to_string_lossy().to_string();
    let engine_out = |args: &[&str]| -> anyhow::Result<String> {
        let out =
            Command::new(bin("hearth-engine")).args(["--data-dir", &data_s]).args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "hearth-engine {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let sensor_key = engine_out(&["device-key", "demo-sensor"])?;
    let relay_key = engine_out(&["device-key", "demo-relay"])?;
    let admin = engine_out(&["admin-token"])?;
    let url = format!("http://127.0.0.1:{port}");

    let mut children = Children(Vec::new());
    let listen = format!("127.0.0.1:{port}");
    children.0.push((
        "engine",
        Command::new(bin("hearth-engine"))
            .args([
                "--data-dir",
                &data_s,
                "--listen",
                &listen,
                "--mdns",
                if discovery { "true" } else { "false" },
            ])
            .spawn()?,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let api = EngineClient::new(&url, Some(admin.clone()));
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while api.status().await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the engine did not answer at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Short minimum times so the demo cycles within a couple of minutes; a real furnace
        // keeps the 3-minute defaults.
        api.set_control(&ControlSettings {
            mode: Mode::Heat,
            setpoint_c: 20.0,
            hysteresis_c: 0.3,
            min_on_s: 20,
            min_off_s: 20,
        })
        .await
        .map_err(|e| anyhow::anyhow!("setting the demo setpoint: {e}"))
    })?;
    let engine_flag: Vec<&str> = if discovery { vec![] } else { vec!["--engine", &url] };
    children.0.push((
        "relay agent",
        Command::new(bin("hearth-relay-agent"))
            .args([
                "--host-id",
                "demo-relay",
                "--device-key",
                &relay_key,
                "--listen",
                "127.0.0.1:0",
                "--sim-world",
                &world,
            ])
            .args(&engine_flag)
            .spawn()?,
    ));
    children.0.push((
        "sensor agent",
        Command::new(bin("hearth-sensor-agent"))
            .args([
                "--host-id",
                "demo-sensor",
                "--device-key",
                &sensor_key,
                "--hardware",
                "simulated",
                "--sim-world",
                &world,
                "--interval-s",
                "2",
                "--sim-start-c",
                "17",
                "--sim-time-scale",
                "60",
            ])
            .args(&engine_flag)
            .spawn()?,
    ));
    eprintln!(
        "\n  Hearth is running: {url}\n  \
         The simulated room starts at 17 °C and runs 60× faster than real time; the setpoint is 20 °C.\n  \
         Watch it decide: curl {url}/v1/control\n  \
         Admin credential (for changes): {admin}\n  \
         Agents find the engine by {}. Data in {data_s}. Ctrl-C stops everything.\n",
        if discovery {
            "mDNS (use --no-discovery if your network blocks multicast)"
        } else {
            "the configured URL"
        }
    );
    rt.block_on(async {
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = poll.tick() => {
                    for (name, c) in &mut children.0 {
                        if let Some(status) = c.try_wait()? {
                            anyhow::bail!("{name} stopped unexpectedly ({status})");
                        }
                    }
                }
            }
        }
    })
}
