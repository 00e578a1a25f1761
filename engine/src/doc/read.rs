//! Reading a node document back: lenient, and losing nothing.
//!
//! Documents come from the network and from other programs, so reading
//! accepts what it can and keeps the rest: a value of the wrong type or a key
//! heph does not know lands in [`Node::extra`] as JSON; concurrent objects at
//! a container key read as their union. Only a missing or unknown `kind`, or
//! an `id` naming another node, makes a document unreadable.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;

use super::{CONFLICT_FIELDS, CONTAINER_FIELDS, Conflict, DocError, from_ms, not_a_node};
use crate::id::NodeId;
use crate::node::{Annotation, Node, NodeKind, sorted_annotations};

/// Root keys heph reads; any other key goes to [`Node::extra`].
const KNOWN: &[&str] = &[
    "id",
    "kind",
    "title",
    "body",
    "tags",
    "links",
    "depends",
    "annotations",
    "uda",
    "created",
    "modified",
    "deleted",
    "status",
    "priority",
    "project",
    "date",
    "due",
    "wait",
    "scheduled",
    "start",
    "end",
];

/// Nested values deeper than this render as a marker.
const MAX_DEPTH: usize = 16;
/// At most this many values (scalars and objects) are rendered per field;
/// the rest is summarised by a marker.
const MAX_VALUES: usize = 1000;

pub(super) fn materialise(d: &Automerge, id: NodeId) -> Result<Node, DocError> {
    let mut extra: BTreeMap<String, Json> = BTreeMap::new();
    if let Some((value, obj)) = d.get(ROOT, "id")? {
        match text_of(d, &value, &obj)?.as_deref().and_then(NodeId::parse) {
            Some(found) if found != id => {
                return Err(not_a_node(id, &format!("its id field says it is {found}")));
            }
            Some(_) => {}
            None => {
                extra.insert("id".into(), json(d, &value, &obj)?);
            }
        }
    }
    let kind: NodeKind = match d.get(ROOT, "kind")? {
        None => return Err(not_a_node(id, "it has no kind")),
        Some((value, obj)) => match text_of(d, &value, &obj)? {
            Some(text) => {
                text.parse().map_err(|_| not_a_node(id, &format!("kind {text:?} is not one this heph knows")))?
            }
            None => return Err(not_a_node(id, &format!("its kind is {}, not a name", describe(&value)))),
        },
    };
    let mut r = Reader { d, extra };
    let created = r.field("created", time_of)?.unwrap_or(DateTime::UNIX_EPOCH);
    let mut node = Node::new(id, kind, r.field("title", text_of)?.unwrap_or_default(), created);
    node.modified = r.field("modified", time_of)?.unwrap_or(created);
    node.deleted = r.field("deleted", |_, v, _| Ok(bool_of(v)))?.unwrap_or(false);
    node.status = r.field("status", |d, v, o| Ok(text_of(d, v, o)?.and_then(|s| s.parse().ok())))?;
    node.priority = r.field("priority", |d, v, o| Ok(text_of(d, v, o)?.and_then(|s| s.parse().ok())))?;
    node.project = r.field("project", text_of)?;
    node.date = r.field("date", |d, v, o| Ok(text_of(d, v, o)?.and_then(|s| s.parse::<NaiveDate>().ok())))?;
    node.due = r.field("due", time_of)?;
    node.wait = r.field("wait", time_of)?;
    node.scheduled = r.field("scheduled", time_of)?;
    node.start = r.field("start", time_of)?;
    node.end = r.field("end", time_of)?;
    node.body = r.body()?;
    node.tags = r.set("tags")?.into_iter().map(|(k, _)| k).collect();
    node.links = r.ids("links")?;
    node.depends = r.ids("depends")?;
    node.annotations = r.annotations(created)?;
    node.uda = r.uda()?;
    for key in d.keys(ROOT) {
        if !KNOWN.contains(&key.as_str())
            && let Some((value, obj)) = d.get(ROOT, key.as_str())?
        {
            let rendered = json(d, &value, &obj)?;
            r.extra.insert(key, rendered);
        }
    }
    node.extra = r.extra;
    Ok(node)
}

