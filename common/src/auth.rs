//! Credentials: one site secret held by the engine, keys derived from it per device.
//!
//! ```text
//! site secret (32 random bytes, engine only)
//!   ├─ site id      = HMAC(secret, "hearth site id v1")[..8]          public; in mDNS TXT
//!   ├─ admin token  = HMAC(secret, "hearth admin v1")                 people and the web UI
//!   └─ device key   = HMAC(secret, "hearth device key v2|" + role + "|" + host_id)
//!        │            role: sensor, relay or both; given to one agent
//!        ├─ agent token  = HMAC(device key, "agent")   agent → engine:  Bearer <host_id>.<hex>
//!        ├─ engine token = HMAC(device key, "engine")  engine → relay:  Bearer engine.<hex>
//!        └─ read token   = HMAC(device key, "hearth read v1")
//!                                      relay → sensor agent's read API: Bearer <hex>
//! ```
//! The engine can derive every key, so it stores nothing per device: it recognises an agent's
//! role by which role's token matches. An agent holds only its own device key, so a stolen Pi
//! Zero yields that device's credentials and nothing else, and a sensor's key cannot register
//! relay outputs. The engine token differs from the agent token, so an agent's credential
//! cannot command relays. The read token grants only reading a sensor agent's last readings
//! (`GET /v1/readings`): the sensor agent checks it with its own key alone, and the engine
//! derives it for a relay agent whose fallback program reads that sensor agent.
//!
//! Keys printed before keys had roles (`untyped`) are `HMAC(secret, "hearth device key v1|" +
//! host_id)`; the engine still recognises them (see `KeyRole::Untyped`), so an upgrade leaves
//! no house without heat.
//!
//! Tokens travel in plain HTTP: see ARCHITECTURE.md for what that protects and what not.

