//! First-boot settings (login user, SSH, Wi-Fi, hostname) in the form the image's Raspberry
//! Pi OS honours, and the small text edits to its boot files. Pure functions: the caller
//! reads and writes the files.
//!
//! Two mechanisms, chosen by what the image contains (docs/deploy-pi-zero.md has the sources):
//!
//! - **cloud-init** (Raspberry Pi OS since the Trixie release of October 2025): the NoCloud
//!   data source reads `user-data`, `network-config` and `meta-data` from the boot partition
//!   (`seedfrom: file:///boot/firmware`, pi-gen `stage2/04-cloud-init`). The keys follow what
//!   Raspberry Pi Imager writes (`customization_generator.cpp`): `users` with
//!   `ssh_authorized_keys`, `enable_ssh: true`, `ssh_pwauth`, `hostname`, and a netplan v2
//!   `wifis` entry with `regulatory-domain`.
//! - **legacy** (Bookworm and earlier, no cloud-init): `userconf.txt` (user:crypt-hash, read
//!   by userconf-pi on first boot) and an empty `ssh` file (sshswitch enables sshd) on the boot
//!   partition; in the root file system the hostname, the authorized key (outside the home
//!   directory, which the first-boot user rename moves), a NetworkManager connection, Wi-Fi
//!   enabled in NetworkManager's state, and the regulatory domain on the kernel command line.

/// The settings for the first boot, validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct FirstBoot {
    pub(crate) hostname: Option<String>,
    pub(crate) user: String,
    /// A crypt(3) hash (`openssl passwd -6`); `None` = key-only login.
    pub(crate) password_hash: Option<String>,
    /// Public keys, one per entry.
    pub(crate) ssh_keys: Vec<String>,
    pub(crate) wifi: Option<Wifi>,
    /// Unique per provisioning run, so cloud-init applies the settings again on a card that
    /// has booted before.
    pub(crate) instance_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Wifi {
    pub(crate) ssid: String,
    pub(crate) psk: String,
    /// ISO 3166 alpha-2, upper case.
    pub(crate) country: String,
}

/// The groups Raspberry Pi Imager gives the first user (gpio for the relay board, sudo).
const GROUPS: &str =
    "users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo";

