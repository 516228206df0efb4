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
//! absent. Such failures are retried ([`super::with_retries`]).
//!
//! Every read starts a conversion that blocks ~750 ms, so devices are read in parallel, one
//! thread each. When a bus master offers `therm_bulk_read` (kernel 5.9+), one `trigger` write
//! converts every sensor on that bus at once and each device's `temperature` then returns the
//! result without another conversion.
//!
//! The directory is listed at every read, so sensors plugged in later are picked up; sensors
//! that vanish are simply not returned here (the [`super::screen`] layer reports them missing).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{RawReading, ReadError, TemperatureSource, with_retries};

/// The longest a bulk conversion may take: 750 ms at 12 bit, twice, for slow parasite-powered
/// buses. Past it the devices are read one by one.
const BULK_WAIT: Duration = Duration::from_millis(1500);
/// How often the bulk state is polled while a conversion runs.
const BULK_POLL: Duration = Duration::from_millis(50);

/// The sensor type to report for a configured 1-Wire device that was never seen: by its family
/// code, else `DS18B20`, the usual thermometer (a configured id need not be a device name).
pub fn device_kind(device: &str) -> &'static str {
    family_kind(device).unwrap_or("DS18B20")
}

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
    /// Lower-case ids of disabled sensors: never read (a read costs a conversion).
    skip: BTreeSet<String>,
    /// True while listing the directory fails, so the failure is logged once, not every read.
    listing_failed: bool,
    /// Bus masters whose bulk trigger failed, so that is logged once per master.
    bulk_failed: BTreeSet<String>,
    /// The resolution to convert at, bits (None: each sensor keeps its own).
    resolution: Option<u8>,
    /// Devices given [`Self::resolution`] since it was set and present ever since: a device
    /// that vanishes may come back powered up at its EEPROM's resolution, so it is written
    /// again when it reappears.
    resolution_set: BTreeSet<String>,
}

impl W1Source {
    /// A reader of the devices directory `dir`. Fails when `dir` is not a directory, with a
    /// message naming the fix.
    pub fn open(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            anyhow::bail!(
                "no 1-Wire devices directory at {}: enable the kernel driver (on a Raspberry Pi \
                 add `dtoverlay=w1-gpio` to /boot/firmware/config.txt and reboot)",
                dir.display()
            );
        }
        Ok(Self {
            dir,
            skip: BTreeSet::new(),
            listing_failed: false,
            bulk_failed: BTreeSet::new(),
            resolution: None,
            resolution_set: BTreeSet::new(),
        })
    }

    /// Never read these sensors (ids matched case-insensitively).
    pub fn skipping(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.skip = ids.into_iter().map(|id| id.to_ascii_lowercase()).collect();
        self
    }

    /// The thermometers present now, sorted by id: (id, kind).
    pub fn devices(&self) -> std::io::Result<Vec<(String, &'static str)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            // An entry that vanishes while listing is simply not there any more.
            let Ok(entry) = entry else { continue };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if let Some(kind) = family_kind(&name)
                && !self.skip.contains(&name.to_ascii_lowercase())
            {
                found.push((name, kind));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Start a bulk conversion on every bus master that supports it and wait for it; the ids
    /// of the devices whose result is now waiting in their `temperature` file.
    fn trigger_bulk_reads(&mut self) -> BTreeSet<String> {
        let mut converted = BTreeSet::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return converted };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let master = entry.path();
            let control = master.join("therm_bulk_read");
            if !name.starts_with("w1_bus_master") || !control.exists() {
                continue;
            }
            // The write sends Convert T to the whole bus; the kernel then holds the bus for
            // the conversion time.
            if let Err(e) = std::fs::write(&control, "trigger\n") {
                if self.bulk_failed.insert(name.clone()) {
                    tracing::warn!(master = name, error = %e, "bulk conversion failed; reading sensors one by one");
                }
                continue;
            }
            self.bulk_failed.remove(&name);
            wait_for_bulk(&control);
            // One device id per line ("not found." when the bus is empty).
            let slaves =
                std::fs::read_to_string(master.join("w1_master_slaves")).unwrap_or_default();
            converted.extend(
                slaves.lines().map(|l| l.trim().to_owned()).filter(|l| family_kind(l).is_some()),
            );
        }
        converted
    }
}

