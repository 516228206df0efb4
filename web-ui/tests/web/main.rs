//! hearth-web's own surface through `oneshot` on the real router: the embedded dashboard, and
//! the refusals that need no engine. The engine is given as a closed port, so a request that
//! reached it would answer 503; the refusals below never get that far. Everything with a real
//! engine (login, relayed changes, live events, the browser) is in the end-to-end tests.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hearth_web::{Config, Web};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

type R<T = ()> = anyhow::Result<T>;

/// A dashboard whose engine is a port nobody listens on.
async fn web() -> R<Router> {
    web_to("http://127.0.0.1:9").await
}

/// A dashboard relaying to the engine at `engine`.
async fn web_to(engine: &str) -> R<Router> {
    let config: Config = hearth_common::config::load_from([
        "hearth-web",
        "--listen",
        "127.0.0.1:0",
        "--engine",
        engine,
    ])?;
    Ok(Web::start(config).await?.router())
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, req: Request<Body>) -> R<Answer> {
    let resp = app.clone().oneshot(req).await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok(Answer { status, headers, body })
}

async fn get(app: &Router, path: &str) -> R<Answer> {
    send(app, Request::get(path).body(Body::empty())?).await
}

/// Every `/assets/...` file a page or script refers to, relative imports resolved: each
/// quoted string that starts with `./` or `/assets/` (an apostrophe in a comment cannot
/// shift the pairing: a reference is read from its own opening quote).
fn references(text: &str, base: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, quote) in text.char_indices().filter(|(_, c)| matches!(c, '"' | '\'' | '`')) {
        let rest = &text[at + 1..];
        let Some(end) = rest.find(quote) else { continue };
        let piece = &rest[..end];
        let path = if let Some(p) = piece.strip_prefix("./") {
            format!("{base}{p}")
        } else if piece.starts_with("/assets/") {
            piece.to_owned()
        } else {
            continue;
        };
        let plain = path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        if plain && path.rsplit('.').next().is_some_and(|x| (2..=4).contains(&x.len())) {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn the_dashboard_is_embedded_whole_and_loads_nothing_from_elsewhere() -> R {
    let app = web().await?;
    let index = get(&app, "/").await?;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = index.headers[header::CONTENT_SECURITY_POLICY].to_str()?.to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(index.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    // Walk everything the page refers to, and everything those refer to.
    let mut todo = references(&index.text(), "/assets/");
    let mut seen = BTreeSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let a = get(&app, &path).await?;
        assert_eq!(a.status, StatusCode::OK, "{path} is referred to but not served");
        let kind = a.headers[header::CONTENT_TYPE].to_str()?.to_owned();
        assert!(!kind.starts_with("application/octet-stream"), "{path}: {kind}");
        if kind.starts_with("text/") {
            let text = a.text();
            todo.extend(references(&text, "/assets/"));
            // No address of another machine: no CDN, no web font, no analytics. (XML
            // namespaces are names, not fetches.)
            for scheme in ["http://", "https://", "//cdn", "//fonts."] {
                for (at, _) in text.match_indices(scheme) {
                    let tail: String = text[at..].chars().take(40).collect();
                    assert!(tail.contains("www.w3.org/"), "{path} refers to {tail:?}");
                }
            }
        }
    }
    // Every file of assets/ is reached from the page (no dead file), and served.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    for entry in std::fs::read_dir(&dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        // index.html is the page itself, served at /.
        if !name.starts_with('.') && name != "index.html" {
            assert!(seen.contains(&format!("/assets/{name}")), "{name} not reached: {seen:?}");
        }
    }

    // Revalidation: unchanged files answer 304.
    let js = get(&app, "/assets/app.js").await?;
    let etag = js.headers[header::ETAG].clone();
    let again = send(
        &app,
        Request::get("/assets/app.js").header(header::IF_NONE_MATCH, etag).body(Body::empty())?,
    )
    .await?;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());

    for missing in ["/assets/nope.js", "/assets/../Cargo.toml", "/nope"] {
        assert_eq!(get(&app, missing).await?.status, StatusCode::NOT_FOUND, "{missing}");
    }
    Ok(())
}

