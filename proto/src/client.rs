//! A small typed client for the engine and relay-agent APIs (feature `client`).
//!
//! Plain HTTP: agents talk to the engine on the LAN and carry no TLS stack (see ARCHITECTURE.md
//! for what that does and does not protect).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Timestamp;
use crate::agents::{AgentInfo, AgentKind};
use crate::control::{ControlSettings, ControlView, Decision, PluginInfo};
use crate::events::Event;
use crate::history::Run;
use crate::relays::{
    OutputStatus, RelayAgentStatus, RelayCommand, RelayInfo, RelayList, RelayRegistration,
    RelayRegistrationAck,
};
use crate::schedules::{DefaultTarget, NewOverride, NewRule, Override, Rule, Timeline};
use crate::sensors::{
    ReadingsPage, ReadingsQuery, SensorBacklog, SensorBacklogAck, SensorInfo, SensorSettings,
    SensorUpdate, SensorUpdateAck,
};
use crate::status::{Identity, ServiceStatus};
use crate::zones::{HouseConfig, HouseStatus, NewPlant, NewZone, Plant, Zone};
use crate::{AUTH_HEADER, ErrorBody};

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The request never got an HTTP answer (connection refused, timeout, ...).
    Transport(reqwest::Error),
    /// The service answered with an error status and body.
    Api {
        /// The HTTP status.
        status: u16,
        /// The decoded error body (a synthetic one when the body was not an [`ErrorBody`]).
        body: ErrorBody,
    },
}

impl ClientError {
    /// True when retrying later may succeed: no answer, or a 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Api { status, .. } => *status >= 500,
        }
    }

    /// True when no HTTP answer came back (the peer may be gone or moved).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Transport(e) if e.is_connect() || e.is_timeout())
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "no answer: {e}"),
            Self::Api { status, body } => {
                write!(f, "HTTP {status} {:?}: {}", body.code, body.error)
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e)
    }
}

/// The error of a failed answer: its `ErrorBody`, or a synthetic one quoting the start of
/// whatever else came back (a proxy's HTML page, say).
fn api_error(status: reqwest::StatusCode, bytes: &[u8]) -> ClientError {
    let body = serde_json::from_slice::<ErrorBody>(bytes).unwrap_or_else(|_| {
        ErrorBody::new(
            crate::ErrorCode::Internal,
            String::from_utf8_lossy(bytes).chars().take(200).collect::<String>(),
        )
    });
    ClientError::Api { status: status.as_u16(), body }
}

/// Shared plumbing: a base URL, an optional bearer credential, JSON in and out.
#[derive(Debug, Clone)]
struct Http {
    base: String,
    auth: Option<String>,
    http: reqwest::Client,
}

impl Http {
    fn new(base: &str, auth: Option<String>) -> Self {
        Self::with_timeout(base, auth, Duration::from_secs(10))
    }

    /// Like [`Http::new`], with every call bounded by `timeout` (connecting by at most 3 s).
    fn with_timeout(base: &str, auth: Option<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            // Building a client without TLS or proxies only fails if the OS cannot give us a
            // resolver; fall back to the default, which then reports the error per request.
            .unwrap_or_default();
        Self { base: base.trim_end_matches('/').to_owned(), auth, http }
    }

