//! `cargo xtask <command>`: the project's two front-door commands (`demo`, `test`) and its
//! helpers; `cargo xtask help` lists them and `cargo xtask <command> --help` says what each
//! does and takes, without doing it. Every command that starts processes stops them when xtask
//! is stopped (SIGTERM, SIGINT, SIGHUP; see `procs.rs`).
//!
//! - `demo`: the whole system on this machine (see `demo/`).
//! - `test`: installs the system tools the tests need, then fmt, clippy and every test, then
//!   the cross builds for the Raspberry Pis with their qemu smoke tests (`--skip-cross` or
//!   `HEARTH_SKIP_CROSS=1` leave those out of a local fast run).
//! - `cross`: just the cross builds and qemu smoke tests (deploy/cross/build.sh; see cross.rs).
//! - `dist`: Debian packages (cargo-deb) of the engine and agents for amd64 and, where the
//!   cross build left binaries, armhf and arm64, into `target/debian/` (see `deploy.rs`).
//! - `provision`: write an agent, its unit, config, key and first-boot settings into a
//!   Raspberry Pi OS image or card (see `provision/`).
//! - `openapi`: regenerate the committed OpenAPI documents after an intended API change.
//! - `bench [NAME] [--static]`: print the performance figures (see `bench.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, Subcommand};

use procs::{Group, run, run_in};

mod bench;
mod cross;
mod demo;
mod deploy;
mod procs;
mod provision;
mod webbench;

/// Hearth's project commands.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true,
    after_help = "`cargo xtask <command> --help` says what a command does and takes, and does \
                  nothing else."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the whole system on this machine: the engine, simulated sensor and relay agents
    /// sharing one simulated room, and the dashboard. Prints the URL; Ctrl-C stops it.
    Demo(demo::Args),
    /// Every check and test: installs the system tools the tests need (with sudo when not
    /// root), then fmt, clippy, all tests, the Raspberry Pi cross builds with their qemu smoke
    /// tests, and the ARM packages.
    Test(TestArgs),
    /// Just the Raspberry Pi cross builds (deploy/cross/build.sh: installs Debian's Rust, zig
    /// and qemu when missing) and their smoke tests under qemu.
    Cross,
    /// Debian packages (cargo-deb) of the four services into target/debian/: amd64 from a
    /// release-small build, armhf and arm64 from the cross-built binaries when present.
    Dist,
    /// Regenerate the committed OpenAPI documents (openapi/) from the code.
    Openapi,
    /// Print the performance figures (never asserted).
    Bench(bench::Args),
    /// Write an agent, its unit, config, credential and first-boot settings into a Raspberry
    /// Pi OS Lite image or card.
    Provision(Box<provision::Args>),
}

#[derive(Debug, Clone, clap::Args)]
struct TestArgs {
    /// Leave out the cross builds and their qemu smoke tests (a local fast run; CI runs them).
    /// Also HEARTH_SKIP_CROSS=1.
    #[arg(long)]
    skip_cross: bool,
}

fn main() -> ExitCode {
    // Usage errors exit with 2, --help with 0, before anything else happens.
    let cli = Cli::parse();
    if let Err(e) = procs::handle_signals() {
        eprintln!("xtask: cannot catch signals, so it could not stop its children: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Cmd::Demo(args) => demo::demo(args),
        Cmd::Test(args) => test(args),
        Cmd::Cross => cross::cross(),
        Cmd::Openapi => openapi(),
        Cmd::Dist => deploy::dist(),
        Cmd::Bench(args) => bench::bench(args),
        Cmd::Provision(args) => provision::provision(args).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match (procs::stop_requested(), procs::stop_exit_code()) {
            (Some(sig), Some(code)) => {
                eprintln!("xtask: stopped by {sig}; every process it started has ended");
                ExitCode::from(code)
            }
            _ => {
                eprintln!("xtask: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// Cargo (the one running xtask), in the workspace root; stopped with xtask, even by `kill -9`.
fn cargo() -> Command {
    let mut c = procs::bound(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
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
        // The dashboard's JavaScript unit tests (web-ui/tests-js, Node's built-in runner).
        ("node", "nodejs"),
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
    // In xtask's process group: sudo may ask for a password on the terminal.
    run_in("apt-get update", &mut apt(&["update", "-q"]), Group::Terminal)?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    run_in(&format!("apt-get install {missing:?}"), &mut install, Group::Terminal)
}

fn test(args: &TestArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let skip_cross = cross::skipped(args.skip_cross);
    // The cross step comes last: a problem it would meet only after the tests is found now.
    if !skip_cross {
        cross::preflight()?;
    }
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
    // The dashboard's pure modules (formatting, calendar, chart scales), without a browser.
    run("node --test", Command::new("node").arg("--test").args(js_tests()?).current_dir(root()))?;
    run("cargo test", cargo().args(["test", "--workspace", "--locked"]))?;
    // Slow on a fresh machine (~10 min), so after everything else; CI runs it every time.
    if skip_cross {
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

/// web-ui/tests-js/*.test.mjs, named one by one: Node's runner reads a directory argument
/// differently from one major version to the next, a file list the same in all.
fn js_tests() -> anyhow::Result<Vec<PathBuf>> {
    let dir = root().join("web-ui/tests-js");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no *.test.mjs in {}", dir.display());
    Ok(files)
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

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}
