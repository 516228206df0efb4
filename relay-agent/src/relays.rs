//! The relay controller: owns the hardware bank and each output's state, lease and protection.
//!
//! Relay commanding is a lease: the engine turns an output on for at most `lease_s` seconds and
//! renews it while it wants the output on. If the engine (or the network) goes silent, the lease
//! runs out and the output falls back to its safe state: a crashed engine must not leave the
//! furnace running.
//!
//! Whatever the engine says, the controller also protects the equipment by itself, as the last
//! line of defence against a buggy or compromised controller:
//!
//! - **interlocks**: an `on` for an output while another output of one of its interlock groups
//!   is on (physically: including one whose `off` is still deferred) is refused;
//! - **minimum off time**: an `on` sooner than `min_off` after the output went off (or after the
//!   agent took the outputs over at start: the agent may have just been restarted mid-cycle) is
//!   refused;
//! - **minimum on time**: an `off` (commanded, or a lease running out) sooner than `min_on` after
//!   the output went on is deferred until `min_on` has passed;
//! - **maximum on time**: an output on for `max_on` continuously returns to its safe state
//!   however often its lease is renewed (then `min_off` applies before it can run again).
//!
//! Only the operator's own actions bypass the minimum times: start and stop drive every output
//! to its safe state at once.
//!
//! Deadlines use `tokio::time::Instant`, so tests drive them with `tokio::time::pause()` in
//! virtual time. One `std::sync::Mutex` guards the bank and the outputs together, so the state
//! reported is always the state last written to the hardware. Hardware calls are short blocking
//! system calls (a GPIO line, a small file for the simulator), fine to make under the lock.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hearth_proto::fallback::{FallbackDoing, FallbackWhy};
use hearth_proto::relays::{
    CommandOutcome, Fallback, FallbackReason, LEASE_S, LastCommand, OutputStatus, Protection,
    RelayCommand, RelayState,
};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::config::{Interlock, OutputConfig};
use crate::hw::{HwError, RelayBank};

/// When the hardware refused to switch an output the controller owes a switch to (a lease ran
/// out, a deferred off), try again this soon.
const RETRY: Duration = Duration::from_secs(1);

/// Why a command was not carried out. Every refusal leaves every output as it was.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No output has this id.
    #[error("no output {0:?}")]
    NotFound(String),
    /// `lease_s` is missing for `on`.
    #[error(
        "lease_s field is missing: it is required for \"on\" ({}..={} s)",
        LEASE_S.start(),
        LEASE_S.end()
    )]
    MissingLease,
    /// `lease_s` is outside [`LEASE_S`].
    #[error("lease_s must be between {min} and {max} seconds, got {0}", min = LEASE_S.start(), max = LEASE_S.end())]
    InvalidLease(u32),
    /// Another output of an interlock group is on.
    #[error("interlock {group}: {other} is on; switch it off first")]
    Interlock {
        /// The group's name.
        group: String,
        /// The output that is on.
        other: String,
    },
    /// The minimum off time has not passed.
    #[error("minimum off time: {min_off_s} s, {} s left", remaining.as_secs_f64().ceil())]
    ShortCycle {
        /// The configured minimum off time.
        min_off_s: u32,
        /// How long until an `on` is accepted.
        remaining: Duration,
    },
    /// The agent is stopping and holds every output in its safe state.
    #[error("the relay agent is shutting down")]
    ShuttingDown,
    /// The hardware refused.
    #[error("hardware error: {0}")]
    Hardware(#[from] HwError),
}

/// An output's protection times: its configured ones, or stricter ones the engine set within
/// the agent's local limits (`crate::manage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Minimum seconds on.
    pub min_on_s: u32,
    /// Minimum seconds off.
    pub min_off_s: u32,
    /// Maximum continuous seconds on; None: no limit.
    pub max_on_s: Option<u32>,
}

impl Times {
    /// The configured times of `config`.
    pub fn of(config: &OutputConfig) -> Self {
        Self {
            min_on_s: config.min_on_s(),
            min_off_s: config.min_off_s(),
            max_on_s: config.max_on_s(),
        }
    }
}

/// A command the controller carried out (at once or deferred).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// [`CommandOutcome::Done`] or [`CommandOutcome::Deferred`].
    pub outcome: CommandOutcome,
    /// The output's status after the command.
    pub status: OutputStatus,
}

#[derive(Debug, Clone)]
struct CommandRecord {
    command: RelayCommand,
    at: Instant,
    outcome: CommandOutcome,
    detail: Option<String>,
}

#[derive(Debug)]
struct Output {
    config: OutputConfig,
    /// The protection times in force (the configured ones unless the engine tightened them).
    times: Times,
    min_on: Duration,
    min_off: Duration,
    max_on: Option<Duration>,
    /// Indices of the outputs sharing an interlock group with this one, and the group's name.
    interlocked_with: Vec<(usize, String)>,
    /// The state last written to the hardware successfully.
    state: RelayState,
    /// When `state` last changed, or when the agent took the output over.
    changed_at: Instant,
    /// Times switched on since the start.
    cycles: u64,
    /// When the current lease runs out; `Some` from an accepted `on` until the output leaves
    /// the leased state.
    lease_deadline: Option<Instant>,
    /// A commanded `off` waiting for the minimum on time.
    deferred_off: Option<Instant>,
    /// Set when the hardware refused a switch the controller owes: nothing is due before it.
    retry_at: Option<Instant>,
    last_command: Option<CommandRecord>,
    last_fallback: Option<(FallbackReason, Instant)>,
}

impl Output {
    fn new(config: OutputConfig, now: Instant) -> Self {
        let times = Times::of(&config);
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Self {
            times,
            min_on: secs(times.min_on_s),
            min_off: secs(times.min_off_s),
            max_on: times.max_on_s.map(secs),
            interlocked_with: Vec::new(),
            state: config.safe_state,
            changed_at: now,
            cycles: 0,
            lease_deadline: None,
            deferred_off: None,
            retry_at: None,
            last_command: None,
            last_fallback: None,
            config,
        }
    }

    fn safe(&self) -> RelayState {
        self.config.safe_state
    }

    /// Protect with `times` from now on, the running cycle included: a longer minimum on time
    /// moves a deferred off later, a longer minimum off time holds an output that is off for
    /// longer, a shorter maximum on time ends a long run through the timer (the normal path,
    /// never here).
    fn set_times(&mut self, times: Times) {
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        self.times = times;
        self.min_on = secs(times.min_on_s);
        self.min_off = secs(times.min_off_s);
        self.max_on = times.max_on_s.map(secs);
        if let Some(off) = self.deferred_off {
            self.deferred_off = Some(off.max(self.changed_at + self.min_on));
        }
    }

