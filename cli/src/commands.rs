//! What each subcommand does: parse its words, call the replica, print.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use heph_engine::recur::{self, RecurReport};
use heph_engine::taskwarrior;
use heph_engine::{Annotation, Clock, Edit, Filter, Node, NodeId, NodeKind, Purpose, Status, parse_day};
use serde::Serialize;

use crate::api::Api;
use crate::output::{ListItem, NodeRef, Shown, Undone};
use crate::printable::Printable;
use crate::summary::counted;
use crate::{
    Cli, Command, ConflictAction, Format, ImportFormat, confirm, editor, mods, recurring, render, store, summary,
};

/// What every command needs.
struct Ctx {
    db: Option<PathBuf>,
    json: bool,
    /// `--yes`: confirmations are answered yes.
    yes: bool,
    now: DateTime<Utc>,
    /// The user's clock: now, and the local zone (`TZ` honoured).
    local: Clock,
    /// Future pending instances each recurring template keeps.
    limit: u32,
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

    /// Like [`Self::open_read`], for commands that list tasks: recurring
    /// tasks' due instances are made first (see [`recurring`]).
    fn open_listing(&self) -> Result<Api> {
        recurring::before_listing(self.open_read()?, &self.local, self.limit, || self.open())
    }

    /// Ends a write command: recurring tasks' instances are brought up to
    /// date after the write, then the store is let go (see [`Api::finish`]).
    fn settle(&self, mut r: Api) -> Result<RecurReport> {
        let report = recurring::generate(&mut r, &self.local, self.limit)?;
        r.finish();
        Ok(report)
    }
}

/// Standard output for text: control characters a document carries are
/// shown, not obeyed (see [`Printable`]). JSON goes out as it is.
fn stdout() -> Out {
    BufWriter::with_capacity(64 * 1024, Printable::new(std::io::stdout().lock()))
}

type Out = BufWriter<Printable<std::io::StdoutLock<'static>>>;

/// Standard output for data (JSON, an export): written exactly.
fn raw_stdout() -> BufWriter<std::io::StdoutLock<'static>> {
    BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

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
    let mut out = raw_stdout();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let local = Clock::system();
    let limit = cli.recurrence_limit;
    let ctx = Ctx { db: cli.db, json: cli.json, yes: cli.yes, now: local.now, local, limit };
    match cli.command {
        Command::Add { words } => add(&ctx, &words),
        Command::Ls { filter, limit } => ls(&ctx, &plain(&filter), limit),
        Command::Show { id } => {
            let mut r = ctx.open_read()?;
            let id = r.resolve(&id, Purpose::Read)?;
            show(&ctx, &mut r, id)
        }
        Command::Done { ids } => set_status(&ctx, &ids, Status::Done, "done", "Completed"),
        Command::Start { ids } => set_status(&ctx, &ids, Status::Active, "start", "Started"),
        Command::Stop { ids } => set_status(&ctx, &ids, Status::Pending, "stop", "Stopped"),
        Command::Modify { id, words, all } => modify(&ctx, &id, &words, all),
        Command::Edit { id } => {
            let id = ctx.open()?.resolve(&id, Purpose::Change)?;
            edit(&ctx, id, false)
        }
        Command::Annotate { id, text } => {
            let annotation = Annotation { entry: ctx.now, description: plain(&text).join(" ") };
            change(&ctx, &[id], &[Edit::Annotate(annotation)], "annotate", "Annotated")
        }
        Command::Delete { ids } => bulk(&ctx, &ids, true),
        Command::Undelete { ids } => bulk(&ctx, &ids, false),
        Command::Backup { file, force } => backup(&ctx, &file, force),
        Command::Restore { file } => restore(&ctx, &file),
        Command::Note { words, body, edit: open_editor } => note(&ctx, &words, body.as_deref(), open_editor),
        Command::Journal { day, append, edit: open_editor } => journal(&ctx, day.as_deref(), append, open_editor),
        Command::Link { from, to } => link(&ctx, &from, &to, true),
        Command::Unlink { from, to } => link(&ctx, &from, &to, false),
        Command::Search { words, all } => search(&ctx, &plain(&words), all),
        Command::History { id } => history(&ctx, &id),
        Command::Undo => undo(&ctx),
        Command::Projects { filter } => projects(&ctx, &plain(&filter)),
        Command::Tags { filter } => tags(&ctx, &plain(&filter)),
        Command::Conflicts { action } => conflicts(&ctx, action),
        Command::Export { format, output } => export(&ctx, format, output.as_deref()),
        Command::Import { file, format } => import(&ctx, file.as_deref(), format),
        Command::Sync { status } => sync(&ctx, status),
        Command::Unreadable => unreadable(&ctx),
        Command::Check { repair } => check(&ctx, repair),
        Command::Completions { .. } | Command::Auth { .. } | Command::Daemon { .. } | Command::Tui { .. } => Ok(()),
    }
}

