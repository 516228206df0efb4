//! The processes xtask starts, and the signals that stop them.
//!
//! A service manager, `timeout` and an IDE's stop button send SIGTERM; a terminal sends SIGINT
//! (Ctrl-C) or SIGHUP (closed). On any of the three, xtask sends SIGTERM to every child it
//! still runs (to the child's whole process group when it has one, so a `cargo test` takes its
//! test binaries and their servers along, and to every process below it, wherever it put its
//! own), the command waiting for them ends, and whatever is still alive [`FORCE_AFTER`] later
//! gets SIGKILL before xtask exits. A second signal kills at once.
//!
//! `kill -9` of xtask cannot be caught. For that, children are started through util-linux's
//! `setpriv --pdeathsig TERM` ([`bound`]): the kernel sends them SIGTERM when the thread that
//! started them dies (PR_SET_PDEATHSIG), with no unsafe code in xtask. That thread must live as
//! long as the child: start children from the main thread.
//!
//! Every running child is in [`TABLE`]; a child is reaped only with the table locked, so the
//! signal thread never signals a pid (or group) that was already reaped and may be reused.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long children get between SIGTERM and SIGKILL when a command stops them.
pub(crate) const GRACE: Duration = Duration::from_secs(5);
/// After the first signal, xtask kills what is left and exits this much later at the latest,
/// even when the command is stuck somewhere that does not look at the children.
const FORCE_AFTER: Duration = Duration::from_secs(15);
/// How often a waiting command looks at its child.
const POLL: Duration = Duration::from_millis(50);
/// Lines of a child's output kept to explain its exit.
const TAIL_LINES: usize = 40;

/// The signal that asked xtask to stop (its number), 0 while none has.
static STOP: AtomicI32 = AtomicI32::new(0);
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
/// The children not yet reaped.
static TABLE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    pid: u32,
    own_group: bool,
}

fn table() -> MutexGuard<'static, Vec<Entry>> {
    // A panic while holding it leaves plain data behind: keep using it.
    TABLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn signal_name(signo: i32) -> &'static str {
    match signo {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        _ => "SIGTERM",
    }
}

/// The signal xtask was asked to stop by, if any.
pub(crate) fn stop_requested() -> Option<&'static str> {
    let signo = STOP.load(Ordering::SeqCst);
    (signo != 0).then(|| signal_name(signo))
}

/// The exit status for a command that ended because of the signal: 128 + its number.
pub(crate) fn stop_exit_code() -> Option<u8> {
    let signo = STOP.load(Ordering::SeqCst);
    (signo != 0).then(|| u8::try_from(128 + signo).unwrap_or(143))
}

/// An error when a stop was asked for (a waiting loop's way out).
pub(crate) fn check_stop() -> anyhow::Result<()> {
    match stop_requested() {
        Some(sig) => anyhow::bail!("stopped by {sig}"),
        None => Ok(()),
    }
}

/// Catch SIGTERM, SIGINT and SIGHUP for the rest of the process: stop every child, then let
/// the command end (or end it after [`FORCE_AFTER`]). Call once, first thing in `main`.
pub(crate) fn handle_signals() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Registered here, before main goes on: a signal from now on is caught.
    let (mut term, mut int, mut hup) = {
        let _in = rt.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        )
    };
    std::thread::Builder::new().name("xtask-signals".into()).spawn(move || {
        rt.block_on(async move {
            loop {
                let signo = tokio::select! {
                    _ = term.recv() => SIGTERM,
                    _ = int.recv() => SIGINT,
                    _ = hup.recv() => SIGHUP,
                };
                let code = 128 + signo;
                if STOP.compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                    eprintln!("xtask: {} again: killing everything now", signal_name(signo));
                    signal_all("KILL");
                    std::process::exit(code);
                }
                eprintln!("xtask: {}: stopping every process xtask started", signal_name(signo));
                signal_all("TERM");
                tokio::spawn(async move {
                    tokio::time::sleep(FORCE_AFTER).await;
                    eprintln!(
                        "xtask: still running {} s after the signal: killing what is left",
                        FORCE_AFTER.as_secs()
                    );
                    signal_all("KILL");
                    std::process::exit(code);
                });
            }
        })
    })?;
    Ok(())
}

