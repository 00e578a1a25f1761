//! Every `heph` command, run as a user would, on a temporary store.

mod common;

use common::{Heph, ids, make_executable, titles, write};
use serde_json::Value;

#[test]
fn add_parses_taskwarrior_words_and_ls_lists_by_urgency() {
    let h = Heph::new();
    let text = h.ok(&["add", "Buy", "milk", "due:tomorrow", "+errand", "pri:H", "project:home"]);
    assert!(text.starts_with("Created task "), "{text}");
    h.add(&["Call", "mum"]);
    h.add(&["Someday", "thing", "pri:L"]);

    let rows = h.json(&["ls"]);
    assert_eq!(titles(&rows), ["Buy milk", "Someday thing", "Call mum"]);
    let first = &rows[0];
    assert_eq!(first["priority"], "H");
    assert_eq!(first["project"], "home");
    assert_eq!(first["tags"], serde_json::json!(["errand"]));
    assert_eq!(first["status"], "pending");
    assert!(first["due"].as_str().unwrap().ends_with("T00:00:00Z"));
    assert!(first["short"].as_str().unwrap().len() >= 6);

    // Filters.
    assert_eq!(titles(&h.json(&["ls", "+errand"])), ["Buy milk"]);
    assert_eq!(titles(&h.json(&["ls", "-errand", "pri:L"])), ["Someday thing"]);
    assert_eq!(titles(&h.json(&["ls", "project:home"])), ["Buy milk"]);
    assert_eq!(titles(&h.json(&["ls", "due:tomorrow"])), ["Buy milk"]);
    assert_eq!(titles(&h.json(&["ls", "due.before:eow", "due.after:yesterday"])), ["Buy milk"]);
    assert_eq!(titles(&h.json(&["ls", "mum"])), ["Call mum"]);
    assert_eq!(h.json(&["ls", "--limit", "1"]).as_array().unwrap().len(), 1);

    // The text report has a header and a count.
    let table = h.ok(&["ls"]);
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(table.contains("3 nodes"), "{table}");
}

#[test]
fn show_done_start_stop_and_status_filters() {
    let h = Heph::new();
    let id = h.add(&["Write", "report", "+work"]);
    let other = h.add(&["Read", "book"]);

    let shown = h.json(&["show", &id]);
    assert_eq!(shown["title"], "Write report");
    assert_eq!(shown["kind"], "task");
    assert_eq!(shown["short"].as_str().unwrap(), id);

    let started = h.json(&["start", &id]);
    assert_eq!(started["status"], "active");
    assert!(started["start"].is_string());
    assert_eq!(titles(&h.json(&["ls", "+ACTIVE"])), ["Write report"]);
    assert_eq!(h.json(&["stop", &id])["status"], "pending");

    let text = h.ok(&["done", &id, &other]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("Completed task"));
    assert!(h.json(&["ls"]).as_array().unwrap().is_empty());
    assert_eq!(h.json(&["ls", "status:done"]).as_array().unwrap().len(), 2);
    let done = h.json(&["show", &id]);
    assert_eq!(done["status"], "done");
    assert!(done["end"].is_string());

    let view = h.ok(&["show", &id]);
    assert!(view.contains("Write report") && view.contains("+work"), "{view}");
}

