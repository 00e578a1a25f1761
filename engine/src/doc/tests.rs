//! The layout's promises: one genesis per id, nothing lost to concurrent
//! containers, lenient reading of foreign documents.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::{DocError, Edit, NodeDoc};
use crate::id::NodeId;
use crate::node::{Annotation, Node, NodeKind, Priority};

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn later(minutes: i64) -> DateTime<Utc> {
    now() + chrono::Duration::minutes(minutes)
}

/// Two replicas of one new node: `a` made it, `b` received its changes.
fn two_replicas(kind: NodeKind) -> (Node, NodeDoc, NodeDoc) {
    let node = Node::new(NodeId::random(), kind, "t".into(), now());
    let (a, changes) = NodeDoc::create(&node, &actor(1), "add").unwrap();
    let mut b = NodeDoc::empty(&actor(2));
    assert!(b.apply(changes).unwrap().is_empty());
    (node, a, b)
}

/// Exchanges every change both ways.
fn exchange(a: &mut NodeDoc, b: &mut NodeDoc) {
    let from_a = a.changes();
    let from_b = b.changes();
    assert!(a.apply(from_b).unwrap().is_empty());
    assert!(b.apply(from_a).unwrap().is_empty());
}

fn ann(minutes: i64, text: &str) -> Annotation {
    Annotation { entry: later(minutes), description: text.into() }
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
    let (doc, changes) = NodeDoc::create(&node, &actor(1), "add").unwrap();
    assert_eq!(doc.materialise().unwrap(), node);
    assert_eq!(doc.materialise_as(node.id).unwrap(), node);
    // Two changes: the shared genesis, then the content by the device.
    assert_eq!(changes.len(), 2);
    let (_, genesis) = NodeDoc::genesis(node.id, NodeKind::Task).unwrap();
    assert_eq!(changes[0].raw_bytes(), genesis.raw_bytes());
    assert_eq!(changes[0].message(), Some("genesis"));
    assert_eq!(changes[1].message(), Some("add"));
    assert_eq!(changes[1].actor_id(), &actor(1));
    assert_eq!(changes[1].deps(), vec![genesis.hash()]);
    assert!(doc.conflicts(node.id).unwrap().is_empty());
    // History shows what a device did, not the shared genesis.
    let history: Vec<String> = doc.history().into_iter().map(|h| h.message).collect();
    assert_eq!(history, ["add"]);
    // Sub-millisecond times are stored at millisecond precision; annotations
    // read back in time order.
    let mut precise = node.clone();
    precise.due = Some(now() + chrono::Duration::nanoseconds(1_234_567));
    precise.modified = now() + chrono::Duration::nanoseconds(999_999);
    precise.annotations.insert(0, ann(5, "later one first"));
    let (doc, _) = NodeDoc::create(&precise, &actor(1), "add").unwrap();
    assert_eq!(doc.materialise().unwrap(), precise.normalised());
    assert_eq!(doc.materialise().unwrap().annotations[1].description, "later one first");
}

#[test]
fn genesis_is_identical_for_one_id_and_differs_between_ids() {
    let id = NodeId::random();
    let (_, a) = NodeDoc::genesis(id, NodeKind::Task).unwrap();
    let (_, b) = NodeDoc::genesis(id, NodeKind::Task).unwrap();
    assert_eq!(a.raw_bytes(), b.raw_bytes());
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.timestamp(), 0);
    assert_eq!(a.actor_id().to_bytes(), NodeId::derived(&format!("heph/genesis/{}", id.to_hex())).as_bytes());
    let (_, other) = NodeDoc::genesis(NodeId::random(), NodeKind::Task).unwrap();
    assert_ne!(a.hash(), other.hash());
    let (_, note) = NodeDoc::genesis(id, NodeKind::Note).unwrap();
    assert_ne!(a.hash(), note.hash());
    // Every container is there, and nothing but id and kind besides.
    let (doc, _) = NodeDoc::genesis(id, NodeKind::Task).unwrap();
    let keys: Vec<String> = doc.doc.keys(ROOT).collect();
    assert_eq!(keys, ["annotations", "body", "depends", "id", "kind", "links", "tags", "uda"]);
    for (key, ty) in super::CONTAINER_FIELDS {
        assert!(matches!(doc.doc.get(ROOT, *key).unwrap(), Some((automerge::Value::Object(t), _)) if t == *ty));
    }
    // Later edits are never made as the genesis actor.
    assert_ne!(doc.doc.get_actor(), a.actor_id());
}

