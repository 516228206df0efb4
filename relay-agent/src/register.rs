//! Registration: tell the engine where this agent is and which outputs it has.
//!
//! The task follows the [`Locator`]. Whenever the engine's location becomes known or changes
//! (another URL, another engine id), it POSTs a [`RelayRegistration`] and retries with capped
//! exponential backoff until the engine accepts it. A connection failure is reported to the
//! locator, so that mDNS forgets a dead engine in seconds instead of at TTL expiry.
//!
//! It registers again at once when an output fell back to its safe state by itself (a lease ran
//! out, a maximum on time): the report tells the engine what happened, as soon as it listens.
//! And it registers again when the engine has neither commanded this agent nor received a
//! registration for `reregister_after` (default 60 s). The engine keeps registrations in its
//! database, so this is not needed after an engine restart; it keeps the engine's view of the
//! agent (URL, outputs, states, clock) fresh, and costs one small request a minute only while
//! the engine is silent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hearth_common::auth::DeviceCredential;
use hearth_common::discovery::{EngineTarget, Locator};
use hearth_proto::client::{ClientError, EngineClient};
use hearth_proto::relays::{RelayRegistration, RelayRegistrationAck};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fallback::ProgramStore;
use crate::relays::Controller;

/// First retry delay after a failed registration.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest delay between registration attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Everything the registration task needs.
#[derive(Debug)]
pub struct Registrar {
    /// Where the engine is.
    pub locator: Arc<Locator>,
    /// This agent's host id.
    pub host_id: String,
    /// This agent's device key (the agent credential is derived from it).
    pub credential: DeviceCredential,
    /// The outputs to report.
    pub controller: Arc<Controller>,
    /// Where the engine's fallback program goes (it comes with the engine's answer).
    pub fallback: Arc<ProgramStore>,
    /// `--advertise-url`, if set.
    pub advertise_url: Option<String>,
    /// The address the API listens on (the bound one, so port 0 was resolved).
    pub listen: SocketAddr,
    /// Register again after this long without engine contact.
    pub reregister_after: Duration,
    /// Where the engine's answer about pending management work goes.
    pub pending: watch::Sender<Option<hearth_proto::manage::Pending>>,
}

enum RegisterError {
    /// We could not work out our own URL (e.g. the engine's host name does not resolve).
    Url(anyhow::Error),
    /// The engine did not accept the registration.
    Client(ClientError),
}

