//! A real PostgreSQL server of the test's own: Debian's `postgresql` binaries, `initdb` into a
//! temporary directory, the postmaster listening on a Unix socket in that directory only (no TCP
//! port, nothing another process on the machine could reach by accident), stopped with the
//! process that started it.
//!
//! - As root (CI, the README's test command) the server runs as the unprivileged `postgres`
//!   user Debian's package creates (PostgreSQL refuses to run as root), else as the caller.
//! - Password authentication (scram) on the socket, so a wrong credential is refused as it
//!   would be by a real deployment.
//! - The postmaster is started through `setpriv --pdeathsig TERM` from a thread that lives as
//!   long as the process ([`Postgres::shared`]), so a test binary that ends, fails or is killed
//!   takes its server with it. A data directory left by a killed run is removed by the next
//!   start (its owner's pid is in its name).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::procs::{Capture, Group, Proc};

/// The role the tests connect as (the cluster's superuser).
pub const USER: &str = "hearth";
/// Its password (a throwaway cluster's; what the URLs of [`Postgres::url`] carry).
pub const PASSWORD: &str = "hearth-test-password";
/// The port number in the socket's name (no TCP listener is opened).
const PORT: u16 = 5432;
/// How long the postmaster may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Prefix of the temporary directories, followed by the owning process's pid.
const DIR_PREFIX: &str = "hearth-pg-";

/// A running PostgreSQL server in a temporary directory.
#[derive(Debug)]
pub struct Postgres {
    /// The directory holding the data directory, the socket and the password file.
    dir: PathBuf,
    bin: PathBuf,
    /// `postgres` as root; None when the caller is not root.
    run_as: Option<String>,
    postmaster: Option<Proc>,
    next_db: u32,
}

