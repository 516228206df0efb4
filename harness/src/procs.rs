//! The processes a program (xtask, a test) starts, and the signals that stop them.
//!
//! Every child is a [`Proc`]: started in a process group ([`Group`]), its standard error read
//! when asked ([`Capture`]), stopped with SIGTERM and, [`GRACE`] later, SIGKILL: when it is
//! dropped, by [`Proc::stop`], or all together by [`Children`]. [`Proc::kill`] is a crash or
//! a power cut (SIGKILL at once).
//!
//! For a command-line program ([`handle_signals`], which xtask calls): a service manager,
//! `timeout` and an IDE's stop button send SIGTERM; a terminal sends SIGINT (Ctrl-C) or
//! SIGHUP (closed). On any of the three, xtask sends SIGTERM to every child it
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
pub const GRACE: Duration = Duration::from_secs(5);
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
pub fn stop_requested() -> Option<&'static str> {
    let signo = STOP.load(Ordering::SeqCst);
    (signo != 0).then(|| signal_name(signo))
}

/// The exit status for a command that ended because of the signal: 128 + its number.
pub fn stop_exit_code() -> Option<u8> {
    let signo = STOP.load(Ordering::SeqCst);
    (signo != 0).then(|| u8::try_from(128 + signo).unwrap_or(143))
}

/// An error when a stop was asked for (a waiting loop's way out).
pub fn check_stop() -> anyhow::Result<()> {
    match stop_requested() {
        Some(sig) => anyhow::bail!("stopped by {sig}"),
        None => Ok(()),
    }
}

/// Catch SIGTERM, SIGINT and SIGHUP for the rest of the process: stop every child, then let
/// the command end (or end it after [`FORCE_AFTER`]). Call once, first thing in `main`.
pub fn handle_signals() -> anyhow::Result<()> {
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

pub(crate) fn setpriv() -> Option<&'static Path> {
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
pub fn bound(program: impl AsRef<OsStr>) -> Command {
    match setpriv() {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "TERM", "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Fields of `/proc/<pid>/status` given in kB (`VmRSS:`, `VmHWM:`, `RssAnon:`), in KiB, in the
/// order asked: the benchmarks' memory figures.
pub fn status_kib<const N: usize>(pid: u32, names: [&str; N]) -> anyhow::Result<[u64; N]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut values = [0; N];
    for (value, name) in values.iter_mut().zip(names) {
        *value = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/{pid}/status"))?;
    }
    Ok(values)
}

/// The CPU time a process has used, user and system, in clock ticks (`/proc/<pid>/stat`; 100
/// a second: USER_HZ on Linux whatever the kernel's own HZ): the benchmarks' CPU figures.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name (which may hold spaces): the state is field 3, utime and stime
    // fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat: {stat}"))?.parse()?)
    };
    Ok(field(11)? + field(12)?)
}

/// Which process group a child runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Its own: stopping it stops everything it started too. It cannot read the terminal.
    Own,
    /// Its parent's: for a command that may ask something on the terminal (sudo's password
    /// prompt; a background group would be stopped by SIGTTIN), and for a test's servers,
    /// which a Ctrl-C of `cargo test` then reaches as it reaches the test. Only the child
    /// itself is signalled.
    Parent,
}

/// What becomes of a child's standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// Not read: it goes where the parent's goes.
    No,
    /// Echoed as `[name] line` as it comes, its last lines kept to explain an exit (the
    /// commands of xtask).
    Echo,
    /// Every line kept and none shown, until a test fails and shows them ([`print_logs`]).
    Keep,
}

