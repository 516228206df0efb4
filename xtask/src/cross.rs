//! `cargo xtask cross`: the Raspberry Pi cross builds, proven under qemu-user.
//!
//! Runs `deploy/cross/build.sh` (see its header and docs/cross.md): `install` in the
//! foreground (sudo may ask for a password) installs Debian's Rust and std source,
//! qemu-user-static, zig and cargo-zigbuild if missing; `build-smoke`, in its own process
//! group so that stopping xtask stops qemu and the servers too, builds both agents for
//! the three musl targets (ARMv6, ARMv7, aarch64) and what runs on the engine's board (the
//! engine, the web dashboard and hearth-provision) for aarch64, with the `release-small`
//! profile; smoke-tests every binary under qemu with the Pi's CPU model against a native engine
//! on loopback (the agents report to it, the dashboard relays it; hearth-provision answers
//! `--version` and `--help`); prints the table of stripped sizes, build times and results.
//!
//! `cargo xtask test` runs it after the workspace tests, and checks first ([`preflight`]) what
//! would make it fail only then: a work dir the user cannot write (the default of a root run,
//! /var/cache/hearth-cross, is root's; anyone else's is ~/.cache/hearth-cross).
//! `--skip-cross` or `HEARTH_SKIP_CROSS=1` leave it out of a local fast run; CI never sets them.

use std::process::Command;

use hearth_harness::procs::{self, Group};
use hearth_harness::{ENGINE, root, run, run_in};

/// The targets the script builds by default, each with the Pi it is for.
pub(crate) const TARGETS: &[(&str, &str)] = &[
    ("arm-unknown-linux-musleabihf", "Pi Zero / Zero W / 1 (ARMv6)"),
    ("armv7-unknown-linux-musleabihf", "Pi 2 / 3, 32-bit (ARMv7)"),
    ("aarch64-unknown-linux-musl", "Pi Zero 2 W / 3 / 4 / 5, 64-bit"),
];

/// Whether the caller asked to leave the cross path out (local fast runs only): the flag, or
/// `HEARTH_SKIP_CROSS`.
pub(crate) fn skipped(flag: bool) -> bool {
    flag || std::env::var("HEARTH_SKIP_CROSS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `deploy/cross/build.sh MODE`.
fn script(mode: &str) -> Command {
    let mut c = procs::bound("bash");
    c.arg(root().join("deploy/cross/build.sh")).arg(mode).current_dir(root());
    c
}

/// The checks `cargo xtask test` makes before its first test, so that what would stop the
/// cross step at its end stops it at once: the work dir must be this user's to write (only
/// root may write the default of a root run, /var/cache/hearth-cross). Returns the work dir.
pub(crate) fn preflight() -> anyhow::Result<String> {
    check_cross_toml()?;
    let out = script("check")
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run deploy/cross/build.sh: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "the cross step would fail: {}(or leave it out of a local run: --skip-cross)",
        String::from_utf8_lossy(&out.stderr).trim_start_matches("cross: ERROR: ")
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(crate) fn cross() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let dir = preflight()?;
    // The engine the agents report to and the dashboard relays in the smoke test: the native
    // build, on loopback. Built with every service, as the end-to-end tests build them: the
    // same packages give the same features, so after `cargo xtask test`'s tests nothing is
    // rebuilt (the engine alone resolves features of its own, and took two minutes).
    run(
        "build the native engine (stand-in engine for the qemu smoke tests)",
        hearth_harness::build_command("dev", &hearth_harness::SERVICES).arg("--locked"),
    )?;
    let engine = hearth_harness::binary("dev", ENGINE.package);
    // The script builds HEARTH_CROSS_TARGETS when set (and not empty), else all of TARGETS.
    let targets = std::env::var("HEARTH_CROSS_TARGETS")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| TARGETS.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "));
    eprintln!(
        "xtask: cross builds and qemu smoke tests for {targets} (work dir {dir}; the first run \
         on a machine takes ~10 min, a rerun much less)"
    );
    let failed = |what: &str| {
        format!(
            "the cross {what} FAILED; the lines starting with `cross:` and `FAIL` above say \
             which target and binary, with its log. Rerun just this part with `cargo xtask \
             cross` (or `deploy/cross/build.sh install|build|smoke`); `--skip-cross` / \
             HEARTH_SKIP_CROSS=1 leaves it out of a local `cargo xtask test`"
        )
    };
    // Installing may ask for sudo's password: in the foreground, xtask's process group.
    run_in("install the cross toolchain when missing", &mut script("install"), Group::Parent)
        .map_err(|e| anyhow::anyhow!("{e:#}: {}", failed("toolchain install")))?;
    // Building and the smoke tests in their own group: a stop takes qemu and the servers along.
    run(
        "cross build and qemu smoke tests",
        script("build-smoke").env("HEARTH_CROSS_HOST_ENGINE", &engine),
    )
    .map_err(|e| anyhow::anyhow!("{e:#}: {}", failed("build or a qemu smoke test")))?;
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
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn cross_toml_names_every_target() -> anyhow::Result<()> {
        super::check_cross_toml()
    }

    /// `build.sh check` as a user other than root (root's permission checks always pass): as
    /// `nobody` when the test runs as root, else as the test's own user.
    fn check_as_user(home: &Path, work_dir: Option<&Path>) -> anyhow::Result<(bool, String)> {
        let root = Command::new("id").arg("-u").output()?.stdout.starts_with(b"0");
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "bash"]);
            c
        } else {
            Command::new("bash")
        };
        c.arg(hearth_harness::root().join("deploy/cross/build.sh")).arg("check");
        c.env("HOME", home).env_remove("XDG_CACHE_HOME").env_remove("HEARTH_CROSS_DIR");
        if let Some(dir) = work_dir {
            c.env("HEARTH_CROSS_DIR", dir);
        }
        let out = c.output()?;
        Ok((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }

    /// Someone who is not root (running `cargo xtask test`, with sudo for the packages) gets a
    /// work dir of their own, not root's /var/cache, which they cannot write: that failed the
    /// cross step after the whole test run. A work dir they cannot write is refused at once,
    /// with the fix.
    #[test]
    fn a_user_gets_a_work_dir_of_their_own_and_an_unwritable_one_is_refused() -> anyhow::Result<()>
    {
        let tmp = tempfile::tempdir()?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777))?;
        let (ok, said) = check_as_user(tmp.path(), None)?;
        assert!(ok, "{said}");
        assert_eq!(said.trim(), tmp.path().join(".cache/hearth-cross").to_string_lossy());

        // An earlier run as root left a directory this user cannot write.
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir_all(theirs.join("venv"))?;
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777))?;
        std::fs::set_permissions(theirs.join("venv"), std::fs::Permissions::from_mode(0o555))?;
        let (ok, said) = check_as_user(tmp.path(), Some(&theirs))?;
        assert!(!ok, "{said}");
        assert!(said.contains("not writable") && said.contains("sudo chown -R"), "{said}");
        std::fs::set_permissions(theirs.join("venv"), std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}
