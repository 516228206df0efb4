//! Hearth's temperature probes, shared by the sensor agent and the relay agent (which reads a
//! probe of its own host to keep the house above frost when the engine is gone). Only this
//! crate touches `/sys`, `/dev` (GPIO) or the simulator's files for temperatures; everything
//! above [`TemperatureSource`] is plain data and testable on a laptop.
//!
//! Backends: [`w1`] (the kernel driver's sysfs files), [`onewire`] (1-Wire bit-banged on a GPIO
//! pin) and [`sim`] (a simulated house). Every backend is wrapped in [`screen::Screened`], which
//! drops disabled sensors, reports vanished ones, rejects implausible values and applies the
//! calibration offsets, so those rules hold whatever the hardware. [`open`] chooses and opens
//! the backend from an agent's options, the same way for both agents.

pub mod led;
pub mod onewire;
pub mod open;
pub mod screen;
pub mod sim;
pub mod w1;

use std::collections::BTreeSet;

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

    /// The sensor type to report for `id` when it is configured but was never seen (so it is
    /// reported missing under a type). The 1-Wire backends name it by its family code
    /// ([`w1::device_kind`]).
    fn kind_of(&self, id: &str) -> &'static str;

    /// Source seconds per real second: 1 for hardware, the time scale for the simulator, whose
    /// room may warm 600× faster than a real one. The screen judges rates in this time.
    fn time_scale(&self) -> f64 {
        1.0
    }

    /// Never read these sensors (lower-case ids) from now on, replacing the set given before.
    /// Only a saving (a conversion not started): [`screen::Screened`] drops disabled sensors
    /// whatever the backend does, so a backend may ignore it.
    fn skip(&mut self, _ids: &BTreeSet<String>) {}

    /// Convert at `bits` (9..=12) from now on, on every sensor and on each one that appears
    /// later; None leaves each sensor at its own. Err (why, for people) when this backend
    /// cannot set it; nothing changes then.
    fn set_resolution(&mut self, _bits: Option<u8>) -> Result<(), String> {
        Err(format!("the {} backend cannot set the sensors' resolution", self.name()))
    }
}

/// A boxed source is a source, so the screen wraps whichever backend the configuration picked.
impl<T: TemperatureSource + ?Sized> TemperatureSource for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn read_all(&mut self) -> Vec<RawReading> {
        (**self).read_all()
    }
    fn kind_of(&self, id: &str) -> &'static str {
        (**self).kind_of(id)
    }
    fn time_scale(&self) -> f64 {
        (**self).time_scale()
    }
    fn skip(&mut self, ids: &BTreeSet<String>) {
        (**self).skip(ids);
    }
    fn set_resolution(&mut self, bits: Option<u8>) -> Result<(), String> {
        (**self).set_resolution(bits)
    }
}

/// The step of a DS18B20 reading at `bits` of resolution, °C: 0.5 at 9 bits, 1/16 at 12.
pub fn resolution_step_c(bits: u8) -> f64 {
    1.0 / f64::from(1u32 << (bits.clamp(9, 12) - 8))
}

/// Attempts per reading (the first and two retries) when it fails in a way the next attempt may
/// not: a CRC error (noise, a loose wire), an empty kernel read or an I/O error. Bounded, because
/// each attempt on a w1 bus is another ~750 ms conversion.
pub const READ_ATTEMPTS: u32 = 3;

/// Run `read` until it succeeds, fails in a way a retry will not fix, or [`READ_ATTEMPTS`]
/// attempts are spent; the last result is returned.
pub fn with_retries(mut read: impl FnMut() -> Result<f64, ReadError>) -> Result<f64, ReadError> {
    let mut attempt = 1;
    loop {
        match read() {
            Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
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
    /// The file or the bus could not be read for another reason.
    Io(String),
    /// The sensor read 85.000 °C, the DS18B20's power-on value (a conversion that did not
    /// happen: a brown-out or a sensor that just powered up), with no earlier reading near 85.
    PowerOnValue,
    /// A value no room produces: out of the sensor's range, or a jump faster than a room can
    /// change. The text says which.
    Implausible(String),
}

impl ReadError {
    /// True for failures the next attempt may not repeat (see [`with_retries`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Crc | Self::Empty | Self::Io(_))
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Crc => f.write_str("CRC check failed"),
            Self::Empty => f.write_str("empty reading (failed conversion)"),
            Self::Missing => f.write_str("device missing"),
            Self::Parse(what) => write!(f, "unparsable reading: {what}"),
            Self::Io(what) => write!(f, "read error: {what}"),
            Self::PowerOnValue => {
                f.write_str("85.000 °C power-on value (no conversion happened); ignored")
            }
            Self::Implausible(why) => write!(f, "implausible reading: {why}"),
        }
    }
}

impl std::error::Error for ReadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_failures_a_bounded_number_of_times() {
        let mut calls = 0;
        let got = with_retries(|| {
            calls += 1;
            if calls < 3 { Err(ReadError::Crc) } else { Ok(20.0) }
        });
        assert_eq!((got, calls), (Ok(20.0), 3));

        let mut calls = 0;
        let got = with_retries(|| {
            calls += 1;
            Err(ReadError::Empty)
        });
        assert_eq!((got, calls), (Err(ReadError::Empty), READ_ATTEMPTS));

        // Not worth retrying: the device is gone, or the text will not parse next time either.
        for permanent in [ReadError::Missing, ReadError::Parse("x".into())] {
            let mut calls = 0;
            let got = with_retries(|| {
                calls += 1;
                Err(permanent.clone())
            });
            assert_eq!((got, calls), (Err(permanent), 1));
        }
    }
}
