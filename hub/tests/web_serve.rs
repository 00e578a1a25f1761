//! The hub serving the browser app: a real `hephd --mode server` on
//! 127.0.0.1, with `--web-root` over a folder of stand-in files, and with
//! the build embedded by `hub/build.rs` when there is one.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Hub, free_port};

/// The build `hub/build.rs` embedded in hephd (the same generated table).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// An answer: status, headers (names lower-cased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One raw HTTP/1.1 request, the path sent exactly as given (no client
/// tidies `..` away).
fn request(port: u16, method: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the hub");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("connection")) {
        req.push_str("Connection: close\r\n");
    }
    if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in extra {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    assert!(
        !headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "{method} {path}: a chunked answer (this helper reads plain bodies)"
    );
    Answer { status, headers, body }
}

fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path, &[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")])
}

const INDEX: &str = "<!doctype html><title>heph</title><script type=module src=/assets/app-AB12CD.js></script>";
const APP_JS: &str = "console.log('app')";
const STYLE: &str = "body{margin:0}";
const WASM: &[u8] = b"\0asm\x01\0\0\0";
const SECRET: &str = "SECRET-outside-the-web-root";

/// A folder shaped like a build of web/, and a secret beside it.
fn fake_build(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("dist");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    let files: [(&str, &[u8]); 7] = [
        ("index.html", INDEX.as_bytes()),
        ("sw.js", b"self.addEventListener('fetch', () => {})"),
        ("icon.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("manifest.webmanifest", b"{\"name\":\"heph\"}"),
        ("assets/app-AB12CD.js", APP_JS.as_bytes()),
        ("assets/style-EF34.css", STYLE.as_bytes()),
        ("assets/automerge_wasm_bg-9F8E.wasm", WASM),
    ];
    for (name, bytes) in files {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    std::fs::write(root.join(".env"), SECRET).unwrap();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("link.txt")).unwrap();
    root
}

/// The security headers every answer of the web app carries.
fn assert_secured(a: &Answer, what: &str) {
    let csp = a.header("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    for part in [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(part), "{what}: {part:?} not in the CSP {csp:?}");
    }
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(a.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(a.header("cross-origin-opener-policy"), Some("same-origin"), "{what}");
}

#[test]
fn web_root_types_caching_fallback_and_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_build(dir.path());
    let hub = Hub::start_with(dir.path(), free_port(), &["--web-root", root.to_str().unwrap()]);
    let port = hub.port;

    // The page, at / and by name.
    for path in ["/", "/index.html"] {
        let a = get(port, path);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.text(), INDEX, "{path}");
        assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"), "{path}");
        assert_eq!(a.header("cache-control"), Some("no-cache"), "{path}");
        assert!(a.header("etag").is_some(), "{path}: no ETag");
        assert_secured(&a, path);
    }

    // Every file with its type; hashed assets cached for a year, the rest revalidated.
    let immutable = "public, max-age=31536000, immutable";
    for (path, content_type, cache) in [
        ("/sw.js", "text/javascript; charset=utf-8", "no-cache"),
        ("/icon.svg", "image/svg+xml", "no-cache"),
        ("/manifest.webmanifest", "application/manifest+json", "no-cache"),
        ("/assets/app-AB12CD.js", "text/javascript; charset=utf-8", immutable),
        ("/assets/style-EF34.css", "text/css; charset=utf-8", immutable),
        ("/assets/automerge_wasm_bg-9F8E.wasm", "application/wasm", immutable),
    ] {
        let a = get(port, path);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, std::fs::read(root.join(&path[1..])).unwrap(), "{path}");
        assert_eq!(a.header("content-type"), Some(content_type), "{path}");
        assert_eq!(a.header("cache-control"), Some(cache), "{path}");
        assert_secured(&a, path);
    }

    // HEAD: the headers of a GET, no body.
    let a = request(port, "HEAD", "/assets/automerge_wasm_bg-9F8E.wasm", &[]);
    assert_eq!(a.status, 200);
    assert!(a.body.is_empty(), "HEAD answered with a body");
    assert_eq!(a.header("content-type"), Some("application/wasm"));
    assert_eq!(a.header("content-length"), Some(WASM.len().to_string().as_str()));
    assert_eq!(a.header("cache-control"), Some(immutable));
    // Other methods are not for the app.
    assert_eq!(request(port, "POST", "/", &[]).status, 405);
    assert_eq!(request(port, "DELETE", "/assets/app-AB12CD.js", &[]).status, 405);

    // The app routes itself: paths with no file get the page.
    for path in ["/tasks", "/tasks/3fa2", "/notes/", "/tag/caf%C3%A9", "/rpc/"] {
        let a = get(port, path);
        assert_eq!((a.status, a.text().as_str()), (200, INDEX), "{path}");
        assert_eq!(a.header("cache-control"), Some("no-cache"), "{path}");
        assert_secured(&a, path);
    }
    // ... but a missing asset or file is a 404, never the page.
    for path in ["/assets/app-GONE.js", "/assets/nothing", "/favicon.ico", "/robots.txt", "/.env", "/link.txt"] {
        let a = get(port, path);
        assert_eq!(a.status, 404, "{path}: {}", a.text());
        assert!(!a.text().contains("<title>heph") && !a.text().contains(SECRET), "{path}: {}", a.text());
    }
    // ... and so is a path for a client that takes no HTML.
    assert_eq!(request(port, "GET", "/api/things", &[("Accept", "application/json")]).status, 404);
    assert_eq!(request(port, "GET", "/api/things", &[]).status, 200, "no Accept at all takes the page");

    // Traversal, plain and encoded, is refused and reads nothing.
    for path in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/./index.html",
        "/index.html%00.js",
        "/%c0%ae%c0%ae/secret.txt",
    ] {
        let a = get(port, path);
        assert_eq!(a.status, 400, "{path}: {}", a.text());
        assert!(!a.text().contains(SECRET), "{path} leaked the file outside the web root");
    }
    // An absolute path is only empty segments: the page, no file read.
    let a = get(port, "//etc/passwd");
    assert!(!a.text().contains("root:"), "//etc/passwd served a file");

    // Revalidation: the ETag answers 304 with no body.
    let first = get(port, "/");
    let etag = first.header("etag").unwrap().to_string();
    let a = request(port, "GET", "/", &[("If-None-Match", &etag)]);
    assert_eq!(a.status, 304);
    assert!(a.body.is_empty());
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    assert_eq!(a.header("cache-control"), Some("no-cache"));
    let a = request(port, "GET", "/assets/app-AB12CD.js", &[("If-None-Match", "\"something-else\"")]);
    assert_eq!(a.status, 200);

    // Files are read per request: a rebuilt app shows on the next reload.
    let rebuilt = "<!doctype html><title>heph</title><p>rebuilt, longer than before";
    std::fs::write(root.join("index.html"), rebuilt).unwrap();
    let a = request(port, "GET", "/", &[("If-None-Match", &etag)]);
    assert_eq!((a.status, a.text().as_str()), (200, rebuilt));
    assert_ne!(a.header("etag"), Some(etag.as_str()));

    // A folder mid-rebuild (no index.html yet): a page that says so.
    std::fs::remove_file(root.join("index.html")).unwrap();
    let a = get(port, "/tasks");
    assert_eq!(a.status, 503);
    assert!(a.text().contains("--web-root") && a.text().contains("build.mjs"), "{}", a.text());
    assert_eq!(a.header("cache-control"), Some("no-store"));

    // The other routes are untouched, and an open hub still checks Host everywhere.
    assert_eq!(get(port, "/healthz").header("content-type"), Some("application/json"));
    let (status, body) = common::http(port, "POST", "/rpc", r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    // Undo is a device's: a hub refuses it rather than revert its own RPC writes.
    let (status, body) =
        common::http(port, "POST", "/rpc", r#"{"jsonrpc":"2.0","id":1,"method":"undo_plan"}"#).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("run heph undo on that device"), "{body}");
    for path in ["/", "/assets/app-AB12CD.js"] {
        let a = request(port, "GET", path, &[("Host", "evil.example")]);
        assert_eq!(a.status, 403, "{path} with a rebinding Host");
    }

    // A --web-root that is not a folder stops hephd at start.
    let out = std::process::Command::new(common::hephd())
        .args(["--mode", "server", "--http-addr", &format!("127.0.0.1:{}", free_port()), "--db"])
        .arg(dir.path().join("other.db"))
        .arg("--web-root")
        .arg(dir.path().join("secret.txt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--web-root"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn served_without_a_token_when_auth_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_build(dir.path());
    // Nothing listens at the issuer: the hub starts all the same (it fetches
    // the keys on first use), and no request below needs them.
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let hub = Hub::start_with(
        dir.path(),
        free_port(),
        &["--oidc-issuer", &issuer, "--oidc-audience", "heph", "--web-root", root.to_str().unwrap()],
    );
    let port = hub.port;
    for path in ["/", "/tasks/3fa2", "/assets/app-AB12CD.js", "/sw.js", "/manifest.webmanifest"] {
        let a = get(port, path);
        assert_eq!(a.status, 200, "{path} needs no token: {}", a.text());
        assert_secured(&a, path);
    }
    // The app may talk to the issuer: its origin is in connect-src.
    let csp = get(port, "/").header("content-security-policy").unwrap().to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' ws://127.0.0.1:{port} wss://127.0.0.1:{port} {issuer};")),
        "{csp}"
    );
    // The data is not public.
    assert_eq!(request(port, "GET", "/metrics", &[]).status, 401);
    let (status, _) = common::http(port, "POST", "/rpc", r#"{"jsonrpc":"2.0","id":1,"method":"export"}"#).unwrap();
    assert_eq!(status, 401);
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade, close"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Authorization", "Bearer not-a-token"),
    ];
    assert_eq!(request(port, "GET", "/sync", &upgrade).status, 401);
}

#[test]
fn embedded_app() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let port = hub.port;
    if embedded::FILES.is_empty() {
        // hub/build.rs could not build the app (it warned why): / says so.
        let a = get(port, "/");
        assert_eq!(a.status, 503);
        let page = a.text().replace("<code>", "`").replace("</code>", "`");
        assert!(page.contains(embedded::NOT_BUILT), "the page does not say why ({}): {page}", embedded::NOT_BUILT);
        assert!(a.text().contains("Node.js") && a.text().contains("--web-root"), "{}", a.text());
        assert_secured(&a, "/");
        assert_eq!(get(port, "/assets/app-X.js").status, 404);
        println!(
            "NOTE: no web app is embedded in this build ({}); only the not-built page was checked",
            embedded::NOT_BUILT
        );
        return;
    }
    let mut wasm = false;
    for &(path, bytes, content_type, _) in embedded::FILES {
        let a = get(port, path);
        assert_eq!(a.status, 200, "{path}");
        assert!(a.body == bytes, "{path}: other bytes than embedded");
        assert_eq!(a.header("content-type"), Some(content_type), "{path}");
        let cache = if path.starts_with("/assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
        assert_eq!(a.header("cache-control"), Some(cache), "{path}");
        assert_secured(&a, path);
        wasm |= content_type == "application/wasm";
    }
    for path in ["/index.html", "/sw.js", "/icon.svg", "/manifest.webmanifest"] {
        assert!(embedded::FILES.iter().any(|f| f.0 == path), "the build has no {path}");
    }
    assert!(wasm, "no .wasm among the embedded files (Automerge)");
    // Every asset the page names is served.
    let index = get(port, "/");
    assert_eq!(index.status, 200);
    let page = index.text();
    let named: Vec<&str> = page.split('"').filter(|s| s.starts_with("/assets/")).collect();
    assert!(!named.is_empty(), "the page names no assets: {page}");
    for path in named {
        assert_eq!(get(port, path).status, 200, "{path}, named by index.html");
    }
    let a = get(port, "/tasks/3fa2");
    assert_eq!((a.status, a.text()), (200, page.clone()));
    let etag = index.header("etag").unwrap();
    assert_eq!(request(port, "GET", "/", &[("If-None-Match", etag)]).status, 304);
    assert_eq!(get(port, "/assets/app-GONE.js").status, 404);
}
