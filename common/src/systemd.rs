//! systemd service notifications (`sd_notify(3)`): readiness, stopping and watchdog pings.
//!
//! The units in `deploy/systemd/` are `Type=notify` with `WatchdogSec=`: systemd considers a
//! service started only when it sends `READY=1`, and restarts it when `WATCHDOG=1` stops
//! arriving. Each binary sends `READY=1` once it really works, `STOPPING=1` when it begins to
//! shut down, and `WATCHDOG=1` from its real work loop, so a wedged loop (not merely a live
//! process) gets restarted.
//!
//! Hand-written rather than the `sd-notify` crate: the protocol is one datagram on the unix
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace), which
//! `std` does without `unsafe` or another dependency on the Pi agents. Everything is a no-op
//! when the variable is absent (not started by systemd, tests, `cargo xtask demo`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

/// Where notifications go: the `NOTIFY_SOCKET` of the process, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    socket: Option<OsString>,
}

impl Notifier {
    /// The notifier systemd set up for this process (`NOTIFY_SOCKET`), or a silent one.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("NOTIFY_SOCKET"))
    }

    /// A notifier sending to `socket` (a path, or `@name` for an abstract socket); `None`
    /// sends nothing.
    pub fn new(socket: Option<OsString>) -> Self {
        Self { socket: socket.filter(|s| !s.is_empty()) }
    }

    /// Send `state` (newline-separated `KEY=VALUE` assignments). `Ok(false)` when there is no
    /// socket to send to.
    pub fn notify(&self, state: &str) -> io::Result<bool> {
        let Some(socket) = &self.socket else { return Ok(false) };
        let sender = UnixDatagram::unbound()?;
        send(&sender, socket, state.as_bytes())?;
        Ok(true)
    }
}

#[cfg(target_os = "linux")]
fn send(sender: &UnixDatagram, socket: &OsStr, message: &[u8]) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::SocketAddr;
    // systemd names an abstract socket with a leading '@' (it is a NUL byte on the wire).
    match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            let addr = SocketAddr::from_abstract_name(name)?;
            sender.send_to_addr(message, &addr).map(drop)
        }
        None => sender.send_to(message, Path::new(socket)).map(drop),
    }
}

#[cfg(not(target_os = "linux"))]
fn send(sender: &UnixDatagram, socket: &OsStr, message: &[u8]) -> io::Result<()> {
    sender.send_to(message, Path::new(socket)).map(drop)
}

/// Send `state` to systemd if it listens. A failure is logged, never fatal: the service works
/// without it, and systemd reports the missing notification itself.
fn notify_env(state: &str) {
    if let Err(e) = Notifier::from_env().notify(state) {
        tracing::warn!(error = %e, state, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

/// Tell systemd the service is up (`READY=1`). Call once it really works: listening, database
/// or hardware open.
pub fn ready() {
    notify_env("READY=1");
}

/// How often [`extending_start`] asks for more time, and how much it asks for each time
/// (twice that: one lost datagram never runs the clock out).
pub const EXTEND_EVERY: Duration = Duration::from_secs(20);

/// Run `work` (part of starting whose length depends on the data, as a database migration
/// that rewrites years of readings), asking systemd for more start time
/// (`EXTEND_TIMEOUT_USEC`) at once and then every [`EXTEND_EVERY`] while it runs: a unit's
/// `TimeoutStartSec=` is sized for an ordinary start, and being killed mid-migration would
/// roll it back and start it over at every restart.
pub async fn extending_start<F: std::future::Future>(work: F) -> F::Output {
    extending_start_to(&Notifier::from_env(), EXTEND_EVERY, work).await
}

/// [`extending_start`] to `notifier`, every `every`.
pub async fn extending_start_to<F: std::future::Future>(
    notifier: &Notifier,
    every: Duration,
    work: F,
) -> F::Output {
    if notifier.socket.is_none() {
        return work.await;
    }
    let message = format!("EXTEND_TIMEOUT_USEC={}", (every * 2).as_micros());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticks.tick() => {
                if let Err(e) = notifier.notify(&message) {
                    tracing::warn!(error = %e, "cannot ask systemd for more start time");
                }
            }
        }
    }
}

/// Tell systemd the service is shutting down (`STOPPING=1`).
pub fn stopping() {
    notify_env("STOPPING=1");
}

/// Feed the watchdog (`WATCHDOG=1`). Call from the loop whose progress proves the service
/// works, never from a timer of its own: a wedged loop must stop the pings.
pub fn ping() {
    if watchdog_interval().is_some() {
        notify_env("WATCHDOG=1");
    }
}

/// The watchdog timeout systemd enforces on this process (`WatchdogSec=`), if any. Ping at
/// least every half of it.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_interval`] from the variables' values: `WATCHDOG_USEC` must be a positive
/// number of microseconds, and `WATCHDOG_PID`, when set, must name this process (a child that
/// inherited the variables must not ping for its parent).
pub fn watchdog_from(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec))
}

