//! Integrity of what people write, end to end: a hub, device daemons and the
//! `heph` CLI as real processes on 127.0.0.1, and foreign clients speaking
//! raw frames. Every test checks that each write is still there, not only
//! that replicas agree.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue};
use common::raw::RawClient;
use common::{Device, Hub, converge, devices, eventually, eventually_every, titled};
use heph_engine::NodeId;
use serde_json::{Value, json};

/// Sets attributes heph does not model on an existing task the way a user
/// does: a Taskwarrior record with the task's uuid, imported with `heph import`.
fn set_udas(device: &Device, dir: &Path, id: &str, title: &str, udas: &[(&str, &str)]) {
    let mut record = json!({"uuid": id, "description": title, "status": "pending"});
    for (k, v) in udas {
        record[*k] = json!(v);
    }
    let file = dir.join(format!("{}-udas.json", device.name));
    std::fs::write(&file, serde_json::to_string(&[record]).unwrap()).unwrap();
    let report = device.json(&["import", file.to_str().unwrap()]);
    assert_eq!(report["updated"], 1, "{}: the record updates the existing task: {report}", device.name);
}

/// Two devices that were offline start their daemons again, each pushes
/// what it wrote and catches up, and they converge.
fn come_back(hub: &Hub, a: &mut Device, b: &mut Device) {
    a.start(&hub.url());
    b.start(&hub.url());
    a.sync_ok(60);
    b.sync_ok(60);
    a.sync_ok(60);
    converge(&[a, b], 60);
}

