//! `hearth-engine`: the central engine of Hearth.
//!
//! Data flows one way: agents' reports → [`api`] (validate, authenticate) → `readings` (what a
//! reading means) → `ingest` (group commit) → `store`; their arrival wakes the loop
//! (`controller`), which reads the store (and what it holds in memory), decides (`control`,
//! pure), records the decision and has the `commander` command relay agents. The API reads
//! the store and the controller's state.

pub mod config;

mod api;
#[doc(hidden)]
pub mod bench;
mod clock;
mod commander;
mod control;
mod controller;
mod fallback;
mod ingest;
mod mdns;
mod memory;
mod metrics;
mod readings;
mod retention;
mod schedule;
#[doc(hidden)]
pub mod sim;
mod site;
mod store;
mod zones;

use std::future::Future;
use std::sync::Arc;

use hearth_common::auth::{DeviceCredential, SiteSecret};
use hearth_proto::agents::KeyRole;
use tokio::sync::{Notify, watch};

pub use api::{AppState, app, openapi};
pub use config::{Command, Config, DeviceRole};

/// Events a `GET /v1/events` client may fall behind by before it is told it lagged.
const EVENT_CAPACITY: usize = 1024;

/// An opened engine: storage, identity and controller ready; nothing listening yet.
#[derive(Debug)]
pub struct Engine {
    state: AppState,
    controller: Arc<controller::Controller>,
    store: store::Store,
    site: SiteSecret,
    engine_id: String,
    keep: retention::Keep,
    counters: Arc<metrics::Counters>,
}

impl Engine {
    /// Open the data dir and database (running migrations), load the settings.
    ///
    /// A storage fault does not stop the start (store/mod.rs): the engine then runs degraded,
    /// `GET /v1/status` says why, and control goes on, with the stored settings when the
    /// database can at least be read, else with the frost floor and max ceiling only.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (site, engine_id) = site::load_or_create(&config.data_dir)?;
        let store = store::Store::open(&config.database_url()).await?;
        let wake = Arc::new(Notify::new());
        let events = hearth_common::sse::EventBus::new(EVENT_CAPACITY);
        let counters = Arc::new(metrics::Counters::default());
        let time_zone = config.time_zone()?;
        let keep = config.keep()?;
        let schedules = Arc::new(store::Schedules::load(store.clone(), time_zone.clone()).await?);
        let ingest = ingest::Ingest::spawn(store.clone(), wake.clone(), counters.clone());
        let clock = Arc::new(clock::ClockWatch::new(config.clock_skew_max()?));
        let readings = Arc::new(
            readings::Readings::new(
                store.clone(),
                ingest,
                clock.clone(),
                events.clone(),
                config.stale_after()?,
            )
            .await,
        );
        let zones = Arc::new(zones::live::Zones::load(store.clone(), events.clone()).await?);
        let controller = Arc::new(
            controller::Controller::new(
                store.clone(),
                readings.clone(),
                site.clone(),
                controller::ControllerConfig { tick: config.tick()?, lease_s: config.lease_s()? },
                schedules.clone(),
                events.clone(),
                counters.clone(),
                wake.clone(),
                zones.clone(),
            )
            .await?,
        );
        let state = AppState::new(api::Shared {
            store: store.clone(),
            readings,
            controller: controller.clone(),
            site: site.clone(),
            engine_id: engine_id.clone(),
            offline_after: config.offline_after()?,
            clock,
            events: events.clone(),
            counters: counters.clone(),
            dashboard_url: config.dashboard_url()?,
            time_zone,
            schedules,
            zones,
            untyped: api::UntypedKeys::new(config.allow_untyped_keys),
            manage: Default::default(),
        });
        tokio::spawn(reload_after_recovery(state.downgrade(), store.clone()));
        Ok(Self { state, controller, store, site, engine_id, keep, counters })
    }

    /// The HTTP application.
    pub fn router(&self) -> axum::Router {
        app(self.state.clone())
    }

    /// The engine's stable id.
    pub fn engine_id(&self) -> &str {
        &self.engine_id
    }

    /// The admin bearer credential (`admin.<token>`).
    pub fn admin_credential(&self) -> String {
        self.site.admin_credential()
    }

    /// The device key for the agent on `host_id`, for `role`.
    pub fn device_key(&self, host_id: &str, role: KeyRole) -> DeviceCredential {
        self.site.device_key(host_id, role)
    }

    /// Start the decision loop; it stops when `stop` turns true.
    pub fn spawn_control(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.controller.clone().run(stop))
    }

    /// Start retention (a pass now, then hourly); it stops when `stop` turns true.
    pub fn spawn_retention(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        retention::spawn(self.store.clone(), self.keep, self.counters.clone(), stop)
    }
}

