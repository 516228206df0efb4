//! The card or image being provisioned: recognising it, refusing what is not a Raspberry Pi
//! OS card, and reading/writing its two file systems without mounting them.
//!
//! The FAT boot partition goes through mtools (`mdir`, `mtype`, `mcopy` with
//! `-i image@@offset`), the ext4 root through e2fsprogs' `debugfs` (`image?offset=N`). Neither
//! needs root for an image file, neither mounts anything, and both work the same on a
//! partition device (`/dev/sdX1`) with offset 0.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail, ensure};

/// What the provisioner writes to: an image (file or whole-card device) with a partition
/// table, or the two partitions of an already-flashed card.
pub(crate) struct Media {
    pub(crate) boot: Fat,
    pub(crate) root: Ext,
    /// Human description for the progress output.
    pub(crate) describe: String,
}

/// Runs a tool, with the tool's name and the fix in the error when it is not installed.
pub(crate) fn tool(name: &str) -> Command {
    // sfdisk, debugfs and dumpe2fs live in /usr/sbin, which is not on a normal user's PATH on
    // Debian; they need no root for an image file.
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    let program = if on_path {
        PathBuf::from(name)
    } else {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(name))
    };
    let mut c = Command::new(program);
    // mtools refuses images whose geometry is not a whole number of tracks (typical for
    // partitions inside an image); the check is about floppies and does not apply here.
    c.env("MTOOLS_SKIP_CHECK", "1");
    c
}

/// Runs a [`tool`]; a missing one is named with the Debian package that has it.
pub(crate) fn output(what: &str, cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.output().map_err(|e| {
        let prog = cmd.get_program().to_string_lossy().to_string();
        if e.kind() == std::io::ErrorKind::NotFound {
            let name = Path::new(&prog).file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let package = match name {
                "sfdisk" => "fdisk",
                "debugfs" | "dumpe2fs" => "e2fsprogs",
                "dpkg-deb" => "dpkg",
                "mdir" | "mtype" | "mcopy" => "mtools",
                other => other,
            };
            anyhow::anyhow!(
                "{what}: `{prog}` is not installed. Install it: apt-get install {package} (the \
                 hearth-provision package depends on fdisk, mtools and e2fsprogs)"
            )
        } else {
            anyhow::anyhow!("{what}: running {prog}: {e}")
        }
    })
}

/// A file or block device: anything else (a directory, a socket, a missing path) is refused.
fn check_target(path: &Path) -> anyhow::Result<bool> {
    let meta = std::fs::metadata(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}. Pass a Raspberry Pi OS image file (unpacked .img, not .img.xz) or a \
             card's device (`lsblk` lists them)",
            path.display()
        )
    })?;
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(false);
    }
    ensure!(
        ft.is_block_device(),
        "{} is neither a regular file nor a block device (a {}). Pass the image file, or the \
         card's device such as /dev/sdX (`lsblk` lists them)",
        path.display(),
        if ft.is_dir() { "directory" } else { "special file" }
    );
    check_device_unused(path, meta.rdev())?;
    Ok(true)
}

fn dev_major_minor(rdev: u64) -> (u64, u64) {
    // glibc's encoding (gnu_dev_major/minor); std has no accessor.
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

/// The block devices (major:minor) that make up a device: itself and, for a whole disk, its
/// partitions (from sysfs).
fn device_family(rdev: u64) -> BTreeSet<String> {
    let (major, minor) = dev_major_minor(rdev);
    let me = format!("{major}:{minor}");
    let mut family = BTreeSet::from([me.clone()]);
    if let Ok(entries) = std::fs::read_dir(format!("/sys/dev/block/{me}")) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.join("partition").exists()
                && let Ok(dev) = std::fs::read_to_string(p.join("dev"))
            {
                family.insert(dev.trim().to_owned());
            }
        }
    }
    family
}