fn annotation_texts(node: &Value) -> BTreeSet<String> {
    node["annotations"]
        .as_array()
        .map(|list| list.iter().map(|a| a["description"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Two people share a task. Both are offline (a train, a flight) when each
/// adds the task's first annotation and first custom attribute; both also
/// estimate it, differently. When they come back, nothing either wrote may
/// be missing on any device, including one set up afterwards.
#[test]
fn two_offline_devices_add_first_annotations_and_udas_and_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [mut a, mut b] = devices(dir.path(), &hub, ["a", "b"]);

    a.ok(&["add", "Plan", "the", "move"]);
    eventually(30, "B to receive A's task", || b.titles(&[]) == ["Plan the move"]);
    let id = a.json(&["ls"])[0]["id"].as_str().unwrap().to_string();
    let fresh = b.show(&id);
    assert!(annotation_texts(&fresh).is_empty() && fresh.get("uda").is_none_or(|u| u == &json!({})), "{fresh}");

    // Offline, each device writes the task's first annotation and attributes.
    a.stop();
    b.stop();
    a.ok(&["annotate", &id, "Booked", "the", "van"]);
    set_udas(&a, dir.path(), &id, "Plan the move", &[("estimate", "3h")]);
    b.ok(&["annotate", &id, "Asked", "Sam", "to", "help"]);
    set_udas(&b, dir.path(), &id, "Plan the move", &[("reviewer", "sam"), ("estimate", "5h")]);
    assert_eq!(a.show(&id)["uda"]["estimate"], "3h");
    assert_eq!(b.show(&id)["uda"]["reviewer"], "sam");

    // Both come back; a third device is set up afterwards.
    come_back(&hub, &mut a, &mut b);
    let mut c = Device::new(dir.path(), "c");
    c.start(&hub.url());
    c.sync_ok(60);
    converge(&[&a, &b, &c], 60);

    let wanted: BTreeSet<String> = ["Booked the van", "Asked Sam to help"].iter().map(|s| s.to_string()).collect();
    for d in [&a, &b, &c] {
        let task = d.show(&id);
        assert_eq!(task["title"], "Plan the move", "{}: {task}", d.name);
        assert_eq!(annotation_texts(&task), wanted, "{}: both first annotations survive: {task}", d.name);
        assert_eq!(task["uda"]["reviewer"], "sam", "{}: B's attribute survives: {task}", d.name);
        // Set on both: one value is shown, the other may be listed as a
        // conflict; the attribute itself never vanishes.
        let estimate = task["uda"]["estimate"].as_str();
        assert!(matches!(estimate, Some("3h" | "5h")), "{}: the estimate survives: {task}", d.name);
        let conflicts = d.json(&["conflicts"]);
        for conflict in conflicts.as_array().unwrap() {
            if conflict["field"].as_str().is_some_and(|f| f.contains("estimate")) {
                let mut values: Vec<&str> =
                    conflict["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                values.sort_unstable();
                assert_eq!(values, ["3h", "5h"], "{}: {conflict}", d.name);
            }
        }
        let status = d.status();
        assert_eq!(status["pending_push"], 0, "{}: {status}", d.name);
        assert_eq!(status["pending_changes"], 0, "{}: {status}", d.name);
    }
}

/// A daily series reaches two devices with its first occurrence (made
/// ahead, as Taskwarrior does) not yet due. Both go offline; the occurrence
/// comes due, so each device makes the next one when its owner lists tasks.
/// Each also completes or edits things offline. After sync every device
/// holds one task per occurrence, each made once (one creation entry), and
/// every offline write is still there.
#[test]
fn two_offline_devices_make_one_task_for_the_same_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [mut a, mut b] = devices(dir.path(), &hub, ["a", "b"]);
    let instances = |d: &Device| {
        let rows = d.json(&["ls", "status:all", "+INSTANCE"]);
        let mut by_index: Vec<(String, String)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["uda"]["imask"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string()))
            .collect();
        by_index.sort();
        by_index
    };

    // Long enough for the series to reach B on a busy machine before it is due.
    let due_in = std::time::Duration::from_secs(25);
    let added = std::time::Instant::now();
    a.ok(&["add", "Water", "the", "plants", "due:now+25s", "recur:daily", "+home"]);
    a.ok(&["add", "Shared", "task"]);
    eventually(30, "B to receive the series and the shared task", || {
        instances(&b).len() == 1 && b.titles(&["Shared"]) == ["Shared task"]
    });
    let template = b.json(&["ls", "status:all", "+TEMPLATE"])[0]["id"].as_str().unwrap().to_string();
    let shared = b.json(&["ls", "Shared"])[0]["id"].as_str().unwrap().to_string();
    a.stop();
    b.stop();
    assert!(added.elapsed() < due_in, "the devices went offline before the first occurrence was due");
    assert_eq!(instances(&a).len(), 1, "nothing made past the first while online");

    // Offline: the first occurrence comes due; listing makes the next on each.
    std::thread::sleep(due_in.saturating_sub(added.elapsed()) + std::time::Duration::from_secs(1));
    let (made_a, made_b) = (instances(&a), instances(&b));
    assert_eq!(made_a.len(), 2, "{made_a:?}");
    assert_eq!(made_a, made_b, "the same occurrence, with the same id, on both");
    let next = made_a[1].1.clone();
    a.ok(&["done", &next]);
    a.ok(&["modify", &shared, "+from-a"]);
    b.ok(&["annotate", &next, "Used", "the", "rain", "water"]);
    b.ok(&["modify", &shared, "pri:H"]);
    b.ok(&["note", "Only", "on", "B"]);

    come_back(&hub, &mut a, &mut b);

    for d in [&a, &b] {
        let now = instances(d);
        assert_eq!(now, made_a, "{}: one task per occurrence", d.name);
        for (_, id) in &now {
            let parent = d.show(id)["uda"]["parent"].as_str().unwrap().replace('-', "");
            assert_eq!(parent, template, "{}", d.name);
        }
        let task = d.show(&next);
        assert_eq!(task["status"], "done", "{}: A's completion survives: {task}", d.name);
        assert_eq!(
            annotation_texts(&task),
            BTreeSet::from(["Used the rain water".to_string()]),
            "{}: B's annotation survives: {task}",
            d.name
        );
        let history = d.json(&["history", &next]);
        let made = history.as_array().unwrap().iter().filter(|h| h["message"] == "recur").count();
        assert_eq!(made, 1, "{}: made once: {history}", d.name);
        let shared_now = d.show(&shared);
        assert!(shared_now["tags"].as_array().unwrap().contains(&json!("from-a")), "{}: {shared_now}", d.name);
        assert_eq!(shared_now["priority"], "H", "{}: {shared_now}", d.name);
        assert_eq!(d.titles(&["kind:note"]), ["Only on B"], "{}", d.name);
        assert!(d.json(&["conflicts"]).as_array().unwrap().is_empty(), "{}: no conflicts", d.name);
    }
}

/// The hub's disk is lost and a new, empty hub takes its place. The device
/// that wrote a task is gone too; another device only ever received it. That
/// device must give the new hub the history it holds, so a device set up
/// afterwards gets the task, and later edits flow as before.
#[test]
fn a_new_device_gets_history_after_the_hub_is_replaced_by_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let [mut a, b] = devices(dir.path(), &hub, ["a", "b"]);

    a.ok(&["add", "Renew", "the", "passport", "+admin", "pri:H", "due:2027-03-01"]);
    let id = a.json(&["ls"])[0]["id"].as_str().unwrap().to_string();
    a.ok(&["annotate", &id, "Photos", "are", "in", "the", "drawer"]);
    a.sync_ok(60);
    eventually(30, "B to receive A's task and its annotation", || {
        b.titles(&[]) == ["Renew the passport"] && annotation_texts(&b.show(&id)).len() == 1
    });

    // A is retired for good.
    a.stop();
    a.wipe();

    // The hub's store is lost; an empty hub starts on the same port.
    hub.proc.kill9();
    std::fs::remove_file(&hub.db).unwrap();
    hub.restart();

    // B reconnects by itself and re-offers what it received from A.
    b.sync_ok(120);
    eventually_every(120, 250, "the new hub to hold B's history", || hub.head() > 0);

    // A device set up now gets the task, with every field.
    let mut c = Device::new(dir.path(), "c");
    c.start(&hub.url());
    c.sync_ok(60);
    eventually(60, "C to receive the task written on the retired device", || c.titles(&[]) == ["Renew the passport"]);
    let task = c.show(&id);
    assert_eq!(task["tags"], json!(["admin"]), "{task}");
    assert_eq!(task["priority"], "H", "{task}");
    assert_eq!(task["due"], "2027-03-01T00:00:00Z", "{task}");
    assert_eq!(annotation_texts(&task), BTreeSet::from(["Photos are in the drawer".to_string()]));

    // And B's later edits reach C.
    b.ok(&["modify", &id, "Renew", "both", "passports"]);
    b.ok(&["annotate", &id, "Booked", "an", "appointment"]);
    eventually(60, "C to receive B's edits", || {
        let task = c.show(&id);
        task["title"] == "Renew both passports" && annotation_texts(&task).len() == 2
    });
    let task = c.show(&id);
    assert_eq!(
        annotation_texts(&task),
        BTreeSet::from(["Photos are in the drawer".to_string(), "Booked an appointment".to_string()])
    );
    converge(&[&b, &c], 60);
    c.wait_settled(&hub, 60);
    b.wait_settled(&hub, 60);
}

/// One expected fact: the node titled `title` has these fields (a subset).
struct Expect {
    title: String,
    fields: Value,
    annotations: &'static [&'static str],
}

