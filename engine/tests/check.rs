//! `heph check` at the store: a sound store checks clean (device and hub
//! mode, with conflicts and deferred indexes); damage written into the redb
//! file behind heph's back is found, each kind where it is, and what the
//! store can mend from itself is mended without touching anything else.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use heph_engine::{Edit, Node, NodeId, NodeKind, Problem, Replica};
use redb::{ReadableTable, TableDefinition};

const DOCS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("docs");
const CHANGES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("changes");
const LOG: TableDefinition<u64, [u8; 49]> = TableDefinition::new("log");
const INDEX: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("index");
const VIEWS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("views");

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

fn create(r: &Replica, kind: NodeKind, title: &str, edits: &[Edit]) -> NodeId {
    r.create(&Node::new(NodeId::random(), kind, title.into(), t0()), edits, "add").unwrap().id
}

/// Sends every change `from` logged to `to`.
fn exchange(from: &Replica, to: &Replica) {
    let changes = from.changes_after(0, usize::MAX).unwrap().into_iter().map(|c| (c.doc, c.bytes)).collect();
    to.apply_changes(changes).unwrap();
}

/// A store with tasks, notes with links and bodies, a journal day, a
/// deleted node and a conflict that came from another device.
fn filled(r: &Replica) -> Vec<NodeId> {
    let other = Replica::in_memory().unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let kind = if i % 3 == 0 { NodeKind::Note } else { NodeKind::Task };
        let mut edits = vec![Edit::Body(format!("line {i}\n").repeat(i + 1)), Edit::AddTag(format!("t{}", i % 4))];
        if let Some(prev) = ids.last() {
            edits.push(Edit::Link(*prev));
        }
        ids.push(create(r, kind, &format!("node {i}"), &edits));
    }
    r.edit(ids[5], &[Edit::Deleted(true)], "delete", t0()).unwrap();
    r.journal(t0().date_naive()).unwrap();
    exchange(r, &other);
    r.edit(ids[7], &[Edit::Title("mine".into())], "m", t0() + Duration::seconds(1)).unwrap();
    other.edit(ids[7], &[Edit::Title("theirs".into())], "m", t0() + Duration::seconds(2)).unwrap();
    exchange(&other, r);
    assert_eq!(r.conflicts_of(ids[7]).unwrap().len(), 1, "a conflict to check");
    ids
}

#[test]
fn a_sound_store_checks_clean_on_a_device_and_on_a_hub() {
    let dir = tempfile::tempdir().unwrap();
    let device = Replica::open(&dir.path().join("device.db")).unwrap();
    let ids = filled(&device);
    // A record carrying fields its document cannot hold (`show --json` of
    // a node another client wrote), imported: its reading holds none.
    let mut foreign = Node::new(NodeId::random(), NodeKind::Note, "imported".into(), t0());
    foreign.extra.insert("colour".into(), serde_json::json!("blue"));
    device.import(&[foreign.clone()], |_, _| {}).unwrap();
    assert!(device.get(foreign.id).unwrap().extra.is_empty());
    let report = device.check(|_, _| {}).unwrap();
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.documents, ids.len() as u64 + 2, "the nodes, the imported one and the journal day");
    assert_eq!(report.log, device.last_seq().unwrap());
    assert_eq!(report.changes, report.log, "every logged change is stored once");

    // A hub that received it all and has not indexed it yet: behind by design.
    let mut hub = Replica::open(&dir.path().join("hub.db")).unwrap();
    hub.set_hub_mode(8, usize::MAX);
    exchange(&device, &hub);
    assert!(hub.stale_count().unwrap() > 0);
    assert_eq!(hub.check(|_, _| {}).unwrap().problems, vec![]);
    hub.refresh_stale(usize::MAX).unwrap();
    let mut seen = Vec::new();
    let report = hub.check(|done, all| seen.push((done, all))).unwrap();
    assert_eq!(report.problems, vec![]);
    assert_eq!(seen.last(), Some(&(report.documents, report.documents)), "progress ends at the whole");
}

/// Rewrites rows of the closed store at `path` with `f`.
fn tamper(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    f(&txn);
    txn.commit().unwrap();
}

fn kinds(problems: &[Problem]) -> BTreeSet<String> {
    problems
        .iter()
        .map(|p| {
            let json = serde_json::to_value(p).unwrap();
            format!("{} {}", json["kind"].as_str().unwrap(), p.node().map(|id| id.to_hex()).unwrap_or_default())
        })
        .collect()
}

