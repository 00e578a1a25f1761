//! Where `heph` sends its calls: the replica itself, or the device daemon
//! (`hephd --mode local`, or `--mode client`) over its unix socket when one
//! runs. Both answer the same calls with the same types and errors.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, NaiveDate, Utc};
use heph_engine::CheckOutcome;
use heph_engine::backup::Census;
use heph_engine::recur::{RecurReport, Series};
use heph_engine::rpc::{Request, Response};
use heph_engine::sync::SyncHealth;
use heph_engine::{
    Clock, Conflict, Edit, Filter, HistoryEntry, ImportReport, Node, NodeId, NodeSummary, OpenError, Purpose, Replica,
    UndoPlan,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::store;

/// How long a call to the daemon may take before `heph` gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The same for a whole-store export or import.
const BULK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long to wait for another process to finish with the store.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// A replica, local or behind a daemon.
pub enum Api {
    /// The store, opened by this process.
    Local(Replica),
    /// A daemon's socket.
    Daemon(UnixStream),
}

impl Api {
    /// The daemon for the store at `db` if one runs, else the store itself
    /// (read-only when `read_only` and the store allows it).
    ///
    /// While another process holds the store this keeps looking for the
    /// daemon's socket as well as waiting for the store: the holder may be
    /// a daemon that has just started (it listens before it takes the
    /// store, but this command may have looked for its socket a moment
    /// before), or another `heph` command that finishes soon.
    pub fn open(db: Option<&Path>, read_only: bool) -> Result<Self> {
        let socket = store::socket(db)?;
        let path = store::path(db)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(api) = Self::daemon(&socket) {
                return Ok(api);
            }
            let opened = if read_only { store::try_open_read(&path) } else { store::try_open(&path) };
            match opened {
                Ok(r) => return Ok(Self::Local(r)),
                Err(OpenError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Connects to a daemon at `socket`, if one answers there.
    pub fn daemon(socket: &Path) -> Option<Self> {
        let stream = UnixStream::connect(socket).ok()?;
        stream.set_read_timeout(Some(CALL_TIMEOUT)).ok()?;
        Some(Self::Daemon(stream))
    }

    /// Allows the daemon `timeout` for the next calls: a whole-store export
    /// or import of a large vault takes minutes, not seconds.
    fn allow(&mut self, timeout: Duration) {
        if let Self::Daemon(stream) = self {
            // Failing to set it leaves the shorter wait; the call still works.
            let _ = stream.set_read_timeout(Some(timeout));
        }
    }

    /// Ends a write command: the process exits next, so the store is left
    /// without redb's clean-shutdown flushes (see `Replica::abandon`); the
    /// write itself is already durable.
    pub fn finish(self) {
        if let Self::Local(r) = self {
            r.abandon();
        }
    }

    fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T> {
        let value = serde_json::to_value(request)?;
        self.call_raw(value)
    }

    fn call_raw<T: DeserializeOwned>(&mut self, mut value: Value) -> Result<T> {
        let Self::Daemon(stream) = self else {
            return Err(anyhow!("not connected to a daemon"));
        };
        if let Value::Object(map) = &mut value {
            map.insert("jsonrpc".into(), "2.0".into());
            map.insert("id".into(), 1.into());
        }
        let mut line = serde_json::to_vec(&value)?;
        line.push(b'\n');
        stream.write_all(&line).context("the daemon closed its socket; is hephd still running?")?;
        let mut reader = BufReader::new(&*stream);
        let mut answer = String::new();
        reader.read_line(&mut answer).context("no answer from the daemon")?;
        if answer.is_empty() {
            return Err(anyhow!("the daemon closed the connection without answering"));
        }
        let response: Response = serde_json::from_str(&answer).context("the daemon's answer is not JSON-RPC")?;
        let result = response.into_result().map_err(|e| anyhow!(e.message))?;
        serde_json::from_value(result).context("the daemon's answer has an unexpected shape")
    }

    /// The node `prefix` names, for `purpose`: a command that changes
    /// something passes [`Purpose::Change`] (at least 4 digits).
    pub fn resolve(&mut self, prefix: &str, purpose: Purpose) -> Result<NodeId> {
        match self {
            Self::Local(r) => Ok(r.resolve_for(prefix, purpose)?),
            Self::Daemon(_) => self.call(&Request::Resolve { prefix: prefix.into(), purpose }),
        }
    }

    pub fn create(&mut self, draft: &Node, edits: &[Edit], message: &str) -> Result<Node> {
        match self {
            Self::Local(r) => Ok(r.create(draft, edits, message)?),
            Self::Daemon(_) => {
                self.call(&Request::Create { draft: draft.clone(), edits: edits.to_vec(), message: message.into() })
            }
        }
    }

    pub fn edit(&mut self, id: NodeId, edits: &[Edit], message: &str, now: DateTime<Utc>) -> Result<Node> {
        match self {
            Self::Local(r) => Ok(r.edit(id, edits, message, now)?),
            Self::Daemon(_) => self.call(&Request::Edit { id, edits: edits.to_vec(), message: message.into(), now }),
        }
    }

    pub fn get(&mut self, id: NodeId) -> Result<Node> {
        match self {
            Self::Local(r) => Ok(r.get(id)?),
            Self::Daemon(_) => self.call(&Request::Get { id }),
        }
    }

    pub fn list(
        &mut self,
        filter: &Filter,
        now: DateTime<Utc>,
        limit: Option<usize>,
    ) -> Result<Vec<(f64, NodeSummary)>> {
        match self {
            Self::Local(r) => Ok(r.list(filter, now, limit)?),
            Self::Daemon(_) => self.call(&Request::List { filter: filter.clone(), now, limit }),
        }
    }

    pub fn search(&mut self, text: &str, filter: &Filter, now: DateTime<Utc>) -> Result<Vec<(f64, NodeSummary)>> {
        match self {
            Self::Local(r) => Ok(r.search(text, filter, now)?),
            Self::Daemon(_) => self.call(&Request::Search { text: text.into(), filter: filter.clone(), now }),
        }
    }

    pub fn backlinks(&mut self, id: NodeId) -> Result<Vec<NodeSummary>> {
        match self {
            Self::Local(r) => Ok(r.backlinks(id)?),
            Self::Daemon(_) => self.call(&Request::Backlinks { id }),
        }
    }

    pub fn summaries(&mut self, ids: &[NodeId]) -> Result<Vec<NodeSummary>> {
        match self {
            Self::Local(r) => Ok(r.summaries(ids)?),
            Self::Daemon(_) => self.call(&Request::Summaries { ids: ids.to_vec() }),
        }
    }

    pub fn prefix_lens(&mut self, ids: &[NodeId]) -> Result<Vec<usize>> {
        match self {
            Self::Local(r) => Ok(r.prefix_lens(ids)?),
            Self::Daemon(_) => self.call(&Request::PrefixLens { ids: ids.to_vec() }),
        }
    }

    pub fn history(&mut self, id: NodeId) -> Result<Vec<HistoryEntry>> {
        match self {
            Self::Local(r) => Ok(r.history(id)?),
            Self::Daemon(_) => self.call(&Request::History { id }),
        }
    }

    pub fn conflicts(&mut self) -> Result<Vec<Conflict>> {
        match self {
            Self::Local(r) => Ok(r.conflicts()?),
            Self::Daemon(_) => self.call(&Request::Conflicts),
        }
    }

    pub fn conflicts_of(&mut self, id: NodeId) -> Result<Vec<Conflict>> {
        match self {
            Self::Local(r) => Ok(r.conflicts_of(id)?),
            Self::Daemon(_) => self.call(&Request::ConflictsOf { id }),
        }
    }

    pub fn resolve_conflict(&mut self, id: NodeId, field: &str, choice: usize, now: DateTime<Utc>) -> Result<Node> {
        match self {
            Self::Local(r) => Ok(r.resolve_conflict(id, field, choice, now)?),
            Self::Daemon(_) => self.call(&Request::ResolveConflict { id, field: field.into(), choice, now }),
        }
    }

    /// What `undo` would revert now; `None` when nothing is left to undo.
    pub fn undo_plan(&mut self) -> Result<Option<UndoPlan>> {
        match self {
            Self::Local(r) => Ok(r.undo_plan()?),
            Self::Daemon(_) => self.call(&Request::UndoPlan),
        }
    }

    /// Reverts this device's last change, if it is still `expected` (a hash
    /// from [`Self::undo_plan`]); returns what was reverted and the node.
    pub fn undo(&mut self, expected: &str, now: DateTime<Utc>) -> Result<(UndoPlan, Node)> {
        match self {
            Self::Local(r) => Ok(r.undo(Some(expected), now)?),
            Self::Daemon(_) => self.call(&Request::Undo { expected: Some(expected.into()), now }),
        }
    }

    pub fn journal(&mut self, day: NaiveDate) -> Result<Node> {
        match self {
            Self::Local(r) => Ok(r.journal(day)?),
            Self::Daemon(_) => self.call(&Request::Journal { day }),
        }
    }

    pub fn export(&mut self) -> Result<Vec<Node>> {
        self.allow(BULK_TIMEOUT);
        match self {
            Self::Local(r) => Ok(r.export()?),
            Self::Daemon(_) => self.call(&Request::Export),
        }
    }

    /// Every stored document as native export entries.
    pub fn export_records(&mut self) -> Result<Vec<Value>> {
        self.allow(BULK_TIMEOUT);
        match self {
            Self::Local(r) => Ok(r.export_records()?.iter().map(heph_engine::archive::Record::to_json).collect()),
            Self::Daemon(_) => self.call(&Request::ExportRecords),
        }
    }

    /// Imports native export entries (raw documents included).
    pub fn import_records(
        &mut self,
        records: Vec<heph_engine::archive::Record>,
        progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport> {
        self.allow(BULK_TIMEOUT);
        match self {
            Self::Local(r) => Ok(r.import_records(records, progress)?),
            Self::Daemon(_) => {
                let records = records.iter().map(heph_engine::archive::Record::to_json).collect();
                self.call(&Request::ImportRecords { records })
            }
        }
    }

    /// Stored documents that do not read as nodes.
    pub fn unreadable(&mut self) -> Result<Vec<heph_engine::store::Unreadable>> {
        match self {
            Self::Local(r) => Ok(r.unreadable()?),
            Self::Daemon(_) => self.call(&Request::Unreadable),
        }
    }

    /// Where the replica's content stands; cheap, for polling (`heph tui`).
    pub fn version(&mut self) -> Result<heph_engine::Version> {
        match self {
            Self::Local(r) => Ok(r.version()?),
            Self::Daemon(_) => self.call(&Request::Version),
        }
    }

    /// Makes the missing instances of recurring tasks (see
    /// `heph_engine::recur`); the daemon does it when one runs.
    pub fn generate_recurrences(&mut self, clock: &Clock, limit: u32) -> Result<RecurReport> {
        match self {
            Self::Local(r) => Ok(r.generate_recurrences(clock, limit)?),
            Self::Daemon(_) => {
                let zone = clock.zone.iana_name().map(str::to_string);
                self.call(&Request::GenerateRecurrences { now: clock.now, zone, limit })
            }
        }
    }

    /// Whether a recurrence pass would write anything. Behind a daemon this
    /// is always `true`: the daemon makes them, cheaply, when asked.
    pub fn recurrences_due(&mut self, clock: &Clock, limit: u32) -> Result<bool> {
        match self {
            Self::Local(r) => Ok(r.recurrences_due(clock, limit)?),
            Self::Daemon(_) => Ok(true),
        }
    }

    /// The series `id` belongs to (template or instance), if it recurs.
    pub fn series(&mut self, id: NodeId) -> Result<Option<Series>> {
        match self {
            Self::Local(r) => Ok(r.series(id)?),
            Self::Daemon(_) => self.call(&Request::Series { id }),
        }
    }

    /// What the replica holds (counts, for a restore's summary).
    pub fn census(&mut self) -> Result<Census> {
        match self {
            Self::Local(r) => Ok(r.census()?),
            Self::Daemon(_) => self.call_raw(serde_json::json!({"method": "census"})),
        }
    }

    /// Checks the replica's store, and with `repair` mends what it can
    /// (`progress`: documents read, of all; only without a daemon).
    pub fn check(&mut self, repair: bool, progress: impl FnMut(u64, u64)) -> Result<CheckOutcome> {
        self.allow(BULK_TIMEOUT);
        match self {
            Self::Local(r) => Ok(r.check_and_repair(repair, progress)?),
            Self::Daemon(_) => self.call_raw(serde_json::json!({"method": "check", "params": {"repair": repair}})),
        }
    }

    /// Writes a consistent copy of the replica to `path` (absolute).
    pub fn backup(&mut self, path: &Path, force: bool) -> Result<Census> {
        self.allow(BULK_TIMEOUT);
        match self {
            Self::Local(r) => Ok(r.backup_to(path, Utc::now(), force)?),
            Self::Daemon(_) => {
                self.call_raw(serde_json::json!({"method": "backup", "params": {"path": path, "force": force}}))
            }
        }
    }

    /// Replaces the replica's contents with the backup's at `path` (absolute).
    pub fn restore(&mut self, path: &Path) -> Result<Census> {
        self.allow(BULK_TIMEOUT);
        match self {
            Self::Local(r) => {
                let backup = heph_engine::backup::open_backup(path)?;
                Ok(r.restore_from(&backup)?)
            }
            Self::Daemon(_) => self.call_raw(serde_json::json!({"method": "restore", "params": {"path": path}})),
        }
    }

    /// Whether calls go to a daemon (for the audit log).
    pub fn via(&self) -> &'static str {
        match self {
            Self::Local(_) => "store",
            Self::Daemon(_) => "daemon",
        }
    }

    /// The daemon's sync health; without a daemon, what the store knows.
    pub fn sync_status(&mut self) -> Result<SyncHealth> {
        match self {
            Self::Local(r) => Ok(SyncHealth::default().with_store(r)?),
            Self::Daemon(_) => self.call_raw(serde_json::json!({"method": "sync_status"})),
        }
    }

    /// Asks the daemon for a full sync cycle now.
    pub fn sync_now(&mut self) -> Result<SyncHealth> {
        match self {
            Self::Local(_) => Err(anyhow!(
                "no device daemon runs for this store; start one with `hephd --mode local --hub-url URL` (it syncs in the background)"
            )),
            Self::Daemon(_) => self.call_raw(serde_json::json!({"method": "sync_now"})),
        }
    }
}
