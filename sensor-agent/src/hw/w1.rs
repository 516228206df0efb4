//! The kernel 1-Wire driver's sysfs files (drivers/w1/slaves/w1_therm.c).
//!
//! Each thermometer is a directory `<family>-<serial>` under the devices directory (normally
//! `/sys/bus/w1/devices`, symlinks into the bus master). Its `w1_slave` file holds two lines:
//! ```text
//! 01 01 4b 46 7f ff 0f 10 e3 : crc=e3 YES
//! 01 01 4b 46 7f ff 0f 10 e3 t=16062
//! ```
//! Older kernels print `crc=.. NO` on a CRC error; newer ones return an empty file. Some kernels
//! also offer `temperature` (`"%d\n"` millidegrees, empty on error), used when `w1_slave` is
//! absent. Every read starts a conversion that blocks ~750 ms, so devices are read in parallel.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{RawReading, ReadError, TemperatureSource};

/// The sensor type of a 1-Wire device name, from its family code; None for anything that is
/// not a thermometer (bus masters, EEPROMs, ...).
pub fn family_kind(device: &str) -> Option<&'static str> {
    let (family, serial) = device.split_once('-')?;
    if serial.is_empty() {
        return None;
    }
    match family.to_ascii_lowercase().as_str() {
        "10" => Some("DS18S20"),
        "22" => Some("DS1822"),
        "28" => Some("DS18B20"),
        "3b" => Some("MAX31850"),
        "42" => Some("DS28EA00"),
        _ => None,
    }
}

/// Reads every thermometer in a 1-Wire devices directory.
#[derive(Debug)]
pub struct W1Source {
    dir: PathBuf,
    /// True while listing the directory fails, so the failure is logged once, not every read.
    listing_failed: bool,
}

impl W1Source {
    /// A reader of the devices directory `dir`. Fails when `dir` is not a directory, with a
    /// message naming the fix.
    pub fn open(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            anyhow::bail!(
                "no 1-Wire devices directory at {}: enable the kernel driver (on a Raspberry Pi \
                 add `dtoverlay=w1-gpio` to /boot/firmware/config.txt and reboot), point \
                 --w1-dir at it, or use --hardware simulated",
                dir.display()
            );
        }
        Ok(Self { dir, listing_failed: false })
    }

    /// The thermometers present now, sorted by id: (id, kind).
    pub fn devices(&self) -> std::io::Result<Vec<(String, &'static str)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            // An entry that vanishes while listing is simply not there any more.
            let Ok(entry) = entry else { continue };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if let Some(kind) = family_kind(&name) {
                found.push((name, kind));
            }
        }
        found.sort();
        Ok(found)
    }
}

impl TemperatureSource for W1Source {
    fn name(&self) -> &'static str {
        "w1"
    }

    fn read_all(&mut self) -> Vec<RawReading> {
        let devices = match self.devices() {
            Ok(d) => {
                if std::mem::take(&mut self.listing_failed) {
                    tracing::info!(dir = %self.dir.display(), "1-Wire devices directory readable again");
                }
                d
            }
            Err(e) => {
                if !std::mem::replace(&mut self.listing_failed, true) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list 1-Wire devices");
                }
                return Vec::new();
            }
        };
        let values = read_parallel(&self.dir, &devices);
        devices
            .into_iter()
            .zip(values)
            .map(|((id, kind), value)| RawReading { id, kind: kind.to_owned(), value })
            .collect()
    }
}

