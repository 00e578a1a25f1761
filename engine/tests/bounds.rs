//! Bounds that keep sync from getting stuck or losing data: frames cut by
//! bytes both ways, a change too large to ever sync refused when written,
//! `create` never replacing a node, and the hub's reason reaching the
//! device when it refuses something.

use chrono::{DateTime, TimeZone, Utc};
use heph_engine::limits::MAX_CHANGE_BYTES;
use heph_engine::rpc::{self, Request};
use heph_engine::sync::frame::{ErrorCode, HubFrame, MAX_FRAME_BYTES, encode};
use heph_engine::sync::hub::HubSession;
use heph_engine::sync::spoke::{SpokeSession, SyncError};
use heph_engine::{Edit, Error, Node, NodeId, NodeKind, Replica};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// Text that deflate can hardly shrink (base64 of random bytes: 6 bits of
/// every 8), so a body's size says how large its change is.
fn noise(bytes: usize) -> String {
    use base64::Engine as _;
    let mut raw = Vec::with_capacity(bytes);
    while raw.len() < bytes {
        raw.extend_from_slice(NodeId::random().as_bytes());
    }
    let mut s = base64::engine::general_purpose::STANDARD.encode(&raw);
    s.truncate(bytes);
    s
}

fn note(r: &Replica, body: String) -> Result<Node, Error> {
    let mut node = Node::new(NodeId::random(), NodeKind::Note, "long".into(), now());
    node.body = body;
    r.create(&node, &[], "note")
}

/// Runs one session between `device` and `hub` until both are quiet,
/// asserting that every frame either side sends fits the shared limit.
/// Returns how many frames went each way.
fn sync_checked(device: &Replica, hub: &Replica) -> (usize, usize) {
    let mut at_hub = HubSession::new();
    let (mut session, hello) = SpokeSession::start(device).unwrap();
    let mut to_hub = vec![encode(&hello)];
    let (mut up, mut down) = (0, 0);
    while !to_hub.is_empty() {
        let mut to_device = Vec::new();
        for text in to_hub.drain(..) {
            assert!(text.len() <= MAX_FRAME_BYTES, "a device frame of {} bytes", text.len());
            up += 1;
            let step = at_hub.receive(&text, hub);
            assert!(!step.close, "{:?}", step.replies);
            to_device.extend(step.replies.iter().map(encode));
        }
        while let Some(frame) = at_hub.catch_up(hub).unwrap() {
            to_device.push(encode(&frame));
        }
        for text in to_device {
            assert!(text.len() <= MAX_FRAME_BYTES, "a hub frame of {} bytes", text.len());
            down += 1;
            to_hub.extend(session.receive(&text, device).unwrap().send.iter().map(encode));
        }
    }
    assert!(session.is_idle(device).unwrap());
    (up, down)
}

#[test]
fn pushes_catch_up_and_bootstrap_of_long_notes_are_cut_by_bytes() {
    let (a, hub) = (Replica::in_memory().unwrap(), Replica::in_memory().unwrap());
    // 48 notes of 64 KB: 3 MB of text, several frames of about 1 MiB each way.
    let ids: Vec<NodeId> = (0..48).map(|_| note(&a, noise(64 * 1024)).unwrap().id).collect();
    let (up, _) = sync_checked(&a, &hub);
    assert!(up >= 3, "hello and the push took {up} frames");
    assert_eq!(hub.export().unwrap(), a.export().unwrap());
    // A device bootstrapping.
    let c = Replica::in_memory().unwrap();
    let (_, down) = sync_checked(&c, &hub);
    assert!(down >= 3, "welcome and the bootstrap took {down} frames");
    for id in &ids {
        assert_eq!(c.get(*id).unwrap().body, a.get(*id).unwrap().body);
    }
    // A device that synced before the notes: its catch-up is the change stream.
    let d = Replica::in_memory().unwrap();
    let early = Replica::in_memory().unwrap();
    note(&early, "first".into()).unwrap();
    sync_checked(&early, &d);
    let (_, down) = sync_checked(&d, &hub);
    assert!(down > 1);
    assert_eq!(d.export().unwrap().len(), ids.len() + 1);
    for id in &ids {
        assert_eq!(d.get(*id).unwrap().body, a.get(*id).unwrap().body);
    }
}