fn expect(title: &str, fields: Value, annotations: &'static [&'static str]) -> Expect {
    Expect { title: title.into(), fields, annotations }
}

fn assert_holds(device: &Device, expected: &[Expect]) {
    let export = device.export();
    for e in expected {
        let node = titled(&export, &e.title).unwrap_or_else(|| panic!("{} lost the node {:?}", device.name, e.title));
        for (key, value) in e.fields.as_object().unwrap() {
            assert_eq!(&node[key], value, "{}: {:?}.{key}: {node}", device.name, e.title);
        }
        let notes = annotation_texts(node);
        for a in e.annotations {
            assert!(notes.contains(*a), "{}: {:?} lost the annotation {a:?}: {node}", device.name, e.title);
        }
    }
}

/// The hub is restored from a backup older than what the devices hold, and
/// keeps the same identity. Before the two devices that wrote the missing
/// part come back, a third one writes so much that the restored hub's head
/// passes the positions the two remember: comparing heads alone would take
/// the restored hub for one that has everything. In the end a device set up
/// from scratch holds every node and every field written anywhere.
#[test]
fn a_hub_restored_from_an_older_copy_ends_with_everything_the_devices_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let [mut a, mut b] = devices(dir.path(), &hub, ["a", "b"]);

    // Before the backup.
    a.ok(&["add", "Fix", "the", "gutter", "+house", "pri:H"]);
    b.ok(&["note", "Gutter", "parts", "--body", "Two brackets, one downpipe elbow."]);
    a.sync_ok(60);
    b.sync_ok(60);
    a.sync_ok(60);
    converge(&[&a, &b], 60);
    let gutter = a.titled("Fix the gutter")["id"].as_str().unwrap().to_string();

    // The backup.
    assert!(hub.proc.stop().success());
    let backup = dir.path().join("hub.db.backup");
    std::fs::copy(&hub.db, &backup).unwrap();
    hub.restart();

    // After the backup: new nodes and edits of an old one, from both devices.
    a.ok(&["add", "Order", "brackets", "+house", "due:2027-01-15"]);
    a.ok(&["annotate", &gutter, "Ladder", "borrowed", "from", "Ann"]);
    b.ok(&["add", "Plant", "the", "bulbs", "project:garden"]);
    b.ok(&["modify", &gutter, "+urgent"]);
    b.ok(&["note", "Bulb", "spacing", "--body", "Tulips 10 cm apart, 15 cm deep."]);
    a.sync_ok(60);
    b.sync_ok(60);
    a.sync_ok(60);
    converge(&[&a, &b], 60);
    a.wait_synced(&hub, 60);
    b.wait_synced(&hub, 60);
    let cursor_a = a.status()["hub_cursor"].as_u64().unwrap();
    let cursor_b = b.status()["hub_cursor"].as_u64().unwrap();
    let remembered = cursor_a.max(cursor_b);
    a.stop();
    b.stop();

    // The hub is restored from the backup.
    assert!(hub.proc.stop().success());
    std::fs::copy(&backup, &hub.db).unwrap();
    hub.restart();
    let restored = hub.head();
    assert!(restored < remembered, "the backup is older: head {restored}, devices remember {remembered}");

    // D writes until the restored hub's head passes what A and B remember.
    let mut d = Device::new(dir.path(), "d");
    d.start(&hub.url());
    d.sync_ok(60);
    let mut written = Vec::new();
    while hub.head() <= remembered + 1 {
        assert!(written.len() < 100, "D wrote {} tasks and the head is still {}", written.len(), hub.head());
        let title = format!("Written on D number {}", written.len());
        let words: Vec<&str> = title.split(' ').collect();
        let mut args = vec!["add"];
        args.extend(words);
        args.push("+fromd");
        d.ok(&args);
        d.sync_ok(60);
        written.push(title);
    }
    assert!(hub.head() > remembered);

    // A and B come back.
    a.start(&hub.url());
    b.start(&hub.url());
    a.sync_ok(120);
    b.sync_ok(120);
    a.sync_ok(120);
    d.sync_ok(120);

    // A device set up from scratch.
    let mut e = Device::new(dir.path(), "e");
    e.start(&hub.url());
    e.sync_ok(120);
    converge(&[&a, &b, &d, &e], 180);

    let mut expected = vec![
        expect(
            "Fix the gutter",
            json!({"kind": "task", "tags": ["house", "urgent"], "priority": "H"}),
            &["Ladder borrowed from Ann"],
        ),
        expect("Gutter parts", json!({"kind": "note", "body": "Two brackets, one downpipe elbow."}), &[]),
        expect("Order brackets", json!({"tags": ["house"], "due": "2027-01-15T00:00:00Z"}), &[]),
        expect("Plant the bulbs", json!({"project": "garden"}), &[]),
        expect("Bulb spacing", json!({"kind": "note", "body": "Tulips 10 cm apart, 15 cm deep."}), &[]),
    ];
    expected.extend(written.iter().map(|t| expect(t, json!({"tags": ["fromd"]}), &[])));
    for device in [&e, &a, &b, &d] {
        assert_holds(device, &expected);
        assert_eq!(device.export().as_array().unwrap().len(), expected.len(), "{}: no node twice", device.name);
    }
    for device in [&a, &b, &d, &e] {
        device.wait_settled(&hub, 120);
    }
}

