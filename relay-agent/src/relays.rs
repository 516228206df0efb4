//! The relay controller: owns the hardware bank and each output's state and lease.
//!
//! Relay commanding is a lease: the engine turns an output on for at most `lease_s` seconds and
//! renews it while it wants the output on. If the engine (or the network) goes silent, the lease
//! runs out and the output falls back to its safe state: a crashed engine must not leave the
//! furnace running. Deadlines use `tokio::time::Instant`, so tests drive them with
//! `tokio::time::pause()` in virtual time.
//!
//! One `std::sync::Mutex` guards the bank and the outputs together, so the state reported is
//! always the state last written to the hardware. Hardware calls are short blocking system calls
//! (a GPIO line, a small file for the simulator), fine to make under the lock in async code.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hearth_proto::relays::{MAX_LEASE_S, OutputStatus, RelayCommand, RelayState};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::OutputConfig;
use crate::hw::{HwError, RelayBank};

/// When a lease ran out but the hardware refused the safe state, try again this soon.
const EXPIRY_RETRY: Duration = Duration::from_secs(1);

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No output has this id.
    #[error("no output {0:?}")]
    NotFound(String),
    /// `lease_s` is missing for `on`.
    #[error("lease_s field is missing: it is required for \"on\" (1..={MAX_LEASE_S} s)")]
    MissingLease,
    /// `lease_s` is outside 1..=[`MAX_LEASE_S`].
    #[error("lease_s must be between 1 and {MAX_LEASE_S} seconds, got {0}")]
    InvalidLease(u32),
    /// The agent is stopping and holds every output in its safe state.
    #[error("the relay agent is shutting down")]
    ShuttingDown,
    /// The hardware refused.
    #[error("hardware error: {0}")]
    Hardware(#[from] HwError),
}

/// The last command an output received: what and when (for logs).
#[derive(Debug, Clone)]
struct LastCommand {
    command: RelayCommand,
    at: Instant,
}

#[derive(Debug)]
struct Output {
    config: OutputConfig,
    /// The state last written to the hardware successfully.
    state: RelayState,
    /// When the current lease runs out; `Some` only while the output is on by lease.
    lease_deadline: Option<Instant>,
    last_command: Option<LastCommand>,
}

impl Output {
    fn status(&self, now: Instant) -> OutputStatus {
        OutputStatus {
            id: self.config.id.clone(),
            name: self.config.name.clone(),
            state: self.state,
            safe_state: self.config.safe_state,
            function_hint: self.config.function_hint,
            lease_remaining_s: self
                .lease_deadline
                .map(|d| d.saturating_duration_since(now).as_secs_f64()),
        }
    }
}

struct Inner {
    bank: Box<dyn RelayBank>,
    outputs: Vec<Output>,
    last_engine_contact: Option<Instant>,
    /// Set at shutdown: outputs are held in their safe state and commands are refused.
    stopping: bool,
}

impl Inner {
    fn drive(&mut self, index: usize, state: RelayState) -> Result<(), HwError> {
        let Some(output) = self.outputs.get_mut(index) else {
            return Err(HwError::Device(format!("no output at index {index}")));
        };
        self.bank.set(&output.config.id, state.is_on())?;
        output.state = state;
        Ok(())
    }

