//! The command line as Taskwarrior users expect it: flags anywhere on the
//! line, ids typed in full enough before a change, unknown attributes
//! refused, `heph undo`, and the `projects` and `tags` summaries.

mod common;

use common::{Heph, titles, write};
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn flags_work_anywhere_and_double_dash_ends_them() {
    let h = Heph::new();
    // `--json` after the words is the flag, not a title word.
    let milk: Value = serde_json::from_str(&h.ok(&["add", "Buy", "milk", "+errand", "--json"])).unwrap();
    assert_eq!(milk["title"], "Buy milk");
    h.add(&["Call", "Ana", "+phone"]);
    let text = h.ok(&["ls", "kind:task", "--json", "+errand"]);
    assert_eq!(titles(&serde_json::from_str(&text).unwrap()), ["Buy milk"]);
    // `-tag` stays a filter word; `-n 1` after it is the limit.
    let rows: Value = serde_json::from_str(&h.ok(&["ls", "-errand", "-n", "1", "--json"])).unwrap();
    assert_eq!(titles(&rows), ["Call Ana"]);
    let rows: Value = serde_json::from_str(&h.ok(&["ls", "--limit=1", "--json"])).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    // After `--`, everything is a word.
    let literal = h.json(&["add", "--", "--json", "is", "a", "title", "+not-a-tag"]);
    assert_eq!(literal["title"], "--json is a title +not-a-tag");
    assert!(literal["tags"].as_array().is_none_or(Vec::is_empty), "{literal}");
    let rows = h.json(&["ls", "--", "-phone"]);
    assert!(!titles(&rows).contains(&"Call Ana".to_string()), "{rows}");
    // Flags of other subcommands, after their words.
    assert!(h.ok(&["note", "Espresso", "+coffee", "--body", "-1:2 in 30s-"]).starts_with("Created note"));
    let rows: Value = serde_json::from_str(&h.ok(&["search", "espresso", "--json"])).unwrap();
    assert_eq!(titles(&rows), ["Espresso"]);
    let shown = h.json(&["show", rows[0]["short"].as_str().unwrap()]);
    assert_eq!(shown["body"], "-1:2 in 30s-");
    // Help still describes the subcommand, wherever --help is.
    let help = h.ok(&["ls", "+x", "--help"]);
    assert!(help.contains("--limit"), "{help}");
    // An unknown long flag is still an error that says how to pass it as a word.
    let out = h.run(&["add", "x", "--frob"]);
    assert!(!out.status.success() && stderr(&out).contains("--frob"), "{}", stderr(&out));
}

#[test]
fn changes_need_four_characters_of_the_id() {
    let h = Heph::new();
    let id = h.add(&["Only", "task"]);
    for short in [&id[..1], &id[..3]] {
        for cmd in [&["done", short][..], &["modify", short, "pri:H"], &["annotate", short, "x"], &["delete", short]] {
            let e = h.fails(cmd);
            assert!(e.contains("type at least 4 characters of the id") && e.contains(short), "{cmd:?}: {e}");
        }
    }
    // Reading takes any unique prefix.
    assert_eq!(h.json(&["show", &id[..1]])["title"], "Only task");
    assert!(h.json(&["history", &id[..2]]).as_array().is_some());
    // A dependency is named in a change too.
    let other = h.add(&["Other"]);
    let e = h.fails(&["modify", &other, &format!("depends:{}", &id[..2])]);
    assert!(e.contains(&format!("depends:{}", &id[..2])) && e.contains("at least 4"), "{e}");
    assert_eq!(h.json(&["done", &id[..4]])["status"], "done");
}

#[test]
fn unknown_attributes_are_refused_and_udas_are_attributes() {
    let h = Heph::new();
    let id = h.add(&["Pay", "rent"]);
    let e = h.fails(&["modify", &id, "recurr:weekly"]);
    assert!(e.contains("'recurr:weekly'") && e.contains("after --") && e.contains("due, wait"), "{e}");
    assert_eq!(h.json(&["show", &id])["title"], "Pay rent", "the title is untouched");
    assert!(h.fails(&["add", "Something", "foo:bar"]).contains("foo is not an attribute"));
    // Text with colons is not attribute-shaped.
    let t = h.json(&["add", "See", "https://x.org/a:b", "at", "10:30", "re:"]);
    assert_eq!(t["title"], "See https://x.org/a:b at 10:30 re:");
    assert_eq!(h.json(&["modify", &id, "--", "foo:bar"])["title"], "foo:bar");
    // A UDA the node carries (from Taskwarrior) is settable by name.
    let tw = h.path("tw.json");
    write(
        &tw,
        r#"[{"uuid":"5b1c6f3e-0d4a-4f55-9a43-0cbd0a7f0a11","description":"Estimate me","status":"pending","entry":"20261125T100000Z","estimate":"3"}]"#,
    );
    h.ok(&["import", tw.to_str().unwrap()]);
    let shown = h.json(&["modify", "5b1c6f3e", "estimate:5"]);
    assert_eq!(shown["uda"]["estimate"], "5");
    assert!(h.fails(&["modify", "5b1c6f3e", "size:L"]).contains("estimate"), "known UDAs are listed");
    // A UDA another task carries is an attribute on every task, as a
    // configured UDA is in Taskwarrior; abbreviations name attributes too.
    let new = h.json(&["add", "Estimate", "too", "estimate:2", "prio:H", "wai:tomorrow"]);
    assert_eq!((&new["uda"]["estimate"], &new["priority"]), (&"2".into(), &"H".into()), "{new}");
    assert!(new["wait"].is_string(), "{new}");
    assert_eq!(h.json(&["modify", &id, "estimate:1"])["uda"]["estimate"], "1");
    assert!(h.json(&["modify", "5b1c6f3e", "estimate:"])["uda"].get("estimate").is_none());
    // Once no live task carries it, it is unknown again.
    h.ok(&["modify", &id, "estimate:"]);
    h.ok(&["modify", new["short"].as_str().unwrap(), "estimate:"]);
    assert!(h.fails(&["add", "Later", "estimate:4"]).contains("estimate is not an attribute"));
}

