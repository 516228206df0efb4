//! A simulated 1-Wire bus at the level of the wire, so one-wire-bus's real code runs against it.
//!
//! The pin and the delay share a virtual clock: delays advance it, nothing else does. The line
//! is the wired-AND of the master and the slaves (low when anyone pulls it low). Slaves act on
//! the master's edges as the DS18B20 datasheet describes:
//! - a low of 480 µs or more is a reset: every slave answers with a presence pulse (low from
//!   15–60 µs after the release, for 60–240 µs; here 20–140 µs);
//! - any other falling edge starts a time slot. A slave that is sending a 0 holds the line low
//!   for 30 µs from the edge (the master samples at ~15 µs); a slave that is receiving samples
//!   the line 30 µs after the edge (a master's 1 is a ~6 µs low, a 0 a ~60 µs low).
//!
//! Slaves implement Search ROM (with the bit/complement/direction exchange, so several devices
//! resolve by the search algorithm), Match ROM, Skip ROM, Convert T (timed by the resolution;
//! until it finishes the scratchpad holds the previous value, 85 °C after power-on) and Read
//! Scratchpad (with its CRC8), and can corrupt a transfer on demand.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_hal_02::blocking::delay::{DelayMs, DelayUs};
use embedded_hal_02::digital::v2::{InputPin, OutputPin};
use one_wire_bus::crc::crc8;

/// A low this long or longer is a reset, µs (the master sends 480).
const RESET_US: u64 = 480;
/// A receiving slave samples this long after the falling edge, µs.
const SAMPLE_US: u64 = 30;
/// A sending slave holds a 0 this long after the falling edge, µs.
const HOLD_US: u64 = 30;

/// The wire, its clock and the slaves on it.
#[derive(Debug, Default)]
struct Wire {
    now_us: u64,
    master_low: bool,
    fell_at: u64,
    shorted: bool,
    slaves: Vec<SlaveModel>,
}

impl Wire {
    fn master_falls(&mut self) {
        if !self.master_low {
            self.master_low = true;
            self.fell_at = self.now_us;
            let now = self.now_us;
            self.slaves.iter_mut().for_each(|s| s.on_fall(now));
        }
    }

    fn master_releases(&mut self) {
        if self.master_low {
            self.master_low = false;
            let (now, low_for) = (self.now_us, self.now_us - self.fell_at);
            self.slaves.iter_mut().for_each(|s| s.on_release(now, low_for));
        }
    }

    fn line_low(&self) -> bool {
        self.shorted || self.master_low || self.slaves.iter().any(|s| s.pulls_low(self.now_us))
    }
}

/// A handle on the simulated bus, for the test to set things up and look inside.
#[derive(Debug, Clone)]
pub struct Bus(Arc<Mutex<Wire>>);

impl Bus {
    pub fn new(slaves: Vec<SlaveModel>) -> Self {
        Self(Arc::new(Mutex::new(Wire { slaves, ..Wire::default() })))
    }

    fn wire(&self) -> MutexGuard<'_, Wire> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The master's open-drain pin.
    pub fn pin(&self) -> SimPin {
        SimPin(self.clone())
    }

    /// The master's delay, which advances the virtual clock.
    pub fn delay(&self) -> SimDelay {
        SimDelay(self.clone())
    }

    pub fn now_us(&self) -> u64 {
        self.wire().now_us
    }

    fn slave(&self, address: u64, f: impl FnMut(&mut SlaveModel)) {
        let mut wire = self.wire();
        wire.slaves
            .iter_mut()
            .filter(|s| s.address() & 0x00ff_ffff_ffff_ff00 == address << 8)
            .for_each(f);
    }

    /// What the device with this serial measures at its next conversion.
    pub fn set_temperature(&self, serial: u64, celsius: f64) {
        self.slave(serial, |s| s.temp_c = celsius);
    }

    /// Take the device with this serial off the bus.
    pub fn unplug(&self, serial: u64) {
        self.slave(serial, |s| s.plugged = false);
    }

    /// How many times the device with this serial sent its scratchpad.
    pub fn scratchpad_reads(&self, serial: u64) -> u32 {
        let mut n = 0;
        self.slave(serial, |s| n = s.scratchpad_reads);
        n
    }

    /// Hold the line low (a short, or a missing pull-up), or stop.
    pub fn short_to_ground(&self, shorted: bool) {
        self.wire().shorted = shorted;
    }
}

/// The simulated bus wired to one GPIO line, where [`crate::open::Board`] would open a real one:
/// an agent's tests open it through [`crate::open::ProbeOptions::open_wired`] with the agent's
/// own options, and asking for any other line fails as a board without it would.
#[derive(Debug, Clone)]
pub struct OnLine {
    /// The line (the BCM number or the character device's line offset) the bus is on.
    pub line: u32,
    /// The bus.
    pub bus: Bus,
}

