//! The filter language's parsing; what rows it selects is checked against
//! Taskwarrior itself (cli/tests/taskwarrior_conformance.rs) and by the web
//! fixtures (engine/tests/web_grammar_fixtures.rs).

use super::*;
use chrono::TimeZone;

fn clock() -> Clock {
    Clock::in_zone(Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap(), "Europe/Berlin").unwrap()
}

fn parse(line: &str) -> Result<Filter, FilterError> {
    Filter::parse(&line.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>(), &clock())
}

fn expr(line: &str) -> Expr {
    parse(line).unwrap().expr
}

fn tag(t: &str) -> Expr {
    Expr::Tag(t.into())
}

#[test]
fn words_split_at_spaces_and_parentheses() {
    let quoted = ["( +a or +b ) and x", "(+c)", "f(x)", "((+d))", "!+e", "!(+f)", "(!+g)", "!"];
    let got = tokens(&quoted);
    let want = "( +a or +b ) and x ( +c ) f(x) ( ( +d ) ) ! +e ! ( +f ) ( ! +g ) !";
    assert_eq!(got.join(" "), want);
    assert_eq!(expr("!+work"), Expr::Not(Box::new(tag("work"))));
}

#[test]
fn a_pair_given_with_spaces_stays_whole() {
    let words =
        ["project:My Proj", " description.is:Call mom ", "( project:a b )", "+x or y", "a:b c", "!project:Our Home"];
    let got = tokens(&words);
    let want = [
        "project:My Proj",
        "description.is:Call mom",
        "(",
        "project:a",
        "b",
        ")",
        "+x",
        "or",
        "y",
        "a:b c",
        "!",
        "project:Our Home",
    ];
    assert_eq!(got, want);
    let Expr::Compare { attr, value, .. } = parse_words(&["project:My Proj"]) else { panic!() };
    assert_eq!((attr, value), (Attr::Project, Value::Text("my proj".into())));
}

fn parse_words(words: &[&str]) -> Expr {
    Filter::parse(words, &clock()).unwrap().expr
}

#[test]
fn precedence_is_not_and_or_xor() {
    assert_eq!(expr("+a or +b +c"), Expr::Or(vec![tag("a"), Expr::And(vec![tag("b"), tag("c")])]));
    assert_eq!(expr("+a xor +b or +c"), Expr::Xor(Box::new(tag("a")), Box::new(Expr::Or(vec![tag("b"), tag("c")]))));
    assert_eq!(expr("+a or +b xor +c"), Expr::Xor(Box::new(Expr::Or(vec![tag("a"), tag("b")])), Box::new(tag("c"))));
    assert_eq!(expr("( +a or +b ) and +c"), Expr::And(vec![Expr::Or(vec![tag("a"), tag("b")]), tag("c")]));
    assert_eq!(expr("not +a +b"), Expr::And(vec![Expr::Not(Box::new(tag("a"))), tag("b")]));
    assert_eq!(expr("-a"), Expr::Not(Box::new(tag("a"))));
    assert_eq!(expr("-5"), Expr::Word("-5".into()));
}

#[test]
fn defaults_follow_what_the_filter_mentions() {
    let plain = parse("+work").unwrap();
    assert!(plain.open_only && !plain.deleted && plain.kinds == vec![NodeKind::Task]);
    let status = parse("status:done").unwrap();
    assert!(!status.open_only && status.kinds == vec![NodeKind::Task]);
    let deleted = parse("+DELETED").unwrap();
    assert!(deleted.deleted && !deleted.open_only);
    let kind = parse("kind:note").unwrap();
    assert!(!kind.open_only && kind.kinds.is_empty());
    // +ACTIVE is within the default report; it does not lift it.
    assert!(parse("+ACTIVE").unwrap().open_only);
}

#[test]
fn attributes_modifiers_and_abbreviations() {
    let Expr::Compare { attr, op, .. } = expr("proj.startswith:ho") else { panic!() };
    assert_eq!((attr, op), (Attr::Project, Op::StartsWith));
    let Expr::Compare { attr, op, .. } = expr("sched.below:eom") else { panic!() };
    assert_eq!((attr, op), (Attr::Scheduled, Op::Before));
    let Expr::Compare { attr, .. } = expr("estimate.any:") else { panic!() };
    assert_eq!(attr, Attr::Uda("estimate".into()));
    assert_eq!(parse("estimate:3h").unwrap().udas(), vec!["estimate".to_string()]);
    assert!(parse("recur:weekly").unwrap().udas().is_empty());
    // Taskwarrior's `=` on a date is the same local day: Berlin's midnight is 23:00 UTC.
    let Expr::Compare { value: Value::Date { day_start, day_end, .. }, .. } = expr("due:2027-07-01") else { panic!() };
    let summer = Utc.with_ymd_and_hms(2027, 6, 30, 22, 0, 0).unwrap().timestamp_millis();
    assert_eq!((day_start, day_end), (summer, summer + 86_400_000));
}

#[test]
fn unknown_things_are_errors_that_name_them() {
    let err = |line: &str| parse(line).unwrap_err().to_string();
    assert!(err("due.soon:x").contains("\"soon\""));
    assert!(err("scheduled.has:x").contains("a date takes"));
    assert!(err("( +a").contains("never closed"));
    assert!(err("+a )").contains("closes nothing"));
    assert!(err("and +a").contains("needs a term"));
    // Nesting is bounded: a pasted wall of parentheses is an error, not a stack overflow.
    let deep = format!("{} +a {}", "( ".repeat(100_000), ") ".repeat(100_000));
    assert!(err(&deep).contains("more than 64 deep"));
    assert!(err(&"not ".repeat(100_000)).contains("more than 64 deep"));
    let fine = format!("{} +a {}", "( ".repeat(60), ") ".repeat(60));
    assert!(parse(&fine).is_ok());
    assert!(err("status:frob").contains("\"frob\""));
    assert!(err("pri:X").contains("priority"));
    assert!(err("urgency.over:x").contains("not a number"));
    assert_eq!(expr("foo-bar:1"), Expr::Word("foo-bar:1".into()));
    // Text that merely contains a colon is a title word.
    assert_eq!(expr("https://example.org"), Expr::Word("https://example.org".into()));
    assert_eq!(expr("10:30"), Expr::Word("10:30".into()));
}

#[test]
fn bounds_follow_the_zone() {
    let b = Bounds::at(&clock());
    let t = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp_millis();
    assert_eq!(b.days, [t(2026, 11, 23, 23), t(2026, 11, 24, 23), t(2026, 11, 25, 23), t(2026, 11, 26, 23)]);
    assert_eq!(b.week, (t(2026, 11, 22, 23), t(2026, 11, 29, 23)));
    assert_eq!(b.quarter, (t(2026, 9, 30, 22), t(2026, 12, 31, 23)));
    assert_eq!(b.year, (t(2025, 12, 31, 23), t(2026, 12, 31, 23)));
}

#[test]
fn tags_match_ignoring_case_whoever_wrote_the_filter() {
    let mut node = crate::Node::new(crate::NodeId::random(), NodeKind::Task, "t".into(), clock().now);
    node.tags.insert("Work".into());
    let row = NodeSummary::of(&node, Vec::new());
    let now = clock().now.timestamp_millis();
    assert!(parse("+work").unwrap().matches(&row, now, None));
    // A filter built elsewhere (an older client over RPC) may hold any case.
    let mut sent = parse("+work").unwrap();
    sent.expr = Expr::Tag("WORK".into());
    assert!(sent.matches(&row, now, None));
}
