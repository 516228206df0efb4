//! 1-Wire bit-banged on a GPIO pin from user space (one-wire-bus + ds18b20 over embedded-hal
//! 0.2), for boards or setups without the kernel's w1-gpio driver.
//!
//! One read: search the bus (so sensors plugged in later are found; the [`super::screen`] layer
//! reports vanished ones missing), start a conversion on every device at once (skip ROM +
//! Convert T), wait the conversion time of the slowest resolution seen (94/188/375/750 ms at
//! 9/10/11/12 bit; 750 ms for a device not read before), then read each device's scratchpad
//! with its CRC checked, retrying transfer errors ([`super::with_retries`]). User-space timing
//! jitter causes occasional CRC errors, which is why the kernel driver stays the default.
//!
//! The temperature is decoded here, not by the ds18b20 crate, whose 0.1.1 decoder reads the
//! register as unsigned (−10.125 °C → 4085.875) and scales it wrongly below 12 bit.
//!
//! The pin providers (Raspberry Pi registers through rppal, or the Linux GPIO character device)
//! are in `gpio` (cargo feature `gpio`, on by default); the protocol code is generic over the pin and the delay, so the tests run
//! it against a simulated bus (`simbus`, the line modelled at the level of microseconds; cargo
//! feature `simbus`, for the agents' tests, wires it where a GPIO line would be).

#[cfg(feature = "gpio")]
pub mod gpio;
#[cfg(any(test, feature = "simbus"))]
pub mod simbus;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use embedded_hal_02::blocking::delay::{DelayMs, DelayUs};
use embedded_hal_02::digital::v2::{InputPin, OutputPin};
use one_wire_bus::{Address, OneWire, OneWireError};

use super::{RawReading, ReadError, TemperatureSource, w1::family_kind};

/// Family codes read with the DS18B20 scratchpad layout (DS18B20, DS1822, DS28EA00).
const DS18B20_LIKE: [u8; 3] = [0x28, 0x22, 0x42];
/// The DS18S20's family code (9-bit register plus COUNT_REMAIN).
const DS18S20: u8 = 0x10;

/// The kernel's name of a device, `<family>-<serial>` in lower-case hex (as in
/// `/sys/bus/w1/devices`), so an id means the same sensor whichever backend reads it.
pub fn rom_id(address: u64) -> String {
    format!("{:02x}-{:012x}", address & 0xff, (address >> 8) & 0xffff_ffff_ffff)
}

/// The resolution in bits (9–12) from the configuration register (scratchpad byte 4, bits 5–6).
pub fn resolution_bits(config: u8) -> u8 {
    9 + ((config >> 5) & 0b11)
}

/// The longest conversion at a resolution, ms (DS18B20 datasheet, tCONV).
pub fn conversion_ms(bits: u8) -> u16 {
    match bits {
        9 => 94,
        10 => 188,
        11 => 375,
        _ => 750,
    }
}

/// The temperature in a DS18B20-layout scratchpad: a signed 16-bit register in 1/16 °C, whose
/// lowest 3, 2 or 1 bits are undefined at 9, 10 or 11 bit resolution and so are cleared.
pub fn decode_ds18b20(scratchpad: &[u8; 9]) -> f64 {
    let undefined = (1i16 << (12 - resolution_bits(scratchpad[4]))) - 1;
    let raw = i16::from_le_bytes([scratchpad[0], scratchpad[1]]) & !undefined;
    f64::from(raw) / 16.0
}

/// The temperature in a DS18S20 scratchpad: the register in 1/2 °C, refined with COUNT_REMAIN
/// and COUNT_PER_C as the datasheet (and the kernel) do: `T = TEMP_READ − 0.25 +
/// (COUNT_PER_C − COUNT_REMAIN) / COUNT_PER_C`, where TEMP_READ drops the 0.5 °C bit.
pub fn decode_ds18s20(scratchpad: &[u8; 9]) -> f64 {
    let raw = i16::from_le_bytes([scratchpad[0], scratchpad[1]]);
    let (remain, per_c) = (f64::from(scratchpad[6]), f64::from(scratchpad[7]));
    if per_c == 0.0 {
        return f64::from(raw) / 2.0;
    }
    f64::from(raw >> 1) - 0.25 + (per_c - remain) / per_c
}

