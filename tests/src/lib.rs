//! End-to-end test support: the real binaries, in a private network namespace.
//!
//! mDNS joins multicast on every interface that is up, so a test that starts an mDNS daemon must
//! never run in the machine's own network namespace. [`in_private_netns`] re-executes the current
//! test inside a fresh namespace (`unshare -n`, or `unshare -rn` for non-root users) where only
//! loopback exists; every process the test starts inherits it.
//!
//! The storage fault tests also need filesystems of their own (a small tmpfs, a loop-mounted
//! ext4 image) that nobody else sees: [`in_private_mount_and_netns`] adds a private mount
//! namespace, so whatever the test mounts disappears with it.
//!
//! The web dashboard's tests drive headless chromium with [`webdriver`], and leave screenshots in
//! [`artefacts_dir`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod webdriver;

/// Set inside the namespace, so the re-executed test runs its body instead of re-executing.
const INSIDE: &str = "HEARTH_E2E_INSIDE_NETNS";

/// Run the test `name` inside a private network namespace with loopback up. Outside, this
/// builds the binaries, re-executes the test binary filtered to `name` under `unshare`, and
/// fails when that run fails. Inside, it runs `body` on a tokio runtime.
pub fn in_private_netns<F, Fut>(name: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    in_private_namespaces(name, false, body)
}

/// [`in_private_netns`] with a private mount namespace as well: the test may mount filesystems
/// (its data dirs on a size-limited tmpfs, a loop-mounted image), which nobody outside sees
/// and which go away with it. Loop devices and ext4 need root; a tmpfs works for other users
/// too (in a user namespace).
pub fn in_private_mount_and_netns<F, Fut>(name: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    in_private_namespaces(name, true, body)
}

fn in_private_namespaces<F, Fut>(name: &str, mount: bool, body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if std::env::var_os(INSIDE).is_some() {
        return tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(body());
    }
    // Build outside the namespace: cargo may need the registry, the namespace has no network.
    build_binaries()?;
    let exe = std::env::current_exe()?;
    let root =
        Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    let mut cmd = Command::new("unshare");
    cmd.arg(if root { "-n" } else { "-rn" });
    if mount {
        // unshare makes the new mount namespace's mounts private: nothing propagates out.
        cmd.arg("-m");
    }
    cmd.args(["--", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1");
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!("cannot run unshare (util-linux) to make a private network namespace: {e}")
    })?;
    anyhow::ensure!(status.success(), "the test inside the network namespace failed: {status}");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// `<target dir>/artefacts/<kind>` (created): where tests leave files for people to look at,
/// e.g. the browser tests' screenshots in `artefacts/web`.
pub fn artefacts_dir(kind: &str) -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("artefacts").join(kind);
    std::fs::create_dir_all(&dir)?;
    // Without the `tests/..` of the default target dir: the paths are printed for people.
    Ok(std::fs::canonicalize(&dir)?)
}

/// Build the binaries (debug), so the test never runs stale ones.
fn build_binaries() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--bins",
            "-p",
            "hearth-engine",
            "-p",
            "hearth-sensor-agent",
            "-p",
            "hearth-relay-agent",
            "-p",
            "hearth-web",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    anyhow::ensure!(status.success(), "building the binaries failed");
    Ok(())
}

/// The path of a workspace binary.
pub fn binary(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// A running binary whose stderr is collected (and echoed with a prefix, for failures).
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// The sensor agent's default replay queue directory, removed when the process ends.
    _queue: Option<tempfile::TempDir>,
}

impl Proc {
    /// Start `binary(bin)` with `args`. A sensor agent's replay queue defaults to a fresh
    /// temporary directory (never the system's /var/lib); `--queue-dir` in `args` overrides it.
    pub fn start(name: &str, bin: &str, args: &[&str]) -> anyhow::Result<Self> {
        let queue = tempfile::tempdir()?;
        let mut child = Command::new(binary(bin))
            .args(args)
            .env("HEARTH_SENSOR_QUEUE_DIR", queue.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {bin}: {e}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let (log, name) = (log.clone(), name.to_owned());
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                }
            });
        }
        Ok(Self { name: name.to_owned(), child, log, _queue: Some(queue) })
    }

    /// SIGKILL (no clean-up of any kind, as a crash or a power cut) and wait for the exit.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Wait until a line of stderr contains `needle`; return that line.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) =
                self.log.lock().ok().and_then(|l| l.iter().find(|l| l.contains(needle)).cloned())
            {
                return Ok(line);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{}: no log line with {needle:?} within {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every stderr line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The `http://ADDR` of the first "listening on http://ADDR" log line.
    pub async fn listening_url(&self) -> anyhow::Result<String> {
        let line = self.wait_for_line("listening on http://", Duration::from_secs(30)).await?;
        let start = line.find("http://").unwrap_or(0);
        let url: String = line[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        Ok(url)
    }

    /// Send SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(Instant::now() < deadline, "{} did not stop on SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` every 100 ms until it returns `Some`, or fail after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what} (last error: {last_err:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run a system command (mount, umount, mkfs...) and fail with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Run a `hearth-engine` subcommand (`device-key`, `admin-token`) and return its stdout line.
pub fn engine_credential(data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(binary("hearth-engine"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "hearth-engine {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}
