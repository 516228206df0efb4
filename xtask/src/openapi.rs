//! `cargo xtask openapi`: regenerate the committed OpenAPI documents (`openapi/`) from the
//! code, through the tests that compare them (`HEARTH_BLESS=1` writes instead of comparing).

use hearth_harness::{ENGINE, RELAY_AGENT, cargo, run};

pub(crate) fn openapi() -> anyhow::Result<()> {
    for (pkg, test) in [(ENGINE.package, "api"), (RELAY_AGENT.package, "api")] {
        run(
            &format!("regenerate {pkg} OpenAPI"),
            cargo().args(["test", "-p", pkg, "--test", test, "openapi"]).env("HEARTH_BLESS", "1"),
        )?;
    }
    eprintln!("xtask: openapi/ regenerated; review with `git diff openapi/` and commit");
    Ok(())
}
