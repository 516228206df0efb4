//! Provisioning against synthetic Raspberry Pi OS images made here, without root: `sfdisk`
//! writes a DOS label (FAT32 boot, Linux root), `mkfs.ext4 -d` fills the root from a temp
//! dir, `mkfs.vfat --offset` and `mcopy` make the boot partition. The real provisioning runs
//! on them, and the result is read back with the same tools (mtools, debugfs, e2fsck).
//!
//! These are the crate's unit tests (not the end-to-end crate's) because they test its own
//! code and need nothing from the running system; `cargo xtask test` installs the tools
//! (`ensure_system_tools`) and cargo-deb, which makes the agent packages they install from.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::media::{Media, tool};
use super::*;

const BOOT_START: u64 = 2048; // sectors
const BOOT_SECTORS: u64 = 81920; // 40 MiB: FAT32 with 512-byte clusters needs > 65525 clusters
const ROOT_START: u64 = BOOT_START + BOOT_SECTORS;
const IMAGE_BYTES: u64 = 64 << 20;
const KEY: &str =
    "0123456789abcdef.00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHearthTestKeyOnlyForTheProvisioningTest me@laptop";

#[derive(Clone, Copy, PartialEq)]
enum Os {
    /// Trixie with cloud-init.
    Trixie,
    /// Bookworm: no cloud-init.
    Bookworm,
    /// Something else entirely.
    Fedora,
}