impl Registrar {
    /// Register whenever needed, forever (abort the task to stop).
    pub async fn run(self) {
        let mut rx = self.locator.subscribe();
        let mut fallbacks = self.controller.subscribe_fallbacks();
        // The target last registered with, and when.
        let mut registered: Option<(EngineTarget, Instant)> = None;
        // An output fell back and no registration sent since has been accepted: report it now.
        // Cleared only by an accepted registration, never by an attempt: an attempt is cut
        // short whenever the locator changes, which is exactly what happens while an engine
        // restarts (mDNS forgets it, then finds it again at the same URL, the same target),
        // and the report must survive that.
        let mut report = false;
        loop {
            let Some(target) = rx.borrow_and_update().clone() else {
                tracing::info!("waiting for the engine to be discovered");
                changed(&mut rx).await;
                continue;
            };
            if let Some((done, at)) = &registered
                && *done == target
            {
                // Same engine: wait until the registration goes stale or the engine moves.
                let last = self.controller.last_engine_contact().map_or(*at, |t| t.max(*at));
                let due = last + self.reregister_after;
                if report {
                    tracing::info!(
                        engine = %target.url,
                        "an output fell back to its safe state: reporting to the engine"
                    );
                } else if Instant::now() < due {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = changed(&mut rx) => {}
                        changed = fallbacks.changed() => {
                            // The controller lives as long as this task: Err cannot happen.
                            report = changed.is_ok();
                        }
                    }
                    continue;
                } else {
                    tracing::info!(
                        engine = %target.url,
                        "engine silent for a while: registering again"
                    );
                }
            }
            // The registration about to be sent reads the outputs when it goes, so it carries
            // every fallback so far; one that happens later marks the channel again.
            fallbacks.mark_unchanged();
            tokio::select! {
                () = self.register_until_accepted(&target) => {
                    registered = Some((target, Instant::now()));
                    report = false;
                }
                // The engine moved (or was forgotten and found again) while we were trying:
                // start over with the new location; a pending report stays pending.
                () = changed(&mut rx) => {}
            }
        }
    }

    async fn register_until_accepted(&self, target: &EngineTarget) {
        let mut delay = BACKOFF_START;
        loop {
            match self.register_once(target).await {
                Ok(ack) => {
                    tracing::info!(
                        engine = %target.url,
                        engine_id = %ack.engine_id,
                        "registered with the engine"
                    );
                    return;
                }
                Err(RegisterError::Url(e)) => {
                    tracing::warn!(
                        engine = %target.url,
                        error = %format!("{e:#}"),
                        retry_in_s = delay.as_secs_f64(),
                        "cannot work out this agent's URL"
                    );
                }
                Err(RegisterError::Client(e)) => {
                    if e.is_unreachable() {
                        self.locator.report_unreachable(target);
                    }
                    if e.is_retryable() {
                        tracing::warn!(
                            engine = %target.url,
                            error = %e,
                            retry_in_s = delay.as_secs_f64(),
                            "registration failed"
                        );
                    } else {
                        // A 4xx will not fix itself, but a fixed key or an engine upgrade
                        // might: keep trying, loudly.
                        tracing::error!(
                            engine = %target.url,
                            host_id = %self.host_id,
                            error = %e,
                            retry_in_s = delay.as_secs_f64(),
                            "the engine refused the registration: check the device key and host id"
                        );
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    async fn register_once(
        &self,
        target: &EngineTarget,
    ) -> Result<RelayRegistrationAck, RegisterError> {
        let url = advertise_url(self.advertise_url.as_deref(), self.listen, &target.url)
            .await
            .map_err(RegisterError::Url)?;
        let registration = RelayRegistration {
            host_id: self.host_id.clone(),
            url,
            outputs: self.controller.outputs(),
            agent_time: Some(jiff::Timestamp::now()),
            backend: Some(self.controller.backend().to_owned()),
            fallback: crate::fallback::status(&self.controller, &self.fallback),
        };
        let client =
            EngineClient::new(&target.url, Some(self.credential.agent_credential(&self.host_id)));
        let ack = client.register_relays(&registration).await.map_err(RegisterError::Client)?;
        if let Some(program) = &ack.fallback
            && let Err(e) = self.fallback.set(program.clone())
        {
            // The agent keeps the program it has: an engine that sends one this agent cannot
            // run (an output it does not have) must not leave it with none.
            tracing::warn!(error = %e, "the engine's fallback program is refused; keeping ours");
        }
        if let Some(pending) = ack.pending {
            self.pending.send_replace(Some(pending));
        }
        Ok(ack)
    }
}

/// Wait for the next change; a closed channel (a fixed locator) never changes again.
async fn changed(rx: &mut watch::Receiver<Option<EngineTarget>>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The base URL the engine at `engine_url` should use to reach this agent: the configured one;
/// else the listening address when it names one; else (listening on all addresses) the local
/// address the OS would pick to reach the engine, with the listening port.
pub async fn advertise_url(
    configured: Option<&str>,
    listen: SocketAddr,
    engine_url: &str,
) -> anyhow::Result<String> {
    if let Some(url) = configured {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let ip = if listen.ip().is_unspecified() {
        local_ip_towards(engine_url).await?
    } else {
        listen.ip()
    };
    Ok(format!("http://{}", SocketAddr::new(ip, listen.port())))
}

/// The local IP the OS would use to reach the engine. Connecting a UDP socket only selects a
/// route and a source address; no packet is sent.
async fn local_ip_towards(engine_url: &str) -> anyhow::Result<IpAddr> {
    let (host, port) = host_port(engine_url)?;
    let engine = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("cannot resolve the engine's host {host:?}"))?
        .next()
        .with_context(|| format!("the engine's host {host:?} has no address"))?;
    let bind: SocketAddr = match engine {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(bind).context("cannot open a UDP socket")?;
    socket.connect(engine).with_context(|| format!("no route to the engine at {engine}"))?;
    Ok(socket.local_addr().context("no local address towards the engine")?.ip())
}

/// Host and port of an `http://host:port/...` URL (default ports 80 and 443).
fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let (scheme, rest) =
        url.split_once("://").with_context(|| format!("engine URL {url:?} has no scheme"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        other => anyhow::bail!("engine URL {url:?}: unsupported scheme {other:?}"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) =
            v6.split_once(']').with_context(|| format!("engine URL {url:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        anyhow::bail!("engine URL {url:?} has no host");
    }
    let port = match port {
        Some(p) => p.parse().with_context(|| format!("engine URL {url:?}: bad port {p:?}"))?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_url_parts() -> anyhow::Result<()> {
        assert_eq!(host_port("http://10.0.0.2:8080")?, ("10.0.0.2".to_owned(), 8080));
        assert_eq!(host_port("http://engine.local/")?, ("engine.local".to_owned(), 80));
        assert_eq!(host_port("https://u:p@[fd00::1]:9000/x")?, ("fd00::1".to_owned(), 9000));
        assert_eq!(host_port("http://[::1]")?, ("::1".to_owned(), 80));
        assert!(host_port("10.0.0.2:8080").is_err());
        assert!(host_port("ftp://x").is_err());
        assert!(host_port("http://:80").is_err());
        assert!(host_port("http://x:notaport").is_err());
        Ok(())
    }

    #[tokio::test]
    async fn advertised_url_choices() -> anyhow::Result<()> {
        let any: SocketAddr = "0.0.0.0:8081".parse()?;
        let lo: SocketAddr = "127.0.0.1:9000".parse()?;
        let engine = "http://127.0.0.1:8080";
        assert_eq!(advertise_url(Some("http://me:1/"), any, engine).await?, "http://me:1");
        assert_eq!(advertise_url(None, lo, "http://10.9.9.9:1").await?, "http://127.0.0.1:9000");
        // Listening everywhere: the address facing the engine (loopback here) and our port.
        assert_eq!(advertise_url(None, any, engine).await?, "http://127.0.0.1:8081");
        Ok(())
    }
}
