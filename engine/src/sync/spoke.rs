//! A device's side of a sync session, as a state machine with no I/O.
//!
//! ```text
//! (connect) -> hello -> AwaitWelcome --welcome--> Open
//! Open: changes/snapshot -> stored with the cursor in one transaction
//!       local edits      -> one push in flight at a time; ack -> next push
//!       error frame      -> the session ends with SyncError::Hub
//! ```
//! Cursors live in the replica's store, so a session that dies anywhere
//! resumes where the last committed transaction left it: the hub re-sends
//! what the device had not stored, the device re-sends what the hub had not
//! acknowledged, and both sides drop duplicates by change hash.

use crate::error::Error;
use crate::replica::Replica;
use crate::sync::frame::{Bytes, ClientFrame, ErrorCode, HubFrame, PROTOCOL_VERSION, WireChange};

/// How many local changes one push carries at most.
pub const PUSH_BATCH: usize = 512;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The hub sent an error frame.
    #[error("the hub said {code:?}: {message}")]
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

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitWelcome,
    Open,
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
}

/// One session of a device with the hub.
#[derive(Debug)]
pub struct SpokeSession {
    state: State,
    hub: Option<String>,
    head: u64,
    cursor: u64,
    in_flight: Option<(u64, u64, usize)>,
    next_batch: u64,
}

impl SpokeSession {
    /// Starts a session: the `hello` to send first.
    pub fn start(replica: &Replica) -> Result<(Self, ClientFrame), Error> {
        let cursors = replica.cursors()?;
        let hello = ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            origin: replica.origin().to_hex_string(),
            cursor: cursors.hub_cursor,
            bootstrap: cursors.hub_cursor == 0,
        };
        let session = Self {
            state: State::AwaitWelcome,
            hub: cursors.hub,
            head: 0,
            cursor: cursors.hub_cursor,
            in_flight: None,
            next_batch: 1,
        };
        Ok((session, hello))
    }

    /// Whether the device has stored everything the hub had when it said
    /// welcome, and the hub has acknowledged every local change offered.
    pub fn is_idle(&self, replica: &Replica) -> Result<bool, Error> {
        Ok(self.state == State::Open
            && self.cursor >= self.head
            && self.in_flight.is_none()
            && replica.local_changes_after(replica.cursors()?.pushed, 1)?.is_empty())
    }

    /// The next `push` of local changes the hub has not acknowledged, if
    /// none is in flight. Call after local edits.
    pub fn next_push(&mut self, replica: &Replica) -> Result<Option<ClientFrame>, Error> {
        if self.state != State::Open || self.in_flight.is_some() {
            return Ok(None);
        }
        let pushed = replica.cursors()?.pushed;
        let changes = replica.local_changes_after(pushed, PUSH_BATCH)?;
        let Some(last) = changes.last() else { return Ok(None) };
        let batch = self.next_batch;
        self.next_batch += 1;
        self.in_flight = Some((batch, last.seq, changes.len()));
        let changes =
            changes.into_iter().map(|c| WireChange { seq: None, doc: c.doc, bytes: Bytes(c.bytes) }).collect();
        Ok(Some(ClientFrame::Push { batch, changes }))
    }

    /// Handles one text frame from the hub.
    pub fn receive(&mut self, text: &str, replica: &Replica) -> Result<SpokeStep, SyncError> {
        let frame = HubFrame::decode(text).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let mut step = SpokeStep::default();
        match (&self.state, frame) {
            (_, HubFrame::Error { code, message, .. }) => return Err(SyncError::Hub { code, message }),
            (State::AwaitWelcome, HubFrame::Welcome { version, hub, head }) => {
                if version != PROTOCOL_VERSION {
                    return Err(SyncError::Protocol(format!("the hub chose protocol version {version}")));
                }
                let known = self.hub.clone();
                let cursors = replica.begin_sync(&hub)?;
                if known.is_some() && known.as_deref() != Some(hub.as_str()) && self.cursor != 0 {
                    // Our hello carried a cursor into another hub's log.
                    return Err(SyncError::HubChanged);
                }
                self.hub = Some(hub);
                self.head = head;
                self.cursor = cursors.hub_cursor;
                self.state = State::Open;
                step.send.extend(self.next_push(replica)?);
            }
            (State::Open, HubFrame::Changes { changes }) => {
                let Some(upto) = changes.iter().filter_map(|c| c.seq).max() else {
                    return Err(SyncError::Protocol("changes without seqs".into()));
                };
                let batch = changes.into_iter().map(|c| (c.doc, c.bytes.0)).collect();
                let applied = replica.apply_from_hub(batch, upto)?;
                self.cursor = self.cursor.max(upto);
                step.received = applied.applied;
            }
            (State::Open, HubFrame::Snapshot { docs, upto, more }) => {
                step.received = docs.len();
                // The cursor moves only with the last snapshot frame: a bootstrap
                // cut short starts over (merging is idempotent) rather than
                // resuming after documents it never received.
                let done = (!more).then_some(upto);
                replica.merge_snapshots(docs.into_iter().map(|d| (d.doc, d.bytes.0)).collect(), done)?;
                if let Some(upto) = done {
                    self.cursor = self.cursor.max(upto);
                }
            }
            (State::Open, HubFrame::Ack { batch, seqs }) => match self.in_flight {
                Some((expected, upto, n)) if expected == batch && seqs.len() == n => {
                    replica.acknowledge(upto)?;
                    self.in_flight = None;
                    step.acknowledged = n;
                    step.send.extend(self.next_push(replica)?);
                }
                _ => return Err(SyncError::Protocol(format!("unexpected ack of batch {batch}"))),
            },
            (_, other) => {
                let kind = crate::sync::frame::encode(&other).chars().take(40).collect::<String>();
                return Err(SyncError::Protocol(format!("unexpected frame {kind}…")));
            }
        }
        Ok(step)
    }
}