fn sh(what: &str, cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let out = cmd.output().map_err(|e| {
        anyhow::anyhow!("{what}: {e} (run `cargo xtask test` once: it installs fdisk, dosfstools, mtools, e2fsprogs)")
    })?;
    ensure!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// An ARM ELF header (what the arch detection and the binary check read) and some bulk, so
/// the copy is more than one block.
fn fake_elf(arch: Arch, len: usize) -> Vec<u8> {
    let (machine, class) = arch.elf();
    let mut v = vec![0x7f, b'E', b'L', b'F', class, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0];
    v.extend(machine.to_le_bytes());
    v.extend((0..len).map(|i| (i * 7 % 251) as u8));
    v
}

/// Writes `files` ((path, content); a content starting with "->" is a symlink) under `dir`.
fn populate(dir: &Path, files: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    for (path, content) in files {
        let p = dir.join(path.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if let Some(target) = content.strip_prefix(b"->") {
            std::os::unix::fs::symlink(String::from_utf8_lossy(target).as_ref(), &p)?;
        } else if path.ends_with('/') {
            std::fs::create_dir_all(&p)?;
        } else {
            std::fs::write(&p, content)?;
        }
    }
    Ok(())
}

struct ImageSpec {
    os: Os,
    arch: Arch,
    /// Boot files to leave out (to make unrecognisable images).
    omit_boot: &'static [&'static str],
}

/// A Raspberry Pi OS-like image in `dir`.
fn make_image(dir: &Path, spec: &ImageSpec) -> anyhow::Result<PathBuf> {
    let img = dir.join("raspios.img");
    std::fs::File::create(&img)?.set_len(IMAGE_BYTES)?; // truncate -s 64M
    let mut sfdisk = tool("sfdisk")
        .arg("-q")
        .arg(&img)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    sfdisk
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(format!("label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\nstart={ROOT_START}, type=83\n").as_bytes())?;
    ensure!(sfdisk.wait()?.success(), "sfdisk failed");

    let (pretty, id, version) = match spec.os {
        Os::Trixie => ("Raspbian GNU/Linux 13 (trixie)", "raspbian", "13"),
        Os::Bookworm => ("Raspbian GNU/Linux 12 (bookworm)", "raspbian", "12"),
        Os::Fedora => ("Fedora Linux 42", "fedora", "42"),
    };
    let os_release = format!(
        "PRETTY_NAME=\"{pretty}\"\nNAME=\"x\"\nVERSION_ID=\"{version}\"\nID={id}\n{}",
        if spec.os == Os::Fedora { "" } else { "ID_LIKE=debian\n" }
    );
    let rootdir = dir.join("rootfs");
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("usr/lib/os-release", os_release.into_bytes()),
        ("etc/os-release", b"->../usr/lib/os-release".to_vec()),
        ("usr/bin/ls", fake_elf(spec.arch, 64)),
        ("etc/hostname", b"raspberrypi\n".to_vec()),
        (
            "etc/hosts",
            b"127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost\n\n127.0.1.1\traspberrypi\n"
                .to_vec(),
        ),
        ("etc/systemd/system/multi-user.target.wants/", Vec::new()),
        ("home/pi/", Vec::new()),
    ];
    match spec.os {
        Os::Trixie => {
            files.push(("usr/bin/cloud-init", b"#!/usr/bin/python3\n".to_vec()));
            files.push(("etc/cloud/cloud.cfg", b"datasource_list: [ NoCloud, None ]\n".to_vec()));
        }
        _ => files.push((
            "var/lib/NetworkManager/NetworkManager.state",
            b"[main]\nWirelessEnabled=false\n".to_vec(),
        )),
    }
    populate(&rootdir, &files)?;
    let root_kib = (IMAGE_BYTES - ROOT_START * 512) / 1024;
    sh(
        "mkfs.ext4",
        tool("mkfs.ext4")
            .args(["-q", "-F", "-E"])
            .arg(format!("offset={},root_owner=0:0", ROOT_START * 512))
            .arg("-d")
            .arg(&rootdir)
            .arg(&img)
            .arg(format!("{root_kib}k")),
    )?;
    sh(
        "mkfs.vfat",
        tool("mkfs.vfat")
            .args(["--offset", &BOOT_START.to_string(), "-F", "32", "-s", "1", "-n", "bootfs"])
            .arg(&img)
            .arg((BOOT_SECTORS / 2).to_string()),
    )?;
    let bootdir = dir.join("bootfs");
    let mut boot: Vec<(&str, Vec<u8>)> = vec![
        ("config.txt", b"# For more options and information see\n# http://rptl.io/configtxt\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n\n[all]\narm_boost=1\n".to_vec()),
        ("cmdline.txt", b"console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n".to_vec()),
        ("start.elf", b"firmware".to_vec()),
        ("kernel.img", b"kernel".to_vec()),
    ];
    if spec.os == Os::Trixie {
        boot.push(("meta-data", b"dsmode: local\ninstance_id: rpios-image\n".to_vec()));
        boot.push(("user-data", b"#cloud-config\nssh_pwauth: false\n".to_vec()));
    }
    boot.retain(|(n, _)| !spec.omit_boot.contains(n));
    populate(&bootdir, &boot)?;
    let mut mcopy = tool("mcopy");
    mcopy.arg("-i").arg(format!("{}@@{}", img.display(), BOOT_START * 512));
    for (n, _) in &boot {
        mcopy.arg(bootdir.join(n));
    }
    sh("mcopy", mcopy.arg("::/"))?;
    Ok(img)
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(dir: &Path, arch: Arch) -> anyhow::Result<Files> {
        std::fs::write(dir.join("agent"), fake_elf(arch, 300_000))?;
        std::fs::write(dir.join("device.key"), format!("{KEY}\n"))?;
        std::fs::write(dir.join("id_ed25519.pub"), format!("{SSH_KEY}\n"))?;
        Ok(Files { dir: dir.to_path_buf() })
    }
}

fn args(image: &Path, agent: Agent, f: &Files) -> Args {
    Args {
        image: Some(image.to_path_buf()),
        boot: None,
        root: None,
        agent,
        arch: None,
        binary: Some(f.dir.join("agent")),
        config: None,
        // The unit of the agent's package, which this program carries.
        unit: None,
        engine: None,
        host_id: None,
        device_key_file: f.dir.join("device.key"),
        w1_pin: 4,
        ssh_key: Some(f.dir.join("id_ed25519.pub")),
        user: "pi".into(),
        password_hash: None,
        wifi_ssid: Some("Home \"Net\"".into()),
        wifi_psk: Some("correct horse battery".into()),
        wifi_country: Some("de".into()),
        hostname: Some("hall".into()),
        first_boot: FirstBootKind::Auto,
    }
}

