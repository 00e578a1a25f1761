//! The replica's storage: one redb file (or redb's in-memory backend).
//!
//! # Tables
//! | table | key → value | what for |
//! |---|---|---|
//! | `meta` | name → bytes | `schema` version, `origin` (this replica's device id) |
//! | `docs` | node id → Automerge document (compacted) | loading one node |
//! | `heads` | node id → its heads (32-byte hashes, concatenated) | reconciliation without loading documents |
//! | `changes` | change hash → node id ‖ raw change | dedup, sync, history of the log |
//! | `log` | local seq → node id ‖ change hash ‖ origin | the append-only local change log, in the order changes arrived; origin 1 = made here, 0 = received |
//! | `positions` | local seq → SHA-256(position at seq − 1 ‖ change hash at seq) | a digest of the whole log up to each seq (position 0 is 32 zero bytes): two logs with the same position at a seq hold the same changes in the same order up to it |
//! | `sync` | name → u64 | sync cursors: `hub_cursor` (last hub seq pulled), `pushed` (last local seq the hub acknowledged), `known_seq` (see `known_hash`), `reconcile` (1 while a reconciliation with the hub is owed); `pending_bytes` (the raw bytes of the changes in `pending_at`) |
//! | `sync_meta` | name → bytes | `hub_id`: the hub the cursors belong to; `known_hash`: the hub's log position at hub seq `known_seq` |
//! | `pending` | node id ⇉ change hash | received changes whose dependencies have not arrived yet |
//! | `pending_at` | change hash → ms | when each of those started waiting (sync health) |
//! | `unreadable` | node id → reason | stored documents that do not read as nodes: kept, synced, counted and listed, never silently hidden |
//! | `index` | node id → [`NodeSummary`] (postcard) | listing and filtering without loading documents |
//! | `text` | node id → lower-cased searchable text | `heph search` |
//! | `backlinks` | target id ⇉ source id | backlinks in `heph show` |
//! | `tail` | node id ⇉ local seq | hub mode: changes logged for a document since its `docs` entry was saved (its whole form is that entry followed by these changes, in seq order) |
//! | `stale` | node id → () | documents whose `index`, `text`, `backlinks` and `unreadable` rows are behind (hub mode, see below) |
//!
//! # Schema versions
//! `meta.schema` is [`SCHEMA`]. Version 1 lacked `heads`, `pending_at` and
//! `unreadable`; opening a version-1 store read-write migrates it in one
//! transaction (fills `heads`, and reads every document without an index
//! row again, so that one an older heph could not read is counted now).
//! Version 2 lacked `stale` and `positions` (the upgrade computes every
//! position, and forgets the device's known hub position, which version 2
//! kept as a change hash: the next frame from the hub tells it again).
//! Version 3's index rows lacked the UDAs; the upgrade indexes every
//! document again.
//! A read-only open of an older store fails with
//! [`OpenError::NeedsUpgrade`]; open it read-write once.
//!
//! # Hub mode
//! A hub's writes are received changes, many per commit, and nobody reads
//! its indexes but the occasional RPC call. [`Store::set_hub_mode`] makes
//! applying received changes cheaper:
//! - a received change is not written into its document's `docs` entry: the
//!   entry stays as last saved and the change's seq goes to `tail`. Reading
//!   a document takes the entry followed by those changes (Automerge loads
//!   that whole). It is saved again once its tail holds [`TAIL_CHANGES`]
//!   changes or more bytes than the saved entry;
//! - documents stay loaded in memory between commits (a cache bounded in
//!   documents and in their estimated memory, kept
//!   equal to what is committed: an aborted transaction's documents are
//!   dropped, and any other write to a document evicts it);
//! - the index rows are brought up to date later: the document is marked in
//!   `stale`, and [`Writer::refresh_stale`] reads it into the indexes.
//!
//! # Durability
//! Every [`Store::write`] is one redb transaction committed with
//! `Durability::Immediate`: when it returns `Ok`, the write is on disk; when it
//! fails or the process dies before it returns, none of it is. Many changes
//! arriving together (an import, a sync batch) go into one transaction.
//!
//! # Concurrency
//! One process owns the file at a time (redb's exclusive lock); opening it
//! elsewhere fails with [`OpenError::Locked`]. Within the process, redb lets
//! readers run beside the single writer.

use std::path::{Path, PathBuf};

use automerge::{ActorId, Change, ChangeHash};
use redb::{
    Database, MultimapTableDefinition, ReadOnlyMultimapTable, ReadOnlyTable, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use crate::doc::{Conflict, NodeDoc};
use crate::error::{Error, OpenError};
use crate::id::{IdPrefix, NodeId, Purpose};
use crate::limits::PendingQuota;
use crate::node::{Node, NodeSummary};
use crate::sync::frame::{DocView, wire_size};

mod check;
pub use check::{CheckOutcome, CheckReport, Problem, Repaired};

/// The newest store schema this build reads and writes.
pub const SCHEMA: u32 = 4;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const DOCS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("docs");
const HEADS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("heads");
const PENDING_AT: TableDefinition<[u8; 32], u64> = TableDefinition::new("pending_at");
const UNREADABLE: TableDefinition<[u8; 16], &str> = TableDefinition::new("unreadable");
const CHANGES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("changes");
const LOG: TableDefinition<u64, [u8; 49]> = TableDefinition::new("log");
const SYNC: TableDefinition<&str, u64> = TableDefinition::new("sync");
/// The `sync` key of the bytes waiting in `pending_at` ([`Writer::set_max_pending`]).
const PENDING_BYTES: &str = "pending_bytes";
const SYNC_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sync_meta");
const PENDING: MultimapTableDefinition<[u8; 16], [u8; 32]> = MultimapTableDefinition::new("pending");
const INDEX: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("index");
const TEXT: TableDefinition<[u8; 16], &str> = TableDefinition::new("text");
const BACKLINKS: MultimapTableDefinition<[u8; 16], [u8; 16]> = MultimapTableDefinition::new("backlinks");
const STALE: TableDefinition<[u8; 16], ()> = TableDefinition::new("stale");
const POSITIONS: TableDefinition<u64, [u8; 32]> = TableDefinition::new("positions");
const TAIL: MultimapTableDefinition<[u8; 16], u64> = MultimapTableDefinition::new("tail");
/// Small named records the processes around the store keep in it (a hub's
/// owner, its automation tokens), so one file holds everything and a
/// backup of it is whole. Created on first write.
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// Each document's reading ([`DocView`] without its heads) as JSON, after
/// the heads it is of: `[heads length: u16 LE][heads][JSON]`. A row whose
/// heads are not the document's current ones is out of date and never read
/// (so no write path has to remember it). Reading a node takes this row
/// when it is current: loading an Automerge document rebuilds its whole
/// history (a second for a note of a few MB), decoding the row does not. A
/// hub also hands the rows to browsers it bootstraps. Created on first use;
/// for a store written before every store kept them, a hub or device
/// daemon marks the documents without one stale and fills them in the
/// background ([`Writer::stale_without_views`]).
const VIEWS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("views");

/// Hub mode: the most changes a document's tail holds before it is saved
/// again.
pub const TAIL_CHANGES: usize = 64;

/// The raw bytes of the changes in `pending_at` (each `changes` value less
/// its node id), counted row by row: for a store from before
/// [`PENDING_BYTES`] was kept.
fn waiting_bytes(
    pending_at: &impl ReadableTable<[u8; 32], u64>,
    changes: &impl ReadableTable<[u8; 32], &'static [u8]>,
) -> Result<u64, Error> {
    let mut total = 0u64;
    for row in pending_at.iter()? {
        if let Some(stored) = changes.get(row?.0.value())? {
            total += (stored.value().len().saturating_sub(16)) as u64;
        }
    }
    Ok(total)
}

/// A document's whole stored form: its `docs` entry, then the changes of
/// its tail (hub mode) in seq order.
fn stored_doc(
    docs: &impl ReadableTable<[u8; 16], &'static [u8]>,
    tail: &impl ReadableMultimapTable<[u8; 16], u64>,
    log: &impl ReadableTable<u64, [u8; 49]>,
    changes: &impl ReadableTable<[u8; 32], &'static [u8]>,
    id: NodeId,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(saved) = docs.get(id.as_bytes())? else { return Ok(None) };
    let mut bytes = saved.value().to_vec();
    for seq in tail.get(id.as_bytes())? {
        let Some(entry) = log.get(seq?.value())? else { continue };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&entry.value()[16..48]);
        if let Some(stored) = changes.get(hash)? {
            bytes.extend_from_slice(&stored.value()[16..]);
        }
    }
    Ok(Some(bytes))
}

/// Walks the log from its newest entry back over the changes made here
/// (origin 1) whose author is `actor`, decoded: `f` returns `false` to stop.
/// (Changes logged as made here by other actors, such as a restored
/// backup's or an import's derived ones, are skipped.)
fn walk_own(
    log: &impl ReadableTable<u64, [u8; 49]>,
    changes: &impl ReadableTable<[u8; 32], &'static [u8]>,
    actor: &ActorId,
    mut f: impl FnMut(NodeId, Change) -> bool,
) -> Result<(), Error> {
    for row in log.iter()?.rev() {
        let (_, entry) = row?;
        let entry = entry.value();
        if entry[48] != 1 {
            continue;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&entry[16..48]);
        let Some(stored) = changes.get(hash)? else { continue };
        let stored = stored.value();
        let mut doc = [0u8; 16];
        doc.copy_from_slice(&stored[..16]);
        let change = Change::from_bytes(stored[16..].to_vec())
            .map_err(|e| Error::InvalidChange { doc: NodeId::from_bytes(doc), reason: e.to_string() })?;
        if change.actor_id() == actor && !f(NodeId::from_bytes(doc), change) {
            break;
        }
    }
    Ok(())
}

/// The log position after `prev` when `hash` is logged next.
pub(crate) fn next_position(prev: &[u8; 32], hash: &ChangeHash) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(prev);
    h.update(hash.0);
    h.finalize().into()
}

/// A document kept loaded between a hub's commits.
struct Cached {
    doc: NodeDoc,
    /// Bytes of its stored value that are its saved form.
    saved: usize,
    /// Changes in its tail.
    tail: usize,
    /// Their bytes.
    tail_bytes: usize,
    used: u64,
    /// What its changes in `pending` wait for, when known (see
    /// [`Waiting`]); `None` until an apply has read them all.
    waiting: Option<Waiting>,
}