/// The DS18x20 thermometers on a bit-banged 1-Wire bus.
pub struct OneWireSource<P, D> {
    bus: OneWire<P>,
    delay: D,
    name: &'static str,
    /// Lower-case ids of disabled sensors: not read.
    skip: BTreeSet<String>,
    /// Resolution last read from each device's configuration register.
    resolution: BTreeMap<u64, u8>,
    /// The last complete search, used while searching fails.
    last_found: Vec<Address>,
    /// True while the search fails, so that is logged once.
    search_failing: bool,
}

impl<P, D> Debug for OneWireSource<P, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // one_wire_bus::OneWire has no Debug.
        f.debug_struct("OneWireSource")
            .field("name", &self.name)
            .field("skip", &self.skip)
            .field("resolution", &self.resolution)
            .field("search_failing", &self.search_failing)
            .finish_non_exhaustive()
    }
}

impl<P, E, D> OneWireSource<P, D>
where
    P: InputPin<Error = E> + OutputPin<Error = E> + Send,
    E: Debug,
    D: DelayUs<u16> + DelayMs<u16> + Send,
{
    /// A source on the open-drain `pin`, timed by `delay` (which must busy-wait: a sleep
    /// overshoots the microsecond slots). `name` is the backend name for logs.
    pub fn new(pin: P, delay: D, name: &'static str) -> anyhow::Result<Self> {
        let bus = OneWire::new(pin)
            .map_err(|e| anyhow::anyhow!("cannot release the 1-Wire line: {}", describe(&e)))?;
        Ok(Self {
            bus,
            delay,
            name,
            skip: BTreeSet::new(),
            resolution: BTreeMap::new(),
            last_found: Vec::new(),
            search_failing: false,
        })
    }

    /// Never read these sensors (ids matched case-insensitively).
    pub fn skipping(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.skip = ids.into_iter().map(|id| id.to_ascii_lowercase()).collect();
        self
    }

    /// Every device on the bus, by the ROM search. A search disturbed by noise (a bit read
    /// both ways, a ROM CRC error) is repeated; if it keeps failing, the devices of the last
    /// complete search are used, so a noisy bus still gets its known sensors read.
    fn search(&mut self) -> Vec<Address> {
        let mut error = None;
        for _ in 0..super::READ_ATTEMPTS {
            let found: Result<Vec<Address>, _> = self.bus.devices(false, &mut self.delay).collect();
            match found {
                Ok(found) => {
                    if std::mem::take(&mut self.search_failing) {
                        tracing::info!(backend = self.name, "1-Wire search works again");
                    }
                    self.last_found.clone_from(&found);
                    return found;
                }
                Err(e) => error = Some(describe(&e)),
            }
        }
        if !std::mem::replace(&mut self.search_failing, true) {
            tracing::warn!(
                backend = self.name,
                error = error.unwrap_or_default(),
                "1-Wire search fails; reading the sensors found before"
            );
        }
        self.last_found.clone()
    }

    /// Read one device's scratchpad: reset, match ROM, Read Scratchpad, 9 bytes, CRC.
    fn read_scratchpad(&mut self, address: &Address) -> Result<[u8; 9], ReadError> {
        let io = |e: OneWireError<E>| match e {
            OneWireError::CrcMismatch => ReadError::Crc,
            e => ReadError::Io(describe(&e)),
        };
        if !self.bus.reset(&mut self.delay).map_err(io)? {
            // No presence pulse: nothing on the bus any more.
            return Err(ReadError::Missing);
        }
        self.bus.match_address(address, &mut self.delay).map_err(io)?;
        self.bus.write_byte(ds18b20::commands::READ_SCRATCHPAD, &mut self.delay).map_err(io)?;
        let mut scratchpad = [0u8; 9];
        self.bus.read_bytes(&mut scratchpad, &mut self.delay).map_err(io)?;
        if scratchpad == [0xff; 9] {
            // Nobody answered the match ROM: the line stayed high through every slot.
            return Err(ReadError::Missing);
        }
        one_wire_bus::crc::check_crc8::<E>(&scratchpad).map_err(io)?;
        Ok(scratchpad)
    }

    /// Read and decode one device's temperature (one attempt).
    fn read_temperature(&mut self, address: &Address) -> Result<f64, ReadError> {
        let scratchpad = self.read_scratchpad(address)?;
        if address.family_code() == DS18S20 {
            return Ok(decode_ds18s20(&scratchpad));
        }
        self.resolution.insert(address.0, resolution_bits(scratchpad[4]));
        Ok(decode_ds18b20(&scratchpad))
    }

    /// Read the thermometers at `addresses` after one simultaneous conversion.
    fn read_devices(&mut self, addresses: &[Address]) -> Vec<Result<f64, ReadError>> {
        if let Err(e) = ds18b20::start_simultaneous_temp_measurement(&mut self.bus, &mut self.delay)
        {
            let why = ReadError::Io(format!("cannot start a conversion: {}", describe(&e)));
            return addresses.iter().map(|_| Err(why.clone())).collect();
        }
        let wait = addresses
            .iter()
            .map(|a| conversion_ms(self.resolution.get(&a.0).copied().unwrap_or(12)))
            .max()
            .unwrap_or(0);
        self.delay.delay_ms(wait);
        addresses.iter().map(|a| super::with_retries(|| self.read_temperature(a))).collect()
    }
}