/// Words with the lone `--` the user may have typed taken out, for the
/// commands whose words do not read it themselves (filters, search words,
/// annotation text): after it every word is a word, which they all are here.
pub fn plain(words: &[String]) -> Vec<String> {
    let mut words = words.to_vec();
    if let Some(at) = words.iter().position(|w| w == "--") {
        words.remove(at);
    }
    words
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
    emit(ctx, &shown, |out| Ok(render::node(out, &shown, &ctx.local)?))
}

/// Reports a write, then ends the command (see [`Api::finish`]).
fn done(ctx: &Ctx, mut r: Api, node: Node, verb: &str) -> Result<()> {
    report(ctx, &mut r, node, verb)?;
    ctx.settle(r)?;
    Ok(())
}

/// Prints what a command that may name several nodes did: a line of text
/// each, or in JSON the node (one named) or an array of them (`several`).
fn reports(ctx: &Ctx, r: &mut Api, written: Vec<(Node, &str)>, several: bool) -> Result<()> {
    if ctx.json && several {
        return print_json(&written.into_iter().map(|(n, _)| shown(r, n)).collect::<Result<Vec<_>>>()?);
    }
    for (node, verb) in written {
        report(ctx, r, node, verb)?;
    }
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
            let id = r.resolve(prefix, Purpose::Change).with_context(|| format!("depends:{prefix}"))?;
            Ok(if *add { Edit::Depend(id) } else { Edit::Undepend(id) })
        })
        .collect()
}

fn add(ctx: &Ctx, words: &[String]) -> Result<()> {
    let mut r = ctx.open()?;
    let mods = mods::read(&ctx.local, &mut r, words, Vec::new())?;
    let title = mods
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .context("a task needs a title: heph add Buy milk due:tomorrow")?;
    let mut edits = mods.edits;
    edits.extend(resolve_depends(&mut r, &mods.depends)?);
    check_recurrence(&edits, None)?;
    let draft = Node::new(NodeId::random(), NodeKind::Task, title, ctx.now);
    let node = r.create(&draft, &edits, &format!("add {}", words.join(" ")))?;
    let recurs = recur::is_template(&node);
    report(ctx, &mut r, node, "Created")?;
    let made = ctx.settle(r)?;
    if recurs && !ctx.json {
        let n = made.made.len();
        println!("Made {n} instance{} of it; the template itself is not listed.", if n == 1 { "" } else { "s" });
    }
    Ok(())
}

/// Taskwarrior's rules for a recurring task, checked on the edits of an add
/// (`before` is `None`) or a modify: `recur` needs a due date, and neither
/// can be removed from a template.
fn check_recurrence(edits: &[Edit], before: Option<&Node>) -> Result<()> {
    let sets = |key: &str| -> Option<bool> {
        edits.iter().rev().find_map(|e| match e {
            Edit::Uda(k, v) if k == key => Some(v.is_some()),
            _ => None,
        })
    };
    let due_set = edits.iter().rev().find_map(|e| match e {
        Edit::Due(d) => Some(d.is_some()),
        _ => None,
    });
    let recurs_before = before.is_some_and(|n| n.uda.contains_key(recur::RECUR));
    let has_due = due_set.unwrap_or_else(|| before.is_some_and(|n| n.due.is_some()));
    if sets(recur::RECUR) == Some(true) && !has_due {
        bail!(
            "a recurring task needs a due date to count from: add due:DATE (heph add Pay rent due:1st recur:monthly)"
        );
    }
    if recurs_before && due_set == Some(false) {
        bail!("a recurring task cannot lose its due date; to end the series, delete the template or set until:DATE");
    }
    if recurs_before && sets(recur::RECUR) == Some(false) {
        bail!("a recurring task cannot lose its recurrence; to end the series, delete the template or set until:DATE");
    }
    Ok(())
}

fn ls(ctx: &Ctx, words: &[String], limit: Option<usize>) -> Result<()> {
    let filter = Filter::parse(words, &ctx.local)?;
    let mut r = ctx.open_listing()?;
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
    emit(ctx, &items, |out| Ok(render::table(out, &items, &ctx.local)?))
}

/// Applies the same edits to several nodes, each as one change.
fn change(ctx: &Ctx, ids: &[String], edits: &[Edit], message: &str, verb: &str) -> Result<()> {
    change_with(ctx, ctx.open()?, ids, edits, message, verb)
}

fn change_with(ctx: &Ctx, mut r: Api, ids: &[String], edits: &[Edit], message: &str, verb: &str) -> Result<()> {
    let resolved = ids.iter().map(|p| r.resolve(p, Purpose::Change)).collect::<Result<Vec<_>, _>>()?;
    for id in resolved {
        let node = r.edit(id, edits, message, ctx.now)?;
        report(ctx, &mut r, node, verb)?;
    }
    ctx.settle(r)?;
    Ok(())
}

/// More nodes than this in one delete are listed and need a yes (as
/// Taskwarrior's `bulk` setting).
const BULK: usize = 3;

