//! Backups of a replica, restoring one, and seeding a hub from a device.
//!
//! # The backup format
//! A backup is a redb file: every table of the store, copied in one read
//! transaction (so it is one consistent state, taken beside a running
//! writer), with `meta.backup_taken` set. It is a store like any other and
//! opens read-only ([`open_backup`]) to show what it holds.
//!
//! # Restoring
//! [`Replica::restore_from`] replaces every table with the backup's in one
//! durable write. The restored replica reconciles with its hub rather than
//! diverging from it:
//! - its sync cursors are the backup's, which the hub's log (that only
//!   grows) still holds: what the hub received after them, this device's
//!   own later edits included, comes back by catch-up;
//! - a reconciliation is owed, so anything only the backup holds is offered
//!   to the hub (`have` / `need`);
//! - it edits under a new origin (Automerge actor): edits the device made
//!   after the backup may be at the hub already, and a second change with
//!   the same actor and sequence number would be refused there.
//!
//! Local edits that were never sent to the hub before the restore are gone
//! with it; [`Census::unsent`] counts them so a caller can say so first.
//!
//! # Seeding a hub
//! [`Replica::seed_from`] fills a new store (its own origin: the hub's id)
//! with every document of a device and its whole history: each change
//! goes through the log, so the hub's log holds every change, including
//! those the device only ever saw inside a bootstrap snapshot. Changes the
//! device kept waiting for their dependencies are kept waiting on the hub.
//! The settings (a hub's owner and tokens, if the source has any) are copied.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, OpenError};
use crate::id::NodeId;
use crate::node::NodeKind;
use crate::replica::Replica;
use crate::store::Applied;

/// Why a backup could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The target exists and overwriting was not asked for.
    #[error("{} exists; pick another file, or pass --force to replace it", path.display())]
    Exists {
        /// The target.
        path: PathBuf,
    },
    /// The target is a folder, or its folder does not exist.
    #[error("{} {why}; give the backup's file name in a folder that exists (e.g. ~/heph-2026-11-28.heph)", path.display())]
    NotAFile {
        /// The target.
        path: PathBuf,
        /// What it is.
        why: &'static str,
    },
    /// The target's folder could not be written.
    #[error("cannot write {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// Reading the store or writing the copy failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// What a replica (or a backup) holds, to show before a restore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Census {
    /// When the backup was taken (`None` for a live store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<DateTime<Utc>>,
    /// Nodes, deleted ones included.
    pub nodes: u64,
    /// Of which tasks.
    pub tasks: u64,
    /// Notes.
    pub notes: u64,
    /// Journal days.
    pub journals: u64,
    /// Deleted nodes.
    pub deleted: u64,
    /// Stored documents that do not read as nodes.
    pub unreadable: u64,
    /// Changes stored one by one, as logged here (made here, or received
    /// since the replica was filled; a device filled from the hub's
    /// compacted documents holds their history inside them, not here).
    pub changes: u64,
    /// Local changes the hub has not acknowledged.
    pub unsent: u64,
    /// Whether the replica ever synced with a hub.
    #[serde(default)]
    pub synced: bool,
}

/// What seeding a hub did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeedReport {
    /// The new hub's id.
    pub hub: String,
    /// Documents copied (nodes, and documents that do not read as nodes).
    pub documents: u64,
    /// Nodes among them.
    pub nodes: u64,
    /// Changes now in the hub's log.
    pub changes: u64,
    /// Changes kept waiting for their dependencies, as on the device.
    pub waiting: u64,
    /// Settings copied (the owner, automation tokens).
    pub settings: u64,
}

/// How many documents one seeding transaction copies.
const SEED_BATCH: usize = 256;