/// A fresh image of `os` and `arch` in a temp dir, with an agent, keys and arguments that
/// provision `agent` into it. The temp dir goes when `dir` is dropped: bind it.
struct Setup {
    dir: tempfile::TempDir,
    img: PathBuf,
    f: Files,
    a: Args,
}

fn setup(os: Os, arch: Arch, agent: Agent) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let img = make_image(dir.path(), &ImageSpec { os, arch, omit_boot: &[] })?;
    let f = Files::new(dir.path(), arch)?;
    let a = args(&img, agent, &f);
    Ok(Setup { dir, img, f, a })
}

fn text(b: Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()
}

/// The file systems are still consistent: e2fsck on the root, fsck.fat on a copy of the boot.
fn fsck(img: &Path, media: &Media, dir: &Path) -> anyhow::Result<()> {
    sh("e2fsck -fn", tool("e2fsck").args(["-f", "-n", media.root.spec()]))?;
    let all = std::fs::read(img)?;
    let start = (BOOT_START * 512) as usize;
    let boot = dir.join("boot.part");
    std::fs::write(&boot, &all[start..start + (BOOT_SECTORS * 512) as usize])?;
    sh("fsck.fat -n", tool("fsck.fat").arg("-n").arg(&boot))
}

#[test]
fn cloud_init_image_gets_sensor_agent_and_first_boot_files() -> anyhow::Result<()> {
    let Setup { dir, img, f, mut a } = setup(Os::Trixie, Arch::Armhf, Agent::Sensor)?;
    a.engine = Some("http://192.168.1.10:8080".into());
    a.w1_pin = 17;
    let report = provision(&a)?;
    assert_eq!(
        (report.arch, report.first_boot, report.w1_overlay),
        (Arch::Armhf, FirstBootKind::CloudInit, true)
    );
    // Again, with another pin: everything is replaced, nothing duplicated.
    a.w1_pin = 4;
    provision(&a)?;

    let media = Media::open_image(&img)?;
    let root = &media.root;
    let bin = root.stat("/usr/local/bin/hearth-sensor-agent")?.context("binary missing")?;
    assert_eq!((bin.kind.as_str(), bin.mode, bin.uid, bin.gid), ("regular", 0o755, 0, 0));
    assert_eq!(
        root.read("/usr/local/bin/hearth-sensor-agent")?,
        Some(std::fs::read(f.dir.join("agent"))?)
    );

    let key = root.stat("/etc/hearth/sensor-agent.env")?.context("key missing")?;
    assert_eq!((key.mode, key.uid, key.gid), (0o600, 0, 0));
    assert_eq!(
        text(root.read("/etc/hearth/sensor-agent.env")?),
        format!("HEARTH_SENSOR_DEVICE_KEY={KEY}\n")
    );

    let conf = root.stat("/etc/hearth/sensor-agent.toml")?.context("config missing")?;
    assert_eq!((conf.mode, conf.uid), (0o644, 0));
    let conf = text(root.read("/etc/hearth/sensor-agent.toml")?);
    let parsed: toml::Table = toml::from_str(&conf)?;
    assert_eq!(config_str(&parsed, "engine").as_deref(), Some("http://192.168.1.10:8080"));
    assert_eq!(config_str(&parsed, "host_id").as_deref(), Some("hall"));
    assert!(!parsed.contains_key("device_key"));
    assert_eq!(conf.matches("\nhost_id = ").count(), 1, "{conf}");

    let unit = text(root.read("/etc/systemd/system/hearth-sensor-agent.service")?);
    assert!(
        unit.contains(
            "ExecStart=/usr/local/bin/hearth-sensor-agent --config /etc/hearth/sensor-agent.toml"
        ),
        "{unit}"
    );
    let link = root
        .stat("/etc/systemd/system/multi-user.target.wants/hearth-sensor-agent.service")?
        .context("not enabled")?;
    assert_eq!(link.kind, "symlink");
    assert_eq!(link.target.as_deref(), Some("/etc/systemd/system/hearth-sensor-agent.service"));
    // The unit loads the key file itself, so no drop-in is needed for it.
    let unit = text(root.read("/etc/systemd/system/hearth-sensor-agent.service")?);
    assert!(unit.contains("EnvironmentFile=-/etc/hearth/sensor-agent.env"), "{unit}");
    let dropin =
        root.read("/etc/systemd/system/hearth-sensor-agent.service.d/hearth-provision.conf")?;
    assert!(dropin.is_none(), "a drop-in the unit does not need");

    let boot = &media.boot;
    let config_txt = text(boot.read("config.txt")?);
    assert_eq!(config_txt.matches("dtoverlay=w1-gpio").count(), 1, "{config_txt}");
    assert!(
        config_txt.ends_with("dtoverlay=w1-gpio,gpiopin=4\n")
            && config_txt.contains("[cm4]\notg_mode=1"),
        "{config_txt}"
    );
    let user_data = text(boot.read("user-data")?);
    for want in [
        "#cloud-config\n",
        "hostname: hall\n",
        "- name: pi\n",
        SSH_KEY,
        "enable_ssh: true\n",
        "ssh_pwauth: false\n",
        "lock_passwd: true\n",
    ] {
        assert!(user_data.contains(want), "user-data lacks {want:?}:\n{user_data}");
    }
    let net = text(boot.read("network-config")?);
    for want in [
        "\"Home \\\"Net\\\"\":",
        "password: \"correct horse battery\"",
        "regulatory-domain: \"DE\"",
        "wlan0:",
    ] {
        assert!(net.contains(want), "network-config lacks {want:?}:\n{net}");
    }
    assert!(text(boot.read("meta-data")?).contains("instance-id: hearth-hall-"));
    assert_eq!(boot.read("userconf.txt")?, None, "no legacy files on a cloud-init image");
    // Legacy root files stay out too; the image's own hostname is cloud-init's to change.
    assert_eq!(text(root.read("/etc/hostname")?), "raspberrypi\n");
    fsck(&img, &media, dir.path())
}

