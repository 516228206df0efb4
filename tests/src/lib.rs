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
//!
//! What the binaries log is kept, not echoed: a passing test prints only what it says itself;
//! a failing one prints every binary's log after its failure (see [`in_private_netns`]).

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
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(body())));
        // The binaries' logs say what happened on their side: shown when the test failed.
        match result {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                print_logs();
                return Err(e);
            }
            Err(panic) => {
                print_logs();
                std::panic::resume_unwind(panic);
            }
        }
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

/// One binary's standard error, line by line.
#[derive(Debug, Default)]
struct Log {
    lines: Vec<String>,
    /// Already shown (a failure shows each log once).
    printed: bool,
}

/// The log of every binary this test process started, with its name: shown when a test fails.
static LOGS: Mutex<Vec<(String, Arc<Mutex<Log>>)>> = Mutex::new(Vec::new());

fn show(name: &str, log: &Mutex<Log>) {
    let Ok(mut log) = log.lock() else { return };
    if log.printed {
        return;
    }
    log.printed = true;
    eprintln!("----- {name}: its log ({} lines) -----", log.lines.len());
    for line in &log.lines {
        eprintln!("[{name}] {line}");
    }
}

/// Print the logs of every binary started so far that were not shown yet (a failing test
/// calls this; [`in_private_netns`] does it for its tests).
pub fn print_logs() {
    let logs = LOGS.lock().map(|l| l.clone()).unwrap_or_default();
    for (name, log) in &logs {
        show(name, log);
    }
}

/// A running binary whose stderr is collected, and shown when the test fails.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: Arc<Mutex<Log>>,
    /// The sensor agent's default replay queue directory, removed when the process ends.
    _queue: Option<tempfile::TempDir>,
}

impl Proc {
    /// Start `binary(bin)` with `args`. A sensor agent's replay queue defaults to a fresh
    /// temporary directory (never the system's /var/lib); `--queue-dir` in `args` overrides it.
    pub fn start(name: &str, bin: &str, args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_env::<&str, &str>(name, bin, args, &[])
    }

    /// As [`Proc::start`], with `env` set on top (another `RUST_LOG`, [`faketime`]'s).
    pub fn start_with_env<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        name: &str,
        bin: &str,
        args: &[&str],
        env: &[(K, V)],
    ) -> anyhow::Result<Self> {
        let queue = tempfile::tempdir()?;
        let mut child = Command::new(binary(bin))
            .args(args)
            .env("HEARTH_SENSOR_QUEUE_DIR", queue.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {bin}: {e}"))?;
        let log = Arc::new(Mutex::new(Log::default()));
        if let Ok(mut logs) = LOGS.lock() {
            logs.push((name.to_owned(), log.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.lines.push(line);
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
            if let Some(line) = self
                .log
                .lock()
                .ok()
                .and_then(|l| l.lines.iter().find(|l| l.contains(needle)).cloned())
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

    /// How many lines of stderr so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.log.lock().map(|l| l.lines.iter().filter(|l| l.contains(needle)).count()).unwrap_or(0)
    }

    /// Every line of stderr so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.lines.clone()).unwrap_or_default()
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
        // A test that panics outside in_private_netns still shows this binary's side.
        if std::thread::panicking() {
            show(&self.name, &self.log);
        }
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

/// The pinned OpenAPI tools (`openapi-spec-validator`, `schemathesis`): a Python venv under the
/// target dir, made on first use from `tests/contract/requirements.txt` (every package pinned)
/// and made again when that file changes. Returns the venv's `bin` directory. Needs `python3`
/// with its `venv` module (Debian: `python3-venv`, which `cargo xtask test` installs) and, the
/// first time, PyPI: call it before [`in_private_netns`], whose namespace has no network.
pub fn python_tools() -> anyhow::Result<PathBuf> {
    const REQUIREMENTS: &str = include_str!("../contract/requirements.txt");
    let venv = target_dir().join("contract-tools");
    let stamp = venv.join("installed-requirements.txt");
    let bin = venv.join("bin");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == REQUIREMENTS) {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let status =
        Command::new("python3").arg("-m").arg("venv").arg(&venv).status().map_err(|e| {
            anyhow::anyhow!("cannot run python3 (install python3 and python3-venv): {e}")
        })?;
    anyhow::ensure!(
        status.success(),
        "python3 -m venv {} failed: install python3-venv (apt-get install python3-venv)",
        venv.display()
    );
    let requirements = venv.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS)?;
    let status = Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-input", "-r"])
        .arg(&requirements)
        .status()?;
    anyhow::ensure!(status.success(), "pip install -r {} failed", requirements.display());
    // Written last: a venv whose install was interrupted is made again.
    std::fs::write(&stamp, REQUIREMENTS)?;
    Ok(bin)
}

/// The environment that runs a process with a wrong wall clock under libfaketime (Debian
/// package `faketime`, which `cargo xtask test` installs): `clock` is read from that file, in
/// libfaketime's syntax (`+1h`, `-2h`, `+5m`, `+0`), and re-read every second, so a test steps
/// the clock by rewriting the file as NTP would. The monotonic clock stays real: timers and
/// intervals run as on a Pi whose wall clock is wrong.
pub fn faketime(clock: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let library = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
        .iter()
        .map(|dir| Path::new(dir).join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "libfaketime not found: install the Debian package faketime (cargo xtask test \
                 does)"
            )
        })?;
    Ok([
        ("LD_PRELOAD", library.to_string_lossy().into_owned()),
        ("FAKETIME_TIMESTAMP_FILE", clock.to_string_lossy().into_owned()),
        ("FAKETIME_CACHE_DURATION", "1".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec())
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
