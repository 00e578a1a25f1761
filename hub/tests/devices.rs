//! Devices and a hub as real processes: `hephd --mode server`, two
//! `hephd --mode local` daemons, and the `heph` CLI, on 127.0.0.1.

mod common;

use common::{Device, Hub, converge, devices, eventually, http};
use serde_json::Value;

#[test]
fn a_task_added_on_one_device_appears_on_the_other_and_offline_edits_converge() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [mut a, mut b] = devices(dir.path(), &hub, ["a", "b"]);

    // Live: B learns of A's task without asking.
    a.ok(&["add", "Buy", "milk", "+errand", "due:2026-12-01"]);
    eventually(10, "B to receive A's task", || b.titles(&[]) == ["Buy milk"]);
    let id = b.json(&["ls"])[0]["short"].as_str().unwrap().to_string();

    // Offline: both daemons stop; both devices edit the same task.
    a.stop();
    b.stop();
    a.ok(&["modify", &id, "Buy oat milk", "+oat"]);
    b.ok(&["modify", &id, "Buy soy milk", "pri:H"]);
    b.ok(&["add", "Only on B"]);
    let status = b.json(&["sync", "--status"]);
    assert_eq!(status["daemon"], false);
    // B's modify, and the new task's genesis and content.
    assert_eq!(status["pending_push"], 3, "{status}");

    // Reconnect: everything converges.
    a.start(&hub.url());
    b.start(&hub.url());
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    converge(&[&a, &b], 15);
    let task = a.json(&["show", &id]);
    assert_eq!(task["tags"], serde_json::json!(["errand", "oat"]));
    assert_eq!(task["priority"], "H");
    assert!(a.titles(&[]).contains(&"Only on B".to_string()));

    // The title was set on both: a conflict, listed on both devices.
    let ca = a.json(&["conflicts"]);
    assert_eq!(ca, b.json(&["conflicts"]));
    assert_eq!(ca.as_array().unwrap().len(), 1);
    assert_eq!(ca[0]["field"], "title");
    let mut values: Vec<&str> = ca[0]["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    values.sort_unstable();
    assert_eq!(values, ["Buy oat milk", "Buy soy milk"]);
    let said = b.ok(&["sync", "--status"]);
    assert!(said.contains("Conflicts:      on 1 node (`heph conflicts` lists each field)"), "{said}");

    // Resolving on A clears it on B too.
    a.ok(&["conflicts", "resolve", &id, "title", "1"]);
    eventually(10, "B to see the resolution", || b.json(&["conflicts"]).as_array().unwrap().is_empty());
    assert!(b.ok(&["sync", "--status"]).contains("Conflicts:      none"));
    let health = b.json(&["sync", "--status"]);
    assert_eq!(health["connected"], true);
    assert_eq!(health["pending_push"], 0);
    assert!(health["last_success"].is_string());
}

#[test]
fn undo_through_the_daemon_reverts_this_devices_edit_and_keeps_the_other_devices() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [a, b] = devices(dir.path(), &hub, ["a", "b"]);
    a.ok(&["add", "Shared", "+home"]);
    eventually(10, "B to receive A's task", || b.titles(&[]) == ["Shared"]);
    let id = b.json(&["ls"])[0]["short"].as_str().unwrap().to_string();
    a.ok(&["modify", &id, "due:2026-12-24", "+a"]);
    b.ok(&["modify", &id, "pri:L", "+b"]);
    eventually(10, "A to receive B's edit", || a.json(&["show", &id])["priority"] == "L");
    // B's edit arrived last on A, but A undoes its own.
    let undone = a.json(&["undo", "-y"]);
    assert!(undone["undone"]["message"].as_str().unwrap().starts_with("modify"), "{undone}");
    let node = &undone["node"];
    assert!(node.get("due").is_none(), "{node}");
    assert_eq!(node["priority"], "L");
    assert_eq!(node["tags"], serde_json::json!(["b", "home"]));
    eventually(10, "B to see the undo", || b.json(&["show", &id]).get("due").is_none());
    assert_eq!(b.json(&["show", &id])["tags"], serde_json::json!(["b", "home"]));
}

