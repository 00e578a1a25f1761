//! One node as one Automerge document: the layout of its fields, edits as
//! Automerge operations, and reading it back (materialising).
//!
//! Layout of the root map (every key optional except `id` and `kind`):
//!
//! | key | Automerge type | why |
//! |---|---|---|
//! | `id`, `kind`, `title`, `status`, `priority`, `project`, `date` | str | scalars: concurrent sets are kept as conflicts |
//! | `created`, `modified`, `due`, `wait`, `scheduled`, `start`, `end` | timestamp (ms) | unset = key deleted |
//! | `deleted` | bool | the tombstone |
//! | `body` | text | merged character by character |
//! | `tags`, `links`, `depends` | map of key → `true` | a set whose concurrent additions all survive |
//! | `annotations` | list of maps `{entry, description}` | |
//! | `uda` | map of str | attributes heph does not model (Taskwarrior UDAs) |
//!
//! This module owns the layout; nothing else reads or writes document keys.

use std::collections::{BTreeMap, BTreeSet};

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
    /// The document is not shaped like a node (a key is missing or of the wrong type).
    #[error("document {id} is not a heph node: {reason}")]
    NotANode {
        /// The document.
        id: NodeId,
        /// What is wrong.
        reason: String,
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
    /// Set or clear the start time directly (imports; `Status` stamps it itself).
    Start(Option<DateTime<Utc>>),
    /// Set or clear the end time directly (imports).
    End(Option<DateTime<Utc>>),
    /// Mark deleted (`true`) or restore (`false`).
    Deleted(bool),
    /// Set or clear an attribute heph does not model.
    Uda(String, Option<String>),
}

/// Scalar fields whose concurrent values are reported as conflicts.
/// `modified` is left out on purpose: every edit sets it, so it would always
/// conflict, and the latest value is the right one anyway.
pub const CONFLICT_FIELDS: &[&str] =
    &["title", "status", "priority", "due", "wait", "scheduled", "start", "end", "project", "deleted"];

/// Concurrent values of one field of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Conflict {
    /// The node.
    pub id: NodeId,
    /// The field (`title`, `due`, …).
    pub field: String,
    /// The values, rendered; the first is the one currently shown.
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

impl NodeDoc {
    /// An empty document that will receive changes from elsewhere.
    #[must_use]
    pub fn empty(actor: &ActorId) -> Self {
        Self { doc: Automerge::new().with_actor(actor.clone()) }
    }

    /// Loads a saved document (snapshot and/or concatenated changes).
    pub fn load(bytes: &[u8], actor: &ActorId) -> Result<Self, DocError> {
        let mut doc = Automerge::load(bytes)?;
        doc.set_actor(actor.clone());
        Ok(Self { doc })
    }

    /// The compacted form, for the `docs` table.
    #[must_use]
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
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
    pub fn apply(&mut self, changes: Vec<Change>) -> Result<Vec<Change>, DocError> {
        self.doc.apply_changes(changes.iter().cloned())?;
        let waiting: Vec<Change> = changes.into_iter().filter(|c| !self.has_change(&c.hash())).collect();
        Ok(waiting)
    }

    /// Merges bytes received whole (a saved document, or a run of changes
    /// in causal order); changes missing a dependency wait inside the
    /// document. Returns how many operations were added.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<usize, DocError> {
        Ok(self.doc.load_incremental(bytes)?)
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

    /// Creates the document of `node`, in one change made by `actor`.
    pub fn create(node: &Node, actor: &ActorId, message: &str) -> Result<(Self, Change), DocError> {
        Self::create_with(node, &[], actor, message)
    }

    /// Creates the document of `node` with `edits` applied on top, all in one
    /// change made by `actor` at `node.modified`.
    pub fn create_with(
        node: &Node,
        edits: &[Edit],
        actor: &ActorId,
        message: &str,
    ) -> Result<(Self, Change), DocError> {
        let mut doc = Automerge::new().with_actor(actor.clone());
        let mut tx = doc.transaction();
        write_node(&mut tx, node)?;
        for edit in edits {
            apply_edit(&mut tx, edit, node.modified)?;
        }
        tx.commit_with(CommitOptions::default().with_message(message).with_time(node.modified.timestamp_millis()));
        let change = doc.get_last_local_change().ok_or_else(|| not_a_node(node.id, "creating it made no change"))?;
        Ok((Self { doc }, change))
    }

