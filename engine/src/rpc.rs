//! The replica's API as JSON-RPC 2.0 messages, for the device daemon's unix
//! socket and the hub's `/rpc`. Transport-free: [`dispatch`] turns a request
//! into a response against a [`Replica`].
//!
//! Application errors carry stable codes (see [`code`]) and the same one-line
//! messages a local call would give, so a client can show them as they are.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::doc::Edit;
use crate::error::Error;
use crate::id::{NodeId, Purpose};
use crate::node::Node;
use crate::query::Filter;
use crate::replica::Replica;
use crate::when::Clock;

/// The largest request body accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// A call, by method name with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", content = "params", rename_all = "snake_case")]
pub enum Request {
    /// The node with this id prefix → `NodeId`.
    Resolve {
        /// The prefix.
        prefix: String,
        /// What for: `change` needs at least 4 digits (default `read`).
        #[serde(default)]
        purpose: Purpose,
    },
    /// A new node → `Node`.
    Create {
        /// Its fields.
        draft: Node,
        /// Edits applied in the same change.
        #[serde(default)]
        edits: Vec<Edit>,
        /// The history message.
        message: String,
    },
    /// Edits to one node as one change → `Node`.
    Edit {
        /// The node.
        id: NodeId,
        /// The edits.
        edits: Vec<Edit>,
        /// The history message.
        message: String,
        /// The caller's clock.
        now: DateTime<Utc>,
    },
    /// One node → `Node`.
    Get {
        /// The node.
        id: NodeId,
    },
    /// Index rows matching a filter → `[[urgency, NodeSummary]]`.
    List {
        /// The filter.
        filter: Filter,
        /// The caller's clock.
        now: DateTime<Utc>,
        /// At most this many rows (the most urgent).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Full-text search → `[[urgency, NodeSummary]]`.
    Search {
        /// Words.
        text: String,
        /// The filter.
        filter: Filter,
        /// The caller's clock.
        now: DateTime<Utc>,
    },
    /// Rows of the nodes linking to a node → `[NodeSummary]`.
    Backlinks {
        /// The node.
        id: NodeId,
    },
    /// Rows of several nodes → `[NodeSummary]`.
    Summaries {
        /// The nodes.
        ids: Vec<NodeId>,
    },
    /// Unique prefix lengths → `[usize]`.
    PrefixLens {
        /// The nodes.
        ids: Vec<NodeId>,
    },
    /// A node's history → `[HistoryEntry]`.
    History {
        /// The node.
        id: NodeId,
    },
    /// Every conflict → `[Conflict]`.
    Conflicts,
    /// One node's conflicts → `[Conflict]`.
    ConflictsOf {
        /// The node.
        id: NodeId,
    },
    /// Keep one value of a conflict → `Node`.
    ResolveConflict {
        /// The node.
        id: NodeId,
        /// The field.
        field: String,
        /// Index into the listed values.
        choice: usize,
        /// The caller's clock.
        now: DateTime<Utc>,
    },
    /// A day's journal, created if missing → `Node`.
    Journal {
        /// The day.
        day: NaiveDate,
    },
    /// Every node → `[Node]`.
    Export,
    /// Import nodes → `ImportReport`.
    Import {
        /// The nodes.
        nodes: Vec<Node>,
    },
    /// Every stored document as native export entries (see
    /// `heph_engine::archive`) → `[object]`.
    ExportRecords,
    /// Import native export entries, raw documents included → `ImportReport`.
    ImportRecords {
        /// The entries.
        records: Vec<Value>,
    },
    /// Stored documents that do not read as nodes → `[Unreadable]`.
    Unreadable,
    /// Where the content stands → `Version`; cheap, for clients that poll
    /// for changes (`heph tui`).
    Version,
    /// What `undo` would revert → `UndoPlan` or null.
    UndoPlan,
    /// Revert this device's last change → `[UndoPlan, Node]`.
    Undo {
        /// Only if this is still the change to undo (a hash from `undo_plan`).
        #[serde(default)]
        expected: Option<String>,
        /// The caller's clock.
        now: DateTime<Utc>,
    },
    /// Make the missing instances of recurring tasks → `RecurReport`
    /// (see `heph_engine::recur`).
    GenerateRecurrences {
        /// The caller's clock.
        now: DateTime<Utc>,
        /// The caller's time zone (IANA name), whose calendar monthly and
        /// yearly steps follow; absent: the serving process's zone.
        #[serde(default)]
        zone: Option<String>,
        /// Future pending instances each template keeps (at least 1).
        limit: u32,
    },
    /// The series a task belongs to → `Series` or null.
    Series {
        /// A template or one of its instances.
        id: NodeId,
    },
}

/// Error codes: JSON-RPC's own, then heph's.
pub mod code {
    /// Not JSON.
    pub const PARSE: i64 = -32700;
    /// Not a request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method or bad parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The replica failed.
    pub const INTERNAL: i64 = -32603;
    /// No such node.
    pub const NOT_FOUND: i64 = 1;
    /// An ambiguous id prefix.
    pub const AMBIGUOUS: i64 = 2;
    /// Not an id.
    pub const BAD_ID: i64 = 3;
    /// The disk is full.
    pub const DISK_FULL: i64 = 4;
    /// Invalid change bytes.
    pub const INVALID_CHANGE: i64 = 5;
    /// Missing or invalid credentials.
    pub const UNAUTHORIZED: i64 = 6;
    /// The hub or daemon cannot be reached.
    pub const UNAVAILABLE: i64 = 7;
    /// A node with that id exists already.
    pub const EXISTS: i64 = 8;
    /// Over a size limit.
    pub const TOO_LARGE: i64 = 9;
    /// The credential is valid but may not do this (a read-only token that writes).
    pub const FORBIDDEN: i64 = 10;
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// See [`code`].
    pub code: i64,
    /// One line, for people.
    pub message: String,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<Error> for RpcError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::NotFound(_) => code::NOT_FOUND,
            Error::Ambiguous { .. } => code::AMBIGUOUS,
            Error::BadId(_) | Error::PrefixTooShort(_) => code::BAD_ID,
            Error::DiskFull => code::DISK_FULL,
            Error::InvalidChange { .. } => code::INVALID_CHANGE,
            Error::Exists(_) => code::EXISTS,
            Error::ChangeTooLarge { .. } => code::TOO_LARGE,
            Error::NothingToUndo | Error::UndoMoved { .. } | Error::NoSuchConflict(_) => code::NOT_FOUND,
            Error::DependencyCycle { .. } => code::INVALID_PARAMS,
            _ => code::INTERNAL,
        };
        Self::new(code, e.to_string())
    }
}

