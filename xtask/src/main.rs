//! `cargo xtask <command>`: the project's two front-door commands and helpers.
//!
//! - `demo`: the whole system on this machine (engine with SQLite, simulated sensor and relay
//!   agents sharing one simulated room), prints the URL, stops on Ctrl-C.
//! - `test`: installs the system tools the tests need, then fmt, clippy and every test, then
//!   the cross builds for the Raspberry Pis with their qemu smoke tests (`--skip-cross` or
//!   `HEARTH_SKIP_CROSS=1` leave those out of a local fast run).
//! - `cross`: just the cross builds and qemu smoke tests (deploy/cross/build.sh; see cross.rs).
//! - `dist`: Debian packages (cargo-deb) of the engine and agents for amd64 and, where the
//!   cross build left binaries, armhf and arm64, into `target/debian/` (see `deploy.rs`).
//! - `provision`: write an agent, its unit, config, key and first-boot settings into a
//!   Raspberry Pi OS image or card (see `provision/`).
//! - `openapi`: regenerate the committed OpenAPI documents after an intended API change.
//! - `bench [NAME] [--static]`: print the performance figures of DESIGN.md's targets (all
//!   benches, or one: `sensor-agent`, `history`, `ingest`). Figures are printed, never
//!   asserted: timing is not a test. `--static` links the agent statically (glibc
//!   `crt-static`), as agents ship.
//! - `provision ...`: write an agent, its unit, config, credential and first-boot settings into
//!   a Raspberry Pi OS Lite image or card (`cargo xtask provision --help`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hearth_proto::client::EngineClient;
use hearth_proto::control::{ControlSettings, Mode};

mod cross;
mod deploy;
mod provision;
mod webbench;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("cross") => cross::cross(),
        Some("openapi") => openapi(),
        Some("dist") => deploy::dist(),
        Some("bench") => bench(&args[1..]),
        Some("provision") => provision::main(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo [--port N] [--web-port N] [--dev-assets] [--no-discovery] | test [--skip-cross] | \
                 cross | dist | openapi | bench [{}] [--static] | provision --help>",
                BENCHES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(" | ")
            );
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
    // /usr/sbin is not on a normal user's PATH on Debian, but sfdisk and debugfs live there
    // and run fine without root on image files.
    Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool} || test -x /sbin/{tool}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tests need `ip` (iproute2) and `unshare` (util-linux) to make private network
/// namespaces for mDNS; the provisioning test builds and inspects an SD-card image with
/// sfdisk, mkfs.vfat, mtools and e2fsprogs; `systemd-analyze` (systemd) verifies the units and
/// `dpkg-deb` (dpkg) inspects the packages; the web dashboard's browser tests drive Debian's
/// headless chromium through its chromedriver, at their fixed paths; the OpenAPI contract test
/// makes a Python venv for its pinned tools (`python3 -m venv`, which on Debian needs
/// `python3-venv` for `ensurepip`). Install them with apt when missing.
fn ensure_system_tools() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = [
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("sfdisk", "fdisk"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("debugfs", "e2fsprogs"),
        ("systemd-analyze", "systemd"),
        ("dpkg-deb", "dpkg"),
        // The README's shell sensor, run by the end-to-end tests (awk is in Debian's base).
        ("curl", "curl"),
        ("openssl", "openssl"),
        // Agents with wrong clocks in the end-to-end tests (hearth_e2e::faketime).
        ("faketime", "faketime"),
    ]
    .into_iter()
    .filter(|(tool, _)| !have(tool))
    .map(|(_, pkg)| pkg)
    .collect();
    let venv_works = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !venv_works {
        missing.extend(["python3", "python3-venv"]);
    }
    // By path, not PATH: the tests start exactly these (hearth_e2e::webdriver).
    missing.extend(
        [("/usr/bin/chromium", "chromium"), ("/usr/bin/chromedriver", "chromium-driver")]
            .into_iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(_, pkg)| pkg),
    );
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        have("apt-get"),
        "install {missing:?} (needed by the tests: network namespaces, SD-card images, browser)"
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

