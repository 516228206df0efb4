//! `hearth-engine` configuration: flags > `HEARTH_ENGINE_*` env vars > TOML file > defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The central engine of Hearth: REST API, storage, decision loop, relay commanding, mDNS.
#[derive(Debug, Clone, clap::Parser, Serialize, Deserialize)]
#[command(name = "hearth-engine", version, about, long_about = None)]
pub struct Config {
    /// TOML file with any of these settings (keys are the long flag names with `_`).
    #[arg(long, env = "HEARTH_ENGINE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address and port of the HTTP API (port 0: any free port).
    #[arg(long, env = "HEARTH_ENGINE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Directory for the site secret, the engine id and (by default) the SQLite database.
    #[arg(long, env = "HEARTH_ENGINE_DATA_DIR", default_value = "/var/lib/hearth")]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://PATH, or postgres://USER:PASSWORD@HOST/DB?sslmode=… (keep a
    /// password in the environment, not on the command line). Default:
    /// sqlite://<data-dir>/hearth.db.
    #[arg(long, env = "HEARTH_ENGINE_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Advertise the engine on mDNS so agents find it without configuration.
    #[arg(long, env = "HEARTH_ENGINE_MDNS", default_value_t = true, action = clap::ArgAction::Set)]
    pub mdns: bool,

    /// A sensor reading older than this many seconds no longer counts (and is shown stale).
    #[arg(long, env = "HEARTH_ENGINE_STALE_AFTER_S", default_value_t = 120.0)]
    pub stale_after_s: f64,

    /// An agent not heard from for this many seconds is shown offline.
    #[arg(long, env = "HEARTH_ENGINE_OFFLINE_AFTER_S", default_value_t = 90.0)]
    pub offline_after_s: f64,

    /// The decision loop re-evaluates at least this often, in seconds (it also runs on every
    /// new reading).
    #[arg(long, env = "HEARTH_ENGINE_TICK_S", default_value_t = 5.0)]
    pub tick_s: f64,

    /// Seconds a relay stays on without renewal; renewed every quarter of it. If the engine
    /// dies, heat stops within this time.
    #[arg(long, env = "HEARTH_ENGINE_LEASE_S", default_value_t = 120)]
    pub lease_s: u32,

    /// An agent whose clock is off by more than this many seconds is flagged `clock_skewed` in
    /// `GET /v1/agents`, and its readings consistent with the measured offset are re-timed by
    /// it; a reading stamped more than this after its receipt never becomes a sensor's latest.
    #[arg(long, env = "HEARTH_ENGINE_CLOCK_SKEW_MAX_S", default_value_t = 30.0)]
    pub clock_skew_max_s: f64,

    /// Accept device keys printed before keys had roles (for reports and relay registrations
    /// alike, as before, with a warning per agent). Set false once every agent has a key with a
    /// role (`GET /v1/agents` shows each agent's `key_role`).
    #[arg(long, env = "HEARTH_ENGINE_ALLOW_UNTYPED_KEYS", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_untyped_keys: bool,

    /// IANA time zone the schedules are read in, e.g. `Europe/Berlin`. Default: the system's
    /// (`TZ`, else `/etc/localtime`), else UTC.
    #[arg(long, env = "HEARTH_ENGINE_TIME_ZONE")]
    pub time_zone: Option<String>,

    /// Where people open the dashboard (hearth-web), linked from the engine's info page
    /// (`GET /`), e.g. `https://hearth.example/`. Default: port 8088 on the host name the
    /// browser used to reach the engine.
    #[arg(long, env = "HEARTH_ENGINE_DASHBOARD_URL")]
    pub dashboard_url: Option<String>,

    /// Days of raw readings kept (older ones are deleted, their minute and hour rollups stay,
    /// and charts over them are drawn from those); 0 keeps every reading.
    #[arg(long, env = "HEARTH_ENGINE_KEEP_RAW_DAYS", default_value_t = 400)]
    pub keep_raw_days: u32,

    /// Days of per-minute rollups kept (older ones are deleted, the hourly rollups are kept
    /// for ever); 0 keeps every one. At least `keep_raw_days` unless 0.
    #[arg(long, env = "HEARTH_ENGINE_KEEP_MINUTES_DAYS", default_value_t = 800)]
    pub keep_minutes_days: u32,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do (default: serve).
#[derive(Debug, Clone, clap::Subcommand, Serialize, Deserialize)]
pub enum Command {
    /// Run the engine (the default).
    Serve,
    /// Print the device key to give to the agent on host HOST_ID (creates the site secret on
    /// first use). The key goes to stdout; the bearer credential the agent presents with it is
    /// shown on stderr (for an agent written against the REST API).
    DeviceKey {
        /// What the key allows: `sensor` (report readings), `relay` (register relay outputs and
        /// be commanded), `both` (a host that runs a sensor and a relay agent).
        #[arg(long, value_enum)]
        role: DeviceRole,
        /// Print only the bearer credential (`<host id>.<token>`, for
        /// `Authorization: Bearer ...`) instead of the key.
        #[arg(long)]
        bearer: bool,
        /// The agent's host id (its Pi serial, machine id, or configured id).
        host_id: String,
    },
    /// Print the admin credential (for the web UI and API calls that change settings).
    AdminToken,
    /// Copy a whole store (settings, schedule, house, agents, relays, every reading and
    /// decision) from one database to another, SQLite or PostgreSQL either way, then compare
    /// the row counts of every table (exit status 1 when any differ). Stop the engine first.
    /// The target must hold no readings, or an interrupted copy of the same source (run the
    /// command again to finish it).
    MigrateStore {
        /// The database to copy from (as --database-url).
        #[arg(long, env = "HEARTH_MIGRATE_FROM")]
        from: String,
        /// The database to copy into, made and migrated when new (as --database-url).
        #[arg(long, env = "HEARTH_MIGRATE_TO")]
        to: String,
    },
    /// Simulate a house in winter under the real decision core and print comfort, cycling and
    /// predictive-start figures (virtual time: a month takes seconds).
    Simulate {
        /// How many days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Seed of the weather and sensor noise.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The algorithm (default: every one).
        #[arg(long, conflicts_with = "bench")]
        algorithm: Option<String>,
        /// Simulate a house of this many rooms (2 to 6), each a zone behind its valve, on one
        /// boiler; prints comfort per zone, boiler cycles, valve operations and protection
        /// violations.
        #[arg(long)]
        zones: Option<u32>,
        /// The control benchmark instead: four house types, every algorithm and two other
        /// thermostats' control laws, one table.
        #[arg(long)]
        bench: bool,
    },
}

/// What a printed device key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    /// A sensor agent: reports readings.
    Sensor,
    /// A relay agent: registers its outputs, obeys the engine.
    Relay,
    /// One host running both agents with one key.
    Both,
}