#[test]
fn journal_genesis_is_identical_everywhere() {
    let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let (doc, a) = NodeDoc::journal_genesis(day).unwrap();
    let (_, b) = NodeDoc::journal_genesis(day).unwrap();
    assert_eq!(a.raw_bytes(), b.raw_bytes());
    let (_, next) = NodeDoc::journal_genesis(day.succ_opt().unwrap()).unwrap();
    assert_ne!(a.hash(), next.hash());
    let node = doc.materialise().unwrap();
    assert_eq!(
        (node.id, node.kind, node.title.as_str(), node.date),
        (NodeId::journal(day), NodeKind::Journal, "2026-11-25", Some(day))
    );
    assert_eq!(node.created, Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap());
    // Creating the day's node by hand takes the same genesis (one id, one
    // genesis) and adds nothing when it says nothing more.
    let mut draft = Node::new(NodeId::journal(day), NodeKind::Journal, day.to_string(), node.created);
    draft.date = Some(day);
    let (_, changes) = NodeDoc::create(&draft, &actor(1), "journal").unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].hash(), a.hash());
}

#[test]
fn concurrent_first_writes_into_every_container_all_survive() {
    let (node, mut a, mut b) = two_replicas(NodeKind::Task);
    let (la, lb, da, db) = (NodeId::random(), NodeId::random(), NodeId::random(), NodeId::random());
    let edits_a = [
        Edit::Annotate(ann(1, "from a")),
        Edit::Uda("estimate".into(), Some("2h".into())),
        Edit::AddTag("alpha".into()),
        Edit::Link(la),
        Edit::Depend(da),
        Edit::AppendBody("body a".into()),
    ];
    let edits_b = [
        Edit::Annotate(ann(2, "from b")),
        Edit::Uda("owner".into(), Some("sam".into())),
        Edit::AddTag("beta".into()),
        Edit::Link(lb),
        Edit::Depend(db),
        Edit::AppendBody("body b".into()),
    ];
    a.edit(&edits_a, "modify", later(1)).unwrap().unwrap();
    b.edit(&edits_b, "modify", later(2)).unwrap().unwrap();
    exchange(&mut a, &mut b);
    for doc in [&a, &b] {
        let n = doc.materialise_as(node.id).unwrap();
        let texts: Vec<&str> = n.annotations.iter().map(|x| x.description.as_str()).collect();
        assert_eq!(texts, ["from a", "from b"]);
        assert_eq!(n.uda.get("estimate").map(String::as_str), Some("2h"));
        assert_eq!(n.uda.get("owner").map(String::as_str), Some("sam"));
        assert!(n.tags.contains("alpha") && n.tags.contains("beta"));
        assert!(n.links.contains(&la) && n.links.contains(&lb));
        assert!(n.depends.contains(&da) && n.depends.contains(&db));
        assert!(n.body.contains("body a") && n.body.contains("body b"), "{:?}", n.body);
        assert!(n.extra.is_empty(), "{:?}", n.extra);
        assert!(doc.conflicts(node.id).unwrap().is_empty());
    }
    assert_eq!(a.materialise().unwrap(), b.materialise().unwrap());
}

#[test]
fn concurrent_sets_are_conflicts_and_resolve() {
    let (node, mut a, mut b) = two_replicas(NodeKind::Task);
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
    // Nothing to resolve: nothing written.
    assert!(a.resolve("title", "from a", now()).unwrap().is_none());
}

#[test]
fn the_same_value_set_concurrently_is_no_conflict() {
    let (node, mut a, mut b) = two_replicas(NodeKind::Task);
    a.edit(&[Edit::Project(Some("home".into()))], "modify", later(1)).unwrap().unwrap();
    b.edit(&[Edit::Project(Some("home".into()))], "modify", later(2)).unwrap().unwrap();
    exchange(&mut a, &mut b);
    assert!(a.conflicts(node.id).unwrap().is_empty());
    assert_eq!(a.materialise().unwrap().project.as_deref(), Some("home"));
}

