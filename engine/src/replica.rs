//! The replica: the small API every surface (CLI, daemon, hub RPC) uses.
//!
//! Each method is one consistent read or one durable write transaction. No
//! method reads the clock: callers pass `now`.

use std::collections::HashSet;
use std::path::Path;

use automerge::{ActorId, Change};
use chrono::{DateTime, NaiveDate, Utc};

use crate::doc::{Conflict, Edit, HistoryEntry, NodeDoc};
use crate::error::{Error, OpenError};
use crate::id::{NodeId, unique_prefix_len};
use crate::node::{Node, NodeSummary};
use crate::query::{Filter, is_blocked, sort_for_listing};
use crate::store::{Applied, Cursors, LoggedChange, Store};

/// A full local replica of one owner's nodes.
pub struct Replica {
    store: Store,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ImportReport {
    /// Nodes that were new.
    pub added: usize,
    /// Nodes that existed and had fields changed.
    pub updated: usize,
    /// Nodes that existed and were already identical.
    pub unchanged: usize,
}

impl Replica {
    /// Opens (or creates) the replica stored at `path`.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { store: Store::open(path)? })
    }

    /// Opens (or creates) the replica at `path` for one command of a
    /// short-lived process: commits also save the allocator state, so the
    /// process may end with [`Self::abandon`] instead of a clean close.
    pub fn open_for_command(path: &Path) -> Result<Self, OpenError> {
        let mut store = Store::open(path)?;
        store.set_quick_repair(true);
        Ok(Self { store })
    }

