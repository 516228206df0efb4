//! xtask as a user meets it: the real `xtask` binary (what `cargo xtask` runs), its `--help`,
//! and the demo with the real binaries on loopback, stopped the ways people and service
//! managers stop it.

mod demo;
mod help;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The xtask binary cargo built for these tests.
fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

/// A running xtask whose standard error is collected (and shown in failures).
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(cmd: &mut Command) -> anyhow::Result<Self> {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut buf = Vec::new();
                while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                    buf.clear();
                }
            });
        }
        Ok(Self { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it said so far.
    fn said(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// The first line containing `needle`, waiting up to `within` (an error with the log when
    /// xtask exits first or the time runs out).
    fn line_with(&mut self, needle: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) =
                self.log.lock().ok().and_then(|l| l.iter().find(|l| l.contains(needle)).cloned())
            {
                return Ok(line);
            }
            if let Some(status) = self.child.try_wait()? {
                // Its last lines may still be in the pipe.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(line) = self
                    .log
                    .lock()
                    .ok()
                    .and_then(|l| l.iter().find(|l| l.contains(needle)).cloned())
                {
                    return Ok(line);
                }
                anyhow::bail!("xtask exited ({status}) before saying {needle:?}:\n{}", self.said());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "xtask did not say {needle:?} within {within:?}:\n{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for the exit, up to `within`.
    fn exit(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the reader take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return Ok(status);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "xtask did not exit within {within:?}:\n{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process as /proc shows it: enough to find it again without mistaking a reused pid.
#[derive(Debug, Clone, PartialEq)]
struct ProcInfo {
    pid: u32,
    /// Start time in clock ticks since boot: with the pid, a process's identity.
    started: u64,
    comm: String,
}

/// `(ppid, state, starttime, comm)` of a pid, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u32, char, u64, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: split at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the name: state (3rd field of the line), ppid (4th), ..., starttime (22nd).
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    let started = rest.get(19)?.parse().ok()?;
    Some((ppid, state, started, comm))
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (ppid, _, started, comm) = stat(pid)?;
            (ppid == parent).then_some(ProcInfo { pid, started, comm })
        })
        .collect()
}

/// Whether `p` still runs: the same process (pid and start time) and not a zombie (a zombie
/// holds no port or file; reaping it is its new parent's business).
fn alive(p: &ProcInfo) -> bool {
    stat(p.pid).is_some_and(|(_, state, started, _)| started == p.started && state != 'Z')
}

/// Kills what a failed test leaves behind (only the very processes it recorded).
struct Leftovers(Vec<ProcInfo>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for p in self.0.iter().filter(|p| alive(p)) {
            let _ = Command::new("kill").args(["-KILL", &p.pid.to_string()]).status();
        }
    }
}

/// Whether a TCP port on 127.0.0.1 can be bound (nobody listens on it any more).
fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The port of an `http://ADDR:PORT` in a line.
fn port_in(line: &str) -> anyhow::Result<u16> {
    let url = &line[line.find("http://").ok_or_else(|| anyhow::anyhow!("no URL in {line:?}"))?..];
    let url: String = url.chars().take_while(|c| !c.is_whitespace()).collect();
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port in {url:?}"))
}

/// A fresh directory for a test.
fn scratch() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::tempdir()?)
}

/// The workspace root.
fn root() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map(PathBuf::from).unwrap_or(xtask)
}
