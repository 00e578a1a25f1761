//! Old stores keep working: `fixtures/store-v1.db` was written by heph with
//! store schema 1 (tasks with an annotation, a dependency and a UDA, a
//! note with a link, a journal day, a deleted task), and
//! `fixtures/store-v1.export.json` is what that heph exported from it.

use std::path::PathBuf;

use heph_engine::{Edit, OpenError, Replica};

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store-v1.db");
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(here.join("store-v1.db"), &path).unwrap();
    (dir, path)
}

fn expected() -> Vec<serde_json::Value> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1.export.json");
    serde_json::from_str(&std::fs::read_to_string(here).unwrap()).unwrap()
}

#[test]
fn a_version_1_store_is_migrated_and_reads_exactly_as_before() {
    let (_dir, path) = fixture();
    // A read-only open cannot migrate: it says so, and a read-write open does.
    assert!(matches!(Replica::open_read_only(&path), Err(OpenError::NeedsUpgrade { found: 1, .. })));
    let replica = Replica::open(&path).unwrap();
    let exported: Vec<serde_json::Value> =
        replica.export().unwrap().iter().map(|n| serde_json::to_value(n).unwrap()).collect();
    assert_eq!(exported, expected());
    assert_eq!(replica.unreadable().unwrap(), Vec::new());
    // The migration filled the heads table: every document offers its heads.
    let heads = replica.heads_after(None, usize::MAX).unwrap();
    assert_eq!(heads.len(), exported.len());
    assert!(heads.iter().all(|(_, h)| !h.is_empty()));
    // It still takes edits, and opens read-only once migrated.
    let id = replica.resolve("924b3a").unwrap();
    replica.edit(id, &[Edit::AddTag("migrated".into())], "modify", chrono::Utc::now()).unwrap();
    drop(replica);
    let again = Replica::open_read_only(&path).unwrap();
    assert!(again.get(id).unwrap().tags.contains("migrated"));
    assert_eq!(again.get(id).unwrap().annotations.len(), 1);
}

/// Two documents' histories, each a creation and edits, by their own actors.
fn histories() -> Vec<(heph_engine::NodeId, Vec<automerge::Change>)> {
    (0..2)
        .map(|i| {
            let node = heph_engine::Node::new(
                heph_engine::NodeId::random(),
                heph_engine::NodeKind::Task,
                format!("t{i}"),
                chrono::Utc::now(),
            );
            let (mut doc, mut changes) =
                heph_engine::NodeDoc::create(&node, &automerge::ActorId::random(), "add").unwrap();
            for e in 0..3 {
                let edit = Edit::Title(format!("t{i} edit {e}"));
                changes.push(doc.edit(&[edit], "edit", chrono::Utc::now()).unwrap().unwrap());
            }
            (node.id, changes)
        })
        .collect()
}

#[test]
fn a_store_without_the_waiting_bytes_total_counts_it_from_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heph.db");
    let hists = histories();
    let raw = |id, changes: &[automerge::Change]| -> Vec<_> {
        changes.iter().map(|c| (id, c.raw_bytes().to_vec())).collect()
    };
    let size = |changes: &[automerge::Change]| changes.iter().map(|c| c.raw_bytes().len() as u64).sum::<u64>();
    // Without its creation, the rest of the first history waits.
    let (first, second) = (&hists[0], &hists[1]);
    let replica = Replica::open(&path).unwrap();
    assert_eq!(replica.apply_changes(raw(first.0, &first.1[2..])).unwrap().waiting, first.1.len() - 2);
    assert_eq!(replica.pending_stats().unwrap().bytes, size(&first.1[2..]));
    drop(replica);

    // As a store written before the total was kept.
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    let removed = txn
        .open_table(redb::TableDefinition::<&str, u64>::new("sync"))
        .unwrap()
        .remove("pending_bytes")
        .unwrap()
        .is_some();
    assert!(removed);
    txn.commit().unwrap();
    drop(db);

    let replica = Replica::open(&path).unwrap();
    assert_eq!(replica.pending_stats().unwrap().bytes, size(&first.1[2..]), "counted by a reader");
    // The next write counts it from the tables before adding to it.
    replica.apply_changes(raw(second.0, &second.1[2..])).unwrap();
    assert_eq!(replica.pending_stats().unwrap().bytes, size(&first.1[2..]) + size(&second.1[2..]));
    // And takes away what stops waiting.
    replica.apply_changes(raw(first.0, &first.1[..2])).unwrap();
    assert_eq!(replica.pending_stats().unwrap().bytes, size(&second.1[2..]));
}
