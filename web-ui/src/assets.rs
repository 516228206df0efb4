//! The dashboard's files: embedded at build time (build.rs), or read from `--dev-assets` while
//! someone works on them.

use std::path::Path;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Its path under `assets/`, e.g. `app.js`.
    pub(crate) name: &'static str,
    pub(crate) content_type: &'static str,
    /// A quoted hash of the bytes.
    pub(crate) etag: &'static str,
    pub(crate) body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file `name`.
pub(crate) fn embedded(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `GET /`: the single page.
pub(crate) async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, "index.html", &headers).await
}

/// `GET /assets/{*path}`.
pub(crate) async fn file(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&state, &path, &headers).await
}

async fn serve(state: &AppState, name: &str, headers: &HeaderMap) -> Response {
    if let Some(dir) = state.dev_assets() {
        return from_disk(dir, name).await;
    }
    let Some(asset) = embedded(name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // Revalidated on every load (`no-cache`), answered with 304 while unchanged: a new binary's
    // files are never mixed with an old page's.
    let fresh =
        headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == asset.etag.as_bytes());
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(asset.body));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        r
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn from_disk(dir: &Path, name: &str) -> Response {
    // Only plain relative paths below the directory.
    let safe = !name.is_empty()
        && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && !name.contains('\\');
    if !safe {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    }
    match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, crate::mime::content_type(name)),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
