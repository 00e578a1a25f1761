//! The hub's one writer: a thread that owns every write to the store.
//!
//! Connections decode and validate their frames themselves, concurrently,
//! and hand each push to the writer as a [`Write`]. The writer takes
//! everything waiting at that moment and commits it as one group: one
//! transaction, one `fsync`, whatever the number of connections. Then, in
//! this order:
//! 1. it answers each push, so its connection sends the `ack`: never before
//!    the commit returned (and ahead of the fan-out's sends, which would
//!    otherwise delay it);
//! 2. it broadcasts what the group logged, in seq order (the live queue is
//!    fed by this thread only, so broadcasts never overtake each other).
//!
//! Pushes are grouped as they arrive: while one group commits, the next
//! one gathers, so a lone push commits at once and a crowd shares commits.
//! A group is bounded ([`GROUP_CHANGES`], [`GROUP_BYTES`]).
//!
//! Other writes (the RPC API's edits) run on the same thread between
//! groups, as [`Writer::call`], and are broadcast the same way.
//!
//! The store runs in hub mode: received changes leave the search indexes
//! behind. Whenever nothing waits, the writer brings them up to date, a
//! few documents per transaction; an RPC read first brings all of them up
//! to date (see `rpc.rs`).
//!
//! Reads never come here: `hello`, catch-up, bootstrap and reconciliation
//! read the store in read transactions of their own, beside the writer.

use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use heph_engine::error::unpanicked;
use heph_engine::limits::PendingQuota;
use heph_engine::sync::hub::{Broadcast, Write};
use heph_engine::sync::storage::SyncStore;
use heph_engine::{Applied, Error, LoggedChange, Replica};
use std::sync::mpsc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, oneshot};

use crate::metrics::Metrics;

/// The most changes one group commits (more wait for the next group).
pub const GROUP_CHANGES: usize = 16_384;
/// The most change bytes one group commits.
pub const GROUP_BYTES: usize = 32 << 20;

/// A live broadcast as connections send it: the frame's text is shared, not
/// copied per subscriber.
#[derive(Debug)]
pub struct LiveFrame {
    /// Its first seq.
    pub first: u64,
    /// Its last seq.
    pub last: u64,
    /// Its text.
    pub text: Utf8Bytes,
}

/// Stale documents indexed per transaction while nothing else waits.
const REFRESH_BATCH: usize = 64;
/// How long nothing must come before the writer refreshes indexes.
const IDLE: Duration = Duration::from_millis(100);

type Call = Box<dyn FnOnce(&Replica) -> Vec<LoggedChange> + Send>;

enum Job {
    Push { write: Write, done: oneshot::Sender<Result<Applied, Error>> },
    Call(Call),
}

/// The handle connections and requests use to reach the writer thread.
pub struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    metrics: Arc<Metrics>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread for `replica`; what it logs goes to `live`.
    pub fn start(
        replica: Arc<Replica>,
        live: broadcast::Sender<Arc<LiveFrame>>,
        metrics: Arc<Metrics>,
        max_pending: PendingQuota,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let group = Group { replica, live, metrics: metrics.clone(), max_pending };
        let thread = std::thread::Builder::new().name("hephd-writer".into()).spawn(move || group.run(rx))?;
        Ok(Self { jobs: Mutex::new(Some(tx)), metrics, thread: Mutex::new(Some(thread)) })
    }

    fn send(&self, job: Job) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Counted before it is sent, so the writer's decrement never comes first.
        self.metrics.writer_queue.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            self.metrics.writer_queue.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        sent
    }

    /// Commits a push (with whatever else is waiting); resolves once it is
    /// durable and broadcast, or refused.
    pub async fn push(&self, write: Write) -> Result<Applied, Error> {
        let (done, outcome) = oneshot::channel();
        if !self.send(Job::Push { write, done }) {
            return Err(Error::Storage("the hub is shutting down".into()));
        }
        outcome.await.unwrap_or_else(|_| Err(Error::Storage("the hub's writer stopped".into())))
    }

    /// Runs `f` on the writer thread, between groups; what it returns is
    /// the changes it logged, broadcast after it. Returns `f`'s result.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Replica) -> (T, Vec<LoggedChange>) + Send + 'static,
    ) -> Result<T, Error> {
        let (done, outcome) = oneshot::channel();
        let job = Job::Call(Box::new(move |replica| {
            let (out, logged) = f(replica);
            let _ = done.send(out);
            logged
        }));
        if !self.send(job) {
            return Err(Error::Storage("the hub is shutting down".into()));
        }
        outcome.await.map_err(|_| Error::Storage("the hub's writer stopped".into()))
    }

    /// Stops taking writes, lets the writer finish what it holds, and waits
    /// for it.
    pub fn close(&self) {
        drop(self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        if let Some(thread) = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
            && thread.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }
}

