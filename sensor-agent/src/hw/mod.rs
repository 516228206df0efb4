//! Temperature sources. Only this module touches `/sys` or the simulator's world file;
//! everything above [`TemperatureSource`] is plain data and testable on a laptop.

pub mod sim;
pub mod w1;

/// A set of temperature sensors that can be read together.
///
/// Blocking by design: a DS18B20 conversion takes ~750 ms at 12 bit, and sysfs reads block for
/// it. Callers on an async runtime run [`TemperatureSource::read_all`] in
/// `tokio::task::spawn_blocking`.
pub trait TemperatureSource: Send {
    /// A short name of the backend for logs, e.g. `w1`.
    fn name(&self) -> &'static str;

    /// Read every sensor the source knows now. A sensor that fails to read is in the result
    /// with an error, never left out silently.
    fn read_all(&mut self) -> Vec<RawReading>;
}

/// One sensor's reading as the hardware gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReading {
    /// The sensor id, e.g. the 1-Wire device name `28-0316a2797bff`.
    pub id: String,
    /// The sensor type: `DS18B20`, `DS18S20`, `DS1822`, `MAX31850`, `DS28EA00` or `simulated`.
    pub kind: String,
    /// Degrees Celsius, or why the reading failed.
    pub value: Result<f64, ReadError>,
}

/// Why a reading failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The sensor answered with a bad CRC (`crc=.. NO`): noise or a loose wire.
    Crc,
    /// The kernel returned an empty file: newer kernels do this on a failed conversion.
    Empty,
    /// The device (or its data file) is gone: unplugged, or lost from the bus.
    Missing,
    /// The file had content the reader does not understand.
    Parse(String),
    /// The file could not be read for another reason.
    Io(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Crc => f.write_str("CRC check failed"),
            Self::Empty => f.write_str("empty reading (failed conversion)"),
            Self::Missing => f.write_str("device missing"),
            Self::Parse(what) => write!(f, "unparsable reading: {what}"),
            Self::Io(what) => write!(f, "read error: {what}"),
        }
    }
}

impl std::error::Error for ReadError {}