/// The disk (major:minor) holding `/`, and the partition itself, when `/` is on a block device.
fn root_disk() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(meta) = std::fs::metadata("/") else { return out };
    let (major, minor) = dev_major_minor(meta.dev());
    let me = format!("{major}:{minor}");
    let sys = PathBuf::from(format!("/sys/dev/block/{me}"));
    if sys.join("partition").exists()
        && let Ok(parent) = std::fs::canonicalize(sys.join(".."))
        && let Ok(dev) = std::fs::read_to_string(parent.join("dev"))
    {
        out.insert(dev.trim().to_owned());
    }
    out.insert(me);
    out
}

/// Refuses a device that is mounted (itself or one of its partitions), used as swap, or the
/// disk this machine runs from.
fn check_device_unused(path: &Path, rdev: u64) -> anyhow::Result<()> {
    let family = device_family(rdev);
    let root = root_disk();
    ensure!(
        family.is_disjoint(&root),
        "{} is (or holds) this machine's root file system. Refusing: pick the SD card's device \
         (`lsblk -o NAME,SIZE,MODEL,MOUNTPOINTS` lists them)",
        path.display()
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let (Some(dev), Some(at)) = (fields.get(2), fields.get(4))
            && family.contains(*dev)
        {
            bail!(
                "{} (or one of its partitions, {dev}) is mounted at {at}. Unmount it first \
                 (`umount {at}`, or eject it in the file manager) and run again",
                path.display()
            );
        }
    }
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    for line in swaps.lines().skip(1) {
        if let Some(dev) = line.split_whitespace().next()
            && std::fs::canonicalize(dev).is_ok_and(|d| d.starts_with(&canon))
        {
            bail!("{} is in use as swap ({dev}); `swapoff {dev}` first", path.display());
        }
    }
    Ok(())
}

/// An image file that a loop device exposes while that loop device (or a partition of it) is
/// mounted would be written under a live file system: refuse.
fn check_image_not_loop_mounted(image: &Path) -> anyhow::Result<()> {
    let canon = std::fs::canonicalize(image)?;
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Ok(backing) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        if Path::new(backing.trim()) != canon {
            continue;
        }
        let dev = PathBuf::from(format!("/dev/{name}"));
        if let Ok(meta) = std::fs::metadata(&dev) {
            check_device_unused(&dev, meta.rdev())
                .with_context(|| format!("{} is attached to {}", image.display(), dev.display()))?;
        }
    }
    Ok(())
}

fn read_at(path: &Path, offset: u64, len: usize) -> anyhow::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "{}: permission denied. A card's device needs root: run with sudo (an image \
                 file does not)",
                path.display()
            )
        } else {
            anyhow::anyhow!("{}: {e}", path.display())
        }
    })?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// A FAT boot sector: the 0x55AA signature and a FAT12/16/32 file-system type string.
fn is_fat(sector: &[u8]) -> bool {
    sector.len() >= 512
        && sector[510] == 0x55
        && sector[511] == 0xAA
        && (sector[82..87] == *b"FAT32"
            || sector[54..59] == *b"FAT16"
            || sector[54..59] == *b"FAT12")
}

/// An ext2/3/4 superblock (at byte 1024): magic 0xEF53 at offset 56.
fn is_ext(head: &[u8]) -> bool {
    head.len() >= 1024 + 58 && head[1024 + 56] == 0x53 && head[1024 + 57] == 0xEF
}

