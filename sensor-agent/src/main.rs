//! `hearth-sensor-agent`: see the library crate for what it does.

use std::process::ExitCode;
use std::time::Duration;

use hearth_sensor_agent::Config;

fn main() -> ExitCode {
    // Flag errors, --help and --version exit here with clap's own message.
    let config = match hearth_common::config::load::<Config>() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hearth-sensor-agent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    hearth_common::init_logging("info");
    // One thread: the agent does one thing at a time, and a Pi Zero has one core. Blocking
    // sensor reads go to tokio's blocking pool, capped at one thread (the loop awaits each read
    // before the next, so a second thread would only add a stack), kept alive across the
    // default 10 s interval instead of being re-created for every read. Measured with
    // `cargo xtask bench sensor-agent`: the agent's own heap and stacks are ~0.4 MB of its RSS;
    // the rest is the mapped binary and (when dynamically linked) libc.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .thread_keep_alive(Duration::from_secs(60))
        .thread_name("hearth-read")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hearth-sensor-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result =
        runtime.block_on(hearth_sensor_agent::run(config, hearth_common::shutdown_signal()));
    // A sensor read still running on the blocking pool (up to ~750 ms) must not hold up exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<hearth_sensor_agent::manage::RestartRequested>() => {
            eprintln!("hearth-sensor-agent: {e}");
            ExitCode::from(hearth_sensor_agent::manage::RESTART_EXIT_CODE)
        }
        Err(e) => {
            eprintln!("hearth-sensor-agent: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
