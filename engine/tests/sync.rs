//! The sync protocol end to end with no sockets: hub and device sessions
//! exchange frames through in-memory queues, including drops and restarts.

use chrono::{DateTime, TimeZone, Utc};
use heph_engine::sync::frame::{
    Bytes, ClientFrame, DocHeads, ErrorCode, HubFrame, MAX_FRAME_BYTES, MAX_HAVE_DOCS, WireChange, encode,
};
use heph_engine::sync::hub::{Broadcast, HubSession, Live};
use heph_engine::sync::spoke::{SpokeSession, SyncError};
use heph_engine::{Edit, Node, NodeDoc, NodeId, NodeKind, Replica};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn task(r: &Replica, title: &str) -> NodeId {
    r.create(&Node::new(NodeId::random(), NodeKind::Task, title.into(), now()), &[], "add").unwrap().id
}

/// A device's `hello` from the start of the log, asking for the change
/// stream (no bootstrap).
fn hello(origin: &str) -> ClientFrame {
    ClientFrame::Hello {
        version: heph_engine::sync::frame::PROTOCOL_VERSION,
        origin: origin.into(),
        cursor: 0,
        bootstrap: false,
        views: false,
        known: None,
    }
}

/// A device connected to the hub.
struct Conn {
    hub_side: HubSession,
    device: SpokeSession,
}

/// Connects `device` and runs the session until both sides are quiet.
/// Returns the connection and every broadcast the hub produced.
fn connect(device: &Replica, hub: &Replica) -> (Conn, Vec<Broadcast>) {
    let (session, hello) = SpokeSession::start(device).unwrap();
    let mut conn = Conn { hub_side: HubSession::new(), device: session };
    let b = pump(&mut conn, vec![encode(&hello)], device, hub, usize::MAX);
    (conn, b)
}

/// Moves frames both ways until quiet, or until the device has received
/// `limit` hub frames (then the connection "drops").
fn pump(c: &mut Conn, mut to_hub: Vec<String>, device: &Replica, hub: &Replica, limit: usize) -> Vec<Broadcast> {
    let mut broadcasts = Vec::new();
    let mut delivered = 0;
    loop {
        let mut to_device = Vec::new();
        for text in to_hub.drain(..) {
            let step = c.hub_side.receive(&text, hub);
            assert!(!step.close, "hub closed: {:?}", step.replies);
            to_device.extend(step.replies.iter().map(encode));
            broadcasts.extend(step.broadcast);
        }
        while let Some(f) = c.hub_side.catch_up(hub).unwrap() {
            to_device.push(encode(&f));
        }
        for text in to_device {
            if delivered == limit {
                return broadcasts;
            }
            delivered += 1;
            to_hub.extend(c.device.receive(&text, device).unwrap().send.iter().map(encode));
        }
        if to_hub.is_empty() {
            return broadcasts;
        }
    }
}

/// Delivers a live broadcast to a connected device.
fn deliver(c: &mut Conn, b: &Broadcast, device: &Replica, hub: &Replica) {
    match c.hub_side.live(b) {
        Live::Send => {
            c.device.receive(&b.text, device).unwrap();
        }
        Live::Skip => {}
        Live::CatchUp => {
            pump(c, Vec::new(), device, hub, usize::MAX);
        }
    }
}

fn push_local(c: &mut Conn, device: &Replica, hub: &Replica) -> Vec<Broadcast> {
    let push = c.device.next_push(device).unwrap().iter().map(encode).collect();
    pump(c, push, device, hub, usize::MAX)
}

#[test]
fn a_change_on_one_device_reaches_the_other_live() {
    let hub = Replica::in_memory().unwrap();
    let (a, b) = (Replica::in_memory().unwrap(), Replica::in_memory().unwrap());
    let (mut ca, _) = connect(&a, &hub);
    let (mut cb, _) = connect(&b, &hub);
    assert!(cb.hub_side.is_live());

    let id = task(&a, "Buy milk");
    let broadcasts = push_local(&mut ca, &a, &hub);
    assert_eq!(broadcasts.len(), 1);
    deliver(&mut cb, &broadcasts[0], &b, &hub);
    assert_eq!(b.get(id).unwrap().title, "Buy milk");
    assert!(ca.device.is_idle(&a).unwrap());
    // The pusher's own echo is harmless.
    deliver(&mut ca, &broadcasts[0], &a, &hub);
    assert_eq!(a.export().unwrap(), b.export().unwrap());
}

