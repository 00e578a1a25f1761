//! Errors, one enum per boundary: opening a store, and working with one.

use std::path::PathBuf;

use crate::doc::DocError;
use crate::id::NodeId;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process has the store open for writing.
    #[error(
        "the store {} is in use by another heph process (a running hephd or heph); try again when it has finished \
         (a device daemon started with --socket PATH serves heph when HEPH_SOCKET=PATH is set)",
        path.display()
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The file is not a heph store, or is damaged.
    #[error("{} is not a readable heph store ({reason}); check --db / HEPH_DB", path.display())]
    Unreadable {
        /// The store file.
        path: PathBuf,
        /// What redb or heph found.
        reason: String,
    },
    /// A newer heph wrote this store.
    #[error("the store {} has schema version {found}, newer than this heph reads ({supported}); upgrade heph", path.display())]
    NewerVersion {
        /// The store file.
        path: PathBuf,
        /// The schema version in the file.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The folder or file could not be created or read.
    #[error("cannot open {}: {error}", path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// An older heph wrote this store; it must be opened read-write once to
    /// upgrade it (any write command, or the daemon, does).
    #[error("the store {} has schema version {found}; open it read-write once to upgrade it", path.display())]
    NeedsUpgrade {
        /// The store file.
        path: PathBuf,
        /// The schema version in the file.
        found: u32,
    },
    /// Opened, but the first write (initialising or upgrading) failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Why an operation on an open store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No node has this id or prefix.
    #[error("no node matches {0:?}; `heph ls status:all` lists every id")]
    NotFound(String),
    /// More than one node starts with this prefix.
    #[error("{prefix:?} matches {} nodes ({}); type more digits", candidates.len(), list(candidates))]
    Ambiguous {
        /// What was typed.
        prefix: String,
        /// The nodes it matches (at most a few).
        candidates: Vec<NodeId>,
    },
    /// Not a valid id or prefix.
    #[error("{0:?} is not a node id (ids are hex digits, e.g. 3fa2c1)")]
    BadId(String),
    /// A prefix too short to name a node for a change (see
    /// [`crate::id::MIN_CHANGE_PREFIX`]).
    #[error("{0:?}: type at least {min} characters of the id to change a node (any unique prefix works for show and history)", min = crate::id::MIN_CHANGE_PREFIX)]
    PrefixTooShort(String),
    /// `undo` found no change of this device left to undo.
    #[error("nothing to undo: every change made on this device is undone already, or it has made none")]
    NothingToUndo,
    /// The change `undo` was asked to revert is no longer this device's
    /// last one (another write came in between).
    #[error("the last change on this device is no longer {expected}; run heph undo again to see what it would undo")]
    UndoMoved {
        /// The change (hash) the caller expected to revert.
        expected: String,
    },
    /// The disk (or the file size limit) is full; nothing was written.
    #[error("the disk is full; nothing was written (free some space and try again)")]
    DiskFull,
    /// Bytes from elsewhere (an import, a peer) are not valid Automerge changes.
    #[error("invalid change for node {doc}: {reason}")]
    InvalidChange {
        /// The document the change was for.
        doc: NodeId,
        /// What was wrong.
        reason: String,
    },
    /// A stored document could not be read.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// Reading or writing the store failed inside the storage engine (a
    /// panic, caught): the file may be damaged.
    #[error(
        "the store failed inside its storage engine ({0}); the file may be damaged: keep a copy of it, \
         export what still reads (heph export), or restore a backup (heph restore FILE)"
    )]
    Damaged(String),
    /// A node with this id exists already.
    #[error("a node with id {0} exists already; pick another id, or edit that node")]
    Exists(NodeId),
    /// A single change is over the size every replica and hub accepts.
    #[error(
        "the change is at least {size} bytes, over the {limit}-byte limit of one change (its text is too large); split it into several nodes"
    )]
    ChangeTooLarge {
        /// The change's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many received changes are waiting for their dependencies.
    #[error(
        "{limit} received changes already wait for changes they depend on; send those first (reconcile), then retry"
    )]
    PendingQuota {
        /// The limit.
        limit: u64,
    },
    /// The received changes waiting for their dependencies take too many
    /// bytes.
    #[error(
        "received changes waiting for changes they depend on already take {} MiB; send those first (reconcile), then retry",
        limit >> 20
    )]
    PendingBytes {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The store was opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
    /// A filter names an attribute neither heph nor any node has.
    #[error("unknown attribute {0:?} in the filter: heph has no such attribute and no node has a UDA of that name")]
    UnknownAttribute(String),
    /// An imported record names a stored document this heph cannot read as
    /// a node (written by a newer heph or another client): it is left as
    /// it is, and the import refused, rather than written over.
    #[error(
        "the import has a record for {id}, which is stored here but does not read as a node ({reason}); \
         `heph unreadable` lists such documents; take the record out of the file to import the rest"
    )]
    ImportOverUnreadable {
        /// The document.
        id: NodeId,
        /// Why it does not read.
        reason: String,
    },
    /// An import record whose change would be over the size every replica
    /// and hub accepts: it could be stored here but never synced.
    #[error(
        "the import's record for {id} ('{title:.60}') makes a change of at least {size} bytes, over the {limit}-byte \
         limit of one change, so it could never sync; shorten or split its text, or take the record out of the \
         file; nothing was imported"
    )]
    ImportTooLarge {
        /// The node.
        id: NodeId,
        /// Its title.
        title: String,
        /// The change's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `heph conflicts resolve` named a field without a conflict, or a
    /// value past the ones listed; the message says what there is.
    #[error("{0}")]
    NoSuchConflict(String),
    /// A dependency that would make a task wait on itself (Taskwarrior
    /// refuses these too): `path` runs from the task it would depend on back
    /// to `task`.
    #[error("{}", cycle(*task, path))]
    DependencyCycle {
        /// The task being changed.
        task: NodeId,
        /// The dependencies that lead back to it.
        path: Vec<NodeId>,
    },
    /// The storage engine failed.
    #[error("storage error: {0}")]
    Storage(String),
}