use hearth_proto::agents::KeyRole;
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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// The 32 bytes a token of 64 lower-case hex digits (as [`hex`] writes them) stands for;
/// None for anything else, as no token written by [`hex`] would equal it.
fn token_bytes(token: &str) -> Option<[u8; 32]> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    unhex(token).and_then(|bytes| bytes.try_into().ok())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The agent token of a device key, as bytes.
fn agent_mac(device_key: &[u8; 32]) -> [u8; 32] {
    mac(device_key, &[b"agent"])
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

    /// The key of the device `host_id` for `role` (`Untyped`: the key printed before keys had
    /// roles).
    pub fn device_key(&self, host_id: &str, role: KeyRole) -> DeviceCredential {
        DeviceCredential { site_id: self.site_id(), key: self.device_key_bytes(host_id, role) }
    }

    /// The key of [`Self::device_key`] alone.
    fn device_key_bytes(&self, host_id: &str, role: KeyRole) -> [u8; 32] {
        match role {
            KeyRole::Untyped => mac(&self.0, &[b"hearth device key v1|", host_id.as_bytes()]),
            role => mac(
                &self.0,
                &[b"hearth device key v2|", role.as_str().as_bytes(), b"|", host_id.as_bytes()],
            ),
        }
    }

    /// The role of the device key whose agent token `token` is, for `host_id`; None when it is
    /// none of them. Every role is compared, each in constant time.
    ///
    /// It runs for every request an agent sends, so it computes only the MACs it compares
    /// (two per role) and compares bytes: building a [`DeviceCredential::agent_token`] string
    /// per role also derived the site id and wrote hex, which took twice as long (4.2 µs a
    /// check against 1.9 on this project's build machine), some 6 % of the engine's CPU under
    /// the ingest benchmark's load.
    pub fn agent_key_role(&self, host_id: &str, token: &str) -> Option<KeyRole> {
        let token = token_bytes(token)?;
        [KeyRole::Sensor, KeyRole::Relay, KeyRole::Both, KeyRole::Untyped]
            .into_iter()
            .map(|role| (role, ct_eq(&token, &agent_mac(&self.device_key_bytes(host_id, role)))))
            .fold(None, |found, (role, matches)| found.or(matches.then_some(role)))
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
        hex(&agent_mac(&self.key))
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

    /// The token that lets a reader (a relay agent's fallback program) read this sensor agent's
    /// last readings, and nothing else.
    pub fn read_token(&self) -> String {
        hex(&mac(&self.key, &[b"hearth read v1"]))
    }

    /// True when `token` is this agent's read token (constant time).
    pub fn verify_read_token(&self, token: &str) -> bool {
        ct_eq(token.as_bytes(), self.read_token().as_bytes())
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
/// message (`env_var` is the agent's variable for it, `role` the key role it needs). The key
/// never appears in the error.
pub fn device_credential(
    key: Option<&Secret>,
    host_id: &str,
    env_var: &str,
    role: KeyRole,
) -> anyhow::Result<DeviceCredential> {
    let print = format!(
        "`hearth-engine device-key --role {} {host_id}` on the engine's host prints it (`--role \
         both` for a host that runs a sensor and a relay agent)",
        role.as_str()
    );
    let Some(key) = key else {
        anyhow::bail!(
            "no device key: an agent talks only to the engine holding its key. Set --device-key, \
             {env_var} or `device_key` in the config file; {print}"
        );
    };
    // FromStr's errors describe the expected form and never echo the input.
    key.expose()
        .parse()
        .map_err(|e: anyhow::Error| anyhow::anyhow!("invalid device key: malformed ({e}); {print}"))
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
        let a = secret.device_key("pi-a", KeyRole::Sensor);
        let b = secret.device_key("pi-b", KeyRole::Sensor);
        assert_ne!(a, b);
        assert_ne!(a.agent_token(), a.engine_token());
        assert_eq!(a.site_id, secret.site_id());
        assert_eq!(secret.site_id().len(), 16);
        // The printed form parses back to the same key.
        let parsed: DeviceCredential = a.to_string().parse()?;
        assert_eq!(parsed, a);
        assert!(parsed.verify_engine_token(&a.engine_token()));
        assert!(!parsed.verify_engine_token(&b.engine_token()));
        // The read token is a credential of its own: neither the agent's nor the engine's.
        assert!(parsed.verify_read_token(&a.read_token()));
        assert!(!parsed.verify_read_token(&b.read_token()));
        assert!(!parsed.verify_read_token(&a.agent_token()));
        assert!(!parsed.verify_read_token(&a.engine_token()));
        assert!(!format!("{a:?}").contains(&hex(&a.key)));
        Ok(())
    }

    #[test]
    fn each_role_has_its_own_key_and_is_recognised() -> anyhow::Result<()> {
        let secret = SiteSecret::from_hex(&"11".repeat(32))?;
        let roles = [KeyRole::Sensor, KeyRole::Relay, KeyRole::Both, KeyRole::Untyped];
        for role in roles {
            let key = secret.device_key("pi-a", role);
            assert_eq!(secret.agent_key_role("pi-a", &key.agent_token()), Some(role));
            // Bound to the host id: another host cannot use it.
            assert_eq!(secret.agent_key_role("pi-b", &key.agent_token()), None);
            for other in roles.into_iter().filter(|r| *r != role) {
                assert_ne!(key, secret.device_key("pi-a", other), "{role:?} = {other:?}");
            }
        }
        assert_eq!(secret.agent_key_role("pi-a", "00"), None);
        // Only the token as written (lower-case hex) is the token.
        let token = secret.device_key("pi-a", KeyRole::Sensor).agent_token();
        if token.to_ascii_uppercase() != token {
            assert_eq!(secret.agent_key_role("pi-a", &token.to_ascii_uppercase()), None);
        }
        assert_eq!(secret.agent_key_role("pi-a", &format!("{token} ")), None);
        assert_eq!(secret.agent_key_role("pi-a", &token[..62]), None);
        // The untyped key is the one engines printed before keys had roles.
        let untyped = secret.device_key("pi-a", KeyRole::Untyped);
        let v1 = mac(&[0x11; 32], &[b"hearth device key v1|pi-a"]);
        assert_eq!(untyped.to_string(), format!("{}.{}", secret.site_id(), hex(&v1)));
        Ok(())
    }

    /// The worked example of the README's third-party section, computed here, so the README
    /// cannot drift from the code.
    #[test]
    fn the_readme_worked_example_is_right() -> anyhow::Result<()> {
        let readme = include_str!("../../README.md");
        let line = readme.lines().find_map(|l| l.strip_prefix("DEVICE_KEY="));
        let key: DeviceCredential = line.unwrap_or_default().trim().parse()?;
        // It is a real sensor key of a site (the secret of the example is 0x11 repeated).
        let secret = SiteSecret::from_hex(&"11".repeat(32))?;
        assert_eq!(key, secret.device_key("hall", KeyRole::Sensor));
        let token = key.agent_token();
        assert!(readme.contains(&format!("SHA2-256(stdin)= {token}\n")), "README lacks {token}");
        let header = format!("Authorization: Bearer {}\n", key.agent_credential("hall"));
        assert!(readme.contains(&header), "README lacks {header}");
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
        let missing = device_credential(None, "pi-a", "HEARTH_X_DEVICE_KEY", KeyRole::Sensor).err();
        let msg = missing.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("hearth-engine device-key --role sensor pi-a")
                && msg.contains("HEARTH_X_DEVICE_KEY"),
            "{msg}"
        );
        let bad = Secret::from("abcd.not-hex-secret-material".to_owned());
        let msg = device_credential(Some(&bad), "pi-a", "X", KeyRole::Sensor).err();
        let msg = msg.map(|e| e.to_string());
        let msg = msg.unwrap_or_default();
        assert!(msg.contains("invalid device key"), "{msg}");
        assert!(!msg.contains("not-hex-secret-material"), "{msg}");
        assert_eq!(format!("{bad:?}"), "<redacted>");
        let good = SiteSecret::from_hex(&"22".repeat(32))?.device_key("pi-a", KeyRole::Relay);
        let parsed =
            device_credential(Some(&Secret::from(good.to_string())), "pi-a", "X", KeyRole::Relay)?;
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
