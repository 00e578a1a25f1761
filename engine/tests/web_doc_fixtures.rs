//! Fixtures for the browser app's document layer (`web/src/doc.ts`), which
//! must make the same Automerge changes as [`NodeDoc`] and read them back
//! the same. This test generates them from the engine and fails when the
//! checked-in files differ; `HEPH_BLESS=1` rewrites them.
//!
//! Change bytes are base64 (standard alphabet, padded) of `Change::raw_bytes`,
//! the form the change log and the wire carry. Times are RFC 3339 as serde
//! writes them; nodes, edits and conflicts are the engine's serde JSON.
//!
//! # `web/test/fixtures/genesis.json`
//!
//! ```text
//! { "cases": [ { "id": hex, "kind": "task" | "note" | "journal",
//!                "day"?: "YYYY-MM-DD",    // present: NodeDoc::journal_genesis(day)
//!                "change": base64 } ] }   // absent:  NodeDoc::genesis(id, kind)
//! ```
//!
//! # `web/test/fixtures/edits.json`
//!
//! ```text
//! { "cases": [ {
//!     "name": text,
//!     "create": { "node": Node, "edits": [Edit], "actor": hex, "message": text },
//!     "steps": [ { "edits": [Edit], "message": text, "now": RFC 3339 } ],
//!     "changes": [base64],   // every change in order: genesis, content, one per step
//!                            // (a step or content change that made no operation is absent)
//!     "node": Node           // materialised at the end
//!   } ],
//!   "merges": [ {
//!     "name": text,
//!     "id": hex,
//!     "base": [base64],      // the shared history every branch starts from
//!     "branches": [ {        // each made on its own copy of `base`, as `actor`
//!       "actor": hex,
//!       "steps": [ { "edits": [Edit], "message": text, "now": RFC 3339 } ],
//!       "changes": [base64]  // what the steps made, in order
//!     } ],
//!     "conflicts": [Conflict],  // NodeDoc::conflicts of `base` + every branch,
//!                               // merged into the first branch's document
//!     "resolves": [ {           // NodeDoc::resolve on that merged document, in
//!       "field": text, "value": text, "now": RFC 3339,   // order, as the first
//!       "change": base64 | null                          // branch's actor
//!     } ],
//!     "node": Node              // materialised after the resolves
//!   } ] }
//! ```
//!
//! # `web/test/fixtures/views.json`
//!
//! ```text
//! { "docs": [ {
//!     "name": text,          // the edits.json case or merge (merged, unresolved)
//!     "id": hex,
//!     "bytes": base64,       // the saved document (NodeDoc::save)
//!     "view": text           // the JSON of what a hub sends with it
//!                            // (DocView::read; null when none), as sent
//!   } ] }
//! ```
//!
//! Merges whose base is a `create` hold concurrent scalar values. The other
//! bases were written by "another program", without heph's genesis: there
//! the branches' edits make concurrent containers (which resolve merges),
//! values of the wrong type read into `extra`, and concurrent scalars of
//! every Automerge type render as the engine shows them.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, Change, ObjType, ROOT, ScalarValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use heph_engine::{Annotation, Edit, Node, NodeDoc, NodeId, NodeKind, Priority, Status};
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------
// Writing and checking the files.
// ---------------------------------------------------------------------------

#[path = "support/web_fixture.rs"]
mod web_fixture;

/// Compares `fresh` with the checked-in file, or rewrites it when blessing.
fn check(name: &str, fresh: &Json) {
    web_fixture::check(name, fresh, "web_doc_fixtures");
}

fn b64(change: &Change) -> Json {
    Json::String(STANDARD.encode(change.raw_bytes()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).expect("serialises")
}

// ---------------------------------------------------------------------------
// Fixed inputs: ids, actors and times, so the files are stable.
// ---------------------------------------------------------------------------

fn id(hex: &str) -> NodeId {
    NodeId::parse(hex).expect("a fixed id")
}

fn derived(n: u32) -> NodeId {
    NodeId::derived(&format!("heph/fixtures/{n}"))
}

fn actor(byte: u8) -> ActorId {
    ActorId::from([byte; 16].as_slice())
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a fixed day")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).single().expect("a fixed time")
}

/// `t0` plus `minutes`, with a few milliseconds so formatting is exercised.
fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes) + Duration::milliseconds(minutes * 7 % 1000)
}

fn time(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("a fixed time")
}

// ---------------------------------------------------------------------------
// genesis.json
// ---------------------------------------------------------------------------

