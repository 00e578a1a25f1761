//! Convergence: random edits on several in-memory replicas, exchanged as
//! change sets in random subsets and random order (dependencies often
//! arriving after the changes that need them), end in identical materialised
//! state — the same nodes, indexes, search results and conflicts.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use heph_engine::{Annotation, Edit, Filter, Node, NodeId, NodeKind, Priority, Replica, Status};
use proptest::prelude::*;

const REPLICAS: usize = 3;

/// One step of a scenario; the bytes pick replicas, nodes and values.
#[derive(Clone, Debug)]
enum Step {
    Create { replica: u8, kind: u8 },
    Edit { replica: u8, node: u8, edit: u8, value: u8 },
    Journal { replica: u8, day: u8, text: u8 },
    Exchange { from: u8, to: u8, mask: u8, reverse: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (any::<u8>(), any::<u8>()).prop_map(|(replica, kind)| Step::Create { replica, kind }),
        6 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(replica, node, edit, value)| Step::Edit { replica, node, edit, value }),
        1 => (any::<u8>(), 0u8..2, any::<u8>()).prop_map(|(replica, day, text)| Step::Journal { replica, day, text }),
        3 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(from, to, mask, reverse)| Step::Exchange { from, to, mask, reverse }),
    ]
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

const WORDS: &[&str] = &["alpha", "beta", "gamma", "delta", "épsilon", "zeta ☕"];

fn edit_for(kind: u8, value: u8, now: DateTime<Utc>, other: Option<NodeId>) -> Edit {
    let word = WORDS[usize::from(value) % WORDS.len()].to_string();
    match kind % 14 {
        0 => Edit::Title(format!("title {word}")),
        1 => Edit::AddTag(word),
        2 => Edit::RemoveTag(word),
        3 => Edit::Status([Status::Pending, Status::Active, Status::Done, Status::Cancelled][usize::from(value) % 4]),
        4 => Edit::Priority([None, Some(Priority::H), Some(Priority::M), Some(Priority::L)][usize::from(value) % 4]),
        5 => Edit::Due((!value.is_multiple_of(3)).then(|| now + Duration::days(i64::from(value % 20)))),
        6 => Edit::AppendBody(format!("line {word}")),
        7 => Edit::Body(format!("body rewritten with {word}\nand more")),
        8 => Edit::Annotate(Annotation { entry: now, description: word }),
        9 => Edit::Deleted(value.is_multiple_of(2)),
        10 => Edit::Project((!value.is_multiple_of(3)).then(|| format!("proj.{word}"))),
        11 => other.map_or(Edit::AddTag("lonely".into()), Edit::Link),
        12 => other.map_or(Edit::RemoveTag("lonely".into()), Edit::Unlink),
        _ => Edit::Uda("estimate".into(), (value.is_multiple_of(2)).then(|| format!("{value}h"))),
    }
}

/// Sends `from`'s whole log to `to`, keeping only entries picked by `mask`
/// and optionally in reverse order.
fn exchange(from: &Replica, to: &Replica, mask: u8, reverse: bool) {
    let mut changes: Vec<(NodeId, Vec<u8>)> =
        from.changes_after(0, usize::MAX).unwrap().into_iter().map(|c| (c.doc, c.bytes)).collect();
    if reverse {
        changes.reverse();
    }
    let picked: Vec<_> =
        changes.into_iter().enumerate().filter(|(i, _)| (mask >> (i % 8)) & 1 == 1).map(|(_, c)| c).collect();
    // Deliver in a few batches, as a network would.
    for batch in picked.chunks(3) {
        to.apply_changes(batch.to_vec()).unwrap();
    }
}

fn state(r: &Replica) -> (Vec<Node>, Vec<heph_engine::Conflict>, Vec<String>, usize) {
    let list: Vec<String> = r
        .list(&Filter::everything(), t0(), None)
        .unwrap()
        .into_iter()
        .map(|(u, row)| format!("{u} {} {}", row.id, row.title))
        .collect();
    let found = r.search("alpha", &Filter::everything(), t0()).unwrap().len();
    (r.export().unwrap(), r.conflicts().unwrap(), list, found)
}

