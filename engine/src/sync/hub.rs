//! The hub's side of one connection, as a state machine with no I/O.
//!
//! The connection task feeds it frames and live broadcasts and sends what
//! it returns; the state machine decides. States:
//!
//! ```text
//! AwaitHello --hello--> CatchingUp --(store exhausted)--> Live
//!      |                   |   ^                             |
//!      |                   |   +----(gap in live stream)-----+
//!      +---(anything else / bad frame)---> Closed
//! ```
//! `push` is accepted in `CatchingUp` and `Live`: it is applied to the hub
//! replica in one transaction, acknowledged only after that commit, and the
//! newly logged changes are returned for fan-out.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;
use crate::id::NodeId;
use crate::replica::Replica;
use crate::store::{LoggedChange, Snapshots};
use crate::sync::frame::{
    Bytes, ClientFrame, ErrorCode, HubFrame, MAX_PUSH_CHANGES, PROTOCOL_VERSION, WireChange, WireDoc, encode,
};

/// How many changes one catch-up frame carries at most.
pub const CATCH_UP_BATCH: usize = 1024;
/// Roughly how many bytes of documents one snapshot frame carries.
pub const SNAPSHOT_FRAME_BYTES: usize = 1024 * 1024;

/// Newly committed changes, encoded once for every subscriber.
#[derive(Debug)]
pub struct Broadcast {
    /// The first hub seq in the frame.
    pub first: u64,
    /// The last hub seq in the frame.
    pub last: u64,
    /// The `changes` frame, as JSON text.
    pub text: Arc<str>,
}

impl Broadcast {
    /// Encodes logged changes (in seq order) as one `changes` frame.
    #[must_use]
    pub fn of(changes: &[LoggedChange]) -> Option<Self> {
        let first = changes.first()?.seq;
        let last = changes.last()?.seq;
        let frame = HubFrame::Changes { changes: changes.iter().map(wire).collect() };
        Some(Self { first, last, text: encode(&frame).into() })
    }
}

fn wire(c: &LoggedChange) -> WireChange {
    WireChange { seq: Some(c.seq), doc: c.doc, bytes: Bytes(c.bytes.clone()) }
}

/// What to do after a frame from the client.
#[derive(Debug, Default)]
pub struct Step {
    /// Frames to send back, in order.
    pub replies: Vec<HubFrame>,
    /// Changes this frame committed, for every subscriber.
    pub broadcast: Option<Broadcast>,
    /// Close the connection after sending the replies.
    pub close: bool,
    /// The client's device id, once known (for logs).
    pub hello: Option<String>,
    /// How many pushed changes were new.
    pub stored: usize,
}

impl Step {
    fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { replies: vec![HubFrame::fatal(code, message)], close: true, ..Self::default() }
    }
}

/// What to do with a live broadcast.
#[derive(Debug, PartialEq, Eq)]
pub enum Live {
    /// Send its text as is.
    Send,
    /// Already sent (it was part of the catch-up); drop it.
    Skip,
    /// It starts after a gap: catch up from the store first.
    CatchUp,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitHello,
    CatchingUp,
    Live,
    Closed,
}

/// One client's session with the hub.
#[derive(Debug)]
pub struct HubSession {
    state: State,
    /// The last hub seq sent to (or known to) the client.
    cursor: u64,
    /// Snapshots still to send to a bootstrapping client, and the seq they reflect.
    snapshots: Option<Snapshots>,
    bootstrap: bool,
}

impl Default for HubSession {
    fn default() -> Self {
        Self::new()
    }
}

impl HubSession {
    /// A session waiting for `hello`.
    #[must_use]
    pub fn new() -> Self {
        Self { state: State::AwaitHello, cursor: 0, snapshots: None, bootstrap: false }
    }