/// Reads root fields, keeping what it cannot read in `extra`.
struct Reader<'a> {
    d: &'a Automerge,
    extra: BTreeMap<String, Json>,
}

/// A value and, for an object, its id.
type Entry = (Value<'static>, ObjId);

type Parse<T> = fn(&Automerge, &Value<'_>, &ObjId) -> Result<Option<T>, DocError>;

impl Reader<'_> {
    /// The shown value of scalar `key` read by `parse`; a value it cannot
    /// read is kept in `extra`.
    fn field<T>(&mut self, key: &str, parse: Parse<T>) -> Result<Option<T>, DocError> {
        let Some((value, obj)) = self.d.get(ROOT, key)? else { return Ok(None) };
        let parsed = parse(self.d, &value, &obj)?;
        if parsed.is_none() {
            self.extra.insert(key.to_string(), json(self.d, &value, &obj)?);
        }
        Ok(parsed)
    }

    /// Keeps values at `key` that are not what heph expects there.
    fn unread(&mut self, key: &str, mut values: Vec<Json>) {
        match values.len() {
            0 => {}
            1 => {
                self.extra.insert(key.to_string(), values.remove(0));
            }
            _ => {
                self.extra.insert(key.to_string(), Json::Array(values));
            }
        }
    }

    /// Every value at root `key`, the shown one first.
    fn all(&self, key: &str) -> Result<Vec<Entry>, DocError> {
        Ok(self.d.get_all(ROOT, key)?.into_iter().rev().map(|(v, o)| (v.into_owned(), o)).collect())
    }

    /// The text of the first text object (or string) at `body`; concurrent
    /// ones are listed as a conflict, other values kept in `extra`.
    fn body(&mut self) -> Result<String, DocError> {
        let mut body = None;
        let mut unread = Vec::new();
        for (value, obj) in self.all("body")? {
            match text_of(self.d, &value, &obj)? {
                Some(text) => {
                    body.get_or_insert(text);
                }
                None => unread.push(json(self.d, &value, &obj)?),
            }
        }
        self.unread("body", unread);
        Ok(body.unwrap_or_default())
    }

    /// The union of the keys (with the first value seen, shown map first) of
    /// every map at `key`; other values kept in `extra`.
    fn set(&mut self, key: &str) -> Result<Vec<(String, Entry)>, DocError> {
        let mut members: BTreeMap<String, Entry> = BTreeMap::new();
        let mut unread = Vec::new();
        for (value, obj) in self.all(key)? {
            if matches!(value, Value::Object(ObjType::Map)) {
                for member in self.d.keys(&obj) {
                    if members.contains_key(&member) {
                        continue;
                    }
                    if let Some((v, o)) = self.d.get(&obj, member.as_str())? {
                        members.insert(member, (v.into_owned(), o));
                    }
                }
            } else {
                unread.push(json(self.d, &value, &obj)?);
            }
        }
        self.unread(key, unread);
        Ok(members.into_iter().collect())
    }

    /// A set of node ids; members that are not ids are kept in `extra`.
    fn ids(&mut self, key: &str) -> Result<BTreeSet<NodeId>, DocError> {
        let mut ids = BTreeSet::new();
        let mut bad = Vec::new();
        for (member, _) in self.set(key)? {
            match NodeId::parse(&member) {
                Some(id) => {
                    ids.insert(id);
                }
                None => bad.push(Json::String(member)),
            }
        }
        if !bad.is_empty() {
            // Alongside any other unread value at the same key.
            let mut all: Vec<Json> = self.extra.remove(key).into_iter().collect();
            all.push(Json::Array(bad));
            self.unread(key, all);
        }
        Ok(ids)
    }

    /// The items of every list at `annotations`, without exact duplicates,
    /// by entry time; items that are not annotations are kept in `extra`.
    fn annotations(&mut self, created: DateTime<Utc>) -> Result<Vec<Annotation>, DocError> {
        let mut out = Vec::new();
        let mut unread = Vec::new();
        for (value, list) in self.all("annotations")? {
            if !matches!(value, Value::Object(ObjType::List)) {
                unread.push(json(self.d, &value, &list)?);
                continue;
            }
            for i in 0..self.d.length(&list) {
                let Some((value, item)) = self.d.get(&list, i)? else { continue };
                match annotation(self.d, &value, &item, created)? {
                    Some(a) => out.push(a),
                    None => unread.push(json(self.d, &value, &item)?),
                }
            }
        }
        self.unread("annotations", unread);
        Ok(sorted_annotations(out))
    }

    /// The union of every map at `uda`; values that are not text are kept in
    /// `extra` as `uda.KEY`.
    fn uda(&mut self) -> Result<BTreeMap<String, String>, DocError> {
        let mut out = BTreeMap::new();
        for (key, (value, obj)) in self.set("uda")? {
            match text_of(self.d, &value, &obj)? {
                Some(text) => {
                    out.insert(key, text);
                }
                None => {
                    let rendered = json(self.d, &value, &obj)?;
                    self.extra.insert(format!("uda.{key}"), rendered);
                }
            }
        }
        Ok(out)
    }
}

fn annotation(
    d: &Automerge,
    value: &Value<'_>,
    item: &ObjId,
    created: DateTime<Utc>,
) -> Result<Option<Annotation>, DocError> {
    if !matches!(value, Value::Object(ObjType::Map)) {
        return Ok(None);
    }
    let entry = match d.get(item, "entry")? {
        None => Some(created),
        Some((v, o)) => time_of(d, &v, &o)?,
    };
    let description = match d.get(item, "description")? {
        Some((v, o)) => text_of(d, &v, &o)?,
        None => None,
    };
    Ok(entry.zip(description).map(|(entry, description)| Annotation { entry, description }))
}

/// A string scalar, or the content of a text object (JavaScript writers make
/// text of plain strings).
pub(super) fn text_of<R: ReadDoc + ?Sized>(d: &R, value: &Value<'_>, obj: &ObjId) -> Result<Option<String>, DocError> {
    Ok(match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        Value::Object(ObjType::Text) => Some(d.text(obj)?),
        Value::Object(_) => None,
    })
}