#[test]
fn legacy_image_gets_relay_agent_and_first_boot_files() -> anyhow::Result<()> {
    let Setup { dir, img, f, mut a } = setup(Os::Bookworm, Arch::Arm64, Agent::Relay)?;
    a.hostname = Some("furnace".into());
    a.host_id = Some("relay-furnace".into());
    a.password_hash = Some("$6$salt$hash".into());
    let report = provision(&a)?;
    assert_eq!(
        (report.arch, report.first_boot, report.w1_overlay),
        (Arch::Arm64, FirstBootKind::Legacy, false)
    );
    provision(&a)?;

    let media = Media::open_image(&img)?;
    let (root, boot) = (&media.root, &media.boot);
    assert_eq!(
        root.read("/usr/local/bin/hearth-relay-agent")?,
        Some(std::fs::read(f.dir.join("agent"))?)
    );
    let key = root.stat("/etc/hearth/relay-agent.env")?.context("key missing")?;
    assert_eq!((key.mode, key.uid), (0o600, 0));
    assert!(
        text(root.read("/etc/hearth/relay-agent.env")?).starts_with("HEARTH_RELAY_DEVICE_KEY=")
    );
    let conf: toml::Table = toml::from_str(&text(root.read("/etc/hearth/relay-agent.toml")?))?;
    assert_eq!(config_str(&conf, "host_id").as_deref(), Some("relay-furnace"));
    assert_eq!(config_str(&conf, "engine"), None, "no --engine: discovery");
    assert!(conf.contains_key("outputs"), "the tables survive the edit");
    assert!(
        root.stat("/etc/systemd/system/multi-user.target.wants/hearth-relay-agent.service")?
            .is_some()
    );

    assert_eq!(text(root.read("/etc/hostname")?), "furnace\n");
    let hosts = text(root.read("/etc/hosts")?);
    assert!(hosts.contains("127.0.1.1\tfurnace\n") && !hosts.contains("raspberrypi"), "{hosts}");
    assert_eq!(text(root.read("/etc/ssh/authorized_keys/pi")?), format!("{SSH_KEY}\n"));
    let sshd = text(root.read("/etc/ssh/sshd_config.d/50-hearth-provision.conf")?);
    assert!(sshd.contains("AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u"));
    assert!(!sshd.contains("PasswordAuthentication no"), "a password hash was given");
    let nm = root
        .stat("/etc/NetworkManager/system-connections/hearth-wifi.nmconnection")?
        .context("no Wi-Fi")?;
    assert_eq!((nm.mode, nm.uid), (0o600, 0));
    let nm = text(root.read("/etc/NetworkManager/system-connections/hearth-wifi.nmconnection")?);
    assert!(
        nm.contains("ssid=Home \"Net\"\n") && nm.contains("psk=correct horse battery\n"),
        "{nm}"
    );
    assert!(
        text(root.read("/var/lib/NetworkManager/NetworkManager.state")?)
            .contains("WirelessEnabled=true")
    );

    assert_eq!(boot.read("ssh")?, Some(Vec::new()));
    assert_eq!(text(boot.read("userconf.txt")?), "pi:$6$salt$hash\n");
    let cmdline = text(boot.read("cmdline.txt")?);
    assert_eq!(cmdline.matches("cfg80211.ieee80211_regdom=").count(), 1, "{cmdline}");
    assert!(
        cmdline.starts_with("console=serial0,115200")
            && cmdline.trim_end().ends_with("cfg80211.ieee80211_regdom=DE")
    );
    assert_eq!(cmdline.lines().count(), 1);
    assert_eq!(boot.read("user-data")?, None);
    assert!(
        !text(boot.read("config.txt")?).contains("w1-gpio"),
        "relay agents get no 1-Wire overlay"
    );
    fsck(&img, &media, dir.path())
}

