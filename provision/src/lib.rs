//! `hearth-provision`: writes a Hearth agent, its systemd unit, config and credential, and the
//! first-boot settings (login user, SSH key, Wi-Fi, hostname) into a Raspberry Pi OS Lite
//! image file or an already-flashed card, without mounting anything (no root needed for an
//! image file). See docs/deploy-pi-zero.md.
//!
//! It needs no checkout of the repository: the units and example configs it installs are the
//! files the agents' Debian packages install (`deploy/systemd/`, `deploy/config/`), carried in
//! the binary, and the agent comes from its `.deb` or a static binary (`--binary`).
//! `cargo xtask provision` is the same program, run from a checkout.

mod firstboot;
mod media;
mod packaged;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::ValueEnum;

use firstboot::{FirstBoot, Wifi};
use media::{Media, Op};

/// Which Hearth agent a card gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Agent {
    Sensor,
    Relay,
}

impl Agent {
    /// `sensor-agent`: the stem of the binary, unit, config and key names.
    fn stem(self) -> &'static str {
        match self {
            Agent::Sensor => "sensor-agent",
            Agent::Relay => "relay-agent",
        }
    }
    fn bin(self) -> String {
        format!("hearth-{}", self.stem())
    }
    fn unit(self) -> String {
        format!("hearth-{}.service", self.stem())
    }
    /// The agent's environment variable prefix (`HEARTH_SENSOR_DEVICE_KEY`, ...).
    fn env(self) -> &'static str {
        match self {
            Agent::Sensor => "HEARTH_SENSOR",
            Agent::Relay => "HEARTH_RELAY",
        }
    }
    /// The device key role the agent needs (`hearth-engine device-key --role`).
    fn role(self) -> &'static str {
        match self {
            Agent::Sensor => "sensor",
            Agent::Relay => "relay",
        }
    }
}

/// The Raspberry Pi OS architecture of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// 32-bit Raspberry Pi OS: the ARMv6 build, which runs on every Pi (Zero/Zero W/1 need it).
    Armhf,
    /// 64-bit Raspberry Pi OS (Zero 2 W, Pi 3/4/5).
    Arm64,
}

impl Arch {
    fn triple(self) -> &'static str {
        match self {
            Arch::Armhf => "arm-unknown-linux-musleabihf",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
    /// The Debian architecture (of the image, and of the agent's package for it).
    fn deb(self) -> &'static str {
        match self {
            Arch::Armhf => "armhf",
            Arch::Arm64 => "arm64",
        }
    }
    /// ELF `e_machine` and `EI_CLASS` (1 = 32-bit, 2 = 64-bit).
    fn elf(self) -> (u16, u8) {
        match self {
            Arch::Armhf => (40, 1),
            Arch::Arm64 => (183, 2),
        }
    }
    fn from_elf(head: &[u8]) -> Option<Arch> {
        if head.len() < 20 || head[..4] != *b"\x7fELF" || head[5] != 1 {
            return None;
        }
        let machine = u16::from_le_bytes([head[18], head[19]]);
        [Arch::Armhf, Arch::Arm64].into_iter().find(|a| a.elf() == (machine, head[4]))
    }
}

/// How the image applies the first-boot settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FirstBootKind {
    /// cloud-init when the image has it, else legacy.
    Auto,
    /// `user-data`, `network-config`, `meta-data` on the boot partition (Trixie and later).
    CloudInit,
    /// `userconf.txt`, `ssh`, and files in the root file system (Bookworm and earlier).
    Legacy,
}

