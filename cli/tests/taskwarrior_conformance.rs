//! heph's filter language and urgency against the real Taskwarrior 2.6 as
//! the oracle (Debian package `taskwarrior`; `.ci/test` installs it).
//!
//! One seeded data set of a few hundred varied tasks (every status, started
//! and waiting tasks, projects and sub-projects and a look-alike, tags,
//! priorities, due/scheduled/wait/until/end dates on both sides of now and
//! of the day and week bounds, annotations, dependencies on open and closed
//! tasks, a UDA) is imported into both. Then:
//! - every filter below selects the same uuids in `heph ls --json` as in
//!   `task export` (heph's default report aside: heph is asked for
//!   `status:all`, and shows deleted tasks only to a filter that asks for
//!   them, so Taskwarrior's deleted tasks are left out of its answer
//!   unless the filter names them);
//! - urgency agrees within 0.01 for every pending task.
//!
//! Both run in one time zone with daylight saving (`TZ=Europe/Berlin`),
//! with weeks starting on Monday (heph's `sow`/`eow`, set for Taskwarrior
//! with `weekstart=monday`) and case-insensitive search. Taskwarrior runs
//! with `gc=off`: with it on, a filter naming `pending` (even
//! `status.not:pending`) skips completed and deleted tasks unread.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use common::Heph;
use common::taskwarrior::{Taskwarrior, available};
use serde_json::{Value, json};

const ZONE: &str = "Europe/Berlin";

/// Filters, as words (a word may be several, split at spaces).
const FILTERS: &[&str] = &[
    // Operators and parentheses.
    "+work",
    "-work",
    "+work or +home",
    "( +work or +home ) and due.before:eow",
    "( +work or +home ) and due.before:eow and -BLOCKED",
    "+work xor +home",
    "+home or +work xor +next",
    "+home xor +work or +next",
    "+work and +bills xor +home or +next",
    "+next or ( pri:H and +OVERDUE )",
    "( +home or +errand ) -next pri.any:",
    "( ( +work ) )",
    "+work and +bills or +someday",
    // Modifiers on text attributes.
    "project:home",
    "project.is:home",
    "project.not:work",
    "project.isnt:home",
    "project.startswith:home",
    "project.endswith:reports",
    "project.has:ork",
    "project.hasnt:home",
    "project.word:work.reports",
    "project.word:home",
    "project.noword:home.garden",
    "description.word:mom",
    "project.none:",
    "project.any:",
    "description.has:milk",
    "description.hasnt:milk",
    "description.startswith:buy",
    "description.endswith:report",
    "description.is:call mom",
    // On dates.
    "due.before:now",
    "due.after:now+7d",
    "due.by:tomorrow",
    "due:today",
    "due:tomorrow",
    "due.none:",
    "due.any:",
    "due.not:today",
    "due.before:eom",
    "wait.any:",
    "wait.after:now",
    "scheduled.before:now",
    "scheduled.any:",
    "scheduled.none:",
    "until.before:now+60d",
    "until.any:",
    "entry.before:now-100d",
    "entry.after:now-30d",
    "end.after:now-7d",
    "end.before:now-7d",
    "modified.before:now-100d",
    "modified.after:now-30d",
    // On tags, priority, status and a UDA.
    "tags.has:next",
    "tags.hasnt:work",
    "tags.none:",
    "tags.any:",
    "priority:H",
    "priority.not:H",
    "priority.none:",
    "priority.above:L",
    "priority.below:H",
    "priority.by:M",
    "priority.after:",
    "status:pending",
    "status:completed",
    "status:deleted",
    "status:waiting",
    "status.not:pending",
    "estimate:3h",
    "estimate.any:",
    "estimate.none:",
    // Virtual tags.
    "+ACTIVE",
    "+BLOCKED",
    "-BLOCKED",
    "+UNBLOCKED",
    "+BLOCKING",
    "+READY",
    "+DUE",
    "+TODAY",
    "+TOMORROW",
    "+YESTERDAY",
    "+WEEK",
    "+MONTH",
    "+QUARTER",
    "+YEAR",
    "+OVERDUE",
    "+WAITING",
    "+PENDING",
    "+COMPLETED",
    "+DELETED",
    "+TAGGED",
    "-TAGGED",
    "+ANNOTATED",
    "+PROJECT",
    "+PRIORITY",
    "+SCHEDULED",
    "+UNTIL",
    "+UDA",
    "+TEMPLATE",
    "+INSTANCE",
];