/// The writer thread's state.
struct Group {
    replica: Arc<Replica>,
    live: broadcast::Sender<Arc<LiveFrame>>,
    metrics: Arc<Metrics>,
    max_pending: PendingQuota,
}

impl Group {
    fn run(self, rx: mpsc::Receiver<Job>) {
        let rx = Taken { rx, metrics: &self.metrics };
        let mut held: Option<Job> = None;
        // The store may hold documents whose indexes are behind (from
        // before a restart too): brought up to date once nothing has come
        // for a moment, a few at a time.
        let mut stale = true;
        // Refreshing already: nothing came for `IDLE` since the last write,
        // so the next batch follows at once unless a job is waiting (a job
        // waits for one batch at most).
        let mut refreshing = false;
        loop {
            if held.is_none() && stale {
                match rx.recv_timeout(if refreshing { Duration::ZERO } else { IDLE }) {
                    Ok(job) => held = Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        stale = self.refresh();
                        refreshing = stale;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            let Some(first) = held.take().or_else(|| rx.recv().ok()) else { return };
            stale = true;
            refreshing = false;
            let mut pushes = Vec::new();
            match first {
                Job::Call(f) => {
                    // A panicking call drops its answer: its caller gets an error.
                    match unpanicked(|| f(&self.replica)) {
                        Ok(logged) => self.broadcast(&logged),
                        Err(e) => tracing::error!(error = %e, "a write failed; nothing of it was stored"),
                    }
                    continue;
                }
                Job::Push { write, done } => pushes.push((write, done)),
            }
            // Everything else already waiting joins the group, up to its bounds.
            let (mut changes, mut bytes) = size(&pushes[0].0);
            while changes < GROUP_CHANGES && bytes < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(Job::Push { write, done }) => {
                        let (c, b) = size(&write);
                        changes += c;
                        bytes += b;
                        pushes.push((write, done));
                    }
                    Ok(call) => {
                        // Runs after this group, in arrival order.
                        held = Some(call);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(pushes);
        }
    }

    fn commit(&self, pushes: Vec<(Write, oneshot::Sender<Result<Applied, Error>>)>) {
        let started = Instant::now();
        let n = pushes.len();
        let (batches, waiters): (Vec<_>, Vec<_>) = pushes.into_iter().map(|(w, done)| (w.changes, done)).unzip();
        let outcomes = unpanicked(|| self.replica.apply(batches, Some(self.max_pending))).and_then(|r| r);
        self.metrics.commit(n, started.elapsed());
        match outcomes {
            Ok(outcomes) => {
                let mut logged: Vec<LoggedChange> =
                    outcomes.iter().flatten().flat_map(|a| a.logged.iter().cloned()).collect();
                logged.sort_by_key(|c| c.seq);
                for (outcome, done) in outcomes.into_iter().zip(waiters) {
                    // A connection that went away no longer waits.
                    let _ = done.send(outcome);
                }
                self.broadcast(&logged);
            }
            Err(e) => {
                tracing::error!(error = %e, pushes = n, "a group commit failed; nothing of it was stored");
                for done in waiters {
                    let _ = done.send(Err(Error::Storage(e.to_string())));
                }
            }
        }
    }

    /// Refreshes the indexes of a few stale documents; whether any remain.
    /// Once none do, the writer is idle: the memory its groups used goes
    /// back to the system.
    fn refresh(&self) -> bool {
        match unpanicked(|| self.replica.refresh_stale(REFRESH_BATCH)).and_then(|r| r) {
            Ok(n) if n == REFRESH_BATCH => true,
            Ok(_) => {
                trim();
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not bring the search indexes up to date; retrying after the next write");
                false
            }
        }
    }

    fn broadcast(&self, logged: &[LoggedChange]) {
        for b in Broadcast::of(logged) {
            let frame = LiveFrame { first: b.first, last: b.last, text: Utf8Bytes::from(&*b.text) };
            // No subscribers is not an error.
            let _ = self.live.send(Arc::new(frame));
        }
    }
}

/// Returns the free memory of every malloc arena to the system. The writer
/// thread has an arena of its own, which a burst of pushes grows and which
/// glibc otherwise keeps.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it takes no
    // pointers and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The job queue's receiving end, counting each job it hands out off
/// [`Metrics::writer_queue`].
struct Taken<'a> {
    rx: mpsc::Receiver<Job>,
    metrics: &'a Metrics,
}

impl Taken<'_> {
    fn taken<E>(&self, job: Result<Job, E>) -> Result<Job, E> {
        if job.is_ok() {
            self.metrics.writer_queue.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        job
    }

    fn recv(&self) -> Result<Job, mpsc::RecvError> {
        self.taken(self.rx.recv())
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<Job, mpsc::RecvTimeoutError> {
        self.taken(self.rx.recv_timeout(timeout))
    }

    fn try_recv(&self) -> Result<Job, mpsc::TryRecvError> {
        self.taken(self.rx.try_recv())
    }
}

fn size(write: &Write) -> (usize, usize) {
    (write.changes.len(), write.changes.iter().map(|(_, c)| c.raw_bytes().len()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use heph_engine::{Node, NodeKind};

    fn writer() -> (Writer, Arc<Replica>) {
        let mut replica = Replica::in_memory().expect("an in-memory store");
        replica.set_hub_mode(16, usize::MAX);
        let replica = Arc::new(replica);
        let (live, _) = broadcast::channel(16);
        let writer = Writer::start(
            replica.clone(),
            live,
            Arc::new(Metrics::default()),
            PendingQuota { changes: 1000, bytes: 1 << 30 },
        )
        .expect("the writer thread");
        (writer, replica)
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone_and_the_writer_goes_on() {
        let (writer, replica) = writer();
        let failed = writer.call(|_| -> (u64, Vec<LoggedChange>) { panic!("a bug") }).await;
        assert!(failed.is_err(), "the caller hears of it");
        // The thread lives on: a push is stored and acknowledged.
        let device = Replica::in_memory().expect("an in-memory store");
        let now = chrono::Utc::now();
        device
            .create(&Node::new(heph_engine::NodeId::random(), NodeKind::Task, "after".into(), now), &[], "add")
            .expect("a task");
        let raw = device.changes_after(0, 100).expect("its changes").into_iter().map(|c| (c.doc, c.bytes)).collect();
        let changes = heph_engine::replica::parse_changes(raw).expect("valid changes");
        let n = changes.len();
        let applied = writer.push(Write { batch: 1, changes }).await.expect("stored");
        assert_eq!(applied.applied, n);
        assert_eq!(replica.last_seq().expect("the log"), n as u64);
        let seq = writer.call(|r| (r.last_seq(), Vec::new())).await.expect("a call after it");
        assert_eq!(seq.expect("the log"), n as u64);
        writer.close();
    }
}
