//! [`MemoryStore`]: a second, plain implementation of the storage seam,
//! in memory, with no redb underneath.
//!
//! What it is for:
//! - protocol tests and the protocol property test, where a hub (or a
//!   device) is created, backed up, restored and thrown away many times;
//! - checking the [contract](super::storage) from a second side: the
//!   conformance suite (`engine/tests/conformance.rs`) runs against it and
//!   against the redb [`Replica`](crate::Replica), so neither can drift
//!   into semantics the other lacks;
//! - a model for new backends (a database behind a multi-owner hub): it
//!   is the contract and nothing else, in a few hundred lines.
//!
//! It holds nothing durable: everything is gone when it is dropped, so
//! "durable on return" is vacuous here. What it keeps of the contract is
//! everything else: the gapless log, dedup by hash, waiting changes,
//! per-batch atomicity, budgets, `local_only`, cursors.
//!
//! # How it is built
//! The whole state is one immutable value behind an [`Arc`]. A read takes
//! the current `Arc` (a snapshot) and never waits for a write in progress.
//! A write (one at a time) works on a copy of the state and, when it
//! succeeds, swaps the copy in; each batch of [`SyncStore::apply`] is tried
//! on a copy of its own and kept only if it is accepted. Copying is
//! cheap-ish (documents and change bytes are shared, maps are copied):
//! fine for tests and models, not meant for large stores.
//!
//! [`Clone`] gives a *backup*: the same store id, the log and documents as
//! they are now, and independent from then on (as restoring a copy of a
//! hub's file would give).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use automerge::{ActorId, Change, ChangeHash};

use crate::doc::{NodeDoc, causal_order};
use crate::error::Error;
use crate::id::NodeId;
use crate::limits::PendingQuota;
use crate::replica::{advance_known, group};
use crate::store::{Applied, Cursors, LoggedChange, SavedDoc, actor_seqs, bootstrap_page, both_offered, displaced_by};
use crate::sync::frame::{DocView, wire_size};
use crate::sync::storage::{Batch, DeviceStore, SyncStore};

/// A store of the sync seam in memory: see the [module docs](self).
pub struct MemoryStore {
    origin: ActorId,
    state: Mutex<Arc<Inner>>,
    /// Serialises writers; readers never take it.
    writer: Mutex<()>,
}

/// One committed state.
#[derive(Clone, Default)]
struct Inner {
    /// Documents with at least one applied change, in id order.
    docs: BTreeMap<NodeId, Arc<NodeDoc>>,
    /// Every change stored (logged or waiting), by hash.
    changes: HashMap<ChangeHash, Stored>,
    /// The log: seq `i + 1` is entry `i`.
    log: Vec<Entry>,
    /// Changes stored but waiting for their dependencies, per document.
    pending: BTreeMap<NodeId, Vec<ChangeHash>>,
    cursors: Cursors,
}

#[derive(Clone)]
struct Stored {
    doc: NodeId,
    bytes: Arc<[u8]>,
}