/// A small deterministic generator (xorshift), so the data set is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[usize::try_from(self.below(list.len() as u64)).unwrap()]
    }

    /// A whole number of hours in `lo..hi` days, never 0 (nothing lands on "now").
    fn hours(&mut self, lo: i64, hi: i64) -> Duration {
        let span = u64::try_from((hi - lo) * 24).unwrap();
        let h = lo * 24 + i64::try_from(self.below(span)).unwrap();
        Duration::hours(if h == 0 { 5 } else { h })
    }
}

fn tw_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn uuid(i: usize) -> String {
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", 0x5eed_0000 + i, i * 7 % 0xffff, i % 0xfff, i * 3 % 0xfff, i * 977)
}

/// The seeded data set, in Taskwarrior's export format, relative to `now`.
fn tasks(now: DateTime<Utc>) -> Vec<Value> {
    const VERBS: &[&str] = &["Buy", "call", "Fix", "write", "Water", "pay", "Read", "plan", "clean", "review"];
    const NOUNS: &[&str] = &["milk", "mom", "bike", "report", "plants", "rent", "book", "trip", "garage", "code"];
    const PROJECTS: &[&str] = &["", "", "", "home", "home.garden", "homework", "work", "work.reports", "errands"];
    const TAGS: &[&str] = &["work", "home", "next", "errand", "bills", "someday", "urgent"];
    const PRIORITIES: &[&str] = &["", "", "H", "M", "L"];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out: Vec<Value> = Vec::new();
    for i in 0..320 {
        let mut t = serde_json::Map::new();
        t.insert("uuid".into(), uuid(i).into());
        let title =
            if i % 37 == 5 { "call mom".to_string() } else { format!("{} {}", rng.pick(VERBS), rng.pick(NOUNS)) };
        t.insert("description".into(), title.into());
        // Half a day off whole days, so that age in whole days is the same a few seconds later.
        let entry = now - Duration::days(i64::try_from(rng.below(500)).unwrap()) - Duration::hours(12);
        t.insert("entry".into(), tw_date(entry).into());
        t.insert("modified".into(), tw_date(entry + (now - entry) / 2).into());
        let roll = rng.below(100);
        let status = match roll {
            0..=14 => "completed",
            15..=22 => "deleted",
            _ => "pending",
        };
        t.insert("status".into(), status.into());
        if status != "pending" {
            t.insert("end".into(), tw_date(now - rng.hours(0, 20) - Duration::hours(3)).into());
        } else if roll < 30 {
            t.insert("start".into(), tw_date(now - rng.hours(1, 5)).into());
        } else if roll < 40 {
            t.insert("wait".into(), tw_date(now + rng.hours(1, 20)).into());
        }
        if rng.chance(70) {
            t.insert("due".into(), tw_date(now + rng.hours(-30, 60)).into());
        }
        if rng.chance(20) {
            t.insert("scheduled".into(), tw_date(now + rng.hours(-10, 10)).into());
        }
        if rng.chance(10) {
            t.insert("until".into(), tw_date(now + rng.hours(20, 90)).into());
        }
        let project = rng.pick(PROJECTS);
        if !project.is_empty() {
            t.insert("project".into(), project.into());
        }
        let priority = rng.pick(PRIORITIES);
        if !priority.is_empty() {
            t.insert("priority".into(), priority.into());
        }
        let tags: BTreeSet<&str> = (0..rng.below(5)).map(|_| rng.pick(TAGS)).collect();
        if !tags.is_empty() {
            t.insert("tags".into(), json!(tags));
        }
        let notes = rng.below(5).saturating_sub(1);
        if notes > 0 {
            let list: Vec<Value> = (0..notes)
                .map(|n| json!({"entry": tw_date(entry + Duration::hours(1 + i64::try_from(n).unwrap())), "description": format!("annotation {n}")}))
                .collect();
            t.insert("annotations".into(), list.into());
        }
        if i > 10 && rng.chance(15) {
            let deps: BTreeSet<String> =
                (0..=rng.below(2)).map(|_| uuid(usize::try_from(rng.below(i as u64)).unwrap())).collect();
            t.insert("depends".into(), json!(deps));
        }
        if rng.chance(15) {
            t.insert("estimate".into(), rng.pick(&["1h", "3h", "2d"]).into());
        }
        out.push(Value::Object(t));
    }
    out
}

