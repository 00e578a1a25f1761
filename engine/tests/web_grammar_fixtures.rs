//! Fixtures for the browser app's quick-add grammar and task listing
//! (`web/src/when.ts`, `web/src/grammar.ts`, `web/src/query.ts`), which must
//! read what people type and list tasks exactly as `heph add` and `heph ls`
//! do. This test generates them from the engine and fails when the
//! checked-in files differ; `HEPH_BLESS=1` rewrites them. The inputs (lines,
//! tasks, filters) live here, so both sides share one set of cases.
//!
//! A "line" is split into words at Unicode whitespace (what a shell does to
//! an unquoted line), as the browser's quick-add and filter boxes do. Times
//! are RFC 3339 as serde writes them; `now` carries the user's UTC offset,
//! which anchors relative dates and local midnight.
//!
//! # `web/test/fixtures/quick-add.json`
//!
//! ```text
//! { "cases": [ {                 // parse_mods_with(words of line, now, udas)
//!     "now": RFC 3339, "line": text, "udas"?: [text],   // absent: none
//!     "ok": { "title": text | null, "edits": [Edit], "depends": [[bool, prefix]] }
//!       | "error": text } ],     // ModError's Display
//!   "when": [ {                  // parse_when(input, now), parse_day(input, now)
//!     "now": RFC 3339, "input": text,
//!     "ok": RFC 3339 (UTC), "day": "YYYY-MM-DD" | "error": text } ],
//!   "relative": [ { "t": RFC 3339, "now": RFC 3339, "text": text } ],   // relative(t, now)
//!   "display": [ { "t": RFC 3339, "now": RFC 3339, "text": text } ] }  // display(t, now)
//! ```
//!
//! # `web/test/fixtures/listing.json`
//!
//! ```text
//! { "now": RFC 3339,
//!   "nodes": [Node],             // as the store materialises them, in id order
//!   "cases": [ {                 // Filter::parse(words of filter, now), then
//!     "filter": text,            // Replica::list(filter, now, limit): `heph ls`
//!     "limit"?: number,
//!     "rows": [ { "id": hex, "urgency": number } ]   // in listing order
//!       | "error": text } ] }    // FilterError's Display
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use heph_engine::when::{display, relative};
use heph_engine::{
    Annotation, Filter, Node, NodeId, NodeKind, Priority, Replica, Status, parse_day, parse_mods_with, parse_when,
};
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------
// Writing and checking the files.
// ---------------------------------------------------------------------------

#[path = "support/web_fixture.rs"]
mod web_fixture;

/// Compares `fresh` with the checked-in file, or rewrites it when blessing.
fn check(name: &str, fresh: &Json) {
    web_fixture::check(name, fresh, "web_grammar_fixtures");
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).expect("serialises")
}

/// The words of a line, as the browser's quick-add and filter boxes split it.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn instant(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).expect("a fixed time")
}

// ---------------------------------------------------------------------------
// quick-add.json
// ---------------------------------------------------------------------------

/// A Friday morning east of UTC.
const FRIDAY: &str = "2026-11-27T09:15:00+01:00";
/// Late on the last day of a month, in UTC: month arithmetic clamps here.
const MONTH_END: &str = "2026-01-31T22:30:00Z";
/// Late on a leap day west of UTC: the local day is not the UTC day.
const LEAP_EVENING: &str = "2028-02-29T23:30:00-05:00";