/// As in Taskwarrior, stopping a task that is not started, or starting or
/// completing one that is done or deleted, is refused by name and changes
/// nothing; the other tasks of the command still change.
#[test]
fn state_changes_that_do_not_apply_are_refused_and_change_nothing() {
    let h = Heph::new();
    let done = h.add(&["Filed", "taxes"]);
    let open = h.add(&["Book", "dentist"]);
    let gone = h.add(&["Old", "idea"]);
    h.ok(&["done", &done]);
    h.ok(&["delete", &gone]);
    let before = h.json(&["show", &done]);

    for (args, why) in [
        (["stop", &done], "is closed, not started"),
        (["start", &done], "cannot be started"),
        (["done", &done], "is already done"),
        (["stop", &open], "is not started"),
        (["done", &gone], "is deleted; `heph undelete"),
        (["start", &gone], "is deleted"),
    ] {
        let err = h.fails(&args);
        assert!(err.contains(why), "heph {args:?}: {err}");
    }
    assert_eq!(h.json(&["show", &done]), before, "the done task is as it was");
    assert_eq!(h.json(&["show", &open])["status"], "pending");
    assert_eq!(h.json(&["show", &gone])["deleted"], true);

    // One refused among several: the others change, and the command fails.
    let out = h.run(&["done", &done, &open]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Completed task"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is already done"));
    assert_eq!(h.json(&["show", &open])["status"], "done");
    assert_eq!(h.json(&["show", &done])["end"], before["end"]);

    h.ok(&["modify", &done, "status:pending"]);
    assert_eq!(h.json(&["start", &done])["status"], "active", "reopened, it starts");
}

#[test]
fn modify_annotate_delete_and_undelete() {
    let h = Heph::new();
    let id = h.add(&["Buy", "milk", "+errand", "due:tomorrow"]);
    let m = h.json(&["modify", &id, "due:", "-errand", "+shop", "pri:M", "project:home", "Buy", "oat", "milk"]);
    assert_eq!(m["title"], "Buy oat milk");
    assert!(m.get("due").is_none(), "due: clears the date: {m}");
    assert_eq!(m["tags"], serde_json::json!(["shop"]));
    assert_eq!(m["priority"], "M");

    let a = h.json(&["annotate", &id, "ask", "Sam"]);
    assert_eq!(a["annotations"][0]["description"], "ask Sam");

    h.ok(&["delete", &id]);
    assert!(h.json(&["ls", "status:all"]).as_array().unwrap().is_empty());
    assert_eq!(titles(&h.json(&["ls", "+DELETED"])), ["Buy oat milk"]);
    assert_eq!(h.json(&["show", &id])["deleted"], true);
    // `restore` takes a backup file; an id gets the way to undo a delete.
    assert!(h.fails(&["restore", &id]).contains("to undo a delete: heph undelete"));
    h.ok(&["undelete", &id]);
    assert_eq!(titles(&h.json(&["ls"])), ["Buy oat milk"]);
}

#[test]
fn depends_blocks_a_task() {
    let h = Heph::new();
    let first = h.add(&["Buy", "paint"]);
    let second = h.add(&["Paint", "fence", &format!("depends:{first}")]);
    assert_eq!(titles(&h.json(&["ls", "+BLOCKED"])), ["Paint fence"]);
    let shown = h.json(&["show", &second]);
    assert_eq!(shown["dependencies"][0]["title"], "Buy paint");
    h.ok(&["done", &first]);
    assert!(h.json(&["ls", "+BLOCKED"]).as_array().unwrap().is_empty());
}

/// A dependency that would make a task wait on itself, directly or through
/// others, is refused with the loop it would make (Taskwarrior refuses it
/// too), and nothing changes.
#[test]
fn circular_dependencies_are_refused() {
    let h = Heph::new();
    let a = h.add(&["Buy", "paint"]);
    let b = h.add(&["Sand", "fence", &format!("depends:{a}")]);
    let c = h.add(&["Paint", "fence", &format!("depends:{b}")]);
    let err = h.fails(&["modify", &a, &format!("depends:{c}")]);
    assert!(err.contains("circular dependency"), "{err}");
    let (a8, b8, c8) = (&h.json(&["show", &a])["id"], &h.json(&["show", &b])["id"], &h.json(&["show", &c])["id"]);
    let short = |v: &serde_json::Value| v.as_str().unwrap()[..8].to_string();
    let loop_ = format!("{} → {} → {} → {}", short(a8), short(c8), short(b8), short(a8));
    assert!(err.contains(&loop_), "the loop is named: {err}");
    assert!(h.fails(&["modify", &b, &format!("depends:{b}")]).contains("cannot depend on itself"));
    assert!(h.json(&["show", &a])["dependencies"].as_array().unwrap().is_empty(), "nothing changed");
    assert_eq!(titles(&h.json(&["ls", "+READY"])), ["Buy paint"]);
    // A dependency that makes no loop still goes in.
    let d = h.add(&["Buy", "brushes"]);
    h.ok(&["modify", &c, &format!("depends:{d}")]);
    assert_eq!(h.json(&["show", &c])["dependencies"].as_array().unwrap().len(), 2);
}

