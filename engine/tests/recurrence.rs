//! Recurrence across devices: two replicas that make the same occurrences
//! offline end, after exchanging their changes, with one document per
//! occurrence, and every other write made on either still there.

use chrono::{DateTime, Duration, TimeZone, Utc};
use heph_engine::recur::{self, instance_id};
use heph_engine::{Clock, Edit, Filter, Node, NodeId, NodeKind, Replica, Status};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// Sends every change `from` holds to `to`.
fn exchange(from: &Replica, to: &Replica) {
    let changes: Vec<(NodeId, Vec<u8>)> =
        from.changes_after(0, usize::MAX).unwrap().into_iter().map(|c| (c.doc, c.bytes)).collect();
    to.apply_changes(changes).unwrap();
}

fn task(r: &Replica, title: &str, edits: &[Edit]) -> Node {
    let draft = Node::new(NodeId::random(), NodeKind::Task, title.into(), now() - Duration::days(30));
    r.create(&draft, edits, "add").unwrap()
}

#[test]
fn two_offline_devices_make_one_document_per_occurrence() {
    let a = Replica::in_memory().unwrap();
    let b = Replica::in_memory().unwrap();
    let template = task(
        &a,
        "Water the plants",
        &[
            Edit::Due(Some(now() - Duration::days(20) - Duration::hours(3))),
            Edit::Uda(recur::RECUR.into(), Some("weekly".into())),
            Edit::AddTag("home".into()),
        ],
    );
    let shared = task(&a, "Shared task", &[]);
    exchange(&a, &b);

    // Offline: both make the occurrences (at slightly different moments),
    // and each makes other writes.
    let clock = Clock::in_zone(now(), "Europe/Berlin").unwrap();
    let made_a = a.generate_recurrences(&clock, 1).unwrap();
    let made_b = b.generate_recurrences(&clock.at(now() + Duration::minutes(5)), 1).unwrap();
    assert_eq!(made_a.made.len(), 4, "{made_a:?}");
    assert_eq!(made_a.made, made_b.made, "the same occurrences on both");
    a.edit(shared.id, &[Edit::AddTag("from-a".into())], "tag", now()).unwrap();
    b.edit(shared.id, &[Edit::Priority(Some(heph_engine::Priority::H))], "pri", now()).unwrap();
    let note_b =
        b.create(&Node::new(NodeId::random(), NodeKind::Note, "Only on B".into(), now()), &[], "note").unwrap();
    let first = instance_id(template.id, 0);
    a.edit(first, &[Edit::Status(Status::Done)], "done", now()).unwrap();

    exchange(&a, &b);
    exchange(&b, &a);

    for r in [&a, &b] {
        let nodes = r.export().unwrap();
        let instances: Vec<&Node> = nodes.iter().filter(|n| recur::parent_of(n) == Some(template.id)).collect();
        assert_eq!(instances.len(), 4, "one document per occurrence");
        for (i, n) in instances.iter().enumerate() {
            let index = recur::index_of(n).unwrap();
            assert_eq!(n.id, instance_id(template.id, index), "instance {i}");
            // One creation entry: both devices made byte-identical changes.
            let history = r.history(n.id).unwrap();
            assert_eq!(history.iter().filter(|h| h.message == "recur").count(), 1, "{history:?}");
            assert!(r.conflicts_of(n.id).unwrap().is_empty());
            assert!(n.tags.contains("home"));
        }
        assert!(r.conflicts_of(template.id).unwrap().is_empty(), "the same mask on both is no conflict");
        // Every other write is still there.
        let shared_now = r.get(shared.id).unwrap();
        assert!(shared_now.tags.contains("from-a"));
        assert_eq!(shared_now.priority, Some(heph_engine::Priority::H));
        assert_eq!(r.get(note_b.id).unwrap().title, "Only on B");
        assert_eq!(r.get(first).unwrap().status, Some(Status::Done));
    }
    assert_eq!(a.export().unwrap(), b.export().unwrap());

    // The next pass on either mends the mask from the instances (the first is done) and makes nothing new.
    let again = a.generate_recurrences(&clock, 1).unwrap();
    assert!(again.made.is_empty());
    assert_eq!(a.get(template.id).unwrap().uda.get(recur::MASK).map(String::as_str), Some("+---"));
    let listed = a.list(&Filter::everything(), now(), None).unwrap();
    assert_eq!(listed.len(), 4 + 1 + 2, "template, shared task, note and the four instances");
}

#[test]
fn a_pass_with_nothing_to_do_writes_nothing() {
    let r = Replica::in_memory().unwrap();
    task(
        &r,
        "Daily",
        &[Edit::Due(Some(now() - Duration::hours(30))), Edit::Uda(recur::RECUR.into(), Some("daily".into()))],
    );
    let clock = Clock::in_zone(now(), "UTC").unwrap();
    assert!(r.recurrences_due(&clock, 1).unwrap());
    assert_eq!(r.generate_recurrences(&clock, 1).unwrap().made.len(), 3);
    let seq = r.last_seq().unwrap();
    assert!(!r.recurrences_due(&clock, 1).unwrap());
    assert!(r.generate_recurrences(&clock, 1).unwrap().made.is_empty());
    assert_eq!(r.last_seq().unwrap(), seq);
}
