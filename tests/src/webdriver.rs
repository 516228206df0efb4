//! A minimal W3C WebDriver client for the browser tests: Debian's `chromedriver` driving headless
//! `chromium`, over plain HTTP with reqwest (already in the tree for the engine client).
//!
//! Only what the tests use: navigate, find by CSS, click, type, drag with the mouse, read
//! text/attributes/properties, run a script, set the viewport size, screenshot, read the console
//! log, delete cookies, and
//! [`Browser::wait_for`], which polls a condition until a deadline. On drop the session is ended (which closes chromium) and
//! chromedriver's process group is killed, so no browser outlives its test.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use hearth_harness::{Capture, Group, Proc};
use serde_json::{Value, json};

/// The Debian packages' paths (`chromium`, `chromium-driver`), installed by `cargo xtask test`.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// See [`CHROMIUM`].
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key of a web element reference in the W3C protocol.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser: a chromedriver process with one session.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// `127.0.0.1:PORT` of chromedriver.
    addr: String,
    /// `http://127.0.0.1:PORT/session/ID`.
    base: String,
    session: String,
    /// Taken when stopped, so its group is signalled once: after the wait its pid (and so the
    /// group id) may belong to someone else.
    driver: Option<Proc>,
    _profile: tempfile::TempDir,
}

/// An element of the current page, found by [`Browser::find`].
#[derive(Debug, Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
    /// The selector it was found with, for error messages.
    css: String,
}

/// One entry of the browser's console log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// `console-api`, `network`, `javascript`, ...
    pub source: String,
    pub message: String,
}

/// A WebDriver error response (`value.error`, e.g. "no such element").
#[derive(Debug)]
pub struct WebDriverError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebDriver {} ({}): {}", self.error, self.status, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// Whether `e` says the element was replaced after it was found (the page re-rendered it):
/// finding it again reads the new one.
pub fn is_stale(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WebDriverError>().is_some_and(|w| w.error == "stale element reference")
}

/// Start chromedriver on a port it picks itself (`--port=0`; it prints "ChromeDriver was started
/// successfully on port N." on stdout) and return the child and the port.
fn start_chromedriver(time_zone: &str) -> anyhow::Result<(Proc, u16)> {
    let mut cmd = Command::new(CHROMEDRIVER);
    cmd.arg("--port=0")
        // Chromium takes its time zone from TZ; the tests run the engine in the same zone, so
        // both read local times alike.
        .env("TZ", time_zone)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Its own process group: chromium and its helpers are killed with it.
    let mut child = Proc::spawn("chromedriver", &mut cmd, Group::Own, Capture::No)
        .with_context(|| format!("cannot start {CHROMEDRIVER} (Debian package chromium-driver)"))?;
    let stdout = child.take_stdout().context("chromedriver without stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Keeps reading after the port line, so chromedriver never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                anyhow::bail!("chromedriver did not report its port within 30 s: {seen:?}");
            }
        };
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            match digits.parse() {
                Ok(port) => return Ok((child, port)),
                Err(_) => {
                    let _ = child.kill();
                    anyhow::bail!("chromedriver: no port in {line:?}");
                }
            }
        }
        seen.push(line);
    }
}

