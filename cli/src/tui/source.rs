//! Where the TUI's data comes from: the device daemon over its socket when
//! one runs, else the store file, opened for each read or write and closed
//! again, so that `heph` in another terminal is never locked out.
//!
//! Polling is cheap: through the daemon, the replica's [`Version`] (two small
//! reads); without one, the store file's size and modification time. The list
//! is read again only when they move.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use heph_engine::Clock;
use heph_engine::sync::SyncHealth;
use heph_engine::{Edit, Filter, Node, NodeId, NodeKind, Purpose, Status, Version};

use super::app::{Named, NodeView, Row};
use crate::api::Api;
use crate::{editor, store};

/// What was seen of the replica when the list was last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// The daemon's answer.
    Version(Version),
    /// The store file's modification time and size, and the version read
    /// from it.
    File { meta: Option<(SystemTime, u64)>, version: Version },
}

/// File times are coarse (a clock tick of a few milliseconds): a second write
/// within the tick of the first leaves the time where it was. Within this of
/// the last write, the version is read from the store as well.
const SETTLED: Duration = Duration::from_secs(2);

/// The replica, through the daemon or directly.
pub struct Source {
    db: Option<PathBuf>,
    socket: PathBuf,
    daemon: Option<Api>,
    seen: Option<Seen>,
    /// Future pending instances each recurring template keeps.
    limit: u32,
}

impl Source {
    /// Connects to the daemon for the store at `db` (default path when
    /// `None`) if one runs; otherwise the store is used directly. Recurring
    /// tasks keep `limit` future instances made.
    pub fn open(db: Option<&Path>, limit: u32) -> Result<Self> {
        let socket = store::socket(db)?;
        let daemon = Api::daemon(&socket);
        Ok(Self { db: db.map(Path::to_path_buf), socket, daemon, seen: None, limit })
    }

    /// Whether calls go through a daemon.
    #[must_use]
    pub fn has_daemon(&self) -> bool {
        self.daemon.is_some()
    }

    /// Without a daemon, looks for one again (it may have started since).
    /// Returns whether one was found; the list should then be read again.
    pub fn reconnect(&mut self) -> bool {
        if self.daemon.is_none() {
            self.daemon = Api::daemon(&self.socket);
            if self.daemon.is_some() {
                self.seen = None;
                return true;
            }
        }
        false
    }

    /// Runs `f` against the daemon, or against the store opened for it
    /// (for writing when `write`). A daemon call that fails is followed by a
    /// fresh connection, or by none when the daemon is gone, so the next
    /// call goes to the store.
    fn call<T>(&mut self, write: bool, f: impl FnOnce(&mut Api) -> Result<T>) -> Result<T> {
        if let Some(api) = &mut self.daemon {
            let out = f(api);
            if out.is_err() {
                self.daemon = Api::daemon(&self.socket);
                if self.daemon.is_none() {
                    self.seen = None;
                }
            }
            return out;
        }
        // Waits briefly for another heph holding the store, and takes a
        // daemon that has just started.
        f(&mut Api::open(self.db.as_deref(), !write)?)
    }