impl<P, E, D> TemperatureSource for OneWireSource<P, D>
where
    P: InputPin<Error = E> + OutputPin<Error = E> + Send,
    E: Debug,
    D: DelayUs<u16> + DelayMs<u16> + Send,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn kind_of(&self, id: &str) -> &'static str {
        super::w1::device_kind(id)
    }

    fn skip(&mut self, ids: &BTreeSet<String>) {
        self.skip.clone_from(ids);
    }

    fn read_all(&mut self) -> Vec<RawReading> {
        let mut devices: Vec<(Address, String, &'static str)> = self
            .search()
            .into_iter()
            .filter(|a| DS18B20_LIKE.contains(&a.family_code()) || a.family_code() == DS18S20)
            .map(|a| (a, rom_id(a.0)))
            .filter(|(_, id)| !self.skip.contains(id))
            .filter_map(|(a, id)| family_kind(&id).map(|kind| (a, id, kind)))
            .collect();
        if devices.is_empty() {
            return Vec::new();
        }
        // The search finds ROMs in bit order; report by id, as the w1 backend does.
        devices.sort_by(|a, b| a.1.cmp(&b.1));
        let addresses: Vec<Address> = devices.iter().map(|(a, _, _)| *a).collect();
        let values = self.read_devices(&addresses);
        devices
            .into_iter()
            .zip(values)
            .map(|((_, id, kind), value)| RawReading { id, kind: kind.to_owned(), value })
            .collect()
    }
}

