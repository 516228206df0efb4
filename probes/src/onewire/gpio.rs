//! The pins a bit-banged 1-Wire bus runs on, and the busy-wait delay that times it.
//!
//! - [`open_rppal`]: the Raspberry Pi's GPIO registers (`/dev/gpiomem`) through rppal. rppal
//!   has no open-drain mode, so [`RppalOpenDrain`] makes one from an `IoPin`: low = drive the
//!   output low, high = switch to input and let the pull-up raise the line. It reads the level
//!   with rppal's own `is_high`, not its embedded-hal 0.2 `InputPin`, whose `is_low` returns
//!   `is_high()` in 0.22.1.
//! - [`open_cdev`]: any board's GPIO character device (`/dev/gpiochipN`) through
//!   linux-embedded-hal, the line requested as an open-drain output (the kernel releases the
//!   line for a 1 and reads back the real level), adapted from embedded-hal 1.0 to the 0.2
//!   traits one-wire-bus needs by embedded-hal-compat.
//!
//! Both fail at start, with the fix in the message, when the hardware is not there.

use std::path::Path;
use std::time::{Duration, Instant};

use embedded_hal_02::blocking::delay::{DelayMs, DelayUs};
use embedded_hal_02::digital::v2::{InputPin, OutputPin};
use embedded_hal_compat::ReverseCompat as _;
use linux_embedded_hal::CdevPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use rppal::gpio::{Gpio, IoPin, Mode};

use super::OneWireSource;
use crate::open::{Backend, Flags};

/// Busy-waits microsecond delays: a 1-Wire slot is 60–70 µs and its sample point is a few µs
/// wide, while `thread::sleep` (and so `linux_embedded_hal::Delay`) overshoots by tens of µs.
/// Millisecond waits (the conversion) sleep: they only need to be long enough.
#[derive(Debug, Clone, Copy, Default)]
pub struct BusyDelay;

impl DelayUs<u16> for BusyDelay {
    fn delay_us(&mut self, us: u16) {
        let until = Instant::now() + Duration::from_micros(u64::from(us));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

impl DelayMs<u16> for BusyDelay {
    fn delay_ms(&mut self, ms: u16) {
        std::thread::sleep(Duration::from_millis(u64::from(ms)));
    }
}

/// An open-drain pin made from an rppal `IoPin` (see the module docs).
#[derive(Debug)]
pub struct RppalOpenDrain(IoPin);

impl OutputPin for RppalOpenDrain {
    type Error = std::convert::Infallible;

    fn set_low(&mut self) -> Result<(), Self::Error> {
        // Latch the low level first, so switching to output never drives the line high.
        self.0.set_low();
        self.0.set_mode(Mode::Output);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.set_mode(Mode::Input);
        Ok(())
    }
}

impl InputPin for RppalOpenDrain {
    type Error = std::convert::Infallible;

    fn is_high(&self) -> Result<bool, Self::Error> {
        Ok(self.0.is_high())
    }

    fn is_low(&self) -> Result<bool, Self::Error> {
        Ok(self.0.is_low())
    }
}

/// The backend on a Raspberry Pi's GPIO `pin` (BCM number). `flags` names the agent's options
/// in the errors.
pub fn open_rppal(
    pin: u8,
    flags: &Flags,
) -> anyhow::Result<OneWireSource<RppalOpenDrain, BusyDelay>> {
    use rppal::gpio::Error;
    let (w1, simulated) = (flags.choose(Backend::W1), flags.choose(Backend::Simulated));
    let gpio = Gpio::new().map_err(|e| match e {
        Error::UnknownModel => anyhow::anyhow!(
            "no Raspberry Pi GPIO found (rppal: {e}); on another board use {}, else {w1} or \
             {simulated}",
            flags.choose(Backend::BitbangCdev)
        ),
        Error::PermissionDenied(path) => anyhow::anyhow!(
            "permission denied on {path}: add the agent's user to group gpio \
             (`sudo usermod -aG gpio <user>`), or use {w1}"
        ),
        e => anyhow::anyhow!("cannot open the Raspberry Pi GPIO (rppal: {e})"),
    })?;
    let io = gpio.get(pin).map_err(|e| match e {
        Error::PinUsed(_) => anyhow::anyhow!(
            "GPIO {pin} is in use by another program or driver (with `dtoverlay=w1-gpio` the \
             kernel owns it: use {w1}, or remove the overlay to bit-bang)"
        ),
        Error::PinNotAvailable(_) => anyhow::anyhow!(
            "this Raspberry Pi has no GPIO {pin} ({} takes BCM numbers)",
            flags.option("gpio-pin")
        ),
        e => anyhow::anyhow!("cannot get GPIO {pin} (rppal: {e})"),
    })?;
    // Released (input) until the first slot; the pull-up holds the line high.
    OneWireSource::new(RppalOpenDrain(io.into_io(Mode::Input)), BusyDelay, "bitbang-rppal")
}

/// The pin type of [`open_cdev`]: a character-device line seen through embedded-hal 0.2.
pub type CdevOpenDrain = embedded_hal_compat::Reverse<std::cell::RefCell<CdevPin>>;

/// The backend on line `line` of the GPIO character device `chip` (e.g. `/dev/gpiochip0`).
/// `flags` names the agent's options in the errors, and the agent as the line's consumer.
pub fn open_cdev(
    chip: &Path,
    line: u32,
    flags: &Flags,
) -> anyhow::Result<OneWireSource<CdevOpenDrain, BusyDelay>> {
    let name = chip.display();
    let (w1, simulated) = (flags.choose(Backend::W1), flags.choose(Backend::Simulated));
    let mut gpio = Chip::new(chip).map_err(|e| {
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        match io.map(std::io::Error::kind) {
            Some(std::io::ErrorKind::NotFound) => anyhow::anyhow!(
                "no GPIO character device at {name}: point {} at one (`ls /dev/gpiochip*`), \
                 or use {w1} or {simulated}",
                flags.option("gpio-chip")
            ),
            Some(std::io::ErrorKind::PermissionDenied) => anyhow::anyhow!(
                "permission denied on {name}: add the agent's user to group gpio \
                 (`sudo usermod -aG gpio <user>`)"
            ),
            _ => anyhow::anyhow!(
                "cannot open the GPIO character device {name} ({}): {e}",
                flags.option("gpio-chip")
            ),
        }
    })?;
    let gpio_line = gpio.get_line(line).map_err(|e| {
        anyhow::anyhow!(
            "{name} has no line {line} ({e}); `gpioinfo` lists the lines ({} takes a line offset)",
            flags.option("gpio-pin")
        )
    })?;
    let flags_out = LineRequestFlags::OUTPUT | LineRequestFlags::OPEN_DRAIN;
    // Requested released (1), so the bus idles high.
    let handle = gpio_line.request(flags_out, 1, flags.agent).map_err(|e| {
        // gpio-cdev keeps the errno in a private field: its text is all there is to go on.
        if e.to_string().contains("EBUSY") {
            anyhow::anyhow!(
                "line {line} of {name} is in use by another program or driver (with \
                 `dtoverlay=w1-gpio` the kernel owns it: use {w1}, or remove the overlay)"
            )
        } else {
            anyhow::anyhow!("cannot request line {line} of {name} as an open-drain output: {e}")
        }
    })?;
    let pin = CdevPin::new(handle).map_err(|e| anyhow::anyhow!("line {line} of {name}: {e}"))?;
    OneWireSource::new(pin.reverse_cell(), BusyDelay, "bitbang-cdev")
}

/// Prove the adapter used by [`open_cdev`] turns embedded-hal 1.0 calls into 0.2 ones the
/// way one-wire-bus expects; the pin itself needs a real GPIO chip.
#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Eh1Pin {
        level: bool,
        writes: Vec<bool>,
    }