/// Quick-add lines by the `now` they are read at.
const LINES: &[(&str, &[&str])] = &[
    (
        FRIDAY,
        &[
            "Call Ana due:fri +work pri:H",
            "Buy milk due:tomorrow +errand pri:H project:home",
            "",
            "   Buy   milk   ",
            "due:fri +x",
            "+only +tags",
            // Every named date.
            "a due:now",
            "a due:today",
            "a due:sod",
            "a due:eod",
            "a due:tomorrow",
            "a due:yesterday",
            "a due:sow",
            "a due:eow",
            "a due:som",
            "a due:eom",
            "a due:soy",
            "a due:eoy",
            "a due:later",
            "a due:Someday",
            "a due:TOMORROW",
            // Weekdays, from a Friday: `fri` is a week away.
            "a due:mon",
            "a due:tue",
            "a due:tues",
            "a due:wednesday",
            "a due:thurs",
            "a due:fri",
            "a due:friday",
            "a due:sat",
            "a due:Sun",
            // Months and ordinals.
            "a due:jan",
            "a due:nov",
            "a due:Dec",
            "a due:sept",
            "a due:march",
            "a due:1st",
            "a due:2nd",
            "a due:3rd",
            "a due:4th",
            "a due:11th",
            "a due:12th",
            "a due:13th",
            "a due:21st",
            "a due:22nd",
            "a due:23rd",
            "a due:27th",
            "a due:28th",
            "a due:31st",
            // Durations and expressions.
            "a due:3d",
            "a due:+3d",
            "a due:-2d",
            "a due:2w",
            "a due:2wks",
            "a due:1mo",
            "a due:2months",
            "a due:6mths",
            "a due:1y",
            "a due:1yr",
            "a due:4h",
            "a due:10hrs",
            "a due:30min",
            "a due:90s",
            "a due:3days",
            "a due:2weeks",
            "a due:now+3d",
            "a due:today+1w",
            "a due:eom-1d",
            "a due:1y-1d",
            "a due:tomorrow+9h-30min",
            "a due:fri+17h",
            "a due:0d",
            // Calendar stamps, local and exact.
            "a due:2026-12-24",
            "a due:20261224",
            "a due:2028-02-29",
            "a due:2026-12-24T14:00",
            "a due:2026-12-24T14:00:00",
            "a due:2026-12-24t14:05:09",
            "a due:2026-12-24T14:00:00Z",
            "a due:2026-12-24T14:00:00-05:00",
            "a due:2026-12-24T14:00:00.123456789+05:30",
            "a due:2026-12-24T14:00:00.5Z",
            "a due:20261224T140000Z",
            "a due:20261224t140000z",
            "a due:20261224T140000",
            "a due:2026-12-24T14:00-05:00",
            "a due:2026-12-24T14:00+0530",
            "a due:2026-12-24T14:00+05",
            "a due:2026-12-24T14:00z",
            "a due:2026-12-31T23:59:60Z",
            "a due:2026-1-5",
            "a due:2026113",
            "a due:0001-01-01",
            // Not real dates, unreadable ones, and ones too far away.
            "a due:2026-02-30",
            "a due:2026-13-01",
            "a due:2026-11-30T25:00",
            "a due:20260230",
            "a due:2026-11-31T10:00:00Z",
            "a due:2026-11-30T14:00:00+24:00",
            "a due:2026-11-30T14:00:00+05:60",
            "a due:frob",
            "a due:3m",
            "a due:32nd",
            "a due:0th",
            "a due:2st",
            "a due:in",
            "a due:++3d",
            "a due:today+tomorrow",
            "a due:-2026-11-30",
            "a due:2026-11-30+1d",
            "a due:1.5d",
            "a due:99999999999x",
            "a wait:99999999y",
            "a due:later+300000y",
            "a due:4294967296d",
            "a sched:-99999999mo",
            "a due:frob\"",
            // Other attributes, their aliases, and empty values that clear.
            "a wait:2w sched:mon",
            "a sch:eom scheduled:",
            "a wait: due: pri: project: pro:",
            "a pri:h",
            "a priority:M",
            "a pri:low",
            "a pri:l",
            "a pri:med",
            "a pri:HIGH",
            "a pri:Medium",
            "a pri:X",
            "a pri:\u{200b}",
            "a pri:\u{7}",
            "a status:done",
            "a status:completed",
            "a status:Started",
            "a status:canceled",
            "a status:cancelled",
            "a STATUS:waiting",
            "a status:pending",
            "a status:frob",
            "a status:",
            "a pro:home.garden proj:Work project:x:y",
            // Abbreviations of at least 3 letters that name one attribute.
            "a prio:H wai:tomorrow stat:done sche:today depe:abc proje:home",
            "Prio: Stat: and wai: stay words; sched: dep: clear",
            "a pr:H",
            "a st:done",
            "DUE:Fri PRI:h Project:Home Upper",
            // Dependencies.
            "a dep:abc,-def",
            "a depends:1234,,5678 dep:-abc",
            "a depends:",
            // Tags, and words that only look like tags.
            "a +work -old +café +a.b/c_d-e +٣ +5a",
            "a +5 -5 +123 + - +a:b -x:y",
            // `--` makes every later word title text.
            "Fix -- +not-a-tag due:tomorrow --",
            "-- --",
            // Text with colons stays in the title; an unknown attribute is an error.
            "see http://x.org at 10:30 re: (see:x) due",
            "see http://x.org foo:bar due",
            "a recurr:weekly",
            "a due.before:eow",
            "a -- foo:bar",
            "Café crème ☕ due:eom",
            "日本語のタスク +仕事",
            "Ωmega ΣΟΦΙΑ +ελλάδα",
        ],
    ),
    (
        MONTH_END,
        &[
            "a due:1mo",
            "a due:-1mo",
            "a due:eom",
            "a due:som",
            "a due:30th",
            "a due:31st",
            "a due:feb",
            "a due:jan",
            "a due:eow",
            "a due:sow",
            "a due:sat",
            "a due:tomorrow",
            "a due:1y",
            "a due:eoy+1d",
        ],
    ),
    (
        LEAP_EVENING,
        &[
            "a due:today",
            "a due:tomorrow",
            "a due:1y",
            "a due:4y",
            "a due:29th",
            "a due:eom",
            "a due:mar",
            "a due:tue",
            "a due:2028-03-01",
        ],
    ),
];