fn refusal(a: &Args) -> String {
    match provision(a) {
        Ok(_) => panic!("provisioned {:?}, which it must refuse", a.image),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn refuses_what_it_does_not_recognise() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let f = Files::new(dir.path(), Arch::Armhf)?;

    let missing = refusal(&args(&dir.path().join("nope.img"), Agent::Sensor, &f));
    assert!(missing.contains("No such file"), "{missing}");

    let folder = refusal(&args(dir.path(), Agent::Sensor, &f));
    assert!(folder.contains("neither a regular file nor a block device"), "{folder}");

    // A bare ext4 file system: no partition table.
    let bare = dir.path().join("bare.img");
    std::fs::File::create(&bare)?.set_len(8 << 20)?;
    sh("mkfs.ext4", tool("mkfs.ext4").args(["-q", "-F"]).arg(&bare))?;
    let e = refusal(&args(&bare, Agent::Sensor, &f));
    assert!(e.contains("no partition table"), "{e}");

    // FAT without config.txt: some other card. It must be left untouched.
    let other = dir.path().join("other");
    std::fs::create_dir(&other)?;
    let img = make_image(
        &other,
        &ImageSpec { os: Os::Trixie, arch: Arch::Armhf, omit_boot: &["config.txt"] },
    )?;
    let before = std::fs::read(&img)?;
    let e = refusal(&args(&img, Agent::Sensor, &f));
    assert!(e.contains("no config.txt"), "{e}");
    assert!(std::fs::read(&img)? == before, "a refused image was modified");

    // No firmware on the boot partition.
    let nofw = dir.path().join("nofw");
    std::fs::create_dir(&nofw)?;
    let img = make_image(
        &nofw,
        &ImageSpec { os: Os::Trixie, arch: Arch::Armhf, omit_boot: &["start.elf", "kernel.img"] },
    )?;
    let e = refusal(&args(&img, Agent::Sensor, &f));
    assert!(e.contains("no start*.elf"), "{e}");

    // Not Debian.
    let fedora = dir.path().join("fedora");
    std::fs::create_dir(&fedora)?;
    let img =
        make_image(&fedora, &ImageSpec { os: Os::Fedora, arch: Arch::Armhf, omit_boot: &[] })?;
    let e = refusal(&args(&img, Agent::Sensor, &f));
    assert!(e.contains("not Debian"), "{e}");

    // A 64-bit agent for a 32-bit image.
    let arm64 = dir.path().join("arm64");
    std::fs::create_dir(&arm64)?;
    let img = make_image(&arm64, &ImageSpec { os: Os::Trixie, arch: Arch::Armhf, omit_boot: &[] })?;
    let f64 = Files::new(&arm64, Arch::Arm64)?;
    let e = refusal(&args(&img, Agent::Sensor, &f64));
    assert!(e.contains("built for Arm64, the image is Armhf"), "{e}");

    // A key that is not a device key, and a private SSH key.
    let mut a = args(&img, Agent::Sensor, &f);
    std::fs::write(dir.path().join("bad.key"), "hunter2\n")?;
    a.device_key_file = dir.path().join("bad.key");
    assert!(refusal(&a).contains("not a device key"));
    let mut a = args(&img, Agent::Sensor, &f);
    std::fs::write(dir.path().join("id"), "-----BEGIN OPENSSH PRIVATE KEY-----\n")?;
    a.ssh_key = Some(dir.path().join("id"));
    assert!(refusal(&a).contains("PRIVATE key"));
    Ok(())
}

#[test]
fn unit_exec_start_is_pointed_at_the_installed_binary() {
    // (unit, its agent, a line it has once pointed at the installed binary, the config its
    // ExecStart names, the targets it is wanted by)
    let cases: [(&str, Agent, &str, &str, &[&str]); 4] = [
        (
            "[Service]\nExecStart=/usr/bin/hearth-relay-agent --config=/etc/hearth/relay.toml\n\
             [Install]\nWantedBy=multi-user.target\n",
            Agent::Relay,
            "ExecStart=/usr/local/bin/hearth-relay-agent --config=/etc/hearth/relay.toml\n",
            "/etc/hearth/relay.toml",
            &["multi-user.target"],
        ),
        // Every command line running the agent follows it, e.g. the relay agent's safe-state.
        (
            "[Service]\nExecStart=/usr/bin/hearth-relay-agent --config /c.toml\n\
             ExecStopPost=-/usr/bin/hearth-relay-agent --config /c.toml safe-state\n",
            Agent::Relay,
            "ExecStopPost=-/usr/local/bin/hearth-relay-agent --config /c.toml safe-state\n",
            "/c.toml",
            &[],
        ),
        // The packaged units: the relay agent's safe-state after any exit runs the installed
        // binary too.
        (
            Agent::Relay.packaged_unit(),
            Agent::Relay,
            "ExecStopPost=/usr/local/bin/hearth-relay-agent --config /etc/hearth/relay-agent.toml \
             safe-state\n",
            "/etc/hearth/relay-agent.toml",
            &["multi-user.target"],
        ),
        (
            Agent::Sensor.packaged_unit(),
            Agent::Sensor,
            "ExecStart=/usr/local/bin/hearth-sensor-agent --config /etc/hearth/sensor-agent.toml\n",
            "/etc/hearth/sensor-agent.toml",
            &["multi-user.target"],
        ),
    ];
    for (unit, agent, line, want_config, want_wanted) in cases {
        let installed = format!("/usr/local/bin/{}", agent.bin());
        let (text, config, wanted) = prepare_unit(unit, &agent.bin(), &installed);
        assert!(text.contains(line), "{text}");
        assert_eq!(config.as_deref(), Some(want_config));
        assert_eq!(wanted, want_wanted);
    }
    assert!(!Agent::Sensor.packaged_unit().contains("ExecStopPost"));
}

/// The repository's file `rel` (what the agents' packages install).
fn repo_file(rel: &str) -> anyhow::Result<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    std::fs::read_to_string(root.join(rel)).with_context(|| rel.to_owned())
}

