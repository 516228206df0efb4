//! The GPIO relay backends: rppal (Raspberry Pi) and the Linux GPIO character device (any
//! board). Both claim every output's line at start already at the level of its safe state, so a
//! relay never clicks on while the agent starts, and both invert the level for active-low relay
//! boards here, so nothing above [`RelayBank`] knows about wiring.
//!
//! What happens to the lines when the process ends: rppal's pins are told not to reset on drop
//! and the character device keeps a released line's last value on the boards we know, so after
//! a clean stop (every output driven to its safe state first) the relays stay safe. After a
//! crash the lines keep their last level until systemd restarts the agent, whose first act is
//! to drive the safe states again; wire boards so that a floating input means "off" where you
//! can (most opto-isolated boards have that pull-up).

use std::path::{Path, PathBuf};

use linux_embedded_hal::gpio_cdev::{Chip, LineHandle, LineRequestFlags};

use super::{HwError, RelayBank};
use crate::config::OutputConfig;

/// The consumer name the character device shows for our lines (`gpioinfo`).
const CONSUMER: &str = "hearth-relay-agent";

/// The line level (true = high) that puts an output `on` (energised) or off, given its wiring.
pub fn line_level(on: bool, active_low: bool) -> bool {
    on != active_low
}

/// The pin of a validated output (the configuration requires one for GPIO backends).
fn pin_of(output: &OutputConfig) -> Result<u32, HwError> {
    output.pin.ok_or_else(|| HwError::Device(format!("output {:?} has no `pin`", output.id)))
}

/// Raspberry Pi GPIO through rppal's `/dev/gpiomem` mapping. Pins are BCM numbers.
pub struct RppalBank {
    pins: Vec<(String, rppal::gpio::OutputPin, bool)>,
}

impl std::fmt::Debug for RppalBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pins: Vec<_> = self.pins.iter().map(|(id, pin, _)| (id, pin.pin())).collect();
        f.debug_struct("RppalBank").field("pins", &pins).finish()
    }
}

impl RppalBank {
    /// Claim every output's pin as an output at its safe level.
    pub fn open(outputs: &[OutputConfig]) -> Result<Self, HwError> {
        let gpio = rppal::gpio::Gpio::new().map_err(rppal_error)?;
        let mut pins = Vec::with_capacity(outputs.len());
        for output in outputs {
            let pin = pin_of(output)?;
            let number = u8::try_from(pin).map_err(|_| {
                HwError::Device(format!("output {:?}: pin {pin} is not a BCM GPIO", output.id))
            })?;
            let claimed = gpio.get(number).map_err(|e| {
                HwError::Device(format!("output {:?}: GPIO {pin}: {}", output.id, rppal_error(e)))
            })?;
            let high = line_level(output.safe_state.is_on(), output.active_low);
            let mut out = if high { claimed.into_output_high() } else { claimed.into_output_low() };
            // Keep the (safe) level when the agent exits rather than floating the pin.
            out.set_reset_on_drop(false);
            pins.push((output.id.clone(), out, output.active_low));
        }
        Ok(Self { pins })
    }

    fn pin(&mut self, id: &str) -> Result<&mut (String, rppal::gpio::OutputPin, bool), HwError> {
        self.pins
            .iter_mut()
            .find(|(pid, _, _)| pid == id)
            .ok_or_else(|| HwError::UnknownOutput(id.to_owned()))
    }
}

/// rppal's errors, with the fix named.
fn rppal_error(e: rppal::gpio::Error) -> HwError {
    use rppal::gpio::Error;
    HwError::Device(match e {
        Error::UnknownModel => "no Raspberry Pi GPIO found (rppal: unknown model): on another \
            board use --hardware gpio-cdev, without relays --hardware simulated"
            .to_owned(),
        Error::PermissionDenied(path) => format!(
            "permission denied on {path}: run the agent as a user in the `gpio` group \
             (`usermod -aG gpio <user>`, or SupplementaryGroups=gpio in its systemd unit)"
        ),
        Error::PinUsed(pin) => format!("GPIO {pin} is already in use by this agent"),
        Error::PinNotAvailable(pin) => format!("GPIO {pin} does not exist on this Raspberry Pi"),
        other => format!("Raspberry Pi GPIO: {other}"),
    })
}