impl W1Source {
    /// Write the resolution to each device present that has not had it yet: the kernel's
    /// `resolution` attribute (w1_therm, Linux 5.10+) writes the sensor's scratchpad (RAM, not
    /// its EEPROM, which keeps its own flash cycles). A device without the attribute (an older
    /// kernel, a DS18S20 whose resolution is fixed) is logged once and read as it is.
    fn write_resolution(&mut self, devices: &[(String, &'static str)]) {
        let Some(bits) = self.resolution else { return };
        self.resolution_set.retain(|id| devices.iter().any(|(d, _)| d == id));
        for (id, _) in devices {
            if self.resolution_set.contains(id) {
                continue;
            }
            // Never created: on sysfs a missing attribute is a kernel that lacks it.
            let written = std::fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join(id).join("resolution"))
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, format!("{bits}\n").as_bytes())
                });
            match written {
                Ok(()) => tracing::info!(sensor = %id, bits, "sensor resolution set"),
                Err(e) => tracing::warn!(sensor = %id, bits, error = %e,
                    "cannot set this sensor's resolution; it converts at its own"),
            }
            // Tried once per appearance either way: a failed write fails again at every read.
            self.resolution_set.insert(id.clone());
        }
    }
}

/// Wait while `therm_bulk_read` says a conversion is still running (`-1`), at most
/// [`BULK_WAIT`]. A device read too early returns an empty file, which is retried as a normal
/// read, so giving up here costs time, never a reading.
fn wait_for_bulk(control: &Path) {
    let deadline = Instant::now() + BULK_WAIT;
    while std::fs::read_to_string(control).is_ok_and(|s| s.trim() == "-1")
        && Instant::now() < deadline
    {
        std::thread::sleep(BULK_POLL);
    }
}

impl TemperatureSource for W1Source {
    fn name(&self) -> &'static str {
        "w1"
    }

    fn kind_of(&self, id: &str) -> &'static str {
        device_kind(id)
    }

    fn skip(&mut self, ids: &BTreeSet<String>) {
        self.skip.clone_from(ids);
    }

    fn set_resolution(&mut self, bits: Option<u8>) -> Result<(), String> {
        if self.resolution != bits {
            self.resolution = bits;
            self.resolution_set.clear();
        }
        Ok(())
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
        self.write_resolution(&devices);
        if devices.is_empty() {
            return Vec::new();
        }
        let bulk = self.trigger_bulk_reads();
        let devices: Vec<(String, &'static str, bool)> = devices
            .into_iter()
            .map(|(id, kind)| {
                let converted = bulk.contains(&id);
                (id, kind, converted)
            })
            .collect();
        let values = read_parallel(&self.dir, &devices);
        devices
            .into_iter()
            .zip(values)
            .map(|((id, kind, _), value)| RawReading { id, kind: kind.to_owned(), value })
            .collect()
    }
}

