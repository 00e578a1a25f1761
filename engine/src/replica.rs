//! The replica: the small API every surface (CLI, daemon, hub RPC) uses.
//!
//! Each method is one consistent read or one durable write transaction. No
//! method reads the clock: callers pass `now`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use automerge::{ActorId, Change, ChangeHash};
use chrono::{DateTime, NaiveDate, Utc};

use crate::archive::Absent;
use crate::doc::{Conflict, Edit, HistoryEntry, NodeDoc};
use crate::error::{Error, OpenError};
use crate::id::{NodeId, Purpose, unique_prefix_len};
use crate::limits::MAX_CHANGE_BYTES;
use crate::node::{Annotation, Node, NodeSummary};
use crate::query::{Filter, Graph, sort_for_listing};
use crate::store::{Applied, Cursors, LoggedChange, PendingStats, SavedDoc, Store, Unreadable};
use crate::undo::{self, UndoPlan};

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
    /// Records whose id a later record of the same import gives again
    /// (the later one is what the node ends up as).
    #[serde(default)]
    pub repeated: usize,
}

/// Where a replica's content stands, cheap to read: it changes whenever the
/// content can have changed (a change logged, made here or received, or
/// snapshots merged from the hub, which move the hub cursor). A viewer polls
/// it and reads again only when it moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Version {
    /// The highest seq of the local change log.
    pub seq: u64,
    /// The last hub seq stored here.
    pub hub_cursor: u64,
}