fn test(args: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = args.iter().find(|a| *a != "--skip-cross") {
        anyhow::bail!("unknown test option {unknown} (there is --skip-cross)");
    }
    let started = Instant::now();
    ensure_system_tools()?;
    // The package tests build .deb files with it (deploy.rs).
    deploy::ensure_cargo_deb()?;
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
    // Slow on a fresh machine (~10 min), so after everything else; CI runs it every time.
    if cross::skipped(args) {
        eprintln!(
            "xtask: SKIPPED the cross builds and qemu smoke tests (--skip-cross / \
             HEARTH_SKIP_CROSS); CI runs them: `cargo xtask cross`"
        );
    } else {
        cross::cross()?;
        // The armhf and arm64 packages of what the cross build just made, inspected.
        deploy::cross_packages()?;
    }
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

/// A small weekly schedule so the timeline has something to show: 20.5 °C by default, a night
/// setback, and warmer weekday mornings. Only on a fresh data dir: a restarted demo keeps what
/// the user changed.
async fn demo_schedule(api: &EngineClient) -> Result<(), hearth_proto::client::ClientError> {
    use hearth_proto::schedules::{DefaultTarget, NewRule, Weekday, When};
    if !api.rules().await?.is_empty() {
        return Ok(());
    }
    api.set_default_target(&DefaultTarget { heat_c: 20.5, cool_c: 26.0, sensors: vec![] }).await?;
    let all = vec![
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    let rule = |name: &str, days: Vec<Weekday>, start: &str, end: &str, heat_c: f64| NewRule {
        name: name.to_owned(),
        enabled: true,
        when: When::Weekly { days, start: start.to_owned(), end: end.to_owned() },
        heat_c: Some(heat_c),
        cool_c: None,
        sensors: vec![],
    };
    let weekdays = all[..5].to_vec();
    api.create_rule(&rule("Night", all, "22:30", "06:00", 17.0)).await?;
    api.create_rule(&rule("Weekday mornings", weekdays, "06:00", "08:30", 21.0)).await?;
    Ok(())
}

/// A bench: prints its figures, fails only when it cannot measure. The flag is `--static`.
type Bench = fn(bool) -> anyhow::Result<()>;

/// Every bench, by name; `cargo xtask bench` runs them all in this order.
const BENCHES: &[(&str, Bench)] = &[
    ("sensor-agent", bench_sensor_agent),
    ("history", bench_history),
    ("ingest", bench_ingest),
    ("web", webbench::bench_web),
];

/// Readings history: a year of 1-minute readings of 10 sensors (5.26 M) loaded through the
/// engine's ingest path into a temporary SQLite file, then the chart queries timed. The code
/// is the engine's `bench_history` example, built and run with the release profile (xtask
/// itself runs unoptimised and does not link the engine).
fn bench_history(_static_link: bool) -> anyhow::Result<()> {
    bench_engine_example("bench_history")
}

/// Ingest over HTTP: `PUT /v1/sensors/update` with 10 readings per request from 16, 64 and
/// 256 concurrent clients, against the engine's router in the same process (the engine's
/// `bench_ingest` example, release profile).
fn bench_ingest(_static_link: bool) -> anyhow::Result<()> {
    bench_engine_example("bench_ingest")
}

fn bench_engine_example(example: &str) -> anyhow::Result<()> {
    run(
        &format!("{example} (release build of the engine's example)"),
        cargo().args(["run", "--quiet", "--release", "-p", "hearth-engine", "--example", example]),
    )
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    let static_link = args.iter().any(|a| a == "--static");
    let which = args.iter().map(String::as_str).find(|a| !a.starts_with("--"));
    let selected: Vec<_> =
        BENCHES.iter().filter(|(name, _)| which.is_none_or(|w| w == *name)).collect();
    anyhow::ensure!(
        !selected.is_empty(),
        "no bench {which:?}; there are: {}",
        BENCHES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
    );
    for (name, run_bench) in selected {
        eprintln!("xtask: bench {name}");
        run_bench(static_link)?;
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// A free loopback port, taken and released: for a benched server that binds it right away.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `(VmRSS, VmHWM)` of a process in KiB, and its CPU time (user + system) in clock ticks.
fn proc_usage(pid: u32) -> anyhow::Result<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/{pid}/status"))
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) : utime is the 12th, stime 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<u64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let cpu = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Ok((field("VmRSS:")?, field("VmHWM:")?, cpu))
}

/// Resident KiB of a process by where the pages come from: its executable, shared libraries,
/// and anonymous memory (heap, stacks).
fn rss_by_origin(pid: u32, exe: &Path) -> anyhow::Result<(u64, u64, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let exe = std::fs::canonicalize(exe)?;
    let (mut own, mut libs, mut anon) = (0, 0, 0);
    let mut current = String::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Rss:") => {
                let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                if Path::new(&current) == exe {
                    own += kib;
                } else if current.contains(".so") {
                    libs += kib;
                } else {
                    anon += kib;
                }
            }
            // A mapping's header: "addr-addr perms offset dev inode [path]".
            Some(first)
                if first.contains('-')
                    && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') =>
            {
                current = line.split_whitespace().nth(5).unwrap_or_default().to_owned();
            }
            _ => {}
        }
    }
    Ok((own, libs, anon))
}

