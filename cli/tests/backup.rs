//! Backups, restores, confirmations and the audit log, on a store with no
//! daemon (tests/ in hub/ run them beside a daemon and a hub).

mod common;

use common::{Heph, titles};
use serde_json::Value;

/// The audit log beside the store, one JSON object per line.
fn audit(h: &Heph) -> Vec<Value> {
    let mut path = h.db.clone().into_os_string();
    path.push(".audit.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("audit lines are JSON")).collect()
}

fn check_line(line: &Value, event: &str) {
    assert_eq!(line["event"], event, "{line}");
    assert!(line["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "when: {line}");
    assert!(line["who"].as_str().is_some_and(|w| w.starts_with("user:") || w.starts_with("uid:")), "who: {line}");
    let text = line.to_string();
    assert!(!text.contains("heph_") && !text.contains("Bearer"), "no secret in the audit log: {text}");
}

#[test]
fn deleting_more_than_three_nodes_lists_them_and_needs_a_yes() {
    let h = Heph::new();
    let ids: Vec<String> = (1..=5).map(|i| h.add(&["task", &i.to_string()])).collect();

    // Three at once: no question.
    h.ok(&["delete", &ids[0], &ids[1], &ids[2]]);
    h.ok(&["undelete", &ids[0], &ids[1], &ids[2]]);
    assert!(audit(&h).is_empty(), "three nodes are not a bulk operation");

    // Four: listed, and refused without a terminal or --yes.
    let four = ["delete", &ids[0], &ids[1], &ids[2], &ids[3]];
    let out = h.run(&four);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Delete 4 nodes:") && err.contains("task 4"), "the plan lists them: {err}");
    assert!(err.contains("--yes"), "says how to go ahead: {err}");
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 5, "nothing was deleted");

    let mut yes = vec!["--yes"];
    yes.extend_from_slice(&four);
    h.ok(&yes);
    assert_eq!(titles(&h.json(&["ls"])), ["task 5"]);
    let lines = audit(&h);
    assert_eq!(lines.len(), 1);
    check_line(&lines[0], "delete");
    assert_eq!(lines[0]["count"], 4);
    assert_eq!(lines[0]["ids"].as_array().unwrap().len(), 4);

    // Undelete in bulk is audited too, and asks nothing.
    h.ok(&["undelete", &ids[0], &ids[1], &ids[2], &ids[3]]);
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 5);
    check_line(&audit(&h)[1], "undelete");
}

#[test]
fn backup_then_restore_brings_the_replica_back_and_says_what_it_does() {
    let h = Heph::new();
    h.add(&["before", "one"]);
    h.add(&["before", "two"]);
    let file = h.path("backups/first.heph");
    let file = file.to_str().unwrap();
    let made = h.json(&["backup", file]);
    assert_eq!(made["census"]["nodes"], 2);
    assert!(made["census"]["taken"].is_string());
    // Never over an existing file, unless asked.
    assert!(h.fails(&["backup", file]).contains("--force"));
    let said = h.ok(&["backup", "--force", file]);
    assert!(said.contains("Backed up 2 nodes (2 tasks, 0 notes, 0 journal days; 4 logged changes)"), "{said}");

    h.add(&["after", "the", "backup"]);
    // Shown and refused without a yes.
    let out = h.run(&["restore", file]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("taken ") && err.contains("now") && err.contains("backup"), "{err}");
    assert!(err.lines().any(|l| l.trim_start().starts_with("nodes") && l.contains('3') && l.contains('2')), "{err}");
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 3);

    let restored = h.json(&["restore", "-y", file]);
    assert_eq!(restored["after"]["nodes"], 2);
    let mut now = titles(&h.json(&["ls"]));
    now.sort();
    assert_eq!(now, ["before one", "before two"]);
    // It goes on working.
    h.add(&["after", "the", "restore"]);
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 3);

    let lines = audit(&h);
    let line = lines.iter().find(|l| l["event"] == "restore").expect("a restore line");
    check_line(line, "restore");
    assert_eq!(line["nodes_before"], 3);
    assert_eq!(line["nodes_after"], 2);
    assert!(line["backup"].as_str().unwrap().ends_with("first.heph"));

    // Not a backup: says so.
    std::fs::write(h.path("junk"), b"not a store").unwrap();
    assert!(h.fails(&["restore", "-y", h.path("junk").to_str().unwrap()]).contains("not a heph backup"));
    // Nor an export, a folder, or the store itself: each says what to do instead.
    let export = h.path("nodes.json");
    std::fs::write(&export, h.ok(&["export"])).unwrap();
    assert!(h.fails(&["restore", "-y", export.to_str().unwrap()]).contains("heph import"));
    let folder = h.dir.path().to_str().unwrap();
    assert!(h.fails(&["restore", "-y", folder]).contains("is a folder"));
    assert!(h.fails(&["restore", "-y", h.db.to_str().unwrap()]).contains("this replica's own store"));
    // A backup is written to a file in a folder that exists, and nowhere else.
    assert!(h.fails(&["backup", folder]).contains("is a folder"));
    let nowhere = h.path("no/such/x.heph");
    assert!(h.fails(&["backup", nowhere.to_str().unwrap()]).contains("does not exist"));
    assert!(!h.path("no").exists(), "no folder is made");
}