#[allow(clippy::unnecessary_wraps)] // shaped as a `Parse`
fn time_of(_: &Automerge, value: &Value<'_>, _: &ObjId) -> Result<Option<DateTime<Utc>>, DocError> {
    Ok(match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => from_ms(*ms),
            _ => None,
        },
        Value::Object(_) => None,
    })
}

fn bool_of(value: &Value<'_>) -> Option<bool> {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Boolean(b) => Some(*b),
            _ => None,
        },
        Value::Object(_) => None,
    }
}

/// What a value is, for a person: `an int`, `a list`, …
pub(super) fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Object(ObjType::Map | ObjType::Table) => "a map".into(),
        Value::Object(ObjType::List) => "a list".into(),
        Value::Object(ObjType::Text) => "a text".into(),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(_) => "a string".into(),
            ScalarValue::Int(_) | ScalarValue::Uint(_) => "an int".into(),
            ScalarValue::F64(_) => "a float".into(),
            ScalarValue::Counter(_) => "a counter".into(),
            ScalarValue::Timestamp(_) => "a timestamp".into(),
            ScalarValue::Boolean(_) => "a boolean".into(),
            ScalarValue::Bytes(_) => "bytes".into(),
            ScalarValue::Null => "null".into(),
            ScalarValue::Unknown { type_code, .. } => format!("a value of unknown type {type_code}"),
        },
    }
}