/// Send `sig` (`TERM`, `KILL`) to every child not yet reaped, and to everything they started
/// that is still running: a program that put its own children in a process group of their
/// own (the browser tests' chromedriver and chromium) is reached too.
fn signal_all(sig: &str) {
    let table = table();
    signal_tree(&table, sig);
}

/// Send `sig` to the children `entries` (their groups when they lead one) and to every process
/// below them. Their table must be locked: none of them is reaped meanwhile.
fn signal_tree(entries: &[Entry], sig: &str) {
    let roots: Vec<u32> = entries.iter().map(|e| e.pid).collect();
    // Found before anything is signalled, so an exit does not hide a grandchild.
    let below = descendants(&roots);
    for e in entries {
        send(e.pid, e.own_group, sig);
    }
    for pid in below {
        send(pid, false, sig);
    }
}

/// Every process below `roots` (not the roots), from /proc's parent links.
fn descendants(roots: &[u32]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let links: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name (which may hold anything): state, then the parent.
            let rest = &stat[stat.rfind(')')? + 1..];
            Some((pid, rest.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect();
    let mut found: Vec<u32> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &links {
            if ppid == parent && !found.contains(&pid) && !roots.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// `kill -SIG -- PID`, or `-- -PGID` for a child leading its own process group.
fn send(pid: u32, own_group: bool, sig: &str) {
    let target = if own_group { format!("-{pid}") } else { pid.to_string() };
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", &target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn setpriv() -> Option<&'static Path> {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    SETPRIV
        .get_or_init(|| {
            ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().map(PathBuf::from).find(|p| {
                // An old setpriv without --pdeathsig (util-linux < 2.33) would refuse to run.
                Command::new(p)
                    .arg("--help")
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--pdeathsig"))
            })
        })
        .as_deref()
}

/// A command for a child that must not outlive xtask, even a `kill -9` of it:
/// `setpriv --pdeathsig TERM -- program` (setpriv sets the flag and execs the program, so the
/// child's pid is the program's). Without setpriv (util-linux), a plain command.
pub(crate) fn bound(program: impl AsRef<OsStr>) -> Command {
    match setpriv() {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "TERM", "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Which process group a child runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Its own: stopping it stops everything it started too. It cannot read the terminal.
    Own,
    /// xtask's, for a command that may ask something on the terminal (sudo's password prompt;
    /// a background group would be stopped by SIGTTIN). Ctrl-C reaches it from the terminal;
    /// xtask signals only the child itself.
    Terminal,
}

/// A child's standard error, read by a thread: echoed with the child's name, its last lines
/// kept, and the first `listening on http://ADDR` it logged noted.
#[derive(Debug, Default)]
struct Output {
    state: Mutex<OutputState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct OutputState {
    tail: VecDeque<String>,
    listening: Option<String>,
    closed: bool,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(self: Arc<Self>, name: String, stream: impl Read) {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            eprintln!("[{name}] {line}");
            let mut state = self.lock();
            if state.listening.is_none()
                && let Some(at) = line.find("listening on http://")
            {
                let url = &line[at + "listening on ".len()..];
                state.listening = Some(url.split_whitespace().next().unwrap_or(url).to_owned());
            }
            if state.tail.len() == TAIL_LINES {
                state.tail.pop_front();
            }
            state.tail.push_back(line);
            self.changed.notify_all();
        }
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// A child xtask started: registered until reaped, stopped (SIGTERM, then SIGKILL) when
/// dropped while it runs.
#[derive(Debug)]
pub(crate) struct Proc {
    name: String,
    key: u64,
    child: Child,
    own_group: bool,
    exited: Option<ExitStatus>,
    output: Option<Arc<Output>>,
}

impl Proc {
    /// Start `cmd` as the child `name` in `group`. With `capture`, its standard error is read
    /// by xtask (echoed as `[name] line`) so its last words can explain an early exit.
    pub(crate) fn spawn(
        name: &str,
        cmd: &mut Command,
        group: Group,
        capture: bool,
    ) -> anyhow::Result<Self> {
        if group == Group::Own {
            cmd.process_group(0);
        }
        if capture {
            cmd.stderr(Stdio::piped());
        }
        // Registered under the lock before the signal thread can look: a signal that arrives
        // during the spawn finds the child in the table.
        let mut table = table();
        check_stop()?;
        let mut child = cmd.spawn().map_err(|e| {
            anyhow::anyhow!("cannot start {name} ({}): {e}", cmd.get_program().to_string_lossy())
        })?;
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let own_group = group == Group::Own;
        table.push(Entry { key, pid: child.id(), own_group });
        drop(table);
        let output = match child.stderr.take() {
            Some(stderr) if capture => {
                let output = Arc::new(Output::default());
                let (o, n) = (output.clone(), name.to_owned());
                std::thread::Builder::new()
                    .name(format!("{name} output"))
                    .spawn(move || o.read(n, stderr))?;
                Some(output)
            }
            _ => None,
        };
        Ok(Self { name: name.to_owned(), key, child, own_group, exited: None, output })
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has exited (reaped with the table locked).
    pub(crate) fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exited.is_some() {
            return Ok(self.exited);
        }
        let mut table = table();
        let status = self.child.try_wait()?;
        if status.is_some() {
            table.retain(|e| e.key != self.key);
            self.exited = status;
        }
        Ok(status)
    }

    /// Wait for the exit. A signal to xtask makes the signal thread stop the child, so this
    /// returns then too.
    pub(crate) fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM (to its group when it has one); SIGKILL when it is still there at `deadline`.
    fn terminate(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            self.signal("TERM");
        }
    }

    fn signal(&mut self, sig: &str) {
        // Under the lock and only while not reaped: the pid is still ours.
        let table = table();
        if matches!(self.child.try_wait(), Ok(None)) {
            send(self.child.id(), self.own_group, sig);
        }
        drop(table);
    }

    fn finish_by(&mut self, deadline: Instant) {
        while Instant::now() < deadline && matches!(self.try_wait(), Ok(None)) {
            std::thread::sleep(POLL);
        }
        if matches!(self.try_wait(), Ok(None)) {
            eprintln!("xtask: {} did not stop within {} s; killing it", self.name, GRACE.as_secs());
            self.signal("KILL");
            let _ = self.wait();
        }
    }

    /// The `http://ADDR` of its first `listening on http://ADDR` line, once logged; an error
    /// naming what it said when it exits first or `within` passes (needs `capture`).
    pub(crate) fn listening_url(&mut self, within: Duration) -> anyhow::Result<String> {
        let output = self
            .output
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{}: output not captured", self.name))?;
        let deadline = Instant::now() + within;
        loop {
            check_stop()?;
            if let Some(url) = output.lock().listening.clone() {
                return Ok(url);
            }
            if let Some(status) = self.try_wait()? {
                anyhow::bail!("{}", self.exit_report(status));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not say where it listens within {} s",
                self.name,
                within.as_secs()
            );
            let state = output.lock();
            let _ = output.changed.wait_timeout(state, POLL);
        }
    }

    /// Its last lines of output (after its exit: all of them, once the pipe is closed).
    pub(crate) fn last_words(&self) -> Vec<String> {
        let Some(output) = &self.output else { return Vec::new() };
        // The reader may still be behind the exit: give it a moment to reach the end.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut state = output.lock();
        while !state.closed && self.exited.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = output.changed.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|e| {
                let (s, _) = e.into_inner();
                s
            });
        }
        state.tail.iter().cloned().collect()
    }

    /// "NAME stopped (STATUS). It said:" and its last lines.
    pub(crate) fn exit_report(&self, status: ExitStatus) -> String {
        let words = self.last_words();
        let mut report = format!("{} stopped ({status})", self.name);
        if !words.is_empty() {
            report.push_str(". Its last words:");
            for line in words.iter().rev().take(8).rev() {
                report.push_str(&format!("\n  [{}] {line}", self.name));
            }
        }
        report
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            self.terminate();
            self.finish_by(Instant::now() + GRACE);
        }
        let _ = self.wait();
    }
}

/// Children that live together (a demo, a bench): stopped together, SIGTERM to all first, then
/// each gets what is left of [`GRACE`].
#[derive(Debug, Default)]
pub(crate) struct Children(pub(crate) Vec<Proc>);

impl Children {
    /// Start a long-running child: [`bound`] to xtask's life, in its own group.
    pub(crate) fn start(
        &mut self,
        name: &str,
        cmd: &mut Command,
        capture: bool,
    ) -> anyhow::Result<&mut Proc> {
        let proc = Proc::spawn(name, cmd, Group::Own, capture)?;
        self.0.push(proc);
        let last = self.0.len() - 1;
        Ok(&mut self.0[last])
    }

    /// The first child that has exited, with its report.
    pub(crate) fn exited(&mut self) -> anyhow::Result<Option<String>> {
        for p in &mut self.0 {
            if let Some(status) = p.try_wait()? {
                return Ok(Some(p.exit_report(status)));
            }
        }
        Ok(None)
    }

    /// Stop them all (SIGTERM together, SIGKILL after [`GRACE`]).
    pub(crate) fn stop(&mut self) {
        for p in &mut self.0 {
            p.terminate();
        }
        let deadline = Instant::now() + GRACE;
        for p in &mut self.0 {
            p.finish_by(deadline);
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run a command to its end in its own process group (stopped with xtask), failing unless it
/// succeeds.
pub(crate) fn run(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    run_in(what, cmd, Group::Own)
}

/// [`run`], returning what the command printed on its standard output (its standard error
/// goes to xtask's).
pub(crate) fn run_stdout(what: &str, cmd: &mut Command) -> anyhow::Result<String> {
    eprintln!("xtask: {what}");
    cmd.stdout(Stdio::piped());
    let mut proc = Proc::spawn(what, cmd, Group::Own, false)?;
    let mut out = Vec::new();
    if let Some(mut stdout) = proc.child.stdout.take() {
        // Until the end: the command's exit, or a stop (the signal thread ends the command).
        stdout.read_to_end(&mut out)?;
    }
    let status = proc.wait()?;
    check_stop()?;
    anyhow::ensure!(status.success(), "{what} failed ({status})");
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// [`run`] in the given process group (see [`Group::Terminal`] for commands that may prompt).
pub(crate) fn run_in(what: &str, cmd: &mut Command, group: Group) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = Proc::spawn(what, cmd, group, false)?.wait()?;
    check_stop()?;
    anyhow::ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `pid` runs (a zombie does not: it only waits to be reaped by its new parent).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rfind(')').map(|at| s[at + 1..].trim_start().starts_with('Z')))
            .is_some_and(|zombie| !zombie)
    }

    /// A child that starts a program in a session (and process group) of its own, as the
    /// browser tests do with chromedriver: a stop reaches that program too.
    #[test]
    fn a_stop_reaches_what_a_child_put_in_a_group_of_its_own() -> anyhow::Result<()> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "setsid sh -c 'echo $$; exec sleep 600' & wait"]).stdout(Stdio::piped());
        let mut child = Proc::spawn("tree", &mut cmd, Group::Own, false)?;
        let mut line = String::new();
        if let Some(stdout) = child.child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let grandchild: u32 = line.trim().parse()?;
        assert!(running(grandchild), "no grandchild {grandchild}");

        let entry = Entry { key: child.key, pid: child.id(), own_group: true };
        {
            // As the signal thread does it: with the table locked.
            let _table = table();
            signal_tree(&[entry], "TERM");
        }
        child.wait()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while running(grandchild) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let left = running(grandchild);
        if left {
            send(grandchild, false, "KILL");
        }
        assert!(!left, "the grandchild {grandchild} in its own group survived the stop");
        Ok(())
    }
}
