//! The conformance suite of the storage seam: every clause of the contract
//! in `engine/src/sync/storage.rs`, written once over a [`Fixture`] and run
//! against each implementation — the redb [`Replica`] (in a file, so that
//! durability on return is checked by reopening it), the same in hub mode,
//! and [`MemoryStore`].
//!
//! Each test is a generic function; [`conformance!`] instantiates every one
//! of them per implementation (`redb::<test>`, `redb_hub::<test>` and
//! `memory::<test>`). A new
//! backend passes when it gets a fixture and a line in that macro.

use std::collections::HashMap;
use std::path::PathBuf;

use automerge::{ActorId, Change, ChangeHash};
use chrono::{DateTime, Duration, TimeZone, Utc};
use heph_engine::limits::PendingQuota;
use heph_engine::store::{Applied, LoggedChange};
use heph_engine::sync::frame::{DocView, wire_size};
use heph_engine::sync::memory::MemoryStore;
use heph_engine::sync::storage::{Batch, DeviceStore, SyncStore};
use heph_engine::{Edit, Error, Node, NodeDoc, NodeId, NodeKind, Replica};

// ---------------------------------------------------------------------------
// Fixtures: how to make, reopen and write locally to each implementation.
// ---------------------------------------------------------------------------

/// One implementation of the seam, as the suite needs it.
trait Fixture {
    type Store: DeviceStore;

    /// A new, empty store.
    fn open(&mut self) -> Self::Store;

    /// The same store after the process that had it went away: what a
    /// store keeps across that is what it made durable.
    fn reopen(&mut self, store: Self::Store) -> Self::Store;

    /// Applies `changes` to `doc` as made on this store (logged as local),
    /// in one write; returns what was logged.
    fn commit_local(store: &Self::Store, doc: NodeId, changes: Vec<Change>) -> Vec<LoggedChange>;

    /// Whether, once [`Self::settle`]d, the store has a reading of every
    /// document that reads as a node ([`SyncStore::docs_after_with_views`]).
    const VIEWS: bool;

    /// Lets the store finish work it defers (a hub's indexes and readings).
    fn settle(_store: &Self::Store) {}
}

/// The redb replica, each store in its own file; with `hub`, in hub mode
/// (documents appended to and cached between commits, indexes deferred),
/// with a cache small enough that tests evict from it: three documents
/// at most fit in its bytes.
struct Redb {
    dir: tempfile::TempDir,
    paths: HashMap<String, PathBuf>,
    hub: bool,
}

impl Redb {
    fn new(hub: bool) -> Self {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
        Self { dir: dir.expect("a temporary directory"), paths: HashMap::new(), hub }
    }

    fn opened(&self, path: &std::path::Path) -> Replica {
        let mut replica = Replica::open(path).expect("open the store");
        if self.hub {
            replica.set_hub_mode(8, 100 << 10);
        }
        replica
    }
}

impl Fixture for Redb {
    type Store = Replica;

    fn open(&mut self) -> Replica {
        let path = self.dir.path().join(format!("store-{}.redb", self.paths.len()));
        let replica = self.opened(&path);
        self.paths.insert(replica.store_id(), path);
        replica
    }

    fn reopen(&mut self, store: Replica) -> Replica {
        let path = self.paths[&store.store_id()].clone();
        drop(store);
        self.opened(&path)
    }

    fn commit_local(store: &Replica, doc: NodeId, changes: Vec<Change>) -> Vec<LoggedChange> {
        store
            .store()
            .write(|w| {
                let mut report = Applied::default();
                w.apply_remote(doc, changes, true, &mut report)?;
                Ok(report.logged)
            })
            .expect("a local commit")
    }

    const VIEWS: bool = true;

    fn settle(store: &Replica) {
        store.refresh_stale(usize::MAX).expect("refresh the indexes");
    }
}

/// The redb replica in hub mode, which reads documents it receives later.
struct RedbHub(Redb);

impl Fixture for RedbHub {
    type Store = Replica;

    fn open(&mut self) -> Replica {
        self.0.open()
    }

    fn reopen(&mut self, store: Replica) -> Replica {
        self.0.reopen(store)
    }

    fn commit_local(store: &Replica, doc: NodeId, changes: Vec<Change>) -> Vec<LoggedChange> {
        Redb::commit_local(store, doc, changes)
    }

    const VIEWS: bool = true;

    fn settle(store: &Replica) {
        Redb::settle(store);
    }
}

/// The in-memory store: nothing to reopen (it holds nothing durable, and
/// is the same store for as long as it lives).
struct Memory;

impl Fixture for Memory {
    type Store = MemoryStore;

    fn open(&mut self) -> MemoryStore {
        MemoryStore::new()
    }

    fn reopen(&mut self, store: MemoryStore) -> MemoryStore {
        store
    }

    fn commit_local(store: &MemoryStore, doc: NodeId, changes: Vec<Change>) -> Vec<LoggedChange> {
        store.commit_local(doc, changes).expect("a local commit")
    }

    const VIEWS: bool = true;
}

/// Instantiates every generic test for every implementation.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod redb {
            $(#[test]
            fn $test() {
                super::$test(super::Redb::new(false));
            })*
        }
        mod redb_hub {
            $(#[test]
            fn $test() {
                super::$test(super::RedbHub(super::Redb::new(true)));
            })*
        }
        mod memory {
            $(#[test]
            fn $test() {
                super::$test(super::Memory);
            })*
        }
    };
}

conformance!(
    an_empty_store,
    seqs_start_at_one_and_have_no_gaps,
    log_after_limit_budget_and_local_only,
    reapplying_stores_and_logs_nothing,
    a_change_twice_in_one_batch_is_stored_once_and_counted_a_duplicate,
    a_change_waits_for_its_dependencies,
    a_waiting_change_gives_way_to_one_with_its_actor_and_seq,
    waiting_changes_are_logged_in_causal_order,
    one_batch_out_of_causal_order_is_logged_in_causal_order,
    a_batch_with_an_invalid_change_leaves_no_trace,
    a_refused_batch_leaves_no_trace_of_what_it_wrote_before_the_refusal,
    the_waiting_quota_refuses_a_batch_and_nothing_else,
    the_waiting_bytes_are_bounded_and_freed_as_changes_stop_waiting,
    batches_are_applied_in_the_order_given,
    a_group_is_applied_as_its_batches_one_after_the_other,
    docs_after_returns_whole_documents_within_the_budget,
    a_reading_is_of_exactly_the_bytes_sent_with_it,
    heads_after_pages_in_id_order,
    lacking_names_what_is_not_applied,
    lacking_sees_documents_merged_from_snapshots,
    a_snapshot_that_brings_what_a_change_waits_for_releases_it,
    a_snapshot_holds_only_what_is_applied,
    changes_since_gives_what_a_peer_lacks_in_causal_order,
    begin_sync_with_a_new_hub_starts_afresh,
    restart_sync_starts_afresh_and_owes_a_reconciliation,
    set_reconcile_sets_and_clears,
    apply_from_hub_moves_the_hub_cursor_forward_only,
    a_refused_apply_from_hub_moves_nothing,
    merge_snapshots_with_and_without_upto,
    a_refused_merge_snapshots_merges_nothing,
    acknowledge_never_moves_back,
    known_moves_forward_only,
    durable_on_return,
);

// ---------------------------------------------------------------------------
// Making changes.
// ---------------------------------------------------------------------------

const ALL: usize = usize::MAX;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// The history of one node as one device made it: `changes[0]` is the
/// genesis, `changes[1]` the content, then one change per edit, each on
/// top of the one before. Ids and actors derive from the name, so hashes
/// are the same on every run.
#[derive(Clone)]
struct Hist {
    id: NodeId,
    doc: NodeDoc,
    changes: Vec<Change>,
}

impl Hist {
    fn new(name: &str, edits: usize) -> Self {
        let id = NodeId::derived(&format!("conformance/{name}"));
        let node = Node::new(id, NodeKind::Task, name.to_string(), t(0));
        let (doc, changes) = NodeDoc::create(&node, &actor(name), "add").unwrap();
        let mut h = Self { id, doc, changes };
        for i in 0..edits {
            h.edit(&format!("{name}-{i}"));
        }
        h
    }

