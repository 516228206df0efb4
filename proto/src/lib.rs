//! The Hearth wire contract: every type that crosses HTTP between the engine, the agents and the
//! web UI, the mDNS constants agents use to find the engine, and (feature `client`) a small typed
//! client.
//!
//! Invariant: this crate depends on serde, serde_json (JSON values of plugin parameters; utoipa
//! depends on it anyway), utoipa (schema derive) and jiff (timestamp values) only; the `client`
//! feature adds reqwest. No server, runtime, database or hardware crates.
//! Doc comments here become the descriptions in the OpenAPI documents under `openapi/`.

#![deny(missing_docs)]

pub mod agents;
pub mod control;
pub mod error;
pub mod events;
pub mod fallback;
pub mod history;
pub mod limits;
pub mod manage;
pub mod mdns;
pub mod relays;
pub mod schedules;
pub mod sensors;
pub mod status;
pub mod zones;

#[cfg(feature = "client")]
pub mod client;

pub use error::{ErrorBody, ErrorCode};

/// The version segment of every API path (`/v1/...`) and the `api` TXT value in mDNS.
pub const API_VERSION: &str = "v1";

/// A point in time on the wire: an RFC 3339 string in UTC, e.g. `2026-11-21T06:55:00Z`.
pub type Timestamp = jiff::Timestamp;

/// The HTTP header that carries credentials: `Authorization: Bearer <principal>.<token>`.
pub const AUTH_HEADER: &str = "authorization";