fn heph_json(h: &Heph, args: &[&str]) -> Value {
    let out = h.command().env("TZ", ZONE).arg("--json").args(args).output().unwrap();
    assert!(out.status.success(), "heph {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hex(uuid: &str) -> String {
    uuid.replace('-', "")
}

#[test]
fn filters_and_urgency_agree_with_taskwarrior() {
    if !available() {
        return;
    }
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let h = Heph::new();
    // gc=off: with it on, Taskwarrior's pending-only shortcut skips completed
    // and deleted tasks unread for any filter naming `pending`, even
    // `status.not:pending`.
    let config = "verbose=nothing\nhooks=off\ngc=off\nweekstart=monday\nsearch.case.sensitive=no\n\
                  uda.estimate.type=string\nuda.estimate.label=Estimate\n";
    let tw = Taskwarrior::with_config(h.dir.path(), "tw", ZONE, config);
    let data = tasks(now);
    let file = h.path("seed.json");
    std::fs::write(&file, serde_json::to_string(&data).unwrap()).unwrap();
    tw.run(&["import", file.to_str().unwrap()]);
    heph_json(&h, &["import", file.to_str().unwrap()]);

    let everything = tw.export(&[]);
    assert_eq!(everything.len(), data.len(), "Taskwarrior imported every task");
    let status: BTreeMap<String, String> = everything
        .iter()
        .map(|t| (hex(t["uuid"].as_str().unwrap()), t["status"].as_str().unwrap().to_string()))
        .collect();

    let mut failures = Vec::new();
    let mut nonempty = 0;
    // Each filter as words, and a few pairs given as one word with spaces in
    // the value, which Taskwarrior (and heph) take whole.
    let whole = ["description.is:call mom", "description.has:call mom", "description.hasnt:call mom"];
    let cases = FILTERS.iter().map(|f| f.split(' ').collect::<Vec<_>>()).chain(whole.iter().map(|w| vec![*w]));
    for words in cases {
        let filter = words.join(" ");
        let asks_deleted = filter.to_lowercase().contains("deleted");
        let theirs: BTreeSet<String> = tw
            .export(&words)
            .iter()
            .map(|t| hex(t["uuid"].as_str().unwrap()))
            .filter(|id| asks_deleted || status[id] != "deleted")
            .collect();
        let mut args = vec!["ls", "status:all", "("];
        args.extend(&words);
        args.push(")");
        let ours: BTreeSet<String> =
            heph_json(&h, &args).as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        nonempty += usize::from(!theirs.is_empty());
        if ours != theirs {
            let only_ours: Vec<_> = ours.difference(&theirs).map(|s| &s[..8]).collect();
            let only_theirs: Vec<_> = theirs.difference(&ours).map(|s| &s[..8]).collect();
            failures.push(format!("{filter:?}: only heph {only_ours:?}, only task {only_theirs:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} filters disagree:\n{}", failures.len(), FILTERS.len(), failures.join("\n"));
    assert!(FILTERS.len() >= 40 && nonempty >= FILTERS.len() * 3 / 4, "the data set exercises the filters");

    // Urgency of every pending task.
    let ours: BTreeMap<String, f64> = heph_json(&h, &["ls", "status:pending,waiting"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["urgency"].as_f64().unwrap()))
        .collect();
    let mut compared = 0;
    let mut off = Vec::new();
    for t in &everything {
        let id = hex(t["uuid"].as_str().unwrap());
        if !matches!(t["status"].as_str(), Some("pending" | "waiting")) {
            continue;
        }
        let theirs = t["urgency"].as_f64().expect("task export has urgency");
        let Some(mine) = ours.get(&id) else {
            off.push(format!("{}: not listed by heph", &id[..8]));
            continue;
        };
        compared += 1;
        if (mine - theirs).abs() > 0.01 {
            off.push(format!("{} {:?}: heph {mine}, task {theirs}", &id[..8], t["description"]));
        }
    }
    assert!(off.is_empty(), "urgency differs for {} tasks:\n{}", off.len(), off.join("\n"));
    assert!(compared > 150, "compared {compared} pending tasks");
}

/// A task's identity across the two tools: its uuid, or for an instance of a
/// recurring task (whose uuid Taskwarrior picks at random) its template's
/// uuid and its index.
fn identity(uuid: &str, parent: Option<&str>, imask: Option<&str>) -> String {
    match (parent, imask) {
        (Some(p), Some(i)) => format!("{}/{}", hex(p), i.trim_end_matches(".000000")),
        _ => hex(uuid),
    }
}

#[test]
fn recurring_tasks_and_their_virtual_tags_agree_with_taskwarrior() {
    if !available() {
        return;
    }
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let h = Heph::new();
    let tw = Taskwarrior::with_config(h.dir.path(), "tw", ZONE, "verbose=nothing\nhooks=off\ngc=off\n");
    let template = |i: usize, title: &str, recur: &str, due_hours: i64, until: Option<i64>| {
        let mut t = json!({
            "uuid": uuid(1000 + i), "description": title, "status": "recurring", "recur": recur,
            "entry": tw_date(now - Duration::days(90) - Duration::hours(12)),
            "due": tw_date(now + Duration::hours(due_hours)), "mask": "",
        });
        if let Some(days) = until {
            t["until"] = tw_date(now + Duration::days(days)).into();
        }
        t
    };
    let data = vec![
        template(0, "stretch", "daily", -5 * 24 + 3, None),
        template(1, "review week", "weekly", -20 * 24 + 5, None),
        template(2, "pay rent", "monthly", -70 * 24 + 7, Some(40)),
        json!({"uuid": uuid(1003), "description": "plain task", "status": "pending",
               "entry": tw_date(now - Duration::days(3) - Duration::hours(12))}),
    ];
    let file = h.path("recurring.json");
    std::fs::write(&file, serde_json::to_string(&data).unwrap()).unwrap();
    tw.run(&["import", file.to_str().unwrap()]);
    heph_json(&h, &["import", file.to_str().unwrap()]);
    // Both make the instances when asked for tasks.
    let theirs_all = tw.export(&[]);
    heph_json(&h, &["ls"]);
    let ours_all = heph_json(&h, &["export"]);
    let key_of: BTreeMap<String, String> = ours_all
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap().to_string();
            let key = identity(&id, n["uda"]["parent"].as_str(), n["uda"]["imask"].as_str());
            (id, key)
        })
        .collect();
    assert!(theirs_all.len() > 10, "Taskwarrior made the instances: {}", theirs_all.len());
    // heph's +RECURRING is Taskwarrior's recur.any: (2.6 has no such virtual tag).
    let cases: &[(&str, &str)] = &[
        ("+RECURRING", "recur.any:"),
        ("+TEMPLATE", "+TEMPLATE"),
        ("+INSTANCE", "+INSTANCE"),
        ("status:recurring", "status:recurring"),
        ("recur:daily", "recur:daily"),
        ("+INSTANCE +OVERDUE", "+INSTANCE +OVERDUE"),
        ("parent.any:", "parent.any:"),
        ("until.any:", "until.any:"),
        ("-RECURRING", "recur.none:"),
    ];
    let mut failures = Vec::new();
    for (ours, theirs) in cases {
        let words: Vec<&str> = theirs.split(' ').collect();
        let want: BTreeSet<String> = tw
            .export(&words)
            .iter()
            .map(|t| {
                let imask =
                    t["imask"].as_f64().map(|f| f.to_string()).or_else(|| t["imask"].as_str().map(String::from));
                identity(t["uuid"].as_str().unwrap(), t["parent"].as_str(), imask.as_deref())
            })
            .collect();
        let mut args = vec!["ls", "status:all", "("];
        args.extend(ours.split(' '));
        args.push(")");
        let got: BTreeSet<String> = heph_json(&h, &args)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| key_of[r["id"].as_str().unwrap()].clone())
            .collect();
        if got != want {
            failures.push(format!("{ours:?} / task {theirs:?}: heph {got:?}, task {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn latest_is_the_open_task_added_last_as_in_taskwarrior() {
    if !available() {
        return;
    }
    let h = Heph::new();
    let tw = Taskwarrior::with_config(h.dir.path(), "tw", ZONE, "verbose=nothing\nhooks=off\n");
    let latest = |filter: &[&str]| -> (Vec<String>, Vec<String>) {
        let mut args = vec!["ls", "+LATEST"];
        args.extend_from_slice(filter);
        let heph = common::titles(&heph_json(&h, &args));
        let mut tw_filter = vec!["+LATEST"];
        tw_filter.extend_from_slice(filter);
        let task = tw.export(&tw_filter).iter().map(|t| t["description"].as_str().unwrap().to_string()).collect();
        (heph, task)
    };
    let mut made = Vec::new();
    for title in ["Buy milk", "Call Ana", "Fix bike"] {
        tw.run(&["add", title]);
        made.push(h.add(&[title]));
    }
    assert_eq!(latest(&[]), (vec!["Fix bike".to_string()], vec!["Fix bike".to_string()]));
    // Done, it is no longer the latest: the one added before it is.
    tw.run(&["3", "done"]);
    h.ok(&["done", &made[2]]);
    assert_eq!(latest(&["status:pending"]), (vec!["Call Ana".to_string()], vec!["Call Ana".to_string()]));
    // A waiting task counts.
    tw.run(&["add", "Renew passport", "wait:tomorrow"]);
    h.add(&["Renew passport", "wait:tomorrow"]);
    assert_eq!(latest(&["+WAITING"]), (vec!["Renew passport".to_string()], vec!["Renew passport".to_string()]));
    assert_eq!(latest(&["status:pending"]), (vec![], vec![]));
}
