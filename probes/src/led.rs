//! The board's activity LED, blinked to identify a device (the `identify` command): through the
//! kernel's LED class (`/sys/class/leds/ACT` on Raspberry Pi OS since Bookworm, `led0` before).
//! Its trigger is set to `none`, its brightness toggled, and the trigger and brightness it had
//! are written back afterwards, so the LED goes on showing SD-card activity. Not a probe, but
//! the probes' crate is where the agents' sysfs access lives.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the activity LED is looked for, in order.
pub const ACTIVITY_LEDS: [&str; 2] = ["/sys/class/leds/ACT", "/sys/class/leds/led0"];

/// The first of `candidates` that is an LED (has a `trigger` file).
pub fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|d| d.join("trigger").is_file())
}

/// The selected trigger of a `trigger` file's text (`none [mmc0] timer` → `mmc0`).
fn selected(triggers: &str) -> Option<&str> {
    let start = triggers.find('[')? + 1;
    let end = start + triggers[start..].find(']')?;
    Some(&triggers[start..end])
}

/// Blink the LED at `dir` for `duration`, `period` per on/off cycle, then restore its trigger
/// and brightness. Blocks for `duration`: run it on a thread of its own.
pub fn blink(dir: &Path, duration: Duration, period: Duration) -> std::io::Result<()> {
    let trigger = std::fs::read_to_string(dir.join("trigger"))?;
    let brightness = std::fs::read_to_string(dir.join("brightness"))?;
    let was = selected(&trigger).unwrap_or("none").to_owned();
    std::fs::write(dir.join("trigger"), "none")?;
    let end = Instant::now() + duration;
    let mut on = true;
    let result = loop {
        if Instant::now() >= end {
            break Ok(());
        }
        if let Err(e) = std::fs::write(dir.join("brightness"), if on { "1" } else { "0" }) {
            break Err(e);
        }
        on = !on;
        std::thread::sleep(period / 2);
    };
    // Restored whatever happened: the LED must not stay dark or lit.
    std::fs::write(dir.join("brightness"), brightness.trim())?;
    std::fs::write(dir.join("trigger"), was)?;
    result
}

/// How long the activity LED blinks for `identify`.
pub const IDENTIFY_BLINK: Duration = Duration::from_secs(5);

/// The `identify` command of both agents: a banner in the log nobody can miss, naming
/// `program` and the host, and the activity LED, when the board has one, blinking for
/// [`IDENTIFY_BLINK`] on a thread of its own (the runtime's threads are not held up). What was
/// done, for the command's message. Never touches anything but the log and the LED.
pub fn identify(program: &str, host_id: &str) -> String {
    tracing::warn!(
        "==================== IDENTIFY: this is {program} on host {host_id} ===================="
    );
    let Some(led) = find(&ACTIVITY_LEDS) else {
        return format!("identified: banner logged on host {host_id} (no activity LED found)");
    };
    let shown = led.display().to_string();
    let spawned = std::thread::Builder::new().name("hearth-identify".into()).spawn(move || {
        if let Err(e) = blink(&led, IDENTIFY_BLINK, Duration::from_millis(500)) {
            tracing::warn!(led = %led.display(), error = %e, "cannot blink the activity LED");
        }
    });
    match spawned {
        Ok(_) => format!(
            "identified: banner logged on host {host_id}, {shown} blinking for {} s",
            IDENTIFY_BLINK.as_secs()
        ),
        Err(e) => format!("identified: banner logged on host {host_id} (LED: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blinks_and_restores_the_trigger_and_brightness() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let led = dir.path().join("ACT");
        std::fs::create_dir(&led)?;
        std::fs::write(led.join("trigger"), "none [mmc0] timer heartbeat\n")?;
        std::fs::write(led.join("brightness"), "0\n")?;
        let leds = [led.to_str().unwrap_or_default(), "/nonexistent/led0"];
        assert_eq!(find(&leds), Some(led.clone()));
        assert_eq!(find(&leds[1..]), None);
        blink(&led, Duration::from_millis(20), Duration::from_millis(10))?;
        // A sysfs trigger file takes a name and shows the list; a plain file keeps the name.
        assert_eq!(std::fs::read_to_string(led.join("trigger"))?, "mmc0");
        assert_eq!(std::fs::read_to_string(led.join("brightness"))?, "0");
        assert_eq!(selected("[none] timer"), Some("none"));
        Ok(())
    }
}