#[test]
fn concurrent_body_appends_both_survive() {
    let (_, mut a, mut b) = two_replicas(NodeKind::Note);
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
    let (mut a, created) = NodeDoc::create(&node, &actor(1), "add").unwrap();
    let c2 = a.edit(&[Edit::Title("2".into())], "m", now()).unwrap().unwrap();
    let mut b = NodeDoc::empty(&actor(2));
    let waiting = b.apply(vec![c2.clone()]).unwrap();
    assert_eq!(waiting.len(), 1);
    let mut all = created;
    all.push(c2);
    let waiting = b.apply(all).unwrap();
    assert!(waiting.is_empty());
    assert_eq!(b.materialise().unwrap().title, "2");
}

/// A document as heph made them before every node had a genesis: a first
/// change without containers, then two devices each creating every
/// container concurrently with one item in it.
fn old_style(id: NodeId) -> NodeDoc {
    let mut base = Automerge::new().with_actor(actor(1));
    let mut tx = base.transaction();
    tx.put(ROOT, "id", id.to_hex()).unwrap();
    tx.put(ROOT, "kind", "task").unwrap();
    tx.put(ROOT, "title", "old").unwrap();
    tx.put(ROOT, "created", ScalarValue::Timestamp(now().timestamp_millis())).unwrap();
    tx.commit();
    let mut a = base.fork().with_actor(actor(2));
    let mut b = base.fork().with_actor(actor(3));
    for (doc, who, minutes) in [(&mut a, "a", 1), (&mut b, "b", 2)] {
        let mut tx = doc.transaction();
        let list = tx.put_object(ROOT, "annotations", ObjType::List).unwrap();
        let item = tx.insert_object(&list, 0, ObjType::Map).unwrap();
        tx.put(&item, "entry", ScalarValue::Timestamp(later(minutes).timestamp_millis())).unwrap();
        tx.put(&item, "description", format!("from {who}")).unwrap();
        let uda = tx.put_object(ROOT, "uda", ObjType::Map).unwrap();
        tx.put(&uda, format!("uda_{who}"), who).unwrap();
        let tags = tx.put_object(ROOT, "tags", ObjType::Map).unwrap();
        tx.put(&tags, format!("tag_{who}"), true).unwrap();
        let body = tx.put_object(ROOT, "body", ObjType::Text).unwrap();
        tx.splice_text(&body, 0, 0, &format!("body {who}")).unwrap();
        tx.commit();
    }
    a.merge(&mut b).unwrap();
    NodeDoc { doc: a }
}

#[test]
fn old_style_clashes_read_as_union_and_resolve_merges() {
    let id = NodeId::random();
    let mut doc = old_style(id);
    let n = doc.materialise_as(id).unwrap();
    let texts: Vec<&str> = n.annotations.iter().map(|x| x.description.as_str()).collect();
    assert_eq!(texts, ["from a", "from b"]);
    assert_eq!(n.uda.get("uda_a").map(String::as_str), Some("a"));
    assert_eq!(n.uda.get("uda_b").map(String::as_str), Some("b"));
    assert!(n.tags.contains("tag_a") && n.tags.contains("tag_b"));
    // The body is the text Automerge shows; the other is in the conflict.
    let shown = match doc.doc.get(ROOT, "body").unwrap() {
        Some((_, obj)) => doc.doc.text(&obj).unwrap(),
        None => panic!("no body"),
    };
    assert_eq!(n.body, shown);
    assert!(n.extra.is_empty(), "{:?}", n.extra);

    let conflicts = doc.conflicts(id).unwrap();
    let fields: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["body", "tags", "annotations", "uda"]);
    let body = &conflicts[0];
    assert_eq!(body.values.len(), 2);
    assert_eq!(body.values[0], shown);
    assert!(body.values.contains(&"body a".to_string()) && body.values.contains(&"body b".to_string()));
    assert!(conflicts[1].values.contains(&"tag_a".to_string()));

    // Edits on a clashed container act where they must: a removed tag leaves
    // the union even though it lives in the map that is not shown.
    let hidden_tag = if n.tags.contains("tag_a") && conflicts[1].values[0] == "tag_a" { "tag_b" } else { "tag_a" };
    doc.edit(&[Edit::RemoveTag(hidden_tag.into())], "modify", later(3)).unwrap().unwrap();
    assert!(!doc.materialise_as(id).unwrap().tags.contains(hidden_tag));
    doc.edit(&[Edit::AddTag(hidden_tag.into())], "modify", later(3)).unwrap().unwrap();

    // Resolving merges every container; the body keeps the chosen text.
    let other_body = body.values[1].clone();
    for c in &conflicts {
        let value = if c.field == "body" { other_body.clone() } else { c.values[0].clone() };
        doc.resolve(&c.field, &value, later(4)).unwrap().unwrap();
    }
    assert!(doc.conflicts(id).unwrap().is_empty(), "{:?}", doc.conflicts(id).unwrap());
    let after = doc.materialise_as(id).unwrap();
    assert_eq!(after.annotations, n.annotations);
    assert_eq!(after.uda, n.uda);
    assert_eq!(after.tags, n.tags);
    assert_eq!(after.body, other_body);
    // The merged containers take edits like any other.
    doc.edit(&[Edit::Annotate(ann(9, "after"))], "annotate", later(9)).unwrap().unwrap();
    assert_eq!(doc.materialise_as(id).unwrap().annotations.len(), 3);
}

