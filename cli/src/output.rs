//! The shapes of `heph --json` output. Their JSON Schemas are generated into
//! `schemas/` (see `schemas_are_current` below), so scripts can rely on them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use heph_engine::{Conflict, Node, NodeId, NodeKind, NodeSummary, Priority, Status};
use schemars::JsonSchema;
use serde::Serialize;

#[cfg(test)]
use heph_engine::{HistoryEntry, ImportReport};

/// One row of `heph ls --json` and `heph search --json`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListItem {
    /// Full id.
    pub id: NodeId,
    /// The shortest unique prefix, as shown in text output.
    pub short: String,
    /// Node kind.
    pub kind: NodeKind,
    /// Title.
    pub title: String,
    /// Status as shown (waiting until the wait date, then pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<DateTime<Utc>>,
    /// Scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<DateTime<Utc>>,
    /// Started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// Ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Journal day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last changed.
    pub modified: DateTime<Utc>,
    /// Taskwarrior-style urgency (tasks only).
    pub urgency: f64,
    /// Ids this task depends on.
    pub depends: Vec<NodeId>,
    /// Number of annotations.
    pub annotations: u32,
    /// Fields with unresolved conflicts.
    pub conflicts: Vec<String>,
    /// Deleted (tombstone).
    pub deleted: bool,
    /// Other attributes, as in `heph show --json`: Taskwarrior UDAs, and
    /// recurrence (`recur`, `until`, `mask` on a template; `parent`,
    /// `imask` on an instance).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uda: BTreeMap<String, String>,
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::UNIX_EPOCH)
}

impl ListItem {
    /// The JSON row of an index row.
    pub fn of(row: &NodeSummary, short: String, urgency: f64, now_ms: i64) -> Self {
        Self {
            id: row.id,
            short,
            kind: row.kind,
            title: row.title.clone(),
            status: row.effective_status(now_ms),
            priority: row.priority,
            project: row.project.clone(),
            tags: row.tags.clone(),
            due: row.due.map(at),
            wait: row.wait.map(at),
            scheduled: row.scheduled.map(at),
            start: row.start.map(at),
            end: row.end.map(at),
            date: row.date,
            created: at(row.created),
            modified: at(row.modified),
            urgency,
            depends: row.depends.clone(),
            annotations: row.annotations,
            conflicts: row.conflicts.clone(),
            deleted: row.deleted,
            uda: row.uda.iter().cloned().collect(),
        }
    }
}

/// A node named in another's output.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeRef {
    /// Full id.
    pub id: NodeId,
    /// Shortest unique prefix.
    pub short: String,
    /// Title, if the node is in this replica.
    pub title: Option<String>,
}

/// `heph show --json`, and the output of commands that change one node.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Shown {
    /// The node in full.
    #[serde(flatten)]
    pub node: Node,
    /// Shortest unique prefix.
    pub short: String,
    /// The tasks this one depends on.
    pub dependencies: Vec<NodeRef>,
    /// The nodes this one links to.
    pub linked: Vec<NodeRef>,
    /// The nodes that link to this one.
    pub backlinks: Vec<NodeRef>,
    /// Unresolved conflicts on this node.
    pub conflicts: Vec<Conflict>,
}

/// `heph undo --json`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Undone {
    /// The change that was reverted, and the fields it had set.
    pub undone: heph_engine::UndoPlan,
    /// The node as it is after the undo.
    pub node: Shown,
}

/// `heph history --json`.
#[cfg(test)]
pub type History = Vec<HistoryEntry>;
/// `heph conflicts --json`.
#[cfg(test)]
pub type Conflicts = Vec<Conflict>;
/// `heph import --json`.
#[cfg(test)]
pub type Imported = ImportReport;

/// Every schema heph publishes, by file name under `schemas/`.
#[cfg(test)]
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("node.schema.json", schemars::schema_for!(Node)),
        ("export.schema.json", schemars::schema_for!(Vec<heph_engine::archive::Record>)),
        ("cli/list.schema.json", schemars::schema_for!(Vec<ListItem>)),
        ("cli/show.schema.json", schemars::schema_for!(Shown)),
        ("cli/history.schema.json", schemars::schema_for!(History)),
        ("cli/conflicts.schema.json", schemars::schema_for!(Conflicts)),
        ("cli/import.schema.json", schemars::schema_for!(Imported)),
        ("cli/undo.schema.json", schemars::schema_for!(Undone)),
        ("cli/projects.schema.json", schemars::schema_for!(Vec<crate::summary::ProjectCount>)),
        ("cli/tags.schema.json", schemars::schema_for!(Vec<crate::summary::TagCount>)),
        ("cli/check.schema.json", schemars::schema_for!(heph_engine::CheckOutcome)),
        ("cli/sync-status.schema.json", schemars::schema_for!(heph_engine::sync::SyncHealth)),
        ("cli/daemon-status.schema.json", schemars::schema_for!(crate::daemon::Status)),
        ("wire/client-frame.schema.json", schemars::schema_for!(heph_engine::sync::frame::ClientFrame)),
        ("wire/hub-frame.schema.json", schemars::schema_for!(heph_engine::sync::frame::HubFrame)),
        ("rpc/request.schema.json", schemars::schema_for!(heph_engine::rpc::Envelope)),
        ("rpc/response.schema.json", schemars::schema_for!(heph_engine::rpc::Response)),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The checked-in schemas must be what the types generate. Run with
    /// `HEPH_BLESS=1` to rewrite them after changing a type.
    #[test]
    fn schemas_are_current() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let bless = std::env::var_os("HEPH_BLESS").is_some();
        let mut stale = Vec::new();
        for (name, schema) in super::schemas() {
            let path = root.join(name);
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "stale schemas {stale:?}: run `HEPH_BLESS=1 cargo test -p heph-cli schemas` and commit"
        );
    }
}
