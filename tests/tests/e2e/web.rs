//! The web dashboard (hearth-web) for real: the engine, the simulated relay and sensor agents and
//! hearth-web as separate processes, finding the engine by mDNS inside a private network
//! namespace, and the dashboard in a real headless chromium driven over WebDriver.
//!
//! The selectors are the ones the dashboard keeps stable for tests: ids and data attributes,
//! never layout. Screenshots land in `target/artefacts/web/` for people to look at.

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use hearth_common::auth::DeviceCredential;
use hearth_e2e::webdriver::{self, Browser};
use hearth_e2e::{Proc, artefacts_dir, ds18b20, eventually, in_private_netns};
use hearth_proto::Timestamp;
use hearth_proto::client::{EngineClient, RelayAgentClient};
use hearth_proto::control::ControlSettings;
use hearth_proto::relays::RelayState;
use hearth_proto::schedules::{Hold, NewOverride, NewRule, Weekday, When};
use hearth_proto::sensors::{MAX_BACKLOG_UPDATES, SensorBacklog, SensorUpdate};
use serde_json::{Value, json};

use super::{RELAY, SENSOR, SENSOR_ID, Site, engine_args, heat_to, start_relay, start_sensor};

/// Most waits: generous, as a debug build of four programs and chromium share two cores.
const WAIT: Duration = Duration::from_secs(40);

/// The engine (schedules read in UTC, like the browser: see [`Browser::start`]), the two
/// simulated agents found by mDNS, and an admin client.
struct House {
    site: Site,
    engine: Proc,
    engine_url: String,
    api: EngineClient,
    _relay: Proc,
    relay_api: RelayAgentClient,
    _sensor: Proc,
}

impl House {
    /// Start it all with the default target `heat_c` in heat mode; the simulated room starts at
    /// 18 °C and runs `time_scale` times faster than real time.
    async fn start(heat_c: f64, time_scale: &str) -> anyhow::Result<Self> {
        let (site, engine, engine_url, api) = engine_in_utc(heat_c).await?;
        let relay = start_relay(&site.relay_toml, &site.relay_key, &site.world_s)?;
        let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);
        let extra = ["--interval-s", "0.5", "--sim-start-c", "18", "--sim-time-scale", time_scale];
        let sensor = start_sensor(&site.sensor_key, &site.world_s, &extra)?;
        eventually("a reading and the relay outputs at the engine", WAIT, || async {
            let read = api.sensors().await?.iter().any(|s| s.id == SENSOR_ID && s.latest.is_some());
            let relays = api.relays().await?.iter().filter(|r| r.host_id == RELAY).count();
            Ok((read && relays == 2).then_some(()))
        })
        .await?;
        Ok(Self { site, engine, engine_url, api, _relay: relay, relay_api, _sensor: sensor })
    }

    /// GET an engine route as JSON (routes the typed client has no method for).
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body, _) =
            call(reqwest::Method::GET, &self.engine_url, path, None, &[]).await?;
        anyhow::ensure!(status == 200, "engine GET {path}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }
}

/// A site and its engine reading schedules in UTC (like the browser: see [`Browser::start`]),
/// heating to `heat_c`: the site, the engine, its URL and an admin client.
async fn engine_in_utc(heat_c: f64) -> anyhow::Result<(Site, Proc, String, EngineClient)> {
    let site = Site::new()?;
    let mut args = engine_args(&site.data_s, "8");
    args.extend(["--time-zone", "UTC"]);
    let engine = Proc::start("engine", "hearth-engine", &args)?;
    let engine_url = engine.listening_url().await?;
    let api = EngineClient::new(&engine_url, Some(site.admin.clone()));
    heat_to(&api, heat_c).await?;
    Ok((site, engine, engine_url, api))
}

/// Start hearth-web (`--engine URL`, or by mDNS when `None`) and wait until it reaches the engine.
async fn start_web(engine: Option<&str>) -> anyhow::Result<(Proc, String)> {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    if let Some(url) = engine {
        args.extend(["--engine", url]);
    }
    let web = Proc::start("web", "hearth-web", &args)?;
    let url = web.listening_url().await?;
    eventually("hearth-web relaying to the engine", WAIT, || async {
        let (status, _, _) = call(reqwest::Method::GET, &url, "/api/v1/status", None, &[]).await?;
        Ok((status == 200).then_some(()))
    })
    .await?;
    Ok((web, url))
}

/// One HTTP request; returns the status, the body text and the `Set-Cookie` header.
async fn call(
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String, Option<String>)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
    let mut req = client.request(method, format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, resp.text().await?, cookie))
}