impl crate::open::Wiring for OnLine {
    fn one_wire(
        &self,
        line: &crate::open::Line,
        _flags: &crate::open::Flags,
        skip: Vec<String>,
    ) -> anyhow::Result<Box<dyn crate::TemperatureSource>> {
        let asked = match line {
            crate::open::Line::Rppal { pin } => u32::from(*pin),
            crate::open::Line::Cdev { line, .. } => *line,
        };
        if asked != self.line {
            anyhow::bail!("no 1-Wire bus on GPIO {asked} (the simulated one is on {})", self.line);
        }
        let source = super::OneWireSource::new(self.bus.pin(), self.bus.delay(), "bitbang-simbus")?;
        Ok(Box::new(source.skipping(skip)))
    }
}

/// The master's pin: open drain, so "high" releases the line to the pull-up.
#[derive(Debug)]
pub struct SimPin(Bus);

impl OutputPin for SimPin {
    type Error = Infallible;

    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.wire().master_falls();
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.wire().master_releases();
        Ok(())
    }
}

impl InputPin for SimPin {
    type Error = Infallible;

    fn is_high(&self) -> Result<bool, Infallible> {
        Ok(!self.0.wire().line_low())
    }

    fn is_low(&self) -> Result<bool, Infallible> {
        Ok(self.0.wire().line_low())
    }
}

/// The master's delay: advances the virtual clock.
#[derive(Debug)]
pub struct SimDelay(Bus);

impl DelayUs<u16> for SimDelay {
    fn delay_us(&mut self, us: u16) {
        self.0.wire().now_us += u64::from(us);
    }
}

impl DelayMs<u16> for SimDelay {
    fn delay_ms(&mut self, ms: u16) {
        self.0.wire().now_us += u64::from(ms) * 1000;
    }
}

/// Where a slave is in a transaction.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Waiting for a reset; ignores slots.
    Idle,
    /// Receiving the ROM command.
    RomCommand { byte: u8, bits: u8 },
    /// Search ROM at bit `bit`: send it, send its complement, then read the master's choice.
    Search { bit: u8, step: SearchStep },
    /// Receiving the 64-bit ROM of a Match ROM.
    MatchRom { rom: u64, bits: u8 },
    /// Selected: receiving the function command.
    Function { byte: u8, bits: u8 },
    /// Converting until the given time: read slots answer 0 while busy, then 1.
    Converting,
    /// Sending bytes, LSB first.
    Sending { data: Vec<u8>, bit: usize },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SearchStep {
    Bit,
    Complement,
    Direction,
}

/// A DS18B20 on the simulated bus.
#[derive(Debug, Clone)]
pub struct SlaveModel {
    rom: [u8; 8],
    /// What the next conversion measures, °C.
    temp_c: f64,
    /// The configuration register (resolution in bits 5–6).
    config: u8,
    /// The temperature register: 0x0550 (85 °C) until the first conversion completes.
    register: i16,
    /// When the running conversion completes, µs.
    converting_until: Option<u64>,
    /// Scratchpad transfers still to corrupt (`u32::MAX`: all).
    corrupt: u32,
    scratchpad_reads: u32,
    plugged: bool,
    state: State,
    /// The line is held low by this slave during [from, to) µs.
    pull: Option<(u64, u64)>,
}

impl SlaveModel {
    /// A DS18B20 with the 48-bit `serial`, measuring `temp_c`, at 12 bit.
    pub fn ds18b20(serial: u64, temp_c: f64) -> Self {
        let mut rom = [0u8; 8];
        rom[0] = 0x28;
        rom[1..7].copy_from_slice(&serial.to_le_bytes()[..6]);
        rom[7] = crc8(&rom[..7]);
        Self {
            rom,
            temp_c,
            config: 0x7f,
            register: 0x0550,
            converting_until: None,
            corrupt: 0,
            scratchpad_reads: 0,
            plugged: true,
            state: State::Idle,
            pull: None,
        }
    }

    /// With another configuration register (0x1f, 0x3f, 0x5f, 0x7f: 9–12 bit).
    pub fn with_config(mut self, config: u8) -> Self {
        self.config = config;
        self
    }

    /// Flip a bit in the next `n` scratchpad transfers (`u32::MAX`: in all).
    pub fn corrupting(mut self, n: u32) -> Self {
        self.corrupt = n;
        self
    }

    /// The 64-bit ROM as one-wire-bus's `Address` holds it.
    pub fn address(&self) -> u64 {
        u64::from_le_bytes(self.rom)
    }

    fn bits(&self) -> u8 {
        9 + ((self.config >> 5) & 0b11)
    }

