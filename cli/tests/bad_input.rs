//! Bad input gets a clear one-line error, a non-zero exit, and loses nothing.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Heph, write};

fn many_tasks(n: usize) -> String {
    let tasks: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "uuid": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
                "description": format!("task number {i}"),
                "status": "pending",
                "entry": "20261120T091500Z",
                "tags": ["bulk"],
            })
        })
        .collect();
    serde_json::to_string(&tasks).unwrap()
}

#[test]
fn unknown_and_ambiguous_ids() {
    let h = Heph::new();
    let err = h.fails(&["show", "abcdef0123"]);
    assert!(err.contains("no node matches \"abcdef0123\""), "{err}");
    assert!(h.fails(&["done", "not-hex!"]).contains("is not a node id"));

    // Seventeen tasks: two share a first hex digit (pigeonhole).
    let mut ids = Vec::new();
    for i in 0..17 {
        ids.push(h.add(&["task", &i.to_string()]));
    }
    let digit = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|d| ids.iter().filter(|id| id.starts_with(d.as_str())).count() > 1)
        .unwrap();
    let err = h.fails(&["show", &digit]);
    assert!(err.contains("matches") && err.contains("type more digits"), "{err}");
    // A change needs four characters, unique or not.
    assert!(h.fails(&["done", &digit]).contains("type at least 4 characters"));
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 17, "nothing was marked done");
}

#[test]
fn bad_dates_and_values_change_nothing() {
    let h = Heph::new();
    let err = h.fails(&["add", "Thing", "due:the-day-after-never"]);
    assert!(err.contains("cannot read \"the-day-after-never\" as a date"), "{err}");
    assert!(h.fails(&["add", "Thing", "due:2026-02-30"]).contains("not a real calendar date"));
    assert!(h.fails(&["add", "Thing", "pri:urgent"]).contains("priority"));
    assert!(h.fails(&["ls", "due.before:whenever"]).contains("as a date"));
    assert!(h.fails(&["ls", "status:finished"]).contains("is not one of"));
    assert!(h.fails(&["add", "+tagonly"]).contains("needs a title"));
    assert!(h.fails(&["add", "  ", "+tag"]).contains("needs a title"), "a blank title is none");
    assert!(h.fails(&["note", ""]).contains("needs a title"));
    let tui = h.run(&["tui"]);
    assert!(!tui.status.success());
    let said = String::from_utf8_lossy(&tui.stderr);
    assert!(said.contains("needs a terminal") && !said.contains('\u{1b}'), "no escape codes left: {said}");
    let id = h.add(&["Real", "task"]);
    h.fails(&["modify", &id, "wait:nope", "New title"]);
    assert_eq!(h.json(&["show", &id])["title"], "Real task");
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 1);
    assert!(h.fails(&["journal", "someday-maybe"]).contains("as a date"));
    let err = h.fails(&["conflicts", "resolve", &id, "title", "1"]);
    assert!(err.contains("has no conflicts") && !err.contains("no node matches"), "{err}");
}

#[test]
fn bad_import_files_import_nothing() {
    let h = Heph::new();
    h.add(&["Existing"]);
    let file = h.path("bad.json");
    write(
        &file,
        "[{\"uuid\": \"11111111-2222-4333-8444-555555555555\", \"description\": \"ok\"}, {\"uuid\": \"x\", \"description\": \"bad\"}]",
    );
    let err = h.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("task 2"), "{err}");
    write(&file, "{ this is not json");
    assert!(h.fails(&["import", file.to_str().unwrap()]).contains("line 1"));
    write(&file, "[{\"id\": \"zz\", \"kind\": \"task\"}]");
    assert!(h.fails(&["import", file.to_str().unwrap()]).contains("record 1"));
    assert!(h.fails(&["import", h.path("missing.json").to_str().unwrap()]).contains("cannot read"));
    assert_eq!(common::titles(&h.json(&["ls"])), ["Existing"]);
}

