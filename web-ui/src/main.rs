//! `hearth-web`: parse the configuration, start logging and a runtime, serve the dashboard.

use std::process::ExitCode;

use hearth_web::{Config, Web};

fn main() -> ExitCode {
    // clap errors, --help and --version exit inside `load` with clap's own message.
    let config = match hearth_common::config::load::<Config>() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hearth-web: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    hearth_common::init_logging("info");
    // Two threads: a handful of browsers and one upstream event stream.
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("hearth-web: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(async {
        let web = Web::start(config).await?;
        web.run(hearth_common::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-web: {e:#}");
            ExitCode::FAILURE
        }
    }
}