    /// Opens the replica at `path` for reading only: no disk writes or
    /// flushes. Fails where the store does not exist yet.
    pub fn open_read_only(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { store: Store::open_read_only(path)? })
    }

    /// A replica in memory only.
    pub fn in_memory() -> Result<Self, OpenError> {
        Ok(Self { store: Store::in_memory()? })
    }

    /// Ends this process's use of the replica without the clean-shutdown
    /// flushes; see [`Store::abandon`]. Only right before the process exits.
    pub fn abandon(self) {
        self.store.abandon();
    }

    /// This replica's device id (the Automerge actor of its edits).
    #[must_use]
    pub fn origin(&self) -> &ActorId {
        self.store.origin()
    }

    /// The underlying store, for sync.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The id of the one node whose id starts with `prefix`.
    ///
    /// Errors: [`Error::NotFound`], [`Error::Ambiguous`], [`Error::BadId`].
    pub fn resolve(&self, prefix: &str) -> Result<NodeId, Error> {
        self.store.read(|r| r.resolve(prefix))
    }

    /// Stores a new node: `draft` (its id, kind and fields) with `edits`
    /// applied, as one change at `draft.modified`. Returns the stored node.
    pub fn create(&self, draft: &Node, edits: &[Edit], message: &str) -> Result<Node, Error> {
        let (doc, changes) = NodeDoc::create_with(draft, edits, self.origin(), message)?;
        self.store.write(|w| w.save_local(draft.id, &doc, &changes))
    }

    /// Applies `edits` to node `id` as one change (one history entry).
    /// Returns the node as it now is; with no edits, nothing is written.
    pub fn edit(&self, id: NodeId, edits: &[Edit], message: &str, now: DateTime<Utc>) -> Result<Node, Error> {
        self.store.write(|w| {
            let mut doc = w.doc(id)?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
            match doc.edit(edits, message, now)? {
                Some(change) => w.save_local(id, &doc, &[change]),
                None => Ok(doc.materialise_as(id)?),
            }
        })
    }

    /// The node `id` in full.
    pub fn get(&self, id: NodeId) -> Result<Node, Error> {
        let doc = self.store.read(|r| r.doc(id))?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
        Ok(doc.materialise_as(id)?)
    }

    /// Index rows matching `filter` with their urgency, in listing order
    /// (most urgent first for tasks, most recently modified first for notes
    /// and journals).
    /// With `limit`, only the first `limit` rows of that order.
    pub fn list(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        limit: Option<usize>,
    ) -> Result<Vec<(f64, NodeSummary)>, Error> {
        let now_ms = now.timestamp_millis();
        let mut open_tasks = HashSet::new();
        let mut rows = Vec::new();
        self.store.read(|r| {
            r.scan(|row| {
                if row.status.is_some_and(|s| !matches!(s, crate::Status::Done | crate::Status::Cancelled))
                    && !row.deleted
                {
                    open_tasks.insert(row.id);
                }
                if filter.matches(&row, now_ms) {
                    rows.push(row);
                }
                true
            })
        })?;
        if filter.blocked {
            rows.retain(|r| is_blocked(r, &open_tasks));
        }
        Ok(sort_for_listing(rows, &open_tasks, now_ms, limit))
    }

    /// Nodes whose title, body, annotations or tags contain every word of
    /// `text` (case-insensitive), among those matching `filter`.
    pub fn search(&self, text: &str, filter: &Filter, now: DateTime<Utc>) -> Result<Vec<(f64, NodeSummary)>, Error> {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let mut hits = HashSet::new();
        self.store.read(|r| {
            r.scan_text(|id, haystack| {
                if words.iter().all(|w| haystack.contains(w.as_str())) {
                    hits.insert(id);
                }
            })
        })?;
        let mut rows = self.list(filter, now, None)?;
        rows.retain(|(_, row)| hits.contains(&row.id));
        Ok(rows)
    }

    /// Index rows of the nodes that link to `id`.
    pub fn backlinks(&self, id: NodeId) -> Result<Vec<NodeSummary>, Error> {
        self.store.read(|r| {
            let mut out = Vec::new();
            for source in r.backlinks(id)? {
                if let Some(row) = r.summary(source)? {
                    out.push(row);
                }
            }
            Ok(out)
        })
    }

    /// Index rows of several nodes (missing ones are skipped).
    pub fn summaries(&self, ids: &[NodeId]) -> Result<Vec<NodeSummary>, Error> {
        self.store.read(|r| ids.iter().filter_map(|id| r.summary(*id).transpose()).collect())
    }

    /// The shortest unique prefix length of each of `ids` (at least
    /// [`crate::id::MIN_PREFIX`]).
    pub fn prefix_lens(&self, ids: &[NodeId]) -> Result<Vec<usize>, Error> {
        self.store.read(|r| {
            // A few ids: look up their neighbours; many: one pass over all ids.
            if ids.len() < 256 {
                return ids
                    .iter()
                    .map(|id| {
                        let (prev, next) = r.neighbours(*id)?;
                        Ok(unique_prefix_len(id, prev.as_ref(), next.as_ref()))
                    })
                    .collect();
            }
            let all = r.ids()?;
            Ok(ids
                .iter()
                .map(|id| {
                    let at = all.binary_search(id).unwrap_or_else(|i| i);
                    let prev = at.checked_sub(1).and_then(|i| all.get(i));
                    let next_at = if all.get(at) == Some(id) { at + 1 } else { at };
                    unique_prefix_len(id, prev, all.get(next_at))
                })
                .collect())
        })
    }

    /// The changes that made node `id`, oldest first.
    pub fn history(&self, id: NodeId) -> Result<Vec<HistoryEntry>, Error> {
        let doc = self.store.read(|r| r.doc(id))?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
        Ok(doc.history())
    }

    /// Every unresolved conflict, by node id.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, Error> {
        self.store.read(|r| {
            let mut ids = Vec::new();
            r.scan(|row| {
                if !row.conflicts.is_empty() {
                    ids.push(row.id);
                }
                true
            })?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(doc) = r.doc(id)? {
                    out.extend(doc.conflicts(id)?);
                }
            }
            Ok(out)
        })
    }

    /// The unresolved conflicts of node `id`.
    pub fn conflicts_of(&self, id: NodeId) -> Result<Vec<Conflict>, Error> {
        match self.store.read(|r| r.doc(id))? {
            Some(doc) => Ok(doc.conflicts(id)?),
            None => Err(Error::NotFound(id.to_hex())),
        }
    }

    /// Number of nodes with unresolved conflicts (for sync health).
    pub fn conflict_count(&self) -> Result<usize, Error> {
        let mut n = 0;
        self.store.read(|r| {
            r.scan(|row| {
                n += usize::from(!row.conflicts.is_empty());
                true
            })
        })?;
        Ok(n)
    }

    /// Ends the conflict on `field` of `id` by keeping `values[choice]` as
    /// listed by [`Self::conflicts`]. Errors with [`Error::NotFound`] when
    /// there is no such conflict or choice.
    pub fn resolve_conflict(&self, id: NodeId, field: &str, choice: usize, now: DateTime<Utc>) -> Result<Node, Error> {
        self.store.write(|w| {
            let mut doc = w.doc(id)?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
            let listed = doc.conflicts(id)?;
            let conflict = listed
                .iter()
                .find(|c| c.field == field)
                .ok_or_else(|| Error::NotFound(format!("a conflict on {field} of {}", &id.to_hex()[..8])))?;
            let wanted = conflict
                .values
                .get(choice)
                .ok_or_else(|| Error::NotFound(format!("value {} of {field}", choice + 1)))?;
            match doc.resolve(field, wanted, now)? {
                Some(change) => w.save_local(id, &doc, &[change]),
                None => Err(Error::NotFound(format!("a conflict on {field} of {}", &id.to_hex()[..8]))),
            }
        })
    }

    /// The journal node of `day`, created if this replica has none yet.
    pub fn journal(&self, day: NaiveDate) -> Result<Node, Error> {
        let id = NodeId::journal(day);
        self.store.write(|w| {
            if let Some(doc) = w.doc(id)? {
                return Ok(doc.materialise_as(id)?);
            }
            let (mut doc, genesis) = NodeDoc::journal_genesis(day)?;
            doc.set_actor(&w.origin());
            w.save_local(id, &doc, &[genesis])
        })
    }

    /// Every node (deleted ones included), in id order.
    pub fn export(&self) -> Result<Vec<Node>, Error> {
        self.store.read(|r| {
            let mut out = Vec::new();
            for id in r.ids()? {
                if let Some(doc) = r.doc(id)? {
                    out.push(doc.materialise_as(id)?);
                }
            }
            Ok(out)
        })
    }

    /// Imports nodes in one transaction: new ids are created as they are, and
    /// existing ones get the fields that differ (so importing twice changes
    /// nothing). `progress(done, total)` is called as it goes.
    ///
    /// New documents are built on every core before the one write transaction.
    pub fn import(&self, nodes: &[Node], mut progress: impl FnMut(usize, usize)) -> Result<ImportReport, Error> {
        let origin = self.origin().clone();
        let existing: HashSet<NodeId> = self.store.read(|r| {
            let mut found = HashSet::new();
            for n in nodes {
                if r.summary(n.id)?.is_some() {
                    found.insert(n.id);
                }
            }
            Ok(found)
        })?;
        // A new id given twice is created once, from its last record.
        let mut seen = HashSet::new();
        let mut fresh: Vec<&Node> =
            nodes.iter().rev().filter(|n| !existing.contains(&n.id) && seen.insert(n.id)).collect();
        fresh.reverse();
        let prepared = prepare_parallel(&fresh, &origin)?;
        let total = nodes.len();
        self.store.write(|w| {
            let mut report = ImportReport::default();
            for (i, p) in prepared.iter().enumerate() {
                w.save_prepared(p.node.id, &p.saved, &p.changes, &p.node, &[])?;
                report.added += 1;
                if i % 512 == 0 {
                    progress(i + 1, total);
                }
            }
            for (i, node) in nodes.iter().filter(|n| existing.contains(&n.id)).enumerate() {
                let Some(mut doc) = w.doc(node.id)? else { continue };
                let current = doc.materialise_as(node.id)?;
                let edits = diff(&current, node);
                match doc.edit(&edits, "import", node.modified.max(current.modified))? {
                    Some(change) => {
                        w.save_local(node.id, &doc, &[change])?;
                        report.updated += 1;
                    }
                    None => report.unchanged += 1,
                }
                if i % 256 == 0 {
                    progress(prepared.len() + i + 1, total);
                }
            }
            progress(total, total);
            Ok(report)
        })
    }

    /// The highest seq of the local change log.
    pub fn last_seq(&self) -> Result<u64, Error> {
        self.store.read(|r| r.last_seq())
    }

    /// Up to `limit` log entries after `after`, oldest first.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedChange>, Error> {
        self.store.read(|r| r.changes_after(after, limit, false))
    }

    /// Up to `limit` changes made on this replica after local seq `after`.
    pub fn local_changes_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedChange>, Error> {
        self.store.read(|r| r.changes_after(after, limit, true))
    }

    /// Applies raw changes received from elsewhere, in one transaction.
    /// Invalid bytes fail the whole batch with [`Error::InvalidChange`] and
    /// store nothing.
    pub fn apply_changes(&self, batch: Vec<(NodeId, Vec<u8>)>) -> Result<Applied, Error> {
        let by_doc = group(batch)?;
        self.store.write(|w| apply_grouped(w, by_doc))
    }

    /// How many local changes the hub has not acknowledged.
    pub fn pending_push(&self) -> Result<u64, Error> {
        self.store.read(|r| r.count_local_after(r.cursors()?.pushed))
    }

    /// Where sync stands.
    pub fn cursors(&self) -> Result<Cursors, Error> {
        self.store.read(|r| r.cursors())
    }

    /// Begins a session with hub `hub`: returns the cursors to resume from.
    /// A hub other than the last one means another log, so both cursors
    /// start over (everything local is offered again; the hub dedups).
    pub fn begin_sync(&self, hub: &str) -> Result<Cursors, Error> {
        self.store.write(|w| {
            let mut c = w.cursors()?;
            if c.hub.as_deref() != Some(hub) {
                c = Cursors { hub: Some(hub.to_string()), hub_cursor: 0, pushed: 0 };
                w.set_cursors(&c)?;
            }
            Ok(c)
        })
    }

    /// Applies a batch of changes pulled from the hub and advances the hub
    /// cursor to `upto`, in one transaction: the cursor never runs ahead of
    /// what is stored.
    pub fn apply_from_hub(&self, batch: Vec<(NodeId, Vec<u8>)>, upto: u64) -> Result<Applied, Error> {
        let by_doc = group(batch)?;
        self.store.write(|w| {
            let report = apply_grouped(w, by_doc)?;
            let mut c = w.cursors()?;
            c.hub_cursor = c.hub_cursor.max(upto);
            w.set_cursors(&c)?;
            Ok(report)
        })
    }

    /// Merges compacted documents from the hub (bootstrap), in one
    /// transaction; with `upto` (the last snapshot frame), also sets the hub
    /// cursor to the hub seq they reflect.
    pub fn merge_snapshots(&self, docs: Vec<(NodeId, Vec<u8>)>, upto: Option<u64>) -> Result<(), Error> {
        self.store.write(|w| {
            for (id, bytes) in &docs {
                w.merge_snapshot(*id, bytes)?;
            }
            if let Some(upto) = upto {
                let mut c = w.cursors()?;
                c.hub_cursor = c.hub_cursor.max(upto);
                w.set_cursors(&c)?;
            }
            Ok(())
        })
    }

    /// Records that the hub has durably stored local changes up to `pushed`.
    pub fn acknowledge(&self, pushed: u64) -> Result<(), Error> {
        self.store.write(|w| {
            let mut c = w.cursors()?;
            c.pushed = c.pushed.max(pushed);
            w.set_cursors(&c)
        })
    }

    /// Every document and the log seq they reflect (a hub's bootstrap source).
    pub fn snapshots(&self) -> Result<crate::store::Snapshots, Error> {
        self.store.read(|r| r.snapshots())
    }
}