/// Deterministic varied text (a small xorshift over a vocabulary).
fn prose(seed: u64, bytes: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "garden",
        "needs",
        "water",
        "before",
        "noon",
        "and",
        "again",
        "after",
        "dusk",
        "café",
        "über",
        "naïve",
        "tomatoes",
        "ripen",
        "slowly",
        "under",
        "glass",
        "while",
        "the",
        "kettle",
        "sings",
        "quietly",
        "on",
        "stove",
        "notes",
        "about",
        "bread",
        "dough",
        "rises",
        "overnight",
        "in",
        "a",
        "cool",
        "larder",
        "—",
        "ratio",
        "1:2",
        "ledger",
        "invoice",
        "paid",
        "pending",
        "ship",
        "harbour",
        "ropes",
        "tide",
        "northern",
        "lights",
        "日本語",
        "Ελληνικά",
        "emoji",
        "🌱",
        "🍞",
        "\"quoted\"",
        "back\\slash",
        "tab\there",
        "semi;colon",
        "x",
        "y",
        "z",
    ];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(bytes + 64);
    let mut words_in_line = 0;
    while out.len() < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
        words_in_line += 1;
        if words_in_line == 12 {
            out.push('\n');
            words_in_line = 0;
        } else {
            out.push(' ');
        }
    }
    out
}

