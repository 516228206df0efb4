//! Runtime pieces every Hearth binary shares: layered configuration, mDNS discovery of the
//! engine, credentials, the host id, logging, shutdown signals, and the file through which the
//! simulated relays and the simulated room share one world.
//!
//! Invariant: no database and no hardware crates here; the agents link this crate and must stay
//! small.

pub mod auth;
pub mod config;
pub mod discovery;
pub mod host_id;
pub mod simworld;

/// Initialise logging to stderr. `RUST_LOG` overrides `default_filter` (e.g. `info`).
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // A second call (tests) keeps the first subscriber; that is fine.
    // Colour only on a terminal: journald, files and test harnesses read plain text.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves when the process receives SIGTERM (systemd stop) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers we cannot stop gracefully; waiting forever is the honest
        // fallback (the process is then stopped by SIGKILL).
        (term, int) => {
            tracing::error!(
                term_ok = term.is_ok(),
                int_ok = int.is_ok(),
                "cannot install signal handlers"
            );
            std::future::pending::<()>().await;
        }
    }
}
