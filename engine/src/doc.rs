//! One node as one Automerge document: the layout of its fields, edits as
//! Automerge operations, and reading it back (materialising).
//!
//! # Layout of the root map
//!
//! | key | Automerge type | made by | why |
//! |---|---|---|---|
//! | `id`, `kind` | str | genesis | identity; `kind` is the one key a document cannot be read without |
//! | `body` | text | genesis | merged character by character |
//! | `tags`, `links`, `depends` | map of key → `true` | genesis | sets whose concurrent additions all survive |
//! | `annotations` | list of maps `{entry: timestamp, description: str}` | genesis | |
//! | `uda` | map of str | genesis | attributes heph does not model (Taskwarrior UDAs) |
//! | `title`, `status`, `priority`, `project`, `date` | str | content | scalars: concurrent distinct values are conflicts |
//! | `created`, `modified`, `due`, `wait`, `scheduled`, `start`, `end` | timestamp (ms) | content | unset = key deleted |
//! | `deleted` | bool | content | the tombstone |
//!
//! # No container is born twice
//!
//! When two devices create an object at the same key concurrently, Automerge
//! shows one of them and the writes into the other vanish from the default
//! view. So every container comes from the genesis change ([`NodeDoc::genesis`]):
//! a change derived from the node's id and kind alone (fixed actor, `time` 0,
//! fixed operations), byte-identical wherever it is made, so every device
//! that makes it shares one document. Creation adds a second change that only
//! writes *into* those containers; no edit creates a container where one
//! exists. Anything derived on several devices gets the same deterministic
//! initial change too: journal days ([`NodeDoc::journal_genesis`]) and
//! imports ([`NodeDoc::create_derived`]).
//!
//! Where Automerge still shows concurrent objects at one key (documents from
//! other writers, documents made before this rule), reading takes the union
//! (tags, links, depends, UDA keys, annotations; the shown text for `body`)
//! and [`NodeDoc::conflicts`] lists the clash, which [`NodeDoc::resolve`]
//! merges. Values of the wrong type and keys heph does not know are never
//! dropped: they read into [`Node::extra`], and an edit never overwrites a
//! value heph cannot read ([`DocError::Occupied`]).
//!
//! # The genesis change, byte for byte
//!
//! Another implementation (the browser app) must make the same bytes:
//! actor = the 16 bytes of `NodeId::derived("heph/genesis/" + id hex)`
//! (SHA-256 of that text, first 16 bytes), `seq` 1, no dependencies,
//! `time` 0, message `"genesis"`, and these operations on the root map in
//! this order:
//!
//! 1. put `id` = the 32-digit lower-case hex id (a scalar string)
//! 2. put `kind` = `"task"`, `"note"` or `"journal"` (a scalar string)
//! 3. make `body` a text object
//! 4. make `tags` a map
//! 5. make `links` a map
//! 6. make `depends` a map
//! 7. make `annotations` a list
//! 8. make `uda` a map
//!
//! A journal day's genesis continues the same change with
//! 9. put `title` = the day (`YYYY-MM-DD`, scalar string)
//! 10. put `date` = the same text
//! 11. put `created` = midnight UTC of the day (timestamp)
//! 12. put `modified` = the same timestamp
//!
//! (In JavaScript, strings must be `new Automerge.RawString(…)`; a plain
//! string would become text.) One id has exactly one genesis: two different
//! changes by the genesis actor with `seq` 1 could not both be applied, so
//! journal ids always take the journal genesis (see [`NodeDoc::create_with`]).
//!
//! This module owns the layout; nothing else reads or writes document keys.

mod read;

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, Automerge, AutomergeError, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::NodeId;
use crate::node::{Annotation, Node, NodeKind, Priority, Status};

/// Why a document could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// Automerge rejected the bytes or the operation.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
    /// The document cannot be read as a node: its `kind` is missing or
    /// unknown, or its `id` names another node.
    #[error("document {id} is not a heph node: {reason}")]
    NotANode {
        /// The document.
        id: NodeId,
        /// What is wrong, for a person.
        reason: String,
    },
    /// Automerge could not take bytes from elsewhere: it stopped on an
    /// inconsistency it checks only by asserting (a change whose seq skips
    /// one of its actor's changes, an operation in an object the document
    /// lacks). Nothing was applied; the document the call was made on must
    /// be dropped, since its state is unknown.
    #[error("automerge refused the change: {0}")]
    Refused(String),
    /// An edit would overwrite a value heph cannot read (another program
    /// wrote it); it is kept and shown among the node's unread fields.
    #[error("field {field} holds {found}, which heph cannot read; it will not overwrite it")]
    Occupied {
        /// The root key.
        field: String,
        /// What is there, e.g. `an int`.
        found: String,
    },
}