/// Every change the dashboard can relay, with a body the engine would accept.
const CHANGES: &[(&str, &str, &str)] = &[
    ("PUT", "/api/v1/sensors/28-a/settings", r#"{"name":"x","weight":1,"offset_c":0}"#),
    ("PUT", "/api/v1/relays/h1/heat/function", r#"{"function":"heat"}"#),
    ("PUT", "/api/v1/control/settings", r#"{"mode":"heat"}"#),
    (
        "POST",
        "/api/v1/schedules",
        r#"{"name":"x","when":{"type":"weekly","days":["monday"],"start":"06:00","end":"08:00"},"heat_c":20}"#,
    ),
    (
        "PUT",
        "/api/v1/schedules/1",
        r#"{"name":"x","when":{"type":"weekly","days":["monday"],"start":"06:00","end":"08:00"},"heat_c":20}"#,
    ),
    ("DELETE", "/api/v1/schedules/1", ""),
    ("PUT", "/api/v1/schedule/default", r#"{"heat_c":20,"cool_c":26,"sensors":[]}"#),
    ("POST", "/api/v1/overrides", r#"{"heat_c":22,"hold":{"type":"indefinite"}}"#),
    ("DELETE", "/api/v1/overrides", ""),
    ("DELETE", "/api/v1/overrides/1", ""),
];

#[tokio::test]
async fn changes_without_a_login_are_refused_before_the_engine() -> R {
    let app = web().await?;
    for (method, path, body) in CHANGES {
        let req = Request::builder()
            .method(*method)
            .uri(*path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(*body))?;
        let a = send(&app, req).await?;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", a.text());
        assert_eq!(a.json()["code"], "unauthorized", "{method} {path}");
        // A forged cookie is no session either.
        let req = Request::builder()
            .method(*method)
            .uri(*path)
            .header(header::COOKIE, "hearth_session=0123")
            .header("x-hearth-csrf", "0123")
            .body(Body::from(*body))?;
        assert_eq!(send(&app, req).await?.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let logout = send(&app, Request::post("/api/logout").body(Body::empty())?).await?;
    assert_eq!(logout.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn routes_outside_the_table_and_bad_logins_get_clear_errors() -> R {
    let app = web().await?;
    // Agents' routes are not relayed; unknown ones neither.
    for (method, path, status) in [
        ("PUT", "/api/v1/sensors/update", StatusCode::NOT_FOUND),
        ("PUT", "/api/v1/sensors/backlog", StatusCode::NOT_FOUND),
        ("POST", "/api/v1/relays/register", StatusCode::NOT_FOUND),
        ("GET", "/api/v1/nope", StatusCode::NOT_FOUND),
        ("PATCH", "/api/v1/schedules/1", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/api/v1/control", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let a =
            send(&app, Request::builder().method(method).uri(path).body(Body::empty())?).await?;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text());
        assert_eq!(a.json()["status"], "error", "{method} {path}");
    }
    // A read relays to the engine, which is not there: 503 with a reason, not a hang or 500.
    let a = get(&app, "/api/v1/control").await?;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["code"], "unavailable");

    let login = |body: &'static str, kind: &'static str, origin: Option<&'static str>| {
        let mut req = Request::post("/api/login")
            .header(header::CONTENT_TYPE, kind)
            .header(header::HOST, "pi:8088");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req.body(Body::from(body))
    };
    // A form post (what a cross-site page can send without asking) is refused.
    let a = send(&app, login("token=abc", "application/x-www-form-urlencoded", None)?).await?;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let a =
        send(&app, login(r#"{"token":"abc"}"#, "application/json", Some("http://evil.example"))?)
            .await?;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(&app, login(r#"{"tok":"abc"}"#, "application/json", None)?).await?;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A field the login does not know is named, not ignored.
    let a =
        send(&app, login(r#"{"token":"abc","remember":true}"#, "application/json", None)?).await?;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text());
    assert!(a.json()["error"].as_str().is_some_and(|e| e.contains("remember")), "{}", a.text());
    let a = send(&app, login(r#"{"token":"not a token!"}"#, "application/json", None)?).await?;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(!a.headers.contains_key(header::SET_COOKIE));
    // A well-formed token cannot be checked while the engine is away: 503, and no session.
    let a = send(&app, login(r#"{"token":"abcdef"}"#, "application/json", Some("http://pi:8088"))?)
        .await?;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text());
    assert!(!a.headers.contains_key(header::SET_COOKIE));

    let s = get(&app, "/api/session").await?;
    assert_eq!(
        s.json(),
        serde_json::json!({"authenticated": false, "csrf": null, "expires_at": null})
    );
    Ok(())
}

/// What axum refuses before a handler decides (a body over the limit, a method the path lacks,
/// a path segment that is not UTF-8, a file that is not there) is an `ErrorBody` like the
/// dashboard's own errors, with its content type.
#[tokio::test]
async fn every_refusal_is_a_json_error_body() -> R {
    let app = web().await?;
    let big = vec![b' '; 3 * 1024 * 1024];
    for (method, path, body, status, code) in [
        ("POST", "/api/login", big.clone(), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("PUT", "/api/v1/control/settings", big, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("DELETE", "/api/session", Vec::new(), StatusCode::METHOD_NOT_ALLOWED, "unsupported"),
        ("GET", "/assets/%FF.js", Vec::new(), StatusCode::BAD_REQUEST, "bad_request"),
        ("GET", "/assets/nothing-here.js", Vec::new(), StatusCode::NOT_FOUND, "not_found"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))?;
        let a = send(&app, req).await?;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text());
        let ct = a.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        assert_eq!(ct, Some("application/json"), "{method} {path}");
        assert_eq!(a.json()["status"], "error", "{method} {path}: {}", a.text());
        assert_eq!(a.json()["code"], code, "{method} {path}: {}", a.text());
    }
    Ok(())
}

/// An engine newer than this hearth-web refuses with an error code this build does not know
/// (a new resource's own refusal): the browser still gets the engine's status and body as they
/// are, its code and its message, not this build's "internal" wrapped around the raw JSON.
/// The newer engine is a real HTTP server on a real socket answering what such an engine
/// answers; the in-tree engine cannot stand in, as this build knows all its codes.
#[tokio::test]
async fn an_engine_error_code_this_build_does_not_know_is_relayed_as_it_is() -> R {
    const REFUSAL: &str =
        r#"{"status":"error","code":"from_a_newer_engine","error":"rule 7 is in zone \"attic\""}"#;
    let newer = axum::Router::new().route(
        "/v1/schedules",
        axum::routing::get(|| async {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                [(header::CONTENT_TYPE, "application/json")],
                REFUSAL,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let engine = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, newer).await });
    let app = web_to(&engine).await?;
    let a = get(&app, "/api/v1/schedules").await?;
    server.abort();
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text());
    assert_eq!(a.text(), REFUSAL);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
    Ok(())
}
