//! The services Hearth is made of: the one list of them. What else a part needs to know about
//! a service (its unit file, config, architectures) extends an entry here rather than naming
//! the service again.

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The cargo package, its binary and its systemd unit: the same name.
    pub package: &'static str,
    /// What logs and messages call it (`[engine] …`).
    pub name: &'static str,
    /// The role of the device key it needs from the engine (`device-key --role ROLE`), for the
    /// agents; the engine and the dashboard need none.
    pub role: Option<&'static str>,
}

/// The engine: decides, stores, serves the API.
pub const ENGINE: Service = Service { package: "hearth-engine", name: "engine", role: None };
/// The sensor agent: reads probes, reports them.
pub const SENSOR_AGENT: Service =
    Service { package: "hearth-sensor-agent", name: "sensor agent", role: Some("sensor") };
/// The relay agent: drives the outputs the engine asks for.
pub const RELAY_AGENT: Service =
    Service { package: "hearth-relay-agent", name: "relay agent", role: Some("relay") };
/// The dashboard.
pub const WEB: Service = Service { package: "hearth-web", name: "web", role: None };

/// Every service.
pub const SERVICES: [Service; 4] = [ENGINE, SENSOR_AGENT, RELAY_AGENT, WEB];