    /// The first change of a journal day, identical on every device: the same
    /// actor, time and operations give the same bytes and so the same hash, so
    /// two devices that open the day offline share one document.
    pub fn journal_genesis(day: NaiveDate) -> Result<(Self, Change), DocError> {
        let id = NodeId::journal(day);
        let midnight = day.and_hms_opt(0, 0, 0).map_or(DateTime::UNIX_EPOCH, |t| t.and_utc());
        let mut node = Node::new(id, NodeKind::Journal, day.to_string(), midnight);
        node.date = Some(day);
        let actor = ActorId::from(NodeId::derived(&format!("heph/journal-actor/{day}")).as_bytes().as_slice());
        Self::create(&node, &actor, "journal")
    }

    /// Switches the actor that local edits are made as.
    pub fn set_actor(&mut self, actor: &ActorId) {
        self.doc.set_actor(actor.clone());
    }

    /// Applies `edits` as one change. Returns `None` when there is nothing to do.
    pub fn edit(&mut self, edits: &[Edit], message: &str, now: DateTime<Utc>) -> Result<Option<Change>, DocError> {
        if edits.is_empty() {
            return Ok(None);
        }
        let mut tx = self.doc.transaction();
        for edit in edits {
            apply_edit(&mut tx, edit, now)?;
        }
        tx.put(ROOT, "modified", ts(now))?;
        let (hash, _) =
            tx.commit_with(CommitOptions::default().with_message(message).with_time(now.timestamp_millis()));
        Ok(hash.and_then(|_| self.doc.get_last_local_change()))
    }

    /// Ends a conflict on `field` by writing the concurrent value that renders
    /// as `value` (one of [`Conflict::values`]) over all of them. Returns
    /// `None` when no current value renders so.
    pub fn resolve(&mut self, field: &str, value: &str, now: DateTime<Utc>) -> Result<Option<Change>, DocError> {
        let chosen = self.doc.get_all(ROOT, field)?.into_iter().find_map(|(v, _)| match &v {
            Value::Scalar(s) if render(&v) == value => Some(s.clone().into_owned()),
            _ => None,
        });
        let Some(chosen) = chosen else {
            return Ok(None);
        };
        let mut tx = self.doc.transaction();
        tx.put(ROOT, field, chosen)?;
        tx.put(ROOT, "modified", ts(now))?;
        let message = format!("resolve {field}");
        let (hash, _) =
            tx.commit_with(CommitOptions::default().with_message(message).with_time(now.timestamp_millis()));
        Ok(hash.and_then(|_| self.doc.get_last_local_change()))
    }

    /// The fields that have more than one distinct concurrent value.
    pub fn conflicts(&self, id: NodeId) -> Result<Vec<Conflict>, DocError> {
        let mut out = Vec::new();
        for field in CONFLICT_FIELDS {
            let all = self.doc.get_all(ROOT, *field)?;
            if all.len() < 2 {
                continue;
            }
            // Automerge shows the value with the greatest op id; list it first.
            let mut values: Vec<String> = all.iter().rev().map(|(v, _)| render(v)).collect();
            let distinct: BTreeSet<&String> = values.iter().collect();
            if distinct.len() < 2 {
                continue;
            }
            values.dedup();
            out.push(Conflict { id, field: (*field).to_string(), values });
        }
        Ok(out)
    }

