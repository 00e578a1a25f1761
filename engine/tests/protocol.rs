//! The sync protocol end to end under random scenarios: one hub, a few
//! devices, every frame carried by an in-memory transport that moves frames
//! one at a time, drops connections mid-stream, loses acks, and swaps the
//! hub's store for an empty one or for an older copy of itself. The hub's
//! store is a `MemoryStore` and the devices' are redb replicas, so the two
//! implementations of the storage seam meet in every scenario.
//!
//! Every write made anywhere is kept in a ledger. When the network settles,
//! the hub and every device must hold all of it: the hub ends with the union
//! of what devices hold, whatever happened to the hub on the way.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use heph_engine::sync::frame::{ClientFrame, HubFrame, encode};
use heph_engine::sync::hub::{Broadcast, HubSession, Live};
use heph_engine::sync::memory::MemoryStore;
use heph_engine::sync::spoke::SpokeSession;
use heph_engine::sync::storage::SyncStore;
use heph_engine::{Annotation, Conflict, Edit, Node, NodeId, NodeKind, Priority, Replica};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------
// The hub's store, and copies of it.
//
// The hub is a `MemoryStore` (the devices are redb replicas, so this also
// checks that the two implementations of the storage seam interoperate). A
// backup is a clone of it: the same hub id and an older log, exactly what
// restoring a backup of a hub's store gives. An empty hub is a new store.
// ---------------------------------------------------------------------------

/// A copy of the hub's store, taken at some point, restorable any number of times.
struct Backup {
    store: MemoryStore,
    /// The hub's head when the copy was taken.
    head: u64,
}

/// What the checks read from a store: nodes and their conflicts.
trait Holds {
    fn node(&self, id: NodeId) -> Option<Node>;
    fn conflicts_of(&self, id: NodeId) -> Vec<Conflict>;
    /// Every node, in id order.
    fn nodes(&self) -> Vec<Node>;
}

impl Holds for Replica {
    fn node(&self, id: NodeId) -> Option<Node> {
        self.get(id).ok()
    }

    fn conflicts_of(&self, id: NodeId) -> Vec<Conflict> {
        Replica::conflicts_of(self, id).unwrap()
    }

    fn nodes(&self) -> Vec<Node> {
        self.export().unwrap()
    }
}

impl Holds for MemoryStore {
    fn node(&self, id: NodeId) -> Option<Node> {
        self.doc(id).and_then(|d| d.materialise_as(id).ok())
    }

    fn conflicts_of(&self, id: NodeId) -> Vec<Conflict> {
        self.doc(id).map(|d| d.conflicts(id).unwrap()).unwrap_or_default()
    }

    fn nodes(&self) -> Vec<Node> {
        self.ids().into_iter().filter_map(|id| self.node(id)).collect()
    }
}

// ---------------------------------------------------------------------------
// The transport.
// ---------------------------------------------------------------------------

/// One live connection: both state machines and what is in flight between them.
struct Conn {
    /// The hub's side (what `hub/src/connection.rs` drives).
    at_hub: HubSession,
    /// The device's side (what `hub/src/local.rs` drives).
    spoke: SpokeSession,
    /// Encoded frames sent by the device, not yet read by the hub.
    to_hub: VecDeque<String>,
    /// Encoded frames sent by the hub, not yet read by the device.
    to_device: VecDeque<String>,
    /// Live broadcasts queued for this connection (its broadcast receiver).
    live: VecDeque<Rc<Broadcast>>,
    /// The hub streams catch-up frames from its store between reads.
    catching_up: bool,
    /// The hub closed the connection: the device still reads what was sent
    /// before the close (an error frame says why), then the connection ends.
    closing: bool,
}

struct Device {
    name: String,
    replica: Replica,
    conn: Option<Conn>,
    /// Gone for good (lost, wiped): never reconnects, never checked.
    retired: bool,
}

/// One unit of work on a connection.
#[derive(Clone, Copy, Debug)]
enum Work {
    DeviceReads,
    HubReads,
    HubLive,
    HubCatchUp,
}

/// What a write put into a node that must never disappear.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Tag(String),
    Link(NodeId),
    Annotation(String),
    Uda(String, String),
    /// A body append: its text is a substring of the body.
    Body(String),
}

/// A write of a scalar field: it survives as the value or as one of the
/// conflicting values, unless a later write to the field saw it. (Writes
/// always change the value shown on the writing device: Automerge makes no
/// op for a put of the value already shown.)
#[derive(Clone, Debug)]
struct ScalarWrite {
    node: NodeId,
    field: &'static str,
    value: String,
    /// The change that made it (hex hash).
    hash: String,
    by: usize,
    /// Which write it was (`w12 at step 7`).
    label: String,
    superseded: bool,
}