/// Inputs for `parse_when` itself: the quick-add box never passes whitespace,
/// but date fields do.
const WHEN: &[(&str, &[&str])] = &[
    (
        FRIDAY,
        &[
            "in 3 days",
            "In 2 Hours",
            "in\t3d",
            "3 days",
            "today + 1w",
            "eom - 1d",
            " friday ",
            "2026-11-30 14:00",
            "2026-11-30 14:00:00",
            "2026-11-30T23:30:00-05:00",
            "2026-11-30T23:30:00Z",
            "2026-11-30 14:00:00z",
            "2026-11- 30",
            "2026-11-3014:00",
            "2026-11-30T14:00 +01:00",
            "",
            "  \t",
            "next monday",
            "x\ny",
            "in",
            "in frob",
            "🙂",
            "ｍon",
            "3ｄ",
            "later+1y",
            "1y-9999y",
        ],
    ),
    (
        LEAP_EVENING,
        &[
            "today",
            "tomorrow",
            "eod",
            "now",
            "2028-03-01T02:00:00Z",
            "sow",
            "eoww",
            "sopw",
            "eonww",
            "sopm",
            "eonm",
            "soq",
            "eoq",
            "sopq",
            "eonq",
            "sopy",
            "eony",
            "sond",
            "eopd",
            "10:30",
            "23:59",
            "0:00",
            "9:05:30",
            "24:00",
            "10:5",
            "socw",
            "eonx",
            "eoq+1d",
            "sonw+9h",
        ],
    ),
];

fn mods_case(now: &str, line: &str, udas: &[&str]) -> Json {
    let known: Vec<String> = udas.iter().map(|u| (*u).to_string()).collect();
    let mut case = match parse_mods_with(&words(line), &instant(now).into(), &known) {
        Ok(m) => json!({
            "now": now,
            "line": line,
            "ok": {
                "title": m.title,
                "edits": to_json(&m.edits),
                "depends": m.depends.iter().map(|(add, p)| json!([add, p])).collect::<Vec<_>>(),
            },
        }),
        Err(e) => json!({ "now": now, "line": line, "error": e.to_string() }),
    };
    if !udas.is_empty() {
        case["udas"] = json!(udas);
    }
    case
}

/// Lines read where tasks carry UDAs (`heph add` knows those in use).
const UDA_LINES: &[(&[&str], &str)] = &[
    (&["estimate"], "Write report estimate:3h +work"),
    (&["estimate"], "Write report estimate:"),
    (&["estimate", "size"], "Fix bike size:L estimate:2h due:tomorrow"),
    (&["estimate"], "Fix bike Estimate:2h"),
    (&["estimate"], "Fix bike size:L"),
    (&["due"], "Fix bike due:"),
    (&["estimate"], "Fix bike -- estimate:2h"),
];

fn when_case(now: &str, input: &str) -> Json {
    let at = instant(now);
    match parse_when(input, &at.into()) {
        Ok(t) => {
            let day = parse_day(input, &at.into()).expect("a date that parses has a day");
            json!({ "now": now, "input": input, "ok": to_json(&t), "day": day.to_string() })
        }
        Err(e) => json!({ "now": now, "input": input, "error": e.to_string() }),
    }
}