/// One change a user makes to a node. A list of edits becomes one Automerge
/// change (one entry in `heph history`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "edit", content = "value", rename_all = "snake_case")]
pub enum Edit {
    /// Set the title.
    Title(String),
    /// Replace the body; applied as a character diff so concurrent edits merge.
    Body(String),
    /// Append a paragraph to the body.
    AppendBody(String),
    /// Change the status; stamps `start`/`end` as Taskwarrior does.
    Status(Status),
    /// Set or clear the priority.
    Priority(Option<Priority>),
    /// Set or clear the due date.
    Due(Option<DateTime<Utc>>),
    /// Set or clear the wait date.
    Wait(Option<DateTime<Utc>>),
    /// Set or clear the scheduled date.
    Scheduled(Option<DateTime<Utc>>),
    /// Set or clear the project.
    Project(Option<String>),
    /// Add a tag.
    AddTag(String),
    /// Remove a tag.
    RemoveTag(String),
    /// Link to another node.
    Link(NodeId),
    /// Remove a link.
    Unlink(NodeId),
    /// Depend on another task.
    Depend(NodeId),
    /// Remove a dependency.
    Undepend(NodeId),
    /// Add an annotation.
    Annotate(Annotation),
    /// Remove the annotations equal to this one (`heph undo` of an annotate).
    Unannotate(Annotation),
    /// Set or clear the start time directly (imports; `Status` stamps it itself).
    Start(Option<DateTime<Utc>>),
    /// Set or clear the end time directly (imports).
    End(Option<DateTime<Utc>>),
    /// Mark deleted (`true`) or restore (`false`).
    Deleted(bool),
    /// Set or clear an attribute heph does not model.
    Uda(String, Option<String>),
}

/// Scalar fields whose concurrent distinct values are reported as conflicts.
/// `modified` is left out on purpose: every edit sets it, so it would always
/// conflict, and the latest value is the right one anyway.
pub const CONFLICT_FIELDS: &[&str] =
    &["title", "status", "priority", "due", "wait", "scheduled", "start", "end", "project", "deleted"];

/// The containers of every node, in the order the genesis makes them. A key
/// holding several concurrent objects is reported as a conflict.
pub const CONTAINER_FIELDS: &[(&str, ObjType)] = &[
    ("body", ObjType::Text),
    ("tags", ObjType::Map),
    ("links", ObjType::Map),
    ("depends", ObjType::Map),
    ("annotations", ObjType::List),
    ("uda", ObjType::Map),
];

/// Concurrent values of one field of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Conflict {
    /// The node.
    pub id: NodeId,
    /// The field (`title`, `due`, … or a container: `body`, `tags`, …).
    pub field: String,
    /// The values, rendered; the first is the one currently shown. For a
    /// container, each concurrent object's content (a set's members, a
    /// list's items as JSON, the text of a body).
    pub values: Vec<String>,
}

/// One change in a node's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryEntry {
    /// The change hash (hex).
    pub hash: String,
    /// When it was made, by the clock of the device that made it.
    pub time: DateTime<Utc>,
    /// The device (Automerge actor) that made it, hex.
    pub device: String,
    /// What was done, e.g. `add`, `modify due:2026-12-01`.
    pub message: String,
}

/// An Automerge document holding one node.
#[derive(Debug, Clone)]
pub struct NodeDoc {
    doc: Automerge,
}

fn ts(t: DateTime<Utc>) -> ScalarValue {
    ScalarValue::Timestamp(t.timestamp_millis())
}

fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

fn actor_of(id: NodeId) -> ActorId {
    ActorId::from(id.as_bytes().as_slice())
}

/// The actor of a node's genesis change.
fn genesis_actor(id: NodeId) -> ActorId {
    actor_of(NodeId::derived(&format!("heph/genesis/{}", id.to_hex())))
}

/// The actor of a derived (import) content change. The node's content is part
/// of the name: two devices importing the same record make the same change,
/// while two different records for one id get different actors. (With one
/// actor for both, they would be two different changes with the same actor
/// and `seq`, which Automerge refuses to hold together, and the document
/// would stop syncing.)
fn import_actor(node: &Node) -> ActorId {
    let content = serde_json::to_string(&node.normalised()).unwrap_or_default();
    actor_of(NodeId::derived(&format!("heph/import/{}/{content}", node.id.to_hex())))
}

/// Runs an Automerge call on bytes from elsewhere, turning a panic inside
/// Automerge into [`DocError::Refused`]. Automerge 0.12 asserts on some
/// input it cannot apply instead of returning an error; unguarded, one
/// change pushed by a broken or hostile device would stop a hub's writer,
/// and one sent by a hub would stop every device.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, AutomergeError>) -> Result<T, DocError> {
    match crate::panics::catch(f) {
        Ok(result) => Ok(result?),
        Err(why) => Err(DocError::Refused(why)),
    }
}

impl NodeDoc {
    /// An empty document that will receive changes from elsewhere.
    #[must_use]
    pub fn empty(actor: &ActorId) -> Self {
        Self { doc: Automerge::new().with_actor(actor.clone()) }
    }

    /// Loads a saved document (snapshot and/or concatenated changes).
    pub fn load(bytes: &[u8], actor: &ActorId) -> Result<Self, DocError> {
        let mut doc = guarded(|| Automerge::load(bytes))?;
        doc.set_actor(actor.clone());
        Ok(Self { doc })
    }

    /// The compacted form, for the `docs` table: what is applied. Changes
    /// Automerge holds queued for their dependencies are left out (they
    /// wait in the store's `pending`, logged once applied), so a snapshot
    /// never hands a device a change that is not in anybody's log.
    #[must_use]
    pub fn save(&self) -> Vec<u8> {
        self.doc.save_with_options(automerge::SaveOptions { deflate: true, retain_orphans: false })
    }