#[derive(Clone, Debug)]
struct Written {
    node: NodeId,
    item: Item,
    by: usize,
    /// Which write it was (`w12 at step 7`).
    label: String,
}

/// What a scenario does to one field.
#[derive(Clone, Copy, Debug)]
enum Field {
    Title,
    Due,
    Priority,
}

/// The hub, the devices, the wires between them, and the ledger of writes.
struct Net {
    hub: MemoryStore,
    backups: Vec<Backup>,
    devices: Vec<Device>,
    written: Vec<Written>,
    scalars: Vec<ScalarWrite>,
    /// What happened, for failure messages.
    trace: Vec<String>,
    /// A counter that makes every written value unique.
    n: usize,
    /// The scenario step being run, in random scenarios.
    step: Option<usize>,
    now: DateTime<Utc>,
}

impl Net {
    fn new(devices: usize) -> Self {
        Self {
            hub: MemoryStore::new(),
            backups: Vec::new(),
            devices: (0..devices)
                .map(|i| Device {
                    name: format!("dev{i}"),
                    replica: Replica::in_memory().unwrap(),
                    conn: None,
                    retired: false,
                })
                .collect(),
            written: Vec::new(),
            scalars: Vec::new(),
            trace: Vec::new(),
            n: 0,
            step: None,
            now: t0(),
        }
    }

    /// Adds a device that has never synced.
    fn add_device(&mut self) -> usize {
        let i = self.devices.len();
        self.devices.push(Device {
            name: format!("dev{i}"),
            replica: Replica::in_memory().unwrap(),
            conn: None,
            retired: false,
        });
        self.note(format!("dev{i} joins"));
        i
    }

    fn note(&mut self, line: String) {
        match self.step {
            Some(step) => self.trace.push(format!("[{step}] {line}")),
            None => self.trace.push(line),
        }
    }

    // --- connections ----------------------------------------------------

    /// Opens a connection for `dev` (a new session on both sides); `hello`
    /// is in flight.
    fn connect(&mut self, dev: usize) {
        let d = &mut self.devices[dev];
        if d.conn.is_some() || d.retired {
            return;
        }
        let (spoke, hello) = SpokeSession::start(&d.replica).unwrap();
        d.conn = Some(Conn {
            at_hub: HubSession::new(),
            spoke,
            to_hub: VecDeque::from([encode(&hello)]),
            to_device: VecDeque::new(),
            live: VecDeque::new(),
            catching_up: false,
            closing: false,
        });
        let cursors = d.replica.cursors().unwrap();
        let line = format!("{} connects (hub cursor {}, pushed {})", d.name, cursors.hub_cursor, cursors.pushed);
        self.note(line);
    }

    /// Drops `dev`'s connection: whatever was in flight either way is lost.
    fn drop(&mut self, dev: usize) {
        if let Some(c) = self.devices[dev].conn.take() {
            let line = format!(
                "{} drops ({} frames to the hub and {} to the device lost)",
                self.devices[dev].name,
                c.to_hub.len(),
                c.to_device.len()
            );
            self.note(line);
        }
    }

    fn drop_all(&mut self) {
        for dev in 0..self.devices.len() {
            self.drop(dev);
        }
    }

    /// The work `dev`'s connection could do now.
    fn work(&self, dev: usize) -> Vec<Work> {
        let Some(c) = &self.devices[dev].conn else { return Vec::new() };
        let mut out = Vec::new();
        if !c.to_device.is_empty() {
            out.push(Work::DeviceReads);
        }
        if c.closing {
            return out;
        }
        if !c.to_hub.is_empty() {
            out.push(Work::HubReads);
        }
        if !c.live.is_empty() {
            out.push(Work::HubLive);
        }
        if c.catching_up {
            out.push(Work::HubCatchUp);
        }
        out
    }

    /// Does one unit of work on `dev`'s connection (`pick` chooses which);
    /// false when there was nothing to do.
    fn tick(&mut self, dev: usize, pick: usize) -> bool {
        let work = self.work(dev);
        if work.is_empty() {
            if self.devices[dev].conn.as_ref().is_some_and(|c| c.closing) {
                self.drop(dev);
                return true;
            }
            return false;
        }
        let w = work[pick % work.len()];
        self.run_work(dev, w);
        true
    }

