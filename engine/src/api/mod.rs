//! The engine's REST API, v1. The OpenAPI document is generated from this router
//! (utoipa-axum), served at `/v1/openapi.json` and committed under `openapi/engine.json`.

mod auth;
mod control;
mod error;
mod events;
mod history;
mod house;
mod info;
mod manage;
mod metrics;
mod relays;
mod schedules;
mod sensors;
mod zones;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use hearth_common::auth::SiteSecret;
use hearth_proto::ErrorCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) use auth::UntypedKeys;
pub(crate) use error::ApiError;

use crate::controller::Controller;
use crate::store::Store;

/// The largest request body the engine reads, bytes (a full backlog of a few sensors fits).
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The operations whose body must be `Content-Type: application/json` (415 otherwise). The
/// others parse their body as JSON whatever it is declared as: the seed contract of
/// `PUT /v1/sensors/update` never asked agents for the header. A typed-body route missing
/// here answers an undocumented 415, which the e2e contract test (schemathesis) reports.
const CHECKS_CONTENT_TYPE: &[&str] = &[
    "set_sensor_settings",
    "register_relay_agent",
    "assign_relay_function",
    "set_relay_fallback",
    "set_control_settings",
    "set_agent_settings",
    "report_applied_settings",
    "create_agent_command",
    "report_command_outcome",
    "put_zone",
    "put_plant",
];

/// Shared state of every handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    /// Submitting and serving readings (calibration, staleness, placing in time, events).
    pub(crate) readings: Arc<crate::readings::Readings>,
    pub(crate) controller: Arc<Controller>,
    pub(crate) site: SiteSecret,
    pub(crate) engine_id: String,
    /// An agent not heard from for this long is shown offline.
    pub(crate) offline_after: jiff::SignedDuration,
    /// Agents' clock offsets: the skew limit and its log.
    pub(crate) clock: Arc<crate::clock::ClockWatch>,
    /// The live event bus.
    pub(crate) events: hearth_common::sse::EventBus,
    /// Counters for `GET /metrics`.
    pub(crate) counters: Arc<crate::metrics::Counters>,
    /// The dashboard's URL for the info page, when configured (`--dashboard-url`).
    pub(crate) dashboard_url: Option<String>,
    /// The time zone schedules and daily analytics are read in.
    pub(crate) time_zone: jiff::tz::TimeZone,
    /// The schedule: rules, overrides, default target, compiled into a shared snapshot.
    pub(crate) schedules: Arc<crate::store::Schedules>,
    /// The zones and plants, and each zone's control settings.
    pub(crate) zones: Arc<crate::zones::live::Zones>,
    /// Whether untyped device keys are accepted, and which agents were warned about theirs.
    pub(crate) untyped: auth::UntypedKeys,
    /// What waits for each sensor agent (settings, commands), told in report answers.
    pub(crate) manage: manage::Board,
}

impl AppState {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { inner: Arc::new(shared) }
    }

    /// The live event bus.
    pub(crate) fn events(&self) -> &hearth_common::sse::EventBus {
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
`Authorization: Bearer <principal>.<token>` (the `bearer` security scheme says how agents \
compute theirs): agents use `<host_id>.<agent token>` (from a device key printed by \
`hearth-engine device-key --role sensor|relay|both <host_id>`), people and the web UI \
`admin.<token>` (from `hearth-engine admin-token`). Request bodies are closed: a field the \
engine does not know is refused (422 naming it). Errors are JSON `ErrorBody` objects with a \
stable `code`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "sensors", description = "Temperature readings and sensors"),
        (name = "relays", description = "Relay agents and their outputs"),
        (name = "agents", description = "Sensor and relay agents"),
        (name = "control", description = "The decision loop"),
        (name = "schedules", description = "Schedule rules, overrides, the default target and the timeline"),
        (name = "zones", description = "The house's zones and plants"),
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
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(bearer_description()))
                    .build(),
            ),
        );
    }
}