/// A scalar as `heph conflicts` shows it.
pub(super) fn render(value: &Value<'_>) -> String {
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

/// One concurrent value at container `key`, as `heph conflicts` shows it:
/// a body's text, a set's members, anything else as JSON.
pub(super) fn render_content<R: ReadDoc + ?Sized>(
    d: &R,
    key: &str,
    value: &Value<'_>,
    obj: &ObjId,
) -> Result<String, DocError> {
    Ok(match (key, value) {
        ("body", Value::Object(ObjType::Text)) => d.text(obj)?,
        ("tags" | "links" | "depends", Value::Object(ObjType::Map)) => {
            let members: Vec<String> = d.keys(obj).collect();
            if members.is_empty() { "(empty)".to_string() } else { members.join(" ") }
        }
        (_, Value::Scalar(_)) => render(value),
        _ => json_string(d, value, obj)?,
    })
}

/// A value as compact JSON text.
pub(super) fn json_string<R: ReadDoc + ?Sized>(d: &R, value: &Value<'_>, obj: &ObjId) -> Result<String, DocError> {
    Ok(json(d, value, obj)?.to_string())
}

/// A value as JSON: strings, numbers and booleans as themselves, timestamps
/// as RFC 3339 strings, bytes as hex, text as a string, maps and lists
/// recursively, at most [`MAX_DEPTH`] deep and [`MAX_VALUES`] values in all.
pub(super) fn json<R: ReadDoc + ?Sized>(d: &R, value: &Value<'_>, obj: &ObjId) -> Result<Json, DocError> {
    let mut budget = MAX_VALUES;
    json_at(d, value, obj, 0, &mut budget)
}

fn json_at<R: ReadDoc + ?Sized>(
    d: &R,
    value: &Value<'_>,
    obj: &ObjId,
    depth: usize,
    budget: &mut usize,
) -> Result<Json, DocError> {
    if *budget == 0 {
        return Ok(Json::String("(more values not shown)".into()));
    }
    *budget -= 1;
    let Value::Object(ty) = value else {
        return Ok(match value {
            Value::Scalar(s) => scalar_json(s),
            Value::Object(_) => Json::Null,
        });
    };
    if *ty == ObjType::Text {
        return Ok(Json::String(d.text(obj)?));
    }
    if depth >= MAX_DEPTH {
        return Ok(Json::String(format!("(nested deeper than {MAX_DEPTH})")));
    }
    Ok(match ty {
        ObjType::List => {
            let mut items = Vec::new();
            for i in 0..d.length(obj) {
                if *budget == 0 {
                    items.push(Json::String("(more values not shown)".into()));
                    break;
                }
                if let Some((v, o)) = d.get(obj, i)? {
                    items.push(json_at(d, &v, &o, depth + 1, budget)?);
                }
            }
            Json::Array(items)
        }
        _ => {
            let mut map = serde_json::Map::new();
            for k in d.keys(obj) {
                if *budget == 0 {
                    map.insert("…".into(), Json::String("(more values not shown)".into()));
                    break;
                }
                if let Some((v, o)) = d.get(obj, k.as_str())? {
                    let rendered = json_at(d, &v, &o, depth + 1, budget)?;
                    map.insert(k, rendered);
                }
            }
            Json::Object(map)
        }
    })
}

fn scalar_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(n) => Json::from(*n),
        ScalarValue::Uint(n) => Json::from(*n),
        ScalarValue::F64(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| Json::String(f.to_string()), Json::Number)
        }
        ScalarValue::Counter(c) => Json::from(i64::from(c)),
        ScalarValue::Timestamp(ms) => from_ms(*ms).map_or_else(|| Json::from(*ms), |t| Json::String(t.to_rfc3339())),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Bytes(b) => Json::String(format!("0x{}", hex::encode(b))),
        ScalarValue::Null => Json::Null,
        ScalarValue::Unknown { type_code, .. } => Json::String(format!("(a value of unknown type {type_code})")),
    }
}

pub(super) fn conflicts(d: &Automerge, id: NodeId) -> Result<Vec<Conflict>, DocError> {
    let mut out = Vec::new();
    for field in CONFLICT_FIELDS {
        let all = d.get_all(ROOT, *field)?;
        if all.len() < 2 {
            continue;
        }
        // Automerge shows the value with the greatest op id, last in
        // `get_all`; list it first. The same value set twice is no conflict.
        let mut values: Vec<String> = Vec::new();
        for (v, _) in all.iter().rev() {
            let rendered = render(v);
            if !values.contains(&rendered) {
                values.push(rendered);
            }
        }
        if values.len() > 1 {
            out.push(Conflict { id, field: (*field).to_string(), values });
        }
    }
    for (key, _) in CONTAINER_FIELDS {
        let all = d.get_all(ROOT, *key)?;
        if all.len() < 2 {
            continue;
        }
        let mut values = Vec::with_capacity(all.len());
        for (v, o) in all.iter().rev() {
            values.push(render_content(d, key, v, o)?);
        }
        out.push(Conflict { id, field: (*key).to_string(), values });
    }
    Ok(out)
}