    /// One more change on top: adds tag `tag`.
    fn edit(&mut self, tag: &str) -> Change {
        let at = t(i64::try_from(self.changes.len()).unwrap());
        let change = self.doc.edit(&[Edit::AddTag(tag.to_string())], tag, at).unwrap().expect("a change");
        self.changes.push(change.clone());
        change
    }

    /// The same history, continued from here by another device.
    fn fork(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.doc.set_actor(&actor(name));
        other
    }

    fn hash(&self, i: usize) -> ChangeHash {
        self.changes[i].hash()
    }

    fn hashes(&self) -> Vec<ChangeHash> {
        self.changes.iter().map(Change::hash).collect()
    }

    fn heads(&self) -> Vec<ChangeHash> {
        self.doc.heads()
    }

    /// Changes `range` of this history as one batch.
    fn batch(&self, range: impl std::slice::SliceIndex<[Change], Output = [Change]>) -> Batch {
        self.changes[range].iter().map(|c| (self.id, c.clone())).collect()
    }

    /// Every change as one batch.
    fn all(&self) -> Batch {
        self.batch(..)
    }
}

fn actor(name: &str) -> ActorId {
    ActorId::from(NodeId::derived(&format!("conformance/actor/{name}")).as_bytes().as_slice())
}

/// A change that parses but cannot be applied to `h`'s document: made by
/// the same actor at the same seq as `h.changes[at]`, with other content.
fn clashing(h: &Hist, at: usize) -> Change {
    let mut base = Hist { id: h.id, doc: NodeDoc::empty(&actor("nobody")), changes: Vec::new() };
    base.doc.apply(h.changes[..at].to_vec()).unwrap();
    let actor = h.changes[at].actor_id().clone();
    base.doc.set_actor(&actor);
    let change = base.edit("clash");
    assert_eq!(change.actor_id(), h.changes[at].actor_id());
    assert_eq!(change.seq(), h.changes[at].seq());
    assert_ne!(change.hash(), h.hash(at));
    change
}

/// Stores each history whole, one batch each; returns them.
fn stored(store: &impl SyncStore, hists: impl Iterator<Item = Hist>) -> Vec<Hist> {
    let hists: Vec<Hist> = hists.collect();
    for h in &hists {
        one(store, h.all());
    }
    hists
}

fn one(store: &impl SyncStore, batch: Batch) -> Applied {
    one_with(store, batch, None).expect("the batch is accepted")
}

fn one_with(store: &impl SyncStore, batch: Batch, max_pending: Option<PendingQuota>) -> Result<Applied, Error> {
    let mut out = store.apply(vec![batch], max_pending).expect("the write");
    assert_eq!(out.len(), 1, "one result per batch");
    out.remove(0)
}

/// A waiting quota of `changes`, bytes unbounded.
fn waiting_at_most(changes: u64) -> Option<PendingQuota> {
    Some(PendingQuota { changes, bytes: u64::MAX })
}

fn whole_log(store: &impl SyncStore) -> Vec<LoggedChange> {
    store.log_after(0, ALL, ALL, false).unwrap()
}

fn seqs(logged: &[LoggedChange]) -> Vec<u64> {
    logged.iter().map(|c| c.seq).collect()
}

fn hashes(logged: &[LoggedChange]) -> Vec<ChangeHash> {
    logged.iter().map(|c| c.hash).collect()
}

/// The log is causal: every change comes after those of its dependencies
/// that are logged.
fn assert_causal(logged: &[LoggedChange]) {
    let at: HashMap<ChangeHash, u64> = logged.iter().map(|c| (c.hash, c.seq)).collect();
    for c in logged {
        let change = Change::from_bytes(c.bytes.clone()).unwrap();
        for dep in change.deps() {
            if let Some(&dep_seq) = at.get(dep) {
                assert!(dep_seq < c.seq, "seq {} is logged before its dependency at seq {dep_seq}", c.seq);
            }
        }
    }
}

fn refused(result: &Result<Applied, Error>) -> bool {
    matches!(result, Err(e) if e.refuses_batch())
}

/// Every document as a peer would load it.
fn loaded_docs(store: &impl SyncStore) -> Vec<(NodeId, NodeDoc)> {
    store
        .docs_after(None, ALL)
        .unwrap()
        .into_iter()
        .map(|(id, bytes)| (id, NodeDoc::load(&bytes, &actor("reader")).expect("a document that loads")))
        .collect()
}

// ---------------------------------------------------------------------------
// The log.
// ---------------------------------------------------------------------------

fn an_empty_store<F: Fixture>(mut f: F) {
    let s = f.open();
    assert!(!s.store_id().is_empty());
    assert_eq!(s.store_id(), s.store_id(), "the id never changes");
    assert_eq!(s.head().unwrap(), 0);
    assert_eq!(s.position(0).unwrap(), None);
    assert_eq!(s.position(1).unwrap(), None);
    assert!(whole_log(&s).is_empty());
    assert!(s.docs_after(None, ALL).unwrap().is_empty());
    assert!(s.heads_after(None, ALL).unwrap().is_empty());
    assert!(s.changes_since(NodeId::derived("nothing"), &[]).unwrap().is_empty());
    assert_eq!(s.cursors().unwrap(), Default::default());
    let other = f.open();
    assert_ne!(s.store_id(), other.store_id(), "each store has its own id");
}

fn seqs_start_at_one_and_have_no_gaps<F: Fixture>(mut f: F) {
    let s = f.open();
    let id = s.store_id();
    let a = Hist::new("a", 2);
    let b = Hist::new("b", 1);

    let local = F::commit_local(&s, a.id, a.changes.clone());
    assert_eq!(seqs(&local), [1, 2, 3, 4]);
    assert_eq!(hashes(&local), a.hashes());
    assert!(local.iter().all(|c| c.local && c.doc == a.id));

    let applied = one(&s, b.all());
    assert_eq!(applied.applied, 3);
    assert_eq!(seqs(&applied.logged), [5, 6, 7]);
    assert!(applied.logged.iter().all(|c| !c.local && c.doc == b.id));
    assert_eq!(s.head().unwrap(), 7);

    let log = whole_log(&s);
    assert_eq!(seqs(&log), (1..=7).collect::<Vec<_>>());
    let mut written = local.clone();
    written.extend(applied.logged);
    assert_eq!(log, written, "the log is what the writes reported");
    let mut position = [0u8; 32];
    for c in &log {
        // Each position is the digest of the one before and the change.
        use sha2::Digest as _;
        position = sha2::Sha256::new().chain_update(position).chain_update(c.hash.0).finalize().into();
        assert_eq!(s.position(c.seq).unwrap(), Some(ChangeHash(position)));
        assert_eq!(c.position, ChangeHash(position), "a logged change carries its position");
        assert_eq!(c.hash, Change::from_bytes(c.bytes.clone()).unwrap().hash(), "the bytes are the change's");
    }
    assert_eq!(s.position(0).unwrap(), None);
    assert_eq!(s.position(8).unwrap(), None);
    assert_eq!(s.store_id(), id);
}