#[test]
fn offline_edits_converge_and_conflicts_show_on_both() {
    let hub = Replica::in_memory().unwrap();
    let (a, b) = (Replica::in_memory().unwrap(), Replica::in_memory().unwrap());
    let id = task(&a, "Shared");
    connect(&a, &hub);
    connect(&b, &hub);
    // Offline: both edit the same task.
    a.edit(id, &[Edit::Title("From A".into()), Edit::AddTag("a".into())], "modify", now()).unwrap();
    b.edit(id, &[Edit::Title("From B".into()), Edit::AddTag("b".into())], "modify", now()).unwrap();
    // Reconnect, in either order, twice so each hears the other.
    for _ in 0..2 {
        connect(&a, &hub);
        connect(&b, &hub);
    }
    assert_eq!(a.export().unwrap(), b.export().unwrap());
    assert_eq!(a.export().unwrap(), hub.export().unwrap());
    let node = a.get(id).unwrap();
    assert!(node.tags.contains("a") && node.tags.contains("b"));
    let conflicts = a.conflicts().unwrap();
    assert_eq!(conflicts, b.conflicts().unwrap());
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, "title");
}

#[test]
fn a_lost_ack_is_resent_and_deduplicated() {
    let hub = Replica::in_memory().unwrap();
    let a = Replica::in_memory().unwrap();
    let (mut c, _) = connect(&a, &hub);
    for i in 0..5 {
        task(&a, &format!("t{i}"));
    }
    // The hub stores the push, but the ack never reaches the device.
    let push = c.device.next_push(&a).unwrap().remove(0);
    let step = c.hub_side.receive(&encode(&push), &hub);
    assert!(matches!(step.replies[0], HubFrame::Ack { .. }));
    let head = hub.last_seq().unwrap();
    // Each new task is two changes: its genesis and its content.
    assert_eq!(head, 10);
    // Reconnect: the device offers the same changes again.
    connect(&a, &hub);
    assert_eq!(hub.last_seq().unwrap(), head, "nothing duplicated in the hub's log");
    assert_eq!(a.cursors().unwrap().pushed, a.last_seq().unwrap());
    assert_eq!(hub.export().unwrap(), a.export().unwrap());
}

#[test]
fn a_dropped_catch_up_resumes_from_the_cursor() {
    let hub = Replica::in_memory().unwrap();
    let a = Replica::in_memory().unwrap();
    // 3000 changes (a genesis and a content change per task).
    for i in 0..1500 {
        task(&a, &format!("t{i}"));
    }
    for _ in 0..8 {
        connect(&a, &hub);
    }
    assert_eq!(hub.last_seq().unwrap(), 3000);
    let b = Replica::in_memory().unwrap();
    // Ask for the change stream rather than snapshots, so the catch-up takes several frames.
    let hello = hello("b");
    // Frames cut at 64 KiB: the catch-up takes many of them.
    let hub_side = HubSession::new().with_frame_budget(64 * 1024);
    let mut c = Conn { hub_side, device: SpokeSession::start(&b).unwrap().0 };
    // welcome + 2 catch-up frames, then the connection drops.
    pump(&mut c, vec![encode(&hello)], &b, &hub, 3);
    let partial = b.cursors().unwrap().hub_cursor;
    assert!(partial > 0 && partial < 3000, "{partial}");
    let got = b.export().unwrap().len();
    assert!(got > 0 && got < 1500, "{got}");
    // Reconnect: the hello carries the cursor, the rest follows.
    let (mut c, _) = connect(&b, &hub);
    assert!(c.hub_side.is_live());
    assert_eq!(b.cursors().unwrap().hub_cursor, 3000);
    assert_eq!(b.export().unwrap(), hub.export().unwrap());
    assert!(c.device.next_push(&b).unwrap().is_empty());
}