impl Media {
    /// An image file or a whole card (`/dev/sdX`): a partition table whose first FAT partition
    /// is the boot partition and the next ext partition the root.
    pub(crate) fn open_image(image: &Path) -> anyhow::Result<Media> {
        let is_dev = check_target(image)?;
        if !is_dev {
            check_image_not_loop_mounted(image)?;
        }
        let out = output("reading the partition table", tool("sfdisk").arg("--json").arg(image))?;
        ensure!(
            out.status.success(),
            "{} has no partition table sfdisk can read ({}). A Raspberry Pi OS image has an MBR \
             with a FAT boot and an ext4 root partition; pass the unpacked .img (`xz -d` it \
             first) or the whole card (/dev/sdX, not /dev/sdX1: for partitions use --boot and \
             --root)",
            image.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let table = parse_sfdisk(&String::from_utf8_lossy(&out.stdout))?;
        let mut boot = None;
        let mut root = None;
        for (start, _size) in &table.partitions {
            let offset = start * table.sector_size;
            let head = read_at(image, offset, 2048)?;
            if boot.is_none() && is_fat(&head) {
                boot = Some(offset);
            } else if boot.is_some() && root.is_none() && is_ext(&head) {
                root = Some(offset);
            }
        }
        let (Some(boot), Some(root)) = (boot, root) else {
            bail!(
                "{} does not look like Raspberry Pi OS: expected a FAT boot partition followed by \
                 an ext4 root partition, found {} partition(s) ({}). Refusing to touch it",
                image.display(),
                table.partitions.len(),
                table.label
            );
        };
        let img = image.display().to_string();
        ensure!(
            !img.contains(['@', '?', ' ']),
            "{img}: the path must not contain '@', '?' or spaces (mtools and debugfs read them \
             as options); rename or link the image"
        );
        let media = Media {
            boot: Fat { spec: format!("{img}@@{boot}") },
            root: Ext { spec: format!("{img}?offset={root}") },
            describe: format!(
                "{} ({} table; boot FAT at byte {boot}, root ext4 at byte {root})",
                img, table.label
            ),
        };
        media.check_is_raspberry_pi_os()?;
        Ok(media)
    }

    /// The partitions of an already-flashed card, given separately (`/dev/sdX1`, `/dev/sdX2`).
    pub(crate) fn open_partitions(boot: &Path, root: &Path) -> anyhow::Result<Media> {
        for p in [boot, root] {
            ensure!(
                check_target(p)?,
                "{} is a file: --boot and --root take a flashed card's partition devices; for an \
                 image file use --image",
                p.display()
            );
        }
        ensure!(
            is_fat(&read_at(boot, 0, 2048)?),
            "{} is not a FAT file system; --boot takes the card's first (boot) partition",
            boot.display()
        );
        ensure!(
            is_ext(&read_at(root, 0, 2048)?),
            "{} is not an ext4 file system; --root takes the card's second (root) partition",
            root.display()
        );
        let media = Media {
            boot: Fat { spec: boot.display().to_string() },
            root: Ext { spec: root.display().to_string() },
            describe: format!("boot {} and root {}", boot.display(), root.display()),
        };
        media.check_is_raspberry_pi_os()?;
        Ok(media)
    }

    /// The boot partition holds the firmware's config.txt and cmdline.txt and a firmware or
    /// kernel file; the root's os-release names Debian, Raspbian or Raspberry Pi OS.
    fn check_is_raspberry_pi_os(&self) -> anyhow::Result<()> {
        let names = self.boot.list()?;
        let missing: Vec<&str> =
            ["config.txt", "cmdline.txt"].into_iter().filter(|n| !names.contains(*n)).collect();
        ensure!(
            missing.is_empty(),
            "the boot partition has no {} : not a Raspberry Pi OS boot partition. Refusing to \
             touch it (flash Raspberry Pi OS Lite first)",
            missing.join(" or ")
        );
        let firmware = names.iter().any(|n| {
            (n.starts_with("start") && n.ends_with(".elf"))
                || n == "bootcode.bin"
                || (n.starts_with("kernel") && n.ends_with(".img"))
        });
        ensure!(
            firmware,
            "the boot partition has config.txt but no start*.elf, bootcode.bin or kernel*.img: \
             not a Raspberry Pi OS boot partition. Refusing to touch it"
        );
        let os = self.os_release()?;
        let id = os_field(&os, "ID").unwrap_or_default();
        let like = os_field(&os, "ID_LIKE").unwrap_or_default();
        let pretty = os_field(&os, "PRETTY_NAME").unwrap_or_default();
        ensure!(
            ["debian", "raspbian"].contains(&id.as_str())
                || like.split_whitespace().any(|l| l == "debian")
                || pretty.contains("Raspberry Pi OS"),
            "the root file system's os-release says {pretty:?} (ID={id}): not Debian, Raspbian \
             or Raspberry Pi OS. Refusing to touch it"
        );
        Ok(())
    }

    /// `/etc/os-release` (in Raspberry Pi OS a symlink to `/usr/lib/os-release`).
    pub(crate) fn os_release(&self) -> anyhow::Result<String> {
        for p in ["/etc/os-release", "/usr/lib/os-release"] {
            if let Some(bytes) = self.root.read(p)? {
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        bail!(
            "the root file system has no /etc/os-release: not a Raspberry Pi OS root partition. \
             Refusing to touch it"
        )
    }
}

pub(crate) fn os_field(os_release: &str, key: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
    })
}

struct Table {
    label: String,
    sector_size: u64,
    /// (start, size) in sectors.
    partitions: Vec<(u64, u64)>,
}

/// The few fields of `sfdisk --json` this needs, without a JSON dependency in xtask: the
/// output's layout is fixed (one key per line).
fn parse_sfdisk(json: &str) -> anyhow::Result<Table> {
    let num = |line: &str, key: &str| -> Option<u64> {
        let i = line.find(&format!("\"{key}\":"))?;
        let rest = &line[i + key.len() + 3..];
        let digits: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    let mut label = String::from("unknown");
    let mut sector_size = 512;
    let mut partitions = Vec::new();
    for line in json.lines() {
        if let Some(i) = line.find("\"label\":") {
            label = line[i + 8..].trim().trim_end_matches(',').trim_matches('"').to_owned();
        }
        if let Some(s) = num(line, "sectorsize") {
            sector_size = s;
        }
        if let (Some(start), Some(size)) = (num(line, "start"), num(line, "size")) {
            partitions.push((start, size));
        } else if let Some(start) = num(line, "start") {
            partitions.push((start, 0));
        } else if let (Some(size), Some(last)) = (num(line, "size"), partitions.last_mut())
            && last.1 == 0
        {
            last.1 = size;
        }
    }
    ensure!(!partitions.is_empty(), "the partition table has no partitions");
    Ok(Table { label, sector_size, partitions })
}

/// The FAT boot partition, through mtools.
pub(crate) struct Fat {
    spec: String,
}

impl Fat {
    /// File names in the root directory, lower-cased (FAT is case-insensitive).
    pub(crate) fn list(&self) -> anyhow::Result<BTreeSet<String>> {
        let out = output(
            "listing the boot partition",
            tool("mdir").args(["-b", "-i", &self.spec, "::/"]),
        )?;
        ensure!(
            out.status.success(),
            "cannot read the boot partition ({}): {}",
            self.spec,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("::/"))
            .map(|n| n.trim_end_matches('/').to_lowercase())
            .collect())
    }

    pub(crate) fn read(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if !self.list()?.contains(&name.to_lowercase()) {
            return Ok(None);
        }
        let out = output(
            "reading the boot partition",
            tool("mtype").args(["-i", &self.spec, &format!("::/{name}")]),
        )?;
        ensure!(
            out.status.success(),
            "reading {name} from the boot partition: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(Some(out.stdout))
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8], scratch: &Path) -> anyhow::Result<()> {
        let local = scratch.join(format!("boot-{name}"));
        std::fs::write(&local, bytes)?;
        let out = output(
            "writing the boot partition",
            tool("mcopy").args(["-o", "-i", &self.spec]).arg(&local).arg(format!("::/{name}")),
        )?;
        ensure!(
            out.status.success(),
            "writing {name} to the boot partition: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

/// What `debugfs stat` says about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    /// `regular`, `directory`, `symlink`, ...
    pub(crate) kind: String,
    /// Permission bits (e.g. 0o755).
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    /// For symlinks.
    pub(crate) target: Option<String>,
}

/// One change to the root file system.
pub(crate) enum Op {
    /// Create the directory and any missing parents (mode 0755, root).
    Mkdir(String),
    /// Write a file with this content, owner root:root and mode, replacing any old one.
    File { path: String, bytes: Vec<u8>, mode: u32 },
    /// A symbolic link, replacing any old one.
    Symlink { path: String, target: String },
}

/// The ext4 root partition, through debugfs.
pub(crate) struct Ext {
    spec: String,
}

fn safe_path(p: &str) -> anyhow::Result<()> {
    ensure!(
        p.starts_with('/') && !p.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\'),
        "internal: unsafe path for debugfs: {p:?}"
    );
    Ok(())
}

impl Ext {
    /// The `debugfs` device argument (`image?offset=N` or the partition).
    #[cfg(test)]
    pub(crate) fn spec(&self) -> &str {
        &self.spec
    }

    fn debugfs(&self, write: bool, request: &str) -> anyhow::Result<Output> {
        let mut c = tool("debugfs");
        if write {
            c.arg("-w");
        }
        c.args(["-R", request, &self.spec]);
        output("reading the root partition", &mut c)
    }

    pub(crate) fn stat(&self, path: &str) -> anyhow::Result<Option<Stat>> {
        safe_path(path)?;
        let out = self.debugfs(false, &format!("stat {path}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("File not found") {
            return Ok(None);
        }
        ensure!(
            text.contains("Inode:"),
            "cannot read the root partition ({}): {}",
            self.spec,
            err.trim()
        );
        let word_after = |key: &str| -> Option<String> {
            text.split_whitespace().skip_while(|w| *w != key).nth(1).map(str::to_owned)
        };
        let kind = word_after("Type:").unwrap_or_default();
        let mode =
            word_after("Mode:").and_then(|m| u32::from_str_radix(&m, 8).ok()).unwrap_or_default();
        let uid = word_after("User:").and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
        let gid = word_after("Group:").and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
        let size = word_after("Size:").and_then(|v| v.parse().ok()).unwrap_or_default();
        let target = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Fast link dest: "))
            .map(|t| t.trim_matches('"').to_owned());
        Ok(Some(Stat { kind, mode, uid, gid, size, target }))
    }

    /// A file's content, following symbolic links (relative or absolute) within the root file
    /// system. `None` when it does not exist.
    pub(crate) fn read(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut path = path.to_owned();
        for _ in 0..8 {
            let Some(st) = self.stat(&path)? else { return Ok(None) };
            if st.kind == "symlink" {
                let target = st.target.unwrap_or_default();
                path = if target.starts_with('/') {
                    target
                } else {
                    let dir = Path::new(&path).parent().unwrap_or(Path::new("/"));
                    normalize(&dir.join(target))
                };
                continue;
            }
            ensure!(st.kind == "regular", "{path} in the root partition is a {}", st.kind);
            let out = self.debugfs(false, &format!("cat {path}"))?;
            ensure!(
                out.status.success(),
                "reading {path}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(Some(out.stdout));
        }
        bail!("{path}: too many levels of symbolic links in the root partition")
    }

    /// Applies the changes in one debugfs session, then reads every file back.
    pub(crate) fn apply(&self, ops: &[Op], scratch: &Path) -> anyhow::Result<()> {
        let mut script = String::new();
        let mut planned = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Mkdir(path) => {
                    safe_path(path)?;
                    // Like `mkdir -p`: every missing ancestor too, top down.
                    let mut ancestors: Vec<&Path> = Path::new(path).ancestors().collect();
                    ancestors.reverse();
                    for dir in ancestors.into_iter().skip(1) {
                        let dir = dir.display().to_string();
                        if !planned.insert(dir.clone()) {
                            continue;
                        }
                        match self.stat(&dir)? {
                            Some(st) if st.kind == "directory" => {}
                            Some(st) => {
                                bail!("{dir} exists in the root partition as a {}", st.kind)
                            }
                            None => {
                                script += &format!("mkdir {dir}\n");
                                script += &owner_mode(&dir, 0o040755);
                            }
                        }
                    }
                }
                Op::File { path, bytes, mode } => {
                    safe_path(path)?;
                    match self.stat(path)? {
                        Some(st) if st.kind == "directory" => {
                            bail!("{path} is a directory in the root partition")
                        }
                        Some(_) => script += &format!("rm {path}\n"),
                        None => {}
                    }
                    let local = scratch.join(format!("root-{i}"));
                    std::fs::write(&local, bytes)?;
                    let local = local.display().to_string();
                    ensure!(!local.contains(char::is_whitespace), "scratch path has spaces");
                    script += &format!("write {local} {path}\n");
                    script += &owner_mode(path, 0o100000 | mode);
                }
                Op::Symlink { path, target } => {
                    safe_path(path)?;
                    safe_path(target)?;
                    if self.stat(path)?.is_some() {
                        script += &format!("rm {path}\n");
                    }
                    script += &format!("symlink {path} {target}\n");
                }
            }
        }
        let cmds = scratch.join("debugfs.cmds");
        std::fs::write(&cmds, &script)?;
        let out = output(
            "writing the root partition",
            tool("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&self.spec),
        )?;
        // debugfs exits 0 even when a command fails; its errors go to stderr, after the
        // version banner.
        let errors: Vec<&str> = std::str::from_utf8(&out.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
            .collect();
        ensure!(
            out.status.success() && errors.is_empty(),
            "debugfs failed writing the root partition ({}):\n  {}",
            self.spec,
            errors.join("\n  ")
        );
        for op in ops {
            match op {
                Op::File { path, bytes, mode } => {
                    let st = self.stat(path)?.with_context(|| format!("{path} was not written"))?;
                    ensure!(
                        st.mode == *mode && st.uid == 0 && st.gid == 0,
                        "{path}: wrote mode {mode:o} root:root, reads back {:o} {}:{}",
                        st.mode,
                        st.uid,
                        st.gid
                    );
                    let back = self.read(path)?.unwrap_or_default();
                    ensure!(back == *bytes, "{path}: the content read back differs");
                }
                Op::Symlink { path, target } => {
                    let st = self.stat(path)?.with_context(|| format!("{path} was not written"))?;
                    ensure!(st.target.as_deref() == Some(target), "{path}: wrong link target");
                }
                Op::Mkdir(_) => {}
            }
        }
        Ok(())
    }

    /// `dumpe2fs -h`'s features: a file system with `needs_recovery` has an unreplayed journal
    /// (the card was pulled without unmounting); writing past it could lose data.
    pub(crate) fn check_clean(&self) -> anyhow::Result<()> {
        let out = output("checking the root partition", tool("dumpe2fs").args(["-h", &self.spec]))?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "cannot read the root partition's superblock: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let features =
            text.lines().find_map(|l| l.strip_prefix("Filesystem features:")).unwrap_or_default();
        ensure!(
            !features.split_whitespace().any(|f| f == "needs_recovery"),
            "the root file system was not cleanly unmounted (its journal needs recovery). Run \
             `e2fsck -f` on it (for an image: `e2fsck -f '{}'`) and try again",
            self.spec
        );
        Ok(())
    }
}

fn owner_mode(path: &str, mode: u32) -> String {
    format!("sif {path} mode 0{mode:o}\nsif {path} uid 0\nsif {path} gid 0\n")
}

/// `a/b/../c` → `a/c` (no file system access: inside the image, not on this machine).
fn normalize(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sfdisk_json_is_read() -> anyhow::Result<()> {
        let json = r#"{
   "partitiontable": {
      "label": "dos",
      "id": "0x66fba458",
      "device": "img",
      "unit": "sectors",
      "sectorsize": 512,
      "partitions": [
         {
            "node": "img1",
            "start": 2048,
            "size": 32768,
            "type": "c"
         },{
            "node": "img2",
            "start": 34816,
            "size": 129024,
            "type": "83"
         }
      ]
   }
}"#;
        let t = parse_sfdisk(json)?;
        assert_eq!(t.label, "dos");
        assert_eq!(t.sector_size, 512);
        assert_eq!(t.partitions, vec![(2048, 32768), (34816, 129024)]);
        Ok(())
    }

    #[test]
    fn links_resolve_inside_the_image() {
        assert_eq!(normalize(Path::new("/etc/../usr/lib/os-release")), "/usr/lib/os-release");
    }
}