fn relative_cases() -> Vec<Json> {
    let now = instant("2026-11-25T09:30:00Z").to_utc();
    // Each unit's threshold, and a second short of it.
    let minutes = [0, 59, -59, 60, 300];
    let hours_days = [5_400, -7_200, 86_399, 86_400, -86_400];
    let weeks_months = [1_123_199, 1_123_200, 3_024_000, 7_257_599, 7_257_600, 10_368_000];
    let years = [31_535_999, 31_536_000, 34_560_000, -69_120_000];
    let mut cases: Vec<Json> = [&minutes[..], &hours_days, &weeks_months, &years]
        .concat()
        .into_iter()
        .map(|secs| {
            let t = now + Duration::seconds(secs);
            json!({ "t": to_json(&t), "now": to_json(&now), "text": relative(t, now) })
        })
        .collect();
    // Part-seconds count toward zero, on either side of `now`.
    for ms in [999, -999, 59_999, -60_001] {
        let t = now + Duration::milliseconds(ms);
        cases.push(json!({ "t": to_json(&t), "now": to_json(&now), "text": relative(t, now) }));
    }
    let later = parse_when("later", &instant(FRIDAY).into()).expect("later");
    cases.push(json!({ "t": to_json(&later), "now": to_json(&now), "text": relative(later, now) }));
    cases
}

fn display_cases() -> Vec<Json> {
    let times = [
        "2026-11-30T00:00:00+01:00",
        "2026-11-30T14:30:00+01:00",
        "2026-11-30T00:00:00Z",
        "2026-11-25T23:59:59+01:00",
        "2026-11-30T00:00:00.5+01:00",
        "2028-03-01T05:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-30T00:00:00+01:00",
    ];
    let mut cases = Vec::new();
    for now in [FRIDAY, MONTH_END, LEAP_EVENING] {
        for t in times {
            let t = instant(t).to_utc();
            cases.push(json!({ "t": to_json(&t), "now": now, "text": display(t, &instant(now).into()) }));
        }
    }
    cases
}

fn quick_add_fixture() -> Json {
    let cases: Vec<Json> = LINES
        .iter()
        .flat_map(|(now, lines)| lines.iter().map(move |line| mods_case(now, line, &[])))
        .chain(UDA_LINES.iter().map(|(udas, line)| mods_case(FRIDAY, line, udas)))
        .collect();
    let when: Vec<Json> =
        WHEN.iter().flat_map(|(now, inputs)| inputs.iter().map(move |input| when_case(now, input))).collect();
    json!({ "cases": cases, "when": when, "relative": relative_cases(), "display": display_cases() })
}

#[test]
fn quick_add_fixture_is_current() {
    check("quick-add.json", &quick_add_fixture());
}

// ---------------------------------------------------------------------------
// listing.json
// ---------------------------------------------------------------------------

/// A Wednesday morning at +01:00 (09:30 UTC).
const LISTING_NOW: &str = "2026-11-25T10:30:00+01:00";

fn id(n: u32) -> NodeId {
    NodeId::derived(&format!("heph/web-listing/{n}"))
}

/// `now` moved by `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    instant(LISTING_NOW).to_utc() + Duration::minutes(minutes)
}

const HOUR: i64 = 60;
const DAY: i64 = 24 * HOUR;

fn tags(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|t| (*t).to_string()).collect()
}

fn notes(count: usize) -> Vec<Annotation> {
    (0..count)
        .map(|i| Annotation { entry: at(-DAY + i64::try_from(i).unwrap_or(0)), description: format!("note {i}") })
        .collect()
}

/// A pending task created ten days ago and last changed an hour ago.
fn task(n: u32, title: &str) -> Node {
    let mut node = Node::new(id(n), NodeKind::Task, title.to_string(), at(-10 * DAY));
    node.modified = at(-HOUR);
    node
}

fn note(n: u32, title: &str, modified: i64) -> Node {
    let mut node = Node::new(id(n), NodeKind::Note, title.to_string(), at(-20 * DAY));
    node.modified = at(modified);
    node
}