#[test]
fn a_new_device_bootstraps_from_snapshots() {
    let hub = Replica::in_memory().unwrap();
    let a = Replica::in_memory().unwrap();
    for i in 0..600 {
        let id = task(&a, &format!("t{i}"));
        a.edit(id, &[Edit::AddTag("x".into())], "m", now()).unwrap();
    }
    for _ in 0..4 {
        connect(&a, &hub);
    }
    let fresh = Replica::in_memory().unwrap();
    let (session, hello) = SpokeSession::start(&fresh).unwrap();
    assert!(matches!(hello, ClientFrame::Hello { bootstrap: true, cursor: 0, .. }));
    let mut hub_side = HubSession::new();
    hub_side.receive(&encode(&hello), &hub);
    let first = hub_side.catch_up(&hub).unwrap().unwrap();
    assert!(matches!(first, HubFrame::Snapshot { .. }), "a bootstrap starts with snapshots");
    drop(session);
    connect(&fresh, &hub);
    assert_eq!(fresh.export().unwrap(), a.export().unwrap());
    assert_eq!(fresh.cursors().unwrap().hub_cursor, hub.last_seq().unwrap());
    // Later edits still flow both ways after a bootstrap.
    let id = task(&fresh, "after bootstrap");
    connect(&fresh, &hub);
    connect(&a, &hub);
    assert_eq!(a.get(id).unwrap().title, "after bootstrap");
}

#[test]
fn a_bootstrap_cut_short_starts_over_and_gets_everything() {
    let hub = Replica::in_memory().unwrap();
    let a = Replica::in_memory().unwrap();
    // Enough documents for several snapshot frames (about 1 MB each).
    for i in 0..3000 {
        // Random text does not compress: each document is over 500 bytes.
        let noise: String = (0..16).map(|_| NodeId::random().to_hex()).collect();
        let id = task(&a, &format!("t{i} {noise}"));
        a.edit(id, &[Edit::AddTag("x".into())], "m", now()).unwrap();
    }
    for _ in 0..16 {
        connect(&a, &hub);
    }
    assert_eq!(hub.export().unwrap().len(), 3000);
    let fresh = Replica::in_memory().unwrap();
    let (session, hello) = SpokeSession::start(&fresh).unwrap();
    let mut c = Conn { hub_side: HubSession::new().with_frame_budget(256 * 1024), device: session };
    // welcome + the first snapshot frame, then the connection drops.
    pump(&mut c, vec![encode(&hello)], &fresh, &hub, 2);
    let partial = fresh.export().unwrap().len();
    assert!(partial > 0 && partial < 3000, "{partial}");
    assert_eq!(fresh.cursors().unwrap().hub_cursor, 0, "no cursor until the last snapshot frame");
    connect(&fresh, &hub);
    assert_eq!(fresh.export().unwrap(), hub.export().unwrap());
}

#[test]
fn a_gap_in_the_live_stream_is_filled_from_the_store() {
    let hub = Replica::in_memory().unwrap();
    let (a, b) = (Replica::in_memory().unwrap(), Replica::in_memory().unwrap());
    let (mut ca, _) = connect(&a, &hub);
    let (mut cb, _) = connect(&b, &hub);
    task(&a, "one");
    let first = push_local(&mut ca, &a, &hub);
    task(&a, "two");
    let second = push_local(&mut ca, &a, &hub);
    // b missed the first broadcast (its queue overflowed): the second one
    // starts after a gap, so the session catches up from the store.
    assert_eq!(cb.hub_side.live(&second[0]), Live::CatchUp);
    pump(&mut cb, Vec::new(), &b, &hub, usize::MAX);
    assert_eq!(cb.hub_side.live(&first[0]), Live::Skip);
    assert_eq!(b.export().unwrap(), a.export().unwrap());
}