    /// The current heads.
    #[must_use]
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Whether the document already has this change.
    #[must_use]
    pub fn has_change(&self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// Applies changes received from elsewhere. Changes whose dependencies are
    /// missing are returned (not applied) so the caller can keep them until
    /// the dependencies arrive.
    ///
    /// On an error nothing is known of this document's state: drop it.
    pub fn apply(&mut self, changes: Vec<Change>) -> Result<Vec<Change>, DocError> {
        guarded(|| self.doc.apply_changes(changes.iter().cloned()))?;
        // Nothing queued inside the document: nothing waits (looking each
        // change up rebuilds it, which costs more than applying it).
        if self.doc.get_missing_deps(&[]).is_empty() {
            return Ok(Vec::new());
        }
        let waiting: Vec<Change> = changes.into_iter().filter(|c| !self.has_change(&c.hash())).collect();
        Ok(waiting)
    }

    /// This document without the changes queued inside it for missing
    /// dependencies (a store keeps those itself, and feeds them again).
    pub fn without_waiting(&self) -> Result<Self, DocError> {
        let bytes = self.doc.save_with_options(automerge::SaveOptions { deflate: false, retain_orphans: false });
        let mut doc = guarded(|| Automerge::load(&bytes))?;
        doc.set_actor(self.doc.get_actor().clone());
        Ok(Self { doc })
    }

    /// Merges bytes received whole (a saved document, or a run of changes
    /// in causal order); changes missing a dependency wait inside the
    /// document. Returns how many operations were added. On an error,
    /// drop this document (see [`Self::apply`]).
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<usize, DocError> {
        guarded(|| self.doc.load_incremental(bytes))
    }

    /// The changes not among the ancestors of `have` (hashes this document
    /// does not know are ignored): what a peer whose heads are `have` lacks.
    #[must_use]
    pub fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        let known: Vec<ChangeHash> = have.iter().filter(|h| self.has_change(h)).copied().collect();
        self.doc.get_changes(&known)
    }

    /// Every change of the document, in causal order.
    #[must_use]
    pub fn changes(&self) -> Vec<Change> {
        self.doc.get_changes(&[])
    }

    /// The first change of node `id`, identical wherever it is made: it puts
    /// `id` and `kind` and makes every container (the op order is in the
    /// module doc). The returned document's actor is a random one, so that
    /// nothing else is ever written as the genesis actor; switch it with
    /// [`Self::set_actor`] before editing.
    pub fn genesis(id: NodeId, kind: NodeKind) -> Result<(Self, Change), DocError> {
        Self::genesis_of(id, kind, None)
    }

    /// The first change of a journal day, identical on every device: the
    /// genesis of [`NodeId::journal`]`(day)` plus the day's title, date and
    /// creation time (midnight UTC), in the same one change. Two devices that
    /// open the day offline thus share one document and all its containers.
    pub fn journal_genesis(day: NaiveDate) -> Result<(Self, Change), DocError> {
        Self::genesis_of(NodeId::journal(day), NodeKind::Journal, Some(day))
    }

    fn genesis_of(id: NodeId, kind: NodeKind, day: Option<NaiveDate>) -> Result<(Self, Change), DocError> {
        let mut doc = Automerge::new().with_actor(genesis_actor(id));
        let mut tx = doc.transaction();
        tx.put(ROOT, "id", id.to_hex())?;
        tx.put(ROOT, "kind", kind.as_str())?;
        for (key, ty) in CONTAINER_FIELDS {
            tx.put_object(ROOT, *key, *ty)?;
        }
        if let Some(day) = day {
            let midnight = day.and_hms_opt(0, 0, 0).map_or(DateTime::UNIX_EPOCH, |t| t.and_utc());
            tx.put(ROOT, "title", day.to_string())?;
            tx.put(ROOT, "date", day.to_string())?;
            tx.put(ROOT, "created", ts(midnight))?;
            tx.put(ROOT, "modified", ts(midnight))?;
        }
        tx.commit_with(CommitOptions::default().with_message("genesis").with_time(0));
        let change = doc.get_last_local_change().ok_or_else(|| not_a_node(id, "its genesis made no change"))?;
        doc.set_actor(ActorId::random());
        Ok((Self { doc }, change))
    }

    /// The genesis for `node`: a journal day's when its id is that day's.
    fn genesis_for(node: &Node) -> Result<(Self, Change), DocError> {
        match node.date {
            Some(day) if node.kind == NodeKind::Journal && node.id == NodeId::journal(day) => {
                Self::journal_genesis(day)
            }
            _ => Self::genesis(node.id, node.kind),
        }
    }

    /// Creates the document of `node`; see [`Self::create_with`].
    pub fn create(node: &Node, actor: &ActorId, message: &str) -> Result<(Self, Vec<Change>), DocError> {
        Self::create_with(node, &[], actor, message)
    }

