//! A real OpenID provider on 127.0.0.1 (the npm package `oidc-provider`, in
//! `tests/oidc/`): starting it, getting and forging its tokens, and a
//! browser's side of a device login.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::Proc;

/// The audience the provider's access tokens carry.
pub const AUDIENCE: &str = "heph";

/// The provider's npm packages, installed once per test run from the lockfile.
pub fn provider_dir() -> &'static Path {
    static READY: OnceLock<std::path::PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        if !dir.join("node_modules/oidc-provider").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("npm (Node.js) is needed for the authentication tests");
            assert!(status.success(), "npm ci in {}", dir.display());
        }
        dir
    })
}

/// A running provider.
pub struct Provider {
    _proc: Proc,
    pub issuer: String,
    pub kid: String,
    pub key: EncodingKey,
    pub public_pem: String,
    pub other_key: EncodingKey,
}

impl Provider {
    pub fn start() -> Self {
        Self::start_with(600)
    }

    /// With access tokens of the device client living `ttl` seconds.
    pub fn start_with(ttl: u64) -> Self {
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(provider_dir())
            .env("AUDIENCE", AUDIENCE)
            .env("ACCESS_TTL", ttl.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node provider.mjs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line).expect("the provider's first line");
        let pem = |k: &str| info[k].as_str().unwrap().to_string();
        Self {
            issuer: pem("issuer"),
            kid: pem("kid"),
            key: EncodingKey::from_rsa_pem(pem("private_pem").as_bytes()).unwrap(),
            public_pem: pem("public_pem"),
            other_key: EncodingKey::from_rsa_pem(pem("other_private_pem").as_bytes()).unwrap(),
            _proc: Proc { child: Some(child), name: "oidc-provider".into() },
        }
    }

    pub fn port(&self) -> u16 {
        self.issuer.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// A real access token for a client-credentials client (its `sub` is the client id).
    pub fn token(&self, client: &str, secret: &str) -> String {
        let body = "grant_type=client_credentials&resource=urn%3Aheph&scope=sync";
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"));
        let (status, body) = raw_http(
            self.port(),
            &format!(
                "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(status, 200, "token endpoint: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// A token signed with the provider's own key, with these claims.
    pub fn forge(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// Claims that are right in every way (for the owner `sub`).
    pub fn claims(&self, sub: &str) -> Value {
        let now = Utc::now().timestamp();
        json!({"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600})
    }
}

/// A browser's side of the device login, driven through the provider's
/// forms: enter the code, confirm, sign in as `login`.
pub fn approve(port: u16, user_code: &str, login: &str) {
    let mut cookies: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut go = |method: &str, path: &str, form: &str| -> (u16, String, Option<String>) {
        let cookie = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let out = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let mut location = None;
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("set-cookie:") {
                let pair = line[11..].trim().split(';').next().unwrap_or("");
                if let Some((k, v)) = pair.split_once('=') {
                    cookies.insert(k.to_string(), v.to_string());
                }
            } else if lower.starts_with("location:") {
                location = Some(line[9..].trim().to_string());
            }
        }
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, body.to_string(), location)
    };
    let path_of = |url: &str| url.strip_prefix(&format!("http://127.0.0.1:{port}")).unwrap_or(url).to_string();
    let field = |html: &str, name: &str| {
        let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
        let rest = &html[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    let (_, page, _) = go("GET", "/device", "");
    let xsrf = field(&page, "xsrf");
    let (status, page, _) = go("POST", "/device", &format!("xsrf={xsrf}&user_code={user_code}"));
    assert_eq!(status, 200, "enter the code: {page}");
    let (status, _, to) = go("POST", "/device", &format!("xsrf={xsrf}&user_code={user_code}&confirm=yes"));
    assert_eq!(status, 303);
    let interaction = path_of(&to.expect("to the sign-in"));
    let (_, page, _) = go("GET", &interaction, "");
    assert!(page.contains("name=\"login\""), "{page}");
    let (status, _, to) = go("POST", &interaction, &format!("prompt=login&login={login}&password=x"));
    assert_eq!(status, 303);
    let (status, page, _) = go("GET", &path_of(&to.expect("back to the device page")), "");
    assert!(status == 200 && page.contains("Success"), "{status} {page}");
}

pub fn raw_http(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// `heph auth login` through the device flow, with `env` as the device's
/// environment, approved as `owner` in the provider's forms. Returns the
/// verification prompt and the final line `heph` printed (both JSON);
/// panics unless the login succeeded.
pub fn device_login(env: &[(String, String)], hub_url: &str, provider: &Provider) -> (Value, Value) {
    let mut login = Command::new(super::heph())
        .args([
            "auth",
            "login",
            "--json",
            "--hub-url",
            hub_url,
            "--issuer",
            &provider.issuer,
            "--client-id",
            "heph-cli",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(login.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let prompt: Value = serde_json::from_str(&line).expect("the verification prompt");
    approve(provider.port(), prompt["user_code"].as_str().unwrap(), "owner");
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(login.wait().unwrap().success(), "heph auth login failed: {line}");
    (prompt, serde_json::from_str(&line).expect("the login's outcome"))
}
