//! `cargo xtask test`: the system tools, then fmt, clippy and every test, then the cross builds
//! for the Raspberry Pis with their qemu smoke tests and packages.

use std::time::Instant;

use hearth_harness::{cargo, root, run};

use crate::{cross, deploy, tools};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TestArgs {
    /// Leave out the cross builds and their qemu smoke tests (a local fast run; CI runs them).
    /// Also HEARTH_SKIP_CROSS=1.
    #[arg(long)]
    skip_cross: bool,
}

pub(crate) fn test(args: &TestArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let skip_cross = cross::skipped(args.skip_cross);
    // The cross step comes last: a problem it would meet only after the tests is found now.
    if !skip_cross {
        cross::preflight()?;
    }
    tools::ensure_system_tools()?;
    // The package tests build .deb files with it (deploy.rs).
    deploy::ensure_cargo_deb()?;
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // The dashboard's pure modules (formatting, calendar, chart scales), without a browser.
    run(
        "node --test",
        std::process::Command::new("node").arg("--test").args(js_tests()?).current_dir(root()),
    )?;
    run("cargo test", cargo().args(["test", "--workspace", "--locked"]))?;
    // The engine's API suite again with every engine storing in PostgreSQL (a real server the
    // test process starts): the store's conformance suite on the second backend. The store's
    // own tests run on both backends in the run above. `--workspace`, as above: the same
    // packages selected, the same features, so the suite built above runs again as it is
    // (`-p hearth-engine` resolved features of its own and rebuilt the engine and half of
    // its dependencies, two minutes of every run).
    run(
        "cargo test --test api (PostgreSQL)",
        cargo()
            .args(["test", "--workspace", "--locked", "--test", "api"])
            .env("HEARTH_TEST_BACKEND", "postgres"),
    )?;
    // Slow on a fresh machine (~10 min), so after everything else; CI runs it every time.
    if skip_cross {
        eprintln!(
            "xtask: SKIPPED the cross builds and qemu smoke tests (--skip-cross / \
             HEARTH_SKIP_CROSS); CI runs them: `cargo xtask cross`"
        );
    } else {
        cross::cross()?;
        // The armhf and arm64 packages of what the cross build just made, inspected.
        deploy::cross_packages()?;
    }
    eprintln!("xtask: all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// web-ui/tests-js/*.test.mjs, named one by one: Node's runner reads a directory argument
/// differently from one major version to the next, a file list the same in all.
fn js_tests() -> anyhow::Result<Vec<std::path::PathBuf>> {
    let dir = root().join("web-ui/tests-js");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no *.test.mjs in {}", dir.display());
    Ok(files)
}
