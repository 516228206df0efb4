//! Hearth relay agent: switches furnace, air-conditioner and fan relays on the engine's leased
//! commands, and falls back to each output's safe state when the engine goes silent.
//!
//! The binary is thin (`main.rs`); this library does the work so tests can run it in-process:
//!
//! - [`config`]: flags, env vars and the TOML file.
//! - [`hw`]: the hardware trait and its backends (only place touching devices or their stand-ins).
//! - [`relays`]: the controller: states, leases, safe states.
//! - [`api`]: the REST API and its OpenAPI document.
//! - [`register`]: telling the engine where this agent is (and receiving its fallback program).
//! - [`fallback`]: the program the agent runs by itself when the engine is lost.
//! - [`manage`]: settings (protection times, within local limits) and commands from the engine.

pub mod api;
pub mod config;
pub mod fallback;
pub mod hw;
pub mod manage;
pub mod metrics;
pub mod register;
pub mod relays;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hearth_common::auth::DeviceCredential;
use hearth_common::discovery::Locator;
use hearth_probes::TemperatureSource as _;
use hearth_probes::open::{Board, ProbeOptions, Wiring};
use tokio::net::TcpListener;

pub use api::{AppState, app, openapi};
pub use config::Config;
pub use relays::Controller;

/// An agent that has taken over its relays (all in their safe state) and bound its port, but
/// does not serve yet. [`Agent::start`] then [`Agent::run`]; [`run`] does both.
#[derive(Debug)]
pub struct Agent {
    config: Config,
    credential: DeviceCredential,
    state: AppState,
    probe: Option<fallback::Probe>,
    fallback_tick: Duration,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Agent {
    /// Resolve the host id, check the device key, build the hardware backend, drive every
    /// output to its safe state, open the probe (`--probe`) and bind the listening socket
    /// (logged as `listening on http://ADDR`).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_wired(config, &Board).await
    }