impl RelayBank for RppalBank {
    fn name(&self) -> &'static str {
        "rppal"
    }

    fn set(&mut self, id: &str, on: bool) -> Result<(), HwError> {
        let (_, pin, active_low) = self.pin(id)?;
        if line_level(on, *active_low) {
            pin.set_high();
        } else {
            pin.set_low();
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<bool, HwError> {
        let (_, pin, active_low) = self
            .pins
            .iter()
            .find(|(pid, _, _)| pid == id)
            .ok_or_else(|| HwError::UnknownOutput(id.to_owned()))?;
        Ok(pin.is_set_high() != *active_low)
    }

    fn healthy(&self) -> Result<(), HwError> {
        // Memory-mapped registers: once mapped, writes cannot fail.
        Ok(())
    }
}

/// The Linux GPIO character device (`/dev/gpiochipN`). Pins are line offsets on that chip.
#[derive(Debug)]
pub struct CdevBank {
    chip: PathBuf,
    lines: Vec<(String, LineHandle, bool)>,
}

impl CdevBank {
    /// Open `chip` and claim every output's line as an output at its safe level.
    pub fn open(chip: &Path, outputs: &[OutputConfig]) -> Result<Self, HwError> {
        // Open it ourselves first: the crate's error hides the io::ErrorKind we name fixes by.
        if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(chip) {
            let shown = chip.display();
            return Err(HwError::Device(match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "no GPIO chip at {shown}: list this board's chips with `gpiodetect` and set \
                     --gpio-chip, or use --hardware simulated"
                ),
                std::io::ErrorKind::PermissionDenied => format!(
                    "permission denied on {shown}: run the agent as a user in the `gpio` group \
                     (or SupplementaryGroups=gpio in its systemd unit)"
                ),
                _ => format!("cannot open {shown}: {e}"),
            }));
        }
        let mut handle = Chip::new(chip).map_err(|e| {
            HwError::Device(format!("{} is not a usable GPIO chip: {e}", chip.display()))
        })?;
        let mut lines = Vec::with_capacity(outputs.len());
        for output in outputs {
            let offset = pin_of(output)?;
            if offset >= handle.num_lines() {
                return Err(HwError::Device(format!(
                    "output {:?}: line {offset} does not exist on {} ({}, {} lines)",
                    output.id,
                    chip.display(),
                    handle.label(),
                    handle.num_lines()
                )));
            }
            let high = line_level(output.safe_state.is_on(), output.active_low);
            let line = handle
                .get_line(offset)
                .and_then(|line| line.request(LineRequestFlags::OUTPUT, u8::from(high), CONSUMER))
                .map_err(|e| {
                    HwError::Device(format!(
                        "output {:?}: cannot claim line {offset} of {}: {e} (another program \
                         may hold it: `gpioinfo` shows the consumer)",
                        output.id,
                        chip.display()
                    ))
                })?;
            lines.push((output.id.clone(), line, output.active_low));
        }
        Ok(Self { chip: chip.to_owned(), lines })
    }

    fn line(&self, id: &str) -> Result<&(String, LineHandle, bool), HwError> {
        self.lines
            .iter()
            .find(|(lid, _, _)| lid == id)
            .ok_or_else(|| HwError::UnknownOutput(id.to_owned()))
    }
}

impl RelayBank for CdevBank {
    fn name(&self) -> &'static str {
        "gpio-cdev"
    }

    fn set(&mut self, id: &str, on: bool) -> Result<(), HwError> {
        let chip = self.chip.display().to_string();
        let (_, line, active_low) = self.line(id)?;
        line.set_value(u8::from(line_level(on, *active_low)))
            .map_err(|e| HwError::Device(format!("setting output {id:?} on {chip}: {e}")))
    }

    fn get(&self, id: &str) -> Result<bool, HwError> {
        let (_, line, active_low) = self.line(id)?;
        let value =
            line.get_value().map_err(|e| HwError::Device(format!("reading output {id:?}: {e}")))?;
        Ok((value != 0) != *active_low)
    }

    fn healthy(&self) -> Result<(), HwError> {
        // Reading every line back proves the chip still answers (a USB GPIO expander can go).
        for (id, _, _) in &self.lines {
            self.get(id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_outputs;

    #[test]
    fn active_low_inverts_the_level() {
        assert!(line_level(true, false));
        assert!(!line_level(false, false));
        assert!(!line_level(true, true), "active-low: on is a low line");
        assert!(line_level(false, true));
    }

    fn with_pins() -> Vec<OutputConfig> {
        default_outputs()
            .into_iter()
            .zip([17, 27, 22])
            .map(|(o, pin)| OutputConfig { pin: Some(pin), active_low: true, ..o })
            .collect()
    }

    fn is_a_pi() -> bool {
        std::fs::read_to_string("/proc/device-tree/model").is_ok_and(|m| m.contains("Raspberry Pi"))
    }

    #[test]
    fn rppal_off_a_pi_names_the_fix() {
        if is_a_pi() {
            // On a Pi this opens real pins: not something a unit test may do.
            return;
        }
        let err = RppalBank::open(&with_pins()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--hardware simulated"), "{err}");
    }

    #[test]
    fn cdev_without_a_chip_names_the_fix() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("gpiochip9");
        let err = CdevBank::open(&missing, &with_pins()).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("gpiodetect") && err.contains("--hardware simulated"), "{err}");
        // A file that is not a chip: the ioctl fails, with the path in the message.
        let not_a_chip = dir.path().join("not-a-chip");
        std::fs::write(&not_a_chip, b"")?;
        let err = CdevBank::open(&not_a_chip, &with_pins()).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("is not a usable GPIO chip"), "{err}");
        Ok(())
    }
}