/// Read each device on its own thread: each read blocks for a whole conversion (~750 ms), so
/// reading them one after another would take N × 750 ms. The flag says the device was converted
/// by a bulk trigger, so its `temperature` file is read first.
fn read_parallel(
    dir: &Path,
    devices: &[(String, &'static str, bool)],
) -> Vec<Result<f64, ReadError>> {
    if let [(id, _, bulk)] = devices {
        return vec![read_device(&dir.join(id), *bulk)];
    }
    std::thread::scope(|scope| {
        let pending: Vec<_> = devices
            .iter()
            .map(|(id, _, bulk)| {
                let path = dir.join(id);
                let bulk = *bulk;
                let spawned = std::thread::Builder::new()
                    .name(format!("w1-{id}"))
                    // The thread only reads a small file; a small stack keeps the agent's
                    // memory footprint small on a Pi Zero.
                    .stack_size(128 * 1024)
                    .spawn_scoped(scope, {
                        let path = path.clone();
                        move || read_device(&path, bulk)
                    });
                (path, bulk, spawned)
            })
            .collect();
        pending
            .into_iter()
            .map(|(path, bulk, spawned)| match spawned {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(ReadError::Io("reader thread panicked".to_owned()))),
                // No thread to be had (out of memory or tasks): read it here, slower but read.
                Err(_) => read_device(&path, bulk),
            })
            .collect()
    })
}

/// Read one device directory, retrying transient failures: after a bulk conversion its
/// `temperature` (the converted value), else `w1_slave` (which converts), else `temperature`
/// (kernels without `w1_slave`).
pub fn read_device(device_dir: &Path, after_bulk: bool) -> Result<f64, ReadError> {
    let mut bulk_pending = after_bulk;
    with_retries(|| {
        // A retry after a failed bulk read converts again on its own.
        if std::mem::take(&mut bulk_pending) {
            match read_text(&device_dir.join("temperature")) {
                Err(ReadError::Missing) => {}
                text => return parse_temperature(&text?),
            }
        }
        match read_text(&device_dir.join("w1_slave")) {
            Ok(text) => parse_w1_slave(&text),
            Err(ReadError::Missing) => {
                parse_temperature(&read_text(&device_dir.join("temperature"))?)
            }
            Err(e) => Err(e),
        }
    })
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
        "5e ff 4b 46 7f ff 02 10 b6 : crc=b6 YES\n5e ff 4b 46 7f ff 02 10 b6 t=-10125\n";
    // The power-on scratchpad: raw 0x0550.
    const POWER_ON: &str =
        "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n";

    fn device(root: &Path, name: &str, file: &str, content: &str) -> std::io::Result<()> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(file), content)
    }

    #[test]
    fn parses_w1_slave_exactly() {
        assert_eq!(parse_w1_slave(YES), Ok(16.062));
        assert_eq!(parse_w1_slave(NEGATIVE), Ok(-10.125));
        // Passed on as read: the screen above decides whether 85 °C is believable.
        assert_eq!(parse_w1_slave(POWER_ON), Ok(85.0));
        assert!(matches!(parse_w1_slave("\u{0}\u{ff}\n\n"), Err(ReadError::Parse(_))));
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
    fn devices_come_and_go_and_disabled_ones_are_not_read() -> anyhow::Result<()> {
        use crate::screen::{ScreenRules, Screened, SensorSetting};

        let root = tempfile::tempdir()?;
        let r = root.path();
        assert_eq!(read_device(&r.join("28-00000000dead"), false), Err(ReadError::Missing));
        // A single device takes the path without threads.
        device(r, "28-000000000001", "w1_slave", YES)?;
        // Disabled, and unreadable: were it read, its 0-byte `w1_slave` would be in the result.
        device(r, "28-0000000000AA", "w1_slave", "")?;
        let source = W1Source::open(r)?.skipping(["28-0000000000aa".to_owned()]);
        let disabled =
            SensorSetting { id: "28-0000000000aa".into(), offset_c: 0.0, enabled: false };
        let mut source = Screened::new(source, ScreenRules::default(), vec![disabled]);
        let ids = |rs: Vec<RawReading>| -> Vec<(String, Result<f64, ReadError>)> {
            rs.into_iter().map(|r| (r.id, r.value)).collect()
        };
        assert_eq!(ids(source.read_all()), vec![("28-000000000001".into(), Ok(16.062))]);
        assert_eq!(source.inner().devices()?.len(), 1);

        // Plugged in later: picked up at the next read.
        device(r, "28-000000000002", "w1_slave", NEGATIVE)?;
        assert_eq!(
            ids(source.read_all()),
            vec![("28-000000000001".into(), Ok(16.062)), ("28-000000000002".into(), Ok(-10.125))]
        );
        // Unplugged: reported as missing (value null), not dropped.
        std::fs::remove_dir_all(r.join("28-000000000001"))?;
        assert!(source.inner().devices()?.iter().all(|(id, _)| id != "28-000000000001"));
        assert_eq!(
            ids(source.read_all()),
            vec![
                ("28-000000000001".into(), Err(ReadError::Missing)),
                ("28-000000000002".into(), Ok(-10.125))
            ]
        );
        Ok(())
    }

    #[test]
    fn bulk_conversion_then_temperature_files() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let r = root.path();
        // Bus 1 supports bulk reads: its devices' `temperature` holds the bulk result, while
        // `w1_slave` (which would convert again) says something else, to tell them apart.
        device(r, "w1_bus_master1", "therm_bulk_read", "0\n")?;
        device(r, "w1_bus_master1", "w1_master_slaves", "28-000000000001\n28-000000000002\n")?;
        device(r, "28-000000000001", "temperature", "21500\n")?;
        device(r, "28-000000000001", "w1_slave", YES)?;
        // Empty after the bulk read (still converting): retried the normal way.
        device(r, "28-000000000002", "temperature", "")?;
        device(r, "28-000000000002", "w1_slave", NEGATIVE)?;
        // Bus 2 has no bulk support.
        device(r, "w1_bus_master2", "w1_master_slaves", "28-000000000003\n")?;
        device(r, "28-000000000003", "temperature", "1000\n")?;
        device(r, "28-000000000003", "w1_slave", YES)?;

        let mut source = W1Source::open(r)?;
        let got: Vec<_> = source.read_all().into_iter().map(|r| (r.id, r.value)).collect();
        assert_eq!(
            got,
            vec![
                ("28-000000000001".to_owned(), Ok(21.5)),
                ("28-000000000002".to_owned(), Ok(-10.125)),
                ("28-000000000003".to_owned(), Ok(16.062)),
            ]
        );
        // The trigger was written exactly as the kernel expects it.
        let control = std::fs::read_to_string(r.join("w1_bus_master1/therm_bulk_read"))?;
        assert_eq!(control, "trigger\n");
        assert!(!r.join("w1_bus_master2/therm_bulk_read").exists());

        // A trigger that cannot be written: the devices are read one by one.
        std::fs::remove_file(r.join("w1_bus_master1/therm_bulk_read"))?;
        std::fs::create_dir(r.join("w1_bus_master1/therm_bulk_read"))?;
        let got: Vec<_> = source.read_all().into_iter().map(|r| r.value).collect();
        assert_eq!(got, vec![Ok(16.062), Ok(-10.125), Ok(16.062)]);
        assert!(source.bulk_failed.contains("w1_bus_master1"));
        Ok(())
    }

    #[test]
    fn bulk_wait_follows_the_kernels_state_and_is_bounded() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let control = root.path().join("therm_bulk_read");
        // 1: converted, values not read yet. 0: no bulk read pending. Neither waits.
        for done in ["1\n", "0\n"] {
            std::fs::write(&control, done)?;
            let start = Instant::now();
            wait_for_bulk(&control);
            assert!(start.elapsed() < BULK_WAIT);
        }
        // -1: still converting. A conversion that never ends is waited out, not forever.
        std::fs::write(&control, "-1\n")?;
        let start = Instant::now();
        wait_for_bulk(&control);
        assert!(start.elapsed() >= BULK_WAIT);
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

    #[test]
    fn the_resolution_is_written_to_each_device_once_per_appearance() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let r = root.path();
        device(r, "28-000000000001", "w1_slave", YES)?;
        device(r, "28-000000000001", "resolution", "12\n")?;
        // An older kernel: no attribute; the sensor is still read.
        device(r, "28-000000000002", "w1_slave", NEGATIVE)?;
        let mut source = W1Source::open(r)?;
        let resolution = |id: &str| std::fs::read_to_string(r.join(id).join("resolution"));
        source.read_all();
        assert_eq!(resolution("28-000000000001")?, "12\n", "nothing set: left alone");
        source.set_resolution(Some(10)).map_err(anyhow::Error::msg)?;
        assert_eq!(source.read_all().len(), 2);
        assert_eq!(resolution("28-000000000001")?, "10\n");
        assert!(resolution("28-000000000002").is_err(), "never created");
        // Written once, not at every read ...
        std::fs::write(r.join("28-000000000001/resolution"), "12\n")?;
        source.read_all();
        assert_eq!(resolution("28-000000000001")?, "12\n");
        // ... and again when the sensor comes back (powered up at its EEPROM's resolution).
        std::fs::rename(r.join("28-000000000001"), r.join("gone"))?;
        source.read_all();
        std::fs::rename(r.join("gone"), r.join("28-000000000001"))?;
        source.read_all();
        assert_eq!(resolution("28-000000000001")?, "10\n");
        Ok(())
    }
}
