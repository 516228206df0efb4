//! Advertising the engine: `_hearth._tcp.local.` with TXT api / id / site / scheme.

use hearth_proto::mdns::{SERVICE_TYPE, TXT_API, TXT_ENGINE_ID, TXT_SCHEME, TXT_SITE};
use mdns_sd::{ServiceDaemon, ServiceInfo};

/// A registered advertisement; [`Advertiser::stop`] sends the goodbye.
pub(crate) struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser").field("fullname", &self.fullname).finish()
    }
}

impl Advertiser {
    /// Advertise the engine `engine_id` of site `site_id` on `port`, on every interface's
    /// addresses, following address changes (`enable_addr_auto`).
    pub(crate) fn start(engine_id: &str, site_id: &str, port: u16) -> anyhow::Result<Self> {
        let daemon = ServiceDaemon::new()?;
        // Unique and stable per engine: a duplicate instance name on a LAN makes browsers
        // on other interfaces see the wrong engine.
        let instance = format!("hearth-{engine_id}");
        let host = format!("{instance}.local.");
        let txt = [
            (TXT_API, hearth_proto::API_VERSION),
            (TXT_ENGINE_ID, engine_id),
            (TXT_SITE, site_id),
            (TXT_SCHEME, "http"),
        ];
        let info = ServiceInfo::new(SERVICE_TYPE, &instance, &host, "", port, &txt[..])?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_owned();
        daemon.register(info)?;
        tracing::info!(%fullname, port, "advertising on mDNS");
        Ok(Self { daemon, fullname })
    }

    /// Send the goodbye (browsers drop the engine ≈1 s later instead of at TTL expiry), then
    /// stop the daemon. Blocks up to a second waiting for the goodbye to go out.
    pub(crate) fn stop(self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(std::time::Duration::from_secs(1));
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}
