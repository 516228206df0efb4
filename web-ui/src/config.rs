//! hearth-web's configuration: flags > `HEARTH_WEB_*` env vars > TOML file > defaults
//! (layered by [`hearth_common::config::load`]; keys in the file are the long flag names with
//! `_` for `-`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Hearth web dashboard: serves the dashboard and relays it to the engine's REST API, with a
/// login (the engine's admin token) for everything that changes the house.
#[derive(Debug, Clone, clap::Parser, Serialize, Deserialize)]
#[command(name = "hearth-web", version, about, long_about = None)]
pub struct Config {
    /// TOML configuration file (keys are the long flag names with `_`).
    #[arg(long, env = "HEARTH_WEB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port the dashboard listens on.
    #[arg(long, env = "HEARTH_WEB_LISTEN", value_name = "ADDR", default_value = "0.0.0.0:8088")]
    pub listen: SocketAddr,

    /// The engine's base URL, e.g. `http://10.0.0.2:8080`. Skips mDNS discovery.
    #[arg(long, env = "HEARTH_WEB_ENGINE", value_name = "URL")]
    pub engine: Option<String>,

    /// Only follow an engine advertising this site id (mDNS discovery; the site id is the part
    /// of a device key before the dot). Default: the first engine found.
    #[arg(long, env = "HEARTH_WEB_SITE_ID", value_name = "ID")]
    pub site_id: Option<String>,

    /// A login ends after this many seconds without a request that uses it.
    #[arg(
        long,
        env = "HEARTH_WEB_SESSION_IDLE_S",
        value_name = "SECONDS",
        default_value_t = 7 * 24 * 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub session_idle_s: u64,

    /// A login ends this many seconds after it began, used or not.
    #[arg(
        long,
        env = "HEARTH_WEB_SESSION_MAX_S",
        value_name = "SECONDS",
        default_value_t = 30 * 24 * 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub session_max_s: u64,

    /// Serve the dashboard's files from this directory instead of the copies built into the
    /// binary (for working on the dashboard: edit and reload, no rebuild).
    #[arg(long, env = "HEARTH_WEB_DEV_ASSETS", value_name = "DIR")]
    pub dev_assets: Option<PathBuf>,
}
