//! The error body every Hearth service returns for a failed request.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response (4xx and 5xx) from every Hearth service.
///
/// `status` and `error` keep the seed contract of the sensor update
/// (`{"status": "error", "error": "host_id field is missing"}`); `code` is a stable
/// machine-readable code to branch on, `error` a message for humans that may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Always `"error"`.
    pub status: String,
    /// A stable machine-readable code.
    pub code: ErrorCode,
    /// A human-readable message naming what was wrong, e.g. `host_id field is missing`.
    pub error: String,
}

impl ErrorBody {
    /// An error body with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status: "error".to_owned(), code, error: message.into() }
    }
}

/// Stable error codes. New codes may be added; clients should treat unknown codes by HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, or not a JSON object.
    MalformedJson,
    /// The body or query lacks a required field.
    MissingField,
    /// A field has the wrong type or a value outside its allowed range.
    InvalidField,
    /// No credential was presented.
    Unauthorized,
    /// A credential was presented but is wrong, or does not allow this action.
    Forbidden,
    /// The addressed resource (sensor, relay, output) does not exist.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// A relay `on` refused because an output interlocked with it is on (e.g. heat and cool).
    Interlock,
    /// A relay `on` refused because the output's minimum off time has not passed: switching it
    /// on now would short-cycle the equipment. The response has a `Retry-After` header.
    ShortCycle,
    /// The request is well-formed but unsupported: a body that is not `application/json`
    /// (415), a method the path does not have (405).
    Unsupported,
    /// The request could not be read: not valid HTTP, or a path segment that is not UTF-8.
    BadRequest,
    /// The request is larger than the service takes: its body (413), its URI (414) or its
    /// header fields (431).
    TooLarge,
    /// A dependency of the service (database, hardware) is unavailable.
    Unavailable,
    /// An unexpected internal error; the message says what failed.
    Internal,
    /// A change of the zones or plants would leave a house that cannot work; the message
    /// names every problem ("valve r/v1 is assigned to zones Bedroom and Bath").
    InvalidHouse,
    /// A zone that still has schedule rules or overrides, deleted without `move_to`.
    ZoneNotEmpty,
}
