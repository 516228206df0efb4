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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use hearth_harness::print_logs;
use hearth_harness::procs::listening_url_in;
use hearth_harness::{Capture, ENGINE, Group, SERVICES, target_dir};

mod house;
pub mod webdriver;

pub use house::{
    Database, FAST_ENGINE, House, ds18b20, free_port, relay_config, relay_outputs_config, simulated,
};

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
    // Debug builds, so the test never runs stale binaries.
    hearth_harness::build("build the binaries", "dev", &SERVICES)?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new("unshare");
    cmd.arg(if hearth_harness::is_root() { "-n" } else { "-rn" });
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

/// `<target dir>/artefacts/<kind>` (created): where tests leave files for people to look at,
/// e.g. the browser tests' screenshots in `artefacts/web`.
pub fn artefacts_dir(kind: &str) -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("artefacts").join(kind);
    std::fs::create_dir_all(&dir)?;
    // Without the `tests/..` of the default target dir: the paths are printed for people.
    Ok(std::fs::canonicalize(&dir)?)
}

/// The path of a workspace binary (debug, as [`in_private_netns`] builds them).
pub fn binary(name: &str) -> PathBuf {
    hearth_harness::binary("dev", name)
}

/// A running binary (the harness's [`hearth_harness::Proc`]) whose stderr is kept, and shown
/// when the test fails. Dropped, it is killed (SIGKILL, as a crash): a test that means a clean
/// stop says [`Proc::terminate`].
#[derive(Debug)]
pub struct Proc {
    inner: hearth_harness::Proc,
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
        let mut cmd = Command::new(binary(bin));
        cmd.args(args)
            .env("HEARTH_SENSOR_QUEUE_DIR", queue.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null());
        // In the test's process group: a Ctrl-C of the test reaches its servers too.
        let inner = hearth_harness::Proc::spawn(name, &mut cmd, Group::Parent, Capture::Keep)?;
        Ok(Self { inner, _queue: Some(queue) })
    }

    /// SIGKILL (no clean-up of any kind, as a crash or a power cut) and wait for the exit.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.inner.kill()?;
        Ok(())
    }

    /// Wait until a line of stderr contains `needle`; return that line.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        self.inner.wait_for_line(needle, timeout).await
    }

    /// How many lines of stderr so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.inner.count_lines(needle)
    }

    /// Every line of stderr so far.
    pub fn lines(&self) -> Vec<String> {
        self.inner.lines()
    }

    /// The `http://ADDR` of the first "listening on http://ADDR" log line.
    pub async fn listening_url(&self) -> anyhow::Result<String> {
        let line = self.wait_for_line("listening on http://", Duration::from_secs(30)).await?;
        listening_url_in(&line).ok_or_else(|| anyhow::anyhow!("no URL in {line:?}"))
    }

    /// Stop it where it stands (SIGSTOP): its sockets stay open but nothing answers, as a host
    /// cut off the network; [`Proc::resume`] lets it go on.
    pub fn pause(&self) -> anyhow::Result<()> {
        sh("kill", &["-STOP", &self.inner.id().to_string()]).map(drop)
    }

    /// Let a paused process go on (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        sh("kill", &["-CONT", &self.inner.id().to_string()]).map(drop)
    }

    /// Send SIGTERM and wait for a clean exit (an error, and SIGKILL, after 15 s).
    pub fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.inner.stop(Duration::from_secs(15))
    }

    /// Its exit status once it has exited (None while it runs).
    pub fn try_wait(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        self.inner.try_wait()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.inner.kill();
        // A test that panics outside in_private_netns still shows this binary's side.
        if std::thread::panicking() {
            self.inner.show_log();
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
    hearth_harness::engine_credential(&binary(ENGINE.package), data_dir, args)
}
