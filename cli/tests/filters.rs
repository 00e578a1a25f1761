//! `heph ls` with Taskwarrior's filter language, and dates in the user's
//! time zone (`TZ`), through the real binary. What each filter selects is
//! checked against Taskwarrior itself in `taskwarrior_conformance.rs`.

mod common;

use common::{Heph, titles};

fn ls(h: &Heph, words: &[&str]) -> Vec<String> {
    let mut args = vec!["ls"];
    args.extend_from_slice(words);
    let mut got = titles(&h.json(&args));
    got.sort();
    got
}

#[test]
fn expressions_modifiers_and_virtual_tags() {
    let h = Heph::new();
    h.add(&["Pay rent", "+home", "due:today", "pri:H"]);
    h.add(&["Write report", "+work", "project:work.reports", "due:today+1h"]);
    let call = h.add(&["Call Ana", "+work", "project:work"]);
    h.add(&["Plan trip", "project:homework", "scheduled:yesterday"]);
    let fix = h.add(&["Fix bike", "+home", &format!("depends:{call}")]);
    h.ok(&["start", &call]);

    assert_eq!(ls(&h, &["+work", "or", "+home"]), ["Call Ana", "Fix bike", "Pay rent", "Write report"]);
    assert_eq!(
        ls(&h, &["+WORK", "or", "+Home"]),
        ["Call Ana", "Fix bike", "Pay rent", "Write report"],
        "case is ignored"
    );
    assert_eq!(
        ls(&h, &["(", "+work", "or", "+home", ")", "and", "due.before:eow", "and", "-BLOCKED"]),
        ["Pay rent", "Write report"]
    );
    // One quoted argument works as well as separate words.
    assert_eq!(ls(&h, &["(+work or +home) due.before:eow -BLOCKED"]), ["Pay rent", "Write report"]);
    assert_eq!(ls(&h, &["+work", "xor", "project:work"]), Vec::<String>::new());
    assert_eq!(ls(&h, &["project:home"]), ["Plan trip"], "Taskwarrior's project:home matches homework too");
    assert_eq!(ls(&h, &["project.is:home"]), Vec::<String>::new());
    assert_eq!(ls(&h, &["project.endswith:reports"]), ["Write report"]);
    assert_eq!(ls(&h, &["description.has:RENT"]), ["Pay rent"]);
    assert_eq!(ls(&h, &["scheduled.before:eom"]), ["Plan trip"]);
    assert_eq!(ls(&h, &["+BLOCKED"]), ["Fix bike"]);
    assert_eq!(ls(&h, &["+BLOCKING"]), ["Call Ana"]);
    assert_eq!(ls(&h, &["+TODAY"]), ["Pay rent", "Write report"]);
    assert_eq!(ls(&h, &["due.is:today"]), ["Pay rent"]);
    assert_eq!(ls(&h, &["+READY", "+work"]), ["Call Ana", "Write report"]);
    // status:pending includes started tasks, as in Taskwarrior.
    assert_eq!(ls(&h, &["status:pending", "+work"]), ["Call Ana", "Write report"]);
    h.ok(&["done", &fix]);
    assert_eq!(ls(&h, &["+COMPLETED"]), ["Fix bike"]);
    assert_eq!(ls(&h, &["+BLOCKED"]), Vec::<String>::new(), "a done task blocks nothing and is blocked by nothing");
}

#[test]
fn unknown_attributes_and_modifiers_are_errors_that_name_them() {
    let h = Heph::new();
    h.add(&["Pay rent", "+home"]);
    let err = h.fails(&["ls", "foo:bar"]);
    assert!(err.contains("\"foo\"") && err.contains("unknown attribute"), "{err}");
    let err = h.fails(&["ls", "scheduled.soon:eom"]);
    assert!(err.contains("\"soon\"") && err.contains("modifier"), "{err}");
    let err = h.fails(&["ls", "(", "+home"]);
    assert!(err.contains("never closed"), "{err}");
    let err = h.fails(&["ls", "due.has:x"]);
    assert!(err.contains("a date takes"), "{err}");
    // A UDA that a node has is an attribute like any other.
    let file = h.path("tw.json");
    std::fs::write(
        &file,
        r#"[{"uuid":"11111111-2222-4333-8444-555555555555","description":"Estimate me","status":"pending","entry":"20261101T000000Z","estimate":"3h"}]"#,
    )
    .unwrap();
    h.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(ls(&h, &["estimate:3h"]), ["Estimate me"]);
    assert_eq!(ls(&h, &["estimate.none:"]), ["Pay rent"]);
}

#[test]
fn dates_resolve_in_tz_with_the_offset_of_their_own_day() {
    let h = Heph::new();
    let add = |zone: &str, words: &[&str]| -> serde_json::Value {
        let out = h.command().env("TZ", zone).arg("--json").arg("add").args(words).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Berlin is at +02:00 on 1 July whatever the season of typing; São Paulo at -03:00.
    assert_eq!(add("Europe/Berlin", &["Summer", "due:2027-07-01"])["due"], "2027-06-30T22:00:00Z");
    assert_eq!(add("Europe/Berlin", &["Winter", "due:2027-01-15"])["due"], "2027-01-14T23:00:00Z");
    assert_eq!(add("America/Sao_Paulo", &["Verão", "due:2027-01-15"])["due"], "2027-01-15T03:00:00Z");
    // A time skipped by spring-forward moves on by the gap.
    assert_eq!(add("Europe/Berlin", &["Gap", "due:2027-03-28T02:30"])["due"], "2027-03-28T01:30:00Z");
    // Stored times are UTC; shown times are local.
    let summer = add("Europe/Berlin", &["Summer again", "due:2027-07-01"]);
    let id = summer["short"].as_str().unwrap();
    let shown = h.command().env("TZ", "Europe/Berlin").args(["show", id]).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("2027-07-01") && !text.contains("2027-06-30"), "{text}");
}
