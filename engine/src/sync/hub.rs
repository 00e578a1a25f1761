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
//! `push` and `have` are accepted in `CatchingUp` and `Live`. A `have`
//! (reconciliation) is answered with `need`: the documents the hub lacks
//! anything of.
//!
//! Receiving is steps, so that the expensive, untrusted part runs outside
//! whatever serialises commits, and so that many sessions' pushes can share
//! one commit:
//! 1. [`HubSession::decode`] parses the JSON, the base64 and every change
//!    (bounded by [`crate::limits`]); it touches no store.
//! 2. [`HubSession::handle`] acts on the result with reads only. A push
//!    comes back as an effect, [`Step::write`], for the caller to apply.
//! 3. The caller applies that write ([`SyncStore::apply`], alone or grouped
//!    with other sessions' writes into one durable commit), broadcasts what
//!    the commit logged, in seq order, and passes the outcome to
//!    [`HubSession::committed`], which answers with the `ack` (saying which
//!    changes wait for dependencies), sent only after the commit.
//!
//! [`HubSession::receive`] does all three against one store, one frame at a
//! time (tests, simple transports).
//!
//! Storage is reached only through [`SyncStore`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use automerge::{Change, ChangeHash};

use crate::error::Error;
use crate::id::NodeId;
use crate::limits::PendingQuota;
use crate::replica::parse_changes;
use crate::store::{Applied, LoggedChange, SavedDoc};
use crate::sync::frame::{
    BATCH_BYTES, Bytes, ClientFrame, DocHeads, ErrorCode, FRAME_BUDGET, HubFrame, Known, MAX_HAVE_DOCS,
    MAX_ORIGIN_BYTES, MAX_PUSH_CHANGES, PROTOCOL_VERSION, WireChange, WireDoc, encode, wire_size,
};
use crate::sync::storage::{Batch, SyncStore};

/// How many changes one catch-up frame carries at most (it is cut by bytes
/// first, at [`BATCH_BYTES`]).
pub const CATCH_UP_BATCH: usize = 4096;

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
    /// Encodes logged changes (in seq order) as `changes` frames of about
    /// [`BATCH_BYTES`] each (one larger change alone).
    #[must_use]
    pub fn of(changes: &[LoggedChange]) -> Vec<Self> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < changes.len() {
            let mut end = start;
            let mut size = 0;
            while end < changes.len() {
                size += wire_size(changes[end].bytes.len());
                if end > start && size > BATCH_BYTES {
                    break;
                }
                end += 1;
            }
            let part = &changes[start..end];
            let position = Some(part[part.len() - 1].position.to_string());
            let frame = HubFrame::Changes { changes: part.iter().map(wire).collect(), position };
            out.push(Self { first: part[0].seq, last: part[part.len() - 1].seq, text: encode(&frame).into() });
            start = end;
        }
        out
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
    /// Changes this frame committed, for every subscriber, in seq order.
    pub broadcast: Vec<Broadcast>,
    /// Close the connection after sending the replies.
    pub close: bool,
    /// The client's device id, once known (for logs).
    pub hello: Option<String>,
    /// How many pushed changes were new.
    pub stored: usize,
    /// A push to commit (see the [module docs](self)); its `ack` comes from
    /// [`HubSession::committed`].
    pub write: Option<Write>,
}

/// A push waiting to be committed: the effect of a `push` frame.
#[derive(Debug)]
pub struct Write {
    /// The client's batch id.
    pub batch: u64,
    /// The changes, in the order the client sent them.
    pub changes: Batch,
}

impl Write {
    /// The hashes of the changes, in order (what the `ack` answers for).
    #[must_use]
    pub fn hashes(&self) -> Vec<ChangeHash> {
        self.changes.iter().map(|(_, c)| c.hash()).collect()
    }
}

impl Step {
    fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { replies: vec![HubFrame::fatal(code, message)], close: true, ..Self::default() }
    }
}

