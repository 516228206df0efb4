//! The system tools the tests need, installed with apt when missing (`cargo xtask test`).

use std::path::Path;
use std::process::Command;

use hearth_harness::{Group, run_in};

use crate::util::have;

/// The tests need `ip` (iproute2) and `unshare` (util-linux) to make private network
/// namespaces for mDNS; the provisioning test builds and inspects an SD-card image with
/// sfdisk, mkfs.vfat, mtools and e2fsprogs; `systemd-analyze` (systemd) verifies the units and
/// `dpkg-deb` (dpkg) inspects the packages; the web dashboard's browser tests drive Debian's
/// headless chromium through its chromedriver, at their fixed paths; the OpenAPI contract test
/// makes a Python venv for its pinned tools (`python3 -m venv`, which on Debian needs
/// `python3-venv` for `ensurepip`); `promtool` (prometheus) checks every `/metrics`; the
/// store's tests run a PostgreSQL server of their own (postgresql). Install them with apt when
/// missing.
pub(crate) fn ensure_system_tools() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = [
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("sfdisk", "fdisk"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("debugfs", "e2fsprogs"),
        ("systemd-analyze", "systemd"),
        ("dpkg-deb", "dpkg"),
        // The README's shell sensor, run by the end-to-end tests (awk is in Debian's base).
        ("curl", "curl"),
        ("openssl", "openssl"),
        // Agents with wrong clocks in the end-to-end tests (hearth_e2e::faketime).
        ("faketime", "faketime"),
        // The dashboard's JavaScript unit tests (web-ui/tests-js, Node's built-in runner).
        ("node", "nodejs"),
        // Every binary's /metrics is checked with `promtool check metrics` (Debian ships
        // promtool only in the prometheus package; its service is not needed).
        ("promtool", "prometheus"),
    ]
    .into_iter()
    .filter(|(tool, _)| !have(tool))
    .map(|(_, pkg)| pkg)
    .collect();
    let venv_works = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !venv_works {
        missing.extend(["python3", "python3-venv"]);
    }
    // By path, not PATH: the tests start exactly these (hearth_e2e::webdriver).
    missing.extend(
        [("/usr/bin/chromium", "chromium"), ("/usr/bin/chromedriver", "chromium-driver")]
            .into_iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(_, pkg)| pkg),
    );
    // The store's conformance suite and the end-to-end tests on PostgreSQL start a server of
    // their own from Debian's binaries (hearth_harness::postgres), found by path.
    if hearth_harness::postgres::bin_dir().is_none() {
        missing.push("postgresql");
    }
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        have("apt-get"),
        "install {missing:?} (needed by the tests: network namespaces, SD-card images, browser)"
    );
    let sudo: &[&str] = if hearth_harness::is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut c = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    // In xtask's process group: sudo may ask for a password on the terminal.
    run_in("apt-get update", &mut apt(&["update", "-q"]), Group::Parent)?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    run_in(&format!("apt-get install {missing:?}"), &mut install, Group::Parent)
}