fn genesis_fixture() -> Json {
    let fixed = [
        "00000000000000000000000000000000",
        "0123456789abcdef0123456789abcdef",
        "ffffffffffffffffffffffffffffffff",
        "7f3e2a1b9c8d4e5f6a7b8c9d0e1f2a3b",
    ];
    let mut ids: Vec<NodeId> = fixed.iter().map(|h| id(h)).collect();
    ids.extend((0..4).map(derived));
    let mut cases = Vec::new();
    for kind in [NodeKind::Task, NodeKind::Note, NodeKind::Journal] {
        for id in &ids {
            let (_, change) = NodeDoc::genesis(*id, kind).expect("genesis");
            cases.push(json!({ "id": id.to_hex(), "kind": kind.as_str(), "change": b64(&change) }));
        }
    }
    for day in [day(2026, 11, 25), day(2024, 2, 29), day(2000, 1, 1), day(1970, 1, 1), day(1969, 7, 20)] {
        let (_, change) = NodeDoc::journal_genesis(day).expect("journal genesis");
        cases.push(json!({
            "id": NodeId::journal(day).to_hex(),
            "kind": "journal",
            "day": day.to_string(),
            "change": b64(&change),
        }));
    }
    json!({ "cases": cases })
}

#[test]
fn genesis_fixture_is_current() {
    check("genesis.json", &genesis_fixture());
}

// ---------------------------------------------------------------------------
// edits.json: cases
// ---------------------------------------------------------------------------

struct Step {
    edits: Vec<Edit>,
    message: &'static str,
    now: DateTime<Utc>,
}

fn step(edits: Vec<Edit>, message: &'static str, now: DateTime<Utc>) -> Step {
    Step { edits, message, now }
}

struct Case {
    name: &'static str,
    node: Node,
    edits: Vec<Edit>,
    steps: Vec<Step>,
}

fn case(name: &'static str, node: Node, edits: Vec<Edit>, steps: Vec<Step>) -> Case {
    Case { name, node, edits, steps }
}

fn task(n: u32, title: &str) -> Node {
    Node::new(derived(100 + n), NodeKind::Task, title.into(), t0())
}

fn note(n: u32, title: &str) -> Node {
    Node::new(derived(100 + n), NodeKind::Note, title.into(), t0())
}

fn ann(minutes: i64, text: &str) -> Annotation {
    Annotation { entry: at(minutes), description: text.into() }
}

fn steps_json(steps: &[Step]) -> Json {
    Json::Array(
        steps
            .iter()
            .map(|s| json!({ "edits": to_json(&s.edits), "message": s.message, "now": to_json(&s.now) }))
            .collect(),
    )
}

fn run_case(c: &Case) -> Json {
    let creator = actor(0xa1);
    let (mut doc, mut changes) = NodeDoc::create_with(&c.node, &c.edits, &creator, "add").expect("create");
    for s in &c.steps {
        changes.extend(doc.edit(&s.edits, s.message, s.now).expect("edit"));
    }
    let node = doc.materialise_as(c.node.id).expect("materialise");
    // The log alone rebuilds the node: what the browser checks by loading it.
    let mut replay = NodeDoc::empty(&actor(0xee));
    assert!(replay.apply(changes.clone()).expect("apply").is_empty());
    assert_eq!(replay.materialise_as(c.node.id).expect("materialise"), node, "{}", c.name);
    json!({
        "name": c.name,
        "create": {
            "node": to_json(&c.node),
            "edits": to_json(&c.edits),
            "actor": creator.to_hex_string(),
            "message": "add",
        },
        "steps": steps_json(&c.steps),
        "changes": changes.iter().map(b64).collect::<Vec<_>>(),
        "node": to_json(&node),
    })
}