    /// Creates the document of `node` with `edits` applied on top. Returns
    /// the changes to log, in order: the genesis ([`Self::genesis`], or the
    /// journal genesis for a journal day's id), then the content change made
    /// by `actor` at `node.modified` with `message`, which only writes into
    /// the genesis containers. The content change is left out when it would
    /// be empty (a journal day as its genesis made it). `node.extra` is not
    /// written. The document's actor is `actor` afterwards.
    pub fn create_with(
        node: &Node,
        edits: &[Edit],
        actor: &ActorId,
        message: &str,
    ) -> Result<(Self, Vec<Change>), DocError> {
        let (mut doc, genesis) = Self::genesis_for(node)?;
        doc.set_actor(actor);
        let mut changes = vec![genesis];
        let mut tx = doc.doc.transaction();
        write_content(&mut tx, node)?;
        for edit in edits {
            apply_edit(&mut tx, edit, node.modified)?;
        }
        let (hash, _) =
            tx.commit_with(CommitOptions::default().with_message(message).with_time(node.modified.timestamp_millis()));
        if hash.is_some() {
            changes.extend(doc.doc.get_last_local_change());
        }
        Ok((doc, changes))
    }

    /// Like [`Self::create`], but the content change's actor is derived from
    /// the node itself, so two devices that import the same record (a
    /// Taskwarrior export, a heph export) make byte-identical changes and
    /// share one document instead of two concurrent creations. The actor
    /// depends on the id and the record's content: different records for one
    /// id make different, merely concurrent, changes. The returned document's
    /// actor is a random one; switch it to the device's with
    /// [`Self::set_actor`] before editing, so no later change is made as the
    /// derived actor.
    pub fn create_derived(node: &Node, message: &str) -> Result<(Self, Vec<Change>), DocError> {
        let (mut doc, changes) = Self::create_with(node, &[], &import_actor(node), message)?;
        doc.set_actor(&ActorId::random());
        Ok((doc, changes))
    }

    /// Switches the actor that local edits are made as.
    pub fn set_actor(&mut self, actor: &ActorId) {
        self.doc.set_actor(actor.clone());
    }

    /// Applies `edits` as one change. Returns `None` when there is nothing to do.
    ///
    /// Errors with [`DocError::Occupied`] when an edit would overwrite a
    /// container key holding a value heph cannot read.
    pub fn edit(&mut self, edits: &[Edit], message: &str, now: DateTime<Utc>) -> Result<Option<Change>, DocError> {
        if edits.is_empty() {
            return Ok(None);
        }
        self.record(edits, message, now)
    }

    /// Like [`Self::edit`], but makes a change (setting `modified`) even
    /// when `edits` is empty: a change whose message must be on record (an
    /// undo that found its fields already back as they were).
    pub fn record(&mut self, edits: &[Edit], message: &str, now: DateTime<Utc>) -> Result<Option<Change>, DocError> {
        let mut tx = self.doc.transaction();
        for edit in edits {
            apply_edit(&mut tx, edit, now)?;
        }
        tx.put(ROOT, "modified", ts(now))?;
        let (hash, _) =
            tx.commit_with(CommitOptions::default().with_message(message).with_time(now.timestamp_millis()));
        Ok(hash.and_then(|_| self.doc.get_last_local_change()))
    }

    /// Ends a conflict on `field`. Returns `None` when there is no such
    /// conflict or no current value renders as `value`.
    ///
    /// - A scalar field gets the concurrent value that renders as `value`
    ///   (one of [`Conflict::values`]) written over all of them.
    /// - `body` gets a new text holding the chosen text.
    /// - The other containers (sets, `uda`, `annotations`) are merged,
    ///   whatever `value` is: a new object holds the union of all concurrent
    ///   ones, so nothing is dropped. If two devices resolve the same clash
    ///   concurrently, their two new objects clash again and still read as
    ///   the union. An edit made concurrently with a resolve into one of the
    ///   replaced objects is not in the union; keep resolves short of
    ///   concurrent edits (sync first).
    ///
    /// Errors with [`DocError::Occupied`] when a value at a container key is
    /// of a type heph cannot merge.
    pub fn resolve(&mut self, field: &str, value: &str, now: DateTime<Utc>) -> Result<Option<Change>, DocError> {
        let mut tx = self.doc.transaction();
        let wrote = match CONTAINER_FIELDS.iter().find(|(key, _)| *key == field) {
            Some((key, ty)) => resolve_container(&mut tx, key, *ty, value)?,
            None => resolve_scalar(&mut tx, field, value)?,
        };
        if !wrote {
            tx.rollback();
            return Ok(None);
        }
        tx.put(ROOT, "modified", ts(now))?;
        let message = format!("resolve {field}");
        let (hash, _) =
            tx.commit_with(CommitOptions::default().with_message(message).with_time(now.timestamp_millis()));
        Ok(hash.and_then(|_| self.doc.get_last_local_change()))
    }

    /// The scalar fields with more than one distinct concurrent value, then
    /// the containers with more than one concurrent object.
    pub fn conflicts(&self, id: NodeId) -> Result<Vec<Conflict>, DocError> {
        read::conflicts(&self.doc, id)
    }