#[test]
fn unreadable_stores_are_refused_and_left_alone() {
    let h = Heph::new();
    let garbage = h.path("garbage.db");
    write(&garbage, "these are my notes, not a database\n");
    let out = h.command().args(["--db", garbage.to_str().unwrap(), "ls"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a readable heph store"), "{err}");
    assert_eq!(std::fs::read_to_string(&garbage).unwrap(), "these are my notes, not a database\n", "untouched");

    // A truncated store.
    h.add(&["Something"]);
    let truncated = h.path("truncated.db");
    let bytes = std::fs::read(&h.db).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let out = h.command().args(["--db", truncated.to_str().unwrap(), "ls"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a readable heph store"));

    // A folder where the file should be.
    let out = h.command().args(["--db", h.dir.path().to_str().unwrap(), "ls"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
}

#[test]
fn a_store_from_a_newer_heph_is_refused() {
    let h = Heph::new();
    h.add(&["Something"]);
    {
        let db = redb::Database::create(&h.db).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta")).unwrap();
            meta.insert("schema", 99u32.to_le_bytes().as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = h.fails(&["ls"]);
    assert!(err.contains("schema version 99") && err.contains("upgrade heph"), "{err}");
}

#[test]
fn a_second_writer_gets_a_clear_error() {
    let h = Heph::new();
    h.add(&["Something"]);
    let held = redb::Database::create(&h.db).unwrap();
    let err = h.fails(&["add", "Another"]);
    assert!(err.contains("in use by another heph process"), "{err}");
    drop(held);
    assert_eq!(h.json(&["ls"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_what_was_there() {
    let h = Heph::new();
    let id = h.add(&["Before", "the", "disk", "filled"]);
    let file = h.path("big.json");
    write(&file, &many_tasks(3000));
    // A file size limit makes writes fail with EFBIG, as a full disk fails
    // them with ENOSPC (SIGXFSZ is ignored so the write returns an error).
    let script =
        format!("trap '' XFSZ; ulimit -f 1024; exec \"$0\" --db '{}' import '{}'", h.db.display(), file.display());
    let out = std::process::Command::new("sh").arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_heph")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the disk is full; nothing was written"), "{err}");
    let rows = h.json(&["ls", "status:all"]);
    assert_eq!(common::titles(&rows), ["Before the disk filled"]);
    assert_eq!(h.json(&["show", &id])["title"], "Before the disk filled");
    // And the store still takes writes once there is room.
    h.add(&["After"]);
}

#[test]
fn killing_heph_mid_write_loses_at_most_that_write() {
    let tasks = many_tasks(6000);
    let mut interrupted = 0;
    for delay_ms in [60, 150, 300, 500] {
        let h = Heph::new();
        h.add(&["Kept"]);
        let file = h.path("big.json");
        write(&file, &tasks);
        let mut child = h
            .command()
            .args(["import", file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let n = h.json(&["ls", "status:all"]).as_array().unwrap().len();
        // Either the whole import committed or none of it did.
        assert!(n == 1 || n == 6001, "after a kill at {delay_ms} ms the store holds {n} tasks");
        if n == 1 && !status.success() {
            interrupted += 1;
        }
        // The store is whole: it opens, lists, and takes new writes.
        h.add(&["After", "the", "crash"]);
        assert!(h.ok(&["ls"]).contains("After the crash"));
    }
    assert!(interrupted > 0, "no kill landed before the import committed; the test proved nothing");
}

/// A store with damaged pages (40 bytes flipped in each 4 KiB page in
/// turn, one copy per page, as a bad disk sector would): every command
/// fails with an error or works; none panics. Where the damage leaves the
/// store readable but not whole (an export that exits 0 and differs from
/// the sound store's), `heph check` says so.
#[test]
fn a_store_with_a_damaged_page_is_an_error_never_a_panic() {
    let h = Heph::new();
    for i in 0..5 {
        h.add(&["task", &i.to_string(), "+work"]);
    }
    let sound = h.ok(&["export"]);
    assert!(h.ok(&["check"]).contains("no problems"));
    let bytes = std::fs::read(&h.db).unwrap();
    let mut tried = 0;
    let mut silent = 0;
    for (k, offset) in (4096..bytes.len()).step_by(4096).enumerate() {
        if bytes[offset..(offset + 4096).min(bytes.len())].iter().all(|b| *b == 0) {
            continue;
        }
        let mut damaged = bytes.clone();
        for b in &mut damaged[offset + 100..(offset + 140).min(bytes.len())] {
            *b ^= 0x5a;
        }
        let path = h.path(&format!("damaged-{k}.db"));
        std::fs::write(&path, &damaged).unwrap();
        let run = |args: &[&str]| h.command().arg("--db").arg(&path).args(args).output().unwrap();
        let checked = run(&["check"]);
        let exported = run(&["export"]);
        if exported.status.success() && exported.stdout != sound.as_bytes() {
            silent += 1;
            assert_ne!(
                checked.status.code(),
                Some(0),
                "page {k}: export loses or changes data and check calls the store sound:\n{}",
                String::from_utf8_lossy(&checked.stdout)
            );
        }
        for args in [&["check"][..], &["ls"], &["export"], &["show", "0000"], &["add", "one", "more"]] {
            let out = h.command().arg("--db").arg(&path).args(args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code() != Some(101) && !err.contains("panicked"),
                "page {k}, heph {args:?}: exit {:?}\n{err}",
                out.status.code()
            );
        }
        tried += 1;
    }
    assert!(tried >= 5, "the store has pages to damage ({tried})");
    eprintln!("{tried} damaged copies, {silent} of them exported without an error");
}

/// A title or body holding terminal escape sequences (written by another
/// client) is shown, not obeyed; JSON keeps it exactly.
#[test]
fn escape_sequences_in_documents_never_reach_the_terminal() {
    let h = Heph::new();
    let title = "Report \x1b]0;pwned\x07\x1b[2J done";
    let id = h.json(&["note", title, "--body", "line\r\nhidden\rspoof\n"])["id"].as_str().unwrap().to_string();
    for args in [&["ls", "kind:note"][..], &["show", &id], &["search", "report"], &["history", &id]] {
        let out = h.ok(args);
        assert!(!out.bytes().any(|b| b == 0x1b || b == 0x07 || b == b'\r'), "heph {args:?}: {out:?}");
    }
    assert!(h.ok(&["show", &id]).contains("line\nhidden\u{FFFD}spoof"));
    let shown = h.json(&["show", &id]);
    assert_eq!((shown["title"].as_str(), shown["body"].as_str()), (Some(title), Some("line\r\nhidden\rspoof\n")));
    // An export to standard output is data: written exactly, C1 controls too.
    let c1 = h.json(&["note", "Eight-bit \u{9b}2J CSI"])["id"].as_str().unwrap().to_string();
    let export: serde_json::Value = serde_json::from_str(&h.ok(&["export"])).unwrap();
    let titles: Vec<&str> = export.as_array().unwrap().iter().filter_map(|n| n["title"].as_str()).collect();
    assert!(titles.contains(&title) && titles.contains(&"Eight-bit \u{9b}2J CSI"), "{titles:?}");
    assert!(!h.ok(&["show", &c1]).contains('\u{9b}'));
}