/// What a document's waiting changes (its rows in `pending`) wait for: the
/// hashes they depend on that are neither in the document nor waiting
/// themselves, and their actors. A received change can let one of them in
/// only if it is one of those hashes, and can take one's place only if it
/// has one of those actors; any other leaves them as they are, so applying
/// it need not read them again (hub mode).
#[derive(Default)]
struct Waiting {
    missing: std::collections::HashSet<ChangeHash>,
    actors: std::collections::HashSet<automerge::ActorId>,
    /// How many wait.
    count: usize,
}

impl Waiting {
    /// Adds `waiting`, changes that wait in `doc`.
    fn add(&mut self, waiting: &[Change], doc: &NodeDoc) {
        let hashes: std::collections::HashSet<ChangeHash> = waiting.iter().map(Change::hash).collect();
        self.count += waiting.len();
        for change in waiting {
            self.actors.insert(change.actor_id().clone());
            for dep in change.deps() {
                if !hashes.contains(dep) && !doc.has_change(dep) {
                    self.missing.insert(*dep);
                }
            }
        }
    }

    /// Whether `fresh` leaves every waiting change as it is.
    fn untouched_by(&self, fresh: &[Change]) -> bool {
        fresh.iter().all(|c| !self.missing.contains(&c.hash()) && !self.actors.contains(c.actor_id()))
    }
}

impl Cached {
    /// What keeping it loaded costs, estimated from its stored size: a
    /// loaded Automerge document takes some tens of KiB however small it
    /// is (measured: 38 KiB for a task with 50 edits, 76 KiB with 500),
    /// and about twice its stored bytes once it is large (a note with
    /// 100 KB of text: 61 KB stored, 105 KiB loaded).
    fn weight(&self) -> usize {
        DOC_OVERHEAD.saturating_add(self.saved.saturating_add(self.tail_bytes).saturating_mul(2))
    }
}

/// The part of a loaded document's memory that does not grow with it.
const DOC_OVERHEAD: usize = 32 << 10;

/// Documents kept loaded between commits (hub mode): at most `cap` of
/// them, weighing at most `cap_bytes` in all ([`Cached::weight`]).
struct DocCache {
    docs: std::collections::HashMap<NodeId, Cached>,
    cap: usize,
    cap_bytes: usize,
    tick: u64,
}

/// How much a hub's document cache holds ([`Store::doc_cache`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocCacheUse {
    /// Documents kept loaded.
    pub docs: usize,
    /// Their estimated memory, in bytes.
    pub bytes: usize,
}

impl DocCache {
    fn usage(&self) -> DocCacheUse {
        DocCacheUse { docs: self.docs.len(), bytes: self.docs.values().map(Cached::weight).sum() }
    }

    fn put(&mut self, touched: std::collections::HashMap<NodeId, Cached>) {
        for (id, mut cached) in touched {
            // One heavier than the whole cache is not kept: it would only
            // push the others out.
            if cached.weight() > self.cap_bytes {
                continue;
            }
            self.tick += 1;
            cached.used = self.tick;
            self.docs.insert(id, cached);
        }
        let usage = self.usage();
        if usage.docs <= self.cap && usage.bytes <= self.cap_bytes {
            return;
        }
        // Evict the least recently used at once, down to three quarters of
        // each bound that was passed, so that eviction is not paid again at
        // the next commit.
        let keep_docs = if usage.docs > self.cap { self.cap * 3 / 4 } else { self.cap };
        let keep_bytes = if usage.bytes > self.cap_bytes { self.cap_bytes / 4 * 3 } else { self.cap_bytes };
        // Most recently used first.
        let mut by_use: Vec<(u64, usize, NodeId)> = self.docs.iter().map(|(id, c)| (c.used, c.weight(), *id)).collect();
        by_use.sort_unstable_by_key(|&(used, ..)| std::cmp::Reverse(used));
        let (mut docs, mut bytes) = (0usize, 0usize);
        for (_, weight, id) in by_use {
            if docs < keep_docs && bytes.saturating_add(weight) <= keep_bytes {
                docs += 1;
                bytes += weight;
            } else {
                self.docs.remove(&id);
            }
        }
    }
}

/// One entry of the local change log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedChange {
    /// Position in this replica's log.
    pub seq: u64,
    /// The node the change belongs to.
    pub doc: NodeId,
    /// The change's hash.
    pub hash: ChangeHash,
    /// The raw Automerge change.
    pub bytes: Vec<u8>,
    /// Made on this replica (`true`) or received from elsewhere.
    pub local: bool,
    /// The log's position at `seq`: a digest of every change logged up to
    /// it, in order (see the `positions` table).
    pub position: ChangeHash,
}

/// Where a replica's sync with its hub stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursors {
    /// The hub these cursors belong to (its id), if any sync happened.
    pub hub: Option<String>,
    /// The last hub seq pulled and stored.
    pub hub_cursor: u64,
    /// The last local seq the hub has acknowledged.
    pub pushed: u64,
    /// The newest position in the hub's log this replica knows (a seq and
    /// the change there), from catch-up or acks: a hub that no longer holds
    /// it was replaced or restored from an older copy.
    pub known: Option<(u64, ChangeHash)>,
    /// A reconciliation with the hub is owed (set when the hub was found
    /// replaced or behind, or held a change waiting; cleared once every
    /// document the hub lacked anything of was sent and acknowledged).
    pub reconcile: bool,
}

/// A stored document that does not read as a node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Unreadable {
    /// The document's id.
    pub id: NodeId,
    /// Why it cannot be read.
    pub reason: String,
    /// The size of its saved form.
    pub bytes: usize,
}

/// Received changes waiting for their dependencies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingStats {
    /// How many.
    pub count: u64,
    /// When the oldest started waiting (ms since the epoch).
    pub oldest_ms: Option<u64>,
    /// Their raw bytes.
    pub bytes: u64,
}

/// The redb handle: read-write, or read-only (which never writes or syncs
/// the file, so read-only commands cost no disk flushes).
enum Db {
    Write(Database),
    Read(redb::ReadOnlyDatabase),
}

/// An open store.
pub struct Store {
    db: Db,
    /// Changes only when a backup is restored into the store (the restored
    /// replica edits as a new actor, see [`Store::restore_from`]).
    origin: std::sync::RwLock<ActorId>,
    quick_repair: bool,
    cache: Option<std::sync::Mutex<DocCache>>,
}

fn open_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked { path: path.to_path_buf() },
        redb::DatabaseError::Storage(redb::StorageError::Io(error))
            if !matches!(error.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
        {
            OpenError::Io { path: path.to_path_buf(), error }
        }
        other => unreadable(path, other),
    }
}

/// A panic caught around a transaction: raised inside redb, the file may be
/// damaged; anywhere else it is a bug met by this read or write.
fn caught(why: String) -> Error {
    if why.contains("(at redb-") { Error::Damaged(why) } else { Error::Storage(format!("an internal error: {why}")) }
}

fn unreadable(path: &Path, reason: impl ToString) -> OpenError {
    OpenError::Unreadable { path: path.to_path_buf(), reason: reason.to_string() }
}

