//! Hostile pushes: a few MiB of compressed Automerge change that would
//! inflate to gigabytes (`heph_engine::limits::compressed_change_bomb`), a
//! real change of a few KiB that inflates past what one frame can carry,
//! and a change that parses but that Automerge cannot apply.

mod common;

use automerge::{ActorId, Change};
use common::raw::RawClient;
use common::{Hub, devices, eventually, peak_rss_kib};
use heph_engine::sync::frame::MAX_FRAME_BYTES;
use heph_engine::{Edit, Node, NodeDoc, NodeId, NodeKind};

/// Someone pushes a decompression bomb (2.2 GB of zeros in a few MiB) at the
/// hub while two devices are syncing through it. The hub refuses it with an
/// error frame before inflating it, stores nothing of it, stays small, and
/// the devices never notice. The same for a valid change of a few KiB that
/// inflates past the change limit: stored (inflated, as every change is), it
/// could never be sent in a frame, and every device's catch-up would stop
/// at it.
#[test]
fn a_decompression_bomb_is_refused_and_the_hub_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [a, b] = devices(dir.path(), &hub, ["a", "b"]);
    a.ok(&["add", "Before", "the", "bomb"]);
    eventually(30, "B to receive A's first task", || b.titles(&[]) == ["Before the bomb"]);
    a.wait_synced(&hub, 60);
    b.wait_synced(&hub, 60);
    let head = hub.head();

    let bomb = heph_engine::limits::compressed_change_bomb(2_200_000_000);
    assert!(bomb.len() < MAX_FRAME_BYTES / 2, "the bomb fits in one frame: {} bytes", bomb.len());
    assert!(bomb.len() > 1024 * 1024, "the bomb is the real size: {} bytes", bomb.len());

    let mut raw = RawClient::open(hub.port);
    raw.push(1, &[(NodeId::random(), bomb)]);
    let reply = raw.reply_to(1);
    assert_eq!(reply["type"], "error", "the bomb is refused: {reply}");
    let code = reply["code"].as_str().unwrap();
    assert!(matches!(code, "invalid_change" | "too_large"), "{reply}");
    assert_eq!(reply["close"], true, "{reply}");
    raw.expect_closed();

    assert_eq!(hub.head(), head, "nothing of the bomb is stored");
    let peak = peak_rss_kib(hub.proc.pid());
    assert!(peak < 200 * 1024, "the hub's peak RSS is {} MiB", peak / 1024);

    let mut doc = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "body", "a".repeat(MAX_FRAME_BYTES)).unwrap();
    let mut change = doc.get_last_local_change().unwrap().clone();
    let compressed = change.bytes().into_owned();
    assert!(compressed.len() < 64 * 1024, "it travels small: {} bytes", compressed.len());
    let mut raw = RawClient::open(hub.port);
    raw.push(2, &[(NodeId::random(), compressed)]);
    let reply = raw.reply_to(2);
    assert_eq!(reply["type"], "error", "the change is refused: {reply}");
    assert_eq!(reply["code"], "invalid_change", "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("over the"), "the reason names the limit: {reply}");
    raw.expect_closed();
    assert_eq!(hub.head(), head, "nothing of the inflating change is stored");

    // The devices kept syncing through it all.
    a.ok(&["add", "After", "the", "bomb"]);
    eventually(60, "B to receive the task added after the bomb", || b.titles(&[]).len() == 2);
    b.ok(&["add", "Reply", "from", "B"]);
    eventually(60, "A to receive B's task", || a.titles(&[]).len() == 3);
    for d in [&a, &b] {
        d.wait_settled(&hub, 60);
        assert_eq!(d.status()["connected"], true, "{}", d.name);
    }
    assert!(peak_rss_kib(hub.proc.pid()) < 200 * 1024);
}

/// A device pushes a task's creation, then an edit whose seq skips one of
/// its actor's changes: it parses, but Automerge asserts on it when it is
/// applied. The hub refuses that push with an error frame naming the
/// reason, keeps the task as it was, and goes on serving: the same task's
/// real edit, pushed afterwards on a new connection, is stored, and the
/// devices syncing through the hub never notice.
#[test]
fn a_change_automerge_cannot_apply_is_refused_and_the_hub_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [a, b] = devices(dir.path(), &hub, ["a", "b"]);
    a.ok(&["add", "Before", "the", "bad", "change"]);
    eventually(30, "B to receive A's first task", || b.titles(&[]).len() == 1);

    let now = chrono::Utc::now();
    let node = Node::new(NodeId::random(), NodeKind::Task, "Pushed raw".into(), now);
    let (mut doc, created) = NodeDoc::create(&node, &ActorId::random(), "add").unwrap();
    let edit = doc.edit(&[Edit::Title("Pushed raw, edited".into())], "edit", now).unwrap().unwrap();
    let mut gap = edit.decode();
    gap.seq += 1;
    let gap = Change::from(gap);
    let raw_of = |changes: &[Change]| changes.iter().map(|c| (node.id, c.raw_bytes().to_vec())).collect::<Vec<_>>();

    let mut raw = RawClient::open(hub.port);
    raw.push(1, &raw_of(&created));
    let ack = raw.reply_to(1);
    assert_eq!(ack["type"], "ack", "{ack}");
    eventually(30, "B to receive the raw task", || b.titles(&[]).contains(&"Pushed raw".to_string()));
    let head = hub.head();

    raw.push(2, &raw_of(std::slice::from_ref(&gap)));
    let reply = raw.reply_to(2);
    assert_eq!(reply["type"], "error", "the change is refused: {reply}");
    assert_eq!(reply["code"], "invalid_change", "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("automerge refused"), "{reply}");
    raw.expect_closed();
    assert_eq!(hub.head(), head, "nothing of the refused push is stored");

    // The hub still takes the document's real edit, and every write is there.
    let mut raw = RawClient::open(hub.port);
    raw.push(3, &raw_of(std::slice::from_ref(&edit)));
    assert_eq!(raw.reply_to(3)["type"], "ack");
    a.ok(&["add", "After", "the", "bad", "change"]);
    let want = ["After the bad change", "Before the bad change", "Pushed raw, edited"];
    for d in [&a, &b] {
        eventually(60, &format!("{} to hold every write", d.name), || {
            let mut t = d.titles(&[]);
            t.sort();
            t == want
        });
        d.wait_settled(&hub, 60);
        assert_eq!(d.status()["connected"], true, "{}", d.name);
    }
    // Automerge's assertion was caught and is logged as the refusal it is,
    // saying where it was raised; nothing on stderr reads as a crash.
    let log = std::fs::read_to_string(hub.db.with_extension("log")).unwrap();
    assert!(!log.contains("panicked"), "the caught panic is not printed as one: {log}");
    let refusal = log.lines().find(|l| l.contains("automerge refused")).unwrap_or_else(|| panic!("{log}"));
    assert!(refusal.contains("automerge-0.12.0/src/"), "the refusal says where: {refusal}");
}
