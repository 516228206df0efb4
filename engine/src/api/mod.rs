//! The engine's REST API, v1. The OpenAPI document is generated from this router
//! (utoipa-axum), served at `/v1/openapi.json` and committed under `openapi/engine.json`.

mod auth;
mod control;
mod error;
mod events;
mod history;
mod info;
mod metrics;
mod relays;
mod schedules;
mod sensors;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use hearth_common::auth::SiteSecret;
use hearth_proto::ErrorCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) use error::ApiError;

use crate::control::Controller;
use crate::ingest::Ingest;
use crate::store::Store;

/// Shared state of every handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) ingest: Ingest,
    pub(crate) controller: Arc<Controller>,
    pub(crate) site: SiteSecret,
    pub(crate) engine_id: String,
    /// A reading older than this is shown stale.
    pub(crate) stale_after: jiff::SignedDuration,
    /// An agent not heard from for this long is shown offline.
    pub(crate) offline_after: jiff::SignedDuration,
    /// Agents' clock offsets: the skew limit and its log.
    pub(crate) clock: crate::clock::ClockWatch,
    /// The live event bus.
    pub(crate) events: crate::events::Events,
    /// Counters for `GET /metrics`.
    pub(crate) counters: Arc<crate::metrics::Counters>,
    /// The time zone schedules and daily analytics are read in.
    pub(crate) time_zone: jiff::tz::TimeZone,
    /// The schedule: rules, overrides, default target, compiled into a shared snapshot.
    pub(crate) schedules: Arc<crate::store::Schedules>,
    /// Non-zero calibration offsets by sensor id, a copy of the `sensors.offset_c` column kept
    /// by the settings handler, so that live reading events are calibrated without a query on
    /// the ingest path.
    pub(crate) offsets: std::sync::RwLock<std::collections::HashMap<String, f64>>,
}

impl AppState {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { inner: Arc::new(shared) }
    }

    /// The live event bus.
    pub(crate) fn events(&self) -> &crate::events::Events {
        &self.inner.events
    }

    /// What the handlers share, without keeping it alive.
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.inner)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hearth engine API",
        description = "The central engine of Hearth, an open multi-host thermostat. \
Reads (GET) are open on the LAN. Everything that changes state needs \
`Authorization: Bearer <principal>.<token>`: agents use `<host_id>.<agent token>` \
(from `hearth-engine device-key <host_id>`), people and the web UI `admin.<token>` \
(from `hearth-engine admin-token`). Errors are JSON `ErrorBody` objects with a stable `code`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "sensors", description = "Temperature readings and sensors"),
        (name = "relays", description = "Relay agents and their outputs"),
        (name = "agents", description = "Sensor and relay agents"),
        (name = "control", description = "The decision loop"),
        (name = "schedules", description = "Schedule rules, overrides, the default target and the timeline"),
        (name = "history", description = "Heating and cooling runs and daily analytics"),
        (name = "service", description = "Health and documentation"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(info::status))
        .routes(routes!(sensors::update))
        .routes(routes!(sensors::backlog))
        .routes(routes!(sensors::list))
        .routes(routes!(sensors::settings))
        .routes(routes!(info::whoami))
        .routes(routes!(history::readings))
        .routes(routes!(history::runs))
        .routes(routes!(history::daily))
        .routes(routes!(relays::register))
        .routes(routes!(relays::list))
        .routes(routes!(relays::assign_function))
        .routes(routes!(relays::agents))
        .routes(routes!(control::view))
        .routes(routes!(control::set_settings))
        .routes(routes!(control::decisions))
        .routes(routes!(control::plugins))
        .routes(routes!(events::stream))
        .routes(routes!(schedules::list_rules, schedules::create_rule))
        .routes(routes!(schedules::get_rule, schedules::replace_rule, schedules::delete_rule))
        .routes(routes!(schedules::get_default, schedules::put_default))
        .routes(routes!(schedules::list_overrides, schedules::create_override, schedules::resume))
        .routes(routes!(schedules::delete_override))
        .routes(routes!(schedules::timeline))
}

/// The OpenAPI document of the engine API, generated from the router the server runs.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The engine's HTTP application.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route("/", axum::routing::get(info::index))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::Unsupported,
                "method not allowed on this route",
            )
        })
        .with_state(state)
}
