//! Real processes on 127.0.0.1: a hub, device daemons, and the `heph` CLI.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod oidc;

pub fn hephd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hephd"))
}

/// The `heph` binary, built beside `hephd` (`cargo test --workspace` builds
/// it; a lone `cargo test -p heph-hub` builds it here).
pub fn heph() -> PathBuf {
    let path = hephd().with_file_name("heph");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "heph-cli", "--bin", "heph"])
            .status()
            .expect("cargo build heph");
        assert!(status.success());
    }
    path
}

/// Waits until `f` holds, or panics with `what` after `secs`.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Option<Child>,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("running").id()).unwrap()
    }

    /// SIGKILL, and wait.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit (within 10 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{} did not stop on SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A plain HTTP/1.1 GET or POST on 127.0.0.1; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// A hub process.
pub struct Hub {
    pub proc: Proc,
    pub port: u16,
    pub db: PathBuf,
    pub extra: Vec<String>,
}

impl Hub {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, free_port(), &[])
    }

    pub fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Self {
        let db = dir.join("hub.db");
        let mut hub = Self {
            proc: Proc { child: None, name: "hub".into() },
            port,
            db,
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
        };
        hub.restart();
        hub
    }

    /// (Re)starts the process on the same port and store.
    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.db.with_extension("log")).unwrap();
        let child = Command::new(hephd())
            .args(["--mode", "server", "--http-addr", &format!("127.0.0.1:{}", self.port), "--db"])
            .arg(&self.db)
            .args(&self.extra)
            .env("HEPH_LOG", "info,hephd=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.proc.child = Some(child);
        let port = self.port;
        eventually(20, "the hub to answer /healthz", || {
            http(port, "GET", "/healthz", "").is_some_and(|(s, _)| s == 200)
        });
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn health(&self) -> Value {
        let (status, body) = http(self.port, "GET", "/healthz", "").expect("hub answers");
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    }

    pub fn head(&self) -> u64 {
        self.health()["head"].as_u64().unwrap()
    }

    pub fn metric(&self, name: &str) -> u64 {
        let (_, body) = http(self.port, "GET", "/metrics", "").expect("hub answers");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no metric {name} in {body}"))
    }
}

/// A device: a store, and optionally its daemon.
pub struct Device {
    pub db: PathBuf,
    pub daemon: Proc,
    pub name: String,
    /// Extra environment for its daemon and its `heph` commands.
    pub env: Vec<(String, String)>,
}

impl Device {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            db: dir.join(format!("{name}.db")),
            daemon: Proc { child: None, name: name.into() },
            name: name.into(),
            env: Vec::new(),
        }
    }

    pub fn socket(&self) -> PathBuf {
        let mut p = self.db.clone().into_os_string();
        p.push(".sock");
        p.into()
    }

    /// Starts `hephd --mode local` for this store.
    pub fn start(&mut self, hub_url: &str) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.db.with_extension("log")).unwrap();
        let child = Command::new(hephd())
            .args(["--mode", "local", "--hub-url", hub_url, "--db"])
            .arg(&self.db)
            .env("HEPH_LOG", "info,hephd=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon.child = Some(child);
        let socket = self.socket();
        eventually(20, "the daemon's socket", || std::os::unix::net::UnixStream::connect(&socket).is_ok());
    }

    /// Stops the daemon with SIGTERM.
    pub fn stop(&mut self) {
        let status = self.daemon.stop();
        assert!(status.success(), "{} daemon exited with {status}", self.name);
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(heph())
            .env("HEPH_DB", &self.db)
            .env("TZ", "UTC")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{}: heph {args:?}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Every node, as `heph export` prints it.
    pub fn export(&self) -> Value {
        serde_json::from_str(&self.ok(&["export"])).unwrap()
    }

    pub fn titles(&self, filter: &[&str]) -> Vec<String> {
        let mut args = vec!["ls"];
        args.extend_from_slice(filter);
        let rows = self.json(&args);
        rows.as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap().to_string()).collect()
    }
}

/// Devices named `names`, each with its daemon syncing with `hub`.
pub fn devices<const N: usize>(dir: &Path, hub: &Hub, names: [&str; N]) -> [Device; N] {
    names.map(|name| {
        let mut d = Device::new(dir, name);
        d.start(&hub.url());
        d
    })
}