/// The unit provisioned onto the card is the one the agent's package installs, the binary's
/// path in its command lines aside (the card's agent is in /usr/local/bin, the package's in
/// /usr/bin); never a unit of another kind (the simple, DynamicUser unit once written when no
/// unit file was at hand).
fn assert_packaged_unit(on_card: &str, packaged: &str, agent: Agent) {
    let bin = agent.bin();
    assert!(on_card.contains(&format!("ExecStart=/usr/local/bin/{bin} ")), "{on_card}");
    assert_eq!(
        on_card.replace(&format!("/usr/local/bin/{bin}"), &format!("/usr/bin/{bin}")),
        packaged,
        "the unit on the card is not the package's"
    );
    let directives: Vec<&str> = on_card.lines().map(str::trim).collect();
    assert!(directives.contains(&"Type=notify") && directives.contains(&"User=hearth"));
    assert!(
        !directives.iter().any(|l| l.starts_with("DynamicUser") || *l == "Type=simple"),
        "{on_card}"
    );
}

/// The packaged units install and enable: the binary path in ExecStart is the installed one,
/// the config lands where the unit reads it, the unit is the package's (deploy/systemd, byte
/// for byte but for the binary's path), its user is created at first boot.
#[test]
fn packaged_units_install() -> anyhow::Result<()> {
    for agent in [Agent::Sensor, Agent::Relay] {
        let packaged = repo_file(&format!("deploy/systemd/{}", agent.unit()))?;
        assert_eq!(agent.packaged_unit(), packaged);
        let Setup { dir: _dir, img, a, .. } = setup(Os::Trixie, Arch::Armhf, agent)?;
        provision(&a)?;
        let media = Media::open_image(&img)?;
        let installed = text(media.root.read(&format!("/etc/systemd/system/{}", agent.unit()))?);
        let (_, config, wanted) =
            prepare_unit(&installed, &agent.bin(), &format!("/usr/local/bin/{}", agent.bin()));
        assert!(installed.contains(&format!("/usr/local/bin/{}", agent.bin())), "{installed}");
        assert!(!installed.contains(&format!("/usr/bin/{}", agent.bin())), "{installed}");
        assert_packaged_unit(&installed, &packaged, agent);
        let config = config.unwrap_or_else(|| format!("/etc/hearth/{}.toml", agent.stem()));
        let on_card = text(media.root.read(&config)?);
        // The package's example config, with the host id set.
        let example = repo_file(&format!("deploy/config/{}.toml", agent.stem()))?;
        let first_table = example.find("\n[").map_or(example.len(), |i| i + 1);
        assert!(on_card.contains(&example[first_table..]), "{config}:\n{on_card}");
        for target in wanted {
            let link = format!("/etc/systemd/system/{target}.wants/{}", agent.unit());
            assert!(media.root.stat(&link)?.is_some(), "{link} missing");
        }
        // The unit's `User=hearth` exists at first boot: systemd-sysusers creates it.
        let users = text(media.root.read("/etc/sysusers.d/hearth.conf")?);
        assert!(users.lines().any(|l| l.starts_with("u hearth ")), "{users}");
        assert!(users.lines().any(|l| l == "m hearth gpio"), "{users}");
    }
    Ok(())
}