    impl embedded_hal_compat::eh1_0::digital::ErrorType for Eh1Pin {
        type Error = std::convert::Infallible;
    }

    impl embedded_hal_compat::eh1_0::digital::OutputPin for Eh1Pin {
        fn set_low(&mut self) -> Result<(), Self::Error> {
            self.level = false;
            self.writes.push(false);
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Self::Error> {
            self.level = true;
            self.writes.push(true);
            Ok(())
        }
    }

    impl embedded_hal_compat::eh1_0::digital::InputPin for Eh1Pin {
        fn is_high(&mut self) -> Result<bool, Self::Error> {
            Ok(self.level)
        }
        fn is_low(&mut self) -> Result<bool, Self::Error> {
            Ok(!self.level)
        }
    }

    #[test]
    fn compat_adapter_keeps_levels() -> Result<(), std::convert::Infallible> {
        let mut pin = Eh1Pin::default().reverse_cell();
        OutputPin::set_high(&mut pin)?;
        assert!(InputPin::is_high(&pin)? && !InputPin::is_low(&pin)?);
        OutputPin::set_low(&mut pin)?;
        assert!(InputPin::is_low(&pin)? && !InputPin::is_high(&pin)?);
        assert_eq!(pin.inner().borrow().writes, [true, false]);
        Ok(())
    }

    #[test]
    fn busy_delay_waits_at_least_as_asked() {
        let mut delay = BusyDelay;
        let start = Instant::now();
        DelayUs::delay_us(&mut delay, 200);
        assert!(start.elapsed() >= Duration::from_micros(200));
        let start = Instant::now();
        DelayMs::delay_ms(&mut delay, 2);
        assert!(start.elapsed() >= Duration::from_millis(2));
    }

    #[test]
    fn missing_gpio_fails_with_the_fix() -> anyhow::Result<()> {
        let flags = Flags { agent: "hearth-relay-agent", backend: "--probe", prefix: "--probe-" };
        let err =
            open_cdev(Path::new("/nonexistent/gpiochip9"), 4, &flags).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("no GPIO character device")), "{err:?}");
        // The agent's own flags: the chip's, and the backends to use instead.
        assert!(err.as_deref().is_some_and(|e| e.contains("point --probe-gpio-chip at one")));
        assert!(err.is_some_and(|e| e.contains("--probe w1")));
        // Not a GPIO chip: the ioctl fails, with the device named.
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("gpiochip0");
        std::fs::write(&file, "")?;
        let err = open_cdev(&file, 4, &flags).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("gpiochip0")));
        Ok(())
    }
}
