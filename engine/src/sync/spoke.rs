//! A device's side of a sync session, as a state machine with no I/O.
//!
//! ```text
//! (connect) -> hello -> AwaitWelcome --welcome--> Open
//! Open: changes/snapshot -> stored with the cursor in one transaction
//!       pushes           -> one in flight at a time; ack -> next push
//!       reconciliation   -> have (one in flight) -> need -> pushes of what the hub lacks
//!       error frame      -> the session ends with SyncError::Hub
//! ```
//! Cursors live in the replica's store, so a session that dies anywhere
//! resumes where the last committed transaction left it: the hub re-sends
//! what the device had not stored, the device re-sends what the hub had not
//! acknowledged, and both sides drop duplicates by change hash.
//!
//! # The hub ends with the union
//! A device pushes the changes it made; but it also holds history it only
//! received (from other devices, a bootstrap, the hub's RPC), which a hub
//! that lost its store would never get back from anyone else. So a
//! reconciliation is owed (and recorded in the store, to survive restarts)
//! whenever the hub is found replaced (a new id), behind what this device
//! saw of its log (`welcome.diverged`: a restored copy), or holding a
//! pushed change that waits for dependencies it lacks (`ack.waiting`). It
//! goes: `have` frames with every document's heads, in id order, one in
//! flight at a time; the hub answers `need` with the documents it lacks
//! anything of and its own heads for each; the device pushes every change
//! not among their ancestors. Once all were acknowledged the debt is
//! cleared.

use std::collections::VecDeque;

use automerge::{Change, ChangeHash};

use crate::error::Error;
use crate::id::NodeId;
use crate::replica::parse_changes;
use crate::sync::frame::{
    BATCH_BYTES, Bytes, ClientFrame, DocHeads, ErrorCode, HubFrame, Known, MAX_PUSH_CHANGES, PROTOCOL_VERSION,
    WireChange, wire_size,
};
use crate::sync::storage::DeviceStore;

