//! `cargo xtask dist`: Debian packages of the four services and of hearth-provision for every
//! architecture that has binaries, into `target/debian/`. And the deploy tests: the systemd units in
//! `deploy/systemd/` pass `systemd-analyze verify`, each binary started exactly as its unit's
//! `ExecStart` says (with the example config of `deploy/config/`) sends READY=1, watchdog pings
//! and STOPPING=1, and the packages hold what they must.
//!
//! The tests live here rather than in the end-to-end crate: they check the deployment
//! artefacts that `dist` ships (units, configs, packages), reuse its tables, and need no
//! network namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth_harness::{cargo, root, run, run_stdout, target_dir};

/// The cargo-deb release the packages are built and tested with (`cargo install --locked`).
pub(crate) const CARGO_DEB_VERSION: &str = "3.8.0";

/// A packaged service: a service of the harness's list, and its packaging facts: its config's
/// base name (`deploy/config/<config>.toml`, installed as `/etc/hearth/<config>.toml`; the
/// unit is `deploy/systemd/<package>.service`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    /// Its cargo package = binary = unit name (the harness service's).
    pub(crate) package: &'static str,
    pub(crate) config: &'static str,
    /// The Debian architectures of its cross-built packages (see [`CROSS`]). The engine and
    /// the dashboard run on the engine's board, a 64-bit Pi, so they are cross-built for
    /// aarch64 only; the agents also run on the 32-bit Pi Zeros.
    pub(crate) cross_arches: &'static [&'static str],
}

impl Service {
    const fn of(
        service: hearth_harness::Service,
        config: &'static str,
        cross_arches: &'static [&'static str],
    ) -> Self {
        Self { package: service.package, config, cross_arches }
    }
}

/// Where only an engine host runs the service.
const ENGINE_HOST: &[&str] = &["arm64"];
/// Where an agent runs: every Pi.
const EVERY_PI: &[&str] = &["armhf", "arm64"];

/// Every service of the harness's list, packaged (a test checks that none is missing).
pub(crate) const SERVICES: [Service; 4] = [
    Service::of(hearth_harness::ENGINE, "engine", ENGINE_HOST),
    Service::of(hearth_harness::SENSOR_AGENT, "sensor-agent", EVERY_PI),
    Service::of(hearth_harness::RELAY_AGENT, "relay-agent", EVERY_PI),
    Service::of(hearth_harness::WEB, "web", ENGINE_HOST),
];

/// A packaged program that is no service: no unit, no config, no maintainer scripts; people
/// run it by hand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    pub(crate) package: &'static str,
    /// Its package's `Depends` (the static variant's): the Debian packages of the programs it
    /// runs. Read by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) depends: &'static str,
    /// The Debian architectures of its cross-built packages, as for a [`Service`].
    pub(crate) cross_arches: &'static [&'static str],
}

/// hearth-provision writes SD cards on a laptop (the host package) or on the engine's board.
pub(crate) const TOOLS: [Tool; 1] = [Tool {
    package: "hearth-provision",
    depends: "e2fsprogs, fdisk, mtools",
    cross_arches: ENGINE_HOST,
}];

/// Every package `dist` makes (the services', then the tools'), with its cross architectures.
fn packages() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    let services = SERVICES.iter().map(|s| (s.package, s.cross_arches));
    services.chain(TOOLS.iter().map(|t| (t.package, t.cross_arches)))
}

/// Cross targets whose binaries the cross build leaves in `target/<triple>/release-small/`,
/// with their Debian architecture. Each service is packaged for its `cross_arches` only.
const CROSS: [(&str, &str); 2] =
    [("arm-unknown-linux-musleabihf", "armhf"), ("aarch64-unknown-linux-musl", "arm64")];

/// The profile the packaged binaries are built with (small, stripped, LTO).
const PROFILE: &str = "release-small";

fn have_cargo_deb() -> bool {
    cargo().args(["deb", "--version"]).output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_DEB_VERSION)
    })
}

/// Install the pinned cargo-deb when it is missing (or another version).
pub(crate) fn ensure_cargo_deb() -> anyhow::Result<()> {
    if have_cargo_deb() {
        return Ok(());
    }
    run(
        &format!("cargo install cargo-deb {CARGO_DEB_VERSION} (once; a few minutes)"),
        cargo().args(["install", "cargo-deb", "--locked", "--version", CARGO_DEB_VERSION]),
    )
}

/// `cargo deb` for one package from already built binaries (`--no-build`): `target` None is
/// the host (amd64 here).
fn cargo_deb(
    package: &str,
    target: Option<&str>,
    profile: &str,
    out: &Path,
    fast: bool,
) -> Command {
    let mut c = cargo();
    c.args(["deb", "--no-build", "--locked", "-p", package, "--profile", profile]);
    if let Some(triple) = target {
        // The cross builds are static musl binaries: the `static` variant of each package's
        // metadata depends on no shared library instead of asking dpkg-shlibdeps ($auto).
        c.args(["--target", triple, "--variant", "static"]);
    }
    if fast {
        c.arg("--fast");
    }
    c.arg("-o").arg(out);
    c
}

/// Run a [`cargo_deb`] command, returning the package it made (cargo-deb prints its path).
fn package(what: &str, cargo_deb: &mut Command) -> anyhow::Result<PathBuf> {
    let printed = run_stdout(what, cargo_deb)?;
    let deb = printed.lines().map(str::trim).rfind(|l| l.ends_with(".deb")).map(PathBuf::from);
    match deb {
        Some(deb) if deb.is_file() => Ok(deb),
        _ => anyhow::bail!("{what}: cargo deb named no package it made (it said {printed:?})"),
    }
}

