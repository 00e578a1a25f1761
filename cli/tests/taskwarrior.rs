//! Taskwarrior interop: its `task export` JSON in, its `task import` JSON out.
//!
//! `fixtures/taskwarrior-2.6-export.json` is the verbatim output of
//! `task export` (Taskwarrior 2.6.2) after a session with an active task, a
//! recurring task, a dependency, a waiting task, a completed and a deleted
//! task, and a description with quotes and non-ASCII text. The live test
//! below also runs the real `task` binary (Debian package `taskwarrior`).

mod common;

use common::taskwarrior::{Taskwarrior, available};
use common::{Heph, make_executable, titles, write};
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/taskwarrior-2.6-export.json");

#[test]
fn imports_a_real_taskwarrior_export() {
    let h = Heph::new();
    let report = h.json(&["import", FIXTURE]);
    assert_eq!(report["added"], 8);

    let milk = h.json(&["show", "2c56c32a"]);
    assert_eq!(milk["title"], "Buy milk");
    assert_eq!(milk["status"], "active", "a started pending task is active");
    assert_eq!(milk["priority"], "H");
    assert_eq!(milk["project"], "home");
    assert_eq!(milk["tags"], serde_json::json!(["errand"]));
    assert_eq!(milk["due"], "2026-11-26T00:00:00Z");
    assert_eq!(milk["created"], "2026-11-25T14:34:28Z");
    assert_eq!(milk["annotations"][0]["description"], "ask Sam");

    let bike = h.json(&["show", "1fc62536"]);
    assert_eq!(bike["dependencies"][0]["title"], "Buy milk");
    assert_eq!(titles(&h.json(&["ls", "+BLOCKED"])), ["Fix bike"]);

    assert_eq!(h.json(&["show", "77aae485"])["status"], "done");
    assert_eq!(h.json(&["show", "3f6d6a70"])["deleted"], true);
    let rent = h.json(&["show", "0c9e7316"]);
    assert_eq!(rent["uda"]["recur"], "monthly", "attributes heph does not model are kept");
    assert_eq!(h.json(&["show", "97a6cf03"])["title"], "Quote \"this\", and unicode: café ☕");
    assert!(h.json(&["show", "85e5fd89"])["wait"].is_string());

    // Importing the same export again changes nothing.
    let again = h.json(&["import", FIXTURE]);
    assert_eq!(again["unchanged"], 8, "{again}");
}

/// As with `task import`, a hand-written task without a uuid is a new task;
/// a uuid that is not one is refused, naming the record.
#[test]
fn imports_tasks_written_by_hand_without_uuids() {
    let h = Heph::new();
    let file = h.path("hand.json");
    write(
        &file,
        r#"[{"description":"Call the bank","project":"admin","due":"20261201T090000Z"},{"description":"Buy stamps"}]"#,
    );
    assert_eq!(h.json(&["import", file.to_str().unwrap()])["added"], 2);
    let bank = h.json(&["ls", "project:admin"]);
    assert_eq!(bank[0]["title"], "Call the bank");
    assert_eq!(bank[0]["due"], "2026-12-01T09:00:00Z");
    write(&file, r#"[{"description":"Broken","uuid":"not-a-uuid"}]"#);
    let e = h.fails(&["import", file.to_str().unwrap()]);
    assert!(e.contains("uuid is not a UUID"), "{e}");
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 2, "nothing else was added");
}