/// Tasks chosen for the listing rules: every status (and the wait dates that
/// change what a status shows), every priority, due dates on each side of
/// urgency's bends, blocking and non-blocking dependencies, sub-projects and
/// a look-alike project, tag and annotation counts, future creation, equal
/// urgencies that fall back to modification time and id; and a few notes, a
/// journal, and deleted nodes.
#[allow(clippy::too_many_lines)] // one record per entry reads best as one list
fn listing_nodes() -> Vec<Node> {
    use Priority::{H, L, M};
    let journal_day = NaiveDate::from_ymd_opt(2026, 11, 24).expect("a fixed day");
    let mut journal = Node::new(NodeId::journal(journal_day), NodeKind::Journal, "2026-11-24".into(), at(-DAY));
    journal.date = Some(journal_day);
    journal.modified = at(-20 * HOUR);
    let twin = |n, modified| Node { due: Some(at(3 * DAY)), modified: at(modified), ..task(n, "Water plants") };
    vec![
        Node {
            priority: Some(H),
            due: Some(at(-2 * DAY)),
            tags: tags(&["home", "bills"]),
            project: Some("home".into()),
            created: at(-40 * DAY),
            ..task(1, "Pay rent")
        },
        Node {
            priority: Some(M),
            due: Some(at(-10 * DAY)),
            project: Some("home.admin".into()),
            created: at(-400 * DAY),
            annotations: notes(3),
            ..task(2, "File taxes")
        },
        Node {
            priority: Some(H),
            status: Some(Status::Active),
            start: Some(at(-HOUR)),
            due: Some(at(6 * HOUR + 30)),
            tags: tags(&["work"]),
            project: Some("work".into()),
            ..task(3, "Call Ana")
        },
        Node { priority: Some(L), due: Some(at(13 * HOUR + 30)), tags: tags(&["errand"]), ..task(4, "Buy milk") },
        Node {
            due: Some(at(5 * DAY)),
            tags: tags(&["work", "next"]),
            project: Some("work".into()),
            ..task(5, "Write report")
        },
        Node { due: Some(at(30 * DAY)), project: Some("homework".into()), ..task(6, "Finish homework") },
        Node { scheduled: Some(at(-DAY)), project: Some("home.garden".into()), ..task(7, "Plan garden") },
        Node {
            scheduled: Some(at(3 * DAY)),
            project: Some("home.garden".into()),
            depends: [id(7)].into(),
            ..task(8, "Order seeds")
        },
        Node { depends: [id(10)].into(), tags: tags(&["errand"]), ..task(9, "Fix bike") },
        Node {
            status: Some(Status::Done),
            end: Some(at(-DAY)),
            due: Some(at(-3 * DAY)),
            tags: tags(&["errand"]),
            ..task(10, "Oil chain")
        },
        Node { status: Some(Status::Cancelled), end: Some(at(-5 * DAY)), ..task(11, "Old idea") },
        Node { status: Some(Status::Waiting), wait: Some(at(2 * DAY)), ..task(12, "Wait for parcel") },
        Node { status: Some(Status::Waiting), wait: Some(at(-DAY)), ..task(13, "Check mailbox") },
        Node { wait: Some(at(5 * DAY)), priority: Some(M), ..task(14, "Book dentist") },
        Node { deleted: true, tags: tags(&["home"]), ..task(15, "Shred papers") },
        Node { depends: [id(15), id(999)].into(), ..task(16, "Clean attic") },
        Node { created: at(DAY), annotations: notes(1), tags: tags(&["a", "b", "c", "d"]), ..task(17, "Learn Rust") },
        Node { annotations: notes(2), tags: tags(&["café"]), ..task(18, "Café crème") },
        Node { project: Some("travel".into()), ..task(19, "ΟΔΟΣ ΑΘΗΝΑΣ") },
        twin(20, -2 * HOUR),
        twin(21, -HOUR),
        twin(22, -3 * HOUR),
        twin(23, -3 * HOUR),
        Node {
            status: Some(Status::Waiting),
            wait: Some(at(DAY)),
            depends: [id(1)].into(),
            ..task(24, "Blocked and waiting")
        },
        Node { due: Some(at(14 * DAY)), ..task(25, "Sprint review") },
        Node { due: Some(at(-7 * DAY)), ..task(26, "Overdue a week") },
        Node { due: Some(at(0)), uda: [("points".to_string(), "3".to_string())].into(), ..task(27, "Due now") },
        Node { priority: Some(H), due: Some(at(HOUR)), tags: tags(&["home", "urgent"]), ..task(28, "Call plumber") },
        Node { status: Some(Status::Active), start: Some(at(-DAY)), wait: Some(at(DAY)), ..task(29, "Return books") },
        Node {
            status: Some(Status::Done),
            end: Some(at(-HOUR)),
            due: Some(at(2 * DAY)),
            tags: tags(&["work"]),
            ..task(30, "Send invoice")
        },
        Node {
            due: Some(at(3 * DAY) + Duration::milliseconds(123)),
            created: at(-200 * DAY) + Duration::milliseconds(456),
            ..task(31, "Odd milliseconds")
        },
        Node {
            depends: [id(3)].into(),
            priority: Some(L),
            tags: tags(&["work"]),
            uda: [("points".to_string(), "12".to_string())].into(),
            ..task(32, "Follow up with Ana")
        },
        Node {
            due: Some(at(2 * DAY)),
            uda: [("recur", "weekly"), ("mask", "-")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
            ..task(33, "Weekly review")
        },
        Node {
            due: Some(at(2 * DAY)),
            uda: [("recur", "weekly"), ("imask", "0"), ("parent", "11111111-2222-4333-8444-555555555555")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            ..task(34, "Weekly review")
        },
        Node {
            scheduled: Some(at(DAY)),
            uda: [("estimate", "3h"), ("until", "20261231T000000Z")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            tags: tags(&["work", "Deep"]),
            ..task(35, "Draft the Q1 plan")
        },
        Node { tags: tags(&["work"]), ..note(40, "Meeting notes", -2 * HOUR) },
        note(41, "Recipe: milk bread", -30 * HOUR),
        Node { deleted: true, ..note(42, "Deleted note", -HOUR) },
        journal,
    ]
}

/// Filter lines, with a listing limit where given.
const FILTERS: &[(&str, Option<usize>)] = &[
    ("", None),
    ("", Some(3)),
    ("", Some(0)),
    ("+work", None),
    ("-work", None),
    ("+work -next", None),
    ("+work +next", None),
    ("+home", None),
    ("project:home", None),
    ("pro:home.garden", None),
    ("proj:work +work", None),
    ("project:", None),
    ("status:done", None),
    ("status:completed,cancelled", None),
    ("status:pending,waiting", None),
    ("status:waiting", None),
    ("status:active", None),
    ("status:open", None),
    ("status:all", None),
    ("st:any", Some(5)),
    ("status:deleted", None),
    ("+DELETED", None),
    ("+DELETED +home", None),
    ("pri:H", None),
    ("priority:low", None),
    ("due:today", None),
    ("due:tomorrow", None),
    ("due.before:eow", None),
    ("due.under:2026-12-01", None),
    ("due.below:now", None),
    ("due.after:2026-12-01", None),
    ("due.over:now", None),
    ("due.above:fri", None),
    ("due.by:tomorrow", None),
    ("+OVERDUE", None),
    ("+OVERDUE status:all", None),
    ("+ACTIVE", None),
    ("+BLOCKED", None),
    ("+BLOCKED status:all", None),
    ("kind:note", None),
    ("kind:all", None),
    ("k:journal,note", None),
    ("kind:task,note status:all", None),
    ("kind:note status:pending", None),
    ("kind:note +DELETED", None),
    ("milk", None),
    ("BUY Milk", None),
    ("ΟΔΟΣ", None),
    ("café", None),
    ("plants status:all", None),
    ("foo:bar", None),
    ("-", None),
    ("+", None),
    ("status:frob", None),
    ("status:done,", None),
    ("pri:X", None),
    ("due:frob", None),
    ("due.before:", None),
    ("kind:nope", None),
    // The expression language: operators, precedence, parentheses, negation.
    ("+work or +home", None),
    ("( +work or +home ) and due.before:eow", None),
    ("(+work or +home) -BLOCKED", None),
    ("+work xor pri:H", None),
    ("+home or +work xor +urgent", None),
    ("+home xor +work or +urgent", None),
    ("+home or +work pri:H", None),
    ("not +work", None),
    ("! ( +work or +home )", None),
    ("( +work", None),
    ("+work )", None),
    ("or +work", None),
    ("+work and", None),
    // Modifiers on every kind of attribute.
    ("project.is:home", None),
    ("project.not:home", None),
    ("project.isnt:home", None),
    ("project.startswith:ho", None),
    ("project.endswith:garden", None),
    ("project.has:ork", None),
    ("project.hasnt:home", None),
    ("project.none:", None),
    ("project.any:", None),
    ("description.has:plants", None),
    ("desc.startswith:water", None),
    ("description.word:milk", None),
    ("description.noword:milk", None),
    ("title.endswith:PLAN", None),
    ("due.none:", None),
    ("due.any:", None),
    ("due.not:today", None),
    ("due.is:2026-11-27T10:30", None),
    ("scheduled.any:", None),
    ("scheduled.after:now", None),
    ("entry.before:-5d", None),
    ("modified.after:-2h status:all", None),
    ("end.any: status:all", None),
    ("start.any:", None),
    ("wait.any: status:all", None),
    ("until.before:2027-01-01", None),
    ("until.any:", None),
    ("tags.has:work", None),
    ("tags.hasnt:work", None),
    ("tags.none:", None),
    ("tags.any:", None),
    ("tags:deep", None),
    ("priority.not:H", None),
    ("priority.any:", None),
    ("pri.none:", None),
    ("!+work", None),
    ("!(+work or +home)", None),
    ("project.word:home.admin", None),
    ("project.noword:home.admin", None),
    ("project.word:home", None),
    ("priority.above:L", None),
    ("priority.below:H", None),
    ("priority.by:M", None),
    ("priority.above:", None),
    ("priority.has:", None),
    ("points.above:5", None),
    ("points.below:10", None),
    ("points.by:12", None),
    ("depends.any:", None),
    ("urgency.over:10", None),
    ("urgency.below:0 status:all", None),
    ("estimate:3h", None),
    ("estimate.any:", None),
    ("recur:weekly", None),
    ("recur.any: status:all", None),
    ("status:recurring", None),
    ("status.not:pending", None),
    ("status:pending", None),
    ("status:pend", None),
    // Virtual tags.
    ("+BLOCKING", None),
    ("+LATEST", None),
    ("+Work -HOME", None),
    ("-LATEST +work", None),
    ("+UNBLOCKED", None),
    ("+READY", None),
    ("+DUE", None),
    ("+TODAY", None),
    ("+TOMORROW", None),
    ("+YESTERDAY status:all", None),
    ("+WEEK", None),
    ("+MONTH", None),
    ("+QUARTER", None),
    ("+YEAR", None),
    ("+WAITING", None),
    ("+PENDING", None),
    ("+COMPLETED", None),
    ("-DELETED status:all", None),
    ("+RECURRING", None),
    ("+TEMPLATE", None),
    ("+INSTANCE", None),
    ("+TAGGED", None),
    ("-TAGGED", None),
    ("+ANNOTATED", None),
    ("+PROJECT", None),
    ("+PRIORITY", None),
    ("+SCHEDULED", None),
    ("+UNTIL", None),
    ("+UDA", None),
    // What is refused.
    ("due.frob:today", None),
    ("project.before:x", None),
    ("due.has:x", None),
    ("tags.after:x", None),
    ("urgency.over:lots", None),
    ("status.before:x", None),
    ("sta:x", None),
    (
        "( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( +work",
        None,
    ),
    ("kind:ALL", None),
    ("kind:NOTE", None),
    ("https://example.org", None),
    ("10:30", None),
];

fn listing_fixture() -> Json {
    let replica = Replica::in_memory().expect("an in-memory replica");
    replica.import(&listing_nodes(), |_, _| {}).expect("import the listing nodes");
    let nodes = replica.export().expect("export");
    let now = instant(LISTING_NOW);
    let cases: Vec<Json> = FILTERS
        .iter()
        .map(|&(filter, limit)| {
            let mut case = json!({ "filter": filter });
            if let Some(n) = limit {
                case["limit"] = json!(n);
            }
            match Filter::parse(&words(filter), &now.into()) {
                Ok(parsed) => match replica.list(&parsed, now.to_utc(), limit) {
                    Ok(rows) => {
                        case["rows"] = rows
                            .iter()
                            .map(|(urgency, row)| json!({ "id": row.id.to_hex(), "urgency": urgency }))
                            .collect();
                    }
                    Err(e) => case["error"] = json!(e.to_string()),
                },
                Err(e) => case["error"] = json!(e.to_string()),
            }
            case
        })
        .collect();
    json!({ "now": LISTING_NOW, "nodes": to_json(&nodes), "cases": cases })
}

#[test]
fn listing_fixture_is_current() {
    check("listing.json", &listing_fixture());
}
