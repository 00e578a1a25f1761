//! `heph check`: reads every record of a store and verifies what can be
//! verified, in one read transaction (so it runs beside a daemon's sync).
//!
//! redb's pages carry no checksum a plain read verifies, so a damaged
//! page can read as other bytes instead of failing. What heph stores can be
//! checked on its own terms:
//! - every stored change parses and is the change its key names (its
//!   SHA-256 hash is recomputed);
//! - the log names only stored changes, and its position digest (see
//!   `positions`) holds at every seq;
//! - every document loads (Automerge checks its chunk checksum), its heads
//!   are the ones kept for it, and it holds every change logged for it: a
//!   write logged but missing from its document would be lost;
//! - every document that reads as a node has its index row (else it would
//!   be missing from listings), and its stored reading, if current, is what
//!   the document reads as; one that does not read is listed as unreadable;
//! - every index row is of a stored document.
//!
//! A failure of redb itself (a page it cannot read) ends the check with
//! [`Error::Damaged`].

use std::collections::HashMap;

use automerge::{Change, ChangeHash};
use redb::{ReadableTable, ReadableTableMetadata};

use super::{Reader, next_position};
use crate::error::Error;
use crate::id::NodeId;

/// What [`Reader::check`] read and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// Documents read.
    pub documents: u64,
    /// Stored changes read.
    pub changes: u64,
    /// Log entries read.
    pub log: u64,
    /// What is wrong, in the order found; empty when the store is sound.
    pub problems: Vec<Problem>,
}

/// What `heph check` reports: what was found, and with a repair, what was
/// mended and what is left.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CheckOutcome {
    /// What the check read and found.
    pub found: CheckReport,
    /// What a repair did (asked for, and something could be mended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
}

/// What a repair did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Repaired {
    /// Documents whose rows were rebuilt or which got changes back.
    pub documents: usize,
    /// Logged changes put back into the documents that lacked them.
    pub changes_restored: usize,
    /// What a check after the repair still finds.
    pub left: Vec<Problem>,
}

impl CheckOutcome {
    /// What is wrong now: what the repair left, or what was found.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        self.repaired.as_ref().map_or(&self.found.problems, |r| &r.left)
    }
}

/// One thing [`Reader::check`] found wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A stored document does not load: its bytes are damaged.
    DocumentDamaged {
        /// The document.
        id: NodeId,
        /// What Automerge said.
        reason: String,
    },
    /// The heads kept for a document are not the document's own.
    HeadsDiffer {
        /// The document.
        id: NodeId,
    },
    /// A change the log names is missing from its document.
    ChangeNotInDocument {
        /// The document.
        id: NodeId,
        /// The change's place in the log.
        seq: u64,
        /// The change.
        hash: String,
    },
    /// A stored change does not parse, or is not the change its key names.
    ChangeDamaged {
        /// The key it is stored under.
        hash: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The log names a change that is not stored.
    ChangeMissing {
        /// The place in the log.
        seq: u64,
        /// The change named.
        hash: String,
    },
    /// The log's position digest does not hold at this seq: an entry was
    /// changed, dropped or inserted at or before it.
    PositionWrong {
        /// The first seq where it does not hold.
        seq: u64,
    },
    /// A document that reads as a node has no index row, or one that does
    /// not decode: listings and searches miss it.
    IndexMissing {
        /// The node.
        id: NodeId,
    },
    /// An index row names no stored document: the document may be what
    /// was lost, so the row is kept (a backup or the hub holds the rest).
    IndexOrphan {
        /// The id it names.
        id: NodeId,
    },
    /// The stored reading of a node is not what its document reads as.
    ReadingWrong {
        /// The node.
        id: NodeId,
    },
    /// A document that does not read as a node is not listed as unreadable.
    UnreadableNotListed {
        /// The document.
        id: NodeId,
        /// Why it does not read.
        reason: String,
    },
}

