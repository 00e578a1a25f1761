//! Text output: the listing table and the full view of one node.

use std::io::Write;

use chrono::{DateTime, Utc};
use heph_engine::Clock;
use heph_engine::when::{display, relative};
use heph_engine::{Conflict, HistoryEntry, NodeKind};
use unicode_width::UnicodeWidthStr as _;

use crate::output::{ListItem, Shown};

fn at(ms: DateTime<Utc>, now: &Clock) -> String {
    display(ms, now)
}

fn day(t: DateTime<Utc>, now: &Clock) -> String {
    now.local(t).format("%Y-%m-%d").to_string()
}

/// Writes rows as an aligned table; columns with nothing in them are left out.
pub fn table(out: &mut impl Write, items: &[ListItem], now: &Clock) -> std::io::Result<()> {
    if items.is_empty() {
        return writeln!(out, "No matches.");
    }
    let now_utc = now.now;
    let tasks_only = items.iter().all(|i| i.kind == NodeKind::Task);
    let mut columns: Vec<(&str, Vec<String>)> = vec![("ID", items.iter().map(|i| i.short.clone()).collect())];
    if !tasks_only {
        columns.push(("Kind", items.iter().map(|i| i.kind.to_string()).collect()));
    }
    // `relative` signs past instants with '-'; an age is how long ago.
    columns.push((
        "Age",
        items.iter().map(|i| relative(i.created, now_utc).trim_start_matches('-').to_string()).collect(),
    ));
    if items.iter().any(|i| i.status.is_some_and(|s| s != heph_engine::Status::Pending)) {
        columns.push(("St", items.iter().map(|i| i.status.map(|s| s.to_string()).unwrap_or_default()).collect()));
    }
    columns.push(("P", items.iter().map(|i| i.priority.map(|p| p.to_string()).unwrap_or_default()).collect()));
    columns.push(("Project", items.iter().map(|i| i.project.clone().unwrap_or_default()).collect()));
    columns.push(("Tags", items.iter().map(|i| i.tags.join(" ")).collect()));
    columns.push(("Due", items.iter().map(|i| i.due.map(|d| day(d, now)).unwrap_or_default()).collect()));
    columns.push((
        "Title",
        items
            .iter()
            .map(|i| {
                let mut t = i.title.clone();
                if i.annotations > 0 {
                    t.push_str(&format!(" [{}]", i.annotations));
                }
                if !i.conflicts.is_empty() {
                    t.push_str(" (conflict)");
                }
                t
            })
            .collect(),
    ));
    if items.iter().any(|i| i.kind == NodeKind::Task) {
        columns.push((
            "Urg",
            items
                .iter()
                .map(|i| if i.kind == NodeKind::Task { format!("{:.1}", i.urgency) } else { String::new() })
                .collect(),
        ));
    }
    columns.retain(|(name, cells)| matches!(*name, "ID" | "Title") || cells.iter().any(|c| !c.is_empty()));
    let widths: Vec<usize> = columns
        .iter()
        .map(|(name, cells)| cells.iter().map(|c| columns_of(c)).max().unwrap_or(0).max(name.len()))
        .collect();
    let last = columns.len() - 1;
    let mut line = String::new();
    for (c, (name, _)) in columns.iter().enumerate() {
        push_cell(&mut line, name, widths[c], c == last);
    }
    writeln!(out, "{}", line.trim_end())?;
    for row in 0..items.len() {
        line.clear();
        for (c, (_, cells)) in columns.iter().enumerate() {
            push_cell(&mut line, &cells[row], widths[c], c == last);
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(out)?;
    writeln!(out, "{} {}", items.len(), if items.len() == 1 { "node" } else { "nodes" })
}

/// How many terminal columns `text` takes (CJK and emoji take two); ASCII
/// text, most of a listing, is counted without the width tables.
pub fn columns_of(text: &str) -> usize {
    if text.is_ascii() { text.len() } else { text.width() }
}

fn push_cell(line: &mut String, cell: &str, width: usize, last: bool) {
    line.push_str(cell);
    if !last {
        for _ in columns_of(cell)..width + 1 {
            line.push(' ');
        }
    }
}

/// Writes one node in full.
pub fn node(out: &mut impl Write, shown: &Shown, now: &Clock) -> std::io::Result<()> {
    let n = &shown.node;
    let mut rows: Vec<(&str, String)> =
        vec![("ID", format!("{} ({})", shown.short, n.id)), ("Kind", n.kind.to_string()), ("Title", n.title.clone())];
    if let Some(s) = n.status {
        rows.push(("Status", s.to_string()));
    }
    if n.deleted {
        rows.push(("Deleted", "yes (heph undelete undoes it)".into()));
    }
    if let Some(p) = n.priority {
        rows.push(("Priority", p.to_string()));
    }
    if let Some(p) = &n.project {
        rows.push(("Project", p.clone()));
    }
    if !n.tags.is_empty() {
        rows.push(("Tags", n.tags.iter().map(|t| format!("+{t}")).collect::<Vec<_>>().join(" ")));
    }
    if let Some(d) = n.date {
        rows.push(("Date", d.to_string()));
    }
    for (name, value) in
        [("Due", n.due), ("Wait", n.wait), ("Scheduled", n.scheduled), ("Started", n.start), ("Ended", n.end)]
    {
        if let Some(t) = value {
            rows.push((name, at(t, now)));
        }
    }
    rows.push(("Created", at(n.created, now)));
    rows.push(("Modified", at(n.modified, now)));
    for (k, v) in &n.uda {
        rows.push((k.as_str(), v.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &rows {
        writeln!(out, "{k:width$}  {v}")?;
    }
    for (title, refs) in
        [("Depends on", &shown.dependencies), ("Links", &shown.linked), ("Backlinks", &shown.backlinks)]
    {
        if !refs.is_empty() {
            writeln!(out, "\n{title}:")?;
            for r in refs {
                writeln!(out, "  {}  {}", r.short, r.title.as_deref().unwrap_or("(not in this replica)"))?;
            }
        }
    }
    if !n.annotations.is_empty() {
        writeln!(out, "\nAnnotations:")?;
        for a in &n.annotations {
            writeln!(out, "  {}  {}", at(a.entry, now), a.description)?;
        }
    }
    if !n.body.is_empty() {
        writeln!(out, "\n{}", n.body.trim_end())?;
    }
    if !n.extra.is_empty() {
        // Written by another program or a newer heph: shown raw, never hidden.
        writeln!(out, "\nUnread fields:")?;
        let width = n.extra.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (k, v) in &n.extra {
            writeln!(out, "  {k:width$}  {v}")?;
        }
    }
    if !shown.conflicts.is_empty() {
        writeln!(out)?;
        conflicts(out, &shown.conflicts, |_| shown.short.clone(), now)?;
    }
    Ok(())
}

/// Writes the conflict list.
pub fn conflicts(
    out: &mut impl Write,
    list: &[Conflict],
    short: impl Fn(&heph_engine::NodeId) -> String,
    now: &Clock,
) -> std::io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "No conflicts.");
    }
    for c in list {
        writeln!(out, "{} {}: {} values", short(&c.id), c.field, c.values.len())?;
        for (i, v) in c.values.iter().enumerate() {
            let mark = if i == 0 { "  (shown)" } else { "" };
            writeln!(out, "  {}. {}{mark}", i + 1, conflict_value(v, now))?;
        }
    }
    writeln!(out, "\nKeep one with: heph conflicts resolve ID FIELD NUMBER (or every one: --all --keep NUMBER)")
}

/// A conflicting value as `heph show` writes it: a date in the user's zone.
#[must_use]
pub fn conflict_value(value: &str, now: &Clock) -> String {
    match DateTime::parse_from_rfc3339(value) {
        Ok(t) => display(t.to_utc(), now),
        Err(_) => value.to_string(),
    }
}

/// Writes a node's history.
pub fn history(out: &mut impl Write, entries: &[HistoryEntry], now: &Clock) -> std::io::Result<()> {
    for e in entries {
        let device = e.device.get(..8).unwrap_or(&e.device);
        writeln!(out, "{}  {}  {device}  {}", at(e.time, now), &e.hash[..8.min(e.hash.len())], e.message)?;
    }
    Ok(())
}

/// What `heph undo` is about to revert, for the confirmation.
#[must_use]
pub fn undo_plan(plan: &heph_engine::UndoPlan, short: &str, now: &Clock) -> String {
    let mut text = format!(
        "The last change made on this device, to {} {short} '{}':\n  {}  ({})\n",
        plan.kind,
        plan.title,
        plan.message,
        display(plan.time, now)
    );
    if plan.creation {
        text.push_str(&format!(
            "It added the {}; undoing it deletes the {} (heph undelete brings it back).\n",
            plan.kind, plan.kind
        ));
        return text;
    }
    if plan.fields.is_empty() {
        text.push_str("It changed no field heph shows; undoing it changes nothing else.\n");
        return text;
    }
    text.push_str("It set (before → after); undoing it puts back the values before:\n");
    let width = plan.fields.iter().map(|f| f.field.chars().count()).max().unwrap_or(0);
    // Times read in the user's zone; other values as they are, long ones cut.
    let value = |v: &Option<String>| -> String {
        match v.as_deref() {
            None => "(none)".to_string(),
            Some(v) => match DateTime::parse_from_rfc3339(v) {
                Ok(t) => display(t.with_timezone(&Utc), now),
                Err(_) => {
                    let one_line = v.replace('\n', " ⏎ ");
                    if one_line.chars().count() > 60 {
                        format!("{}…", one_line.chars().take(59).collect::<String>())
                    } else {
                        one_line
                    }
                }
            },
        }
    };
    for f in &plan.fields {
        text.push_str(&format!("  {:<width$}  {} → {}\n", f.field, value(&f.before), value(&f.after)));
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use heph_engine::{Node, NodeId, NodeKind};

    use crate::output::Shown;

    #[test]
    fn columns_count_wide_characters_twice() {
        assert_eq!([super::columns_of("ab"), super::columns_of("日本"), super::columns_of("🚀x")], [2, 4, 3]);
    }

    #[test]
    fn conflicting_dates_read_as_in_heph_show() {
        let now: heph_engine::Clock =
            chrono::FixedOffset::east_opt(3600).unwrap().with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap().into();
        // Local midnight of 6 December at +01:00 is 5 December in UTC.
        let shown = super::conflict_value("2026-12-05T23:00:00+00:00", &now);
        assert!(shown.contains("2026-12-06") && !shown.contains("T23"), "{shown}");
        assert_eq!(super::conflict_value("Shared (from phone)", &now), "Shared (from phone)");
    }

    #[test]
    fn show_prints_unread_fields() {
        let now = chrono::FixedOffset::east_opt(0).unwrap().with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut node = Node::new(NodeId::random(), NodeKind::Task, "t".into(), now.to_utc());
        node.extra.insert("colour".into(), serde_json::json!("blue"));
        node.extra.insert("title".into(), serde_json::json!(42));
        let shown = Shown {
            node,
            short: "abcdef".into(),
            dependencies: vec![],
            linked: vec![],
            backlinks: vec![],
            conflicts: vec![],
        };
        let mut out = Vec::new();
        super::node(&mut out, &shown, &now.into()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Unread fields:\n  colour  \"blue\"\n  title   42\n"), "{text}");
    }
}
