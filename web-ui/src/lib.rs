//! hearth-web: the dashboard people live with.
//!
//! The data path flows one way: browser → `/api` ([`api`]: session, CSRF, the route table in
//! [`routes`]) → the engine's documented REST API through the proto client → back unchanged.
//! The dashboard itself is static files embedded in the binary ([`assets`]); live updates are
//! the engine's event stream relayed by [`events`]. This process keeps no state of the house,
//! only logins ([`session`]): it can restart, or run on another host than the engine, at will.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{any, get, post};
use hearth_common::discovery::Locator;
use hearth_proto::ErrorCode;
use tokio::net::TcpListener;

pub mod api;
#[cfg(test)]
mod asset_checks;
mod assets;
mod config;
mod engine;
mod events;
mod metrics;
mod mime;
mod routes;
mod session;

pub use config::Config;

/// The largest request body the dashboard reads (and relays), bytes: the engine's limit.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Shared state of every handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    engine: Arc<engine::Engine>,
    sessions: session::Sessions,
    hub: hearth_common::sse::EventBus,
    dev_assets: Option<PathBuf>,
    metrics: metrics::Counters,
}

impl AppState {
    fn engine(&self) -> &engine::Engine {
        &self.inner.engine
    }
    fn sessions(&self) -> &session::Sessions {
        &self.inner.sessions
    }
    fn hub(&self) -> &hearth_common::sse::EventBus {
        &self.inner.hub
    }
    fn metrics(&self) -> &metrics::Counters {
        &self.inner.metrics
    }
    fn dev_assets(&self) -> Option<&Path> {
        self.inner.dev_assets.as_deref()
    }
}

/// The dashboard's HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::file))
        .route("/api/session", get(api::get_session))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/events", get(events::stream))
        .route(
            "/api/v1/{*rest}",
            any(api::relay).layer(axum::middleware::map_response_with_state(
                state.clone(),
                metrics::count_relayed,
            )),
        )
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async {
            api::error(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such page or route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Whatever refuses a request (an extractor, the router), the answer is an ErrorBody.
        .layer(axum::middleware::map_response(|r| {
            hearth_common::http::json_errors(r, MAX_BODY_BYTES)
        }))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every answer. The content security policy is the "no internet" promise made
/// enforceable: the page may load nothing from anywhere but this server.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// A started dashboard: socket bound, discovery running.
#[derive(Debug)]
pub struct Web {
    state: AppState,
    listener: TcpListener,
    local_addr: SocketAddr,
    follower: tokio::task::JoinHandle<()>,
}

impl Web {
    /// Start discovery (or take the configured engine URL), start following the engine's
    /// events, and bind the socket (logged as `listening on http://ADDR`).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let locator = match &config.engine {
            Some(url) => Locator::fixed(url),
            None => Locator::browse(config.site_id.clone()).context(
                "cannot start mDNS discovery of the engine (set --engine URL to skip it)",
            )?,
        };
        let engine = Arc::new(engine::Engine::new(locator));
        let (hub, follower) = events::spawn(engine.clone());
        if let Some(dir) = &config.dev_assets {
            anyhow::ensure!(dir.is_dir(), "--dev-assets {}: not a directory", dir.display());
            tracing::warn!(dir = %dir.display(), "serving the dashboard's files from disk");
        }
        let state = AppState {
            inner: Arc::new(Shared {
                engine,
                sessions: session::Sessions::new(
                    Duration::from_secs(config.session_idle_s),
                    Duration::from_secs(config.session_max_s),
                ),
                hub,
                dev_assets: config.dev_assets.clone(),
                metrics: Default::default(),
            }),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr().context("no local address")?;
        tracing::info!("listening on http://{local_addr}");
        Ok(Self { state, listener, local_addr, follower })
    }

    /// The address the dashboard listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HTTP application (for tests with `oneshot`).
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Serve until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The watchdog is fed from the runtime that serves: a wedged runtime stops the pings
        // and systemd restarts the dashboard.
        let watchdog = hearth_common::systemd::ping_every().map(|every| {
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    hearth_common::systemd::ping();
                }
            })
        });
        let hub = self.state.hub().clone();
        let graceful = async move {
            shutdown.await;
            hearth_common::systemd::stopping();
            tracing::info!("shutting down");
            // Event streams never end on their own; the server waits for every connection.
            hub.close();
        };
        hearth_common::systemd::ready();
        let engine = self.state.inner.engine.clone();
        // hyper's own refusals of a request head (414, 431, 400) get an ErrorBody too.
        let listener = hearth_common::http::JsonRejections(self.listener);
        let served = axum::serve(listener, hearth_common::http::served(app(self.state)))
            .with_graceful_shutdown(graceful)
            .await;
        if let Some(w) = watchdog {
            w.abort();
        }
        self.follower.abort();
        engine.shutdown();
        served.context("the HTTP server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}
