//! What every Hearth HTTP server shares (feature `http`): every refusal is a JSON
//! [`ErrorBody`], whichever layer refuses, and the OpenAPI documents say so.
//!
//! Three layers can refuse a request before a handler decides anything:
//! - axum's extractors (a body over the limit: 413; a path segment that is not UTF-8: 400; a
//!   body without `Content-Type: application/json`: 415) and its router (405) answer with
//!   plain text. [`json_errors`], a response layer on the whole router, turns every error
//!   answer that is not JSON yet into an [`ErrorBody`] with the same status and headers
//!   (`Allow` stays), the text becoming the message.
//! - hyper answers a request head it cannot take (414 URI too long, 431 header fields too
//!   large or too many, 400 unparsable) itself, before any handler or layer runs, with an
//!   empty body. [`JsonRejections`] wraps the listener: on each connection it recognises
//!   exactly those answers as hyper writes them (a 400, 414 or 431 head with
//!   `content-length: 0` and no `content-type`, which no Hearth handler sends since
//!   [`json_errors`] gives every error a body) and writes them with an [`ErrorBody`].
//! - [`document_rejections`] puts these answers in the OpenAPI document once, as shared
//!   responses every operation refers to.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_proto::{ErrorBody, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use utoipa::openapi::content::Content;
use utoipa::openapi::response::Response as DocResponse;
use utoipa::openapi::{OpenApi, Ref, RefOr};

/// How much of a plain-text error body becomes the message (axum's are one line).
const MAX_MESSAGE_BYTES: usize = 1024;

/// The stable code of an error answer with `status` when nothing more specific is known.
pub fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::URI_TOO_LONG
        | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::TooLarge,
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ErrorCode::Unsupported
        }
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidField,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    }
}

fn is_json(resp: &Response) -> bool {
    resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let mime = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        mime == "application/json"
            || mime.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"))
    })
}

/// Response layer for a whole router: every error answer (4xx, 5xx) that is not JSON becomes
/// an [`ErrorBody`] with the same status and headers. A body-limit refusal (413) names
/// `body_limit`. Use as `axum::middleware::map_response(move |r| json_errors(r, LIMIT))`.
pub async fn json_errors(resp: Response, body_limit: usize) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        // Longer than any rejection text: not one to repeat.
        Err(_) => String::new(),
    };
    let message = match status {
        // axum says "Failed to buffer the request body: length limit exceeded".
        StatusCode::PAYLOAD_TOO_LARGE => format!("request body larger than {body_limit} bytes"),
        StatusCode::METHOD_NOT_ALLOWED if text.is_empty() => {
            "method not allowed on this path (see the Allow header)".to_owned()
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_lowercase(),
        _ => text,
    };
    let json = serde_json::to_vec(&ErrorBody::new(code_for(status), message)).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(json)).into_response()
}

/// `router` made ready once for all its connections: serve this, not the router itself.
///
/// A `Router` served as it is is rebuilt for every connection (axum's `Service<IncomingStream>`
/// for `Router` calls `with_state` on a clone: a new route table and every handler boxed
/// again). For the engine's API that was about 18 KB per open connection, kept for as long as
/// the connection: 1.2 MB of the engine's heap with the ingest benchmark's 64 clients
/// connected. Built once here, each connection gets a clone of one `Arc`.
pub fn served(router: axum::Router) -> axum::routing::IntoMakeService<axum::Router> {
    router.with_state(()).into_make_service()
}

/// A listener whose connections answer hyper's own refusals with an [`ErrorBody`] (see the
/// module description). Serve with `axum::serve(JsonRejections(listener), app)`.
#[derive(Debug)]
pub struct JsonRejections<L>(pub L);

