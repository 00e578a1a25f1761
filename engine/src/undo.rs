//! Undoing this device's last write (`heph undo`), as a new change that
//! syncs like any edit.
//!
//! # Which change
//! The newest change in the local log that this device made (its actor),
//! that is not an undo itself and that no undo has reverted yet. An undo's
//! message is `undo HASH (MESSAGE)`, naming the change it reverts, so the
//! log alone says what is undone: a second undo walks further back, and an
//! undo is never undone by another. Changes received from other devices,
//! imports (made by a derived actor) and a restored backup's history are
//! never candidates.
//!
//! # What it does
//! - A change that created a node: the node is deleted (a tombstone).
//! - Any other change: each field it touched goes back to its value before
//!   that change; fields it did not touch keep whatever they hold now, edits
//!   synced from other devices since included. Sets (tags, links,
//!   dependencies, annotations, UDAs) are reverted member by member, so a
//!   tag another device added since stays.
//!
//! A field it touched that another device changed since is set back too:
//! undo restores what that change replaced.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::{Change, ChangeHash};
use chrono::{DateTime, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::doc::{Edit, NodeDoc};
use crate::error::Error;
use crate::id::NodeId;
use crate::node::{Node, NodeKind};
use crate::replica::diff;

/// What `heph undo` would revert, to show before asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoPlan {
    /// The node the change belongs to.
    pub id: NodeId,
    /// Its kind.
    pub kind: NodeKind,
    /// Its title now.
    pub title: String,
    /// The change to revert (its hash, hex).
    pub change: String,
    /// The change's history message (`modify due:friday`, `done`, …).
    pub message: String,
    /// When it was made.
    pub time: DateTime<Utc>,
    /// The change created the node: undoing it deletes the node.
    pub creation: bool,
    /// The fields the change set, with their values before and after it
    /// (empty for a creation). Undo puts back the `before` values.
    pub fields: Vec<FieldChange>,
}

/// One field a change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    /// The field: `title`, `due`, `tags`, `uda.NAME`, …
    pub field: String,
    /// Its value before the change (dates in RFC 3339, sets comma-separated); none when unset.
    pub before: Option<String>,
    /// Its value after the change.
    pub after: Option<String>,
}

/// The prefix of an undo's history message.
const PREFIX: &str = "undo ";

/// The change an undo's `message` names as reverted, if it is an undo.
#[must_use]
pub fn reverted_by(message: &str) -> Option<ChangeHash> {
    message.strip_prefix(PREFIX)?.get(..64)?.parse().ok()
}

/// The history message of the undo of `change`.
fn message_for(change: &Change) -> String {
    format!("{PREFIX}{} ({})", change.hash(), change.message().unwrap_or_default())
}

/// Finds the change to undo through `walk` (a store's walk over this
/// device's own changes, newest first).
pub(crate) fn target(
    walk: impl FnOnce(&mut dyn FnMut(NodeId, Change) -> bool) -> Result<(), Error>,
) -> Result<Option<(NodeId, Change)>, Error> {
    let mut undone: HashSet<ChangeHash> = HashSet::new();
    let mut found = None;
    walk(&mut |doc, change| {
        if let Some(hash) = change.message().and_then(reverted_by) {
            undone.insert(hash);
            return true;
        }
        // Undone already, or made by recurrence on its own (made again
        // the next time tasks are listed): not what the user means.
        if undone.contains(&change.hash()) || change.message() == Some(crate::recur::GENERATED) {
            return true;
        }
        found = Some((doc, change));
        false
    })?;
    Ok(found)
}

/// The node before and after `change`, or `None` for "before" when the
/// change created it.
fn around(doc: &NodeDoc, id: NodeId, change: &Change) -> Result<(Option<Node>, Node), Error> {
    let after = doc.at(&[change.hash()])?.materialise_as(id)?;
    if doc.creates(change) {
        return Ok((None, after));
    }
    Ok((Some(doc.at(change.deps())?.materialise_as(id)?), after))
}

/// What undoing `change` of node `id` (held in `doc`) would do.
pub(crate) fn plan(doc: &NodeDoc, id: NodeId, change: &Change) -> Result<UndoPlan, Error> {
    let now = doc.materialise_as(id)?;
    let (before, after) = around(doc, id, change)?;
    Ok(UndoPlan {
        id,
        kind: now.kind,
        title: now.title,
        change: change.hash().to_string(),
        message: change.message().unwrap_or_default().to_string(),
        time: Utc.timestamp_millis_opt(change.timestamp()).single().unwrap_or(DateTime::UNIX_EPOCH),
        creation: before.is_none(),
        fields: before.map(|b| field_changes(&b, &after)).unwrap_or_default(),
    })
}