fn note_id(i: usize) -> String {
    format!("{:08x}0000400080000000{:08x}", 0x5eed_0000_u32 + i as u32, i)
}

fn note_body(i: usize) -> String {
    format!("Note {i}\n{}", prose(i as u64 + 1, 16 * 1024))
}

/// Someone moves 2,000 long notes (16 KB each, about 32 MB: four frames'
/// worth at every step) into heph on their laptop.
/// The laptop pushes them all; their phone, which was offline meanwhile,
/// catches up; a new tablet is set up from scratch. Every note arrives
/// whole, and nothing is left waiting anywhere.
#[test]
fn two_thousand_notes_of_sixteen_kilobytes_push_catch_up_and_bootstrap() {
    const NOTES: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [mut a, mut b] = devices(dir.path(), &hub, ["a", "b"]);
    a.ok(&["note", "Before", "the", "import"]);
    eventually(30, "B to be in sync before going offline", || b.titles(&["kind:note"]) == ["Before the import"]);
    b.stop();

    // The import, written straight into A's store.
    a.stop();
    let file = dir.path().join("notes.json");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        w.write_all(b"[").unwrap();
        for i in 0..NOTES {
            if i > 0 {
                w.write_all(b",").unwrap();
            }
            let node = json!({
                "id": note_id(i),
                "kind": "note",
                "title": format!("Imported note {i}"),
                "body": note_body(i),
                "tags": ["imported"],
                "created": "2026-11-20T09:15:00Z",
                "modified": "2026-11-20T09:15:00Z",
            });
            serde_json::to_writer(&mut w, &node).unwrap();
        }
        w.write_all(b"]").unwrap();
    }
    let report = a.json(&["import", file.to_str().unwrap()]);
    assert_eq!(report["added"], NOTES, "{report}");
    std::fs::remove_file(&file).unwrap();

    // A pushes everything.
    a.start(&hub.url());
    eventually_every(900, 1000, "A to push every note", || {
        let s = a.status();
        s["connected"] == true && s["pending_push"] == 0
    });
    let head = hub.head();
    assert!(head > NOTES as u64, "the hub holds every note's changes: head {head}");

    // B, offline during the import, catches up; C bootstraps.
    b.start(&hub.url());
    let mut c = Device::new(dir.path(), "c");
    c.start(&hub.url());
    for d in [&b, &c] {
        let what = format!("{} to catch up with the hub", d.name);
        eventually_every(900, 1000, &what, || d.status()["hub_cursor"].as_u64() == Some(head));
    }

    let samples = [0, 1, 2, 499, 1000, 1234, 1777, 1998, NOTES - 1];
    for d in [&a, &b, &c] {
        let notes = d.json(&["ls", "kind:note", "+imported"]);
        let ids: BTreeSet<&str> = notes.as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), NOTES, "{}: every imported note", d.name);
        assert!((0..NOTES).all(|i| ids.contains(note_id(i).as_str())), "{}: the imported ids", d.name);
        for i in samples {
            let shown = d.show(&note_id(i));
            assert_eq!(shown["title"], format!("Imported note {i}"), "{}", d.name);
            assert!(shown["body"].as_str().unwrap() == note_body(i), "{}: note {i}'s body differs", d.name);
        }
        // (`ls` rather than an export: exporting 32 MB is not what is tested here.)
        assert_eq!(d.titles(&["kind:note", "Before", "import"]), ["Before the import"], "{}", d.name);
        d.wait_settled(&hub, 300);
        assert!(d.status().get("oldest_pending").is_none_or(Value::is_null), "{}", d.name);
    }
}