/// Read each device on its own thread: each read blocks for a whole conversion (~750 ms), so
/// reading them one after another would take N × 750 ms.
fn read_parallel(dir: &Path, devices: &[(String, &'static str)]) -> Vec<Result<f64, ReadError>> {
    if let [(id, _)] = devices {
        return vec![read_device(&dir.join(id))];
    }
    std::thread::scope(|scope| {
        let pending: Vec<_> = devices
            .iter()
            .map(|(id, _)| {
                let path = dir.join(id);
                let spawned = std::thread::Builder::new()
                    .name(format!("w1-{id}"))
                    // The thread only reads a small file; a small stack keeps the agent's
                    // memory footprint small on a Pi Zero.
                    .stack_size(128 * 1024)
                    .spawn_scoped(scope, {
                        let path = path.clone();
                        move || read_device(&path)
                    });
                (path, spawned)
            })
            .collect();
        pending
            .into_iter()
            .map(|(path, spawned)| match spawned {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(ReadError::Io("reader thread panicked".to_owned()))),
                // No thread to be had (out of memory or tasks): read it here, slower but read.
                Err(_) => read_device(&path),
            })
            .collect()
    })
}

/// Read one device directory: `w1_slave`, else `temperature`. The single place a reading is
/// taken, so retries and plausibility checks can wrap it.
pub fn read_device(device_dir: &Path) -> Result<f64, ReadError> {
    match read_text(&device_dir.join("w1_slave")) {
        Ok(text) => parse_w1_slave(&text),
        Err(ReadError::Missing) => parse_temperature(&read_text(&device_dir.join("temperature"))?),
        Err(e) => Err(e),
    }
}

fn read_text(path: &Path) -> Result<String, ReadError> {
    match std::fs::read(path) {
        // Lossy: garbage bytes then fail to parse, with the text in the error.
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(ReadError::Missing),
        Err(e) => Err(ReadError::Io(e.to_string())),
    }
}

/// Parse the two-line `w1_slave` format.
pub fn parse_w1_slave(text: &str) -> Result<f64, ReadError> {
    if text.trim().is_empty() {
        return Err(ReadError::Empty);
    }
    let mut lines = text.lines();
    let crc_line = lines.next().unwrap_or_default().trim_end();
    if crc_line.ends_with("NO") {
        return Err(ReadError::Crc);
    }
    if !crc_line.ends_with("YES") {
        return Err(ReadError::Parse(format!("no CRC verdict in {crc_line:?}")));
    }
    let data_line = lines.next().unwrap_or_default();
    let Some((_, milli)) = data_line.rsplit_once("t=") else {
        return Err(ReadError::Parse(format!("no t= value in {data_line:?}")));
    };
    millidegrees(milli)
}

/// Parse the `temperature` file: millidegrees and a newline.
pub fn parse_temperature(text: &str) -> Result<f64, ReadError> {
    if text.trim().is_empty() {
        return Err(ReadError::Empty);
    }
    millidegrees(text)
}

fn millidegrees(text: &str) -> Result<f64, ReadError> {
    let text = text.trim();
    text.parse::<i32>()
        .map(|m| f64::from(m) / 1000.0)
        .map_err(|_| ReadError::Parse(format!("{text:?} is not millidegrees")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YES: &str =
        "01 01 4b 46 7f ff 0f 10 e3 : crc=e3 YES\n01 01 4b 46 7f ff 0f 10 e3 t=16062\n";
    const NO: &str = "01 01 4b 46 7f ff 0f 10 e3 : crc=e3 NO\n01 01 4b 46 7f ff 0f 10 e3 t=16062\n";
    // -10.125 °C: raw 0xFF5E (little-endian 5e ff).
    const NEGATIVE: &str =
        "5e ff 4b 46 7f ff 02 10 5f : crc=5f YES\n5e ff 4b 46 7f ff 02 10 5f t=-10125\n";

    fn device(root: &Path, name: &str, file: &str, content: &str) -> std::io::Result<()> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(file), content)
    }

    #[test]
    fn parses_w1_slave_exactly() {
        assert_eq!(parse_w1_slave(YES), Ok(16.062));
        assert_eq!(parse_w1_slave(NEGATIVE), Ok(-10.125));
        assert_eq!(parse_w1_slave(NO), Err(ReadError::Crc));
        assert_eq!(parse_w1_slave(""), Err(ReadError::Empty));
        assert!(matches!(parse_w1_slave("garbage\n"), Err(ReadError::Parse(_))));
        assert!(matches!(parse_w1_slave("aa : crc=aa YES\n"), Err(ReadError::Parse(_))));
        assert!(matches!(parse_w1_slave("aa : crc=aa YES\naa t=x\n"), Err(ReadError::Parse(_))));
        assert_eq!(parse_temperature("21500\n"), Ok(21.5));
        assert_eq!(parse_temperature("-55000\n"), Ok(-55.0));
        assert_eq!(parse_temperature(""), Err(ReadError::Empty));
        assert!(matches!(parse_temperature("x\n"), Err(ReadError::Parse(_))));
    }

    #[test]
    fn family_codes() {
        assert_eq!(family_kind("28-0316a2797bff"), Some("DS18B20"));
        assert_eq!(family_kind("10-000802b4ba0e"), Some("DS18S20"));
        assert_eq!(family_kind("22-000000000001"), Some("DS1822"));
        assert_eq!(family_kind("3b-000000000001"), Some("MAX31850"));
        assert_eq!(family_kind("3B-000000000001"), Some("MAX31850"));
        assert_eq!(family_kind("42-000000000001"), Some("DS28EA00"));
        assert_eq!(family_kind("w1_bus_master1"), None);
        assert_eq!(family_kind("01-000000000001"), None);
        assert_eq!(family_kind("28-"), None);
    }

    #[test]
    fn reads_a_fixture_bus() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let r = root.path();
        device(r, "28-000000000001", "w1_slave", YES)?;
        device(r, "28-000000000002", "w1_slave", NO)?;
        device(r, "28-000000000003", "w1_slave", "")?;
        device(r, "10-000000000004", "w1_slave", NEGATIVE)?;
        device(r, "28-000000000005", "temperature", "21437\n")?;
        device(r, "28-000000000006", "temperature", "")?;
        // A device directory whose files are gone (unplugged while listed).
        std::fs::create_dir_all(r.join("28-000000000007"))?;
        // Not thermometers: ignored.
        device(r, "w1_bus_master1", "w1_master_slaves", "28-000000000001\n")?;
        device(r, "01-000000000008", "name", "01-000000000008\n")?;

        let mut source = W1Source::open(r)?;
        assert_eq!(source.name(), "w1");
        let got: Vec<(String, String, Result<f64, ReadError>)> =
            source.read_all().into_iter().map(|r| (r.id, r.kind, r.value)).collect();
        let want = vec![
            ("10-000000000004", "DS18S20", Ok(-10.125)),
            ("28-000000000001", "DS18B20", Ok(16.062)),
            ("28-000000000002", "DS18B20", Err(ReadError::Crc)),
            ("28-000000000003", "DS18B20", Err(ReadError::Empty)),
            ("28-000000000005", "DS18B20", Ok(21.437)),
            ("28-000000000006", "DS18B20", Err(ReadError::Empty)),
            ("28-000000000007", "DS18B20", Err(ReadError::Missing)),
        ];
        let want: Vec<_> =
            want.into_iter().map(|(id, kind, v)| (id.to_owned(), kind.to_owned(), v)).collect();
        assert_eq!(got, want);
        Ok(())
    }

    #[test]
    fn a_vanished_device_is_a_failed_read() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        assert_eq!(read_device(&root.path().join("28-00000000dead")), Err(ReadError::Missing));
        // A single device takes the path without threads.
        device(root.path(), "28-000000000001", "w1_slave", YES)?;
        let mut source = W1Source::open(root.path())?;
        assert_eq!(source.read_all().len(), 1);
        std::fs::remove_dir_all(root.path().join("28-000000000001"))?;
        assert!(source.read_all().is_empty());
        Ok(())
    }

    #[test]
    fn missing_bus_directory() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let err = W1Source::open(root.path().join("nope")).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("dtoverlay=w1-gpio")));
        // The bus disappearing after start is not fatal: no readings, logged once.
        let bus = root.path().join("bus");
        std::fs::create_dir(&bus)?;
        let mut source = W1Source::open(&bus)?;
        std::fs::remove_dir(&bus)?;
        assert!(source.read_all().is_empty());
        assert!(source.listing_failed);
        Ok(())
    }
}