/// Opens a backup (or any store) read-only, to inspect or restore it.
pub fn open_backup(path: &Path) -> Result<Replica, OpenError> {
    if !path.exists() {
        return Err(OpenError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    Replica::open_read_only(path)
}

impl Replica {
    /// Counts what this replica holds.
    pub fn census(&self) -> Result<Census, Error> {
        let taken = self.store().backup_taken()?.and_then(DateTime::from_timestamp_millis);
        let unsent = self.pending_push()?;
        let synced = self.cursors()?.hub.is_some();
        self.store().read(|r| {
            let mut c = Census { taken, unsent, synced, changes: r.change_count()?, ..Census::default() };
            c.unreadable = r.unreadable_count()?;
            r.scan(|row| {
                c.nodes += 1;
                match row.kind {
                    NodeKind::Task => c.tasks += 1,
                    NodeKind::Note => c.notes += 1,
                    NodeKind::Journal => c.journals += 1,
                }
                c.deleted += u64::from(row.deleted);
                true
            })?;
            Ok(c)
        })
    }

    /// Writes a consistent copy of this replica to `path` (see the [module
    /// docs](self)), taken at `now`. Refuses an existing `path` unless
    /// `overwrite`. The copy is written beside `path` and moved there once
    /// complete: a reader never sees half a backup. Returns what it holds.
    pub fn backup_to(&self, path: &Path, now: DateTime<Utc>, overwrite: bool) -> Result<Census, BackupError> {
        let io = |error| BackupError::Io { path: path.to_path_buf(), error };
        if path.is_dir() {
            return Err(BackupError::NotAFile { path: path.to_path_buf(), why: "is a folder" });
        }
        if !overwrite && path.exists() {
            return Err(BackupError::Exists { path: path.to_path_buf() });
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // Its folder is made if the folder around that exists (as rsync
        // makes the last one): a typo in a path makes no tree of folders.
        if !dir.is_dir() {
            if !dir.parent().is_some_and(|p| p.as_os_str().is_empty() || p.is_dir()) {
                return Err(BackupError::NotAFile {
                    path: path.to_path_buf(),
                    why: "is in a folder whose folder does not exist either",
                });
            }
            std::fs::create_dir(dir).map_err(io)?;
        }
        let name = path.file_name().map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
        let partial = dir.join(format!(".{name}.partial-{:016x}", rand::random::<u64>()));
        let written = self.store().backup_to(&partial, now.timestamp_millis());
        let placed = written.map_err(BackupError::from).and_then(|()| {
            if overwrite {
                std::fs::rename(&partial, path).map_err(io)
            } else {
                // A hard link fails if `path` appeared meanwhile: never clobbers.
                match std::fs::hard_link(&partial, path) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Err(BackupError::Exists { path: path.to_path_buf() })
                    }
                    other => other.map_err(io),
                }
            }
        });
        let _ = std::fs::remove_file(&partial);
        placed?;
        let mut census = open_backup(path).map_err(|e| Error::Storage(e.to_string()))?.census()?;
        census.taken = census.taken.or(Some(now));
        Ok(census)
    }

    /// Replaces this replica's contents with `backup`'s, in one durable
    /// write (see the [module docs](self)): the replica then holds what the
    /// backup held, edits under a new origin, and owes its hub a
    /// reconciliation. Returns what it now holds.
    pub fn restore_from(&self, backup: &Replica) -> Result<Census, Error> {
        self.store().restore_from(backup.store(), rand::random())?;
        self.census()
    }

    /// Copies every document of `source` with its whole history into this
    /// (new, empty) replica, through its log, and the settings (see the
    /// [module docs](self)). `progress(done, total)` hears each batch of
    /// documents. Reads `source` in batches: give it a store no process
    /// writes (a read-only open excludes writers, and a backup is one).
    pub fn seed_from(&self, source: &Replica, mut progress: impl FnMut(u64, u64)) -> Result<SeedReport, Error> {
        let total = source.store().read(|r| Ok(r.heads_after(None, usize::MAX)?.len()))? as u64;
        let mut report = SeedReport { hub: self.origin().to_hex_string(), ..SeedReport::default() };
        let mut after: Option<NodeId> = None;
        loop {
            let batch = source.store().read(|r| {
                let ids = r.heads_after(after, SEED_BATCH)?;
                let mut out = Vec::with_capacity(ids.len());
                for (id, _) in ids {
                    let raw = r.raw_doc(id)?.unwrap_or_default();
                    out.push((id, raw, r.waiting(id)?));
                }
                Ok(out)
            })?;
            let Some((last, _, _)) = batch.last() else { break };
            after = Some(*last);
            let mut parsed = Vec::with_capacity(batch.len());
            for (id, raw, waiting) in batch {
                let doc = crate::limits::load_document(&raw)
                    .map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?;
                let mut changes = doc.get_changes(&[]);
                for bytes in waiting {
                    changes.push(
                        crate::limits::parse_change(bytes)
                            .map_err(|e| Error::InvalidChange { doc: id, reason: e.to_string() })?,
                    );
                }
                parsed.push((id, changes));
            }
            let n = parsed.len() as u64;
            let applied = self.store().write(|w| {
                let mut applied = Applied::default();
                for (id, changes) in parsed {
                    w.apply_remote(id, changes, false, &mut applied)?;
                }
                Ok(applied)
            })?;
            report.documents += n;
            report.changes += applied.applied as u64;
            report.waiting += applied.waiting as u64;
            progress(report.documents, total);
        }
        let settings = source.store().settings("")?;
        report.settings = settings.len() as u64;
        self.store().write(|w| {
            for (key, value) in &settings {
                w.set_setting(key, Some(value))?;
            }
            Ok(())
        })?;
        report.nodes = self.store().read(|r| r.count())?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Node;
    use crate::doc::Edit;

    fn task(r: &Replica, title: &str) -> NodeId {
        let node = Node::new(NodeId::random(), NodeKind::Task, title.into(), Utc::now());
        r.create(&node, &[], "add").unwrap().id
    }

    #[test]
    fn a_backup_restores_with_a_new_origin_and_an_owed_reconciliation() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replica::open(&dir.path().join("a.db")).unwrap();
        let kept = task(&r, "kept");
        let file = dir.path().join("backup.heph");
        let taken = r.backup_to(&file, Utc::now(), false).unwrap();
        assert_eq!((taken.nodes, taken.tasks), (1, 1));
        assert!(matches!(r.backup_to(&file, Utc::now(), false), Err(BackupError::Exists { .. })));
        let later = task(&r, "later");
        r.edit(kept, &[Edit::Title("kept, renamed".into())], "edit", Utc::now()).unwrap();
        let before = r.origin();

        let backup = open_backup(&file).unwrap();
        assert!(backup.census().unwrap().taken.is_some());
        let now = r.restore_from(&backup).unwrap();
        assert_eq!(now.nodes, 1);
        assert!(now.taken.is_none());
        assert_ne!(r.origin(), before, "a restored replica edits as a new actor");
        assert_eq!(r.get(kept).unwrap().title, "kept");
        assert!(r.get(later).is_err());
        assert!(r.cursors().unwrap().reconcile);
        assert_eq!(r.check(|_, _| {}).unwrap().problems, vec![]);
        assert_eq!(r.stale_without_views().unwrap(), 0, "the backup's readings came with it");
        // It goes on working: a new edit of the restored node.
        r.edit(kept, &[Edit::Title("again".into())], "edit", Utc::now()).unwrap();
        drop(r);
        let reopened = Replica::open(&dir.path().join("a.db")).unwrap();
        assert_eq!(reopened.get(kept).unwrap().title, "again");
        assert_ne!(reopened.origin(), before);
    }

    #[test]
    fn seeding_copies_every_document_and_its_history_under_a_new_id() {
        let device = Replica::in_memory().unwrap();
        let ids: Vec<NodeId> = (0..300).map(|i| task(&device, &format!("t{i}"))).collect();
        device.edit(ids[0], &[Edit::Title("renamed".into())], "edit", Utc::now()).unwrap();
        let hub = Replica::in_memory().unwrap();
        let mut calls = 0;
        let report = hub.seed_from(&device, |_, _| calls += 1).unwrap();
        assert_eq!((report.documents, report.nodes), (300, 300));
        assert_eq!(report.changes, device.last_seq().unwrap());
        assert_eq!(hub.last_seq().unwrap(), report.changes);
        assert!(calls >= 2);
        assert_ne!(report.hub, device.origin().to_hex_string());
        assert_eq!(hub.export().unwrap(), device.export().unwrap());
        assert_eq!(hub.history(ids[0]).unwrap().len(), device.history(ids[0]).unwrap().len());
    }
}