fn log_after_limit_budget_and_local_only<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2);
    let b = Hist::new("b", 1);
    // Local 1, 2; received 3, 4, 5; local 6, 7.
    F::commit_local(&s, a.id, a.changes[..2].to_vec());
    one(&s, b.all());
    F::commit_local(&s, a.id, a.changes[2..].to_vec());
    let log = whole_log(&s);
    assert_eq!(log.iter().map(|c| c.local).collect::<Vec<_>>(), [true, true, false, false, false, true, true]);

    assert_eq!(seqs(&s.log_after(0, 3, ALL, false).unwrap()), [1, 2, 3]);
    assert_eq!(seqs(&s.log_after(2, 2, ALL, false).unwrap()), [3, 4]);
    assert_eq!(seqs(&s.log_after(5, ALL, ALL, false).unwrap()), [6, 7]);
    assert!(s.log_after(7, ALL, ALL, false).unwrap().is_empty());
    assert!(s.log_after(100, ALL, ALL, false).unwrap().is_empty());
    assert!(s.log_after(0, 0, ALL, false).unwrap().is_empty());

    // Local only: received entries are skipped and do not count.
    assert_eq!(seqs(&s.log_after(0, ALL, ALL, true).unwrap()), [1, 2, 6, 7]);
    assert_eq!(seqs(&s.log_after(0, 3, ALL, true).unwrap()), [1, 2, 6]);
    assert_eq!(seqs(&s.log_after(2, ALL, ALL, true).unwrap()), [6, 7]);
    assert!(s.log_after(0, ALL, ALL, true).unwrap().iter().all(|c| c.local));

    // The budget: the first entry always, then no more than `budget` bytes
    // on the wire counting it.
    let size = |c: &LoggedChange| wire_size(c.bytes.len());
    assert_eq!(seqs(&s.log_after(0, ALL, 0, false).unwrap()), [1]);
    let three: usize = log[..3].iter().map(size).sum();
    assert_eq!(seqs(&s.log_after(0, ALL, three, false).unwrap()), [1, 2, 3]);
    assert_eq!(seqs(&s.log_after(0, ALL, three - 1, false).unwrap()), [1, 2]);
    assert_eq!(seqs(&s.log_after(0, 2, three, false).unwrap()), [1, 2], "the limit still holds");
    // Skipped entries cost nothing.
    let local_three = size(&log[0]) + size(&log[1]) + size(&log[5]);
    assert_eq!(seqs(&s.log_after(0, ALL, local_three, true).unwrap()), [1, 2, 6]);
    assert_eq!(seqs(&s.log_after(0, ALL, local_three - 1, true).unwrap()), [1, 2]);
}

// ---------------------------------------------------------------------------
// Idempotence and waiting.
// ---------------------------------------------------------------------------

fn reapplying_stores_and_logs_nothing<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2);
    let b = Hist::new("b", 1);
    let c = Hist::new("c", 3);

    assert_eq!(one(&s, a.all()).applied, 4);
    let again = one(&s, a.all());
    assert_eq!((again.applied, again.duplicates, again.waiting), (0, 4, 0));
    assert!(again.logged.is_empty() && again.waiting_hashes.is_empty());
    assert_eq!(s.head().unwrap(), 4);

    // Across the batches of one write.
    let out = s.apply(vec![b.all(), b.all(), a.batch(1..3)], None).unwrap();
    let out: Vec<Applied> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!((out[0].applied, out[0].duplicates), (3, 0));
    assert_eq!((out[1].applied, out[1].duplicates), (0, 3));
    assert_eq!((out[2].applied, out[2].duplicates), (0, 2));
    assert!(out[1].logged.is_empty() && out[2].logged.is_empty());
    assert_eq!(s.head().unwrap(), 7);

    // Changes made here, received back.
    F::commit_local(&s, c.id, c.changes.clone());
    let back = one(&s, c.all());
    assert_eq!((back.applied, back.duplicates), (0, 5));
    assert!(F::commit_local(&s, c.id, c.changes.clone()).is_empty());

    // A waiting change, received again: still stored once, still waiting.
    let d = Hist::new("d", 2);
    let first = one(&s, d.batch(3..));
    assert_eq!((first.applied, first.waiting), (0, 1));
    let second = one(&s, d.batch(3..));
    assert_eq!((second.applied, second.duplicates), (0, 1));
    assert_eq!(second.waiting_hashes, [d.hash(3)]);
    assert!(second.logged.is_empty());

    let head = s.head().unwrap();
    assert_eq!(head, 12);
    let log = whole_log(&s);
    let mut unique = hashes(&log);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), log.len(), "no change is logged twice");
}

fn a_change_twice_in_one_batch_is_stored_once_and_counted_a_duplicate<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 1);
    let mut batch = a.all();
    batch.insert(1, batch[0].clone());
    let applied = one(&s, batch);
    assert_eq!(hashes(&applied.logged), a.hashes(), "each change is logged once");
    assert_eq!(s.head().unwrap(), 3);
    assert_eq!((applied.applied, applied.duplicates), (3, 1), "the second copy is a duplicate");
}

fn a_change_waits_for_its_dependencies<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2); // genesis, content, e0, e1

    let e1 = one(&s, a.batch(3..));
    assert_eq!((e1.applied, e1.duplicates, e1.waiting), (0, 0, 1));
    assert_eq!(e1.waiting_hashes, [a.hash(3)]);
    assert!(e1.logged.is_empty());
    assert_eq!(s.head().unwrap(), 0, "a waiting change is not logged");
    assert!(s.heads_after(None, ALL).unwrap().is_empty(), "nothing of the document is applied");
    assert_eq!(s.lacking(&[(a.id, vec![a.hash(3)])]).unwrap(), [Some(vec![])]);

    let e0 = one(&s, a.batch(2..3));
    assert_eq!((e0.applied, e0.waiting), (0, 2));
    assert_eq!(e0.waiting_hashes, [a.hash(2)], "the incoming changes that wait");
    assert_eq!(s.head().unwrap(), 0);

    // The last missing dependencies arrive: everything is logged, in causal
    // order, in this write.
    let rest = one(&s, a.batch(..2));
    assert_eq!((rest.applied, rest.waiting, rest.duplicates), (4, 0, 0));
    assert!(rest.waiting_hashes.is_empty());
    let mut logged = hashes(&rest.logged);
    logged.sort();
    let mut expected = a.hashes();
    expected.sort();
    assert_eq!(logged, expected);
    assert_eq!(seqs(&rest.logged), [1, 2, 3, 4]);
    assert_eq!(whole_log(&s), rest.logged);
    assert_eq!(s.heads_after(None, ALL).unwrap(), [(a.id, a.heads())]);
    assert_eq!(s.lacking(&[(a.id, a.heads())]).unwrap(), [None]);

    // Logged once: they are duplicates now.
    let again = one(&s, a.all());
    assert_eq!((again.applied, again.duplicates), (0, 4));
}

/// Automerge holds one change per actor and seq. A change waiting for a
/// dependency that never comes must not refuse, for as long as it waits,
/// another change with its actor and seq that can be applied: the one that
/// arrives takes its place. The waiting one was acknowledged only as
/// waiting, so its device offers it again, and then it is refused as
/// clashing with what is stored.
fn a_waiting_change_gives_way_to_one_with_its_actor_and_seq<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 1); // genesis, content, e0
    one(&s, a.all());
    // Device b edits; a learns of it and edits on top: `waits` needs x,
    // which the store never got.
    let x = a.fork("b").edit("x");
    let mut with_x = a.clone();
    assert!(with_x.doc.apply(vec![x.clone()]).unwrap().is_empty());
    let waits = with_x.edit("waits");
    // The same actor and seq, made without x: it can be applied.
    let ready = a.clone().edit("ready");
    assert_eq!((ready.actor_id(), ready.seq()), (waits.actor_id(), waits.seq()));
    assert_ne!(ready.hash(), waits.hash());

    let w = one(&s, vec![(a.id, waits.clone())]);
    assert_eq!((w.applied, w.waiting, w.displaced), (0, 1, 0));
    // Both in one batch: neither can be acknowledged as what it is.
    assert!(refused(&one_with(&s, vec![(a.id, waits.clone()), (a.id, ready.clone())], None)));
    assert_eq!(s.lacking(&[(a.id, vec![ready.hash()])]).unwrap().len(), 1);
    assert_eq!(one(&s, vec![(a.id, waits.clone())]).duplicates, 1, "it still waits");
    // Meanwhile device c writes enough that a hub saves the document
    // again, the waiting change queued inside it.
    let mut c = a.fork("c");
    for i in 0..70 {
        c.edit(&format!("c{i}"));
    }
    one(&s, c.batch(a.changes.len()..));
    let r = one(&s, vec![(a.id, ready.clone())]);
    assert_eq!((r.applied, r.waiting, r.displaced), (1, 0, 1), "the ready change is stored in the waiting one's place");
    assert!(r.waiting_hashes.is_empty());
    assert_eq!(hashes(&r.logged), [ready.hash()]);
    let c_head = c.heads()[0];
    assert_eq!(s.lacking(&[(a.id, vec![waits.hash()])]).unwrap().len(), 1);
    assert!(s.lacking(&[(a.id, vec![waits.hash()])]).unwrap()[0].is_some(), "the store lacks it");

    let check = |s: &F::Store, heads: &[ChangeHash]| {
        // Offered again: refused, and nothing of it is kept.
        assert!(refused(&one_with(s, vec![(a.id, waits.clone())], None)), "the displaced change clashes now");
        let mut heads = heads.to_vec();
        heads.sort();
        assert_eq!(s.heads_after(None, ALL).unwrap(), [(a.id, heads)]);
        let docs = loaded_docs(s);
        assert_eq!(docs.len(), 1);
        assert!(docs[0].1.has_change(&ready.hash()));
        assert!(!docs[0].1.has_change(&waits.hash()));
    };
    check(&s, &[ready.hash(), c_head]);
    let s = f.reopen(s);
    check(&s, &[ready.hash(), c_head]);
    // x arrives: it is stored; the displaced change does not come back.
    let got = one(&s, vec![(a.id, x.clone())]);
    assert_eq!((got.applied, got.waiting, got.displaced), (1, 0, 0));
    assert_eq!(whole_log(&s).len(), c.changes.len() + 2);
    check(&s, &[ready.hash(), c_head, x.hash()]);
}

