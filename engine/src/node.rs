//! The data model: what a node is, as the user and the JSON interfaces see it.
//!
//! A node is stored as an Automerge document (see [`crate::doc`]); [`Node`] is
//! its materialised form, and [`NodeSummary`] the smaller row kept in the list
//! index so that listing never loads a document.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::NodeId;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Something to do.
    Task,
    /// A piece of knowledge.
    Note,
    /// The journal of one day.
    Journal,
}

/// The life cycle of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started.
    Pending,
    /// Being worked on (`heph start`).
    Active,
    /// Finished.
    Done,
    /// Dropped without being done.
    Cancelled,
    /// Hidden until its `wait` date.
    Waiting,
}

/// A task's priority, Taskwarrior's H/M/L.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Priority {
    /// High.
    H,
    /// Medium.
    M,
    /// Low.
    L,
}

/// A dated comment on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Annotation {
    /// When it was written.
    pub entry: DateTime<Utc>,
    /// What it says.
    pub description: String,
}

/// A node in full: the materialised state of its document.
///
/// This is also the native JSON form of `heph export` / `heph import` and of
/// `heph show --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    /// Its identity.
    pub id: NodeId,
    /// What it is.
    pub kind: NodeKind,
    /// One line.
    pub title: String,
    /// Markdown text, merged character by character.
    #[serde(default)]
    pub body: String,
    /// Tags, without the `+`.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Nodes this one links to.
    #[serde(default)]
    pub links: BTreeSet<NodeId>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last changed.
    pub modified: DateTime<Utc>,
    /// A tombstone: deleted nodes are kept so the deletion syncs.
    #[serde(default)]
    pub deleted: bool,
    /// Task status (tasks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Task priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// When it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Hidden from the default report until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<DateTime<Utc>>,
    /// When work is planned to begin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<DateTime<Utc>>,
    /// When it was last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// When it was done or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// The project, dotted for sub-projects (`home.garden`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Tasks that must be done first.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub depends: BTreeSet<NodeId>,
    /// Dated comments, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// The day of a journal node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Other attributes (Taskwarrior UDAs survive an import this way).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uda: BTreeMap<String, String>,
    /// Fields this heph could not read as their type, or does not know, with
    /// their raw values (another program or a newer heph wrote them). They
    /// are shown so nothing in a document goes unseen; creating a node from
    /// this struct does not write them back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Node {
    /// A blank node of `kind`, created at `now`.
    #[must_use]
    pub fn new(id: NodeId, kind: NodeKind, title: String, now: DateTime<Utc>) -> Self {
        Self {
            id,
            kind,
            title,
            body: String::new(),
            tags: BTreeSet::new(),
            links: BTreeSet::new(),
            created: now,
            modified: now,
            deleted: false,
            status: (kind == NodeKind::Task).then_some(Status::Pending),
            priority: None,
            due: None,
            wait: None,
            scheduled: None,
            start: None,
            end: None,
            project: None,
            depends: BTreeSet::new(),
            annotations: Vec::new(),
            date: None,
            uda: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl Node {
    /// The node as its document stores it: times at millisecond precision
    /// (Automerge timestamps), annotations sorted by entry time (a stable
    /// sort, so equal times keep their order) without exact duplicates.
    /// Reading back a freshly created document gives exactly this (`extra`
    /// aside: creation does not write it).
    #[must_use]
    pub fn normalised(&self) -> Self {
        let mut n = self.clone();
        n.created = to_ms(n.created);
        n.modified = to_ms(n.modified);
        for t in [&mut n.due, &mut n.wait, &mut n.scheduled, &mut n.start, &mut n.end].into_iter().flatten() {
            *t = to_ms(*t);
        }
        for a in &mut n.annotations {
            a.entry = to_ms(a.entry);
        }
        n.annotations = sorted_annotations(std::mem::take(&mut n.annotations));
        n
    }
}

/// Annotations in entry-time order (stable), exact duplicates removed: the
/// order and set a document reads back, whichever lists they came from.
#[must_use]
pub fn sorted_annotations(mut list: Vec<Annotation>) -> Vec<Annotation> {
    list.sort_by_key(|a| a.entry);
    let mut out: Vec<Annotation> = Vec::with_capacity(list.len());
    for a in list {
        // Equal entries are adjacent after the sort; duplicates are among them.
        let dup = out.iter().rev().take_while(|b| b.entry == a.entry).any(|b| b.description == a.description);
        if !dup {
            out.push(a);
        }
    }
    out
}

/// The index row of a node: what listing, filtering and sorting need.
///
/// Stored with postcard in the `index` table; times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSummary {
    /// Its identity.
    pub id: NodeId,
    /// What it is.
    pub kind: NodeKind,
    /// One line.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Project.
    pub project: Option<String>,
    /// Task status.
    pub status: Option<Status>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Created (ms).
    pub created: i64,
    /// Modified (ms).
    pub modified: i64,
    /// Due (ms).
    pub due: Option<i64>,
    /// Wait (ms).
    pub wait: Option<i64>,
    /// Scheduled (ms).
    pub scheduled: Option<i64>,
    /// Started (ms).
    pub start: Option<i64>,
    /// Ended (ms).
    pub end: Option<i64>,
    /// Tombstone.
    pub deleted: bool,
    /// Ids this task depends on.
    pub depends: Vec<NodeId>,
    /// Ids this node links to.
    pub links: Vec<NodeId>,
    /// Number of annotations.
    pub annotations: u32,
    /// Fields with unresolved concurrent values.
    pub conflicts: Vec<String>,
    /// Journal day.
    pub date: Option<NaiveDate>,
    /// Other attributes (Taskwarrior UDAs, recurrence), sorted by name.
    pub uda: Vec<(String, String)>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl NodeSummary {
    /// The index row of `node`, whose conflicting fields are `conflicts`.
    #[must_use]
    pub fn of(node: &Node, conflicts: Vec<String>) -> Self {
        Self {
            id: node.id,
            kind: node.kind,
            title: node.title.clone(),
            tags: node.tags.iter().cloned().collect(),
            project: node.project.clone(),
            status: node.status,
            priority: node.priority,
            created: ms(node.created),
            modified: ms(node.modified),
            due: node.due.map(ms),
            wait: node.wait.map(ms),
            scheduled: node.scheduled.map(ms),
            start: node.start.map(ms),
            end: node.end.map(ms),
            deleted: node.deleted,
            depends: node.depends.iter().copied().collect(),
            links: node.links.iter().copied().collect(),
            annotations: u32::try_from(node.annotations.len()).unwrap_or(u32::MAX),
            conflicts,
            date: node.date,
            uda: node.uda.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// The value of UDA `key`, if it has one.
    #[must_use]
    pub fn uda(&self, key: &str) -> Option<&str> {
        self.uda.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The status a listing should show: `waiting` turns back into `pending`
    /// once its wait date has passed.
    #[must_use]
    pub fn effective_status(&self, now_ms: i64) -> Option<Status> {
        match self.status {
            Some(Status::Waiting) if self.wait.is_none_or(|w| w <= now_ms) => Some(Status::Pending),
            Some(Status::Pending) if self.wait.is_some_and(|w| w > now_ms) => Some(Status::Waiting),
            other => other,
        }
    }
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// The lower-case name, as stored in documents.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($text $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "{s:?} is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(NodeKind { Task => "task", Note => "note", Journal => "journal" });
text_enum!(Status {
    Pending => "pending",
    Active => "active" | "started",
    Done => "done" | "completed",
    Cancelled => "cancelled" | "canceled",
    Waiting => "waiting",
});

impl Priority {
    /// The one-letter name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::H => "H",
            Self::M => "M",
            Self::L => "L",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "h" | "high" => Ok(Self::H),
            "m" | "medium" | "med" => Ok(Self::M),
            "l" | "low" => Ok(Self::L),
            _ => Err(format!("{s:?} is not a priority (H, M or L)")),
        }
    }
}