/// The sensor agent's footprint: the stripped size-profile binary, and its memory and CPU
/// after an hour's worth of reports (360 at 10 s) against the real engine, run at a 20 ms
/// interval. `--engine URL` and `--mdns false`: no mDNS daemon, no network namespace needed.
///
/// Dynamically linked, glibc's libc/libm/ld.so are ~2 MB of the RSS (shared with every other
/// process); `static_link` builds like the agents ship (static), with glibc's `crt-static`
/// (musl, the Pi's libc, is not installed here: glibc makes the binary ~1 MB bigger).
fn bench_sensor_agent(static_link: bool) -> anyhow::Result<()> {
    const REPORTS: usize = 360;
    const SENSOR: &str = "28-00000000a001";
    let mut build = cargo();
    build.args([
        "build",
        "--profile",
        "release-small",
        "-p",
        "hearth-sensor-agent",
        "--bin",
        "hearth-sensor-agent",
    ]);
    let mut agent_bin = target_dir().join("release-small/hearth-sensor-agent");
    if static_link {
        let host = Command::new("rustc").arg("-vV").output()?;
        let host = String::from_utf8_lossy(&host.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("rustc -vV names no host"))?;
        // An explicit --target keeps the flag off build scripts and proc macros.
        let var = format!("CARGO_TARGET_{}_RUSTFLAGS", host.to_uppercase().replace('-', "_"));
        build.args(["--target", &host]).env(var, "-C target-feature=+crt-static");
        agent_bin = target_dir().join(&host).join("release-small/hearth-sensor-agent");
    }
    run("build the agent (release-small)", &mut build)?;
    run(
        "build the engine (debug)",
        cargo().args(["build", "-p", "hearth-engine", "--bin", "hearth-engine"]),
    )?;
    // The agent must not link a database or a TLS stack (ARCHITECTURE.md invariant).
    let tree = cargo()
        .args(["tree", "-p", "hearth-sensor-agent", "-e", "normal", "--prefix", "none"])
        .output()?;
    anyhow::ensure!(tree.status.success(), "cargo tree failed");
    let tree = String::from_utf8_lossy(&tree.stdout);
    let heavy: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| {
            ["sqlx", "rustls", "openssl", "aws-lc", "ring", "native-tls"]
                .iter()
                .any(|h| c == h || c.starts_with(&format!("{h}-")))
        })
        .collect();
    let crates: BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let engine_bin = target_dir().join("debug/hearth-engine");
    let size = std::fs::metadata(&agent_bin)?.len();

    let work = std::env::temp_dir().join(format!("hearth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let data = work.join("engine");
    let data_s = data.to_string_lossy().to_string();
    let engine_out = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(&engine_bin).args(["--data-dir", &data_s]).args(args).output()?;
        anyhow::ensure!(out.status.success(), "hearth-engine {args:?} failed");
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let key = engine_out(&["device-key", "--role", "sensor", "bench-sensor"])?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut children = Children(Vec::new());
    children.0.push((
        "engine",
        Command::new(&engine_bin)
            .args(["--data-dir", &data_s, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--mdns", "false"])
            .env("RUST_LOG", "warn")
            .spawn()?,
    ));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let api = EngineClient::new(&url, None);
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while api.status().await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the engine did not answer at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    })?;
    let queue = work.join("queue").to_string_lossy().to_string();
    let world = work.join("world.json").to_string_lossy().to_string();
    let started = Instant::now();
    let agent = Command::new(&agent_bin)
        .args(["--engine", &url, "--host-id", "bench-sensor", "--device-key", &key])
        .args(["--hardware", "simulated", "--sim-world", &world, "--interval-s", "0.02"])
        .args(["--queue-dir", &queue])
        .env("RUST_LOG", "warn")
        .spawn()?;
    let pid = agent.id();
    children.0.push(("sensor agent", agent));
    let stored = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n = api.readings(SENSOR).await.map(|p| p.points.len()).unwrap_or(0);
            if n >= REPORTS {
                return Ok(n);
            }
            anyhow::ensure!(Instant::now() < deadline, "only {n} of {REPORTS} reports stored");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })?;
    let elapsed = started.elapsed();
    let (rss, hwm, cpu_ticks) = proc_usage(pid)?;
    let (own, libs, anon) = rss_by_origin(pid, &agent_bin)?;
    // With --engine there must be no mDNS daemon (its own thread): main + one blocking thread.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    drop(children);
    let _ = std::fs::remove_dir_all(&work);

    // Clock ticks are 1/100 s on Linux (USER_HZ).
    let cpu_ms = cpu_ticks as f64 * 10.0;
    let per_report = cpu_ms / stored as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("bench sensor-agent (x86_64 host; the Pi Zero is ARMv6, measure there too)");
    println!(
        "  binary, release-small, stripped, {}: {:.2} MiB ({size} bytes)   goal <= 3 MB",
        if static_link { "static (glibc)" } else { "dynamic" },
        size as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  dependencies: {} crates; database or TLS crates: {}",
        crates.len(),
        if heavy.is_empty() { "none".to_owned() } else { format!("{heavy:?} (must be none)") }
    );
    println!(
        "  {stored} reports stored in {:.1} s (20 ms interval, the real engine)",
        elapsed.as_secs_f64()
    );
    println!(
        "  memory after them: VmRSS {:.2} MiB, VmHWM (peak) {:.2} MiB          goal <= 4 MB",
        mib(rss),
        mib(hwm)
    );
    println!(
        "    of which: the binary's pages {:.2} MiB, heap and stacks {:.2} MiB, shared libraries \
         {:.2} MiB",
        mib(own),
        mib(anon),
        mib(libs)
    );
    if libs > 0 {
        println!(
            "    (glibc's libc/libm/ld.so are shared with every process; a static build has \
             none: `cargo xtask bench sensor-agent --static`)"
        );
    }
    println!("  threads: {} {threads:?} (no mDNS daemon with --engine)", threads.len());
    println!(
        "  CPU: {cpu_ms:.0} ms in total, {per_report:.2} ms a report = {:.1} ms/min at 10 s   \
         goal <= 10 ms/min",
        per_report * 6.0
    );
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
    let mut web_port: Option<u16> = None;
    let mut dev_assets: Option<String> = None;
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
            "--web-port" => {
                web_port = Some(
                    it.next()
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| anyhow::anyhow!("--web-port needs a number"))?,
                )
            }
            // Serve the dashboard's files from disk (web-ui/assets) for working on them.
            "--dev-assets" => {
                dev_assets = Some(root().join("web-ui/assets").to_string_lossy().to_string())
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
            "-p",
            "hearth-web",
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
    let sensor_key = engine_out(&["device-key", "--role", "sensor", "demo-sensor"])?;
    let relay_key = engine_out(&["device-key", "--role", "relay", "demo-relay"])?;
    let admin = engine_out(&["admin-token"])?;
    let admin_token = admin.strip_prefix("admin.").unwrap_or(&admin).to_owned();
    let url = format!("http://127.0.0.1:{port}");
    // The dashboard next to the engine: 8088 beside the default 8080.
    let web_port = web_port.unwrap_or(port.saturating_add(8));

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
            min_on_s: 20,
            min_off_s: 20,
            changeover_s: 20,
            ..ControlSettings::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("setting the demo control settings: {e}"))?;
        demo_schedule(&api).await.map_err(|e| anyhow::anyhow!("setting the demo schedule: {e}"))
    })?;
    let engine_flag: Vec<&str> = if discovery { vec![] } else { vec!["--engine", &url] };
    // The relay agent's own short-cycle protection, scaled like the engine's minimum times
    // (a real furnace keeps the defaults of deploy/config/relay-agent.toml).
    let relay_toml = data.join("relay-agent.toml");
    std::fs::write(
        &relay_toml,
        "[[outputs]]\nid = \"heat\"\nname = \"Furnace\"\nfunction_hint = \"heat\"\n\
         min_on_s = 20\nmin_off_s = 20\n\n\
         [[outputs]]\nid = \"cool\"\nname = \"Air conditioner\"\nfunction_hint = \"cool\"\n\
         min_on_s = 20\nmin_off_s = 20\n",
    )?;
    children.0.push((
        "relay agent",
        Command::new(bin("hearth-relay-agent"))
            .args([
                "--config",
                &relay_toml.to_string_lossy(),
                "--host-id",
                "demo-relay",
                "--device-key",
                &relay_key,
                "--listen",
                "127.0.0.1:0",
                // Said explicitly: a relay agent has no default backend. The engine and the
                // dashboard show these relays as simulated.
                "--hardware",
                "simulated",
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
                "--queue-dir",
                &data.join("sensor-queue").to_string_lossy(),
                "--sim-start-c",
                "17",
                "--sim-time-scale",
                "60",
            ])
            .args(&engine_flag)
            .spawn()?,
    ));
    // The dashboard finds the engine like the agents do.
    let web_url = format!("http://127.0.0.1:{web_port}");
    let web_listen = format!("127.0.0.1:{web_port}");
    let mut web = Command::new(bin("hearth-web"));
    web.args(["--listen", &web_listen]).args(&engine_flag);
    if let Some(dir) = &dev_assets {
        web.args(["--dev-assets", dir]);
    }
    children.0.push(("web", web.spawn()?));
    eprintln!(
        "\n  Hearth is running. The dashboard: {web_url}\n  \
         Log in there with the admin token: {admin_token}\n  \
         The engine's API: {url}\n  \
         The simulated room starts at 17 °C and runs 60× faster than real time.\n  \
         The schedule (local time): 20.5 °C, 17 °C from 22:30 to 06:00, 21 °C weekday mornings.\n  \
         Watch it decide: curl {url}/v1/control   What is coming: curl {url}/v1/schedule/timeline\n  \
         Live: curl -N {url}/v1/events\n  \
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