impl From<DeviceRole> for hearth_proto::agents::KeyRole {
    fn from(r: DeviceRole) -> Self {
        match r {
            DeviceRole::Sensor => Self::Sensor,
            DeviceRole::Relay => Self::Relay,
            DeviceRole::Both => Self::Both,
        }
    }
}

fn secs(name: &str, v: f64, min: f64, max: f64) -> anyhow::Result<Duration> {
    if !(min..=max).contains(&v) {
        anyhow::bail!("{name} must be between {min} and {max} seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

impl Config {
    pub(crate) fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("hearth.db").display()))
    }

    /// Compared with reading timestamps, hence a jiff duration.
    pub(crate) fn stale_after(&self) -> anyhow::Result<jiff::SignedDuration> {
        Ok(secs("stale_after_s", self.stale_after_s, 1.0, 86_400.0)?.try_into()?)
    }

    /// Compared with last-seen timestamps, hence a jiff duration.
    pub(crate) fn offline_after(&self) -> anyhow::Result<jiff::SignedDuration> {
        Ok(secs("offline_after_s", self.offline_after_s, 1.0, 86_400.0)?.try_into()?)
    }

    pub(crate) fn tick(&self) -> anyhow::Result<Duration> {
        secs("tick_s", self.tick_s, 0.05, 600.0)
    }

    /// Compared with agent clock offsets, hence a jiff duration.
    pub(crate) fn clock_skew_max(&self) -> anyhow::Result<jiff::SignedDuration> {
        Ok(secs("clock_skew_max_s", self.clock_skew_max_s, 1.0, 86_400.0)?.try_into()?)
    }

    /// The schedule's time zone: the configured one (an unknown name is an error), else the
    /// system's.
    pub(crate) fn time_zone(&self) -> anyhow::Result<jiff::tz::TimeZone> {
        match &self.time_zone {
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                anyhow::anyhow!("time_zone {name:?} is not a known IANA time zone: {e}")
            }),
            None => Ok(jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC)),
        }
    }

    /// The configured dashboard URL, checked: an absolute `http` or `https` URL with a host.
    pub(crate) fn dashboard_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = &self.dashboard_url else { return Ok(None) };
        let bad = || {
            anyhow::anyhow!(
                "dashboard_url must be an http:// or https:// URL with a host, e.g. \
                 http://thermostat.local:8088/, got {url:?}"
            )
        };
        let uri: axum::http::Uri = url.parse().map_err(|_| bad())?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let host_ok = uri.authority().is_some_and(|a| !a.host().is_empty());
        if !scheme_ok || !host_ok {
            return Err(bad());
        }
        Ok(Some(url.clone()))
    }

    /// What retention keeps: a day count of 0 keeps for ever; minute rollups are never kept
    /// for less time than raw readings (a chart would have to skip from raw rows to hours).
    pub(crate) fn keep(&self) -> anyhow::Result<crate::retention::Keep> {
        let days = |d: u32| (d > 0).then_some(d);
        let (raw, minutes) = (days(self.keep_raw_days), days(self.keep_minutes_days));
        // A hundred years: beyond it a cutoff would reach before 1970 for no purpose.
        for (name, d) in [("keep_raw_days", raw), ("keep_minutes_days", minutes)] {
            if d.is_some_and(|d| d > 36_500) {
                anyhow::bail!("{name} must be at most 36500 days (0 keeps for ever)");
            }
        }
        if let Some(m) = minutes
            && raw.is_none_or(|r| m < r)
        {
            anyhow::bail!(
                "keep_minutes_days ({m}) must be 0 (for ever) or at least keep_raw_days ({}): the \
                 minute rollups stand in for the raw readings retention deletes",
                self.keep_raw_days
            );
        }
        Ok(crate::retention::Keep {
            raw_days: raw,
            minutes_days: minutes,
            batch: crate::retention::BATCH,
            pause: crate::retention::PAUSE,
        })
    }

    pub(crate) fn lease_s(&self) -> anyhow::Result<u32> {
        if !(4..=hearth_proto::relays::MAX_LEASE_S).contains(&self.lease_s) {
            anyhow::bail!("lease_s must be between 4 and {}", hearth_proto::relays::MAX_LEASE_S);
        }
        Ok(self.lease_s)
    }
}
