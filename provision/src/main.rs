//! `hearth-provision`: the command line of the library (see lib.rs). Usage mistakes exit with
//! 2 and `--help` with 0 before anything is read or written; a refusal or failure exits with 1
//! and says why.

use std::process::ExitCode;

use clap::Parser;

/// Write a Hearth agent (sensor or relay), its systemd unit, config, device key and first-boot
/// settings (login user, SSH key, Wi-Fi, hostname) into a Raspberry Pi OS Lite image file or an
/// already-flashed card. No root is needed for an image file; nothing is mounted.
#[derive(Debug, Parser)]
#[command(name = "hearth-provision", version)]
struct Cli {
    #[command(flatten)]
    args: hearth_provision::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match hearth_provision::provision(&cli.args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-provision: {e:#}");
            ExitCode::FAILURE
        }
    }
}
