//! `cargo xtask <command>`: the project's commands, listed below; `cargo xtask help` lists
//! them and `cargo xtask <command> --help` says what each does and takes, without doing it.
//! Every command that starts processes stops them when xtask is stopped (SIGTERM, SIGINT,
//! SIGHUP; see the harness's `procs.rs`).
//!
//! - `demo`: the whole system on this machine (see `demo/`).
//! - `test`: installs the system tools the tests need (`tools.rs`), then fmt, clippy and every
//!   test, then the cross builds for the Raspberry Pis with their qemu smoke tests
//!   (`--skip-cross` or `HEARTH_SKIP_CROSS=1` leave those out of a local fast run; `test.rs`).
//! - `cross`: just the cross builds and qemu smoke tests (deploy/cross/build.sh; see cross.rs).
//! - `dist`: Debian packages (cargo-deb) of the engine and agents for amd64 and, where the
//!   cross build left binaries, armhf and arm64, into `target/debian/` (see `deploy.rs`).
//! - `provision`: `hearth-provision` (the `provision/` crate) with this checkout's target dir as
//!   where the agent comes from: write an agent, its unit, config, key and first-boot settings
//!   into a Raspberry Pi OS image or card.
//! - `openapi`: regenerate the committed OpenAPI documents after an intended API change
//!   (see `openapi.rs`).
//! - `bench [NAME] [--static]`: print the performance figures (see `bench.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hearth_harness::procs;

mod bench;
#[cfg(test)]
mod code_map;
mod cross;
mod demo;
mod deploy;
mod openapi;
mod test;
mod tools;
mod util;
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
    Test(test::TestArgs),
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
    /// Pi OS Lite image or card (hearth-provision, taking the agent from this checkout's
    /// target dir unless --binary says otherwise).
    Provision(Box<hearth_provision::Args>),
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
        Cmd::Test(args) => test::test(args),
        Cmd::Cross => cross::cross(),
        Cmd::Openapi => openapi::openapi(),
        Cmd::Dist => deploy::dist(),
        Cmd::Bench(args) => bench::bench(args),
        Cmd::Provision(args) => provision(args),
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

/// The developer's alias: the agent comes from this checkout's target dir unless `--binary`
/// says otherwise.
fn provision(args: &hearth_provision::Args) -> anyhow::Result<()> {
    let mut args = args.clone();
    args.binary.get_or_insert_with(hearth_harness::target_dir);
    hearth_provision::provision(&args).map(|_| ())
}