    /// The node's history, oldest first. The genesis change is left out: it
    /// is made by no device and at no time (`time` 0), and holds nothing a
    /// person wrote beyond what the next entries show.
    #[must_use]
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.doc
            .get_changes_meta(&[])
            .into_iter()
            .filter(|meta| !(meta.seq == 1 && meta.timestamp == 0 && meta.message.as_deref() == Some("genesis")))
            .map(|meta| HistoryEntry {
                hash: meta.hash.to_string(),
                time: from_ms(meta.timestamp).unwrap_or(DateTime::UNIX_EPOCH),
                device: meta.actor.to_hex_string(),
                message: meta.message.map(|m| m.into_owned()).unwrap_or_default(),
            })
            .collect()
    }

    /// The document as it was at `heads` (changes it does not hold are an
    /// error).
    pub fn at(&self, heads: &[ChangeHash]) -> Result<Self, DocError> {
        Ok(Self { doc: self.doc.fork_at(heads)? })
    }

    /// Whether `change` made the node: everything it depends on is the
    /// node's genesis (a creation's content change follows the genesis
    /// directly; see [`Self::create_with`]).
    #[must_use]
    pub fn creates(&self, change: &Change) -> bool {
        !change.deps().is_empty()
            && change.deps().iter().all(|dep| {
                self.doc
                    .get_change_by_hash(dep)
                    .is_some_and(|c| c.seq() == 1 && c.timestamp() == 0 && c.message().is_some_and(|m| m == "genesis"))
            })
    }

    /// Reads the node back, taking its id from the document's `id` field.
    /// Prefer [`Self::materialise_as`] where the id is known (a store key):
    /// a document without an `id` field reads only that way.
    pub fn materialise(&self) -> Result<Node, DocError> {
        let unknown = NodeId::from_bytes([0; 16]);
        let text = match self.doc.get(ROOT, "id")? {
            Some((value, obj)) => read::text_of(&self.doc, &value, &obj)?,
            None => return Err(not_a_node(unknown, "it has no id field and no id was given")),
        };
        let id = text
            .as_deref()
            .and_then(NodeId::parse)
            .ok_or_else(|| not_a_node(unknown, "its id field is not an id and no id was given"))?;
        self.materialise_as(id)
    }

    /// Reads the node back as node `id`. Lenient: a missing `id` field,
    /// missing fields, values of the wrong type and unknown keys all read
    /// (the last two into [`Node::extra`]); concurrent containers read as
    /// their union. Errors with [`DocError::NotANode`] only when `kind` is
    /// missing or unknown, or the `id` field names another node.
    pub fn materialise_as(&self, id: NodeId) -> Result<Node, DocError> {
        read::materialise(&self.doc, id)
    }
}

fn not_a_node(id: NodeId, reason: &str) -> DocError {
    DocError::NotANode { id, reason: reason.to_string() }
}

/// Every object of type `ty` at root `key`, the one Automerge shows first.
/// (`get_all` lists concurrent values in op order; the shown one is last.)
fn objects<R: ReadDoc + ?Sized>(d: &R, key: &str, ty: ObjType) -> Result<Vec<ObjId>, DocError> {
    Ok(d.get_all(ROOT, key)?
        .into_iter()
        .rev()
        .filter_map(|(v, obj)| matches!(v, Value::Object(t) if t == ty).then_some(obj))
        .collect())
}

/// The object at `key` that edits write into: the first of [`objects`].
///
/// After a genesis it always exists. Only a document another program wrote
/// may lack it; then it is made here (a lone writer cannot clash with a
/// genesis it never had, and a clash would still read as the union). A value
/// of another type is never overwritten unless it can be carried over
/// whole: a string becomes the body text, a list of strings the set.
fn container<T: Transactable>(tx: &mut T, key: &str, ty: ObjType) -> Result<ObjId, DocError> {
    if let Some(obj) = objects(tx, key, ty)?.into_iter().next() {
        return Ok(obj);
    }
    let Some((value, old)) = tx.get(ROOT, key)? else {
        return Ok(tx.put_object(ROOT, key, ty)?);
    };
    let occupied = || DocError::Occupied { field: key.to_string(), found: read::describe(&value) };
    match (&value, ty) {
        (Value::Scalar(s), ObjType::Text) => {
            let ScalarValue::Str(text) = s.as_ref() else {
                return Err(occupied());
            };
            let text = text.to_string();
            let obj = tx.put_object(ROOT, key, ty)?;
            tx.splice_text(&obj, 0, 0, &text)?;
            Ok(obj)
        }
        (Value::Object(ObjType::List), ObjType::Map) if matches!(key, "tags" | "links" | "depends") => {
            let mut members = Vec::new();
            for i in 0..tx.length(&old) {
                match tx.get(&old, i)? {
                    Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Str(_)) => {
                        members.push(s.as_str().unwrap_or_default().to_string());
                    }
                    _ => return Err(occupied()),
                }
            }
            let obj = tx.put_object(ROOT, key, ty)?;
            for m in members {
                tx.put(&obj, m, true)?;
            }
            Ok(obj)
        }
        _ => Err(occupied()),
    }
}

fn put_opt_time<T: Transactable>(tx: &mut T, key: &str, value: Option<DateTime<Utc>>) -> Result<(), DocError> {
    match value {
        Some(t) => tx.put(ROOT, key, ts(t))?,
        None => {
            if tx.get(ROOT, key)?.is_some() {
                tx.delete(ROOT, key)?;
            }
        }
    }
    Ok(())
}