#[test]
fn round_trips_through_the_real_taskwarrior() {
    if !available() {
        return;
    }
    let h = Heph::new();
    let from = Taskwarrior::new(h.dir.path(), "from", "UTC");
    let task = |args: &[&str]| from.run(args);
    task(&["add", "Water plants", "due:2026-12-01", "+home", "priority:M", "project:garden"]);
    task(&["add", "Pay invoice", "+work"]);
    task(&["1", "annotate", "the ferns first"]);
    task(&["2", "done"]);
    let export = h.path("tw.json");
    std::fs::write(&export, task(&["export"])).unwrap();
    h.ok(&["import", export.to_str().unwrap()]);
    let plants = &h.json(&["ls", "+home"])[0];
    assert_eq!(plants["title"], "Water plants");
    assert_eq!(plants["project"], "garden");
    assert_eq!(plants["priority"], "M");
    assert_eq!(plants["annotations"], 1);
    assert_eq!(titles(&h.json(&["ls", "status:done"])), ["Pay invoice"]);

    // heph's Taskwarrior export is accepted by `task import`, and says the same.
    h.add(&["Made", "in", "heph", "+new", "due:2026-12-24"]);
    let out = h.path("heph-tw.json");
    h.ok(&["export", "--format", "taskwarrior", "-o", out.to_str().unwrap()]);
    let to = Taskwarrior::new(h.dir.path(), "to", "UTC");
    to.run(&["import", out.to_str().unwrap()]);
    let back: Vec<Value> = serde_json::from_str(&to.run(&["export"])).unwrap();
    let mut descriptions: Vec<&str> = back.iter().map(|t| t["description"].as_str().unwrap()).collect();
    descriptions.sort_unstable();
    assert_eq!(descriptions, ["Made in heph", "Pay invoice", "Water plants"]);
    let plants = back.iter().find(|t| t["description"] == "Water plants").unwrap();
    assert_eq!(plants["project"], "garden");
    assert_eq!(plants["tags"], serde_json::json!(["home"]));
    assert_eq!(plants["annotations"][0]["description"], "the ferns first");
    let invoice = back.iter().find(|t| t["description"] == "Pay invoice").unwrap();
    assert_eq!(invoice["status"], "completed");
}

/// heph's own tasks go out to Taskwarrior, are edited there, and come back:
/// what Taskwarrior has no field for (a body, links) stays as it was, an
/// annotation read back at Taskwarrior's whole seconds is the one already
/// here, and the edit made in Taskwarrior arrives.
#[test]
fn fields_taskwarrior_lacks_survive_a_round_trip_through_it() {
    if !available() {
        return;
    }
    let h = Heph::new();
    let note = h.json(&["note", "Espresso", "ratios", "--body", "1:2 in 30s"])["id"].as_str().unwrap().to_string();
    let id = h.add(&["Dial", "in", "the", "grinder", "+coffee"]);
    let script = h.path("editor.sh");
    write(&script, "#!/bin/sh\nprintf 'Start at 18 g.\\n\\nSee [[Espresso ratios]]\\n' >> \"$1\"\n");
    make_executable(&script);
    let out = h.command().env("EDITOR", &script).args(["edit", &id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    h.ok(&["link", &id, &note]);
    h.ok(&["annotate", &id, "burr set 4"]);
    let before = h.json(&["show", &id]);
    assert_eq!(before["body"], "Start at 18 g.\n\nSee [[Espresso ratios]]\n");
    assert_eq!(before["links"].as_array().unwrap().len(), 1, "{before}");

    let out = h.path("heph-tw.json");
    h.ok(&["export", "--format", "taskwarrior", "-o", out.to_str().unwrap()]);
    let tw = Taskwarrior::new(h.dir.path(), "tw", "UTC");
    tw.run(&["import", out.to_str().unwrap()]);
    tw.run(&["1", "modify", "+morning", "priority:H"]);
    let back = h.path("back.json");
    std::fs::write(&back, tw.run(&["export"])).unwrap();
    let report = h.json(&["import", back.to_str().unwrap()]);
    assert_eq!(report["updated"], 1, "{report}");

    let after = h.json(&["show", &id]);
    assert_eq!(after["body"], before["body"], "the body is kept");
    assert_eq!(after["links"], before["links"], "the link is kept");
    assert_eq!(after["annotations"], before["annotations"], "the annotation is not added again");
    assert_eq!(after["priority"], "H", "Taskwarrior's edit arrives");
    assert_eq!(after["tags"], serde_json::json!(["coffee", "morning"]));
    assert_eq!(h.json(&["show", &note])["body"], "1:2 in 30s", "the note is left alone");
    // Importing it once more changes nothing.
    let again = h.json(&["import", back.to_str().unwrap()]);
    assert_eq!(again["unchanged"], 1, "{again}");
}