/// Reverts `change` of node `id` in `doc` as one new change at `now`.
pub(crate) fn revert(
    doc: &mut NodeDoc,
    id: NodeId,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Option<Change>, Error> {
    let current = doc.materialise_as(id)?;
    let edits = match around(doc, id, change)? {
        (None, _) => vec![Edit::Deleted(true)],
        (Some(before), after) => {
            let target = reverted(&current, &before, &after);
            let mut edits = diff(&current, &target);
            for a in &current.annotations {
                if !target.annotations.contains(a) {
                    edits.push(Edit::Unannotate(a.clone()));
                }
            }
            edits
        }
    };
    // Made even when the fields are already back, so that the log records
    // the change as undone and the next undo walks past it.
    Ok(doc.record(&edits, &message_for(change), now)?)
}

/// `current` with each field `before` → `after` changed set back to its
/// `before` value; sets member by member.
fn reverted(current: &Node, before: &Node, after: &Node) -> Node {
    let mut t = current.clone();
    macro_rules! scalar {
        ($($f:ident),*) => {$(
            if before.$f != after.$f {
                t.$f = before.$f.clone();
            }
        )*};
    }
    scalar!(title, body, status, start, end, priority, due, wait, scheduled, project, deleted);
    t.tags = members(&current.tags, &before.tags, &after.tags);
    t.links = members(&current.links, &before.links, &after.links);
    t.depends = members(&current.depends, &before.depends, &after.depends);
    t.annotations.retain(|a| before.annotations.contains(a) || !after.annotations.contains(a));
    for a in &before.annotations {
        if !after.annotations.contains(a) && !t.annotations.contains(a) {
            t.annotations.push(a.clone());
        }
    }
    let keys: BTreeSet<&String> = before.uda.keys().chain(after.uda.keys()).collect();
    for k in keys {
        if before.uda.get(k) != after.uda.get(k) {
            match before.uda.get(k) {
                Some(v) => t.uda.insert(k.clone(), v.clone()),
                None => t.uda.remove(k),
            };
        }
    }
    t
}

/// `current` without what the change added and with what it removed.
fn members<T: Ord + Clone>(current: &BTreeSet<T>, before: &BTreeSet<T>, after: &BTreeSet<T>) -> BTreeSet<T> {
    let added: BTreeSet<T> = after.difference(before).cloned().collect();
    let mut out: BTreeSet<T> = current.difference(&added).cloned().collect();
    out.extend(before.difference(after).cloned());
    out
}

/// The fields that differ between `before` and `after`, rendered.
fn field_changes(before: &Node, after: &Node) -> Vec<FieldChange> {
    let b = fields(before);
    let a = fields(after);
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut out: Vec<FieldChange> = names
        .into_iter()
        .filter(|n| b.get(*n) != a.get(*n))
        .map(|n| FieldChange { field: n.clone(), before: b.get(n).cloned(), after: a.get(n).cloned() })
        .collect();
    // The order a person reads a task in, then the rest by name.
    let rank = |f: &str| ORDER.iter().position(|o| *o == f).unwrap_or(ORDER.len());
    out.sort_by_key(|f| rank(&f.field));
    out
}

const ORDER: &[&str] = &[
    "title",
    "status",
    "deleted",
    "project",
    "priority",
    "due",
    "wait",
    "scheduled",
    "start",
    "end",
    "tags",
    "depends",
    "links",
    "annotations",
    "body",
];

/// A node's fields as text, unset ones left out.
fn fields(n: &Node) -> BTreeMap<String, String> {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let set = |items: Vec<String>| (!items.is_empty()).then(|| items.join(", "));
    let mut out: BTreeMap<String, String> = [
        ("title", Some(n.title.clone())),
        ("body", (!n.body.is_empty()).then(|| n.body.clone())),
        ("status", n.status.map(|s| s.as_str().to_string())),
        ("priority", n.priority.map(|p| p.as_str().to_string())),
        ("project", n.project.clone()),
        ("due", time(n.due)),
        ("wait", time(n.wait)),
        ("scheduled", time(n.scheduled)),
        ("start", time(n.start)),
        ("end", time(n.end)),
        ("deleted", n.deleted.then(|| "yes".to_string())),
        ("tags", set(n.tags.iter().cloned().collect())),
        ("links", set(n.links.iter().map(NodeId::to_hex).collect())),
        ("depends", set(n.depends.iter().map(NodeId::to_hex).collect())),
        ("annotations", set(n.annotations.iter().map(|a| a.description.clone()).collect())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    for (k, v) in &n.uda {
        out.insert(format!("uda.{k}"), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::node::{Annotation, Priority, Status};
    use crate::replica::Replica;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn task(r: &Replica, title: &str) -> NodeId {
        let draft = Node::new(NodeId::random(), NodeKind::Task, title.into(), t(0));
        r.create(&draft, &[Edit::AddTag("home".into())], &format!("add {title}")).unwrap().id
    }

    #[test]
    fn undo_of_a_modify_restores_the_fields_it_touched() {
        let r = Replica::in_memory().unwrap();
        let id = task(&r, "Buy milk");
        let edits = [
            Edit::Title("Buy oat milk".into()),
            Edit::Due(Some(t(600))),
            Edit::AddTag("errand".into()),
            Edit::RemoveTag("home".into()),
            Edit::Uda("estimate".into(), Some("2".into())),
        ];
        r.edit(id, &edits, "modify", t(1)).unwrap();
        let plan = r.undo_plan().unwrap().unwrap();
        assert_eq!((plan.id, plan.message.as_str(), plan.creation), (id, "modify", false));
        let fields: Vec<&str> = plan.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["title", "due", "tags", "uda.estimate"]);
        assert_eq!(plan.fields[0].before.as_deref(), Some("Buy milk"));
        assert_eq!(plan.fields[1].before, None);
        let (done, node) = r.undo(Some(&plan.change), t(2)).unwrap();
        assert_eq!(done, plan);
        assert_eq!(node.title, "Buy milk");
        assert_eq!(node.due, None);
        assert_eq!(node.tags.iter().collect::<Vec<_>>(), ["home"]);
        assert!(node.uda.is_empty());
        assert!(r.history(id).unwrap().last().unwrap().message.starts_with("undo "));
    }

    #[test]
    fn undo_of_done_reopens_and_of_a_delete_undeletes() {
        let r = Replica::in_memory().unwrap();
        let id = task(&r, "Call Ana");
        r.edit(id, &[Edit::Status(Status::Active)], "start", t(1)).unwrap();
        r.edit(id, &[Edit::Status(Status::Done)], "done", t(2)).unwrap();
        let node = r.undo(None, t(3)).unwrap().1;
        assert_eq!((node.status, node.start, node.end), (Some(Status::Active), Some(t(1)), None));
        r.edit(id, &[Edit::Deleted(true)], "delete", t(4)).unwrap();
        assert!(!r.undo(None, t(5)).unwrap().1.deleted);
    }

    #[test]
    fn undos_walk_back_to_the_creation_then_stop() {
        let r = Replica::in_memory().unwrap();
        let id = task(&r, "a");
        r.edit(id, &[Edit::Priority(Some(Priority::H))], "modify pri:H", t(1)).unwrap();
        r.edit(id, &[Edit::Annotate(Annotation { entry: t(2), description: "note".into() })], "annotate", t(2))
            .unwrap();
        assert!(r.undo(None, t(3)).unwrap().1.annotations.is_empty());
        let plan = r.undo_plan().unwrap().unwrap();
        assert_eq!(plan.message, "modify pri:H", "the undo itself is never the next one to undo");
        assert_eq!(r.undo(None, t(4)).unwrap().1.priority, None);
        let plan = r.undo_plan().unwrap().unwrap();
        assert!(plan.creation && plan.fields.is_empty());
        let (_, node) = r.undo(Some(&plan.change), t(5)).unwrap();
        assert!(node.deleted);
        assert!(r.undo_plan().unwrap().is_none());
        assert!(matches!(r.undo(None, t(6)), Err(Error::NothingToUndo)));
    }

    #[test]
    fn an_undo_that_is_no_longer_the_last_change_is_refused() {
        let r = Replica::in_memory().unwrap();
        let id = task(&r, "a");
        let plan = r.undo_plan().unwrap().unwrap();
        r.edit(id, &[Edit::Title("b".into())], "modify b", t(1)).unwrap();
        assert!(matches!(r.undo(Some(&plan.change), t(2)), Err(Error::UndoMoved { .. })));
        assert_eq!(r.get(id).unwrap().title, "b");
    }

    /// Hands every change of `id` that `from` holds to `to`, as a sync would.
    fn sync(from: &Replica, to: &Replica, id: NodeId) {
        let batch = from.changes_since(id, &[]).unwrap().into_iter().map(|c| (id, c)).collect();
        to.apply_from_hub(batch, 0, None).unwrap();
    }

    #[test]
    fn undo_keeps_what_another_device_changed_since() {
        let a = Replica::in_memory().unwrap();
        let b = Replica::in_memory().unwrap();
        let id = task(&a, "shared");
        sync(&a, &b, id);
        a.edit(id, &[Edit::Due(Some(t(60))), Edit::AddTag("a".into())], "modify due +a", t(1)).unwrap();
        b.edit(id, &[Edit::Priority(Some(Priority::L)), Edit::AddTag("b".into())], "modify pri:L +b", t(2)).unwrap();
        sync(&b, &a, id);
        // b's change arrived last, but it is not this device's.
        let plan = a.undo_plan().unwrap().unwrap();
        assert_eq!(plan.message, "modify due +a");
        let node = a.undo(None, t(3)).unwrap().1;
        assert_eq!(node.due, None);
        assert_eq!(node.priority, Some(Priority::L));
        assert_eq!(node.tags.iter().collect::<Vec<_>>(), ["b", "home"]);
        // And b sees the undo like any edit.
        sync(&a, &b, id);
        assert_eq!(b.get(id).unwrap(), a.get(id).unwrap());
    }
}