impl Browser {
    /// Start chromedriver and a headless chromium with a fresh profile, in the time zone
    /// `time_zone` (e.g. "UTC"), its viewport `width`×`height` (see [`Browser::set_viewport`];
    /// phone-like below 600 px). The browser's console log is kept (see
    /// [`Browser::console_log`]).
    pub async fn start(width: u32, height: u32, time_zone: &str) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let (mut driver, port) = start_chromedriver(time_zone)?;
        let addr = format!("127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // Chromium's sandbox refuses to run as root (the test machines run as root).
                    "--no-sandbox",
                    "--disable-gpu",
                    // /dev/shm is small in containers; chromium falls back to /tmp.
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", width.max(500), height + 200),
                    // Nothing may reach out to the network at run time.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--no-default-browser-check",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let resp = match http.post(format!("http://{addr}/session")).json(&caps).send().await {
            Ok(r) => r,
            Err(e) => {
                let _ = driver.kill();
                return Err(e).context("new WebDriver session");
            }
        };
        let value = match answer(resp).await {
            Ok(v) => v,
            Err(e) => {
                let _ = driver.kill();
                return Err(e).context("new WebDriver session (chromium failed to start?)");
            }
        };
        let Some(session) = value["sessionId"].as_str().map(str::to_owned) else {
            let _ = driver.kill();
            anyhow::bail!("new session without sessionId: {value}");
        };
        let base = format!("http://{addr}/session/{session}");
        let browser = Self { http, addr, base, session, driver: Some(driver), _profile: profile };
        browser.set_viewport(width, height, width < 600).await?;
        Ok(browser)
    }

    /// Send one command; return the response's `value`.
    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        // POST commands carry a JSON object even when they take no parameters.
        if method == reqwest::Method::POST {
            req = req.json(&body.unwrap_or_else(|| json!({})));
        }
        answer(req.send().await.with_context(|| format!("WebDriver {method} {path}"))?).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    /// Load `url` and wait until it has loaded (WebDriver's default page load strategy).
    pub async fn navigate(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        Ok(self.get("/url").await?.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching `css`; an error when there is none.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element<'_>> {
        self.try_find(css).await?.ok_or_else(|| anyhow::anyhow!("no element matches {css:?}"))
    }

    /// The first element matching `css`, or `None`.
    pub async fn try_find(&self, css: &str) -> anyhow::Result<Option<Element<'_>>> {
        Ok(self.find_all(css).await?.into_iter().next())
    }

    /// Every element matching `css`, in document order.
    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element<'_>>> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css})).await?;
        let refs = v.as_array().cloned().unwrap_or_default();
        refs.iter()
            .map(|r| {
                let id = r[ELEMENT_KEY].as_str().ok_or_else(|| anyhow::anyhow!("bad ref {r}"))?;
                Ok(Element { browser: self, id: id.to_owned(), css: css.to_owned() })
            })
            .collect()
    }

    /// Run `script` (a function body; `arguments[i]` are `args`) and return what it returns.
    /// Elements can be passed with [`Element::to_arg`].
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Make the page's viewport exactly `width`×`height` CSS pixels (device pixel ratio 1), as
    /// on a phone (`mobile`: viewport meta tag honoured, touch-sized scrollbars) or a desktop.
    /// A window size alone cannot do it: headless chromium keeps a minimum window width of
    /// 500 px and subtracts the window chrome it emulates, so this uses the DevTools
    /// protocol's device metrics override (what DevTools' device toolbar does).
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) -> anyhow::Result<()> {
        // The window too, so what is outside the override is never drawn at a smaller size.
        self.post("/window/rect", json!({"width": width.max(500), "height": height + 200})).await?;
        let params = json!({"width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": mobile});
        self.cdp("Emulation.setDeviceMetricsOverride", params).await.map(drop)
    }

    /// Run a DevTools protocol command (chromedriver's `goog/cdp/execute` extension).
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params})).await
    }

    /// Save a PNG of the viewport at `path` (creating its directory) and print the path.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let b64 = self.get("/screenshot").await?;
        let png = base64_decode(b64.as_str().unwrap_or_default())?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("web: screenshot {}", path.display());
        Ok(())
    }

    /// The browser's console log since the last call, or `None` when this chromedriver does not
    /// offer it (it is not part of the W3C standard; chromedriver serves it at `/se/log`).
    pub async fn console_log(&self) -> anyhow::Result<Option<Vec<LogEntry>>> {
        let resp = self
            .http
            .post(format!("{}/se/log", self.base))
            .json(&json!({"type": "browser"}))
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND
            || resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            return Ok(None);
        }
        let v = match answer(resp).await {
            Ok(v) => v,
            Err(e)
                if e.downcast_ref::<WebDriverError>()
                    .is_some_and(|w| w.error == "unknown command") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
        Ok(Some(
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| LogEntry {
                            level: text(e, "level"),
                            source: text(e, "source"),
                            message: text(e, "message"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ))
    }

    /// [`crate::eventually`] with the page as evidence: on timeout the error also names what
    /// the page showed then (its URL and the start of its text), and a screenshot of that
    /// moment is saved next to the other artefacts.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        check: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let err = match crate::eventually(what, timeout, check).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let url = self.current_url().await.unwrap_or_default();
        let body = self
            .execute("return document.body ? document.body.innerText : ''", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(|s| s.chars().take(1500).collect::<String>()))
            .unwrap_or_default();
        let slug: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .take(60)
            .collect();
        if let Ok(shot) = crate::artefacts_dir("web").map(|d| d.join(format!("failed-{slug}.png")))
        {
            let _ = self.screenshot(&shot).await;
        }
        Err(err.context(format!("page {url} shows:\n{body}")))
    }

    /// A person's drag with the mouse: press the primary button at `from`, move to `to` in a
    /// few steps, release. Points are CSS pixels from the centre of `el` (WebDriver's element
    /// origin).
    pub async fn drag(
        &self,
        el: &Element<'_>,
        from: (i64, i64),
        to: (i64, i64),
    ) -> anyhow::Result<()> {
        let origin = el.to_arg();
        let mut steps = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": from.0, "y": from.1}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for i in 1..=4 {
            let x = from.0 + (to.0 - from.0) * i / 4;
            let y = from.1 + (to.1 - from.1) * i / 4;
            steps.push(
                json!({"type": "pointerMove", "duration": 50, "origin": origin, "x": x, "y": y}),
            );
        }
        steps.push(json!({"type": "pointerUp", "button": 0}));
        let actions = json!({"actions": [{"type": "pointer", "id": "mouse",
            "parameters": {"pointerType": "mouse"}, "actions": steps}]});
        let r = self.post("/actions", actions).await;
        // Release whatever is still pressed, even after a failure.
        let _ = self.cmd(reqwest::Method::DELETE, "/actions", None).await;
        r.map(drop).with_context(|| format!("drag on {}", el.css))
    }

    /// Delete every cookie of the current page's site (e.g. to be a visitor without a session).
    pub async fn delete_cookies(&self) -> anyhow::Result<()> {
        self.cmd(reqwest::Method::DELETE, "/cookie", None).await.map(drop)
    }

    /// End the session (closes chromium) and stop chromedriver.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        let r = self.cmd(reqwest::Method::DELETE, "", None).await;
        self.session.clear();
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
        }
        r.map(drop)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: a plain blocking HTTP request ends the session, so chromedriver
        // closes chromium cleanly (a killed chromedriver can leave chromium running).
        if !self.session.is_empty() {
            let _ = delete_blocking(&self.addr, &self.session);
        }
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
        }
    }
}