/// What a delete covers once recurring templates bring their series.
struct Deletion {
    /// Every node to delete.
    ids: Vec<NodeId>,
    /// The plan and question to ask first, when templates brought instances.
    ask: Option<(String, String)>,
}

/// Deleting a recurring template ends its series; its pending instances
/// are deleted with it after a yes (Taskwarrior asks the same).
fn with_series(r: &mut Api, mut ids: Vec<NodeId>) -> Result<Deletion> {
    let mut extra = Vec::new();
    for id in &ids {
        if let Some(s) = r.series(*id)?
            && s.template == *id
        {
            for p in s.pending {
                if !ids.contains(&p) && !extra.contains(&p) {
                    extra.push(p);
                }
            }
        }
    }
    if extra.is_empty() {
        return Ok(Deletion { ids, ask: None });
    }
    let listed = refs(r, &extra)?;
    let mut plan = format!(
        "Deleting a recurring template ends its series. Its {} pending instance{} will be deleted too:\n",
        extra.len(),
        if extra.len() == 1 { "" } else { "s" }
    );
    for n in &listed {
        plan.push_str(&format!("  {}  {}\n", n.short, n.title.as_deref().unwrap_or("")));
    }
    ids.extend(extra);
    let question = format!("Delete the template and its pending instances ({} tasks)?", ids.len());
    Ok(Deletion { ids, ask: Some((plan, question)) })
}

/// `heph delete` / `heph undelete`: a tombstone set or cleared on each node.
/// Deleting more than [`BULK`] nodes lists them and asks first; either,
/// in bulk, joins the audit log.
fn bulk(ctx: &Ctx, prefixes: &[String], delete: bool) -> Result<()> {
    let mut r = ctx.open()?;
    let mut ids = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        let id = r.resolve(p, Purpose::Change)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut asked = false;
    if delete {
        let deletion = with_series(&mut r, ids)?;
        ids = deletion.ids;
        if let Some((plan, question)) = deletion.ask {
            // The store stays free while the user reads the list.
            drop(r);
            confirm::ask(ctx.yes, &plan, &question)?;
            r = ctx.open()?;
            asked = true;
        }
    }
    let many = ids.len() > BULK;
    if many && delete && !asked {
        let listed = refs(&mut r, &ids)?;
        let mut plan = format!("Delete {} nodes:\n", ids.len());
        for n in &listed {
            plan.push_str(&format!("  {}  {}\n", n.short, n.title.as_deref().unwrap_or("")));
        }
        // The store stays free while the user reads the list.
        drop(r);
        confirm::ask(ctx.yes, &plan, &format!("Delete these {} nodes?", ids.len()))?;
        r = ctx.open()?;
    }
    let (edit, message, verb) = if delete {
        (Edit::Deleted(true), "delete", "Deleted")
    } else {
        (Edit::Deleted(false), "undelete", "Undeleted")
    };
    let mut written = Vec::with_capacity(ids.len());
    for id in &ids {
        let node = r.get(*id)?;
        if node.deleted == delete {
            // Nothing to do, and nothing is written (no history entry to undo).
            let already = if delete { "Already deleted:" } else { "Not deleted:" };
            written.push((node, already));
            continue;
        }
        written.push((r.edit(*id, std::slice::from_ref(&edit), message, ctx.now)?, verb));
    }
    let several = ids.len() > 1;
    reports(ctx, &mut r, written, several)?;
    if many {
        let hex: Vec<String> = ids.iter().map(NodeId::to_hex).collect();
        audit(ctx, message, serde_json::json!({"count": ids.len(), "ids": hex, "via": r.via()}));
    }
    ctx.settle(r)?;
    Ok(())
}

/// Appends an event with who did it to the audit log beside the store
/// (the store path + `.audit.jsonl`). The operation has happened: a log
/// that cannot be written is a warning, not a failure.
fn audit(ctx: &Ctx, event: &str, mut fields: serde_json::Value) {
    let outcome = store::path(ctx.db.as_deref()).and_then(|db| {
        if let serde_json::Value::Object(map) = &mut fields {
            map.insert("who".into(), heph_hub::audit::local_user().into());
            map.insert("store".into(), db.display().to_string().into());
        }
        heph_hub::audit::append(&heph_hub::audit::beside(&db), event, fields)
    });
    if let Err(e) = outcome {
        eprintln!("heph: warning: {e:#}");
    }
}

/// `heph backup FILE`.
fn backup(ctx: &Ctx, file: &Path, force: bool) -> Result<()> {
    let path = std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    let mut r = ctx.open_read()?;
    let census = r.backup(&path, force)?;
    if ctx.json {
        return print_json(&serde_json::json!({"file": path, "census": census}));
    }
    println!(
        "Backed up {} ({}, {}, {}; {}) to {}.",
        counted(census.nodes, "node"),
        counted(census.tasks, "task"),
        counted(census.notes, "note"),
        counted(census.journals, "journal day"),
        counted(census.changes, "logged change"),
        path.display()
    );
    Ok(())
}