    fn run_work(&mut self, dev: usize, w: Work) {
        let name = self.devices[dev].name.clone();
        match w {
            Work::HubReads => {
                let c = self.devices[dev].conn.as_mut().unwrap();
                let text = c.to_hub.pop_front().unwrap();
                let step = c.at_hub.receive(&text, &self.hub);
                let mut lines = Vec::new();
                if let Ok(ClientFrame::Push { batch, changes }) = ClientFrame::decode(&text) {
                    lines.push(format!("{name} pushes batch {batch} ({} changes)", changes.len()));
                }
                for reply in &step.replies {
                    match reply {
                        HubFrame::Welcome { hub, head, .. } => {
                            lines.push(format!("the hub ({}, head {head}) welcomes {name}", &hub[..8]));
                        }
                        HubFrame::Ack { batch, seqs, waiting, .. } => {
                            lines.push(format!("the hub acks {name}'s batch {batch}: {seqs:?}, waiting {waiting:?}"))
                        }
                        _ => {}
                    }
                }
                if step.hello.is_some() {
                    c.catching_up = true;
                }
                c.to_device.extend(step.replies.iter().map(encode));
                for b in step.broadcast {
                    // Every connection subscribed to the hub's live stream
                    // gets it, the pusher's own included.
                    let b = Rc::new(b);
                    for d in &mut self.devices {
                        if let Some(other) = &mut d.conn
                            && !other.closing
                        {
                            other.live.push_back(Rc::clone(&b));
                        }
                    }
                }
                for line in lines {
                    self.note(line);
                }
                if step.close {
                    let why = step.replies.iter().map(encode).collect::<Vec<_>>().join(" ");
                    self.note(format!("the hub closes {name}'s connection: {why}"));
                    let c = self.devices[dev].conn.as_mut().unwrap();
                    c.closing = true;
                    c.to_hub.clear();
                    c.live.clear();
                    c.catching_up = false;
                }
            }
            Work::HubCatchUp => {
                let c = self.devices[dev].conn.as_mut().unwrap();
                match c.at_hub.catch_up(&self.hub).expect("the hub reads its store") {
                    Some(frame) => c.to_device.push_back(encode(&frame)),
                    None => c.catching_up = false,
                }
            }
            Work::HubLive => {
                let c = self.devices[dev].conn.as_mut().unwrap();
                let b = c.live.pop_front().unwrap();
                match c.at_hub.live(&b) {
                    Live::Send => c.to_device.push_back(b.text.to_string()),
                    Live::Skip => {}
                    Live::CatchUp => c.catching_up = true,
                }
            }
            Work::DeviceReads => {
                let d = &mut self.devices[dev];
                let c = d.conn.as_mut().unwrap();
                let text = c.to_device.pop_front().unwrap();
                match c.spoke.receive(&text, &d.replica) {
                    Ok(step) => c.to_hub.extend(step.send.iter().map(encode)),
                    Err(e) => {
                        // The daemon ends the session and reconnects later.
                        self.note(format!("{name}'s session ends: {e}"));
                        self.drop(dev);
                    }
                }
            }
        }
    }

    /// Up to `frames` units of work on `dev`'s connection, choices varied by `pick`.
    fn pump_dev(&mut self, dev: usize, frames: usize, pick: usize) {
        for i in 0..frames {
            if !self.tick(dev, pick.wrapping_add(i * 7)) {
                break;
            }
        }
    }

    /// One round: one unit of work on every connection. False when none had any.
    fn pump(&mut self, round: usize) -> bool {
        let mut any = false;
        for dev in 0..self.devices.len() {
            any |= self.tick(dev, round + dev);
        }
        any
    }

    /// The hub's ack for `dev`'s push is lost in transit, and the connection
    /// with it: frames ahead of the ack still arrive.
    fn lose_ack(&mut self, dev: usize) {
        if self.devices[dev].conn.is_none() {
            return;
        }
        let push_in_flight = |c: &Conn| c.to_hub.iter().any(|t| t.contains("\"type\":\"push\""));
        for _ in 0..10_000 {
            let Some(c) = &self.devices[dev].conn else { return };
            if let Some(at) = c.to_device.iter().position(|t| matches!(HubFrame::decode(t), Ok(HubFrame::Ack { .. }))) {
                for _ in 0..at {
                    self.run_work(dev, Work::DeviceReads);
                    if self.devices[dev].conn.is_none() {
                        return;
                    }
                }
                let name = self.devices[dev].name.clone();
                self.devices[dev].conn.as_mut().unwrap().to_device.pop_front();
                self.note(format!("{name}: an ack is lost"));
                self.drop(dev);
                return;
            }
            if !push_in_flight(c) && c.to_device.is_empty() {
                // No push in flight, and none coming: no ack to lose.
                return;
            }
            // Prefer the hub reading, so the push gets answered.
            let work = self.work(dev);
            let Some(&first) = work.first() else { return };
            let w = work.iter().copied().find(|w| matches!(w, Work::HubReads)).unwrap_or(first);
            self.run_work(dev, w);
        }
    }