fn hub_reply(text: &str, hub: &Replica, session: &mut HubSession) -> (ErrorCode, bool) {
    let step = session.receive(text, hub);
    match &step.replies[..] {
        [HubFrame::Error { code, close, .. }] => (*code, *close && step.close),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[test]
fn bad_frames_get_an_error_and_a_close_and_store_nothing() {
    let hub = Replica::in_memory().unwrap();
    let hello = encode(&hello("x"));
    let mut cases: Vec<(Vec<String>, ErrorCode)> = vec![
        (vec!["not json".into()], ErrorCode::BadFrame),
        (vec!["{\"type\":\"warp\"}".into()], ErrorCode::BadFrame),
        (vec![encode(&ClientFrame::Push { batch: 1, changes: vec![] })], ErrorCode::Protocol),
        (
            vec![encode(&ClientFrame::Hello {
                version: 0,
                origin: "x".into(),
                cursor: 0,
                bootstrap: false,
                views: false,
                known: None,
            })],
            ErrorCode::UnsupportedVersion,
        ),
        (vec![hello.clone(), hello.clone()], ErrorCode::Protocol),
        (
            vec![
                hello.clone(),
                encode(&ClientFrame::Push {
                    batch: 1,
                    changes: vec![WireChange { seq: None, doc: NodeId::random(), bytes: Bytes(vec![1, 2, 3]) }],
                }),
            ],
            ErrorCode::InvalidChange,
        ),
        (
            vec![
                hello.clone(),
                encode(&ClientFrame::Push {
                    batch: 1,
                    changes: (0..5000)
                        .map(|_| WireChange { seq: None, doc: NodeId::random(), bytes: Bytes(vec![]) })
                        .collect(),
                }),
            ],
            ErrorCode::TooLarge,
        ),
    ];
    // A `have` offering more documents than a frame may.
    let have = ClientFrame::Have {
        docs: (0..=MAX_HAVE_DOCS).map(|_| DocHeads { doc: NodeId::random(), heads: vec![] }).collect(),
    };
    cases.push((vec![hello.clone(), encode(&have)], ErrorCode::TooLarge));
    for (frames, expected) in cases {
        let mut session = HubSession::new();
        let (last, before) = frames.split_last().unwrap();
        for f in before {
            assert!(!session.receive(f, &hub).close);
        }
        assert_eq!(hub_reply(last, &hub, &mut session), (expected, true), "{frames:?}");
        assert!(session.receive(&hello, &hub).close, "a closed session stays closed");
    }
    // A valid change beside an invalid one: neither is stored.
    let a = Replica::in_memory().unwrap();
    let id = task(&a, "valid");
    let good = a.changes_after(0, 10).unwrap().remove(0);
    let mut session = HubSession::new();
    session.receive(&hello, &hub);
    let push = ClientFrame::Push {
        batch: 1,
        changes: vec![
            WireChange { seq: None, doc: id, bytes: Bytes(good.bytes) },
            WireChange { seq: None, doc: id, bytes: Bytes(vec![0x85, 0x6f, 0x4a, 0x83, 0, 0]) },
        ],
    };
    assert_eq!(hub_reply(&encode(&push), &hub, &mut session).0, ErrorCode::InvalidChange);
    assert_eq!(hub.last_seq().unwrap(), 0);
}

/// A `need` answers every document a `have` offers and fits one frame,
/// even when the hub's document has 200 heads and the `have` lists it as
/// often as it may: past the budget, documents go without the hub's heads
/// (the device then sends all of each).
#[test]
fn a_need_answer_stays_within_a_frame_however_many_heads_the_hub_holds() {
    let hub = Replica::in_memory().unwrap();
    let a = Replica::in_memory().unwrap();
    let id = task(&a, "many heads");
    let base: Vec<(NodeId, Vec<u8>)> = a.changes_after(0, 100).unwrap().into_iter().map(|c| (c.doc, c.bytes)).collect();
    hub.apply_changes(base.clone()).unwrap();
    let parsed: Vec<_> = heph_engine::replica::parse_changes(base).unwrap().into_iter().map(|(_, c)| c).collect();
    let edits = (0..200)
        .map(|i| {
            let mut doc = NodeDoc::empty(&automerge::ActorId::random());
            doc.apply(parsed.clone()).unwrap();
            let change = doc.edit(&[Edit::Title(format!("edit {i}"))], "edit", now()).unwrap().unwrap();
            (id, change.raw_bytes().to_vec())
        })
        .collect();
    hub.apply_changes(edits).unwrap();
    let mut session = HubSession::new();
    let step = session.receive(&encode(&hello("x")), &hub);
    assert!(!step.close, "{:?}", step.replies);
    let unknown = automerge::ChangeHash([7; 32]).to_string();
    let docs = (0..MAX_HAVE_DOCS).map(|_| DocHeads { doc: id, heads: vec![unknown.clone()] }).collect();
    let step = session.receive(&encode(&ClientFrame::Have { docs }), &hub);
    assert!(!step.close);
    let [need @ HubFrame::Need { docs }] = &step.replies[..] else {
        panic!("expected one need, got {:?}", step.replies)
    };
    assert_eq!(docs.len(), MAX_HAVE_DOCS, "every offered document is answered");
    assert_eq!(docs[0].heads.len(), 200, "the first ones carry the hub's heads");
    assert!(docs.last().unwrap().heads.is_empty(), "the last ones go without");
    let size = encode(need).len();
    assert!(size <= MAX_FRAME_BYTES, "the answer is {size} bytes");
}

#[test]
fn a_device_rejects_a_hub_that_breaks_the_protocol() {
    let a = Replica::in_memory().unwrap();
    let (mut s, _) = SpokeSession::start(&a).unwrap();
    assert!(matches!(s.receive("garbage", &a), Err(SyncError::Protocol(_))));
    let err = encode(&HubFrame::fatal(ErrorCode::Unauthorized, "no token"));
    assert!(matches!(s.receive(&err, &a), Err(SyncError::Hub { code: ErrorCode::Unauthorized, .. })));
    let ack = encode(&HubFrame::Ack { batch: 9, seqs: vec![], waiting: vec![], position: None });
    assert!(matches!(s.receive(&ack, &a), Err(SyncError::Protocol(_))));
}

/// Every document of a bootstrap, from a `hello` asking for readings or not.
fn bootstrap_docs(hub: &Replica, views: bool) -> Vec<heph_engine::sync::frame::WireDoc> {
    let hello = ClientFrame::Hello {
        version: heph_engine::sync::frame::PROTOCOL_VERSION,
        origin: "browser".into(),
        cursor: 0,
        bootstrap: true,
        views,
        known: None,
    };
    let mut session = HubSession::new().with_frame_budget(32 * 1024);
    let step = session.receive(&encode(&hello), hub);
    assert!(!step.close);
    let mut docs = Vec::new();
    while let Some(frame) = session.catch_up(hub).unwrap() {
        if let HubFrame::Snapshot { docs: d, .. } = frame {
            docs.extend(d);
        }
    }
    docs
}

#[test]
fn a_browser_bootstrap_carries_the_hubs_reading_of_exactly_the_bytes_sent() {
    let mut hub = Replica::in_memory().unwrap();
    hub.set_hub_mode(16, usize::MAX);
    let a = Replica::in_memory().unwrap();
    let ids: Vec<NodeId> = (0..300).map(|i| task(&a, &format!("t{i}"))).collect();
    a.edit(ids[7], &[Edit::AddTag("x".into()), Edit::Body("a body".into())], "m", now()).unwrap();
    for _ in 0..4 {
        connect(&a, &hub);
    }
    hub.refresh_stale(usize::MAX).unwrap();
    // A change the hub has not read yet: that document goes without.
    a.edit(ids[3], &[Edit::Title("retitled".into())], "m", now()).unwrap();
    connect(&a, &hub);

    let plain = bootstrap_docs(&hub, false);
    assert_eq!(plain.len(), 300);
    assert!(plain.iter().all(|d| d.view.is_none()), "a device asks for no readings and gets none");

    let docs = bootstrap_docs(&hub, true);
    assert_eq!(
        docs.iter().map(|d| (d.doc, &d.bytes)).collect::<Vec<_>>(),
        plain.iter().map(|d| (d.doc, &d.bytes)).collect::<Vec<_>>()
    );
    for d in &docs {
        if let Some(view) = &d.view {
            let doc = heph_engine::NodeDoc::load(&d.bytes.0, &automerge::ActorId::random()).unwrap();
            assert_eq!(Some(view), heph_engine::sync::frame::DocView::read(&doc, d.doc).as_ref());
        }
    }
    let unread: Vec<NodeId> = docs.iter().filter(|d| d.view.is_none()).map(|d| d.doc).collect();
    assert_eq!(unread, vec![ids[3]]);
    // Reading a node never takes an out-of-date reading.
    assert_eq!(hub.get(ids[3]).unwrap().title, "retitled");
    assert_eq!(hub.export().unwrap().iter().find(|n| n.id == ids[3]).unwrap().title, "retitled");
    let seven = docs.iter().find(|d| d.doc == ids[7]).and_then(|d| d.view.clone()).unwrap();
    assert_eq!((seven.node.body.as_str(), seven.node.tags.len()), ("a body", 1));

    hub.refresh_stale(usize::MAX).unwrap();
    let docs = bootstrap_docs(&hub, true);
    let three = docs.iter().find(|d| d.doc == ids[3]).and_then(|d| d.view.clone()).unwrap();
    assert_eq!(three.node.title, "retitled");
}

#[test]
fn a_hub_store_without_readings_gets_them_in_the_background() {
    // Written by a build that kept no readings: the table is dropped.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let store = Replica::open(&path).unwrap();
    for i in 0..50 {
        task(&store, &format!("t{i}"));
    }
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_table(redb::TableDefinition::<[u8; 16], &[u8]>::new("views")).unwrap());
    txn.commit().unwrap();
    drop(db);
    let mut store = Replica::open(&path).unwrap();
    store.set_hub_mode(8, usize::MAX);
    assert!(store.docs_after_with_views(None, usize::MAX).unwrap().iter().all(|d| d.view.is_none()));
    assert_eq!(store.stale_without_views().unwrap(), 50);
    store.refresh_stale(usize::MAX).unwrap();
    assert!(store.docs_after_with_views(None, usize::MAX).unwrap().iter().all(|d| d.view.is_some()));
    assert_eq!(store.stale_without_views().unwrap(), 0, "nothing left to read");
}

/// Letters that do not compress: a long body stored at about its size.
fn noise(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + u8::try_from(x % 26).unwrap())
        })
        .collect()
}

