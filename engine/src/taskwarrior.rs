//! Taskwarrior's JSON (`task export` / `task import`, 2.x and 3.x) to and
//! from heph nodes.
//!
//! Taskwarrior uuids are 128-bit like heph ids, so a task keeps its identity:
//! importing the same export twice updates rather than duplicates. Attributes
//! heph does not model (UDAs, `recur`, `until`, …) are kept in `uda` as text
//! and written back on export.
//!
//! Recurrence maps onto [`crate::recur`]'s contract as it is: a
//! `status:"recurring"` template becomes a pending task with `recur` and
//! no `parent` (a heph template), its instances keep their uuids, `parent`
//! and `imask`, and the template its `mask`, so heph makes none of them
//! again. A template goes back out as `status:"recurring"`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::NodeId;
use crate::node::{Annotation, Node, NodeKind, Priority, Status};

/// Why a Taskwarrior record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {index} ({uuid}): {reason}")]
pub struct TwError {
    /// Position in the export (1-based).
    pub index: usize,
    /// Its uuid, as given.
    pub uuid: String,
    /// What was wrong.
    pub reason: String,
}

/// Taskwarrior's date format, `20261125T143000Z`.
pub const TW_DATE: &str = "%Y%m%dT%H%M%SZ";

/// Attributes Taskwarrior computes or heph maps itself; never kept as UDAs.
const KNOWN: &[&str] = &[
    "uuid",
    "description",
    "status",
    "entry",
    "modified",
    "end",
    "due",
    "wait",
    "scheduled",
    "start",
    "project",
    "priority",
    "tags",
    "annotations",
    "depends",
    "id",
    "urgency",
];

#[derive(Debug, Deserialize, Serialize)]
struct TwAnnotation {
    entry: String,
    description: String,
}

fn parse_date(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?;
    NaiveDateTime::parse_from_str(s, TW_DATE)
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)))
        .or_else(|| s.parse::<i64>().ok().and_then(|secs| DateTime::from_timestamp(secs, 0)))
}

fn format_date(t: DateTime<Utc>) -> String {
    t.format(TW_DATE).to_string()
}

/// Whether a JSON object looks like a Taskwarrior task: a description, and
/// not a heph node's title (a hand-written task may leave out its uuid).
#[must_use]
pub fn looks_like_task(v: &Value) -> bool {
    v.get("description").is_some() && v.get("title").is_none()
}

/// One Taskwarrior task → a node. `index` is for error messages.
pub fn from_task(v: &Value, index: usize) -> Result<Node, TwError> {
    let uuid = v.get("uuid").and_then(Value::as_str).unwrap_or_default().to_string();
    let err = |reason: &str| TwError { index, uuid: uuid.clone(), reason: reason.to_string() };
    let obj = v.as_object().ok_or_else(|| err("not a JSON object"))?;
    // As `task import`: a task without a uuid is a new task.
    let id = match obj.get("uuid") {
        None | Some(Value::Null) => NodeId::random(),
        Some(_) => NodeId::parse(&uuid).ok_or_else(|| err("uuid is not a UUID"))?,
    };
    let title = obj.get("description").and_then(Value::as_str).ok_or_else(|| err("no description"))?.to_string();
    let created = obj.get("entry").and_then(parse_date).unwrap_or(DateTime::UNIX_EPOCH);
    let mut node = Node::new(id, NodeKind::Task, title, created);
    node.modified = obj.get("modified").and_then(parse_date).unwrap_or(created);
    let date = |key: &str| -> Result<Option<DateTime<Utc>>, TwError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => parse_date(v).map(Some).ok_or_else(|| err(&format!("{key} is not a date: {v}"))),
        }
    };
    node.due = date("due")?;
    node.wait = date("wait")?;
    node.scheduled = date("scheduled")?;
    node.start = date("start")?;
    node.end = date("end")?;
    let status = obj.get("status").and_then(Value::as_str).unwrap_or("pending");
    node.status = Some(match status {
        "pending" | "recurring" if node.start.is_some() => Status::Active,
        "pending" | "recurring" => Status::Pending,
        "waiting" => Status::Waiting,
        "completed" => Status::Done,
        "deleted" => {
            node.deleted = true;
            Status::Cancelled
        }
        other => return Err(err(&format!("unknown status {other:?}"))),
    });
    node.project = obj.get("project").and_then(Value::as_str).map(str::to_string);
    node.priority = match obj.get("priority").and_then(Value::as_str) {
        None | Some("") => None,
        Some(p) => Some(p.parse::<Priority>().map_err(|e| err(&e))?),
    };
    if let Some(tags) = obj.get("tags") {
        let list = tags.as_array().ok_or_else(|| err("tags is not a list"))?;
        node.tags = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
    }
    if let Some(list) = obj.get("annotations") {
        let list: Vec<TwAnnotation> =
            serde_json::from_value(list.clone()).map_err(|e| err(&format!("annotations: {e}")))?;
        for a in list {
            let entry = parse_date(&Value::String(a.entry)).unwrap_or(created);
            node.annotations.push(Annotation { entry, description: a.description });
        }
        node.annotations.sort_by_key(|a| a.entry);
    }
    // Taskwarrior 2.5 wrote depends as "uuid,uuid"; 2.6 and later as a list.
    let depends: Vec<String> = match obj.get("depends") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(other) => return Err(err(&format!("depends is not a list: {other}"))),
    };
    for d in depends.iter().filter(|d| !d.is_empty()) {
        node.depends.insert(NodeId::parse(d).ok_or_else(|| err(&format!("depends on {d:?}, not a UUID")))?);
    }
    for (key, value) in obj.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())) {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        node.uda.insert(key.clone(), text);
    }
    Ok(node)
}