/// The text of the first element matching `css` (its `textContent`, whitespace collapsed), `None`
/// when there is none. Not WebDriver's rendered text: that applies CSS `text-transform`, and the
/// contract is about the words ("Idle", shown in capitals by the style sheet).
async fn text_of(b: &Browser, css: &str) -> anyhow::Result<Option<String>> {
    for _ in 0..STALE_READS {
        let Some(el) = b.try_find(css).await? else { return Ok(None) };
        match el.property("textContent").await {
            Ok(text) => {
                let words = text.as_str().unwrap_or_default().split_whitespace();
                return Ok(Some(words.collect::<Vec<_>>().join(" ")));
            }
            Err(e) if webdriver::is_stale(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    anyhow::bail!("{css} was re-rendered {STALE_READS} times while being read")
}

/// How often an element is found again when the dashboard re-rendered it between its finding
/// and its reading (it renders on every event from the engine, so a read can lose that race).
const STALE_READS: usize = 5;

/// Whether an element matching `css` exists and is displayed.
async fn shown(b: &Browser, css: &str) -> anyhow::Result<bool> {
    for _ in 0..STALE_READS {
        let Some(el) = b.try_find(css).await? else { return Ok(false) };
        match el.is_displayed().await {
            Err(e) if webdriver::is_stale(&e) => continue,
            shown => return shown,
        }
    }
    anyhow::bail!("{css} was re-rendered {STALE_READS} times while being read")
}

/// Set an input's or a select's value as a person's typing or choosing would end up (with the
/// `input` and `change` events): `<input type=time>` takes keystrokes in the browser's locale
/// format, which a test should not depend on.
async fn set_value(b: &Browser, css: &str, value: &str) -> anyhow::Result<()> {
    let el = b.find(css).await?;
    let script = "const [el, v] = arguments; el.value = v; \
        el.dispatchEvent(new Event('input', {bubbles: true})); \
        el.dispatchEvent(new Event('change', {bubbles: true})); return el.value;";
    let got = b.execute(script, vec![el.to_arg(), json!(value)]).await?;
    anyhow::ensure!(got == json!(value), "{css} took {got}, not {value:?}");
    Ok(())
}

/// Replace what an input holds by typing `text`.
async fn type_into(b: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let el = b.find(css).await?;
    el.clear().await?;
    if !text.is_empty() {
        el.send_keys(text).await?;
    }
    Ok(())
}

/// Tick exactly the day checkboxes in `days` (by clicking, as a person would).
async fn tick_days(b: &Browser, days: &[&str]) -> anyhow::Result<()> {
    for el in b.find_all("#rule-form input[name=day]").await? {
        let value = el.attribute("value").await?.unwrap_or_default();
        let want = days.contains(&value.as_str());
        if el.property("checked").await? != json!(want) {
            el.click().await?;
        }
        anyhow::ensure!(el.property("checked").await? == json!(want), "day {value} not {want}");
    }
    Ok(())
}

/// Wait until the engine's sensor [`SENSOR_ID`] has `what` (`has` says when).
async fn engine_sensor(
    api: &EngineClient,
    what: &str,
    has: impl Fn(&hearth_proto::sensors::SensorInfo) -> bool,
) -> anyhow::Result<()> {
    eventually(&format!("the engine has {what}"), WAIT, || async {
        let sensors = api.sensors().await?;
        Ok(sensors.iter().any(|s| s.id == SENSOR_ID && has(s)).then_some(()))
    })
    .await
}

/// Navigate inside the single page app, as its nav links do (no page load).
async fn go(b: &Browser, hash: &str) -> anyhow::Result<()> {
    b.execute("location.hash = arguments[0]", vec![json!(hash)]).await.map(drop)
}

/// The newest override in force at the engine, as JSON.
async fn newest_override(house: &House) -> anyhow::Result<Option<Value>> {
    let list = house.get("/v1/overrides").await?;
    let newest = list.as_array().and_then(|a| a.iter().max_by_key(|o| o["id"].as_i64()));
    Ok(newest.cloned())
}

fn screenshot_path(name: &str) -> anyhow::Result<std::path::PathBuf> {
    Ok(artefacts_dir("web")?.join(format!("{name}.png")))
}

/// Local (UTC) weekday name and `HH:MM` of `t`, as the engine reads rules with
/// `--time-zone UTC`.
fn utc_day_and_time(t: hearth_proto::Timestamp) -> (String, String) {
    let z = t.to_zoned(jiff::tz::TimeZone::UTC);
    let day = format!("{:?}", z.weekday()).to_lowercase();
    (day, format!("{:02}:{:02}", z.hour(), z.minute()))
}

/// `days` of one-a-minute readings of the test's sensor up to `until`, through the engine's
/// backlog route with the sensor agent's own credential, as an agent's replay would deliver
/// them: a house at 20.5 °C by day and 17 °C by night (UTC), the heating's saw-tooth of half
/// a degree around it, in DS18B20 sixteenths. How many readings.
async fn seed_history(house: &House, until: Timestamp, days: i64) -> anyhow::Result<usize> {
    let key: DeviceCredential = house.site.sensor_key.parse()?;
    let agent = EngineClient::new(&house.engine_url, Some(key.agent_credential(SENSOR)));
    let minutes = days * 24 * 60;
    let start = until - jiff::SignedDuration::from_mins(minutes);
    let reading = |m: i64| -> anyhow::Result<SensorUpdate> {
        let at = start + jiff::SignedDuration::from_mins(m);
        let hour = at.to_zoned(jiff::tz::TimeZone::UTC).hour();
        let base = if (6..22).contains(&hour) { 20.5 } else { 17.0 };
        let saw = ((m % 40) as f64 / 40.0 - 0.5) * 0.5;
        let value = ((base + saw) * 16.0).round() / 16.0;
        Ok(SensorUpdate {
            host_id: SENSOR.into(),
            sensors: BTreeMap::from([(SENSOR_ID.to_owned(), ds18b20(value, at))]),
            agent_time: None,
        })
    };
    let all = (0..minutes).map(reading).collect::<anyhow::Result<Vec<_>>>()?;
    for chunk in all.chunks(MAX_BACKLOG_UPDATES) {
        let backlog =
            SensorBacklog { host_id: SENSOR.into(), updates: chunk.to_vec(), agent_time: None };
        agent.sensor_backlog(&backlog).await?;
    }
    Ok(all.len())
}

/// What Home's face says, read in one script (one instant): the temperature, the state, the
/// short why beside it, and the engine's reason in the card below.
async fn face(b: &Browser) -> anyhow::Result<[String; 4]> {
    let script = "return ['#home-temp', '#home-state', '#home-status', '#home-reason']\
        .map(s => (document.querySelector(s)?.textContent || '').trim().replace(/\\s+/g, ' '))";
    let v = b.execute(script, vec![]).await?;
    let text = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
    Ok([text(0), text(1), text(2), text(3)])
}

/// Fails unless every element matching one of `css` is on the screen without scrolling: inside
/// the viewport, above the phone's tab bar.
async fn above_the_fold(b: &Browser, css: &[&str]) -> anyhow::Result<()> {
    let script = "window.scrollTo(0, 0); \
        const nav = document.querySelector('.mainnav'); \
        const navTop = nav && nav.checkVisibility() ? nav.getBoundingClientRect().top : innerHeight; \
        const limit = navTop > innerHeight / 2 ? navTop : innerHeight; \
        return arguments[0].flatMap(s => [...document.querySelectorAll(s)]\
          .filter(e => { const r = e.getBoundingClientRect(); \
            return !(r.width > 0 && r.top >= 0 && r.bottom <= limit); })\
          .map(e => s + ' ' + JSON.stringify(e.getBoundingClientRect())))";
    let below = b.execute(script, vec![json!(css)]).await?;
    anyhow::ensure!(below == json!([]), "not on the first screen: {below}");
    Ok(())
}

/// Toasts fade after a few seconds; screenshots wait for them, so nothing covers the view.
async fn without_toasts(b: &Browser) -> anyhow::Result<()> {
    b.wait_for("no toast on the screen", WAIT, || async {
        let n = b.execute("return document.querySelectorAll('#toasts > *').length", vec![]).await?;
        Ok((n == json!(0)).then_some(()))
    })
    .await
}

/// The span the History chart shows, from its data attributes: (from, to).
async fn chart_span(b: &Browser) -> anyhow::Result<Option<(Timestamp, Timestamp)>> {
    let Some(el) = b.try_find("#history-chart[aria-busy=false]").await? else { return Ok(None) };
    let (Some(from), Some(to)) = (el.attribute("data-from").await?, el.attribute("data-to").await?)
    else {
        return Ok(None);
    };
    Ok(Some((from.parse()?, to.parse()?)))
}

/// Wait until the History chart shows a span of `minutes` (± `tolerance`, a fraction) with
/// points, all inside it; the span.
async fn chart_showing(
    b: &Browser,
    minutes: f64,
    tolerance: f64,
) -> anyhow::Result<(Timestamp, Timestamp)> {
    let what = format!("the History chart showing {minutes} min with points");
    b.wait_for(&what, WAIT, || async {
        let Some((from, to)) = chart_span(b).await? else { return Ok(None) };
        let span = to.duration_since(from).as_secs_f64() / 60.0;
        if (span - minutes).abs() > minutes * tolerance {
            return Ok(None);
        }
        let script = "return [...document.querySelectorAll('#history-chart svg .point')]\
            .map(p => p.dataset.t)";
        let times = b.execute(script, vec![]).await?;
        let times: Vec<Timestamp> = times
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str()?.parse().ok())
            .collect();
        // A point is drawn at its bucket's start: a bucket may begin before the span.
        let slack = jiff::SignedDuration::from_mins(30);
        let inside = times.iter().all(|t| *t >= from - slack && *t <= to);
        Ok((!times.is_empty() && inside).then_some((from, to)))
    })
    .await
}

/// The runtime chart's axis: every tick a plain number with the same decimals, one unit label.
async fn runtime_axis_has_one_unit(b: &Browser) -> anyhow::Result<String> {
    let script = "const axis = [...document.querySelectorAll('#history-runtime svg .chart-grid text')]; \
        return [axis.filter(t => t.classList.contains('chart-unit')).map(t => t.textContent), \
          axis.filter(t => !t.classList.contains('chart-unit')).map(t => t.textContent)]";
    let v = b.execute(script, vec![]).await?;
    let units: Vec<&str> =
        v[0].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let ticks: Vec<&str> =
        v[1].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    anyhow::ensure!(units.len() == 1 && ["s", "min", "h"].contains(&units[0]), "units {units:?}");
    let decimals = |t: &str| t.split('.').nth(1).map_or(0, str::len);
    let numeric = ticks.iter().all(|t| t.parse::<f64>().is_ok());
    let same = ticks.iter().all(|t| decimals(t) == decimals(ticks[0]));
    anyhow::ensure!(numeric && same && ticks.len() >= 2, "ticks {ticks:?} ({units:?})");
    Ok(format!("{ticks:?} {}", units[0]))
}

/// The History view's short ranges, their runtime per period on one unit, and every way to
/// zoom: the buttons, a drag across the chart, the keyboard on the focused chart.
async fn history_ranges_and_zoom(b: &Browser) -> anyhow::Result<()> {
    for (range, minutes, per) in [("1h", 60.0, "per 5 minutes"), ("6h", 360.0, "per half hour")] {
        b.find(&format!("button[data-range=\"{range}\"]")).await?.click().await?;
        let (from, to) = chart_showing(b, minutes, 0.01).await?;
        let title = format!("Runtime {per}");
        b.wait_for(&format!("#history-runtime-title {title:?}"), WAIT, || async {
            Ok(text_of(b, "#history-runtime-title").await?.filter(|t| *t == title))
        })
        .await?;
        let axis = b
            .wait_for("the runtime bars", WAIT, || async {
                Ok(runtime_axis_has_one_unit(b).await.ok())
            })
            .await?;
        eprintln!("web: History {range}: {from} to {to}, runtime axis {axis}");
    }
    // The buttons: in halves the span, out and "Whole range" bring the range back.
    let zoomed = |t: Option<String>| t.is_some_and(|t| t.starts_with("Zoomed:"));
    b.find("button#history-zoom-in").await?.click().await?;
    chart_showing(b, 180.0, 0.01).await?;
    assert!(zoomed(text_of(b, "#history-span").await?), "no zoom shown");
    b.find("button#history-zoom-out").await?.click().await?;
    chart_showing(b, 360.0, 0.01).await?;
    assert!(!zoomed(text_of(b, "#history-span").await?), "still zoomed");
    // A drag across the middle half of the chart shows that half, in more detail.
    let overlay = b.find("#history-chart .chart-overlay").await?;
    let width = b
        .execute("return arguments[0].getBoundingClientRect().width", vec![overlay.to_arg()])
        .await?
        .as_f64()
        .unwrap_or_default();
    let quarter = (width / 4.0) as i64;
    b.drag(&overlay, (-quarter, 0), (quarter, 0)).await?;
    let (from, to) = chart_showing(b, 180.0, 0.05).await?;
    eprintln!("web: History dragged to {from} – {to}");
    // The keyboard on the focused chart: + in, 0 back to the whole range.
    b.find("#history-chart svg.chart").await?.send_keys("+").await?;
    chart_showing(b, 90.0, 0.05).await?;
    b.find("#history-chart svg.chart").await?.send_keys("0").await?;
    chart_showing(b, 360.0, 0.01).await?;
    b.find("button#history-zoom-in").await?.click().await?;
    chart_showing(b, 180.0, 0.01).await?;
    b.find("button#history-zoom-reset").await?.click().await?;
    chart_showing(b, 360.0, 0.01).await?;
    Ok(())
}

/// How far below the kiosk's visible controls the reason card starts, and how far aside (the
/// controls' own box fills its grid cell: their visible parts are what people see).
const KIOSK_GAP: &str = "const kids = [...document.querySelectorAll('.home-controls > *')]\
    .filter(e => e.checkVisibility()).map(e => e.getBoundingClientRect()); \
    const w = document.querySelector('.home-why').getBoundingClientRect(); \
    return [w.top - Math.max(...kids.map(r => r.bottom)), \
      Math.abs(w.left - Math.min(...kids.map(r => r.left)))]";

/// The kiosk: one group of controls and reason beside the face (not the card alone in a
/// corner), and without a session no buttons that need one, but a way to log in.
async fn kiosk(b: &Browser, web: &str, admin: &str) -> anyhow::Result<()> {
    let temp = |t: &str| t.contains("°C") && t.chars().any(|c| c.is_ascii_digit());
    for (w, h) in [(1024, 600), (1280, 800)] {
        b.set_viewport(w, h, false).await?;
        b.navigate(&format!("{web}/?kiosk")).await?;
        b.wait_for("#home-temp in kiosk mode", WAIT, || async {
            Ok(text_of(b, "#home-temp").await?.filter(|t| temp(t)))
        })
        .await?;
        b.wait_for("the controls with a session", WAIT, || async {
            shown(b, "button#temp-up").await.map(|s| s.then_some(()))
        })
        .await?;
        let chrome = "return [...document.querySelectorAll('nav, button#logout, button#login-open')]\
            .filter(e => e.checkVisibility()).map(e => e.outerHTML.slice(0, 80))";
        let visible = b.execute(chrome, vec![]).await?;
        assert_eq!(visible, json!([]), "navigation chrome shown in kiosk mode");
        let g = b.execute(KIOSK_GAP, vec![]).await?;
        let (below, aside) = (g[0].as_f64().unwrap_or(1e9), g[1].as_f64().unwrap_or(1e9));
        assert!(
            (0.0..=40.0).contains(&below) && aside < 1.0,
            "{w}x{h}: the reason card is {below} px below the controls, {aside} px aside"
        );
        above_the_fold(b, &[".home-controls", ".home-why", "#home-status"]).await?;
        without_toasts(b).await?;
        b.screenshot(&screenshot_path(&format!("kiosk-{w}x{h}"))?).await?;
    }
    // A visitor without a session: the wall display offers the login, not buttons that would
    // only ask for it.
    b.delete_cookies().await?;
    b.navigate(&format!("{web}/?kiosk")).await?;
    b.wait_for("#kiosk-login without a session", WAIT, || async {
        shown(b, "button#kiosk-login").await.map(|s| s.then_some(()))
    })
    .await?;
    for control in ["button#temp-up", "button#temp-down", "select#hold", ".mode-group button"] {
        assert!(!shown(b, control).await?, "{control} shown without a session");
    }
    assert_named(b, "kiosk").await?;
    b.screenshot(&screenshot_path("kiosk-logged-out-1280x800")?).await?;
    b.find("button#kiosk-login").await?.click().await?;
    b.wait_for("the login dialog from the kiosk", WAIT, || async {
        shown(b, "#login-token").await.map(|s| s.then_some(()))
    })
    .await?;
    type_into(b, "#login-token", admin).await?;
    b.find("button#login-submit").await?.click().await?;
    b.wait_for("the controls after logging in on the kiosk", WAIT, || async {
        let ok = shown(b, "button#temp-up").await? && !shown(b, "button#kiosk-login").await?;
        Ok(ok.then_some(()))
    })
    .await
}

/// Fails on any error in the browser's console but the failed requests a test provoked on
/// purpose: an engine's 422 answer.
async fn no_console_errors_but_422(b: &Browser) -> anyhow::Result<()> {
    let Some(log) = b.console_log().await? else {
        eprintln!("web: this chromedriver offers no console log; not checked");
        return Ok(());
    };
    let severe: Vec<_> = log
        .iter()
        .filter(|e| e.level == "SEVERE")
        .filter(|e| !(e.source == "network" && e.message.contains("422")))
        .collect();
    assert!(severe.is_empty(), "errors in the browser's console: {severe:#?}");
    let expected = log.iter().filter(|e| e.level == "SEVERE").count();
    eprintln!("web: console: {} entries, no errors but {expected} expected 422", log.len());
    Ok(())
}

#[test]
fn dashboard_in_a_real_browser() -> anyhow::Result<()> {
    in_private_netns("web::dashboard_in_a_real_browser", dashboard)
}

/// The dashboard as a person uses it, in one browser session: the live temperature without
/// reload; log in; "+" makes an override that the relay follows; a weekly block in the week
/// view and the timeline; the engine's validation error for a bad rule; history points;
/// screenshots.
/// Every visible control of the page has an accessible name: `aria-label`, `aria-labelledby`,
/// a `<label>`, its text, or a title (the names a screen reader reads, and the ones people and
/// tests find controls by).
async fn assert_named(b: &Browser, view: &str) -> anyhow::Result<()> {
    let script = "return [...document.querySelectorAll(\
        'button, input:not([type=hidden]), select, textarea, a[href], [role=button], [tabindex]:not([tabindex=\"-1\"])')]\
        .filter(e => e.checkVisibility())\
        .filter(e => {\
          const by = (e.getAttribute('aria-labelledby') || '').split(/\\s+/)\
            .map(id => document.getElementById(id)).filter(Boolean);\
          const name = [e.getAttribute('aria-label'), ...by.map(l => l.textContent),\
            ...[...(e.labels || [])].map(l => l.textContent),\
            ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName) ? '' : e.textContent,\
            e.getAttribute('title')].join('').trim();\
          return !name;\
        }).map(e => e.outerHTML.slice(0, 120))";
    let unnamed = b.execute(script, vec![]).await?;
    assert_eq!(unnamed, json!([]), "{view}: controls without an accessible name");
    Ok(())
}

async fn dashboard() -> anyhow::Result<()> {
    let t0 = Instant::now();
    // Below the room (18 °C, cooling toward 5 °C outside at 60× speed, ~0.04 °C/s, so the shown
    // temperature moves every few seconds): the heat stays off at first, and later cycles
    // around 17 °C until + raises the target well above the room.
    let started = Timestamp::now();
    let house = House::start(17.0, "60").await?;
    // Three days of history before the test's own readings, replayed through the engine's
    // backlog route as an agent would (the History view's ranges and zoom need them).
    let seeded = seed_history(&house, started - jiff::SignedDuration::from_mins(1), 3).await?;
    eprintln!("web: {seeded} readings of history seeded");
    // A schedule change three hours ahead: + holds "until the next change" (the dashboard's
    // default), which needs one.
    let now = hearth_proto::Timestamp::now();
    let later = |min: i64| now + jiff::SignedDuration::from_mins(min);
    let (_, night_start) = utc_day_and_time(later(180));
    let (_, night_end) = utc_day_and_time(later(240));
    let every_day = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    house
        .api
        .create_rule(&NewRule {
            name: "Night setback".into(),
            enabled: true,
            when: When::Weekly {
                days: serde_json::from_value::<Vec<Weekday>>(json!(every_day))?,
                start: night_start,
                end: night_end,
            },
            heat_c: Some(16.0),
            cool_c: None,
            sensors: vec![],
            zone: None,
        })
        .await?;
    // No engine address: hearth-web finds it by mDNS, like the agents.
    let (web_proc, web) = start_web(None).await?;
    eprintln!("web: house up in {:.1} s", t0.elapsed().as_secs_f64());

    let b = Browser::start(390, 844, "UTC").await?;
    b.navigate(&format!("{web}/")).await?;

    // The live temperature: it changes on screen with no reload.
    let temp = |t: &str| t.contains("°C") && t.chars().any(|c| c.is_ascii_digit());
    let first = b
        .wait_for("#home-temp showing a temperature", WAIT, || async {
            Ok(text_of(&b, "#home-temp").await?.filter(|t| temp(t)))
        })
        .await?;
    b.execute("window.__noReload = 1", vec![]).await?;
    let changed = b
        .wait_for("#home-temp changing live (SSE) from the first value", WAIT, || async {
            Ok(text_of(&b, "#home-temp").await?.filter(|t| temp(t) && *t != first))
        })
        .await?;
    let same_page = b
        .execute(
            "return [window.__noReload === 1, performance.getEntriesByType('navigation').length]",
            vec![],
        )
        .await?;
    assert_eq!(same_page, json!([true, 1]), "the page reloaded while the temperature changed");
    eprintln!("web: #home-temp {first:?} → {changed:?} without reload");

    // One temperature on the face: the big number is the one the reason beside it names (both
    // from one decision), for every value the room passes through; state and why on the first
    // screen of a phone.
    let mut temps = std::collections::BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while temps.len() < 4 {
        let [shown_temp, state, status, reason] = face(&b).await?;
        if temp(&shown_temp) && !reason.is_empty() {
            assert!(
                reason.contains(&shown_temp),
                "the face shows {shown_temp} beside the reason {reason:?}"
            );
            assert!(!state.is_empty() && !status.is_empty(), "state {state:?}, why {status:?}");
            temps.insert(shown_temp);
        }
        anyhow::ensure!(Instant::now() < deadline, "the face showed only {temps:?}");
        // Sampling the face as it changes; the deadline bounds it.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    above_the_fold(&b, &["#home-state", "#home-status", "#home-temp", "#home-target"]).await?;
    eprintln!("web: the face's temperature matched its reason at {temps:?}");

    // Log in with the admin token.
    b.find("button#login-open").await?.click().await?;
    b.wait_for("the login dialog", WAIT, || async {
        shown(&b, "#login-token").await.map(|s| s.then_some(()))
    })
    .await?;
    // The hint works for a packaged install (the site secret is the service user's).
    let hint = text_of(&b, "#login-form").await?.unwrap_or_default();
    assert!(hint.contains("sudo -u hearth hearth-engine"), "login hint: {hint:?}");
    type_into(&b, "#login-token", &house.site.admin).await?;
    b.find("button#login-submit").await?.click().await?;
    b.wait_for("button#logout after logging in", WAIT, || async {
        shown(&b, "button#logout").await.map(|s| s.then_some(()))
    })
    .await?;
    assert!(!shown(&b, "button#login-open").await?, "Log in still shown after logging in");

    // Idle first, so what follows is the dashboard's doing.
    b.wait_for("#home-state Idle and the furnace off", WAIT, || async {
        let idle = text_of(&b, "#home-state").await?.is_some_and(|t| t == "Idle");
        let off = house.relay_api.relay("heat").await?.state == RelayState::Off;
        Ok((idle && off).then_some(()))
    })
    .await?;
    assert!(!shown(&b, "#home-override").await?, "an override shown before any");

    // A long minimum off time (the relay agent's output went off when it started): after +
    // the heat has to wait, and the face says so with the time left.
    let mut settings: ControlSettings = house.api.control().await?.settings;
    settings.min_off_s = 600;
    house.api.set_control(&settings).await?;

    // + until the held target is well above the room: the furnace goes on.
    b.find("button#temp-up").await?.click().await?;
    let mut held = b
        .wait_for("an override at the engine after +", WAIT, || async {
            Ok(newest_override(&house).await?.and_then(|o| o["heat_c"].as_f64()))
        })
        .await?;
    b.wait_for("#home-override shown", WAIT, || async {
        shown(&b, "#home-override").await.map(|s| s.then_some(()))
    })
    .await?;
    let room = house
        .api
        .control()
        .await?
        .decision
        .and_then(|d| d.effective_temp_c)
        .ok_or_else(|| anyhow::anyhow!("no effective temperature"))?;
    let mut presses = 1;
    while held < room + 1.0 {
        anyhow::ensure!(presses < 12, "12 presses of + and the target is {held} °C");
        b.find("button#temp-up").await?.click().await?;
        presses += 1;
        let before = held;
        held = b
            .wait_for(
                &format!("press {presses} of + raising the override above {before}"),
                WAIT,
                || async {
                    let h = newest_override(&house).await?.and_then(|o| o["heat_c"].as_f64());
                    Ok(h.filter(|h| *h > before))
                },
            )
            .await?;
    }
    eprintln!("web: {presses} presses of +: holding {held} °C, the room at {room:.2} °C");
    let waiting = "Minimum off time: heat in ";
    let status = b
        .wait_for("#home-state Waiting for the minimum off time", WAIT, || async {
            let [_, state, status, _] = face(&b).await?;
            Ok((state == "Waiting" && status.starts_with(waiting)).then_some(status))
        })
        .await?;
    above_the_fold(&b, &["#home-state", "#home-status", "#home-temp", "#home-target"]).await?;
    let counted = b
        .wait_for("the time left counting down", WAIT, || async {
            let [_, _, now, _] = face(&b).await?;
            Ok((now.starts_with(waiting) && now != status).then_some(now))
        })
        .await?;
    eprintln!("web: the face says {status:?}, then {counted:?}");
    without_toasts(&b).await?;
    b.screenshot(&screenshot_path("home-waiting-390x844")?).await?;
    settings.min_off_s = 1;
    house.api.set_control(&settings).await?;
    b.wait_for("the relay agent's heat output on", WAIT, || async {
        Ok((house.relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;
    b.wait_for("#home-state Heating", WAIT, || async {
        Ok(text_of(&b, "#home-state").await?.filter(|t| t == "Heating"))
    })
    .await?;
    let held_text = format!("{held:.1}");
    // Held "until the next change": Home names it.
    let (_, night_at) = utc_day_and_time(later(180));
    // ("until 01:30" or, past midnight, "until Thu 3 Dec 01:30").
    let until_night = format!("{night_at}, when Night setback starts");
    b.wait_for(&format!("#home-override: {held_text} {until_night}"), WAIT, || async {
        let text = text_of(&b, "#home-override").await?.unwrap_or_default();
        Ok((text.contains(&held_text) && text.contains(&until_night)).then_some(()))
    })
    .await?;
    without_toasts(&b).await?;
    b.screenshot(&screenshot_path("home-390x844")?).await?;

    // A block added after the press is the next change now: the hold ends when it starts,
    // and Home says so at once; without it, the hold is back to the night setback.
    let (early_day, early_start) = utc_day_and_time(later(60));
    let (_, early_end) = utc_day_and_time(later(90));
    let early = house
        .api
        .create_rule(&NewRule {
            name: "Early block".into(),
            enabled: true,
            when: When::Weekly {
                days: vec![serde_json::from_value(json!(early_day))?],
                start: early_start.clone(),
                end: early_end,
            },
            heat_c: Some(19.0),
            cool_c: None,
            sensors: vec![],
            zone: None,
        })
        .await?;
    let until_early = format!("{early_start}, when Early block starts");
    b.wait_for(&format!("#home-override: {until_early}"), WAIT, || async {
        Ok(text_of(&b, "#home-override").await?.filter(|t| t.contains(&until_early)))
    })
    .await?;
    house.api.delete_rule(early.id).await?;
    b.wait_for(&format!("#home-override: {until_night} again"), WAIT, || async {
        Ok(text_of(&b, "#home-override").await?.filter(|t| t.contains(&until_night)))
    })
    .await?;

    // Resume the schedule: the override ends (else it would beat the rule below in the timeline).
    b.find("button#home-resume").await?.click().await?;
    b.wait_for("no override after Resume schedule", WAIT, || async {
        let none = newest_override(&house).await?.is_none();
        Ok((none && !shown(&b, "#home-override").await?).then_some(()))
    })
    .await?;

    // A weekly block through the editor: today (UTC) from 30 min to 2.5 h from now, heat 23.
    go(&b, "#/schedule").await?;
    let (day, start) = utc_day_and_time(later(30));
    let (_, end) = utc_day_and_time(later(150));
    let name = "E2E evening warmth";
    b.wait_for("button#rule-add", WAIT, || async {
        shown(&b, "button#rule-add").await.map(|s| s.then_some(()))
    })
    .await?;
    b.find("button#rule-add").await?.click().await?;
    b.wait_for("form#rule-form open", WAIT, || async {
        shown(&b, "form#rule-form").await.map(|s| s.then_some(()))
    })
    .await?;
    type_into(&b, "#rule-name", name).await?;
    set_value(&b, "select#rule-type", "weekly").await?;
    tick_days(&b, &[&day]).await?;
    set_value(&b, "#rule-start", &start).await?;
    set_value(&b, "#rule-end", &end).await?;
    type_into(&b, "#rule-heat", "23").await?;
    type_into(&b, "#rule-cool", "").await?;
    b.find("button#rule-save").await?.click().await?;
    let id = b
        .wait_for(&format!("rule {name:?} stored by the engine"), WAIT, || async {
            let rules = house.api.rules().await?;
            Ok(rules.iter().find(|r| r.rule.name == name).map(|r| r.id))
        })
        .await?;
    let rule = house.api.rules().await?.into_iter().find(|r| r.id == id);
    let want = When::Weekly {
        days: vec![serde_json::from_value(json!(day))?],
        start: start.clone(),
        end: end.clone(),
    };
    assert_eq!(rule.as_ref().map(|r| (&r.rule.when, r.rule.heat_c)), Some((&want, Some(23.0))));
    let block = format!("#week [data-rule-id=\"{id}\"]");
    b.wait_for(&format!("{block} in the week view"), WAIT, || async {
        Ok(b.try_find(&block).await?.map(drop))
    })
    .await?;
    let segment = format!("#timeline .segment[data-rule-name=\"{name}\"]");
    let seg_text = b
        .wait_for(&format!("{segment} in the timeline"), WAIT, || async {
            text_of(&b, &segment).await
        })
        .await?;
    assert!(seg_text.contains("23"), "the timeline segment does not show 23 °C: {seg_text:?}");
    assert!(!shown(&b, "form#rule-form").await?, "the editor stayed open after a good rule");

    // A bad rule (no day ticked): the engine's own message, the form kept open as typed.
    let rules_before = house.api.rules().await?.len();
    b.find("button#rule-add").await?.click().await?;
    b.wait_for("form#rule-form open again", WAIT, || async {
        shown(&b, "form#rule-form").await.map(|s| s.then_some(()))
    })
    .await?;
    type_into(&b, "#rule-name", "E2E no days").await?;
    set_value(&b, "select#rule-type", "weekly").await?;
    tick_days(&b, &[]).await?;
    set_value(&b, "#rule-start", "07:00").await?;
    set_value(&b, "#rule-end", "08:00").await?;
    type_into(&b, "#rule-heat", "21").await?;
    b.find("button#rule-save").await?.click().await?;
    let engine_says = "when.days field must list at least one day";
    b.wait_for(&format!("#rule-error saying {engine_says:?}"), WAIT, || async {
        let err = text_of(&b, "#rule-error").await?.filter(|t| t.contains(engine_says));
        Ok(err.is_some().then_some(()))
    })
    .await?;
    assert!(shown(&b, "#rule-error").await?, "#rule-error hidden");
    assert!(shown(&b, "form#rule-form").await?, "the editor closed on an error");
    let typed = b.find("#rule-name").await?.property("value").await?;
    assert_eq!(typed, json!("E2E no days"), "the typed name was lost");
    assert_eq!(house.api.rules().await?.len(), rules_before, "a bad rule was stored");
    b.screenshot(&screenshot_path("schedule-error-390x844")?).await?;

    // History: the chart has points.
    go(&b, "#/history").await?;
    let chart_points = || async {
        let n = b.find_all("#history-chart svg .point").await?.len();
        Ok((n > 0).then_some(n))
    };
    let n = b.wait_for("#history-chart svg .point", WAIT, chart_points).await?;
    eprintln!("web: the history chart has {n} points");
    history_ranges_and_zoom(&b).await?;

    // Devices: rename the sensor through its card; the engine has the name.
    go(&b, "#/devices").await?;
    let row = format!("[data-sensor-row=\"{SENSOR_ID}\"]");
    b.wait_for(&row, WAIT, || async { b.try_find(&row).await }).await?;
    type_into(&b, &format!("{row} input.sensor-name"), "Lounge").await?;
    b.find(&format!("{row} button.sensor-save")).await?.click().await?;
    engine_sensor(&house.api, "the sensor's new name", |s| s.name.as_deref() == Some("Lounge"))
        .await?;

    // Devices: the sensor agent's management panel. A report interval beyond the agent's own
    // limits (5 to 300 s by default) is sent, refused by the agent and shown with its reason
    // (the agent goes on at its configured 0.5 s, so the later steps keep their live readings);
    // diagnostics round-trip with their result.
    let panel = format!("[data-manage=\"{SENSOR}\"]");
    let summary = format!("{panel} summary");
    b.wait_for(&summary, WAIT, || async { b.try_find(&summary).await }).await?;
    b.find(&summary).await?.click().await?;
    type_into(&b, &format!("{panel} input.manage-interval"), "1").await?;
    b.find(&format!("{panel} button.manage-save")).await?.click().await?;
    let refusal = b
        .wait_for("the agent's refusal in the panel", WAIT, || async {
            let text = text_of(&b, &format!("{panel} .manage-refused")).await?;
            Ok(text.filter(|t| t.contains("local limits of 5 to 300 s")))
        })
        .await?;
    eprintln!("web: the agent refused as the panel shows: {refusal:?}");
    b.find(&format!("{panel} button[data-command=diagnostics]")).await?.click().await?;
    let done = b
        .wait_for("diagnostics done in the panel's log", WAIT, || async {
            let text =
                text_of(&b, &format!("{panel} .manage-log [data-command=diagnostics]")).await?;
            Ok(text.filter(|t| t.contains("done")))
        })
        .await?;
    eprintln!("web: {done:?}");

    // The sensor's own settings on its agent, in its row of the panel: an offset beyond what
    // the engine takes is the engine's 422 at the form, naming the field, with what was typed
    // kept; an alias alone is applied by the running agent and reported with its readings.
    let sensor_row = format!("{panel} [data-manage-sensor=\"{SENSOR_ID}\"]");
    b.wait_for(&sensor_row, WAIT, || async { b.try_find(&sensor_row).await }).await?;
    type_into(&b, &format!("{panel} input.manage-interval"), "").await?;
    type_into(&b, &format!("{sensor_row} input.manage-sensor-alias"), "E2E hall").await?;
    type_into(&b, &format!("{sensor_row} input.manage-sensor-offset"), "9").await?;
    b.find(&format!("{panel} button.manage-save")).await?.click().await?;
    let field = format!("sensor.sensors.{SENSOR_ID}.offset_c");
    let said = b
        .wait_for("the engine's 422 at the panel's form", WAIT, || async {
            let text = text_of(&b, &format!("{panel} .form-error")).await?;
            Ok(text.filter(|t| t.contains(&field)))
        })
        .await?;
    eprintln!("web: the engine refused as the panel shows: {said:?}");
    let typed = b.find(&format!("{sensor_row} input.manage-sensor-alias")).await?;
    assert_eq!(typed.property("value").await?, json!("E2E hall"), "the typed alias was lost");
    type_into(&b, &format!("{sensor_row} input.manage-sensor-offset"), "").await?;
    b.find(&format!("{panel} button.manage-save")).await?.click().await?;
    engine_sensor(&house.api, "the new alias", |s| s.alias.as_deref() == Some("E2E hall")).await?;
    let in_force = b
        .wait_for("the alias in force in the sensor's row", WAIT, || async {
            let text = text_of(&b, &format!("{sensor_row} .manage-sensor-now")).await?;
            Ok(text.filter(|t| t.contains("E2E hall")))
        })
        .await?;
    eprintln!("web: {in_force:?}");
    b.screenshot(&screenshot_path("devices-manage-390x844")?).await?;

    // Devices: the relay agent's panel. Per output, the protection times the engine may only
    // tighten: a longer minimum off time on `cool` is applied and shown in force; a maximum on
    // time below the agent's local limit (remote_min_max_on_s, 1800 s by default) is refused
    // and shown with its reason. Then cleared, so the later steps see the agent's own times.
    let panel = format!("[data-manage=\"{RELAY}\"][data-manage-kind=relay]");
    let summary = format!("{panel} summary");
    b.wait_for(&summary, WAIT, || async { b.try_find(&summary).await }).await?;
    b.find(&summary).await?.click().await?;
    let cool = format!("{panel} fieldset[data-output=cool]");
    b.wait_for(&cool, WAIT, || async { b.try_find(&cool).await }).await?;
    type_into(&b, &format!("{cool} input.manage-min_off_s"), "60").await?;
    type_into(&b, &format!("{cool} input.manage-max_on_s"), "30").await?;
    b.find(&format!("{panel} button.manage-save")).await?.click().await?;
    let refusal = b
        .wait_for("the relay agent's refusal in the panel", WAIT, || async {
            let text = text_of(&b, &format!("{panel} .manage-refused")).await?;
            Ok(text.filter(|t| t.contains("relay.outputs.cool.max_on_s")))
        })
        .await?;
    assert!(refusal.contains("remote_min_max_on_s"), "{refusal}");
    let times = b
        .wait_for("cool's minimum off time in force", WAIT, || async {
            let text = text_of(&b, &format!("{cool} .manage-times")).await?;
            Ok(text.filter(|t| t.contains("in force: 0 / 60 / none")))
        })
        .await?;
    eprintln!(
        "web: the relay agent applied and refused as the panel shows: {times:?}, {refusal:?}"
    );
    let scroll = "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})";
    b.execute(scroll, vec![json!(cool)]).await?;
    b.screenshot(&screenshot_path("devices-relay-manage")?).await?;
    for field in ["min_off_s", "max_on_s"] {
        type_into(&b, &format!("{cool} input.manage-{field}"), "").await?;
    }
    b.find(&format!("{panel} button.manage-save")).await?.click().await?;
    eventually("the relay agent back on its own times", WAIT, || async {
        let s = house.api.agent_settings(RELAY).await?;
        let relay = s.applied.iter().find(|a| a.agent == hearth_proto::agents::AgentKind::Relay);
        Ok(relay.filter(|a| a.revision == s.revision && s.desired.relay.is_none()).map(|_| ()))
    })
    .await?;

    // Settings: the algorithm's parameters are a form made from its published JSON Schema;
    // a value saved there is the engine's.
    go(&b, "#/settings").await?;
    let param = "#plugin-params input[name=param-hysteresis_c]";
    b.wait_for(param, WAIT, || async { b.try_find(param).await }).await?;
    type_into(&b, param, "0.4").await?;
    b.find("button#settings-save").await?.click().await?;
    eventually("hysteresis 0.4 at the engine", WAIT, || async {
        let params = house.api.control().await?.settings.params;
        Ok((params["hysteresis_c"] == json!(0.4)).then_some(()))
    })
    .await?;
    // A frost floor the engine refuses: its message shown, the typed value kept, nothing stored.
    let before = house.api.control().await?.settings;
    type_into(&b, "#frost-floor", "50").await?;
    b.find("button#settings-save").await?.click().await?;
    let said = b
        .wait_for("the engine's refusal in #settings-error", WAIT, || async {
            Ok(text_of(&b, "#settings-error").await?.filter(|t| t.contains("frost_floor_c")))
        })
        .await?;
    eprintln!("web: settings refused as the engine says: {said:?}");
    assert_eq!(b.find("#frost-floor").await?.property("value").await?, json!("50"));
    assert_eq!(house.api.control().await?.settings, before, "a refused setting was stored");

    // Screenshots of the views, phone and desktop; then the kiosk. Every view's controls have
    // accessible names.
    for (w, h, mobile) in [(390, 844, true), (1280, 800, false)] {
        b.set_viewport(w, h, mobile).await?;
        for (view, ready) in [("#/devices", "[data-sensor-row]"), ("#/settings", "#algorithm")] {
            go(&b, view).await?;
            b.wait_for(ready, WAIT, || async { b.try_find(ready).await }).await?;
            let name = view.trim_start_matches("#/");
            assert_named(&b, name).await?;
            without_toasts(&b).await?;
            b.screenshot(&screenshot_path(&format!("{name}-{w}x{h}"))?).await?;
        }
        go(&b, "#/history").await?;
        b.wait_for("#history-chart svg .point", WAIT, chart_points).await?;
        assert_named(&b, "history").await?;
        without_toasts(&b).await?;
        b.screenshot(&screenshot_path(&format!("history-{w}x{h}"))?).await?;
        b.find("button[data-range=\"1h\"]").await?.click().await?;
        chart_showing(&b, 60.0, 0.01).await?;
        b.screenshot(&screenshot_path(&format!("history-1h-{w}x{h}"))?).await?;
        go(&b, "#/schedule").await?;
        b.wait_for(&format!("{block} and {segment}"), WAIT, || async {
            let both = b.try_find(&block).await?.is_some() && b.try_find(&segment).await?.is_some();
            Ok(both.then_some(()))
        })
        .await?;
        assert_named(&b, "schedule").await?;
        b.screenshot(&screenshot_path(&format!("schedule-{w}x{h}"))?).await?;
        if w != 390 {
            go(&b, "#/").await?;
            b.wait_for("#home-temp", WAIT, || async {
                Ok(text_of(&b, "#home-temp").await?.filter(|t| temp(t)))
            })
            .await?;
            assert_named(&b, "home").await?;
            without_toasts(&b).await?;
            b.screenshot(&screenshot_path(&format!("home-{w}x{h}"))?).await?;
        }
    }
    kiosk(&b, &web, &house.site.admin).await?;

    // No script errors. The one failed request expected is the bad rule's 422.
    no_console_errors_but_422(&b).await?;
    // Both stop promptly on SIGTERM though event streams are open: the browser's to hearth-web
    // and hearth-web's to the engine (a graceful shutdown used to wait for them forever).
    let House { engine, .. } = house;
    for (name, proc) in [("engine", engine), ("hearth-web", web_proc)] {
        let stopping = Instant::now();
        let status = proc.terminate()?;
        assert!(status.success(), "{name} exited with {status} on SIGTERM");
        eprintln!(
            "web: {name} stopped in {:.2} s with streams open",
            stopping.elapsed().as_secs_f64()
        );
    }
    b.quit().await?;
    eprintln!("web: dashboard test took {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// An engine operation: method, path pattern (`/v1/schedules/{id}`), its example body.
type Route = (reqwest::Method, String, Option<Value>);

/// The engine's operations that change something, from its OpenAPI document (so a new engine
/// route is checked here without anyone remembering to), minus the agents' own routes, which
/// hearth-web does not relay at all.
fn mutating_routes() -> anyhow::Result<(Vec<Route>, Vec<Route>)> {
    const AGENT_ONLY: [(&str, &str); 5] = [
        ("PUT", "/v1/sensors/update"),
        ("PUT", "/v1/sensors/backlog"),
        ("POST", "/v1/relays/register"),
        ("PUT", "/v1/agents/{host_id}/settings/applied"),
        ("PUT", "/v1/agents/{host_id}/commands/{id}"),
    ];
    let doc: Value = serde_json::from_str(include_str!("../../../openapi/engine.json"))?;
    let paths = doc["paths"].as_object().ok_or_else(|| anyhow::anyhow!("no paths"))?;
    let (mut people, mut agents) = (Vec::new(), Vec::new());
    for (path, ops) in paths {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let method = method.to_uppercase();
            if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            // The request body's schema example: a valid-looking body.
            let schema = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            let body = match schema.as_str() {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    Some(doc["components"]["schemas"][name]["example"].clone())
                }
                None => None,
            };
            let m = reqwest::Method::from_bytes(method.as_bytes())?;
            if AGENT_ONLY.contains(&(method.as_str(), path.as_str())) {
                agents.push((m, path.clone(), body));
            } else {
                anyhow::ensure!(
                    body.as_ref().is_none_or(|b| !b.is_null()),
                    "{method} {path}: its body schema has no example in openapi/engine.json"
                );
                people.push((m, path.clone(), body));
            }
        }
    }
    Ok((people, agents))
}

#[test]
fn every_mutating_route_refuses_without_login() -> anyhow::Result<()> {
    in_private_netns("web::every_mutating_route_refuses_without_login", refusals)
}

/// Which parts of a listing are live (time, readings, relay states) and change by themselves;
/// everything else must not change when hearth-web refuses a request.
fn settled(mut v: Value, live: &[&str]) -> Value {
    for item in v.as_array_mut().into_iter().flatten() {
        if let Some(o) = item.as_object_mut() {
            for key in live {
                o.remove(*key);
            }
        }
    }
    v
}

/// What a refused request must leave alone, as the engine serves it: the schedule, overrides
/// and default target byte for byte; the control settings, sensor settings and relay
/// assignments without their live parts.
async fn engine_state(house: &House) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    for path in ["/v1/schedules", "/v1/overrides", "/v1/schedule/default"] {
        let (status, body, _) =
            call(reqwest::Method::GET, &house.engine_url, path, None, &[]).await?;
        anyhow::ensure!(status == 200, "GET {path}: {status}");
        out.push((path, body));
    }
    let control = house.get("/v1/control").await?;
    out.push(("/v1/control settings", control["settings"].to_string()));
    let sensors = settled(house.get("/v1/sensors").await?, &["latest", "stale"]);
    out.push(("/v1/sensors", sensors.to_string()));
    let relays = house.get("/v1/relays").await?;
    // What the relay agent and the clock change: its reports, their age, its reachability.
    let live = [
        "state",
        "updated_at",
        "reported",
        "command_error",
        "age_s",
        "agent_reachable",
        "agent_unreachable_since",
    ];
    let relays = settled(relays, &live);
    out.push(("/v1/relays", relays.to_string()));
    Ok(out)
}

/// Every change through hearth-web needs the login, its CSRF token and this origin; refused
/// requests change nothing at the engine; the agents' routes are not there at all; and a proper
/// request does go through (so the refusals are not a broken relay).
async fn refusals() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let house = House::start(18.5, "1").await?;
    // Something for every route to act on: a rule, an override, the sensor, the relay output.
    let rule = house
        .api
        .create_rule(&NewRule {
            name: "Existing".into(),
            enabled: true,
            when: When::Weekly {
                days: vec![Weekday::Saturday],
                start: "09:00".into(),
                end: "12:00".into(),
            },
            heat_c: Some(20.5),
            cool_c: None,
            sensors: vec![],
            zone: None,
        })
        .await?;
    let hold = house
        .api
        .create_override(&NewOverride {
            heat_c: Some(21.5),
            cool_c: None,
            start: None,
            hold: Hold::Indefinite,
            sensors: vec![],
            zone: None,
        })
        .await?;
    let (_web, web) = start_web(Some(&house.engine_url)).await?;
    let same_origin = web.clone();

    // Reads come back as the engine wrote them, byte for byte.
    // (Routes whose answers do not change by themselves between the two calls.)
    for path in ["/v1/schedules", "/v1/schedule/default", "/v1/plugins"] {
        let direct = call(reqwest::Method::GET, &house.engine_url, path, None, &[]).await?;
        let relayed = call(reqwest::Method::GET, &web, &format!("/api{path}"), None, &[]).await?;
        assert_eq!((relayed.0, &relayed.1), (200, &direct.1), "GET /api{path}");
    }

    let (routes, agent_routes) = mutating_routes()?;
    let listed: Vec<String> = routes.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    eprintln!("web: mutating routes from openapi/engine.json: {listed:?}");
    for must in [
        "PUT /v1/control/settings",
        "POST /v1/schedules",
        "PUT /v1/schedules/{id}",
        "DELETE /v1/schedules/{id}",
        "PUT /v1/schedule/default",
        "POST /v1/overrides",
        "DELETE /v1/overrides",
        "DELETE /v1/overrides/{id}",
        "PUT /v1/relays/{host_id}/{output_id}/function",
        "PUT /v1/sensors/{id}/settings",
    ] {
        assert!(listed.iter().any(|l| l == must), "{must} missing from the engine's API document");
    }
    // Real ids, so a request that slipped through would change something.
    let concrete = |path: &str| -> anyhow::Result<String> {
        let p = path.replace("{host_id}", RELAY).replace("{output_id}", "cool");
        if !p.contains("{id}") {
            return Ok(p);
        }
        let id = if p.starts_with("/v1/schedules/") {
            rule.id.to_string()
        } else if p.starts_with("/v1/overrides/") {
            hold.id.to_string()
        } else if p.starts_with("/v1/sensors/") {
            SENSOR_ID.to_owned()
        } else {
            anyhow::bail!("{path}: which id? (a new engine route: add it here)");
        };
        Ok(p.replace("{id}", &id))
    };

    // Login: a wrong token gets 401 and no cookie; the right one a session.
    let json_ct = ("content-type", "application/json");
    for wrong in ["0".repeat(64), format!("admin.{}", "f".repeat(64)), "not a token".into()] {
        let body = json!({"token": wrong});
        let (status, text, cookie) =
            call(reqwest::Method::POST, &web, "/api/login", Some(&body), &[json_ct]).await?;
        assert_eq!((status, cookie), (401, None), "login with {wrong:?}: {text}");
        assert!(text.contains("\"unauthorized\""), "{text}");
    }
    let login = json!({"token": house.site.admin});
    let (status, text, cookie) =
        call(reqwest::Method::POST, &web, "/api/login", Some(&login), &[json_ct]).await?;
    assert_eq!(status, 200, "login: {text}");
    let set_cookie = cookie.ok_or_else(|| anyhow::anyhow!("login without a cookie"))?;
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
    assert!(cookie.starts_with("hearth_session="), "{set_cookie}");
    let session: Value = serde_json::from_str(&text)?;
    assert_eq!(session["authenticated"], json!(true));
    let csrf =
        session["csrf"].as_str().ok_or_else(|| anyhow::anyhow!("no csrf: {text}"))?.to_owned();
    let cookie_h = ("cookie", cookie.as_str());
    let csrf_h = ("x-hearth-csrf", csrf.as_str());
    let origin_h = ("origin", same_origin.as_str());
    let evil_h = ("origin", "http://evil.example");

    let before = engine_state(&house).await?;
    // (what is wrong, status, error code, headers)
    type Case<'a> = (&'a str, u16, &'a str, Vec<(&'a str, &'a str)>);
    let cases: [Case; 5] = [
        ("no cookie", 401, "unauthorized", vec![csrf_h, origin_h]),
        ("no X-Hearth-CSRF", 403, "forbidden", vec![cookie_h, origin_h]),
        (
            "a wrong X-Hearth-CSRF",
            403,
            "forbidden",
            vec![cookie_h, ("x-hearth-csrf", "0123"), origin_h],
        ),
        ("Origin http://evil.example", 403, "forbidden", vec![cookie_h, csrf_h, evil_h]),
        (
            "Sec-Fetch-Site cross-site",
            403,
            "forbidden",
            vec![cookie_h, csrf_h, ("sec-fetch-site", "cross-site")],
        ),
    ];
    let mut checked = 0;
    for (method, path, body) in &routes {
        let url_path = format!("/api{}", concrete(path)?);
        for (why, want, code, headers) in &cases {
            let (status, text, _) =
                call(method.clone(), &web, &url_path, body.as_ref(), headers).await?;
            assert_eq!(status, *want, "{method} {url_path} with {why}: {text}");
            assert!(
                text.contains(&format!("\"{code}\"")),
                "{method} {url_path} with {why}: {text}"
            );
            checked += 1;
        }
    }
    // The agents' routes are not there, even for a logged-in dashboard.
    for (method, path, body) in &agent_routes {
        let url_path = format!("/api{path}");
        let headers = [cookie_h, csrf_h, origin_h];
        let (status, text, _) =
            call(method.clone(), &web, &url_path, body.as_ref(), &headers).await?;
        assert!([404, 405].contains(&status), "{method} {url_path}: {status} {text}");
    }
    let after = engine_state(&house).await?;
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(b, a, "{what} changed by refused requests");
    }
    eprintln!(
        "web: {checked} refused requests on {} routes, {} agent routes absent; engine unchanged",
        routes.len(),
        agent_routes.len()
    );

    // The positive control: the same session, token and origin get through.
    let proper = [cookie_h, csrf_h, origin_h];
    let target = json!({"heat_c": 19.5, "cool_c": 26.0, "sensors": []});
    let (status, text, _) =
        call(reqwest::Method::PUT, &web, "/api/v1/schedule/default", Some(&target), &proper)
            .await?;
    assert_eq!(status, 200, "PUT schedule/default: {text}");
    assert_eq!(house.get("/v1/schedule/default").await?["heat_c"], json!(19.5));
    let path = format!("/api/v1/overrides/{}", hold.id);
    let (status, text, _) = call(reqwest::Method::DELETE, &web, &path, None, &proper).await?;
    assert_eq!(status, 204, "DELETE {path}: {text}");
    assert_eq!(house.get("/v1/overrides").await?, json!([]));
    // The engine's validation error comes back as it is.
    let bad = json!({"name": "x", "when": {"type": "weekly", "days": ["monday"], "start": "25:00",
        "end": "08:00"}, "heat_c": 20});
    let (status, text, _) =
        call(reqwest::Method::POST, &web, "/api/v1/schedules", Some(&bad), &proper).await?;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("when.start field must be a time HH:MM"), "{text}");

    // Logged out, the same cookie and token are refused.
    let (status, text, _) = call(reqwest::Method::POST, &web, "/api/logout", None, &proper).await?;
    assert_eq!(status, 204, "logout: {text}");
    let (status, text, _) =
        call(reqwest::Method::PUT, &web, "/api/v1/schedule/default", Some(&target), &proper)
            .await?;
    assert_eq!(status, 401, "after logout: {text}");
    eprintln!("web: refusals test took {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

#[test]
fn relay_notices_in_a_real_browser() -> anyhow::Result<()> {
    in_private_netns("web::relay_notices_in_a_real_browser", relay_notices)
}

/// What the dashboard says about the relays the loop commands, on a phone and a desktop:
/// Home's notice and Devices' badges name the simulated furnace; once its relay agent is
/// SIGKILLed, Home says the agent has not answered (and what the furnace last was), Devices
/// marks the output unreachable and the agent offline; restarted, it all clears. Screenshots
/// in target/artefacts/web/relay-*.png.
async fn relay_notices() -> anyhow::Result<()> {
    let (house, _web_proc, b) = house_in_a_browser(29.0, (390, 844)).await?;
    let notice = b
        .wait_for("#relay-notice naming the simulated furnace", WAIT, || async {
            let text = text_of(&b, "#relay-notice").await?;
            let shown = shown(&b, "#relay-notice").await?;
            Ok(text.filter(|t| shown && t.contains("Simulated relays") && t.contains("Furnace")))
        })
        .await?;
    eprintln!("web: Home's relay notice: {notice:?}");
    b.screenshot(&screenshot_path("relay-simulated-home-390x844")?).await?;
    let heat = format!("[data-relay=\"{RELAY}/heat\"]");
    go(&b, "#/devices").await?;
    b.wait_for("the heat relay's simulated badge in Devices", WAIT, || async {
        Ok(text_of(&b, &format!("{heat} .relay-backend")).await?.filter(|t| t == "simulated"))
    })
    .await?;
    assert!(shown(&b, &format!("{heat} .relay-simulated")).await?, "no simulated note");
    assert!(!shown(&b, &format!("{heat} .relay-reach")).await?, "unreachable while it answers");

    // The relay agent dies with the furnace on.
    b.wait_for("the furnace on", WAIT, || async {
        Ok((house.relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;
    let relay = house._relay;
    relay.kill()?;
    b.wait_for("Devices: the heat relay unreachable", WAIT, || async {
        Ok(text_of(&b, &format!("{heat} .relay-reach")).await?.filter(|t| t == "unreachable"))
    })
    .await?;
    let why = text_of(&b, &format!("{heat} .relay-unreachable")).await?.unwrap_or_default();
    assert!(why.contains("has not answered") && why.contains("“on”"), "{why}");
    let agent = format!("[data-agent=\"{RELAY}/relay\"]");
    b.wait_for("Devices: the relay agent offline, with why", WAIT, || async {
        let offline = text_of(&b, &format!("{agent} .agent-online")).await?;
        let why = shown(&b, &format!("{agent} .agent-unreachable")).await?;
        Ok((offline.as_deref() == Some("offline") && why).then_some(()))
    })
    .await?;
    assert_named(&b, "devices").await?;
    b.screenshot(&screenshot_path("relay-unreachable-devices-390x844")?).await?;
    b.set_viewport(1280, 800, false).await?;
    b.screenshot(&screenshot_path("relay-unreachable-devices-1280x800")?).await?;
    go(&b, "#/").await?;
    let said = b
        .wait_for("Home: the relay agent has not answered", WAIT, || async {
            let t = text_of(&b, "#relay-notice.relay-notice-bad").await?;
            Ok(t.filter(|t| t.contains(&format!("Relay agent {RELAY} has not answered since"))))
        })
        .await?;
    assert!(said.contains("Furnace on ("), "{said}");
    b.screenshot(&screenshot_path("relay-unreachable-home-1280x800")?).await?;
    b.set_viewport(390, 844, true).await?;
    b.screenshot(&screenshot_path("relay-unreachable-home-390x844")?).await?;

    // Back: the notice keeps only the simulation.
    let _relay = start_relay(&house.site.relay_toml, &house.site.relay_key, &house.site.world_s)?;
    b.wait_for("Home: the unreachable line gone", WAIT, || async {
        let t = text_of(&b, "#relay-notice").await?.unwrap_or_default();
        let bad = b.try_find("#relay-notice.relay-notice-bad").await?.is_some();
        Ok((!bad && t.contains("Simulated relays") && !t.contains("has not answered"))
            .then_some(()))
    })
    .await?;
    if let Some(log) = b.console_log().await? {
        let severe: Vec<_> = log.iter().filter(|e| e.level == "SEVERE").collect();
        assert!(severe.is_empty(), "errors in the browser's console: {severe:#?}");
    }
    b.quit().await?;
    Ok(())
}

#[test]
fn zones_in_a_real_browser() -> anyhow::Result<()> {
    in_private_netns("web::zones_in_a_real_browser", zones)
}

/// The zones test's bedroom sensor: read by the same simulated sensor agent, held at 19 °C.
const BEDROOM_SENSOR: &str = "28-00000000b001";

/// A change at the engine with the admin token (routes the typed client has no method for);
/// fails with the engine's own message.
async fn admin(
    api: &EngineClient,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> anyhow::Result<()> {
    let (status, answer) = api.relay(method.clone(), path, Some(&body)).await?;
    let answer = String::from_utf8_lossy(answer.as_deref().unwrap_or_default()).into_owned();
    anyhow::ensure!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    Ok(())
}

/// Two zones configured through the API on one relay agent (a boiler and a valve per zone)
/// and one sensor agent (a sensor per zone): the living room (the default zone, renamed) heats
/// to 20 °C from a cold room; the bedroom's default target is 16 °C and its sensor reads 19 °C,
/// so it stays idle. The boiler plant serves both.
async fn zoned_house() -> anyhow::Result<(Site, Proc, String, EngineClient, Proc, Proc)> {
    let (site, engine, engine_url, api) = engine_in_utc(20.0).await?;
    let output = |id: &str, name: &str, hint: &str| {
        format!(
            "[[outputs]]\nid = \"{id}\"\nname = \"{name}\"\nfunction_hint = \"{hint}\"\nmin_on_s = 0\nmin_off_s = 0\nmax_on_s = 0\n"
        )
    };
    let relay_toml = site.dir.path().join("zones-relay.toml");
    std::fs::write(
        &relay_toml,
        [
            output("boiler", "Boiler", "heat"),
            output("valve-1", "Living room valve", "valve"),
            output("valve-2", "Bedroom valve", "valve"),
        ]
        .join("\n"),
    )?;
    let sensor_toml = site.dir.path().join("zones-sensors.toml");
    std::fs::write(
        &sensor_toml,
        format!(
            "[[sensors]]\nid = \"{SENSOR_ID}\"\nalias = \"living room\"\n\n[[sensors]]\nid = \"{BEDROOM_SENSOR}\"\n\
             alias = \"bedroom\"\nsim = {{ profile = \"linear\", start_c = 19, rate_c_per_h = 0 }}\n"
        ),
    )?;
    let relay = start_relay(&relay_toml.to_string_lossy(), &site.relay_key, &site.world_s)?;
    let sensor_config = sensor_toml.to_string_lossy().into_owned();
    let extra = [
        "--config",
        &sensor_config,
        "--interval-s",
        "0.5",
        "--sim-start-c",
        "17",
        "--sim-time-scale",
        "1",
    ];
    let sensor = start_sensor(&site.sensor_key, &site.world_s, &extra)?;
    eventually("both sensors and the three outputs at the engine", WAIT, || async {
        let sensors = api.sensors().await?;
        let read = |id: &str| sensors.iter().any(|s| s.id == id && s.latest.is_some());
        let outputs = api.relays().await?.iter().filter(|r| r.host_id == RELAY).count();
        Ok((read(SENSOR_ID) && read(BEDROOM_SENSOR) && outputs == 3).then_some(()))
    })
    .await?;
    configure_zones(&api).await?;
    Ok((site, engine, engine_url, api, relay, sensor))
}

/// The house of [`zoned_house`], in steps the engine accepts one by one (every step must leave
/// a valid house: a zone is always served, a valve in one zone only).
async fn configure_zones(api: &EngineClient) -> anyhow::Result<()> {
    use reqwest::Method;
    let zone = |name: &str, sensors: &[&str], valves: &[String], heat: Option<String>| json!({"name": name, "sensors": sensors, "valves": valves, "heat_relay": heat, "cool_relay": null});
    let plant = |zones: &[&str]| {
        json!({"name": "Boiler", "kind": "heat", "heat_relay": format!("{RELAY}/boiler"), "cool_relay": null,
               "zones": zones, "min_on_s": 0, "min_off_s": 0, "changeover_s": 0, "max_run_s": null,
               "valve_delay_s": 2, "overrun_s": 0, "min_calling_zones": 1, "bypass_zone": null})
    };
    let (valve1, valve2) = (format!("{RELAY}/valve-1"), format!("{RELAY}/valve-2"));
    admin(api, Method::PUT, "/v1/plants/house", plant(&["house"])).await?;
    // The bedroom starts served by a relay of its own, then joins the plant through its valve.
    let own = zone("Bedroom", &[BEDROOM_SENSOR], &[], Some(valve2.clone()));
    admin(api, Method::PUT, "/v1/zones/bedroom", own).await?;
    let living = zone("Living room", &[], &[valve1], None);
    admin(api, Method::PUT, "/v1/zones/house", living).await?;
    admin(api, Method::PUT, "/v1/plants/house", plant(&["house", "bedroom"])).await?;
    admin(
        api,
        Method::PUT,
        "/v1/zones/bedroom",
        zone("Bedroom", &[BEDROOM_SENSOR], &[valve2], None),
    )
    .await?;
    let (_, def) = api.relay(Method::GET, "/v1/schedule/default?zone=bedroom", None).await?;
    let mut def: Value = serde_json::from_slice(&def.unwrap_or_default())?;
    def["heat_c"] = json!(16.0);
    admin(api, Method::PUT, "/v1/schedule/default?zone=bedroom", def).await?;
    // One rule per zone, for the schedule's zone picker.
    let rule = |name: &str, zone: &str| {
        json!({"name": name, "enabled": true, "zone": zone, "heat_c": 17.0, "cool_c": null, "sensors": [],
               "when": {"type": "weekly", "days": ["saturday", "sunday"], "start": "01:00", "end": "02:00"}})
    };
    admin(api, Method::POST, "/v1/schedules", rule("Living night", "house")).await?;
    admin(api, Method::POST, "/v1/schedules", rule("Bedroom lie-in", "bedroom")).await?;
    Ok(())
}

/// Wait until `css` shows the engine's refusal naming the bedroom's valve; its text.
async fn valve_2_refused(b: &Browser, css: &str) -> anyhow::Result<String> {
    let what = format!("the engine's refusal in {css}");
    b.wait_for(&what, WAIT, || async {
        Ok(text_of(b, css).await?.filter(|t| t.contains(&format!("{RELAY}/valve-2"))))
    })
    .await
}

/// What the engine's house status says of one zone or plant: `(kind, id)` → its why.
async fn house_text(engine_url: &str, kind: &str, id: &str) -> anyhow::Result<String> {
    let (status, body, _) = call(reqwest::Method::GET, engine_url, "/v1/house", None, &[]).await?;
    anyhow::ensure!(status == 200, "GET /v1/house: {status} {body}");
    let house: Value = serde_json::from_str(&body)?;
    let item = house[kind].as_array().and_then(|a| a.iter().find(|x| x["id"] == id)).cloned();
    let field = if kind == "zones" { "text" } else { "reason" };
    Ok(item.and_then(|x| x[field].as_str().map(str::to_owned)).unwrap_or_default())
}

/// Home's zone and plant cards say what the engine's house status says (read until both agree
/// at one moment: the status moves as the rooms do).
async fn zone_cards(b: &Browser, engine_url: &str) -> anyhow::Result<()> {
    for (kind, id, css) in [
        ("zones", "house", "[data-zone-card=\"house\"] .zone-why"),
        ("zones", "bedroom", "[data-zone-card=\"bedroom\"] .zone-why"),
        ("plants", "house", "[data-plant-card=\"house\"] .plant-reason"),
    ] {
        let said = b
            .wait_for(&format!("{css} saying the engine's why"), WAIT, || async {
                let want = house_text(engine_url, kind, id).await?;
                let shown = text_of(b, css).await?.unwrap_or_default();
                Ok((!want.is_empty()
                    && shown == want.split_whitespace().collect::<Vec<_>>().join(" "))
                .then_some(shown))
            })
            .await?;
        eprintln!("web: {id} ({kind}) says {said:?}");
    }
    b.wait_for("the living room calling, the bedroom idle", WAIT, || async {
        let living = text_of(b, "[data-zone-card=\"house\"] .zone-calling").await?;
        let bedroom = text_of(b, "[data-zone-card=\"bedroom\"] .zone-calling").await?;
        Ok((living.as_deref() == Some("Calls for heat") && bedroom.as_deref() == Some("Idle"))
            .then_some(()))
    })
    .await?;
    let valve =
        text_of(b, &format!("[data-zone-card=\"bedroom\"] [data-valve=\"{RELAY}/valve-2\"]"))
            .await?;
    assert!(valve.as_deref().is_some_and(|t| t.starts_with("Bedroom valve: closed")), "{valve:?}");
    Ok(())
}

/// Zones in the dashboard against a real engine with two zones: Home's zone and plant cards
/// with the engine's reasons at phone and desktop widths, "+" on the bedroom's face making a
/// bedroom override, the schedule's zone picker changing the rules shown, the engine's 422 at
/// the Devices zone form (nothing stored), and the kiosk for one zone. Screenshots in
/// target/artefacts/web/zones-*.png.
async fn zones() -> anyhow::Result<()> {
    let (site, _engine, engine_url, api, _relay, _sensor) = zoned_house().await?;
    let (_web_proc, web) = start_web(Some(&engine_url)).await?;
    let b = Browser::start(390, 844, "UTC").await?;
    b.navigate(&format!("{web}/")).await?;
    for (w, h, mobile) in [(390, 844, true), (1280, 800, false)] {
        b.set_viewport(w, h, mobile).await?;
        zone_cards(&b, &engine_url).await?;
        assert_eq!(text_of(&b, "#home-zone").await?.as_deref(), Some("Living room"));
        assert_named(&b, "home with zones").await?;
        b.screenshot(&screenshot_path(&format!("zones-home-{w}x{h}"))?).await?;
    }

    // The schedule's zone picker: each zone's rules and default target.
    go(&b, "#/schedule").await?;
    let rules = |want: &'static str, not: &'static str| {
        let b = &b;
        async move {
            let list = text_of(b, ".rule-list").await?.unwrap_or_default();
            Ok::<_, anyhow::Error>((list.contains(want) && !list.contains(not)).then_some(()))
        }
    };
    b.wait_for("the living room's rules", WAIT, || rules("Living night", "Bedroom lie-in")).await?;
    assert!(shown(&b, "#zone-picker").await?, "no zone picker in a house with two zones");
    set_value(&b, "#zone-picker", "bedroom").await?;
    b.wait_for("the bedroom's rules", WAIT, || rules("Bedroom lie-in", "Living night")).await?;
    b.wait_for("the bedroom's default target", WAIT, || async {
        Ok((b.find("#default-heat").await?.property("value").await? == json!("16")).then_some(()))
    })
    .await?;
    assert_named(&b, "schedule with zones").await?;
    b.screenshot(&screenshot_path("zones-schedule-1280x800")?).await?;

    // Log in, then "+" on the bedroom's face holds the bedroom, not the living room.
    log_in(&b, &site.admin).await?;
    go(&b, "#/?zone=bedroom").await?;
    b.wait_for("the bedroom on the face", WAIT, || async {
        Ok(text_of(&b, "#home-zone").await?.filter(|t| t == "Bedroom"))
    })
    .await?;
    b.find("button#temp-up").await?.click().await?;
    let held = b
        .wait_for("a bedroom override after +", WAIT, || async {
            let (_, body, _) =
                call(reqwest::Method::GET, &engine_url, "/v1/overrides?zone=bedroom", None, &[])
                    .await?;
            let list: Value = serde_json::from_str(&body)?;
            Ok(list.as_array().and_then(|a| a.first()).cloned())
        })
        .await?;
    assert_eq!(held["zone"], json!("bedroom"), "{held}");
    assert_eq!(held["heat_c"], json!(16.5), "+ from the bedroom's 16 °C: {held}");
    let (_, living, _) =
        call(reqwest::Method::GET, &engine_url, "/v1/overrides", None, &[]).await?;
    assert_eq!(
        serde_json::from_str::<Value>(&living)?,
        json!([]),
        "the living room got an override"
    );

    // The engine's 422 at the zone form: a valve already in the bedroom. Nothing is stored.
    let before = api.relay(reqwest::Method::GET, "/v1/zones", None).await?;
    go(&b, "#/devices").await?;
    b.wait_for("Zones & plants", WAIT, || async { b.try_find("[data-zone=\"bedroom\"]").await })
        .await?;
    // A zone that still has its valve is not deleted: the engine's 422 names the valve at the
    // zone's row (no offer to move its rules, which would not move the valve), nothing changes.
    b.find("[data-zone=\"bedroom\"] .zone-delete").await?.click().await?;
    let said = valve_2_refused(&b, "[data-zone=\"bedroom\"] .zone-delete-out .form-error").await?;
    eprintln!("web: the zone row shows the engine's refusal: {said:?}");
    assert!(
        !shown(&b, "[data-zone=\"bedroom\"] .zone-move-offer").await?,
        "a move of the rules was offered for a zone that has a valve"
    );
    assert_eq!(
        api.relay(reqwest::Method::GET, "/v1/zones", None).await?,
        before,
        "a refused delete changed the house"
    );
    b.find("button#zone-add").await?.click().await?;
    type_into(&b, "#zone-id", "attic").await?;
    type_into(&b, "#zone-name", "Attic").await?;
    b.find(&format!("input[name=zone-sensor][value=\"{SENSOR_ID}\"]")).await?.click().await?;
    b.find(&format!("input[name=zone-valve][value=\"{RELAY}/valve-2\"]")).await?.click().await?;
    b.find("button#zone-save").await?.click().await?;
    let said = valve_2_refused(&b, "#zone-error").await?;
    eprintln!("web: the zone form shows the engine's refusal: {said:?}");
    assert_eq!(
        b.find("#zone-id").await?.property("value").await?,
        json!("attic"),
        "the form lost what was typed"
    );
    assert_eq!(
        api.relay(reqwest::Method::GET, "/v1/zones", None).await?,
        before,
        "a refused zone changed the house"
    );
    assert_named(&b, "devices with zones").await?;
    b.screenshot(&screenshot_path("zones-devices-1280x800")?).await?;

    // The kiosk: one zone with `?zone=`, every zone compactly without.
    b.navigate(&format!("{web}/#/kiosk?zone=bedroom")).await?;
    b.wait_for("the bedroom's kiosk", WAIT, || async {
        Ok(text_of(&b, "#home-zone").await?.filter(|t| t == "Bedroom"))
    })
    .await?;
    assert!(!shown(&b, "#home-zones").await?, "a one-zone kiosk shows the other zones");
    b.screenshot(&screenshot_path("zones-kiosk-bedroom-1280x800")?).await?;
    b.navigate(&format!("{web}/?kiosk")).await?;
    b.wait_for("every zone on the kiosk", WAIT, || async {
        let both = shown(&b, "[data-zone-card=\"house\"]").await?
            && shown(&b, "[data-zone-card=\"bedroom\"]").await?;
        Ok(both.then_some(()))
    })
    .await?;
    b.screenshot(&screenshot_path("zones-kiosk-1280x800")?).await?;

    // No script errors. The failed requests expected are the refused zone's and delete's 422.
    no_console_errors_but_422(&b).await?;
    b.quit().await?;
    Ok(())
}

/// A [`House`] heating to `heat_c` in real time, hearth-web relaying its engine, and the
/// dashboard open in a browser of `size` (width, height).
async fn house_in_a_browser(
    heat_c: f64,
    (width, height): (u32, u32),
) -> anyhow::Result<(House, Proc, Browser)> {
    let house = House::start(heat_c, "1").await?;
    let (web_proc, web) = start_web(Some(&house.engine_url)).await?;
    let b = Browser::start(width, height, "UTC").await?;
    b.navigate(&format!("{web}/")).await?;
    Ok((house, web_proc, b))
}

/// Log in with the admin token through the login dialog, as a person does.
async fn log_in(b: &Browser, admin: &str) -> anyhow::Result<()> {
    b.find("button#login-open").await?.click().await?;
    b.wait_for("the login dialog", WAIT, || async {
        shown(b, "#login-token").await.map(|s| s.then_some(()))
    })
    .await?;
    type_into(b, "#login-token", admin).await?;
    b.find("button#login-submit").await?.click().await?;
    b.wait_for("logged in", WAIT, || async {
        shown(b, "button#logout").await.map(|s| s.then_some(()))
    })
    .await?;
    Ok(())
}

#[test]
fn fallback_form_in_a_real_browser() -> anyhow::Result<()> {
    in_private_netns("web::fallback_form_in_a_real_browser", fallback_form)
}

/// Devices' Fallback panel of the furnace output: the engine's default in force; a frost
/// setpoint out of range is the engine's 422 at the form, with what was typed kept; frost at
/// 8 °C is then the engine's program for the output (`GET /v1/relays`, an admin's choice) and
/// reaches the relay agent (`GET /v1/fallback` on it); "back to the engine's default" undoes it.
async fn fallback_form() -> anyhow::Result<()> {
    let (house, _web_proc, b) = house_in_a_browser(20.0, (1280, 800)).await?;
    log_in(&b, &house.site.admin).await?;
    go(&b, "#/devices").await?;
    let panel = format!("[data-fallback=\"{RELAY}/heat\"]");
    let in_force = format!("{panel} .fallback-in-force");
    b.wait_for("the furnace's fallback panel", WAIT, || async { b.try_find(&panel).await }).await?;
    b.find(&format!("{panel} summary")).await?.click().await?;
    let said = b
        .wait_for("the engine's default in force", WAIT, || async {
            Ok(text_of(&b, &in_force).await?.filter(|t| t.contains("the engine's default")))
        })
        .await?;
    assert!(said.contains("frost"), "the furnace's default is not frost: {said}");
    let modes: Vec<String> = {
        let mut values = Vec::new();
        for o in b.find_all(&format!("{panel} .fallback-mode option")).await? {
            values.push(o.attribute("value").await?.unwrap_or_default());
        }
        values
    };
    assert!(!modes.iter().any(|m| m == "on"), "held on offered for a furnace: {modes:?}");

    // Out of range: the engine's 422 at the form, the typed value kept, nothing stored.
    set_value(&b, &format!("{panel} .fallback-mode"), "frost").await?;
    set_value(&b, &format!("{panel} .fallback-sensor"), "").await?;
    type_into(&b, &format!("{panel} .fallback-setpoint"), "40").await?;
    b.find(&format!("{panel} .fallback-save")).await?.click().await?;
    let refused = b
        .wait_for("the engine's refusal at the form", WAIT, || async {
            Ok(text_of(&b, &format!("{panel} .fallback-error"))
                .await?
                .filter(|t| t.contains("setpoint_c")))
        })
        .await?;
    eprintln!("web: the fallback form shows the engine's refusal: {refused:?}");
    let kept = b.find(&format!("{panel} .fallback-setpoint")).await?.property("value").await?;
    assert_eq!(kept, json!("40"), "the form lost what was typed");
    let heat = || async {
        let relays = house.get("/v1/relays").await?;
        let found = relays.as_array().and_then(|r| {
            r.iter().find(|r| r["host_id"] == RELAY && r["output_id"] == "heat").cloned()
        });
        found.ok_or_else(|| anyhow::anyhow!("no heat output in {relays}"))
    };
    assert_eq!(heat().await?["fallback_chosen"], json!(false), "a refused choice was stored");

    // Frost at 8 °C: the engine's program for the output, and the relay agent's.
    type_into(&b, &format!("{panel} .fallback-setpoint"), "8").await?;
    b.find(&format!("{panel} .fallback-save")).await?.click().await?;
    let chosen = b
        .wait_for("frost 8 °C at the engine", WAIT, || async {
            let r = heat().await?;
            Ok((r["fallback_chosen"] == json!(true)).then_some(r["fallback_program"].clone()))
        })
        .await?;
    assert_eq!(chosen["mode"], json!("frost"), "{chosen}");
    assert_eq!(chosen["setpoint_c"], json!(8.0), "{chosen}");
    b.wait_for("frost 8 °C at the relay agent", WAIT, || async {
        let program = house.relay_api.fallback_program().await?;
        let held = serde_json::to_value(program.outputs.get("heat"))?;
        Ok((held["mode"] == json!("frost") && held["setpoint_c"] == json!(8.0)).then_some(()))
    })
    .await?;
    b.wait_for("the admin's choice shown", WAIT, || async {
        let t = text_of(&b, &in_force).await?;
        Ok(t.filter(|t| t.contains("frost 8 °C") && t.contains("an admin's choice")))
    })
    .await?;
    assert_named(&b, "devices with a fallback form").await?;
    b.screenshot(&screenshot_path("fallback-form-1280x800")?).await?;

    // Back to the engine's default.
    set_value(&b, &format!("{panel} .fallback-mode"), "default").await?;
    b.find(&format!("{panel} .fallback-save")).await?.click().await?;
    b.wait_for("the engine's default again", WAIT, || async {
        Ok((heat().await?["fallback_chosen"] == json!(false)).then_some(()))
    })
    .await?;
    no_console_errors_but_422(&b).await?;
    b.quit().await?;
    Ok(())
}