#[test]
fn edit_applies_the_markdown_changes_as_edits() {
    let h = Heph::new();
    let id = h.add(&["Plan", "trip", "+travel", "pri:L"]);
    let script = h.path("editor.sh");
    write(
        &script,
        "#!/bin/sh\nsed -i -e 's/^title: .*/title: Plan the trip/' -e 's/^priority: .*/priority: H/' \
         -e 's/^tags: .*/tags: travel summer/' -e 's/^due: .*/due: 2026-12-24/' \"$1\"\nprintf 'Book the train.\\n' >> \"$1\"\n",
    );
    make_executable(&script);
    let out = h.command().env("EDITOR", &script).args(["--json", "edit", &id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let node: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(node["title"], "Plan the trip");
    assert_eq!(node["priority"], "H");
    assert_eq!(node["tags"], serde_json::json!(["summer", "travel"]));
    assert_eq!(node["due"], "2026-12-24T00:00:00Z");
    assert_eq!(node["body"], "Book the train.\n");
    let history = h.json(&["history", &id]);
    assert_eq!(history.as_array().unwrap().len(), 2, "one change for the whole edit: {history}");

    // An editor that changes nothing changes nothing.
    let out = h.command().env("EDITOR", "true").args(["edit", &id]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "No changes.");

    // A bad date keeps the user's text and changes nothing.
    let bad = h.path("bad.sh");
    write(&bad, "#!/bin/sh\nsed -i -e 's/^due: .*/due: someday-soon-ish/' -e 's/^title: .*/title: Lost?/' \"$1\"\n");
    make_executable(&bad);
    let out = h.command().env("EDITOR", &bad).args(["edit", &id]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kept in"), "{err}");
    let kept = err.split("kept in ").nth(1).unwrap().split(';').next().unwrap().trim();
    assert!(std::fs::read_to_string(kept).unwrap().contains("title: Lost?"));
    assert_eq!(h.json(&["show", &id])["title"], "Plan the trip");

    // So does a file that is no longer UTF-8 text.
    let latin1 = h.path("latin1.sh");
    write(&latin1, "#!/bin/sh\nprintf '\\nlong text caf\\351\\n' >> \"$1\"\n");
    make_executable(&latin1);
    let out = h.command().env("EDITOR", &latin1).args(["edit", &id]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let kept = err.split("kept in ").nth(1).unwrap_or_else(|| panic!("{err}")).split(';').next().unwrap().trim();
    assert!(std::fs::read(kept).unwrap().ends_with(b"long text caf\xe9\n"));
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn edit_keeps_the_line_ends_of_a_body_it_did_not_touch() {
    let h = Heph::new();
    let out = h
        .command()
        .args(["--json", "note", "Windows", "notes", "--body", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"first\r\nsecond\r\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"].as_str().unwrap().to_string();
    let append = h.path("append.sh");
    write(&append, "#!/bin/sh\necho third >> \"$1\"\n");
    make_executable(&append);
    let out = h.command().env("EDITOR", &append).args(["edit", &id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(h.json(&["show", &id])["body"], "first\r\nsecond\r\nthird\n");

    // An editor that writes every line end as CRLF changes nothing of an LF body.
    let lf = h.json(&["note", "Unix", "--body", "one\ntwo\n"])["id"].as_str().unwrap().to_string();
    let crlf = h.path("crlf.sh");
    write(&crlf, "#!/bin/sh\nsed -i -e 's/$/\\r/' -e 's/^title: Unix/title: Unix notes/' \"$1\"\n");
    make_executable(&crlf);
    let out = h.command().env("EDITOR", &crlf).args(["edit", &lf]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = h.json(&["show", &lf]);
    assert_eq!((shown["title"].as_str(), shown["body"].as_str()), (Some("Unix notes"), Some("one\ntwo\n")));
}

#[test]
fn notes_journal_links_backlinks_and_search() {
    let h = Heph::new();
    let note = h.json(&["note", "Espresso", "ratios", "+coffee", "--body", "1:2 in 30 seconds"]);
    assert_eq!(note["kind"], "note");
    assert_eq!(note["title"], "Espresso ratios");
    assert_eq!(note["tags"], serde_json::json!(["coffee"]));
    let note_id = note["short"].as_str().unwrap().to_string();
    let task = h.add(&["Buy", "beans", "+coffee"]);

    let journal = h.json(&["journal", "--append", "Tried a 1:2.5 ratio."]);
    assert_eq!(journal["kind"], "journal");
    assert_eq!(journal["body"], "Tried a 1:2.5 ratio.\n");
    let again = h.json(&["journal", "today", "--append", "Better."]);
    assert_eq!(again["id"], journal["id"], "one journal node per day");
    assert_eq!(again["body"], "Tried a 1:2.5 ratio.\nBetter.\n");
    assert_eq!(h.json(&["journal", "yesterday"])["body"], "");

    let journal_id = journal["short"].as_str().unwrap().to_string();
    h.ok(&["link", &journal_id, &note_id]);
    h.ok(&["link", &task, &note_id]);
    let shown = h.json(&["show", &note_id]);
    let mut back: Vec<&str> =
        shown["backlinks"].as_array().unwrap().iter().map(|b| b["title"].as_str().unwrap()).collect();
    back.sort_unstable();
    let mut expected = vec![journal["title"].as_str().unwrap(), "Buy beans"];
    expected.sort_unstable();
    assert_eq!(back, expected);
    assert!(h.ok(&["show", &note_id]).contains("Backlinks:"));
    assert_eq!(h.json(&["show", &task])["linked"][0]["title"], "Espresso ratios");
    h.ok(&["unlink", &task, &note_id]);
    assert_eq!(h.json(&["show", &note_id])["backlinks"].as_array().unwrap().len(), 1);

    // Search looks in titles, bodies and tags of every kind.
    assert_eq!(titles(&h.json(&["search", "seconds"])), ["Espresso ratios"]);
    let coffee = titles(&h.json(&["search", "COFFEE"]));
    assert_eq!(coffee.len(), 2, "{coffee:?}");
    assert!(h.json(&["search", "2.5", "ratio"]).as_array().unwrap().len() == 1);
    assert_eq!(titles(&h.json(&["ls", "kind:note"])), ["Espresso ratios"]);
}

#[test]
fn history_lists_every_change_with_its_device() {
    let h = Heph::new();
    let id = h.add(&["Task"]);
    h.ok(&["modify", &id, "+a"]);
    h.ok(&["done", &id]);
    let history = h.json(&["history", &id]);
    let entries = history.as_array().unwrap();
    let messages: Vec<&str> = entries.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["add Task", "modify +a", "done"]);
    assert!(entries.iter().all(|e| e["device"] == entries[0]["device"]));
    assert!(h.ok(&["history", &id]).contains("modify +a"));
}

#[test]
fn export_and_import_round_trip_natively() {
    let a = Heph::new();
    a.add(&["One", "+x", "due:2026-12-01", "pri:H"]);
    let two = a.add(&["Two"]);
    a.ok(&["annotate", &two, "note", "this"]);
    a.ok(&["note", "A", "note", "--body", "with a body"]);
    a.ok(&["journal", "--append", "dear diary"]);
    let file = a.path("export.json");
    a.ok(&["export", "-o", file.to_str().unwrap()]);

    let b = Heph::new();
    let report = b.json(&["import", file.to_str().unwrap()]);
    assert_eq!(report["added"], 4);
    let again = b.json(&["import", file.to_str().unwrap()]);
    assert_eq!((again["added"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(4)), "{again}");
    let ea: Value = serde_json::from_str(&a.ok(&["export"])).unwrap();
    let eb: Value = serde_json::from_str(&b.ok(&["export"])).unwrap();
    assert_eq!(ea, eb);

    // Standard input works too.
    let c = Heph::new();
    let out = c.command().args(["import", "-"]).stdin(std::fs::File::open(&file).unwrap()).output().unwrap();
    assert!(out.status.success());
    assert_eq!(ids(&c.json(&["ls", "kind:all"])).len(), 4);
}

#[test]
fn conflicts_are_listed_and_resolved() {
    use chrono::Utc;
    use heph_engine::{Edit, Node, NodeId, NodeKind, Replica};
    let h = Heph::new();
    // Two replicas edit the same field concurrently and exchange changes.
    {
        let a = Replica::open(&h.db).unwrap();
        let b = Replica::in_memory().unwrap();
        let node =
            a.create(&Node::new(NodeId::random(), NodeKind::Task, "Shared".into(), Utc::now()), &[], "add").unwrap();
        let genesis = a.changes_after(0, 100).unwrap();
        b.apply_changes(genesis.iter().map(|c| (c.doc, c.bytes.clone())).collect()).unwrap();
        let seq_a = a.last_seq().unwrap();
        let seq_b = b.last_seq().unwrap();
        a.edit(node.id, &[Edit::Title("Shared (from laptop)".into())], "modify", Utc::now()).unwrap();
        b.edit(node.id, &[Edit::Title("Shared (from phone)".into())], "modify", Utc::now()).unwrap();
        let from_b = b.changes_after(seq_b, 100).unwrap();
        let from_a = a.changes_after(seq_a, 100).unwrap();
        a.apply_changes(from_b.iter().map(|c| (c.doc, c.bytes.clone())).collect()).unwrap();
        b.apply_changes(from_a.iter().map(|c| (c.doc, c.bytes.clone())).collect()).unwrap();
        assert_eq!(a.conflicts().unwrap(), b.conflicts().unwrap());
    }
    let list = h.json(&["conflicts"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["field"], "title");
    let values: Vec<&str> = list[0]["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(values.len(), 2);
    let text = h.ok(&["conflicts"]);
    assert!(text.contains("title: 2 values"), "{text}");
    assert!(h.ok(&["ls"]).contains("(conflict)"));

    let id = list[0]["id"].as_str().unwrap();
    let err = h.fails(&["conflicts", "resolve", &id[..8], "title", "3"]);
    assert!(err.contains("has 2 values to choose from (1 to 2)"), "{err}");
    let err = h.fails(&["conflicts", "resolve", &id[..8], "due", "1"]);
    assert!(err.contains("no conflict on due; its conflicts are on title"), "{err}");
    let resolved = h.json(&["conflicts", "resolve", &id[..8], "title", "2"]);
    assert_eq!(resolved["title"], values[1]);
    assert!(h.json(&["conflicts"]).as_array().unwrap().is_empty());
    assert_eq!(h.ok(&["conflicts"]).trim(), "No conflicts.");
}

#[test]
fn completions_and_help() {
    let h = Heph::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = h.ok(&["completions", shell]);
        assert!(script.contains("heph") && script.len() > 500, "{shell}");
    }
    let help = h.ok(&["--help"]);
    assert!(help.contains("due:DATE") && help.contains("Filters"), "{help}");
    assert!(h.ok(&["add", "--help"]).contains("Buy milk"));
}

/// `heph completions bash | head -2`: the script is larger than a pipe
/// holds, and a reader that stops early is not a failure.
#[test]
fn completions_to_a_reader_that_stops_early() {
    use std::io::Read;
    let h = Heph::new();
    let mut child = h.command().args(["completions", "bash"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(String::from_utf8_lossy(&first).starts_with("_heph()"));
    assert!(h.ok(&["completions", "zsh"]).contains("#compdef heph"));
}

#[test]
fn links_that_change_nothing_write_nothing() {
    let h = Heph::new();
    let a = h.json(&["note", "Alpha"])["id"].as_str().unwrap().to_string();
    let b = h.json(&["note", "Beta"])["id"].as_str().unwrap().to_string();
    assert!(h.ok(&["unlink", &a, &b]).starts_with("No link to"));
    assert!(h.ok(&["link", &a, &b]).starts_with("Linked"));
    assert!(h.ok(&["link", &a, &b]).starts_with("Already linked"));
    let history = h.json(&["history", &a]);
    assert_eq!(history.as_array().unwrap().len(), 2, "its creation and one link: {history}");
}

#[test]
fn a_note_whose_editor_fails_is_said_to_be_created() {
    let h = Heph::new();
    let out = h.command().env("EDITOR", "false").args(["note", "Draft", "-e"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was created, not edited") && err.contains("heph edit"), "{err}");
    assert_eq!(common::titles(&h.json(&["ls", "kind:note"])), ["Draft"]);
}

#[test]
fn appending_to_a_deleted_journal_day_brings_it_back() {
    let h = Heph::new();
    h.ok(&["journal", "--append", "first line"]);
    // Undoing the day's first write deletes it.
    h.ok(&["undo", "--yes"]);
    assert_eq!(h.json(&["journal"])["deleted"], true);
    // Opened in an editor and left as it was, it stays deleted; nothing is written.
    let out = h.command().env("EDITOR", "true").args(["journal", "-e"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(h.json(&["journal"])["deleted"], true);
    let day = h.json(&["journal", "--append", "after the undo"]);
    assert_eq!(day["deleted"], false);
    assert!(day["body"].as_str().unwrap().contains("after the undo"));
    assert_eq!(common::titles(&h.json(&["search", "after"])).len(), 1);
}

#[test]
fn an_import_that_gives_an_id_twice_says_so() {
    let h = Heph::new();
    let file = h.path("twice.json");
    let record = |title: &str, body: &str| {
        serde_json::json!({"id": "0123456789abcdef0123456789abcdef", "kind": "note", "title": title, "body": body,
            "created": "2025-01-01T00:00:00Z", "modified": "2025-01-01T00:00:00Z"})
    };
    write(&file, &serde_json::json!([record("A", "one"), record("B", "two")]).to_string());
    let out = h.ok(&["import", file.to_str().unwrap()]);
    assert!(out.contains("1 record gave an id that a later record gives again"), "{out}");
    assert_eq!(h.json(&["import", file.to_str().unwrap()])["repeated"], 1);
    assert_eq!(h.json(&["show", "0123456789ab"])["body"], "two");
}

#[test]
fn deleted_nodes_leave_backlinks_and_search_all_finds_them() {
    let h = Heph::new();
    let a = h.json(&["note", "Alpha", "zebra"])["id"].as_str().unwrap().to_string();
    let b = h.json(&["note", "Beta"])["id"].as_str().unwrap().to_string();
    h.ok(&["link", &a, &b]);
    assert_eq!(h.json(&["show", &b])["backlinks"].as_array().unwrap().len(), 1);
    h.ok(&["delete", &a]);
    assert_eq!(h.json(&["show", &b])["backlinks"], serde_json::json!([]), "a deleted note links to nothing");
    assert!(common::titles(&h.json(&["search", "zebra"])).is_empty());
    assert!(h.ok(&["search", "zebra"]).contains("heph search --all"), "no match says where else to look");
    assert_eq!(common::titles(&h.json(&["search", "--all", "zebra"])), ["Alpha zebra"]);
    h.ok(&["undelete", &a]);
    assert_eq!(h.json(&["show", &b])["backlinks"].as_array().unwrap().len(), 1);
}

#[test]
fn search_finds_a_word_whether_it_was_written_composed_or_decomposed() {
    let h = Heph::new();
    // "Café" as a macOS file name spells it (e + combining acute), and
    // "naïve" composed, in a body.
    h.ok(&["note", "Cafe\u{301} menu"]);
    h.ok(&["note", "Reading", "--body", "A na\u{ef}ve reader"]);
    assert_eq!(common::titles(&h.json(&["search", "caf\u{e9}"])), ["Cafe\u{301} menu"]);
    assert_eq!(common::titles(&h.json(&["search", "CAFE\u{301}"])), ["Cafe\u{301} menu"]);
    assert_eq!(common::titles(&h.json(&["search", "nai\u{308}ve"])), ["Reading"]);
    assert!(common::titles(&h.json(&["search", "naive"])).is_empty(), "an accent is not dropped");
}

#[test]
fn commands_naming_several_nodes_print_one_json_array_and_no_op_deletes_write_nothing() {
    let h = Heph::new();
    let a = h.add(&["One"]);
    let b = h.add(&["Two"]);
    let done = h.json(&["done", &a, &b]);
    assert_eq!(common::titles(&done), ["One", "Two"]);
    let deleted = h.json(&["delete", &a, &b]);
    assert_eq!(deleted.as_array().map(Vec::len), Some(2));
    assert_eq!(h.json(&["delete", &a])["title"], "One", "one node named: the node itself");
    assert!(h.ok(&["delete", &a]).starts_with("Already deleted:"));
    h.ok(&["undelete", &a]);
    assert!(h.ok(&["undelete", &a]).starts_with("Not deleted:"));
    let history = h.json(&["history", &a]);
    // add, done, delete, undelete: the repeated delete and undelete wrote nothing.
    assert_eq!(history.as_array().unwrap().len(), 4, "{history}");
}

#[test]
fn a_journal_day_imported_under_another_id_is_that_days_journal() {
    let h = Heph::new();
    let file = h.path("day.json");
    write(
        &file,
        r#"[{"id":"978ba4da513382318e3865a71a573bbe","kind":"journal","title":"2026-10-01","date":"2026-10-01","body":"Walked to the lake.","created":"2026-10-01T00:00:00Z","modified":"2026-10-01T00:00:00Z"}]"#,
    );
    h.ok(&["import", file.to_str().unwrap()]);
    let day = h.json(&["journal", "2026-10-01"]);
    assert_eq!(day["body"], "Walked to the lake.");
    assert_eq!(h.json(&["ls", "kind:journal"]).as_array().map(Vec::len), Some(1), "one journal for the day");

    // A day this replica has already takes the record's text besides its
    // own (twice imported, once), and a link to the record's id follows it.
    let day_id = h.json(&["journal", "2026-10-02", "--append", "Morning run."])["id"].as_str().unwrap().to_string();
    write(
        &file,
        r#"[{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","kind":"journal","title":"2026-10-02","date":"2026-10-02","body":"Evening swim.","created":"2026-10-02T00:00:00Z","modified":"2026-10-02T00:00:00Z"},
            {"id":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","kind":"note","title":"Swims","links":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"created":"2026-10-02T00:00:00Z","modified":"2026-10-02T00:00:00Z"}]"#,
    );
    h.ok(&["import", file.to_str().unwrap()]);
    let again = h.json(&["import", file.to_str().unwrap()]);
    assert_eq!((again["unchanged"].as_u64(), again["repeated"].as_u64()), (Some(2), Some(0)), "{again}");
    let day = h.json(&["journal", "2026-10-02"]);
    assert_eq!(day["body"], "Morning run.\nEvening swim.");
    assert_eq!(h.json(&["show", "bbbbbbbb"])["links"], serde_json::json!([day_id]));
}
