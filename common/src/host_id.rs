//! The stable id a host reports under: the configured one (`--host-id`, its environment
//! variable or `host_id` in the config file) when set, else the Raspberry Pi serial, else
//! `/etc/machine-id`. Sensor ids are scoped by nothing but themselves, so the host id only has
//! to be stable per device, not globally meaningful.

use std::path::Path;

use hearth_proto::agents::{MAX_HOST_ID_CHARS, is_host_id_char};

/// Where the host id came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Set in the configuration.
    Configured,
    /// The `Serial` line of `/proc/cpuinfo` (Raspberry Pi).
    PiSerial,
    /// `/etc/machine-id`.
    MachineId,
}

/// Determine the host id: `configured` wins, then the Pi serial in `cpuinfo`, then
/// `machine_id`. The paths are parameters so tests use fixture files.
pub fn resolve(
    configured: Option<&str>,
    cpuinfo: &Path,
    machine_id: &Path,
) -> anyhow::Result<(String, Source)> {
    if let Some(id) = configured {
        validate(id)?;
        return Ok((id.to_owned(), Source::Configured));
    }
    if let Ok(text) = std::fs::read_to_string(cpuinfo)
        && let Some(serial) = pi_serial(&text)
    {
        return Ok((serial, Source::PiSerial));
    }
    if let Ok(text) = std::fs::read_to_string(machine_id) {
        let id = text.trim();
        if !id.is_empty() && validate(id).is_ok() {
            return Ok((id.to_owned(), Source::MachineId));
        }
    }
    anyhow::bail!(
        "cannot determine a host id: no Pi serial in {}, no {}; set one with --host-id",
        cpuinfo.display(),
        machine_id.display()
    )
}

/// The `Serial` of a Pi's `/proc/cpuinfo`, without the leading zeros; None when absent or zero
/// (some kernels print a zero serial on non-Pi boards).
fn pi_serial(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key.trim() != "Serial" {
            return None;
        }
        let serial = value.trim().trim_start_matches('0');
        (!serial.is_empty() && serial.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| serial.to_ascii_lowercase())
    })
}

/// A host id is 1 to [`MAX_HOST_ID_CHARS`] characters of `[A-Za-z0-9_-]`: it appears in URLs
/// and credentials.
pub fn validate(id: &str) -> anyhow::Result<()> {
    let chars = id.chars().count();
    if !(1..=MAX_HOST_ID_CHARS).contains(&chars) {
        anyhow::bail!("host id must be 1 to {MAX_HOST_ID_CHARS} characters, got {chars}");
    }
    if let Some(c) = id.chars().find(|c| !is_host_id_char(*c)) {
        anyhow::bail!("host id {id:?} contains {c:?}; allowed are letters, digits, '-' and '_'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_serial_is_found_and_trimmed() {
        let text = "processor\t: 0\nHardware\t: BCM2835\nRevision\t: 9000c1\nSerial\t\t: 00000000a1b2c3d4\nModel\t\t: Raspberry Pi Zero W Rev 1.1\n";
        assert_eq!(pi_serial(text).as_deref(), Some("a1b2c3d4"));
        assert_eq!(pi_serial("Serial : 0000000000000000\n"), None);
        assert_eq!(pi_serial("model name : x86\n"), None);
    }

    #[test]
    fn resolution_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cpu = dir.path().join("cpuinfo");
        let mid = dir.path().join("machine-id");
        std::fs::write(&mid, "0123456789abcdef0123456789abcdef\n")?;
        assert_eq!(resolve(None, &cpu, &mid)?.1, Source::MachineId);
        std::fs::write(&cpu, "Serial : 00000000deadbeef\n")?;
        assert_eq!(resolve(None, &cpu, &mid)?, ("deadbeef".to_owned(), Source::PiSerial));
        assert_eq!(resolve(Some("kitchen"), &cpu, &mid)?.1, Source::Configured);
        assert!(resolve(Some("bad id"), &cpu, &mid).is_err());
        std::fs::remove_file(&mid)?;
        std::fs::remove_file(&cpu)?;
        assert!(resolve(None, &cpu, &mid).is_err());
        Ok(())
    }
}
