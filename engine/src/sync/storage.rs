//! The storage seam: what the sync state machines need of a store.
//!
//! [`HubSession`](super::hub::HubSession) reaches storage only through
//! [`SyncStore`]; [`SpokeSession`](super::spoke::SpokeSession) through
//! [`DeviceStore`], which adds a device's cursors to it. The redb
//! [`Replica`] implements both; [`MemoryStore`](super::memory::MemoryStore)
//! is a second, plain in-memory implementation for protocol tests; a
//! multi-owner hub plugs a database in here. Search indexes, the RPC API and
//! the CLI are not part of the seam.
//!
//! # Contract
//! Every implementation passes the one conformance suite in
//! `engine/tests/conformance.rs`. What it checks:
//!
//! - **The log.** Every change stored and ready is logged exactly once, at
//!   the next seq: seqs start at 1, have no gaps, and never change or go
//!   away. [`SyncStore::head`] is the last seq. Each entry carries the
//!   log's [position](SyncStore::position) there. The log order is causal
//!   within a document (a change is logged after everything it depends on).
//! - **Idempotence.** Changes are identified by their hash. Applying a
//!   change already stored (logged or waiting) stores nothing and logs
//!   nothing; it is reported as a duplicate.
//! - **Waiting.** A change whose dependencies are not all applied to its
//!   document is stored but not logged ("waiting"); it is applied and logged
//!   in the same write that brings its last missing dependency. A waiting
//!   change gives way to an incoming change with its actor and seq
//!   (Automerge holds one change per actor and seq): it is dropped, counted
//!   in [`Applied::displaced`], and when offered again it is refused as
//!   clashing with the change that took its place.
//! - **Atomicity.** Each batch of [`SyncStore::apply`] is all or nothing: a
//!   refused batch (an invalid change, the waiting quota) leaves no trace,
//!   and does not affect the other batches of the same call.
//! - **Order.** Batches are applied in the order given; the seqs one batch
//!   logs are all above those of the batches before it.
//! - **Durability on return.** When a write returns `Ok`, everything it
//!   reports is durable: a crash after that loses none of it. When it
//!   returns `Err` (or the process dies before it returns), none of it is
//!   stored. An acknowledgement to a peer is sent only after that return.
//! - **Reads are snapshots.** Each read sees one committed state, and never
//!   waits for a write in progress.
//! - **Documents only grow.** What [`SyncStore::docs_after`] returns for a
//!   document holds at least every change logged for it when the read
//!   began.

use automerge::{Change, ChangeHash};

use crate::error::Error;
use crate::id::NodeId;
use crate::limits::PendingQuota;
use crate::replica::Replica;
use crate::store::{Applied, Cursors, LoggedChange, SavedDoc};

/// One batch of changes to apply together: a push, a catch-up frame.
pub type Batch = Vec<(NodeId, Change)>;

/// What the hub's side of the protocol needs of storage: the log and the
/// documents. See the [module docs](self) for the contract.
pub trait SyncStore: Send + Sync {
    /// This store's id (hex): the hub's id on a hub, the device id on a
    /// device. It never changes for the life of the store.
    fn store_id(&self) -> String;

    /// The last seq of the log; 0 when it is empty.
    fn head(&self) -> Result<u64, Error>;

    /// The log's position at `seq`, if the log reaches it: SHA-256 of the
    /// position at `seq − 1` (32 zero bytes at 0) and the hash of the change
    /// at `seq`. Equal positions mean equal logs up to there; a client's
    /// known position that this log does not hold means the log it saw is
    /// not this one's past (a hub restored from an older copy).
    fn position(&self, seq: u64) -> Result<Option<ChangeHash>, Error>;

    /// Log entries after `after`, oldest first: at most `limit`, and past the
    /// first at most `budget` bytes on the wire
    /// ([`wire_size`](super::frame::wire_size) of each). With `local_only`,
    /// only the changes made on this replica.
    fn log_after(&self, after: u64, limit: usize, budget: usize, local_only: bool) -> Result<Vec<LoggedChange>, Error>;

    /// Applies `batches` in order, each atomically, in as few durable
    /// writes as refusals allow (one when none is refused); with
    /// `max_pending`, a batch that would leave more changes waiting is
    /// refused with [`Error::PendingQuota`] or [`Error::PendingBytes`]. The outer `Err` means nothing
    /// was stored; otherwise one result per batch (a batch stored before a
    /// later write failed keeps its `Ok`).
    fn apply(
        &self,
        batches: Vec<Batch>,
        max_pending: Option<PendingQuota>,
    ) -> Result<Vec<Result<Applied, Error>>, Error>;

