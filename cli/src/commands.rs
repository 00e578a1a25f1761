//! What each subcommand does: parse its words, call the replica, print.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset, Local, Utc};
use heph_engine::taskwarrior;
use heph_engine::{Annotation, Edit, Filter, Node, NodeId, NodeKind, Status, StatusFilter, parse_day, parse_mods};
use serde::Serialize;

use crate::api::Api;
use crate::output::{ListItem, NodeRef, Shown};
use crate::{Cli, Command, ConflictAction, Format, ImportFormat, editor, render};

/// What every command needs.
struct Ctx {
    db: Option<PathBuf>,
    json: bool,
    now: DateTime<Utc>,
    local: DateTime<FixedOffset>,
}

impl Ctx {
    /// The daemon for this store if one runs, else the store itself.
    fn open(&self) -> Result<Api> {
        Api::open(self.db.as_deref(), false)
    }

    /// Like [`Self::open`], for commands that only read.
    fn open_read(&self) -> Result<Api> {
        Api::open(self.db.as_deref(), true)
    }
}

fn stdout() -> Out {
    BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

type Out = BufWriter<std::io::StdoutLock<'static>>;

/// Prints `value` as JSON with `--json`, else as text through `text`.
fn emit<T: Serialize>(ctx: &Ctx, value: &T, text: impl FnOnce(&mut Out) -> Result<()>) -> Result<()> {
    if ctx.json {
        return print_json(value);
    }
    let mut out = stdout();
    text(&mut out)?;
    out.flush()?;
    Ok(())
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = stdout();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let local = Local::now().fixed_offset();
    let ctx = Ctx { db: cli.db, json: cli.json, now: local.to_utc(), local };
    match cli.command {
        Command::Add { words } => add(&ctx, &words),
        Command::Ls { filter, limit } => ls(&ctx, &filter, limit),
        Command::Show { id } => {
            let mut r = ctx.open_read()?;
            let id = r.resolve(&id)?;
            show(&ctx, &mut r, id)
        }
        Command::Done { ids } => set_status(&ctx, &ids, Status::Done, "done", "Completed"),
        Command::Start { ids } => set_status(&ctx, &ids, Status::Active, "start", "Started"),
        Command::Stop { ids } => set_status(&ctx, &ids, Status::Pending, "stop", "Stopped"),
        Command::Modify { id, words } => modify(&ctx, &id, &words),
        Command::Edit { id } => {
            let id = ctx.open()?.resolve(&id)?;
            edit(&ctx, id)
        }
        Command::Annotate { id, text } => {
            let annotation = Annotation { entry: ctx.now, description: text.join(" ") };
            change(&ctx, &[id], &[Edit::Annotate(annotation)], "annotate", "Annotated")
        }
        Command::Delete { ids } => change(&ctx, &ids, &[Edit::Deleted(true)], "delete", "Deleted"),
        Command::Restore { ids } => change(&ctx, &ids, &[Edit::Deleted(false)], "restore", "Restored"),
        Command::Note { words, body, edit: open_editor } => note(&ctx, &words, body.as_deref(), open_editor),
        Command::Journal { day, append, edit: open_editor } => journal(&ctx, day.as_deref(), append, open_editor),
        Command::Link { from, to } => link(&ctx, &from, &to, true),
        Command::Unlink { from, to } => link(&ctx, &from, &to, false),
        Command::Search { words, all } => search(&ctx, &words, all),
        Command::History { id } => history(&ctx, &id),
        Command::Conflicts { action } => conflicts(&ctx, action),
        Command::Export { format, output } => export(&ctx, format, output.as_deref()),
        Command::Import { file, format } => import(&ctx, file.as_deref(), format),
        Command::Sync { status } => sync(&ctx, status),
        Command::Unreadable => unreadable(&ctx),
        Command::Completions { .. } | Command::Auth { .. } | Command::Daemon { .. } | Command::Tui { .. } => Ok(()),
    }
}

fn short(r: &mut Api, id: NodeId) -> Result<String> {
    let len = r.prefix_lens(&[id])?.first().copied().unwrap_or(heph_engine::MIN_PREFIX);
    Ok(id.to_hex()[..len].to_string())
}

fn refs(r: &mut Api, ids: &[NodeId]) -> Result<Vec<NodeRef>> {
    let lens = r.prefix_lens(ids)?;
    let found = r.summaries(ids)?;
    Ok(ids
        .iter()
        .zip(lens)
        .map(|(id, len)| NodeRef {
            id: *id,
            short: id.to_hex()[..len].to_string(),
            title: found.iter().find(|s| s.id == *id).map(|s| s.title.clone()),
        })
        .collect())
}

fn shown(r: &mut Api, node: Node) -> Result<Shown> {
    let backlinks: Vec<NodeId> = r.backlinks(node.id)?.into_iter().map(|s| s.id).collect();
    let conflicts = r.conflicts_of(node.id)?;
    Ok(Shown {
        short: short(r, node.id)?,
        dependencies: refs(r, &node.depends.iter().copied().collect::<Vec<_>>())?,
        linked: refs(r, &node.links.iter().copied().collect::<Vec<_>>())?,
        backlinks: refs(r, &backlinks)?,
        conflicts,
        node,
    })
}

fn show(ctx: &Ctx, r: &mut Api, id: NodeId) -> Result<()> {
    let node = r.get(id)?;
    let shown = shown(r, node)?;
    emit(ctx, &shown, |out| Ok(render::node(out, &shown, ctx.local)?))
}

/// Reports a write, then ends the command (see [`Api::finish`]).
fn done(ctx: &Ctx, mut r: Api, node: Node, verb: &str) -> Result<()> {
    report(ctx, &mut r, node, verb)?;
    r.finish();
    Ok(())
}

/// Prints what a write did: the node as JSON, or one line of text.
fn report(ctx: &Ctx, r: &mut Api, node: Node, verb: &str) -> Result<()> {
    if ctx.json {
        return print_json(&shown(r, node)?);
    }
    let mut out = stdout();
    writeln!(out, "{verb} {} {} '{}'.", node.kind, short(r, node.id)?, node.title)?;
    out.flush()?;
    Ok(())
}

fn resolve_depends(r: &mut Api, depends: &[(bool, String)]) -> Result<Vec<Edit>> {
    depends
        .iter()
        .map(|(add, prefix)| {
            let id = r.resolve(prefix).with_context(|| format!("depends:{prefix}"))?;
            Ok(if *add { Edit::Depend(id) } else { Edit::Undepend(id) })
        })
        .collect()
}

fn add(ctx: &Ctx, words: &[String]) -> Result<()> {
    let mods = parse_mods(words, ctx.local)?;
    let title = mods.title.clone().context("a task needs a title: heph add Buy milk due:tomorrow")?;
    let mut r = ctx.open()?;
    let mut edits = mods.edits;
    edits.extend(resolve_depends(&mut r, &mods.depends)?);
    let draft = Node::new(NodeId::random(), NodeKind::Task, title, ctx.now);
    let node = r.create(&draft, &edits, &format!("add {}", words.join(" ")))?;
    done(ctx, r, node, "Created")
}

fn ls(ctx: &Ctx, words: &[String], limit: Option<usize>) -> Result<()> {
    let filter = Filter::parse(words, ctx.local)?;
    let mut r = ctx.open_read()?;
    let rows = r.list(&filter, ctx.now, limit)?;
    print_rows(ctx, &mut r, rows)?;
    if !ctx.json {
        let hidden = r.unreadable()?.len();
        if hidden > 0 {
            let nodes = if hidden == 1 { "node" } else { "nodes" };
            println!("{hidden} {nodes} could not be read; `heph unreadable` lists them");
        }
    }
    Ok(())
}

fn unreadable(ctx: &Ctx) -> Result<()> {
    let list = ctx.open_read()?.unreadable()?;
    emit(ctx, &list, |out| {
        if list.is_empty() {
            writeln!(out, "Every stored document reads as a node.")?;
        }
        for u in &list {
            writeln!(out, "{}  {:>8} B  {}", u.id, u.bytes, u.reason)?;
        }
        if !list.is_empty() {
            writeln!(
                out,
                "\n{} documents are kept and synced as they are; `heph export` includes them raw.",
                list.len()
            )?;
        }
        Ok(())
    })
}

fn print_rows(ctx: &Ctx, r: &mut Api, rows: Vec<(f64, heph_engine::NodeSummary)>) -> Result<()> {
    let ids: Vec<NodeId> = rows.iter().map(|(_, row)| row.id).collect();
    let lens = r.prefix_lens(&ids)?;
    let now_ms = ctx.now.timestamp_millis();
    let items: Vec<ListItem> = rows
        .iter()
        .zip(lens)
        .map(|((urgency, row), len)| ListItem::of(row, row.id.to_hex()[..len].to_string(), *urgency, now_ms))
        .collect();
    emit(ctx, &items, |out| Ok(render::table(out, &items, ctx.local)?))
}

/// Applies the same edits to several nodes, each as one change.
fn change(ctx: &Ctx, ids: &[String], edits: &[Edit], message: &str, verb: &str) -> Result<()> {
    change_with(ctx, ctx.open()?, ids, edits, message, verb)
}

fn change_with(ctx: &Ctx, mut r: Api, ids: &[String], edits: &[Edit], message: &str, verb: &str) -> Result<()> {
    let resolved = ids.iter().map(|p| r.resolve(p)).collect::<Result<Vec<_>, _>>()?;
    for id in resolved {
        let node = r.edit(id, edits, message, ctx.now)?;
        report(ctx, &mut r, node, verb)?;
    }
    r.finish();
    Ok(())
}

fn set_status(ctx: &Ctx, ids: &[String], status: Status, message: &str, verb: &str) -> Result<()> {
    let mut r = ctx.open()?;
    let resolved = ids.iter().map(|p| r.resolve(p)).collect::<Result<Vec<_>, _>>()?;
    for s in r.summaries(&resolved)? {
        if s.kind != NodeKind::Task {
            bail!("{} is a {}, not a task; only tasks have a status", &s.id.to_hex()[..8], s.kind);
        }
    }
    change_with(ctx, r, ids, &[Edit::Status(status)], message, verb)
}

fn modify(ctx: &Ctx, id: &str, words: &[String]) -> Result<()> {
    let mods = parse_mods(words, ctx.local)?;
    let mut r = ctx.open()?;
    let id = r.resolve(id)?;
    let mut edits = Vec::new();
    if let Some(title) = mods.title {
        edits.push(Edit::Title(title));
    }
    edits.extend(mods.edits);
    edits.extend(resolve_depends(&mut r, &mods.depends)?);
    let node = r.edit(id, &edits, &format!("modify {}", words.join(" ")), ctx.now)?;
    done(ctx, r, node, "Modified")
}

fn edit(ctx: &Ctx, id: NodeId) -> Result<()> {
    // The store is closed while the editor runs, so other heph commands work meanwhile.
    let node = ctx.open()?.get(id)?;
    let before = editor::page(&node, ctx.local);
    let text = editor::render(node.kind, &before);
    let file = editor::temp_file(&text, &id.to_hex()[..8])?;
    editor::run_editor(file.path())?;
    let edited = std::fs::read_to_string(file.path()).context("cannot read back the edited file")?;
    let keep = |e: anyhow::Error| -> anyhow::Error {
        match file.keep() {
            Ok((_, path)) => {
                e.context(format!("your text is kept in {}; fix it and run heph edit again", path.display()))
            }
            Err(_) => e,
        }
    };
    if edited == text {
        println!("No changes.");
        return Ok(());
    }
    let after = match editor::parse(&edited, node.kind) {
        Ok(p) => p,
        Err(e) => return Err(keep(e)),
    };
    let mut r = ctx.open()?;
    let edits = match editor::edits(&before, &after, ctx.local, |p| r.resolve(p)) {
        Ok(e) => e,
        Err(e) => return Err(keep(e)),
    };
    let node = r.edit(id, &edits, "edit", ctx.now)?;
    done(ctx, r, node, "Edited")
}

fn note(ctx: &Ctx, words: &[String], body: Option<&str>, open_editor: bool) -> Result<()> {
    let (tags, title): (Vec<&String>, Vec<&String>) = words.iter().partition(|w| w.starts_with('+') && w.len() > 1);
    if title.is_empty() {
        bail!("a note needs a title: heph note \"Espresso ratios\"");
    }
    let title = title.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    let mut draft = Node::new(NodeId::random(), NodeKind::Note, title, ctx.now);
    draft.tags = tags.iter().map(|t| t[1..].to_string()).collect();
    draft.body = match body {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the body from standard input")?;
            text
        }
        Some(text) => text.to_string(),
        None => String::new(),
    };
    let mut r = ctx.open()?;
    let node = r.create(&draft, &[], "note")?;
    if open_editor {
        drop(r);
        return edit(ctx, node.id);
    }
    done(ctx, r, node, "Created")
}