#[test]
fn damage_behind_hephs_back_is_found_and_what_the_store_holds_is_mended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heph.db");
    let r = Replica::open(&path).unwrap();
    let ids = filled(&r);
    let (unindexed, forged, rolled_back, damaged, orphan) = (ids[1], ids[2], ids[3], ids[4], NodeId::random());
    // The document of `rolled_back` before its last write.
    let older = r.raw_doc(rolled_back).unwrap().unwrap();
    r.edit(rolled_back, &[Edit::Title("the last write".into())], "m", t0()).unwrap();
    let damaged_change = r.changes_after(0, usize::MAX).unwrap().into_iter().find(|c| c.doc == ids[9]).unwrap();
    drop(r);

    tamper(&path, |txn| {
        let mut index = txn.open_table(INDEX).unwrap();
        index.remove(unindexed.as_bytes()).unwrap();
        let row = index.get(ids[0].as_bytes()).unwrap().unwrap().value().to_vec();
        index.insert(orphan.as_bytes(), row.as_slice()).unwrap();
        drop(index);

        let mut views = txn.open_table(VIEWS).unwrap();
        let mut row = views.get(forged.as_bytes()).unwrap().unwrap().value().to_vec();
        let at = row.windows(6).position(|w| w == b"node 2").expect("the title in the reading");
        row[at..at + 6].copy_from_slice(b"FORGED");
        views.insert(forged.as_bytes(), row.as_slice()).unwrap();
        drop(views);

        let mut docs = txn.open_table(DOCS).unwrap();
        docs.insert(rolled_back.as_bytes(), older.as_slice()).unwrap();
        let mut bytes = docs.get(damaged.as_bytes()).unwrap().unwrap().value().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        docs.insert(damaged.as_bytes(), bytes.as_slice()).unwrap();
        drop(docs);

        let mut changes = txn.open_table(CHANGES).unwrap();
        let mut bytes = changes.get(damaged_change.hash.0).unwrap().unwrap().value().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        changes.insert(damaged_change.hash.0, bytes.as_slice()).unwrap();
    });

    let r = Replica::open(&path).unwrap();
    let report = r.check(|_, _| {}).unwrap();
    let hex = |id: NodeId| id.to_hex();
    let expected: BTreeSet<String> = [
        format!("index_missing {}", hex(unindexed)),
        format!("index_orphan {}", hex(orphan)),
        format!("reading_wrong {}", hex(forged)),
        format!("heads_differ {}", hex(rolled_back)),
        format!("change_not_in_document {}", hex(rolled_back)),
        format!("document_damaged {}", hex(damaged)),
        "change_damaged ".to_string(),
    ]
    .into();
    assert_eq!(kinds(&report.problems), expected, "{:#?}", report.problems);
    // What a reader sees before the repair: the forged reading; the
    // document that lost a write.
    assert_eq!(r.get(forged).unwrap().title, "FORGED");
    let stored_title =
        |r: &Replica| r.store().read(|s| s.doc(rolled_back)).unwrap().unwrap().materialise().unwrap().title;
    assert_ne!(stored_title(&r), "the last write");

    let last_seq = r.last_seq().unwrap();
    let (mended, restored) = r.repair(&report).unwrap();
    assert_eq!((mended, restored), (3, 1));
    assert_eq!(r.last_seq().unwrap(), last_seq, "a repair logs nothing new");
    let after = r.check(|_, _| {}).unwrap();
    let left: BTreeSet<String> = [
        format!("document_damaged {}", hex(damaged)),
        "change_damaged ".to_string(),
        format!("index_orphan {}", hex(orphan)),
    ]
    .into();
    assert_eq!(kinds(&after.problems), left, "what only a backup or the hub holds is left: {:#?}", after.problems);
    assert_eq!(stored_title(&r), "the last write", "the lost write is back");
    assert_eq!(r.get(rolled_back).unwrap().title, "the last write");
    assert_eq!(r.get(forged).unwrap().title, "node 2");
    assert!(r.resolve(&hex(unindexed)).is_ok(), "listed again");
    assert!(r.resolve(&hex(orphan)).is_ok(), "a row whose document is missing is all that is left of it: kept");
}

#[test]
fn a_log_rewritten_behind_hephs_back_is_found_where_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heph.db");
    let r = Replica::open(&path).unwrap();
    filled(&r);
    let last = r.last_seq().unwrap();
    drop(r);
    // Entry 10 now names entry 11's change; entry 20's change is gone.
    tamper(&path, |txn| {
        let mut log = txn.open_table(LOG).unwrap();
        let eleven = log.get(11).unwrap().unwrap().value();
        let mut ten = log.get(10).unwrap().unwrap().value();
        ten[16..48].copy_from_slice(&eleven[16..48]);
        log.insert(10, ten).unwrap();
        let twenty = log.get(20).unwrap().unwrap().value();
        drop(log);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&twenty[16..48]);
        txn.open_table(CHANGES).unwrap().remove(hash).unwrap();
    });
    let r = Replica::open(&path).unwrap();
    let report = r.check(|_, _| {}).unwrap();
    assert_eq!(report.log, last);
    assert!(report.problems.contains(&Problem::PositionWrong { seq: 10 }), "{:#?}", report.problems);
    assert_eq!(report.problems.iter().filter(|p| matches!(p, Problem::PositionWrong { .. })).count(), 1);
    assert!(
        report.problems.iter().any(|p| matches!(p, Problem::ChangeMissing { seq: 20, .. })),
        "{:#?}",
        report.problems
    );
}
