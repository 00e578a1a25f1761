//! Changes that parse but that Automerge cannot apply: a change whose seq
//! skips one of its actor's changes, and one whose operations name an object
//! the document lacks. Automerge asserts on both; a replica (a hub's writer,
//! a device's sync) refuses them with an error and stores nothing of their
//! batch, while the batches around them are kept.

use automerge::legacy::{ObjectId, OpId};
use automerge::{ActorId, Change};
use chrono::{DateTime, TimeZone, Utc};
use heph_engine::{DocError, Edit, Error, Node, NodeDoc, NodeId, NodeKind, Replica};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// A task's creation and one edit of its title, made by one actor.
struct Task {
    id: NodeId,
    created: Vec<Change>,
    edit: Change,
}

fn task(title: &str) -> Task {
    let node = Node::new(NodeId::random(), NodeKind::Task, title.into(), now());
    let (mut doc, created) = NodeDoc::create(&node, &ActorId::random(), "add").unwrap();
    let edit = doc.edit(&[Edit::Title(format!("{title}, edited"))], "edit", now()).unwrap().unwrap();
    Task { id: node.id, created, edit }
}

/// The edit with its seq moved one past where it belongs.
fn seq_gap(t: &Task) -> Change {
    let mut e = t.edit.decode();
    e.seq += 1;
    Change::from(e)
}

/// The edit with its operations moved into an object no change made.
fn missing_object(t: &Task) -> Change {
    let mut e = t.edit.decode();
    for op in &mut e.operations {
        op.obj = ObjectId::Id(OpId(999, ActorId::random()));
    }
    Change::from(e)
}

fn raw(id: NodeId, changes: &[Change]) -> Vec<(NodeId, Vec<u8>)> {
    changes.iter().map(|c| (id, c.raw_bytes().to_vec())).collect()
}

fn replicas() -> Vec<(&'static str, Replica)> {
    let device = Replica::in_memory().unwrap();
    let mut hub = Replica::in_memory().unwrap();
    hub.set_hub_mode(64, usize::MAX);
    vec![("device", device), ("hub", hub)]
}

fn refused(r: Result<heph_engine::Applied, Error>) -> String {
    match r {
        Err(Error::Doc(DocError::Refused(why))) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_change_automerge_cannot_apply_is_refused_with_its_batch_and_nothing_is_stored() {
    for (name, r) in replicas() {
        for (what, bad) in [("seq gap", seq_gap as fn(&Task) -> Change), ("missing object", missing_object)] {
            let t = task(what);
            // In one batch with the changes it follows: the whole batch is refused.
            let mut batch = t.created.clone();
            batch.push(bad(&t));
            let why = refused(r.apply_changes(raw(t.id, &batch)));
            assert!(!why.is_empty(), "{name}, {what}");
            assert!(matches!(r.get(t.id), Err(Error::NotFound(_))), "{name}, {what}: the batch left a node");

            // After its predecessors were stored: refused, and the node is as it was.
            let before = r.last_seq().unwrap();
            r.apply_changes(raw(t.id, &t.created)).unwrap();
            refused(r.apply_changes(raw(t.id, &[bad(&t)])));
            assert_eq!(r.last_seq().unwrap(), before + t.created.len() as u64, "{name}, {what}");
            assert_eq!(r.get(t.id).unwrap().title, what, "{name}, {what}");

            // The document still takes the real edit.
            let applied = r.apply_changes(raw(t.id, std::slice::from_ref(&t.edit))).unwrap();
            assert_eq!(applied.applied, 1, "{name}, {what}");
            assert_eq!(r.get(t.id).unwrap().title, format!("{what}, edited"), "{name}, {what}");
        }
    }
}

#[test]
fn in_a_group_commit_only_the_refused_batch_is_left_out() {
    for (name, r) in replicas() {
        let (a, b, c) = (task("a"), task("b"), task("c"));
        r.apply_changes(raw(b.id, &b.created)).unwrap();
        let parse = |id: NodeId, changes: &[Change]| changes.iter().map(|ch| (id, ch.clone())).collect::<Vec<_>>();
        let results = r
            .apply_group(vec![parse(a.id, &a.created), parse(b.id, &[seq_gap(&b)]), parse(c.id, &c.created)], None)
            .unwrap();
        assert!(results[0].is_ok(), "{name}: {:?}", results[0]);
        assert!(matches!(results[1], Err(Error::Doc(DocError::Refused(_)))), "{name}: {:?}", results[1]);
        assert!(results[2].is_ok(), "{name}: {:?}", results[2]);
        assert_eq!(r.get(a.id).unwrap().title, "a");
        assert_eq!(r.get(b.id).unwrap().title, "b");
        assert_eq!(r.get(c.id).unwrap().title, "c");
    }
}

#[test]
fn a_snapshot_holding_such_a_change_is_refused_and_nothing_is_stored() {
    let t = task("snap");
    let mut bytes: Vec<u8> = t.created.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    bytes.extend_from_slice(missing_object(&t).raw_bytes());
    let device = Replica::in_memory().unwrap();
    let r = device.merge_snapshots(vec![(t.id, bytes)], Some(5), None);
    assert!(r.is_err(), "{r:?}");
    assert!(matches!(device.get(t.id), Err(Error::NotFound(_))));
    assert_eq!(device.cursors().unwrap().hub_cursor, 0);
}

#[test]
fn a_group_with_many_refused_batches_keeps_every_other_in_arrival_order() {
    for (name, r) in replicas() {
        let tasks: Vec<Task> = (0..60).map(|i| task(&format!("t{i}"))).collect();
        let before = r.last_seq().unwrap();
        // Every third batch is refused whole (a task's creation with a change
        // Automerge cannot apply); some good batches edit a task created by a
        // batch before them in the same group.
        let mut batches = Vec::new();
        let mut expected = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            let parse = |changes: &[Change]| changes.iter().map(|ch| (t.id, ch.clone())).collect::<Vec<_>>();
            match i % 3 {
                0 => {
                    let mut batch = t.created.clone();
                    batch.push(if i % 2 == 0 { seq_gap(t) } else { missing_object(t) });
                    batches.push(parse(&batch));
                }
                1 => {
                    batches.push(parse(&t.created));
                    expected.extend(t.created.iter().map(|c| (t.id, c.hash())));
                }
                _ => {
                    batches.push(parse(&t.created));
                    batches.push(parse(std::slice::from_ref(&t.edit)));
                    expected.extend(t.created.iter().map(|c| (t.id, c.hash())));
                    expected.push((t.id, t.edit.hash()));
                }
            }
        }
        let results = r.apply_group(batches, None).unwrap();
        let refusals = results.iter().filter(|r| matches!(r, Err(Error::Doc(DocError::Refused(_))))).count();
        assert_eq!(refusals, 20, "{name}");
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 60, "{name}");
        let logged: Vec<(NodeId, automerge::ChangeHash)> =
            r.changes_after(before, usize::MAX).unwrap().iter().map(|c| (c.doc, c.hash)).collect();
        assert_eq!(logged, expected, "{name}: the log holds the kept batches in the order they came");
        for (i, t) in tasks.iter().enumerate() {
            match i % 3 {
                0 => assert!(matches!(r.get(t.id), Err(Error::NotFound(_))), "{name}: t{i}"),
                1 => assert_eq!(r.get(t.id).unwrap().title, format!("t{i}"), "{name}"),
                _ => assert_eq!(r.get(t.id).unwrap().title, format!("t{i}, edited"), "{name}"),
            }
        }
    }
}