/// The automerge changes (bytes) of a document built by `build`, as another
/// client implementation would write it, in one change.
fn foreign(build: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> Vec<Vec<u8>> {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    build(&mut tx);
    tx.commit();
    doc.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()).collect()
}

/// Another client (an older app, a script, someone's own tool) writes
/// documents that heph does not fully understand: one without the keys heph
/// writes itself, one of a kind heph does not know, and one with fields of
/// the wrong type. Nothing of them may vanish silently: what can be shown is
/// shown, the rest is counted and listed, and an export carries every byte
/// back into a fresh store.
#[test]
fn documents_of_a_foreign_client_are_counted_listed_exported_and_reimported() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());

    let bare = NodeId::random();
    let project = NodeId::random();
    let odd = NodeId::random();
    let (bare_hex, project_hex, odd_hex) = (bare.to_hex(), project.to_hex(), odd.to_hex());
    let mut changes = Vec::new();
    // (a) kind and title only: no id, no containers.
    for c in foreign(|tx| {
        tx.put(ROOT, "kind", "task").unwrap();
        tx.put(ROOT, "title", "Foreign task without an id").unwrap();
    }) {
        changes.push((bare, c));
    }
    // (b) a kind heph does not know.
    for c in foreign(|tx| {
        tx.put(ROOT, "id", project_hex.as_str()).unwrap();
        tx.put(ROOT, "kind", "project").unwrap();
        tx.put(ROOT, "title", "A project from elsewhere").unwrap();
    }) {
        changes.push((project, c));
    }
    // (c) a task with fields of the wrong type and a key heph does not know.
    for c in foreign(|tx| {
        tx.put(ROOT, "id", odd_hex.as_str()).unwrap();
        tx.put(ROOT, "kind", "task").unwrap();
        tx.put(ROOT, "status", "pending").unwrap();
        tx.put(ROOT, "created", ScalarValue::Timestamp(1_795_000_000_000)).unwrap();
        tx.put(ROOT, "title", 42_i64).unwrap();
        tx.put(ROOT, "due", "next tuesday").unwrap();
        let tags = tx.put_object(ROOT, "tags", ObjType::List).unwrap();
        tx.insert(&tags, 0, "x").unwrap();
        tx.insert(&tags, 1, "y").unwrap();
        tx.put(ROOT, "colour", "teal").unwrap();
    }) {
        changes.push((odd, c));
    }

    let mut raw = RawClient::open(hub.port);
    raw.push(1, &changes);
    let ack = raw.reply_to(1);
    assert_eq!(ack["type"], "ack", "{ack}");
    assert!(ack["seqs"].as_array().unwrap().iter().all(|s| s.as_u64().unwrap() > 0), "all stored: {ack}");
    assert!(ack.get("waiting").is_none_or(|w| w == &json!([])), "nothing waits: {ack}");
    drop(raw);

    let mut x = Device::new(dir.path(), "x");
    x.start(&hub.url());
    x.sync_ok(60);
    x.wait_synced(&hub, 60);

    // (a) and (c) are shown.
    let rows = x.json(&["ls", "status:all"]);
    let row = |id: &str| rows.as_array().unwrap().iter().find(|r| r["id"] == id).cloned();
    let a_row = row(&bare_hex).unwrap_or_else(|| panic!("the document without an id is listed: {rows}"));
    assert_eq!(a_row["title"], "Foreign task without an id");
    assert!(row(&odd_hex).is_some(), "the document with odd fields is listed: {rows}");
    assert_eq!(x.show(&bare_hex)["title"], "Foreign task without an id");
    let odd_shown = x.show(&odd_hex);
    let extra = &odd_shown["extra"];
    assert_eq!(extra["title"], 42, "{odd_shown}");
    assert_eq!(extra["due"], "next tuesday", "{odd_shown}");
    assert_eq!(extra["tags"], json!(["x", "y"]), "{odd_shown}");
    assert_eq!(extra["colour"], "teal", "{odd_shown}");

    // (b) is counted and listed.
    let ls = x.text(&["ls"]);
    let line = ls.lines().find(|l| l.contains("could not be read")).unwrap_or_else(|| panic!("{ls}"));
    assert!(line.contains("1 node"), "{line}");
    assert_eq!(x.status()["unreadable"], 1);
    let unreadable = x.json(&["unreadable"]);
    assert_eq!(unreadable.as_array().unwrap().len(), 1, "{unreadable}");
    assert_eq!(unreadable[0]["id"], project_hex.as_str());
    assert!(unreadable[0]["reason"].as_str().unwrap().contains("project"), "{unreadable}");
    assert!(unreadable[0]["bytes"].as_u64().unwrap() > 0, "{unreadable}");
    // The hub reads documents into its indexes when its writer is idle.
    common::eventually(10, "the hub to count the unreadable document", || hub.metric("heph_hub_unreadable_docs") == 1);
    assert_eq!(hub.metric("heph_hub_stale_docs"), 0);

    // The export carries (b) raw and (c) with its extra fields.
    let export_text = x.ok(&["export"]);
    let export: Value = serde_json::from_str(&export_text).unwrap();
    let entry = |id: &str| export.as_array().unwrap().iter().find(|n| n["id"] == id).cloned();
    let b_entry = entry(&project_hex).unwrap_or_else(|| panic!("the unreadable document is exported: {export}"));
    assert!(b_entry["reason"].as_str().unwrap().contains("project"), "{b_entry}");
    let bytes: heph_engine::sync::frame::Bytes = serde_json::from_value(b_entry["raw"].clone()).unwrap();
    let saved = Automerge::load(&bytes.0).expect("raw is a saved Automerge document");
    assert_eq!(saved.get(ROOT, "kind").unwrap().unwrap().0.as_str(), Some("project"));
    let c_entry = entry(&odd_hex).unwrap();
    assert_eq!(c_entry["extra"], *extra, "{c_entry}");
    assert!(c_entry["raw"].is_string(), "{c_entry}");
    assert!(entry(&bare_hex).is_some());

    // A fresh store, no daemon, restores both intact from the export.
    let file = dir.path().join("export.json");
    std::fs::write(&file, &export_text).unwrap();
    let y = Device::new(dir.path(), "y");
    y.ok(&["import", file.to_str().unwrap()]);
    let ids = |v: &Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&y.json(&["unreadable"])), ids(&unreadable));
    assert_eq!(y.show(&odd_hex)["extra"], *extra);
    assert_eq!(y.show(&bare_hex)["title"], "Foreign task without an id");
    assert_eq!(y.status()["unreadable"], 1);
    x.wait_settled(&hub, 60);
}