    /// Every device that is not retired comes online, and frames move until
    /// nothing is in flight and every device is idle.
    fn settle(&mut self) -> Result<(), String> {
        const MAX_ROUNDS: usize = 200_000;
        const MAX_SESSIONS: usize = 40;
        let mut sessions = vec![0usize; self.devices.len()];
        for round in 0..MAX_ROUNDS {
            for (dev, count) in sessions.iter_mut().enumerate() {
                if self.devices[dev].conn.is_none() && !self.devices[dev].retired {
                    *count += 1;
                    if *count > MAX_SESSIONS {
                        return Err(self.report(&format!(
                            "{} needed more than {MAX_SESSIONS} sessions to settle",
                            self.devices[dev].name
                        )));
                    }
                    self.connect(dev);
                }
            }
            if self.pump(round) {
                continue;
            }
            // Nothing in flight anywhere: is everyone idle?
            let mut busy = Vec::new();
            for d in &self.devices {
                if let Some(c) = &d.conn
                    && !c.spoke.is_idle(&d.replica).unwrap()
                {
                    busy.push(format!("{}: {:?}", d.name, c.spoke));
                }
            }
            if busy.is_empty() {
                if self.devices.iter().all(|d| d.retired || d.conn.is_some()) {
                    return Ok(());
                }
                continue;
            }
            return Err(
                self.report(&format!("stuck: nothing in flight, yet devices are not idle:\n  {}", busy.join("\n  ")))
            );
        }
        Err(self.report(&format!("did not settle within {MAX_ROUNDS} rounds")))
    }

    // --- the hub's store ------------------------------------------------

    /// Keeps a copy of the hub's store as it is now.
    fn backup(&mut self) {
        let b = Backup { store: self.hub.clone(), head: self.hub.head().unwrap() };
        self.note(format!("backup {} of the hub taken at head {}", self.backups.len(), b.head));
        self.backups.push(b);
    }

    /// The hub is replaced by an empty one (every connection drops).
    fn replace_hub(&mut self) {
        self.drop_all();
        self.hub = MemoryStore::new();
        self.note("the hub is replaced by an empty hub".into());
    }

    /// The hub is restored from backup `which` (every connection drops).
    fn restore_hub(&mut self, which: usize) {
        if self.backups.is_empty() {
            return;
        }
        let which = which % self.backups.len();
        self.drop_all();
        let head = self.hub.head().unwrap();
        self.hub = self.backups[which].store.clone();
        let line = format!("the hub (head {head}) is restored from backup {which} (head {})", self.hub.head().unwrap());
        self.note(line);
    }

    // --- writes ---------------------------------------------------------

    fn next(&mut self) -> usize {
        self.n += 1;
        self.now += Duration::seconds(7);
        self.n
    }

    /// How the ledger names write `n`.
    fn label(&self, n: usize) -> String {
        match self.step {
            Some(step) => format!("w{n} at step {step}"),
            None => format!("w{n}"),
        }
    }

    /// Tells a connected device's session about a local change (the
    /// daemon's local-change notification).
    fn local_change(&mut self, dev: usize) {
        let d = &mut self.devices[dev];
        if let Some(c) = &mut d.conn {
            for frame in c.spoke.next_push(&d.replica).unwrap() {
                c.to_hub.push_back(encode(&frame));
            }
        }
    }

    /// The hash of the change on `node` made with `message` on `dev`.
    fn hash_of(&self, dev: usize, node: NodeId, message: &str) -> String {
        let history = self.devices[dev].replica.history(node).unwrap();
        history.into_iter().rev().find(|h| h.message == message).expect("the change just made").hash
    }

    /// Records a scalar write, and marks earlier writes of the field that
    /// the writing device had seen as overwritten.
    fn record_scalar(&mut self, dev: usize, node: NodeId, field: &'static str, value: String, n: usize) {
        let message = format!("w{n}");
        let seen: HashSet<String> =
            self.devices[dev].replica.history(node).unwrap().into_iter().map(|h| h.hash).collect();
        for w in &mut self.scalars {
            if w.node == node && w.field == field && seen.contains(&w.hash) {
                w.superseded = true;
            }
        }
        let hash = self.hash_of(dev, node, &message);
        let label = self.label(n);
        self.scalars.push(ScalarWrite { node, field, value, hash, by: dev, label, superseded: false });
    }

