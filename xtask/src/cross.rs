//! `cargo xtask cross`: the Raspberry Pi cross builds, proven under qemu-user.
//!
//! Runs `deploy/cross/build.sh all` (see its header and docs/cross.md): installs Debian's Rust
//! and std source, qemu-user-static, zig and cargo-zigbuild if missing; builds both agents for
//! the three musl targets (ARMv6, ARMv7, aarch64) and what runs on the engine's board (the
//! engine and the web dashboard) for aarch64, with the `release-small` profile; smoke-tests
//! every binary under qemu with the Pi's CPU model against a native engine on loopback (the
//! agents report to it, the dashboard relays it); prints the table of stripped sizes, build
//! times and results.
//!
//! `cargo xtask test` runs it after the workspace tests. `--skip-cross` or `HEARTH_SKIP_CROSS=1`
//! leave it out of a local fast run; CI never sets them.

use std::process::Command;

use crate::{cargo, root, run, target_dir};

/// The targets the script builds by default, each with the Pi it is for.
pub(crate) const TARGETS: &[(&str, &str)] = &[
    ("arm-unknown-linux-musleabihf", "Pi Zero / Zero W / 1 (ARMv6)"),
    ("armv7-unknown-linux-musleabihf", "Pi 2 / 3, 32-bit (ARMv7)"),
    ("aarch64-unknown-linux-musl", "Pi Zero 2 W / 3 / 4 / 5, 64-bit"),
];

/// Whether the caller asked to leave the cross path out (local fast runs only).
pub(crate) fn skipped(args: &[String]) -> bool {
    args.iter().any(|a| a == "--skip-cross")
        || std::env::var("HEARTH_SKIP_CROSS").is_ok_and(|v| !v.is_empty() && v != "0")
}

pub(crate) fn cross() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    check_cross_toml()?;
    // The engine the agents report to and the dashboard relays in the smoke test: the native
    // build, on loopback.
    run(
        "build the native engine (stand-in engine for the qemu smoke tests)",
        cargo().args(["build", "--locked", "-p", "hearth-engine", "--bin", "hearth-engine"]),
    )?;
    let engine = target_dir().join("debug/hearth-engine");
    let script = root().join("deploy/cross/build.sh");
    // The script builds HEARTH_CROSS_TARGETS when set (and not empty), else all of TARGETS.
    let targets = std::env::var("HEARTH_CROSS_TARGETS")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| TARGETS.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "));
    eprintln!(
        "xtask: cross builds and qemu smoke tests for {targets} (work dir {}; the first run on \
         a machine takes ~10 min, a rerun much less)",
        std::env::var("HEARTH_CROSS_DIR").unwrap_or_else(|_| "/var/cache/hearth-cross".into()),
    );
    let status = Command::new("bash")
        .arg(&script)
        .arg("all")
        .current_dir(root())
        .env("HEARTH_CROSS_HOST_ENGINE", &engine)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", script.display()))?;
    anyhow::ensure!(
        status.success(),
        "the cross build or a qemu smoke test FAILED ({status}); the lines starting with \
         `cross:` and `FAIL` above say which target and binary, with its log. Rerun just this \
         part with `cargo xtask cross` (or `deploy/cross/build.sh build|smoke`); \
         `--skip-cross` / HEARTH_SKIP_CROSS=1 leaves it out of a local `cargo xtask test`"
    );
    eprintln!(
        "xtask: cross builds and qemu smoke tests passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Cross.toml is what users with Docker build with: it must name every target CI proves.
fn check_cross_toml() -> anyhow::Result<()> {
    let path = root().join("Cross.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    // Table headers only (no TOML parser in xtask): `[target.<triple>]` on a line of its own.
    let headers: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with('[')).collect();
    for (triple, _) in TARGETS {
        anyhow::ensure!(
            headers.contains(&format!("[target.{triple}]").as_str()),
            "{} has no [target.{triple}] table",
            path.display()
        );
    }
    anyhow::ensure!(
        !text.to_ascii_lowercase().contains("libssl"),
        "Cross.toml installs libssl: no binary may link OpenSSL"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cross_toml_names_every_target() -> anyhow::Result<()> {
        super::check_cross_toml()
    }
}
