//! `heph edit`: a node as a Markdown file with a front-matter block, opened in
//! the user's editor; what the user changed becomes Automerge edits.
//!
//! Only the fields the user changed are written (the edited text is compared
//! with the text they were given, not with the node as it is now), so an edit
//! made meanwhile on another device is not undone by an unchanged field.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use heph_engine::Clock;
use heph_engine::when::display;
use heph_engine::{Edit, Node, NodeId, NodeKind, Priority, Status, parse_when};

/// The fields a user can edit, as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    title: String,
    status: Option<String>,
    priority: String,
    project: String,
    tags: BTreeSet<String>,
    due: String,
    wait: String,
    scheduled: String,
    depends: BTreeSet<String>,
    links: BTreeSet<String>,
    body: String,
}

fn date(t: Option<DateTime<Utc>>, now: &Clock) -> String {
    t.map(|t| display(t, now)).unwrap_or_default()
}

fn short(ids: &BTreeSet<NodeId>) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_hex()[..8].to_string()).collect()
}

/// The page of `node`.
pub fn page(node: &Node, now: &Clock) -> Page {
    Page {
        title: node.title.clone(),
        status: node.status.map(|s| s.to_string()),
        priority: node.priority.map(|p| p.to_string()).unwrap_or_default(),
        project: node.project.clone().unwrap_or_default(),
        tags: node.tags.clone(),
        due: date(node.due, now),
        wait: date(node.wait, now),
        scheduled: date(node.scheduled, now),
        depends: short(&node.depends),
        links: short(&node.links),
        body: node.body.clone(),
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(" ")
}

/// The Markdown text of a page.
pub fn render(kind: NodeKind, p: &Page) -> String {
    let mut s = String::from("---\n");
    s.push_str(&format!("title: {}\n", p.title));
    if kind == NodeKind::Task {
        s.push_str(&format!("status: {}\n", p.status.as_deref().unwrap_or("pending")));
        s.push_str(&format!("priority: {}\n", p.priority));
        s.push_str(&format!("project: {}\n", p.project));
    }
    s.push_str(&format!("tags: {}\n", join(&p.tags)));
    if kind == NodeKind::Task {
        s.push_str(&format!("due: {}\n", p.due));
        s.push_str(&format!("wait: {}\n", p.wait));
        s.push_str(&format!("scheduled: {}\n", p.scheduled));
        s.push_str(&format!("depends: {}\n", join(&p.depends)));
    }
    s.push_str(&format!("links: {}\n", join(&p.links)));
    s.push_str("---\n\n");
    s.push_str(&p.body);
    s
}

/// Reads a page back. The front matter is `key: value` lines between `---`
/// lines; the body is everything after the blank line that follows. Line
/// ends may be CRLF (an editor that writes them); the body keeps its own.
pub fn parse(text: &str, kind: NodeKind) -> Result<Page> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .context("the file must start with a --- line (the front matter)")?;
    let closing = ["\n---\n", "\n---\r\n", "\r\n---\n", "\r\n---\r\n"]
        .iter()
        .filter_map(|c| rest.find(c).map(|at| (at, c.len())))
        .min();
    let (front, body) = match closing {
        Some((at, len)) => (&rest[..at], &rest[at + len..]),
        None => rest
            .strip_suffix("\n---")
            .or_else(|| rest.strip_suffix("\n---\r\n"))
            .map(|f| (f, ""))
            .context("the front matter has no closing --- line")?,
    };
    let body = body.strip_prefix("\r\n").or_else(|| body.strip_prefix('\n')).unwrap_or(body);
    let mut page = Page {
        title: String::new(),
        status: (kind == NodeKind::Task).then(|| "pending".to_string()),
        priority: String::new(),
        project: String::new(),
        tags: BTreeSet::new(),
        due: String::new(),
        wait: String::new(),
        scheduled: String::new(),
        depends: BTreeSet::new(),
        links: BTreeSet::new(),
        body: body.to_string(),
    };
    for (n, line) in front.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (key, value) =
            line.split_once(':').with_context(|| format!("front matter line {}: expected key: value", n + 2))?;
        let value = value.trim().to_string();
        let words = || {
            value.split([' ', ',']).filter(|w| !w.is_empty()).map(|w| w.trim_start_matches('+').to_string()).collect()
        };
        match key.trim() {
            "title" => page.title = value,
            "status" => page.status = Some(value),
            "priority" => page.priority = value,
            "project" => page.project = value,
            "tags" => page.tags = words(),
            "due" => page.due = value,
            "wait" => page.wait = value,
            "scheduled" => page.scheduled = value,
            "depends" => page.depends = words(),
            "links" => page.links = words(),
            other => bail!("front matter line {}: unknown field {other:?}", n + 2),
        }
    }
    if page.title.trim().is_empty() {
        bail!("the title is empty");
    }
    Ok(page)
}

fn when(key: &str, value: &str, now: &Clock) -> Result<Option<DateTime<Utc>>> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    parse_when(value, now).map(Some).with_context(|| key.to_string())
}