impl Replica {
    /// Opens (or creates) the replica stored at `path`.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self { store: Store::open(path)? })
    }

    /// [`Self::open`] with at most `cache_bytes` of page cache (a
    /// long-running hub keeps its memory bounded; see
    /// [`Store::open_with_cache`]).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, OpenError> {
        Ok(Self { store: Store::open_with_cache(path, Some(cache_bytes))? })
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
    pub fn origin(&self) -> ActorId {
        self.store.origin()
    }

    /// The underlying store, for sync.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The id of the one node whose id starts with `prefix`, to read it
    /// (any unique prefix); see [`Self::resolve_for`].
    pub fn resolve(&self, prefix: &str) -> Result<NodeId, Error> {
        self.resolve_for(prefix, Purpose::Read)
    }

    /// The id of the one node whose id starts with `prefix`, for `purpose`.
    ///
    /// Errors: [`Error::NotFound`], [`Error::Ambiguous`], [`Error::BadId`],
    /// and [`Error::PrefixTooShort`] when a change is named by fewer than
    /// [`crate::id::MIN_CHANGE_PREFIX`] digits.
    pub fn resolve_for(&self, prefix: &str, purpose: Purpose) -> Result<NodeId, Error> {
        self.store.read(|r| r.resolve(prefix, purpose))
    }

    /// Stores a new node: `draft` (its id, kind and fields) with `edits`
    /// applied, as one change at `draft.modified`. Returns the stored node.
    ///
    /// Errors: [`Error::Exists`] when a node (or any document) with that id
    /// is stored already; [`Error::ChangeTooLarge`] when the change could
    /// never sync.
    pub fn create(&self, draft: &Node, edits: &[Edit], message: &str) -> Result<Node, Error> {
        check_text(Some(draft), edits)?;
        let (doc, changes) = NodeDoc::create_with(draft, edits, &self.origin(), message)?;
        check_size(&changes)?;
        self.store.write(|w| {
            if w.doc(draft.id)?.is_some() {
                return Err(Error::Exists(draft.id));
            }
            w.save_local(draft.id, &doc, &changes)
        })
    }

    /// Applies `edits` to node `id` as one change (one history entry).
    /// Returns the node as it now is; with no edits, nothing is written.
    ///
    /// Errors: [`Error::DependencyCycle`] when a dependency it adds would
    /// make the task wait on itself.
    pub fn edit(&self, id: NodeId, edits: &[Edit], message: &str, now: DateTime<Utc>) -> Result<Node, Error> {
        check_text(None, edits)?;
        self.check_depends(id, edits)?;
        self.store.write(|w| {
            let mut doc = w.doc(id)?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
            match doc.edit(edits, message, now)? {
                Some(change) => {
                    check_size(std::slice::from_ref(&change))?;
                    w.save_local(id, &doc, &[change])
                }
                None => Ok(doc.materialise_as(id)?),
            }
        })
    }

    /// Refuses a dependency `edits` add to `id` when the task it names
    /// already depends on `id`, directly or through others (or is `id`).
    fn check_depends(&self, id: NodeId, edits: &[Edit]) -> Result<(), Error> {
        let added: Vec<NodeId> =
            edits.iter().filter_map(|e| if let Edit::Depend(d) = e { Some(*d) } else { None }).collect();
        if added.is_empty() {
            return Ok(());
        }
        self.store.read(|r| {
            for start in added {
                // Breadth first from the new dependency; `came_from` leads back to it.
                let mut came_from = std::collections::HashMap::from([(start, start)]);
                let mut queue = std::collections::VecDeque::from([start]);
                while let Some(at) = queue.pop_front() {
                    if at == id {
                        let mut path = vec![at];
                        let mut step = at;
                        while step != start {
                            step = came_from[&step];
                            path.push(step);
                        }
                        path.reverse();
                        return Err(Error::DependencyCycle { task: id, path });
                    }
                    for next in r.summary(at)?.map(|s| s.depends).unwrap_or_default() {
                        came_from.entry(next).or_insert_with(|| {
                            queue.push_back(next);
                            at
                        });
                    }
                }
            }
            Ok(())
        })
    }

    /// The node `id` in full.
    pub fn get(&self, id: NodeId) -> Result<Node, Error> {
        self.store.read(|r| r.node(id))?.ok_or_else(|| Error::NotFound(id.to_hex()))
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
        let mut graph = Graph::default();
        let mut rows = Vec::new();
        // Filters on dependencies or urgency are decided once the graph is whole.
        let later = filter.needs_graph();
        let udas = filter.udas();
        let mut seen_udas = vec![false; udas.len()];
        self.store.read(|r| {
            r.scan(|row| {
                graph.add(&row);
                for (seen, name) in seen_udas.iter_mut().zip(&udas) {
                    *seen |= row.uda(name).is_some();
                }
                if later || filter.matches(&row, now_ms, None) {
                    rows.push(row);
                }
                true
            })
        })?;
        if let Some((name, _)) = udas.iter().zip(&seen_udas).find(|(_, seen)| !**seen) {
            return Err(Error::UnknownAttribute(name.clone()));
        }
        if later {
            rows.retain(|row| filter.matches(row, now_ms, Some(&graph)));
        }
        Ok(sort_for_listing(rows, &graph, now_ms, limit))
    }

    /// Nodes whose title, body, annotations or tags contain every word of
    /// `text` (case-insensitive), among those matching `filter`.
    pub fn search(&self, text: &str, filter: &Filter, now: DateTime<Utc>) -> Result<Vec<(f64, NodeSummary)>, Error> {
        let words: Vec<Vec<String>> = text.split_whitespace().map(search_forms).collect();
        let mut hits = HashSet::new();
        self.store.read(|r| {
            r.scan_text(|id, haystack| {
                if words.iter().all(|forms| forms.iter().any(|w| haystack.contains(w.as_str()))) {
                    hits.insert(id);
                }
            })
        })?;
        let mut rows = self.list(filter, now, None)?;
        rows.retain(|(_, row)| hits.contains(&row.id));
        Ok(rows)
    }

    /// Index rows of the nodes that link to `id`, deleted ones left out.
    pub fn backlinks(&self, id: NodeId) -> Result<Vec<NodeSummary>, Error> {
        self.store.read(|r| {
            let mut out = Vec::new();
            for source in r.backlinks(id)? {
                if let Some(row) = r.summary(source)?.filter(|row| !row.deleted) {
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
        self.store.read(|r| {
            if r.known_free_of_conflicts(id)? {
                return Ok(Vec::new());
            }
            match r.doc(id)? {
                Some(doc) => Ok(doc.conflicts(id)?),
                None => Err(Error::NotFound(id.to_hex())),
            }
        })
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
            let short = &id.to_hex()[..8];
            let none_on = || {
                let fields: Vec<&str> = listed.iter().map(|c| c.field.as_str()).collect();
                Error::NoSuchConflict(if fields.is_empty() {
                    format!("{short} has no conflicts")
                } else {
                    format!("{short} has no conflict on {field}; its conflicts are on {}", fields.join(", "))
                })
            };
            let conflict = listed.iter().find(|c| c.field == field).ok_or_else(none_on)?;
            let n = conflict.values.len();
            let wanted = conflict.values.get(choice).ok_or_else(|| {
                Error::NoSuchConflict(format!(
                    "{field} of {short} has {n} values to choose from (1 to {n}); `heph conflicts {short}` lists them"
                ))
            })?;
            match doc.resolve(field, wanted, now)? {
                Some(change) => w.save_local(id, &doc, &[change]),
                None => Err(none_on()),
            }
        })
    }

    /// What [`Self::undo`] would revert now: this device's newest change
    /// that is neither an undo nor undone (see [`crate::undo`]); `None`
    /// when there is none.
    pub fn undo_plan(&self) -> Result<Option<UndoPlan>, Error> {
        self.store.read(|r| {
            let Some((id, change)) = undo::target(|f| r.walk_own(f))? else { return Ok(None) };
            let doc = r.doc(id)?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
            undo::plan(&doc, id, &change).map(Some)
        })
    }

    /// Reverts this device's newest change that is neither an undo nor
    /// undone, as a new change at `now` that syncs like any edit. With
    /// `expected` (a change hash from [`Self::undo_plan`]), only if that is
    /// still the change to undo. Returns what was reverted and the node.
    ///
    /// Errors: [`Error::NothingToUndo`]; [`Error::UndoMoved`] when the
    /// change to undo is no longer `expected`.
    pub fn undo(&self, expected: Option<&str>, now: DateTime<Utc>) -> Result<(UndoPlan, Node), Error> {
        self.store.write(|w| {
            let (id, change) = undo::target(|f| w.walk_own(f))?.ok_or(Error::NothingToUndo)?;
            if let Some(expected) = expected
                && change.hash().to_string() != expected
            {
                return Err(Error::UndoMoved { expected: expected.to_string() });
            }
            let mut doc = w.doc(id)?.ok_or_else(|| Error::NotFound(id.to_hex()))?;
            let plan = undo::plan(&doc, id, &change)?;
            let node = match undo::revert(&mut doc, id, &change, now)? {
                Some(revert) => {
                    check_size(std::slice::from_ref(&revert))?;
                    w.save_local(id, &doc, &[revert])?
                }
                None => doc.materialise_as(id)?,
            };
            Ok((plan, node))
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

    /// Checks the whole store ([`crate::store::Reader::check`]);
    /// `progress` gets (documents read, documents in all).
    pub fn check(&self, progress: impl FnMut(u64, u64)) -> Result<crate::CheckReport, Error> {
        self.store.read(|r| r.check(progress))
    }

    /// `heph check`: checks the store and, with `repair`, mends what the
    /// store can mend ([`Self::repair`]) and checks again.
    pub fn check_and_repair(&self, repair: bool, progress: impl FnMut(u64, u64)) -> Result<crate::CheckOutcome, Error> {
        let found = self.check(progress)?;
        let mut outcome = crate::CheckOutcome { found, repaired: None };
        if repair && outcome.found.problems.iter().any(crate::Problem::mendable) {
            let (documents, changes_restored) = self.repair(&outcome.found)?;
            let left = self.check(|_, _| {})?.problems;
            outcome.repaired = Some(crate::store::Repaired { documents, changes_restored, left });
        }
        Ok(outcome)
    }

    /// Mends what `report` found that the store itself can mend, in one
    /// write: a logged change missing from its document goes back into it,
    /// and rows derived from documents are rebuilt. A damaged document or
    /// change, or a broken log, is left as it is (a backup or the hub holds
    /// what it held). Returns how many documents were mended and how many
    /// changes went back into them.
    pub fn repair(&self, report: &crate::CheckReport) -> Result<(usize, usize), Error> {
        use crate::Problem;
        let mut ids: std::collections::BTreeMap<NodeId, Vec<ChangeHash>> = std::collections::BTreeMap::new();
        for p in &report.problems {
            match p {
                Problem::ChangeNotInDocument { id, hash, .. } => {
                    if let Ok(h) = hash.parse::<ChangeHash>() {
                        ids.entry(*id).or_default().push(h);
                    }
                }
                p if p.derived() => {
                    if let Some(id) = p.node() {
                        ids.entry(id).or_default();
                    }
                }
                _ => {}
            }
        }
        self.store.write(|w| {
            let mut restored = 0;
            for (id, lost) in &ids {
                restored += w.mend(*id, lost)?;
            }
            Ok((ids.len(), restored))
        })
    }

    /// Every node (deleted ones included), in id order.
    pub fn export(&self) -> Result<Vec<Node>, Error> {
        self.store.read(|r| {
            let mut out = Vec::new();
            for id in r.ids()? {
                if let Some(node) = r.node(id)? {
                    out.push(node);
                }
            }
            Ok(out)
        })
    }

    /// Every stored document as export records: nodes (with their saved
    /// documents where they hold fields this heph cannot read), then the
    /// documents that do not read as nodes, raw. See [`crate::archive`].
    pub fn export_records(&self) -> Result<Vec<crate::archive::Record>, Error> {
        use crate::archive::Record;
        self.store.read(|r| {
            let mut out = Vec::new();
            for id in r.ids()? {
                if let Some(node) = r.node(id)? {
                    let raw = if has_unread_fields(&node) { r.raw_doc(id)? } else { None };
                    out.push(Record::Node(Box::new(node), raw, crate::archive::Absent::default()));
                }
            }
            for u in r.unreadable()? {
                if let Some(raw) = r.raw_doc(u.id)? {
                    out.push(Record::Raw { id: u.id, reason: u.reason, raw });
                }
            }
            Ok(out)
        })
    }

    /// Imports export records: entries with a saved document are merged as
    /// they were ([`Self::merge_raw`]), the rest as [`Self::import`] does.
    pub fn import_records(
        &self,
        records: Vec<crate::archive::Record>,
        progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        use crate::archive::Record;
        let mut nodes = Vec::new();
        let mut raw = Vec::new();
        for record in records {
            match record {
                Record::Node(node, None, absent) => nodes.push((*node, absent)),
                Record::Node(node, Some(bytes), _) => raw.push((node.id, bytes)),
                Record::Raw { id, raw: bytes, .. } => raw.push((id, bytes)),
            }
        }
        let existing: HashSet<NodeId> = self.store.read(|r| {
            let mut found = HashSet::new();
            for (id, _) in &raw {
                if r.has_doc(*id)? {
                    found.insert(*id);
                }
            }
            Ok(found)
        })?;
        let records: Vec<(&Node, Absent)> = nodes.iter().map(|(n, absent)| (n, *absent)).collect();
        let mut report = self.import_leaving(&records, progress)?;
        for ((id, _), applied) in raw.iter().zip(self.merge_raw(&raw)?) {
            if !existing.contains(id) {
                report.added += 1;
            } else if applied > 0 {
                report.updated += 1;
            } else {
                report.unchanged += 1;
            }
        }
        Ok(report)
    }

    /// Imports nodes in one transaction: new ids are created as they are, and
    /// existing ones get the fields that differ (so importing twice changes
    /// nothing). `progress(done, total)` is called as it goes.
    ///
    /// New documents are built on every core before the one write transaction.
    pub fn import(&self, nodes: &[Node], progress: impl FnMut(usize, usize)) -> Result<ImportReport, Error> {
        let records: Vec<(&Node, Absent)> = nodes.iter().map(|n| (n, Absent::default())).collect();
        self.import_leaving(&records, progress)
    }

    /// [`Self::import`], each node with the fields its record left out: an
    /// existing node keeps its own of those.
    ///
    /// A journal day has one id on every device ([`NodeId::journal`]): a
    /// record of a day under another id (written by hand, or by another
    /// program) goes into that day's journal.
    pub fn import_leaving(
        &self,
        records: &[(&Node, Absent)],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        let repeated = records.len() - records.iter().map(|(n, _)| n.id).collect::<HashSet<_>>().len();
        let (days, into_day) = to_their_days(records);
        let records: Vec<(&Node, Absent)> = days.iter().map(|(n, absent)| (n.as_ref(), *absent)).collect();
        let records = records.as_slice();
        let nodes: Vec<&Node> = records.iter().map(|(n, _)| *n).collect();
        let origin = self.origin();
        // Stored documents, whether or not they read as nodes or are indexed
        // yet (a hub indexes what devices push later): never created again.
        let mut existing: HashSet<NodeId> = self.store.read(|r| {
            let mut found = HashSet::new();
            for n in &nodes {
                if r.has_doc(n.id)? {
                    found.insert(n.id);
                }
            }
            Ok(found)
        })?;
        // A new id given twice is created once, from its last record.
        let mut seen = HashSet::new();
        let mut fresh: Vec<&Node> =
            nodes.iter().rev().copied().filter(|n| !existing.contains(&n.id) && seen.insert(n.id)).collect();
        fresh.reverse();
        for node in &fresh {
            import_fits(node, check_text(Some(node), &[]))?;
        }
        let prepared = prepare_parallel(&fresh, &origin)?;
        for p in &prepared {
            import_fits(&p.node, check_size(&p.changes))?;
        }
        let total = nodes.len();
        self.store.write(|w| {
            let mut report = ImportReport { repeated, ..ImportReport::default() };
            for (i, p) in prepared.iter().enumerate() {
                // Stored since it was read (a sync): edited below instead.
                if w.has_doc(p.node.id)? {
                    existing.insert(p.node.id);
                    continue;
                }
                let heads: Vec<_> = p.changes.last().map(Change::hash).into_iter().collect();
                w.save_prepared(p.node.id, &p.saved, &heads, &p.changes, &p.node, &[])?;
                report.added += 1;
                if i % 512 == 0 {
                    progress(i + 1, total);
                }
            }
            for (i, (node, absent)) in records.iter().filter(|(n, _)| existing.contains(&n.id)).enumerate() {
                let Some(mut doc) = w.doc(node.id)? else { continue };
                let current = doc
                    .materialise_as(node.id)
                    .map_err(|e| Error::ImportOverUnreadable { id: node.id, reason: e.to_string() })?;
                let mut wanted = Cow::Borrowed(*node);
                if absent.body {
                    wanted.to_mut().body.clone_from(&current.body);
                }
                if absent.links {
                    wanted.to_mut().links.clone_from(&current.links);
                }
                if into_day.contains(&node.id) {
                    // A day's journal written elsewhere under another id:
                    // its text joins the day's; nothing of either is lost.
                    let w = wanted.to_mut();
                    w.title.clone_from(&current.title);
                    w.created = current.created;
                    w.body = joined(&current.body, &node.body);
                    w.tags.extend(current.tags.iter().cloned());
                    w.links.extend(current.links.iter().copied());
                }
                let edits = diff(&current, &wanted);
                match doc.edit(&edits, "import", node.modified.max(current.modified))? {
                    Some(change) => {
                        import_fits(node, check_size(std::slice::from_ref(&change)))?;
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

    /// Where the content stands (see [`Version`]): two small reads.
    pub fn version(&self) -> Result<Version, Error> {
        self.store.read(|r| Ok(Version { seq: r.last_seq()?, hub_cursor: r.cursors()?.hub_cursor }))
    }

    /// Up to `limit` log entries after `after`, oldest first.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedChange>, Error> {
        self.store.read(|r| r.changes_after(after, limit, usize::MAX, false))
    }

    /// Log entries after `after`, oldest first: at most `limit`, and past the
    /// first at most `budget` bytes on the wire (a catch-up frame).
    pub fn changes_within(&self, after: u64, limit: usize, budget: usize) -> Result<Vec<LoggedChange>, Error> {
        self.store.read(|r| r.changes_after(after, limit, budget, false))
    }

    /// Changes made on this replica after local seq `after`: at most
    /// `limit`, and past the first at most `budget` bytes on the wire.
    pub fn local_changes_after(&self, after: u64, limit: usize, budget: usize) -> Result<Vec<LoggedChange>, Error> {
        self.store.read(|r| r.changes_after(after, limit, budget, true))
    }

    /// Applies raw changes received from elsewhere, in one transaction.
    /// Invalid bytes (or bytes over the size limits, see [`crate::limits`])
    /// fail the whole batch with [`Error::InvalidChange`] and store nothing.
    pub fn apply_changes(&self, batch: Vec<(NodeId, Vec<u8>)>) -> Result<Applied, Error> {
        self.apply_parsed(parse_changes(batch)?, None)
    }

    /// Applies changes parsed with [`parse_changes`] (outside anything that
    /// serialises writers), in one transaction. With `max_pending`, an apply
    /// that would leave more changes waiting for their dependencies fails
    /// with [`Error::PendingQuota`] and stores nothing.
    pub fn apply_parsed(
        &self,
        batch: Vec<(NodeId, Change)>,
        max_pending: Option<crate::limits::PendingQuota>,
    ) -> Result<Applied, Error> {
        let by_doc = group(batch);
        self.store.write(|w| {
            w.set_max_pending(max_pending);
            apply_grouped(w, by_doc, false)
        })
    }

    /// Applies several batches (pushes from several connections) in one
    /// transaction, in order, each all-or-nothing: a batch refused (an
    /// invalid change, the waiting quota) is left out, and the others commit.
    ///
    /// A refusal aborts the transaction it happens in. The batches before
    /// it are then committed by themselves (they applied cleanly on the same
    /// state, so they apply again), and those after it in a transaction of
    /// their own: each batch is applied at most twice and each refusal costs
    /// two commits, however many batches a group holds.
    ///
    /// The outer `Err` is a storage failure before anything was stored.
    /// One after a part of the group committed is that part's batches'
    /// `Ok` and the others' `Err`.
    pub fn apply_group(
        &self,
        batches: Vec<Vec<(NodeId, Change)>>,
        max_pending: Option<crate::limits::PendingQuota>,
    ) -> Result<Vec<Result<Applied, Error>>, Error> {
        let grouped: Vec<_> = batches.into_iter().map(group).collect();
        let mut outcomes: Vec<Option<Result<Applied, Error>>> = grouped.iter().map(|_| None).collect();
        // Runs of batches still to commit, in order.
        let mut runs = std::collections::VecDeque::new();
        runs.push_back(0..grouped.len());
        while let Some(run) = runs.pop_front() {
            if run.is_empty() {
                continue;
            }
            let mut refusal = None;
            // A panic (a bug met by one batch) fails this run alone, as a
            // storage failure: the runs before it stay committed, and say so.
            let attempt = crate::error::unpanicked(|| {
                self.store.write(|w| {
                    w.set_max_pending(max_pending);
                    let mut out = Vec::with_capacity(run.len());
                    for i in run.clone() {
                        match apply_grouped(w, grouped[i].clone(), false) {
                            Ok(applied) => out.push(applied),
                            Err(e) if e.refuses_batch() => {
                                refusal = Some((i, e));
                                // Aborts the transaction: nothing of it is kept.
                                return Err(Error::Storage("a batch was refused".into()));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(out)
                })
            })
            .and_then(|r| r);
            match (attempt, refusal) {
                (_, Some((i, e))) => {
                    outcomes[i] = Some(Err(e));
                    runs.push_front(i + 1..run.end);
                    runs.push_front(run.start..i);
                }
                (Ok(out), None) => {
                    for (i, applied) in run.zip(out) {
                        outcomes[i] = Some(Ok(applied));
                    }
                }
                (Err(e), None) if outcomes.iter().all(|o| !matches!(o, Some(Ok(_)))) => return Err(e),
                (Err(e), None) => {
                    // Some batches committed: theirs stand, the rest fail.
                    for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                        *o = Some(Err(Error::Storage(e.to_string())));
                    }
                    break;
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::Storage("a batch was neither applied nor refused".into()))))
            .collect())
    }

    /// Hub mode (see [`crate::store`]): received changes are appended to
    /// their documents, up to `cached_docs` documents of at most
    /// `cached_bytes` of estimated memory in all stay loaded between
    /// commits, and the search indexes follow later
    /// ([`Self::refresh_stale`]).
    pub fn set_hub_mode(&mut self, cached_docs: usize, cached_bytes: usize) {
        self.store.set_hub_mode(cached_docs, cached_bytes);
    }

    /// Hub mode: how much the document cache holds now.
    pub fn doc_cache(&self) -> Option<crate::store::DocCacheUse> {
        self.store.doc_cache()
    }

    /// Brings the indexes of up to `limit` documents up to date (hub mode),
    /// in one transaction; returns how many it did (0: all are current).
    pub fn refresh_stale(&self, limit: usize) -> Result<usize, Error> {
        self.store.write(|w| w.refresh_stale(limit))
    }

    /// Hub mode: marks for the background refresh every document whose
    /// reading for bootstrapping browsers is missing or out of date (a store
    /// written before readings were kept); returns how many.
    pub fn stale_without_views(&self) -> Result<usize, Error> {
        self.store.write(|w| w.stale_without_views())
    }

    /// How many documents' indexes are behind (hub mode).
    pub fn stale_count(&self) -> Result<u64, Error> {
        self.store.read(|r| r.stale_count())
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
    /// A hub other than the last one means another log: both cursors start
    /// over (everything is offered again; the hub dedups), and a
    /// reconciliation is owed (see [`Self::restart_sync`]).
    pub fn begin_sync(&self, hub: &str) -> Result<Cursors, Error> {
        self.store.write(|w| {
            let mut c = w.cursors()?;
            if c.hub.as_deref() != Some(hub) {
                // A replica that never synced owes nothing; one that did
                // holds history the new hub may lack.
                let reconcile = c.hub.is_some() || c.reconcile;
                c = Cursors { hub: Some(hub.to_string()), reconcile, ..Cursors::default() };
                w.set_cursors(&c)?;
            }
            Ok(c)
        })
    }

    /// The hub no longer holds what this replica saw of its log (it was
    /// replaced or restored from an older copy): start the cursors afresh
    /// and owe it a reconciliation, in one transaction.
    pub fn restart_sync(&self, hub: &str) -> Result<Cursors, Error> {
        self.store.write(|w| {
            let c = Cursors { hub: Some(hub.to_string()), reconcile: true, ..Cursors::default() };
            w.set_cursors(&c)?;
            Ok(c)
        })
    }

    /// Sets or clears the owed reconciliation.
    pub fn set_reconcile(&self, owed: bool) -> Result<(), Error> {
        self.store.write(|w| {
            let mut c = w.cursors()?;
            if c.reconcile != owed {
                c.reconcile = owed;
                w.set_cursors(&c)?;
            }
            Ok(())
        })
    }

    /// Applies a batch of changes pulled from the hub and advances the hub
    /// cursor to `upto`, in one transaction: the cursor never runs ahead of
    /// what is stored. `known` is the hub's change at the batch's last seq.
    pub fn apply_from_hub(
        &self,
        batch: Vec<(NodeId, Change)>,
        upto: u64,
        known: Option<(u64, ChangeHash)>,
    ) -> Result<Applied, Error> {
        let by_doc = group(batch);
        self.store.write(|w| {
            let report = apply_grouped(w, by_doc, false)?;
            let mut c = w.cursors()?;
            c.hub_cursor = c.hub_cursor.max(upto);
            advance_known(&mut c, known);
            w.set_cursors(&c)?;
            Ok(report)
        })
    }

    /// Merges compacted documents from the hub (bootstrap), in one
    /// transaction; with `upto` (the last snapshot frame), also sets the hub
    /// cursor to the hub seq they reflect.
    pub fn merge_snapshots(
        &self,
        docs: Vec<(NodeId, Vec<u8>)>,
        upto: Option<u64>,
        known: Option<(u64, ChangeHash)>,
    ) -> Result<(), Error> {
        self.store.write(|w| {
            for (id, bytes) in &docs {
                w.merge_snapshot(*id, bytes)?;
            }
            if let Some(upto) = upto {
                let mut c = w.cursors()?;
                c.hub_cursor = c.hub_cursor.max(upto);
                advance_known(&mut c, known);
                w.set_cursors(&c)?;
            }
            Ok(())
        })
    }

    /// Records that the hub has durably stored local changes up to `pushed`
    /// (and, with `known`, the newest hub position its ack named).
    pub fn acknowledge(&self, pushed: u64, known: Option<(u64, ChangeHash)>) -> Result<(), Error> {
        self.store.write(|w| {
            let mut c = w.cursors()?;
            c.pushed = c.pushed.max(pushed);
            advance_known(&mut c, known);
            w.set_cursors(&c)
        })
    }

    /// Saved documents after `after` in id order, within `budget` bytes on
    /// the wire past the first (one bootstrap frame).
    pub fn docs_after(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<(NodeId, Vec<u8>)>, Error> {
        self.store.read(|r| r.docs_after(after, budget))
    }

    /// [`Self::docs_after`], with the hub's reading of each document where
    /// it keeps a current one.
    pub fn docs_after_with_views(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<SavedDoc>, Error> {
        self.store.read(|r| r.docs_after_with_views(after, budget))
    }

    /// Documents after `after` in id order with their heads, at most `limit`.
    pub fn heads_after(&self, after: Option<NodeId>, limit: usize) -> Result<Vec<(NodeId, Vec<ChangeHash>)>, Error> {
        self.store.read(|r| r.heads_after(after, limit))
    }

    /// For each `(doc, heads)` offered by a peer: `None` when this replica
    /// has applied every one of those heads, else `Some` of its own heads
    /// for the document (empty when it has none of it).
    pub fn lacking(&self, offered: &[(NodeId, Vec<ChangeHash>)]) -> Result<Vec<Option<Vec<ChangeHash>>>, Error> {
        self.store.read(|r| {
            offered
                .iter()
                .map(|(doc, heads)| {
                    for h in heads {
                        if !r.has_applied(*doc, h)? {
                            return Ok(Some(r.heads(*doc)?));
                        }
                    }
                    Ok(None)
                })
                .collect()
        })
    }

    /// The changes of document `id` that a peer whose heads are `have`
    /// lacks, in causal order (empty when this replica does not hold it).
    pub fn changes_since(&self, id: NodeId, have: &[ChangeHash]) -> Result<Vec<Change>, Error> {
        Ok(self.store.read(|r| r.doc(id))?.map(|doc| doc.changes_since(have)).unwrap_or_default())
    }

    /// The log's position at seq `seq` (see [`crate::sync::storage::SyncStore::position`]).
    pub fn position(&self, seq: u64) -> Result<Option<ChangeHash>, Error> {
        self.store.read(|r| r.position(seq))
    }

    /// Stored documents that do not read as nodes, with the reason for each.
    pub fn unreadable(&self) -> Result<Vec<Unreadable>, Error> {
        self.store.read(|r| r.unreadable())
    }

    /// How many stored documents do not read as nodes.
    pub fn unreadable_count(&self) -> Result<u64, Error> {
        self.store.read(|r| r.unreadable_count())
    }

    /// Received changes waiting for their dependencies.
    pub fn pending_stats(&self) -> Result<PendingStats, Error> {
        self.store.read(|r| r.pending_stats())
    }

    /// The saved document of `id` as stored, unread (exports of documents
    /// this heph cannot read, backups).
    pub fn raw_doc(&self, id: NodeId) -> Result<Option<Vec<u8>>, Error> {
        self.store.read(|r| r.raw_doc(id))
    }

    /// Merges saved documents (from an export of documents this heph could
    /// not read, or a backup) into the store, in one transaction. Their
    /// changes are logged as made here, so they are offered to the hub.
    /// Returns, for each document, how many of its changes were new.
    pub fn merge_raw(&self, docs: &[(NodeId, Vec<u8>)]) -> Result<Vec<usize>, Error> {
        let mut parsed = Vec::with_capacity(docs.len());
        for (id, bytes) in docs {
            let loaded = crate::limits::load_document(bytes)
                .map_err(|e| Error::InvalidChange { doc: *id, reason: e.to_string() })?;
            parsed.push((*id, loaded.get_changes(&[])));
        }
        self.store.write(|w| {
            let mut out = Vec::with_capacity(parsed.len());
            for (id, changes) in parsed {
                let mut report = Applied::default();
                w.apply_remote(id, changes, true, &mut report)?;
                out.push(report.applied);
            }
            Ok(out)
        })
    }

    /// A copy of this whole replica in memory: the same origin, log, cursors
    /// and documents, as a copy of its file would be (tests and
    /// simulations of a restored backup).
    pub fn copy_in_memory(&self) -> Result<Self, Error> {
        Ok(Self { store: self.store.copy_in_memory()? })
    }
}

/// Parses raw changes from elsewhere, each within the size limits of
/// [`crate::limits`], before anything that serialises writers: a batch with
/// one bad change is refused whole. Inflated, the batch may hold at most
/// [`MAX_INFLATED_BYTES`](crate::limits::MAX_INFLATED_BYTES) in all: one
/// frame of small compressed changes cannot make a connection hold
/// gigabytes.
pub fn parse_changes(batch: Vec<(NodeId, Vec<u8>)>) -> Result<Vec<(NodeId, Change)>, Error> {
    let mut inflated = 0usize;
    let mut out = Vec::with_capacity(batch.len());
    for (doc, bytes) in batch {
        let change =
            crate::limits::parse_change(bytes).map_err(|e| Error::InvalidChange { doc, reason: e.to_string() })?;
        inflated = inflated.saturating_add(change.raw_bytes().len());
        if inflated > crate::limits::MAX_INFLATED_BYTES {
            let limit = crate::limits::MAX_INFLATED_BYTES;
            return Err(Error::InvalidChange {
                doc,
                reason: format!(
                    "the batch inflates past {limit} bytes in all; it was refused (send fewer changes per batch)"
                ),
            });
        }
        out.push((doc, change));
    }
    Ok(out)
}

/// Whether a node holds fields this heph could not read (its export then
/// carries the saved document, so nothing is lost).
fn has_unread_fields(node: &Node) -> bool {
    !node.extra.is_empty()
}

/// Import records with every journal day under the id each device derives
/// for it ([`NodeId::journal`]): a record of a day under another id (written
/// by hand or by another program) is moved there, several such records of
/// one day become one (their texts joined), and links and dependencies on
/// the ids they had follow them. Also returns the days that received such
/// a record: an existing day takes their text in addition to its own.
fn to_their_days<'a>(records: &[(&'a Node, Absent)]) -> (Vec<(Cow<'a, Node>, Absent)>, HashSet<NodeId>) {
    let day_of = |n: &Node| n.date.filter(|_| n.kind == crate::NodeKind::Journal).map(NodeId::journal);
    let moved: std::collections::HashMap<NodeId, NodeId> =
        records.iter().filter_map(|(n, _)| day_of(n).filter(|day| *day != n.id).map(|day| (n.id, day))).collect();
    if moved.is_empty() {
        return (records.iter().map(|(n, a)| (Cow::Borrowed(*n), *a)).collect(), HashSet::new());
    }
    let follow = |ids: &mut std::collections::BTreeSet<NodeId>| {
        *ids = ids.iter().map(|id| moved.get(id).copied().unwrap_or(*id)).collect();
    };
    let mut out: Vec<(Cow<'a, Node>, Absent)> = Vec::with_capacity(records.len());
    let mut at_day = std::collections::HashMap::new();
    for (n, absent) in records {
        let refers = n.links.iter().chain(&n.depends).any(|id| moved.contains_key(id));
        let Some(&day) = moved.get(&n.id) else {
            let mut node = Cow::Borrowed(*n);
            if refers {
                follow(&mut node.to_mut().links);
                follow(&mut node.to_mut().depends);
            }
            out.push((node, *absent));
            continue;
        };
        let mut node = Node { id: day, ..(*n).clone() };
        follow(&mut node.links);
        follow(&mut node.depends);
        match at_day.get(&day) {
            Some(&i) => {
                let (earlier, _): &mut (Cow<'a, Node>, Absent) = &mut out[i];
                let earlier = earlier.to_mut();
                earlier.body = joined(&earlier.body, &node.body);
                earlier.tags.extend(node.tags);
                earlier.links.extend(node.links);
            }
            None => {
                at_day.insert(day, out.len());
                out.push((Cow::Owned(node), *absent));
            }
        }
    }
    (out, at_day.into_keys().collect())
}

/// `more` after `text` on a line of its own, unless `text` holds it already.
fn joined(text: &str, more: &str) -> String {
    if more.is_empty() || text.contains(more) {
        text.to_string()
    } else if text.is_empty() || more.contains(text) {
        more.to_string()
    } else {
        format!("{}\n{more}", text.trim_end_matches('\n'))
    }
}

/// The forms a search word may be stored in: lower-cased, composed (NFC)
/// and decomposed (NFD). Text typed on one system and synced or imported
/// from another (macOS file names are decomposed) may be in either, and
/// "café" should find both.
fn search_forms(word: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization as _;
    let lower = word.to_lowercase();
    let composed: String = lower.nfc().collect();
    let decomposed: String = lower.nfd().collect();
    if composed == decomposed { vec![composed] } else { vec![composed, decomposed] }
}

/// Names the import record a size check refused.
fn import_fits(node: &Node, checked: Result<(), Error>) -> Result<(), Error> {
    checked.map_err(|e| match e {
        Error::ChangeTooLarge { size, limit } => {
            Error::ImportTooLarge { id: node.id, title: node.title.clone(), size, limit }
        }
        other => other,
    })
}

/// Refuses, before anything is built, a change that would carry more text
/// than one change may hold: a new node's title, body and annotations, and
/// the titles, appended text and annotations of `edits` travel whole (a
/// change holds every inserted character's UTF-8, uncompressed). Building
/// a change of tens of MB would take Automerge most of a minute, only for
/// [`check_size`] to refuse it. A body replaced by [`Edit::Body`] carries
/// only what differs, so it is left to [`check_size`].
fn check_text(draft: Option<&Node>, edits: &[Edit]) -> Result<(), Error> {
    let mut size = 0usize;
    if let Some(node) = draft {
        size += node.title.len() + node.body.len();
        size += node.annotations.iter().map(|a| a.description.len()).sum::<usize>();
    }
    for edit in edits {
        size += match edit {
            Edit::Title(text) | Edit::AppendBody(text) => text.len(),
            Edit::Body(text) if draft.is_some() => text.len(),
            Edit::Annotate(a) => a.description.len(),
            _ => 0,
        };
    }
    if size > MAX_CHANGE_BYTES {
        return Err(Error::ChangeTooLarge { size, limit: MAX_CHANGE_BYTES });
    }
    Ok(())
}

/// Refuses changes that could never sync (over [`MAX_CHANGE_BYTES`]).
fn check_size(changes: &[Change]) -> Result<(), Error> {
    for c in changes {
        let size = c.raw_bytes().len();
        if size > MAX_CHANGE_BYTES {
            return Err(Error::ChangeTooLarge { size, limit: MAX_CHANGE_BYTES });
        }
    }
    Ok(())
}

pub(crate) fn advance_known(c: &mut Cursors, known: Option<(u64, ChangeHash)>) {
    if let Some((seq, hash)) = known
        && c.known.is_none_or(|(k, _)| seq >= k)
    {
        c.known = Some((seq, hash));
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
    // Creating a document writes no unknown fields: the reading holds none.
    let mut node = node.normalised();
    node.extra.clear();
    Ok(Prepared { node, saved: doc.save(), changes })
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

pub(crate) fn group(batch: Vec<(NodeId, Change)>) -> Vec<(NodeId, Vec<Change>)> {
    // Keep arrival order per document and documents in first-seen order, so
    // the log order follows the sender's order.
    let mut order: Vec<NodeId> = Vec::new();
    let mut by_doc: std::collections::HashMap<NodeId, Vec<Change>> = std::collections::HashMap::new();
    for (doc, change) in batch {
        by_doc
            .entry(doc)
            .or_insert_with(|| {
                order.push(doc);
                Vec::new()
            })
            .push(change);
    }
    order.into_iter().map(|d| (d, by_doc.remove(&d).unwrap_or_default())).collect()
}

fn apply_grouped(
    w: &mut crate::store::Writer,
    by_doc: Vec<(NodeId, Vec<Change>)>,
    local: bool,
) -> Result<Applied, Error> {
    let mut report = Applied::default();
    for (doc, changes) in by_doc {
        w.apply_remote(doc, changes, local, &mut report)?;
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
    // Taskwarrior keeps whole seconds: an annotation read back from its
    // export is the one already here.
    let same =
        |a: &Annotation, b: &Annotation| a.description == b.description && a.entry.timestamp() == b.entry.timestamp();
    for a in &new.annotations {
        if !old.annotations.iter().any(|o| same(o, a)) {
            edits.push(Edit::Annotate(a.clone()));
        }
    }
    for (k, v) in &new.uda {
        // A template's mask only grows: an import of an older export does
        // not forget instances made since (see `recur::merge_masks`).
        let v = match old.uda.get(k) {
            Some(o) if k == crate::recur::MASK => crate::recur::merge_masks(o, v),
            _ => v.clone(),
        };
        if old.uda.get(k) != Some(&v) {
            edits.push(Edit::Uda(k.clone(), Some(v)));
        }
    }
    for k in old.uda.keys().filter(|k| !new.uda.contains_key(*k)) {
        edits.push(Edit::Uda(k.clone(), None));
    }
    edits
}