#[test]
fn killing_the_hub_mid_push_loses_nothing_it_acknowledged_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let mut a = Device::new(dir.path(), "a");
    // Offline, A makes 6000 changes (a genesis and a content change for each
    // of 3000 tasks); its daemon will push them in batches.
    let file = dir.path().join("bulk.json");
    std::fs::write(&file, common::taskwarrior_tasks(3000, "bulk")).unwrap();
    a.ok(&["import", file.to_str().unwrap()]);
    let total = 6000;

    a.start(&hub.url());
    // Kill -9 the hub once part of the push is stored.
    let port = hub.port;
    eventually(30, "the push to begin", || {
        http(port, "GET", "/healthz", "")
            .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| v["head"].as_u64())
            .is_some_and(|h| h > 0)
    });
    hub.proc.kill9();
    a.stop();
    let status = a.json(&["sync", "--status"]);
    let acknowledged = total - status["pending_push"].as_u64().unwrap();

    // After a restart, every acknowledged change is there.
    hub.restart();
    let head = hub.head();
    assert!(head >= acknowledged, "hub has {head} changes but had acknowledged {acknowledged}");
    assert!(head < total, "the kill landed after the push had finished; the test proved nothing");

    // The device re-sends the rest; nothing is stored twice.
    a.start(&hub.url());
    a.ok(&["sync"]);
    eventually(30, "the hub to hold every change", || hub.head() == total);
    assert_eq!(a.json(&["sync", "--status"])["pending_push"], 0);

    // A new device bootstraps to the same state.
    let mut b = Device::new(dir.path(), "b");
    b.start(&hub.url());
    b.ok(&["sync"]);
    converge(&[&a, &b], 30);
    assert_eq!(b.titles(&["+bulk"]).len(), 3000);
}

#[test]
fn hub_and_device_restarts_resume_from_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let [a, mut b] = devices(dir.path(), &hub, ["a", "b"]);
    a.ok(&["add", "Before", "restart"]);
    eventually(10, "B to receive it", || b.titles(&[]).len() == 1);

    // A graceful hub restart: devices reconnect on their own.
    let status = hub.proc.stop();
    assert!(status.success(), "the hub exits cleanly on SIGTERM: {status}");
    hub.restart();
    a.ok(&["sync"]);
    a.ok(&["add", "After", "hub", "restart"]);
    eventually(20, "B to receive the change made after the hub restart", || b.titles(&[]).len() == 2);

    // A device restart: B misses changes while stopped, then resumes from its cursor.
    b.stop();
    let cursor_before = b.json(&["sync", "--status"])["hub_cursor"].as_u64().unwrap();
    assert_eq!(cursor_before, hub.head());
    a.ok(&["add", "While", "B", "was", "down"]);
    a.ok(&["sync"]);
    let sent_before = hub.metric("heph_hub_frames_sent_total");
    b.start(&hub.url());
    b.ok(&["sync"]);
    assert!(b.titles(&[]).contains(&"While B was down".to_string()));
    assert_eq!(b.json(&["sync", "--status"])["hub_cursor"].as_u64().unwrap(), hub.head());
    // Resuming sent a welcome and one small catch-up, not the whole history again.
    let sent = hub.metric("heph_hub_frames_sent_total") - sent_before;
    assert!(sent <= 4, "resuming B took {sent} frames");
    converge(&[&a, &b], 10);
}

#[test]
fn the_client_mode_proxies_the_api_to_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut a = Device::new(dir.path(), "a");
    a.start(&hub.url());
    a.ok(&["add", "From", "a", "device"]);
    a.ok(&["sync"]);

    // A thin client: no replica, `heph` goes through hephd --mode client to /rpc.
    let thin = Device::new(dir.path(), "thin");
    let mut proxy = common::Proc {
        child: Some(
            std::process::Command::new(common::hephd())
                .args(["--mode", "client", "--hub-url", &format!("http://127.0.0.1:{}", hub.port), "--socket"])
                .arg(thin.socket())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        ),
        name: "proxy".into(),
    };
    let socket = thin.socket();
    eventually(10, "the proxy socket", || std::os::unix::net::UnixStream::connect(&socket).is_ok());
    assert_eq!(thin.titles(&[]), ["From a device"]);
    thin.ok(&["add", "From", "the", "thin", "client"]);
    assert!(!thin.db.exists(), "client mode keeps no replica");
    // The hub fans the RPC write out like any push.
    eventually(10, "A to receive the thin client's task", || a.titles(&[]).len() == 2);
    // What only a device's replica has is refused by the proxy, saying so.
    for args in [&["sync", "--status"][..], &["backup", "b.db"][..]] {
        let out = thin.run(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("keeps no replica") && err.contains("hephd --mode local"), "{args:?}: {err}");
    }
    assert!(proxy.stop().success());

    // Errors cross the proxy as the same one-line messages.
    let err = a.run(&["show", "ffffffffff"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("no node matches"));
}

