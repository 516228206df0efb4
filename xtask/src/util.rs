//! What the commands share beyond the harness (`hearth-harness`: the workspace, cargo, the
//! services and the processes).

use std::process::Command;

/// Whether `tool` is installed.
pub(crate) fn have(tool: &str) -> bool {
    // /usr/sbin is not on a normal user's PATH on Debian, but sfdisk and debugfs live there
    // and run fine without root on image files.
    Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool} || test -x /sbin/{tool}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}