/// A task node → Taskwarrior's JSON (tasks only; other kinds return `None`).
#[must_use]
pub fn to_task(node: &Node) -> Option<Value> {
    if node.kind != NodeKind::Task {
        return None;
    }
    let mut obj = BTreeMap::<String, Value>::new();
    let status = if node.deleted {
        "deleted"
    } else if crate::recur::is_template(node) && matches!(node.status, None | Some(Status::Pending | Status::Active)) {
        "recurring"
    } else {
        match node.status.unwrap_or(Status::Pending) {
            Status::Pending | Status::Active => "pending",
            Status::Waiting => "waiting",
            Status::Done => "completed",
            Status::Cancelled => "deleted",
        }
    };
    obj.insert("uuid".into(), node.id.to_uuid().into());
    obj.insert("description".into(), node.title.clone().into());
    obj.insert("status".into(), status.into());
    obj.insert("entry".into(), format_date(node.created).into());
    obj.insert("modified".into(), format_date(node.modified).into());
    for (key, value) in [
        ("due", node.due),
        ("wait", node.wait),
        ("scheduled", node.scheduled),
        ("start", node.start),
        ("end", node.end),
    ] {
        if let Some(t) = value {
            obj.insert(key.into(), format_date(t).into());
        }
    }
    if let Some(p) = &node.project {
        obj.insert("project".into(), p.clone().into());
    }
    if let Some(p) = node.priority {
        obj.insert("priority".into(), p.as_str().into());
    }
    if !node.tags.is_empty() {
        obj.insert("tags".into(), node.tags.iter().cloned().collect::<Vec<_>>().into());
    }
    if !node.annotations.is_empty() {
        let list: Vec<Value> = node
            .annotations
            .iter()
            .map(|a| serde_json::json!({"entry": format_date(a.entry), "description": a.description}))
            .collect();
        obj.insert("annotations".into(), list.into());
    }
    if !node.depends.is_empty() {
        obj.insert("depends".into(), node.depends.iter().map(NodeId::to_uuid).collect::<Vec<_>>().into());
    }
    for (k, v) in &node.uda {
        obj.entry(k.clone()).or_insert_with(|| v.clone().into());
    }
    Some(Value::Object(obj.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"[
{"id":1,"description":"Buy milk","due":"20261126T000000Z","entry":"20261120T091500Z","modified":"20261121T100000Z","priority":"H","project":"home","status":"pending","tags":["errand"],"uuid":"5f3b2a10-8c1d-4e2f-9a3b-1c2d3e4f5a6b","urgency":14.2},
{"id":0,"description":"File taxes","end":"20261101T120000Z","entry":"20261001T080000Z","modified":"20261101T120000Z","status":"completed","uuid":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","annotations":[{"entry":"20261015T080000Z","description":"receipts in drawer"}],"estimate":"3h","urgency":0},
{"id":2,"depends":["0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"],"description":"Old style","entry":"20261001T080000Z","status":"waiting","wait":"20261201T000000Z","uuid":"11111111-2222-4333-8444-555555555555","urgency":-3}
]"#;

    #[test]
    fn reads_a_real_shaped_export() {
        let tasks: Vec<Value> = serde_json::from_str(EXPORT).unwrap();
        let nodes: Vec<Node> = tasks.iter().enumerate().map(|(i, t)| from_task(t, i + 1).unwrap()).collect();
        assert_eq!(nodes[0].title, "Buy milk");
        assert_eq!(nodes[0].priority, Some(Priority::H));
        assert!(nodes[0].tags.contains("errand"));
        assert_eq!(nodes[0].id.to_uuid(), "5f3b2a10-8c1d-4e2f-9a3b-1c2d3e4f5a6b");
        assert_eq!(nodes[1].status, Some(Status::Done));
        assert_eq!(nodes[1].annotations[0].description, "receipts in drawer");
        assert_eq!(nodes[1].uda.get("estimate").map(String::as_str), Some("3h"));
        assert_eq!(nodes[2].status, Some(Status::Waiting));
        assert!(nodes[2].depends.contains(&nodes[1].id));
    }

    #[test]
    fn export_then_import_is_lossless_for_tasks() {
        let tasks: Vec<Value> = serde_json::from_str(EXPORT).unwrap();
        for (i, t) in tasks.iter().enumerate() {
            let node = from_task(t, i + 1).unwrap();
            let again = from_task(&to_task(&node).unwrap(), i + 1).unwrap();
            assert_eq!(node, again);
        }
    }

    #[test]
    fn recurring_templates_and_instances_keep_their_attributes() {
        let template = serde_json::json!({"uuid": "11111111-2222-4333-8444-555555555555", "description": "Rent",
            "status": "recurring", "recur": "monthly", "due": "20261101T090000Z", "until": "20271231T000000Z",
            "mask": "-+", "rtype": "periodic", "entry": "20261001T080000Z"});
        let instance = serde_json::json!({"uuid": "21111111-2222-4333-8444-555555555555", "description": "Rent",
            "status": "pending", "recur": "monthly", "due": "20261201T090000Z", "until": "20271231T000000Z",
            "imask": 1, "parent": "11111111-2222-4333-8444-555555555555", "entry": "20261101T080000Z"});
        let t = from_task(&template, 1).unwrap();
        let i = from_task(&instance, 2).unwrap();
        assert!(crate::recur::is_template(&t));
        assert_eq!(t.status, Some(Status::Pending));
        assert_eq!(t.uda.get("mask").map(String::as_str), Some("-+"));
        assert_eq!(crate::recur::parent_of(&i), Some(t.id));
        assert_eq!(crate::recur::index_of(&i), Some(1));
        let back = to_task(&t).unwrap();
        assert_eq!(back["status"], "recurring");
        for key in ["recur", "until", "mask", "rtype"] {
            assert_eq!(back[key], template[key], "{key}");
        }
        let back = to_task(&i).unwrap();
        assert_eq!(back["status"], "pending");
        assert_eq!(back["parent"], instance["parent"]);
        assert_eq!(back["imask"], "1");
    }

    #[test]
    fn bad_records_name_the_task() {
        let bad = serde_json::json!({"uuid": "nope", "description": "x"});
        assert!(from_task(&bad, 3).unwrap_err().to_string().starts_with("task 3"));
        let bad =
            serde_json::json!({"uuid": "11111111-2222-4333-8444-555555555555", "description": "x", "due": "soon"});
        assert!(from_task(&bad, 1).unwrap_err().reason.contains("due"));
    }
}