/// Why `file` cannot be restored from, and what to do instead.
fn not_a_backup(file: &Path, e: heph_engine::OpenError) -> anyhow::Error {
    let shown = file.display();
    match e {
        heph_engine::OpenError::Locked { .. } => anyhow!(
            "{shown} is a store in use (this replica's own file, or one a daemon holds), not a backup; \
             restore from a file heph backup FILE wrote"
        ),
        heph_engine::OpenError::Unreadable { reason, .. } => {
            let json =
                std::fs::read(file).is_ok_and(|b| b.trim_ascii_start().first().is_some_and(|c| b"[{".contains(c)));
            if json {
                anyhow!("{shown} is a JSON export, not a backup; heph import {shown} brings its nodes in")
            } else {
                anyhow!("{shown} is not a heph backup ({reason}); heph backup FILE writes one")
            }
        }
        other => anyhow::Error::new(other).context(format!("{shown} cannot be read as a backup")),
    }
}

/// `heph restore FILE`: shows the backup against the replica, asks, restores.
fn restore(ctx: &Ctx, file: &Path) -> Result<()> {
    let path = std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    if path.is_dir() {
        bail!("{} is a folder, not a backup file (heph backup FILE makes one)", file.display());
    }
    if !path.is_file() {
        bail!("no backup file at {}; to undo a delete: heph undelete ID", file.display());
    }
    let own = store::path(ctx.db.as_deref()).ok().and_then(|db| std::fs::canonicalize(db).ok());
    if own.is_some() && own == std::fs::canonicalize(&path).ok() {
        bail!(
            "{} is this replica's own store, not a backup; restore from a file heph backup FILE wrote",
            file.display()
        );
    }
    let then = heph_engine::backup::open_backup(&path).map_err(|e| not_a_backup(file, e))?.census()?;
    let now = ctx.open_read()?.census()?;
    let taken = then.taken.map_or_else(
        || "(not a backup: a store file)".to_string(),
        |t| format!("taken {}", heph_engine::when::display(t, &ctx.local)),
    );
    let mut plan = format!("Restore the replica from {} ({taken}):\n", path.display());
    plan.push_str(&format!("  {:<16}{:>10}{:>10}\n", "", "now", "backup"));
    for (what, a, b) in [
        ("nodes", now.nodes, then.nodes),
        ("tasks", now.tasks, then.tasks),
        ("notes", now.notes, then.notes),
        ("journal days", now.journals, then.journals),
        ("deleted", now.deleted, then.deleted),
        ("logged changes", now.changes, then.changes),
    ] {
        plan.push_str(&format!("  {what:<16}{a:>10}{b:>10}\n"));
    }
    if !now.synced {
        plan.push_str("This replica never synced with a hub: whatever it holds that the backup lacks is lost.\n");
    } else if now.unsent > 0 {
        plan.push_str(&format!(
            "{} local changes were never sent to the hub: they will be lost (sync first to keep them).\n",
            now.unsent
        ));
    }
    plan.push_str(
        "Edits the hub already has come back from it on the next sync; what only the backup holds is offered to it.\n",
    );
    confirm::ask(ctx.yes, &plan, "Replace the replica's contents with the backup's?")?;
    let mut r = ctx.open()?;
    let after = r.restore(&path)?;
    audit(
        ctx,
        "restore",
        serde_json::json!({
            "backup": path.display().to_string(),
            "taken": then.taken,
            "nodes_before": now.nodes,
            "nodes_after": after.nodes,
            "unsent_lost": now.unsent,
            "via": r.via(),
        }),
    );
    r.finish();
    if ctx.json {
        return print_json(&serde_json::json!({"file": path, "before": now, "after": after}));
    }
    println!(
        "Restored {} from {}. The replica reconciles with the hub on its next sync.",
        counted(after.nodes, "node"),
        path.display()
    );
    Ok(())
}

/// `heph done`, `start`, `stop`. As in Taskwarrior, a task whose state
/// does not allow it (stopping one not started, starting or completing one
/// done or deleted) is named and left as it is; the others change, and the
/// command fails if any was left.
fn set_status(ctx: &Ctx, ids: &[String], status: Status, message: &str, verb: &str) -> Result<()> {
    let mut r = ctx.open()?;
    let resolved = ids.iter().map(|p| r.resolve(p, Purpose::Change)).collect::<Result<Vec<_>, _>>()?;
    let mut changing = Vec::new();
    let mut refused = Vec::new();
    for s in r.summaries(&resolved)? {
        if s.kind != NodeKind::Task {
            bail!("{} is a {}, not a task; only tasks have a status", &s.id.to_hex()[..8], s.kind);
        }
        let named = format!("task {} '{}'", short(&mut r, s.id)?, s.title);
        match unchanged_by(&s, status) {
            Some(why) => refused.push(format!("{named} {why}")),
            None => changing.push(s.id),
        }
    }
    let several = resolved.len() > 1;
    let mut written = Vec::with_capacity(changing.len());
    for id in changing {
        written.push((r.edit(id, &[Edit::Status(status)], message, ctx.now)?, verb));
    }
    reports(ctx, &mut r, written, several)?;
    ctx.settle(r)?;
    if !refused.is_empty() {
        bail!("{}", refused.join("\n"));
    }
    Ok(())
}