fn journal(ctx: &Ctx, day: Option<&str>, append: Option<String>, open_editor: bool) -> Result<()> {
    let day = parse_day(day.unwrap_or("today"), ctx.local)?;
    let mut r = ctx.open()?;
    let mut node = r.journal(day)?;
    if let Some(text) = append {
        node = r.edit(node.id, &[Edit::AppendBody(text)], "append", ctx.now)?;
    }
    if open_editor {
        drop(r);
        return edit(ctx, node.id);
    }
    show(ctx, &mut r, node.id)?;
    r.finish();
    Ok(())
}

fn link(ctx: &Ctx, from: &str, to: &str, add: bool) -> Result<()> {
    let mut r = ctx.open()?;
    let from = r.resolve(from)?;
    let to = r.resolve(to)?;
    if from == to {
        bail!("a node cannot link to itself");
    }
    let (edit, verb) = if add { (Edit::Link(to), "Linked") } else { (Edit::Unlink(to), "Unlinked") };
    let node = r.edit(from, &[edit], if add { "link" } else { "unlink" }, ctx.now)?;
    done(ctx, r, node, verb)
}

fn search(ctx: &Ctx, words: &[String], all: bool) -> Result<()> {
    let mut filter = Filter::everything();
    if !all {
        filter.status = StatusFilter::Open;
    }
    let mut r = ctx.open_read()?;
    let rows = r.search(&words.join(" "), &filter, ctx.now)?;
    print_rows(ctx, &mut r, rows)
}