/// The edits that turn page `before` into page `after`. `resolve` turns an
/// id prefix into an id.
pub fn edits(
    before: &Page,
    after: &Page,
    now: &Clock,
    mut resolve: impl FnMut(&str) -> Result<NodeId>,
) -> Result<Vec<Edit>> {
    let mut out = Vec::new();
    if before.title != after.title {
        out.push(Edit::Title(after.title.trim().to_string()));
    }
    if before.status != after.status
        && let Some(s) = &after.status
    {
        out.push(Edit::Status(s.parse::<Status>().map_err(anyhow::Error::msg).context("status")?));
    }
    if before.priority != after.priority {
        let p = if after.priority.is_empty() {
            None
        } else {
            Some(after.priority.parse::<Priority>().map_err(anyhow::Error::msg).context("priority")?)
        };
        out.push(Edit::Priority(p));
    }
    if before.project != after.project {
        out.push(Edit::Project((!after.project.is_empty()).then(|| after.project.clone())));
    }
    for (key, b, a) in [
        ("due", &before.due, &after.due),
        ("wait", &before.wait, &after.wait),
        ("scheduled", &before.scheduled, &after.scheduled),
    ] {
        if b != a {
            let t = when(key, a, now)?;
            out.push(match key {
                "due" => Edit::Due(t),
                "wait" => Edit::Wait(t),
                _ => Edit::Scheduled(t),
            });
        }
    }
    out.extend(after.tags.difference(&before.tags).map(|t| Edit::AddTag(t.clone())));
    out.extend(before.tags.difference(&after.tags).map(|t| Edit::RemoveTag(t.clone())));
    for p in after.depends.difference(&before.depends) {
        out.push(Edit::Depend(resolve(p)?));
    }
    for p in before.depends.difference(&after.depends) {
        out.push(Edit::Undepend(resolve(p)?));
    }
    for p in after.links.difference(&before.links) {
        out.push(Edit::Link(resolve(p)?));
    }
    for p in before.links.difference(&after.links) {
        out.push(Edit::Unlink(resolve(p)?));
    }
    // An editor that wrote every line end as CRLF changed no text of a body
    // that had none; a body that had some keeps them where they were.
    let body = if before.body.contains('\r') { after.body.clone() } else { after.body.replace("\r\n", "\n") };
    if before.body != body {
        out.push(Edit::Body(body));
    }
    Ok(out)
}

/// Runs the user's editor on `path` and waits for it, as git does:
/// `$VISUAL`, then `$EDITOR`, then `vi`, through the shell so that
/// `EDITOR="code --wait"` works.
pub fn run_editor(path: &Path) -> Result<()> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("heph-editor")
        .arg(path)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?}; set $EDITOR"))?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing was changed");
    }
    Ok(())
}

/// A page handed to the user's editor: the temporary file it is written to,
/// removed afterwards unless what the user wrote could not be used.
pub struct Draft {
    file: tempfile::NamedTempFile,
    given: String,
}

impl Draft {
    /// Writes `text` to a new temporary Markdown file named after `name`.
    pub fn new(text: &str, name: &str) -> Result<Self> {
        let mut file = tempfile::Builder::new().prefix(&format!("heph-{name}-")).suffix(".md").tempfile()?;
        file.write_all(text.as_bytes())?;
        file.flush()?;
        Ok(Self { file, given: text.to_string() })
    }

    /// The file to open.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// What the user saved, or `None` when it is what they were given.
    /// A file that is not UTF-8 text is kept and the error names it.
    pub fn read(self) -> Result<(Self, Option<String>), anyhow::Error> {
        match std::fs::read_to_string(self.file.path()) {
            Ok(text) if text == self.given => Ok((self, None)),
            Ok(text) => Ok((self, Some(text))),
            Err(e) => Err(self.keep(anyhow::Error::new(e).context("cannot read back the edited file as UTF-8 text"))),
        }
    }

    /// `e`, with the file kept and named so the user's text is not lost.
    pub fn keep(self, e: anyhow::Error) -> anyhow::Error {
        match self.file.keep() {
            Ok((_, path)) => {
                e.context(format!("your text is kept in {}; fix it and run heph edit again", path.display()))
            }
            Err(_) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> Clock {
        chrono::FixedOffset::east_opt(3600).unwrap().with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap().into()
    }

    #[test]
    fn page_round_trips_and_diffs_only_what_changed() {
        let mut node = Node::new(NodeId::random(), NodeKind::Task, "Buy milk".into(), now().now);
        node.tags.insert("errand".into());
        node.due = Some(parse_when("tomorrow", &now()).unwrap());
        node.body = "two litres\n".into();
        let before = page(&node, &now());
        let text = render(node.kind, &before);
        assert_eq!(parse(&text, node.kind).unwrap(), before);
        let edited = text.replace("tags: errand", "tags: errand shop").replace("two litres", "three litres");
        let after = parse(&edited, node.kind).unwrap();
        let e = edits(&before, &after, &now(), |_| bail!("no ids here")).unwrap();
        assert_eq!(e, vec![Edit::AddTag("shop".into()), Edit::Body("three litres\n".into())]);
    }

    #[test]
    fn bad_pages_are_errors() {
        assert!(parse("title: x\n", NodeKind::Note).is_err());
        assert!(parse("---\ntitle: x\n", NodeKind::Note).is_err());
        assert!(parse("---\ntitle:\n---\n", NodeKind::Note).is_err());
        assert!(parse("---\ncolour: red\ntitle: x\n---\n", NodeKind::Note).is_err());
        let p = parse("---\ntitle: x\n---\n", NodeKind::Note).unwrap();
        assert_eq!(p.body, "");
    }
}