/// Waits until every device's export is the same.
pub fn converge(devices: &[&Device], secs: u64) {
    eventually(secs, "the devices to converge", || {
        let first = devices[0].export();
        devices[1..].iter().all(|d| d.export() == first)
    });
}

/// Waits until `f` holds, checking every `every_ms` (for checks that are
/// themselves expensive, so polling does not starve the processes under test).
pub fn eventually_every(secs: u64, every_ms: u64, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(every_ms));
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// The peak resident set size of a process (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// The node titled `title` in an export (`heph export`), if any.
pub fn titled<'a>(export: &'a Value, title: &str) -> Option<&'a Value> {
    export.as_array()?.iter().find(|n| n["title"].as_str() == Some(title))
}

impl Device {
    /// `heph sync` until it succeeds: the daemon may still be reconnecting
    /// (its backoff), so one attempt can time out.
    pub fn sync_ok(&self, secs: u64) {
        let what = format!("{} to sync with the hub", self.name);
        eventually_every(secs, 200, &what, || self.run(&["sync"]).status.success());
    }

    /// `heph sync --status --json`.
    pub fn status(&self) -> Value {
        self.json(&["sync", "--status"])
    }

    /// `heph show --json ID`.
    pub fn show(&self, id: &str) -> Value {
        self.json(&["show", id])
    }

    /// Every node of the export titled `title`, panicking if there is none.
    pub fn titled(&self, title: &str) -> Value {
        let export = self.export();
        titled(&export, title).cloned().unwrap_or_else(|| panic!("{} has no node titled {title:?}", self.name))
    }

    /// Waits until the daemon is connected, pushed everything and holds the
    /// hub's head.
    pub fn wait_synced(&self, hub: &Hub, secs: u64) {
        let what = format!("{} to be in sync (connected, nothing to push, at the hub's head)", self.name);
        eventually_every(secs, 250, &what, || {
            let s = self.status();
            s["connected"] == true && s["pending_push"] == 0 && s["hub_cursor"].as_u64() == Some(hub.head())
        });
    }

    /// [`Device::wait_synced`], and the store holds no received changes
    /// waiting for dependencies.
    pub fn wait_settled(&self, hub: &Hub, secs: u64) {
        let what = format!("{} to settle (connected, nothing to push, at the hub's head, nothing pending)", self.name);
        eventually_every(secs, 250, &what, || {
            let s = self.status();
            s["connected"] == true
                && s["pending_push"] == 0
                && s["pending_changes"] == 0
                && s["hub_cursor"].as_u64() == Some(hub.head())
        });
    }

    /// Deletes the store (the daemon must be stopped): a device retired for good.
    pub fn wipe(&self) {
        assert!(self.daemon.child.is_none(), "{}: stop the daemon before wiping its store", self.name);
        std::fs::remove_file(&self.db).unwrap();
        let _ = std::fs::remove_file(self.socket());
    }