fn history(ctx: &Ctx, id: &str) -> Result<()> {
    let mut r = ctx.open_read()?;
    let id = r.resolve(id)?;
    let entries = r.history(id)?;
    emit(ctx, &entries, |out| Ok(render::history(out, &entries, ctx.local)?))
}

fn conflicts(ctx: &Ctx, action: Option<ConflictAction>) -> Result<()> {
    let mut r = if action.is_some() { ctx.open()? } else { ctx.open_read()? };
    if let Some(ConflictAction::Resolve { id, field, choice }) = action {
        let id = r.resolve(&id)?;
        let index = choice.checked_sub(1).context("values are numbered from 1")?;
        let node = r.resolve_conflict(id, &field, index, ctx.now)?;
        return done(ctx, r, node, "Resolved");
    }
    let list = r.conflicts()?;
    if ctx.json {
        return print_json(&list);
    }
    let ids: Vec<NodeId> = list.iter().map(|c| c.id).collect();
    let lens = r.prefix_lens(&ids)?;
    let mut out = stdout();
    render::conflicts(&mut out, &list, |id| {
        let len = ids.iter().position(|i| i == id).and_then(|p| lens.get(p).copied()).unwrap_or(8);
        id.to_hex()[..len].to_string()
    })?;
    out.flush()?;
    Ok(())
}