#[test]
fn a_change_too_large_to_sync_is_refused_when_written_and_nothing_is_stored() {
    let r = Replica::in_memory().unwrap();
    // A title is one operation however long, so this is quick to build; a
    // body as large is refused the same way. Base64 text deflates to about
    // 3/4 of its size: this is over the limit.
    let huge = noise(MAX_CHANGE_BYTES / 3 * 5);
    let mut node = Node::new(NodeId::random(), NodeKind::Note, huge.clone(), now());
    node.body = "a body".into();
    let err = r.create(&node, &[], "note").unwrap_err();
    assert!(matches!(err, Error::ChangeTooLarge { limit, .. } if limit == MAX_CHANGE_BYTES), "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    assert_eq!(r.last_seq().unwrap(), 0);
    assert!(r.export().unwrap().is_empty());
    // The same as an edit of an existing note.
    let n = note(&r, "short".into()).unwrap();
    let before = r.last_seq().unwrap();
    let err = r.edit(n.id, &[Edit::Title(huge.clone())], "edit", now()).unwrap_err();
    assert!(matches!(err, Error::ChangeTooLarge { .. }), "{err}");
    assert_eq!(r.last_seq().unwrap(), before);
    assert_eq!(r.get(n.id).unwrap().title, "long");

    // And in an import, new node or existing: nothing of the file is stored.
    let small = Node::new(NodeId::random(), NodeKind::Note, "small".into(), now());
    let big = Node::new(NodeId::random(), NodeKind::Note, huge.clone(), now());
    let before = r.last_seq().unwrap();
    let err = r.import(&[small.clone(), big], |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::ImportTooLarge { limit, .. } if limit == MAX_CHANGE_BYTES), "{err}");
    assert!(err.to_string().contains("could never sync"), "{err}");
    let mut grown = r.get(n.id).unwrap();
    grown.title = huge;
    let err = r.import(&[small, grown], |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::ImportTooLarge { .. }), "{err}");
    assert_eq!(r.last_seq().unwrap(), before);
    assert_eq!(r.export().unwrap().len(), 1);
}

#[test]
fn text_too_large_for_one_change_is_refused_before_the_change_is_built() {
    let r = Replica::in_memory().unwrap();
    let body = "a".repeat(MAX_CHANGE_BYTES + 1);
    // The size named is the text's own: the change was never built (built,
    // it would be larger still).
    let err = note(&r, body.clone()).unwrap_err();
    assert!(matches!(err, Error::ChangeTooLarge { size, .. } if size == "long".len() + body.len()), "{err}");
    let n = note(&r, noise(MAX_CHANGE_BYTES / 2)).unwrap();
    let before = r.last_seq().unwrap();
    let err = r.edit(n.id, &[Edit::AppendBody(body.clone())], "append", now()).unwrap_err();
    assert!(matches!(err, Error::ChangeTooLarge { size, .. } if size == body.len()), "{err}");
    let mut big = Node::new(NodeId::random(), NodeKind::Note, "big".into(), now());
    big.body.clone_from(&body);
    let err = r.import(&[big], |_, _| {}).unwrap_err();
    assert!(matches!(err, Error::ImportTooLarge { size, .. } if size == "big".len() + body.len()), "{err}");
    assert_eq!(r.last_seq().unwrap(), before);
    assert_eq!(r.export().unwrap().len(), 1);

    // What one change carries is counted, not what the body comes to: an
    // append under the limit to a long body is written.
    let more = noise(MAX_CHANGE_BYTES * 2 / 3);
    let grown = r.edit(n.id, &[Edit::AppendBody(more.clone())], "append", now()).unwrap();
    assert!(grown.body.len() > MAX_CHANGE_BYTES && grown.body.ends_with(&format!("{more}\n")));
}

