//! The web dashboard (hearth-web) in a real headless chromium, against the real binaries with
//! simulated hardware, all found by mDNS inside a private network namespace.

use std::time::Duration;

use hearth_e2e::in_private_netns;
use hearth_e2e::webdriver::Browser;
use serde_json::json;

/// A page with a little of everything the client does, as a data: URL (no server needed).
const PROBE_PAGE: &str = "data:text/html,<!doctype html><meta name=viewport content='width=device-width'><title>probe</title>\
<input id=t value=abc><button id=b onclick=\"document.getElementById('o').textContent=\
document.getElementById('t').value\">go</button><p id=o>none</p><p id=h hidden>hidden</p>\
<script>console.error('probe error')</script>";

/// The WebDriver client itself, on a static page: if this fails, the dashboard tests' failures
/// are about the browser tooling, not the dashboard.
#[test]
fn webdriver_client_drives_chromium() -> anyhow::Result<()> {
    in_private_netns("web::webdriver_client_drives_chromium", probe)
}

async fn probe() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let b = Browser::start(390, 844, "UTC").await?;
    eprintln!("web: browser up in {:.1} s", started.elapsed().as_secs_f64());
    b.navigate(PROBE_PAGE).await?;
    let input = b.find("#t").await?;
    assert_eq!(input.property("value").await?, json!("abc"));
    input.clear().await?;
    input.send_keys("typed").await?;
    b.find("#b").await?.click().await?;
    let out = b.find("#o").await?;
    b.wait_for("the button's text", Duration::from_secs(5), || async {
        Ok((out.text().await? == "typed").then_some(()))
    })
    .await?;
    assert!(!b.find("#h").await?.is_displayed().await?);
    assert!(out.is_displayed().await?);
    assert_eq!(b.find("#b").await?.attribute("onclick").await?.map(|s| s.len() > 10), Some(true));
    assert_eq!(b.find("#t").await?.attribute("nope").await?, None);
    assert!(b.try_find("#missing").await?.is_none());
    let size = b.execute("return [innerWidth, innerHeight]", vec![]).await?;
    assert_eq!(size, json!([390, 844]), "viewport");
    b.set_viewport(1280, 800, false).await?;
    let size = b.execute("return [innerWidth, innerHeight]", vec![]).await?;
    assert_eq!(size, json!([1280, 800]), "viewport after resize");
    let tz = b.execute("return Intl.DateTimeFormat().resolvedOptions().timeZone", vec![]).await?;
    assert_eq!(tz, json!("UTC"));
    let arg = b.execute("return arguments[0].id", vec![out.to_arg()]).await?;
    assert_eq!(arg, json!("o"));
    let shot = hearth_e2e::artefacts_dir("web")?.join("webdriver-probe.png");
    b.screenshot(&shot).await?;
    let log = b.console_log().await?;
    eprintln!("web: console log {log:?}");
    if let Some(log) = log {
        assert!(log.iter().any(|e| e.level == "SEVERE" && e.message.contains("probe error")));
    }
    eprintln!("web: checks done at {:.1} s", started.elapsed().as_secs_f64());
    b.quit().await?;
    eprintln!("web: probe took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