fn export(ctx: &Ctx, format: Format, output: Option<&Path>) -> Result<()> {
    let mut r = ctx.open_read()?;
    let (text, count) = match format {
        // Every stored document, those this heph cannot read included (raw):
        // a backup must be complete.
        Format::Native => {
            let records = r.export_records()?;
            (serde_json::to_string_pretty(&records)?, records.len())
        }
        Format::Taskwarrior => {
            let tasks: Vec<serde_json::Value> = r.export()?.iter().filter_map(taskwarrior::to_task).collect();
            (serde_json::to_string_pretty(&tasks)?, tasks.len())
        }
    };
    match output {
        None => {
            let mut out = stdout();
            writeln!(out, "{text}")?;
            out.flush()?;
        }
        Some(path) => {
            // Write beside the target, then rename: a reader never sees half a file.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let mut tmp =
                tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
            writeln!(tmp, "{text}")?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("Exported {count} nodes to {}.", path.display());
        }
    }
    Ok(())
}

/// Parses an import file: a JSON list, or one JSON object per line.
fn records(text: &str) -> Result<Vec<serde_json::Value>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).context("the file is not valid JSON");
    }
    trimmed
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l.trim().trim_end_matches(','))
                .with_context(|| format!("line {}: not a JSON object", n + 1))
        })
        .collect()
}