/// Each time the store recovers from a storage fault, read again what the engine keeps in
/// memory from the database: what was loaded at a start without it, and what may have been
/// missed. Nothing was changed meanwhile (every change is stored first, and was refused).
async fn reload_after_recovery(shared: std::sync::Weak<api::Shared>, store: store::Store) {
    let mut health = store.subscribe_health();
    drop(store);
    loop {
        if health.wait_for(|h| !h.is_healthy()).await.is_err()
            || health.wait_for(store::StorageHealth::is_healthy).await.is_err()
        {
            return;
        }
        let Some(shared) = shared.upgrade() else { return };
        shared.controller.reload_settings().await;
        if let Err(e) = shared.schedules.reload().await {
            tracing::error!(error = %e, "cannot read the schedule again");
        }
        shared.readings.reload_offsets().await;
    }
}

/// Run the engine until `shutdown` resolves: serve the API, advertise on mDNS, run the loop.
/// On shutdown the mDNS goodbye goes out first, so agents look for the next engine at once.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    memory::configure();
    let engine = Engine::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(engine_id = %engine.engine_id, "listening on http://{addr}");
    let advertiser = if config.mdns {
        Some(mdns::Advertiser::start(&engine.engine_id, &engine.site.site_id(), addr.port())?)
    } else {
        None
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let retention = engine.spawn_retention(stop_rx.clone());
    let control = engine.spawn_control(stop_rx);
    // Ready for systemd (Type=notify): the database is open and migrated, the socket is bound
    // (connections queue until `serve` accepts them), the loop runs. The loop pings the
    // watchdog (controller.rs).
    hearth_common::systemd::ready();
    let events = engine.state.events().clone();
    let graceful = async move {
        shutdown.await;
        hearth_common::systemd::stopping();
        tracing::info!("shutting down");
        // Event streams never end on their own; the server waits for every connection.
        events.close();
        if let Some(adv) = advertiser {
            let _ = tokio::task::spawn_blocking(move || adv.stop()).await;
        }
    };
    // hyper's own refusals of a request head (414, 431, 400) get an ErrorBody too.
    let listener = hearth_common::http::JsonRejections(listener);
    axum::serve(listener, hearth_common::http::served(engine.router()))
        .with_graceful_shutdown(graceful)
        .await?;
    let _ = stop_tx.send(true);
    let _ = control.await;
    let _ = retention.await;
    engine.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The device key for `host_id` with `role`, creating the site secret if needed.
pub fn issue_device_key(
    config: &Config,
    host_id: &str,
    role: KeyRole,
) -> anyhow::Result<DeviceCredential> {
    hearth_common::host_id::validate(host_id)?;
    let (site, _) = site::load_or_create(&config.data_dir)?;
    Ok(site.device_key(host_id, role))
}

/// The admin credential, creating the site secret if needed.
pub fn print_admin_token(config: &Config) -> anyhow::Result<String> {
    let (site, _) = site::load_or_create(&config.data_dir)?;
    Ok(site.admin_credential())
}

/// `hearth-engine migrate-store`: copy the store at `from` into `to`, print the row counts of
/// both; an error when any differ.
pub async fn migrate_store(from: &str, to: &str) -> anyhow::Result<()> {
    eprintln!(
        "copying the store from {} to {}",
        store::copy::describe(from),
        store::copy::describe(to)
    );
    let verification = store::copy::migrate(from, to, &Default::default()).await?;
    println!("{verification}");
    anyhow::ensure!(
        verification.all_equal(),
        "the row counts differ (marked DIFFERS above): the target held rows of its own, or \
         the source was written during the copy; do not start an engine on the target yet"
    );
    Ok(())
}
