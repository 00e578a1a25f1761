//! `heph projects` and `heph tags`: how many of the listed tasks fall in
//! each project (sub-projects under their parents) and carry each tag, as
//! Taskwarrior's `task projects` and `task tags` count them. The rows are
//! what `heph ls` lists for the same filter words.

use std::collections::BTreeMap;
use std::io::Write;

use heph_engine::NodeSummary;
use schemars::JsonSchema;
use serde::Serialize;

/// One line of `heph projects --json`.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProjectCount {
    /// The project's full dotted name (`home.garden`); null for the tasks
    /// without a project.
    pub project: Option<String>,
    /// Its last part (`garden`), as shown indented under its parent.
    pub name: String,
    /// How many parents it has (`home.garden`: 1).
    pub depth: usize,
    /// Listed tasks in exactly this project.
    pub count: usize,
    /// Listed tasks in it or any of its sub-projects.
    pub total: usize,
}

/// One line of `heph tags --json`.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TagCount {
    /// The tag.
    pub tag: String,
    /// Listed tasks that carry it.
    pub count: usize,
}

/// Every project of `rows` and each of its parents, in name order (so a
/// sub-project follows its parent), then the rows without a project.
#[must_use]
pub fn projects(rows: &[NodeSummary]) -> Vec<ProjectCount> {
    // Full name → (own, total).
    let mut counts: BTreeMap<Vec<&str>, (usize, usize)> = BTreeMap::new();
    let mut none = 0;
    for row in rows {
        let Some(project) = row.project.as_deref().filter(|p| !p.is_empty()) else {
            none += 1;
            continue;
        };
        let parts: Vec<&str> = project.split('.').collect();
        for depth in 1..=parts.len() {
            let entry = counts.entry(parts[..depth].to_vec()).or_default();
            entry.1 += 1;
            if depth == parts.len() {
                entry.0 += 1;
            }
        }
    }
    // Sorting by parts (not by the joined text) keeps `a.b` right under `a`
    // even when `a-z` exists.
    let mut out: Vec<ProjectCount> = counts
        .into_iter()
        .map(|(parts, (count, total))| ProjectCount {
            project: Some(parts.join(".")),
            name: parts.last().copied().unwrap_or_default().to_string(),
            depth: parts.len() - 1,
            count,
            total,
        })
        .collect();
    if none > 0 {
        out.push(ProjectCount { project: None, name: "(none)".into(), depth: 0, count: none, total: none });
    }
    out
}

/// Every tag of `rows` with how many rows carry it, in name order.
#[must_use]
pub fn tags(rows: &[NodeSummary]) -> Vec<TagCount> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        for tag in &row.tags {
            *counts.entry(tag.as_str()).or_default() += 1;
        }
    }
    counts.into_iter().map(|(tag, count)| TagCount { tag: tag.to_string(), count }).collect()
}

/// `heph projects` as text.
pub fn write_projects(out: &mut impl Write, list: &[ProjectCount], tasks: usize) -> std::io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "No tasks match.");
    }
    let label = |p: &ProjectCount| format!("{}{}", "  ".repeat(p.depth), p.name);
    let width = list.iter().map(|p| crate::render::columns_of(&label(p))).max().unwrap_or(0).max("Project".len());
    writeln!(out, "{}  {:>5}  {:>5}", padded("Project", width), "Tasks", "Total")?;
    for p in list {
        writeln!(out, "{}  {:>5}  {:>5}", padded(&label(p), width), p.count, p.total)?;
    }
    let named = list.iter().filter(|p| p.project.is_some()).count();
    writeln!(out, "\n{} ({})", counted(named, "project"), counted(tasks, "task"))
}

/// `heph tags` as text; `counting` names what the counts count (`Tasks`,
/// or `Nodes` when the filter took notes or journal days in).
pub fn write_tags(out: &mut impl Write, list: &[TagCount], counting: &str) -> std::io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "No tagged {} match.", counting.to_lowercase());
    }
    let width = list.iter().map(|t| crate::render::columns_of(&t.tag)).max().unwrap_or(0).max("Tag".len());
    writeln!(out, "{}  {:>5}", padded("Tag", width), counting)?;
    for t in list {
        writeln!(out, "{}  {:>5}", padded(&t.tag, width), t.count)?;
    }
    writeln!(out, "\n{}", counted(list.len(), "tag"))
}

/// `text` followed by spaces up to `width` terminal columns (CJK and emoji
/// take two).
fn padded(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(crate::render::columns_of(text))))
}

/// `n word`, with the word in the plural unless `n` is 1 ("1 note", "2 journal days").
pub(crate) fn counted<N: std::fmt::Display + PartialEq + From<u8>>(n: N, word: &str) -> String {
    if n == N::from(1) { format!("1 {word}") } else { format!("{n} {word}s") }
}

#[cfg(test)]
mod tests {
    use heph_engine::{Node, NodeId, NodeKind};

    use super::*;

    fn row(project: Option<&str>, tags: &[&str]) -> NodeSummary {
        let mut n = Node::new(NodeId::random(), NodeKind::Task, "t".into(), chrono::Utc::now());
        n.project = project.map(str::to_string);
        n.tags = tags.iter().map(|t| (*t).to_string()).collect();
        NodeSummary::of(&n, Vec::new())
    }

    #[test]
    fn sub_projects_follow_their_parents_with_own_and_total_counts() {
        let rows = [
            row(Some("home.garden"), &[]),
            row(Some("home.garden"), &[]),
            row(Some("work"), &[]),
            row(Some("home-office"), &[]),
            row(None, &[]),
            row(Some("home.garden.shed"), &[]),
        ];
        let list = projects(&rows);
        let got: Vec<(Option<&str>, usize, usize, usize)> =
            list.iter().map(|p| (p.project.as_deref(), p.depth, p.count, p.total)).collect();
        assert_eq!(
            got,
            [
                (Some("home"), 0, 0, 3),
                (Some("home.garden"), 1, 2, 3),
                (Some("home.garden.shed"), 2, 1, 1),
                (Some("home-office"), 0, 1, 1),
                (Some("work"), 0, 1, 1),
                (None, 0, 1, 1),
            ]
        );
        let mut text = Vec::new();
        write_projects(&mut text, &projects(&rows), rows.len()).unwrap();
        let text = String::from_utf8(text).unwrap();
        let garden = text.lines().find(|l| l.trim_start().starts_with("garden")).unwrap();
        assert!(garden.starts_with("  garden "), "{text}");
        assert_eq!(garden.split_whitespace().collect::<Vec<_>>(), ["garden", "2", "3"]);
        assert!(text.ends_with("5 projects (6 tasks)\n"), "{text}");
    }

    #[test]
    fn tags_count_the_rows_that_carry_them() {
        let rows = [row(None, &["b", "a"]), row(None, &["a"]), row(None, &[])];
        let got: Vec<(String, usize)> = tags(&rows).into_iter().map(|t| (t.tag, t.count)).collect();
        assert_eq!(got, [("a".to_string(), 2), ("b".to_string(), 1)]);
    }
}
