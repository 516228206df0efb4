//! `cargo xtask bench [NAME] [--static]`: the performance figures of the project's targets
//! (all benches, or one). Figures are printed, never asserted: timing is not a test. The
//! engine benches are release-built examples in `engine/examples/` (xtask never links the
//! engine); the others start the real binaries as the demo does (the harness's `procs.rs`), so a signal
//! stops them too.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hearth_proto::client::EngineClient;

use hearth_harness::procs::{self, Children};
use hearth_harness::{ENGINE, SENSOR_AGENT, cargo, run, target_dir};

use crate::webbench;

/// Print the figures of one bench, or of all.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// The bench (default: all of them, in this order).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(BENCHES.iter().map(|(n, _)| *n)))]
    name: Option<String>,
    /// Link the sensor agent statically (glibc `crt-static`), as agents ship.
    #[arg(long = "static")]
    static_link: bool,
}

/// A bench: prints its figures, fails only when it cannot measure. The flag is `--static`.
type Bench = fn(bool) -> anyhow::Result<()>;

/// Every bench, by name; `cargo xtask bench` runs them all in this order.
const BENCHES: &[(&str, Bench)] = &[
    ("sensor-agent", bench_sensor_agent),
    ("history", bench_history),
    ("ingest", bench_ingest),
    ("migrate", bench_migrate),
    ("web", webbench::bench_web),
    ("control", bench_control),
];

/// The control benchmark: every algorithm and two other thermostats' control laws in four
/// simulated house types, 30 days of the same seeded winter (`hearth-engine simulate --bench`,
/// release build: the debug build takes minutes). Prints the table and whether `anticipate`
/// meets its goal per house type.
fn bench_control(_static_link: bool) -> anyhow::Result<()> {
    run(
        "control benchmark (release build of the engine)",
        cargo()
            .args(["run", "--release", "-p", ENGINE.package, "--", "simulate", "--bench"])
            .args(["--days", "30", "--seed", "1"]),
    )
}

/// Readings history: a year of 1-minute readings of 10 sensors (5.26 M) loaded through the
/// engine's ingest path into a temporary SQLite file, then the chart queries timed. The code
/// is the engine's `bench_history` example, built and run with the release profile (xtask
/// itself runs unoptimised and does not link the engine).
fn bench_history(_static_link: bool) -> anyhow::Result<()> {
    bench_engine_example("bench_history")
}

/// The store, both backends side by side: readings persisted per second over HTTP (10 per
/// `PUT /v1/sensors/update`) for five shapes of house live and one as a day's backlog, on an
/// empty database and on one holding a year; the engine's memory after a burst; a year's
/// chart; bytes on disk per reading. The engine as packaged (profile `release-small`) runs in
/// a process of its own (the engine's `bench_ingest` example, release profile, starts it).
fn bench_ingest(_static_link: bool) -> anyhow::Result<()> {
    bench_engine_example("bench_ingest")
}

/// `hearth-engine migrate-store` on a year of 1-minute readings of 10 sensors (5.26 M): SQLite
/// to a PostgreSQL server of the bench's own and back (the engine's `bench_migrate` example,
/// release profile).
fn bench_migrate(_static_link: bool) -> anyhow::Result<()> {
    bench_engine_example("bench_migrate")
}

fn bench_engine_example(example: &str) -> anyhow::Result<()> {
    run(
        &format!("{example} (release build of the engine's example)"),
        cargo().args(["run", "--release", "-p", ENGINE.package, "--example", example]),
    )
}

pub(crate) fn bench(args: &Args) -> anyhow::Result<()> {
    let which = args.name.as_deref();
    for (name, run_bench) in BENCHES.iter().filter(|(name, _)| which.is_none_or(|w| w == *name)) {
        eprintln!("xtask: bench {name}");
        run_bench(args.static_link)?;
    }
    Ok(())
}

/// `(VmRSS, VmHWM)` of a process in KiB, and its CPU time (user + system) in clock ticks.
pub(crate) fn proc_usage(pid: u32) -> anyhow::Result<(u64, u64, u64)> {
    let [rss, hwm] = procs::status_kib(pid, ["VmRSS:", "VmHWM:"])?;
    Ok((rss, hwm, procs::cpu_ticks(pid)?))
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
    let mut build = hearth_harness::build_command("release-small", &[SENSOR_AGENT]);
    let mut agent_bin = hearth_harness::binary("release-small", SENSOR_AGENT.package);
    if static_link {
        let host = Command::new("rustc").arg("-vV").output()?;
        let host = String::from_utf8_lossy(&host.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("rustc -vV names no host"))?;
        // An explicit --target keeps the flag off build scripts and proc macros.
        let var = format!("CARGO_TARGET_{}_RUSTFLAGS", host.to_uppercase().replace('-', "_"));
        build.args(["--target", &host]).env(var, "-C target-feature=+crt-static");
        agent_bin = target_dir().join(&host).join("release-small").join(SENSOR_AGENT.package);
    }
    run("build the agent (release-small)", &mut build)?;
    hearth_harness::build("build the engine (debug)", "dev", &[ENGINE])?;
    // The agent must not link a database or a TLS stack (ARCHITECTURE.md invariant).
    let tree = cargo()
        .args(["tree", "-p", SENSOR_AGENT.package, "-e", "normal", "--prefix", "none"])
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
    let engine_bin = hearth_harness::binary("dev", ENGINE.package);
    let size = std::fs::metadata(&agent_bin)?.len();

    let work = std::env::temp_dir().join(format!("hearth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let data = work.join("engine");
    let data_s = data.to_string_lossy().to_string();
    let key = hearth_harness::device_key(&engine_bin, &data, SENSOR_AGENT, "bench-sensor")?;
    let mut children = Children::default();
    let url = start_engine(&mut children, &engine_bin, &data_s)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let api = EngineClient::new(&url, None);
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while api.status().await.is_err() {
            procs::check_stop()?;
            anyhow::ensure!(Instant::now() < deadline, "the engine did not answer at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    })?;
    let queue = work.join("queue").to_string_lossy().to_string();
    let world = work.join("world.json").to_string_lossy().to_string();
    let started = Instant::now();
    let agent = children.start(
        SENSOR_AGENT.name,
        procs::bound(&agent_bin)
            .args(["--engine", &url, "--host-id", "bench-sensor", "--device-key", &key])
            .args(["--hardware", "simulated", "--sim-world", &world, "--interval-s", "0.02"])
            .args(["--queue-dir", &queue])
            .env("RUST_LOG", "warn"),
    )?;
    let pid = agent.id();
    let stored = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n = api.readings(SENSOR).await.map(|p| p.points.len()).unwrap_or(0);
            if n >= REPORTS {
                return Ok(n);
            }
            procs::check_stop()?;
            if let Some(report) = children.exited()? {
                anyhow::bail!("{report}");
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

/// A bench's engine: on a free loopback port, no mDNS, quiet but for its own info lines; its
/// URL once it listens.
pub(crate) fn start_engine(
    children: &mut Children,
    engine_bin: &std::path::Path,
    data_dir: &str,
) -> anyhow::Result<String> {
    let engine = children.start(
        ENGINE.name,
        procs::bound(engine_bin)
            .args(["--data-dir", data_dir, "--listen", "127.0.0.1:0", "--mdns", "false"])
            .env("RUST_LOG", "warn,hearth_engine=info"),
    )?;
    engine.listening_url(Duration::from_secs(30))
}