    /// The last hub seq the client has (been sent).
    #[must_use]
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Whether the session has caught up and streams live changes.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.state == State::Live
    }

    /// Handles one text frame from the client.
    pub fn receive(&mut self, text: &str, hub: &Replica) -> Step {
        if self.state == State::Closed {
            return Step { close: true, ..Step::default() };
        }
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                self.state = State::Closed;
                return Step::fatal(e.code(), e.to_string());
            }
        };
        let step = match (&self.state, frame) {
            (State::AwaitHello, ClientFrame::Hello { version, origin, cursor, bootstrap }) => {
                if version < PROTOCOL_VERSION {
                    Step::fatal(
                        ErrorCode::UnsupportedVersion,
                        format!("protocol version {version} is not supported; this hub speaks {PROTOCOL_VERSION}"),
                    )
                } else {
                    match hub.last_seq() {
                        Ok(head) => {
                            self.cursor = cursor.min(head);
                            self.bootstrap = bootstrap && cursor == 0;
                            self.state = State::CatchingUp;
                            Step {
                                replies: vec![HubFrame::Welcome {
                                    version: PROTOCOL_VERSION,
                                    hub: hub.origin().to_hex_string(),
                                    head,
                                }],
                                hello: Some(origin),
                                ..Step::default()
                            }
                        }
                        Err(e) => Step::fatal(ErrorCode::Internal, e.to_string()),
                    }
                }
            }
            (State::CatchingUp | State::Live, ClientFrame::Push { batch, changes }) => push(hub, batch, changes),
            (_, ClientFrame::Auth { .. }) => {
                Step::fatal(ErrorCode::Protocol, "auth is only accepted as the first frame, when the hub requires it")
            }
            (State::AwaitHello, _) => Step::fatal(ErrorCode::Protocol, "the first frame must be hello"),
            (_, ClientFrame::Hello { .. }) => Step::fatal(ErrorCode::Protocol, "hello was already received"),
            (State::Closed, _) => Step { close: true, ..Step::default() },
        };
        if step.close {
            self.state = State::Closed;
        }
        step
    }

    /// The next catch-up frame from the store, or `None` once the client has
    /// everything up to the hub's head (the session is then live).
    pub fn catch_up(&mut self, hub: &Replica) -> Result<Option<HubFrame>, Error> {
        if self.state != State::CatchingUp {
            return Ok(None);
        }
        if self.bootstrap {
            self.bootstrap = false;
            let snapshots = hub.snapshots()?;
            if !snapshots.docs.is_empty() {
                self.snapshots = Some(snapshots);
            }
        }
        if let Some(Snapshots { docs, upto }) = &mut self.snapshots {
            let upto = *upto;
            let mut size = 0;
            let mut take = 0;
            while take < docs.len() && (take == 0 || size < SNAPSHOT_FRAME_BYTES) {
                size += docs[take].1.len();
                take += 1;
            }
            let batch: Vec<WireDoc> =
                docs.drain(..take).map(|(doc, bytes)| WireDoc { doc, bytes: Bytes(bytes) }).collect();
            let more = !docs.is_empty();
            if !more {
                self.snapshots = None;
                self.cursor = upto;
            }
            return Ok(Some(HubFrame::Snapshot { docs: batch, upto, more }));
        }
        let changes = hub.changes_after(self.cursor, CATCH_UP_BATCH)?;
        match changes.last() {
            None => {
                self.state = State::Live;
                Ok(None)
            }
            Some(last) => {
                self.cursor = last.seq;
                Ok(Some(HubFrame::Changes { changes: changes.iter().map(wire).collect() }))
            }
        }
    }

    /// Decides about a live broadcast; on [`Live::Send`] the cursor moves to
    /// its end, on [`Live::CatchUp`] the session goes back to catching up.
    pub fn live(&mut self, b: &Broadcast) -> Live {
        if self.state != State::Live {
            // Still catching up: the store will have it.
            return Live::Skip;
        }
        if b.last <= self.cursor {
            Live::Skip
        } else if b.first == self.cursor + 1 {
            self.cursor = b.last;
            Live::Send
        } else {
            self.state = State::CatchingUp;
            Live::CatchUp
        }
    }
}

fn push(hub: &Replica, batch: u64, changes: Vec<WireChange>) -> Step {
    if changes.len() > MAX_PUSH_CHANGES {
        return Step::fatal(
            ErrorCode::TooLarge,
            format!("push of {} changes; at most {MAX_PUSH_CHANGES} per frame", changes.len()),
        );
    }
    let n = changes.len();
    let pushed: Vec<(NodeId, Vec<u8>)> = changes.into_iter().map(|c| (c.doc, c.bytes.0)).collect();
    let keys: Vec<Vec<u8>> = pushed.iter().map(|(_, b)| b.clone()).collect();
    match hub.apply_changes(pushed) {
        Ok(applied) => {
            let seq_of: HashMap<&[u8], u64> = applied.logged.iter().map(|c| (c.bytes.as_slice(), c.seq)).collect();
            let seqs = keys.iter().map(|k| seq_of.get(k.as_slice()).copied().unwrap_or(0)).collect();
            Step {
                replies: vec![HubFrame::Ack { batch, seqs }],
                broadcast: Broadcast::of(&applied.logged),
                stored: applied.applied.min(n),
                ..Step::default()
            }
        }
        Err(Error::InvalidChange { doc, reason }) => {
            Step::fatal(ErrorCode::InvalidChange, format!("change for {doc} is not a valid Automerge change: {reason}"))
        }
        Err(e) => Step::fatal(ErrorCode::Internal, format!("the hub could not store the push: {e}")),
    }
}