fn put_opt_str<T: Transactable>(tx: &mut T, key: &str, value: Option<&str>) -> Result<(), DocError> {
    match value {
        Some(s) => tx.put(ROOT, key, s)?,
        None => {
            if tx.get(ROOT, key)?.is_some() {
                tx.delete(ROOT, key)?;
            }
        }
    }
    Ok(())
}

/// Adds `member` to the set at `key`, or removes it from every concurrent
/// map there (the union shows a member any of them holds).
fn set_member<T: Transactable>(tx: &mut T, key: &str, member: &str, present: bool) -> Result<(), DocError> {
    if present {
        let map = container(tx, key, ObjType::Map)?;
        tx.put(&map, member, true)?;
    } else {
        for map in objects(tx, key, ObjType::Map)? {
            if tx.get(&map, member)?.is_some() {
                tx.delete(&map, member)?;
            }
        }
    }
    Ok(())
}

/// Writes a new node's fields into the containers its genesis made. The op
/// order is fixed (sets are sorted), so [`NodeDoc::create_derived`] makes the
/// same bytes everywhere. Puts of a value already there (a journal's title)
/// make no op.
fn write_content<T: Transactable>(tx: &mut T, node: &Node) -> Result<(), DocError> {
    tx.put(ROOT, "title", node.title.as_str())?;
    if !node.body.is_empty() {
        let body = container(tx, "body", ObjType::Text)?;
        let len = tx.length(&body);
        tx.splice_text(&body, len, 0, &node.body)?;
    }
    tx.put(ROOT, "created", ts(node.created))?;
    tx.put(ROOT, "modified", ts(node.modified))?;
    if node.deleted {
        tx.put(ROOT, "deleted", true)?;
    }
    for tag in &node.tags {
        set_member(tx, "tags", tag, true)?;
    }
    for link in &node.links {
        set_member(tx, "links", &link.to_hex(), true)?;
    }
    for dep in &node.depends {
        set_member(tx, "depends", &dep.to_hex(), true)?;
    }
    for (key, value) in [
        ("status", node.status.map(Status::as_str)),
        ("priority", node.priority.map(Priority::as_str)),
        ("project", node.project.as_deref()),
    ] {
        if let Some(v) = value {
            tx.put(ROOT, key, v)?;
        }
    }
    if let Some(d) = node.date {
        tx.put(ROOT, "date", d.to_string())?;
    }
    for (key, value) in [
        ("due", node.due),
        ("wait", node.wait),
        ("scheduled", node.scheduled),
        ("start", node.start),
        ("end", node.end),
    ] {
        if let Some(t) = value {
            tx.put(ROOT, key, ts(t))?;
        }
    }
    for a in &node.annotations {
        annotate(tx, a)?;
    }
    for (k, v) in &node.uda {
        set_uda(tx, k, Some(v))?;
    }
    Ok(())
}

fn annotate<T: Transactable>(tx: &mut T, annotation: &Annotation) -> Result<(), DocError> {
    let list = container(tx, "annotations", ObjType::List)?;
    let len = tx.length(&list);
    let item = tx.insert_object(&list, len, ObjType::Map)?;
    tx.put(&item, "entry", ts(annotation.entry))?;
    tx.put(&item, "description", annotation.description.as_str())?;
    Ok(())
}

/// Removes every item equal to `annotation` (entry time to the millisecond,
/// and description) from every concurrent annotations list.
fn unannotate<T: Transactable>(tx: &mut T, annotation: &Annotation) -> Result<(), DocError> {
    let entry = annotation.entry.timestamp_millis();
    for list in objects(tx, "annotations", ObjType::List)? {
        for i in (0..tx.length(&list)).rev() {
            let Some((Value::Object(ObjType::Map), item)) = tx.get(&list, i)? else { continue };
            let at = match tx.get(&item, "entry")? {
                Some((Value::Scalar(s), _)) => match s.as_ref() {
                    ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => Some(*ms),
                    _ => None,
                },
                _ => None,
            };
            let description = match tx.get(&item, "description")? {
                Some((v, o)) => read::text_of(tx, &v, &o)?,
                None => None,
            };
            if at == Some(entry) && description.as_deref() == Some(annotation.description.as_str()) {
                tx.delete(&list, i)?;
            }
        }
    }
    Ok(())
}

/// Sets UDA `key` in the shown map and removes it from concurrent ones, so
/// the union reads the new value; clearing removes it from all of them.
fn set_uda<T: Transactable>(tx: &mut T, key: &str, value: Option<&str>) -> Result<(), DocError> {
    let keep = match value {
        Some(v) => {
            let map = container(tx, "uda", ObjType::Map)?;
            tx.put(&map, key, v)?;
            Some(map)
        }
        None => None,
    };
    for map in objects(tx, "uda", ObjType::Map)? {
        if Some(&map) != keep.as_ref() && tx.get(&map, key)?.is_some() {
            tx.delete(&map, key)?;
        }
    }
    Ok(())
}