    /// One call: the status and body of a success, or the service's error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), ClientError> {
        let (status, bytes) = self.answer(method, path, body).await?;
        if status.is_success() {
            return Ok((status, bytes));
        }
        Err(api_error(status, &bytes))
    }

    /// Whatever the server answered, success or refusal: its status and its bytes.
    async fn answer(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), ClientError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(auth) = &self.auth {
            req = req.header(AUTH_HEADER, format!("Bearer {auth}"));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let (status, mut bytes) = self.call(method, path, body).await?;
        // `204 No Content` (a DELETE) deserializes as JSON null, i.e. `()`.
        if status == reqwest::StatusCode::NO_CONTENT {
            bytes = b"null".to_vec();
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Api {
            status: status.as_u16(),
            body: ErrorBody::new(
                crate::ErrorCode::Internal,
                format!("unexpected response body: {e}"),
            ),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(reqwest::Method::GET, path, None::<&()>).await
    }
}

/// A client of a sensor agent's read API ([`crate::fallback::READINGS_PATH`] on its status
/// listener), as a relay agent's fallback program reads it.
#[derive(Debug, Clone)]
pub struct SensorAgentClient {
    http: Http,
}

impl SensorAgentClient {
    /// A client for the sensor agent at `base` presenting its `read_token`; every call gives
    /// up after `timeout`.
    pub fn new(base: &str, read_token: &str, timeout: Duration) -> Self {
        Self { http: Http::with_timeout(base, Some(read_token.to_owned()), timeout) }
    }

    /// `GET /v1/readings`: its last screened readings.
    pub async fn readings(&self) -> Result<crate::fallback::SharedReadings, ClientError> {
        self.http.get(crate::fallback::READINGS_PATH).await
    }
}

/// A client of the engine API.
#[derive(Debug, Clone)]
pub struct EngineClient {
    http: Http,
}

impl EngineClient {
    /// A client for the engine at `base` (e.g. `http://127.0.0.1:8080`). `credential` is the
    /// bearer credential (`<principal>.<token>`) sent on every call, if any.
    pub fn new(base: &str, credential: Option<String>) -> Self {
        Self { http: Http::new(base, credential) }
    }

    /// The base URL this client talks to.
    pub fn base(&self) -> &str {
        &self.http.base
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<ServiceStatus, ClientError> {
        self.http.get("/v1/status").await
    }

    /// `PUT /v1/sensors/update`.
    pub async fn sensor_update(
        &self,
        update: &SensorUpdate,
    ) -> Result<SensorUpdateAck, ClientError> {
        self.http.send(reqwest::Method::PUT, "/v1/sensors/update", Some(update)).await
    }

    /// `PUT /v1/sensors/backlog`.
    pub async fn sensor_backlog(
        &self,
        backlog: &SensorBacklog,
    ) -> Result<SensorBacklogAck, ClientError> {
        self.http.send(reqwest::Method::PUT, "/v1/sensors/backlog", Some(backlog)).await
    }

    /// `GET /v1/sensors`.
    pub async fn sensors(&self) -> Result<Vec<SensorInfo>, ClientError> {
        self.http.get("/v1/sensors").await
    }

    /// `POST /v1/relays/register`.
    pub async fn register_relays(
        &self,
        registration: &RelayRegistration,
    ) -> Result<RelayRegistrationAck, ClientError> {
        self.http.send(reqwest::Method::POST, "/v1/relays/register", Some(registration)).await
    }

    /// `GET /v1/sensors/{id}/readings` over the last 24 hours.
    pub async fn readings(&self, sensor_id: &str) -> Result<ReadingsPage, ClientError> {
        self.http.get(&format!("/v1/sensors/{sensor_id}/readings")).await
    }

    /// `GET /v1/sensors/{id}/readings` over a range, as a chart asks for it.
    pub async fn readings_in(
        &self,
        sensor_id: &str,
        query: &ReadingsQuery,
    ) -> Result<ReadingsPage, ClientError> {
        // RFC 3339 timestamps in UTC ("…Z") need no escaping in a query.
        let params: Vec<String> = [
            query.from.map(|t| format!("from={t}")),
            query.to.map(|t| format!("to={t}")),
            query.max_points.map(|n| format!("max_points={n}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.http.get(&format!("/v1/sensors/{sensor_id}/readings?{}", params.join("&"))).await
    }

    /// `GET /v1/relays`.
    pub async fn relays(&self) -> Result<Vec<RelayInfo>, ClientError> {
        self.http.get("/v1/relays").await
    }

    /// `PUT /v1/relays/{host_id}/{output_id}/fallback` (admin): choose what an output does in
    /// its agent's fallback program; answers the whole program (read tokens withheld).
    pub async fn set_relay_fallback(
        &self,
        host_id: &str,
        output_id: &str,
        choice: &crate::fallback::OutputFallbackChoice,
    ) -> Result<crate::fallback::FallbackProgram, ClientError> {
        let path = format!("/v1/relays/{host_id}/{output_id}/fallback");
        self.http.send(reqwest::Method::PUT, &path, Some(choice)).await
    }

    /// `GET /v1/agents`.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>, ClientError> {
        self.http.get("/v1/agents").await
    }

    /// `GET /v1/control`.
    pub async fn control(&self) -> Result<ControlView, ClientError> {
        self.http.get("/v1/control").await
    }

    /// `PUT /v1/control/settings` (admin credential).
    pub async fn set_control(
        &self,
        settings: &ControlSettings,
    ) -> Result<ControlSettings, ClientError> {
        self.http.send(reqwest::Method::PUT, "/v1/control/settings", Some(settings)).await
    }

    /// `GET /v1/control/decisions?limit=N`, newest first.
    pub async fn decisions(&self, limit: u32) -> Result<Vec<Decision>, ClientError> {
        self.http.get(&format!("/v1/control/decisions?limit={limit}")).await
    }

    /// `GET /v1/plugins`.
    pub async fn plugins(&self) -> Result<Vec<PluginInfo>, ClientError> {
        self.http.get("/v1/plugins").await
    }

    /// `GET /v1/schedules`.
    pub async fn rules(&self) -> Result<Vec<Rule>, ClientError> {
        self.http.get("/v1/schedules").await
    }

    /// `POST /v1/schedules` (admin credential).
    pub async fn create_rule(&self, rule: &NewRule) -> Result<Rule, ClientError> {
        self.http.send(reqwest::Method::POST, "/v1/schedules", Some(rule)).await
    }

    /// `DELETE /v1/schedules/{id}` (admin credential).
    pub async fn delete_rule(&self, id: i64) -> Result<(), ClientError> {
        self.http.send(reqwest::Method::DELETE, &format!("/v1/schedules/{id}"), None::<&()>).await
    }

    /// `GET /v1/house`: the loop's latest house plan (every zone's decision and valves, every
    /// plant).
    pub async fn house(&self) -> Result<HouseStatus, ClientError> {
        self.http.get("/v1/house").await
    }

    /// `GET /v1/zones`: the zones and plants.
    pub async fn zones(&self) -> Result<HouseConfig, ClientError> {
        self.http.get("/v1/zones").await
    }

    /// `PUT /v1/zones/{zone_id}` (admin credential): create or replace a zone.
    pub async fn put_zone(&self, zone_id: &str, zone: &NewZone) -> Result<Zone, ClientError> {
        self.http.send(reqwest::Method::PUT, &format!("/v1/zones/{zone_id}"), Some(zone)).await
    }

    /// `DELETE /v1/zones/{zone_id}[?move_to=]` (admin credential).
    pub async fn delete_zone(
        &self,
        zone_id: &str,
        move_to: Option<&str>,
    ) -> Result<(), ClientError> {
        let query = move_to.map(|z| format!("?move_to={z}")).unwrap_or_default();
        let path = format!("/v1/zones/{zone_id}{query}");
        self.http.send(reqwest::Method::DELETE, &path, None::<&()>).await
    }

    /// `PUT /v1/plants/{plant_id}` (admin credential): create or replace a plant.
    pub async fn put_plant(&self, plant_id: &str, plant: &NewPlant) -> Result<Plant, ClientError> {
        self.http.send(reqwest::Method::PUT, &format!("/v1/plants/{plant_id}"), Some(plant)).await
    }

    /// `DELETE /v1/plants/{plant_id}` (admin credential).
    pub async fn delete_plant(&self, plant_id: &str) -> Result<(), ClientError> {
        self.http
            .send(reqwest::Method::DELETE, &format!("/v1/plants/{plant_id}"), None::<&()>)
            .await
    }

    /// `PUT /v1/schedule/default` (admin credential).
    pub async fn set_default_target(
        &self,
        target: &DefaultTarget,
    ) -> Result<DefaultTarget, ClientError> {
        self.http.send(reqwest::Method::PUT, "/v1/schedule/default", Some(target)).await
    }

    /// `PUT /v1/schedule/default?zone=ZONE` (admin credential): a zone's default target.
    pub async fn set_zone_default_target(
        &self,
        zone: &str,
        target: &DefaultTarget,
    ) -> Result<DefaultTarget, ClientError> {
        let path = format!("/v1/schedule/default?zone={zone}");
        self.http.send(reqwest::Method::PUT, &path, Some(target)).await
    }

    /// `POST /v1/overrides` (admin credential): e.g. "make it 22 now".
    pub async fn create_override(&self, o: &NewOverride) -> Result<Override, ClientError> {
        self.http.send(reqwest::Method::POST, "/v1/overrides", Some(o)).await
    }

    /// `GET /v1/schedule/timeline?hours=N`.
    pub async fn timeline(&self, hours: u32) -> Result<Timeline, ClientError> {
        self.http.get(&format!("/v1/schedule/timeline?hours={hours}")).await
    }

    /// `GET /v1/schedule/timeline?from=T&hours=N`: the segments of `hours` from `from` (past
    /// ones too: what was in force then, by today's rules).
    pub async fn timeline_from(
        &self,
        from: Timestamp,
        hours: u32,
    ) -> Result<Timeline, ClientError> {
        self.http.get(&format!("/v1/schedule/timeline?from={from}&hours={hours}")).await
    }

    /// `GET /v1/runs` over the last 7 days.
    pub async fn runs(&self) -> Result<Vec<Run>, ClientError> {
        self.http.get("/v1/runs").await
    }

    /// `PUT /v1/sensors/{id}/settings` (admin credential): name, default weight, calibration.
    pub async fn set_sensor_settings(
        &self,
        sensor_id: &str,
        settings: &SensorSettings,
    ) -> Result<SensorInfo, ClientError> {
        let path = format!("/v1/sensors/{sensor_id}/settings");
        self.http.send(reqwest::Method::PUT, &path, Some(settings)).await
    }

    /// `GET /v1/agents/{host_id}/settings`: desired settings and what each agent applied.
    pub async fn agent_settings(
        &self,
        host_id: &str,
    ) -> Result<crate::manage::AgentSettingsState, ClientError> {
        self.http.get(&format!("/v1/agents/{host_id}/settings")).await
    }

    /// `PUT /v1/agents/{host_id}/settings` (admin credential).
    pub async fn set_agent_settings(
        &self,
        host_id: &str,
        settings: &crate::manage::AgentSettings,
    ) -> Result<crate::manage::AgentSettingsState, ClientError> {
        let path = format!("/v1/agents/{host_id}/settings");
        self.http.send(reqwest::Method::PUT, &path, Some(settings)).await
    }

    /// `PUT /v1/agents/{host_id}/settings/applied` (the agent's device credential).
    pub async fn report_applied(
        &self,
        host_id: &str,
        applied: &crate::manage::AppliedSettings,
    ) -> Result<crate::manage::AgentSettingsState, ClientError> {
        let path = format!("/v1/agents/{host_id}/settings/applied");
        self.http.send(reqwest::Method::PUT, &path, Some(applied)).await
    }

    /// `POST /v1/agents/{host_id}/commands` (admin credential).
    pub async fn create_command(
        &self,
        host_id: &str,
        command: &crate::manage::NewCommand,
    ) -> Result<crate::manage::Command, ClientError> {
        let path = format!("/v1/agents/{host_id}/commands");
        self.http.send(reqwest::Method::POST, &path, Some(command)).await
    }

    /// `GET /v1/agents/{host_id}/commands?agent=…&state=pending`: the commands waiting for
    /// one agent of the host, newest first.
    pub async fn pending_commands(
        &self,
        host_id: &str,
        agent: AgentKind,
    ) -> Result<Vec<crate::manage::Command>, ClientError> {
        let agent = match agent {
            AgentKind::Sensor => "sensor",
            AgentKind::Relay => "relay",
        };
        self.http.get(&format!("/v1/agents/{host_id}/commands?agent={agent}&state=pending")).await
    }

    /// `GET /v1/agents/{host_id}/commands`: every command of the host, newest first.
    pub async fn commands(
        &self,
        host_id: &str,
    ) -> Result<Vec<crate::manage::Command>, ClientError> {
        self.http.get(&format!("/v1/agents/{host_id}/commands")).await
    }

    /// `PUT /v1/agents/{host_id}/commands/{id}` (the agent's device credential).
    pub async fn command_outcome(
        &self,
        host_id: &str,
        id: i64,
        outcome: &crate::manage::CommandReport,
    ) -> Result<crate::manage::Command, ClientError> {
        let path = format!("/v1/agents/{host_id}/commands/{id}");
        self.http.send(reqwest::Method::PUT, &path, Some(outcome)).await
    }

    /// `GET /v1/auth`: whom the engine takes this client's credential for.
    pub async fn whoami(&self) -> Result<Identity, ClientError> {
        self.http.get("/v1/auth").await
    }

    /// The same client presenting another credential (sharing the connection pool).
    pub fn with_credential(&self, credential: Option<String>) -> Self {
        Self { http: Http { auth: credential, ..self.http.clone() } }
    }

    /// A call on behalf of someone else's JSON: `path_and_query` (e.g. `/v1/schedules?x=1`) and
    /// `body` go to the engine as they are, and its answer comes back as it is: `Ok((status,
    /// bytes))` for a success or a refusal with a JSON body (`None` for a success without one,
    /// a 204; the bytes are the engine's, checked to be JSON, so an error code this build does
    /// not know, from a newer engine, reaches the caller as the engine wrote it), and
    /// `ClientError::Api` for a refusal without a JSON body. The web UI relays the dashboard's
    /// requests with it, so people see the engine's validation messages, not a second
    /// validator's. Check the status: a refusal is not an `Err`.
    pub async fn relay(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Option<Vec<u8>>), ClientError> {
        let (status, bytes) = self.http.answer(method, path_and_query, body).await?;
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes);
        if !status.is_success() {
            return match json {
                Ok(_) => Ok((status.as_u16(), Some(bytes))),
                Err(_) => Err(api_error(status, &bytes)),
            };
        }
        if bytes.is_empty() {
            return Ok((status.as_u16(), None));
        }
        json.map_err(|e| ClientError::Api {
            status: 502,
            body: ErrorBody::new(
                crate::ErrorCode::Internal,
                format!("the engine answered {status} with a body that is not JSON: {e}"),
            ),
        })?;
        Ok((status.as_u16(), Some(bytes)))
    }

    /// `GET /v1/events`: the live event stream. The stream ends when the engine goes away or
    /// stays silent for longer than three of its 15 s keep-alives.
    pub async fn events(&self) -> Result<EventStream, ClientError> {
        // The shared client's 10 s total timeout would cut an endless stream; this one only
        // bounds the silence between chunks.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .read_timeout(Duration::from_secs(45))
            .build()?;
        let resp = http
            .get(format!("{}/v1/events", self.http.base))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(api_error(status, &resp.bytes().await?));
        }
        Ok(EventStream { resp, buf: Vec::new(), data: String::new() })
    }
}

/// The engine's Server-Sent Events, decoded ([`EngineClient::events`]).
#[derive(Debug)]
pub struct EventStream {
    resp: reqwest::Response,
    /// Bytes of an incomplete line.
    buf: Vec<u8>,
    /// `data:` lines of the message being read.
    data: String,
}

impl EventStream {
    /// The next event; `None` when the engine ended the stream. A message whose data is not an
    /// [`Event`] this client knows (a newer engine's) is skipped.
    pub async fn next(&mut self) -> Option<Result<Event, ClientError>> {
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    // A blank line ends a message.
                    let data = std::mem::take(&mut self.data);
                    if data.is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Event>(&data) {
                        Ok(event) => return Some(Ok(event)),
                        Err(_) => continue,
                    }
                } else if let Some(d) = line.strip_prefix("data:") {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
                // `event:` repeats the data's `type`; `:` lines are keep-alives; `id:` and
                // `retry:` are not used by the engine.
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => return None,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// A client of a relay agent's API, used by the engine.
#[derive(Debug, Clone)]
pub struct RelayAgentClient {
    http: Http,
}

impl RelayAgentClient {
    /// A client for the relay agent at `base`, presenting the engine's `credential`.
    pub fn new(base: &str, credential: Option<String>) -> Self {
        Self { http: Http::new(base, credential) }
    }

    /// `GET /v1/relays`.
    pub async fn relays(&self) -> Result<RelayList, ClientError> {
        self.http.get("/v1/relays").await
    }

    /// `GET /v1/relays/{id}`.
    pub async fn relay(&self, id: &str) -> Result<OutputStatus, ClientError> {
        self.http.get(&format!("/v1/relays/{id}")).await
    }

    /// `POST /v1/relays/{id}`.
    pub async fn command(
        &self,
        id: &str,
        command: &RelayCommand,
    ) -> Result<OutputStatus, ClientError> {
        self.http.send(reqwest::Method::POST, &format!("/v1/relays/{id}"), Some(command)).await
    }

    /// `GET /v1/fallback`: the fallback program the agent holds.
    pub async fn fallback_program(&self) -> Result<crate::fallback::FallbackProgram, ClientError> {
        self.http.get("/v1/fallback").await
    }

    /// `PUT /v1/fallback`: hand the agent its fallback program.
    pub async fn put_fallback(
        &self,
        program: &crate::fallback::FallbackProgram,
    ) -> Result<crate::fallback::FallbackProgram, ClientError> {
        self.http.send(reqwest::Method::PUT, "/v1/fallback", Some(program)).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<RelayAgentStatus, ClientError> {
        self.http.get("/v1/status").await
    }

    /// `POST /v1/manage/pending`: tell the agent that management work waits (it pulls it).
    pub async fn manage_pending(
        &self,
        pending: &crate::manage::Pending,
    ) -> Result<crate::manage::Pending, ClientError> {
        self.http.send(reqwest::Method::POST, crate::manage::PENDING_PATH, Some(pending)).await
    }
}