    /// As [`Agent::start`], a bit-banged probe on `wiring`'s lines instead of this machine's
    /// GPIO (the tests wire a simulated 1-Wire bus there).
    pub async fn start_wired(config: Config, wiring: &dyn Wiring) -> anyhow::Result<Self> {
        // The backend first: without one there is nothing to run, whatever the identity.
        let hardware = config.hardware()?;
        let (host_id, source) = hearth_common::host_id::resolve(
            config.host_id.as_deref(),
            Path::new("/proc/cpuinfo"),
            Path::new("/etc/machine-id"),
        )?;
        tracing::info!(%host_id, ?source, "host id");
        let credential = hearth_common::auth::device_credential(
            config.device_key.as_ref(),
            &host_id,
            "HEARTH_RELAY_DEVICE_KEY",
            hearth_proto::agents::KeyRole::Relay,
        )?;
        let outputs = config.effective_outputs().context("invalid outputs in the configuration")?;
        let interlocks = config
            .effective_interlocks(&outputs)
            .context("invalid interlocks in the configuration")?;
        let probe_options = config.probe_options(&outputs)?;
        let bank = hw::build(&config, &outputs).context("cannot start the relay hardware")?;
        tracing::info!(
            backend = bank.name(),
            outputs = outputs.len(),
            interlocks = ?interlocks.iter().map(|g| &g.name).collect::<Vec<_>>(),
            "relay hardware ready"
        );
        if hardware == config::Hardware::Simulated {
            // Said at start and in every registration, so nobody mistakes it for a furnace.
            tracing::warn!(
                "SIMULATED relays: this agent switches no equipment (set `hardware` to rppal or \
                 gpio-cdev to drive real relays)"
            );
        }
        // Safe states before anything can talk to us.
        let controller = Arc::new(
            Controller::new(bank, outputs, &interlocks)
                .context("cannot drive the outputs to their safe states")?,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr().context("no local address")?;
        tracing::info!("listening on http://{local_addr}");
        let ids = controller.outputs().into_iter().map(|o| o.id).collect();
        let store = Arc::new(match &config.state_dir {
            Some(dir) => fallback::ProgramStore::open(dir, ids),
            None => {
                tracing::warn!(
                    "no state_dir: the engine's fallback program is held in memory \
                    only (an agent restarted without the engine runs none)"
                );
                fallback::ProgramStore::in_memory(ids)
            }
        });
        let probe = open_probe(probe_options, wiring)?;
        let limits = config.remote_limits();
        if limits.max_protection_s > relays_max_protection() {
            anyhow::bail!(
                "remote_max_protection_s must be at most {} seconds, got {}",
                relays_max_protection(),
                limits.max_protection_s
            );
        }
        let state = AppState::new(host_id, credential.clone(), controller).with_fallback(store);
        let tick = config.fallback_tick_s;
        if !(0.1..=10.0).contains(&tick) {
            anyhow::bail!("fallback_tick_s must be between 0.1 and 10 seconds, got {tick}");
        }
        let fallback_tick = Duration::from_secs_f64(tick);
        Ok(Self { config, credential, state, probe, fallback_tick, listener, local_addr })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The handlers' state (controller, host id).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Register with the engine and serve until `shutdown` resolves; then drive every output to
    /// its safe state and stop.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let locator = Arc::new(match &self.config.engine {
            Some(url) => Locator::fixed(url),
            None => Locator::browse(Some(self.credential.site_id.clone())).context(
                "cannot start mDNS discovery of the engine (set --engine URL to skip it)",
            )?,
        });
        // Shared by the registration (the engine's answers) and the API (the engine's nudge).
        let pending = self.state.pending().clone();
        let manager = manage::Manager::open(
            manage::RelayAgent {
                host_id: self.state.host_id().to_owned(),
                controller: self.state.controller().clone(),
                fallback: self.state.fallback().clone(),
                probe: self.probe.clone(),
                limits: self.config.remote_limits(),
                started: std::time::Instant::now(),
            },
            self.config.state_dir.as_deref(),
            locator.clone(),
            self.credential.clone(),
        );
        let registrar = register::Registrar {
            locator: locator.clone(),
            host_id: self.state.host_id().to_owned(),
            credential: self.credential,
            controller: self.state.controller().clone(),
            fallback: self.state.fallback().clone(),
            advertise_url: self.config.advertise_url.clone(),
            listen: self.local_addr,
            reregister_after: Duration::from_secs(self.config.reregister_after_s.max(1)),
            pending: pending.clone(),
        };
        let registration = tokio::spawn(registrar.run());
        let runner = fallback::Runner {
            controller: self.state.controller().clone(),
            store: self.state.fallback().clone(),
            probe: self.probe,
            tick: self.fallback_tick,
        };
        let fallback = tokio::spawn(runner.run());
        // A `restart` command, answered, ends the manager: the agent stops as at any shutdown
        // (every output to its safe state) and says so to `main`, which exits with the code
        // systemd restarts.
        let (restart_tx, restart_rx) = tokio::sync::oneshot::channel::<()>();
        let management = tokio::spawn({
            let pending = pending.subscribe();
            async move {
                manager.run(pending).await;
                let _ = restart_tx.send(());
            }
        });
        let restart = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shutdown = {
            let restart = restart.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    Ok(()) = restart_rx => {
                        restart.store(true, std::sync::atomic::Ordering::SeqCst);
                        tracing::warn!("restarting, as the engine asked");
                    }
                }
            }
        };
        let result = serve(self.listener, self.state, shutdown).await;
        fallback.abort();
        registration.abort();
        management.abort();
        locator.shutdown();
        result?;
        if restart.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(hearth_common::manage::RestartRequested.into());
        }
        Ok(())
    }
}

/// The longest minimum time the engine may ever set (the agent's own ceiling for its
/// configured minimum times).
fn relays_max_protection() -> u32 {
    hearth_proto::manage::MAX_PROTECTION_S
}

/// The probe of this host the fallback program reads (`--probe`), opened by the probes' one
/// opener (the sensor agent's backends, inside the same screen), or None. Fails at start,
/// naming the flag and the fix, when an option is wrong or the hardware is not there.
fn open_probe(
    options: Option<ProbeOptions>,
    wiring: &dyn Wiring,
) -> anyhow::Result<Option<fallback::Probe>> {
    let Some(options) = options else { return Ok(None) };
    let source = options.open_wired(&config::PROBE_FLAGS, wiring)?;
    tracing::info!(probe = source.name(), "the fallback program can read a probe of this host");
    Ok(Some(fallback::Probe::new(Box::new(source))))
}

