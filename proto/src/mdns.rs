//! How agents find the engine on the LAN: DNS-SD over mDNS.
//!
//! The engine advertises [`SERVICE_TYPE`] with an instance name that is unique and stable per
//! engine (`hearth-<engine id>`), on its HTTP port, with the TXT keys below.

/// The DNS-SD service type the engine advertises. The label after `_` must stay ≤ 15 bytes.
pub const SERVICE_TYPE: &str = "_hearth._tcp.local.";

/// TXT key: the API version the engine serves (value [`crate::API_VERSION`]).
pub const TXT_API: &str = "api";
/// TXT key: the engine's stable unique id.
pub const TXT_ENGINE_ID: &str = "id";
/// TXT key: the site id, a public fingerprint of the site secret. Agents provisioned for one
/// site ignore engines of another (a demo engine on the same LAN, a neighbour's house).
pub const TXT_SITE: &str = "site";
/// TXT key: the URL scheme to use (`http` today).
pub const TXT_SCHEME: &str = "scheme";