fn waiting_changes_are_logged_in_causal_order<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 6);
    // The edits arrive newest first, each alone; then the start.
    for i in (2..8).rev() {
        let applied = one(&s, a.batch(i..=i));
        assert_eq!(applied.applied, 0);
        assert_eq!(applied.waiting_hashes, [a.hash(i)]);
    }
    assert_eq!(s.head().unwrap(), 0);
    let applied = one(&s, a.batch(..2));
    assert_eq!(applied.applied, 8);
    assert_causal(&applied.logged);
    assert_eq!(hashes(&whole_log(&s)), a.hashes(), "one chain: causal order is the only order");
}

fn one_batch_out_of_causal_order_is_logged_in_causal_order<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 3);
    let mut batch = a.all();
    batch.reverse();
    let applied = one(&s, batch);
    assert_eq!((applied.applied, applied.waiting), (5, 0));
    assert_causal(&whole_log(&s));
    assert_eq!(hashes(&whole_log(&s)), a.hashes());
}

// ---------------------------------------------------------------------------
// Atomicity and order.
// ---------------------------------------------------------------------------

fn a_batch_with_an_invalid_change_leaves_no_trace<F: Fixture>(mut f: F) {
    let s = f.open();
    let good = Hist::new("good", 1);
    let bad = Hist::new("bad", 2);
    let later = Hist::new("later", 1);
    let mut refused_batch = bad.all();
    refused_batch.push((bad.id, clashing(&bad, 3)));

    let out = s.apply(vec![good.all(), refused_batch, later.all()], None).unwrap();
    assert_eq!(out.len(), 3);
    assert!(refused(&out[1]), "the batch with the invalid change is refused: {:?}", out[1]);
    let first = out[0].as_ref().unwrap();
    let third = out[2].as_ref().unwrap();
    assert_eq!(seqs(&first.logged), [1, 2, 3]);
    assert_eq!(seqs(&third.logged), [4, 5, 6], "the batches around it commit, gapless");
    assert_eq!(s.head().unwrap(), 6);
    assert_eq!(hashes(&whole_log(&s)), [good.hashes(), later.hashes()].concat());

    // No trace: not a document, not stored (so new when it comes again).
    let ids: Vec<NodeId> = s.heads_after(None, ALL).unwrap().into_iter().map(|(id, _)| id).collect();
    assert!(!ids.contains(&bad.id));
    assert!(s.changes_since(bad.id, &[]).unwrap().is_empty());
    let valid = one(&s, bad.all());
    assert_eq!((valid.applied, valid.duplicates), (4, 0));
    assert_eq!(seqs(&valid.logged), [7, 8, 9, 10]);

    // Alone, against a stored document: refused, and nothing moves.
    let result = one_with(&s, vec![(later.id, later.changes[2].clone()), (bad.id, clashing(&bad, 2))], None);
    assert!(refused(&result), "{result:?}");
    assert_eq!(s.head().unwrap(), 10);
    assert_eq!(s.heads_after(None, ALL).unwrap().len(), 3);
}

fn a_refused_batch_leaves_no_trace_of_what_it_wrote_before_the_refusal<F: Fixture>(mut f: F) {
    let s = f.open();
    let fine = Hist::new("fine", 1);
    let waits = Hist::new("waits", 2);
    // The refusal (the quota) comes after the batch's first document went in.
    let batch = [fine.all(), waits.batch(3..)].concat();
    let result = one_with(&s, batch, waiting_at_most(0));
    assert!(matches!(result, Err(Error::PendingQuota { limit: 0 })), "{result:?}");
    assert_eq!(s.head().unwrap(), 0, "nothing of the refused batch is logged");
    assert!(s.heads_after(None, ALL).unwrap().is_empty(), "nothing of it is a document");
    let again = one(&s, [fine.all(), waits.batch(3..)].concat());
    assert_eq!((again.applied, again.duplicates, again.waiting), (3, 0, 1), "nothing of it was stored");
}

fn the_waiting_quota_refuses_a_batch_and_nothing_else<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2);
    let b = Hist::new("b", 1);
    let c = Hist::new("c", 2);

    // A batch that would leave a change waiting, with room for none.
    let waits: Batch = [b.all(), a.batch(3..)].concat();
    let out = s.apply(vec![c.batch(..2), waits.clone(), c.batch(2..)], waiting_at_most(0)).unwrap();
    assert!(matches!(out[1], Err(Error::PendingQuota { limit: 0 })), "{:?}", out[1]);
    assert_eq!(out[0].as_ref().unwrap().applied, 2);
    assert_eq!(out[2].as_ref().unwrap().applied, 2);
    assert_eq!(seqs(&whole_log(&s)), [1, 2, 3, 4]);
    assert_eq!(hashes(&whole_log(&s)), c.hashes());

    // Nothing of it was stored: with room, it is all new.
    let room = one_with(&s, waits, waiting_at_most(1)).unwrap();
    assert_eq!((room.applied, room.duplicates, room.waiting), (3, 0, 1));
    assert_eq!(room.waiting_hashes, [a.hash(3)]);

    // One waits already: another that would wait is refused, a batch that
    // leaves none waiting is not.
    let d = Hist::new("d", 1);
    assert!(matches!(one_with(&s, d.batch(2..), waiting_at_most(1)), Err(Error::PendingQuota { .. })));
    let fills = one_with(&s, a.batch(..3), waiting_at_most(1)).unwrap();
    assert_eq!((fills.applied, fills.waiting), (4, 0));
    assert_eq!(s.head().unwrap(), 11);
}

fn the_waiting_bytes_are_bounded_and_freed_as_changes_stop_waiting<F: Fixture>(mut f: F) {
    let mut s = f.open();
    let hists: Vec<Hist> = (0..4).map(|i| Hist::new(&format!("w{i}"), 3)).collect();
    let bytes = |batch: &Batch| batch.iter().map(|(_, c)| c.raw_bytes().len() as u64).sum::<u64>();
    // Without their first two changes, the rest of each history waits.
    let waits = |h: &Hist| h.batch(2..);
    // Room for exactly the waiting changes of two documents.
    let room = bytes(&waits(&hists[0])) + bytes(&waits(&hists[1]));
    let quota = Some(PendingQuota { changes: u64::MAX, bytes: room });
    assert_eq!(one_with(&s, waits(&hists[0]), quota).unwrap().waiting, 3);
    assert_eq!(one_with(&s, waits(&hists[1]), quota).unwrap().waiting, 3, "up to the bound is allowed");
    let over = one_with(&s, waits(&hists[2]), quota);
    assert!(matches!(over, Err(Error::PendingBytes { limit }) if limit == room), "{over:?}");

    // The first document's missing changes arrive: its waiting ones are
    // applied, and their bytes are free again, across a reopen too.
    let fills = one_with(&s, hists[0].batch(..2), quota).unwrap();
    assert_eq!((fills.applied, fills.waiting), (5, 0));
    s = f.reopen(s);
    let third = one_with(&s, waits(&hists[2]), quota).unwrap();
    assert_eq!((third.waiting, third.duplicates), (3, 0), "nothing of it was stored when it was refused");
    let over = one_with(&s, waits(&hists[3]), quota);
    assert!(matches!(over, Err(Error::PendingBytes { .. })), "{over:?}");

    // A quota with room for no bytes refuses anything that would wait, and
    // nothing else.
    let none = Some(PendingQuota { changes: u64::MAX, bytes: 0 });
    assert!(matches!(one_with(&s, waits(&hists[3]), none), Err(Error::PendingBytes { limit: 0 })));
    assert_eq!(one_with(&s, hists[3].all(), none).unwrap().applied, 5);
}

