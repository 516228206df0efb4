//! Runtime pieces every Hearth binary shares: layered configuration, mDNS discovery of the
//! engine, credentials, the host id, logging, shutdown signals, systemd notifications, and the
//! file through which the simulated relays and the simulated room share one world.
//!
//! Invariant: no database and no hardware crates here; the agents link this crate and must stay
//! small.

pub mod auth;
pub mod config;
pub mod discovery;
pub mod host_id;
#[cfg(feature = "http")]
pub mod http;
mod logging;
#[cfg(feature = "manage")]
pub mod manage;
pub mod metrics;
pub mod simworld;
#[cfg(feature = "http")]
pub mod sse;
pub mod systemd;

pub use logging::init_logging;

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