    /// `dev` creates a task or a note, optionally with a tag.
    fn create(&mut self, dev: usize, kind: NodeKind, tag: bool) -> NodeId {
        let n = self.next();
        let id = NodeId::derived(&format!("protocol-test/{n}"));
        let title = format!("{kind} {n}");
        let message = format!("w{n}");
        let edits: Vec<Edit> = if tag { vec![Edit::AddTag(format!("tag{n}"))] } else { Vec::new() };
        let draft = Node::new(id, kind, title.clone(), self.now);
        self.devices[dev].replica.create(&draft, &edits, &message).unwrap();
        self.note(format!("{} creates {kind} {} {title:?} (w{n})", self.devices[dev].name, short(id)));
        self.record_scalar(dev, id, "title", title, n);
        if tag {
            let label = self.label(n);
            self.written.push(Written { node: id, item: Item::Tag(format!("tag{n}")), by: dev, label });
        }
        self.local_change(dev);
        id
    }

    /// `dev` edits `node` with one kept item (tag, link, annotation, UDA, body append).
    fn add(&mut self, dev: usize, node: NodeId, item: Item) {
        let n = self.next();
        let edit = match &item {
            Item::Tag(t) => Edit::AddTag(t.clone()),
            Item::Link(to) => Edit::Link(*to),
            Item::Annotation(text) => Edit::Annotate(Annotation { entry: self.now, description: text.clone() }),
            Item::Uda(k, v) => Edit::Uda(k.clone(), Some(v.clone())),
            Item::Body(text) => Edit::AppendBody(text.clone()),
        };
        let message = format!("w{n}");
        let now = self.now;
        self.devices[dev].replica.edit(node, &[edit], &message, now).unwrap();
        self.note(format!("{} adds {item:?} to {} (w{n})", self.devices[dev].name, short(node)));
        let label = self.label(n);
        self.written.push(Written { node, item, by: dev, label });
        self.local_change(dev);
    }

    /// `dev` sets a scalar field of `node`.
    fn set(&mut self, dev: usize, node: NodeId, field: Field, value: u8) {
        let n = self.next();
        let (edit, name, rendered) = match field {
            Field::Title => {
                let t = format!("title {n}");
                (Edit::Title(t.clone()), "title", t)
            }
            Field::Due => {
                let t = t0() + Duration::days(i64::try_from(n).unwrap());
                (Edit::Due(Some(t)), "due", t.to_rfc3339())
            }
            Field::Priority => {
                // Never the value shown now: Automerge makes no op for that,
                // and the ledger counts each write as a value that survives.
                let shown = self.devices[dev].replica.get(node).unwrap().priority;
                let p = (0..3)
                    .map(|i| [Priority::H, Priority::M, Priority::L][(usize::from(value) + i) % 3])
                    .find(|p| Some(*p) != shown)
                    .unwrap();
                (Edit::Priority(Some(p)), "priority", p.as_str().to_string())
            }
        };
        let message = format!("w{n}");
        let now = self.now;
        self.devices[dev].replica.edit(node, &[edit], &message, now).unwrap();
        self.note(format!("{} sets {name} of {} to {rendered:?} (w{n})", self.devices[dev].name, short(node)));
        self.record_scalar(dev, node, name, rendered, n);
        self.local_change(dev);
    }

    /// `dev` appends a line to a day's journal (opening the day if needed).
    fn journal(&mut self, dev: usize, day: NaiveDate) -> NodeId {
        let id = self.devices[dev].replica.journal(day).unwrap().id;
        self.note(format!("{} opens the journal of {day} ({})", self.devices[dev].name, short(id)));
        let n = self.n + 1;
        self.add(dev, id, Item::Body(format!("journal line {n}")));
        id
    }

    /// The ids `dev` holds.
    fn nodes_of(&self, dev: usize) -> Vec<NodeId> {
        self.devices[dev].replica.export().unwrap().into_iter().map(|n| n.id).collect()
    }

    // --- the checks -----------------------------------------------------