fn batches_are_applied_in_the_order_given<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2);
    let b = Hist::new("b", 0);
    // Each batch depends on the one before: applied in order, none waits.
    let out = s.apply(vec![a.batch(..2), a.batch(2..3), b.all(), a.batch(3..)], None).unwrap();
    let out: Vec<Applied> = out.into_iter().map(Result::unwrap).collect();
    assert!(out.iter().all(|o| o.waiting == 0));
    assert_eq!(seqs(&out[0].logged), [1, 2]);
    assert_eq!(seqs(&out[1].logged), [3]);
    assert_eq!(seqs(&out[2].logged), [4, 5]);
    assert_eq!(seqs(&out[3].logged), [6]);
    assert_eq!(hashes(&out[3].logged), [a.hash(3)]);
    assert_eq!(s.head().unwrap(), 6);
}

/// A group of many documents (a hub's group commit) ends exactly as its
/// batches applied one at a time: the same results, log, documents and
/// waiting changes. The group has: documents continued past a hub's tail
/// (70 edits in one batch), stored changes that waited and are released, a
/// change sent again under another document, a batch refused in the
/// middle, and a change left waiting.
fn a_group_is_applied_as_its_batches_one_after_the_other<F: Fixture>(mut f: F) {
    let grouped = f.open();
    let single = f.open();
    let h: Vec<Hist> = (0..10).map(|i| Hist::new(&format!("group-{i}"), if i < 3 { 70 } else { 2 })).collect();
    let bad = Hist::new("group-bad", 3);
    for s in [&grouped, &single] {
        one(s, h[0].batch(..2));
        one(s, h[1].batch(..2));
        // Waits for change 2, which comes in the group.
        assert_eq!(one(s, h[1].batch(3..6)).waiting, 3);
    }
    let mut refused_batch = bad.all();
    refused_batch.push((bad.id, clashing(&bad, 2)));
    let mut again = vec![(h[3].id, h[2].changes[0].clone())];
    again.extend(h[3].all());
    let batches: Vec<Batch> = vec![
        h[0].batch(2..),
        h[1].batch(2..3),
        h[2].all(),
        again,
        refused_batch,
        [h[4].all(), h[5].all()].concat(),
        h[6].batch(3..),
        h[7].all(),
        h[8].all(),
        h[9].all(),
    ];
    let out = grouped.apply(batches.clone(), None).expect("the group's write");
    assert_eq!(out.len(), batches.len());
    for (i, (batch, got)) in batches.into_iter().zip(&out).enumerate() {
        let want = one_with(&single, batch, None);
        match (&want, got) {
            (Ok(want), Ok(got)) => assert_eq!(got, want, "batch {i}"),
            (want, got) => assert!(refused(want) && refused(got), "batch {i}: {got:?}, one at a time {want:?}"),
        }
    }
    assert!(refused(&out[4]), "{:?}", out[4]);
    let again = out[3].as_ref().unwrap();
    assert_eq!(again.duplicates, 1, "the change already sent for another document is not new again");
    assert_eq!(out[6].as_ref().unwrap().waiting, h[6].changes.len() - 3);
    assert_eq!(out[1].as_ref().unwrap().applied, 4, "the change and the three that waited for it");

    let log = whole_log(&grouped);
    assert_eq!(log, whole_log(&single));
    assert_causal(&log);
    assert_eq!(seqs(&log), (1..=log.len() as u64).collect::<Vec<_>>());
    let heads =
        |s: &F::Store| loaded_docs(s).into_iter().map(|(id, d)| (id, d.heads(), d.changes().len())).collect::<Vec<_>>();
    assert_eq!(heads(&grouped), heads(&single));
    let docs = loaded_docs(&grouped);
    let heads_of = |x: &Hist| docs.iter().find(|(id, _)| *id == x.id).expect("the document").1.heads();
    for x in [&h[0], &h[2], &h[3], &h[9]] {
        assert_eq!(heads_of(x), x.heads(), "every change of {} is in its document", x.id);
    }
    assert_eq!(heads_of(&h[1]), [h[1].hash(5)], "the changes that waited are in it");
    assert!(grouped.changes_since(bad.id, &[]).unwrap().is_empty(), "nothing of the refused batch");
    let grouped = f.reopen(grouped);
    assert_eq!(whole_log(&grouped), log, "as committed");
}

// ---------------------------------------------------------------------------
// Documents.
// ---------------------------------------------------------------------------

fn docs_after_returns_whole_documents_within_the_budget<F: Fixture>(mut f: F) {
    let s = f.open();
    let hists = stored(&s, (0..4).map(|i| Hist::new(&format!("doc{i}"), i)));
    // A concurrent edit, and a change that waits (in no document yet).
    let mut fork = hists[2].fork("fork");
    let concurrent = fork.edit("concurrent");
    let mut mine = hists[2].clone();
    let ours = mine.edit("ours");
    one(&s, vec![(hists[2].id, concurrent.clone()), (hists[2].id, ours)]);
    let waiting = Hist::new("waiting", 2);
    one(&s, waiting.batch(3..));

    let mut ids: Vec<NodeId> = hists.iter().map(|h| h.id).collect();
    ids.sort();
    let docs = loaded_docs(&s);
    assert_eq!(docs.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids, "every document, in id order");
    let log = whole_log(&s);
    for (id, doc) in &docs {
        for c in log.iter().filter(|c| c.doc == *id) {
            assert!(doc.has_change(&c.hash), "the document holds every change logged for it");
        }
        assert!(doc.materialise_as(*id).is_ok());
    }
    let two = docs.iter().find(|(id, _)| *id == hists[2].id).unwrap();
    assert!(two.1.has_change(&concurrent.hash()));
    assert_eq!(two.1.heads().len(), 2);

    // The budget: the first document always, then at most `budget` bytes.
    let raw = s.docs_after(None, ALL).unwrap();
    let size = |d: &(NodeId, Vec<u8>)| wire_size(d.1.len());
    assert_eq!(s.docs_after(None, 0).unwrap().len(), 1);
    let two_size = size(&raw[0]) + size(&raw[1]);
    assert_eq!(s.docs_after(None, two_size).unwrap(), raw[..2]);
    assert_eq!(s.docs_after(None, two_size - 1).unwrap(), raw[..1]);

    // Paging from an id.
    assert_eq!(s.docs_after(Some(raw[1].0), ALL).unwrap(), raw[2..]);
    assert!(s.docs_after(Some(raw[3].0), ALL).unwrap().is_empty());
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s.docs_after(after, 0).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        paged.extend(page);
    }
    assert_eq!(paged, raw);
}

