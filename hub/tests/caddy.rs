//! heph behind the real Caddy (Debian's `caddy`), over TLS from Caddy's own
//! internal CA, in front of an authenticated hub (a real OpenID provider):
//! a signed-in device daemon and a browser-shaped client sync through it,
//! and the audit log names the client, not the proxy (`--trusted-proxy`).
//!
//! Skipped, with a message, where `caddy` is not installed, unless
//! `HEPH_REQUIRE_CADDY` is set (CI sets it: there a missing Caddy fails).

mod common;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use common::oidc::{AUDIENCE, Provider, device_login};
use common::{Device, Hub, Proc, eventually, free_port};
use futures_util::{SinkExt as _, StreamExt as _};
use heph_engine::sync::frame::{ClientFrame, encode};
use heph_engine::sync::spoke::SpokeSession;
use heph_engine::{Node, NodeId, NodeKind, Replica};
use heph_hub::tls::{self, HubSocket, Trust};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Where Caddy is, or why the test does not run.
fn caddy_or_skip() -> bool {
    let found = Command::new("caddy").arg("version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("HEPH_REQUIRE_CADDY").is_none(),
            "HEPH_REQUIRE_CADDY is set but `caddy` is not installed (apt-get install caddy)"
        );
        // Straight to stderr, past the test harness's capture, so the skip shows.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED hub/tests/caddy.rs: `caddy` is not installed (apt-get install caddy; \
             HEPH_REQUIRE_CADDY=1 makes this a failure)"
        );
    }
    found
}

/// Caddy on 127.0.0.1, TLS from its internal CA, proxying to a hub.
struct Caddy {
    _proc: Proc,
    port: u16,
    /// The internal CA's root certificate (what a device must trust).
    root: PathBuf,
}

impl Caddy {
    /// Starts Caddy in front of the hub on `upstream`; its data, config and
    /// CA live under `dir`, nothing binds 80 or 443, there is no admin
    /// endpoint, and the CA is not installed into the system's trust store.
    fn start(dir: &Path, upstream: u16) -> Self {
        let port = free_port();
        let home = dir.join("caddy");
        std::fs::create_dir_all(&home).unwrap();
        let caddyfile = home.join("Caddyfile");
        std::fs::write(&caddyfile, caddyfile_text(&home.join("data"), port, upstream)).unwrap();
        let log = std::fs::File::create(home.join("caddy.log")).unwrap();
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("xdg-data"))
            .env("XDG_CONFIG_HOME", home.join("xdg-config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("caddy run");
        let caddy = Self {
            _proc: Proc { child: Some(child), name: "caddy".into() },
            port,
            root: home.join("data/pki/authorities/local/root.crt"),
        };
        eventually(20, "Caddy's internal CA", || caddy.root.exists());
        caddy
    }

    fn trust(&self) -> Trust {
        Trust::load(Some(&self.root)).expect("Caddy's root certificate")
    }

    fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// The test's Caddyfile: the README's, with a local CA instead of ACME and
/// everything kept in `data` on a port of its own.
fn caddyfile_text(data: &Path, port: u16, upstream: u16) -> String {
    format!(
        "{{
	admin off
	auto_https disable_redirects
	skip_install_trust
	# TLS clients send no SNI to an IP address: serve it this name's certificate.
	default_sni 127.0.0.1
	storage file_system {{
		root {data}
	}}
}}

https://127.0.0.1:{port} {{
	bind 127.0.0.1
	tls internal
	reverse_proxy 127.0.0.1:{upstream}
}}
",
        data = data.display()
    )
}

