//! What goes onto the card from the agent's Debian package: its binary, its unit and its
//! example config.
//!
//! The units and configs of both agents' packages (`deploy/systemd/`, `deploy/config/`) are
//! compiled into this program, so an installed hearth-provision writes exactly what the
//! packages install, without a source tree. Given the agent's `.deb`, it takes all three from
//! the package itself (the unit and config of the binary's own release); given a bare binary,
//! the ones it carries.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure};

use crate::media::{output, tool};
use crate::{Agent, Arch};

const SENSOR_UNIT: &str = include_str!("../../deploy/systemd/hearth-sensor-agent.service");
const RELAY_UNIT: &str = include_str!("../../deploy/systemd/hearth-relay-agent.service");
const SENSOR_CONFIG: &str = include_str!("../../deploy/config/sensor-agent.toml");
const RELAY_CONFIG: &str = include_str!("../../deploy/config/relay-agent.toml");

/// This program's release: the one whose packages' unit and config it carries.
const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Agent {
    /// The unit the agent's package installs in /usr/lib/systemd/system.
    pub(crate) fn packaged_unit(self) -> &'static str {
        match self {
            Agent::Sensor => SENSOR_UNIT,
            Agent::Relay => RELAY_UNIT,
        }
    }

    /// The example config the agent's package installs as /etc/hearth/<stem>.toml.
    pub(crate) fn packaged_config(self) -> &'static str {
        match self {
            Agent::Sensor => SENSOR_CONFIG,
            Agent::Relay => RELAY_CONFIG,
        }
    }
}

/// The agent's binary, unit and example config.
#[derive(Debug)]
pub(crate) struct Packaged {
    /// The file the binary came from, and its package version when a .deb (for messages).
    pub(crate) from: String,
    pub(crate) binary: Vec<u8>,
    pub(crate) unit: String,
    pub(crate) config: String,
    /// Where the unit and config came from (for messages).
    pub(crate) files_from: String,
}

/// The agent for `arch` from `given` (a .deb, a binary, or a directory holding either); a .deb
/// is unpacked under `scratch`.
pub(crate) fn agent(
    given: &Path,
    agent: Agent,
    arch: Arch,
    scratch: &Path,
) -> anyhow::Result<Packaged> {
    let file = if given.is_dir() { find_in(given, agent, arch)? } else { given.to_path_buf() };
    let bytes = std::fs::read(&file).map_err(|e| {
        anyhow::anyhow!("agent binary {}: {e}. {}", file.display(), how_to_get(agent, arch))
    })?;
    if bytes.starts_with(b"!<arch>\n") {
        return from_deb(&file, agent, arch, scratch);
    }
    Ok(Packaged {
        from: file.display().to_string(),
        binary: bytes,
        unit: agent.packaged_unit().to_owned(),
        config: agent.packaged_config().to_owned(),
        files_from: format!(
            "as {} installs it, carried by hearth-provision {VERSION}",
            agent.bin()
        ),
    })
}

fn how_to_get(agent: Agent, arch: Arch) -> String {
    format!(
        "Pass --binary with the agent's Debian package for the image ({bin}_<version>_{deb}.deb, \
         from a release or `cargo xtask dist` in a source tree) or its static binary (`cargo \
         xtask cross` builds it into target/{triple}/release-small/)",
        bin = agent.bin(),
        deb = arch.deb(),
        triple = arch.triple()
    )
}

/// In a directory: the cross-built binary where a cargo target dir holds it, else the one
/// package of the agent for `arch` (in the directory or its `debian/<arch>/`, where
/// `cargo xtask dist` puts it).
fn find_in(dir: &Path, agent: Agent, arch: Arch) -> anyhow::Result<PathBuf> {
    let cross = dir.join(arch.triple()).join("release-small").join(agent.bin());
    if cross.is_file() {
        return Ok(cross);
    }
    let (prefix, suffix) = (format!("{}_", agent.bin()), format!("_{}.deb", arch.deb()));
    let mut debs: Vec<PathBuf> = [dir.to_path_buf(), dir.join("debian").join(arch.deb())]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        })
        .collect();
    debs.sort();
    match debs.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no {bin} for {deb} in {dir}: looked for {prefix}*{suffix} (there and in \
             debian/{deb}/) and {cross}. {how}",
            bin = agent.bin(),
            deb = arch.deb(),
            dir = dir.display(),
            cross = cross.display(),
            how = how_to_get(agent, arch)
        ),
        many => bail!(
            "{} packages of {} for {} in {}: {}. Pass the one to install with --binary",
            many.len(),
            agent.bin(),
            arch.deb(),
            dir.display(),
            many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn dpkg_deb(what: &str, args: &[&OsStr]) -> anyhow::Result<String> {
    let mut c = tool("dpkg-deb");
    c.args(args);
    let out = output(what, &mut c)?;
    ensure!(
        out.status.success(),
        "{what}: dpkg-deb: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The binary, unit and config of the agent's package, checked to be the agent's for `arch`.
fn from_deb(deb: &Path, agent: Agent, arch: Arch, scratch: &Path) -> anyhow::Result<Packaged> {
    let what = format!("reading the package {}", deb.display());
    let field = |name: &str| dpkg_deb(&what, &["--field".as_ref(), deb.as_os_str(), name.as_ref()]);
    let other = if agent == Agent::Sensor { "relay" } else { "sensor" };
    for (name, want, fix) in [
        ("Package", agent.bin(), format!("pass the {} package, or --agent {other}", agent.bin())),
        (
            "Architecture",
            arch.deb().to_owned(),
            format!(
                "the image is {}: pass {}_<version>_{}.deb",
                arch.deb(),
                agent.bin(),
                arch.deb()
            ),
        ),
    ] {
        let got = field(name)?;
        ensure!(got == want, "{}: its {name} is {got:?}, not {want:?}: {fix}", deb.display());
    }
    let version = field("Version")?;
    let files = scratch.join("package");
    dpkg_deb(
        &format!("unpacking {}", deb.display()),
        &["-x".as_ref(), deb.as_os_str(), files.as_os_str()],
    )?;
    let read = |rel: String| {
        std::fs::read(files.join(&rel)).map_err(|e| {
            anyhow::anyhow!("{} has no /{rel} ({e}): not a Hearth agent package", deb.display())
        })
    };
    let binary = read(format!("usr/bin/{}", agent.bin()))?;
    let text = |rel: String| -> anyhow::Result<String> {
        String::from_utf8(read(rel.clone())?)
            .map_err(|_| anyhow::anyhow!("{}: /{rel} is not text", deb.display()))
    };
    let unit = text(format!("usr/lib/systemd/system/{}", agent.unit()))?;
    let config = text(format!("etc/hearth/{}.toml", agent.stem()))?;
    Ok(Packaged {
        from: format!("{} ({} {version})", deb.display(), agent.bin()),
        binary,
        unit,
        config,
        files_from: format!("from the package, {} {version}", agent.bin()),
    })
}