/// Why setting `to` does not apply to the task `s` as it stands, with what
/// to do instead; `None` when it does.
fn unchanged_by(s: &heph_engine::node::NodeSummary, to: Status) -> Option<String> {
    let id = &s.id.to_hex()[..8];
    let reopen = format!("`heph modify {id} status:pending` reopens it");
    let template = heph_engine::query::is_template(s);
    match (s.status.unwrap_or(Status::Pending), to) {
        _ if s.deleted => Some(format!("is deleted; `heph undelete {id}` brings it back")),
        // As Taskwarrior: a template is neither pending nor waiting.
        _ if template && to != Status::Pending => Some(format!(
            "is a recurring template, not one of its tasks; `heph ls +INSTANCE` lists those, \
             and `heph delete {id}` ends the series"
        )),
        (Status::Done, Status::Done) => Some("is already done".into()),
        (Status::Active, Status::Active) => Some("is already started".into()),
        (Status::Done | Status::Cancelled, Status::Active) => {
            Some(format!("is closed, so it cannot be started; {reopen}"))
        }
        (Status::Cancelled, Status::Done) => Some(format!("is cancelled; {reopen}")),
        (Status::Done | Status::Cancelled, Status::Pending) => Some(format!("is closed, not started; {reopen}")),
        (Status::Pending | Status::Waiting, Status::Pending) => Some("is not started".into()),
        _ => None,
    }
}

/// `heph modify ID …`. On a recurring template the change also goes to
/// its pending instances; with `--all` on an instance, to its template and
/// its pending siblings (as Taskwarrior's "modify all pending recurrences").
/// Dates and status stay on the task named: the others keep their own.
fn modify(ctx: &Ctx, id: &str, words: &[String], all: bool) -> Result<()> {
    let mut r = ctx.open()?;
    let id = r.resolve(id, Purpose::Change)?;
    let before = r.get(id)?;
    // The node's own UDAs are attributes too (`estimate:3`).
    let udas: Vec<String> = before.uda.keys().cloned().collect();
    let mods = mods::read(&ctx.local, &mut r, words, udas)?;
    let mut edits = Vec::new();
    if let Some(title) = mods.title {
        edits.push(Edit::Title(title));
    }
    edits.extend(mods.edits);
    edits.extend(resolve_depends(&mut r, &mods.depends)?);
    check_recurrence(&edits, Some(&before))?;
    // The series as it stands: refused before anything is written.
    let others: Vec<NodeId> = match r.series(id)? {
        Some(s) if s.template == id => s.pending,
        Some(s) if all => std::iter::once(s.template).chain(s.pending).filter(|o| *o != id).collect(),
        _ if all => bail!("{} does not recur; --all is for recurring tasks (leave it out)", &id.to_hex()[..8]),
        _ => Vec::new(),
    };
    let message = format!("modify {}", words.join(" "));
    let node = r.edit(id, &edits, &message, ctx.now)?;
    let shared: Vec<Edit> = edits.iter().filter(|e| carries_to_series(e)).cloned().collect();
    report(ctx, &mut r, node, "Modified")?;
    if !shared.is_empty() {
        for other in others {
            let node = r.edit(other, &shared, &message, ctx.now)?;
            if !ctx.json {
                report(ctx, &mut r, node, "Modified")?;
            }
        }
    }
    ctx.settle(r)?;
    Ok(())
}

/// Whether an edit of one task of a series goes to the rest of it: dates,
/// status and the series' own bookkeeping stay on the task edited.
fn carries_to_series(edit: &Edit) -> bool {
    match edit {
        Edit::Due(_)
        | Edit::Wait(_)
        | Edit::Scheduled(_)
        | Edit::Status(_)
        | Edit::Start(_)
        | Edit::End(_)
        | Edit::Deleted(_) => false,
        Edit::Uda(key, _) => ![recur::MASK, recur::IMASK, recur::PARENT].contains(&key.as_str()),
        _ => true,
    }
}

/// `heph edit`; `revive` brings a deleted node back in the same write as
/// what the user changed (a journal day written to again).
fn edit(ctx: &Ctx, id: NodeId, revive: bool) -> Result<()> {
    // The store is closed while the editor runs, so other heph commands work meanwhile.
    let node = ctx.open()?.get(id)?;
    let before = editor::page(&node, &ctx.local);
    let text = editor::render(node.kind, &before);
    let draft = editor::Draft::new(&text, &id.to_hex()[..8])?;
    editor::run_editor(draft.path())?;
    let (draft, Some(edited)) = draft.read()? else {
        println!("No changes.");
        return Ok(());
    };
    // Until the edit is stored, whatever fails keeps the user's text.
    let stored = (|| {
        let after = editor::parse(&edited, node.kind)?;
        let mut r = ctx.open()?;
        let mut edits = editor::edits(&before, &after, &ctx.local, |p| r.resolve(p, Purpose::Change))?;
        if revive && node.deleted {
            edits.insert(0, Edit::Deleted(false));
        }
        let node = r.edit(id, &edits, "edit", ctx.now)?;
        Ok::<_, anyhow::Error>((r, node))
    })();
    match stored {
        Ok((r, node)) => done(ctx, r, node, "Edited"),
        Err(e) => Err(draft.keep(e)),
    }
}