impl Store {
    /// Opens the store at `path`, creating it (and its folder) if missing.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with_cache(path, None)
    }

    /// [`Self::open`], with at most `cache_bytes` of redb's page cache
    /// (`None`: redb's default, 1 GiB). Pages beyond it are read again
    /// from the operating system's file cache.
    pub fn open_with_cache(path: &Path, cache_bytes: Option<usize>) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| OpenError::Io { path: path.to_path_buf(), error })?;
        }
        let mut builder = Database::builder();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        // A damaged file can make redb panic rather than fail: it is unreadable.
        crate::panics::catch(|| {
            let db = builder.create(path).map_err(|e| open_error(path, e))?;
            Self::init(Db::Write(db), path)
        })
        .map_err(|why| unreadable(path, why))?
    }

    /// Opens an existing store at `path` for reading only. Fails (with the
    /// same errors as [`Self::open`]) where the file is missing, damaged, or
    /// needs the recovery a read-write open performs.
    pub fn open_read_only(path: &Path) -> Result<Self, OpenError> {
        crate::panics::catch(|| {
            let db = Database::builder().open_read_only(path).map_err(|e| open_error(path, e))?;
            Self::init(Db::Read(db), path)
        })
        .map_err(|why| unreadable(path, why))?
    }

    /// A store that lives in memory only (tests, simulations).
    pub fn in_memory() -> Result<Self, OpenError> {
        let path = PathBuf::from(":memory:");
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| unreadable(&path, e))?;
        Self::init(Db::Write(db), &path)
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction, Error> {
        Ok(match &self.db {
            Db::Write(db) => db.begin_read()?,
            Db::Read(db) => db.begin_read()?,
        })
    }

    fn init(db: Db, path: &Path) -> Result<Self, OpenError> {
        let mut store = Self {
            db,
            origin: std::sync::RwLock::new(ActorId::from([0u8; 16].as_slice())),
            quick_repair: false,
            cache: None,
        };
        let existing = {
            let txn = store.begin_read().map_err(|e| unreadable(path, e))?;
            match txn.open_table(META) {
                Ok(meta) => {
                    let schema = meta.get("schema").map_err(|e| unreadable(path, e))?.map(|v| v.value().to_vec());
                    let origin = meta.get("origin").map_err(|e| unreadable(path, e))?.map(|v| v.value().to_vec());
                    Some((schema, origin))
                }
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(unreadable(path, e)),
            }
        };
        match existing {
            Some((Some(schema), Some(origin))) => {
                let found = u32::from_le_bytes(schema.try_into().map_err(|_| unreadable(path, "bad schema record"))?);
                if found > SCHEMA {
                    return Err(OpenError::NewerVersion { path: path.to_path_buf(), found, supported: SCHEMA });
                }
                store.origin = std::sync::RwLock::new(ActorId::from(origin.as_slice()));
                if found < SCHEMA {
                    if matches!(store.db, Db::Read(_)) {
                        return Err(OpenError::NeedsUpgrade { path: path.to_path_buf(), found });
                    }
                    store.write(|w| w.migrate(found))?;
                }
                Ok(store)
            }
            Some(_) => Err(unreadable(path, "the file has no heph metadata")),
            None => {
                let origin: [u8; 16] = rand::random();
                store.origin = std::sync::RwLock::new(ActorId::from(origin.as_slice()));
                store.write(|w| {
                    let mut meta = w.txn.open_table(META)?;
                    meta.insert("schema", SCHEMA.to_le_bytes().as_slice())?;
                    meta.insert("origin", origin.as_slice())?;
                    drop(meta);
                    w.create_tables()
                })?;
                Ok(store)
            }
        }
    }

    /// Makes every commit also save redb's allocator state (quick-repair):
    /// a commit costs one more flush, but a process may then end without
    /// closing the store (see [`Self::abandon`]) and the next open recovers
    /// at once. For short-lived processes; a long-running one (a hub, a
    /// daemon) closes cleanly and commits faster without it.
    pub fn set_quick_repair(&mut self, on: bool) {
        self.quick_repair = on;
    }

    /// Hub mode (see the module docs), keeping up to `cached_docs`
    /// documents loaded between commits, of at most `cached_bytes` of
    /// estimated memory in all (a document over it is not kept).
    pub fn set_hub_mode(&mut self, cached_docs: usize, cached_bytes: usize) {
        self.cache = Some(std::sync::Mutex::new(DocCache {
            docs: std::collections::HashMap::new(),
            cap: cached_docs.max(1),
            cap_bytes: cached_bytes,
            tick: 0,
        }));
    }

    /// Hub mode: how much the document cache holds now (`None` otherwise).
    pub fn doc_cache(&self) -> Option<DocCacheUse> {
        self.cache.as_ref().map(|c| c.lock().unwrap_or_else(std::sync::PoisonError::into_inner).usage())
    }

    /// Ends this process's use of the store without redb's clean-shutdown
    /// writes (two flushes and a bookkeeping commit), for a short-lived
    /// process about to exit. Nothing is lost: every commit is already
    /// durable and, with [`Self::set_quick_repair`], saves the allocator
    /// state, so the next open takes redb's quick recovery path. Without
    /// quick-repair this closes normally. The file lock is released when the
    /// process exits, so call this only right before exiting.
    pub fn abandon(self) {
        if self.quick_repair {
            std::mem::forget(self);
        }
    }

    /// This replica's device id, used as the Automerge actor of local edits.
    #[must_use]
    pub fn origin(&self) -> ActorId {
        self.origin.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Runs `f` on a consistent snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T, Error>) -> Result<T, Error> {
        // A damaged page can make redb panic rather than fail.
        crate::panics::catch(|| self.read_unguarded(f)).map_err(caught)?
    }

    fn read_unguarded<T>(&self, f: impl FnOnce(&Reader) -> Result<T, Error>) -> Result<T, Error> {
        let txn = self.begin_read()?;
        let reader = Reader {
            docs: txn.open_table(DOCS)?,
            heads: txn.open_table(HEADS)?,
            pending: txn.open_multimap_table(PENDING)?,
            pending_at: txn.open_table(PENDING_AT)?,
            unreadable: txn.open_table(UNREADABLE)?,
            index: txn.open_table(INDEX)?,
            text: txn.open_table(TEXT)?,
            backlinks: txn.open_multimap_table(BACKLINKS)?,
            log: txn.open_table(LOG)?,
            changes: txn.open_table(CHANGES)?,
            sync: txn.open_table(SYNC)?,
            sync_meta: txn.open_table(SYNC_META)?,
            stale: txn.open_table(STALE)?,
            positions: txn.open_table(POSITIONS)?,
            tail: txn.open_multimap_table(TAIL)?,
            views: match txn.open_table(VIEWS) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            },
            origin: self.origin(),
        };
        f(&reader)
    }

    /// Whether a write transaction can start now: begins one and discards it
    /// (no commit, no flush). A health check, not a guarantee about the next
    /// commit.
    pub fn check_writable(&self) -> Result<(), Error> {
        let Db::Write(db) = &self.db else {
            return Err(Error::ReadOnly);
        };
        db.begin_write()?.abort()?;
        Ok(())
    }

    /// Runs `f` in one write transaction, committed durably if `f` returns `Ok`
    /// and discarded otherwise.
    pub fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T, Error>) -> Result<T, Error> {
        // A damaged page can make redb panic rather than fail; nothing of the
        // transaction is kept then.
        crate::panics::catch(|| self.write_unguarded(f)).map_err(caught)?
    }

    fn write_unguarded<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T, Error>) -> Result<T, Error> {
        let Db::Write(db) = &self.db else {
            return Err(Error::ReadOnly);
        };
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(self.quick_repair);
        // The one clock the store reads: when a received change starts
        // waiting for its dependencies (sync health shows the age).
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut writer = Writer {
            txn,
            origin: self.origin(),
            next_seq: None,
            last_position: [0; 32],
            now_ms,
            max_pending: None,
            pending_bytes: None,
            cache: self.cache.as_ref(),
            touched: std::collections::HashMap::new(),
        };
        let out = f(&mut writer)?;
        let Writer { txn, touched, .. } = writer;
        txn.commit()?;
        // Only what is committed enters the cache.
        if let Some(cache) = &self.cache {
            cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).put(touched);
        }
        Ok(out)
    }
}

impl Store {
    /// The settings whose keys start with `prefix`, in key order.
    pub fn settings(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(SETTINGS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in table.range(prefix..)? {
            let (k, v) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// One setting.
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.settings(key)?.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
    }
}

impl Writer<'_> {
    /// One setting, as this transaction sees it.
    pub fn setting(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.txn.open_table(SETTINGS)?.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Sets (`Some`) or removes (`None`) one setting.
    pub fn set_setting(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), Error> {
        let mut table = self.txn.open_table(SETTINGS)?;
        match value {
            Some(v) => {
                table.insert(key, v)?;
            }
            None => {
                table.remove(key)?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// A copy of the whole store in memory (same origin, log and tables), as
    /// a copy of the file would be: a restored backup, in tests.
    pub fn copy_in_memory(&self) -> Result<Self, Error> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| Error::Storage(e.to_string()))?;
        let copy =
            Self { db: Db::Write(db), origin: std::sync::RwLock::new(self.origin()), quick_repair: false, cache: None };
        let from = self.begin_read()?;
        copy.write(|w| copy_tables(&from, w))?;
        Ok(copy)
    }

    /// Writes a consistent copy of the whole store (one read transaction)
    /// to a new redb file at `path`, which must not exist, and marks it as
    /// a backup taken at `taken_ms` (ms since the epoch). The copy is a
    /// store like any other: it opens read-only, and [`Self::restore_from`]
    /// takes it back.
    pub fn backup_to(&self, path: &Path, taken_ms: i64) -> Result<(), Error> {
        let from = self.begin_read()?;
        let db = Database::builder().create(path).map_err(|e| Error::Storage(format!("{}: {e}", path.display())))?;
        let copy =
            Self { db: Db::Write(db), origin: std::sync::RwLock::new(self.origin()), quick_repair: false, cache: None };
        copy.write(|w| {
            copy_tables(&from, w)?;
            w.txn.open_table(META)?.insert(BACKUP_TAKEN, taken_ms.to_le_bytes().as_slice())?;
            Ok(())
        })
    }

    /// When this store was written as a backup ([`Self::backup_to`]), in ms
    /// since the epoch; `None` for a live store.
    pub fn backup_taken(&self) -> Result<Option<i64>, Error> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(BACKUP_TAKEN)?.and_then(|v| <[u8; 8]>::try_from(v.value()).ok()).map(i64::from_le_bytes))
    }

    /// Replaces every table of this store with `backup`'s, in one durable
    /// write, as a restored file would be, with three differences:
    /// - the store takes a new origin (`origin`): edits made after the
    ///   backup with the old one may be at the hub already, and Automerge
    ///   refuses a second change with the same actor and sequence number;
    /// - a reconciliation with the hub is owed, so that whatever only the
    ///   backup holds is offered to it (the hub's log kept growing, so the
    ///   backup's cursors still hold: what came after them, this device's
    ///   own later edits included, comes back by catch-up);
    /// - the backup mark is dropped.
    pub fn restore_from(&self, backup: &Store, origin: [u8; 16]) -> Result<(), Error> {
        let from = backup.begin_read()?;
        self.write(|w| {
            macro_rules! clear {
                ($delete:ident: $($t:expr),*) => {$( w.txn.$delete($t)?; )*};
            }
            clear!(delete_table: META, DOCS, HEADS, CHANGES, LOG, POSITIONS, SYNC, SYNC_META, PENDING_AT);
            clear!(delete_table: UNREADABLE, INDEX, TEXT, STALE, SETTINGS, VIEWS);
            clear!(delete_multimap_table: PENDING, BACKLINKS, TAIL);
            copy_tables(&from, w)?;
            // The backup's own total comes with its tables.
            w.pending_bytes = None;
            w.create_tables()?;
            let mut meta = w.txn.open_table(META)?;
            meta.remove(BACKUP_TAKEN)?;
            meta.insert("origin", origin.as_slice())?;
            meta.insert("schema", SCHEMA.to_le_bytes().as_slice())?;
            drop(meta);
            w.txn.open_table(SYNC)?.insert("reconcile", 1)?;
            w.origin = ActorId::from(origin.as_slice());
            Ok(())
        })?;
        *self.origin.write().unwrap_or_else(std::sync::PoisonError::into_inner) = ActorId::from(origin.as_slice());
        if let Some(cache) = &self.cache {
            cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).docs.clear();
        }
        Ok(())
    }
}

/// The `meta` key of a backup's time ([`Store::backup_to`]).
const BACKUP_TAKEN: &str = "backup_taken";