#[test]
fn concurrent_resolves_clash_again_and_still_read_as_the_union() {
    let id = NodeId::random();
    let mut a = old_style(id);
    let mut b = NodeDoc { doc: a.doc.fork().with_actor(actor(4)) };
    let before = a.materialise_as(id).unwrap();
    a.resolve("annotations", "", later(5)).unwrap().unwrap();
    b.resolve("annotations", "", later(5)).unwrap().unwrap();
    exchange(&mut a, &mut b);
    assert_eq!(a.materialise_as(id).unwrap().annotations, before.annotations);
    assert!(a.conflicts(id).unwrap().iter().any(|c| c.field == "annotations"));
    a.resolve("annotations", "", later(6)).unwrap().unwrap();
    assert!(!a.conflicts(id).unwrap().iter().any(|c| c.field == "annotations"));
    assert_eq!(a.materialise_as(id).unwrap().annotations, before.annotations);
}

/// A document another program wrote: only the keys given by `fill`.
fn foreign(fill: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> NodeDoc {
    let mut doc = Automerge::new().with_actor(actor(7));
    let mut tx = doc.transaction();
    fill(&mut tx);
    tx.commit();
    doc.set_actor(actor(8));
    NodeDoc { doc }
}

#[test]
fn a_foreign_task_without_id_or_containers_reads_and_takes_edits() {
    let id = NodeId::random();
    let mut doc = foreign(|tx| {
        tx.put(ROOT, "kind", "task").unwrap();
        tx.put(ROOT, "title", "from elsewhere").unwrap();
    });
    assert!(matches!(doc.materialise(), Err(DocError::NotANode { .. })));
    let n = doc.materialise_as(id).unwrap();
    assert_eq!((n.id, n.kind, n.title.as_str()), (id, NodeKind::Task, "from elsewhere"));
    assert!(n.extra.is_empty());
    doc.edit(
        &[Edit::AddTag("x".into()), Edit::Annotate(ann(1, "noted")), Edit::AppendBody("text".into())],
        "modify",
        later(1),
    )
    .unwrap()
    .unwrap();
    let n = doc.materialise_as(id).unwrap();
    assert!(n.tags.contains("x"));
    assert_eq!(n.annotations, [ann(1, "noted")]);
    assert_eq!(n.body, "text\n");
    // An id field naming another node is an error, not a silent mix-up.
    let other = foreign(|tx| {
        tx.put(ROOT, "id", NodeId::random().to_hex()).unwrap();
        tx.put(ROOT, "kind", "note").unwrap();
    });
    assert!(matches!(other.materialise_as(id), Err(DocError::NotANode { .. })));
}

#[test]
fn an_unknown_or_missing_kind_is_not_a_node() {
    let id = NodeId::random();
    let project = foreign(|tx| {
        tx.put(ROOT, "kind", "project").unwrap();
        tx.put(ROOT, "title", "t").unwrap();
    });
    match project.materialise_as(id) {
        Err(DocError::NotANode { id: got, reason }) => {
            assert_eq!(got, id);
            assert_eq!(reason, "kind \"project\" is not one this heph knows");
        }
        other => panic!("{other:?}"),
    }
    let none = foreign(|tx| tx.put(ROOT, "title", "t").unwrap());
    assert!(matches!(none.materialise_as(id), Err(DocError::NotANode { .. })));
    let number = foreign(|tx| tx.put(ROOT, "kind", 3).unwrap());
    assert!(matches!(number.materialise_as(id), Err(DocError::NotANode { .. })));
}

#[test]
fn wrong_types_and_unknown_keys_read_into_extra() {
    let id = NodeId::random();
    let mut doc = foreign(|tx| {
        tx.put(ROOT, "kind", "task").unwrap();
        tx.put(ROOT, "title", 42).unwrap();
        tx.put(ROOT, "due", "tomorrow").unwrap();
        tx.put(ROOT, "status", "bogus").unwrap();
        let tags = tx.put_object(ROOT, "tags", ObjType::List).unwrap();
        tx.insert(&tags, 0, "a").unwrap();
        tx.insert(&tags, 1, "b").unwrap();
        tx.put(ROOT, "colour", "blue").unwrap();
        tx.put(ROOT, "seen", ScalarValue::Timestamp(now().timestamp_millis())).unwrap();
        let nested = tx.put_object(ROOT, "meta", ObjType::Map).unwrap();
        let list = tx.put_object(&nested, "xs", ObjType::List).unwrap();
        tx.insert(&list, 0, 1.5).unwrap();
        tx.insert(&list, 1, true).unwrap();
        // A double the default JSON float parser reads back one step off.
        tx.insert(&list, 2, 1.071_566_039_146_582_6e-75).unwrap();
        let uda = tx.put_object(ROOT, "uda", ObjType::Map).unwrap();
        tx.put(&uda, "points", 3).unwrap();
        tx.put(&uda, "owner", "sam").unwrap();
        // A JavaScript writer's plain string becomes text: still a title-like value.
        let project = tx.put_object(ROOT, "project", ObjType::Text).unwrap();
        tx.splice_text(&project, 0, 0, "home").unwrap();
    });
    let n = doc.materialise_as(id).unwrap();
    assert_eq!(n.title, "");
    assert_eq!((n.due, n.status), (None, None));
    assert!(n.tags.is_empty());
    assert_eq!(n.project.as_deref(), Some("home"));
    assert_eq!(n.uda.get("owner").map(String::as_str), Some("sam"));
    let expected = serde_json::json!({
        "title": 42,
        "due": "tomorrow",
        "status": "bogus",
        "tags": ["a", "b"],
        "colour": "blue",
        "seen": now().to_rfc3339(),
        "meta": {"xs": [1.5, true, 1.071_566_039_146_582_6e-75]},
        "uda.points": 3,
    });
    assert_eq!(serde_json::to_value(&n.extra).unwrap(), expected);
    // It round-trips through JSON as part of the node.
    let back: Node = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
    assert_eq!(back, n);
    // Edits write around what they cannot read: a title replaces the int
    // (the user means it), a list of tags becomes the set with nothing lost.
    doc.edit(&[Edit::Title("named".into()), Edit::AddTag("c".into())], "modify", later(1)).unwrap().unwrap();
    let n = doc.materialise_as(id).unwrap();
    assert_eq!(n.title, "named");
    assert_eq!(n.tags.iter().map(String::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(!n.extra.contains_key("tags") && !n.extra.contains_key("title"));
}

#[test]
fn an_edit_never_overwrites_a_value_it_cannot_read() {
    let id = NodeId::random();
    let mut doc = foreign(|tx| {
        tx.put(ROOT, "kind", "task").unwrap();
        tx.put(ROOT, "annotations", 7).unwrap();
    });
    let err = doc.edit(&[Edit::Annotate(ann(1, "x"))], "annotate", later(1)).unwrap_err();
    assert!(matches!(err, DocError::Occupied { ref field, .. } if field == "annotations"), "{err}");
    assert_eq!(doc.materialise_as(id).unwrap().extra.get("annotations"), Some(&serde_json::json!(7)));
}

#[test]
fn deep_foreign_values_render_with_a_cap() {
    let id = NodeId::random();
    let doc = foreign(|tx| {
        tx.put(ROOT, "kind", "note").unwrap();
        let mut obj = tx.put_object(ROOT, "deep", ObjType::Map).unwrap();
        for _ in 0..40 {
            obj = tx.put_object(&obj, "x", ObjType::Map).unwrap();
        }
        let wide = tx.put_object(ROOT, "wide", ObjType::List).unwrap();
        for i in 0..2000 {
            tx.insert(&wide, i, i64::try_from(i).unwrap()).unwrap();
        }
    });
    let n = doc.materialise_as(id).unwrap();
    let deep = serde_json::to_string(&n.extra["deep"]).unwrap();
    assert!(deep.contains("nested deeper than"), "{deep}");
    let wide = n.extra["wide"].as_array().unwrap();
    assert!(wide.len() <= 1001);
    assert_eq!(wide.last(), Some(&serde_json::json!("(more values not shown)")));
}

#[test]
fn create_derived_is_identical_on_two_devices() {
    let mut node = Node::new(NodeId::random(), NodeKind::Task, "Imported".into(), now());
    node.tags.insert("tw".into());
    node.annotations.push(ann(1, "from taskwarrior"));
    node.uda.insert("estimate".into(), "1h".into());
    let (mut a, ca) = NodeDoc::create_derived(&node, "import").unwrap();
    let (mut b, cb) = NodeDoc::create_derived(&node, "import").unwrap();
    let hashes = |cs: &[automerge::Change]| cs.iter().map(automerge::Change::hash).collect::<Vec<_>>();
    assert_eq!(hashes(&ca), hashes(&cb));
    assert_eq!(ca.len(), 2);
    // The two devices hold one document: their edits merge with nothing lost.
    a.set_actor(&actor(1));
    b.set_actor(&actor(2));
    a.edit(&[Edit::Annotate(ann(2, "on a"))], "annotate", later(2)).unwrap().unwrap();
    b.edit(&[Edit::Annotate(ann(3, "on b"))], "annotate", later(3)).unwrap().unwrap();
    exchange(&mut a, &mut b);
    assert_eq!(a.materialise().unwrap().annotations.len(), 3);
    assert!(a.conflicts(node.id).unwrap().is_empty());
    // A different record for the same id is a different, merely concurrent,
    // change: both documents still merge.
    let mut changed = node.clone();
    changed.title = "Imported, edited".into();
    let (_, cc) = NodeDoc::create_derived(&changed, "import").unwrap();
    assert_eq!(cc[0].hash(), ca[0].hash());
    assert_ne!(cc[1].hash(), ca[1].hash());
    assert!(a.apply(cc).unwrap().is_empty());
    let titles = a.conflicts(node.id).unwrap();
    assert_eq!(titles.len(), 1);
    assert_eq!(titles[0].field, "title");
}

/// The hub appends received changes to a document's stored bytes instead of
/// saving it again: a saved document followed by change chunks must load
/// whole, both ways a document is loaded.
#[test]
fn saved_document_followed_by_changes_loads_whole() {
    let actor = ActorId::random();
    let node = Node::new(NodeId::random(), NodeKind::Task, "one".into(), chrono::Utc::now());
    let (mut doc, _) = NodeDoc::create(&node, &actor, "add").unwrap();
    let saved = doc.save();
    let c1 = doc.edit(&[Edit::Title("two".into())], "e", chrono::Utc::now()).unwrap().unwrap();
    let c2 = doc.edit(&[Edit::Title("three".into())], "e", chrono::Utc::now()).unwrap().unwrap();
    let mut bytes = saved.clone();
    bytes.extend_from_slice(c1.raw_bytes());
    bytes.extend_from_slice(c2.raw_bytes());
    crate::limits::check(&bytes, crate::limits::MAX_INFLATED_BYTES).unwrap();
    let loaded = NodeDoc::load(&bytes, &actor).unwrap();
    assert_eq!(loaded.heads(), doc.heads());
    assert_eq!(loaded.materialise().unwrap().title, "three");
    let mut other = NodeDoc::empty(&actor);
    other.merge_bytes(&bytes).unwrap();
    assert_eq!(other.heads(), doc.heads());
    let l2 = crate::limits::load_document(&bytes).unwrap();
    assert_eq!(l2.get_heads(), doc.heads());
}