fn a_reading_is_of_exactly_the_bytes_sent_with_it<F: Fixture>(mut f: F) {
    let s = f.open();
    let hists = stored(&s, (0..4).map(|i| Hist::new(&format!("viewed{i}"), i)));
    // A conflict: two devices retitle one node without seeing each other.
    let mut theirs = hists[1].fork("theirs");
    let mut mine = hists[1].clone();
    let a = theirs.doc.edit(&[Edit::Title("theirs".into())], "modify", t(60)).unwrap().expect("a change");
    let b = mine.doc.edit(&[Edit::Title("mine".into())], "modify", t(61)).unwrap().expect("a change");
    one(&s, vec![(hists[1].id, a), (hists[1].id, b)]);

    // Whatever a store gives, a reading is what the bytes beside it read as.
    let check = |label: &str| -> usize {
        let with = s.docs_after_with_views(None, ALL).unwrap();
        let plain = s.docs_after(None, ALL).unwrap();
        assert_eq!(
            with.iter().map(|d| (d.id, d.bytes.clone())).collect::<Vec<_>>(),
            plain,
            "{label}: the same documents and bytes as docs_after"
        );
        for d in &with {
            if let Some(view) = &d.view {
                let doc = NodeDoc::load(&d.bytes, &actor("reader")).unwrap();
                assert_eq!(Some(view), DocView::read(&doc, d.id).as_ref(), "{label}: the reading of {}", d.id);
            }
        }
        with.iter().filter(|d| d.view.is_some()).count()
    };
    F::settle(&s);
    let viewed = check("settled");
    if F::VIEWS {
        assert_eq!(viewed, hists.len(), "a reading of every document");
        let conflicted = s.docs_after_with_views(None, ALL).unwrap().into_iter().find(|d| d.id == hists[1].id).unwrap();
        assert_eq!(conflicted.view.unwrap().conflicts, vec!["title".to_string()]);
    }
    // A write the store has not read yet: its old reading is not served.
    let mut next = hists[0].clone();
    one(&s, vec![(hists[0].id, next.edit("later"))]);
    check("after a write");
    F::settle(&s);
    assert_eq!(check("settled again"), if F::VIEWS { hists.len() } else { 0 });

    // The first document always, then within the budget; a reading only
    // where it fits beside its document. Pages cover all.
    let first = s.docs_after_with_views(None, 0).unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].view.is_none(), "no room for a reading");
    let alone = s.docs_after_with_views(None, wire_size(first[0].bytes.len())).unwrap();
    assert_eq!((alone.len(), alone[0].view.is_none()), (1, true));
    let all = s.docs_after_with_views(None, ALL).unwrap();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s.docs_after_with_views(after, 4096).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, all);
}

fn heads_after_pages_in_id_order<F: Fixture>(mut f: F) {
    let s = f.open();
    let hists = stored(&s, (0..5).map(|i| Hist::new(&format!("doc{i}"), i % 3)));
    let mut expected: Vec<(NodeId, Vec<ChangeHash>)> = hists.iter().map(|h| (h.id, h.heads())).collect();
    expected.sort();
    assert_eq!(s.heads_after(None, ALL).unwrap(), expected);
    assert_eq!(s.heads_after(None, 2).unwrap(), expected[..2]);
    assert_eq!(s.heads_after(Some(expected[1].0), 2).unwrap(), expected[2..4]);
    assert_eq!(s.heads_after(Some(expected[4].0), 2).unwrap(), []);
    assert!(s.heads_after(None, 0).unwrap().is_empty());
}

fn lacking_names_what_is_not_applied<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2);
    let b = Hist::new("b", 3);
    let unknown = Hist::new("unknown", 0);
    one(&s, a.all());
    one(&s, b.batch(..3));
    one(&s, b.batch(4..)); // waits for b.changes[3]
    let mut fork = a.fork("fork");
    let theirs = fork.edit("theirs");

    let offered = vec![
        (a.id, a.heads()),
        (a.id, vec![a.hash(1)]),
        (a.id, vec![]),
        (a.id, vec![a.hash(3), theirs.hash()]),
        (unknown.id, unknown.heads()),
        (b.id, vec![b.hash(4)]),
        (b.id, vec![b.hash(2)]),
    ];
    let lacking = s.lacking(&offered).unwrap();
    assert_eq!(
        lacking,
        [
            None,
            None,
            None,
            Some(a.heads()),
            Some(vec![]),
            Some(vec![b.hash(2)]), // a waiting change is not applied
            None,
        ]
    );
}

fn lacking_sees_documents_merged_from_snapshots<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2);
    s.merge_snapshots(vec![(a.id, a.doc.save())], None, None).unwrap();
    assert_eq!(s.heads_after(None, ALL).unwrap(), [(a.id, a.heads())]);
    assert_eq!(
        s.changes_since(a.id, &[]).unwrap().iter().map(Change::hash).collect::<Vec<_>>(),
        a.hashes(),
        "the merged document holds every change"
    );
    assert_eq!(s.lacking(&[(a.id, a.heads())]).unwrap(), [None], "the heads of a merged document are applied");
}

/// A device holds a change waiting for its dependency, and the hub then
/// serves the document as a snapshot (a bootstrap after the hub was
/// replaced): the merge that brings the dependency applies and logs the
/// waiting change, as an apply bringing it would.
fn a_snapshot_that_brings_what_a_change_waits_for_releases_it<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2); // genesis, content, e0, e1
    assert_eq!(one(&s, a.batch(3..)).waiting, 1);
    let mut upto_e0 = NodeDoc::empty(&actor("snapshot"));
    assert!(upto_e0.apply(a.changes[..3].to_vec()).unwrap().is_empty());
    s.merge_snapshots(vec![(a.id, upto_e0.save())], None, None).unwrap();

    assert_eq!(s.lacking(&[(a.id, vec![a.hash(3)])]).unwrap(), [None], "it is applied");
    assert_eq!(hashes(&whole_log(&s)), [a.hash(3)], "it is logged, the snapshot's changes are not");
    assert_eq!(s.heads_after(None, ALL).unwrap(), [(a.id, a.heads())]);
    let again = one(&s, a.batch(3..));
    assert_eq!((again.applied, again.waiting, again.duplicates), (0, 0, 1), "it waits no more");
    let s = f.reopen(s);
    assert_eq!(s.lacking(&[(a.id, vec![a.hash(3)])]).unwrap(), [None]);
    assert_eq!(one(&s, a.batch(3..)).waiting, 0);
}

/// A change the store holds as waiting is in no log: the document it
/// serves as a snapshot leaves it out, so a device that bootstraps from it
/// never applies a change behind the log's back once its dependency comes.
fn a_snapshot_holds_only_what_is_applied<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 2); // genesis, content, e0, e1
    one(&s, a.batch(..2));
    assert_eq!(one(&s, a.batch(3..)).waiting, 1);
    let docs = s.docs_after(None, ALL).unwrap();
    let [(id, bytes)] = docs.as_slice() else { panic!("one document: {}", docs.len()) };
    assert_eq!(*id, a.id);
    let mut served = NodeDoc::load(bytes, &actor("reader")).unwrap();
    assert!(served.apply(a.changes[2..3].to_vec()).unwrap().is_empty());
    assert!(!served.has_change(&a.hash(3)), "the waiting change came with the snapshot");

    // Another device's edits, enough for a hub to save the document again
    // while it holds the waiting change queued in memory.
    let mut b = Hist::new("a", 0).fork("b");
    for i in 0..80 {
        b.edit(&format!("b-{i}"));
    }
    assert_eq!(one(&s, b.batch(2..)).applied, 80);
    let docs = s.docs_after(None, ALL).unwrap();
    let mut served = NodeDoc::load(&docs[0].1, &actor("reader")).unwrap();
    assert!(served.has_change(&b.hash(81)), "the snapshot has b's edits");
    assert!(served.apply(a.changes[2..3].to_vec()).unwrap().is_empty());
    assert!(!served.has_change(&a.hash(3)), "the waiting change came with a snapshot saved again");
}

fn changes_since_gives_what_a_peer_lacks_in_causal_order<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 3);
    one(&s, a.all());
    let since = |have: &[ChangeHash]| -> Vec<ChangeHash> {
        s.changes_since(a.id, have).unwrap().iter().map(Change::hash).collect()
    };
    assert_eq!(since(&[]), a.hashes());
    assert!(since(&a.heads()).is_empty());
    assert_eq!(since(&[a.hash(2)]), a.hashes()[3..]);
    let stranger = Hist::new("stranger", 0);
    assert_eq!(since(&[stranger.hash(0)]), a.hashes(), "hashes it does not know are ignored");
    assert!(s.changes_since(stranger.id, &[]).unwrap().is_empty(), "a document not stored: nothing");

    // Two branches: a peer with one lacks the other.
    let mut fork = a.fork("fork");
    let theirs = fork.edit("theirs");
    let mut mine = a.clone();
    let ours = mine.edit("ours");
    one(&s, vec![(a.id, theirs.clone()), (a.id, ours.clone())]);
    assert_eq!(since(&[theirs.hash()]), [ours.hash()]);
    assert_eq!(since(&[ours.hash()]), [theirs.hash()]);
    let from_start = since(&[]);
    assert_eq!(from_start.len(), 7);
    let all: Vec<Change> = s.changes_since(a.id, &[]).unwrap();
    let mut peer = NodeDoc::empty(&actor("peer"));
    assert!(peer.apply(all).unwrap().is_empty(), "in causal order, nothing waits");
}