#[test]
fn a_hubs_document_cache_stays_within_its_bytes_and_loses_nothing() {
    const CAP: usize = 256 << 10;
    let mut hub = Replica::in_memory().unwrap();
    hub.set_hub_mode(1024, CAP);
    let a = Replica::in_memory().unwrap();
    let ids: Vec<NodeId> = (0..100).map(|i| task(&a, &format!("t{i}"))).collect();
    connect(&a, &hub);
    // Written again, each document is kept loaded, until the bytes run out.
    for (i, id) in ids.iter().enumerate() {
        a.edit(*id, &[Edit::Title(format!("t{i} again"))], "m", now()).unwrap();
        connect(&a, &hub);
        let held = hub.doc_cache().unwrap();
        assert!(held.bytes <= CAP, "{held:?} after {i} documents");
    }
    let held = hub.doc_cache().unwrap();
    assert!(held.docs > 0 && held.docs <= CAP / (32 << 10), "{held:?}");

    // One document heavier than the whole cache is not kept, and does not
    // push the others out.
    let note = a.create(&Node::new(NodeId::random(), NodeKind::Note, "long".into(), now()), &[], "add").unwrap().id;
    connect(&a, &hub);
    let before = hub.doc_cache().unwrap();
    a.edit(note, &[Edit::Body(noise(200_000, 7))], "m", now()).unwrap();
    connect(&a, &hub);
    a.edit(note, &[Edit::AppendBody("more".into())], "m", now()).unwrap();
    connect(&a, &hub);
    assert_eq!(hub.doc_cache().unwrap(), before);

    // Evicted documents are read again from the store: nothing is lost.
    for (i, id) in ids.iter().enumerate() {
        a.edit(*id, &[Edit::Title(format!("t{i} third"))], "m", now()).unwrap();
    }
    a.edit(note, &[Edit::AppendBody("the end".into())], "m", now()).unwrap();
    connect(&a, &hub);
    hub.refresh_stale(usize::MAX).unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(hub.get(*id).unwrap().title, format!("t{i} third"));
    }
    assert!(hub.get(note).unwrap().body.ends_with("the end\n"));
    assert!(hub.doc_cache().unwrap().bytes <= CAP);
}

