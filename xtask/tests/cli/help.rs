//! `--help` answers and does nothing else; a mistake on the command line is refused before
//! any work. "Nothing else" is checked from outside: xtask runs with a PATH (and a `CARGO`)
//! where every program it could start is a stub that writes down that it was started.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Output;

use super::xtask;

type R = anyhow::Result<()>;

/// Every command xtask has. A command added later is found in `cargo xtask --help` and checked
/// too ([`the_command_list_is_complete`]).
const COMMANDS: &[&str] = &["demo", "test", "cross", "dist", "openapi", "bench", "provision"];

/// Programs xtask starts by name (cargo, the shells its scripts run in, apt and sudo, the
/// system tools it looks for, and whatever would signal or wrap its children).
const STUBBED: &[&str] = &[
    "cargo",
    "rustc",
    "rustup",
    "sh",
    "bash",
    "env",
    "apt-get",
    "sudo",
    "id",
    "kill",
    "setpriv",
    "dpkg-deb",
    "dpkg-query",
    "systemd-analyze",
    "unshare",
    "ip",
    "sfdisk",
    "mkfs.vfat",
    "mcopy",
    "debugfs",
    "git",
];

/// A PATH of stubs, each appending its name and arguments to a log.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin)?;
        let log = dir.path().join("started");
        for name in STUBBED {
            let stub = bin.join(name);
            std::fs::write(
                &stub,
                format!("#!/bin/sh\necho \"{name} $*\" >> '{}'\nexit 1\n", log.display()),
            )?;
            std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Self { dir })
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(xtask()
            .args(args)
            .env("PATH", self.bin())
            .env("CARGO", self.bin().join("cargo"))
            .env_remove("HEARTH_SKIP_CROSS")
            .output()?)
    }

    /// What the stubs saw started (empty: nothing).
    fn started(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("started")).unwrap_or_default()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_answers_help_and_does_nothing_else() -> R {
    let sandbox = Sandbox::new()?;
    for command in COMMANDS {
        for args in [vec![*command, "--help"], vec![*command, "-h"], vec!["help", *command]] {
            let out = sandbox.run(&args)?;
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert!(
                out.status.success(),
                "xtask {args:?}: {}\n{stdout}{stderr}\nstarted: {}",
                out.status,
                sandbox.started()
            );
            assert!(
                stdout.contains(&format!("Usage: cargo xtask {command}")),
                "xtask {args:?} printed no usage:\n{stdout}{stderr}"
            );
            let started = sandbox.started();
            assert!(started.is_empty(), "xtask {args:?} started programs:\n{started}");
        }
    }
    Ok(())
}

#[test]
fn the_command_list_is_complete() -> R {
    let sandbox = Sandbox::new()?;
    let out = sandbox.run(&["--help"])?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "xtask --help: {}\n{stdout}{}", out.status, text(&out.stderr));
    // The "Commands:" section: one line per command, its name indented by two spaces.
    let listed: BTreeSet<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    let known: BTreeSet<&str> = COMMANDS.iter().copied().collect();
    assert_eq!(listed, known, "add new commands to COMMANDS, so their --help is checked");
    // Without a command: the list, as a usage error.
    let out = sandbox.run(&[])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Commands:") || text(&out.stdout).contains("Commands:"));
    assert!(sandbox.started().is_empty(), "started: {}", sandbox.started());
    Ok(())
}

#[test]
fn mistakes_are_refused_before_any_work() -> R {
    let sandbox = Sandbox::new()?;
    let mut cases: Vec<Vec<&str>> = COMMANDS.iter().map(|c| vec![*c, "--no-such-option"]).collect();
    cases.extend([
        vec!["demo", "--port", "eighty"],
        vec!["demo", "--history-days", "99"],
        vec!["demo", "--discovery", "--no-discovery"],
        vec!["bench", "no-such-bench"],
        vec!["dist", "extra"],
        vec!["no-such-command"],
    ]);
    for args in cases {
        let out = sandbox.run(&args)?;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "xtask {args:?}: {}\n{stderr}", out.status);
        assert!(stderr.contains("error:"), "xtask {args:?} said no error:\n{stderr}");
        let started = sandbox.started();
        assert!(started.is_empty(), "xtask {args:?} started programs:\n{started}");
    }
    Ok(())
}