/// How a credential is made, with a worked example computed by the code that checks it (the
/// README shows the same example).
fn bearer_description() -> String {
    let (host, key, credential) = match SiteSecret::from_hex(&"11".repeat(32)) {
        Ok(site) => {
            let key = site.device_key("hall", hearth_proto::agents::KeyRole::Sensor);
            let credential = key.agent_credential("hall");
            ("hall", key.to_string(), credential)
        }
        Err(_) => ("hall", String::new(), String::new()),
    };
    format!(
        "`Authorization: Bearer <principal>.<token>`. People and the web UI: `admin.<token>`, \
printed by `hearth-engine admin-token`. Agents: `<host_id>.<token>`, where the token is the \
lower-case hex of HMAC-SHA256 keyed with the agent's device key and applied to the ASCII \
string `agent`. A device key is printed by `hearth-engine device-key --role \
sensor|relay|both <host_id>` as `<site id>.<64 hex digits>`: the 64 hex digits are the key's \
32 bytes (the site id is the public `site` of the engine's mDNS record). The role decides what \
the credential may do: `sensor` reports readings, `relay` registers relay outputs, `both` \
either; the host id in the credential must be the body's `host_id`. `GET /v1/auth` says whom \
a credential is for. Worked example: the device key `{key}` of host `{host}` (a sensor key) \
gives `Authorization: Bearer {credential}`; `hearth-engine device-key --role sensor --bearer \
{host}` prints the credential ready to use."
    )
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
        .routes(routes!(history::periods))
        .routes(routes!(relays::register))
        .routes(routes!(relays::list))
        .routes(routes!(relays::assign_function))
        .routes(routes!(relays::set_fallback))
        .routes(routes!(relays::agents))
        .routes(routes!(manage::get_settings, manage::set_settings))
        .routes(routes!(manage::report_applied))
        .routes(routes!(manage::create_command, manage::list_commands))
        .routes(routes!(manage::report_outcome))
        .routes(routes!(control::view))
        .routes(routes!(control::set_settings))
        .routes(routes!(control::decisions))
        .routes(routes!(control::plugins))
        .routes(routes!(house::view))
        .routes(routes!(events::stream))
        .routes(routes!(schedules::list_rules, schedules::create_rule))
        .routes(routes!(schedules::get_rule, schedules::replace_rule, schedules::delete_rule))
        .routes(routes!(schedules::get_default, schedules::put_default))
        .routes(routes!(schedules::list_overrides, schedules::create_override, schedules::resume))
        .routes(routes!(schedules::delete_override))
        .routes(routes!(schedules::timeline))
        .routes(routes!(zones::list))
        .routes(routes!(zones::put_zone, zones::delete_zone))
        .routes(routes!(zones::put_plant, zones::delete_plant))
}

/// The router and its OpenAPI document, completed: the bounds the handlers check and the
/// refusals every route may answer with.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = api_router().split_for_parts();
    let misplaced = hearth_proto::limits::document(&mut doc);
    if !misplaced.is_empty() {
        // A renamed field; the test `every_bound_finds_its_field` fails first.
        tracing::error!(?misplaced, "request bounds without their field in the API document");
    }
    hearth_common::http::document_rejections(&mut doc, MAX_BODY_BYTES, CHECKS_CONTENT_TYPE);
    (router, doc)
}

/// The OpenAPI document of the engine API, generated from the router the server runs.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The engine's HTTP application.
pub fn app(state: AppState) -> Router {
    let (router, doc) = parts();
    // Served as the bytes it serializes to, made once: the document itself is some 2 MB of
    // small allocations (about 250 KB as JSON) that the engine would otherwise keep for its
    // whole life, and clone for every request.
    let doc = serde_json::to_vec(&doc).map(axum::body::Bytes::from).map_err(|e| {
        // Not expected: its keys are strings and it holds no float.
        tracing::error!(error = %e, "the OpenAPI document does not serialize");
        e.to_string()
    });
    router
        .route("/", axum::routing::get(info::index))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    let json = doc.map_err(|e| {
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e)
                    })?;
                    Ok::<_, ApiError>(([(CONTENT_TYPE, "application/json")], json))
                }
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Whatever refuses a request (an extractor, the router), the answer is an ErrorBody.
        .layer(axum::middleware::map_response(|r| {
            hearth_common::http::json_errors(r, MAX_BODY_BYTES)
        }))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    /// Every request bound of `hearth_proto::limits` that belongs to the engine's document found
    /// its field or parameter (a renamed field would leave its bound behind unseen).
    #[test]
    fn every_bound_finds_its_field() {
        let mut doc = super::api_router().into_openapi();
        assert_eq!(hearth_proto::limits::document(&mut doc), Vec::<String>::new());
    }
}
