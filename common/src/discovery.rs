//! Finding the engine: a fixed URL from configuration, or DNS-SD over mDNS.
//!
//! The browser keeps every engine instance it has resolved and publishes the newest resolution
//! on a `watch` channel; agents follow that channel and re-register/redirect when it changes.
//! A killed engine sends no goodbye, so a caller that cannot reach the engine calls
//! [`Locator::report_unreachable`], which asks the daemon to verify the record (removed ≈2 s
//! later when nobody answers) instead of waiting for the 120 s TTL.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hearth_proto::mdns::{SERVICE_TYPE, TXT_API, TXT_ENGINE_ID, TXT_SCHEME, TXT_SITE};
use mdns_sd::{ResolvedService, ServiceDaemon, ServiceEvent};
use tokio::sync::watch;

/// Where the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineTarget {
    /// The engine's base URL, e.g. `http://10.0.0.2:8080`.
    pub url: String,
    /// The engine id from its TXT record (None for a configured URL).
    pub engine_id: Option<String>,
    /// The DNS-SD instance full name (None for a configured URL).
    pub fullname: Option<String>,
}

/// Follows where the engine is.
pub struct Locator {
    rx: watch::Receiver<Option<EngineTarget>>,
    daemon: Option<ServiceDaemon>,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator").field("current", &*self.rx.borrow()).finish_non_exhaustive()
    }
}

impl Locator {
    /// A locator that always answers `url` (discovery skipped).
    pub fn fixed(url: &str) -> Self {
        let target = EngineTarget {
            url: url.trim_end_matches('/').to_owned(),
            engine_id: None,
            fullname: None,
        };
        let (_tx, rx) = watch::channel(Some(target));
        Self { rx, daemon: None }
    }

    /// Browse for engines. With `site_id`, engines advertising another site are ignored.
    pub fn browse(site_id: Option<String>) -> anyhow::Result<Self> {
        let daemon = ServiceDaemon::new()?;
        let events = daemon.browse(SERVICE_TYPE)?;
        let (tx, rx) = watch::channel(None);
        // mdns-sd delivers events on a blocking channel; a plain thread bridges it to `watch`.
        // It ends when the daemon shuts down and the channel closes.
        std::thread::Builder::new().name("mdns-browse".into()).spawn(move || {
            let mut known = Known::default();
            while let Ok(event) = events.recv() {
                let changed = match event {
                    ServiceEvent::ServiceResolved(service) => {
                        known.resolved(&service, site_id.as_deref())
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => known.removed(&fullname),
                    _ => false,
                };
                if changed {
                    let newest = known.newest();
                    tracing::info!(engine = ?newest.as_ref().map(|t| &t.url), "engine location changed");
                    tx.send_replace(newest);
                }
            }
        })?;
        Ok(Self { rx, daemon: Some(daemon) })
    }

    /// Follow the engine's location.
    pub fn subscribe(&self) -> watch::Receiver<Option<EngineTarget>> {
        self.rx.clone()
    }

    /// Where the engine is now, if known.
    pub fn current(&self) -> Option<EngineTarget> {
        self.rx.borrow().clone()
    }

    /// Wait until the engine's location is known.
    pub async fn wait(&self) -> EngineTarget {
        let mut rx = self.rx.clone();
        loop {
            if let Some(t) = rx.borrow_and_update().clone() {
                return t;
            }
            if rx.changed().await.is_err() {
                // The browser is gone (shutdown); nothing will ever resolve.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The engine at `target` did not answer: ask mDNS to verify it, so a dead engine is
    /// forgotten in seconds rather than at TTL expiry.
    pub fn report_unreachable(&self, target: &EngineTarget) {
        if let (Some(daemon), Some(fullname)) = (&self.daemon, &target.fullname)
            && let Err(e) = daemon.verify(fullname.clone(), Duration::from_secs(2))
        {
            tracing::debug!(error = %e, "mdns verify failed");
        }
    }

    /// Stop browsing.
    pub fn shutdown(&self) {
        if let Some(daemon) = &self.daemon {
            let _ = daemon.shutdown();
        }
    }
}

/// The engine instances seen, with the order in which they were last resolved.
#[derive(Debug, Default)]
struct Known {
    seq: u64,
    by_name: BTreeMap<String, (u64, EngineTarget)>,
}

impl Known {
    fn resolved(&mut self, service: &ResolvedService, site_id: Option<&str>) -> bool {
        let txt = |k| service.txt_properties.get_property_val_str(k);
        if txt(TXT_API).is_some_and(|api| api != hearth_proto::API_VERSION) {
            tracing::debug!(name = %service.fullname, "ignoring engine with another API version");
            return false;
        }
        // An agent provisioned for a site follows only that site's engine; an engine that
        // advertises no site is not it either.
        if let Some(want) = site_id
            && txt(TXT_SITE) != Some(want)
        {
            tracing::debug!(name = %service.fullname, "ignoring engine of another site");
            return false;
        }
        let addrs: Vec<IpAddr> = service.addresses.iter().map(|a| a.to_ip_addr()).collect();
        let Some(ip) = best_address(&addrs) else { return false };
        let scheme = txt(TXT_SCHEME).unwrap_or("http");
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let target = EngineTarget {
            url: format!("{scheme}://{host}:{}", service.port),
            engine_id: txt(TXT_ENGINE_ID).map(str::to_owned),
            fullname: Some(service.fullname.clone()),
        };
        let unchanged = self.newest().as_ref() == Some(&target);
        self.seq += 1;
        self.by_name.insert(service.fullname.clone(), (self.seq, target));
        !unchanged
    }

    fn removed(&mut self, fullname: &str) -> bool {
        self.by_name.remove(fullname).is_some()
    }

    fn newest(&self) -> Option<EngineTarget> {
        self.by_name.values().max_by_key(|(seq, _)| *seq).map(|(_, t)| t.clone())
    }
}

/// IPv4 first (LAN, then loopback), then global IPv6. IPv6 link-local needs a scope id that a
/// URL cannot carry portably, so it is skipped.
fn best_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    let rank = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) if v4.is_link_local() => 2,
        IpAddr::V4(v4) if v4.is_loopback() => 1,
        IpAddr::V4(_) => 0,
        IpAddr::V6(v6) if v6.is_unicast_link_local() => 9,
        IpAddr::V6(v6) if v6.is_loopback() => 4,
        IpAddr::V6(_) => 3,
    };
    addrs.iter().filter(|ip| rank(ip) < 9).min_by_key(|ip| (rank(ip), **ip)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_preference() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let pick = |v: &[&str]| best_address(&v.iter().filter_map(|s| ip(s)).collect::<Vec<_>>());
        assert_eq!(pick(&["fe80::1", "127.0.0.1", "10.0.0.2"]), ip("10.0.0.2"));
        assert_eq!(pick(&["fe80::1", "2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(pick(&["fe80::1"]), None);
        assert_eq!(pick(&["127.0.0.1", "169.254.1.1"]), ip("127.0.0.1"));
    }

    #[test]
    fn fixed_locator_answers_its_url() {
        let l = Locator::fixed("http://127.0.0.1:9/");
        assert_eq!(l.current().map(|t| t.url), Some("http://127.0.0.1:9".to_owned()));
    }
}