fn run(steps: &[Step]) {
    let replicas: Vec<Replica> = (0..REPLICAS).map(|_| Replica::in_memory().unwrap()).collect();
    let mut now = t0();
    for step in steps {
        now += Duration::seconds(7);
        match *step {
            Step::Create { replica, kind } => {
                let r = &replicas[usize::from(replica) % REPLICAS];
                let kind = [NodeKind::Task, NodeKind::Task, NodeKind::Note][usize::from(kind) % 3];
                r.create(&Node::new(NodeId::random(), kind, format!("node {}", kind), now), &[], "add").unwrap();
            }
            Step::Edit { replica, node, edit, value } => {
                let r = &replicas[usize::from(replica) % REPLICAS];
                let ids: Vec<NodeId> = r.export().unwrap().iter().map(|n| n.id).collect();
                if ids.is_empty() {
                    continue;
                }
                let target = ids[usize::from(node) % ids.len()];
                let other = ids.get(usize::from(value) % ids.len()).copied().filter(|o| *o != target);
                r.edit(target, &[edit_for(edit, value, now, other)], "edit", now).unwrap();
            }
            Step::Journal { replica, day, text } => {
                let r = &replicas[usize::from(replica) % REPLICAS];
                let day = NaiveDate::from_ymd_opt(2026, 11, 24 + u32::from(day)).unwrap();
                let journal = r.journal(day).unwrap();
                let line = WORDS[usize::from(text) % WORDS.len()].to_string();
                r.edit(journal.id, &[Edit::AppendBody(line)], "append", now).unwrap();
            }
            Step::Exchange { from, to, mask, reverse } => {
                let (from, to) = (usize::from(from) % REPLICAS, usize::from(to) % REPLICAS);
                if from != to {
                    exchange(&replicas[from], &replicas[to], mask, reverse);
                }
            }
        }
    }
    // Finally everyone hears everything, newest first (the hardest order).
    for to in 0..REPLICAS {
        for from in 0..REPLICAS {
            if from != to {
                exchange(&replicas[from], &replicas[to], 0xff, true);
            }
        }
    }
    for r in &replicas {
        readings_match_documents(r);
    }
    let first = state(&replicas[0]);
    for r in &replicas[1..] {
        let other = state(r);
        for (a, b) in first.0.iter().zip(&other.0) {
            assert_eq!(a, b, "node {} differs", a.id);
        }
        assert_eq!(first.0.len(), other.0.len(), "node counts differ");
        assert_eq!(first.1, other.1, "conflicts differ");
        assert_eq!(first.2, other.2, "listings differ");
        assert_eq!(first.3, other.3, "search differs");
    }
}

/// Every node reads (and lists its conflicts) from its stored reading as
/// its document does.
fn readings_match_documents(r: &Replica) {
    let nodes = r.export().unwrap();
    for node in &nodes {
        let doc = r.store().read(|s| s.doc(node.id)).unwrap().unwrap();
        let read = doc.materialise_as(node.id).unwrap();
        assert_eq!(node, &read, "export of {}", node.id);
        assert_eq!(r.get(node.id).unwrap(), read, "get of {}", node.id);
        assert_eq!(r.conflicts_of(node.id).unwrap(), doc.conflicts(node.id).unwrap(), "conflicts of {}", node.id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(steps in prop::collection::vec(step(), 1..80)) {
        run(&steps);
    }
}

#[test]
fn concurrent_offline_journals_share_one_document() {
    let a = Replica::in_memory().unwrap();
    let b = Replica::in_memory().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let ja = a.journal(day).unwrap();
    let jb = b.journal(day).unwrap();
    assert_eq!(ja.id, jb.id);
    a.edit(ja.id, &[Edit::AppendBody("from a".into())], "append", t0()).unwrap();
    b.edit(jb.id, &[Edit::AppendBody("from b".into())], "append", t0()).unwrap();
    exchange(&a, &b, 0xff, false);
    exchange(&b, &a, 0xff, false);
    let body = a.get(ja.id).unwrap().body;
    assert_eq!(body, b.get(jb.id).unwrap().body);
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["from a", "from b"], "two lines, not one glued line: {body:?}");
    assert!(a.conflicts().unwrap().is_empty(), "{:?}", a.conflicts().unwrap());
}

#[test]
fn invalid_change_bytes_are_rejected_and_store_nothing() {
    let a = Replica::in_memory().unwrap();
    let node = a.create(&Node::new(NodeId::random(), NodeKind::Task, "x".into(), t0()), &[], "add").unwrap();
    let before = a.last_seq().unwrap();
    let err = a.apply_changes(vec![(node.id, vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3])]).unwrap_err();
    assert!(matches!(err, heph_engine::Error::InvalidChange { .. }), "{err}");
    assert_eq!(a.last_seq().unwrap(), before);
}