    /// When the maximum on time ends, while it runs.
    fn max_on_end(&self) -> Option<Instant> {
        let limited = self.state.is_on() && !self.safe().is_on();
        self.max_on.filter(|_| limited).map(|max| self.changed_at + max)
    }

    /// When the lease's fallback happens: at the deadline, or later if that would cut the
    /// minimum on time short. None when there is no lease or the output is in its safe state.
    fn lease_end(&self) -> Option<Instant> {
        let deadline = self.lease_deadline?;
        if self.state == self.safe() {
            return None;
        }
        Some(if self.state.is_on() {
            deadline.max(self.changed_at + self.min_on)
        } else {
            deadline
        })
    }

    /// When the output will next switch by itself (or retry a switch), if ever.
    fn next_event(&self) -> Option<Instant> {
        if self.retry_at.is_some() {
            return self.retry_at;
        }
        [self.max_on_end(), self.lease_end(), self.deferred_off, self.stale_lease()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A lease left over on an output already back in its safe state: cleared at its deadline.
    fn stale_lease(&self) -> Option<Instant> {
        self.lease_deadline.filter(|_| self.state == self.safe())
    }

    /// When a pending off happens: a deferred `off`, or a lease that ran out during the
    /// minimum on time.
    fn pending_off(&self, now: Instant) -> Option<Instant> {
        if !self.state.is_on() {
            return None;
        }
        let lease_held = self.lease_end().filter(|_| self.lease_deadline.is_some_and(|d| d <= now));
        self.deferred_off.or(lease_held)
    }

    /// The status, with interlock partners named from `all` (every output, this one included).
    fn status(&self, now: Instant, all: &[Output]) -> OutputStatus {
        let secs_until = |t: Instant| t.saturating_duration_since(now).as_secs_f64();
        let secs_since = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
        let on_blocked = (!self.state.is_on())
            .then(|| self.changed_at + self.min_off)
            .filter(|t| *t > now)
            .map(secs_until);
        OutputStatus {
            id: self.config.id.clone(),
            name: self.config.name.clone(),
            state: self.state,
            safe_state: self.safe(),
            function_hint: self.config.function_hint,
            lease_remaining_s: self.lease_deadline.map(secs_until),
            changed_s_ago: secs_since(self.changed_at),
            cycles: self.cycles,
            protection: Protection {
                min_on_s: self.times.min_on_s,
                min_off_s: self.times.min_off_s,
                max_on_s: self.times.max_on_s,
                interlocked_with: self
                    .interlocked_with
                    .iter()
                    .filter_map(|(j, _)| all.get(*j).map(|o| o.config.id.clone()))
                    .collect(),
            },
            pending_off_in_s: self.pending_off(now).map(secs_until),
            on_blocked_for_s: on_blocked,
            last_command: self.last_command.as_ref().map(|c| LastCommand {
                state: c.command.state,
                lease_s: c.command.lease_s,
                s_ago: secs_since(c.at),
                outcome: c.outcome,
                detail: c.detail.clone(),
            }),
            last_fallback: self
                .last_fallback
                .map(|(reason, at)| Fallback { reason, s_ago: secs_since(at) }),
        }
    }
}

struct Inner {
    bank: Box<dyn RelayBank>,
    outputs: Vec<Output>,
    last_engine_contact: Option<Instant>,
    /// When the controller took the outputs over: the engine's silence counts from here until
    /// its first command.
    started: Instant,
    /// Set while the fallback program runs (`crate::fallback`); the engine's next command
    /// clears it.
    fallback: Option<FallbackRun>,
    /// Set at shutdown: outputs are held in their safe state and commands are refused.
    stopping: bool,
}

/// A fallback program run in progress.
#[derive(Debug)]
struct FallbackRun {
    since: Instant,
    why: FallbackWhy,
    /// Output id → what the program does with it now.
    doing: BTreeMap<String, FallbackDoing>,
}

/// How an output came to switch, for its bookkeeping and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Command,
    Fallback(FallbackReason),
}

impl Inner {
    /// Write `state` to output `index`; the bookkeeping of a change (time, cycles) follows.
    fn drive(&mut self, index: usize, state: RelayState, now: Instant) -> Result<(), HwError> {
        let Some(output) = self.outputs.get_mut(index) else {
            return Err(HwError::Device(format!("no output at index {index}")));
        };
        self.bank.set(&output.config.id, state.is_on())?;
        if output.state != state {
            output.state = state;
            output.changed_at = now;
            if state.is_on() {
                output.cycles += 1;
            }
        }
        Ok(())
    }

    /// Switch output `index` to `state` for `cause`, clearing what was pending; if the hardware
    /// refuses, retry soon (the switch is owed). True when it fell back to its safe state.
    fn switch_owed(&mut self, index: usize, state: RelayState, cause: Cause, now: Instant) -> bool {
        match self.drive(index, state, now) {
            Ok(()) => {
                let output = &mut self.outputs[index];
                output.lease_deadline = None;
                output.deferred_off = None;
                output.retry_at = None;
                let id = &output.config.id;
                match cause {
                    Cause::Command => tracing::info!(output = %id, ?state, "deferred off done"),
                    Cause::Fallback(reason) => {
                        output.last_fallback = Some((reason, now));
                        // What the engine last said and how long ago, so the log shows how
                        // silent it was.
                        let last = output.last_command.as_ref();
                        tracing::warn!(
                            output = %id,
                            ?reason,
                            safe_state = ?state,
                            last_command = ?last.map(|c| &c.command),
                            last_command_s_ago =
                                ?last.map(|c| now.saturating_duration_since(c.at).as_secs_f64()),
                            "output returned to its safe state"
                        );
                    }
                }
                matches!(cause, Cause::Fallback(_))
            }
            Err(e) => {
                let output = &mut self.outputs[index];
                output.retry_at = Some(now + RETRY);
                tracing::error!(
                    output = %output.config.id,
                    error = %e,
                    "cannot switch the output (owed: {cause:?}); retrying"
                );
                false
            }
        }
    }