/// The directory of the newest installed PostgreSQL's binaries (`/usr/lib/postgresql/N/bin`),
/// or None when none is installed (`cargo xtask test` installs Debian's `postgresql`).
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl Postgres {
    /// The server of this test process: started on first use, stopped when the process ends.
    /// Each caller makes its own database in it ([`Postgres::create_database`]).
    pub fn shared() -> anyhow::Result<&'static Mutex<Postgres>> {
        static SHARED: OnceLock<Result<Mutex<Postgres>, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                // Started from a thread that never ends: `--pdeathsig` fires when the thread
                // that started the child ends, which must be the process's end, not a test's.
                let (tx, rx) = std::sync::mpsc::channel();
                let spawned =
                    std::thread::Builder::new().name("postgres".into()).spawn(move || {
                        let _ = tx.send(Postgres::start().map_err(|e| format!("{e:#}")));
                        loop {
                            std::thread::park();
                        }
                    });
                match spawned {
                    Ok(_) => match rx.recv() {
                        Ok(r) => r.map(Mutex::new),
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                }
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot start a PostgreSQL server: {e}"))
    }

    /// Start a fresh server (initdb, then the postmaster), ready for connections. Tied to the
    /// calling thread: it stops when that thread ends (see [`Postgres::shared`]).
    pub fn start() -> anyhow::Result<Self> {
        let bin = bin_dir().ok_or_else(|| {
            anyhow::anyhow!(
                "no PostgreSQL server is installed (/usr/lib/postgresql/*/bin/postgres); \
                 `cargo xtask test` installs Debian's postgresql package"
            )
        })?;
        sweep_stale();
        let run_as = crate::is_root().then(|| "postgres".to_owned());
        let dir = unique_dir()?;
        let mut pg = Self { dir, bin, run_as, postmaster: None, next_db: 0 };
        pg.initdb()?;
        pg.resume()?;
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory of the server's socket (what a URL's `host` names).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A command for a PostgreSQL binary, as the server's user.
    fn command(&self, program: &str, bound: bool) -> Command {
        let path = self.bin.join(program);
        let setpriv = crate::procs::setpriv();
        let mut c = match (&self.run_as, setpriv) {
            (Some(user), Some(setpriv)) => {
                let mut c = Command::new(setpriv);
                c.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups"]);
                if bound {
                    c.args(["--pdeathsig", "TERM"]);
                }
                c.arg("--").arg(path);
                c
            }
            (None, _) if bound => crate::procs::bound(path),
            _ => Command::new(path),
        };
        c.env("LC_ALL", "C.UTF-8").env_remove("PGDATA");
        c
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD)?;
        if let Some(user) = &self.run_as {
            chown_to(&self.dir, user)?;
            chown_to(&pwfile, user)?;
        }
        let out = self
            .command("initdb", false)
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", USER, "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Start the postmaster (again, after [`Postgres::stop`]) and wait until it accepts
    /// connections.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        if self.postmaster.is_some() {
            return Ok(());
        }
        let mut cmd = self.command("postgres", true);
        cmd.arg("-D").arg(self.data_dir()).arg("-k").arg(&self.dir).args([
            "-p",
            &PORT.to_string(),
            "-c",
            "listen_addresses=",
            "-c",
            "max_connections=200",
        ]);
        self.postmaster = Some(Proc::spawn("postgres", &mut cmd, Group::Own, Capture::Keep)?);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ready = self
                .command("pg_isready", false)
                .arg("-h")
                .arg(&self.dir)
                .args(["-p", &PORT.to_string(), "-U", USER, "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if let Some(p) = self.postmaster.as_mut()
                && let Some(status) = p.try_wait()?
            {
                self.postmaster = None;
                anyhow::bail!("the PostgreSQL server exited at start: {status}");
            }
            anyhow::ensure!(Instant::now() < deadline, "PostgreSQL did not get ready in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the server (fast shutdown: connections are cut, as when a server goes away); the
    /// data stays for [`Postgres::resume`].
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut p) = self.postmaster.take() {
            // SIGINT is PostgreSQL's "fast" shutdown: no waiting for clients to leave.
            let _ = Command::new("kill").args(["-INT", &p.id().to_string()]).status();
            if p.wait_within(Duration::from_secs(30))?.is_none() {
                p.kill()?;
            }
        }
        Ok(())
    }

    /// The connection URL of `database` (sqlx's form: the socket directory as `host`).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@localhost/{database}?host={}&port={PORT}",
            self.dir.display()
        )
    }

    /// Make a new, empty database and return its URL. Names are unique within the server.
    pub fn create_database(&mut self, prefix: &str) -> anyhow::Result<String> {
        Ok(self.create_named(prefix)?.0)
    }

    /// [`Postgres::create_database`], with the new database's name: `(url, name)`.
    pub fn create_named(&mut self, prefix: &str) -> anyhow::Result<(String, String)> {
        let name = self.new_name(prefix);
        self.psql(&format!("CREATE DATABASE \"{name}\""))?;
        Ok((self.url(&name), name))
    }

    /// A database name unique within the server, from `prefix`.
    fn new_name(&mut self, prefix: &str) -> String {
        self.next_db += 1;
        format!("{prefix}_{}", self.next_db)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect()
    }

    /// A new database made as a copy of `template` (to which nobody may be connected):
    /// `(url, name)`. Copied file by file (`STRATEGY FILE_COPY`): the default strategy writes
    /// every block of the copy to the write-ahead log, far slower for a large database.
    pub fn copy_database(
        &mut self,
        prefix: &str,
        template: &str,
    ) -> anyhow::Result<(String, String)> {
        let name = self.new_name(prefix);
        self.psql(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" STRATEGY FILE_COPY"
        ))?;
        Ok((self.url(&name), name))
    }

    /// Drop a database made by this server's `create_*` or `copy_database`.
    pub fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        self.psql(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).map(|_| ())
    }

    /// `f` with the server of this test process ([`Postgres::shared`]) locked.
    pub fn with_shared<T>(f: impl FnOnce(&mut Postgres) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let server = Self::shared()?;
        let mut server = server
            .lock()
            .map_err(|_| anyhow::anyhow!("the PostgreSQL server's lock is poisoned"))?;
        f(&mut server)
    }

    /// Run one SQL command as the superuser, in the `postgres` database; what it printed.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        self.psql_in("postgres", sql)
    }

    /// Run one SQL command as the superuser in `database`; what it printed (unaligned, no
    /// headers: a count comes back as its digits).
    pub fn psql_in(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = self
            .command("psql", false)
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &PORT.to_string(), "-U", USER, "-d", database, "-X", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory `hearth-pg-PID-N` in the temporary directory.
fn unique_dir() -> anyhow::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Remove the directories of servers whose process is gone (a killed test run cannot clean up
/// after itself; the shared server of a finished one does not either).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `chown user: path`, by the user's uid and gid.
fn chown_to(path: &Path, user: &str) -> anyhow::Result<()> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = Command::new("id").args([flag, user]).output()?;
        anyhow::ensure!(out.status.success(), "no user {user:?} to run PostgreSQL as");
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    std::os::unix::fs::chown(path, Some(id("-u")?), Some(id("-g")?))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_serves_stops_resumes_and_leaves_nothing() -> anyhow::Result<()> {
        if bin_dir().is_none() {
            // `cargo xtask test` installs it; a bare `cargo test` on a machine without it
            // must say so rather than pass in silence.
            anyhow::bail!("PostgreSQL is not installed: run `cargo xtask test`");
        }
        let mut pg = Postgres::start()?;
        let dir = pg.socket_dir().to_path_buf();
        let url = pg.create_database("harness")?;
        assert!(url.contains("harness_1"), "{url}");
        assert_eq!(pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'harness_1'")?, "1");
        pg.stop()?;
        assert!(pg.psql("SELECT 1").is_err(), "a stopped server still answers");
        pg.resume()?;
        assert_eq!(pg.psql("SELECT 1")?, "1");
        drop(pg);
        assert!(!dir.exists(), "{} was left behind", dir.display());
        Ok(())
    }
}
