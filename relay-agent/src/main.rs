//! `hearth-relay-agent`: parse the configuration, start logging and a runtime, run the agent.

use std::process::ExitCode;

use hearth_relay_agent::Config;

fn main() -> ExitCode {
    // clap errors, --help and --version exit inside `load` with clap's own message.
    let config = match hearth_common::config::load::<Config>() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hearth-relay-agent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    hearth_common::init_logging("info");
    if config.command == Some(hearth_relay_agent::config::Command::SafeState) {
        return match hearth_relay_agent::safe_state(&config) {
            Ok(driven) => {
                let states: Vec<String> =
                    driven.iter().map(|(id, state)| format!("{id}={state:?}")).collect();
                tracing::info!(outputs = %states.join(" "), "every output in its safe state");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hearth-relay-agent safe-state: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // One thread is plenty: a few requests a minute and a lease timer. It also keeps RAM and
    // threads down on a single-core Pi Zero.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hearth-relay-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hearth_relay_agent::run(config, hearth_common::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        // Not a failure to report: systemd's Restart=on-failure starts the agent again.
        Err(e) if e.is::<hearth_common::manage::RestartRequested>() => {
            ExitCode::from(hearth_common::manage::RESTART_EXIT_CODE)
        }
        Err(e) => {
            // `{:#}` prints the whole chain: "cannot start the relay hardware: writing ...".
            eprintln!("hearth-relay-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