    fn look(&mut self) -> Result<Seen> {
        if self.daemon.is_some() {
            return self.call(false, Api::version).map(Seen::Version);
        }
        let path = store::path(self.db.as_deref())?;
        let meta = std::fs::metadata(&path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        let settled = meta.is_some_and(|(t, _)| t.elapsed().is_ok_and(|e| e > SETTLED));
        if let Some(Seen::File { meta: before, version }) = self.seen
            && before == meta
            && settled
        {
            return Ok(Seen::File { meta, version });
        }
        let version = self.call(false, Api::version)?;
        Ok(Seen::File { meta, version })
    }

    /// Makes the instances of recurring tasks that are due (see
    /// [`crate::recurring`]), opening the store for writing only when there
    /// is something to make.
    fn recur(&mut self, now: DateTime<Utc>) -> Result<()> {
        let clock = Clock::system().at(now);
        let limit = self.limit;
        let due = self.call(false, |api| api.recurrences_due(&clock, limit))?;
        if due {
            self.call(true, |api| crate::recurring::generate(api, &clock, limit).map(drop))?;
        }
        Ok(())
    }

    /// Whether the replica may have changed since the last [`Self::load`].
    pub fn changed(&mut self) -> Result<bool> {
        let seen = self.look()?;
        Ok(self.seen != Some(seen))
    }

    /// Reads the list selected by `filter`, most urgent first, and how sync stands.
    pub fn load(&mut self, filter: &Filter, now: DateTime<Utc>) -> Result<(Vec<Row>, SyncHealth)> {
        self.recur(now)?;
        // Looked at before reading: a change made during the read is seen next time.
        let seen = self.look()?;
        let out = self.call(false, |api| {
            let rows = api.list(filter, now, None)?;
            let ids: Vec<NodeId> = rows.iter().map(|(_, s)| s.id).collect();
            let lens = api.prefix_lens(&ids)?;
            let health = api.sync_status()?;
            let rows = rows
                .into_iter()
                .zip(lens)
                .map(|((urgency, summary), len)| Row {
                    short: summary.id.to_hex()[..len].to_string(),
                    summary,
                    urgency,
                })
                .collect();
            Ok((rows, health))
        })?;
        self.seen = Some(seen);
        Ok(out)
    }

    /// How sync stands (the daemon's health; without one, what the store knows).
    pub fn health(&mut self) -> Result<SyncHealth> {
        self.call(false, Api::sync_status)
    }

    /// One node with the titles of what it names and what names it.
    pub fn node(&mut self, id: NodeId) -> Result<NodeView> {
        self.call(false, |api| {
            let node = api.get(id)?;
            let backlinks: Vec<NodeId> = api.backlinks(id)?.into_iter().map(|s| s.id).collect();
            let depends: Vec<NodeId> = node.depends.iter().copied().collect();
            let links: Vec<NodeId> = node.links.iter().copied().collect();
            let short = named(api, &[id])?.pop().map(|n| n.short).unwrap_or_default();
            Ok(NodeView {
                depends: named(api, &depends)?,
                links: named(api, &links)?,
                backlinks: named(api, &backlinks)?,
                short,
                node,
            })
        })
    }

    /// Adds a task from quick-add words, parsed as `heph add` parses them
    /// (a UDA another task carries is an attribute).
    pub fn add(&mut self, text: &str, local: &Clock) -> Result<Node> {
        let words: Vec<&str> = text.split_whitespace().collect();
        self.call(true, |api| {
            let mods = crate::mods::read(local, api, &words, Vec::new())?;
            let title = mods.title.clone().context("a task needs a title: Buy milk due:tomorrow")?;
            let mut edits = mods.edits;
            for (add, prefix) in &mods.depends {
                let id = api.resolve(prefix, Purpose::Change).with_context(|| format!("depends:{prefix}"))?;
                edits.push(if *add { Edit::Depend(id) } else { Edit::Undepend(id) });
            }
            let draft = Node::new(NodeId::random(), NodeKind::Task, title, local.now);
            api.create(&draft, &edits, &format!("add {text}"))
        })
    }

    /// Marks a task done.
    pub fn done(&mut self, id: NodeId, now: DateTime<Utc>) -> Result<Node> {
        self.call(true, |api| api.edit(id, &[Edit::Status(Status::Done)], "done", now))
    }

    /// `heph edit` from the TUI: the node as a Markdown page, handed to
    /// `run_editor` (which must give the editor the terminal); what the user
    /// changed becomes edits. Returns the node, or `None` when nothing
    /// changed. A page that does not parse is kept, and the error says where.
    pub fn edit(
        &mut self,
        id: NodeId,
        local: &Clock,
        run_editor: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Option<Node>> {
        // Nothing is held open while the editor runs.
        let node = self.call(false, |api| api.get(id))?;
        let before = editor::page(&node, local);
        let text = editor::render(node.kind, &before);
        let draft = editor::Draft::new(&text, &id.to_hex()[..8])?;
        run_editor(draft.path())?;
        let (draft, Some(edited)) = draft.read()? else {
            return Ok(None);
        };
        let outcome = editor::parse(&edited, node.kind).and_then(|after| {
            self.call(true, |api| {
                let edits = editor::edits(&before, &after, local, |p| api.resolve(p, Purpose::Change))?;
                api.edit(id, &edits, "edit", local.now)
            })
        });
        outcome.map(Some).map_err(|e| draft.keep(e))
    }
}

fn named(api: &mut Api, ids: &[NodeId]) -> Result<Vec<Named>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lens = api.prefix_lens(ids)?;
    let found = api.summaries(ids)?;
    Ok(ids
        .iter()
        .zip(lens)
        .map(|(id, len)| Named {
            short: id.to_hex()[..len].to_string(),
            title: found.iter().find(|s| s.id == *id).map(|s| s.title.clone()),
        })
        .collect())
}