/// How often a loop must get round to [`ping`]: half the watchdog timeout (as systemd
/// recommends), or `None` without a watchdog.
pub fn ping_every() -> Option<Duration> {
    watchdog_interval().map(|w| w / 2)
}

/// Ping at once and then every half watchdog interval; never resolves (hence `Infallible`:
/// a `select!` arm reads `never = keep_alive_while_waiting() => match never {}`). Without a
/// watchdog it only waits.
///
/// ONLY for `select!`ing against a wait that the loop's own schedule bounds (sleeping until
/// the next reading is due): the loop is alive while it waits there. Never put it around work
/// that could hang (a hardware read, a request), or a wedge would go unnoticed.
pub async fn keep_alive_while_waiting() -> std::convert::Infallible {
    let Some(every) = ping_every() else {
        return std::future::pending().await;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        ping();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn receive(socket: &UnixDatagram) -> io::Result<String> {
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[test]
    fn messages_arrive_on_a_path_socket() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path)?;
        let notifier = Notifier::new(Some(path.into_os_string()));
        assert!(notifier.notify("READY=1")?);
        assert_eq!(receive(&socket)?, "READY=1");
        assert!(notifier.notify("WATCHDOG=1")?);
        assert_eq!(receive(&socket)?, "WATCHDOG=1");
        Ok(())
    }

    /// A long start asks for more time at once and then every period, until it is done.
    #[tokio::test(start_paused = true)]
    async fn a_long_start_keeps_asking_for_time() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path)?;
        let notifier = Notifier::new(Some(path.into_os_string()));
        let every = Duration::from_secs(20);
        let out = extending_start_to(&notifier, every, async {
            tokio::time::sleep(every * 5 / 2).await;
            7
        })
        .await;
        assert_eq!(out, 7);
        socket.set_nonblocking(true)?;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        // At 0 s, 20 s and 40 s; none after the work ended at 50 s.
        assert_eq!(got, ["EXTEND_TIMEOUT_USEC=40000000"; 3]);
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_arrive_on_an_abstract_socket() -> anyhow::Result<()> {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("hearth-notify-test-{}", std::process::id());
        let socket = UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(
            name.as_bytes(),
        )?)?;
        let notifier = Notifier::new(Some(format!("@{name}").into()));
        assert!(notifier.notify("STOPPING=1")?);
        assert_eq!(receive(&socket)?, "STOPPING=1");
        Ok(())
    }

    #[test]
    fn nothing_is_sent_without_a_socket() -> anyhow::Result<()> {
        assert!(!Notifier::new(None).notify("READY=1")?);
        assert!(!Notifier::new(Some(OsString::new())).notify("READY=1")?);
        Ok(())
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error_not_a_panic() {
        let notifier = Notifier::new(Some("/nonexistent/hearth-notify".into()));
        assert!(notifier.notify("READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_follows_systemd_rules() {
        let s = Duration::from_secs;
        assert_eq!(watchdog_from(Some("30000000"), None, 7), Some(s(30)));
        assert_eq!(watchdog_from(Some("30000000"), Some("7"), 7), Some(s(30)));
        // Another process's watchdog (inherited variables): not ours to feed.
        assert_eq!(watchdog_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_from(None, Some("7"), 7), None);
    }

    /// The environment path end to end: this test binary re-runs itself (this one test) with
    /// the variables systemd would set, and the child's `ready()`, `ping()` and `stopping()`
    /// arrive; re-run without them, the same calls send nothing and do not fail. The child mode
    /// runs only when the parent set the marker variable.
    #[test]
    fn env_variables_drive_the_free_functions() -> anyhow::Result<()> {
        const CHILD: &str = "HEARTH_SYSTEMD_TEST_CHILD";
        const NAME: &str = "systemd::tests::env_variables_drive_the_free_functions";
        if let Some(mode) = std::env::var_os(CHILD) {
            let expected = (mode == "systemd").then(|| Duration::from_millis(500));
            assert_eq!(ping_every(), expected);
            ready();
            ping();
            stopping();
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path)?;
        let child = |mode: &str| {
            let mut c = Command::new(std::env::current_exe()?);
            c.args([NAME, "--exact", "--quiet"]).env(CHILD, mode);
            if mode == "systemd" {
                c.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "1000000");
            } else {
                c.env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
            }
            c.status()
        };
        let status = child("systemd")?;
        assert!(status.success(), "child under systemd failed: {status}");
        for expected in ["READY=1", "WATCHDOG=1", "STOPPING=1"] {
            assert_eq!(receive(&socket)?, expected);
        }
        let status = child("none")?;
        assert!(status.success(), "child without systemd failed: {status}");
        socket.set_nonblocking(true)?;
        let mut buf = [0u8; 64];
        assert!(socket.recv(&mut buf).is_err(), "nothing more may arrive");
        Ok(())
    }
}
