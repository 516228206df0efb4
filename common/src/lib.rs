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
pub mod simworld;
pub mod systemd;

/// Initialise logging to stderr. `RUST_LOG` overrides `default_filter`: a level (`debug`), or
/// comma-separated `target=level` directives with an optional default level
/// (`warn,hearth_relay_agent=debug`).
///
/// The filter is tracing-subscriber's `Targets`, not `EnvFilter`: `EnvFilter` pulls in a regex
/// engine (several hundred KB of code, resident in every agent on a Pi Zero) for span-field
/// matching nobody uses here.
pub fn init_logging(default_filter: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let default: Targets = default_filter.parse().unwrap_or_default();
    let (filter, rejected) = match std::env::var("RUST_LOG") {
        Ok(value) => match value.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (default, Some((value, e))),
        },
        Err(_) => (default, None),
    };
    // A second call (tests) keeps the first subscriber; that is fine.
    // Colour only on a terminal: journald, files and test harnesses read plain text.
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .finish()
        .with(filter)
        .try_init();
    if let Some((value, e)) = rejected {
        tracing::warn!(rust_log = %value, error = %e, "RUST_LOG not understood; using the default");
    }
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