fn note(ctx: &Ctx, words: &[String], body: Option<&str>, open_editor: bool) -> Result<()> {
    // After a lone `--`, +words are title text too.
    let literal = words.iter().position(|w| w == "--").unwrap_or(words.len());
    let (tags, mut title): (Vec<&String>, Vec<&String>) =
        words[..literal].iter().partition(|w| w.starts_with('+') && w.len() > 1);
    title.extend(words.iter().skip(literal + 1));
    if title.iter().all(|w| w.trim().is_empty()) {
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
        let short = &node.id.to_hex()[..6];
        return edit(ctx, node.id, false).with_context(|| {
            format!("note {short} '{}' was created, not edited (heph edit {short} opens it again)", node.title)
        });
    }
    done(ctx, r, node, "Created")
}

fn journal(ctx: &Ctx, day: Option<&str>, append: Option<String>, open_editor: bool) -> Result<()> {
    let day = parse_day(day.unwrap_or("today"), &ctx.local)?;
    let mut r = ctx.open()?;
    let mut node = r.journal(day)?;
    // Writing to a deleted day brings it back (an undo of its first write deletes it).
    let revive = node.deleted && append.is_some();
    if let Some(text) = append {
        let mut edits = vec![Edit::AppendBody(text)];
        if revive {
            edits.insert(0, Edit::Deleted(false));
        }
        node = r.edit(node.id, &edits, "append", ctx.now)?;
    }
    if open_editor {
        drop(r);
        let day = node.title.clone();
        return edit(ctx, node.id, true).with_context(|| format!("the journal of {day} is kept as it was"));
    }
    show(ctx, &mut r, node.id)?;
    r.finish();
    Ok(())
}

fn link(ctx: &Ctx, from: &str, to: &str, add: bool) -> Result<()> {
    let mut r = ctx.open()?;
    let from = r.resolve(from, Purpose::Change)?;
    let to = r.resolve(to, Purpose::Change)?;
    if from == to {
        bail!("a node cannot link to itself");
    }
    let node = r.get(from)?;
    if node.links.contains(&to) == add {
        // Nothing to do, and nothing is written (no history entry to undo).
        let to = short(&mut r, to)?;
        let verb = if add { format!("Already linked to {to}:") } else { format!("No link to {to} from") };
        return done(ctx, r, node, &verb);
    }
    let (edit, verb) = if add { (Edit::Link(to), "Linked") } else { (Edit::Unlink(to), "Unlinked") };
    let node = r.edit(from, &[edit], if add { "link" } else { "unlink" }, ctx.now)?;
    done(ctx, r, node, verb)
}

fn search(ctx: &Ctx, words: &[String], all: bool) -> Result<()> {
    let mut filter = Filter::everything();
    filter.open_only = !all;
    filter.deleted = all;
    let mut r = ctx.open_read()?;
    let rows = r.search(&words.join(" "), &filter, ctx.now)?;
    if rows.is_empty() && !all && !ctx.json {
        println!(
            "No matches among open tasks, notes and journal days (heph search --all looks at done, cancelled and deleted ones too)."
        );
        return Ok(());
    }
    print_rows(ctx, &mut r, rows)
}

fn history(ctx: &Ctx, id: &str) -> Result<()> {
    let mut r = ctx.open_read()?;
    let id = r.resolve(id, Purpose::Read)?;
    let entries = r.history(id)?;
    emit(ctx, &entries, |out| Ok(render::history(out, &entries, &ctx.local)?))
}

/// `heph undo`: shows this device's last change and what undoing it sets
/// back, asks, reverts it.
fn undo(ctx: &Ctx) -> Result<()> {
    let mut r = ctx.open_read()?;
    let plan = r.undo_plan()?.ok_or(heph_engine::Error::NothingToUndo)?;
    let short = short(&mut r, plan.id)?;
    // The store stays free while the user reads the plan.
    drop(r);
    confirm::ask(ctx.yes, &render::undo_plan(&plan, &short, &ctx.local), "Undo it?")?;
    let mut r = ctx.open()?;
    let (undone, node) = r.undo(&plan.change, ctx.now)?;
    // Undoing the add of a recurring task ends its series, as deleting it
    // does: the instances made since go too (as recurrence's own
    // changes, which a later undo passes over).
    if undone.creation
        && node.deleted
        && let Some(series) = r.series(node.id)?
        && series.template == node.id
    {
        for instance in series.pending {
            r.edit(instance, &[Edit::Deleted(true)], recur::GENERATED, ctx.now)?;
        }
    }
    if ctx.json {
        let node = shown(&mut r, node)?;
        print_json(&Undone { undone, node })?;
    } else {
        let what = if undone.creation { "the add of" } else { "the last change to" };
        writeln!(stdout(), "Undid {what} {} {short} '{}' ({}).", node.kind, node.title, undone.message)?;
    }
    r.finish();
    Ok(())
}