/// A request envelope.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The caller's id for matching the response.
    #[serde(default)]
    pub id: Value,
    /// The call.
    #[serde(flatten)]
    pub request: Request,
}

/// A response envelope.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Response {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The request's id.
    pub id: Value,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A response carrying `outcome`.
    #[must_use]
    pub fn of(id: Value, outcome: Result<Value, RpcError>) -> Self {
        match outcome {
            Ok(v) => Self { jsonrpc: "2.0".into(), id, result: Some(v), error: None },
            Err(e) => Self { jsonrpc: "2.0".into(), id, result: None, error: Some(e) },
        }
    }

    /// The result, or the error.
    pub fn into_result(self) -> Result<Value, RpcError> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e),
            (Some(v), None) => Ok(v),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// Reads a request body. Errors are ready to send back.
pub fn parse(body: &[u8]) -> Result<Envelope, Response> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(Response::of(Value::Null, Err(RpcError::new(code::INVALID_REQUEST, "request too large"))));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Response::of(Value::Null, Err(RpcError::new(code::PARSE, format!("not JSON: {e}")))))?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    if value.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Response::of(id, Err(RpcError::new(code::INVALID_REQUEST, "not a JSON-RPC 2.0 request"))));
    }
    serde_json::from_value(value)
        .map_err(|e| Response::of(id, Err(RpcError::new(code::INVALID_PARAMS, format!("bad method or params: {e}")))))
}