fn creation_cases() -> Vec<Case> {
    let mut full = task(1, "Everything at once");
    full.body = "First line\nSecond — with ünïcode\n\n- item 🎉\n".into();
    full.tags = ["zeta", "alpha", "Äpfel", "emoji🎉", "~last", "Zulu"].into_iter().map(String::from).collect();
    full.links = [derived(1), derived(2)].into_iter().collect();
    full.depends = [derived(3)].into_iter().collect();
    full.priority = Some(Priority::M);
    full.project = Some("home.garden".into());
    full.status = Some(Status::Active);
    full.start = Some(at(-30));
    full.due = Some(time(2026, 12, 1, 9, 0));
    full.wait = Some(time(2026, 11, 28, 0, 0));
    full.scheduled = Some(time(2026, 11, 30, 8, 15));
    full.end = Some(at(90));
    // Out of order on purpose: written as given, read back sorted.
    full.annotations = vec![ann(20, "second"), ann(10, "first"), ann(20, "second, same time")];
    full.uda =
        [("estimate", "2h"), ("Size", "L"), ("ünï", "✓")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();

    let mut deleted = note(2, "Born deleted");
    deleted.deleted = true;

    let journal_day = day(2026, 11, 25);
    let midnight = time(2026, 11, 25, 0, 0);
    let mut journal = Node::new(NodeId::journal(journal_day), NodeKind::Journal, "2026-11-25".into(), midnight);
    journal.date = Some(journal_day);
    let mut journal_body = journal.clone();
    journal_body.id = NodeId::journal(day(2026, 11, 26));
    journal_body.date = Some(day(2026, 11, 26));
    journal_body.title = "2026-11-26".into();
    journal_body.created = time(2026, 11, 26, 0, 0);
    journal_body.modified = at(60 * 24);
    journal_body.body = "Morning pages.\n".into();
    let mut journal_other_id = Node::new(derived(7), NodeKind::Journal, "A journal without its day's id".into(), t0());
    journal_other_id.date = Some(day(2026, 1, 2));

    let mut precise = task(3, "Sub-millisecond times");
    precise.created = t0() + Duration::nanoseconds(1_234_567);
    precise.modified = t0() + Duration::nanoseconds(999_999_999);
    precise.due = Some(time(2027, 1, 1, 0, 0) + Duration::microseconds(123_456));

    let mut old = note(4, "Before the epoch");
    old.created = time(1969, 7, 20, 20, 17) + Duration::milliseconds(40);
    old.modified = old.created;

    let mut pending_fields = task(5, "Status left unset");
    pending_fields.status = None;

    vec![
        case("plain task", task(0, "Buy milk"), vec![], vec![]),
        case("plain note", note(0, "Ideas"), vec![], vec![]),
        case("every field at creation", full, vec![], vec![]),
        case("deleted at creation", deleted, vec![], vec![]),
        case(
            "journal day by hand, then written",
            journal,
            vec![],
            vec![step(vec![Edit::AppendBody("Wrote the fixtures.".into())], "modify", at(5))],
        ),
        case("journal day with a body", journal_body, vec![], vec![]),
        case("journal kind with another id", journal_other_id, vec![], vec![]),
        case("sub-millisecond times", precise, vec![], vec![]),
        case("before the epoch", old, vec![], vec![]),
        case("task without a status", pending_fields, vec![], vec![]),
        case(
            "edits at creation",
            task(6, "Started right away"),
            vec![
                Edit::Status(Status::Active),
                Edit::AddTag("now".into()),
                Edit::Body("Created with edits.".into()),
                Edit::Uda("source".into(), Some("cli".into())),
            ],
            vec![],
        ),
    ]
}

fn edit_cases() -> Vec<Case> {
    let mut with_body = note(20, "Body replace");
    with_body.body = "Hello world\nline two\n".into();
    let mut tagged = task(25, "Tags");
    tagged.tags = ["home".to_string(), "alpha".to_string()].into_iter().collect();
    let mut linked = note(26, "Links and dependencies");
    linked.links = [derived(50)].into_iter().collect();
    let mut annotated = task(27, "Annotations");
    annotated.annotations = vec![ann(30, "at creation")];
    let mut prioritised = task(23, "Priority");
    prioritised.priority = Some(Priority::L);
    vec![
        case(
            "title",
            task(21, "Old title"),
            vec![],
            vec![
                step(vec![Edit::Title("New title".into())], "modify", at(1)),
                step(vec![Edit::Title("Tïtle with émoji 🚀 and 👨‍👩‍👧".into())], "modify", at(2)),
                step(vec![Edit::Title(String::new())], "modify", at(3)),
            ],
        ),
        case(
            "body replace",
            with_body,
            vec![],
            vec![
                step(vec![Edit::Body("Hello brave world\nline 2\n".into())], "edit body", at(1)),
                step(vec![Edit::Body("Héllo 🌍 wörld 👨‍👩‍👧\nline 2\n\n  indented\n".into())], "edit body", at(2)),
                step(vec![Edit::Body("👨‍👩‍👦 family changed\r\nwindows line".into())], "edit body", at(3)),
                step(vec![Edit::Body(String::new())], "edit body", at(4)),
                step(vec![Edit::Body("again".into())], "edit body", at(5)),
            ],
        ),
        case(
            "append body",
            note(22, "Append"),
            vec![],
            vec![
                step(vec![Edit::AppendBody("first".into())], "append", at(1)),
                step(vec![Edit::AppendBody("second 🎉".into())], "append", at(2)),
                step(vec![Edit::Body("ends with newline\n".into())], "edit body", at(3)),
                step(vec![Edit::AppendBody("third\nfourth".into())], "append", at(4)),
            ],
        ),
        case(
            "status transitions",
            task(24, "Status"),
            vec![],
            vec![
                step(vec![Edit::Status(Status::Active)], "start", at(1)),
                step(vec![Edit::Status(Status::Done)], "done", at(2)),
                step(vec![Edit::Status(Status::Pending)], "modify status:pending", at(3)),
                step(vec![Edit::Status(Status::Active)], "start", at(4)),
                step(vec![Edit::Status(Status::Cancelled)], "modify status:cancelled", at(5)),
                step(vec![Edit::Status(Status::Waiting)], "modify status:waiting", at(6)),
                step(vec![Edit::Status(Status::Waiting)], "modify status:waiting", at(7)),
            ],
        ),
        case(
            "priority set and clear",
            prioritised,
            vec![],
            vec![
                step(vec![Edit::Priority(Some(Priority::H))], "modify priority:H", at(1)),
                step(vec![Edit::Priority(Some(Priority::M))], "modify priority:M", at(2)),
                step(vec![Edit::Priority(None)], "modify priority:", at(3)),
                step(vec![Edit::Priority(None)], "modify priority:", at(4)),
            ],
        ),
        case(
            "dates set and clear",
            task(28, "Dates"),
            vec![],
            vec![
                step(vec![Edit::Due(Some(time(2026, 12, 1, 9, 30)))], "modify due", at(1)),
                step(
                    vec![
                        Edit::Wait(Some(time(2026, 11, 28, 0, 0) + Duration::microseconds(123_456))),
                        Edit::Scheduled(Some(time(2026, 11, 30, 23, 59))),
                    ],
                    "modify wait scheduled",
                    at(2),
                ),
                step(vec![Edit::Due(Some(time(1999, 12, 31, 23, 59)))], "modify due", at(3)),
                step(vec![Edit::Due(None), Edit::Wait(None)], "modify due: wait:", at(4)),
                step(vec![Edit::Scheduled(None), Edit::Scheduled(None)], "modify scheduled:", at(5)),
            ],
        ),
        case(
            "project set and clear",
            task(29, "Project"),
            vec![],
            vec![
                step(vec![Edit::Project(Some("work".into()))], "modify project:work", at(1)),
                step(vec![Edit::Project(Some("work.heph.web".into()))], "modify project", at(2)),
                step(vec![Edit::Project(None)], "modify project:", at(3)),
            ],
        ),
        case(
            "tags add and remove",
            tagged,
            vec![],
            vec![
                step(vec![Edit::AddTag("zeta".into()), Edit::AddTag("Äpfel".into())], "modify +zeta +Äpfel", at(1)),
                step(vec![Edit::AddTag("emoji🎉".into()), Edit::AddTag("\u{ff21}".into())], "modify", at(2)),
                step(vec![Edit::RemoveTag("home".into()), Edit::RemoveTag("absent".into())], "modify -home", at(3)),
                step(vec![Edit::AddTag("home".into())], "modify +home", at(4)),
            ],
        ),
        case(
            "links and dependencies",
            linked,
            vec![],
            vec![
                step(vec![Edit::Link(derived(51)), Edit::Depend(derived(52))], "link", at(1)),
                step(vec![Edit::Unlink(derived(50)), Edit::Depend(derived(53))], "modify", at(2)),
                step(vec![Edit::Undepend(derived(52)), Edit::Unlink(derived(99))], "modify", at(3)),
            ],
        ),
        case(
            "annotations",
            annotated,
            vec![],
            vec![
                step(vec![Edit::Annotate(ann(40, "later"))], "annotate", at(1)),
                step(vec![Edit::Annotate(ann(5, "earlier than creation's"))], "annotate", at(2)),
                // The same annotation twice reads back once.
                step(vec![Edit::Annotate(ann(40, "later"))], "annotate", at(3)),
                step(vec![Edit::Annotate(ann(40, "same time, other text"))], "annotate", at(4)),
            ],
        ),
        case(
            "start and end directly",
            task(30, "Imported times"),
            vec![],
            vec![
                step(vec![Edit::Start(Some(at(-60))), Edit::End(Some(at(-10)))], "import", at(1)),
                step(vec![Edit::Start(None)], "import", at(2)),
                step(vec![Edit::End(None), Edit::End(None)], "import", at(3)),
            ],
        ),
        case(
            "deleted and restored",
            note(31, "Tombstone"),
            vec![],
            vec![step(vec![Edit::Deleted(true)], "delete", at(1)), step(vec![Edit::Deleted(false)], "restore", at(2))],
        ),
        case(
            "uda set and clear",
            task(32, "UDAs"),
            vec![],
            vec![
                step(vec![Edit::Uda("estimate".into(), Some("2h".into()))], "modify", at(1)),
                step(
                    vec![Edit::Uda("estimate".into(), Some("3h".into())), Edit::Uda("ü".into(), Some("✓".into()))],
                    "modify",
                    at(2),
                ),
                step(vec![Edit::Uda("estimate".into(), None), Edit::Uda("absent".into(), None)], "modify", at(3)),
            ],
        ),
        case(
            "many edits in one change",
            task(33, "Busy"),
            vec![],
            vec![step(
                vec![
                    Edit::Title("Busy, renamed".into()),
                    Edit::Body("A body\nwith lines".into()),
                    Edit::AppendBody("and more".into()),
                    Edit::Status(Status::Active),
                    Edit::Priority(Some(Priority::H)),
                    Edit::Due(Some(time(2026, 12, 24, 18, 0))),
                    Edit::Project(Some("family".into())),
                    Edit::AddTag("gift".into()),
                    Edit::Link(derived(60)),
                    Edit::Depend(derived(61)),
                    Edit::Annotate(ann(3, "bought paper")),
                    Edit::Uda("budget".into(), Some("50".into())),
                    Edit::Status(Status::Done),
                ],
                "modify",
                at(1),
            )],
        ),
        case(
            "edits that change nothing but modified",
            note(34, "Same"),
            vec![],
            vec![
                step(vec![Edit::Title("Same".into())], "modify", at(1)),
                step(vec![Edit::RemoveTag("none".into()), Edit::Uda("none".into(), None)], "modify", at(2)),
                step(vec![Edit::Deleted(false)], "modify", at(3)),
            ],
        ),
    ]
}

// ---------------------------------------------------------------------------
// edits.json: merges
// ---------------------------------------------------------------------------

struct Merge {
    name: &'static str,
    id: NodeId,
    base: Vec<Change>,
    branches: Vec<(ActorId, Vec<Step>)>,
    resolves: Vec<(&'static str, String, DateTime<Utc>)>,
}

fn run_merge(m: &Merge) -> Json {
    let mut docs = Vec::new();
    let mut branches = Vec::new();
    for (actor, steps) in &m.branches {
        let mut doc = NodeDoc::empty(actor);
        assert!(doc.apply(m.base.clone()).expect("apply the base").is_empty());
        let mut changes = Vec::new();
        for s in steps {
            changes.extend(doc.edit(&s.edits, s.message, s.now).expect("edit"));
        }
        branches.push(json!({
            "actor": actor.to_hex_string(),
            "steps": steps_json(steps),
            "changes": changes.iter().map(b64).collect::<Vec<_>>(),
        }));
        docs.push((doc, changes));
    }
    let mut docs = docs.into_iter();
    let (mut merged, _) = docs.next().expect("a first branch");
    for (_, changes) in docs {
        assert!(merged.apply(changes).expect("merge").is_empty());
    }
    let conflicts = merged.conflicts(m.id).expect("conflicts");
    assert!(!conflicts.is_empty(), "{}: the branches must conflict", m.name);
    let mut resolves = Vec::new();
    for (field, value, now) in &m.resolves {
        let change = merged.resolve(field, value, *now).expect("resolve");
        resolves.push(json!({
            "field": field,
            "value": value,
            "now": to_json(now),
            "change": change.as_ref().map_or(Json::Null, b64),
        }));
    }
    json!({
        "name": m.name,
        "id": m.id.to_hex(),
        "base": m.base.iter().map(b64).collect::<Vec<_>>(),
        "branches": branches,
        "conflicts": to_json(&conflicts),
        "resolves": resolves,
        "node": to_json(&merged.materialise_as(m.id).expect("materialise")),
    })
}

/// The changes of a created node, as a merge's base.
fn created(node: &Node) -> Vec<Change> {
    NodeDoc::create(node, &actor(0xa1), "add").expect("create").1
}

/// Renders a time as conflicts do (`to_rfc3339`).
fn rendered(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

fn scalar_merges() -> Vec<Merge> {
    let titles = task(40, "Base title");
    let dates = task(41, "Dates apart");
    let mut tomb = note(42, "Delete or keep");
    tomb.priority = Some(Priority::M);
    vec![
        Merge {
            name: "concurrent titles",
            id: titles.id,
            base: created(&titles),
            branches: vec![
                (actor(0xb1), vec![step(vec![Edit::Title("From the laptop".into())], "modify", at(10))]),
                (actor(0xb2), vec![step(vec![Edit::Title("From the phone 📱".into())], "modify", at(11))]),
            ],
            resolves: vec![
                ("title", "From the laptop".into(), at(20)),
                // Resolved: nothing left to resolve.
                ("title", "From the laptop".into(), at(21)),
            ],
        },
        Merge {
            name: "concurrent due and status",
            id: dates.id,
            base: created(&dates),
            branches: vec![
                (
                    actor(0xb1),
                    vec![
                        step(vec![Edit::Due(Some(time(2026, 12, 1, 9, 0)))], "modify due", at(10)),
                        step(vec![Edit::Status(Status::Done)], "done", at(12)),
                    ],
                ),
                (
                    actor(0xb2),
                    vec![step(
                        vec![
                            Edit::Due(Some(time(2026, 12, 2, 17, 30) + Duration::milliseconds(250))),
                            Edit::Status(Status::Active),
                        ],
                        "modify due start",
                        at(11),
                    )],
                ),
            ],
            resolves: vec![
                ("due", rendered(time(2026, 12, 2, 17, 30) + Duration::milliseconds(250)), at(20)),
                ("status", "done".into(), at(21)),
                ("title", "no such value".into(), at(22)),
            ],
        },
        Merge {
            name: "concurrent delete, priority and uda",
            id: tomb.id,
            base: created(&tomb),
            branches: vec![
                (
                    actor(0xb1),
                    vec![step(
                        vec![
                            Edit::Deleted(true),
                            Edit::Priority(Some(Priority::H)),
                            Edit::Uda("k".into(), Some("a".into())),
                        ],
                        "delete",
                        at(10),
                    )],
                ),
                (
                    actor(0xb2),
                    vec![step(
                        vec![Edit::Deleted(false), Edit::Priority(None), Edit::Uda("k".into(), Some("b".into()))],
                        "modify",
                        at(10),
                    )],
                ),
                (actor(0xb3), vec![step(vec![Edit::Deleted(true)], "delete", at(9))]),
            ],
            resolves: vec![("deleted", "false".into(), at(20))],
        },
    ]
}

/// A node written by another program, without heph's genesis: text where
/// heph keeps strings and the reverse, a list for a set, values of the wrong
/// type and keys heph does not know. Each branch's edits then make their own
/// containers, which clash.
fn foreign_base(id: NodeId) -> Vec<Change> {
    let mut doc = Automerge::new().with_actor(actor(0xf0));
    let mut tx = doc.transaction();
    let put = |tx: &mut automerge::transaction::Transaction<'_>| -> Result<(), automerge::AutomergeError> {
        tx.put(ROOT, "id", id.to_hex())?;
        tx.put(ROOT, "kind", "Task")?;
        let title = tx.put_object(ROOT, "title", ObjType::Text)?;
        tx.splice_text(&title, 0, 0, "Foreign title")?;
        tx.put(ROOT, "created", ScalarValue::Int(t0().timestamp_millis()))?;
        tx.put(ROOT, "modified", ScalarValue::Timestamp(at(1).timestamp_millis()))?;
        tx.put(ROOT, "status", "Completed")?;
        tx.put(ROOT, "priority", ScalarValue::Int(3))?;
        tx.put(ROOT, "date", "not a day")?;
        tx.put(ROOT, "body", "old body")?;
        let tags = tx.put_object(ROOT, "tags", ObjType::List)?;
        tx.insert(&tags, 0, "b")?;
        tx.insert(&tags, 1, "a")?;
        let extra = tx.put_object(ROOT, "estimate", ObjType::Map)?;
        tx.put(&extra, "hours", ScalarValue::F64(1.5))?;
        tx.put(&extra, "exact", true)?;
        tx.put(&extra, "when", ScalarValue::Timestamp(time(2026, 1, 2, 3, 4).timestamp_millis() + 5))?;
        tx.put(&extra, "blob", ScalarValue::Bytes(vec![0xde, 0xad]))?;
        tx.put(&extra, "nothing", ScalarValue::Null)?;
        let nested = tx.put_object(&extra, "list", ObjType::List)?;
        tx.insert(&nested, 0, ScalarValue::Uint(7))?;
        tx.insert(&nested, 1, ScalarValue::counter(2))?;
        let annotations = tx.put_object(ROOT, "annotations", ObjType::List)?;
        let a = tx.insert_object(&annotations, 0, ObjType::Map)?;
        tx.put(&a, "entry", ScalarValue::Timestamp(at(3).timestamp_millis()))?;
        let text = tx.put_object(&a, "description", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "as text")?;
        tx.insert(&annotations, 1, "junk")?;
        let b = tx.insert_object(&annotations, 2, ObjType::Map)?;
        tx.put(&b, "description", "no entry: the creation time")?;
        let links = tx.put_object(ROOT, "links", ObjType::Map)?;
        tx.put(&links, derived(70).to_hex(), true)?;
        tx.put(&links, "not-an-id", true)?;
        tx.put(&links, derived(71).to_uuid().to_uppercase(), true)?;
        let uda = tx.put_object(ROOT, "uda", ObjType::Map)?;
        tx.put(&uda, "size", "L")?;
        tx.put(&uda, "count", ScalarValue::Int(4))?;
        tx.put(ROOT, "uda.count", "a root key that looks like an unread UDA")?;
        tx.put(ROOT, "zzz", ScalarValue::Uint(1))?;
        Ok(())
    };
    put(&mut tx).expect("write the foreign node");
    tx.commit_with(CommitOptions::default().with_message("foreign").with_time(at(1).timestamp_millis()));
    doc.get_changes(&[])
}

/// A node another program wrote with nothing but its id and kind: every
/// branch's first edit into a container makes that container.
fn bare_base(id: NodeId) -> Vec<Change> {
    let mut doc = Automerge::new().with_actor(actor(0xf1));
    let mut tx = doc.transaction();
    tx.put(ROOT, "id", id.to_hex()).expect("put");
    tx.put(ROOT, "kind", "note").expect("put");
    tx.put(ROOT, "title", "Bare").expect("put");
    tx.commit_with(CommitOptions::default().with_message("bare").with_time(t0().timestamp_millis()));
    doc.get_changes(&[])
}

/// A node whose scalars two foreign writers set concurrently, to values of
/// every type: conflicts render each as the engine shows it.
fn concurrent_foreign_base(id: NodeId) -> Vec<Change> {
    let mut doc = Automerge::new().with_actor(actor(0xf3));
    let mut tx = doc.transaction();
    tx.put(ROOT, "id", id.to_hex()).expect("put");
    tx.put(ROOT, "kind", "note").expect("put");
    tx.commit_with(CommitOptions::default().with_message("foreign").with_time(t0().timestamp_millis()));
    // Each also makes its own `uda` map of floats, shown as JSON text in the
    // conflict.
    let write = |doc: &mut Automerge, values: Vec<(&str, ScalarValue)>| {
        let mut tx = doc.transaction();
        let uda = tx.put_object(ROOT, "uda", ObjType::Map).expect("put");
        for (key, value) in values {
            if let Some(key) = key.strip_prefix("uda.") {
                tx.put(&uda, key, value).expect("put");
            } else {
                tx.put(ROOT, key, value).expect("put");
            }
        }
        tx.commit_with(CommitOptions::default().with_message("foreign").with_time(at(1).timestamp_millis()));
        doc.get_last_local_change().expect("a change")
    };
    let mut left = doc.fork().with_actor(actor(0xf4));
    let mut right = doc.fork().with_actor(actor(0xf5));
    let mut changes = doc.get_changes(&[]);
    changes.push(write(
        &mut left,
        vec![
            ("title", ScalarValue::F64(0.1)),
            ("status", ScalarValue::counter(3)),
            ("priority", ScalarValue::Bytes(vec![1, 2, 255])),
            // Beyond chrono's range, inside JavaScript's.
            ("due", ScalarValue::Timestamp(8_500_000_000_000_000)),
            ("wait", ScalarValue::Null),
            ("project", ScalarValue::Uint(7)),
            ("start", ScalarValue::Int(-5)),
            ("deleted", ScalarValue::Str("yes".into())),
            ("end", ScalarValue::F64(-2.5e-300)),
            ("uda.a", ScalarValue::F64(1.5)),
            ("uda.b", ScalarValue::F64(3.0)),
            ("uda.c", ScalarValue::F64(1e16)),
            ("uda.d", ScalarValue::F64(1.25e-7)),
            ("uda.e", ScalarValue::F64(-0.0)),
            ("uda.f", ScalarValue::F64(f64::NAN)),
        ],
    ));
    changes.push(write(
        &mut right,
        vec![
            ("title", "plain".into()),
            ("status", "done".into()),
            ("priority", ScalarValue::Int(2)),
            ("due", ScalarValue::Timestamp(time(2026, 12, 1, 9, 0).timestamp_millis())),
            ("wait", ScalarValue::Boolean(false)),
            ("project", ScalarValue::F64(1e21)),
            ("start", ScalarValue::Timestamp(-5)),
            ("deleted", ScalarValue::Boolean(true)),
            ("end", ScalarValue::F64(3.0)),
            ("uda.a", ScalarValue::F64(0.001)),
            ("uda.g", ScalarValue::F64(123_456_789_012_345_680_000.0)),
            ("uda.h", ScalarValue::F64(0.000_01)),
            ("uda.i", ScalarValue::F64(f64::INFINITY)),
            ("uda.j", "text".into()),
        ],
    ));
    changes
}

fn clash_merges() -> Vec<Merge> {
    let foreign = derived(80);
    let bare = derived(81);
    let scalars = derived(82);
    let both = ann(4, "written on both");
    vec![
        Merge {
            name: "foreign writer",
            id: foreign,
            base: foreign_base(foreign),
            branches: vec![
                (
                    actor(0xc1),
                    vec![step(
                        vec![
                            Edit::Body("new body from c1".into()),
                            Edit::AddTag("c".into()),
                            Edit::Uda("size".into(), Some("XL".into())),
                            Edit::Annotate(ann(4, "from c1")),
                            Edit::Depend(derived(72)),
                        ],
                        "modify",
                        at(10),
                    )],
                ),
                (
                    actor(0xc2),
                    vec![step(
                        vec![
                            Edit::Body("new body from c2".into()),
                            Edit::AddTag("d".into()),
                            Edit::RemoveTag("a".into()),
                            Edit::Depend(derived(73)),
                        ],
                        "modify",
                        at(11),
                    )],
                ),
            ],
            resolves: vec![
                ("body", "new body from c1".into(), at(20)),
                ("tags", String::new(), at(21)),
                ("depends", String::new(), at(22)),
                // No clash there: nothing to do.
                ("annotations", String::new(), at(23)),
            ],
        },
        Merge {
            name: "containers made twice",
            id: bare,
            base: bare_base(bare),
            branches: vec![
                (
                    actor(0xd1),
                    vec![
                        step(
                            vec![
                                Edit::Body("body of d1".into()),
                                Edit::AddTag("x".into()),
                                Edit::AddTag("shared".into()),
                                Edit::Annotate(ann(6, "d1 later")),
                                Edit::Annotate(both.clone()),
                                Edit::Uda("k".into(), Some("from d1".into())),
                                Edit::Uda("only1".into(), Some("1".into())),
                                Edit::Link(derived(74)),
                            ],
                            "modify",
                            at(10),
                        ),
                        step(vec![Edit::AppendBody("more of d1".into())], "append", at(12)),
                    ],
                ),
                (
                    actor(0xd2),
                    vec![step(
                        vec![
                            Edit::Body("body of d2".into()),
                            Edit::AddTag("y".into()),
                            Edit::AddTag("shared".into()),
                            Edit::Annotate(ann(2, "d2 earlier")),
                            Edit::Annotate(both),
                            Edit::Uda("k".into(), Some("from d2".into())),
                            Edit::Link(derived(75)),
                        ],
                        "modify",
                        at(11),
                    )],
                ),
            ],
            resolves: vec![
                // No body renders so: nothing to do.
                ("body", "neither".into(), at(19)),
                ("body", "body of d2".into(), at(20)),
                ("tags", String::new(), at(21)),
                ("links", String::new(), at(22)),
                ("annotations", String::new(), at(23)),
                ("uda", String::new(), at(24)),
                ("tags", String::new(), at(25)),
            ],
        },
        Merge {
            name: "concurrent foreign scalars",
            id: scalars,
            base: concurrent_foreign_base(scalars),
            branches: vec![
                (actor(0xe1), vec![step(vec![Edit::Scheduled(Some(at(30)))], "modify", at(10))]),
                (actor(0xe2), vec![step(vec![Edit::AddTag("t".into())], "modify", at(11))]),
            ],
            resolves: vec![
                ("title", ScalarValue::F64(0.1).to_string(), at(20)),
                ("priority", "2".into(), at(21)),
                ("due", "8500000000000000".into(), at(22)),
                ("end", ScalarValue::F64(3.0).to_string(), at(23)),
                ("project", ScalarValue::F64(1e21).to_string(), at(24)),
                ("uda", String::new(), at(25)),
            ],
        },
    ]
}

fn edits_fixture() -> Json {
    let cases: Vec<Json> = creation_cases().iter().chain(edit_cases().iter()).map(run_case).collect();
    let merges: Vec<Json> = scalar_merges().iter().chain(clash_merges().iter()).map(run_merge).collect();
    json!({ "cases": cases, "merges": merges })
}

#[test]
fn edits_fixture_is_current() {
    check("edits.json", &edits_fixture());
}

// ---------------------------------------------------------------------------
// views.json: the hub's readings of the same documents
// ---------------------------------------------------------------------------

fn changes_of(list: &Json) -> Vec<Change> {
    list.as_array()
        .expect("a list of changes")
        .iter()
        .map(|c| {
            let bytes = STANDARD.decode(c.as_str().expect("base64")).expect("base64");
            Change::from_bytes(bytes).expect("a change")
        })
        .collect()
}

fn views_fixture() -> Json {
    let edits = edits_fixture();
    let mut docs = Vec::new();
    let mut add = |name: &Json, id: NodeId, changes: Vec<Change>| {
        let mut doc = NodeDoc::empty(&actor(0xee));
        assert!(doc.apply(changes).expect("apply").is_empty());
        let view = heph_engine::sync::frame::DocView::read(&doc, id);
        // As text, so the file keeps the wire's key order.
        let view = serde_json::to_string(&view).expect("serialises");
        docs.push(json!({ "name": name, "id": id.to_hex(), "bytes": STANDARD.encode(doc.save()), "view": view }));
    };
    for c in edits["cases"].as_array().expect("cases") {
        let id = NodeId::parse(c["create"]["node"]["id"].as_str().expect("an id")).expect("an id");
        add(&c["name"], id, changes_of(&c["changes"]));
    }
    for m in edits["merges"].as_array().expect("merges") {
        let id = NodeId::parse(m["id"].as_str().expect("an id")).expect("an id");
        let mut changes = changes_of(&m["base"]);
        for b in m["branches"].as_array().expect("branches") {
            changes.extend(changes_of(&b["changes"]));
        }
        add(&m["name"], id, changes);
    }
    json!({ "docs": docs })
}

#[test]
fn views_fixture_is_current() {
    check("views.json", &views_fixture());
}
