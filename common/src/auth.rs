//! Credentials: one site secret held by the engine, keys derived from it per device.
//!
//! ```text
//! site secret (32 random bytes, engine only)
//!   ├─ site id      = HMAC(secret, "hearth site id v1")[..8]          public; in mDNS TXT
//!   ├─ admin token  = HMAC(secret, "hearth admin v1")                 people and the web UI
//!   └─ device key   = HMAC(secret, "hearth device key v1|" + host_id) given to one agent
//!        ├─ agent token  = HMAC(device key, "agent")   agent → engine:  Bearer <host_id>.<hex>
//!        └─ engine token = HMAC(device key, "engine")  engine → relay:  Bearer engine.<hex>
//! ```
//! The engine can derive every key, so it stores nothing per device. An agent holds only its own
//! device key, so a stolen Pi Zero yields that device's credentials and nothing else. The engine
//! token differs from the agent token, so an agent's credential cannot command relays.
//! Tokens travel in plain HTTP: see ARCHITECTURE.md for what that protects and what not.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The principal the engine uses towards relay agents.
pub const ENGINE_PRINCIPAL: &str = "engine";
/// The principal of people and the web UI.
pub const ADMIN_PRINCIPAL: &str = "admin";

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Compare in time independent of where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The engine's site secret.
#[derive(Clone)]
pub struct SiteSecret([u8; 32]);

impl std::fmt::Debug for SiteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteSecret(<redacted>)")
    }
}

impl SiteSecret {
    /// A fresh random secret.
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(Self(bytes))
    }

    /// Parse the hex form written by [`SiteSecret::to_hex`].
    pub fn from_hex(s: &str) -> anyhow::Result<Self> {
        let bytes = unhex(s.trim()).ok_or_else(|| anyhow::anyhow!("site secret is not hex"))?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| anyhow::anyhow!("site secret must be 32 bytes"))?;
        Ok(Self(bytes))
    }

    /// The hex form, for the secret file only.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The public site id (16 hex characters).
    pub fn site_id(&self) -> String {
        hex(&mac(&self.0, &[b"hearth site id v1"])[..8])
    }

    /// The key of the device `host_id`.
    pub fn device_key(&self, host_id: &str) -> DeviceCredential {
        DeviceCredential {
            site_id: self.site_id(),
            key: mac(&self.0, &[b"hearth device key v1|", host_id.as_bytes()]),
        }
    }

    /// The admin token (without the `admin.` principal prefix).
    pub fn admin_token(&self) -> String {
        hex(&mac(&self.0, &[b"hearth admin v1"]))
    }

    /// The full bearer credential for admins: `admin.<token>`.
    pub fn admin_credential(&self) -> String {
        format!("{ADMIN_PRINCIPAL}.{}", self.admin_token())
    }
}

/// What an agent is given at provisioning: the site id and its device key, written as
/// `<site id>.<64 hex>`.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    /// The site this key belongs to; agents ignore engines advertising another site.
    pub site_id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceCredential(site {}, key <redacted>)", self.site_id)
    }
}

impl std::fmt::Display for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.site_id, hex(&self.key))
    }
}

impl std::str::FromStr for DeviceCredential {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (site_id, key) = s
            .trim()
            .split_once('.')
            .ok_or_else(|| anyhow::anyhow!("a device key looks like <site id>.<64 hex digits>"))?;
        let key = unhex(key)
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| anyhow::anyhow!("the device key part must be 64 hex digits"))?;
        if site_id.is_empty() || !site_id.chars().all(|c| c.is_ascii_hexdigit()) {
            anyhow::bail!("the site id part of a device key must be hex");
        }
        Ok(Self { site_id: site_id.to_ascii_lowercase(), key })
    }
}

impl DeviceCredential {
    /// The token this agent presents to the engine.
    pub fn agent_token(&self) -> String {
        hex(&mac(&self.key, &[b"agent"]))
    }

    /// The full bearer credential this agent presents: `<host_id>.<agent token>`.
    pub fn agent_credential(&self, host_id: &str) -> String {
        format!("{host_id}.{}", self.agent_token())
    }

    /// The token the engine presents to this relay agent.
    pub fn engine_token(&self) -> String {
        hex(&mac(&self.key, &[b"engine"]))
    }