/// Pushes `chain` but its first change, one change per push, until the hub
/// refuses; returns how many it accepted as waiting, and the refusal.
fn push_waiting_until_refused(hub: &Hub, chain: &[automerge::Change]) -> (usize, serde_json::Value) {
    let id = NodeId::random();
    let mut raw = RawClient::open(hub.port);
    let mut waiting = 0;
    for (batch, change) in chain[1..].iter().enumerate() {
        let batch = batch as u64;
        raw.push(batch, &[(id, change.raw_bytes().to_vec())]);
        let reply = raw.reply_to(batch);
        match reply["type"].as_str() {
            Some("ack") => {
                assert_eq!(reply["waiting"], json!([0]), "the change waits for its dependencies: {reply}");
                assert_eq!(reply["seqs"], json!([0]), "{reply}");
                waiting += 1;
            }
            Some("error") => {
                assert_eq!(reply["code"], "quota_exceeded", "{reply}");
                assert_eq!(reply["close"], true, "{reply}");
                raw.expect_closed();
                return (waiting, reply);
            }
            _ => panic!("{reply}"),
        }
    }
    panic!("the hub took all {waiting} changes as waiting")
}

/// A chain of `n` changes, each setting `n` to a value `pad` bytes long
/// that does not compress.
fn chain(n: i64, pad: usize) -> Vec<automerge::Change> {
    let mut doc = Automerge::new();
    for i in 0..n {
        let mut tx = doc.transaction();
        let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ i.unsigned_abs();
        let noise: String = (0..pad)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + u8::try_from(x % 26).unwrap())
            })
            .collect();
        tx.put(ROOT, "n", if pad == 0 { i.to_string() } else { noise }).unwrap();
        tx.commit();
    }
    doc.get_changes(&[])
}