    /// The node's history, oldest first.
    #[must_use]
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|meta| HistoryEntry {
                hash: meta.hash.to_string(),
                time: from_ms(meta.timestamp).unwrap_or(DateTime::UNIX_EPOCH),
                device: meta.actor.to_hex_string(),
                message: meta.message.map(|m| m.into_owned()).unwrap_or_default(),
            })
            .collect()
    }

    /// Reads the node back.
    pub fn materialise(&self) -> Result<Node, DocError> {
        let d = &self.doc;
        let id_text = get_str(d, &ROOT, "id")?.ok_or_else(|| not_a_node(NodeId::from_bytes([0; 16]), "no id"))?;
        let id = NodeId::parse(&id_text).ok_or_else(|| not_a_node(NodeId::from_bytes([0; 16]), "bad id"))?;
        let kind: NodeKind = get_str(d, &ROOT, "kind")?
            .ok_or_else(|| not_a_node(id, "no kind"))?
            .parse()
            .map_err(|e: String| not_a_node(id, &e))?;
        let created = get_time(d, "created")?.unwrap_or(DateTime::UNIX_EPOCH);
        let mut node = Node::new(id, kind, get_str(d, &ROOT, "title")?.unwrap_or_default(), created);
        node.modified = get_time(d, "modified")?.unwrap_or(created);
        node.body = match d.get(ROOT, "body")? {
            Some((Value::Object(ObjType::Text), obj)) => d.text(&obj)?,
            _ => String::new(),
        };
        node.tags = get_set(d, "tags")?;
        node.links = get_set(d, "links")?.iter().filter_map(|h| NodeId::parse(h)).collect();
        node.depends = get_set(d, "depends")?.iter().filter_map(|h| NodeId::parse(h)).collect();
        node.deleted = matches!(scalar(d, &ROOT, "deleted")?, Some(ScalarValue::Boolean(true)));
        node.status = get_str(d, &ROOT, "status")?.and_then(|s| s.parse().ok());
        node.priority = get_str(d, &ROOT, "priority")?.and_then(|s| s.parse().ok());
        node.project = get_str(d, &ROOT, "project")?;
        node.due = get_time(d, "due")?;
        node.wait = get_time(d, "wait")?;
        node.scheduled = get_time(d, "scheduled")?;
        node.start = get_time(d, "start")?;
        node.end = get_time(d, "end")?;
        node.date = get_str(d, &ROOT, "date")?.and_then(|s| s.parse().ok());
        if let Some((Value::Object(ObjType::List), list)) = d.get(ROOT, "annotations")? {
            for i in 0..d.length(&list) {
                if let Some((Value::Object(ObjType::Map), item)) = d.get(&list, i)? {
                    let entry = match scalar(d, &item, "entry")? {
                        Some(ScalarValue::Timestamp(ms)) => from_ms(ms).unwrap_or(created),
                        _ => created,
                    };
                    let description = get_str(d, &item, "description")?.unwrap_or_default();
                    node.annotations.push(Annotation { entry, description });
                }
            }
        }
        if let Some((Value::Object(ObjType::Map), map)) = d.get(ROOT, "uda")? {
            let mut uda = BTreeMap::new();
            for key in d.keys(&map) {
                if let Some(value) = get_str(d, &map, &key)? {
                    uda.insert(key, value);
                }
            }
            node.uda = uda;
        }
        Ok(node)
    }
}

fn not_a_node(id: NodeId, reason: &str) -> DocError {
    DocError::NotANode { id, reason: reason.to_string() }
}

fn render(value: &Value<'_>) -> String {
    match value {
        Value::Object(t) => format!("<{t}>"),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            ScalarValue::Timestamp(ms) => from_ms(*ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339()),
            ScalarValue::Boolean(b) => b.to_string(),
            ScalarValue::Null => "(unset)".to_string(),
            other => other.to_string(),
        },
    }
}

fn scalar(d: &Automerge, obj: &ObjId, key: &str) -> Result<Option<ScalarValue>, DocError> {
    Ok(match d.get(obj, key)? {
        Some((Value::Scalar(s), _)) => Some(s.into_owned()),
        _ => None,
    })
}

fn get_str(d: &Automerge, obj: &ObjId, key: &str) -> Result<Option<String>, DocError> {
    Ok(match scalar(d, obj, key)? {
        Some(ScalarValue::Str(s)) => Some(s.to_string()),
        _ => None,
    })
}

fn get_time(d: &Automerge, key: &str) -> Result<Option<DateTime<Utc>>, DocError> {
    Ok(match scalar(d, &ROOT, key)? {
        Some(ScalarValue::Timestamp(ms) | ScalarValue::Int(ms)) => from_ms(ms),
        _ => None,
    })
}

fn get_set(d: &Automerge, key: &str) -> Result<BTreeSet<String>, DocError> {
    Ok(match d.get(ROOT, key)? {
        Some((Value::Object(ObjType::Map), map)) => d.keys(&map).collect(),
        _ => BTreeSet::new(),
    })
}

