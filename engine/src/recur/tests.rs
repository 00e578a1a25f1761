use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn clock(now: &str) -> Clock {
    Clock::in_zone(utc(now), "UTC").unwrap()
}

fn template(recur: &str, due: &str) -> Node {
    let id = NodeId::parse("0123456789abcdef0123456789abcdef").unwrap();
    let mut t = Node::new(id, NodeKind::Task, "Pay rent".into(), utc("2026-01-01T10:00:00Z"));
    t.due = Some(utc(due));
    t.project = Some("home".into());
    t.tags.insert("bills".into());
    t.uda.insert(RECUR.into(), recur.into());
    t
}

fn dues(p: &Plan) -> Vec<String> {
    p.create.iter().map(|n| n.due.unwrap().format("%F").to_string()).collect()
}

#[test]
fn makes_the_missed_occurrences_and_one_ahead() {
    let t = template("weekly", "2026-11-02T09:00:00Z");
    let p = plan(&t, &BTreeMap::new(), &clock("2026-11-20T12:00:00Z"), 1).unwrap();
    assert_eq!(dues(&p), ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]);
    assert_eq!(p.mask, "----");
    assert!(!p.finished);
    let first = &p.create[0];
    assert_eq!(first.uda.get(PARENT).unwrap(), &t.id.to_uuid());
    assert_eq!(first.uda.get(IMASK).unwrap(), "0");
    assert!(!first.uda.contains_key(MASK));
    assert_eq!(first.uda.get(RECUR).unwrap(), "weekly");
    assert_eq!(first.project.as_deref(), Some("home"));
    assert!(is_template(&t) && !is_template(first));
    assert_eq!(parent_of(first), Some(t.id));
    assert_eq!(index_of(&p.create[3]), Some(3));
    assert_eq!(p.create[3].id, instance_id(t.id, 3));
    // Created when the one before it fell due, never before the template.
    assert_eq!(first.created, t.created);
    assert_eq!(p.create[2].created, utc("2026-11-09T09:00:00Z"));
    // A larger limit keeps more ahead.
    let p3 = plan(&t, &BTreeMap::new(), &clock("2026-11-20T12:00:00Z"), 3).unwrap();
    assert_eq!(p3.create.len(), 6);
}

#[test]
fn instances_are_a_pure_function_of_template_and_index() {
    let t = template("monthly", "2026-01-31T09:00:00Z");
    let a = plan(&t, &BTreeMap::new(), &clock("2026-04-01T00:00:00Z"), 1).unwrap();
    let b = plan(&t, &BTreeMap::new(), &clock("2026-04-02T00:00:00Z"), 1).unwrap();
    assert_eq!(a.create, b.create);
    assert_eq!(dues(&a), ["2026-01-31", "2026-02-28", "2026-03-28", "2026-04-28"]);
}

#[test]
fn the_mask_says_what_is_made_and_mends_from_the_instances() {
    let mut t = template("daily", "2026-11-20T09:00:00Z");
    t.uda.insert(MASK.into(), "---".into());
    // Instance 1 is done, 3 was made by another device whose mask change was lost.
    let known = BTreeMap::from([(0, '-'), (1, '+'), (3, '-')]);
    let p = plan(&t, &known, &clock("2026-11-23T12:00:00Z"), 1).unwrap();
    assert_eq!(dues(&p), ["2026-11-24"]);
    assert_eq!(p.mask, "-+---");
    assert!(p.changes(&t));
    // Nothing to do once the mask and the store agree.
    t.uda.insert(MASK.into(), "-+---".into());
    let known = BTreeMap::from([(0, '-'), (1, '+'), (3, '-'), (4, '-')]);
    let p = plan(&t, &known, &clock("2026-11-23T12:00:00Z"), 1).unwrap();
    assert!(!p.changes(&t), "{p:?}");
}

#[test]
fn until_bounds_the_series_and_finishes_the_template() {
    let mut t = template("daily", "2026-11-20T09:00:00Z");
    t.uda.insert(UNTIL.into(), "20261122T120000Z".into());
    let p = plan(&t, &BTreeMap::new(), &clock("2026-11-25T12:00:00Z"), 1).unwrap();
    assert_eq!(dues(&p), ["2026-11-20", "2026-11-21", "2026-11-22"]);
    assert!(!p.finished, "instances are pending");
    t.uda.insert(MASK.into(), "---".into());
    let known = BTreeMap::from([(0, '+'), (1, 'X'), (2, '+')]);
    let p = plan(&t, &known, &clock("2026-11-25T12:00:00Z"), 1).unwrap();
    assert_eq!(p.mask, "+X+");
    assert!(p.finished && p.create.is_empty());
}

#[test]
fn wait_and_scheduled_keep_their_distance_from_due() {
    let mut t = template("weekly", "2026-11-02T09:00:00Z");
    t.wait = Some(utc("2026-11-01T09:00:00Z"));
    t.scheduled = Some(utc("2026-10-31T09:00:00Z"));
    let p = plan(&t, &BTreeMap::new(), &clock("2026-11-03T12:00:00Z"), 1).unwrap();
    assert_eq!(p.mask, "WW");
    assert_eq!(p.create[1].wait, Some(utc("2026-11-08T09:00:00Z")));
    assert_eq!(p.create[1].scheduled, Some(utc("2026-11-07T09:00:00Z")));
}

#[test]
fn bad_templates_say_what_is_wrong() {
    let mut t = template("sometimes", "2026-11-02T09:00:00Z");
    let e = plan(&t, &BTreeMap::new(), &clock("2026-11-03T12:00:00Z"), 1).unwrap_err();
    assert!(e.to_string().contains("\"sometimes\""), "{e}");
    t.uda.insert(RECUR.into(), "weekly".into());
    t.due = None;
    assert_eq!(plan(&t, &BTreeMap::new(), &clock("2026-11-03T12:00:00Z"), 1), Err(RecurError::NoDue));
}

#[test]
fn a_short_period_long_ago_is_made_in_bounded_passes() {
    let t = template("61", "2026-01-01T00:00:00Z");
    let p = plan(&t, &BTreeMap::new(), &clock("2026-11-03T12:00:00Z"), 1).unwrap();
    assert_eq!(p.create.len(), MAX_PER_PASS);
}

#[test]
fn an_older_mask_does_not_forget_newer_instances() {
    assert_eq!(merge_masks("X--", "X"), "X--");
    assert_eq!(merge_masks("+-", "--"), "+-");
    assert_eq!(merge_masks("--", "+X-"), "+X-");
}