/// How many local changes one push carries at most (it is cut by bytes
/// first, at [`BATCH_BYTES`]).
pub const PUSH_BATCH: usize = 512;
/// How many documents one `have` frame offers (about 150 bytes each): as
/// many as a hub takes.
pub const HAVE_BATCH: usize = crate::sync::frame::MAX_HAVE_DOCS;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The hub sent an error frame.
    #[error("the hub refused ({}): {message}", code_name(*.code))]
    Hub {
        /// Its code.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// The hub sent something that is not a valid frame, or out of order.
    #[error("the hub broke the protocol: {0}")]
    Protocol(String),
    /// The hub's log is not the one the cursors belong to; reconnect.
    #[error("the hub's log changed (new hub id); resyncing from the start")]
    HubChanged,
    /// Storing failed.
    #[error(transparent)]
    Store(#[from] Error),
}

fn code_name(code: ErrorCode) -> String {
    crate::sync::frame::encode(&code).trim_matches('"').to_string()
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitWelcome,
    Open,
}

/// What one push in flight carries.
#[derive(Debug)]
enum InFlight {
    /// Local changes up to local seq `upto`, with their hashes.
    Local { batch: u64, upto: u64, hashes: Vec<ChangeHash> },
    /// Changes the hub lacked (reconciliation).
    Repair { batch: u64, n: usize },
}

/// A reconciliation in progress.
#[derive(Debug, Default)]
struct Reconcile {
    /// The local log's last seq when it began: once it is done, the hub
    /// holds every local change up to here (each was in its document when
    /// that document was offered), so local pushes wait meanwhile.
    covers: u64,
    /// The last document offered in a `have`.
    offered: Option<NodeId>,
    /// Every document was offered.
    offered_all: bool,
    /// A `have` awaits its `need`.
    awaiting_need: bool,
    /// Documents the hub lacks something of, with its heads for each.
    needed: VecDeque<(NodeId, Vec<ChangeHash>)>,
    /// Changes of needed documents not yet pushed, in causal order.
    queued: VecDeque<(NodeId, Change)>,
}

impl Reconcile {
    fn has_work(&self) -> bool {
        !self.needed.is_empty() || !self.queued.is_empty()
    }
}

/// What to do after a frame from the hub.
#[derive(Debug, Default)]
pub struct SpokeStep {
    /// Frames to send.
    pub send: Vec<ClientFrame>,
    /// Changes newly stored from the hub.
    pub received: usize,
    /// Local changes the hub acknowledged.
    pub acknowledged: usize,
    /// Changes the hub lacked that this push sent (reconciliation).
    pub repaired: usize,
}

/// One session of a device with the hub.
#[derive(Debug)]
pub struct SpokeSession {
    state: State,
    hub: Option<String>,
    head: u64,
    cursor: u64,
    in_flight: Option<InFlight>,
    next_batch: u64,
    reconcile: Option<Reconcile>,
    /// The protocol version the hub chose.
    version: u32,
}

/// The oldest hub protocol a device still syncs with. A version-2 hub names
/// log positions by the change at a seq, not by a digest of the log: the
/// device does not record those, so such a hub can only tell it apart by
/// its cursor (a hub restored from an older copy is still caught when the
/// cursor is past its head).
const OLDEST_HUB_VERSION: u32 = 2;

impl SpokeSession {
    /// Starts a session: the `hello` to send first.
    pub fn start(replica: &dyn DeviceStore) -> Result<(Self, ClientFrame), Error> {
        let cursors = replica.cursors()?;
        let hello = ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            origin: replica.store_id(),
            cursor: cursors.hub_cursor,
            bootstrap: cursors.hub_cursor == 0,
            views: false,
            known: cursors.known.map(|(seq, hash)| Known { seq, hash: hash.to_string() }),
        };
        let session = Self {
            state: State::AwaitWelcome,
            hub: cursors.hub,
            head: 0,
            cursor: cursors.hub_cursor,
            in_flight: None,
            next_batch: 1,
            reconcile: None,
            version: PROTOCOL_VERSION,
        };
        Ok((session, hello))
    }

    /// Whether the device has stored everything the hub had when it said
    /// welcome, the hub has acknowledged every local change offered, and no
    /// reconciliation is under way.
    pub fn is_idle(&self, replica: &dyn DeviceStore) -> Result<bool, Error> {
        Ok(self.state == State::Open
            && self.cursor >= self.head
            && self.in_flight.is_none()
            && self.reconcile.is_none()
            && replica.log_after(replica.cursors()?.pushed, 1, usize::MAX, true)?.is_empty())
    }

    /// Whether a reconciliation with the hub is under way.
    #[must_use]
    pub fn is_reconciling(&self) -> bool {
        self.reconcile.is_some()
    }

    /// The next frames to send, if any: a push (changes the hub lacks
    /// first, then local changes), and a `have` while reconciling. Call
    /// after local edits.
    /// Every frame returned must be sent: a push among them is in flight.
    pub fn next_push(&mut self, replica: &dyn DeviceStore) -> Result<Vec<ClientFrame>, Error> {
        self.next_frames(replica)
    }

    fn next_frames(&mut self, replica: &dyn DeviceStore) -> Result<Vec<ClientFrame>, Error> {
        let mut out = Vec::new();
        if self.state != State::Open {
            return Ok(out);
        }
        if let Some(have) = self.next_have(replica)? {
            out.push(have);
        }
        if self.in_flight.is_none()
            && let Some(push) = self.repair_push(replica)?
        {
            out.push(push);
        }
        self.finish_reconcile(replica)?;
        if self.in_flight.is_none()
            && self.reconcile.is_none()
            && let Some(push) = self.local_push(replica)?
        {
            out.push(push);
        }
        Ok(out)
    }

    fn next_have(&mut self, replica: &dyn DeviceStore) -> Result<Option<ClientFrame>, Error> {
        let Some(r) = &mut self.reconcile else { return Ok(None) };
        // One `have` in flight, and none while earlier answers are still
        // being sent: memory stays bounded by one batch of documents.
        if r.awaiting_need || r.offered_all || r.has_work() {
            return Ok(None);
        }
        let batch = replica.heads_after(r.offered, HAVE_BATCH)?;
        let Some((last, _)) = batch.last() else {
            r.offered_all = true;
            return Ok(None);
        };
        r.offered = Some(*last);
        r.awaiting_need = true;
        let docs = batch
            .into_iter()
            .map(|(doc, heads)| DocHeads { doc, heads: heads.iter().map(ToString::to_string).collect() })
            .collect();
        Ok(Some(ClientFrame::Have { docs }))
    }

    fn repair_push(&mut self, replica: &dyn DeviceStore) -> Result<Option<ClientFrame>, Error> {
        let Some(r) = &mut self.reconcile else { return Ok(None) };
        let mut changes = Vec::new();
        let mut size = 0;
        loop {
            if r.queued.is_empty() {
                let Some((doc, theirs)) = r.needed.pop_front() else { break };
                r.queued.extend(replica.changes_since(doc, &theirs)?.into_iter().map(|c| (doc, c)));
                continue;
            }
            let Some((_, next)) = r.queued.front() else { break };
            let add = wire_size(next.raw_bytes().len());
            if !changes.is_empty() && (size + add > BATCH_BYTES || changes.len() >= MAX_PUSH_CHANGES) {
                break;
            }
            size += add;
            if let Some((doc, change)) = r.queued.pop_front() {
                changes.push(WireChange { seq: None, doc, bytes: Bytes(change.raw_bytes().to_vec()) });
            }
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let batch = self.take_batch();
        self.in_flight = Some(InFlight::Repair { batch, n: changes.len() });
        Ok(Some(ClientFrame::Push { batch, changes }))
    }

    fn local_push(&mut self, replica: &dyn DeviceStore) -> Result<Option<ClientFrame>, Error> {
        let pushed = replica.cursors()?.pushed;
        let changes = replica.log_after(pushed, PUSH_BATCH, BATCH_BYTES, true)?;
        let Some(last) = changes.last() else { return Ok(None) };
        let batch = self.take_batch();
        self.in_flight =
            Some(InFlight::Local { batch, upto: last.seq, hashes: changes.iter().map(|c| c.hash).collect() });
        let changes =
            changes.into_iter().map(|c| WireChange { seq: None, doc: c.doc, bytes: Bytes(c.bytes) }).collect();
        Ok(Some(ClientFrame::Push { batch, changes }))
    }

    fn take_batch(&mut self) -> u64 {
        let batch = self.next_batch;
        self.next_batch += 1;
        batch
    }

    /// Clears the owed reconciliation once everything the hub lacked was
    /// offered, sent and acknowledged.
    fn finish_reconcile(&mut self, replica: &dyn DeviceStore) -> Result<(), Error> {
        let done = self.reconcile.as_ref().is_some_and(|r| r.offered_all && !r.awaiting_need && !r.has_work())
            && !matches!(self.in_flight, Some(InFlight::Repair { .. }));
        if let Some(r) = self.reconcile.take_if(|_| done) {
            replica.acknowledge(r.covers, None)?;
            replica.set_reconcile(false)?;
        }
        Ok(())
    }

    /// Starts a reconciliation (and records it as owed) unless one runs.
    fn owe_reconcile(&mut self, replica: &dyn DeviceStore) -> Result<(), Error> {
        if self.reconcile.is_none() {
            replica.set_reconcile(true)?;
            self.reconcile = Some(Reconcile { covers: replica.head()?, ..Reconcile::default() });
        }
        Ok(())
    }

    /// Handles one text frame from the hub.
    pub fn receive(&mut self, text: &str, replica: &dyn DeviceStore) -> Result<SpokeStep, SyncError> {
        let frame = HubFrame::decode(text).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let mut step = SpokeStep::default();
        match (&self.state, frame) {
            (_, HubFrame::Error { code, message, .. }) => return Err(SyncError::Hub { code, message }),
            (State::AwaitWelcome, HubFrame::Welcome { version, hub, head, diverged }) => {
                if !(OLDEST_HUB_VERSION..=PROTOCOL_VERSION).contains(&version) {
                    return Err(SyncError::Protocol(format!(
                        "the hub chose protocol version {version}; this heph speaks {OLDEST_HUB_VERSION} to \
                         {PROTOCOL_VERSION}"
                    )));
                }
                self.version = version;
                let known = self.hub.clone();
                let mut cursors = replica.begin_sync(&hub)?;
                if known.is_some() && known.as_deref() != Some(hub.as_str()) && self.cursor != 0 && !diverged {
                    // Our hello carried a cursor into another hub's log.
                    return Err(SyncError::HubChanged);
                }
                if diverged {
                    // The hub serves this session from its start; we owe it
                    // everything it lacks.
                    cursors = replica.restart_sync(&hub)?;
                }
                self.hub = Some(hub);
                self.head = head;
                self.cursor = cursors.hub_cursor;
                self.state = State::Open;
                if cursors.reconcile {
                    self.reconcile = Some(Reconcile { covers: replica.head()?, ..Reconcile::default() });
                }
                step.send.extend(self.next_frames(replica)?);
            }
            (State::Open, HubFrame::Changes { changes, position }) => {
                let Some(last) = changes.iter().filter(|c| c.seq.is_some()).max_by_key(|c| c.seq) else {
                    return Err(SyncError::Protocol("changes without seqs".into()));
                };
                let upto = last.seq.unwrap_or_default();
                let raw = changes.into_iter().map(|c| (c.doc, c.bytes.0)).collect();
                let batch = parse_changes(raw)?;
                // The hub's log position at `upto`, for the next hello.
                let known = position
                    .filter(|_| self.version >= 3)
                    .and_then(|p| p.parse::<ChangeHash>().ok())
                    .map(|p| (upto, p));
                let applied = replica.apply_from_hub(batch, upto, known)?;
                self.cursor = self.cursor.max(upto);
                step.received = applied.applied;
            }
            (State::Open, HubFrame::Snapshot { docs, upto, more, hash }) => {
                step.received = docs.len();
                // The cursor moves only with the last snapshot frame: a bootstrap
                // cut short starts over (merging is idempotent) rather than
                // resuming after documents it never received.
                let done = (!more).then_some(upto);
                let known =
                    hash.filter(|_| self.version >= 3).and_then(|h| h.parse::<ChangeHash>().ok()).map(|h| (upto, h));
                replica.merge_snapshots(docs.into_iter().map(|d| (d.doc, d.bytes.0)).collect(), done, known)?;
                if let Some(upto) = done {
                    self.cursor = self.cursor.max(upto);
                }
            }
            (State::Open, HubFrame::Ack { batch, seqs, waiting, position }) => {
                // The hub's position at the newest of these changes: a hub
                // that loses them (restored from an older copy) no longer
                // holds it, and the next hello finds out.
                let known = seqs
                    .iter()
                    .max()
                    .copied()
                    .filter(|s| *s > 0)
                    .zip(position.filter(|_| self.version >= 3).and_then(|p| p.parse::<ChangeHash>().ok()));
                match self.in_flight.take() {
                    Some(InFlight::Local { batch: expected, upto, hashes })
                        if expected == batch && seqs.len() == hashes.len() =>
                    {
                        replica.acknowledge(upto, known)?;
                        step.acknowledged = hashes.len();
                    }
                    Some(InFlight::Repair { batch: expected, n }) if expected == batch && seqs.len() == n => {
                        // The position matters as much here: once the
                        // reconciliation ends, the device counts these
                        // changes as pushed, and only the position lets its
                        // next hello find a hub that lost them again.
                        if known.is_some() {
                            replica.acknowledge(0, known)?;
                        }
                        step.repaired = n;
                    }
                    _ => return Err(SyncError::Protocol(format!("unexpected ack of batch {batch}"))),
                }
                if !waiting.is_empty() {
                    // The hub keeps changes it cannot apply: it lacks history
                    // this device holds.
                    self.owe_reconcile(replica)?;
                }
                step.send.extend(self.next_frames(replica)?);
            }
            (State::Open, HubFrame::Need { docs }) => {
                let Some(r) = &mut self.reconcile else {
                    return Err(SyncError::Protocol("need without a have".into()));
                };
                r.awaiting_need = false;
                for DocHeads { doc, heads } in docs {
                    let heads = heads.iter().filter_map(|h| h.parse::<ChangeHash>().ok()).collect();
                    r.needed.push_back((doc, heads));
                }
                step.send.extend(self.next_frames(replica)?);
            }
            (_, other) => {
                let kind = crate::sync::frame::encode(&other).chars().take(40).collect::<String>();
                return Err(SyncError::Protocol(format!("unexpected frame {kind}…")));
            }
        }
        Ok(step)
    }
}