// ---------------------------------------------------------------------------
// Cursors.
// ---------------------------------------------------------------------------

fn h(n: u8) -> ChangeHash {
    ChangeHash([n; 32])
}

fn begin_sync_with_a_new_hub_starts_afresh<F: Fixture>(mut f: F) {
    let s = f.open();
    let a = Hist::new("a", 0);

    // Never synced: nothing owed.
    let c = s.begin_sync("hub-1").unwrap();
    assert_eq!(c.hub.as_deref(), Some("hub-1"));
    assert_eq!((c.hub_cursor, c.pushed, c.known, c.reconcile), (0, 0, None, false));
    assert_eq!(s.cursors().unwrap(), c);

    s.apply_from_hub(a.all(), 5, Some((5, h(5)))).unwrap();
    s.acknowledge(3, None).unwrap();
    // The same hub again: resumed as it stands.
    let same = s.begin_sync("hub-1").unwrap();
    assert_eq!((same.hub_cursor, same.pushed, same.known, same.reconcile), (5, 3, Some((5, h(5))), false));

    // Another hub: both cursors afresh, and a reconciliation owed.
    let other = s.begin_sync("hub-2").unwrap();
    assert_eq!(other.hub.as_deref(), Some("hub-2"));
    assert_eq!((other.hub_cursor, other.pushed, other.known, other.reconcile), (0, 0, None, true));
    assert_eq!(s.cursors().unwrap(), other);
    assert_eq!(s.head().unwrap(), 2, "the log stays");

    // A store that never synced but owes a reconciliation keeps owing it.
    let fresh = f.open();
    fresh.set_reconcile(true).unwrap();
    assert!(fresh.begin_sync("hub-1").unwrap().reconcile);
    let fresh2 = f.open();
    fresh2.set_reconcile(false).unwrap();
    assert!(!fresh2.begin_sync("hub-1").unwrap().reconcile);
}

fn restart_sync_starts_afresh_and_owes_a_reconciliation<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    s.apply_from_hub(Vec::new(), 9, Some((9, h(9)))).unwrap();
    s.acknowledge(4, None).unwrap();
    let c = s.restart_sync("hub").unwrap();
    assert_eq!(c.hub.as_deref(), Some("hub"));
    assert_eq!((c.hub_cursor, c.pushed, c.known, c.reconcile), (0, 0, None, true));
    assert_eq!(s.cursors().unwrap(), c);
    // With another hub too, and on a store that never synced.
    let c = s.restart_sync("other").unwrap();
    assert_eq!((c.hub.as_deref(), c.reconcile), (Some("other"), true));
    let fresh = f.open();
    assert!(fresh.restart_sync("hub").unwrap().reconcile);
    assert!(fresh.begin_sync("hub").unwrap().reconcile, "the same hub: still owed");
}

fn set_reconcile_sets_and_clears<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    s.apply_from_hub(Vec::new(), 3, None).unwrap();
    s.set_reconcile(true).unwrap();
    assert!(s.cursors().unwrap().reconcile);
    s.set_reconcile(true).unwrap();
    assert!(s.cursors().unwrap().reconcile);
    s.set_reconcile(false).unwrap();
    let c = s.cursors().unwrap();
    assert!(!c.reconcile);
    assert_eq!((c.hub.as_deref(), c.hub_cursor), (Some("hub"), 3), "nothing else moves");
}

fn apply_from_hub_moves_the_hub_cursor_forward_only<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    let a = Hist::new("a", 2);
    let applied = s.apply_from_hub(a.batch(..2), 5, Some((5, a.hash(1)))).unwrap();
    assert_eq!(applied.applied, 2);
    assert!(applied.logged.iter().all(|c| !c.local), "received, not made here");
    assert_eq!(s.cursors().unwrap().hub_cursor, 5);

    // An older upto (a frame replayed): the cursor stays.
    let again = s.apply_from_hub(a.batch(..3), 3, Some((3, h(3)))).unwrap();
    assert_eq!((again.applied, again.duplicates), (1, 2));
    let c = s.cursors().unwrap();
    assert_eq!((c.hub_cursor, c.known), (5, Some((5, a.hash(1)))));

    // Waiting changes from the hub are stored, the cursor moves.
    let b = Hist::new("b", 2);
    let waits = s.apply_from_hub(b.batch(3..), 8, None).unwrap();
    assert_eq!((waits.applied, waits.waiting), (0, 1));
    assert_eq!(waits.waiting_hashes, [b.hash(3)]);
    assert_eq!(s.cursors().unwrap().hub_cursor, 8);
    assert_eq!(s.head().unwrap(), 3);
    assert_eq!(s.cursors().unwrap().pushed, 0, "pushing is another cursor");
}

fn a_refused_apply_from_hub_moves_nothing<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    let a = Hist::new("a", 2);
    s.apply_from_hub(a.batch(..3), 3, Some((3, a.hash(2)))).unwrap();
    let before = s.cursors().unwrap();
    let b = Hist::new("b", 0);
    let batch = [b.all(), vec![(a.id, clashing(&a, 2))]].concat();
    let result = s.apply_from_hub(batch, 9, Some((9, h(9))));
    assert!(matches!(&result, Err(e) if e.refuses_batch()), "{result:?}");
    assert_eq!(s.cursors().unwrap(), before);
    assert_eq!(s.head().unwrap(), 3);
    assert_eq!(one(&s, b.all()).applied, 2, "nothing of it was stored");
}

fn merge_snapshots_with_and_without_upto<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    let a = Hist::new("a", 1);
    let b = Hist::new("b", 2);

    // Not the last frame: documents merged, cursors as they were.
    s.merge_snapshots(vec![(a.id, a.doc.save())], None, Some((7, h(7)))).unwrap();
    let c = s.cursors().unwrap();
    assert_eq!((c.hub_cursor, c.known), (0, None));
    assert_eq!(s.heads_after(None, ALL).unwrap(), [(a.id, a.heads())]);
    assert_eq!(s.head().unwrap(), 0, "merged documents are not logged change by change");

    // The last frame: a document as runs of changes, and the cursor.
    let run: Vec<u8> = b.changes.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    s.merge_snapshots(vec![(b.id, run)], Some(7), Some((7, h(7)))).unwrap();
    let c = s.cursors().unwrap();
    assert_eq!((c.hub_cursor, c.known), (7, Some((7, h(7)))));
    let docs = loaded_docs(&s);
    assert_eq!(docs.len(), 2);
    for (id, doc) in docs {
        let hist = if id == a.id { &a } else { &b };
        assert_eq!(doc.heads(), hist.heads());
    }

    // Merging more of a document keeps what it held; the cursor never
    // moves back.
    let mut more = a.clone();
    more.edit("more");
    s.merge_snapshots(vec![(a.id, more.doc.save())], Some(4), Some((4, h(4)))).unwrap();
    let c = s.cursors().unwrap();
    assert_eq!((c.hub_cursor, c.known), (7, Some((7, h(7)))));
    assert_eq!(s.changes_since(a.id, &[]).unwrap().len(), 4);

    // Local changes on top of a merged document are logged and pushed.
    let mut mine = more.fork("mine");
    let edit = mine.edit("mine");
    let logged = F::commit_local(&s, a.id, vec![edit.clone()]);
    assert_eq!(hashes(&logged), [edit.hash()]);
    assert_eq!(seqs(&s.log_after(0, ALL, ALL, true).unwrap()), [1]);
}

