//! Where the engine is (a configured URL or mDNS) and a client for it.

use std::sync::Mutex;

use hearth_common::discovery::Locator;
use hearth_proto::client::EngineClient;

/// The engine as this process currently knows it.
#[derive(Debug)]
pub(crate) struct Engine {
    locator: Locator,
    /// A client for the current URL, kept so connections are pooled; rebuilt when the engine
    /// moves.
    client: Mutex<Option<EngineClient>>,
}

impl Engine {
    pub(crate) fn new(locator: Locator) -> Self {
        Self { locator, client: Mutex::new(None) }
    }

    /// A client for the engine, without credential; None while none is known.
    pub(crate) fn client(&self) -> Option<EngineClient> {
        let target = self.locator.current()?;
        let mut cached = self.client.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some(c) if c.base() == target.url => Some(c.clone()),
            _ => {
                let c = EngineClient::new(&target.url, None);
                *cached = Some(c.clone());
                Some(c)
            }
        }
    }

    /// Wait until an engine is known, then a client for it.
    pub(crate) async fn wait_client(&self) -> EngineClient {
        loop {
            self.locator.wait().await;
            if let Some(c) = self.client() {
                return c;
            }
        }
    }

    /// The engine did not answer: have discovery check that its record is still true.
    pub(crate) fn unreachable(&self) {
        if let Some(target) = self.locator.current() {
            self.locator.report_unreachable(&target);
        }
    }

    /// Stop discovery.
    pub(crate) fn shutdown(&self) {
        self.locator.shutdown();
    }
}