/// A one-wire-bus error in words.
fn describe<E: Debug>(e: &OneWireError<E>) -> String {
    match e {
        OneWireError::BusNotHigh => {
            "the 1-Wire line stays low (check the wiring and the 4.7 kΩ pull-up to 3.3 V)".into()
        }
        OneWireError::PinError(e) => format!("GPIO error: {e:?}"),
        OneWireError::UnexpectedResponse => "unexpected response (a device came or went)".into(),
        OneWireError::FamilyCodeMismatch => "not a thermometer".into(),
        OneWireError::CrcMismatch => "CRC mismatch".into(),
        OneWireError::Timeout => "timed out".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::simbus::{Bus, SlaveModel};
    use super::*;
    use crate::screen::{ScreenRules, Screened, SensorSetting};

    /// Serials of the simulated devices.
    const A: u64 = 0x0316_a279_7bff;
    const B: u64 = 0x0416_b3a8_c1ee;

    /// The id of the DS18B20 with this serial.
    fn id(serial: u64) -> String {
        rom_id(SlaveModel::ds18b20(serial, 0.0).address())
    }

    fn values(readings: Vec<RawReading>) -> Vec<(String, Result<f64, ReadError>)> {
        readings.into_iter().map(|r| (r.id, r.value)).collect()
    }

    #[test]
    fn rom_ids_match_the_kernel_names() {
        // ROM bytes on the wire: family, serial (LSB first), CRC.
        let rom = u64::from_le_bytes([0x28, 0xff, 0x7b, 0x79, 0xa2, 0x16, 0x03, 0x8d]);
        assert_eq!(rom_id(rom), "28-0316a2797bff");
    }

    #[test]
    fn decodes_every_resolution_and_negative_values() {
        let sp = |raw: i16, config: u8| {
            let [lo, hi] = raw.to_le_bytes();
            [lo, hi, 0x4b, 0x46, config, 0xff, 0x0c, 0x10, 0]
        };
        // −10.125 °C = 0xFF5E (−162). −161 = 0xFF5F: the undefined low bits are set, as a
        // device may leave them.
        let cases = [
            (0x7f, -162, -10.125),
            (0x5f, -161, -10.125),
            (0x3f, -161, -10.25),
            (0x1f, -161, -10.5),
        ];
        for (config, raw, want) in cases {
            assert_eq!(decode_ds18b20(&sp(raw, config)), want, "config {config:#x}");
        }
        assert_eq!(decode_ds18b20(&sp(0x0550, 0x7f)), 85.0);
        assert_eq!(decode_ds18b20(&sp(0x07d0, 0x7f)), 125.0);
        assert_eq!(decode_ds18b20(&sp(-880, 0x7f)), -55.0);
        assert_eq!(decode_ds18b20(&sp(343 | 7, 0x1f)), 21.0);
        assert_eq!((9..=12).map(conversion_ms).collect::<Vec<_>>(), [94, 188, 375, 750]);
        assert_eq!([0x1f, 0x3f, 0x5f, 0x7f].map(resolution_bits), [9, 10, 11, 12]);

        // DS18S20: +25.0 (0x0032, COUNT_REMAIN 12), −10.125 (0xFFEC, COUNT_REMAIN 14), 85.
        let s20 = |raw: i16, remain: u8| {
            let [lo, hi] = raw.to_le_bytes();
            [lo, hi, 0x4b, 0x46, 0xff, 0xff, remain, 0x10, 0]
        };
        assert_eq!(decode_ds18s20(&s20(0x0032, 12)), 25.0);
        assert_eq!(decode_ds18s20(&s20(-20, 14)), -10.125);
        assert_eq!(decode_ds18s20(&s20(0x00aa, 12)), 85.0);
        assert_eq!(decode_ds18s20(&[0x33, 0, 0, 0, 0, 0, 0, 0, 0]), 25.5);
    }

    #[test]
    fn finds_two_devices_and_reads_them() -> anyhow::Result<()> {
        let bus = Bus::new(vec![SlaveModel::ds18b20(A, 21.4375), SlaveModel::ds18b20(B, -10.125)]);
        let mut source = OneWireSource::new(bus.pin(), bus.delay(), "bitbang-test")?;
        assert_eq!(source.name(), "bitbang-test");
        let got: Vec<_> = source.read_all().into_iter().map(|r| (r.id, r.kind, r.value)).collect();
        assert_eq!(
            got,
            vec![
                ("28-0316a2797bff".to_owned(), "DS18B20".to_owned(), Ok(21.4375)),
                ("28-0416b3a8c1ee".to_owned(), "DS18B20".to_owned(), Ok(-10.125)),
            ]
        );
        // The master waited for the conversion (a too-early read gives the 85 °C power-on
        // value, which the simulated devices model).
        bus.set_temperature(A, 22.0);
        assert_eq!(values(source.read_all())[0].1, Ok(22.0));
        Ok(())
    }

    #[test]
    fn every_resolution_and_its_conversion_time() -> anyhow::Result<()> {
        for (config, want, wait_ms) in
            [(0x1f, 21.0, 94), (0x3f, 21.25, 188), (0x5f, 21.375, 375), (0x7f, 21.4375, 750)]
        {
            let bus = Bus::new(vec![SlaveModel::ds18b20(A, 21.4375).with_config(config)]);
            let mut source = OneWireSource::new(bus.pin(), bus.delay(), "t")?;
            // First read: resolution unknown, the full 750 ms.
            assert_eq!(values(source.read_all())[0].1, Ok(want), "config {config:#x}");
            bus.set_temperature(A, 20.0);
            let before = bus.now_us();
            assert_eq!(values(source.read_all())[0].1, Ok(20.0), "config {config:#x}");
            // Second read waits only as long as this resolution needs (plus the bus traffic).
            let took_ms = (bus.now_us() - before) / 1000;
            assert!(took_ms >= wait_ms && took_ms < wait_ms + 60, "{config:#x}: {took_ms} ms");
        }
        Ok(())
    }

    #[test]
    fn crc_errors_are_retried_then_reported() -> anyhow::Result<()> {
        let bus = Bus::new(vec![
            SlaveModel::ds18b20(A, 19.5).corrupting(1),
            SlaveModel::ds18b20(B, 18.0).corrupting(u32::MAX),
        ]);
        let mut source = OneWireSource::new(bus.pin(), bus.delay(), "t")?;
        assert_eq!(
            values(source.read_all()),
            vec![
                ("28-0316a2797bff".to_owned(), Ok(19.5)),
                ("28-0416b3a8c1ee".to_owned(), Err(ReadError::Crc)),
            ]
        );
        assert_eq!(bus.scratchpad_reads(B), crate::READ_ATTEMPTS);
        Ok(())
    }

    #[test]
    fn missing_devices_and_an_empty_bus() -> anyhow::Result<()> {
        // No device at all: no presence pulse, no readings, no error.
        let bus = Bus::new(Vec::new());
        let mut source = OneWireSource::new(bus.pin(), bus.delay(), "t")?;
        assert_eq!(source.read_all(), Vec::new());
        // A configured sensor that is not on the bus is reported missing.
        let configured = SensorSetting { id: id(A), offset_c: 0.0, enabled: true };
        let mut screened = Screened::new(source, ScreenRules::default(), vec![configured]);
        assert_eq!(values(screened.read_all()), vec![(id(A), Err(ReadError::Missing))]);

        // A ROM nobody answers to on a bus with another device: the line stays high.
        let bus = Bus::new(vec![SlaveModel::ds18b20(B, 20.0)]);
        let mut source = OneWireSource::new(bus.pin(), bus.delay(), "t")?;
        let a = Address(SlaveModel::ds18b20(A, 0.0).address());
        assert_eq!(source.read_scratchpad(&a), Err(ReadError::Missing));

        // A device unplugged after a read: missing from then on; disabled ones are not read.
        let bus = Bus::new(vec![SlaveModel::ds18b20(A, 20.0), SlaveModel::ds18b20(B, 21.0)]);
        let source =
            OneWireSource::new(bus.pin(), bus.delay(), "t")?.skipping([id(B).to_uppercase()]);
        let mut screened = Screened::new(source, ScreenRules::default(), Vec::new());
        assert_eq!(values(screened.read_all()), vec![(id(A), Ok(20.0))]);
        assert_eq!(bus.scratchpad_reads(B), 0);
        bus.unplug(A);
        assert_eq!(values(screened.read_all()), vec![(id(A), Err(ReadError::Missing))]);
        Ok(())
    }

    #[test]
    fn a_stuck_low_line_fails_the_reads_not_the_agent() -> anyhow::Result<()> {
        let bus = Bus::new(vec![SlaveModel::ds18b20(A, 20.0)]);
        let mut source = OneWireSource::new(bus.pin(), bus.delay(), "t")?;
        assert_eq!(values(source.read_all()), vec![(id(A), Ok(20.0))]);
        bus.short_to_ground(true);
        let got = values(source.read_all());
        assert_eq!(got.len(), 1, "the devices found before are still reported");
        assert!(matches!(&got[0].1, Err(ReadError::Io(why)) if why.contains("pull-up")), "{got:?}");
        bus.short_to_ground(false);
        assert_eq!(values(source.read_all()), vec![(id(A), Ok(20.0))]);
        Ok(())
    }
}