/// What recurrence does by itself (making the next instance, marking the
/// template) would only be done again: undo passes over it to the user's
/// own last change.
#[test]
fn undo_passes_over_what_recurrence_did_by_itself() {
    let h = Heph::new();
    let id = h.add(&["Water", "plants"]);
    h.ok(&["modify", &id, "+garden"]);
    h.add(&["Pay", "rent", "due:2026-01-01", "recur:monthly"]);
    // Listing makes every instance already due, and the next.
    assert!(h.json(&["ls", "Pay"]).as_array().unwrap().len() > 1);
    let instances = h.json(&["ls", "+INSTANCE", "status:all"]);
    assert!(!instances.as_array().unwrap().is_empty());
    let undone = h.json(&["undo", "--yes"]);
    assert_eq!(undone["undone"]["creation"], true, "the add of the template: {undone}");
    assert_eq!(undone["node"]["title"], "Pay rent");
    // Its series went with it, as with `heph delete`, and stays gone.
    assert!(h.json(&["ls", "Pay"]).as_array().unwrap().is_empty());
    assert!(h.json(&["ls", "+INSTANCE"]).as_array().unwrap().is_empty());
    let undone = h.json(&["undo", "--yes"]);
    assert!(undone["undone"]["message"].as_str().unwrap().starts_with("modify"), "{undone}");
    assert_eq!(undone["node"]["tags"], serde_json::json!([]));
}

#[test]
fn undo_reverts_this_devices_changes_one_by_one() {
    let h = Heph::new();
    assert!(h.fails(&["undo", "-y"]).contains("nothing to undo"));
    let id = h.add(&["Buy", "milk", "+errand"]);
    h.ok(&["modify", &id, "due:2026-12-24", "pri:H", "-errand", "Buy oat milk"]);
    // Without a terminal it shows the change and refuses without --yes.
    let out = h.run(&["undo"]);
    assert!(!out.status.success());
    let told = stderr(&out);
    assert!(told.contains("modify") && told.contains("title") && told.contains("Buy milk → Buy oat milk"), "{told}");
    assert!(told.contains("--yes"), "{told}");
    assert_eq!(h.json(&["show", &id])["priority"], "H", "nothing changed");

    let undone = h.json(&["undo", "--yes"]);
    assert_eq!(undone["undone"]["creation"], false);
    assert!(undone["undone"]["message"].as_str().unwrap().starts_with("modify"));
    let node = &undone["node"];
    assert_eq!(node["title"], "Buy milk");
    assert!(node.get("due").is_none() && node.get("priority").is_none(), "{node}");
    assert_eq!(node["tags"], serde_json::json!(["errand"]));

    h.ok(&["done", &id]);
    assert!(h.ok(&["undo", "-y"]).contains("Undid the last change"));
    assert_eq!(h.json(&["show", &id])["status"], "pending");
    h.ok(&["delete", &id]);
    h.ok(&["undo", "-y"]);
    assert_eq!(h.json(&["show", &id])["deleted"], false);
    // The undos themselves are skipped: next comes the add, which deletes.
    let undone = h.json(&["undo", "-y"]);
    assert_eq!(undone["undone"]["creation"], true);
    assert_eq!(undone["node"]["deleted"], true);
    assert!(h.fails(&["undo", "-y"]).contains("nothing to undo"));
    let history = h.json(&["history", &id]);
    let undos =
        history.as_array().unwrap().iter().filter(|e| e["message"].as_str().unwrap().starts_with("undo ")).count();
    assert_eq!(undos, 4);
}

#[test]
fn projects_and_tags_count_the_listed_tasks() {
    let h = Heph::new();
    h.add(&["a", "project:home.garden", "+work"]);
    h.add(&["b", "project:home.garden", "+work", "+mail"]);
    h.add(&["c", "project:home"]);
    h.add(&["d", "project:work", "+mail"]);
    h.add(&["e"]);
    let done = h.add(&["f", "project:old", "+work"]);
    h.ok(&["done", &done]);
    // Waiting tasks count, as in Taskwarrior; templates (not listed) do not.
    h.add(&["g", "project:later", "wait:tomorrow", "+someday"]);
    h.add(&["h", "project:series", "due:tomorrow", "recur:weekly"]);

    let projects = h.json(&["projects"]);
    let rows: Vec<(Value, u64, u64)> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["project"].clone(), p["count"].as_u64().unwrap(), p["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            ("home".into(), 1, 3),
            ("home.garden".into(), 2, 2),
            ("later".into(), 1, 1),
            ("series".into(), 1, 1),
            ("work".into(), 1, 1),
            (Value::Null, 1, 1)
        ],
        "done tasks are not counted"
    );
    let text = h.ok(&["projects"]);
    assert!(text.lines().any(|l| l.starts_with("  garden")), "{text}");
    assert!(text.contains("5 projects (7 tasks)"), "{text}");

    let work = h.json(&["projects", "+work"]);
    assert_eq!(work.as_array().unwrap().len(), 2, "{work}");
    let tags = h.json(&["tags"]);
    assert_eq!(
        tags,
        serde_json::json!([{"tag": "mail", "count": 2}, {"tag": "someday", "count": 1}, {"tag": "work", "count": 2}])
    );
    let tags = h.json(&["tags", "project:home", "status:all"]);
    assert_eq!(tags, serde_json::json!([{"tag": "mail", "count": 1}, {"tag": "work", "count": 2}]));
}