/// Provision a Raspberry Pi OS Lite image or card with a Hearth agent.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example, with the agent's package downloaded next to the image:\n  \
                  hearth-provision --image raspios-lite-armhf.img --agent sensor \\\n    \
                  --binary hearth-sensor-agent_0.1.0-1_armhf.deb \\\n    \
                  --host-id hall --hostname hall --device-key-file hall.key \\\n    \
                  --ssh-key ~/.ssh/id_ed25519.pub --wifi-ssid Home --wifi-country DE\n\
                  (the Wi-Fi passphrase from HEARTH_WIFI_PSK or --wifi-psk)\n\n\
                  Then write the image to the card (Raspberry Pi Imager's \"Use custom\", or dd).\n\
                  The unit and example config written are the ones the agent's Debian package \
                  installs; they are part of this program, which needs no Hearth source tree.")]
pub struct Args {
    /// A Raspberry Pi OS Lite image file (unpacked .img), or a whole card (/dev/sdX, needs
    /// root). It must have a FAT boot and an ext4 root partition.
    #[arg(long, required_unless_present = "boot", conflicts_with_all = ["boot", "root"])]
    pub image: Option<PathBuf>,
    /// An already-flashed card's boot partition (/dev/sdX1; needs root; with --root).
    #[arg(long, requires = "root")]
    pub boot: Option<PathBuf>,
    /// An already-flashed card's root partition (/dev/sdX2; needs root; with --boot).
    #[arg(long, requires = "boot")]
    pub root: Option<PathBuf>,
    /// Which agent to install.
    #[arg(long, value_enum)]
    pub agent: Agent,
    /// The image's architecture. Default: read from the image (the ELF header of /usr/bin/ls).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// The agent: its Debian package for the image's architecture
    /// (hearth-<agent>-agent_<version>_armhf.deb or _arm64.deb; needs dpkg-deb), its static
    /// binary, or a directory holding either (one such .deb, or
    /// <triple>/release-small/hearth-<agent>-agent as a source tree's cross build leaves it).
    /// Default: the current directory (`cargo xtask provision`: the source tree's target dir).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// The agent's TOML config. Default: the example config the agent's package installs as
    /// /etc/hearth/<agent>-agent.toml (part of this program).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A systemd unit of your own. Default: the unit the agent's package installs (part of this
    /// program: Type=notify, user hearth, hardened), run from /usr/local/bin.
    #[arg(long)]
    pub unit: Option<PathBuf>,
    /// The engine's URL (http://host:8080). Default: found by mDNS on the LAN.
    #[arg(long)]
    pub engine: Option<String>,
    /// The agent's host id, which its device key was made for. Default: --hostname.
    #[arg(long)]
    pub host_id: Option<String>,
    /// A file holding the agent's device key, as printed by `hearth-engine device-key --role
    /// <sensor|relay|both> <host id>`.
    #[arg(long)]
    pub device_key_file: PathBuf,
    /// Sensor agent with the kernel 1-Wire driver: the GPIO (BCM number) of the DS18B20 data
    /// line, for `dtoverlay=w1-gpio,gpiopin=N` in config.txt.
    #[arg(long, default_value_t = 4)]
    pub w1_pin: u8,
    /// A public key file (e.g. ~/.ssh/id_ed25519.pub) for SSH logins as --user.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// The login user.
    #[arg(long, default_value = "pi")]
    pub user: String,
    /// The login user's password as a crypt(3) hash (`openssl passwd -6`). Without it the
    /// user logs in with the SSH key only.
    #[arg(long, env = "HEARTH_PASSWORD_HASH", hide_env_values = true)]
    pub password_hash: Option<String>,
    /// Wi-Fi network name.
    #[arg(long, requires_all = ["wifi_psk", "wifi_country"])]
    pub wifi_ssid: Option<String>,
    /// Wi-Fi passphrase (8-63 characters) or 64-hex PSK. Prefer the environment variable.
    #[arg(long, env = "HEARTH_WIFI_PSK", hide_env_values = true)]
    pub wifi_psk: Option<String>,
    /// Wi-Fi country (ISO 3166 code, e.g. DE, GB, US): the radio stays off without it.
    #[arg(long)]
    pub wifi_country: Option<String>,
    /// The Pi's hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Which first-boot mechanism to write.
    #[arg(long, value_enum, default_value = "auto")]
    pub first_boot: FirstBootKind,
}

/// What a provisioning run found and did.
#[derive(Debug)]
pub struct Report {
    /// The image's architecture (the agent's, checked).
    pub arch: Arch,
    /// The first-boot mechanism written.
    pub first_boot: FirstBootKind,
    /// Whether config.txt got the 1-Wire overlay.
    pub w1_overlay: bool,
}

struct Progress {
    started: Instant,
    step: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.step += 1;
        eprintln!(
            "provision: [{:>2}] {what} ({:.1} s)",
            self.step,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn read_text(what: &str, path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The validated inputs that do not depend on the image.
struct Inputs {
    host_id: String,
    key_env: String,
    first_boot: FirstBoot,
}

fn validate(args: &Args) -> anyhow::Result<Inputs> {
    if let Some(h) = &args.hostname {
        ensure!(
            valid_name(h, 63, &['-']) && !h.starts_with('-') && !h.ends_with('-'),
            "--hostname {h:?}: use 1-63 letters, digits and '-' (not first or last)"
        );
    }
    let host_id = args.host_id.clone().or_else(|| args.hostname.clone()).ok_or_else(|| {
        anyhow::anyhow!(
            "give --host-id (or --hostname, used as the host id): the device key is made for one \
             host id (`hearth-engine device-key --role ROLE <host id>`), so the agent must report \
             that id"
        )
    })?;
    ensure!(
        valid_name(&host_id, 64, &['-', '_']),
        "host id {host_id:?}: use 1-64 letters, digits, '-' and '_'"
    );
    ensure!(
        args.user.len() <= 32
            && args.user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && args
                .user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
        "--user {:?}: a Linux user name (lower-case letters, digits, '-', '_'; at most 32)",
        args.user
    );
    if let Some(url) = &args.engine {
        ensure!(
            url.starts_with("http://") && url.len() > 7 && !url.contains(char::is_whitespace),
            "--engine {url:?}: the engine's base URL, like http://192.168.1.10:8080 (plain HTTP: \
             agents have no TLS stack)"
        );
    }
    let key = read_text("--device-key-file", &args.device_key_file)?;
    let key = key.trim();
    let valid_key = key.split_once('.').is_some_and(|(site, k)| is_hex(site, 16) && is_hex(k, 64));
    ensure!(
        valid_key,
        "{}: not a device key (expected `<16 hex site id>.<64 hex>` on one line, as printed by \
         `hearth-engine device-key --role {} {host_id}`)",
        args.device_key_file.display(),
        args.agent.role(),
    );
    let key_env = format!("{}_DEVICE_KEY={key}\n", args.agent.env());

    if let Some(hash) = &args.password_hash {
        ensure!(
            hash.starts_with('$') && !hash.contains([':', '\n', ' ']),
            "--password-hash: give a crypt(3) hash such as `openssl passwd -6` prints ($6$...), \
             never the password itself"
        );
    }
    let mut ssh_keys = Vec::new();
    if let Some(path) = &args.ssh_key {
        let text = read_text("--ssh-key", path)?;
        ensure!(
            !text.contains("PRIVATE KEY"),
            "{} is a PRIVATE key. Pass the public one ({}.pub)",
            path.display(),
            path.display()
        );
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            ensure!(
                ["ssh-", "ecdsa-", "sk-"].iter().any(|p| line.starts_with(p))
                    && line.split_whitespace().count() >= 2,
                "{}: not an OpenSSH public key line ({:.20}...)",
                path.display(),
                line
            );
            ssh_keys.push(line.to_owned());
        }
        ensure!(!ssh_keys.is_empty(), "{}: no public key in it", path.display());
    }
    let wifi = match (&args.wifi_ssid, &args.wifi_psk, &args.wifi_country) {
        (Some(ssid), Some(psk), Some(country)) => {
            ensure!(
                !ssid.is_empty()
                    && ssid.len() <= 32
                    && !ssid.chars().any(|c| c.is_control() || c == '\\' || c == ';'),
                "--wifi-ssid: 1-32 bytes without control characters, '\\' or ';'"
            );
            let psk_ok = (8..=63).contains(&psk.chars().count())
                && !psk.chars().any(|c| c.is_control())
                || is_hex(psk, 64);
            ensure!(psk_ok, "--wifi-psk: WPA passphrases are 8-63 characters (or 64 hex digits)");
            let country = country.to_uppercase();
            ensure!(
                country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()),
                "--wifi-country: a two-letter ISO 3166 code such as DE, GB or US"
            );
            Some(Wifi { ssid: ssid.clone(), psk: psk.clone(), country })
        }
        (None, _, _) => None,
        _ => bail!("--wifi-ssid needs --wifi-psk (or HEARTH_WIFI_PSK) and --wifi-country"),
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let first_boot = FirstBoot {
        hostname: args.hostname.clone(),
        user: args.user.clone(),
        password_hash: args.password_hash.clone(),
        ssh_keys,
        wifi,
        instance_id: format!("hearth-{host_id}-{stamp}"),
    };
    Ok(Inputs { host_id, key_env, first_boot })
}

/// The unit as installed: ExecStart pointed at the installed binary. Returns the text, the
/// `--config` path its ExecStart passes (if any), and the targets it is wanted by.
fn prepare_unit(text: &str, bin: &str, installed: &str) -> (String, Option<String>, Vec<String>) {
    let mut config = None;
    let mut wanted = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        // Every command line that runs the agent (ExecStart, and e.g. the relay agent's
        // ExecStopPost safe-state) runs the installed binary.
        let exec = ["ExecStart=", "ExecStartPre=", "ExecStartPost=", "ExecStop=", "ExecStopPost="]
            .into_iter()
            .find_map(|key| t.strip_prefix(key).map(|value| (key, value)));
        if let Some((key, value)) = exec {
            let prefix: String = value.chars().take_while(|c| "-@:+!".contains(*c)).collect();
            let mut words: Vec<String> =
                value[prefix.len()..].split_whitespace().map(str::to_owned).collect();
            if words.first().is_some_and(|w| Path::new(w).file_name().is_some_and(|f| f == bin)) {
                words[0] = installed.to_owned();
            }
            if key == "ExecStart=" {
                for (i, w) in words.iter().enumerate() {
                    if let Some(p) = w.strip_prefix("--config=") {
                        config = Some(p.to_owned());
                    } else if w == "--config" {
                        config = words.get(i + 1).cloned();
                    }
                }
            }
            out.push(format!("{key}{prefix}{}", words.join(" ")));
            continue;
        }
        if let Some(v) = t.strip_prefix("WantedBy=") {
            wanted.extend(v.split_whitespace().map(str::to_owned));
        }
        out.push(line.to_owned());
    }
    (out.join("\n") + "\n", config, wanted)
}

fn format_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.2} MiB", n as f64 / f64::from(1 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// Reads a top-level string key of the config.
fn config_str(config: &toml::Table, key: &str) -> Option<String> {
    config.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

/// Provision the image or card `args` names; every write is read back. Progress goes to
/// standard error.
pub fn provision(args: &Args) -> anyhow::Result<Report> {
    let mut progress = Progress { started: Instant::now(), step: 0 };
    let agent = args.agent;
    let stem = agent.stem();
    let inputs = validate(args)?;

    progress.step("checking the image");
    let media = match (&args.image, &args.boot, &args.root) {
        (Some(image), _, _) => Media::open_image(image)?,
        (None, Some(boot), Some(root)) => Media::open_partitions(boot, root)?,
        _ => bail!("give --image FILE, or --boot and --root for a flashed card's partitions"),
    };
    media.root.check_clean()?;
    let os = media.os_release()?;
    eprintln!(
        "provision:      {}: {}",
        media.describe,
        media::os_field(&os, "PRETTY_NAME").unwrap_or_else(|| "(unnamed)".into())
    );

    progress.step("detecting the architecture and first-boot mechanism");
    let ls = media.root.read("/usr/bin/ls")?.unwrap_or_default();
    let image_arch = Arch::from_elf(&ls);
    let arch = match (args.arch, image_arch) {
        (Some(a), Some(i)) if a != i => bail!(
            "--arch {a:?} but the image's programs are {i:?}: its agent would not run. Use the \
             image for your Pi's OS, or drop --arch"
        ),
        (Some(a), _) => a,
        (None, Some(i)) => i,
        (None, None) => bail!(
            "cannot tell the image's architecture (/usr/bin/ls is missing or not an ARM ELF); \
             pass --arch armhf or --arch arm64"
        ),
    };
    let has_cloud_init = media.root.stat("/usr/bin/cloud-init")?.is_some()
        || media.root.stat("/etc/cloud/cloud.cfg")?.is_some();
    let kind = match args.first_boot {
        FirstBootKind::Auto if has_cloud_init => FirstBootKind::CloudInit,
        FirstBootKind::Auto => FirstBootKind::Legacy,
        FirstBootKind::CloudInit if !has_cloud_init => bail!(
            "--first-boot cloud-init, but the image has no cloud-init (Raspberry Pi OS before \
             Trixie): use --first-boot legacy or auto"
        ),
        k => k,
    };
    eprintln!(
        "provision:      {arch:?} ({}); first boot by {}",
        arch.triple(),
        if kind == FirstBootKind::CloudInit { "cloud-init" } else { "legacy files" }
    );

    progress.step("reading the agent binary, config and unit");
    let scratch = tempfile::tempdir()?;
    let given = args.binary.clone().unwrap_or_else(|| PathBuf::from("."));
    let packaged::Packaged { from: binary, binary: bin_bytes, unit, config, files_from } =
        packaged::agent(&given, agent, arch, scratch.path())?;
    match Arch::from_elf(&bin_bytes) {
        Some(a) if a == arch => {}
        Some(a) => bail!(
            "{binary} is built for {a:?}, the image is {arch:?}: build for {} (or pass the right \
             --binary)",
            arch.triple()
        ),
        None => bail!("{binary} is not an ARM Linux executable; build it for {}", arch.triple()),
    }
    eprintln!("provision:      agent {binary}");
    let bin_len = bin_bytes.len();

    let (config_name, mut config) = match &args.config {
        Some(path) => (path.display().to_string(), read_text("config", path)?),
        None => (format!("the example config {stem}.toml ({files_from})"), config),
    };
    let parsed: toml::Table =
        toml::from_str(&config).with_context(|| format!("{config_name} is not valid TOML"))?;
    ensure!(
        !parsed.contains_key("device_key"),
        "{config_name} contains device_key: the installed config is world-readable. Remove it; \
         the key goes in --device-key-file (installed 0600)"
    );
    if let Some(url) = &args.engine {
        config = firstboot::toml_set(&config, "engine", url);
    }
    config = firstboot::toml_set(&config, "host_id", &inputs.host_id);
    config = format!(
        "# Provisioned by hearth-provision. The device key is in /etc/hearth/{stem}.env\n\
         # ({}_DEVICE_KEY, root-only, loaded by the unit), not here.\n{config}",
        agent.env()
    );
    let parsed: toml::Table =
        toml::from_str(&config).context("internal: edited config is not TOML")?;
    let hardware = config_str(&parsed, "hardware");
    let w1_overlay = agent == Agent::Sensor && hardware.as_deref().unwrap_or("w1") == "w1";
    if agent == Agent::Relay && hardware.as_deref() == Some("simulated") {
        eprintln!(
            "provision: WARNING: {config_name} uses hardware = \"simulated\": the relays will \
             not switch. Pass --config with hardware = \"rppal\" and each output's pin"
        );
    }
    if agent == Agent::Relay && hardware.is_none() {
        eprintln!(
            "provision: WARNING: {config_name} sets no hardware: the relay agent will refuse to \
             start until /etc/hearth/relay-agent.toml says hardware = \"rppal\" (or \
             \"gpio-cdev\") with each output's pin. Pass --config with them to provision a \
             working agent"
        );
    }

    let unit_text = match &args.unit {
        Some(path) => read_text("unit", path)?,
        None => {
            eprintln!("provision:      unit {} ({files_from})", agent.unit());
            unit
        }
    };
    let installed_bin = format!("/usr/local/bin/{}", agent.bin());
    let (unit_text, unit_config, wanted_by) =
        prepare_unit(&unit_text, &agent.bin(), &installed_bin);
    ensure!(
        unit_text.contains(&format!("ExecStart={installed_bin}"))
            || unit_text.lines().any(|l| l.starts_with("ExecStart=") && l.contains(&installed_bin)),
        "the unit's ExecStart does not run {}: it cannot start the installed agent",
        agent.bin()
    );
    ensure!(!wanted_by.is_empty(), "the unit has no [Install] WantedBy=: it cannot be enabled");
    let sysusers = sysusers_for(&unit_text);
    let config_dest = unit_config.clone().unwrap_or_else(|| format!("/etc/hearth/{stem}.toml"));
    ensure!(
        config_dest.starts_with("/etc/") && !config_dest.contains(".."),
        "the unit's --config {config_dest} is not under /etc"
    );
    // Where the project's units (and the Debian packages) read the device key from: an
    // environment file, root-only, outside the world-readable config.
    let key_dest = format!("/etc/hearth/{stem}.env");
    let loads_key = unit_text.lines().any(|l| {
        let l = l.trim();
        l == format!("EnvironmentFile=-{key_dest}") || l == format!("EnvironmentFile={key_dest}")
    });
    // A unit of the user's own (`--unit`) may not load the key or name the config: a drop-in
    // completes it.
    let mut dropin = String::new();
    if !loads_key {
        dropin += &format!("EnvironmentFile={key_dest}\n");
    }
    if unit_config.is_none() {
        dropin += &format!("Environment={}_CONFIG={config_dest}\n", agent.env());
    }
    let dropin = (!dropin.is_empty()).then(|| {
        format!(
            "# Written by hearth-provision: what the unit lacks to find its device key\n\
             # and config.\n[Service]\n{dropin}"
        )
    });

    let unit_name = agent.unit();
    let mut ops = vec![Op::Mkdir("/usr/local/bin".into()), Op::Mkdir("/etc/hearth".into())];
    if let Some(parent) = Path::new(&config_dest).parent() {
        ops.push(Op::Mkdir(parent.display().to_string()));
    }
    ops.extend([
        Op::File { path: installed_bin.clone(), bytes: bin_bytes, mode: 0o755 },
        Op::File { path: config_dest.clone(), bytes: config.into_bytes(), mode: 0o644 },
        Op::File { path: key_dest.clone(), bytes: inputs.key_env.into_bytes(), mode: 0o600 },
        Op::File {
            path: format!("/etc/systemd/system/{unit_name}"),
            bytes: unit_text.into_bytes(),
            mode: 0o644,
        },
    ]);
    if let Some(dropin) = dropin {
        ops.push(Op::Mkdir(format!("/etc/systemd/system/{unit_name}.d")));
        ops.push(Op::File {
            path: format!("/etc/systemd/system/{unit_name}.d/hearth-provision.conf"),
            bytes: dropin.into_bytes(),
            mode: 0o644,
        });
    }
    if let Some(conf) = sysusers {
        ops.push(Op::Mkdir("/etc/sysusers.d".into()));
        ops.push(Op::File {
            path: "/etc/sysusers.d/hearth.conf".into(),
            bytes: conf.into_bytes(),
            mode: 0o644,
        });
    }
    for target in &wanted_by {
        ops.push(Op::Mkdir(format!("/etc/systemd/system/{target}.wants")));
        ops.push(Op::Symlink {
            path: format!("/etc/systemd/system/{target}.wants/{unit_name}"),
            target: format!("/etc/systemd/system/{unit_name}"),
        });
    }
    let fb = &inputs.first_boot;
    if kind == FirstBootKind::Legacy {
        legacy_root_ops(&media, fb, &mut ops)?;
    }

    progress.step(&format!(
        "writing the root file system: {installed_bin} ({}), unit {unit_name} (enabled for {}), \
         {config_dest}, {key_dest} (0600){}",
        format_bytes(bin_len as u64),
        wanted_by.join(", "),
        if kind == FirstBootKind::Legacy { ", hostname/SSH/Wi-Fi files" } else { "" }
    ));
    let t = Instant::now();
    media.root.apply(&ops, scratch.path())?;
    let written: usize = ops
        .iter()
        .map(|o| match o {
            Op::File { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum();
    eprintln!(
        "provision:      {} written and read back in {:.1} s",
        format_bytes(written as u64),
        t.elapsed().as_secs_f64()
    );

    progress.step("writing the boot partition");
    let boot = &media.boot;
    let mut boot_files: Vec<(String, Vec<u8>)> = Vec::new();
    if w1_overlay {
        let text = boot.read("config.txt")?.unwrap_or_default();
        let text = firstboot::config_txt_with_w1(&String::from_utf8_lossy(&text), args.w1_pin);
        boot_files.push(("config.txt".into(), text.into_bytes()));
    }
    match kind {
        FirstBootKind::CloudInit => {
            boot_files.push(("user-data".into(), firstboot::user_data(fb).into_bytes()));
            boot_files.push(("meta-data".into(), firstboot::meta_data(fb).into_bytes()));
            if let Some(w) = &fb.wifi {
                boot_files
                    .push(("network-config".into(), firstboot::network_config(w).into_bytes()));
            }
        }
        _ => {
            if !fb.ssh_keys.is_empty() || fb.password_hash.is_some() {
                boot_files.push(("ssh".into(), Vec::new()));
            }
            boot_files.push(("userconf.txt".into(), firstboot::userconf(fb).into_bytes()));
            if let Some(w) = &fb.wifi {
                let c = boot.read("cmdline.txt")?.unwrap_or_default();
                let c = firstboot::cmdline_with(
                    &String::from_utf8_lossy(&c),
                    "cfg80211.ieee80211_regdom",
                    &w.country,
                );
                boot_files.push(("cmdline.txt".into(), c.into_bytes()));
            }
        }
    }
    for (name, bytes) in &boot_files {
        boot.write(name, bytes, scratch.path())?;
        let back = boot.read(name)?.unwrap_or_default();
        ensure!(back == *bytes, "{name} on the boot partition reads back differently");
        eprintln!("provision:      {name} ({})", format_bytes(bytes.len() as u64));
    }
    if w1_overlay {
        eprintln!("provision:      config.txt: dtoverlay=w1-gpio,gpiopin={}", args.w1_pin);
    }
    if fb.ssh_keys.is_empty() && fb.password_hash.is_none() {
        eprintln!(
            "provision: WARNING: no --ssh-key or --password-hash: nobody can log in to this Pi \
             (the agent runs anyway)"
        );
    }
    progress.step(&format!(
        "done: {} for host id {} ({}). Write the image to the card and boot the Pi",
        agent.bin(),
        inputs.host_id,
        args.engine.as_deref().map_or("engine found by mDNS".to_owned(), |u| format!("engine {u}"))
    ));
    Ok(Report { arch, first_boot: kind, w1_overlay })
}

/// Legacy first boot: what goes into the root file system directly.
fn legacy_root_ops(media: &Media, fb: &FirstBoot, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    if let Some(h) = &fb.hostname {
        let hosts = media.root.read("/etc/hosts")?.unwrap_or_default();
        ops.push(Op::File {
            path: "/etc/hostname".into(),
            bytes: format!("{h}\n").into_bytes(),
            mode: 0o644,
        });
        ops.push(Op::File {
            path: "/etc/hosts".into(),
            bytes: firstboot::hosts_with(&String::from_utf8_lossy(&hosts), h).into_bytes(),
            mode: 0o644,
        });
    }
    if !fb.ssh_keys.is_empty() {
        for d in ["/etc/ssh/sshd_config.d", "/etc/ssh/authorized_keys"] {
            ops.push(Op::Mkdir(d.into()));
        }
        ops.push(Op::File {
            path: format!("/etc/ssh/authorized_keys/{}", fb.user),
            bytes: (fb.ssh_keys.join("\n") + "\n").into_bytes(),
            mode: 0o644,
        });
        ops.push(Op::File {
            path: "/etc/ssh/sshd_config.d/50-hearth-provision.conf".into(),
            bytes: firstboot::sshd_dropin(fb).into_bytes(),
            mode: 0o644,
        });
    }
    if let Some(w) = &fb.wifi {
        // NetworkManager keyfiles carry a UUID; a fresh one per run is fine, as the file name
        // stays the same and a re-run replaces the connection.
        let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|u| u.trim().to_owned())
            .unwrap_or_else(|_| "6d9f1c2e-4a3b-4c5d-8e7f-a0b1c2d3e4f5".into());
        for d in [
            "/etc/NetworkManager",
            "/etc/NetworkManager/system-connections",
            "/var/lib/NetworkManager",
        ] {
            ops.push(Op::Mkdir(d.into()));
        }
        ops.push(Op::File {
            path: "/etc/NetworkManager/system-connections/hearth-wifi.nmconnection".into(),
            bytes: firstboot::nmconnection(w, &uuid).into_bytes(),
            mode: 0o600,
        });
        // pi-gen writes WirelessEnabled=false when no country is set: turn the radio on.
        ops.push(Op::File {
            path: "/var/lib/NetworkManager/NetworkManager.state".into(),
            bytes: b"[main]\nWirelessEnabled=true\n".to_vec(),
            mode: 0o644,
        });
    }
    Ok(())
}

/// The unit's named `User=` (and its `SupplementaryGroups=`) as a systemd-sysusers file. The
/// Debian package creates the user in its postinst; an SD card provisioned without the package
/// gets it from `systemd-sysusers.service`, which runs early on every boot before services
/// start, so the agent's first start finds its user (and its `gpio` membership). `None` when
/// the unit runs as root or with `DynamicUser=`.
fn sysusers_for(unit: &str) -> Option<String> {
    let value = |key: &str| {
        unit.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .next_back()
            .map(|v| v.trim().to_owned())
    };
    if value("DynamicUser=").is_some_and(|v| v == "yes" || v == "true") {
        return None;
    }
    let user = value("User=").filter(|u| !u.is_empty() && u != "root")?;
    let mut conf = format!(
        "# Written by hearth-provision: the agent's system user, created at boot by\n\
         # systemd-sysusers (the Debian package creates it in its postinst instead).\n\
         u {user} - \"Hearth\" /var/lib/{user}\n"
    );
    for group in value("SupplementaryGroups=").unwrap_or_default().split_whitespace() {
        conf += &format!("m {user} {group}\n");
    }
    Some(conf)
}