/// A child's standard error, read by a thread: echoed or kept, and the first
/// `listening on http://ADDR` it logged noted.
#[derive(Debug)]
struct Output {
    name: String,
    capture: Capture,
    state: Mutex<OutputState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct OutputState {
    /// The lines kept: all of them ([`Capture::Keep`]) or the last [`TAIL_LINES`].
    lines: VecDeque<String>,
    listening: Option<String>,
    closed: bool,
    /// Already shown by [`print_logs`] (a failure shows each log once).
    printed: bool,
}

/// The kept logs of every child this process started ([`Capture::Keep`]): shown when a test
/// fails.
static LOGS: Mutex<Vec<Arc<Output>>> = Mutex::new(Vec::new());

/// The `http://ADDR` of a `listening on http://ADDR` line.
pub fn listening_url_in(line: &str) -> Option<String> {
    let at = line.find("listening on http://")?;
    let url = &line[at + "listening on ".len()..];
    Some(url.split_whitespace().next().unwrap_or(url).to_owned())
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(self: Arc<Self>, stream: impl Read) {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            if self.capture == Capture::Echo {
                eprintln!("[{}] {line}", self.name);
            }
            let mut state = self.lock();
            if state.listening.is_none() {
                state.listening = listening_url_in(&line);
            }
            if self.capture != Capture::Keep && state.lines.len() == TAIL_LINES {
                state.lines.pop_front();
            }
            state.lines.push_back(line);
            self.changed.notify_all();
        }
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Print every line kept, once.
    fn show(&self) {
        let mut state = self.lock();
        if state.printed {
            return;
        }
        state.printed = true;
        eprintln!("----- {}: its log ({} lines) -----", self.name, state.lines.len());
        for line in &state.lines {
            eprintln!("[{}] {line}", self.name);
        }
    }
}

/// Print the kept logs ([`Capture::Keep`]) of every child started so far that were not shown
/// yet: a failing test calls this.
pub fn print_logs() {
    let logs = LOGS.lock().map(|l| l.clone()).unwrap_or_default();
    for log in &logs {
        log.show();
    }
}

/// A child: registered until reaped, stopped (SIGTERM, then SIGKILL) when dropped while it
/// runs.
#[derive(Debug)]
pub struct Proc {
    name: String,
    key: u64,
    child: Child,
    own_group: bool,
    exited: Option<ExitStatus>,
    output: Option<Arc<Output>>,
}

impl Proc {
    /// Start `cmd` as the child `name` in `group`, its standard error as `capture` says.
    pub fn spawn(
        name: &str,
        cmd: &mut Command,
        group: Group,
        capture: Capture,
    ) -> anyhow::Result<Self> {
        if group == Group::Own {
            cmd.process_group(0);
        }
        if capture != Capture::No {
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
            Some(stderr) if capture != Capture::No => {
                let output = Arc::new(Output {
                    name: name.to_owned(),
                    capture,
                    state: Mutex::default(),
                    changed: Condvar::new(),
                });
                if capture == Capture::Keep
                    && let Ok(mut logs) = LOGS.lock()
                {
                    logs.push(output.clone());
                }
                let o = output.clone();
                std::thread::Builder::new()
                    .name(format!("{name} output"))
                    .spawn(move || o.read(stderr))?;
                Some(output)
            }
            _ => None,
        };
        Ok(Self { name: name.to_owned(), key, child, own_group, exited: None, output })
    }

    /// Its standard output, when `cmd` piped it (`Stdio::piped()`): for the caller to read.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has exited (reaped with the table locked).
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
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
    pub fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Its exit status once it has exited within `within`; None while it still runs then.
    pub fn wait_within(&mut self, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Send SIGTERM (to its group when it has one) while it runs, and return: [`Proc::stop`]
    /// waits too.
    pub fn terminate(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            self.signal("TERM");
        }
    }

    /// SIGKILL (no clean-up of any kind, as a crash or a power cut) and wait for the exit.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal("KILL");
        self.wait()
    }

