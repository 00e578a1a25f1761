//! heph's engine: a full local replica of one owner's tasks, notes and
//! journal, with no I/O beyond its store file.
//!
//! - [`node`]: the data model ([`Node`], [`NodeSummary`]);
//! - [`doc`]: one node as one Automerge document, edits and conflicts;
//! - [`store`]: redb tables, the change log and the indexes;
//! - [`replica`]: the API every surface uses ([`Replica`]);
//! - [`query`], [`parse`], [`when`]: Taskwarrior-style filters, modifications and dates;
//! - [`recur`]: Taskwarrior-style recurrence (templates and their instances);
//! - [`taskwarrior`]: Taskwarrior's JSON;
//! - [`limits`]: bounded decoding of untrusted Automerge bytes;
//! - [`backup`]: backups of a replica, restoring one, and seeding a hub from a device;
//! - [`undo`]: undoing this device's last write.
//!
//! # Durability
//! A write returns only after its redb transaction has committed to disk
//! (`Durability::Immediate`). A crash loses at most the write that had not
//! returned; the store is never left half-written.
//!
//! # Convergence
//! Nodes are Automerge documents, and changes are content-addressed: replicas
//! that have applied the same set of changes, in any order, hold the same
//! materialised state (see `tests/convergence.rs`).
#![warn(missing_docs)]

pub mod archive;
pub mod backup;
pub mod doc;
pub mod error;
pub mod id;
pub mod limits;
pub mod node;
pub mod panics;
pub mod parse;
pub mod query;
pub mod recur;
pub mod replica;
pub mod rpc;
pub mod store;
pub mod sync;
pub mod taskwarrior;
pub mod undo;
pub mod when;

pub use doc::{Conflict, DocError, Edit, HistoryEntry, NodeDoc};
pub use error::{Error, OpenError};
pub use id::{IdPrefix, MIN_CHANGE_PREFIX, MIN_PREFIX, NodeId, Purpose};
pub use node::{Annotation, Node, NodeKind, NodeSummary, Priority, Status};
pub use parse::{ModError, Mods, parse_mods, parse_mods_with};
pub use query::{Filter, FilterError, Graph, urgency};
pub use replica::{ImportReport, Replica, Version};
pub use store::{Applied, CheckOutcome, CheckReport, Cursors, DocCacheUse, LoggedChange, Problem, SavedDoc, Store};
pub use undo::{FieldChange, UndoPlan};
pub use when::{Clock, WhenError, parse_day, parse_when};