/// The value of one series in a Prometheus text exposition (a name with
/// its labels, exactly as written).
fn series(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).filter(|rest| rest.starts_with(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series {name} in:\n{body}"))
}

#[test]
fn health_metrics_and_json_logs_report_what_an_operator_watches() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), common::free_port(), &["--log-format", "json"]);
    let [a, b] = devices(dir.path(), &hub, ["a", "b"]);

    // /healthz: the store takes writes; the version and age of the process.
    let health = hub.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["writable"], true, "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_seconds"].is_u64(), "{health}");

    // Traffic: A's pushes are committed and fanned out to B.
    for i in 0..5 {
        a.ok(&["add", "Metered", &i.to_string()]);
    }
    eventually(10, "B to receive A's tasks", || b.titles(&["Metered"]).len() == 5);
    let (status, body) = http(hub.port, "GET", "/metrics", "").expect("hub answers");
    assert_eq!(status, 200);
    let commits = series(&body, "heph_hub_commits_total");
    assert!(commits >= 5.0, "{commits} commits");
    // Every commit is in the latency histogram, whose buckets only grow.
    assert_eq!(series(&body, "heph_hub_commit_latency_seconds_count"), commits);
    assert_eq!(series(&body, "heph_hub_commit_latency_seconds_bucket{le=\"+Inf\"}"), commits);
    let buckets: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with("heph_hub_commit_latency_seconds_bucket"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(buckets.len() > 5 && buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(series(&body, "heph_hub_commit_latency_seconds_sum") > 0.0);
    // Both devices subscribe to the live fan-out; nothing waits now.
    assert_eq!(series(&body, "heph_hub_fanout_subscribers"), 2.0);
    assert_eq!(series(&body, "heph_hub_fanout_queue_depth_max"), 0.0);
    assert_eq!(series(&body, "heph_hub_fanout_queue_capacity"), 1024.0);
    assert_eq!(series(&body, "heph_hub_writer_queue"), 0.0);
    // The documents the writer keeps loaded, within --doc-cache-mb (128).
    let (cached, cached_bytes) = (series(&body, "heph_hub_doc_cache_docs"), series(&body, "heph_hub_doc_cache_bytes"));
    assert!(cached_bytes >= cached * 32768.0 && cached_bytes <= 128.0 * 1048576.0, "{cached} {cached_bytes}");
    assert_eq!(series(&body, "heph_hub_connections"), 2.0);
    assert!(series(&body, "heph_hub_frames_received_total") >= 5.0);
    assert!(series(&body, "heph_hub_frames_sent_total") >= 10.0);
    assert_eq!(series(&body, "heph_hub_pending_changes"), 0.0);
    assert!(series(&body, "heph_hub_live_deliveries_total") >= 5.0);

    // --log-format json: every line the hub logged is one JSON object.
    let log = std::fs::read_to_string(hub.db.with_extension("log")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
    }
}

/// A device pointed at an address where something answers but no hub (the
/// hub's web app under a wrong path) says so, and what to check.
#[test]
fn a_hub_url_that_is_not_a_hub_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut device = Device::new(dir.path(), "lost");
    device.start(&format!("{}/heph", hub.url()));
    let mut last = String::new();
    eventually(20, "the daemon to say why it cannot sync", || {
        last = device.status()["last_error"].as_str().unwrap_or_default().to_string();
        last.contains("no heph hub answers at ws://")
    });
    assert!(last.contains("check --hub-url"), "{last}");
}

/// A store so deep that its socket path cannot be a unix socket: the
/// daemon says so, and how to give it a shorter one.
#[test]
fn a_socket_path_too_long_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a-folder-with-a-long-name-".repeat(5)).join("heph.db");
    let out = std::process::Command::new(common::hephd())
        .args(["--mode", "local", "--hub-url", "ws://127.0.0.1:9", "--db"])
        .arg(&deep)
        .env_remove("HEPH_SOCKET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("longer than a unix socket allows") && err.contains("--socket PATH"), "{err}");
}

/// A hub at its connection limit answers 503 with its reason: a device
/// says the hub is unavailable and why, not that no hub is there.
#[test]
fn a_hub_at_its_connection_limit_is_unavailable_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), common::free_port(), &["--max-connections", "1"]);
    let [first] = devices(dir.path(), &hub, ["first"]);
    first.sync_ok(20);
    let [second] = devices(dir.path(), &hub, ["second"]);
    let mut last = String::new();
    eventually(20, "the second device to say why it cannot sync", || {
        last = second.status()["last_error"].as_str().unwrap_or_default().to_string();
        last.contains("the hub is unavailable for now (HTTP 503")
    });
    assert!(last.contains("--max-connections") && !last.contains("no heph hub answers"), "{last}");
}
