//! The browser app, served by the hub at `/` and at every path no other
//! route answers.
//!
//! - **Where from**: the build `hub/build.rs` embedded in this binary, or the
//!   folder given with `--web-root`, read on every request (a rebuilt app
//!   shows on the next reload).
//! - **Which file**: a path names a file by plain name segments only; `..`,
//!   `.`, encoded separators, backslashes and NULs are refused (400), and
//!   hidden names are never served. A path with no file gets the app's page
//!   (`index.html`, the app routes itself), unless it is under `/assets/` or
//!   its last segment has an extension, or the client does not accept HTML:
//!   those get 404, so a missing script is never answered with a page.
//! - **Caching**: `/assets/*` names carry their content hash and are cached
//!   for a year (`immutable`); everything else, the page and `sw.js`
//!   first, is `no-cache` and revalidated by its `ETag`.
//! - **Headers**: a Content-Security-Policy (own scripts, WebAssembly for
//!   Automerge, connections to this hub and the OpenID issuer, no framing),
//!   `X-Frame-Options: DENY` (no framing for browsers that predate
//!   `frame-ancestors`), `Cross-Origin-Opener-Policy: same-origin` (a page
//!   of another site that opens the app keeps no handle on its window, so it
//!   cannot navigate it or count its frames), `X-Content-Type-Options:
//!   nosniff` and `Referrer-Policy: no-referrer`.
//!
//! No credential is needed for any of it: the app and its assets are
//! public, like `/healthz` and `/config`; the data is behind `/sync` and
//! `/rpc`.

mod content_type;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

pub use content_type::content_type;

use crate::server::Hub;

/// The build embedded by `hub/build.rs`.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// `Cache-Control` of the hashed files under `/assets/`.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else: revalidate every time.
pub const NO_CACHE: &str = "no-cache";

/// One file to answer with.
#[derive(Clone)]
struct Found {
    bytes: Bytes,
    content_type: &'static str,
    etag: String,
}

/// The embedded files by URL path.
static EMBEDDED: LazyLock<HashMap<&'static str, Found>> = LazyLock::new(|| {
    embedded::FILES
        .iter()
        .map(|&(path, bytes, content_type, etag)| {
            (path, Found { bytes: Bytes::from_static(bytes), content_type, etag: etag.to_string() })
        })
        .collect()
});

/// Where the app comes from.
#[derive(Debug, Clone)]
enum Source {
    /// Built into this binary.
    Embedded,
    /// A folder, read on every request.
    Folder(PathBuf),
}

/// The web app the hub serves.
#[derive(Debug, Clone)]
pub struct WebApp {
    source: Source,
    /// The OpenID issuer's origin, which the app may connect to.
    issuer_origin: Option<String>,
}

impl WebApp {
    /// The app from `web_root` if given (it must be a folder), else the
    /// embedded one; `issuer` is the configured OpenID issuer, if any.
    pub fn new(web_root: Option<&Path>, issuer: Option<&str>) -> Result<Self> {
        let source = match web_root {
            Some(dir) => {
                let meta = std::fs::metadata(dir)
                    .with_context(|| format!("--web-root {}: cannot read this folder", dir.display()))?;
                if !meta.is_dir() {
                    bail!("--web-root {} is not a folder (give the folder a web build wrote into)", dir.display());
                }
                let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
                if !dir.join("index.html").is_file() {
                    tracing::warn!(
                        web_root = %dir.display(),
                        "--web-root holds no index.html yet; / answers 503 until it does \
                         (build it with `node web/tools/build.mjs --out DIR`)"
                    );
                }
                Source::Folder(dir)
            }
            None => Source::Embedded,
        };
        let issuer_origin = match issuer {
            Some(issuer) => {
                let url = openidconnect::url::Url::parse(issuer)
                    .with_context(|| format!("--oidc-issuer {issuer:?} is not a URL"))?;
                Some(url.origin().ascii_serialization()).filter(|o| o != "null")
            }
            None => None,
        };
        Ok(Self { source, issuer_origin })
    }