impl Problem {
    /// Whether [`crate::Replica::repair`] mends it from what the store
    /// holds: rows derived from documents, and logged changes a document
    /// lacks (when the change is stored whole).
    #[must_use]
    pub fn mendable(&self) -> bool {
        self.derived() || matches!(self, Self::ChangeNotInDocument { .. })
    }

    /// Whether rebuilding the rows heph derives from documents (index,
    /// search text, backlinks, readings, heads, the unreadable list) mends
    /// it: nothing written is missing, only what is read from it.
    #[must_use]
    pub fn derived(&self) -> bool {
        matches!(
            self,
            Self::HeadsDiffer { .. }
                | Self::IndexMissing { .. }
                | Self::ReadingWrong { .. }
                | Self::UnreadableNotListed { .. }
        )
    }

    /// The document it is about, if one.
    #[must_use]
    pub fn node(&self) -> Option<NodeId> {
        match self {
            Self::DocumentDamaged { id, .. }
            | Self::HeadsDiffer { id }
            | Self::ChangeNotInDocument { id, .. }
            | Self::IndexMissing { id }
            | Self::IndexOrphan { id }
            | Self::ReadingWrong { id }
            | Self::UnreadableNotListed { id, .. } => Some(*id),
            Self::ChangeDamaged { .. } | Self::ChangeMissing { .. } | Self::PositionWrong { .. } => None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DocumentDamaged { id, reason } => write!(f, "document {id} does not load: {reason}"),
            Self::HeadsDiffer { id } => write!(f, "document {id}: the heads kept for it are not its own"),
            Self::ChangeNotInDocument { id, seq, hash } => {
                write!(f, "document {id} lacks change {hash} (log seq {seq}): a write it no longer holds")
            }
            Self::ChangeDamaged { hash, reason } => write!(f, "stored change {hash} is damaged: {reason}"),
            Self::ChangeMissing { seq, hash } => write!(f, "log seq {seq} names change {hash}, which is not stored"),
            Self::PositionWrong { seq } => write!(f, "the log's position digest breaks at seq {seq}"),
            Self::IndexMissing { id } => write!(f, "node {id} has no index row: listings and searches miss it"),
            Self::IndexOrphan { id } => write!(f, "an index row names {id}, which is not stored"),
            Self::ReadingWrong { id } => write!(f, "the stored reading of node {id} is not what its document says"),
            Self::UnreadableNotListed { id, reason } => {
                write!(f, "document {id} does not read as a node ({reason}) and is not listed as unreadable")
            }
        }
    }
}

impl Reader {
    /// Checks the whole store (see the module documentation); `progress`
    /// is called with (documents read, documents in all) as it goes.
    ///
    /// # Errors
    /// A failure to read the store itself ([`Error::Damaged`] when redb
    /// found its file damaged).
    pub fn check(&self, mut progress: impl FnMut(u64, u64)) -> Result<CheckReport, Error> {
        let mut report = CheckReport::default();
        let logged = self.check_log(&mut report)?;
        self.check_changes(&mut report)?;
        let total = self.docs.len()?;
        for row in self.docs.iter()? {
            let id = NodeId::from_bytes(row?.0.value());
            self.check_doc(id, logged.get(&id).map_or(&[][..], Vec::as_slice), &mut report)?;
            report.documents += 1;
            if report.documents % 64 == 0 {
                progress(report.documents, total);
            }
        }
        progress(report.documents, total);
        for row in self.index.iter()? {
            let id = NodeId::from_bytes(row?.0.value());
            if self.docs.get(id.as_bytes())?.is_none() {
                report.problems.push(Problem::IndexOrphan { id });
            }
        }
        Ok(report)
    }