/// A new node's document, built and read back outside the write transaction.
struct Prepared {
    node: Node,
    saved: Vec<u8>,
    changes: Vec<Change>,
}

fn prepare(node: &Node, origin: &ActorId) -> Result<Prepared, Error> {
    // Derived, so importing the same record on two devices makes the same
    // changes and one document; then back to this device's actor.
    let (mut doc, changes) = NodeDoc::create_derived(node, "import")?;
    doc.set_actor(origin);
    // A new document reads back as the normalised node (tested in doc.rs),
    // so the index row needs no read-back.
    Ok(Prepared { node: node.normalised(), saved: doc.save(), changes })
}

fn prepare_parallel(nodes: &[&Node], origin: &ActorId) -> Result<Vec<Prepared>, Error> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads < 2 || nodes.len() < 64 {
        return nodes.iter().map(|n| prepare(n, origin)).collect();
    }
    let chunk = nodes.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|n| prepare(n, origin)).collect::<Result<Vec<_>, Error>>()))
            .collect();
        let mut out = Vec::with_capacity(nodes.len());
        for h in handles {
            out.extend(h.join().map_err(|_| Error::Storage("an import worker panicked".into()))??);
        }
        Ok(out)
    })
}

fn group(batch: Vec<(NodeId, Vec<u8>)>) -> Result<Vec<(NodeId, Vec<Change>)>, Error> {
    // Keep arrival order per document and documents in first-seen order, so
    // the log order follows the sender's order.
    let mut order: Vec<NodeId> = Vec::new();
    let mut by_doc: std::collections::HashMap<NodeId, Vec<Change>> = std::collections::HashMap::new();
    for (doc, bytes) in batch {
        let change = Change::from_bytes(bytes).map_err(|e| Error::InvalidChange { doc, reason: e.to_string() })?;
        by_doc
            .entry(doc)
            .or_insert_with(|| {
                order.push(doc);
                Vec::new()
            })
            .push(change);
    }
    Ok(order.into_iter().map(|d| (d, by_doc.remove(&d).unwrap_or_default())).collect())
}