    /// Carry out everything due by `now`: maximum on times, leases run out, deferred offs.
    /// Returns how many outputs fell back to their safe state.
    fn process_due(&mut self, now: Instant) -> usize {
        let mut fallbacks = 0;
        for i in 0..self.outputs.len() {
            let output = &mut self.outputs[i];
            if output.retry_at.is_some_and(|r| r > now) {
                continue;
            }
            output.retry_at = None;
            let safe = output.safe();
            let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
            let action = if due(output.max_on_end()) {
                Some((safe, Cause::Fallback(FallbackReason::MaxOnTime)))
            } else if due(output.lease_end()) {
                Some((safe, Cause::Fallback(FallbackReason::LeaseExpired)))
            } else if due(output.deferred_off) {
                Some((RelayState::Off, Cause::Command))
            } else {
                if due(output.stale_lease()) {
                    output.lease_deadline = None;
                }
                None
            };
            if let Some((state, cause)) = action
                && self.switch_owed(i, state, cause, now)
            {
                fallbacks += 1;
            }
        }
        fallbacks
    }

    fn next_event(&self) -> Option<Instant> {
        self.outputs.iter().filter_map(Output::next_event).min()
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o.config.id == id)
    }

    fn status(&self, index: usize, now: Instant) -> OutputStatus {
        self.outputs[index].status(now, &self.outputs)
    }

    /// Apply a validated command to output `index`.
    fn apply(
        &mut self,
        index: usize,
        command: &RelayCommand,
        lease: Option<Duration>,
        now: Instant,
    ) -> Result<CommandOutcome, CommandError> {
        let output = &self.outputs[index];
        match (command.state, lease) {
            (RelayState::On, Some(lease)) => {
                if !output.state.is_on() {
                    if let Some((j, group)) =
                        output.interlocked_with.iter().find(|(j, _)| self.outputs[*j].state.is_on())
                    {
                        return Err(CommandError::Interlock {
                            group: group.clone(),
                            other: self.outputs[*j].config.id.clone(),
                        });
                    }
                    let allowed_at = output.changed_at + output.min_off;
                    if allowed_at > now {
                        return Err(CommandError::ShortCycle {
                            min_off_s: output.times.min_off_s,
                            remaining: allowed_at - now,
                        });
                    }
                    self.drive(index, RelayState::On, now)?;
                }
                // On already (or just now): a renewal, and the engine wants it on, so any
                // deferred off is cancelled.
                let output = &mut self.outputs[index];
                output.lease_deadline = Some(now + lease);
                output.deferred_off = None;
                Ok(CommandOutcome::Done)
            }
            (RelayState::On, None) => Err(CommandError::MissingLease),
            (RelayState::Off, _) => {
                if output.state.is_on() {
                    let allowed_at = output.changed_at + output.min_on;
                    if allowed_at > now {
                        let output = &mut self.outputs[index];
                        output.lease_deadline = None;
                        output.deferred_off = Some(allowed_at);
                        return Ok(CommandOutcome::Deferred);
                    }
                    self.drive(index, RelayState::Off, now)?;
                }
                let output = &mut self.outputs[index];
                output.lease_deadline = None;
                output.deferred_off = None;
                Ok(CommandOutcome::Done)
            }
        }
    }