fn cycle(task: NodeId, path: &[NodeId]) -> String {
    let short = |id: &NodeId| id.to_hex()[..8].to_string();
    match path {
        [only] if *only == task => format!("{} cannot depend on itself", short(&task)),
        _ => format!(
            "{} cannot depend on {}: that would be a circular dependency ({}); remove one with depends:-ID",
            short(&task),
            path.first().map(short).unwrap_or_default(),
            std::iter::once(&task).chain(path).map(short).collect::<Vec<_>>().join(" → ")
        ),
    }
}

impl Error {
    /// Whether this refuses one batch of received changes (its content, or
    /// a quota), rather than a failure of the store: other batches written
    /// in the same transaction may still go in.
    #[must_use]
    pub fn refuses_batch(&self) -> bool {
        matches!(
            self,
            Self::InvalidChange { .. }
                | Self::Doc(_)
                | Self::PendingQuota { .. }
                | Self::PendingBytes { .. }
                | Self::ChangeTooLarge { .. }
        )
    }
}

fn list(ids: &[NodeId]) -> String {
    let shown = ids.iter().take(5).map(|id| id.to_hex()[..8].to_string()).collect::<Vec<_>>().join(", ");
    if ids.len() > 5 { format!("{shown}, …") } else { shown }
}

fn io_is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::QuotaExceeded
    )
}

impl From<redb::StorageError> for Error {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) if io_is_full(&io) => Self::DiskFull,
            other => Self::Storage(other.to_string()),
        }
    }
}

macro_rules! storage_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                match e.into() {
                    redb::Error::Io(io) if io_is_full(&io) => Self::DiskFull,
                    other => Self::Storage(other.to_string()),
                }
            }
        }
    )*};
}

storage_error!(redb::TransactionError, redb::TableError, redb::CommitError);

/// Runs `f`, turning a panic into an [`Error::Storage`] that says what it
/// was, so that a bug met by one write fails that write alone. Whatever `f`
/// had written is discarded: a redb transaction dropped unfinished aborts,
/// and the documents it had taken from a hub's cache are dropped with it.
pub fn unpanicked<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    crate::panics::catch(f).map_err(|why| Error::Storage(format!("an internal error: {why}")))
}