/// `heph projects [FILTER]`.
fn projects(ctx: &Ctx, words: &[String]) -> Result<()> {
    let rows = counted_rows(ctx, words)?;
    let list = summary::projects(&rows);
    emit(ctx, &list, |out| Ok(summary::write_projects(out, &list, rows.len())?))
}

/// `heph tags [FILTER]`.
fn tags(ctx: &Ctx, words: &[String]) -> Result<()> {
    let rows = counted_rows(ctx, words)?;
    let counting = if rows.iter().all(|r| r.kind == NodeKind::Task) { "Tasks" } else { "Nodes" };
    let list = summary::tags(&rows);
    emit(ctx, &list, |out| Ok(summary::write_tags(out, &list, counting)?))
}

/// The rows `heph projects` and `heph tags` count for `words`: those `heph
/// ls` lists, and waiting tasks too unless the words name a status, as
/// Taskwarrior counts every task not yet done.
fn counted_rows(ctx: &Ctx, words: &[String]) -> Result<Vec<heph_engine::NodeSummary>> {
    let mut filter = Filter::parse(words, &ctx.local)?;
    if filter.open_only {
        let mut open = vec!["status:pending,waiting".to_string()];
        if !words.is_empty() {
            open.push("(".into());
            open.extend_from_slice(words);
            open.push(")".into());
        }
        filter = Filter::parse(&open, &ctx.local)?;
    }
    Ok(ctx.open_read()?.list(&filter, ctx.now, None)?.into_iter().map(|(_, row)| row).collect())
}

fn conflicts(ctx: &Ctx, action: Option<ConflictAction>) -> Result<()> {
    let mut r = if action.is_some() { ctx.open()? } else { ctx.open_read()? };
    match action {
        Some(ConflictAction::Resolve { all: true, keep, .. }) => {
            return resolve_all(ctx, r, keep.context("--all needs --keep N")?);
        }
        Some(ConflictAction::Resolve { id: Some(id), field: Some(field), choice: Some(choice), .. }) => {
            let id = r.resolve(&id, Purpose::Change)?;
            let index = choice.checked_sub(1).context("values are numbered from 1")?;
            let node = r.resolve_conflict(id, &field, index, ctx.now)?;
            return done(ctx, r, node, "Resolved");
        }
        Some(ConflictAction::Resolve { .. }) => {
            bail!("give ID FIELD NUMBER (heph conflicts resolve 3fa2 title 2), or --all --keep N")
        }
        None => {}
    }
    let list = r.conflicts()?;
    if ctx.json {
        return print_json(&list);
    }
    let ids: Vec<NodeId> = list.iter().map(|c| c.id).collect();
    let lens = r.prefix_lens(&ids)?;
    let mut out = stdout();
    render::conflicts(
        &mut out,
        &list,
        |id| {
            let len = ids.iter().position(|i| i == id).and_then(|p| lens.get(p).copied()).unwrap_or(8);
            id.to_hex()[..len].to_string()
        },
        &ctx.local,
    )?;
    out.flush()?;
    Ok(())
}

/// `heph conflicts resolve --all --keep N`: lists every conflict with the
/// value it keeps, asks, resolves each, and joins the audit log.
fn resolve_all(ctx: &Ctx, mut r: Api, keep: usize) -> Result<()> {
    let index = keep.checked_sub(1).context("values are numbered from 1")?;
    let list = r.conflicts()?;
    if list.is_empty() {
        if ctx.json {
            return print_json(&serde_json::json!({"resolved": [], "skipped": []}));
        }
        println!("No conflicts.");
        return Ok(());
    }
    let ids: Vec<NodeId> = list.iter().map(|c| c.id).collect();
    let lens = r.prefix_lens(&ids)?;
    let (chosen, skipped): (Vec<_>, Vec<_>) = list.iter().zip(lens).partition(|(c, _)| c.values.len() > index);
    let mut plan = format!("Resolve {}, keeping value {keep} of each:\n", counted(chosen.len(), "conflict"));
    for (c, len) in &chosen {
        let value: String = render::conflict_value(&c.values[index], &ctx.local).chars().take(60).collect();
        plan.push_str(&format!("  {} {}: keep {value:?}\n", &c.id.to_hex()[..*len], c.field));
    }
    for (c, len) in &skipped {
        plan.push_str(&format!(
            "  {} {}: has {} values, no value {keep}; left as it is\n",
            &c.id.to_hex()[..*len],
            c.field,
            c.values.len()
        ));
    }
    if chosen.is_empty() {
        bail!("no conflict has a value {keep}; `heph conflicts` lists them");
    }
    drop(r);
    confirm::ask(
        ctx.yes,
        &plan,
        &format!(
            "Resolve {}?",
            if chosen.len() == 1 { "it".to_string() } else { format!("these {} conflicts", chosen.len()) }
        ),
    )?;
    let mut r = ctx.open()?;
    let mut resolved = Vec::new();
    for (c, _) in &chosen {
        r.resolve_conflict(c.id, &c.field, index, ctx.now)?;
        resolved.push(serde_json::json!({"id": c.id.to_hex(), "field": c.field}));
    }
    audit(
        ctx,
        "conflicts_resolved",
        serde_json::json!({"keep": keep, "count": resolved.len(), "resolved": resolved, "via": r.via()}),
    );
    r.finish();
    if ctx.json {
        let skipped: Vec<_> =
            skipped.iter().map(|(c, _)| serde_json::json!({"id": c.id.to_hex(), "field": c.field})).collect();
        return print_json(&serde_json::json!({"resolved": resolved, "skipped": skipped}));
    }
    println!("Resolved {}.", counted(resolved.len(), "conflict"));
    Ok(())
}