    /// Everything in the ledger that `replica` lacks.
    fn missing_in(&self, replica: &dyn Holds) -> Vec<String> {
        let mut out = Vec::new();
        let who = |by: usize| self.devices[by].name.as_str();
        let mut absent = HashSet::new();
        let mut node_missing = |out: &mut Vec<String>, id: NodeId, by: usize, label: &str| {
            if absent.insert(id) {
                out.push(format!("node {} (written to by {}, {label}) is missing", short(id), who(by)));
            }
        };
        for w in &self.written {
            let Some(node) = replica.node(w.node) else {
                node_missing(&mut out, w.node, w.by, &w.label);
                continue;
            };
            let present = match &w.item {
                Item::Tag(t) => node.tags.contains(t),
                Item::Link(to) => node.links.contains(to),
                Item::Annotation(text) => node.annotations.iter().any(|a| &a.description == text),
                Item::Uda(k, v) => node.uda.get(k) == Some(v),
                Item::Body(text) => node.body.contains(text.as_str()),
            };
            if !present {
                out.push(format!("{:?} on {} (by {}, {}) is missing", w.item, short(w.node), who(w.by), w.label));
            }
        }
        for w in self.scalars.iter().filter(|w| !w.superseded) {
            let Some(node) = replica.node(w.node) else {
                node_missing(&mut out, w.node, w.by, &w.label);
                continue;
            };
            let current = match w.field {
                "title" => Some(node.title.clone()),
                "due" => node.due.map(|t| t.to_rfc3339()),
                "priority" => node.priority.map(|p| p.as_str().to_string()),
                _ => unreachable!(),
            };
            if current.as_deref() == Some(w.value.as_str()) {
                continue;
            }
            let conflicts = replica.conflicts_of(w.node);
            let listed = conflicts.iter().any(|c| c.field == w.field && c.values.contains(&w.value));
            if !listed {
                out.push(format!(
                    "{} = {:?} on {} (by {}, {}) is neither the value ({current:?}) nor a conflicting one ({conflicts:?})",
                    w.field,
                    w.value,
                    short(w.node),
                    who(w.by),
                    w.label
                ));
            }
        }
        out
    }

    /// The hub and every device that is not retired hold every write, and
    /// all of them materialise identically.
    fn check(&self) -> Result<(), String> {
        let mut problems = String::new();
        let mut places: Vec<(&str, &dyn Holds)> = vec![("the hub", &self.hub)];
        places.extend(self.devices.iter().filter(|d| !d.retired).map(|d| (d.name.as_str(), &d.replica as &dyn Holds)));
        for (name, replica) in &places {
            let missing = self.missing_in(*replica);
            if !missing.is_empty() {
                let _ = writeln!(problems, "{name} lacks {} writes:", missing.len());
                for m in missing.iter().take(12) {
                    let _ = writeln!(problems, "  {m}");
                }
            }
        }
        let hub = self.hub.nodes();
        for (name, replica) in &places[1..] {
            let mine = replica.nodes();
            if mine != hub {
                let ids = |nodes: &[Node]| nodes.iter().map(|n| n.id).collect::<BTreeSet<_>>();
                let (h, m) = (ids(&hub), ids(&mine));
                let differs: Vec<String> =
                    hub.iter().filter(|n| mine.iter().any(|o| o.id == n.id && o != *n)).map(|n| short(n.id)).collect();
                let _ = writeln!(
                    problems,
                    "{name} differs from the hub: only on the hub {:?}, only on {name} {:?}, differing {differs:?}",
                    h.difference(&m).map(|i| short(*i)).collect::<Vec<_>>(),
                    m.difference(&h).map(|i| short(*i)).collect::<Vec<_>>(),
                );
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(self.report(&problems)) }
    }

    /// A failure message: what went wrong, then what happened.
    fn report(&self, what: &str) -> String {
        let mut s = format!("{what}\nwhat happened:\n");
        for line in &self.trace {
            let _ = writeln!(s, "  {line}");
        }
        s
    }
}

fn short(id: NodeId) -> String {
    id.to_hex()[..8].to_string()
}

// ---------------------------------------------------------------------------
// Random scenarios.
// ---------------------------------------------------------------------------

/// One step of a scenario; the bytes pick devices, nodes and values.
#[derive(Clone, Debug)]
enum Op {
    /// A device creates a task or a note.
    Create { dev: u8, note: bool, tag: bool },
    /// A device edits one of the nodes it holds.
    Edit { dev: u8, node: u8, what: u8, value: u8 },
    /// A device appends to a day's journal.
    Journal { dev: u8, day: u8 },
    /// A device comes online (a new session).
    Connect { dev: u8 },
    /// A device's connection drops, frames in flight lost.
    Disconnect { dev: u8 },
    /// Some frames move on one connection.
    Pump { dev: u8, frames: u8, pick: u8 },
    /// Frames move everywhere until quiet (devices stay as they are).
    Quiet,
    /// The hub's ack for a device's push is lost, with the connection.
    LoseAck { dev: u8 },
    /// A copy of the hub's store is kept.
    Backup,
    /// The hub is replaced by an empty one.
    ReplaceHub,
    /// The hub is restored from one of the copies.
    RestoreHub { which: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<bool>(), any::<bool>()).prop_map(|(dev, note, tag)| Op::Create { dev, note, tag }),
        8 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(dev, node, what, value)| Op::Edit { dev, node, what, value }),
        1 => (any::<u8>(), 0u8..2).prop_map(|(dev, day)| Op::Journal { dev, day }),
        4 => any::<u8>().prop_map(|dev| Op::Connect { dev }),
        2 => any::<u8>().prop_map(|dev| Op::Disconnect { dev }),
        6 => (any::<u8>(), 1u8..12, any::<u8>()).prop_map(|(dev, frames, pick)| Op::Pump { dev, frames, pick }),
        2 => Just(Op::Quiet),
        1 => any::<u8>().prop_map(|dev| Op::LoseAck { dev }),
        1 => Just(Op::Backup),
        1 => Just(Op::ReplaceHub),
        1 => any::<u8>().prop_map(|which| Op::RestoreHub { which }),
    ]
}