fn apply_grouped(w: &mut crate::store::Writer, by_doc: Vec<(NodeId, Vec<Change>)>) -> Result<Applied, Error> {
    let mut report = Applied::default();
    for (doc, changes) in by_doc {
        w.apply_remote(doc, changes, &mut report)?;
    }
    Ok(report)
}

/// The edits that turn `old` into `new` (used by import).
#[must_use]
pub fn diff(old: &Node, new: &Node) -> Vec<Edit> {
    let mut edits = Vec::new();
    if old.title != new.title {
        edits.push(Edit::Title(new.title.clone()));
    }
    if old.body != new.body {
        edits.push(Edit::Body(new.body.clone()));
    }
    if old.status != new.status
        && let Some(s) = new.status
    {
        edits.push(Edit::Status(s));
    }
    if old.start != new.start || old.status != new.status {
        edits.push(Edit::Start(new.start));
    }
    if old.end != new.end || old.status != new.status {
        edits.push(Edit::End(new.end));
    }
    if old.priority != new.priority {
        edits.push(Edit::Priority(new.priority));
    }
    if old.due != new.due {
        edits.push(Edit::Due(new.due));
    }
    if old.wait != new.wait {
        edits.push(Edit::Wait(new.wait));
    }
    if old.scheduled != new.scheduled {
        edits.push(Edit::Scheduled(new.scheduled));
    }
    if old.project != new.project {
        edits.push(Edit::Project(new.project.clone()));
    }
    if old.deleted != new.deleted {
        edits.push(Edit::Deleted(new.deleted));
    }
    edits.extend(new.tags.difference(&old.tags).map(|t| Edit::AddTag(t.clone())));
    edits.extend(old.tags.difference(&new.tags).map(|t| Edit::RemoveTag(t.clone())));
    edits.extend(new.links.difference(&old.links).map(|l| Edit::Link(*l)));
    edits.extend(old.links.difference(&new.links).map(|l| Edit::Unlink(*l)));
    edits.extend(new.depends.difference(&old.depends).map(|d| Edit::Depend(*d)));
    edits.extend(old.depends.difference(&new.depends).map(|d| Edit::Undepend(*d)));
    for a in &new.annotations {
        if !old.annotations.contains(a) {
            edits.push(Edit::Annotate(a.clone()));
        }
    }
    for (k, v) in &new.uda {
        if old.uda.get(k) != Some(v) {
            edits.push(Edit::Uda(k.clone(), Some(v.clone())));
        }
    }
    for k in old.uda.keys().filter(|k| !new.uda.contains_key(*k)) {
        edits.push(Edit::Uda(k.clone(), None));
    }
    edits
}