/// A client frame, decoded and validated: what [`HubSession::handle`] takes.
#[derive(Debug)]
pub enum Inbound {
    /// `hello`.
    Hello {
        /// Its protocol version.
        version: u32,
        /// The device id.
        origin: String,
        /// Its cursor.
        cursor: u64,
        /// Whether it wants snapshots.
        bootstrap: bool,
        /// Whether it wants the hub's readings with them.
        views: bool,
        /// Its known position.
        known: Option<(u64, ChangeHash)>,
    },
    /// `push`, with every change parsed.
    Push {
        /// The batch id.
        batch: u64,
        /// The changes.
        changes: Vec<(NodeId, Change)>,
    },
    /// `have`.
    Have {
        /// The documents and their heads.
        docs: Vec<(NodeId, Vec<ChangeHash>)>,
    },
    /// `auth`: a bearer token, for the transport to check (browsers cannot
    /// set headers); a session given one itself refuses it.
    Auth {
        /// The token.
        token: String,
    },
}

impl Inbound {
    /// Whether handling it writes to the store (and must be serialised with
    /// other writers).
    #[must_use]
    pub fn writes(&self) -> bool {
        matches!(self, Self::Push { .. })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitHello,
    CatchingUp,
    Live,
    Closed,
}

/// Where a bootstrap stands: pages of documents by id, from read
/// transactions of their own (documents only grow, so a page read later
/// than `upto` holds more, never less, and the client dedups).
#[derive(Debug)]
struct Bootstrap {
    upto: u64,
    after: Option<NodeId>,
    /// Runs of changes of a document too large for one frame, still to send.
    runs: VecDeque<(NodeId, Vec<u8>)>,
}

/// One client's session with the hub.
#[derive(Debug)]
pub struct HubSession {
    state: State,
    /// The last hub seq sent to (or known to) the client.
    cursor: u64,
    /// A bootstrap in progress.
    snapshots: Option<Bootstrap>,
    bootstrap: bool,
    /// The client wants the hub's readings with snapshots.
    views: bool,
    max_pending: Option<PendingQuota>,
    budget: usize,
}

impl Default for HubSession {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_heads(heads: &[String]) -> Option<Vec<ChangeHash>> {
    heads.iter().map(|h| h.parse::<ChangeHash>().ok()).collect()
}

impl HubSession {
    /// A session waiting for `hello`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: State::AwaitHello,
            cursor: 0,
            snapshots: None,
            bootstrap: false,
            views: false,
            max_pending: None,
            budget: BATCH_BYTES,
        }
    }