/// Copies every table of `from` into `w` (whose tables are empty).
fn copy_tables(from: &redb::ReadTransaction, w: &mut Writer) -> Result<(), Error> {
    macro_rules! tables {
        ($($t:expr),*) => {$({
            let src = from.open_table($t)?;
            let mut dst = w.txn.open_table($t)?;
            for row in src.iter()? {
                let (k, v) = row?;
                dst.insert(k.value(), v.value())?;
            }
        })*};
    }
    macro_rules! multimaps {
        ($($t:expr),*) => {$({
            let src = from.open_multimap_table($t)?;
            let mut dst = w.txn.open_multimap_table($t)?;
            for row in src.iter()? {
                let (k, values) = row?;
                for v in values {
                    dst.insert(k.value(), v?.value())?;
                }
            }
        })*};
    }
    tables!(META, DOCS, HEADS, CHANGES, LOG, POSITIONS, SYNC, SYNC_META, PENDING_AT, UNREADABLE, INDEX, TEXT, STALE);
    multimaps!(PENDING, BACKLINKS, TAIL);
    // Created on first use: a store may not have them.
    macro_rules! optional {
        ($($t:expr),*) => {$(
            match from.open_table($t) {
                Ok(src) => {
                    let mut dst = w.txn.open_table($t)?;
                    for row in src.iter()? {
                        let (k, v) = row?;
                        dst.insert(k.value(), v.value())?;
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
        )*};
    }
    optional!(SETTINGS, VIEWS);
    Ok(())
}

/// Read access to a snapshot of the store.
pub struct Reader {
    docs: ReadOnlyTable<[u8; 16], &'static [u8]>,
    heads: ReadOnlyTable<[u8; 16], &'static [u8]>,
    pending: ReadOnlyMultimapTable<[u8; 16], [u8; 32]>,
    pending_at: ReadOnlyTable<[u8; 32], u64>,
    unreadable: ReadOnlyTable<[u8; 16], &'static str>,
    index: ReadOnlyTable<[u8; 16], &'static [u8]>,
    text: ReadOnlyTable<[u8; 16], &'static str>,
    backlinks: ReadOnlyMultimapTable<[u8; 16], [u8; 16]>,
    log: ReadOnlyTable<u64, [u8; 49]>,
    changes: ReadOnlyTable<[u8; 32], &'static [u8]>,
    sync: ReadOnlyTable<&'static str, u64>,
    sync_meta: ReadOnlyTable<&'static str, &'static [u8]>,
    stale: ReadOnlyTable<[u8; 16], ()>,
    positions: ReadOnlyTable<u64, [u8; 32]>,
    tail: ReadOnlyMultimapTable<[u8; 16], u64>,
    views: Option<ReadOnlyTable<[u8; 16], &'static [u8]>>,
    origin: ActorId,
}

fn decode_summary(bytes: &[u8]) -> Result<NodeSummary, Error> {
    postcard::from_bytes(bytes).map_err(|e| Error::Storage(format!("index row: {e}")))
}

fn resolve(index: &impl ReadableTable<[u8; 16], &'static [u8]>, text: &str, purpose: Purpose) -> Result<NodeId, Error> {
    let prefix = IdPrefix::parse(text).ok_or_else(|| Error::BadId(text.to_string()))?;
    // Checked before the lookup: a short prefix is refused whether or not it
    // happens to be unique today.
    if !prefix.serves(purpose) {
        return Err(Error::PrefixTooShort(text.to_string()));
    }
    let (lo, hi) = prefix.range();
    let mut found = Vec::new();
    for row in index.range(lo..=hi)?.take(6) {
        let (key, _) = row?;
        found.push(NodeId::from_bytes(key.value()));
    }
    match found.as_slice() {
        [] => Err(Error::NotFound(text.to_string())),
        [one] => Ok(*one),
        _ => Err(Error::Ambiguous { prefix: text.to_string(), candidates: found }),
    }
}

impl Reader {
    /// The node whose id starts with `prefix`, for `purpose`.
    pub fn resolve(&self, prefix: &str, purpose: Purpose) -> Result<NodeId, Error> {
        resolve(&self.index, prefix, purpose)
    }

    /// The document of `id`, if stored.
    pub fn doc(&self, id: NodeId) -> Result<Option<NodeDoc>, Error> {
        match self.raw_doc(id)? {
            Some(bytes) => Ok(Some(NodeDoc::load(&bytes, &self.origin)?)),
            None => Ok(None),
        }
    }

    /// The index row of `id`.
    pub fn summary(&self, id: NodeId) -> Result<Option<NodeSummary>, Error> {
        self.index.get(id.as_bytes())?.map(|v| decode_summary(v.value())).transpose()
    }

    /// Visits every index row in id order; `f` returns `false` to stop.
    pub fn scan(&self, mut f: impl FnMut(NodeSummary) -> bool) -> Result<(), Error> {
        for row in self.index.iter()? {
            let (_, value) = row?;
            if !f(decode_summary(value.value())?) {
                break;
            }
        }
        Ok(())
    }

    /// Like [`Self::scan`], decoding only the rows whose stored bytes contain
    /// one of `needles`: a row without them cannot hold a string equal to
    /// any, so scans that look for a few rows among thousands (recurring
    /// tasks by their UDA names) skip decoding the rest.
    pub fn scan_containing(&self, needles: &[&str], mut f: impl FnMut(NodeSummary) -> bool) -> Result<(), Error> {
        let finders: Vec<memchr::memmem::Finder<'_>> = needles.iter().map(memchr::memmem::Finder::new).collect();
        for row in self.index.iter()? {
            let (_, value) = row?;
            let bytes = value.value();
            if !finders.iter().any(|finder| finder.find(bytes).is_some()) {
                continue;
            }
            if !f(decode_summary(bytes)?) {
                break;
            }
        }
        Ok(())
    }

    /// Every node id in sorted order (for unique prefixes).
    pub fn ids(&self) -> Result<Vec<NodeId>, Error> {
        let mut out = Vec::with_capacity(usize::try_from(self.index.len()?).unwrap_or(0));
        for row in self.index.iter()? {
            out.push(NodeId::from_bytes(row?.0.value()));
        }
        Ok(out)
    }

    /// The ids just before and just after `id` in sorted order.
    pub fn neighbours(&self, id: NodeId) -> Result<(Option<NodeId>, Option<NodeId>), Error> {
        let key = *id.as_bytes();
        let prev = self.index.range(..key)?.next_back().transpose()?.map(|(k, _)| NodeId::from_bytes(k.value()));
        let next = self
            .index
            .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))?
            .next()
            .transpose()?
            .map(|(k, _)| NodeId::from_bytes(k.value()));
        Ok((prev, next))
    }

    /// Visits every node's searchable text.
    pub fn scan_text(&self, mut f: impl FnMut(NodeId, &str)) -> Result<(), Error> {
        for row in self.text.iter()? {
            let (key, value) = row?;
            f(NodeId::from_bytes(key.value()), value.value());
        }
        Ok(())
    }

    /// The nodes that link to `id`.
    pub fn backlinks(&self, id: NodeId) -> Result<Vec<NodeId>, Error> {
        let mut out = Vec::new();
        for v in self.backlinks.get(id.as_bytes())? {
            out.push(NodeId::from_bytes(v?.value()));
        }
        Ok(out)
    }

    /// This device's own changes, newest first (see [`crate::undo`]); `f`
    /// returns `false` to stop.
    pub fn walk_own(&self, f: impl FnMut(NodeId, Change) -> bool) -> Result<(), Error> {
        walk_own(&self.log, &self.changes, &self.origin, f)
    }

    /// The highest seq in the local log (0 when empty).
    pub fn last_seq(&self) -> Result<u64, Error> {
        Ok(self.log.last()?.map_or(0, |(k, _)| k.value()))
    }

    /// Log entries after `after`, at most `limit` of them and, past the
    /// first, at most `budget` bytes as counted by [`wire_size`]; with
    /// `only_local`, just the changes made on this replica (what a spoke
    /// pushes).
    pub fn changes_after(
        &self,
        after: u64,
        limit: usize,
        budget: usize,
        only_local: bool,
    ) -> Result<Vec<LoggedChange>, Error> {
        let mut out = Vec::new();
        let mut size = 0;
        for row in self.log.range(after.saturating_add(1)..)? {
            if out.len() >= limit {
                break;
            }
            let (seq, entry) = row?;
            let entry = entry.value();
            let local = entry[48] == 1;
            if only_local && !local {
                continue;
            }
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&entry[16..48]);
            let Some(stored) = self.changes.get(hash)? else { continue };
            let stored = stored.value();
            let mut doc = [0u8; 16];
            doc.copy_from_slice(&stored[..16]);
            size += wire_size(stored.len() - 16);
            if !out.is_empty() && size > budget {
                break;
            }
            let position = self.positions.get(seq.value())?.map_or([0; 32], |p| p.value());
            out.push(LoggedChange {
                seq: seq.value(),
                doc: NodeId::from_bytes(doc),
                hash: ChangeHash(hash),
                bytes: stored[16..].to_vec(),
                local,
                position: ChangeHash(position),
            });
        }
        Ok(out)
    }

    /// How many changes made here sit in the log after `after`.
    pub fn count_local_after(&self, after: u64) -> Result<u64, Error> {
        let mut n = 0;
        for row in self.log.range(after.saturating_add(1)..)? {
            n += u64::from(row?.1.value()[48] == 1);
        }
        Ok(n)
    }

    /// Saved documents with ids after `after` (from the first with `None`),
    /// in id order, at most `budget` bytes as counted by [`wire_size`] past
    /// the first. A bootstrap pages through the table with this, one read
    /// transaction a page, instead of copying it whole.
    pub fn docs_after(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<(NodeId, Vec<u8>)>, Error> {
        Ok(self.saved_docs(after, budget, false)?.into_iter().map(|d| (d.id, d.bytes)).collect())
    }

    /// [`Self::docs_after`], with this store's reading of each document
    /// where it holds one of exactly the bytes returned (hub mode keeps
    /// them; see [`VIEWS`]). `budget` counts the readings too.
    pub fn docs_after_with_views(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<SavedDoc>, Error> {
        self.saved_docs(after, budget, true)
    }

    /// One bootstrap page, with readings when `views`.
    fn saved_docs(&self, after: Option<NodeId>, budget: usize, views: bool) -> Result<Vec<SavedDoc>, Error> {
        let rows = self.docs.range(after_key(after))?;
        bootstrap_page(
            rows.map(|row| {
                let id = NodeId::from_bytes(row?.0.value());
                let bytes = self.raw_doc(id)?.unwrap_or_default();
                let view = if views { self.view(id)? } else { None };
                Ok((id, bytes, view))
            }),
            budget,
        )
    }

    /// The stored reading of `id` if it is of the document's current heads,
    /// with the bytes it takes on the wire.
    fn view(&self, id: NodeId) -> Result<Option<(DocView, usize)>, Error> {
        let Some(Reading { body, heads, json_len }) = self.current_reading(id)? else { return Ok(None) };
        let heads: Vec<String> = split_hashes(&heads).iter().map(ToString::to_string).collect();
        let len = json_len + heads.len() * 67 + 32;
        Ok(Some((DocView { node: body.node, conflicts: body.conflicts, heads }, len)))
    }

    /// The stored reading of `id` ([`VIEWS`]) if it is of the document's
    /// current heads.
    fn current_reading(&self, id: NodeId) -> Result<Option<Reading>, Error> {
        let Some(views) = &self.views else { return Ok(None) };
        let Some(row) = views.get(id.as_bytes())? else { return Ok(None) };
        let Some(heads) = self.heads.get(id.as_bytes())? else { return Ok(None) };
        let heads = heads.value();
        let Some(json) = current_view(row.value(), heads) else { return Ok(None) };
        // A row that does not decode is only a missed shortcut: the reader
        // loads the document itself.
        let Ok(body) = serde_json::from_slice::<ViewBody<Node>>(json) else { return Ok(None) };
        Ok(Some(Reading { body, heads: heads.to_vec(), json_len: json.len() }))
    }

    /// The node `id` reads as: its stored reading when that is current,
    /// else its document's.
    /// `None` when no document is stored.
    pub fn node(&self, id: NodeId) -> Result<Option<Node>, Error> {
        if let Some(reading) = self.current_reading(id)? {
            return Ok(Some(reading.body.node));
        }
        Ok(match self.doc(id)? {
            Some(doc) => Some(doc.materialise_as(id)?),
            None => None,
        })
    }

    /// Whether `id`'s current reading says it holds no conflict (`false`
    /// when there is no current reading: the document has to tell).
    pub fn known_free_of_conflicts(&self, id: NodeId) -> Result<bool, Error> {
        Ok(self.current_reading(id)?.is_some_and(|r| r.body.conflicts.is_empty()))
    }

    /// Documents with ids after `after`, with their heads, in id order: at
    /// most `limit` of them (a reconciliation's `have` frames).
    pub fn heads_after(&self, after: Option<NodeId>, limit: usize) -> Result<Vec<(NodeId, Vec<ChangeHash>)>, Error> {
        let mut out = Vec::new();
        for row in self.heads.range(after_key(after))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            out.push((NodeId::from_bytes(k.value()), split_hashes(v.value())));
        }
        Ok(out)
    }

    /// The heads of one document (empty when it is not stored).
    pub fn heads(&self, id: NodeId) -> Result<Vec<ChangeHash>, Error> {
        Ok(self.heads.get(id.as_bytes())?.map(|v| split_hashes(v.value())).unwrap_or_default())
    }

    /// Whether change `hash` of `doc` is part of the stored document: stored,
    /// and not waiting for its dependencies.
    pub fn has_applied(&self, doc: NodeId, hash: &ChangeHash) -> Result<bool, Error> {
        if self.changes.get(hash.0)?.is_none() {
            // Documents merged from snapshots hold changes the `changes`
            // table never saw.
            return Ok(self.doc(doc)?.is_some_and(|d| d.has_change(hash)));
        }
        for waiting in self.pending.get(doc.as_bytes())? {
            if waiting?.value() == hash.0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The raw changes of `id` that are stored but wait for their
    /// dependencies.
    pub fn waiting(&self, id: NodeId) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        for hash in self.pending.get(id.as_bytes())? {
            if let Some(stored) = self.changes.get(hash?.value())? {
                out.push(stored.value()[16..].to_vec());
            }
        }
        Ok(out)
    }

    /// How many changes are stored (logged or waiting).
    pub fn change_count(&self) -> Result<u64, Error> {
        Ok(self.changes.len()?)
    }

    /// The hash of the change at log seq `seq`, if there is one.
    pub fn position(&self, seq: u64) -> Result<Option<ChangeHash>, Error> {
        Ok(self.positions.get(seq)?.map(|p| ChangeHash(p.value())))
    }

    /// The saved document of `id` as stored (with its tail), unread.
    pub fn raw_doc(&self, id: NodeId) -> Result<Option<Vec<u8>>, Error> {
        stored_doc(&self.docs, &self.tail, &self.log, &self.changes, id)
    }

    /// Whether a document `id` is stored (read as a node or not, indexed yet or not).
    pub fn has_doc(&self, id: NodeId) -> Result<bool, Error> {
        Ok(self.docs.get(id.as_bytes())?.is_some())
    }

    /// Every stored document that does not read as a node, with the reason.
    pub fn unreadable(&self) -> Result<Vec<Unreadable>, Error> {
        let mut out = Vec::new();
        for row in self.unreadable.iter()? {
            let (k, reason) = row?;
            let id = NodeId::from_bytes(k.value());
            let bytes = self.raw_doc(id)?.map_or(0, |v| v.len());
            out.push(Unreadable { id, reason: reason.value().to_string(), bytes });
        }
        Ok(out)
    }

    /// How many stored documents do not read as nodes.
    pub fn unreadable_count(&self) -> Result<u64, Error> {
        Ok(self.unreadable.len()?)
    }

    /// Received changes waiting for their dependencies: how many, and since when.
    pub fn pending_stats(&self) -> Result<PendingStats, Error> {
        let mut oldest: Option<u64> = None;
        for row in self.pending_at.iter()? {
            let at = row?.1.value();
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
        let bytes = match self.sync.get(PENDING_BYTES)? {
            Some(kept) => kept.value(),
            None => waiting_bytes(&self.pending_at, &self.changes)?,
        };
        Ok(PendingStats { count: self.pending_at.len()?, oldest_ms: oldest, bytes })
    }

    /// The sync cursors.
    pub fn cursors(&self) -> Result<Cursors, Error> {
        read_cursors(&self.sync, &self.sync_meta)
    }

    /// Number of nodes.
    pub fn count(&self) -> Result<u64, Error> {
        Ok(self.index.len()?)
    }

    /// How many documents' index rows are behind (hub mode).
    pub fn stale_count(&self) -> Result<u64, Error> {
        Ok(self.stale.len()?)
    }
}

fn after_key(after: Option<NodeId>) -> (std::ops::Bound<[u8; 16]>, std::ops::Bound<[u8; 16]>) {
    match after {
        Some(id) => (std::ops::Bound::Excluded(*id.as_bytes()), std::ops::Bound::Unbounded),
        None => (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
    }
}

/// A stored document with the store's reading of it, if it has one
/// ([`SyncStore::docs_after_with_views`](crate::sync::storage::SyncStore::docs_after_with_views)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedDoc {
    /// The node.
    pub id: NodeId,
    /// Its saved Automerge document.
    pub bytes: Vec<u8>,
    /// What the store read of exactly these bytes.
    pub view: Option<DocView>,
}

impl From<(NodeId, Vec<u8>)> for SavedDoc {
    /// A document without a reading.
    fn from((id, bytes): (NodeId, Vec<u8>)) -> Self {
        Self { id, bytes, view: None }
    }
}

/// One bootstrap page from documents in id order, each with its reading
/// (if any) and the bytes that reading takes on the wire: the documents
/// within `budget` wire bytes past the first. A reading that would not fit
/// beside its document within `budget` is left out (a long body: the
/// client reads the bytes).
pub(crate) fn bootstrap_page(
    docs: impl IntoIterator<Item = Result<(NodeId, Vec<u8>, Option<(DocView, usize)>), Error>>,
    budget: usize,
) -> Result<Vec<SavedDoc>, Error> {
    let mut out = Vec::new();
    let mut size = 0;
    for doc in docs {
        let (id, bytes, view) = doc?;
        let view = view.filter(|(_, len)| wire_size(bytes.len()) + len <= budget);
        size += wire_size(bytes.len()) + view.as_ref().map_or(0, |(_, len)| *len);
        if !out.is_empty() && size > budget {
            break;
        }
        out.push(SavedDoc { id, bytes, view: view.map(|(v, _)| v) });
    }
    Ok(out)
}

/// The JSON of a [`VIEWS`] row: written from a borrowed node, read into
/// an owned one.
#[derive(serde::Serialize, serde::Deserialize)]
struct ViewBody<N> {
    node: N,
    conflicts: Vec<String>,
}

/// A current [`VIEWS`] row, decoded.
struct Reading {
    body: ViewBody<Node>,
    /// The heads it is of, as stored.
    heads: Vec<u8>,
    /// The length of its JSON.
    json_len: usize,
}

/// The JSON of a [`VIEWS`] row if the row is of `heads` (the document's
/// heads as stored now); `None` when it is out of date or malformed.
fn current_view<'a>(row: &'a [u8], heads: &[u8]) -> Option<&'a [u8]> {
    let (len, rest) = row.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    let (of, json) = (rest.len() >= len).then(|| rest.split_at(len))?;
    (of == heads).then_some(json)
}

fn split_hashes(bytes: &[u8]) -> Vec<ChangeHash> {
    bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            ChangeHash(h)
        })
        .collect()
}