fn import(ctx: &Ctx, file: Option<&Path>, format: ImportFormat) -> Result<()> {
    let text = match file {
        None => read_stdin()?,
        Some(p) if p == Path::new("-") => read_stdin()?,
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
    };
    let records = records(&text)?;
    let mut nodes = Vec::with_capacity(records.len());
    for (i, v) in records.into_iter().enumerate() {
        let tw = match format {
            ImportFormat::Auto => taskwarrior::looks_like_task(&v),
            ImportFormat::Taskwarrior => true,
            ImportFormat::Native => false,
        };
        let record = if tw {
            heph_engine::archive::Record::Node(Box::new(taskwarrior::from_task(&v, i + 1)?), None)
        } else {
            heph_engine::archive::Record::from_json(v).map_err(|e| anyhow::anyhow!("record {}: {e}", i + 1))?
        };
        nodes.push(record);
    }
    let mut r = ctx.open()?;
    let bar = indicatif::ProgressBar::new(nodes.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("importing {bar:40} {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let total = nodes.len();
    let report = r.import_records(nodes, |done, _| bar.set_position(done as u64))?;
    r.finish();
    bar.finish_and_clear();
    if ctx.json {
        return print_json(&report);
    }
    println!(
        "Imported {} nodes: {} added, {} updated, {} unchanged.",
        total, report.added, report.updated, report.unchanged
    );
    Ok(())
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
    Ok(text)
}

fn sync(ctx: &Ctx, status_only: bool) -> Result<()> {
    let mut r = ctx.open_read()?;
    let health = if status_only { r.sync_status()? } else { r.sync_now()? };
    if ctx.json {
        return print_json(&health);
    }
    let mut out = stdout();
    write_health(&mut out, &health, ctx.local)?;
    out.flush()?;
    Ok(())
}

/// Sync health as `heph sync --status` shows it.
pub fn write_health(
    out: &mut impl Write,
    health: &heph_engine::sync::SyncHealth,
    local: DateTime<FixedOffset>,
) -> Result<()> {
    let when =
        |t: Option<DateTime<Utc>>| t.map_or_else(|| "never".to_string(), |t| heph_engine::when::display(t, local));
    if health.daemon {
        writeln!(out, "Hub:            {}", health.hub_url.as_deref().unwrap_or("?"))?;
        let state = if health.connected {
            "connected"
        } else if health.auth_failure {
            "offline: the hub refused our credentials (run `heph auth login`, then `heph sync`)"
        } else {
            "offline"
        };
        writeln!(out, "State:          {state}")?;
        writeln!(out, "Last attempt:   {}", when(health.last_attempt))?;
        writeln!(out, "Last success:   {}", when(health.last_success))?;
        if let Some(e) = &health.last_error {
            writeln!(out, "Last error:     {e}")?;
        }
    } else {
        writeln!(out, "No device daemon runs for this store (start one: hephd --mode local --hub-url URL).")?;
    }
    writeln!(out, "Pending push:   {} local changes", health.pending_push)?;
    writeln!(out, "Hub cursor:     {}", health.hub_cursor)?;
    writeln!(out, "Conflicts:      {}", health.conflicts)?;
    if health.reconciling {
        writeln!(out, "Reconciling:    the hub lacks history this device holds; sending it")?;
    }
    if health.pending_changes > 0 {
        let since = health.oldest_pending.map(|t| format!(", the oldest since {}", when(Some(t)))).unwrap_or_default();
        writeln!(
            out,
            "Waiting:        {} received changes wait for changes they depend on{since}",
            health.pending_changes
        )?;
    }
    if health.unreadable > 0 {
        writeln!(out, "Unreadable:     {} documents (`heph unreadable` lists them)", health.unreadable)?;
    }
    Ok(())
}