#[derive(Clone, Copy)]
struct Entry {
    doc: NodeId,
    hash: ChangeHash,
    local: bool,
    position: ChangeHash,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for MemoryStore {
    /// A backup: the same store id, this state, independent from now on.
    fn clone(&self) -> Self {
        Self { origin: self.origin.clone(), state: Mutex::new(self.snapshot()), writer: Mutex::new(()) }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("MemoryStore")
            .field("id", &self.origin.to_hex_string())
            .field("docs", &s.docs.len())
            .field("head", &s.log.len())
            .field("waiting", &s.pending_count())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// One bootstrap page, with readings (read on demand: this store keeps
    /// every document loaded) when `views`.
    fn saved_docs(&self, after_id: Option<NodeId>, budget: usize, views: bool) -> Result<Vec<SavedDoc>, Error> {
        let s = self.snapshot();
        let docs = s.docs.range(after(after_id)).map(|(id, doc)| {
            let view = views.then(|| DocView::read(doc, *id)).flatten().map(|v| {
                let len = serde_json::to_vec(&v).map_or(usize::MAX / 2, |j| j.len());
                (v, len)
            });
            Ok((*id, doc.save(), view))
        });
        bootstrap_page(docs, budget)
    }

    /// An empty store with a new random id.
    #[must_use]
    pub fn new() -> Self {
        let origin: [u8; 16] = rand::random();
        Self {
            origin: ActorId::from(origin.as_slice()),
            state: Mutex::new(Arc::new(Inner::default())),
            writer: Mutex::new(()),
        }
    }

    /// This store's id (its device id, as on a [`Replica`](crate::Replica)).
    #[must_use]
    pub fn origin(&self) -> &ActorId {
        &self.origin
    }

    /// Applies `changes` to `doc` as made here (logged as local, so a
    /// device pushes them), in one write; returns what it logged. Changes
    /// already stored are skipped, ones missing a dependency wait.
    pub fn commit_local(&self, doc: NodeId, changes: Vec<Change>) -> Result<Vec<LoggedChange>, Error> {
        self.write(|s| {
            let mut report = Applied::default();
            s.apply_doc(&self.origin, doc, changes, true, None, &mut report)?;
            Ok(report.logged)
        })
    }

    /// Every change this store holds: stored ones (logged or waiting) and
    /// those that are part of its documents (merged from snapshots).
    #[must_use]
    pub fn change_hashes(&self) -> BTreeSet<ChangeHash> {
        let s = self.snapshot();
        let mut out: BTreeSet<ChangeHash> = s.changes.keys().copied().collect();
        for doc in s.docs.values() {
            out.extend(doc.changes().iter().map(Change::hash));
        }
        out
    }

    /// The document of `id`, if it holds any change of it.
    #[must_use]
    pub fn doc(&self, id: NodeId) -> Option<NodeDoc> {
        self.snapshot().docs.get(&id).map(|d| (**d).clone())
    }

    /// The ids of the documents held, in id order.
    #[must_use]
    pub fn ids(&self) -> Vec<NodeId> {
        self.snapshot().docs.keys().copied().collect()
    }

    /// How many received changes wait for their dependencies.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.snapshot().pending_count()
    }

    fn snapshot(&self) -> Arc<Inner> {
        Arc::clone(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// One write: `f` changes a copy of the state, kept only on `Ok`.
    fn write<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, Error>) -> Result<T, Error> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut work = (*self.snapshot()).clone();
        let out = f(&mut work)?;
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(work);
        Ok(out)
    }
}

impl Inner {
    fn pending_count(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    fn pending_bytes(&self) -> u64 {
        let bytes = self.pending.values().flatten().filter_map(|h| self.changes.get(h)).map(|c| c.bytes.len());
        bytes.map(|n| n as u64).sum()
    }

    fn change(&self, hash: &ChangeHash) -> Result<Change, Error> {
        let stored = self.changes.get(hash).ok_or_else(|| Error::Storage(format!("change {hash} is not stored")))?;
        Change::from_bytes(stored.bytes.to_vec())
            .map_err(|e| Error::InvalidChange { doc: stored.doc, reason: e.to_string() })
    }

    fn log_change(&mut self, doc: NodeId, change: &Change, local: bool, report: &mut Applied) {
        let hash = change.hash();
        let prev = self.log.last().map_or([0; 32], |e| e.position.0);
        let position = ChangeHash(crate::store::next_position(&prev, &hash));
        self.log.push(Entry { doc, hash, local, position });
        report.applied += 1;
        report.logged.push(LoggedChange {
            seq: self.log.len() as u64,
            doc,
            hash,
            bytes: change.raw_bytes().to_vec(),
            local,
            position,
        });
    }

    /// Applies `incoming` to document `id`, as the redb writer does:
    /// changes stored before are duplicates; the ones waiting for this
    /// document join in; what is ready is logged (in causal order), the
    /// rest waits.
    fn apply_doc(
        &mut self,
        origin: &ActorId,
        id: NodeId,
        incoming: Vec<Change>,
        local: bool,
        max_pending: Option<PendingQuota>,
        report: &mut Applied,
    ) -> Result<(), Error> {
        let incoming_hashes: Vec<ChangeHash> = incoming.iter().map(Change::hash).collect();
        let mut fresh = Vec::new();
        let mut seen = HashSet::new();
        for change in incoming {
            let hash = change.hash();
            if self.changes.contains_key(&hash) || !seen.insert(hash) {
                report.duplicates += 1;
            } else {
                fresh.push(change);
            }
        }
        // A waiting change with an incoming one's actor and seq gives way.
        let incoming_at = actor_seqs(&fresh);
        let was_waiting = self.pending.remove(&id).unwrap_or_default();
        let mut displaced = Vec::new();
        for hash in &was_waiting {
            let change = self.change(hash)?;
            if displaced_by(&change, &incoming_at) {
                displaced.push(*hash);
            } else {
                fresh.push(change);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let mut doc = self.docs.get(&id).map_or_else(|| NodeDoc::empty(origin), |d| (**d).clone());
        if !displaced.is_empty() {
            if displaced.iter().any(|h| incoming_hashes.contains(h)) {
                return Err(both_offered(id));
            }
            doc = doc.without_waiting()?;
            for hash in &displaced {
                self.changes.remove(hash);
            }
            report.displaced += displaced.len();
        }
        let batch = fresh.clone();
        let waiting = doc.apply(fresh)?;
        let waiting_hashes: HashSet<ChangeHash> = waiting.iter().map(Change::hash).collect();
        let ready = causal_order(batch.into_iter().filter(|c| !waiting_hashes.contains(&c.hash())).collect());
        for change in &ready {
            self.changes.entry(change.hash()).or_insert_with(|| Stored { doc: id, bytes: change.raw_bytes().into() });
            self.log_change(id, change, local, report);
        }
        for change in &waiting {
            self.changes.entry(change.hash()).or_insert_with(|| Stored { doc: id, bytes: change.raw_bytes().into() });
        }
        if !waiting.is_empty() {
            self.pending.insert(id, waiting.iter().map(Change::hash).collect());
            if let Some(max) = max_pending {
                if self.pending_count() as u64 > max.changes {
                    return Err(Error::PendingQuota { limit: max.changes });
                }
                if self.pending_bytes() > max.bytes {
                    return Err(Error::PendingBytes { limit: max.bytes });
                }
            }
            // Automerge keeps changes it could not apply queued inside the
            // document; a stored document holds only what is applied (as a
            // saved one does: `NodeDoc::save` leaves them out), so they wait
            // out here alone.
            doc = NodeDoc::load(&doc.save(), origin)?;
        }
        report.waiting += waiting.len();
        report.waiting_hashes.extend(incoming_hashes.into_iter().filter(|h| waiting_hashes.contains(h)));
        if doc.heads().is_empty() {
            return Ok(());
        }
        if doc.materialise_as(id).is_err() {
            report.not_nodes.push(id);
        }
        self.docs.insert(id, Arc::new(doc));
        Ok(())
    }

    fn apply_batch(
        &mut self,
        origin: &ActorId,
        batch: Batch,
        local: bool,
        max_pending: Option<PendingQuota>,
    ) -> Result<Applied, Error> {
        let mut report = Applied::default();
        for (doc, changes) in group(batch) {
            self.apply_doc(origin, doc, changes, local, max_pending, &mut report)?;
        }
        Ok(report)
    }

    fn merge_snapshot(&mut self, origin: &ActorId, id: NodeId, bytes: &[u8]) -> Result<(), Error> {
        crate::limits::check(bytes, crate::limits::MAX_INFLATED_BYTES)
            .map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?;
        let mut doc = self.docs.get(&id).map_or_else(|| NodeDoc::empty(origin), |d| (**d).clone());
        doc.merge_bytes(bytes).map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?;
        // Only what applied is kept (see `apply_doc`).
        let doc = NodeDoc::load(&doc.save(), origin)?;
        if !doc.heads().is_empty() {
            self.docs.insert(id, Arc::new(doc));
        }
        // Changes that waited for what the snapshot brought are applied
        // and logged in this write, as an apply bringing it would.
        if self.pending.contains_key(&id) {
            self.apply_doc(origin, id, Vec::new(), false, None, &mut Applied::default())?;
        }
        Ok(())
    }
}

fn after(id: Option<NodeId>) -> (std::ops::Bound<NodeId>, std::ops::Bound<NodeId>) {
    match id {
        Some(id) => (std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded),
        None => (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
    }
}

impl SyncStore for MemoryStore {
    fn store_id(&self) -> String {
        self.origin.to_hex_string()
    }

    fn head(&self) -> Result<u64, Error> {
        Ok(self.snapshot().log.len() as u64)
    }

    fn position(&self, seq: u64) -> Result<Option<ChangeHash>, Error> {
        let s = self.snapshot();
        let at = usize::try_from(seq).ok().and_then(|seq| seq.checked_sub(1));
        Ok(at.and_then(|i| s.log.get(i)).map(|e| e.position))
    }

    fn log_after(&self, after: u64, limit: usize, budget: usize, local_only: bool) -> Result<Vec<LoggedChange>, Error> {
        let s = self.snapshot();
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(s.log.len());
        let mut out = Vec::new();
        let mut size = 0;
        for (i, entry) in s.log.iter().enumerate().skip(start) {
            if out.len() >= limit {
                break;
            }
            if local_only && !entry.local {
                continue;
            }
            let stored = &s.changes[&entry.hash];
            size += wire_size(stored.bytes.len());
            if !out.is_empty() && size > budget {
                break;
            }
            out.push(LoggedChange {
                seq: i as u64 + 1,
                doc: entry.doc,
                hash: entry.hash,
                bytes: stored.bytes.to_vec(),
                local: entry.local,
                position: entry.position,
            });
        }
        Ok(out)
    }

    fn apply(
        &self,
        batches: Vec<Batch>,
        max_pending: Option<PendingQuota>,
    ) -> Result<Vec<Result<Applied, Error>>, Error> {
        self.write(|s| {
            let mut out = Vec::with_capacity(batches.len());
            for batch in batches {
                // Each batch on a copy of its own, kept only if accepted.
                let mut trial = s.clone();
                match trial.apply_batch(&self.origin, batch, false, max_pending) {
                    Ok(applied) => {
                        *s = trial;
                        out.push(Ok(applied));
                    }
                    Err(e) if e.refuses_batch() => out.push(Err(e)),
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }

    fn docs_after(&self, after_id: Option<NodeId>, budget: usize) -> Result<Vec<(NodeId, Vec<u8>)>, Error> {
        Ok(self.saved_docs(after_id, budget, false)?.into_iter().map(|d| (d.id, d.bytes)).collect())
    }

    fn docs_after_with_views(&self, after_id: Option<NodeId>, budget: usize) -> Result<Vec<SavedDoc>, Error> {
        self.saved_docs(after_id, budget, true)
    }

    fn heads_after(&self, after_id: Option<NodeId>, limit: usize) -> Result<Vec<(NodeId, Vec<ChangeHash>)>, Error> {
        let s = self.snapshot();
        Ok(s.docs.range(after(after_id)).take(limit).map(|(id, doc)| (*id, doc.heads())).collect())
    }

    fn lacking(&self, offered: &[(NodeId, Vec<ChangeHash>)]) -> Result<Vec<Option<Vec<ChangeHash>>>, Error> {
        let s = self.snapshot();
        Ok(offered
            .iter()
            .map(|(id, heads)| {
                let doc = s.docs.get(id);
                let all_applied = heads.iter().all(|h| doc.is_some_and(|d| d.has_change(h)));
                (!all_applied).then(|| doc.map(|d| d.heads()).unwrap_or_default())
            })
            .collect())
    }

    fn changes_since(&self, doc: NodeId, have: &[ChangeHash]) -> Result<Vec<Change>, Error> {
        Ok(self.snapshot().docs.get(&doc).map(|d| d.changes_since(have)).unwrap_or_default())
    }
}

impl DeviceStore for MemoryStore {
    fn cursors(&self) -> Result<Cursors, Error> {
        Ok(self.snapshot().cursors.clone())
    }

    fn begin_sync(&self, hub: &str) -> Result<Cursors, Error> {
        self.write(|s| {
            let c = &mut s.cursors;
            if c.hub.as_deref() != Some(hub) {
                // One that never synced owes nothing; one that did holds
                // history the new hub may lack.
                let reconcile = c.hub.is_some() || c.reconcile;
                *c = Cursors { hub: Some(hub.to_string()), reconcile, ..Cursors::default() };
            }
            Ok(c.clone())
        })
    }

    fn restart_sync(&self, hub: &str) -> Result<Cursors, Error> {
        self.write(|s| {
            s.cursors = Cursors { hub: Some(hub.to_string()), reconcile: true, ..Cursors::default() };
            Ok(s.cursors.clone())
        })
    }

    fn set_reconcile(&self, owed: bool) -> Result<(), Error> {
        self.write(|s| {
            s.cursors.reconcile = owed;
            Ok(())
        })
    }

    fn apply_from_hub(&self, batch: Batch, upto: u64, known: Option<(u64, ChangeHash)>) -> Result<Applied, Error> {
        self.write(|s| {
            let applied = s.apply_batch(&self.origin, batch, false, None)?;
            s.cursors.hub_cursor = s.cursors.hub_cursor.max(upto);
            advance_known(&mut s.cursors, known);
            Ok(applied)
        })
    }

    fn merge_snapshots(
        &self,
        docs: Vec<(NodeId, Vec<u8>)>,
        upto: Option<u64>,
        known: Option<(u64, ChangeHash)>,
    ) -> Result<(), Error> {
        self.write(|s| {
            for (id, bytes) in &docs {
                s.merge_snapshot(&self.origin, *id, bytes)?;
            }
            if let Some(upto) = upto {
                s.cursors.hub_cursor = s.cursors.hub_cursor.max(upto);
                advance_known(&mut s.cursors, known);
            }
            Ok(())
        })
    }

    fn acknowledge(&self, pushed: u64, known: Option<(u64, ChangeHash)>) -> Result<(), Error> {
        self.write(|s| {
            s.cursors.pushed = s.cursors.pushed.max(pushed);
            advance_known(&mut s.cursors, known);
            Ok(())
        })
    }
}