/// A change putting one letter `len` times: it deflates to almost nothing.
fn compressed_change(len: usize) -> Vec<u8> {
    use automerge::transaction::Transactable as _;
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "body", "a".repeat(len)).unwrap();
    doc.get_last_local_change().unwrap().clone().bytes().into_owned()
}

#[test]
fn a_batch_of_compressed_changes_is_bounded_by_what_it_inflates_to() {
    let limit = heph_engine::limits::MAX_INFLATED_BYTES;
    let each = MAX_CHANGE_BYTES - 1024;
    let fit = limit / (each + 1024);
    let batch: Vec<(NodeId, Vec<u8>)> = (0..=fit).map(|_| (NodeId::random(), compressed_change(each))).collect();
    let compressed: usize = batch.iter().map(|(_, b)| b.len()).sum();
    assert!(compressed < MAX_FRAME_BYTES / 10, "the batch fits one frame with room to spare: {compressed} bytes");
    // As many as fit under the limit inflated are accepted...
    let parsed = heph_engine::replica::parse_changes(batch[..fit].to_vec()).unwrap();
    assert_eq!(parsed.len(), fit);
    // ...one more and the batch is refused whole, naming the limit.
    let last = batch[fit].0;
    let err = heph_engine::replica::parse_changes(batch).unwrap_err();
    assert!(matches!(&err, Error::InvalidChange { doc, .. } if *doc == last), "{err}");
    assert!(err.to_string().contains(&format!("inflates past {limit} bytes")), "{err}");
}

#[test]
fn create_on_an_existing_id_is_an_error_and_changes_nothing() {
    let r = Replica::in_memory().unwrap();
    let first = note(&r, "kept".into()).unwrap();
    let mut again = first.clone();
    again.title = "replacement".into();
    again.body = "lost?".into();
    assert!(matches!(r.create(&again, &[], "note"), Err(Error::Exists(id)) if id == first.id));
    let request = Request::Create { draft: again, edits: vec![], message: "note".into() };
    let err = rpc::dispatch(&r, request).unwrap_err();
    assert_eq!(err.code, rpc::code::EXISTS);
    assert_eq!(r.get(first.id).unwrap(), first);
}

#[test]
fn the_hubs_reason_reaches_the_device() {
    let r = Replica::in_memory().unwrap();
    let (mut session, _) = SpokeSession::start(&r).unwrap();
    let frame = encode(&HubFrame::fatal(ErrorCode::QuotaExceeded, "100 received changes already wait"));
    let err = session.receive(&frame, &r).unwrap_err();
    assert!(matches!(err, SyncError::Hub { code: ErrorCode::QuotaExceeded, .. }));
    let shown = err.to_string();
    assert!(shown.contains("quota_exceeded") && shown.contains("100 received changes already wait"), "{shown}");
}

/// `hello.origin` is a device id, kept for logs: one of megabytes is a bad
/// frame, refused before anything holds on to it.
#[test]
fn a_hello_with_an_origin_past_its_bound_is_refused() {
    let hub = Replica::in_memory().unwrap();
    let hello = |origin: &str| format!("{{\"type\":\"hello\",\"version\":3,\"origin\":\"{origin}\",\"cursor\":0}}");
    let step = HubSession::new().receive(&hello(&"é".repeat(40)), &hub);
    assert!(step.close, "{:?}", step.replies);
    let refusal = encode(&step.replies[0]);
    assert!(refusal.contains("bad_frame") && refusal.contains("origin is longer than 64 bytes"), "{refusal}");
    let step = HubSession::new().receive(&hello(&"ab".repeat(16)), &hub);
    assert!(!step.close, "a device id is taken: {:?}", step.replies);
}
