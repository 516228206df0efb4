//! Every failure the API returns: a status and an [`ErrorBody`], never a bare string.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_proto::{ErrorBody, ErrorCode};

/// An error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody::new(code, message) }
    }

    pub(crate) fn missing(field: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::MissingField,
            format!("{field} field is missing"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// A dependency failed (database): 503, with the cause logged, not sent.
    pub(crate) fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("{what}; try again later"),
        )
    }
}

impl ApiError {
    /// Readings that were not stored: 503 with why. Not logged here: a failed write is logged
    /// by the ingest writer, and a refusal while storage is degraded is that state, which the
    /// store logs once (logging every refused report would write to the very disk in trouble).
    pub(crate) fn not_stored(cause: String) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("readings not stored ({cause}); try again later"),
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::unavailable("database error", e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                // serde's message names the field: "missing field `state`", "invalid type: ...".
                let text = e.body_text();
                let code = if text.contains("missing field") {
                    ErrorCode::MissingField
                } else {
                    ErrorCode::InvalidField
                };
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, text)
            }
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, e.body_text())
            }
            JsonRejection::MissingJsonContentType(e) => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::Unsupported, e.body_text())
            }
            // The body could not be read: too large (413), or the client went away.
            other => {
                let status = other.status();
                let code = hearth_common::http::code_for(status);
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!("request body larger than {} bytes", super::MAX_BODY_BYTES)
                } else {
                    other.body_text()
                };
                Self::new(status, code, message)
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::invalid(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// `axum::Json` with Hearth's error bodies, for a body that must be a JSON object. A struct
/// whose fields are all optional would otherwise take a JSON array (serde reads structs from
/// sequences too): `[null, null]` stored as "nothing set".
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        // Content type, size and syntax are axum's checks, with their usual answers.
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        object(&value)?;
        let sent = value.clone();
        let read: T = serde_path_to_error::deserialize(value).map_err(|e| {
            let text = format!("Failed to deserialize the JSON body into the target type: {e}");
            let code = if text.contains("missing field") {
                ErrorCode::MissingField
            } else {
                ErrorCode::InvalidField
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, text)
        })?;
        objects_stayed_objects(&sent, &read)?;
        Ok(Body(read))
    }
}

/// Refuse a body in which serde built a struct from an array (it reads structs from sequences
/// too: `"screen": [null, null]` would be a screen with nothing set): what was read, written
/// back as JSON, has an object wherever the body has an array. A 422 naming the field.
pub(super) fn objects_stayed_objects<T: serde::Serialize>(
    sent: &serde_json::Value,
    read: &T,
) -> Result<(), ApiError> {
    let read = serde_json::to_value(read).unwrap_or(serde_json::Value::Null);
    match array_read_as_struct(sent, &read, "") {
        Some(path) => Err(ApiError::invalid(format!("{path} must be a JSON object"))),
        None => Ok(()),
    }
}

fn array_read_as_struct(
    sent: &serde_json::Value,
    read: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value::{Array, Object};
    match (sent, read) {
        (Array(_), Object(_)) => {
            Some(if path.is_empty() { "the body".to_owned() } else { path.to_owned() })
        }
        (Object(sent), Object(read)) => sent.iter().find_map(|(k, v)| {
            read.get(k).and_then(|r| array_read_as_struct(v, r, &join(path, k)))
        }),
        (Array(sent), Array(read)) => sent
            .iter()
            .zip(read)
            .enumerate()
            .find_map(|(i, (s, r))| array_read_as_struct(s, r, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Every body the engine takes is a JSON object: anything else is valid JSON of the wrong
/// type, a 422 `invalid_field` (as the routes that check field by field always answered).
fn object(value: &serde_json::Value) -> Result<(), ApiError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(ApiError::invalid("the body must be a JSON object"))
    }
}

/// `axum::extract::Query` with Hearth's error bodies.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub(crate) T);

/// The body as JSON, or a 400 `malformed_json`. Handlers that validate field by field parse
/// untyped first, so each field's mistake gets its own message.
pub(super) fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedJson,
            format!("body is not valid JSON: {e}"),
        )
    })?;
    object(&value)?;
    Ok(value)
}

/// The path of `key` inside `prefix` (`when.days`), or `key` at the top (`prefix` empty).
pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// Unknown fields are refused (a typo like `heat` would otherwise silently do nothing);
/// `ignored` are read-only fields a client may send back unchanged (`id`, `layer`). Handlers
/// that parse untyped JSON field by field check every object with this; typed bodies
/// ([`Body`]) are refused by `deny_unknown_fields` on their `hearth-proto` type.
pub(super) fn known(
    obj: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    fields: &[&str],
    ignored: &[&str],
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !fields.contains(&k.as_str()) && !ignored.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!(
            "{} field is unknown; expected {}",
            join(prefix, k),
            fields.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A bounded query parameter: `default` when it is left out, else its value when within
/// `range`, else a 422 that names it and the range (`days must be 1 to 366, got 0`).
pub(super) fn bounded<T>(
    name: &str,
    value: Option<T>,
    default: T,
    range: &std::ops::RangeInclusive<T>,
) -> Result<T, ApiError>
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        let (min, max) = (range.start(), range.end());
        Err(ApiError::invalid(format!("{name} must be {min} to {max}, got {value}")))
    }
}