fn apply_edit<T: Transactable>(tx: &mut T, edit: &Edit, now: DateTime<Utc>) -> Result<(), DocError> {
    match edit {
        Edit::Title(t) => tx.put(ROOT, "title", t.as_str())?,
        Edit::Body(text) => {
            let body = container(tx, "body", ObjType::Text)?;
            tx.update_text(&body, text)?;
        }
        Edit::AppendBody(text) => {
            let body = container(tx, "body", ObjType::Text)?;
            let len = tx.length(&body);
            let existing = tx.text(&body)?;
            // A line of its own: two appends made apart (two devices
            // offline) merge as two lines, not one glued line.
            let start = if existing.is_empty() || existing.ends_with('\n') { "" } else { "\n" };
            let end = if text.ends_with('\n') { "" } else { "\n" };
            tx.splice_text(&body, len, 0, &format!("{start}{text}{end}"))?;
        }
        Edit::Status(status) => {
            tx.put(ROOT, "status", status.as_str())?;
            match status {
                Status::Active => tx.put(ROOT, "start", ts(now))?,
                Status::Done | Status::Cancelled => {
                    tx.put(ROOT, "end", ts(now))?;
                    put_opt_time(tx, "start", None)?;
                }
                Status::Pending | Status::Waiting => {
                    put_opt_time(tx, "start", None)?;
                    put_opt_time(tx, "end", None)?;
                }
            }
        }
        Edit::Priority(p) => put_opt_str(tx, "priority", p.map(Priority::as_str))?,
        Edit::Due(t) => put_opt_time(tx, "due", *t)?,
        Edit::Wait(t) => put_opt_time(tx, "wait", *t)?,
        Edit::Scheduled(t) => put_opt_time(tx, "scheduled", *t)?,
        Edit::Project(p) => put_opt_str(tx, "project", p.as_deref())?,
        Edit::AddTag(t) => set_member(tx, "tags", t, true)?,
        Edit::RemoveTag(t) => set_member(tx, "tags", t, false)?,
        Edit::Link(id) => set_member(tx, "links", &id.to_hex(), true)?,
        Edit::Unlink(id) => set_member(tx, "links", &id.to_hex(), false)?,
        Edit::Depend(id) => set_member(tx, "depends", &id.to_hex(), true)?,
        Edit::Undepend(id) => set_member(tx, "depends", &id.to_hex(), false)?,
        Edit::Start(t) => put_opt_time(tx, "start", *t)?,
        Edit::End(t) => put_opt_time(tx, "end", *t)?,
        Edit::Annotate(annotation) => annotate(tx, annotation)?,
        Edit::Unannotate(annotation) => unannotate(tx, annotation)?,
        Edit::Deleted(deleted) => tx.put(ROOT, "deleted", *deleted)?,
        Edit::Uda(key, value) => set_uda(tx, key, value.as_deref())?,
    }
    Ok(())
}

/// Writes the concurrent scalar value of `field` that renders as `value`
/// over all of them; `false` when none does or there is no conflict.
fn resolve_scalar<T: Transactable>(tx: &mut T, field: &str, value: &str) -> Result<bool, DocError> {
    let all = tx.get_all(ROOT, field)?;
    if all.len() < 2 {
        return Ok(false);
    }
    let chosen = all.into_iter().find_map(|(v, _)| match &v {
        Value::Scalar(s) if read::render(&v) == value => Some(s.clone().into_owned()),
        _ => None,
    });
    let Some(chosen) = chosen else {
        return Ok(false);
    };
    tx.put(ROOT, field, chosen)?;
    Ok(true)
}