    /// Every output to its safe state, leases cleared. Tries all outputs even if one fails.
    fn drive_all_safe(&mut self) -> Result<(), HwError> {
        let mut first_error = None;
        for i in 0..self.outputs.len() {
            let safe = self.outputs[i].config.safe_state;
            self.outputs[i].lease_deadline = None;
            if let Err(e) = self.drive(i, safe) {
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

    /// Return every output whose lease ran out by `now` to its safe state.
    fn expire_due(&mut self, now: Instant) {
        for i in 0..self.outputs.len() {
            let output = &self.outputs[i];
            let Some(deadline) = output.lease_deadline else { continue };
            if deadline > now {
                continue;
            }
            let (id, safe) = (output.config.id.clone(), output.config.safe_state);
            // What the engine last said and how long ago, so the log shows how silent it was.
            let last_command = output
                .last_command
                .as_ref()
                .map(|c| (c.command.clone(), now.saturating_duration_since(c.at).as_secs_f64()));
            match self.drive(i, safe) {
                Ok(()) => {
                    self.outputs[i].lease_deadline = None;
                    tracing::warn!(
                        output = %id,
                        last_command = ?last_command.as_ref().map(|(c, _)| c),
                        last_command_s_ago = ?last_command.as_ref().map(|(_, ago)| *ago),
                        safe_state = ?safe,
                        "lease expired: engine silent"
                    );
                }
                Err(e) => {
                    // Keep the lease "expired" and retry soon: the safe state is owed.
                    self.outputs[i].lease_deadline = Some(now + EXPIRY_RETRY);
                    tracing::error!(
                        output = %id,
                        error = %e,
                        "lease expired but the safe state could not be set; retrying"
                    );
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.outputs.iter().filter_map(|o| o.lease_deadline).min()
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o.config.id == id)
    }
}

/// Owns the relay bank and enforces leases. Shared behind an `Arc` by the API and the lease
/// task ([`Controller::run_leases`]).
pub struct Controller {
    inner: Mutex<Inner>,
    /// Wakes the lease task when a deadline changes.
    deadline_changed: Notify,
    backend: &'static str,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Controller {
    /// Take over `bank` with `outputs` (validated ids) and drive every output to its safe state
    /// at once: whatever the relays did before this process started, they are now safe.
    pub fn new(mut bank: Box<dyn RelayBank>, outputs: Vec<OutputConfig>) -> Result<Self, HwError> {
        let backend = bank.name();
        let mut outputs: Vec<Output> = outputs
            .into_iter()
            .map(|config| Output {
                state: config.safe_state,
                config,
                lease_deadline: None,
                last_command: None,
            })
            .collect();
        for output in &mut outputs {
            bank.set(&output.config.id, output.config.safe_state.is_on())?;
            output.state = output.config.safe_state;
        }
        Ok(Self {
            inner: Mutex::new(Inner { bank, outputs, last_engine_contact: None, stopping: false }),
            deadline_changed: Notify::new(),
            backend,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-switched relay behind (each bank
        // call is atomic), so the data is still consistent: keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lock and apply any lease that ran out, so what callers see is never a stale "on": the
    /// lease task does the same at the deadline, this only closes the gap until it runs.
    fn current(&self) -> (MutexGuard<'_, Inner>, Instant) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.expire_due(now);
        (inner, now)
    }

    /// The backend's name, e.g. `simulated`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Carry out an engine command on output `id`, and return the output's new status.
    ///
    /// `on` needs `lease_s` in 1..=[`MAX_LEASE_S`]; it turns the output on, or renews the lease
    /// of an output already on. `off` turns it off and clears the lease. A refused command
    /// changes nothing.
    pub fn command(&self, id: &str, command: &RelayCommand) -> Result<OutputStatus, CommandError> {
        let (mut inner, now) = self.current();
        let index = inner.index(id).ok_or_else(|| CommandError::NotFound(id.to_owned()))?;
        let deadline = match command.state {
            RelayState::On => {
                let lease_s = command.lease_s.ok_or(CommandError::MissingLease)?;
                if !(1..=MAX_LEASE_S).contains(&lease_s) {
                    return Err(CommandError::InvalidLease(lease_s));
                }
                Some(now + Duration::from_secs(u64::from(lease_s)))
            }
            RelayState::Off => None,
        };
        if inner.stopping {
            return Err(CommandError::ShuttingDown);
        }
        inner.drive(index, command.state)?;
        inner.last_engine_contact = Some(now);
        let output = &mut inner.outputs[index];
        let renewed = output.lease_deadline.is_some() && deadline.is_some();
        output.lease_deadline = deadline;
        output.last_command = Some(LastCommand { command: command.clone(), at: now });
        tracing::debug!(
            output = %id,
            state = ?command.state,
            lease_s = ?command.lease_s,
            renewed,
            "command"
        );
        let status = output.status(now);
        drop(inner);
        self.deadline_changed.notify_one();
        Ok(status)
    }

    /// The status of output `id`, if there is one.
    pub fn output(&self, id: &str) -> Option<OutputStatus> {
        let (inner, now) = self.current();
        inner.outputs.iter().find(|o| o.config.id == id).map(|o| o.status(now))
    }

    /// Every output's status, in configuration order.
    pub fn outputs(&self) -> Vec<OutputStatus> {
        let (inner, now) = self.current();
        inner.outputs.iter().map(|o| o.status(now)).collect()
    }

    /// Whether the hardware reports output `id` energised (for checks and tests; the API
    /// reports the state last set).
    pub fn hardware_state(&self, id: &str) -> Result<bool, HwError> {
        self.lock().bank.get(id)
    }

    /// The backend's health.
    pub fn healthy(&self) -> Result<(), HwError> {
        self.lock().bank.healthy()
    }

    /// When the engine last commanded this agent successfully.
    pub fn last_engine_contact(&self) -> Option<Instant> {
        self.lock().last_engine_contact
    }

    /// Time since the engine last commanded this agent successfully.
    pub fn since_engine_contact(&self) -> Option<Duration> {
        self.last_engine_contact().map(|t| t.elapsed())
    }

    /// Enforce leases until dropped: sleeps until the soonest deadline (or until a command
    /// changes the deadlines) and returns expired outputs to their safe state.
    pub async fn run_leases(&self) {
        loop {
            let next = {
                let mut inner = self.lock();
                inner.expire_due(Instant::now());
                inner.next_deadline()
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
        let result = inner.drive_all_safe();
        drop(inner);
        self.deadline_changed.notify_one();
        result
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::default_outputs;

    /// A bank whose state the test can see, and that can be told to fail.
    #[derive(Debug, Clone, Default)]
    struct Probe {
        on: Arc<Mutex<BTreeMap<String, bool>>>,
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

    fn start() -> anyhow::Result<(Arc<Controller>, Probe, tokio::task::JoinHandle<()>)> {
        let probe = Probe::default();
        let controller = Arc::new(Controller::new(Box::new(probe.clone()), default_outputs())?);
        let c = controller.clone();
        let task = tokio::spawn(async move { c.run_leases().await });
        Ok((controller, probe, task))
    }

    fn state(c: &Controller, id: &str) -> Option<RelayState> {
        c.output(id).map(|o| o.state)
    }

    #[tokio::test(start_paused = true)]
    async fn lease_runs_out_at_its_deadline() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        let status = c.command("heat", &on(10))?;
        assert_eq!(status.state, RelayState::On);
        assert_eq!(status.lease_remaining_s, Some(10.0));
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert!(probe.is_on("heat"), "still on at 9.9 s");
        assert_eq!(state(&c, "heat"), Some(RelayState::On));
        let remaining = c.output("heat").and_then(|o| o.lease_remaining_s).unwrap_or(0.0);
        assert!((remaining - 0.1).abs() < 1e-6, "{remaining}");
        tokio::time::sleep(Duration::from_millis(101)).await;
        // The lease task switched the hardware by itself (the probe is not read through the
        // controller, so no lazy expiry helped).
        assert!(!probe.is_on("heat"), "off right after 10 s");
        assert_eq!(
            c.output("heat").map(|o| (o.state, o.lease_remaining_s)),
            Some((RelayState::Off, None))
        );
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_keep_it_on() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(10))?;
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert!(probe.is_on("heat"));
            c.command("heat", &on(10))?;
        }
        // A minute later, still on; then silence: off 10 s after the last renewal.
        tokio::time::sleep(Duration::from_millis(9_999)).await;
        assert!(probe.is_on("heat"));
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(!probe.is_on("heat"));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn off_clears_the_lease() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("cool", &on(10))?;
        let status = c.command("cool", &OFF)?;
        assert_eq!((status.state, status.lease_remaining_s), (RelayState::Off, None));
        assert!(!probe.is_on("cool"));
        // Turning it on again later gets a fresh lease, unaffected by the old deadline.
        tokio::time::sleep(Duration::from_secs(8)).await;
        c.command("cool", &on(10))?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(probe.is_on("cool"));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn leases_are_independent() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(30))?;
        c.command("fan", &on(10))?;
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(probe.is_on("heat"));
        assert!(!probe.is_on("fan"));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(!probe.is_on("heat"));
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn refused_commands_change_nothing() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        let missing = RelayCommand { state: RelayState::On, lease_s: None };
        assert!(matches!(c.command("heat", &missing), Err(CommandError::MissingLease)));
        assert!(matches!(c.command("heat", &on(0)), Err(CommandError::InvalidLease(0))));
        assert!(matches!(
            c.command("heat", &on(MAX_LEASE_S + 1)),
            Err(CommandError::InvalidLease(_))
        ));
        assert!(matches!(c.command("nope", &on(10)), Err(CommandError::NotFound(_))));
        assert!(!probe.is_on("heat"));
        assert_eq!(c.last_engine_contact(), None);
        c.command("heat", &on(MAX_LEASE_S))?;
        assert!(c.last_engine_contact().is_some());
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn hardware_failure_at_expiry_is_retried() -> anyhow::Result<()> {
        let (c, probe, task) = start()?;
        c.command("heat", &on(10))?;
        probe.set_fail(true);
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert!(probe.is_on("heat"), "the hardware refused");
        probe.set_fail(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!probe.is_on("heat"), "retried within a second");
        task.abort();
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn stop_drives_safe_states_and_refuses_commands() -> anyhow::Result<()> {
        let mut outputs = default_outputs();
        outputs[2].safe_state = RelayState::On;
        let probe = Probe::default();
        let c = Controller::new(Box::new(probe.clone()), outputs)?;
        assert!(probe.is_on("fan"), "safe state applied at start");
        c.command("heat", &on(100))?;
        c.command("fan", &OFF)?;
        c.stop()?;
        assert!(!probe.is_on("heat"));
        assert!(probe.is_on("fan"));
        assert!(matches!(c.command("heat", &on(10)), Err(CommandError::ShuttingDown)));
        assert!(!probe.is_on("heat"));
        Ok(())
    }
}