    /// Where the app comes from, for the log.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Folder(dir) => format!("from {} (--web-root)", dir.display()),
            Source::Embedded if embedded::FILES.is_empty() => format!(
                "not built into this hephd ({}); / says how to fix it. Rebuild with Node.js 20+ and npm installed, \
                 or pass --web-root DIR",
                embedded::NOT_BUILT
            ),
            Source::Embedded => format!("embedded ({} files)", embedded::FILES.len()),
        }
    }

    /// Whether there is an app to serve.
    #[must_use]
    pub fn available(&self) -> bool {
        match &self.source {
            Source::Folder(_) => true,
            Source::Embedded => !embedded::FILES.is_empty(),
        }
    }

    /// The file at `segments` (plain names, checked by [`wanted`]).
    async fn file(&self, segments: &[String]) -> Option<Found> {
        match &self.source {
            Source::Embedded => EMBEDDED.get(format!("/{}", segments.join("/")).as_str()).cloned(),
            Source::Folder(root) => read(root, segments).await,
        }
    }

    /// The answer to a GET (or HEAD) of `path`.
    pub async fn respond(&self, path: &str, headers: &HeaderMap) -> Response {
        let csp = self.csp(headers.get(header::HOST).and_then(|h| h.to_str().ok()));
        let (found, immutable) = match wanted(path) {
            Wanted::Refused => return plain(StatusCode::BAD_REQUEST, "this path is not allowed\n", &csp),
            Wanted::NotFound => return plain(StatusCode::NOT_FOUND, "not found\n", &csp),
            Wanted::Page => match self.page(headers, path).await {
                Ok(found) => (found, false),
                Err(response) => return response.with(&csp),
            },
            Wanted::File { segments, page_if_missing } => match self.file(&segments).await {
                Some(found) => (found, segments.first().is_some_and(|s| s == "assets")),
                None if page_if_missing => match self.page(headers, path).await {
                    Ok(found) => (found, false),
                    Err(response) => return response.with(&csp),
                },
                None => return plain(StatusCode::NOT_FOUND, "not found\n", &csp),
            },
        };
        let cache = if immutable { IMMUTABLE } else { NO_CACHE };
        let etag = HeaderValue::from_str(&found.etag).ok();
        let fresh = etag.as_ref().is_some_and(|etag| matches(headers, etag));
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = Response::new(Body::from(found.bytes));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(found.content_type));
            r
        };
        let h = response.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if let Some(etag) = etag {
            h.insert(header::ETAG, etag);
        }
        response.with(&csp)
    }

    /// The app's page, standing in for a path it routes itself; a 404 for a
    /// client that does not take HTML, a 503 page when there is no app.
    async fn page(&self, headers: &HeaderMap, path: &str) -> Result<Found, Response> {
        let root = path == "/" || path == "/index.html";
        if !root && !accepts_html(headers) {
            return Err((StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, NO_CACHE)], "not found\n").into_response());
        }
        match self.file(&["index.html".to_string()]).await {
            Some(found) => Ok(found),
            None => Err(self.not_built()),
        }
    }

    /// The page that says there is no app to serve, and what to do.
    fn not_built(&self) -> Response {
        let why = match &self.source {
            Source::Embedded => format!(
                "<p>This hephd was built without its web app: {}.</p>\n\
                 <p>To fix it, install Node.js 20 or newer and npm on the machine that builds hephd, then build \
                 it again (<code>cargo build --release --bin hephd</code>; the cargo warnings say what failed). \
                 Or start hephd with <code>--web-root DIR</code>, where DIR is a build of the app: \
                 <code>node web/tools/build.mjs --out DIR</code>.</p>",
                code_spans(&escape(embedded::NOT_BUILT))
            ),
            Source::Folder(dir) => format!(
                "<p>The folder given with <code>--web-root</code>, {}, holds no <code>index.html</code> \
                 (a build may be under way).</p>\n<p>Build the app into it with \
                 <code>node web/tools/build.mjs --out DIR</code> and reload.</p>",
                escape(&dir.display().to_string())
            ),
        };
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>heph: the web app is not \
             built</title></head>\n<body><h1>The web app is not built</h1>\n{why}\n<p>The hub itself works: devices \
             sync over <code>/sync</code>; health is at <a href=\"/healthz\">/healthz</a>.</p></body></html>\n"
        );
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
            html,
        )
            .into_response()
    }

    /// The Content-Security-Policy for a request sent to `host`.
    fn csp(&self, host: Option<&str>) -> String {
        let mut connect = String::from("'self'");
        // 'self' covers the hub's own WebSocket in current browsers; older
        // ones need ws(s): spelled out.
        if let Some(host) = host.filter(|h| safe_host(h)) {
            connect.push_str(&format!(" ws://{host} wss://{host}"));
        }
        if let Some(issuer) = &self.issuer_origin {
            connect.push(' ');
            connect.push_str(issuer);
        }
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src {connect}; worker-src 'self'; manifest-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    }
}

