//! heph's native export: every stored document, as JSON a person can read,
//! and complete enough to restore from.
//!
//! Each entry is a node (the fields of [`Node`]); a node whose document
//! holds fields this heph cannot read as their type also carries `raw`, its
//! saved Automerge document (base64); and a document that does not read as
//! a node at all is `{"id", "reason", "raw"}`. Importing an entry with
//! `raw` merges that document as it was, so nothing this heph cannot read
//! is lost by a round trip through a backup.
//!
//! An entry without `body` or without `links` (hand-written, or a task
//! read from a Taskwarrior export, which has neither) leaves an existing
//! node's own alone when imported: a field a record does not have is not
//! a field to clear.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::id::NodeId;
use crate::node::Node;

/// Fields an imported node leaves out: an existing node keeps its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Absent {
    /// The record has no body.
    pub body: bool,
    /// The record has no links.
    pub links: bool,
}

impl Absent {
    /// What a Taskwarrior task lacks.
    pub const TASKWARRIOR: Self = Self { body: true, links: true };
}

/// One entry of a native export.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A node; with its saved document when it has fields this heph cannot
    /// read; and the fields the record left out.
    Node(Box<Node>, Option<Vec<u8>>, Absent),
    /// A document that does not read as a node.
    Raw {
        /// Its id.
        id: NodeId,
        /// Why it does not read.
        reason: String,
        /// Its saved Automerge document.
        raw: Vec<u8>,
    },
}

/// One entry of heph's native export: a node, or a document this heph
/// cannot read, raw. (The JSON shapes of [`Record`], for its schema; never
/// built.)
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::large_enum_variant)]
enum Shape {
    /// A node, with its saved document when it has fields this heph cannot read.
    Node {
        #[serde(flatten)]
        node: Node,
        /// The saved Automerge document, base64 (only where `extra` is not empty).
        #[serde(default)]
        raw: Option<String>,
    },
    /// A document that does not read as a node.
    Raw {
        /// Its id.
        id: NodeId,
        /// Why it does not read.
        reason: String,
        /// The saved Automerge document, base64.
        raw: String,
    },
}

impl schemars::JsonSchema for Record {
    fn schema_name() -> Cow<'static, str> {
        "ExportRecord".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Shape::json_schema(generator)
    }
}

impl Record {
    /// The entry as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Node(node, raw, absent) => {
                let mut v = serde_json::to_value(node).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut v {
                    if let Some(raw) = raw {
                        map.insert("raw".into(), Value::String(B64.encode(raw)));
                    }
                    if absent.body {
                        map.remove("body");
                    }
                    if absent.links {
                        map.remove("links");
                    }
                }
                v
            }
            Self::Raw { id, reason, raw } => serde_json::json!({
                "id": id,
                "reason": reason,
                "raw": B64.encode(raw),
            }),
        }
    }

    /// Reads an entry; `Err` says what is wrong with it.
    pub fn from_json(mut v: Value) -> Result<Self, String> {
        let raw = match v.as_object_mut().and_then(|m| m.remove("raw")) {
            None => None,
            Some(Value::String(text)) => Some(B64.decode(text.as_bytes()).map_err(|e| format!("raw: {e}"))?),
            Some(_) => return Err("raw: expected base64 text".into()),
        };
        let is_node = v.get("kind").is_some() && v.get("title").is_some();
        match raw {
            Some(raw) if !is_node => {
                let id = v
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(NodeId::parse)
                    .ok_or("an entry with raw needs an id")?;
                let reason = v.get("reason").and_then(Value::as_str).unwrap_or_default().to_string();
                Ok(Self::Raw { id, reason, raw })
            }
            raw => {
                let absent = Absent { body: v.get("body").is_none(), links: v.get("links").is_none() };
                let node: Node = serde_json::from_value(v).map_err(|e| format!("not a heph node: {e}"))?;
                Ok(Self::Node(Box::new(node), raw, absent))
            }
        }
    }

    /// The document id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        match self {
            Self::Node(node, ..) => node.id,
            Self::Raw { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeKind;

    /// A record travels to a device's daemon as JSON: what it left out
    /// stays left out, and what it had stays there, even when empty.
    #[test]
    fn what_a_record_leaves_out_survives_its_json() {
        let node = Node::new(NodeId::random(), NodeKind::Task, "Dial in".into(), chrono::Utc::now());
        for absent in [Absent::TASKWARRIOR, Absent::default(), Absent { body: true, links: false }] {
            let record = Record::Node(Box::new(node.clone()), None, absent);
            assert_eq!(Record::from_json(record.to_json()), Ok(record));
        }
    }
}
