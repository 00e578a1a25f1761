//! `heph daemon start|stop|restart|status|uninstall` against a service
//! manager. This machine may have no systemd user session, so the manager is
//! `tests/fake/systemctl`: it runs the unit heph wrote (its ExecStart= and
//! Environment= lines) as a real background hephd, which the tests then
//! reach through its socket, or find gone.

mod common;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{eventually, free_port, hephd};
use serde_json::Value;

/// A home for heph's service files, the fake manager's state, and a store.
struct Session {
    dir: tempfile::TempDir,
    bus_down: bool,
}

impl Session {
    fn new(bus_down: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("manager")).unwrap();
        Self { dir, bus_down }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("heph.db")
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("{}.sock", self.db().display()))
    }

    fn unit(&self) -> PathBuf {
        self.dir.path().join("config/systemd/user/hephd.service")
    }

    fn heph(&self, args: &[&str]) -> Output {
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake");
        let path = std::env::join_paths(
            std::iter::once(fake).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        Command::new(common::heph())
            .args(args)
            .env("PATH", path)
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("FAKE_SYSTEMD_DIR", self.dir.path().join("manager"))
            .env("FAKE_SYSTEMD_BUS_DOWN", if self.bus_down { "1" } else { "0" })
            .env("HEPH_DB", self.db())
            .env_remove("HEPH_SOCKET")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::succeeded(self.heph(args), &format!("heph {args:?}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("manager/calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn serving(&self) -> bool {
        UnixStream::connect(self.socket()).is_ok()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A daemon the fake manager left running (a failed test) goes too.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("manager/pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

#[test]
fn the_service_starts_stops_and_reports_through_the_manager() {
    let s = Session::new(false);
    let hub = format!("ws://127.0.0.1:{}", free_port());
    let said = s.ok(&["daemon", "install", "--hub-url", &hub]);
    assert!(said.contains("Enabled and started hephd.service"), "{said}");
    assert_eq!(s.calls(), ["daemon-reload", "enable hephd.service", "restart hephd.service"]);
    eventually(10, "the service's daemon to serve heph", || s.serving());

    let status = s.json(&["daemon", "status"]);
    assert_eq!(status["state"]["active"], "active", "{status}");
    assert_eq!(status["state"]["enabled"], "enabled", "{status}");
    let pid = status["state"]["pid"].as_u64().expect("a pid");
    assert_eq!(status["daemon"]["daemon"], true, "{status}");
    assert_eq!(status["daemon"]["hub_url"], hub.as_str(), "{status}");
    let text = s.ok(&["daemon", "status"]);
    assert!(text.contains(&format!("Unit state:     active (running), pid {pid}, enabled")), "{text}");
    assert!(text.contains(&format!("Hub:            {hub}")), "{text}");

    // heph goes through the service's daemon (the store is the daemon's).
    s.ok(&["add", "written through the service"]);
    assert_eq!(s.json(&["sync", "--status"])["daemon"], true);

    s.ok(&["daemon", "stop"]);
    assert!(!s.serving(), "the daemon still answers after stop");
    assert_eq!(s.json(&["daemon", "status"])["state"]["active"], "inactive");
    s.ok(&["daemon", "start"]);
    eventually(10, "the daemon to serve again after start", || s.serving());
    s.ok(&["daemon", "restart"]);
    eventually(10, "the daemon to serve again after restart", || s.serving());
    let again = s.json(&["daemon", "status"]);
    assert_ne!(again["state"]["pid"].as_u64(), Some(pid), "restart ran a new process: {again}");
    let rows = s.json(&["ls"]);
    assert_eq!(rows[0]["title"], "written through the service", "{rows}");

    s.ok(&["daemon", "uninstall", "--yes"]);
    assert!(!s.unit().exists());
    assert!(!s.serving(), "uninstall stops the daemon");
    let calls = s.calls();
    assert_eq!(&calls[calls.len() - 2..], ["disable --now hephd.service", "daemon-reload"]);
    // Its store stays, with the write in it.
    assert_eq!(s.json(&["ls"])[0]["title"], "written through the service");
}

#[test]
fn without_a_reachable_manager_heph_says_what_to_do() {
    let s = Session::new(true);
    let said = s.ok(&["daemon", "install", "--hub-url", "wss://hub.example"]);
    assert!(s.unit().exists(), "the file is written anyway");
    assert!(said.contains("cannot be reached") && said.contains("Failed to connect to bus"), "{said}");
    assert!(said.contains("loginctl enable-linger"), "{said}");
    let by_hand = format!("HEPH_HUB_URL=wss://hub.example HEPH_DB={} {}", s.db().display(), hephd().display());
    assert!(said.contains(&by_hand), "says how to run it by hand: {said}");

    for verb in ["start", "stop", "restart"] {
        let out = s.heph(&["daemon", verb]);
        assert!(!out.status.success(), "{verb} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("systemctl --user cannot reach your service manager"), "{verb}: {err}");
        assert!(err.contains("loginctl enable-linger") && err.contains("run the daemon yourself"), "{verb}: {err}");
    }
    let text = s.ok(&["daemon", "status"]);
    assert!(text.contains("Unit state:     unknown: the service manager cannot be reached"), "{text}");
    assert!(text.contains("Daemon:         not answering"), "{text}");
    let said = s.ok(&["daemon", "uninstall", "--yes"]);
    assert!(said.contains("Removed") && !s.unit().exists(), "{said}");
}

#[test]
fn start_without_a_service_says_to_install_one() {
    let s = Session::new(false);
    let out = s.heph(&["daemon", "start"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heph daemon install --hub-url URL"), "{err}");
    assert!(s.calls().is_empty(), "nothing was asked of the manager: {:?}", s.calls());
}