fn check(ctx: &Ctx, repair: bool) -> Result<()> {
    let mut r = if repair { ctx.open()? } else { ctx.open_read()? };
    // A bar when heph reads the store itself; a spinner while the daemon does.
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} checking {bar:40} {pos}/{len} documents ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let outcome = r.check(repair, |done, all| {
        bar.set_length(all);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let outcome = outcome?;
    let left = outcome.problems().len();
    if ctx.json {
        print_json(&outcome)?;
    } else {
        let found = &outcome.found;
        let mut out = stdout();
        writeln!(
            out,
            "Checked {}, {} and {} {}: {}.",
            counted(found.documents, "document"),
            counted(found.changes, "stored change"),
            found.log,
            if found.log == 1 { "log entry" } else { "log entries" },
            if found.problems.is_empty() {
                "no problems".to_string()
            } else {
                counted(found.problems.len(), "problem")
            }
        )?;
        for p in &found.problems {
            writeln!(out, "  {p}")?;
        }
        if let Some(done) = &outcome.repaired {
            writeln!(
                out,
                "Repaired {} ({} put back); {} left.",
                counted(done.documents, "document"),
                counted(done.changes_restored, "logged change"),
                counted(done.left.len(), "problem")
            )?;
            for p in &done.left {
                writeln!(out, "  {p}")?;
            }
        }
        out.flush()?;
    }
    if left == 0 {
        return Ok(());
    }
    let problems = outcome.problems();
    let mendable = problems.iter().filter(|p| p.mendable()).count();
    let mut next = Vec::new();
    if mendable > 0 {
        next.push(format!("heph check --repair mends {mendable} of them from what the store holds"));
    }
    if mendable < left {
        next.push(
            "the rest only a copy holds: keep a copy of this store, heph export what still reads, then restore a \
             backup (heph restore FILE); on a device that syncs, the hub holds everything it acknowledged"
                .to_string(),
        );
    }
    anyhow::bail!("the store has {}; {}", counted(left, "problem"), next.join("; "))
}

fn export(ctx: &Ctx, format: Format, output: Option<&Path>) -> Result<()> {
    let mut r = ctx.open_read()?;
    // Long work shows it is under way (on a terminal only: indicatif draws
    // nothing when standard error is not one).
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} exporting ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let made = (|| -> Result<(String, usize)> {
        Ok(match format {
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
        })
    })();
    spinner.finish_and_clear();
    let (text, count) = made?;
    match output {
        None => {
            let mut out = raw_stdout();
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
            heph_engine::archive::Record::Node(
                Box::new(taskwarrior::from_task(&v, i + 1)?),
                None,
                heph_engine::archive::Absent::TASKWARRIOR,
            )
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
    ctx.settle(r)?;
    bar.finish_and_clear();
    if ctx.json {
        return print_json(&report);
    }
    println!(
        "Imported {} nodes: {} added, {} updated, {} unchanged.",
        total, report.added, report.updated, report.unchanged
    );
    if report.repeated > 0 {
        println!(
            "{} record{} gave an id that a later record gives again; the later record is what the node holds.",
            report.repeated,
            if report.repeated == 1 { "" } else { "s" }
        );
    }
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
    write_health(&mut out, &health, &ctx.local)?;
    out.flush()?;
    Ok(())
}

/// Sync health as `heph sync --status` shows it.
pub fn write_health(out: &mut impl Write, health: &heph_engine::sync::SyncHealth, local: &Clock) -> Result<()> {
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
    match health.conflicts {
        0 => writeln!(out, "Conflicts:      none")?,
        n => writeln!(out, "Conflicts:      on {} (`heph conflicts` lists each field)", counted(n, "node"))?,
    }
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