fn a_refused_merge_snapshots_merges_nothing<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    let a = Hist::new("a", 1);
    let b = Hist::new("b", 1);
    let result = s.merge_snapshots(
        vec![(a.id, a.doc.save()), (b.id, b"not an automerge document".to_vec())],
        Some(5),
        Some((5, h(5))),
    );
    assert!(matches!(&result, Err(e) if e.refuses_batch()), "{result:?}");
    assert!(s.heads_after(None, ALL).unwrap().is_empty(), "the first document was not merged either");
    let c = s.cursors().unwrap();
    assert_eq!((c.hub_cursor, c.known), (0, None));
}

fn acknowledge_never_moves_back<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    s.acknowledge(4, None).unwrap();
    assert_eq!(s.cursors().unwrap().pushed, 4);
    s.acknowledge(2, None).unwrap();
    assert_eq!(s.cursors().unwrap().pushed, 4);
    s.acknowledge(6, Some((10, h(10)))).unwrap();
    let c = s.cursors().unwrap();
    assert_eq!((c.pushed, c.known, c.hub_cursor), (6, Some((10, h(10))), 0), "an ack does not move the hub cursor");
}

fn known_moves_forward_only<F: Fixture>(mut f: F) {
    let s = f.open();
    s.begin_sync("hub").unwrap();
    s.acknowledge(0, Some((10, h(10)))).unwrap();
    // Older: ignored, wherever it comes from.
    s.acknowledge(0, Some((9, h(9)))).unwrap();
    s.apply_from_hub(Vec::new(), 9, Some((9, h(9)))).unwrap();
    s.merge_snapshots(Vec::new(), Some(9), Some((9, h(9)))).unwrap();
    assert_eq!(s.cursors().unwrap().known, Some((10, h(10))));
    // `None` leaves it.
    s.acknowledge(0, None).unwrap();
    s.apply_from_hub(Vec::new(), 11, None).unwrap();
    assert_eq!(s.cursors().unwrap().known, Some((10, h(10))));
    // The same seq: the newest word on it wins.
    s.acknowledge(0, Some((10, h(11)))).unwrap();
    assert_eq!(s.cursors().unwrap().known, Some((10, h(11))));
    // Newer, from each write that carries it.
    s.apply_from_hub(Vec::new(), 12, Some((12, h(12)))).unwrap();
    assert_eq!(s.cursors().unwrap().known, Some((12, h(12))));
    s.merge_snapshots(Vec::new(), Some(13), Some((13, h(13)))).unwrap();
    assert_eq!(s.cursors().unwrap().known, Some((13, h(13))));
    s.acknowledge(0, Some((14, h(14)))).unwrap();
    assert_eq!(s.cursors().unwrap().known, Some((14, h(14))));
    assert_eq!(s.cursors().unwrap().hub_cursor, 13);
}

// ---------------------------------------------------------------------------
// Durability on return.
// ---------------------------------------------------------------------------

fn durable_on_return<F: Fixture>(mut f: F) {
    let s = f.open();
    let id = s.store_id();
    let local = Hist::new("local", 2);
    let pushed = Hist::new("pushed", 1);
    let bad = Hist::new("bad", 1);
    let pulled = Hist::new("pulled", 2);
    let merged = Hist::new("merged", 1);
    let waits = Hist::new("waits", 2);

    s.begin_sync("hub").unwrap();
    let mut reported = F::commit_local(&s, local.id, local.changes.clone());
    let mut refused_batch = bad.all();
    refused_batch.push((bad.id, clashing(&bad, 2)));
    assert!(refused(&one_with(&s, refused_batch, None)));
    let out = s.apply(vec![pushed.all(), waits.batch(3..)], None).unwrap();
    reported.extend(out[0].as_ref().unwrap().logged.clone());
    assert_eq!(out[1].as_ref().unwrap().waiting_hashes, [waits.hash(3)]);
    reported.extend(s.apply_from_hub(pulled.all(), 9, Some((9, pulled.hash(3)))).unwrap().logged);
    s.merge_snapshots(vec![(merged.id, merged.doc.save())], Some(12), Some((12, merged.hash(2)))).unwrap();
    s.acknowledge(4, None).unwrap();
    s.set_reconcile(true).unwrap();
    assert!(s.merge_snapshots(vec![(bad.id, vec![1, 2, 3])], Some(20), None).is_err());

    let head = s.head().unwrap();
    let log = whole_log(&s);
    let docs = s.docs_after(None, ALL).unwrap();
    let heads = s.heads_after(None, ALL).unwrap();
    let cursors = s.cursors().unwrap();
    assert_eq!(log, reported);
    assert_eq!(head, 11);

    let s = f.reopen(s);
    assert_eq!(s.store_id(), id);
    assert_eq!(s.head().unwrap(), head);
    assert_eq!(whole_log(&s), reported, "every change a write reported logged is there");
    assert_eq!(s.heads_after(None, ALL).unwrap(), heads);
    assert_eq!(s.docs_after(None, ALL).unwrap(), docs);
    assert_eq!(s.cursors().unwrap(), cursors);
    assert_eq!((cursors.hub_cursor, cursors.pushed, cursors.reconcile), (12, 4, true));
    // The waiting change is still stored (a duplicate), and still waits.
    let again = one(&s, waits.batch(3..));
    assert_eq!((again.duplicates, again.waiting_hashes.clone()), (1, vec![waits.hash(3)]));
    // What was refused was never stored.
    assert_eq!(one(&s, bad.all()).applied, 3);
    // And what waited is logged once its dependencies come.
    let done = one(&s, waits.batch(..3));
    assert_eq!(done.applied, 4);
    assert_eq!(s.head().unwrap(), head + 7);
}

// ---------------------------------------------------------------------------
// MemoryStore beyond the contract: what tests use it for.
// ---------------------------------------------------------------------------

/// A clone is a backup: the same id and log as they are now, independent
/// from then on.
#[test]
fn memory_a_clone_is_a_backup() {
    let hub = MemoryStore::new();
    let a = Hist::new("a", 1);
    let b = Hist::new("b", 1);
    one(&hub, a.all());
    let backup = hub.clone();
    assert_eq!(backup.store_id(), hub.store_id());
    assert_eq!(whole_log(&backup), whole_log(&hub));

    one(&hub, b.all());
    assert_eq!((hub.head().unwrap(), backup.head().unwrap()), (6, 3));
    let restored = backup.clone();
    let c = Hist::new("c", 0);
    let other = one(&restored, c.batch(..1));
    assert_eq!(seqs(&other.logged), [4], "the restored copy goes on from its own head");
    assert_ne!(restored.position(4).unwrap(), hub.position(4).unwrap());
    // The same change at the same seq after another prefix is another
    // position: a restored hub whose log was rebuilt in another order is
    // told apart even where one change landed where it was before.
    let (x, y) = (MemoryStore::new(), MemoryStore::new());
    for batch in [a.batch(..1), b.batch(..1), a.batch(1..2)] {
        one(&x, batch);
    }
    for batch in [b.batch(..1), a.batch(..1), a.batch(1..2)] {
        one(&y, batch);
    }
    assert_eq!(whole_log(&x)[2].hash, whole_log(&y)[2].hash, "the same change at seq 3");
    assert_ne!(x.position(3).unwrap(), y.position(3).unwrap(), "after different changes before it");
    assert_eq!(backup.head().unwrap(), 3, "the backup itself stays as it was");
}

/// Every change held, whichever way it came.
#[test]
fn memory_change_hashes_lists_every_change_held() {
    let s = MemoryStore::new();
    let a = Hist::new("a", 1);
    let b = Hist::new("b", 2);
    let c = Hist::new("c", 0);
    s.commit_local(a.id, a.changes.clone()).unwrap();
    one(&s, b.batch(3..));
    s.merge_snapshots(vec![(c.id, c.doc.save())], None, None).unwrap();
    let mut expected: Vec<ChangeHash> = [a.hashes(), vec![b.hash(3)], c.hashes()].concat();
    expected.sort();
    assert_eq!(s.change_hashes().into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(s.waiting(), 1);
    assert_eq!(s.ids().len(), 2);
    assert!(s.doc(a.id).is_some_and(|d| d.heads() == a.heads()));
}