    /// Stored documents after `after` in id order, each whole (a saved
    /// document, possibly followed by changes), within `budget` bytes on the
    /// wire past the first: one bootstrap frame.
    fn docs_after(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<(NodeId, Vec<u8>)>, Error>;

    /// [`Self::docs_after`] for a client that asked for views: each
    /// document with the store's reading of it
    /// ([`DocView`](super::frame::DocView)) where the store has one, and
    /// only one of exactly the bytes returned (in the same read, with the
    /// document's heads as they are there). `budget` counts the readings
    /// too, and a reading that would not fit within it beside its document
    /// is left out (a frame of one document stays within `budget`). A reading is an optional shortcut, never the truth: a store may
    /// have none for some documents or for all (the default), and a client
    /// then reads the bytes itself.
    fn docs_after_with_views(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<SavedDoc>, Error> {
        Ok(self.docs_after(after, budget)?.into_iter().map(SavedDoc::from).collect())
    }

    /// Documents after `after` in id order with their heads, at most `limit`.
    fn heads_after(&self, after: Option<NodeId>, limit: usize) -> Result<Vec<(NodeId, Vec<ChangeHash>)>, Error>;

    /// For each `(doc, heads)` a peer offers: `None` when every one of those
    /// heads is applied here, else `Some` of this store's heads for the
    /// document (empty when it has none of it).
    fn lacking(&self, offered: &[(NodeId, Vec<ChangeHash>)]) -> Result<Vec<Option<Vec<ChangeHash>>>, Error>;

    /// The applied changes of `doc` that a peer whose heads are `have`
    /// lacks, in causal order (empty when the document is not stored).
    fn changes_since(&self, doc: NodeId, have: &[ChangeHash]) -> Result<Vec<Change>, Error>;
}

/// What a device's side of the protocol needs beyond [`SyncStore`]: where
/// its sync with the hub stands. Each method is one durable write or one
/// read; cursors never run ahead of what is stored.
pub trait DeviceStore: SyncStore {
    /// Where sync stands.
    fn cursors(&self) -> Result<Cursors, Error>;

    /// Begins a session with hub `hub`: the cursors to resume from. Another
    /// hub than the last one starts both cursors afresh, and owes a
    /// reconciliation if this store ever synced.
    fn begin_sync(&self, hub: &str) -> Result<Cursors, Error>;

    /// The hub no longer holds what this store saw of its log: start the
    /// cursors afresh and owe a reconciliation, in one write.
    fn restart_sync(&self, hub: &str) -> Result<Cursors, Error>;

    /// Sets or clears the owed reconciliation.
    fn set_reconcile(&self, owed: bool) -> Result<(), Error>;

    /// Applies a batch pulled from the hub and moves the hub cursor to
    /// `upto` (never back), in one write; `known` is the hub's change at
    /// the batch's last seq.
    fn apply_from_hub(&self, batch: Batch, upto: u64, known: Option<(u64, ChangeHash)>) -> Result<Applied, Error>;

    /// Merges whole documents from the hub (bootstrap) in one write; with
    /// `upto` (the last snapshot frame) also moves the hub cursor there.
    fn merge_snapshots(
        &self,
        docs: Vec<(NodeId, Vec<u8>)>,
        upto: Option<u64>,
        known: Option<(u64, ChangeHash)>,
    ) -> Result<(), Error>;

    /// Records that the hub durably holds local changes up to local seq
    /// `pushed` (never moving back), and with `known` the newest hub
    /// position its ack named.
    fn acknowledge(&self, pushed: u64, known: Option<(u64, ChangeHash)>) -> Result<(), Error>;
}

impl SyncStore for Replica {
    fn store_id(&self) -> String {
        self.origin().to_hex_string()
    }

    fn head(&self) -> Result<u64, Error> {
        self.last_seq()
    }

    fn position(&self, seq: u64) -> Result<Option<ChangeHash>, Error> {
        Replica::position(self, seq)
    }

    fn log_after(&self, after: u64, limit: usize, budget: usize, local_only: bool) -> Result<Vec<LoggedChange>, Error> {
        if local_only {
            self.local_changes_after(after, limit, budget)
        } else {
            self.changes_within(after, limit, budget)
        }
    }

    fn apply(
        &self,
        batches: Vec<Batch>,
        max_pending: Option<PendingQuota>,
    ) -> Result<Vec<Result<Applied, Error>>, Error> {
        self.apply_group(batches, max_pending)
    }

    fn docs_after(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<(NodeId, Vec<u8>)>, Error> {
        Replica::docs_after(self, after, budget)
    }

    fn docs_after_with_views(&self, after: Option<NodeId>, budget: usize) -> Result<Vec<SavedDoc>, Error> {
        Replica::docs_after_with_views(self, after, budget)
    }

    fn heads_after(&self, after: Option<NodeId>, limit: usize) -> Result<Vec<(NodeId, Vec<ChangeHash>)>, Error> {
        Replica::heads_after(self, after, limit)
    }

    fn lacking(&self, offered: &[(NodeId, Vec<ChangeHash>)]) -> Result<Vec<Option<Vec<ChangeHash>>>, Error> {
        Replica::lacking(self, offered)
    }

    fn changes_since(&self, doc: NodeId, have: &[ChangeHash]) -> Result<Vec<Change>, Error> {
        Replica::changes_since(self, doc, have)
    }
}

impl DeviceStore for Replica {
    fn cursors(&self) -> Result<Cursors, Error> {
        Replica::cursors(self)
    }

    fn begin_sync(&self, hub: &str) -> Result<Cursors, Error> {
        Replica::begin_sync(self, hub)
    }

    fn restart_sync(&self, hub: &str) -> Result<Cursors, Error> {
        Replica::restart_sync(self, hub)
    }

    fn set_reconcile(&self, owed: bool) -> Result<(), Error> {
        Replica::set_reconcile(self, owed)
    }

    fn apply_from_hub(&self, batch: Batch, upto: u64, known: Option<(u64, ChangeHash)>) -> Result<Applied, Error> {
        Replica::apply_from_hub(self, batch, upto, known)
    }

    fn merge_snapshots(
        &self,
        docs: Vec<(NodeId, Vec<u8>)>,
        upto: Option<u64>,
        known: Option<(u64, ChangeHash)>,
    ) -> Result<(), Error> {
        Replica::merge_snapshots(self, docs, upto, known)
    }

    fn acknowledge(&self, pushed: u64, known: Option<(u64, ChangeHash)>) -> Result<(), Error> {
        Replica::acknowledge(self, pushed, known)
    }
}