/// `cargo xtask dist`: build the host's packages, package whatever cross binaries exist.
pub(crate) fn dist() -> anyhow::Result<()> {
    ensure_cargo_deb()?;
    let out = target_dir().join("debian");
    std::fs::create_dir_all(&out)?;
    let mut build = cargo();
    build.args(["build", "--locked", "--profile", PROFILE]);
    for (package, _) in packages() {
        build.args(["-p", package]);
    }
    run(&format!("build the binaries for the host ({PROFILE})"), &mut build)?;
    // (architecture, package): every package this run made, host and cross alike.
    let mut built: Vec<(String, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for s in SERVICES {
        // cargo-deb would fail later with a less direct message.
        for file in [
            format!("deploy/systemd/{}.service", s.package),
            format!("deploy/config/{}.toml", s.config),
        ] {
            anyhow::ensure!(repo(&file).is_file(), "{file} is missing: the package needs it");
        }
    }
    for (name, _) in packages() {
        let what = format!("package {name} (host)");
        let deb = package(&what, &mut cargo_deb(name, None, PROFILE, &out, false))?;
        built.push(("host".to_owned(), deb));
    }
    for (_, arch, deb) in package_cross(&out, &target_dir(), &mut skipped)? {
        built.push((arch.to_owned(), deb));
    }
    eprintln!("xtask: {} packages made:", built.len());
    for (arch, deb) in &built {
        let size = std::fs::metadata(deb)?.len();
        eprintln!("  {arch:<5} {}  {:.2} MiB", deb.display(), size as f64 / (1024.0 * 1024.0));
    }
    for s in &skipped {
        eprintln!("xtask: skipped {s} (cross-build it first: `cargo xtask cross`, see README)");
    }
    eprintln!("xtask: made {} packages, skipped {}", built.len(), skipped.len());
    Ok(())
}

/// Package every cross-built binary present in the cargo target dir `target` (`--no-build`),
/// noting the absent ones in `skipped`; returns (package, Debian architecture, .deb) per
/// package.
fn package_cross(
    out: &Path,
    target: &Path,
    skipped: &mut Vec<String>,
) -> anyhow::Result<Vec<(&'static str, &'static str, PathBuf)>> {
    let mut built = Vec::new();
    for (triple, arch) in CROSS {
        for (name, cross_arches) in packages() {
            // No armhf engine, dashboard or provisioning: they are not cross-built for it (Pi
            // Zeros run agents; a board that hosts the engine is a 64-bit one).
            if !cross_arches.contains(&arch) {
                continue;
            }
            let binary = target.join(triple).join(PROFILE).join(name);
            if !binary.is_file() {
                skipped.push(format!("{name} {arch}: no {}", binary.display()));
                continue;
            }
            let dir = out.join(arch);
            std::fs::create_dir_all(&dir)?;
            let what = format!("package {name} ({arch})");
            let mut deb = cargo_deb(name, Some(triple), PROFILE, &dir, false);
            let deb = package(&what, deb.env("CARGO_TARGET_DIR", target))?;
            built.push((name, arch, deb));
        }
    }
    Ok(built)
}

/// After the cross build (CI): package the ARM binaries and inspect each package with
/// `dpkg-deb`: its architecture, the binary, and a service's unit and config (a conffile).
pub(crate) fn cross_packages() -> anyhow::Result<()> {
    ensure_cargo_deb()?;
    let out = target_dir().join("debian");
    let mut skipped = Vec::new();
    let built = package_cross(&out, &target_dir(), &mut skipped)?;
    anyhow::ensure!(skipped.is_empty(), "cross binaries missing: {skipped:?}");
    for (name, arch, deb) in &built {
        let field = |field: &str| -> anyhow::Result<String> {
            let o = Command::new("dpkg-deb").arg("--field").arg(deb).arg(field).output()?;
            anyhow::ensure!(o.status.success(), "dpkg-deb --field {}", deb.display());
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        anyhow::ensure!(field("Architecture")? == *arch, "{}: not {arch}", deb.display());
        let o = Command::new("dpkg-deb").arg("--contents").arg(deb).output()?;
        let contents = String::from_utf8_lossy(&o.stdout);
        let binary = format!("./usr/bin/{name}");
        anyhow::ensure!(contents.contains(&binary), "{}: no {binary}", deb.display());
        // A tool is the program alone; a service also has its unit and config (a conffile).
        let Some(s) = SERVICES.iter().find(|s| s.package == *name) else {
            anyhow::ensure!(
                !contents.contains("/systemd/"),
                "{}: a tool package with a unit",
                deb.display()
            );
            eprintln!("xtask: {} {arch}: binary in place", deb.display());
            continue;
        };
        for path in [
            format!("./usr/lib/systemd/system/{}.service", s.package),
            format!("./etc/hearth/{}.toml", s.config),
        ] {
            anyhow::ensure!(contents.contains(&path), "{}: no {path}", deb.display());
        }
        let o = Command::new("dpkg-deb").arg("--info").arg(deb).arg("conffiles").output()?;
        let conffiles = String::from_utf8_lossy(&o.stdout);
        let conf = format!("/etc/hearth/{}.toml", s.config);
        anyhow::ensure!(
            conffiles.lines().any(|l| l.trim() == conf),
            "{}: {conf} is not a conffile (dpkg would overwrite a user's edits)",
            deb.display()
        );
        let size = std::fs::metadata(deb)?.len();
        eprintln!(
            "xtask: {} {arch}: {:.2} MiB, binary, unit and conffile in place",
            deb.display(),
            size as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

/// The path of a file of the repository.
fn repo(rel: &str) -> PathBuf {
    root().join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::net::UnixDatagram;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use hearth_harness::{Capture, ENGINE, Group, Proc, RELAY_AGENT, SENSOR_AGENT, WEB};

    type R = anyhow::Result<()>;

    /// Whether a service needs GPIO devices: SupplementaryGroups=gpio in its unit, group gpio
    /// in its postinst. The agents only, which the units and maintainer scripts must say.
    fn gpio(s: &Service) -> bool {
        matches!(s.package, "hearth-sensor-agent" | "hearth-relay-agent")
    }

    /// Whether a service is started at install because it needs no device key (the engine and
    /// the dashboard): its postinst starts the unit, not only enables it (the package's
    /// `systemd-units` says so to cargo-deb).
    fn starts(s: &Service) -> bool {
        matches!(s.package, "hearth-engine" | "hearth-web")
    }

    /// The packaged service of a service (the tests name the ones they check specially).
    fn service(of: hearth_harness::Service) -> &'static Service {
        SERVICES
            .iter()
            .find(|s| s.package == of.package)
            .unwrap_or_else(|| panic!("{} is not in SERVICES", of.package))
    }

    /// Build the four binaries (debug): the tests run what the units would start.
    fn build_binaries() -> R {
        hearth_harness::build("build the binaries", "dev", &hearth_harness::SERVICES)
    }

    fn binary(package: &str) -> PathBuf {
        hearth_harness::binary("dev", package)
    }

    /// The packaged services are the harness's, in its order.
    #[test]
    fn every_service_is_packaged() {
        assert_eq!(
            SERVICES.map(|s| s.package),
            hearth_harness::SERVICES.map(|s| s.package),
            "deploy.rs packages every service of the harness's list"
        );
    }

    fn unit_text(s: &Service) -> anyhow::Result<String> {
        let path = repo(&format!("deploy/systemd/{}.service", s.package));
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// `Key=value` lines of a unit (last value wins; comments and sections dropped), and every
    /// value of repeated keys joined by newlines.
    fn directives(text: &str) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                map.entry(k.to_owned())
                    .and_modify(|all| {
                        all.push('\n');
                        all.push_str(v);
                    })
                    .or_insert_with(|| v.to_owned());
            }
        }
        map
    }

    /// The unit's ExecStart: `/usr/bin/<package> --config /etc/hearth/<config>.toml`, exactly.
    fn exec_start(s: &Service) -> String {
        format!("/usr/bin/{} --config /etc/hearth/{}.toml", s.package, s.config)
    }

    #[test]
    fn units_state_the_service_contract() -> R {
        for s in &SERVICES {
            let d = directives(&unit_text(s)?);
            let get = |k: &str| d.get(k).map(String::as_str);
            let name = s.package;
            assert_eq!(get("ExecStart"), Some(exec_start(s).as_str()), "{name}");
            for (k, v) in [
                ("Type", "notify"),
                ("NotifyAccess", "main"),
                ("WatchdogSec", "30s"),
                ("Restart", "on-failure"),
                ("User", "hearth"),
                ("ProtectSystem", "strict"),
                ("ProtectHome", "yes"),
                ("PrivateTmp", "yes"),
                ("NoNewPrivileges", "yes"),
                ("CapabilityBoundingSet", ""),
                ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
                ("MemoryDenyWriteExecute", "yes"),
                ("SystemCallArchitectures", "native"),
            ] {
                assert_eq!(get(k), Some(v), "{name}: {k}");
            }
            // The gpio group only where GPIO devices may be needed; the device cgroup then
            // allows exactly those, and PrivateDevices (which would hide them) stays off.
            assert_eq!(get("SupplementaryGroups"), gpio(s).then_some("gpio"), "{name}");
            if gpio(s) {
                assert_eq!(get("PrivateDevices"), Some("no"), "{name}");
                assert_eq!(get("DevicePolicy"), Some("closed"), "{name}");
                assert!(get("DeviceAllow").is_some_and(|v| v.contains("char-gpiochip rw")));
            } else {
                assert_eq!(get("PrivateDevices"), Some("yes"), "{name}");
            }
        }
        // The relay agent: back within a second of any failure, and its outputs driven safe
        // after any exit by the same binary and config (a dead process leaves GPIO levels).
        let relay = service(RELAY_AGENT);
        let d = directives(&unit_text(relay)?);
        assert_eq!(d.get("RestartSec").map(String::as_str), Some("1s"));
        assert_eq!(
            d.get("ExecStopPost").cloned(),
            Some(format!("{} safe-state", exec_start(relay))),
            "the relay agent's ExecStopPost"
        );
        // State directories match the binaries' defaults (engine data_dir, sensor queue_dir).
        let engine = directives(&unit_text(service(ENGINE))?);
        assert_eq!(engine.get("StateDirectory").map(String::as_str), Some("hearth"));
        let sensor = directives(&unit_text(service(SENSOR_AGENT))?);
        assert_eq!(sensor.get("StateDirectory").map(String::as_str), Some("hearth-sensor-agent"));
        for (s, key, default) in [
            (service(ENGINE), "data_dir", "/var/lib/hearth"),
            (service(SENSOR_AGENT), "queue_dir", "/var/lib/hearth-sensor-agent/queue"),
        ] {
            let help = Command::new(binary(s.package)).arg("--help").output();
            if let Ok(help) = help {
                let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
                let flag = key.replace('_', "-");
                assert!(
                    help.contains(&format!("--{flag}")) && help.contains(default),
                    "{}: --help no longer shows the default {default} for --{flag}",
                    s.package
                );
            }
            let config =
                std::fs::read_to_string(repo(&format!("deploy/config/{}.toml", s.config)))?;
            assert!(config.contains(&format!("{key} = \"{default}\"")), "{}", s.config);
        }
        Ok(())
    }

    /// A root for `systemd-analyze verify --root`: the machine's own system units (the
    /// targets ours refer to), the units under test in /etc/systemd/system, and the built
    /// binaries at /usr/bin where ExecStart expects them. Nothing of the machine is written.
    fn verify_root(dir: &Path) -> R {
        let system = ["/usr/lib/systemd/system", "/lib/systemd/system"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("sysinit.target").exists())
            .ok_or_else(|| anyhow::anyhow!("no systemd unit directory; install `systemd`"))?;
        std::fs::create_dir_all(dir.join("usr/lib/systemd"))?;
        let copied = Command::new("cp")
            .arg("-a")
            .arg(system)
            .arg(dir.join("usr/lib/systemd/system"))
            .status()?;
        anyhow::ensure!(copied.success(), "cannot copy {}", system.display());
        std::fs::create_dir_all(dir.join("usr/bin"))?;
        std::fs::create_dir_all(dir.join("etc/systemd/system"))?;
        for s in SERVICES {
            std::fs::copy(binary(s.package), dir.join("usr/bin").join(s.package))?;
        }
        Ok(())
    }

    /// `systemd-analyze verify` of one installed unit: its exit status and everything it said.
    fn verify(root: &Path, unit: &str) -> anyhow::Result<(bool, String)> {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no", "--generators=no"])
            .arg(format!("--root={}", root.display()))
            .arg(unit)
            .output()
            .map_err(|e| {
                anyhow::anyhow!("cannot run systemd-analyze ({e}); `cargo xtask test` installs it")
            })?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), said.trim().to_owned()))
    }

    /// Every unit passes `systemd-analyze verify` without a word: the tool exits 0 on unknown
    /// keys and unparsable values (it only prints them), so any output fails the test.
    #[test]
    fn units_pass_systemd_analyze_verify() -> R {
        build_binaries()?;
        let dir = tempfile::tempdir()?;
        verify_root(dir.path())?;
        for s in &SERVICES {
            let unit = format!("{}.service", s.package);
            std::fs::copy(
                repo(&format!("deploy/systemd/{unit}")),
                dir.path().join("etc/systemd/system").join(&unit),
            )?;
            let (ok, said) = verify(dir.path(), &unit)?;
            eprintln!(
                "systemd-analyze verify {unit}: {}",
                if said.is_empty() { "clean" } else { &said }
            );
            assert!(ok && said.is_empty(), "{unit}: {said}");
        }
        // The check itself catches mistakes: a misspelt key and a missing binary.
        let broken = dir.path().join("etc/systemd/system/hearth-broken.service");
        let text = unit_text(service(ENGINE))?.replace("LockPersonality=", "LockPersonalty=");
        std::fs::write(&broken, text)?;
        let (_, said) = verify(dir.path(), "hearth-broken.service")?;
        assert!(said.contains("LockPersonalty"), "a misspelt key went unnoticed: {said}");
        // The real binary, copied there by verify_root.
        std::fs::remove_file(dir.path().join("usr/bin/hearth-web"))?;
        let (ok, said) = verify(dir.path(), "hearth-web.service")?;
        assert!(!ok && said.contains("hearth-web"), "a missing binary went unnoticed: {said}");
        Ok(())
    }

    /// The next notification within `deadline`, or None.
    fn next_message(socket: &UnixDatagram, deadline: Instant) -> anyhow::Result<Option<String>> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        let mut buf = [0u8; 1024];
        match socket.recv(&mut buf) {
            Ok(n) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Wait for a notification equal to `want`, collecting the others.
    fn wait_for(
        socket: &UnixDatagram,
        want: &str,
        within: Duration,
        seen: &mut Vec<String>,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + within;
        while let Some(msg) = next_message(socket, deadline)? {
            let hit = msg == want;
            seen.push(msg);
            if hit {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// What the unit starts, with the example config its ExecStart names, plus only the
    /// overrides a test machine needs (paths in a temp dir, loopback ports, no mDNS, a device
    /// key). systemd's NOTIFY_SOCKET and WATCHDOG_USEC (2 s: pings due every second) go to a
    /// socket of the test. The binary must say READY=1, keep pinging, and on SIGTERM say
    /// STOPPING=1 and exit 0.
    #[test]
    fn binaries_start_from_their_units_config_and_talk_to_systemd() -> R {
        build_binaries()?;
        let dir = tempfile::tempdir()?;
        let tmp = |rel: &str| dir.path().join(rel).to_string_lossy().into_owned();
        let engine_data = tmp("engine");
        let key = |agent: hearth_harness::Service, host: &str| {
            hearth_harness::device_key(
                &binary(ENGINE.package),
                Path::new(&engine_data),
                agent,
                host,
            )
        };
        // A DS18B20 on a fake w1 bus, as the kernel driver shows it (16.062 °C).
        let w1 = dir.path().join("w1/28-0316a2797bff");
        std::fs::create_dir_all(&w1)?;
        std::fs::write(
            w1.join("w1_slave"),
            "01 01 4b 46 7f ff 0f 10 e3 : crc=e3 YES\n01 01 4b 46 7f ff 0f 10 e3 t=16062\n",
        )?;
        // Nothing listens on the discard port: the agents keep trying, which must not stop
        // them from being ready (readings queue, relays stay safe).
        let engine_url = "http://127.0.0.1:9";
        let overrides: Vec<(&Service, Vec<String>)> = vec![
            (
                service(ENGINE),
                ["--data-dir", &engine_data, "--listen", "127.0.0.1:0", "--mdns", "false"]
                    .map(String::from)
                    .to_vec(),
            ),
            (
                service(SENSOR_AGENT),
                vec![
                    "--engine".into(),
                    engine_url.into(),
                    "--host-id".into(),
                    "deploy-sensor".into(),
                    "--device-key".into(),
                    key(SENSOR_AGENT, "deploy-sensor")?,
                    "--w1-dir".into(),
                    tmp("w1"),
                    "--queue-dir".into(),
                    tmp("queue"),
                ],
            ),
            (
                service(RELAY_AGENT),
                vec![
                    "--engine".into(),
                    engine_url.into(),
                    "--host-id".into(),
                    "deploy-relay".into(),
                    "--device-key".into(),
                    key(RELAY_AGENT, "deploy-relay")?,
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    // The example config names no hardware (the agent refuses to start
                    // without one); a test machine has no relays.
                    "--hardware".into(),
                    "simulated".into(),
                    "--sim-world".into(),
                    tmp("world.json"),
                ],
            ),
            // The example config listens on 0.0.0.0:8088 and finds the engine by mDNS, which
            // must not run in the machine's own network namespace. Flags rather than
            // HEARTH_WEB_*: a misspelt flag stops the binary, a misspelt variable would let it
            // browse the LAN.
            (
                service(WEB),
                ["--engine", engine_url, "--listen", "127.0.0.1:0"].map(String::from).to_vec(),
            ),
        ];
        anyhow::ensure!(
            overrides.len() == SERVICES.len(),
            "every service is started as its unit starts it"
        );
        for (s, extra) in overrides {
            let d = directives(&unit_text(s)?);
            let exec = d.get("ExecStart").cloned().unwrap_or_default();
            let mut words = exec.split_whitespace();
            let program = words.next().unwrap_or_default();
            anyhow::ensure!(program == format!("/usr/bin/{}", s.package), "{exec}");
            // /etc/hearth/<name>.toml is what the package installs from deploy/config/.
            let args: Vec<String> = words
                .map(|w| match w.strip_prefix("/etc/hearth/") {
                    Some(file) => {
                        repo(&format!("deploy/config/{file}")).to_string_lossy().into_owned()
                    }
                    None => w.to_owned(),
                })
                .collect();
            let socket_path = dir.path().join(format!("{}.notify", s.package));
            let socket = UnixDatagram::bind(&socket_path)?;
            let started = Instant::now();
            let mut running = Proc::spawn(
                s.package,
                Command::new(binary(s.package))
                    .args(&args)
                    .args(&extra)
                    .env("NOTIFY_SOCKET", &socket_path)
                    .env("WATCHDOG_USEC", "2000000")
                    .env_remove("WATCHDOG_PID")
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null()),
                Group::Own,
                Capture::No,
            )?;
            let mut seen = Vec::new();
            let ready = wait_for(&socket, "READY=1", Duration::from_secs(60), &mut seen)?;
            assert!(
                ready,
                "{}: no READY=1 (got {seen:?}); status {:?}",
                s.package,
                running.try_wait()
            );
            let ready_after = started.elapsed();
            // Three pings in a row, each within the 2 s watchdog: the sensor agent's 10 s
            // interval (from its config) must not starve the watchdog.
            for n in 0..3 {
                let pinged = wait_for(&socket, "WATCHDOG=1", Duration::from_secs(2), &mut seen)?;
                assert!(pinged, "{}: watchdog ping {n} late (got {seen:?})", s.package);
            }
            running.terminate();
            let stopping = wait_for(&socket, "STOPPING=1", Duration::from_secs(10), &mut seen)?;
            assert!(stopping, "{}: no STOPPING=1 (got {seen:?})", s.package);
            let status = running
                .wait_within(Duration::from_secs(10))?
                .ok_or_else(|| anyhow::anyhow!("{} did not exit on SIGTERM", s.package))?;
            assert!(status.success(), "{}: exit {status}", s.package);
            eprintln!(
                "{}: READY=1 after {:.2} s, {} notifications, clean exit on SIGTERM",
                s.package,
                ready_after.as_secs_f64(),
                seen.len()
            );
        }
        Ok(())
    }

    /// A unit command line (`ExecStart=`, `ExecStopPost=`) as argv, with `/etc/hearth/<file>`
    /// mapped to the example in deploy/config/ that the package installs there.
    fn unit_command(line: &str) -> Vec<String> {
        line.split_whitespace()
            .map(|w| match w.strip_prefix("/etc/hearth/") {
                Some(file) => repo(&format!("deploy/config/{file}")).to_string_lossy().into_owned(),
                None => w.to_owned(),
            })
            .collect()
    }

    /// What the relay agent's unit does when the agent is SIGKILLed with an output on: the
    /// (simulated) line keeps the level the dead process wrote, as a GPIO register does; the
    /// unit's `ExecStopPost=` (the same binary and config, `safe-state`) drives it safe. Both
    /// command lines come from the unit; the simulated backend and its world file come from the
    /// environment, as the unit's EnvironmentFile would give them.
    #[test]
    fn relay_unit_drives_the_outputs_safe_after_the_agent_is_killed() -> R {
        use hearth_common::simworld::RelayWorld;
        use hearth_proto::relays::{RelayCommand, RelayFunction, RelayState};

        build_binaries()?;
        let dir = tempfile::tempdir()?;
        let world = dir.path().join("world.json");
        let key = hearth_harness::device_key(
            &binary(ENGINE.package),
            &dir.path().join("engine"),
            RELAY_AGENT,
            "deploy-relay",
        )?;
        let credential: hearth_common::auth::DeviceCredential = key.parse()?;
        let d = directives(&unit_text(service(RELAY_AGENT))?);
        let start = unit_command(d.get("ExecStart").map_or("", String::as_str));
        let stop_post = unit_command(d.get("ExecStopPost").map_or("", String::as_str));
        anyhow::ensure!(start.len() > 1 && stop_post.len() > 1, "{start:?} {stop_post:?}");
        let env = [("HEARTH_RELAY_HARDWARE", "simulated"), ("RUST_LOG", "info"), ("NO_COLOR", "1")];

        let mut running = Proc::spawn(
            RELAY_AGENT.name,
            Command::new(binary(RELAY_AGENT.package))
                .args(&start[1..])
                .args(["--engine", "http://127.0.0.1:9", "--host-id", "deploy-relay"])
                .args(["--device-key", &key, "--listen", "127.0.0.1:0"])
                .envs(env)
                .env("HEARTH_RELAY_SIM_WORLD", &world)
                .stdin(Stdio::null()),
            Group::Own,
            Capture::Keep,
        )?;
        let url = running.listening_url(Duration::from_secs(60))?;
        // The fan: no minimum off time by default, so it may go on right after the start.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client =
            hearth_proto::client::RelayAgentClient::new(&url, Some(credential.engine_credential()));
        let fan = rt.block_on(
            client.command("fan", &RelayCommand { state: RelayState::On, lease_s: Some(600) }),
        )?;
        assert_eq!(fan.state, RelayState::On);
        assert!(RelayWorld::read(&world)?.is_on(RelayFunction::Fan));

        running.kill()?;
        assert!(
            RelayWorld::read(&world)?.is_on(RelayFunction::Fan),
            "a killed agent cleans nothing up: the level it wrote stays"
        );
        let post = Command::new(binary(RELAY_AGENT.package))
            .args(&stop_post[1..])
            .envs(env)
            .env("HEARTH_RELAY_SIM_WORLD", &world)
            .output()?;
        let said = String::from_utf8_lossy(&post.stderr);
        assert!(post.status.success(), "ExecStopPost failed: {said}");
        assert!(!RelayWorld::read(&world)?.is_on(RelayFunction::Fan), "fan safe (off): {said}");
        eprintln!("relay agent SIGKILLed with the fan on; ExecStopPost: {}", said.trim());
        Ok(())
    }

    fn need_cargo_deb() -> R {
        anyhow::ensure!(
            have_cargo_deb(),
            "cargo-deb {CARGO_DEB_VERSION} is missing: `cargo xtask test` installs it, or \
             `cargo install cargo-deb --locked --version {CARGO_DEB_VERSION}`"
        );
        Ok(())
    }

    /// The amd64 package of `package` into `out`, from its debug binary (the package layout
    /// does not depend on the profile; `cargo xtask dist` packages release-small builds).
    fn dev_package(package: &str, out: &Path) -> anyhow::Result<PathBuf> {
        // The dev profile: packaging the test build instead of rebuilding everything
        // optimised. cargo-deb warns that it is meant for releases; that is fine here.
        let mut c = cargo_deb(package, None, "dev", out, true);
        let status = c.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        anyhow::ensure!(status.success(), "cargo deb -p {package} failed");
        std::fs::read_dir(out)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| anyhow::anyhow!("no .deb for {package}"))
    }

    /// `dpkg-deb` on a package: its control fields, file list and control files.
    struct Inspected {
        info: String,
        contents: String,
        control: PathBuf,
    }

    fn inspect(deb: &Path, into: &Path) -> anyhow::Result<Inspected> {
        let dpkg = |args: &[&str]| -> anyhow::Result<String> {
            let out = Command::new("dpkg-deb").args(args).arg(deb).output()?;
            anyhow::ensure!(
                out.status.success(),
                "dpkg-deb {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8(out.stdout)?)
        };
        let info = dpkg(&["--info"])?;
        let contents = dpkg(&["--contents"])?;
        std::fs::create_dir_all(into)?;
        let control = into.join("DEBIAN");
        let out = Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control).output()?;
        anyhow::ensure!(
            out.status.success(),
            "dpkg-deb -e: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files = into.join("files");
        let out = Command::new("dpkg-deb").arg("-x").arg(deb).arg(&files).output()?;
        anyhow::ensure!(
            out.status.success(),
            "dpkg-deb -x: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Inspected { info, contents, control })
    }

    /// Run a maintainer script with `args` in a sandbox: PATH holds only stubs that log their
    /// arguments (getent answers "unknown" unless `user_exists`), so nothing on the machine
    /// changes. Returns the log.
    fn run_script(
        script: &Path,
        args: &[&str],
        user_exists: bool,
        sandbox: &Path,
    ) -> anyhow::Result<String> {
        let bin = sandbox.join("bin");
        let src = sandbox.join("stub-src");
        std::fs::create_dir_all(&bin)?;
        std::fs::create_dir_all(&src)?;
        let log = sandbox.join("log");
        std::fs::write(&log, "")?;
        let mut stubs = Vec::new();
        for tool in [
            "adduser",
            "addgroup",
            "deb-systemd-helper",
            "deb-systemd-invoke",
            "systemctl",
            "getent",
        ] {
            let status = if tool == "getent" && !user_exists { 2 } else { 0 };
            let stub = src.join(tool);
            std::fs::write(
                &stub,
                format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit {status}\n", log.display()),
            )?;
            stubs.push(stub);
        }
        // The executables are written by `install`, not by this process: a file this
        // multi-threaded test process had open for writing stays open in any child another
        // test thread forks before its exec, and executing it then fails with ETXTBSY
        // ("Text file busy"). `install` is single-threaded and has closed it when it exits.
        let installed =
            Command::new("install").args(["-m", "0755", "-t"]).arg(&bin).args(&stubs).status()?;
        anyhow::ensure!(installed.success(), "install of the stubs into {} failed", bin.display());
        let out = Command::new("/bin/sh")
            .arg(script)
            .args(args)
            .env_clear()
            .env("PATH", &bin)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{} {args:?} failed: {}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(std::fs::read_to_string(&log)?)
    }

    /// An ARM ELF header and some bulk: what cargo-deb reads of a binary it packages.
    fn stand_in_elf(arch: &str) -> Vec<u8> {
        let (machine, class): (u16, u8) = if arch == "arm64" { (183, 2) } else { (40, 1) };
        let mut v = vec![0x7f, b'E', b'L', b'F', class, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0];
        v.extend(machine.to_le_bytes());
        v.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
        v
    }

    /// The Pi packages, made from stand-in static ARM binaries in a cargo target dir of the
    /// test, as `cargo xtask dist` and `cargo xtask test` make them: every one of them (the
    /// agents for armhf and arm64, the engine, the dashboard and hearth-provision for arm64),
    /// each for its architecture and depending on no shared library (a tool: on the packages
    /// of the programs it runs), and cargo-deb has nothing to warn about (asked for `$auto`
    /// dependencies of a static binary it warned once a package).
    #[test]
    fn cross_packages_are_made_for_every_pi_without_a_warning() -> R {
        use std::os::unix::fs::PermissionsExt as _;
        need_cargo_deb()?;
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("target");
        for (triple, arch) in CROSS {
            for (name, _) in packages().filter(|(_, arches)| arches.contains(&arch)) {
                let bin = target.join(triple).join(PROFILE).join(name);
                std::fs::create_dir_all(bin.parent().unwrap_or(&target))?;
                std::fs::write(&bin, stand_in_elf(arch))?;
                std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        let mut skipped = Vec::new();
        let built = package_cross(&dir.path().join("debian"), &target, &mut skipped)?;
        assert!(skipped.is_empty(), "{skipped:?}");
        let expected: usize = packages().map(|(_, arches)| arches.len()).sum();
        assert_eq!(built.len(), expected, "{built:?}");
        assert!(
            built.iter().any(|(name, arch, _)| (*name, *arch) == ("hearth-provision", "arm64"))
        );
        for (name, arch, deb) in &built {
            let field = |field: &str| -> anyhow::Result<String> {
                let o = Command::new("dpkg-deb").arg("--field").arg(deb).arg(field).output()?;
                Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
            };
            assert_eq!(field("Package")?, *name);
            assert_eq!(field("Architecture")?, *arch);
            let depends = TOOLS
                .iter()
                .find(|t| t.package == *name)
                .map_or("adduser, init-system-helpers", |t| t.depends);
            assert_eq!(field("Depends")?, depends, "{}", deb.display());
        }
        // What cargo-deb says while making them: no warning.
        for (name, arch, _) in &built {
            let triple = CROSS.iter().find(|(_, a)| a == arch).map(|(t, _)| *t).unwrap_or_default();
            let again = dir.path().join("again");
            let o = cargo_deb(name, Some(triple), PROFILE, &again, false)
                .env("CARGO_TARGET_DIR", &target)
                .output()?;
            let said = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "cargo deb {name} {arch}: {said}");
            assert!(!said.contains("warning"), "cargo deb {name} {arch} warned:\n{said}");
        }
        Ok(())
    }

    /// The amd64 packages, built by cargo-deb from the debug binaries (the package layout does
    /// not depend on the profile; `cargo xtask dist` packages release-small builds):
    /// binary, unit and config where they belong, the config a conffile, Depends sane, and
    /// a postinst that creates the `hearth` user and enables the unit.
    #[test]
    fn amd64_packages_hold_binary_unit_conffile_and_create_the_user() -> R {
        need_cargo_deb()?;
        build_binaries()?;
        let dir = tempfile::tempdir()?;
        for s in SERVICES {
            let out = dir.path().join(s.package);
            let deb = dev_package(s.package, &out)?;
            let name =
                deb.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            assert!(
                name.starts_with(&format!("{}_", s.package)) && name.ends_with("_amd64.deb"),
                "{name}"
            );
            let got = inspect(&deb, &dir.path().join(format!("{}.x", s.package)))?;

            let field = |f: &str| {
                got.info
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(&format!("{f}: ")).map(str::to_owned))
                    .unwrap_or_default()
            };
            assert_eq!(field("Package"), s.package);
            assert_eq!(field("Architecture"), "amd64");
            let depends = field("Depends");
            for dep in ["adduser", "init-system-helpers", "libc6"] {
                assert!(depends.contains(dep), "{}: Depends {depends:?} lacks {dep}", s.package);
            }

            let unit = format!("./usr/lib/systemd/system/{}.service", s.package);
            let config = format!("./etc/hearth/{}.toml", s.config);
            for (path, mode) in [
                (format!("./usr/bin/{}", s.package), "-rwxr-xr-x"),
                (unit.clone(), "-rw-r--r--"),
                (config.clone(), "-rw-r--r--"),
            ] {
                let line = got.contents.lines().find(|l| l.ends_with(&format!(" {path}")));
                assert!(
                    line.is_some_and(|l| l.starts_with(mode)),
                    "{}: {path} {mode} not in\n{}",
                    s.package,
                    got.contents
                );
            }
            // The unit and the config are the repository's, byte for byte.
            let files = dir.path().join(format!("{}.x/files", s.package));
            let packaged = |p: &str| std::fs::read(files.join(p.trim_start_matches("./")));
            assert_eq!(
                packaged(&unit)?,
                std::fs::read(repo(&format!("deploy/systemd/{}.service", s.package)))?
            );
            assert_eq!(
                packaged(&config)?,
                std::fs::read(repo(&format!("deploy/config/{}.toml", s.config)))?
            );

            // The config is a conffile: dpkg keeps an edited copy on upgrade and reinstall.
            let conffiles = std::fs::read_to_string(got.control.join("conffiles"))?;
            assert_eq!(conffiles.trim(), format!("/etc/hearth/{}.toml", s.config), "{}", s.package);

            // The maintainer scripts parse, and the postinst creates the user and enables
            // (engine, dashboard: also starts) the unit; with the user present it creates
            // nothing.
            for script in ["postinst", "prerm", "postrm"] {
                let path = got.control.join(script);
                let ok = Command::new("/bin/sh").arg("-n").arg(&path).status()?.success();
                assert!(ok, "{}: {script} does not parse", s.package);
            }
            let postinst = got.control.join("postinst");
            let sandbox = dir.path().join(format!("{}.sandbox", s.package));
            let log = run_script(&postinst, &["configure", ""], false, &sandbox)?;
            let unit_name = format!("{}.service", s.package);
            assert!(
                log.contains("adduser --system --group --home /var/lib/hearth --no-create-home"),
                "{log}"
            );
            assert!(log.contains(&format!("deb-systemd-helper enable {unit_name}")), "{log}");
            // Started at install only when it needs no device key. The generated start runs
            // only where /run/systemd/system exists, so it is read from the script, not from
            // the stubs' log.
            let text = std::fs::read_to_string(&postinst)?;
            let starts = text.contains("_dh_action=start")
                && text.contains(&format!("deb-systemd-invoke $_dh_action {unit_name}"));
            assert_eq!(
                starts,
                self::starts(&s),
                "{}: postinst starts the unit: {starts}",
                s.package
            );
            assert_eq!(log.contains("adduser hearth gpio"), gpio(&s), "{}: {log}", s.package);
            let log = run_script(&postinst, &["configure", "0.0.9-1"], true, &sandbox)?;
            assert!(!log.contains("adduser --system"), "an existing user is created again: {log}");
            eprintln!(
                "{}: {name} ok (Depends: {depends}; conffile {})",
                s.package,
                conffiles.trim()
            );
        }
        Ok(())
    }

    /// The amd64 package of each tool, from its debug binary: the program in /usr/bin, no unit,
    /// no conffile, no maintainer script, and Depends naming libc and the programs it runs.
    #[test]
    fn amd64_tool_packages_hold_the_program_and_depend_on_what_it_runs() -> R {
        need_cargo_deb()?;
        let dir = tempfile::tempdir()?;
        for t in TOOLS {
            run("build the tool", cargo().args(["build", "--bins", "-p", t.package]))?;
            let out = dir.path().join(t.package);
            let deb = dev_package(t.package, &out)?;
            let got = inspect(&deb, &dir.path().join(format!("{}.x", t.package)))?;
            let files: Vec<&str> = got
                .contents
                .lines()
                .filter(|l| !l.starts_with('d'))
                .filter_map(|l| l.split_whitespace().last())
                .filter(|p| !p.starts_with("./usr/share/doc/"))
                .collect();
            assert_eq!(files, [format!("./usr/bin/{}", t.package)], "{}", got.contents);
            let program = format!(" ./usr/bin/{}", t.package);
            assert!(
                got.contents.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(&program)),
                "{}",
                got.contents
            );
            for script in ["conffiles", "postinst", "prerm", "postrm"] {
                assert!(!got.control.join(script).exists(), "{}: has a {script}", t.package);
            }
            let depends = got
                .info
                .lines()
                .find_map(|l| l.trim().strip_prefix("Depends: "))
                .unwrap_or_default();
            for dep in t.depends.split(", ").chain(["libc6"]) {
                assert!(depends.contains(dep), "{}: Depends {depends:?} lacks {dep}", t.package);
            }
        }
        Ok(())
    }
}