fn read_cursors(
    sync: &impl ReadableTable<&'static str, u64>,
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Cursors, Error> {
    let known_hash = meta.get("known_hash")?.and_then(|v| <[u8; 32]>::try_from(v.value()).ok()).map(ChangeHash);
    let known_seq = sync.get("known_seq")?.map(|v| v.value());
    Ok(Cursors {
        hub: meta.get("hub_id")?.map(|v| String::from_utf8_lossy(v.value()).into_owned()),
        hub_cursor: sync.get("hub_cursor")?.map_or(0, |v| v.value()),
        pushed: sync.get("pushed")?.map_or(0, |v| v.value()),
        known: known_seq.zip(known_hash),
        reconcile: sync.get("reconcile")?.is_some_and(|v| v.value() == 1),
    })
}

/// Write access inside one transaction.
pub struct Writer<'s> {
    txn: WriteTransaction,
    origin: ActorId,
    next_seq: Option<u64>,
    /// The log's position before `next_seq`.
    last_position: [u8; 32],
    now_ms: u64,
    max_pending: Option<PendingQuota>,
    /// [`PENDING_BYTES`] as this transaction has it, once read.
    pending_bytes: Option<u64>,
    /// Hub mode's document cache.
    cache: Option<&'s std::sync::Mutex<DocCache>>,
    /// Documents this transaction took from the cache or loaded, as they
    /// stand in it: they enter the cache if it commits.
    touched: std::collections::HashMap<NodeId, Cached>,
}

/// The (actor, seq) of each change, with its hash.
pub(crate) fn actor_seqs(changes: &[Change]) -> std::collections::HashMap<(ActorId, u64), ChangeHash> {
    changes.iter().map(|c| ((c.actor_id().clone(), c.seq()), c.hash())).collect()
}

/// Whether a change waiting for its dependencies gives way to an incoming
/// one (`incoming`: [`actor_seqs`]) with its actor and seq. Automerge holds
/// only one change per actor and seq, so the two can never be applied
/// together; left waiting, it would refuse the incoming change, again and
/// again, for as long as it waits (perhaps for ever). The incoming change
/// takes its place; the waiting one, acknowledged only as waiting, is
/// offered again by its device and then refused as clashing.
pub(crate) fn displaced_by(waiting: &Change, incoming: &std::collections::HashMap<(ActorId, u64), ChangeHash>) -> bool {
    incoming.get(&(waiting.actor_id().clone(), waiting.seq())).is_some_and(|h| *h != waiting.hash())
}

/// A batch offering a waiting change and another with its actor and seq:
/// neither could be acknowledged as what it is, so the batch is refused.
pub(crate) fn both_offered(doc: NodeId) -> Error {
    Error::InvalidChange {
        doc,
        reason: "the batch holds two different changes with the same actor and seq; Automerge keeps only one".into(),
    }
}