/// A hub indexes what devices push later, when its writer is idle. An
/// import on the hub (an RPC write) of a record whose id a device has
/// pushed meanwhile edits that document; it is never created again over
/// it, which would drop the device's changes from the document while its
/// log and the device both say the hub has them.
#[test]
fn an_import_on_a_hub_edits_a_pushed_document_it_has_not_indexed_yet() {
    let device = Replica::in_memory().unwrap();
    let mut hub = Replica::in_memory().unwrap();
    hub.set_hub_mode(16, usize::MAX);
    let node = Node::new(NodeId::random(), NodeKind::Task, "original".into(), now());
    device.create(&node, &[], "add").unwrap();
    device.edit(node.id, &[Edit::Title("edited on the device".into())], "edit", now()).unwrap();
    let pushed = |after: u64| {
        let batch = device.changes_after(after, usize::MAX).unwrap().into_iter().map(|c| (c.doc, c.bytes)).collect();
        hub.apply_changes(batch).unwrap()
    };
    pushed(0);
    let device_heads = device.store().read(|r| r.heads(node.id)).unwrap();

    let mut imported = node.clone();
    imported.tags.insert("imported".into());
    let report = hub.import(&[imported], |_, _| {}).unwrap();
    assert_eq!((report.added, report.updated), (0, 1), "{report:?}");
    let doc = hub.store().read(|r| r.doc(node.id)).unwrap().unwrap();
    assert!(device_heads.iter().all(|h| doc.has_change(h)), "the device's changes are in the document");
    let on_hub = hub.get(node.id).unwrap();
    assert_eq!(on_hub.title, "original", "the record's title wins, as an edit on top");
    assert!(on_hub.tags.contains("imported"));

    // The device's next edit goes in: nothing it depends on is missing.
    let before = device.last_seq().unwrap();
    device.edit(node.id, &[Edit::AddTag("later".into())], "edit", now()).unwrap();
    let later = pushed(before);
    assert_eq!((later.applied, later.waiting), (1, 0), "{later:?}");
    assert_eq!(hub.pending_stats().unwrap().count, 0);
}