fn json<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))
}

/// Runs one request against `replica`.
pub fn dispatch(replica: &Replica, request: Request) -> Result<Value, RpcError> {
    match request {
        Request::Resolve { prefix, purpose } => json(replica.resolve_for(&prefix, purpose)?),
        Request::Create { draft, edits, message } => json(replica.create(&draft, &edits, &message)?),
        Request::Edit { id, edits, message, now } => json(replica.edit(id, &edits, &message, now)?),
        Request::Get { id } => json(replica.get(id)?),
        Request::List { filter, now, limit } => json(replica.list(&filter, now, limit)?),
        Request::Search { text, filter, now } => json(replica.search(&text, &filter, now)?),
        Request::Backlinks { id } => json(replica.backlinks(id)?),
        Request::Summaries { ids } => json(replica.summaries(&ids)?),
        Request::PrefixLens { ids } => json(replica.prefix_lens(&ids)?),
        Request::History { id } => json(replica.history(id)?),
        Request::Conflicts => json(replica.conflicts()?),
        Request::ConflictsOf { id } => json(replica.conflicts_of(id)?),
        Request::ResolveConflict { id, field, choice, now } => json(replica.resolve_conflict(id, &field, choice, now)?),
        Request::Journal { day } => json(replica.journal(day)?),
        Request::Export => json(replica.export()?),
        Request::Import { nodes } => json(replica.import(&nodes, |_, _| {})?),
        Request::ExportRecords => {
            json(replica.export_records()?.iter().map(crate::archive::Record::to_json).collect::<Vec<_>>())
        }
        Request::ImportRecords { records } => {
            let records = records
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    crate::archive::Record::from_json(v)
                        .map_err(|e| RpcError::new(code::INVALID_PARAMS, format!("record {}: {e}", i + 1)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            json(replica.import_records(records, |_, _| {})?)
        }
        Request::Unreadable => json(replica.unreadable()?),
        Request::Version => json(replica.version()?),
        Request::UndoPlan => json(replica.undo_plan()?),
        Request::Undo { expected, now } => json(replica.undo(expected.as_deref(), now)?),
        Request::GenerateRecurrences { now, zone, limit } => {
            let clock = match zone {
                Some(name) => Clock::in_zone(now, &name)
                    .map_err(|e| RpcError::new(code::INVALID_PARAMS, format!("zone {name:?}: {e}")))?,
                // The device daemon runs beside the caller, in its zone.
                None => Clock::system().at(now),
            };
            json(replica.generate_recurrences(&clock, limit)?)
        }
        Request::Series { id } => json(replica.series(id)?),
    }
}

/// Whether a request changes the replica (a device daemon pushes after these).
#[must_use]
pub fn writes(request: &Request) -> bool {
    matches!(
        request,
        Request::Create { .. }
            | Request::Edit { .. }
            | Request::ResolveConflict { .. }
            | Request::Journal { .. }
            | Request::Import { .. }
            | Request::ImportRecords { .. }
            | Request::Undo { .. }
            | Request::GenerateRecurrences { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_dispatch() {
        let r = Replica::in_memory().unwrap();
        let draft = Node::new(NodeId::random(), crate::NodeKind::Task, "x".into(), Utc::now());
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "create", "params": {"draft": draft, "edits": [{"edit": "add_tag", "value": "t"}], "message": "add"}});
        let env = parse(body.to_string().as_bytes()).unwrap();
        let node: Node = serde_json::from_value(dispatch(&r, env.request).unwrap()).unwrap();
        assert!(node.tags.contains("t"));
        let env = parse(br#"{"jsonrpc":"2.0","id":1,"method":"resolve","params":{"prefix":"ffffffff"}}"#).unwrap();
        assert_eq!(dispatch(&r, env.request).unwrap_err().code, code::NOT_FOUND);
        assert_eq!(parse(b"{").unwrap_err().error.unwrap().code, code::PARSE);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#).unwrap_err().error.unwrap().code,
            code::INVALID_PARAMS
        );
        assert_eq!(parse(br#"{"id":1,"method":"export"}"#).unwrap_err().error.unwrap().code, code::INVALID_REQUEST);
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"conflicts"}"#).is_ok());
        let env = parse(br#"{"jsonrpc":"2.0","id":1,"method":"version"}"#).unwrap();
        let v: crate::Version = serde_json::from_value(dispatch(&r, env.request).unwrap()).unwrap();
        assert_eq!(v.seq, r.last_seq().unwrap());
        assert!(v.seq > 0, "the create above is logged");
    }

    fn call(r: &Replica, body: serde_json::Value) -> Result<Value, RpcError> {
        let mut body = body;
        body["jsonrpc"] = "2.0".into();
        dispatch(r, parse(body.to_string().as_bytes()).unwrap().request)
    }

    #[test]
    fn a_daemon_resolves_for_changes_and_undoes() {
        let r = Replica::in_memory().unwrap();
        let draft = Node::new(NodeId::random(), crate::NodeKind::Task, "x".into(), Utc::now());
        let id = r.create(&draft, &[], "add x").unwrap().id;
        let hex = id.to_hex();
        // Without a purpose a prefix is read (older clients); a change needs 4 digits.
        let found = call(&r, serde_json::json!({"method": "resolve", "params": {"prefix": &hex[..1]}})).unwrap();
        assert_eq!(found, serde_json::json!(hex));
        let short = serde_json::json!({"method": "resolve", "params": {"prefix": &hex[..3], "purpose": "change"}});
        assert_eq!(call(&r, short).unwrap_err().code, code::BAD_ID);
        let plan = call(&r, serde_json::json!({"method": "undo_plan"})).unwrap();
        assert_eq!(plan["creation"], true);
        let undo = serde_json::json!({"method": "undo", "params": {"expected": plan["change"], "now": Utc::now()}});
        let env = parse(
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "undo", "params": undo["params"]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(writes(&env.request), "a daemon pushes after an undo");
        let (_, node): (crate::UndoPlan, Node) = serde_json::from_value(call(&r, undo).unwrap()).unwrap();
        assert!(node.deleted);
        assert_eq!(call(&r, serde_json::json!({"method": "undo_plan"})).unwrap(), Value::Null);
        assert_eq!(
            call(&r, serde_json::json!({"method": "undo", "params": {"now": Utc::now()}})).unwrap_err().code,
            code::NOT_FOUND
        );
    }

    #[test]
    fn recurrence_requests_dispatch() {
        let r = Replica::in_memory().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().to_utc();
        let mut draft = Node::new(NodeId::random(), crate::NodeKind::Task, "Stretch".into(), now);
        draft.due = Some(now - chrono::Duration::hours(30));
        draft.uda.insert("recur".into(), "daily".into());
        r.create(&draft, &[], "add").unwrap();
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "generate_recurrences",
            "params": {"now": now, "zone": "Europe/Berlin", "limit": 1}});
        let env = parse(body.to_string().as_bytes()).unwrap();
        assert!(writes(&env.request));
        let report: crate::recur::RecurReport = serde_json::from_value(dispatch(&r, env.request).unwrap()).unwrap();
        assert_eq!(report.made.len(), 3);
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "series", "params": {"id": report.made[0].id}});
        let env = parse(body.to_string().as_bytes()).unwrap();
        let series: crate::recur::Series = serde_json::from_value(dispatch(&r, env.request).unwrap()).unwrap();
        assert_eq!(series.template, draft.id);
        assert_eq!(series.pending.len(), 3);
        let bad = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "generate_recurrences",
            "params": {"now": now, "zone": "Mars/Olympus_Mons", "limit": 1}});
        let env = parse(bad.to_string().as_bytes()).unwrap();
        assert_eq!(dispatch(&r, env.request).unwrap_err().code, code::INVALID_PARAMS);
    }
}