    /// The full bearer credential the engine presents to this relay agent.
    pub fn engine_credential(&self) -> String {
        format!("{ENGINE_PRINCIPAL}.{}", self.engine_token())
    }

    /// True when `token` is this agent's engine token.
    pub fn verify_engine_token(&self, token: &str) -> bool {
        ct_eq(token.as_bytes(), self.engine_token().as_bytes())
    }
}

/// A string that must never appear in logs (a device key in an agent's configuration): `Debug`
/// prints `<redacted>`. It reads from flags, the environment and the file like a plain string.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An agent's device credential from its configuration: required, with the fix in the
/// message (`env_var` is the agent's variable for it). The key never appears in the error.
pub fn device_credential(
    key: Option<&Secret>,
    host_id: &str,
    env_var: &str,
) -> anyhow::Result<DeviceCredential> {
    let Some(key) = key else {
        anyhow::bail!(
            "no device key: an agent talks only to the engine holding its key. Set --device-key, \
             {env_var} or `device_key` in the config file; `hearth-engine device-key {host_id}` \
             on the engine's host prints it"
        );
    };
    // FromStr's errors describe the expected form and never echo the input.
    key.expose().parse().map_err(|e: anyhow::Error| {
        anyhow::anyhow!(
            "invalid device key: malformed ({e}); `hearth-engine device-key {host_id}` on the \
             engine's host prints a valid one"
        )
    })
}

/// Split an `Authorization` header value `Bearer <principal>.<token>` into its parts.
pub fn parse_bearer(header: &str) -> Option<(&str, &str)> {
    let rest = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?;
    let (principal, token) = rest.trim().rsplit_once('.')?;
    (!principal.is_empty() && !token.is_empty()).then_some((principal, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_stable_and_distinct() -> anyhow::Result<()> {
        let secret = SiteSecret::from_hex(&"11".repeat(32))?;
        let a = secret.device_key("pi-a");
        let b = secret.device_key("pi-b");
        assert_ne!(a, b);
        assert_ne!(a.agent_token(), a.engine_token());
        assert_eq!(a.site_id, secret.site_id());
        assert_eq!(secret.site_id().len(), 16);
        // The printed form parses back to the same key.
        let parsed: DeviceCredential = a.to_string().parse()?;
        assert_eq!(parsed, a);
        assert!(parsed.verify_engine_token(&a.engine_token()));
        assert!(!parsed.verify_engine_token(&b.engine_token()));
        assert!(!format!("{a:?}").contains(&hex(&a.key)));
        Ok(())
    }

    #[test]
    fn bad_credentials_do_not_parse() {
        assert!("nodot".parse::<DeviceCredential>().is_err());
        assert!("abcd.1234".parse::<DeviceCredential>().is_err());
        assert!(format!("xyz.{}", "00".repeat(32)).parse::<DeviceCredential>().is_err());
        assert!(SiteSecret::from_hex("zz").is_err());
    }

    #[test]
    fn agent_device_key_is_required_and_never_echoed() -> anyhow::Result<()> {
        let missing = device_credential(None, "pi-a", "HEARTH_X_DEVICE_KEY").err();
        let msg = missing.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("hearth-engine device-key pi-a") && msg.contains("HEARTH_X_DEVICE_KEY")
        );
        let bad = Secret::from("abcd.not-hex-secret-material".to_owned());
        let msg = device_credential(Some(&bad), "pi-a", "X").err().map(|e| e.to_string());
        let msg = msg.unwrap_or_default();
        assert!(msg.contains("invalid device key"), "{msg}");
        assert!(!msg.contains("not-hex-secret-material"), "{msg}");
        assert_eq!(format!("{bad:?}"), "<redacted>");
        let good = SiteSecret::from_hex(&"22".repeat(32))?.device_key("pi-a");
        let parsed = device_credential(Some(&Secret::from(good.to_string())), "pi-a", "X")?;
        assert_eq!(parsed, good);
        Ok(())
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(parse_bearer("Bearer pi-a.abc"), Some(("pi-a", "abc")));
        assert_eq!(parse_bearer("Bearer a.b.c"), Some(("a.b", "c")));
        assert_eq!(parse_bearer("Basic x"), None);
        assert_eq!(parse_bearer("Bearer .abc"), None);
        assert_eq!(parse_bearer("Bearer nodot"), None);
    }
}