/// The agent's Debian package, made by cargo-deb from the repository's metadata as `cargo
/// xtask dist` makes the Pi packages, around a stand-in binary (`agent`, the ELF it holds).
fn agent_package(agent: Agent, arch: Arch, dir: &Path) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt as _;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    let target = dir.join("target");
    let bin = target.join(arch.triple()).join("release-small").join(agent.bin());
    std::fs::create_dir_all(bin.parent().context("bin dir")?)?;
    let elf = fake_elf(arch, 200_000);
    std::fs::write(&bin, &elf)?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    let out = dir.join("packages");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let made = std::process::Command::new(cargo)
        .current_dir(root)
        .args(["deb", "--no-build", "--locked", "-p", &agent.bin(), "--profile", "release-small"])
        .args(["--target", arch.triple(), "--variant", "static", "-o"])
        .arg(&out)
        .env("CARGO_TARGET_DIR", &target)
        .output()?;
    ensure!(
        made.status.success(),
        "cargo deb -p {} failed (cargo-deb 3.8.0 is needed: `cargo xtask test` installs it): {}",
        agent.bin(),
        String::from_utf8_lossy(&made.stderr)
    );
    let deb = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("cargo deb made no .deb")?;
    Ok((deb, elf))
}

/// A file of a package, as dpkg would install it.
fn packaged_file(deb: &Path, path: &str, dir: &Path) -> anyhow::Result<String> {
    sh("dpkg-deb -x", tool("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    std::fs::read_to_string(dir.join(path.trim_start_matches('/'))).with_context(|| path.to_owned())
}

/// What an installed hearth-provision is given: the agent's .deb (by path, or the directory it
/// was downloaded to). The card gets the package's binary, and the unit the package installs.
#[test]
fn agent_packages_install_their_binary_and_unit() -> anyhow::Result<()> {
    for (agent, arch, by_dir) in
        [(Agent::Sensor, Arch::Armhf, false), (Agent::Relay, Arch::Arm64, true)]
    {
        let Setup { dir, img, f, mut a } = setup(Os::Trixie, arch, agent)?;
        let (deb, elf) = agent_package(agent, arch, dir.path())?;
        let unit_path = format!("/usr/lib/systemd/system/{}", agent.unit());
        let packaged = packaged_file(&deb, &unit_path, &dir.path().join("x"))?;
        a.binary =
            Some(if by_dir { deb.parent().context("deb dir")?.to_path_buf() } else { deb.clone() });
        provision(&a)?;
        let media = Media::open_image(&img)?;
        assert_eq!(media.root.read(&format!("/usr/local/bin/{}", agent.bin()))?, Some(elf));
        let on_card = text(media.root.read(&format!("/etc/systemd/system/{}", agent.unit()))?);
        assert_packaged_unit(&on_card, &packaged, agent);

        // The package of the other agent, or for the other architecture, is refused.
        let other = if agent == Agent::Sensor { Agent::Relay } else { Agent::Sensor };
        let mut wrong = args(&img, other, &f);
        wrong.binary = Some(deb.clone());
        let e = refusal(&wrong);
        assert!(e.contains(&format!("its Package is {:?}", agent.bin())), "{e}");
        let other_arch = if arch == Arch::Armhf { Arch::Arm64 } else { Arch::Armhf };
        let other_image = setup(Os::Trixie, other_arch, agent)?;
        let mut wrong = other_image.a.clone();
        wrong.binary = Some(deb.clone());
        let e = refusal(&wrong);
        assert!(e.contains(&format!("its Architecture is {:?}", arch.deb())), "{e}");
    }
    Ok(())
}

/// A directory without the agent names what it looked for and how to get it.
#[test]
fn a_directory_without_the_agent_says_what_to_pass() -> anyhow::Result<()> {
    let Setup { dir, mut a, .. } = setup(Os::Trixie, Arch::Armhf, Agent::Sensor)?;
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty)?;
    a.binary = Some(empty);
    let e = refusal(&a);
    assert!(
        e.contains("hearth-sensor-agent_*_armhf.deb")
            && e.contains("arm-unknown-linux-musleabihf/release-small/hearth-sensor-agent")
            && e.contains("Pass --binary"),
        "{e}"
    );
    Ok(())
}
