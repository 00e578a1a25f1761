//! Recurring tasks: heph makes the same occurrences as the real Taskwarrior
//! 2.6 (`task`, Debian package `taskwarrior`), and they survive the trip
//! through it and back.
//!
//! Tests that need `task` skip with a message when it is missing, unless
//! `HEPH_REQUIRE_TASKWARRIOR=1` (CI sets it).

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use common::Heph;
use common::taskwarrior::{Taskwarrior, available, faketime_available};
use heph_engine::{Clock, Replica, taskwarrior};
use serde_json::{Value, json};

/// The zone both sides count in: one with daylight saving, so monthly
/// steps cross it.
const ZONE: &str = "America/New_York";

fn tw_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// (imask, due) of every instance of `parent` in a Taskwarrior export.
fn occurrences(tasks: &[Value], parent: &str) -> BTreeSet<(u32, String)> {
    tasks
        .iter()
        .filter(|t| t["parent"] == parent)
        .map(|t| {
            let imask = match &t["imask"] {
                Value::Number(n) => u32::try_from(n.as_f64().unwrap() as u64).unwrap(),
                Value::String(s) => s.parse().unwrap(),
                other => panic!("imask {other}"),
            };
            (imask, t["due"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Templates whose dues lie weeks or months back, each at an hour of the day
/// twelve hours from now's, so that no occurrence lands within hours of now
/// (the two sides read the clock seconds apart).
fn templates(now: DateTime<Utc>, clock: &Clock) -> Vec<(Value, Option<DateTime<Utc>>)> {
    let hour = (clock.local(now).hour() + 12) % 24;
    let at = |days_back: i64| {
        let day = clock.local(now - Duration::days(days_back)).date_naive();
        clock.instant(day.and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap())).unwrap()
    };
    // A 31st about four months back.
    let mut back = 100;
    while clock.local(now - Duration::days(back)).date_naive().format("%d").to_string() != "31" {
        back += 1;
    }
    let until = at(20);
    let uuid = |n: u8| format!("{n:08x}-2222-4333-8444-555555555555");
    let t = |n: u8, recur: &str, due: DateTime<Utc>, until: Option<DateTime<Utc>>| {
        let mut v = json!({"uuid": uuid(n), "description": format!("series {recur}"), "status": "recurring",
            "recur": recur, "due": tw_date(due), "entry": tw_date(now - Duration::days(400))});
        if let Some(u) = until {
            v["until"] = tw_date(u).into();
        }
        (v, until)
    };
    vec![
        t(1, "daily", at(12), None),
        t(2, "weekly", at(45), None),
        t(3, "monthly", at(back), None),
        t(4, "weekdays", at(25), None),
        t(5, "daily", at(30), Some(until)),
        t(6, "2w", at(70), None),
        t(7, "quarterly", at(400), None),
    ]
}

/// Both generate from the same templates with the same now: the
/// occurrences (index, due) are the same. Taskwarrior 2.6 also makes one
/// occurrence past `until` (then deletes it as expired); heph does not make
/// it, so those are left out of the comparison.
#[test]
fn makes_the_same_occurrences_as_taskwarrior() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let clock = Clock::in_zone(now, ZONE).unwrap();
    let templates = templates(now, &clock);

    let file = dir.path().join("templates.json");
    let list: Vec<&Value> = templates.iter().map(|(v, _)| v).collect();
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
    let tw = Taskwarrior::new(dir.path(), "tw", ZONE);
    tw.run(&["import", file.to_str().unwrap()]);
    // Any report makes Taskwarrior generate; export is one.
    let tw: Vec<Value> = serde_json::from_str(&tw.run(&["export"])).unwrap();

    let heph = Replica::in_memory().unwrap();
    let nodes: Vec<_> = list.iter().enumerate().map(|(i, v)| taskwarrior::from_task(v, i + 1).unwrap()).collect();
    heph.import(&nodes, |_, _| {}).unwrap();
    let report = heph.generate_recurrences(&clock.at(Utc::now()), 1).unwrap();
    assert!(report.skipped.is_empty(), "{report:?}");
    let ours: Vec<Value> = heph.export().unwrap().iter().filter_map(taskwarrior::to_task).collect();

    for (template, until) in &templates {
        let uuid = template["uuid"].as_str().unwrap();
        let mut theirs = occurrences(&tw, uuid);
        if let Some(u) = until {
            theirs.retain(|(_, due)| *due <= tw_date(*u));
        }
        let mine = occurrences(&ours, uuid);
        assert!(mine.len() >= 3, "{}: only {mine:?}", template["recur"]);
        assert_eq!(mine, theirs, "{} from {}", template["recur"], template["due"]);
        // The masks agree too (Taskwarrior's has the one past until).
        let mask = |tasks: &[Value]| tasks.iter().find(|t| t["uuid"] == uuid).unwrap()["mask"].clone();
        let (m, t) = (mask(&ours), mask(&tw));
        assert!(t.as_str().unwrap().starts_with(m.as_str().unwrap()), "mask {m} vs {t}");
    }
}

/// Both keep making occurrences as the clock moves on. One set of templates
/// (daily, weekdays, weekly, 2w, monthly from a 31st, quarterly, and two
/// until-bounded series) in `Europe/Berlin` is imported into both on
/// 2027-03-01; then the clock steps unevenly through 2027-07-20, across the
/// spring-forward night of 2027-03-28. At every step Taskwarrior runs at
/// that instant (through `faketime`) and heph's engine is given the same
/// instant: the occurrences made so far agree at each one.
#[test]
fn makes_the_same_occurrences_as_taskwarrior_as_the_clock_moves_on() {
    if !available() || !faketime_available() {
        return;
    }
    const BERLIN: &str = "Europe/Berlin";
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::in_zone(Utc::now(), BERLIN).unwrap();
    let local = |s: &str| {
        let wall = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        clock.instant(wall).unwrap()
    };
    let start = local("2027-03-01 09:15");
    let uuid = |n: u8| format!("{n:08x}-7777-4333-8444-555555555555");
    let template = |n: u8, recur: &str, due: &str, until: Option<&str>| {
        let mut v = json!({"uuid": uuid(n), "description": format!("series {n} {recur}"), "status": "recurring",
            "recur": recur, "due": tw_date(local(due)), "entry": tw_date(start - Duration::days(2))});
        if let Some(u) = until {
            v["until"] = tw_date(local(u)).into();
        }
        v
    };
    let templates = vec![
        template(1, "daily", "2027-03-20 08:30", None),
        template(2, "weekdays", "2027-03-24 07:00", None),
        template(3, "weekly", "2027-02-24 18:00", None),
        template(4, "2w", "2027-03-10 00:00", None),
        template(5, "monthly", "2027-01-31 09:00", None),
        template(6, "quarterly", "2026-12-15 12:00", None),
        template(7, "daily", "2027-03-25 21:00", Some("2027-04-03 12:00")),
        template(8, "weekly", "2027-03-15 23:30", Some("2027-05-20 00:00")),
    ];
    let file = dir.path().join("templates.json");
    std::fs::write(&file, serde_json::to_string(&templates).unwrap()).unwrap();
    let tw = Taskwarrior::new(dir.path(), "tw", BERLIN);
    tw.run_at(start.timestamp(), &["import", file.to_str().unwrap()]);
    let heph = Replica::in_memory().unwrap();
    let nodes: Vec<_> = templates.iter().enumerate().map(|(i, v)| taskwarrior::from_task(v, i + 1).unwrap()).collect();
    heph.import(&nodes, |_, _| {}).unwrap();

    // Uneven steps, in hours: within a day, across the DST night, and long gaps.
    let steps = [0, 7, 30, 200, 150, 26, 3, 24, 24, 50, 300, 12, 500, 700, 45, 1000, 333];
    let mut at = start;
    let mut compared = 0;
    for hours in steps {
        at += Duration::hours(hours);
        let theirs: Vec<Value> = serde_json::from_str(&tw.run_at(at.timestamp(), &["export"])).unwrap();
        let report = heph.generate_recurrences(&clock.at(at), 1).unwrap();
        assert!(report.skipped.is_empty(), "{report:?}");
        let ours: Vec<Value> = heph.export().unwrap().iter().filter_map(taskwarrior::to_task).collect();
        for t in &templates {
            let id = t["uuid"].as_str().unwrap();
            let mut want = occurrences(&theirs, id);
            // Taskwarrior 2.6 also makes the one occurrence past until (and deletes it as expired).
            if let Some(u) = t["until"].as_str() {
                want.retain(|(_, due)| due.as_str() <= u);
            }
            let got = occurrences(&ours, id);
            assert_eq!(got, want, "{} at {at} (local {})", t["description"], clock.local(at));
            compared += got.len();
        }
    }
    assert!(compared > 500, "the span made occurrences to compare: {compared}");
}

/// A series made in heph goes to Taskwarrior as a template with its
/// instances (`task import` reads it as one), comes back from `task export`,
/// and keeps recur, until, mask, imask and parent on the way.
#[test]
fn a_series_round_trips_through_taskwarrior() {
    if !available() {
        return;
    }
    let h = Heph::new();
    h.add(&["Pay", "rent", "due:today-40d", "recur:monthly", "until:today+400d", "+bills"]);
    let out = h.path("heph-tw.json");
    h.ok(&["export", "--format", "taskwarrior", "-o", out.to_str().unwrap()]);
    let ours: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let template = ours.iter().find(|t| t["status"] == "recurring").expect("the template goes out as recurring");
    let uuid = template["uuid"].as_str().unwrap().to_string();
    assert_eq!(occurrences(&ours, &uuid).len(), 3, "{ours:#?}");

    let tw = Taskwarrior::new(h.dir.path(), "rt", "UTC");
    tw.run(&["import", out.to_str().unwrap()]);
    let tw_text = tw.run(&["export"]);
    let tw: Vec<Value> = serde_json::from_str(&tw_text).unwrap();
    let tw_template = tw.iter().find(|t| t["uuid"] == uuid).unwrap();
    assert_eq!(tw_template["status"], "recurring", "Taskwarrior reads it as a template");
    for key in ["recur", "until", "mask"] {
        assert_eq!(tw_template[key], template[key], "{key}");
    }
    assert_eq!(occurrences(&tw, &uuid), occurrences(&ours, &uuid), "Taskwarrior made no duplicates");

    // And back into a fresh heph: the same series, nothing made twice.
    let back = Heph::new();
    let file = back.path("tw.json");
    std::fs::write(&file, &tw_text).unwrap();
    back.ok(&["import", file.to_str().unwrap()]);
    let again = back.path("again.json");
    back.ok(&["export", "--format", "taskwarrior", "-o", again.to_str().unwrap()]);
    let again: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    let t2 = again.iter().find(|t| t["uuid"] == uuid).unwrap();
    for key in ["recur", "until", "mask", "status"] {
        assert_eq!(t2[key], template[key], "{key}");
    }
    assert_eq!(occurrences(&again, &uuid), occurrences(&ours, &uuid));
    for t in again.iter().filter(|t| t["parent"] == uuid.as_str()) {
        assert_eq!(t["recur"], "monthly");
        assert_eq!(t["until"], template["until"]);
    }
}

#[test]
fn recur_needs_a_due_date_and_a_known_period() {
    let h = Heph::new();
    let e = h.fails(&["add", "Pay", "rent", "recur:monthly"]);
    assert!(e.contains("due:"), "{e}");
    let e = h.fails(&["add", "Pay", "rent", "due:tomorrow", "recur:sometimes"]);
    assert!(e.contains("\"sometimes\""), "{e}");
}

#[test]
fn instances_follow_the_template_and_deleting_it_ends_the_series() {
    let h = Heph::new();
    h.add(&["Water", "plants", "due:today-15d", "recur:weekly", "+home"]);
    let tasks = tw_export(&h);
    let template = tasks.iter().find(|t| t["status"] == "recurring").unwrap()["uuid"].as_str().unwrap().to_string();
    let instances = occurrences(&tasks, &template);
    // 15, 8 and 1 days back, and the next one.
    assert_eq!(instances.len(), 4, "{tasks:#?}");
    let short = |uuid: &str| heph_engine::NodeId::parse(uuid).unwrap().to_hex()[..8].to_string();
    // A change to the template reaches its pending instances.
    h.ok(&["modify", &short(&template), "+garden"]);
    let with = |key: &str, value: &str| {
        tw_export(&h)
            .iter()
            .filter(|t| t[key] == value || t[key].as_array().is_some_and(|a| a.contains(&value.into())))
            .count()
    };
    assert_eq!(with("tags", "garden"), 5);
    // --all on an instance reaches the template and the siblings; dates stay.
    let first = tasks.iter().find(|t| t["parent"] == template.as_str()).unwrap();
    h.ok(&["modify", "--all", &short(first["uuid"].as_str().unwrap()), "project:house"]);
    assert_eq!(with("project", "house"), 5);
    assert_eq!(occurrences(&tw_export(&h), &template), instances, "the dates stay");
    // Deleting the template asks; without a terminal that is a no, and --yes deletes the pending instances too.
    let refused = h.run(&["delete", &short(&template)]);
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && e.contains("4 pending instances") && e.contains("--yes"), "{e}");
    assert_eq!(with("status", "recurring"), 1, "nothing was deleted");
    h.ok(&["--yes", "delete", &short(&template)]);
    assert!(h.json(&["ls"]).as_array().unwrap().is_empty(), "the series is gone");
    assert!(with("status", "pending") == 0 && with("status", "recurring") == 0);
}

/// As in Taskwarrior, a template is no task to complete or start: that is
/// refused, naming how to end the series instead, and nothing changes. And
/// `modify --all` on a task that does not recur is refused before it
/// writes anything.
#[test]
fn a_template_is_not_completed_and_all_needs_a_series() {
    let h = Heph::new();
    h.add(&["Water", "plants", "due:today-15d", "recur:weekly"]);
    let template = h.json(&["ls", "+TEMPLATE"])[0]["short"].as_str().unwrap().to_string();
    for verb in ["done", "start"] {
        let e = h.fails(&[verb, &template]);
        assert!(e.contains("recurring template") && e.contains("heph delete"), "{verb}: {e}");
    }
    let after = h.json(&["show", &template]);
    assert_eq!(after["status"], "pending", "{after}");
    assert!(after["start"].is_null(), "{after}");

    h.add(&["Plain", "task"]);
    let plain = h.json(&["ls", "Plain"])[0]["short"].as_str().unwrap().to_string();
    let e = h.fails(&["modify", "--all", &plain, "+x", "pri:H", "Renamed"]);
    assert!(e.contains("does not recur"), "{e}");
    let shown = h.json(&["show", &plain]);
    assert_eq!((&shown["title"], &shown["tags"], &shown["priority"]), (&"Plain task".into(), &json!([]), &Value::Null));
    assert_eq!(h.json(&["history", &plain]).as_array().unwrap().len(), 1, "nothing was written");
}

/// `h`'s tasks as Taskwarrior's export.
fn tw_export(h: &Heph) -> Vec<Value> {
    let out = h.path("t.json");
    h.ok(&["export", "--format", "taskwarrior", "-o", out.to_str().unwrap()]);
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// `heph ls` shows the instances, not the template (a template is a task
/// with `recur` and no `parent`; listings hide it).
#[test]
fn ls_shows_the_instance_not_the_template() {
    let h = Heph::new();
    h.add(&["Call", "mum", "due:tomorrow", "recur:weekly"]);
    let rows = h.json(&["ls"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let tasks = tw_export(&h);
    let template = tasks.iter().find(|t| t["status"] == "recurring").unwrap()["uuid"].as_str().unwrap();
    let shown = h.json(&["show", rows[0]["id"].as_str().unwrap()]);
    assert_eq!(shown["uda"]["parent"], template, "the row listed is the instance");
    // Scripts tell them apart from the list alone, as `show --json` does.
    assert_eq!(rows[0]["uda"]["parent"], template);
    assert_eq!(rows[0]["uda"]["recur"], "weekly");
    let templates = h.json(&["ls", "+TEMPLATE"]);
    assert_eq!(templates[0]["id"], template.replace('-', ""));
    assert_eq!(templates[0]["uda"]["recur"], "weekly");
    assert!(templates[0]["uda"]["mask"].is_string(), "{templates}");
}