/// What applying received changes did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Changes that were new and are now part of their documents.
    pub applied: usize,
    /// Changes already known.
    pub duplicates: usize,
    /// Changes kept until their dependencies arrive.
    pub waiting: usize,
    /// Changes that waited and were dropped for an incoming change with
    /// their actor and seq (Automerge holds one change per actor and seq;
    /// see the storage seam's contract).
    pub displaced: usize,
    /// The hashes of the incoming changes that are stored but still wait for
    /// their dependencies after this apply (including ones that waited before).
    pub waiting_hashes: Vec<ChangeHash>,
    /// Documents that do not (yet) read as nodes; their changes are kept.
    pub not_nodes: Vec<NodeId>,
    /// The changes logged by this apply, with their new seqs, in log order.
    pub logged: Vec<LoggedChange>,
}

impl Writer<'_> {
    /// Bounds the `pending` table: an apply that would leave more changes
    /// (or bytes of them) waiting fails with [`Error::PendingQuota`] (or
    /// [`Error::PendingBytes`]) and stores nothing.
    pub fn set_max_pending(&mut self, max: Option<PendingQuota>) {
        self.max_pending = max;
    }

    /// The raw bytes of the changes waiting for their dependencies (those in
    /// `pending_at`): kept in `sync` as [`PENDING_BYTES`], counted from the
    /// tables the first time (a store from before it was kept).
    fn pending_bytes(&mut self) -> Result<u64, Error> {
        if let Some(bytes) = self.pending_bytes {
            return Ok(bytes);
        }
        if let Some(bytes) = self.txn.open_table(SYNC)?.get(PENDING_BYTES)?.map(|b| b.value()) {
            self.pending_bytes = Some(bytes);
            return Ok(bytes);
        }
        let total = waiting_bytes(&self.txn.open_table(PENDING_AT)?, &self.txn.open_table(CHANGES)?)?;
        self.set_pending_bytes(total)?;
        Ok(total)
    }

    fn set_pending_bytes(&mut self, bytes: u64) -> Result<(), Error> {
        self.txn.open_table(SYNC)?.insert(PENDING_BYTES, bytes)?;
        self.pending_bytes = Some(bytes);
        Ok(())
    }

    /// Creates every table, so readers never meet a missing one.
    fn create_tables(&mut self) -> Result<(), Error> {
        self.txn.open_table(DOCS)?;
        self.txn.open_table(HEADS)?;
        self.txn.open_table(CHANGES)?;
        self.txn.open_table(LOG)?;
        self.txn.open_table(SYNC)?;
        self.txn.open_table(SYNC_META)?;
        self.txn.open_multimap_table(PENDING)?;
        self.txn.open_table(PENDING_AT)?;
        self.txn.open_table(UNREADABLE)?;
        self.txn.open_table(INDEX)?;
        self.txn.open_table(TEXT)?;
        self.txn.open_multimap_table(BACKLINKS)?;
        self.txn.open_table(STALE)?;
        self.txn.open_table(POSITIONS)?;
        self.txn.open_multimap_table(TAIL)?;
        Ok(())
    }

    /// Every stored document's id.
    fn doc_ids(&self) -> Result<Vec<NodeId>, Error> {
        let docs = self.txn.open_table(DOCS)?;
        let mut ids = Vec::new();
        for row in docs.iter()? {
            ids.push(NodeId::from_bytes(row?.0.value()));
        }
        Ok(ids)
    }

    /// Upgrades a store of schema `from` to [`SCHEMA`], in this transaction.
    fn migrate(&mut self, from: u32) -> Result<(), Error> {
        self.create_tables()?;
        if from < 2 {
            // Version 1 kept no heads, and left documents it could not read
            // out of the index without a trace: read each document once.
            let ids = self.doc_ids()?;
            let now_ms = self.now_ms;
            for id in ids {
                let Some(doc) = self.doc(id)? else { continue };
                self.put_heads(id, &doc.heads())?;
                if self.txn.open_table(INDEX)?.get(id.as_bytes())?.is_none() {
                    self.refresh(id, &doc)?;
                }
            }
            let hashes: Vec<[u8; 32]> = {
                let pending = self.txn.open_multimap_table(PENDING)?;
                let mut out = Vec::new();
                for row in pending.iter()? {
                    for hash in row?.1 {
                        out.push(hash?.value());
                    }
                }
                out
            };
            let mut at = self.txn.open_table(PENDING_AT)?;
            for hash in hashes {
                at.insert(hash, now_ms)?;
            }
        }
        if from < 3 {
            // Every log position, in one pass over the log.
            let hashes: Vec<(u64, ChangeHash)> = {
                let log = self.txn.open_table(LOG)?;
                let mut out = Vec::new();
                for row in log.iter()? {
                    let (seq, entry) = row?;
                    let mut hash = [0u8; 32];
                    hash.copy_from_slice(&entry.value()[16..48]);
                    out.push((seq.value(), ChangeHash(hash)));
                }
                out
            };
            let mut positions = self.txn.open_table(POSITIONS)?;
            let mut position = [0u8; 32];
            for (seq, hash) in hashes {
                position = next_position(&position, &hash);
                positions.insert(seq, position)?;
            }
            drop(positions);
            // Version 2 kept the hub's change at `known_seq`, not its position.
            self.txn.open_table(SYNC)?.remove("known_seq")?;
            self.txn.open_table(SYNC_META)?.remove("known_hash")?;
        }
        if from < 4 {
            // Version 3's index rows lacked the UDAs (filters on Taskwarrior
            // attributes and recurrence read them): index every document again.
            let ids = self.doc_ids()?;
            // The old rows do not decode as the new ones: drop them first.
            self.txn.delete_table(INDEX)?;
            self.txn.open_table(INDEX)?;
            for id in ids {
                if let Some(doc) = self.doc(id)? {
                    self.refresh(id, &doc)?;
                }
            }
        }
        self.txn.open_table(META)?.insert("schema", SCHEMA.to_le_bytes().as_slice())?;
        Ok(())
    }

    fn put_heads(&mut self, id: NodeId, heads: &[ChangeHash]) -> Result<(), Error> {
        let bytes: Vec<u8> = heads.iter().flat_map(|h| h.0).collect();
        self.txn.open_table(HEADS)?.insert(id.as_bytes(), bytes.as_slice())?;
        Ok(())
    }

    /// Stores a document's saved form and its heads. In hub mode the
    /// document leaves the cache: this write did not go through it.
    fn put_doc(&mut self, id: NodeId, saved: &[u8], heads: &[ChangeHash]) -> Result<(), Error> {
        if let Some(cache) = self.cache {
            self.touched.remove(&id);
            cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).docs.remove(&id);
        }
        self.txn.open_table(DOCS)?.insert(id.as_bytes(), saved)?;
        self.txn.open_multimap_table(TAIL)?.remove_all(id.as_bytes())?;
        self.put_heads(id, heads)
    }

    /// Hub mode: whether the loaded document of `id` knows what its waiting
    /// changes wait for, and `fresh` brings none of it ([`Waiting`]).
    fn waiting_untouched_by(&self, id: NodeId, fresh: &[Change]) -> bool {
        let untouched = |c: &Cached| c.waiting.as_ref().is_some_and(|w| w.untouched_by(fresh));
        if let Some(cached) = self.touched.get(&id) {
            return untouched(cached);
        }
        self.cache.is_some_and(|cache| {
            cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).docs.get(&id).is_some_and(untouched)
        })
    }

    /// Hub mode: the document of `id` as committed (or as this transaction
    /// left it), from the cache or loaded; an empty one when not stored.
    fn take_cached(&mut self, id: NodeId) -> Result<Cached, Error> {
        if let Some(cached) = self.touched.remove(&id) {
            return Ok(cached);
        }
        if let Some(cache) = self.cache
            && let Some(cached) = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).docs.remove(&id)
        {
            return Ok(cached);
        }
        let saved = self.txn.open_table(DOCS)?.get(id.as_bytes())?.map_or(0, |v| v.value().len());
        let tail = self.txn.open_multimap_table(TAIL)?.get(id.as_bytes())?.len();
        Ok(match self.raw_doc(id)? {
            Some(bytes) => Cached {
                doc: NodeDoc::load(&bytes, &self.origin)?,
                saved,
                tail: usize::try_from(tail).unwrap_or(usize::MAX),
                tail_bytes: bytes.len() - saved,
                used: 0,
                waiting: None,
            },
            None => {
                Cached { doc: NodeDoc::empty(&self.origin), saved: 0, tail: 0, tail_bytes: 0, used: 0, waiting: None }
            }
        })
    }

    /// Hub mode: stores what the changes `applied` (logged at `seqs`, just
    /// applied to `cached`) added to the document: their seqs go to its
    /// tail, or the document is saved again once the tail is long enough.
    /// Its index rows are marked stale.
    fn put_cached(
        &mut self,
        id: NodeId,
        mut cached: Cached,
        seqs: &[u64],
        applied: usize,
        resave: bool,
    ) -> Result<(), Error> {
        let heads = cached.doc.heads();
        // A new document is kept loaded only once it is written again:
        // most are not soon (an import, a new device's first push).
        let new = cached.saved == 0;
        cached.tail += seqs.len();
        cached.tail_bytes += applied;
        if new || resave || cached.tail > TAIL_CHANGES || cached.tail_bytes > cached.saved {
            let saved = cached.doc.save();
            cached.saved = saved.len();
            cached.tail = 0;
            cached.tail_bytes = 0;
            self.txn.open_table(DOCS)?.insert(id.as_bytes(), saved.as_slice())?;
            self.txn.open_multimap_table(TAIL)?.remove_all(id.as_bytes())?;
        } else {
            let mut tail = self.txn.open_multimap_table(TAIL)?;
            for seq in seqs {
                tail.insert(id.as_bytes(), seq)?;
            }
        }
        self.put_heads(id, &heads)?;
        self.txn.open_table(STALE)?.insert(id.as_bytes(), ())?;
        if !new {
            self.touched.insert(id, cached);
        }
        Ok(())
    }

    /// Brings the index rows of up to `limit` stale documents up to date
    /// (hub mode); returns how many it did.
    pub fn refresh_stale(&mut self, limit: usize) -> Result<usize, Error> {
        let ids: Vec<NodeId> = {
            let stale = self.txn.open_table(STALE)?;
            let mut ids = Vec::new();
            for row in stale.iter()?.take(limit) {
                ids.push(NodeId::from_bytes(row?.0.value()));
            }
            ids
        };
        for &id in &ids {
            self.txn.open_table(STALE)?.remove(id.as_bytes())?;
            // Indexing does not make a document worth keeping loaded: one
            // that was not is dropped again.
            let was_loaded = self.touched.contains_key(&id)
                || self.cache.is_some_and(|c| {
                    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner).docs.contains_key(&id)
                });
            let cached = self.take_cached(id)?;
            if cached.doc.heads().is_empty() {
                continue;
            }
            self.refresh(id, &cached.doc)?;
            if was_loaded {
                self.touched.insert(id, cached);
            }
        }
        Ok(ids.len())
    }

    /// Re-reads a stored document into the indexes, or records why it does
    /// not read as a node (it stays stored and synced, and is listed).
    fn refresh(&mut self, id: NodeId, doc: &NodeDoc) -> Result<bool, Error> {
        let read = doc.materialise_as(id);
        match read {
            Ok(node) => {
                let conflicts = doc.conflicts(id)?;
                self.reindex(&node, &conflicts)?;
                // It may not have read before (a later change mended it).
                let mut unreadable = self.txn.open_table(UNREADABLE)?;
                if !unreadable.is_empty()? {
                    unreadable.remove(id.as_bytes())?;
                }
                Ok(true)
            }
            Err(e) => {
                let reason = match e {
                    crate::doc::DocError::NotANode { reason, .. } => reason,
                    other => other.to_string(),
                };
                self.txn.open_table(UNREADABLE)?.insert(id.as_bytes(), reason.as_str())?;
                // Out of the listing indexes, so no stale row stands in for it.
                if self.txn.open_table(INDEX)?.remove(id.as_bytes())?.is_some() {
                    self.txn.open_table(TEXT)?.remove(id.as_bytes())?;
                }
                self.txn.open_table(VIEWS)?.remove(id.as_bytes())?;
                Ok(false)
            }
        }
    }

    /// This replica's device id.
    #[must_use]
    pub fn origin(&self) -> ActorId {
        self.origin.clone()
    }

    /// Mends what [`Reader::check`] found about `id`: applies the logged
    /// changes `lost` its document lacks (those stored whole), then
    /// rebuilds every row derived from the document (heads, index, search
    /// text, backlinks, reading, the unreadable list); with no document
    /// stored, changes nothing. Returns how many changes went back into the
    /// document.
    ///
    /// # Errors
    /// [`Error::Doc`] when the document does not load (its bytes are
    /// damaged: nothing here can mend that).
    pub fn mend(&mut self, id: NodeId, lost: &[ChangeHash]) -> Result<usize, Error> {
        let key = id.as_bytes();
        // No document: nothing to rebuild from, and its rows are all that
        // is left of it; they stay.
        let Some(mut doc) = self.doc(id)? else { return Ok(0) };
        let mut found = Vec::new();
        for hash in lost.iter().filter(|h| !doc.has_change(h)) {
            if let Some(stored) = self.txn.open_table(CHANGES)?.get(hash.0)?
                && let Some(raw) = stored.value().get(16..)
                && let Ok(Ok(change)) = crate::panics::catch(|| Change::from_bytes(raw.to_vec()))
                && change.hash() == *hash
            {
                found.push(change);
            }
        }
        let mut restored = 0;
        if !found.is_empty() {
            let offered = found.len();
            let waiting = doc.apply(found)?;
            restored = offered - waiting.len();
            doc = doc.without_waiting()?;
            self.put_doc(id, &doc.save(), &doc.heads())?;
        } else {
            self.put_heads(id, &doc.heads())?;
        }
        self.txn.open_table(STALE)?.remove(key)?;
        self.refresh(id, &doc)?;
        Ok(restored)
    }

    /// The document of `id`, if stored.
    pub fn doc(&self, id: NodeId) -> Result<Option<NodeDoc>, Error> {
        match self.raw_doc(id)? {
            Some(bytes) => Ok(Some(NodeDoc::load(&bytes, &self.origin)?)),
            None => Ok(None),
        }
    }

    /// Whether a document `id` is stored, as of this transaction.
    pub fn has_doc(&self, id: NodeId) -> Result<bool, Error> {
        Ok(self.txn.open_table(DOCS)?.get(id.as_bytes())?.is_some())
    }

    /// The stored form of `id` (with its tail), as of this transaction.
    fn raw_doc(&self, id: NodeId) -> Result<Option<Vec<u8>>, Error> {
        stored_doc(
            &self.txn.open_table(DOCS)?,
            &self.txn.open_multimap_table(TAIL)?,
            &self.txn.open_table(LOG)?,
            &self.txn.open_table(CHANGES)?,
            id,
        )
    }

    /// This device's own changes, newest first, as of this transaction;
    /// see [`Reader::walk_own`].
    pub fn walk_own(&self, f: impl FnMut(NodeId, Change) -> bool) -> Result<(), Error> {
        walk_own(&self.txn.open_table(LOG)?, &self.txn.open_table(CHANGES)?, &self.origin, f)
    }

    /// Whether a change with this hash is stored.
    pub fn has_change(&self, hash: &ChangeHash) -> Result<bool, Error> {
        Ok(self.txn.open_table(CHANGES)?.get(hash.0)?.is_some())
    }

    /// Stores a change's bytes in `changes`; `false` when it was already there.
    fn store_change(&mut self, doc: NodeId, change: &Change) -> Result<bool, Error> {
        let hash = change.hash();
        let mut changes = self.txn.open_table(CHANGES)?;
        if changes.get(hash.0)?.is_some() {
            return Ok(false);
        }
        let raw = change.raw_bytes();
        let mut value = Vec::with_capacity(16 + raw.len());
        value.extend_from_slice(doc.as_bytes());
        value.extend_from_slice(raw);
        changes.insert(hash.0, value.as_slice())?;
        Ok(true)
    }

    /// Appends a stored change to the log; returns its seq.
    fn log_change(&mut self, doc: NodeId, change: &Change, local: bool) -> Result<(u64, ChangeHash), Error> {
        let mut log = self.txn.open_table(LOG)?;
        let mut positions = self.txn.open_table(POSITIONS)?;
        let seq = match self.next_seq {
            Some(s) => s,
            None => {
                let last = log.last()?.map_or(0, |(k, _)| k.value());
                self.last_position = positions.get(last)?.map_or([0; 32], |p| p.value());
                last + 1
            }
        };
        let hash = change.hash();
        let mut entry = [0u8; 49];
        entry[..16].copy_from_slice(doc.as_bytes());
        entry[16..48].copy_from_slice(&hash.0);
        entry[48] = u8::from(local);
        log.insert(seq, entry)?;
        let position = next_position(&self.last_position, &hash);
        positions.insert(seq, position)?;
        self.last_position = position;
        self.next_seq = Some(seq + 1);
        Ok((seq, ChangeHash(position)))
    }

    /// Stores and logs a change not seen before; `None` when it is known.
    fn append_log(&mut self, doc: NodeId, change: &Change, local: bool) -> Result<Option<(u64, ChangeHash)>, Error> {
        if !self.store_change(doc, change)? {
            return Ok(None);
        }
        self.log_change(doc, change, local).map(Some)
    }

    /// Stores `doc` after local edits that produced `changes`: appends them to
    /// the log and refreshes the indexes.
    pub fn save_local(&mut self, id: NodeId, doc: &NodeDoc, changes: &[Change]) -> Result<Node, Error> {
        let node = doc.materialise_as(id)?;
        let conflicts = doc.conflicts(id)?;
        self.save_prepared(id, &doc.save(), &doc.heads(), changes, &node, &conflicts)?;
        // Received changes may have been waiting for this one (a journal day
        // another device wrote before this device opened it).
        if self.txn.open_multimap_table(PENDING)?.get(id.as_bytes())?.next().is_some() {
            self.apply_remote(id, Vec::new(), false, &mut Applied::default())?;
            if let Some(doc) = self.doc(id)? {
                return Ok(doc.materialise_as(id)?);
            }
        }
        Ok(node)
    }

    /// Stores a document prepared elsewhere (possibly on another thread):
    /// its saved bytes, the local changes that made it, and its node.
    pub fn save_prepared(
        &mut self,
        id: NodeId,
        saved: &[u8],
        heads: &[ChangeHash],
        changes: &[Change],
        node: &Node,
        conflicts: &[Conflict],
    ) -> Result<(), Error> {
        for change in changes {
            self.append_log(id, change, true)?;
        }
        self.put_doc(id, saved, heads)?;
        self.reindex(node, conflicts)
    }

    /// Applies changes received from elsewhere (a hub, an import) to `id`'s
    /// document. Known changes are skipped; changes whose dependencies are
    /// missing are kept (in `pending`) and applied when those arrive. With
    /// `local`, newly logged changes count as made here (a restored backup
    /// or a raw import: this replica offers them to its hub).
    pub fn apply_remote(
        &mut self,
        id: NodeId,
        incoming: Vec<Change>,
        local: bool,
        report: &mut Applied,
    ) -> Result<(), Error> {
        let incoming_hashes: Vec<ChangeHash> = incoming.iter().map(Change::hash).collect();
        // Read (or first counted) before this apply changes `pending_at`.
        let waiting_bytes_before = self.pending_bytes()?;
        let mut waiting_bytes = waiting_bytes_before;
        let mut fresh = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for change in incoming {
            if !seen.insert(change.hash()) || self.has_change(&change.hash())? {
                report.duplicates += 1;
            } else {
                fresh.push(change);
            }
        }
        // Changes waiting for this document join the batch: they may be ready
        // now. One that shares its actor and seq with an incoming change
        // gives way instead (see `displaced`). A loaded document knows what
        // they wait for: when the batch brings none of it, they are left be.
        let incoming_at = actor_seqs(&fresh);
        let mut pending_hashes = Vec::new();
        let mut pending_sizes = Vec::new();
        let mut displaced = Vec::new();
        // A change offered again may be one of them: its ack says whether it
        // still waits.
        let offered_again = fresh.len() < incoming_hashes.len();
        let read_pending = fresh.is_empty() || offered_again || !self.waiting_untouched_by(id, &fresh);
        if read_pending {
            let pending = self.txn.open_multimap_table(PENDING)?;
            let changes = self.txn.open_table(CHANGES)?;
            for hash in pending.get(id.as_bytes())? {
                let hash = hash?.value();
                if let Some(stored) = changes.get(hash)? {
                    let change = Change::from_bytes(stored.value()[16..].to_vec())
                        .map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?;
                    pending_hashes.push(hash);
                    pending_sizes.push(change.raw_bytes().len() as u64);
                    if displaced_by(&change, &incoming_at) {
                        displaced.push(hash);
                    } else {
                        fresh.push(change);
                    }
                }
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        // Hub mode keeps the document loaded between commits.
        let mut cached = if self.cache.is_some() { Some(self.take_cached(id)?) } else { None };
        let hub_mode = cached.is_some();
        // Left unread, they still wait, and count as waiting after this apply.
        let still_waiting = match (&cached, read_pending) {
            (Some(c), false) => c.waiting.as_ref().map_or(0, |w| w.count),
            _ => 0,
        };
        let mut doc = match &mut cached {
            Some(c) => std::mem::replace(&mut c.doc, NodeDoc::empty(&self.origin)),
            None => self.doc(id)?.unwrap_or_else(|| NodeDoc::empty(&self.origin)),
        };
        if !displaced.is_empty() {
            if displaced.iter().any(|h| incoming_hashes.contains(&ChangeHash(*h))) {
                return Err(both_offered(id));
            }
            // The document may hold them queued too; the other waiting
            // changes are in `fresh`. Gone from `changes`, a displaced
            // change offered again is not taken for one already stored.
            doc = doc.without_waiting()?;
            let mut changes = self.txn.open_table(CHANGES)?;
            for hash in &displaced {
                changes.remove(hash)?;
            }
            report.displaced += displaced.len();
        }
        // The log stays causal within a document, whatever the arrival order.
        let batch = crate::doc::causal_order(fresh.clone());
        // On an error the cached document is dropped with this transaction.
        let waiting = doc.apply(fresh)?;
        let mut appended = (Vec::new(), 0);
        let waiting_hashes: Vec<[u8; 32]> = waiting.iter().map(|c| c.hash().0).collect();
        if !pending_hashes.is_empty() {
            let mut pending = self.txn.open_multimap_table(PENDING)?;
            let mut at = self.txn.open_table(PENDING_AT)?;
            for (hash, size) in pending_hashes.iter().zip(&pending_sizes) {
                pending.remove(id.as_bytes(), hash)?;
                if !waiting_hashes.contains(hash) && at.remove(hash)?.is_some() {
                    waiting_bytes = waiting_bytes.saturating_sub(*size);
                }
            }
        }
        for change in batch {
            let hash = change.hash().0;
            if waiting_hashes.contains(&hash) {
                continue;
            }
            // A change that waited is already in `changes`; now it joins the log.
            let seq = if pending_hashes.contains(&hash) {
                Some(self.log_change(id, &change, local)?)
            } else {
                self.append_log(id, &change, local)?
            };
            if let Some((seq, position)) = seq {
                if hub_mode {
                    appended.0.push(seq);
                    appended.1 += change.raw_bytes().len();
                }
                report.applied += 1;
                report.logged.push(LoggedChange {
                    seq,
                    doc: id,
                    hash: change.hash(),
                    bytes: change.raw_bytes().to_vec(),
                    local,
                    position,
                });
            }
        }
        for change in &waiting {
            let hash = change.hash().0;
            self.store_change(id, change)?;
            self.txn.open_multimap_table(PENDING)?.insert(id.as_bytes(), hash)?;
            let mut at = self.txn.open_table(PENDING_AT)?;
            if at.get(hash)?.is_none() {
                at.insert(hash, self.now_ms)?;
                waiting_bytes += change.raw_bytes().len() as u64;
            }
        }
        if waiting_bytes != waiting_bytes_before {
            self.set_pending_bytes(waiting_bytes)?;
        }
        if let Some(max) = self.max_pending.filter(|_| !waiting.is_empty()) {
            let count = self.txn.open_table(PENDING_AT)?.len()?;
            if count > max.changes {
                return Err(Error::PendingQuota { limit: max.changes });
            }
            if waiting_bytes > max.bytes {
                return Err(Error::PendingBytes { limit: max.bytes });
            }
        }
        report.waiting += waiting.len() + still_waiting;
        report.waiting_hashes.extend(incoming_hashes.into_iter().filter(|h| waiting_hashes.contains(&h.0)));
        if doc.heads().is_empty() {
            return Ok(());
        }
        if let Some(mut cached) = cached {
            cached.doc = doc;
            match (&mut cached.waiting, read_pending) {
                (Some(known), false) => known.add(&waiting, &cached.doc),
                _ => {
                    // Every waiting change of the document was in this apply.
                    let mut known = Waiting::default();
                    known.add(&waiting, &cached.doc);
                    cached.waiting = Some(known);
                }
            }
            // A saved form may hold displaced changes among its queued ones.
            let resave = !displaced.is_empty();
            return self.put_cached(id, cached, &appended.0, appended.1, resave);
        }
        self.put_doc(id, &doc.save(), &doc.heads())?;
        if !self.refresh(id, &doc)? {
            report.not_nodes.push(id);
        }
        Ok(())
    }

    /// Merges a document received from a hub (bootstrap): a saved document,
    /// or a run of changes in causal order (a document too large for one
    /// frame travels as several such runs). Its changes become part of the
    /// document; they are not logged one by one.
    pub fn merge_snapshot(&mut self, id: NodeId, bytes: &[u8]) -> Result<(), Error> {
        crate::limits::check(bytes, crate::limits::MAX_INFLATED_BYTES)
            .map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?;
        let mut doc = self.doc(id)?.unwrap_or_else(|| NodeDoc::empty(&self.origin));
        doc.merge_bytes(bytes).map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?;
        if doc.heads().is_empty() {
            return Ok(());
        }
        self.put_doc(id, &doc.save(), &doc.heads())?;
        self.refresh(id, &doc)?;
        // Changes that waited for what the snapshot brought are applied
        // and logged in this write, as an apply bringing it would.
        self.apply_remote(id, Vec::new(), false, &mut Applied::default())
    }

    /// Records where sync with hub `hub` stands. A different hub than the
    /// stored one starts both cursors afresh (its log is another log).
    pub fn set_cursors(&mut self, cursors: &Cursors) -> Result<(), Error> {
        let mut sync = self.txn.open_table(SYNC)?;
        sync.insert("hub_cursor", cursors.hub_cursor)?;
        sync.insert("pushed", cursors.pushed)?;
        sync.insert("reconcile", u64::from(cursors.reconcile))?;
        let mut meta = self.txn.open_table(SYNC_META)?;
        match &cursors.known {
            Some((seq, hash)) => {
                sync.insert("known_seq", *seq)?;
                meta.insert("known_hash", hash.0.as_slice())?;
            }
            None => {
                sync.remove("known_seq")?;
                meta.remove("known_hash")?;
            }
        }
        if let Some(hub) = &cursors.hub {
            meta.insert("hub_id", hub.as_bytes())?;
        }
        Ok(())
    }

    /// The sync cursors, as of this transaction.
    pub fn cursors(&self) -> Result<Cursors, Error> {
        read_cursors(&self.txn.open_table(SYNC)?, &self.txn.open_table(SYNC_META)?)
    }

    /// Refreshes the index rows of `node`.
    fn reindex(&mut self, node: &Node, conflicts: &[Conflict]) -> Result<(), Error> {
        let key = node.id.as_bytes();
        let mut index = self.txn.open_table(INDEX)?;
        let old = index.get(key)?.map(|v| decode_summary(v.value())).transpose()?;
        let fields = conflicts.iter().map(|c| c.field.clone()).collect();
        let summary = NodeSummary::of(node, fields);
        let bytes = postcard::to_allocvec(&summary).map_err(|e| Error::Storage(format!("index row: {e}")))?;
        index.insert(key, bytes.as_slice())?;
        drop(index);

        let mut backlinks = self.txn.open_multimap_table(BACKLINKS)?;
        let old_links = old.map(|o| o.links).unwrap_or_default();
        for target in old_links.iter().filter(|t| !node.links.contains(t)) {
            backlinks.remove(target.as_bytes(), key)?;
        }
        for target in node.links.iter().filter(|t| !old_links.contains(t)) {
            backlinks.insert(target.as_bytes(), key)?;
        }
        drop(backlinks);

        let mut text = node.title.to_lowercase();
        for part in [&node.body].into_iter().chain(node.annotations.iter().map(|a| &a.description)) {
            if !part.is_empty() {
                text.push('\n');
                text.push_str(&part.to_lowercase());
            }
        }
        for tag in &node.tags {
            text.push_str("\n+");
            text.push_str(&tag.to_lowercase());
        }
        self.txn.open_table(TEXT)?.insert(key, text.as_str())?;
        self.put_view(node, conflicts)
    }

    /// Keeps `node`'s reading ([`VIEWS`]), of the heads stored for it now.
    fn put_view(&mut self, node: &Node, conflicts: &[Conflict]) -> Result<(), Error> {
        let key = node.id.as_bytes();
        let heads = self.txn.open_table(HEADS)?.get(key)?.map(|v| v.value().to_vec()).unwrap_or_default();
        let Ok(len) = u16::try_from(heads.len()) else {
            // Thousands of concurrent heads: such a document goes without.
            self.txn.open_table(VIEWS)?.remove(key)?;
            return Ok(());
        };
        let body = ViewBody { node, conflicts: conflicts.iter().map(|c| c.field.clone()).collect() };
        let json = serde_json::to_vec(&body).map_err(|e| Error::Storage(format!("a document's reading: {e}")))?;
        let mut row = Vec::with_capacity(2 + heads.len() + json.len());
        row.extend_from_slice(&len.to_le_bytes());
        row.extend_from_slice(&heads);
        row.extend_from_slice(&json);
        self.txn.open_table(VIEWS)?.insert(key, row.as_slice())?;
        Ok(())
    }

    /// Hub mode: marks for indexing every document without a current
    /// reading ([`VIEWS`]; a store from before readings were kept, or one
    /// written outside hub mode), so the background refresh writes them.
    /// Returns how many it marked.
    pub fn stale_without_views(&mut self) -> Result<usize, Error> {
        let mut marked = Vec::new();
        {
            let docs = self.txn.open_table(DOCS)?;
            let heads = self.txn.open_table(HEADS)?;
            let views = self.txn.open_table(VIEWS)?;
            let unreadable = self.txn.open_table(UNREADABLE)?;
            for row in docs.iter()? {
                let key = row?.0.value();
                let current = heads.get(key)?.map(|v| v.value().to_vec()).unwrap_or_default();
                let fresh = views.get(key)?.is_some_and(|v| current_view(v.value(), &current).is_some());
                if !fresh && unreadable.get(key)?.is_none() {
                    marked.push(key);
                }
            }
        }
        let mut stale = self.txn.open_table(STALE)?;
        for key in &marked {
            stale.insert(key, ())?;
        }
        Ok(marked.len())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_in_redb_is_damage_and_any_other_is_a_bug() {
        let damaged =
            super::caught("internal error: entered unreachable code (at redb-4.6.0/src/tree_store/x.rs:48)".into());
        assert!(matches!(damaged, crate::Error::Damaged(_)), "{damaged}");
        assert!(damaged.to_string().contains("may be damaged"));
        let bug = super::caught("index out of bounds (at engine/src/doc.rs:10)".into());
        assert!(matches!(bug, crate::Error::Storage(ref why) if why.starts_with("an internal error")), "{bug}");
    }
}