    /// Fills catch-up and snapshot frames to `bytes` instead of
    /// [`BATCH_BYTES`] (at most [`FRAME_BUDGET`]; tests use small frames).
    #[must_use]
    pub fn with_frame_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes.min(FRAME_BUDGET);
        self
    }

    /// Bounds the hub's table of changes waiting for dependencies: a push
    /// that would leave more waiting is refused with `quota_exceeded`.
    #[must_use]
    pub fn with_max_pending(mut self, max: Option<PendingQuota>) -> Self {
        self.max_pending = max;
        self
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

    /// Handles one text frame from the client against `hub`:
    /// [`Self::decode`], [`Self::handle`], and a push's write committed on
    /// its own, then [`Self::committed`]; the broadcast is in the step.
    pub fn receive(&mut self, text: &str, hub: &dyn SyncStore) -> Step {
        match self.decode(text) {
            Ok(inbound) => self.handle_alone(inbound, hub),
            Err(step) => step,
        }
    }

    /// [`Self::handle`], with a push's write committed on its own and
    /// answered with [`Self::committed`]; the broadcast is in the step.
    pub fn handle_alone(&mut self, inbound: Inbound, hub: &dyn SyncStore) -> Step {
        let mut step = self.handle(inbound, hub);
        let Some(write) = step.write.take() else { return step };
        let hashes = write.hashes();
        let outcome = match hub.apply(vec![write.changes], self.max_pending) {
            Ok(mut results) => results.pop().unwrap_or_else(|| Err(Error::Storage("no result for the push".into()))),
            Err(e) => Err(e),
        };
        let broadcast = match &outcome {
            Ok(applied) => Broadcast::of(&applied.logged),
            Err(_) => Vec::new(),
        };
        let mut acked = self.committed(write.batch, &hashes, outcome);
        acked.broadcast = broadcast;
        acked
    }

    /// Decodes and validates one text frame, parsing every change within the
    /// limits of [`crate::limits`]. Touches no store. A bad frame closes the
    /// session: the `Err` step says why.
    pub fn decode(&mut self, text: &str) -> Result<Inbound, Step> {
        let decoded = self.decode_frame(text);
        if decoded.is_err() {
            self.state = State::Closed;
        }
        decoded
    }

    fn decode_frame(&self, text: &str) -> Result<Inbound, Step> {
        if self.state == State::Closed {
            return Err(Step { close: true, ..Step::default() });
        }
        let frame = ClientFrame::decode(text).map_err(|e| Step::fatal(e.code(), e.to_string()))?;
        Ok(match frame {
            ClientFrame::Hello { version, origin, cursor, bootstrap, views, known } => {
                if origin.len() > MAX_ORIGIN_BYTES {
                    return Err(Step::fatal(
                        ErrorCode::BadFrame,
                        format!("hello: origin is longer than {MAX_ORIGIN_BYTES} bytes (a device id is 32 hex digits)"),
                    ));
                }
                let known = match known {
                    None => None,
                    Some(Known { seq, hash }) => match hash.parse::<ChangeHash>() {
                        Ok(h) => Some((seq, h)),
                        Err(_) => {
                            return Err(Step::fatal(ErrorCode::BadFrame, "hello: known.hash is not a change hash"));
                        }
                    },
                };
                Inbound::Hello { version, origin, cursor, bootstrap, views, known }
            }
            ClientFrame::Push { batch, changes } => {
                if changes.len() > MAX_PUSH_CHANGES {
                    return Err(Step::fatal(
                        ErrorCode::TooLarge,
                        format!("push of {} changes; at most {MAX_PUSH_CHANGES} per frame", changes.len()),
                    ));
                }
                let raw = changes.into_iter().map(|c| (c.doc, c.bytes.0)).collect();
                match parse_changes(raw) {
                    Ok(changes) => Inbound::Push { batch, changes },
                    Err(Error::InvalidChange { doc, reason }) => {
                        return Err(Step::fatal(
                            ErrorCode::InvalidChange,
                            format!("change for {doc} refused: {reason}"),
                        ));
                    }
                    Err(e) => return Err(Step::fatal(ErrorCode::InvalidChange, e.to_string())),
                }
            }
            ClientFrame::Have { docs } => {
                if docs.len() > MAX_HAVE_DOCS {
                    return Err(Step::fatal(
                        ErrorCode::TooLarge,
                        format!("have of {} documents; at most {MAX_HAVE_DOCS} per frame", docs.len()),
                    ));
                }
                let mut out = Vec::with_capacity(docs.len());
                for DocHeads { doc, heads } in docs {
                    let heads = parse_heads(&heads).ok_or_else(|| {
                        Step::fatal(ErrorCode::BadFrame, format!("have: a head of {doc} is not a change hash"))
                    })?;
                    out.push((doc, heads));
                }
                Inbound::Have { docs: out }
            }
            ClientFrame::Auth { token } => Inbound::Auth { token },
        })
    }

    /// Acts on a decoded frame, reading `hub` only: a push comes back as
    /// [`Step::write`], for the caller to commit, without reading `hub`
    /// (cheap enough to run on an async runtime's thread).
    pub fn handle(&mut self, inbound: Inbound, hub: &dyn SyncStore) -> Step {
        if self.state == State::Closed {
            return Step { close: true, ..Step::default() };
        }
        let step = match (&self.state, inbound) {
            (State::AwaitHello, Inbound::Hello { version, origin, cursor, bootstrap, views, known }) => {
                if version < PROTOCOL_VERSION {
                    Step::fatal(
                        ErrorCode::UnsupportedVersion,
                        format!("protocol version {version} is not supported; this hub speaks {PROTOCOL_VERSION}"),
                    )
                } else {
                    self.views = views;
                    match self.hello(hub, cursor, bootstrap, known) {
                        Ok(welcome) => Step { replies: vec![welcome], hello: Some(origin), ..Step::default() },
                        Err(e) => Step::fatal(ErrorCode::Internal, e.to_string()),
                    }
                }
            }
            (State::CatchingUp | State::Live, Inbound::Push { batch, changes }) => {
                Step { write: Some(Write { batch, changes }), ..Step::default() }
            }
            (State::CatchingUp | State::Live, Inbound::Have { docs }) => have(hub, &docs),
            (_, Inbound::Auth { .. }) => {
                Step::fatal(ErrorCode::Protocol, "auth is only accepted as the first frame, when the hub requires it")
            }
            (State::AwaitHello, _) => Step::fatal(ErrorCode::Protocol, "the first frame must be hello"),
            (_, Inbound::Hello { .. }) => Step::fatal(ErrorCode::Protocol, "hello was already received"),
            (State::Closed, _) => Step { close: true, ..Step::default() },
        };
        if step.close {
            self.state = State::Closed;
        }
        step
    }

    /// Answers a committed (or refused) push: the `ack` after the commit,
    /// or an error frame and the end of the session. `hashes` are the
    /// push's, in order ([`Write::hashes`]).
    pub fn committed(&mut self, batch: u64, hashes: &[ChangeHash], outcome: Result<Applied, Error>) -> Step {
        let step = ack(batch, hashes, outcome);
        if step.close {
            self.state = State::Closed;
        }
        step
    }

    /// Opens the session. A client whose known position is not in this log,
    /// or whose cursor is past its head, saw another history (the hub was
    /// replaced, or restored from an older copy): it is told so, and served
    /// from the start, as a new device would be.
    fn hello(
        &mut self,
        hub: &dyn SyncStore,
        cursor: u64,
        bootstrap: bool,
        known: Option<(u64, ChangeHash)>,
    ) -> Result<HubFrame, Error> {
        let head = hub.head()?;
        let seen = known.map_or(cursor, |(seq, _)| seq.max(cursor));
        let diverged = seen > head
            || match known {
                Some((seq, hash)) => hub.position(seq)? != Some(hash),
                None => false,
            };
        let cursor = if diverged { 0 } else { cursor };
        self.cursor = cursor;
        self.bootstrap = cursor == 0 && (bootstrap || diverged);
        self.state = State::CatchingUp;
        Ok(HubFrame::Welcome { version: PROTOCOL_VERSION, hub: hub.store_id(), head, diverged })
    }

    /// The next catch-up frame from the store, or `None` once the client has
    /// everything up to the hub's head (the session is then live). Frames
    /// are filled to [`BATCH_BYTES`]; none passes [`FRAME_BUDGET`].
    pub fn catch_up(&mut self, hub: &dyn SyncStore) -> Result<Option<HubFrame>, Error> {
        if self.state != State::CatchingUp {
            return Ok(None);
        }
        if self.bootstrap {
            self.bootstrap = false;
            let upto = hub.head()?;
            if upto > 0 {
                self.snapshots = Some(Bootstrap { upto, after: None, runs: VecDeque::new() });
            }
        }
        if let Some(boot) = &mut self.snapshots {
            let upto = boot.upto;
            if let Some((doc, bytes)) = boot.runs.pop_front() {
                return Ok(Some(HubFrame::Snapshot {
                    docs: vec![WireDoc { doc, bytes: Bytes(bytes), view: None }],
                    upto,
                    more: true,
                    hash: None,
                }));
            }
            let page = if self.views {
                hub.docs_after_with_views(boot.after, self.budget)?
            } else {
                hub.docs_after(boot.after, self.budget)?.into_iter().map(SavedDoc::from).collect()
            };
            let Some(last) = page.last().map(|d| d.id) else {
                // Every page sent: the last frame moves the client's cursor.
                self.snapshots = None;
                self.cursor = upto;
                let hash = hub.position(upto)?.map(|h| h.to_string());
                return Ok(Some(HubFrame::Snapshot { docs: Vec::new(), upto, more: false, hash }));
            };
            boot.after = Some(last);
            if let [one] = page.as_slice()
                && wire_size(one.bytes.len()) > self.budget
            {
                // One document larger than a frame: its changes, in causal
                // order, in runs that each fit.
                boot.runs = runs_of(hub, one.id, self.budget)?.into();
                return self.catch_up(hub);
            }
            let docs = page.into_iter().map(|d| WireDoc { doc: d.id, bytes: Bytes(d.bytes), view: d.view }).collect();
            return Ok(Some(HubFrame::Snapshot { docs, upto, more: true, hash: None }));
        }
        let changes = hub.log_after(self.cursor, CATCH_UP_BATCH, self.budget, false)?;
        match changes.last() {
            None => {
                self.state = State::Live;
                Ok(None)
            }
            Some(last) => {
                self.cursor = last.seq;
                let position = Some(last.position.to_string());
                Ok(Some(HubFrame::Changes { changes: changes.iter().map(wire).collect(), position }))
            }
        }
    }

    /// Decides about a live broadcast; on [`Live::Send`] the cursor moves to
    /// its end, on [`Live::CatchUp`] the session goes back to catching up.
    pub fn live(&mut self, b: &Broadcast) -> Live {
        self.live_seqs(b.first, b.last)
    }

    /// [`Self::live`] for a broadcast of seqs `first..=last` kept in
    /// another form by the transport.
    pub fn live_seqs(&mut self, first: u64, last: u64) -> Live {
        if self.state != State::Live {
            // Still catching up: the store will have it.
            return Live::Skip;
        }
        if last <= self.cursor {
            Live::Skip
        } else if first == self.cursor + 1 {
            self.cursor = last;
            Live::Send
        } else {
            self.state = State::CatchingUp;
            Live::CatchUp
        }
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

/// The changes of document `doc`, concatenated in causal order into runs
/// that each fit in one frame.
fn runs_of(hub: &dyn SyncStore, doc: NodeId, budget: usize) -> Result<Vec<(NodeId, Vec<u8>)>, Error> {
    let mut runs = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    for change in hub.changes_since(doc, &[])? {
        let raw = change.raw_bytes();
        if !run.is_empty() && wire_size(run.len() + raw.len()) > budget {
            runs.push((doc, std::mem::take(&mut run)));
        }
        run.extend_from_slice(raw);
    }
    if !run.is_empty() {
        runs.push((doc, run));
    }
    Ok(runs)
}

fn ack(batch: u64, hashes: &[ChangeHash], outcome: Result<Applied, Error>) -> Step {
    let n = hashes.len();
    match outcome {
        Ok(applied) => {
            // By hash, once: a push holds up to 4,096 changes.
            let logged: HashMap<ChangeHash, (u64, ChangeHash)> =
                applied.logged.iter().map(|c| (c.hash, (c.seq, c.position))).collect();
            let waits: HashSet<&ChangeHash> = applied.waiting_hashes.iter().collect();
            let seqs = hashes.iter().map(|h| logged.get(h).map_or(0, |(seq, _)| *seq)).collect();
            let waiting = hashes
                .iter()
                .enumerate()
                .filter(|(_, h)| waits.contains(h))
                .filter_map(|(i, _)| u32::try_from(i).ok())
                .collect();
            // The position at the highest seq this push got.
            let position = hashes.iter().filter_map(|h| logged.get(h)).max_by_key(|(seq, _)| *seq).map(|(_, p)| *p);
            Step {
                replies: vec![HubFrame::Ack { batch, seqs, waiting, position: position.map(|p| p.to_string()) }],
                stored: applied.applied.min(n),
                ..Step::default()
            }
        }
        Err(Error::InvalidChange { doc, reason }) => {
            Step::fatal(ErrorCode::InvalidChange, format!("change for {doc} is not a valid Automerge change: {reason}"))
        }
        Err(e @ (Error::PendingQuota { .. } | Error::PendingBytes { .. })) => {
            Step::fatal(ErrorCode::QuotaExceeded, e.to_string())
        }
        Err(e) if e.refuses_batch() => Step::fatal(ErrorCode::InvalidChange, format!("the push was refused: {e}")),
        Err(e) => Step::fatal(ErrorCode::Internal, format!("the hub could not store the push: {e}")),
    }
}

/// Answers a `have` with one `need` frame: the documents offered that hold
/// something the hub lacks, each with the hub's heads, so the device sends
/// only what is missing. The answer stays within [`FRAME_BUDGET`]: once the
/// heads would not fit (documents with very many heads, or one listed many
/// times), a document goes without them, and the device sends all of it
/// (the hub keeps what it already has once).
fn have(hub: &dyn SyncStore, docs: &[(NodeId, Vec<ChangeHash>)]) -> Step {
    match hub.lacking(docs) {
        Ok(lacking) => {
            // Room kept for every entry without heads, so none is left out.
            let bare = wire_size(0);
            let mut room = FRAME_BUDGET.saturating_sub(docs.len() * bare);
            let docs = docs
                .iter()
                .zip(lacking)
                .filter_map(|((doc, _), ours)| {
                    let heads = ours?;
                    let size = heads.len() * wire_size(32);
                    let heads = if size <= room {
                        room -= size;
                        heads.iter().map(ToString::to_string).collect()
                    } else {
                        Vec::new()
                    };
                    Some(DocHeads { doc: *doc, heads })
                })
                .collect();
            Step { replies: vec![HubFrame::Need { docs }], ..Step::default() }
        }
        Err(e) => Step::fatal(ErrorCode::Internal, format!("the hub could not read its store: {e}")),
    }
}