    /// Walks the log: each entry's change is stored, and the position
    /// digest holds. Returns the logged changes of each document.
    fn check_log(&self, report: &mut CheckReport) -> Result<HashMap<NodeId, Vec<(u64, ChangeHash)>>, Error> {
        let mut logged: HashMap<NodeId, Vec<(u64, ChangeHash)>> = HashMap::new();
        let mut prev: Option<(u64, [u8; 32])> = None;
        let mut broken = false;
        for row in self.log.iter()? {
            let (seq, entry) = row?;
            let (seq, entry) = (seq.value(), entry.value());
            report.log += 1;
            let mut doc = [0u8; 16];
            doc.copy_from_slice(&entry[..16]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&entry[16..48]);
            let hash = ChangeHash(hash);
            if self.changes.get(hash.0)?.is_none() {
                report.problems.push(Problem::ChangeMissing { seq, hash: hash.to_string() });
            }
            logged.entry(NodeId::from_bytes(doc)).or_default().push((seq, hash));
            // The digest before this seq: the one stored at seq - 1 (zeros
            // before the first entry).
            let before = match prev {
                Some((p, position)) if p + 1 == seq => Some(position),
                _ if seq == 1 => Some([0; 32]),
                _ => self.positions.get(seq - 1)?.map(|p| p.value()),
            };
            let stored = self.positions.get(seq)?.map(|p| p.value());
            let holds = matches!((before, stored), (Some(b), Some(s)) if next_position(&b, &hash) == s);
            // Reported once: past a break every digest follows the broken one.
            if !holds && !broken {
                report.problems.push(Problem::PositionWrong { seq });
                broken = true;
            }
            prev = stored.map(|s| (seq, s));
        }
        Ok(logged)
    }

    /// Parses every stored change and recomputes its hash.
    fn check_changes(&self, report: &mut CheckReport) -> Result<(), Error> {
        for row in self.changes.iter()? {
            let (key, value) = row?;
            let (key, value) = (ChangeHash(key.value()), value.value());
            report.changes += 1;
            let reason = match value.get(16..) {
                None => Some("shorter than a node id".to_string()),
                Some(raw) => match crate::panics::catch(|| Change::from_bytes(raw.to_vec())) {
                    Ok(Ok(change)) if change.hash() == key => None,
                    Ok(Ok(change)) => Some(format!("its bytes are change {}", change.hash())),
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(why) => Some(why),
                },
            };
            if let Some(reason) = reason {
                report.problems.push(Problem::ChangeDamaged { hash: key.to_string(), reason });
            }
        }
        Ok(())
    }

    /// Loads one document and checks it against the rows kept for it.
    fn check_doc(&self, id: NodeId, logged: &[(u64, ChangeHash)], report: &mut CheckReport) -> Result<(), Error> {
        let doc = match self.doc(id) {
            Ok(Some(doc)) => doc,
            Ok(None) => return Ok(()),
            Err(Error::Doc(e)) => {
                report.problems.push(Problem::DocumentDamaged { id, reason: e.to_string() });
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let heads: Vec<u8> = doc.heads().iter().flat_map(|h| h.0).collect();
        let heads_kept = self.heads.get(id.as_bytes())?.is_some_and(|kept| kept.value() == heads.as_slice());
        if !heads_kept {
            report.problems.push(Problem::HeadsDiffer { id });
        }
        for (seq, hash) in logged {
            if !doc.has_change(hash) {
                report.problems.push(Problem::ChangeNotInDocument { id, seq: *seq, hash: hash.to_string() });
            }
        }
        // Rows a hub has not brought up to date yet are behind by design.
        if self.stale.get(id.as_bytes())?.is_some() {
            return Ok(());
        }
        match doc.materialise_as(id) {
            Ok(node) => {
                let indexed =
                    self.index.get(id.as_bytes())?.is_some_and(|row| super::decode_summary(row.value()).is_ok());
                if !indexed {
                    report.problems.push(Problem::IndexMissing { id });
                }
                // A reading is current by the heads kept: judged only
                // when those are the document's.
                if heads_kept
                    && let Some(reading) = self.current_reading(id)?
                    && reading.body.node != node
                {
                    report.problems.push(Problem::ReadingWrong { id });
                }
            }
            Err(e) => {
                if self.unreadable.get(id.as_bytes())?.is_none() {
                    report.problems.push(Problem::UnreadableNotListed { id, reason: e.to_string() });
                }
            }
        }
        Ok(())
    }
}