    /// Runs `heph ARGS` and returns stdout and stderr together (for human lines).
    pub fn text(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{}: heph {args:?}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

/// A plain blocking WebSocket client of the hub's `/sync`, speaking raw JSON
/// frames (protocol version 3), as another client implementation would.
pub mod raw {
    use std::net::TcpStream;
    use std::time::Duration;

    use heph_engine::NodeId;
    use heph_engine::sync::frame::{Bytes, WireChange};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::stream::MaybeTlsStream;
    use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

    /// The protocol version these clients announce.
    pub const VERSION: u32 = 3;

    pub struct RawClient {
        ws: WebSocket<MaybeTlsStream<TcpStream>>,
        /// The hub's head in its `welcome`.
        pub head: u64,
    }

    impl RawClient {
        /// Connects, says hello (cursor 0, no bootstrap), reads the welcome
        /// and the whole catch-up.
        pub fn open(port: u16) -> Self {
            let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/sync")).expect("connect to /sync");
            if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            }
            let mut client = Self { ws, head: 0 };
            client.send(
                &json!({"type": "hello", "version": VERSION, "origin": "itest", "cursor": 0, "bootstrap": false}),
            );
            let welcome = client.next().expect("a welcome");
            assert_eq!(welcome["type"], "welcome", "expected a welcome, got {welcome}");
            client.head = welcome["head"].as_u64().expect("welcome.head");
            let mut last = 0;
            while last < client.head {
                let frame = client.next().expect("catch-up changes");
                assert_eq!(frame["type"], "changes", "expected catch-up changes, got {frame}");
                last = frame["changes"].as_array().and_then(|c| c.last()).and_then(|c| c["seq"].as_u64()).unwrap();
            }
            client
        }

        pub fn send(&mut self, frame: &Value) {
            self.ws.send(Message::Text(frame.to_string().into())).expect("send a frame");
        }

        /// Sends `push` with these (doc, change bytes).
        pub fn push(&mut self, batch: u64, changes: &[(NodeId, Vec<u8>)]) {
            let changes: Vec<Value> = changes
                .iter()
                .map(|(doc, bytes)| {
                    serde_json::to_value(WireChange { seq: None, doc: *doc, bytes: Bytes(bytes.clone()) }).unwrap()
                })
                .collect();
            self.send(&json!({"type": "push", "batch": batch, "changes": changes}));
        }

        /// The next hub frame as JSON; None once the hub has closed the
        /// connection. Panics if nothing arrives within 60 s.
        pub fn next(&mut self) -> Option<Value> {
            loop {
                match self.ws.read() {
                    Ok(Message::Text(t)) => {
                        return Some(serde_json::from_str(t.as_str()).expect("hub frames are JSON"));
                    }
                    Ok(Message::Close(_)) => return None,
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                    {
                        panic!("no frame from the hub within 60 s")
                    }
                    Err(_) => return None,
                }
            }
        }

        /// The hub's answer to push `batch`: its `ack`, or an `error` frame.
        /// Live `changes` (the echo of what was pushed) are skipped.
        pub fn reply_to(&mut self, batch: u64) -> Value {
            loop {
                let frame = self.next().unwrap_or_else(|| panic!("the hub closed without answering batch {batch}"));
                match frame["type"].as_str() {
                    Some("ack") if frame["batch"] == batch => return frame,
                    Some("error") => return frame,
                    Some("changes" | "ack") => {}
                    _ => panic!("unexpected frame while waiting for the answer to batch {batch}: {frame}"),
                }
            }
        }

        /// Waits for the hub to close the connection, skipping live changes.
        pub fn expect_closed(&mut self) {
            while let Some(frame) = self.next() {
                assert_eq!(frame["type"], "changes", "expected the hub to close, got {frame}");
            }
        }
    }
}

/// Async WebSocket clients of `/sync` speaking the engine's frame types.
pub mod ws {
    use std::time::Duration;

    use futures_util::StreamExt;
    use heph_engine::sync::frame::{ClientFrame, HubFrame, PROTOCOL_VERSION};
    use tokio_tungstenite::tungstenite::Message;

    pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    /// The next hub frame, or None once the connection is gone. Panics if
    /// nothing arrives within 30 s.
    pub async fn next(ws: &mut Ws) -> Option<HubFrame> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a frame within 30 s")?;
            match msg.ok()? {
                Message::Text(t) => return Some(HubFrame::decode(t.as_str()).expect("hub frames decode")),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// A `hello` at `cursor`, without bootstrap or a known position.
    pub fn hello(cursor: u64) -> ClientFrame {
        ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            origin: "test".into(),
            cursor,
            bootstrap: false,
            views: false,
            known: None,
        }
    }
}

/// `n` Taskwarrior tasks tagged `tag`, as `task export` prints them.
pub fn taskwarrior_tasks(n: usize, tag: &str) -> String {
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "uuid": format!("{:08x}-{:04x}-4000-8000-{:012x}", i, tag.len(), i),
                "description": format!("{tag} task {i}"),
                "status": "pending",
                "entry": "20261120T091500Z",
                "tags": [tag],
            })
        })
        .collect();
    serde_json::to_string(&tasks).unwrap()
}

/// The standard output of a command that must have succeeded; on failure,
/// panics with `what` and both of its outputs.
pub fn succeeded(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
