//! Relay hardware behind one trait. Only this module touches files or devices standing in for
//! hardware; everything above [`RelayBank`] is testable on a laptop with the simulator.
//!
//! Backends are synchronous and fallible on purpose: switching a GPIO line (rppal, the Linux
//! GPIO character device) is a quick blocking system call that can fail, and the controller
//! calls the bank under its own lock so that state and hardware never disagree.

mod gpio;
mod sim;

pub use gpio::{CdevBank, RppalBank, line_level};
pub use sim::SimBank;

use crate::config::{Config, Hardware, OutputConfig};

/// What went wrong talking to the hardware.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// The id is not one of the outputs the bank was built with.
    #[error("unknown output {0:?}")]
    UnknownOutput(String),
    /// An I/O operation on the device (or the file standing in for it) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `writing /tmp/hearth-sim-world.json`.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The device is unusable for another reason.
    #[error("{0}")]
    Device(String),
}

/// A bank of relay outputs, addressed by the output ids of the configuration.
///
/// `on` always means *energised* (the equipment runs); a backend for active-low relay boards
/// inverts the line level itself, so nothing above this trait knows about wiring.
pub trait RelayBank: Send {
    /// The backend's name as shown in `GET /v1/status`, e.g. `simulated`.
    fn name(&self) -> &'static str;

    /// Energise (`true`) or release (`false`) output `id`.
    fn set(&mut self, id: &str, on: bool) -> Result<(), HwError>;

    /// Whether output `id` is energised, as the hardware reports it.
    fn get(&self, id: &str) -> Result<bool, HwError>;

    /// Ok when the hardware is usable; the error says what is wrong.
    fn healthy(&self) -> Result<(), HwError>;
}

/// Build the backend the configuration asks for, with the given (validated) outputs. A
/// configuration without a backend is an error naming the fix ([`Config::hardware`]).
pub fn build(config: &Config, outputs: &[OutputConfig]) -> Result<Box<dyn RelayBank>, HwError> {
    let hardware = config.hardware().map_err(|e| HwError::Device(e.to_string()))?;
    match hardware {
        Hardware::Rppal => Ok(Box::new(RppalBank::open(outputs)?)),
        Hardware::GpioCdev => Ok(Box::new(CdevBank::open(&config.gpio_chip, outputs)?)),
        Hardware::Simulated => Ok(Box::new(SimBank::new(config.sim_world_path(), outputs)?)),
    }
}