    /// Every output to its safe state, at once (operator action: minimum times do not apply).
    /// Tries all outputs even if one fails.
    fn drive_all_safe(&mut self, now: Instant) -> Result<(), HwError> {
        let mut first_error = None;
        for i in 0..self.outputs.len() {
            let safe = self.outputs[i].safe();
            let output = &mut self.outputs[i];
            output.lease_deadline = None;
            output.deferred_off = None;
            output.retry_at = None;
            if let Err(e) = self.drive(i, safe, now) {
                tracing::error!(
                    output = %self.outputs[i].config.id,
                    error = %e,
                    "cannot drive output to its safe state"
                );
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Owns the relay bank and enforces leases and protection. Shared behind an `Arc` by the API,
/// the registration task and the timer task ([`Controller::run_timers`]).
pub struct Controller {
    inner: Mutex<Inner>,
    /// Wakes the timer task when a deadline changes.
    deadline_changed: Notify,
    /// Counts fallbacks to the safe state, so the registration task can tell the engine at once.
    fallbacks: watch::Sender<u64>,
    backend: &'static str,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Controller {
    /// Take over `bank` with `outputs` and `interlocks` (validated by the configuration) and
    /// drive every output to its safe state at once: whatever the relays did before this
    /// process started, they are now safe. The minimum off times count from now.
    pub fn new(
        mut bank: Box<dyn RelayBank>,
        outputs: Vec<OutputConfig>,
        interlocks: &[Interlock],
    ) -> Result<Self, HwError> {
        let backend = bank.name();
        let now = Instant::now();
        let mut outputs: Vec<Output> =
            outputs.into_iter().map(|config| Output::new(config, now)).collect();
        for group in interlocks {
            let members: Vec<usize> = group
                .outputs
                .iter()
                .filter_map(|id| outputs.iter().position(|o| o.config.id == *id))
                .collect();
            for &i in &members {
                for &j in members.iter().filter(|&&j| j != i) {
                    outputs[i].interlocked_with.push((j, group.name.clone()));
                }
            }
        }
        for output in &outputs {
            bank.set(&output.config.id, output.safe().is_on())?;
        }
        Ok(Self {
            inner: Mutex::new(Inner {
                bank,
                outputs,
                last_engine_contact: None,
                started: now,
                fallback: None,
                stopping: false,
            }),
            deadline_changed: Notify::new(),
            fallbacks: watch::Sender::new(0),
            backend,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-switched relay behind (each bank
        // call is atomic), so the data is still consistent: keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lock and carry out whatever is due, so what callers see is never a stale "on": the timer
    /// task does the same at the deadline, this only closes the gap until it runs.
    fn current(&self) -> (MutexGuard<'_, Inner>, Instant) {
        let now = Instant::now();
        let mut inner = self.lock();
        let fell_back = inner.process_due(now);
        self.count_fallbacks(fell_back);
        (inner, now)
    }

    fn count_fallbacks(&self, n: usize) {
        if n > 0 {
            self.fallbacks.send_modify(|count| *count += n as u64);
        }
    }

    /// The backend's name, e.g. `simulated`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Carry out an engine command on output `id`.
    ///
    /// `on` needs `lease_s` in [`LEASE_S`] (an `off` needs none, but one it carries must be in
    /// range too: the documented bound holds whatever the state); it turns the output on, or renews the lease
    /// of an output already on, unless an interlock or the minimum off time forbids it. `off`
    /// turns it off and clears the lease, or defers the off until the minimum on time has
    /// passed. A refused command changes no output.
    pub fn command(&self, id: &str, command: &RelayCommand) -> Result<Applied, CommandError> {
        let (mut inner, now) = self.current();
        let index = inner.index(id).ok_or_else(|| CommandError::NotFound(id.to_owned()))?;
        let lease = match (command.state, command.lease_s) {
            (_, Some(s)) if !LEASE_S.contains(&s) => return Err(CommandError::InvalidLease(s)),
            (RelayState::On, None) => return Err(CommandError::MissingLease),
            (RelayState::On, Some(s)) => Some(Duration::from_secs(u64::from(s))),
            (RelayState::Off, _) => None,
        };
        if inner.stopping {
            return Err(CommandError::ShuttingDown);
        }
        // Authenticated and well-formed: the engine is alive, whatever comes of the command.
        inner.last_engine_contact = Some(now);
        // It takes over from the fallback program with this very command, through the same
        // protections: an output the program switched keeps its minimum on/off time.
        if let Some(run) = inner.fallback.take() {
            tracing::info!(
                why = ?run.why,
                lasted_s = now.saturating_duration_since(run.since).as_secs_f64(),
                "the engine is back: fallback program ended"
            );
        }
        let result = inner.apply(index, command, lease, now);
        let (outcome, detail) = match &result {
            Ok(CommandOutcome::Deferred) => {
                let left = inner.outputs[index].deferred_off.map(|t| t - now).unwrap_or_default();
                let detail = format!(
                    "off deferred: minimum on time {} s, {} s left",
                    inner.outputs[index].times.min_on_s,
                    left.as_secs_f64().ceil()
                );
                (CommandOutcome::Deferred, Some(detail))
            }
            Ok(outcome) => (*outcome, None),
            Err(e) => (CommandOutcome::Refused, Some(e.to_string())),
        };
        tracing::debug!(output = %id, state = ?command.state, lease_s = ?command.lease_s,
            ?outcome, detail, "command");
        // Hardware failures are not the engine's command being refused: keep the last real one.
        if !matches!(result, Err(CommandError::Hardware(_))) {
            inner.outputs[index].last_command =
                Some(CommandRecord { command: command.clone(), at: now, outcome, detail });
        }
        let status = inner.status(index, now);
        drop(inner);
        self.deadline_changed.notify_one();
        result.map(|outcome| Applied { outcome, status })
    }

    /// The status of output `id`, if there is one.
    pub fn output(&self, id: &str) -> Option<OutputStatus> {
        let (inner, now) = self.current();
        inner.index(id).map(|i| inner.status(i, now))
    }

    /// Every output's status, in configuration order.
    pub fn outputs(&self) -> Vec<OutputStatus> {
        let (inner, now) = self.current();
        (0..inner.outputs.len()).map(|i| inner.status(i, now)).collect()
    }

    /// Each output's configured protection times, in configuration order.
    pub fn local_times(&self) -> Vec<(String, Times)> {
        let inner = self.lock();
        inner.outputs.iter().map(|o| (o.config.id.clone(), Times::of(&o.config))).collect()
    }

    /// Protect each output named in `times` with them from now on (see `Output::set_times`):
    /// the timer task re-plans at once, so a shorter maximum on time that has already passed
    /// switches the output to its safe state through the same path as any maximum on time.
    pub fn set_times(&self, times: &[(String, Times)]) {
        let mut inner = self.lock();
        for (id, t) in times {
            let Some(index) = inner.index(id) else { continue };
            let output = &mut inner.outputs[index];
            if output.times != *t {
                tracing::info!(output = %id, min_on_s = t.min_on_s, min_off_s = t.min_off_s,
                    max_on_s = ?t.max_on_s, "protection times in force");
                output.set_times(*t);
            }
        }
        drop(inner);
        self.deadline_changed.notify_one();
    }

    /// The backend's health.
    pub fn healthy(&self) -> Result<(), HwError> {
        self.lock().bank.healthy()
    }

    /// The engine's silence: since its last command, else since the controller started, and
    /// whether it ever commanded this agent.
    pub fn engine_silence(&self) -> (Duration, bool) {
        let inner = self.lock();
        let since = inner.last_engine_contact.unwrap_or(inner.started);
        (since.elapsed(), inner.last_engine_contact.is_some())
    }

    /// Enter fallback for `why` unless the engine spoke within `after` (checked under the
    /// lock, so a command that just arrived wins) or the agent is stopping. Returns the
    /// fallback's start (the existing one when already in fallback).
    pub fn enter_fallback(&self, why: FallbackWhy, after: Duration) -> Option<Instant> {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(run) = &inner.fallback {
            return Some(run.since);
        }
        let since = inner.last_engine_contact.unwrap_or(inner.started);
        if inner.stopping || now.saturating_duration_since(since) < after {
            return None;
        }
        tracing::warn!(
            ?why,
            silent_s = now.saturating_duration_since(since).as_secs_f64(),
            "the engine is lost: running the fallback program"
        );
        inner.fallback = Some(FallbackRun { since: now, why, doing: BTreeMap::new() });
        Some(now)
    }

    /// The fallback in progress: since when, why, and what each output does.
    pub fn fallback(&self) -> Option<(Instant, FallbackWhy, BTreeMap<String, FallbackDoing>)> {
        let inner = self.lock();
        inner.fallback.as_ref().map(|run| (run.since, run.why, run.doing.clone()))
    }

    /// Carry out a command of the fallback program on output `id`, with every protection an
    /// engine command has (interlocks, minimum on/off, maximum on), and record `doing` for the
    /// status. Not engine contact, and not recorded as the engine's last command. `Ok(None)`
    /// when the fallback has ended meanwhile (the engine is back): nothing was done.
    pub fn fallback_command(
        &self,
        id: &str,
        command: &RelayCommand,
        doing: FallbackDoing,
    ) -> Result<Option<Applied>, CommandError> {
        let (mut inner, now) = self.current();
        let index = inner.index(id).ok_or_else(|| CommandError::NotFound(id.to_owned()))?;
        if inner.stopping {
            return Err(CommandError::ShuttingDown);
        }
        let Some(run) = inner.fallback.as_mut() else { return Ok(None) };
        run.doing.insert(id.to_owned(), doing);
        let lease = command.lease_s.map(|s| Duration::from_secs(u64::from(s)));
        let result = inner.apply(index, command, lease, now);
        let status = inner.status(index, now);
        drop(inner);
        self.deadline_changed.notify_one();
        result.map(|outcome| Some(Applied { outcome, status }))
    }

    /// When the engine last sent this agent a valid command.
    pub fn last_engine_contact(&self) -> Option<Instant> {
        self.lock().last_engine_contact
    }

    /// Time since the engine last sent this agent a valid command.
    pub fn since_engine_contact(&self) -> Option<Duration> {
        self.last_engine_contact().map(|t| t.elapsed())
    }

    /// A receiver that changes whenever an output falls back to its safe state by itself (a
    /// lease ran out, the maximum on time): the engine should hear about it.
    pub fn subscribe_fallbacks(&self) -> watch::Receiver<u64> {
        self.fallbacks.subscribe()
    }

    /// Enforce leases and protection times until dropped: sleeps until the next event (or until
    /// a command changes the deadlines) and carries out what is due.
    pub async fn run_timers(&self) {
        loop {
            let next = {
                let mut inner = self.lock();
                let fell_back = inner.process_due(Instant::now());
                self.count_fallbacks(fell_back);
                inner.next_event()
            };
            // `notify_one` stores a permit when nobody waits, so a command that lands between
            // computing `next` and awaiting here still wakes us.
            match next {
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.deadline_changed.notified() => {}
                    }
                }
                None => self.deadline_changed.notified().await,
            }
        }
    }

    /// Shutdown: drive every output to its safe state and refuse commands from now on, so a
    /// command still in flight cannot switch anything back on.
    pub fn stop(&self) -> Result<(), HwError> {
        let mut inner = self.lock();
        inner.stopping = true;
        let result = inner.drive_all_safe(Instant::now());
        drop(inner);
        self.deadline_changed.notify_one();
        result
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use hearth_proto::relays::RelayFunction;

    use super::*;
    use crate::config::default_outputs;

    /// A bank whose state and switching history the test can see, and that can be told to fail.
    #[derive(Debug, Clone, Default)]
    struct Probe {
        on: Arc<Mutex<BTreeMap<String, bool>>>,
        /// Every successful `set`: when, which output, energised or not.
        log: Arc<Mutex<Vec<(Instant, String, bool)>>>,
        fail: Arc<Mutex<bool>>,
    }

    impl Probe {
        fn is_on(&self, id: &str) -> bool {
            self.on.lock().map(|m| m.get(id).copied().unwrap_or(false)).unwrap_or(false)
        }
        fn set_fail(&self, fail: bool) {
            if let Ok(mut f) = self.fail.lock() {
                *f = fail;
            }
        }
        fn log(&self) -> Vec<(Instant, String, bool)> {
            self.log.lock().map(|l| l.clone()).unwrap_or_default()
        }
        fn writes(&self) -> usize {
            self.log.lock().map(|l| l.len()).unwrap_or_default()
        }
        /// When output `id` was last written.
        fn last_write(&self, id: &str) -> Option<Instant> {
            let log = self.log.lock().ok()?;
            log.iter().rev().find(|(_, i, _)| i == id).map(|(t, _, _)| *t)
        }
    }

    impl RelayBank for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn set(&mut self, id: &str, on: bool) -> Result<(), HwError> {
            if self.fail.lock().map(|f| *f).unwrap_or(true) {
                return Err(HwError::Device("probe failure".into()));
            }
            if let Ok(mut m) = self.on.lock() {
                m.insert(id.to_owned(), on);
            }
            if let Ok(mut l) = self.log.lock() {
                l.push((Instant::now(), id.to_owned(), on));
            }
            Ok(())
        }
        fn get(&self, id: &str) -> Result<bool, HwError> {
            Ok(self.is_on(id))
        }
        fn healthy(&self) -> Result<(), HwError> {
            Ok(())
        }
    }

    fn on(lease_s: u32) -> RelayCommand {
        RelayCommand { state: RelayState::On, lease_s: Some(lease_s) }
    }

    const OFF: RelayCommand = RelayCommand { state: RelayState::Off, lease_s: None };

    /// The default outputs without any protection time, for the lease tests.
    fn unprotected() -> Vec<OutputConfig> {
        default_outputs()
            .into_iter()
            .map(|o| OutputConfig { min_on_s: Some(0), min_off_s: Some(0), max_on_s: Some(0), ..o })
            .collect()
    }

    fn heat_cool() -> Vec<Interlock> {
        vec![Interlock { name: "heat-cool".into(), outputs: vec!["heat".into(), "cool".into()] }]
    }

    fn start_with(
        outputs: Vec<OutputConfig>,
    ) -> anyhow::Result<(Arc<Controller>, Probe, tokio::task::JoinHandle<()>)> {
        let probe = Probe::default();
        let controller = Arc::new(Controller::new(Box::new(probe.clone()), outputs, &heat_cool())?);
        let c = controller.clone();
        let task = tokio::spawn(async move { c.run_timers().await });
        Ok((controller, probe, task))
    }

    fn start() -> anyhow::Result<(Arc<Controller>, Probe, tokio::task::JoinHandle<()>)> {
        start_with(unprotected())
    }

    fn state(c: &Controller, id: &str) -> Option<RelayState> {
        c.output(id).map(|o| o.state)
    }

    /// Let `ms` of virtual time pass. The timer task may be due at the very instant the test
    /// wakes; yielding lets it run first, so assertions at a deadline see its work.
    async fn advance(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    /// The fallback program starts only after the engine's silence, switches through the same
    /// protections as the engine (here the minimum off time since the start, then the minimum
    /// on time), is no engine contact, and ends at the engine's first command, which the
    /// protections still hold.
    fn doing() -> FallbackDoing {
        FallbackDoing { on: true, temp_c: Some(6.5), detail: "frost".into() }
    }

    #[tokio::test(start_paused = true)]
    async fn fallback_switches_through_the_protections_until_the_engine_commands()
    -> anyhow::Result<()> {
        let protected = default_outputs()
            .into_iter()
            .map(|o| OutputConfig {
                min_on_s: Some(30),
                min_off_s: Some(30),
                max_on_s: Some(0),
                ..o
            })
            .collect();
        let (c, probe, task) = start_with(protected)?;
        let after = Duration::from_secs(10);
        let why = FallbackWhy::NoEngineSinceStart;
        assert_eq!(c.enter_fallback(why, after), None, "the engine was silent only 0 s");
        let on = on(10);
        assert!(c.fallback_command("heat", &on, doing())?.is_none(), "not in fallback");
        advance(10_000).await;
        assert!(c.enter_fallback(why, after).is_some());
        let refused = c.fallback_command("heat", &on, doing());
        assert!(matches!(refused, Err(CommandError::ShortCycle { .. })), "{refused:?}");
        assert!(!probe.is_on("heat"));
        advance(20_000).await;
        let applied = c.fallback_command("heat", &on, doing())?;
        assert_eq!(applied.map(|a| a.outcome), Some(CommandOutcome::Done));
        assert!(probe.is_on("heat"));
        assert_eq!(c.last_engine_contact(), None, "the program is not the engine");
        assert_eq!(c.fallback().map(|(_, _, doing)| doing.len()), Some(1));
        // The engine is back and wants it off at once: the minimum on time defers the off.
        advance(5_000).await;
        assert_eq!(c.command("heat", &OFF)?.outcome, CommandOutcome::Deferred);
        assert!(c.fallback().is_none(), "the engine's command ends the fallback");
        assert!(c.fallback_command("heat", &on, doing())?.is_none());
        assert!(probe.is_on("heat"));
        advance(25_000).await;
        assert!(!probe.is_on("heat"), "off once the minimum on time has passed");
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn lease_runs_out_at_its_deadline() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        let fallbacks = c.subscribe_fallbacks();
        let applied = c.command("heat", &on(10))?;
        assert_eq!(applied.outcome, CommandOutcome::Done);
        assert_eq!(applied.status.state, RelayState::On);
        assert_eq!(applied.status.lease_remaining_s, Some(10.0));
        advance(9_900).await;
        assert!(probe.is_on("heat"), "still on at 9.9 s");
        assert_eq!(state(&c, "heat"), Some(RelayState::On));
        let remaining = c.output("heat").and_then(|o| o.lease_remaining_s).unwrap_or(0.0);
        assert!((remaining - 0.1).abs() < 1e-6, "{remaining}");
        assert!(!fallbacks.has_changed()?);
        advance(101).await;
        // The timer task switched the hardware by itself (the probe is not read through the
        // controller, so no lazy expiry helped), at the deadline to the millisecond.
        assert!(!probe.is_on("heat"), "off right after 10 s");
        let log = probe.log();
        let (at, id, energised) =
            log.last().cloned().unwrap_or((Instant::now(), String::new(), true));
        assert_eq!((id.as_str(), energised), ("heat", false));
        assert_eq!(at.duration_since(log[3].0), Duration::from_secs(10));
        assert!(fallbacks.has_changed()?, "the registration task is told");
        let status = c.output("heat").ok_or_else(|| anyhow::anyhow!("no heat"))?;
        assert_eq!((status.state, status.lease_remaining_s), (RelayState::Off, None));
        let fallback = status.last_fallback.ok_or_else(|| anyhow::anyhow!("no fallback"))?;
        assert_eq!(fallback.reason, FallbackReason::LeaseExpired);
        assert_eq!(status.cycles, 1);
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_keep_it_on() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(10))?;
        for _ in 0..12 {
            advance(5_000).await;
            assert!(probe.is_on("heat"));
            c.command("heat", &on(10))?;
        }
        // A minute later, still on and switched once; then silence: off 10 s after the last
        // renewal.
        assert_eq!(c.output("heat").map(|o| o.cycles), Some(1));
        advance(9_999).await;
        assert!(probe.is_on("heat"));
        advance(2).await;
        assert!(!probe.is_on("heat"));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn off_clears_the_lease() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("cool", &on(10))?;
        let applied = c.command("cool", &OFF)?;
        assert_eq!(
            (applied.outcome, applied.status.state, applied.status.lease_remaining_s),
            (CommandOutcome::Done, RelayState::Off, None)
        );
        assert!(!probe.is_on("cool"));
        // Turning it on again later gets a fresh lease, unaffected by the old deadline.
        advance(8_000).await;
        c.command("cool", &on(10))?;
        advance(5_000).await;
        assert!(probe.is_on("cool"));
        assert_eq!(c.output("cool").and_then(|o| o.last_fallback), None);
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn leases_are_independent() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(30))?;
        c.command("fan", &on(10))?;
        advance(11_000).await;
        assert!(probe.is_on("heat"));
        assert!(!probe.is_on("fan"));
        advance(20_000).await;
        assert!(!probe.is_on("heat"));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_commands_change_nothing() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        let missing = RelayCommand { state: RelayState::On, lease_s: None };
        assert!(matches!(c.command("heat", &missing), Err(CommandError::MissingLease)));
        assert!(matches!(c.command("heat", &on(0)), Err(CommandError::InvalidLease(0))));
        assert!(matches!(
            c.command("heat", &on(LEASE_S.end() + 1)),
            Err(CommandError::InvalidLease(_))
        ));
        // The documented bound holds for `off` too: a lease out of range is refused, not
        // ignored.
        for lease_s in [0, LEASE_S.end() + 1, u32::MAX] {
            let off = RelayCommand { state: RelayState::Off, lease_s: Some(lease_s) };
            assert!(
                matches!(c.command("heat", &off), Err(CommandError::InvalidLease(_))),
                "off with lease_s {lease_s}"
            );
        }
        assert!(matches!(c.command("nope", &on(10)), Err(CommandError::NotFound(_))));
        assert!(!probe.is_on("heat"));
        assert_eq!(c.last_engine_contact(), None);
        c.command("heat", &on(*LEASE_S.end()))?;
        assert!(c.last_engine_contact().is_some());
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn interlock_refusal_leaves_both_as_they_were() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(60))?;
        let before = (c.output("heat"), c.output("cool"), probe.writes());
        let err = c.command("cool", &on(60)).err();
        assert!(
            matches!(&err, Some(CommandError::Interlock { group, other })
                if group == "heat-cool" && other == "heat"),
            "{err:?}"
        );
        assert!(probe.is_on("heat") && !probe.is_on("cool"));
        assert_eq!(probe.writes(), before.2, "no hardware write at all");
        let cool = c.output("cool").ok_or_else(|| anyhow::anyhow!("no cool"))?;
        assert_eq!(cool.state, RelayState::Off);
        assert_eq!(cool.lease_remaining_s, None);
        let last = cool.last_command.ok_or_else(|| anyhow::anyhow!("no last command"))?;
        assert_eq!(last.outcome, CommandOutcome::Refused);
        assert!(last.detail.is_some_and(|d| d.contains("interlock heat-cool")));
        assert_eq!(cool.protection.interlocked_with, ["heat"]);
        assert_eq!(
            c.output("heat").map(|o| o.lease_remaining_s),
            before.0.map(|o| o.lease_remaining_s)
        );
        // The fan is in no group; cool is allowed once heat is off.
        c.command("fan", &on(60))?;
        c.command("heat", &OFF)?;
        c.command("cool", &on(60))?;
        assert!(probe.is_on("cool") && probe.is_on("fan") && !probe.is_on("heat"));
        task.abort();
        Ok(())
    }

    fn protected(id: &str, min_on: u32, min_off: u32, max_on: u32) -> Vec<OutputConfig> {
        unprotected()
            .into_iter()
            .map(|o| {
                if o.id == id {
                    OutputConfig {
                        min_on_s: Some(min_on),
                        min_off_s: Some(min_off),
                        max_on_s: Some(max_on),
                        ..o
                    }
                } else {
                    o
                }
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn min_off_counts_from_start_and_refuses_on() -> anyhow::Result<()> {
        let (c, probe, task) = start_with(protected("cool", 0, 300, 0))?;
        // The agent may have been restarted mid-cycle: the minimum off time counts from the
        // takeover.
        advance(100_000).await;
        let err = c.command("cool", &on(60)).err();
        assert!(
            matches!(err, Some(CommandError::ShortCycle { min_off_s: 300, remaining })
                if remaining == Duration::from_secs(200)),
            "{err:?}"
        );
        assert!(!probe.is_on("cool"));
        assert_eq!(c.output("cool").and_then(|o| o.on_blocked_for_s), Some(200.0));
        advance(200_000).await;
        c.command("cool", &on(60))?;
        assert!(probe.is_on("cool"));
        c.command("cool", &OFF)?;
        advance(299_000).await;
        assert!(matches!(c.command("cool", &on(60)), Err(CommandError::ShortCycle { .. })));
        advance(1_000).await;
        c.command("cool", &on(60))?;
        assert!(probe.is_on("cool"));
        assert_eq!(c.output("cool").map(|o| o.cycles), Some(2));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn min_on_defers_off_and_a_renewal_cancels_it() -> anyhow::Result<()> {
        let (c, probe, task) = start_with(protected("heat", 120, 0, 0))?;
        c.command("heat", &on(600))?;
        advance(30_000).await;
        let applied = c.command("heat", &OFF)?;
        assert_eq!(applied.outcome, CommandOutcome::Deferred);
        assert_eq!(applied.status.state, RelayState::On);
        assert_eq!(applied.status.pending_off_in_s, Some(90.0));
        assert_eq!(applied.status.lease_remaining_s, None);
        // The engine changes its mind: on again, the deferred off is cancelled.
        advance(60_000).await;
        c.command("heat", &on(600))?;
        advance(60_000).await;
        assert!(probe.is_on("heat"));
        // Off for real now (150 s on), at once.
        c.command("heat", &OFF)?;
        assert!(!probe.is_on("heat"));
        // And a deferred off happens at the minimum on time to the millisecond.
        c.command("heat", &on(600))?;
        advance(1_000).await;
        c.command("heat", &OFF)?;
        advance(118_999).await;
        assert!(probe.is_on("heat"));
        advance(1).await;
        assert!(!probe.is_on("heat"));
        assert_eq!(c.output("heat").and_then(|o| o.last_fallback), None, "not a fallback");
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn lease_expiry_waits_for_min_on() -> anyhow::Result<()> {
        let (c, probe, task) = start_with(protected("heat", 120, 0, 0))?;
        c.command("heat", &on(10))?;
        advance(11_000).await;
        assert!(probe.is_on("heat"), "held on by the minimum on time");
        let status = c.output("heat").ok_or_else(|| anyhow::anyhow!("no heat"))?;
        assert_eq!(status.pending_off_in_s, Some(109.0));
        advance(109_000).await;
        assert!(!probe.is_on("heat"));
        assert_eq!(
            c.output("heat").and_then(|o| o.last_fallback).map(|f| f.reason),
            Some(FallbackReason::LeaseExpired)
        );
        task.abort();
        Ok(())
    }

    /// Times the engine tightens apply to the running cycle: a longer minimum on time holds a
    /// deferred off longer, a longer minimum off time refuses an `on`, a shorter maximum on
    /// time switches the output off through the timer (a `max_on_time` fallback, as always).
    #[tokio::test(start_paused = true)]
    async fn tightened_times_apply_to_the_running_cycle() -> anyhow::Result<()> {
        let (c, probe, task) = start_with(protected("heat", 10, 0, 600))?;
        let times = |min_on_s, min_off_s, max_on_s| {
            vec![("heat".to_owned(), Times { min_on_s, min_off_s, max_on_s: Some(max_on_s) })]
        };
        c.command("heat", &on(600))?;
        advance(5_000).await;
        // Off deferred until 10 s; then the minimum on time becomes 30 s: off at 30 s.
        assert_eq!(c.command("heat", &OFF)?.outcome, CommandOutcome::Deferred);
        c.set_times(&times(30, 0, 600));
        advance(24_999).await;
        assert!(probe.is_on("heat"), "held on for the longer minimum");
        advance(1).await;
        assert!(!probe.is_on("heat"));
        // A longer minimum off time: an `on` inside it is refused.
        c.set_times(&times(30, 120, 600));
        let err = c.command("heat", &on(600)).err();
        assert!(matches!(err, Some(CommandError::ShortCycle { min_off_s: 120, .. })), "{err:?}");
        assert_eq!(c.output("heat").map(|o| o.protection.min_off_s), Some(120));
        advance(120_000).await;
        c.command("heat", &on(600))?;
        advance(100_000).await;
        // On for 100 s; the maximum on time becomes 60 s: off at once, by the timer.
        c.set_times(&times(30, 120, 60));
        advance(0).await;
        assert!(!probe.is_on("heat"));
        let status = c.output("heat").ok_or_else(|| anyhow::anyhow!("no heat"))?;
        assert_eq!(status.last_fallback.map(|f| f.reason), Some(FallbackReason::MaxOnTime));
        // And back to the configured times.
        c.set_times(&c.local_times());
        assert_eq!(c.output("heat").map(|o| o.protection.max_on_s), Some(Some(600)));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn max_on_time_trips_despite_renewals() -> anyhow::Result<()> {
        let (c, probe, task) = start_with(protected("heat", 0, 30, 60))?;
        advance(30_000).await;
        c.command("heat", &on(20))?;
        for _ in 0..11 {
            advance(5_000).await;
            c.command("heat", &on(20))?;
        }
        // 55 s on, renewed to 75 s; the limit is 60 s.
        advance(4_999).await;
        assert!(probe.is_on("heat"));
        advance(1).await;
        assert!(!probe.is_on("heat"));
        let status = c.output("heat").ok_or_else(|| anyhow::anyhow!("no heat"))?;
        assert_eq!(status.last_fallback.map(|f| f.reason), Some(FallbackReason::MaxOnTime));
        assert_eq!(status.lease_remaining_s, None);
        // Then a forced break of the minimum off time.
        assert!(matches!(c.command("heat", &on(20)), Err(CommandError::ShortCycle { .. })));
        advance(30_000).await;
        c.command("heat", &on(20))?;
        assert!(probe.is_on("heat"));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn hardware_failure_at_expiry_is_retried() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(10))?;
        probe.set_fail(true);
        advance(10_500).await;
        assert!(probe.is_on("heat"), "the hardware refused");
        probe.set_fail(false);
        advance(1_000).await;
        assert!(!probe.is_on("heat"), "retried within a second");
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn stop_drives_safe_states_and_refuses_commands() -> anyhow::Result<()> {
        let mut outputs = protected("heat", 600, 600, 0);
        outputs[2].safe_state = RelayState::On;
        let probe = Probe::default();
        let c = Controller::new(Box::new(probe.clone()), outputs, &heat_cool())?;
        assert!(probe.is_on("fan"), "safe state applied at start");
        advance(600_000).await;
        c.command("heat", &on(100))?;
        c.command("fan", &OFF)?;
        // Stopping is the operator's action: the minimum on time does not hold it.
        c.stop()?;
        assert!(!probe.is_on("heat"));
        assert!(probe.is_on("fan"));
        assert!(matches!(c.command("heat", &on(10)), Err(CommandError::ShuttingDown)));
        assert!(!probe.is_on("heat"));
        Ok(())
    }

    /// xorshift64*: a deterministic sequence, so a failure reproduces from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// 10,000 random commands at random instants: interlocked outputs are never on together,
    /// every on and off period respects the minimum times, no on period exceeds the maximum,
    /// no output stays on past its lease (plus the minimum on time), and refused commands
    /// write nothing to the hardware.
    #[tokio::test(start_paused = true)]
    async fn random_commands_never_break_the_protections() -> anyhow::Result<()> {
        for seed in [0x5eed_u64, 0xdead_beef, 42] {
            random_run(seed, 10_000).await?;
        }
        Ok(())
    }

    async fn random_run(seed: u64, commands: usize) -> anyhow::Result<()> {
        let mut outputs = unprotected();
        let limits = [("heat", 30, 45, 600), ("cool", 60, 90, 400), ("fan", 0, 0, 0)];
        for (o, (id, min_on, min_off, max_on)) in outputs.iter_mut().zip(limits) {
            assert_eq!(o.id, id);
            (o.min_on_s, o.min_off_s, o.max_on_s) = (Some(min_on), Some(min_off), Some(max_on));
        }
        let (c, probe, task) = start_with(outputs.clone())?;
        let t0 = Instant::now();
        let mut rng = Rng(seed);
        let ids = ["heat", "cool", "fan"];
        // The lease deadline the engine was granted last, per output (the model).
        let mut leases: BTreeMap<&str, Option<Instant>> = BTreeMap::new();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for _ in 0..commands {
            let id = ids[rng.below(3) as usize];
            let command = if rng.below(2) == 0 { on(1 + rng.below(120) as u32) } else { OFF };
            let before = probe.writes();
            match c.command(id, &command) {
                Ok(applied) => {
                    *counts
                        .entry(if applied.outcome == CommandOutcome::Deferred {
                            "deferred"
                        } else {
                            "done"
                        })
                        .or_default() += 1;
                    let deadline = command
                        .lease_s
                        .filter(|_| command.state.is_on())
                        .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
                    leases.insert(id, deadline);
                }
                Err(CommandError::Interlock { .. }) => {
                    *counts.entry("interlock").or_default() += 1;
                    assert_eq!(probe.writes(), before, "seed {seed}: refusal wrote");
                }
                Err(CommandError::ShortCycle { .. }) => {
                    *counts.entry("short_cycle").or_default() += 1;
                    assert_eq!(probe.writes(), before, "seed {seed}: refusal wrote");
                }
                Err(e) => anyhow::bail!("seed {seed}: unexpected refusal {e}"),
            }
            // Bursts of commands at one instant, pauses, and long silences.
            let ms = match rng.below(10) {
                0..=2 => 0,
                3..=8 => rng.below(20_000),
                _ => rng.below(400_000),
            };
            advance(ms).await;
            // Nothing on past its lease (extended by the minimum on time at most).
            let now = Instant::now();
            for (o, id) in outputs.iter().zip(ids) {
                if !probe.is_on(id) {
                    continue;
                }
                let on_since = probe.last_write(id).unwrap_or(t0);
                let allowed = leases
                    .get(id)
                    .copied()
                    .flatten()
                    .map_or(on_since, |d| d.max(on_since))
                    .max(on_since + Duration::from_secs(u64::from(o.min_on_s())));
                assert!(now <= allowed, "seed {seed}: {id} on past its lease");
            }
        }
        *counts.entry("fallback").or_default() += *c.subscribe_fallbacks().borrow() as usize;
        task.abort();

        // Replay the hardware's history.
        let mut on_since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut off_since: BTreeMap<String, Instant> =
            ids.iter().map(|id| ((*id).to_owned(), t0)).collect();
        for (at, id, energised) in probe.log() {
            let o = outputs.iter().find(|o| o.id == id).ok_or_else(|| anyhow::anyhow!("id"))?;
            let secs = |s: u32| Duration::from_secs(u64::from(s));
            match (energised, on_since.get(&id).copied()) {
                (true, None) => {
                    let off_for = at - off_since.get(&id).copied().unwrap_or(t0);
                    assert!(off_for >= secs(o.min_off_s()), "seed {seed}: {id} short off");
                    on_since.insert(id.clone(), at);
                }
                (false, Some(since)) => {
                    let on_for = at - since;
                    assert!(on_for >= secs(o.min_on_s()), "seed {seed}: {id} short on");
                    if let Some(max) = o.max_on_s() {
                        assert!(on_for <= secs(max), "seed {seed}: {id} on too long");
                    }
                    on_since.remove(&id);
                    off_since.insert(id.clone(), at);
                }
                // Writes of the state it already had (the safe state at start).
                _ => {}
            }
            assert!(
                !(on_since.contains_key("heat") && on_since.contains_key("cool")),
                "seed {seed}: heat and cool on together at {:?}",
                at - t0
            );
        }
        // The run exercised every path, or it proves little.
        for what in ["done", "deferred", "interlock", "short_cycle", "fallback"] {
            assert!(counts.get(what).copied().unwrap_or(0) > 20, "seed {seed}: {counts:?}");
        }
        let switches = probe.writes();
        assert!(switches > 1_000, "seed {seed}: only {switches} switches");
        Ok(())
    }

    #[test]
    fn default_outputs_protect_the_compressor() {
        let outputs = default_outputs();
        let cool = outputs.iter().find(|o| o.function_hint == Some(RelayFunction::Cool));
        assert_eq!(
            cool.map(|o| (o.min_on_s(), o.min_off_s(), o.max_on_s())),
            Some((180, 300, Some(14_400)))
        );
    }
}