/// Moves frames on every connection until nothing is in flight (without
/// connecting anyone).
fn quiet(net: &mut Net) {
    for round in 0..100_000 {
        if !net.pump(round) {
            return;
        }
    }
    panic!("{}", net.report("frames never stopped moving"));
}

fn run(devices: usize, ops: &[Op]) -> Result<(), String> {
    let mut net = Net::new(devices);
    for (i, op) in ops.iter().enumerate() {
        net.step = Some(i);
        let dev_of = |d: u8| usize::from(d) % devices;
        match *op {
            Op::Create { dev, note, tag } => {
                let kind = if note { NodeKind::Note } else { NodeKind::Task };
                net.create(dev_of(dev), kind, tag);
            }
            Op::Edit { dev, node, what, value } => {
                let dev = dev_of(dev);
                let ids = net.nodes_of(dev);
                if ids.is_empty() {
                    continue;
                }
                let target = ids[usize::from(node) % ids.len()];
                let n = net.n + 1;
                match what % 8 {
                    0 => net.set(dev, target, Field::Title, value),
                    1 => net.set(dev, target, Field::Due, value),
                    2 => net.set(dev, target, Field::Priority, value),
                    3 => net.add(dev, target, Item::Tag(format!("tag{n}"))),
                    4 => {
                        let to = ids[usize::from(value) % ids.len()];
                        let item = if to == target { Item::Tag(format!("tag{n}")) } else { Item::Link(to) };
                        net.add(dev, target, item);
                    }
                    5 => net.add(dev, target, Item::Annotation(format!("note {n}"))),
                    6 => net.add(dev, target, Item::Uda(format!("uda{n}"), format!("value {n}"))),
                    _ => net.add(dev, target, Item::Body(format!("line {n}"))),
                }
            }
            Op::Journal { dev, day } => {
                let day = NaiveDate::from_ymd_opt(2026, 11, 24 + u32::from(day)).unwrap();
                net.journal(dev_of(dev), day);
            }
            Op::Connect { dev } => net.connect(dev_of(dev)),
            Op::Disconnect { dev } => net.drop(dev_of(dev)),
            Op::Pump { dev, frames, pick } => net.pump_dev(dev_of(dev), usize::from(frames), usize::from(pick)),
            Op::Quiet => quiet(&mut net),
            Op::LoseAck { dev } => net.lose_ack(dev_of(dev)),
            Op::Backup => net.backup(),
            Op::ReplaceHub => net.replace_hub(),
            Op::RestoreHub { which } => net.restore_hub(usize::from(which)),
        }
    }
    net.step = Some(ops.len());
    net.note("everyone comes online".into());
    net.settle()?;
    net.check()
}