/// The router's fallback: the web app for every path no route takes (GET
/// and HEAD; the router answers other methods with 405).
pub async fn serve(State(hub): State<Arc<Hub>>, uri: Uri, headers: HeaderMap) -> Response {
    hub.web.respond(uri.path(), &headers).await
}

/// What a request path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// A file by its name segments; the app's page stands in if there is
    /// none and `page_if_missing`.
    File { segments: Vec<String>, page_if_missing: bool },
    /// No file could have this name; the app's page.
    Page,
    /// No file could have this name, and the page must not stand in.
    NotFound,
    /// Traversal, or something dressed up as it.
    Refused,
}

/// Reads a request path (still percent-encoded, as it came).
fn wanted(path: &str) -> Wanted {
    let lower = path.to_ascii_lowercase();
    if ["%2f", "%5c", "%00"].iter().any(|bad| lower.contains(bad)) {
        return Wanted::Refused;
    }
    let Some(decoded) = percent_decode(path) else { return Wanted::Refused };
    if decoded.contains(['\\', '\0']) || !decoded.starts_with('/') {
        return Wanted::Refused;
    }
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Wanted::Refused;
    }
    if decoded == "/" {
        return Wanted::File { segments: vec!["index.html".into()], page_if_missing: true };
    }
    let under_assets = segments.len() > 1 && segments[0] == "assets";
    let last = segments.last().copied().unwrap_or("");
    let hidden = segments.iter().any(|s| s.starts_with('.'));
    let has_extension = last.contains('.');
    let page_if_missing = decoded == "/index.html" || !(under_assets || has_extension || hidden);
    let plain = |s: &&str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'@' | b'+'))
    };
    if !hidden && segments.iter().all(plain) {
        Wanted::File { segments: segments.into_iter().map(str::to_string).collect(), page_if_missing }
    } else if page_if_missing {
        Wanted::Page
    } else {
        Wanted::NotFound
    }
}

/// `%XX` decoded; None if malformed or not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A file of `root` (a regular file, inside `root` even through links).
async fn read(root: &Path, segments: &[String]) -> Option<Found> {
    let mut path = root.to_path_buf();
    path.extend(segments);
    // Both resolved now, not at start: `root` may be a link a deploy moves.
    let real_root = tokio::fs::canonicalize(root).await.ok()?;
    let real = tokio::fs::canonicalize(&path).await.ok()?;
    if !real.starts_with(&real_root) {
        tracing::warn!(path = %path.display(), "a --web-root file links outside the folder; not served");
        return None;
    }
    let meta = tokio::fs::metadata(&real).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let bytes = tokio::fs::read(&real).await.ok()?;
    let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Some(Found {
        etag: format!("W/\"{:x}-{modified:x}\"", bytes.len()),
        bytes: Bytes::from(bytes),
        content_type: content_type(segments.last().map_or("", String::as_str)),
    })
}

/// Whether `If-None-Match` names `etag` (weak comparison, as for GET).
fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(ours) = etag.to_str() else { return false };
    let ours = ours.trim_start_matches("W/");
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == ours
        },
    )
}

/// Whether the client takes HTML (no `Accept` at all counts as yes).
fn accepts_html(headers: &HeaderMap) -> bool {
    let accept: Vec<&str> = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    accept.is_empty()
        || accept.iter().flat_map(|v| v.split(',')).any(|m| {
            let m = m.split(';').next().unwrap_or("").trim();
            m.eq_ignore_ascii_case("text/html") || m == "*/*" || m.eq_ignore_ascii_case("text/*")
        })
}