/// The map object at `key`, created if missing.
fn map_at<T: Transactable>(tx: &mut T, key: &str) -> Result<ObjId, DocError> {
    match tx.get(ROOT, key)? {
        Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
        _ => Ok(tx.put_object(ROOT, key, ObjType::Map)?),
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

fn set_member<T: Transactable>(tx: &mut T, key: &str, member: &str, present: bool) -> Result<(), DocError> {
    let map = map_at(tx, key)?;
    if present {
        tx.put(&map, member, true)?;
    } else if tx.get(&map, member)?.is_some() {
        tx.delete(&map, member)?;
    }
    Ok(())
}

fn body_text<T: Transactable>(tx: &mut T) -> Result<ObjId, DocError> {
    match tx.get(ROOT, "body")? {
        Some((Value::Object(ObjType::Text), obj)) => Ok(obj),
        _ => Ok(tx.put_object(ROOT, "body", ObjType::Text)?),
    }
}

fn write_node<T: Transactable>(tx: &mut T, node: &Node) -> Result<(), DocError> {
    tx.put(ROOT, "id", node.id.to_hex())?;
    tx.put(ROOT, "kind", node.kind.as_str())?;
    tx.put(ROOT, "title", node.title.as_str())?;
    let body = tx.put_object(ROOT, "body", ObjType::Text)?;
    if !node.body.is_empty() {
        tx.splice_text(&body, 0, 0, &node.body)?;
    }
    tx.put(ROOT, "created", ts(node.created))?;
    tx.put(ROOT, "modified", ts(node.modified))?;
    if node.deleted {
        tx.put(ROOT, "deleted", true)?;
    }
    for (key, set) in [
        ("tags", node.tags.iter().cloned().collect::<Vec<_>>()),
        ("links", node.links.iter().map(NodeId::to_hex).collect()),
        ("depends", node.depends.iter().map(NodeId::to_hex).collect()),
    ] {
        let map = tx.put_object(ROOT, key, ObjType::Map)?;
        for member in set {
            tx.put(&map, member, true)?;
        }
    }
    // A new document: only present values are written (nothing to delete).
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
    if !node.annotations.is_empty() {
        let list = tx.put_object(ROOT, "annotations", ObjType::List)?;
        for (i, a) in node.annotations.iter().enumerate() {
            let item = tx.insert_object(&list, i, ObjType::Map)?;
            tx.put(&item, "entry", ts(a.entry))?;
            tx.put(&item, "description", a.description.as_str())?;
        }
    }
    if !node.uda.is_empty() {
        let map = tx.put_object(ROOT, "uda", ObjType::Map)?;
        for (k, v) in &node.uda {
            tx.put(&map, k.as_str(), v.as_str())?;
        }
    }
    Ok(())
}

fn apply_edit<T: Transactable>(tx: &mut T, edit: &Edit, now: DateTime<Utc>) -> Result<(), DocError> {
    match edit {
        Edit::Title(t) => tx.put(ROOT, "title", t.as_str())?,
        Edit::Body(text) => {
            let body = body_text(tx)?;
            tx.update_text(&body, text)?;
        }
        Edit::AppendBody(text) => {
            let body = body_text(tx)?;
            let len = tx.length(&body);
            let existing = tx.text(&body)?;
            let joined =
                if existing.is_empty() || existing.ends_with('\n') { text.clone() } else { format!("\n{text}") };
            tx.splice_text(&body, len, 0, &joined)?;
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
        Edit::Annotate(annotation) => {
            let list = match tx.get(ROOT, "annotations")? {
                Some((Value::Object(ObjType::List), obj)) => obj,
                _ => tx.put_object(ROOT, "annotations", ObjType::List)?,
            };
            let len = tx.length(&list);
            let item = tx.insert_object(&list, len, ObjType::Map)?;
            tx.put(&item, "entry", ts(annotation.entry))?;
            tx.put(&item, "description", annotation.description.as_str())?;
        }
        Edit::Deleted(deleted) => tx.put(ROOT, "deleted", *deleted)?,
        Edit::Uda(key, value) => {
            let map = map_at(tx, "uda")?;
            match value {
                Some(v) => tx.put(&map, key.as_str(), v.as_str())?,
                None => {
                    if tx.get(&map, key.as_str())?.is_some() {
                        tx.delete(&map, key.as_str())?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(n: u8) -> ActorId {
        ActorId::from([n; 16].as_slice())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    #[test]
    fn create_then_materialise_round_trips() {
        let mut node = Node::new(NodeId::random(), NodeKind::Task, "Buy milk".into(), now());
        node.tags.insert("errand".into());
        node.priority = Some(Priority::H);
        node.due = Some(now());
        node.body = "two litres".into();
        node.annotations.push(Annotation { entry: now(), description: "ask Sam".into() });
        node.uda.insert("estimate".into(), "2h".into());
        let (doc, change) = NodeDoc::create(&node, &actor(1), "add").unwrap();
        assert_eq!(doc.materialise().unwrap(), node);
        // Sub-millisecond times are stored at millisecond precision.
        let mut precise = node.clone();
        precise.due = Some(now() + chrono::Duration::nanoseconds(1_234_567));
        precise.modified = now() + chrono::Duration::nanoseconds(999_999);
        let (doc, _) = NodeDoc::create(&precise, &actor(1), "add").unwrap();
        assert_eq!(doc.materialise().unwrap(), precise.normalised());
        assert_eq!(change.message(), Some("add"));
    }

    #[test]
    fn concurrent_sets_are_conflicts_and_resolve() {
        let node = Node::new(NodeId::random(), NodeKind::Task, "t".into(), now());
        let (mut a, genesis) = NodeDoc::create(&node, &actor(1), "add").unwrap();
        let mut b = NodeDoc::empty(&actor(2));
        b.apply(vec![genesis]).unwrap();
        let ca = a.edit(&[Edit::Title("from a".into())], "modify", now()).unwrap().unwrap();
        let cb = b.edit(&[Edit::Title("from b".into()), Edit::AddTag("x".into())], "modify", now()).unwrap().unwrap();
        a.apply(vec![cb]).unwrap();
        b.apply(vec![ca]).unwrap();
        let ka = a.conflicts(node.id).unwrap();
        assert_eq!(ka, b.conflicts(node.id).unwrap());
        assert_eq!(ka.len(), 1);
        assert_eq!(ka[0].field, "title");
        assert_eq!(ka[0].values[0], a.materialise().unwrap().title);
        // The tag and the title merge independently.
        assert!(a.materialise().unwrap().tags.contains("x"));
        a.resolve("title", &ka[0].values[1], now()).unwrap().unwrap();
        assert!(a.conflicts(node.id).unwrap().is_empty());
        assert_eq!(a.materialise().unwrap().title, ka[0].values[1]);
    }

    #[test]
    fn journal_genesis_is_identical_everywhere() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let (_, a) = NodeDoc::journal_genesis(day).unwrap();
        let (_, b) = NodeDoc::journal_genesis(day).unwrap();
        assert_eq!(a.hash(), b.hash());
    }

    #[test]
    fn concurrent_body_appends_both_survive() {
        let node = Node::new(NodeId::random(), NodeKind::Note, "n".into(), now());
        let (mut a, genesis) = NodeDoc::create(&node, &actor(1), "note").unwrap();
        let mut b = NodeDoc::empty(&actor(2));
        b.apply(vec![genesis]).unwrap();
        let ca = a.edit(&[Edit::AppendBody("alpha".into())], "append", now()).unwrap().unwrap();
        let cb = b.edit(&[Edit::AppendBody("beta".into())], "append", now()).unwrap().unwrap();
        a.apply(vec![cb]).unwrap();
        b.apply(vec![ca]).unwrap();
        let body = a.materialise().unwrap().body;
        assert_eq!(body, b.materialise().unwrap().body);
        assert!(body.contains("alpha") && body.contains("beta"));
    }

    #[test]
    fn changes_with_missing_deps_wait() {
        let node = Node::new(NodeId::random(), NodeKind::Task, "t".into(), now());
        let (mut a, genesis) = NodeDoc::create(&node, &actor(1), "add").unwrap();
        let c2 = a.edit(&[Edit::Title("2".into())], "m", now()).unwrap().unwrap();
        let mut b = NodeDoc::empty(&actor(2));
        let waiting = b.apply(vec![c2.clone()]).unwrap();
        assert_eq!(waiting.len(), 1);
        let waiting = b.apply(vec![genesis, c2]).unwrap();
        assert!(waiting.is_empty());
        assert_eq!(b.materialise().unwrap().title, "2");
    }
}