/// Scenarios per run (`PROPTEST_CASES` overrides). With the hub in memory a
/// scenario costs little, so a run tries many.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random edits on 3–4 devices while connections come and go, frames
    /// interleave, acks get lost and the hub is replaced or restored: once
    /// everyone is online and the network is quiet, the hub and every device
    /// hold every write ever made, and all materialise identically.
    #[test]
    fn the_hub_ends_with_the_union(devices in 3usize..=4, ops in prop::collection::vec(op(), 1..60)) {
        run(devices, &ops).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------
// The bug reports, as scenarios.
// ---------------------------------------------------------------------------

fn ok(result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The hub is replaced by an empty hub after the device that wrote a task
/// is gone for good. The task survives on another device, which received
/// it from the old hub; that device must hand it to the new hub, so that a
/// device joining later still gets it.
#[test]
fn hub_replaced_by_an_empty_hub_writer_gone_new_device_still_gets_it() {
    let mut net = Net::new(2);
    let (writer, keeper) = (0, 1);
    net.connect(writer);
    net.connect(keeper);
    let task = net.create(writer, NodeKind::Task, true);
    net.add(writer, task, Item::Annotation("call the plumber".into()));
    net.set(writer, task, Field::Due, 0);
    ok(net.settle());
    assert!(net.devices[keeper].replica.get(task).is_ok(), "{}", net.report("the keeper never got the task"));

    net.drop(writer);
    net.devices[writer].retired = true;
    net.note("dev0 is gone for good".into());
    net.replace_hub();
    ok(net.settle());
    let newcomer = net.add_device();
    ok(net.settle());
    assert!(net.devices[newcomer].replica.get(task).is_ok(), "{}", net.report("the new device lacks the task"));
    ok(net.check());
}

/// The hub is restored from a copy older than what the devices have seen.
/// Before the device with the larger cursor returns, another device pushes
/// enough that the restored hub's head passes that cursor: seqs that device
/// thinks it has now name other changes, and what only it held (its own
/// changes and others' it received) must reach the hub.
#[test]
fn hub_restored_from_an_older_copy_another_device_pushes_past_the_restored_head() {
    let mut net = Net::new(3);
    let (a, b, c) = (0, 1, 2);
    for dev in [a, b, c] {
        net.connect(dev);
    }
    let shared = net.create(a, NodeKind::Task, false);
    ok(net.settle());
    net.backup();

    // After the backup: a writes, everyone receives it.
    let later = net.create(a, NodeKind::Note, true);
    net.add(a, later, Item::Body("written after the backup".into()));
    net.add(b, shared, Item::Annotation("b annotates after the backup".into()));
    ok(net.settle());
    let b_cursor = net.devices[b].replica.cursors().unwrap().hub_cursor;

    // a is lost; the hub comes back from the backup.
    net.drop(a);
    net.devices[a].retired = true;
    net.drop(b);
    net.restore_hub(0);
    assert!(net.hub.head().unwrap() < b_cursor, "{}", net.report("the backup is not older"));

    // c returns first and pushes past b's cursor.
    net.connect(c);
    for _ in 0..=b_cursor + 2 {
        if net.hub.head().unwrap() > b_cursor + 2 {
            break;
        }
        net.create(c, NodeKind::Task, true);
        quiet(&mut net);
    }
    assert!(net.hub.head().unwrap() > b_cursor, "{}", net.report("c never pushed past b's cursor"));
    net.add(c, shared, Item::Tag("c was here".into()));
    quiet(&mut net);

    // b returns with its old cursor.
    ok(net.settle());
    ok(net.check());
}

/// Two devices offline each add the first annotation (and the first UDA)
/// to one task. Both must survive everywhere.
#[test]
fn two_devices_offline_each_add_the_first_annotation_to_one_task() {
    let mut net = Net::new(2);
    let (a, b) = (0, 1);
    let task = net.create(a, NodeKind::Task, false);
    ok(net.settle());
    net.drop_all();
    net.add(a, task, Item::Annotation("from a".into()));
    net.add(b, task, Item::Annotation("from b".into()));
    net.add(a, task, Item::Uda("size".into(), "from a".into()));
    net.add(b, task, Item::Uda("estimate".into(), "from b".into()));
    ok(net.settle());
    ok(net.check());
}

/// The transport itself: with a hub that is never replaced and no
/// concurrent containers, everything converges (guards the driver).
#[test]
fn plain_sync_with_lost_acks_and_drops_converges() {
    let mut net = Net::new(3);
    for dev in 0..3 {
        net.connect(dev);
    }
    let mut ids = Vec::new();
    for dev in 0..3 {
        ids.push(net.create(dev, NodeKind::Task, true));
    }
    net.pump_dev(0, 3, 0);
    net.lose_ack(1);
    net.drop(2);
    ok(net.settle());
    let more = net.create(0, NodeKind::Note, false);
    net.add(0, more, Item::Body("after a lost ack".into()));
    net.lose_ack(0);
    for (i, id) in ids.iter().enumerate() {
        net.add(i % 3, *id, Item::Tag(format!("t{i}")));
        net.set((i + 1) % 3, *id, Field::Title, 0);
        net.journal(i % 3, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    }
    ok(net.settle());
    ok(net.check());
}

/// The hub is restored from one copy twice. After the first restore the
/// device that wrote hands its writes back through a reconciliation (the
/// hub needs them), and those are the only pushes it makes; after the
/// second restore its next hello must still show the hub lost them.
#[test]
fn hub_restored_twice_from_one_copy_after_a_reconciliation() {
    ok(run(
        4,
        &[
            Op::Journal { dev: 185, day: 0 },
            Op::Backup,
            Op::Connect { dev: 217 },
            Op::Pump { dev: 9, frames: 1, pick: 0 },
            Op::Pump { dev: 101, frames: 4, pick: 137 },
            Op::RestoreHub { which: 0 },
            Op::Connect { dev: 85 },
            Op::Pump { dev: 105, frames: 8, pick: 0 },
            Op::RestoreHub { which: 0 },
        ],
    ));
}
