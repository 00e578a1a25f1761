//! `heph` run the moment a device daemon starts (or a moment before it):
//! the daemon listens on its socket before it takes the store, and `heph`
//! looks for that socket while the store is in use.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, free_port, heph, hephd, succeeded as ok};
use serde_json::Value;

/// `heph` the moment a device daemon starts, and a moment before: every
/// command succeeds (none waits out the store lock and fails with "the
/// store is in use"), and every write is there at the end.
#[test]
fn heph_works_the_moment_the_daemon_starts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("heph.db");
    // A hub nobody listens on: the daemon keeps retrying, and serves heph meanwhile.
    let hub_url = format!("ws://127.0.0.1:{}", free_port());
    let heph_cmd = |args: &[&str]| {
        let mut c = Command::new(heph());
        c.env("HEPH_DB", &db).env_remove("HEPH_SOCKET").args(args).stdin(Stdio::null());
        c
    };
    let start_daemon = || {
        let child = Command::new(hephd())
            .args(["--mode", "local", "--hub-url", &hub_url, "--db", db.to_str().unwrap()])
            .env_remove("HEPH_SOCKET")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Proc { child: Some(child), name: "daemon".into() }
    };
    let rounds = 8;
    for round in 0..rounds {
        let (mut daemon, add) = if round % 2 == 0 {
            // The daemon first, heph right after it.
            let daemon = start_daemon();
            (daemon, heph_cmd(&["add", &format!("task {round}")]).output().unwrap())
        } else {
            // heph first (it may take the store), the daemon right after.
            let add = heph_cmd(&["add", &format!("task {round}")]).stdout(Stdio::piped()).spawn().unwrap();
            let daemon = start_daemon();
            (daemon, add.wait_with_output().unwrap())
        };
        let started = Instant::now();
        ok(add, &format!("heph add in round {round}"));
        let ls = heph_cmd(&["--json", "ls"]).output().unwrap();
        let rows: Value = serde_json::from_str(&ok(ls, &format!("heph ls in round {round}"))).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), round + 1, "round {round}: {rows}");
        assert!(started.elapsed() < Duration::from_secs(5), "round {round} took {:?}", started.elapsed());
        let status = daemon.stop();
        assert!(status.success(), "the daemon ended with {status} in round {round}");
    }
    let rows: Value = serde_json::from_str(&ok(heph_cmd(&["--json", "ls"]).output().unwrap(), "final ls")).unwrap();
    let mut titles: Vec<String> =
        rows.as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap().to_string()).collect();
    titles.sort();
    let mut expected: Vec<String> = (0..rounds).map(|r| format!("task {r}")).collect();
    expected.sort();
    assert_eq!(titles, expected);
}