    fn scratchpad(&mut self) -> Vec<u8> {
        let [lo, hi] = self.register.to_le_bytes();
        let mut sp = vec![lo, hi, 0x4b, 0x46, self.config, 0xff, 0x0c, 0x10];
        sp.push(crc8(&sp));
        self.scratchpad_reads += 1;
        if self.corrupt > 0 {
            sp[0] ^= 0x04;
            if self.corrupt != u32::MAX {
                self.corrupt -= 1;
            }
        }
        sp
    }

    /// Finish a conversion whose time is up: the register takes the measured value, truncated
    /// to the resolution, with the undefined low bits set (the decoder must clear them).
    fn settle(&mut self, now: u64) {
        if self.converting_until.is_some_and(|end| now >= end) {
            self.converting_until = None;
            let undefined = (1i16 << (12 - self.bits())) - 1;
            // Saturating cast; the tests' temperatures are well within the register.
            let raw = (self.temp_c * 16.0).floor() as i16;
            self.register = (raw & !undefined) | undefined;
        }
    }

    fn pulls_low(&self, now: u64) -> bool {
        self.plugged && self.pull.is_some_and(|(from, to)| from <= now && now < to)
    }

    /// A time slot starts: a sending slave puts its bit on the line now (a 0 is a pull).
    fn on_fall(&mut self, now: u64) {
        self.settle(now);
        let rom = self.address();
        let send = match &self.state {
            State::Search { bit, step: SearchStep::Bit } => Some((rom >> *bit) & 1 == 1),
            State::Search { bit, step: SearchStep::Complement } => Some((rom >> *bit) & 1 == 0),
            State::Converting => Some(self.converting_until.is_none()),
            State::Sending { data, bit } => {
                Some(data.get(*bit / 8).is_none_or(|byte| (byte >> (*bit % 8)) & 1 == 1))
            }
            _ => None,
        };
        if send == Some(false) {
            self.pull = Some((now, now + HOLD_US));
        }
    }

    /// The master released the line after holding it low for `low_for` µs: the end of a reset
    /// or of a time slot.
    fn on_release(&mut self, now: u64, low_for: u64) {
        if !self.plugged {
            return;
        }
        if low_for >= RESET_US {
            self.state = State::RomCommand { byte: 0, bits: 0 };
            self.pull = Some((now + 20, now + 140));
            return;
        }
        // A sending slave's slot is over: on to its next bit. (Only now: the slot's own
        // release must not be taken for the master's answer.)
        match &mut self.state {
            State::Search { step: step @ SearchStep::Bit, .. } => {
                *step = SearchStep::Complement;
                return;
            }
            State::Search { step: step @ SearchStep::Complement, .. } => {
                *step = SearchStep::Direction;
                return;
            }
            State::Sending { bit, .. } => {
                *bit += 1;
                return;
            }
            _ => {}
        }
        // A receiving slave samples the line SAMPLE_US after the edge: still low means 0.
        let bit = low_for <= SAMPLE_US;
        let rom = self.address();
        self.state = match std::mem::replace(&mut self.state, State::Idle) {
            State::RomCommand { byte, bits } => match receive(byte, bits, bit) {
                Ok(0xf0) => State::Search { bit: 0, step: SearchStep::Bit },
                Ok(0x55) => State::MatchRom { rom: 0, bits: 0 },
                Ok(0xcc) => State::Function { byte: 0, bits: 0 },
                Ok(_) => State::Idle,
                Err((byte, bits)) => State::RomCommand { byte, bits },
            },
            State::Search { bit: index, step: SearchStep::Direction } => {
                if ((rom >> index) & 1 == 1) != bit {
                    State::Idle
                } else if index == 63 {
                    State::Function { byte: 0, bits: 0 }
                } else {
                    State::Search { bit: index + 1, step: SearchStep::Bit }
                }
            }
            State::MatchRom { rom: got, bits } => {
                let got = got | (u64::from(bit) << bits);
                match bits {
                    63 if got == rom => State::Function { byte: 0, bits: 0 },
                    63 => State::Idle,
                    _ => State::MatchRom { rom: got, bits: bits + 1 },
                }
            }
            State::Function { byte, bits } => match receive(byte, bits, bit) {
                Ok(0x44) => {
                    self.converting_until =
                        Some(now + u64::from(super::conversion_ms(self.bits())) * 1000);
                    State::Converting
                }
                Ok(0xbe) => State::Sending { data: self.scratchpad(), bit: 0 },
                Ok(_) => State::Idle,
                Err((byte, bits)) => State::Function { byte, bits },
            },
            other => other,
        };
    }
}

/// Shift a received bit into a byte, LSB first: Ok(byte) when complete.
fn receive(byte: u8, bits: u8, bit: bool) -> Result<u8, (u8, u8)> {
    let byte = byte | (u8::from(bit) << bits);
    if bits == 7 { Ok(byte) } else { Err((byte, bits + 1)) }
}