/// A record for a stored document that does not read as a node (another
/// client's, or a newer heph's) neither overwrites it nor is half-applied:
/// the import is refused, naming it, and the document is as it was.
#[test]
fn an_import_over_a_document_that_does_not_read_as_a_node_changes_nothing() {
    use automerge::transaction::Transactable as _;
    let r = Replica::in_memory().unwrap();
    let id = NodeId::random();
    let mut foreign = automerge::AutoCommit::new();
    foreign.put(automerge::ROOT, "something", "else").unwrap();
    let change = foreign.get_last_local_change().unwrap().raw_bytes().to_vec();
    r.apply_changes(vec![(id, change)]).unwrap();
    assert_eq!(r.unreadable().unwrap().len(), 1);
    let before = r.raw_doc(id).unwrap();
    let other = Node::new(NodeId::random(), NodeKind::Task, "new".into(), now());
    let over = Node::new(id, NodeKind::Task, "over it".into(), now());
    let err = r.import(&[other.clone(), over], |_, _| {}).unwrap_err();
    assert!(matches!(err, heph_engine::Error::ImportOverUnreadable { .. }), "{err}");
    assert!(err.to_string().contains(&id.to_hex()), "{err}");
    assert_eq!(r.raw_doc(id).unwrap(), before, "the document is as it was");
    assert!(r.get(other.id).is_err(), "nothing of the import went in");
}