/// A YAML double-quoted scalar (JSON's escapes are valid YAML).
pub(crate) fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            '\t' => out += "\\t",
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out += &format!("\\x{:02x}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// cloud-init `user-data`.
pub(crate) fn user_data(fb: &FirstBoot) -> String {
    let mut y = String::from(
        "#cloud-config\n\
         # Written by hearth-provision (Hearth). Applied once by cloud-init on the first\n\
         # boot (per meta-data instance-id); see docs/deploy-pi-zero.md.\n\
         manage_resolv_conf: false\n",
    );
    if let Some(h) = &fb.hostname {
        y += &format!("hostname: {h}\nmanage_etc_hosts: true\n");
    }
    y += &format!("users:\n- name: {}\n  groups: {GROUPS}\n  shell: /bin/bash\n", fb.user);
    match &fb.password_hash {
        Some(hash) => y += &format!("  lock_passwd: false\n  passwd: {}\n", yaml_quote(hash)),
        None => y += "  lock_passwd: true\n",
    }
    if !fb.ssh_keys.is_empty() {
        y += "  ssh_authorized_keys:\n";
        for k in &fb.ssh_keys {
            y += &format!("    - {}\n", yaml_quote(k));
        }
    }
    y += "  sudo: ALL=(ALL) NOPASSWD:ALL\n";
    if !fb.ssh_keys.is_empty() || fb.password_hash.is_some() {
        y += "enable_ssh: true\n";
        // Keys when given; a password over SSH only when there is no key.
        y += if fb.ssh_keys.is_empty() { "ssh_pwauth: true\n" } else { "ssh_pwauth: false\n" };
    }
    y
}

/// cloud-init `network-config` (netplan v2): wired DHCP as in the stock file, plus Wi-Fi.
pub(crate) fn network_config(wifi: &Wifi) -> String {
    format!(
        "# Written by hearth-provision (Hearth): netplan v2, applied by cloud-init on the\n\
         # first boot (NetworkManager renders it).\n\
         network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      optional: true\n\
         \x20 wifis:\n    wlan0:\n      dhcp4: true\n      optional: true\n\
         \x20     regulatory-domain: {}\n      access-points:\n        {}:\n          password: {}\n",
        yaml_quote(&wifi.country),
        yaml_quote(&wifi.ssid),
        yaml_quote(&wifi.psk)
    )
}

/// cloud-init `meta-data` for the NoCloud data source.
pub(crate) fn meta_data(fb: &FirstBoot) -> String {
    format!(
        "# Written by hearth-provision (Hearth). cloud-init applies user-data and\n\
         # network-config once per instance-id: a new id makes a re-provisioned card apply them.\n\
         dsmode: local\ninstance-id: {}\n",
        fb.instance_id
    )
}

/// Legacy `userconf.txt`: `user:hash`; `*` (no password matches) for key-only login.
pub(crate) fn userconf(fb: &FirstBoot) -> String {
    format!("{}:{}\n", fb.user, fb.password_hash.as_deref().unwrap_or("*"))
}

/// Legacy sshd drop-in: keys from /etc/ssh/authorized_keys/<user> too, and no passwords when
/// the user is key-only.
pub(crate) fn sshd_dropin(fb: &FirstBoot) -> String {
    let mut s = String::from(
        "# Written by hearth-provision (Hearth): the login user's public keys are kept\n\
         # outside the home directory, which the first-boot user rename may move.\n\
         AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\n",
    );
    if fb.password_hash.is_none() {
        s += "PasswordAuthentication no\n";
    }
    s
}

/// Legacy NetworkManager keyfile for the Wi-Fi network (stored 0600: it holds the PSK).
pub(crate) fn nmconnection(wifi: &Wifi, uuid: &str) -> String {
    format!(
        "# Written by hearth-provision (Hearth).\n\
         [connection]\nid=hearth-wifi\nuuid={uuid}\ntype=wifi\ninterface-name=wlan0\nautoconnect=true\n\n\
         [wifi]\nmode=infrastructure\nssid={}\n\n\
         [wifi-security]\nkey-mgmt=wpa-psk\npsk={}\n\n\
         [ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n",
        wifi.ssid, wifi.psk
    )
}

/// `/etc/hosts` with the Debian `127.0.1.1 <hostname>` line set (added when missing).
pub(crate) fn hosts_with(hosts: &str, hostname: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = hosts
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("127.0.1.1") {
                found = true;
                format!("127.0.1.1\t{hostname}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        out.push(format!("127.0.1.1\t{hostname}"));
    }
    out.join("\n") + "\n"
}

/// The marker our config.txt lines carry, so a second run replaces them.
const MARK: &str = "# Hearth sensor agent: DS18B20 1-Wire bus (hearth-provision)";
/// What every version's marker starts with (earlier ones named `cargo xtask provision`).
const MARK_STEM: &str = "# Hearth sensor agent: DS18B20 1-Wire bus";

/// `config.txt` with exactly one `dtoverlay=w1-gpio,gpiopin=N`, in an `[all]` section: any
/// earlier w1-gpio overlay (ours from a previous run, or the user's) is replaced.
pub(crate) fn config_txt_with_w1(config: &str, pin: u8) -> String {
    let mut lines: Vec<&str> = config
        .lines()
        .filter(|l| {
            let t = l.trim();
            !t.starts_with(MARK_STEM) && !t.starts_with("dtoverlay=w1-gpio")
        })
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let last_section = lines.iter().rev().find(|l| l.trim_start().starts_with('['));
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    if last_section.is_some_and(|s| s.trim() != "[all]") {
        out += "\n[all]\n";
    }
    out += &format!("{MARK}\ndtoverlay=w1-gpio,gpiopin={pin}\n");
    out
}

/// `cmdline.txt` (one line) with `key=value` set once.
pub(crate) fn cmdline_with(cmdline: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}=");
    let mut words: Vec<String> =
        cmdline.split_whitespace().filter(|w| !w.starts_with(&prefix)).map(str::to_owned).collect();
    words.push(format!("{key}={value}"));
    words.join(" ") + "\n"
}

/// The TOML config with top-level `key = value` set: an uncommented top-level assignment is
/// replaced in place, else the line goes before the first table (top-level keys must).
pub(crate) fn toml_set(text: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {}", toml_quote(value));
    let mut out = Vec::new();
    let mut done = false;
    let mut in_table = false;
    for l in text.lines() {
        let t = l.trim_start();
        if t.starts_with('[') {
            if !done {
                out.push(line.clone());
                out.push(String::new());
                done = true;
            }
            in_table = true;
        }
        let assigns =
            !in_table && t.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('='));
        if assigns {
            if !done {
                out.push(line.clone());
                done = true;
            }
            continue;
        }
        out.push(l.to_owned());
    }
    if !done {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// A TOML basic string.
pub(crate) fn toml_quote(s: &str) -> String {
    // TOML basic strings take the same escapes as JSON for these characters.
    yaml_quote(s).replace("\\x", "\\u00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_overlay_appears_once_in_the_all_section() {
        let stock = "dtparam=audio=on\n[cm4]\notg_mode=1\n\n[all]\narm_boost=1\n";
        let once = config_txt_with_w1(stock, 4);
        let twice = config_txt_with_w1(&config_txt_with_w1(&once, 17), 4);
        assert_eq!(once, twice);
        assert_eq!(twice.matches("dtoverlay=w1-gpio").count(), 1);
        assert!(
            twice.ends_with(&format!("[all]\narm_boost=1\n{MARK}\ndtoverlay=w1-gpio,gpiopin=4\n")),
            "{twice}"
        );
        // A config ending in a model section gets an [all] before the overlay.
        let cm4 = config_txt_with_w1("[cm4]\notg_mode=1\n", 4);
        assert!(cm4.contains("[cm4]\notg_mode=1\n\n[all]\n# Hearth"), "{cm4}");
        assert_eq!(config_txt_with_w1(&cm4, 4), cm4);
        // A card provisioned while the marker named `cargo xtask provision` keeps no stale one.
        let earlier = format!(
            "{stock}# Hearth sensor agent: DS18B20 1-Wire bus (cargo xtask provision)\n\
             dtoverlay=w1-gpio,gpiopin=17\n"
        );
        assert_eq!(config_txt_with_w1(&earlier, 4), once);
    }

    #[test]
    fn cmdline_key_is_set_once() {
        let c = cmdline_with(
            "console=tty1 root=PARTUUID=1 rootwait\n",
            "cfg80211.ieee80211_regdom",
            "DE",
        );
        let c = cmdline_with(&c, "cfg80211.ieee80211_regdom", "GB");
        assert_eq!(c, "console=tty1 root=PARTUUID=1 rootwait cfg80211.ieee80211_regdom=GB\n");
    }

    #[test]
    fn toml_keys_go_before_tables_or_replace() {
        let t =
            "# c\n# engine = \"x\"\nlisten = \"0.0.0.0:1\"\n[[outputs]]\nengine = \"not top\"\n";
        let out = toml_set(t, "engine", "http://e:8080");
        assert!(
            out.contains("listen = \"0.0.0.0:1\"\nengine = \"http://e:8080\"\n\n[[outputs]]"),
            "{out}"
        );
        assert!(out.contains("# engine = \"x\""));
        let again = toml_set(&out, "engine", "http://f:8080");
        assert_eq!(again.matches("engine = \"http").count(), 1, "{again}");
        assert_eq!(toml_set("a = 1\n", "b", "c"), "a = 1\nb = \"c\"\n");
    }

    #[test]
    fn hosts_line_is_replaced_or_added() {
        let h = "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n";
        assert_eq!(hosts_with(h, "hall"), "127.0.0.1\tlocalhost\n127.0.1.1\thall\n");
        assert_eq!(
            hosts_with("127.0.0.1 localhost\n", "hall"),
            "127.0.0.1 localhost\n127.0.1.1\thall\n"
        );
    }

    #[test]
    fn yaml_strings_are_escaped() {
        assert_eq!(yaml_quote("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\x01\"");
        assert_eq!(toml_quote("a\u{1}"), "\"a\\u0001\"");
    }
}
