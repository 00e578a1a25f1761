//! Seeding a hub from a device, and backing up and restoring a device,
//! while their daemons run: real `hephd` and `heph` processes on 127.0.0.1.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Device, Hub, converge, hephd};
use serde_json::Value;

/// The audit log beside `store`, one JSON object per line.
fn audit(store: &Path) -> Vec<Value> {
    let mut path = store.as_os_str().to_owned();
    path.push(".audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
    text.lines().map(|l| serde_json::from_str(l).expect("audit lines are JSON")).collect()
}

fn check_line(line: &Value, event: &str) {
    assert_eq!(line["event"], event, "{line}");
    assert!(line["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "when: {line}");
    assert!(line["who"].as_str().is_some_and(|w| w.starts_with("user:") || w.starts_with("uid:")), "who: {line}");
    assert!(!line.to_string().contains("heph_"), "no token in the audit log: {line}");
}

/// Titles in an export, sorted.
fn titles(export: &Value) -> Vec<String> {
    let mut t: Vec<String> =
        export.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap_or_default().to_string()).collect();
    t.sort();
    t
}

fn seed(from: &Path, to: &Path) -> std::process::Output {
    Command::new(hephd()).args(["seed", "--json", "--from"]).arg(from).arg("--db").arg(to).output().unwrap()
}

#[test]
fn a_hub_seeded_from_a_running_device_serves_every_node_and_the_device_reconciles_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    let mut old_hub = Hub::start(&old);
    let mut a = Device::new(dir.path(), "a");
    a.start(&old_hub.url());
    let file = dir.path().join("tasks.json");
    std::fs::write(&file, common::taskwarrior_tasks(300, "seed")).unwrap();
    a.ok(&["import", file.to_str().unwrap()]);
    a.ok(&["note", "A note with history", "--body", "first"]);
    let note = a.json(&["ls", "kind:note"])[0]["short"].as_str().unwrap().to_string();
    a.ok(&["modify", &note, "A note with more history"]);
    a.wait_synced(&old_hub, 60);

    // Seeded while a's daemon holds its store: the snapshot comes through its socket.
    let out = seed(&a.db, &new.join("hub.db"));
    assert!(out.status.success(), "seed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["via"], "daemon", "{report}");
    assert_eq!(report["nodes"], 301, "{report}");
    assert_eq!(report["documents"], 301, "{report}");
    // Never over an existing hub store.
    let again = seed(&a.db, &new.join("hub.db"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let lines = audit(&new.join("hub.db"));
    assert_eq!(lines.len(), 1);
    check_line(&lines[0], "seed");
    assert_eq!(lines[0]["nodes"], 301);

    // a goes on writing to the old hub, then the old hub is retired.
    a.ok(&["add", "written after the seed"]);
    a.wait_synced(&old_hub, 30);
    let old_id = old_hub.health()["hub"].clone();
    old_hub.proc.stop();

    let new_hub = Hub::start(&new);
    assert_ne!(new_hub.health()["hub"], old_id, "the seeded hub has its own id");
    a.stop();
    a.start(&new_hub.url());
    a.sync_ok(60);
    a.wait_synced(&new_hub, 60);

    // A new device gets every node from the seeded hub.
    let mut b = Device::new(dir.path(), "b");
    b.start(&new_hub.url());
    b.wait_synced(&new_hub, 60);
    converge(&[&a, &b], 60);
    let export = b.export();
    let all = titles(&export);
    assert_eq!(all.len(), 302, "every node, once");
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(unique, all, "nothing duplicated");
    assert!(all.contains(&"written after the seed".to_string()));
    assert!(all.contains(&"A note with more history".to_string()));
    assert_eq!(
        b.json(&["history", &note]).as_array().unwrap().len(),
        a.json(&["history", &note]).as_array().unwrap().len()
    );

    // The hub's log holds each of a's changes once.
    let census = a.json(&["backup", dir.path().join("a.heph").to_str().unwrap()]);
    assert_eq!(census["census"]["changes"].as_u64(), Some(new_hub.head()), "hub head vs the device's changes");
}

#[test]
fn a_backup_restored_while_the_daemon_runs_reconciles_and_loses_no_edit() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut a = Device::new(dir.path(), "a");
    a.start(&hub.url());
    let mut b = Device::new(dir.path(), "b");
    b.start(&hub.url());
    let first = a.json(&["add", "before the backup one"])["short"].as_str().unwrap().to_string();
    let second = a.json(&["add", "before the backup two"])["short"].as_str().unwrap().to_string();
    a.wait_synced(&hub, 30);

    let backup = dir.path().join("a.heph");
    let made = a.json(&["backup", backup.to_str().unwrap()]);
    assert_eq!(made["census"]["nodes"], 2);

    // After the backup: edits of old nodes and a new one, all at the hub.
    a.ok(&["add", "after the backup"]);
    a.ok(&["modify", &first, "before the backup one, renamed after it"]);
    a.ok(&["annotate", &second, "noted after the backup"]);
    a.sync_ok(30);
    a.wait_synced(&hub, 30);
    b.wait_synced(&hub, 30);

    // Without a terminal or --yes, nothing happens.
    let refused = a.run(&["restore", backup.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(a.export().as_array().unwrap().len(), 3);

    let restored = a.json(&["--yes", "restore", backup.to_str().unwrap()]);
    assert_eq!(restored["after"]["nodes"], 2);
    // Edited at once, as the restored replica's new actor: the hub takes it.
    a.ok(&["modify", &second, "pri:H"]);
    a.sync_ok(60);
    a.wait_synced(&hub, 60);
    b.wait_synced(&hub, 60);
    converge(&[&a, &b], 60);

    let export = a.export();
    assert_eq!(
        titles(&export),
        ["after the backup", "before the backup one, renamed after it", "before the backup two"],
        "every edit, before and after the backup"
    );
    let two = a.show(&second);
    assert_eq!(two["priority"], "H");
    assert_eq!(two["annotations"][0]["description"], "noted after the backup");
    assert_eq!(a.status()["reconciling"], false);

    // A new device gets the same from the hub.
    let mut c = Device::new(dir.path(), "c");
    c.start(&hub.url());
    c.wait_synced(&hub, 60);
    converge(&[&a, &c], 60);

    let lines = audit(&a.db);
    let line = lines.iter().find(|l| l["event"] == "restore").expect("a restore line");
    check_line(line, "restore");
    assert_eq!(line["via"], "daemon");
    assert_eq!(line["nodes_before"], 3);
}

#[test]
fn token_revocation_joins_the_audit_log_with_who_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    drop(heph_engine::Replica::open(&db).unwrap());
    let run = |args: &[&str]| {
        let out = Command::new(hephd()).args(args).arg("--db").arg(&db).output().unwrap();
        assert!(out.status.success(), "hephd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let token = run(&["token", "create", "--name", "ci", "--scope", "read"]);
    run(&["token", "revoke", "ci"]);
    let lines = audit(&db);
    let line = lines.iter().find(|l| l["event"] == "token_revoked").expect("a revoke line");
    check_line(line, "token_revoked");
    assert_eq!(line["name"], "ci");
    let all: String = lines.iter().map(Value::to_string).collect();
    assert!(!all.contains(token.trim()), "the token itself is never logged");
}

#[test]
fn a_store_checks_clean_beside_its_daemon_and_damage_made_behind_its_back_is_found_and_mended() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut a = Device::new(dir.path(), "a");
    a.start(&hub.url());
    for title in ["one", "two", "three"] {
        a.ok(&["add", title]);
    }
    a.wait_synced(&hub, 30);
    let checked = a.json(&["check"]);
    assert_eq!(checked["found"]["problems"], serde_json::json!([]), "{checked}");
    assert_eq!(checked["found"]["documents"], 3);
    assert!(checked["found"]["log"].as_u64().unwrap() >= 3);

    // An index row lost behind heph's back: the task drops out of listings.
    a.stop();
    let two = a.export().as_array().unwrap().iter().find(|n| n["title"] == "two").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&two[2 * i..2 * i + 2], 16).unwrap()).collect();
    {
        let db = redb::Database::open(&a.db).unwrap();
        let txn = db.begin_write().unwrap();
        let removed = txn
            .open_table(redb::TableDefinition::<[u8; 16], &[u8]>::new("index"))
            .unwrap()
            .remove(<[u8; 16]>::try_from(id.as_slice()).unwrap())
            .unwrap()
            .is_some();
        assert!(removed);
        txn.commit().unwrap();
    }
    let sorted = |mut t: Vec<String>| {
        t.sort();
        t
    };
    assert_eq!(sorted(a.titles(&[])), ["one", "three"]);
    let found = a.run(&["check"]);
    assert_eq!(found.status.code(), Some(1));
    let (out, err) = (String::from_utf8_lossy(&found.stdout), String::from_utf8_lossy(&found.stderr));
    assert!(out.contains("1 problem") && out.contains(&format!("node {two} has no index row")), "{out}");
    assert!(err.contains("heph check --repair mends 1 of them"), "{err}");

    // Mended through the daemon, and synced as before.
    a.start(&hub.url());
    let mended = a.json(&["check", "--repair"]);
    assert_eq!(mended["repaired"]["documents"], 1, "{mended}");
    assert_eq!(mended["repaired"]["left"], serde_json::json!([]));
    assert_eq!(sorted(a.titles(&[])), ["one", "three", "two"]);
    a.ok(&["add", "four"]);
    a.wait_synced(&hub, 30);
    assert_eq!(a.json(&["check"])["found"]["problems"], serde_json::json!([]));
}

/// Rows of `table` in the closed store at `db`.
fn rows(db: &Path, table: &str) -> u64 {
    use redb::{ReadableDatabase as _, ReadableTableMetadata as _};
    let db = redb::Database::open(db).unwrap();
    let txn = db.begin_read().unwrap();
    match txn.open_table(redb::TableDefinition::<[u8; 16], &[u8]>::new(table)) {
        Ok(t) => t.len().unwrap(),
        Err(redb::TableError::TableDoesNotExist(_)) => 0,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_device_store_from_before_readings_gets_them_from_its_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut a = Device::new(dir.path(), "a");
    for i in 0..150 {
        a.ok(&["add", &format!("task {i}")]);
    }
    assert_eq!(rows(&a.db, "views"), 150);
    // As a build that kept no readings left it.
    {
        let db = redb::Database::open(&a.db).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(redb::TableDefinition::<[u8; 16], &[u8]>::new("views")).unwrap());
        txn.commit().unwrap();
    }
    let before = a.export();
    common::eventually(60, "every reading stored", || {
        a.start(&hub.url());
        a.wait_synced(&hub, 30);
        a.stop();
        rows(&a.db, "views") == 150
    });
    assert_eq!(a.export(), before, "the readings read as the documents do");
    assert_eq!(a.json(&["check"])["found"]["problems"], serde_json::json!([]));
}