/// An HTTP/1.1 request from the local address `from` to `to` (TLS checked
/// against `trust` when given); returns the status and the body.
async fn http_from(from: Ipv4Addr, to: u16, trust: Option<&Trust>, request: &str) -> (u16, String) {
    let tcp = tcp_from(from, to).await;
    let mut out = Vec::new();
    if let Some(trust) = trust {
        let connector = tokio_rustls::TlsConnector::from(trust.client_config());
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("TLS with Caddy");
        tls.write_all(request.as_bytes()).await.unwrap();
        let _ = tls.read_to_end(&mut out).await;
    } else {
        let mut tcp = tcp;
        tcp.write_all(request.as_bytes()).await.unwrap();
        let _ = tcp.read_to_end(&mut out).await;
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A TCP connection to 127.0.0.1:`to` from the local address `from` (any
/// 127.x address is this machine, so the hub sees distinct peers).
async fn tcp_from(from: Ipv4Addr, to: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(SocketAddr::from(([127, 0, 0, 1], to))).await.expect("connect")
}

fn audit(hub: &Hub) -> Vec<Value> {
    let path = hub.db.with_extension("db.audit.jsonl");
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `heph auth login` through the device flow, approved as `owner` in the
/// provider's forms; returns the access token it stored.
fn sign_in(device: &Device, hub_url: &str, provider: &Provider, config: &Path) -> String {
    device_login(&device.env, hub_url, provider);
    let stored: Value = serde_json::from_slice(&std::fs::read(config.join("heph/credentials.json")).unwrap()).unwrap();
    stored[hub_url]["access_token"].as_str().expect("a stored access token").to_string()
}

/// A client shaped like the web app: it cannot set headers, so it sends
/// its page's `Origin` and its token as the first frame; then it speaks
/// the sync protocol over its own (in-memory) replica.
struct Browser {
    ws: HubSocket,
    spoke: SpokeSession,
    replica: Replica,
}

impl Browser {
    async fn open(caddy: &Caddy, from: Ipv4Addr, token: &str) -> Self {
        let mut request = format!("wss://127.0.0.1:{}/sync", caddy.port).into_client_request().unwrap();
        request.headers_mut().insert("origin", caddy.origin().parse().unwrap());
        let tcp = tcp_from(from, caddy.port).await;
        let (mut ws, _) = tls::handshake(tcp, request, &caddy.trust(), None).await.expect("wss:// through Caddy");
        let auth = encode(&ClientFrame::Auth { token: token.to_string() });
        ws.send(Message::Text(auth.into())).await.unwrap();
        let replica = Replica::in_memory().unwrap();
        let (spoke, hello) = SpokeSession::start(&replica).unwrap();
        ws.send(Message::Text(encode(&hello).into())).await.unwrap();
        Self { ws, spoke, replica }
    }

    fn titles(&self) -> Vec<String> {
        self.replica.export().unwrap().into_iter().map(|n| n.title).collect()
    }

    /// Reads and answers frames until `done` holds (at most 20 s).
    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(self) {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("the browser client timed out waiting for {what}"));
            match message {
                Some(Ok(Message::Text(text))) => {
                    let step = self.spoke.receive(text.as_str(), &self.replica).expect("a frame the spoke accepts");
                    for frame in step.send {
                        self.ws.send(Message::Text(encode(&frame).into())).await.unwrap();
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended while waiting for {what}: {other:?}"),
            }
        }
    }

    /// Creates a task and pushes it; returns once the hub acknowledged it.
    async fn add(&mut self, title: &str) {
        let draft = Node::new(NodeId::random(), NodeKind::Task, title.into(), Utc::now());
        self.replica.create(&draft, &[], "add").unwrap();
        for frame in self.spoke.next_push(&self.replica).unwrap() {
            self.ws.send(Message::Text(encode(&frame).into())).await.unwrap();
        }
        self.until("the hub's ack", |b| b.spoke.is_idle(&b.replica).unwrap_or(false)).await;
    }
}

#[test]
fn a_device_and_a_browser_sync_through_caddy_over_tls() {
    if !caddy_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start();
    let hub = Hub::start_with(
        dir.path(),
        free_port(),
        &["--oidc-issuer", &provider.issuer, "--oidc-audience", AUDIENCE, "--trusted-proxy", "127.0.0.1"],
    );
    let caddy = Caddy::start(dir.path(), hub.port);
    let hub_url = caddy.origin();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // The device trusts Caddy's CA through HEPH_CA_FILE (--ca-file), signs
    // in with the provider, and its daemon syncs over wss:// through Caddy.
    let config = dir.path().join("config");
    let mut device = Device::new(dir.path(), "laptop");
    device.env = vec![
        ("HEPH_CREDENTIAL_STORE".into(), "file".into()),
        ("XDG_CONFIG_HOME".into(), config.display().to_string()),
        ("HEPH_CA_FILE".into(), caddy.root.display().to_string()),
    ];
    let token = sign_in(&device, &hub_url, &provider, &config);
    device.start(&format!("wss://127.0.0.1:{}", caddy.port));
    device.ok(&["add", "Written", "on", "the", "device"]);
    device.sync_ok(30);
    let status = device.status();
    assert_eq!(status["connected"], true, "{status}");

    // The browser (from 127.0.0.3, so the hub can tell it from Caddy) gets
    // the device's task in its catch-up, pushes its own, and the device's
    // `heph` sees it.
    let mut browser = rt.block_on(Browser::open(&caddy, Ipv4Addr::new(127, 0, 0, 3), &token));
    rt.block_on(browser.until("the device's task", |b| b.titles().iter().any(|t| t == "Written on the device")));
    rt.block_on(browser.add("Written in the browser"));
    eventually(20, "the browser's task on the device", || {
        device.titles(&[]).iter().any(|t| t == "Written in the browser")
    });
    // And live, the other way.
    device.ok(&["add", "Live", "from", "the", "device"]);
    rt.block_on(browser.until("the device's live task", |b| b.titles().iter().any(|t| t == "Live from the device")));

    // The audit log names each client by the address Caddy saw, with Caddy
    // as the proxy: the browser's auth frame came from 127.0.0.3.
    let events = audit(&hub);
    let browser_auth = events
        .iter()
        .find(|e| e["via"] == "sync_frame" && e["outcome"] == "allowed")
        .unwrap_or_else(|| panic!("no browser sign-in in the audit log: {events:?}"));
    assert_eq!(browser_auth["peer"], "127.0.0.3", "{browser_auth}");
    assert!(browser_auth["proxy"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "{browser_auth}");
    let device_auth = events
        .iter()
        .find(|e| e["via"] == "sync_header" && e["outcome"] == "allowed")
        .unwrap_or_else(|| panic!("no device sign-in in the audit log: {events:?}"));
    assert_eq!(device_auth["peer"], "127.0.0.1", "{device_auth}");
    assert!(device_auth["proxy"].is_string(), "{device_auth}");
    assert!(!std::fs::read_to_string(hub.db.with_extension("db.audit.jsonl")).unwrap().contains(&token));

    // X-Forwarded-For counts only from a trusted proxy. Straight to the
    // hub from 127.0.0.2 (not one), a forged header is ignored...
    let forged = |from: &str| {
        format!(
            "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Forwarded-For: {from}\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            hub.port
        )
    };
    let (status, _) = rt.block_on(http_from(Ipv4Addr::new(127, 0, 0, 2), hub.port, None, &forged("203.0.113.9")));
    assert_eq!(status, 401);
    // ...while from 127.0.0.1 (the trusted address) it is believed.
    let (status, _) = rt.block_on(http_from(Ipv4Addr::LOCALHOST, hub.port, None, &forged("198.51.100.7")));
    assert_eq!(status, 401);
    let denied: Vec<Value> =
        audit(&hub).into_iter().filter(|e| e["via"] == "http" && e["reason"] == "missing").collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(denied[0]["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.2:")), "{}", denied[0]);
    assert!(denied[0].get("proxy").is_none(), "{}", denied[0]);
    assert_eq!(denied[1]["peer"], "198.51.100.7", "{}", denied[1]);
    assert!(denied[1]["proxy"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "{}", denied[1]);
    // And a client through Caddy cannot forge it either: Caddy writes the
    // address it saw (127.0.0.4), whatever the client sent.
    let through = format!(
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Forwarded-For: 203.0.113.9\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        caddy.port
    );
    let trust = caddy.trust();
    let (status, _) = rt.block_on(http_from(Ipv4Addr::new(127, 0, 0, 4), caddy.port, Some(&trust), &through));
    assert_eq!(status, 401);
    let denied: Vec<Value> =
        audit(&hub).into_iter().filter(|e| e["via"] == "http" && e["reason"] == "missing").collect();
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert_eq!(denied[2]["peer"], "127.0.0.4", "{}", denied[2]);

    // The metrics count both kinds.
    let metrics = format!(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        caddy.port
    );
    let (status, body) = rt.block_on(http_from(Ipv4Addr::LOCALHOST, caddy.port, Some(&trust), &metrics));
    assert_eq!(status, 200, "{body}");
    let metric = |name: &str| -> u64 {
        body.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("{name}"))
    };
    assert!(metric("heph_hub_forwarded_requests_total ") >= 4, "{body}");
    assert_eq!(metric("heph_hub_forwarded_ignored_total "), 1, "{body}");

    drop(browser);
    device.stop();
}
