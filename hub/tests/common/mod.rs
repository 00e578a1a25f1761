//! Real processes on 127.0.0.1: a hub, device daemons, and the `heph` CLI.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
}

impl Device {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self { db: dir.join(format!("{name}.db")), daemon: Proc { child: None, name: name.into() }, name: name.into() }
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
        Command::new(heph()).env("HEPH_DB", &self.db).env("TZ", "UTC").args(args).output().unwrap()
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

/// Waits until every device's export is the same.
pub fn converge(devices: &[&Device], secs: u64) {
    eventually(secs, "the devices to converge", || {
        let first = devices[0].export();
        devices[1..].iter().all(|d| d.export() == first)
    });
}
