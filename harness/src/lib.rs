//! The real binaries, built, started, watched and stopped: one implementation for everything
//! in the repository that runs them (the end-to-end tests in `tests/`, and xtask's demo,
//! benchmarks and deployment tests).
//!
//! - [`SERVICES`]: the four services, the one list of them (packaging facts extend it in
//!   `xtask/src/deploy.rs`).
//! - [`build`], [`binary`]: cargo builds of their packages, and where the binaries land.
//! - [`procs`]: starting a binary, its log lines, waiting until it listens, and stopping it
//!   (SIGTERM, then SIGKILL): process groups, `setpriv --pdeathsig`, and the signal handling of
//!   a command-line program that must stop all it started.
//! - [`postgres`]: a real PostgreSQL server of the test's own, in a temporary directory.
//! - [`engine_credential`], [`device_key`]: a device key or the admin token from the engine's
//!   data dir.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod postgres;
pub mod procs;
mod services;

pub use procs::{Capture, Children, Group, Proc, print_logs, run, run_in, run_stdout};
pub use services::{ENGINE, RELAY_AGENT, SENSOR_AGENT, SERVICES, Service, WEB};

/// The workspace root (the harness lives one level below it).
pub fn root() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness.parent().unwrap_or(harness).to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or `target/` in the workspace root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Where a cargo profile's binaries land: `dev` (and `test`) in `debug/`, `bench` in
/// `release/`, any other in a directory of its name.
pub fn profile_dir(profile: &str) -> PathBuf {
    target_dir().join(match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    })
}

/// The path of a workspace binary built with `profile` (see [`profile_dir`]).
pub fn binary(profile: &str, name: &str) -> PathBuf {
    profile_dir(profile).join(name)
}

/// Cargo (the one running this program when cargo started it), in the workspace root;
/// stopped with this program, even by `kill -9` (see [`procs::bound`]).
pub fn cargo() -> Command {
    let mut c = procs::bound(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// `cargo build --profile PROFILE --bins -p …` of `services`: add flags (`--target`, `--locked`)
/// before running it with [`run`].
pub fn build_command(profile: &str, services: &[Service]) -> Command {
    let mut c = cargo();
    c.args(["build", "--profile", profile, "--bins"]);
    for s in services {
        c.args(["-p", s.package]);
    }
    c
}

/// Build `services` with `profile`, saying `what` first; fails unless cargo succeeds.
pub fn build(what: &str, profile: &str, services: &[Service]) -> anyhow::Result<()> {
    run(what, &mut build_command(profile, services))
}

/// Run `engine --data-dir DATA_DIR ARGS` (`device-key --role sensor HOST`, `admin-token`) and
/// return the line it prints: a device key, or the admin token.
pub fn engine_credential(engine: &Path, data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(engine)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", engine.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "hearth-engine {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A device key for `host` as the agent `service` (its [`Service::role`]), from the engine
/// `engine` with the data dir `data_dir`: what `--device-key` takes.
pub fn device_key(
    engine: &Path,
    data_dir: &Path,
    service: Service,
    host: &str,
) -> anyhow::Result<String> {
    let role =
        service.role.ok_or_else(|| anyhow::anyhow!("{} needs no device key", service.package))?;
    engine_credential(engine, data_dir, &["device-key", "--role", role, host])
}

/// Whether this program runs as root (`id -u` is 0).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