fn delete_blocking(addr: &str, session: &str) -> std::io::Result<()> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    // chromedriver answers once the session is gone, and may keep the connection open: the end
    // of the response headers is enough.
    let (mut got, mut buf) = (Vec::new(), [0u8; 1024]);
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// The `value` of a WebDriver response, or its error as a [`WebDriverError`].
async fn answer(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.context("WebDriver response is not JSON")?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let text = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
    Err(WebDriverError { status: status.as_u16(), error: text("error"), message: text("message") }
        .into())
}

impl<'a> Element<'a> {
    fn path(&self, what: &str) -> String {
        format!("/element/{}/{what}", self.id)
    }

    /// The reference to pass in [`Browser::execute`]'s `args`.
    pub fn to_arg(&self) -> Value {
        json!({ELEMENT_KEY: self.id})
    }

    /// Click it (scrolled to the middle of the view first, as a person would scroll it into
    /// sight; fails when something still covers it). WebDriver alone scrolls an element only to
    /// the edge of the view, where the phone layout's fixed tab bar may cover it.
    pub async fn click(&self) -> anyhow::Result<()> {
        let me = json!({ ELEMENT_KEY: self.id });
        self.browser
            .execute("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", vec![me])
            .await
            .with_context(|| format!("scroll to {}", self.css))?;
        let r = self.browser.post(&self.path("click"), json!({})).await;
        r.map(drop).with_context(|| format!("click {}", self.css))
    }

    /// Type `text` into it.
    pub async fn send_keys(&self, text: &str) -> anyhow::Result<()> {
        let r = self.browser.post(&self.path("value"), json!({"text": text})).await;
        r.map(drop).with_context(|| format!("type into {}", self.css))
    }

    /// Empty an input.
    pub async fn clear(&self) -> anyhow::Result<()> {
        let r = self.browser.post(&self.path("clear"), json!({})).await;
        r.map(drop).with_context(|| format!("clear {}", self.css))
    }

    /// Its rendered text (`innerText`: empty when hidden).
    pub async fn text(&self) -> anyhow::Result<String> {
        let v = self.browser.get(&self.path("text")).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An HTML attribute, `None` when absent.
    pub async fn attribute(&self, name: &str) -> anyhow::Result<Option<String>> {
        let v = self.browser.get(&self.path(&format!("attribute/{name}"))).await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// A DOM property (`value`, `checked`, ...).
    pub async fn property(&self, name: &str) -> anyhow::Result<Value> {
        self.browser.get(&self.path(&format!("property/{name}"))).await
    }

    /// Whether it is rendered visibly.
    pub async fn is_displayed(&self) -> anyhow::Result<bool> {
        Ok(self.browser.get(&self.path("displayed")).await?.as_bool().unwrap_or(false))
    }
}

/// Standard base64 (with padding, as WebDriver sends screenshots) to bytes.
fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    let sextet = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => anyhow::bail!("not base64: byte {c}"),
        }
        .into())
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i);
        }
        // A chunk of k characters carries k − 1 whole bytes.
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_round_trips_known_values() -> anyhow::Result<()> {
        assert_eq!(base64_decode("")?, b"");
        assert_eq!(base64_decode("Zg==")?, b"f");
        assert_eq!(base64_decode("Zm8=")?, b"fo");
        assert_eq!(base64_decode("Zm9v")?, b"foo");
        assert_eq!(base64_decode("Zm9vYmFy")?, b"foobar");
        assert_eq!(base64_decode("iVBORw0KGgo=")?, b"\x89PNG\r\n\x1a\n");
        assert!(base64_decode("Zm9v!").is_err());
        Ok(())
    }
}