/// A `Host` that can go into a header as a CSP source: a name or
/// address and a port, nothing else.
fn safe_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `text` with its `backquoted` parts as `<code>`.
fn code_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { format!("<code>{part}</code>") } else { part.to_string() })
        .collect()
}

/// A short plain-text answer.
fn plain(status: StatusCode, text: &'static str, csp: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, NO_CACHE)], text)
        .into_response()
        .with(csp)
}

/// The headers every answer of the web app carries.
trait Secured {
    fn with(self, csp: &str) -> Self;
}

impl Secured for Response {
    fn with(mut self, csp: &str) -> Self {
        let h = self.headers_mut();
        if let Ok(csp) = HeaderValue::from_str(csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &[&str], page_if_missing: bool) -> Wanted {
        Wanted::File { segments: path.iter().map(|s| (*s).to_string()).collect(), page_if_missing }
    }

    #[test]
    fn paths() {
        assert_eq!(wanted("/"), file(&["index.html"], true));
        assert_eq!(wanted("/index.html"), file(&["index.html"], true));
        assert_eq!(wanted("/sw.js"), file(&["sw.js"], false));
        assert_eq!(wanted("/assets/app-AB12.js"), file(&["assets", "app-AB12.js"], false));
        assert_eq!(wanted("/assets/nothing"), file(&["assets", "nothing"], false));
        assert_eq!(wanted("/tasks"), file(&["tasks"], true));
        assert_eq!(wanted("/tasks/"), Wanted::Page);
        assert_eq!(wanted("/tag/caf%C3%A9"), Wanted::Page);
        assert_eq!(wanted("/notes/a%20b"), Wanted::Page);
        assert_eq!(wanted("/.env"), Wanted::NotFound);
        assert_eq!(wanted("/.git/config"), Wanted::NotFound);
        assert_eq!(wanted("/robots%20x.txt"), Wanted::NotFound);
        for bad in [
            "/../etc/passwd",
            "/assets/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/..%2fetc",
            "/a/./b",
            "/..\\etc",
            "/%5c..%5cetc",
            "/index.html%00",
            "/%zz",
            "/%c0%ae%c0%ae/etc",
        ] {
            assert_eq!(wanted(bad), Wanted::Refused, "{bad}");
        }
        // An absolute path after the first slash is just empty segments: no file.
        assert_eq!(wanted("//etc/passwd"), Wanted::Page);
    }

    #[test]
    fn types() {
        assert_eq!(content_type("/assets/a-1.wasm"), "application/wasm");
        assert_eq!(content_type("/manifest.webmanifest"), "application/manifest+json");
        assert_eq!(content_type("/assets/app-X.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/assets/style-X.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/icon.svg"), "image/svg+xml");
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/LICENSE"), "application/octet-stream");
    }

    #[test]
    fn etags_and_accept() {
        let tag = HeaderValue::from_static("\"abc\"");
        let mut h = HeaderMap::new();
        assert!(!matches(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(matches(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abcd\""));
        assert!(!matches(&h, &tag));

        let mut h = HeaderMap::new();
        assert!(accepts_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"));
        assert!(accepts_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts_html(&h));
    }

    #[test]
    fn csp() {
        let app = WebApp::new(None, Some("https://auth.example.org/application/o/heph/")).unwrap();
        let csp = app.csp(Some("heph.example.org"));
        for part in [
            "script-src 'self' 'wasm-unsafe-eval'",
            "connect-src 'self' ws://heph.example.org wss://heph.example.org https://auth.example.org;",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{part} not in {csp}");
        }
        // A Host that could smuggle a directive is left out.
        let csp = app.csp(Some("evil; script-src *"));
        assert!(!csp.contains("evil") && csp.contains("connect-src 'self' https://auth.example.org;"), "{csp}");
        assert!(!WebApp::new(None, None).unwrap().csp(None).contains("https:"));
    }
}