#[test]
fn resolving_every_conflict_at_once_lists_the_kept_values_and_asks() {
    use chrono::Utc;
    use heph_engine::{Edit, Node, NodeId, NodeKind, Replica};
    let h = Heph::new();
    // Two replicas set the title and the project of two tasks concurrently.
    {
        let a = Replica::open(&h.db).unwrap();
        let b = Replica::in_memory().unwrap();
        let mut ids = Vec::new();
        for title in ["First", "Second"] {
            let node = Node::new(NodeId::random(), NodeKind::Task, title.into(), Utc::now());
            ids.push(a.create(&node, &[], "add").unwrap().id);
        }
        let genesis = a.changes_after(0, 100).unwrap();
        b.apply_changes(genesis.iter().map(|c| (c.doc, c.bytes.clone())).collect()).unwrap();
        let seq_b = b.last_seq().unwrap();
        for id in &ids {
            a.edit(*id, &[Edit::Title("from laptop".into())], "modify", Utc::now()).unwrap();
            b.edit(*id, &[Edit::Title("from phone".into())], "modify", Utc::now()).unwrap();
        }
        a.edit(ids[0], &[Edit::Project(Some("home".into()))], "modify", Utc::now()).unwrap();
        b.edit(ids[0], &[Edit::Project(Some("work".into()))], "modify", Utc::now()).unwrap();
        let from_b = b.changes_after(seq_b, 100).unwrap();
        a.apply_changes(from_b.iter().map(|c| (c.doc, c.bytes.clone())).collect()).unwrap();
    }
    let listed = h.json(&["conflicts"]);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let shown: Vec<String> =
        listed.as_array().unwrap().iter().map(|c| c["values"][0].as_str().unwrap().into()).collect();

    // Listed with what each keeps, refused without a yes.
    let out = h.run(&["conflicts", "resolve", "--all", "--keep", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Resolve 3 conflicts, keeping value 1 of each:"), "{err}");
    assert!(err.contains("title: keep") && err.contains("project: keep"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(h.json(&["conflicts"]).as_array().unwrap().len(), 3);

    // A value no conflict has.
    assert!(h.fails(&["conflicts", "resolve", "--all", "--keep", "3", "-y"]).contains("no conflict has a value 3"));

    let done = h.json(&["-y", "conflicts", "resolve", "--all", "--keep", "1"]);
    assert_eq!(done["resolved"].as_array().unwrap().len(), 3);
    assert!(h.json(&["conflicts"]).as_array().unwrap().is_empty());
    // The values shown before are the ones kept.
    let titles: Vec<String> =
        h.json(&["ls"]).as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap().into()).collect();
    for t in titles {
        assert!(shown.contains(&t), "{t} was one of the shown values {shown:?}");
    }
    let lines = audit(&h);
    let line = lines.iter().find(|l| l["event"] == "conflicts_resolved").expect("an audit line");
    check_line(line, "conflicts_resolved");
    assert_eq!(line["count"], 3);
    assert_eq!(line["keep"], 1);
}