    /// SIGTERM, and its exit status when it exits within `grace`; SIGKILL and an error when it
    /// does not.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        self.terminate();
        self.finish_by(Instant::now() + grace, grace)
    }

    fn signal(&mut self, sig: &str) {
        // Under the lock and only while not reaped: the pid is still ours.
        let table = table();
        if matches!(self.child.try_wait(), Ok(None)) {
            send(self.child.id(), self.own_group, sig);
        }
        drop(table);
    }

    /// Wait for the exit until `deadline`, then SIGKILL (an error naming `grace`, the time it
    /// had since SIGTERM).
    fn finish_by(&mut self, deadline: Instant, grace: Duration) -> anyhow::Result<ExitStatus> {
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let said = format!("{} did not stop within {} s of SIGTERM", self.name, grace.as_secs());
        eprintln!("{said}; killing it");
        self.kill()?;
        anyhow::bail!("{said}")
    }

    /// The first line kept so far that contains `needle` (needs a [`Capture`]).
    pub fn line_with(&self, needle: &str) -> Option<String> {
        let output = self.output.as_ref()?;
        output.lock().lines.iter().find(|l| l.contains(needle)).cloned()
    }

    /// How many lines kept so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.output
            .as_ref()
            .map_or(0, |o| o.lock().lines.iter().filter(|l| l.contains(needle)).count())
    }

    /// Every line kept so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.as_ref().map(|o| o.lock().lines.iter().cloned().collect()).unwrap_or_default()
    }

    /// Wait (asynchronously, for a test on tokio) until a line contains `needle`; return it.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.line_with(needle) {
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

    /// Show its kept log now, unless already shown.
    pub fn show_log(&self) {
        if let Some(output) = &self.output {
            output.show();
        }
    }

    /// The `http://ADDR` of its first `listening on http://ADDR` line, once logged; an error
    /// naming what it said when it exits first or `within` passes (needs a [`Capture`]).
    pub fn listening_url(&mut self, within: Duration) -> anyhow::Result<String> {
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
    pub fn last_words(&self) -> Vec<String> {
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
        let from = state.lines.len().saturating_sub(TAIL_LINES);
        state.lines.iter().skip(from).cloned().collect()
    }

    /// "NAME stopped (STATUS). It said:" and its last lines.
    pub fn exit_report(&self, status: ExitStatus) -> String {
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
            let _ = self.stop(GRACE);
        }
        let _ = self.wait();
    }
}

/// Children that live together (a demo, a bench): stopped together, SIGTERM to all first, then
/// each gets what is left of [`GRACE`].
#[derive(Debug, Default)]
pub struct Children(pub Vec<Proc>);

impl Children {
    /// Start a long-running child: [`bound`] to this program's life, in its own group, its
    /// output echoed ([`Capture::Echo`]).
    pub fn start(&mut self, name: &str, cmd: &mut Command) -> anyhow::Result<&mut Proc> {
        let proc = Proc::spawn(name, cmd, Group::Own, Capture::Echo)?;
        self.0.push(proc);
        let last = self.0.len() - 1;
        Ok(&mut self.0[last])
    }

    /// The first child that has exited, with its report.
    pub fn exited(&mut self) -> anyhow::Result<Option<String>> {
        for p in &mut self.0 {
            if let Some(status) = p.try_wait()? {
                return Ok(Some(p.exit_report(status)));
            }
        }
        Ok(None)
    }

    /// Stop them all (SIGTERM together, SIGKILL after [`GRACE`]).
    pub fn stop(&mut self) {
        for p in &mut self.0 {
            p.terminate();
        }
        let deadline = Instant::now() + GRACE;
        for p in &mut self.0 {
            let _ = p.finish_by(deadline, GRACE);
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
pub fn run(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    run_in(what, cmd, Group::Own)
}

/// [`run`], returning what the command printed on its standard output (its standard error
/// goes to xtask's).
pub fn run_stdout(what: &str, cmd: &mut Command) -> anyhow::Result<String> {
    eprintln!("xtask: {what}");
    cmd.stdout(Stdio::piped());
    let mut proc = Proc::spawn(what, cmd, Group::Own, Capture::No)?;
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

/// [`run`] in the given process group (see [`Group::Parent`] for commands that may prompt).
pub fn run_in(what: &str, cmd: &mut Command, group: Group) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let started = std::time::Instant::now();
    let status = Proc::spawn(what, cmd, group, Capture::No)?.wait()?;
    check_stop()?;
    anyhow::ensure!(status.success(), "{what} failed ({status})");
    // Where a run's time goes, in the log of every run (the test command has a budget).
    eprintln!("xtask: {what}: done in {:.0} s", started.elapsed().as_secs_f64());
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
        let mut child = Proc::spawn("tree", &mut cmd, Group::Own, Capture::No)?;
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
