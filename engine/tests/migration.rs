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