impl<L> axum::serve::Listener for JsonRejections<L>
where
    L: axum::serve::Listener,
{
    type Io = JsonRejectionsIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (JsonRejectionsIo { inner: io, pending: Vec::new(), sent: 0 }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// One connection of [`JsonRejections`].
#[derive(Debug)]
pub struct JsonRejectionsIo<T> {
    inner: T,
    /// A rewritten answer still to be written, and how much of it is.
    pending: Vec<u8>,
    sent: usize,
}

/// The answer hyper writes itself for a request head it refuses, when `head` is one (the whole
/// buffer is a head with no body, status 400, 414 or 431, `content-length: 0` and no
/// `content-type`), written again with an [`ErrorBody`].
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ").or_else(|| text.strip_prefix("HTTP/1.0 "))?;
    let (status, message) = match rest.get(..3)? {
        "400" => (400, "the request is not valid HTTP/1.1 (request line or a header)"),
        "414" => (414, "the request URI is too long"),
        "431" => (431, "the request's header fields are too large, or too many"),
        _ => return None,
    };
    let head = text.strip_suffix("\r\n\r\n")?;
    if head.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut headers = Vec::new();
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => return None,
            "content-length" if value.trim() == "0" => empty = true,
            "content-length" => return None,
            _ => headers.push(line),
        }
    }
    if !empty {
        return None;
    }
    let code = code_for(StatusCode::from_u16(status).ok()?);
    let body = serde_json::to_string(&ErrorBody::new(code, message)).ok()?;
    let mut out = format!("{status_line}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> JsonRejectionsIo<T> {
    /// Write what is pending; Ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Take `buf` as written when it is one of hyper's refusals (written rewritten, later if
    /// need be); None otherwise.
    fn take_refusal(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Option<Poll<io::Result<usize>>> {
        let rewritten = rewrite(buf)?;
        self.pending = rewritten;
        self.sent = 0;
        // The bytes are taken whatever the socket says now; poll_flush and poll_shutdown
        // write the rest.
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonRejectionsIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonRejectionsIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some(taken) = this.take_refusal(cx, buf) {
            return taken;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        // hyper writes a response head as its own first slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(taken) = this.take_refusal(cx, first)
        {
            return taken;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The refusals every operation may meet before its handler runs, by status: the name of the
/// shared response in `components/responses` and its description. 413 and 415 are for
/// operations with a request body.
fn rejections(body_limit: usize) -> [(u16, &'static str, String); 6] {
    [
        (
            400,
            "BadRequest",
            "`bad_request`: the request could not be read: not valid HTTP, a path segment that \
             is not UTF-8, or a body that is not valid JSON (`malformed_json`)."
                .to_owned(),
        ),
        (
            405,
            "MethodNotAllowed",
            "`unsupported`: the path exists, but not with this method (see `Allow`).".to_owned(),
        ),
        (
            413,
            "PayloadTooLarge",
            format!("`too_large`: the request body is larger than {body_limit} bytes."),
        ),
        (414, "UriTooLong", "`too_large`: the request URI is too long.".to_owned()),
        (
            415,
            "UnsupportedMediaType",
            "`unsupported`: the body is not `application/json` (`Content-Type`).".to_owned(),
        ),
        (
            431,
            "HeaderFieldsTooLarge",
            "`too_large`: the request's header fields are too large, or too many.".to_owned(),
        ),
    ]
}

/// Put the refusals of this module in `doc` once, as shared responses (`components/responses`)
/// with an [`ErrorBody`], and refer every operation to those that apply to it: 400, 414 and 431
/// to all, 413 to those with a request body, 405 to none (it answers methods no operation
/// has), 415 to those in `checks_content_type` (operation ids). An operation that documents a
/// status itself keeps its own description.
pub fn document_rejections(doc: &mut OpenApi, body_limit: usize, checks_content_type: &[&str]) {
    let components = doc.components.get_or_insert_with(Default::default);
    let schema = RefOr::Ref(Ref::from_schema_name("ErrorBody"));
    for (_, name, description) in rejections(body_limit) {
        let mut response = DocResponse::new(description);
        response
            .content
            .insert("application/json".to_owned(), Content::new(Some(schema.clone())).into());
        components.responses.insert(name.to_owned(), RefOr::T(response));
    }
    for item in doc.paths.paths.values_mut() {
        let ops = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let checks =
                op.operation_id.as_deref().is_some_and(|id| checks_content_type.contains(&id));
            for (status, name, _) in rejections(body_limit) {
                let applies = match status {
                    413 => has_body,
                    415 => has_body && checks,
                    405 => false,
                    _ => true,
                };
                if applies {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Send `request` raw to `addr` and read the answer until the server closes.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request).await?;
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        tokio::time::timeout(std::time::Duration::from_secs(10), read).await??;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn body_of(answer: &str) -> anyhow::Result<ErrorBody> {
        let (head, body) =
            answer.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("{answer}"))?;
        assert!(head.contains("content-type: application/json"), "{head}");
        Ok(serde_json::from_str(body)?)
    }

    /// hyper's own refusals of a request head, on a real socket through axum::serve: JSON.
    #[tokio::test]
    async fn hypers_refusals_on_a_real_socket_are_error_bodies() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(async move { axum::serve(JsonRejections(listener), app).await });
        let long_uri = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
        let many: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nhost: x\r\n{many}\r\n");
        let huge = format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "b".repeat(600_000));
        for (request, status, code) in [
            (long_uri.as_str(), "414", ErrorCode::TooLarge),
            (many.as_str(), "431", ErrorCode::TooLarge),
            (huge.as_str(), "431", ErrorCode::TooLarge),
            ("NOT HTTP AT ALL\r\n\r\n", "400", ErrorCode::BadRequest),
            ("GET / HTTP/1.1\r\nbad header\r\n\r\n", "400", ErrorCode::BadRequest),
        ] {
            let answer = exchange(addr, request.as_bytes()).await?;
            assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{status}: {answer}");
            assert_eq!(body_of(&answer)?.code, code, "{answer}");
        }
        // After a good request on the same connection: the good answer as it was, then the
        // refusal as JSON.
        let answer = exchange(
            addr,
            b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nbad header\r\n\r\n",
        )
        .await?;
        let (first, second) = answer.split_once("ok").ok_or_else(|| anyhow::anyhow!("{answer}"))?;
        assert!(first.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(second.starts_with("HTTP/1.1 400 "), "{answer}");
        assert_eq!(body_of(second)?.code, ErrorCode::BadRequest);
        server.abort();
        Ok(())
    }

    #[test]
    fn hypers_refusals_are_rewritten_and_nothing_else() -> anyhow::Result<()> {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(auto).ok_or_else(|| anyhow::anyhow!("not taken"))?)?;
        let (head, body) = out.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no head"))?;
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: ErrorBody = serde_json::from_str(body)?;
        assert_eq!(body.code, ErrorCode::TooLarge);
        // A response of ours, a head with a body, a 404, a second head: left alone.
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 5\r\n\r\n",
        ] {
            assert!(rewrite(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
        Ok(())
    }
}