#[test]
fn edits_to_a_document_with_changes_waiting_leave_them_waiting_until_what_they_need_comes() {
    for (name, r) in replicas() {
        let t = task("shared");
        r.apply_changes(raw(t.id, &t.created)).unwrap();
        // Another device's edits, all after one of its own the hub never got.
        let (mut other, _) =
            NodeDoc::create(&Node::new(t.id, NodeKind::Task, "x".into(), now()), &ActorId::random(), "x")
                .map(|(_, c)| (NodeDoc::empty(&ActorId::random()), c))
                .unwrap();
        other.apply(t.created.clone()).unwrap();
        let missing = other.edit(&[Edit::AddTag("first".into())], "edit", now()).unwrap().unwrap();
        let later: Vec<Change> =
            (0..30).map(|i| other.edit(&[Edit::AddTag(format!("o{i}"))], "edit", now()).unwrap().unwrap()).collect();
        assert_eq!(r.apply_changes(raw(t.id, &later)).unwrap().waiting, 30, "{name}");
        // This device's edits, one push each: stored at once; the others wait on.
        let (mut here, _) = (NodeDoc::empty(&ActorId::random()), ());
        here.apply(t.created.clone()).unwrap();
        for i in 0..20 {
            let edit = here.edit(&[Edit::AddTag(format!("h{i}"))], "edit", now()).unwrap().unwrap();
            let applied = r.apply_changes(raw(t.id, &[edit])).unwrap();
            assert_eq!((applied.applied, applied.waiting), (1, 30), "{name}: edit {i}");
            assert_eq!(r.pending_stats().unwrap().count, 30, "{name}: edit {i}");
        }
        // What they wait for comes: all of them go in.
        let applied = r.apply_changes(raw(t.id, &[missing])).unwrap();
        assert_eq!((applied.applied, applied.waiting), (31, 0), "{name}");
        assert_eq!(r.pending_stats().unwrap().count, 0, "{name}");
        let tags = r.get(t.id).unwrap().tags;
        assert!(tags.contains("first") && tags.contains("o29") && tags.contains("h19"), "{name}: {tags:?}");
        assert_eq!(tags.len(), 51, "{name}: {tags:?}");
    }
}