/// Serve the API on `listener` until `shutdown` resolves, enforcing leases and protection
/// times meanwhile. At
/// shutdown, every output is driven to its safe state first (and commands are refused from
/// then on), then the server stops gracefully.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let controller = state.controller().clone();
    let timers = tokio::spawn({
        let controller = controller.clone();
        async move { controller.run_timers().await }
    });
    let watchdog = hearth_common::systemd::ping_every().map(|every| {
        let (controller, timers) = (controller.clone(), timers.abort_handle());
        tokio::spawn(feed_watchdog(controller, timers, every))
    });
    let graceful = {
        let controller = controller.clone();
        async move {
            shutdown.await;
            hearth_common::systemd::stopping();
            tracing::info!("shutting down: outputs to their safe states");
            if let Err(e) = controller.stop() {
                tracing::error!(error = %e, "cannot drive every output to its safe state");
            }
        }
    };
    // Ready for systemd (Type=notify): the outputs are in their safe states under the
    // controller, and the socket is bound (connections queue until `serve` accepts them).
    hearth_common::systemd::ready();
    // hyper's own refusals of a request head (414, 431, 400) get an ErrorBody too.
    let listener = hearth_common::http::JsonRejections(listener);
    let served = axum::serve(listener, hearth_common::http::served(app(state)))
        .with_graceful_shutdown(graceful)
        .await;
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    timers.abort();
    // Whatever ended the server, leave the relays safe.
    let stopped = controller.stop();
    served.context("the HTTP server failed")?;
    stopped.context("cannot drive every output to its safe state")?;
    tracing::info!("stopped");
    Ok(())
}

/// Feed systemd's watchdog every `every` while the controller is alive: its lock can be taken
/// (a handler wedged holding it, or a blocked runtime, stops the pings), the lease timer task
/// still runs (it is what turns a silent engine into safe states), and the relay hardware
/// answers. Otherwise no ping, and systemd restarts the agent, which re-opens the hardware and
/// drives every output to its safe state at start.
async fn feed_watchdog(
    controller: Arc<Controller>,
    timers: tokio::task::AbortHandle,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut complained = false;
    loop {
        ticks.tick().await;
        let problem = if timers.is_finished() {
            Some("the lease timer task ended".to_owned())
        } else {
            controller.healthy().err().map(|e| format!("relay hardware unhealthy: {e}"))
        };
        match problem {
            None => {
                complained = false;
                hearth_common::systemd::ping();
            }
            Some(problem) if !std::mem::replace(&mut complained, true) => {
                tracing::error!(%problem, "not feeding the systemd watchdog; expect a restart");
            }
            Some(_) => {}
        }
    }
}

/// `hearth-relay-agent safe-state`: drive every configured output to its safe state and return
/// what was driven, without the engine, the device key or the network.
///
/// systemd runs it as the unit's `ExecStopPost=`, after the agent's process ended in any way.
/// A clean stop already left the outputs safe; SIGKILL, a crash or the watchdog's abort did
/// not, and a GPIO line driven through rppal's registers (or the character device on a
/// Raspberry Pi OS kernel) keeps the last level the dead process wrote: a furnace would run
/// until the agent is back. docs/relay-safety.md has the whole picture, board by board.
pub fn safe_state(
    config: &Config,
) -> anyhow::Result<Vec<(String, hearth_proto::relays::RelayState)>> {
    let outputs = config.effective_outputs().context("invalid outputs in the configuration")?;
    // Interlocked outputs are validated to be safe when off: driving safe states never turns
    // two of them on.
    config.effective_interlocks(&outputs).context("invalid interlocks in the configuration")?;
    // Opening the bank claims every line at its safe level already; the explicit writes below
    // cover a backend that does not (and say so when the hardware refuses).
    let mut bank = hw::build(config, &outputs).context("cannot open the relay hardware")?;
    let mut first_error = None;
    let mut driven = Vec::with_capacity(outputs.len());
    for output in &outputs {
        match bank.set(&output.id, output.safe_state.is_on()) {
            Ok(()) => driven.push((output.id.clone(), output.safe_state)),
            Err(e) => {
                tracing::error!(output = %output.id, error = %e, "cannot drive the output safe");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => {
            Err(anyhow::Error::new(e).context("cannot drive every output to its safe state"))
        }
        None => Ok(driven),
    }
}

/// Run the agent with `config` until `shutdown` resolves (see [`Agent::start`] and
/// [`Agent::run`]).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Agent::start(config).await?.run(shutdown).await
}
