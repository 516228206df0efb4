//! What the end-to-end modules each set up before they start binaries, written once: the
//! engine's data dir and its credentials, the simulated world, the relay agent's config, the
//! engine's fast flags, and a sensor reading as an agent sends it.

use std::path::PathBuf;

use hearth_harness::{ENGINE, Service};
use hearth_proto::Timestamp;
use hearth_proto::sensors::SensorReport;

use crate::binary;

/// The engine's flags that make a test's house fast: decisions every 0.2 s, readings stale
/// after 10 s, agents offline after 5 s.
pub const FAST_ENGINE: [&str; 6] =
    ["--tick-s", "0.2", "--stale-after-s", "10", "--offline-after-s", "5"];

/// The flags every simulated agent of a test starts with: its host id, its device key, and
/// the simulated backend in the house's `world` file (an agent has no backend by default).
pub fn simulated<'a>(host: &'a str, key: &'a str, world: &'a str) -> [&'a str; 8] {
    ["--host-id", host, "--device-key", key, "--hardware", "simulated", "--sim-world", world]
}

/// A free loopback port. The test runs in a network namespace of its own: nobody else takes it
/// between this and the engine's bind, and the engine keeps it across its restarts.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The relay agent's two outputs, heat and cool, with minimum on and off times of `min_s`
/// (0: none, so a test sees the engine's decisions at once; the protections have their own
/// tests in the relay agent) and no maximum on time.
pub fn relay_config(min_s: u32) -> String {
    relay_outputs_config(&[("heat", "Furnace", "heat"), ("cool", "Air conditioner", "cool")], min_s)
}

/// A relay agent's `outputs` (id, name, function hint), each with minimum on and off times of
/// `min_s` and no maximum on time.
pub fn relay_outputs_config(outputs: &[(&str, &str, &str)], min_s: u32) -> String {
    let output = |(id, name, function): &(&str, &str, &str)| {
        format!(
            "[[outputs]]\nid = \"{id}\"\nname = \"{name}\"\nfunction_hint = \"{function}\"\n\
             min_on_s = {min_s}\nmin_off_s = {min_s}\nmax_on_s = 0\n"
        )
    };
    outputs.iter().map(output).collect::<Vec<_>>().join("\n")
}

/// A DS18B20 reading of `value` °C taken at `at`, as a sensor agent reports it.
pub fn ds18b20(value: f64, at: Timestamp) -> SensorReport {
    SensorReport {
        kind: "DS18B20".into(),
        value: Some(value),
        alias: None,
        extra: None,
        timestamp: Some(at),
    }
}

/// A house's files in a fresh temporary directory: the engine's data dir (`engine/`), the
/// simulated world the agents share (`world.json`), and the credentials the engine issues.
#[derive(Debug)]
pub struct House {
    /// Removed with the house.
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub world: PathBuf,
}

impl House {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("engine");
        let world = dir.path().join("world.json");
        Ok(Self { dir, data, world })
    }

    /// The data dir as a flag's value.
    pub fn data_s(&self) -> String {
        self.data.to_string_lossy().into_owned()
    }

    /// The world file as a flag's value.
    pub fn world_s(&self) -> String {
        self.world.to_string_lossy().into_owned()
    }

    /// A device key for the agent `agent` on `host`, from the engine's data dir.
    pub fn key(&self, agent: Service, host: &str) -> anyhow::Result<String> {
        hearth_harness::device_key(&binary(ENGINE.package), &self.data, agent, host)
    }

    /// The admin token of the engine's data dir.
    pub fn admin(&self) -> anyhow::Result<String> {
        crate::engine_credential(&self.data, &["admin-token"])
    }

    /// Write [`relay_config`]`(min_s)` into the house's directory; its path as a flag's value.
    pub fn relay_toml(&self, min_s: u32) -> anyhow::Result<String> {
        self.file("relay.toml", &relay_config(min_s))
    }

    /// Write `text` as the file `name` in the house's directory; its path as a flag's value.
    pub fn file(&self, name: &str, text: &str) -> anyhow::Result<String> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.to_string_lossy().into_owned())
    }
}

/// Where a test's engine stores: the SQLite file in its data dir (the default), or a database
/// on a PostgreSQL server of the test's own (a real server, which the test may stop and start).
#[derive(Debug)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres { server: hearth_harness::postgres::Postgres, url: String },
}

impl Database {
    /// The engine's SQLite file in `data` (the data dir).
    pub fn sqlite(data: &std::path::Path) -> Self {
        Self::Sqlite(data.join("hearth.db"))
    }

    /// A new database on a new PostgreSQL server.
    pub fn postgres() -> anyhow::Result<Self> {
        let mut server = hearth_harness::postgres::Postgres::start()?;
        let url = server.create_database("e2e")?;
        Ok(Self::Postgres { server, url })
    }

    /// The engine's flags that store here.
    pub fn engine_args(&self) -> Vec<&str> {
        match self {
            Self::Sqlite(_) => Vec::new(),
            Self::Postgres { url, .. } => vec!["--database-url", url],
        }
    }

    /// The server, to stop and start it (None for SQLite).
    pub fn server(&mut self) -> Option<&mut hearth_harness::postgres::Postgres> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres { server, .. } => Some(server),
        }
    }

    /// Every stored reading of `sensor`, oldest first, read as another process would (the
    /// SQLite file read-only; PostgreSQL in the engine's default schema, `hearth`).
    pub async fn stored(&self, sensor: &str) -> anyhow::Result<Vec<(i64, Option<f64>)>> {
        Ok(match self {
            Self::Sqlite(file) => {
                let url = format!("sqlite://{}?mode=ro", file.display());
                let pool = sqlx::SqlitePool::connect(&url).await?;
                let rows = sqlx::query_as(
                    "SELECT ts, value FROM readings WHERE sensor_id = $1 ORDER BY ts",
                )
                .bind(sensor)
                .fetch_all(&pool)
                .await;
                pool.close().await;
                rows?
            }
            Self::Postgres { url, .. } => {
                let pool = sqlx::PgPool::connect(url).await?;
                let rows = sqlx::query_as(
                    "SELECT ts, value FROM hearth.readings WHERE sensor_id = $1 ORDER BY ts",
                )
                .bind(sensor)
                .fetch_all(&pool)
                .await;
                pool.close().await;
                rows?
            }
        })
    }
}