/// Ends a clash of concurrent objects at container `key` (see
/// [`NodeDoc::resolve`]); `false` when there is none or, for the body, no
/// object renders as `value`.
fn resolve_container<T: Transactable>(tx: &mut T, key: &str, ty: ObjType, value: &str) -> Result<bool, DocError> {
    let all: Vec<(Value<'static>, ObjId)> =
        tx.get_all(ROOT, key)?.into_iter().rev().map(|(v, o)| (v.into_owned(), o)).collect();
    if all.len() < 2 {
        return Ok(false);
    }
    if ty == ObjType::Text {
        let mut chosen = None;
        for (v, o) in &all {
            if read::render_content(tx, key, v, o)? == value {
                chosen = Some(read::text_of(tx, v, o)?.unwrap_or_default());
                break;
            }
        }
        let Some(text) = chosen else {
            return Ok(false);
        };
        let body = tx.put_object(ROOT, key, ObjType::Text)?;
        tx.splice_text(&body, 0, 0, &text)?;
        return Ok(true);
    }
    // Merging must not drop what it cannot merge.
    if let Some((v, _)) = all.iter().find(|(v, _)| !matches!(v, Value::Object(t) if *t == ty)) {
        return Err(DocError::Occupied { field: key.to_string(), found: read::describe(v) });
    }
    let sources: Vec<ObjId> = all.into_iter().map(|(_, o)| o).collect();
    match key {
        "annotations" => {
            let mut items: Vec<(Option<i64>, String, ObjId)> = Vec::new();
            for list in &sources {
                for i in 0..tx.length(list) {
                    if let Some((v, item)) = tx.get(list, i)? {
                        let entry = match &v {
                            Value::Object(ObjType::Map) => match tx.get(&item, "entry")? {
                                Some((Value::Scalar(s), _)) => match s.as_ref() {
                                    ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => Some(*ms),
                                    _ => None,
                                },
                                _ => None,
                            },
                            _ => None,
                        };
                        let rendered = read::json_string(tx, &v.into_owned(), &item)?;
                        if !items.iter().any(|(e, r, _)| *e == entry && *r == rendered) {
                            items.push((entry, rendered, item));
                        }
                    }
                }
            }
            // Stable: items without a readable time keep their place at the end.
            items.sort_by_key(|(entry, _, _)| entry.unwrap_or(i64::MAX));
            let list = tx.put_object(ROOT, key, ObjType::List)?;
            for (i, (_, _, item)) in items.iter().enumerate() {
                copy::insert(tx, &list, i, item)?;
            }
        }
        _ => {
            // Sets and `uda`: every key of every map; the shown map's value
            // wins where several hold one key.
            let mut chosen: BTreeMap<String, ObjId> = BTreeMap::new();
            for map in &sources {
                for k in tx.keys(map).collect::<Vec<_>>() {
                    chosen.entry(k).or_insert_with(|| map.clone());
                }
            }
            let merged = tx.put_object(ROOT, key, ObjType::Map)?;
            for (k, from) in chosen {
                copy::put(tx, &merged, &k, &from, &k)?;
            }
        }
    }
    Ok(true)
}

/// Deep copies of document values, for merging clashed containers.
mod copy {
    use automerge::transaction::Transactable;
    use automerge::{ObjId, ObjType, Value};

    use super::DocError;

    /// Nesting deeper than this (from a foreign writer) is refused rather
    /// than followed without bound.
    const MAX_DEPTH: usize = 32;

    fn too_deep(what: &str) -> DocError {
        DocError::Occupied { field: what.to_string(), found: format!("values nested deeper than {MAX_DEPTH}") }
    }

    /// Copies `from[key]` to `to[as_key]`.
    pub(super) fn put<T: Transactable>(
        tx: &mut T,
        to: &ObjId,
        as_key: &str,
        from: &ObjId,
        key: &str,
    ) -> Result<(), DocError> {
        let Some((v, src)) = tx.get(from, key)? else { return Ok(()) };
        match v {
            Value::Scalar(s) => tx.put(to, as_key, s.into_owned())?,
            Value::Object(ty) => {
                let dst = tx.put_object(to, as_key, ty)?;
                fill(tx, &src, &dst, ty, 1)?;
            }
        }
        Ok(())
    }

    /// Inserts a copy of the object `item` into `list` at `index`.
    pub(super) fn insert<T: Transactable>(
        tx: &mut T,
        list: &ObjId,
        index: usize,
        item: &ObjId,
    ) -> Result<(), DocError> {
        let ty = tx.object_type(item)?;
        let dst = tx.insert_object(list, index, ty)?;
        fill(tx, item, &dst, ty, 1)
    }

    fn fill<T: Transactable>(tx: &mut T, src: &ObjId, dst: &ObjId, ty: ObjType, depth: usize) -> Result<(), DocError> {
        if depth > MAX_DEPTH {
            return Err(too_deep("a merged value"));
        }
        match ty {
            ObjType::Text => {
                let text = tx.text(src)?;
                tx.splice_text(dst, 0, 0, &text)?;
            }
            ObjType::Map | ObjType::Table => {
                for k in tx.keys(src).collect::<Vec<_>>() {
                    let Some((v, child)) = tx.get(src, k.as_str())? else { continue };
                    match v {
                        Value::Scalar(s) => tx.put(dst, k.as_str(), s.into_owned())?,
                        Value::Object(t) => {
                            let d = tx.put_object(dst, k.as_str(), t)?;
                            fill(tx, &child, &d, t, depth + 1)?;
                        }
                    }
                }
            }
            ObjType::List => {
                for i in 0..tx.length(src) {
                    let Some((v, child)) = tx.get(src, i)? else { continue };
                    match v {
                        Value::Scalar(s) => tx.insert(dst, i, s.into_owned())?,
                        Value::Object(t) => {
                            let d = tx.insert_object(dst, i, t)?;
                            fill(tx, &child, &d, t, depth + 1)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// `changes` with each one after those of them it depends on; otherwise in
/// the order given (a log stays causal within a document).
pub(crate) fn causal_order(changes: Vec<Change>) -> Vec<Change> {
    let at: std::collections::HashMap<ChangeHash, usize> =
        changes.iter().enumerate().map(|(i, c)| (c.hash(), i)).collect();
    let mut placed = vec![false; changes.len()];
    let mut order = Vec::with_capacity(changes.len());
    for start in 0..changes.len() {
        let mut stack = vec![(start, false)];
        while let Some((i, deps_done)) = stack.pop() {
            if deps_done {
                order.push(i);
                continue;
            }
            if placed[i] {
                continue;
            }
            placed[i] = true;
            stack.push((i, true));
            for dep in changes[i].deps().iter().rev() {
                if let Some(&j) = at.get(dep)
                    && !placed[j]
                {
                    stack.push((j, false));
                }
            }
        }
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}