/// A client pushes changes whose dependencies the hub never receives (a
/// broken or hostile client). The hub keeps a bounded number waiting, says
/// so in its acks, and then refuses with a reason instead of growing.
#[test]
fn a_hub_at_its_pending_quota_refuses_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), common::free_port(), &["--max-pending", "5"]);
    // Eleven changes in a chain; the first is never sent.
    let (waiting, refusal) = push_waiting_until_refused(&hub, &chain(11, 0));
    assert!(!refusal["message"].as_str().unwrap_or_default().is_empty(), "{refusal}");
    assert!((1..=5).contains(&waiting), "{waiting} changes were accepted as waiting, the quota is 5");
    assert!(hub.metric("heph_hub_pending_changes") > 0);
    assert!(hub.metric("heph_hub_pending_changes") <= 5);
    assert_eq!(hub.head(), 0, "nothing waiting was stored as if complete");
}

/// The same with large changes: the hub bounds the bytes waiting too.
#[test]
fn a_hub_at_its_pending_bytes_refuses_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), common::free_port(), &["--max-pending-mb", "1"]);
    // Changes of about 300 KB each: the fourth waiting one would pass 1 MiB.
    let (waiting, refusal) = push_waiting_until_refused(&hub, &chain(11, 300_000));
    assert_eq!(waiting, 3, "{refusal}");
    assert!(refusal["message"].as_str().unwrap_or_default().contains("1 MiB"), "{refusal}");
    assert_eq!(hub.metric("heph_hub_pending_changes"), 3);
    let bytes = hub.metric("heph_hub_pending_bytes");
    assert!((900_000..=1 << 20).contains(&bytes), "{bytes} bytes waiting");
    assert_eq!(hub.head(), 0, "nothing waiting was stored as if complete");
}
