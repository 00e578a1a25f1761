//! What one received edit costs the hub as its document's history grows.
//!
//! A task whose title has been edited `H` times (each edit also sets
//! `modified`), for `H` in 20, 200, 1,000 and 5,000. At each length, side by
//! side on the same documents:
//! - `edit here`: the next edit made on the document, as a device makes it
//!   (an Automerge transaction: it seeks its key);
//! - `apply received`: that same change applied to another copy of the
//!   document, as the hub applies a push ([`NodeDoc::apply`]);
//! - `hub commit`: a whole group commit as the hub's writer runs it: 50 such
//!   documents, one new change each, in one redb transaction with its fsync
//!   ([`Replica::apply_group`] in hub mode, on disk), per change.
//!
//! Automerge 0.12 applies a received change by walking its object's
//! operations from the first (`MapWalker` in its `op_set2/change/batch.rs`),
//! so `apply received` grows with the history while `edit here` barely
//! moves; the last column is its share of the hub's commit. Each figure is
//! the median over 20 rounds of 50 documents (the history grows by 20
//! meanwhile).
//!
//! The second table is the same group commit (at 200 earlier edits) when
//! some of its pushes are refused (a change Automerge cannot apply: its seq
//! skips one): the time of the whole group, against none refused.
//!
//! The third table is a push to a document in which another device's
//! changes wait for one of its changes the hub never got (median of 20
//! pushes), after which that change comes and every waiting one must go in.
//!
//! cargo bench -p heph-benches --bench hub_apply

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use automerge::{ActorId, Change};
use chrono::Utc;
use heph_engine::{Edit, NodeDoc, NodeId, Replica};

const HISTORIES: [usize; 4] = [20, 200, 1_000, 5_000];
const DOCS: usize = 50;
const ROUNDS: usize = 20;
/// Changes per batch while loading the hub.
const PRELOAD: usize = 1_000;
/// Pushes refused in a group of `DOCS` (the second table).
const REFUSED: [usize; 5] = [0, 1, 5, 10, 25];
/// Earlier edits of each document in the second table.
const REFUSAL_HISTORY: usize = 200;
/// Changes waiting in the document (the third table).
const WAITING: [usize; 4] = [0, 100, 1_000, 10_000];

struct Task {
    id: NodeId,
    /// Where the edits are made.
    author: NodeDoc,
    /// A copy receiving them, as a hub's does.
    received: NodeDoc,
    edits: usize,
}

impl Task {
    /// A task and its first `history` title edits; every change made.
    fn new(i: usize, history: usize) -> Result<(Self, Vec<Change>)> {
        let id = NodeId::random();
        let now = Utc::now();
        let (author, mut changes) = NodeDoc::create(&heph_benches::sample_task(id, i, now), &ActorId::random(), "add")?;
        let mut task = Self { id, author, received: NodeDoc::empty(&ActorId::random()), edits: 0 };
        for _ in 0..history {
            changes.push(task.edit()?);
        }
        let waiting = task.received.apply(changes.clone())?;
        if !waiting.is_empty() {
            return Err(anyhow!("{} changes of task {i} could not be applied", waiting.len()));
        }
        Ok((task, changes))
    }

    fn edit(&mut self) -> Result<Change> {
        self.edits += 1;
        let at = Utc::now();
        self.author
            .edit(&[Edit::Title(format!("{} rev {}", self.id.to_hex(), self.edits))], "edit", at)?
            .context("an edit of the title made no change")
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A hub store on disk in hub mode (in `dir`) holding `DOCS` tasks with
/// `history` edits each, and the tasks.
fn hub_with_tasks(dir: &tempfile::TempDir, history: usize) -> Result<(Replica, Vec<Task>)> {
    let mut hub = Replica::open(&dir.path().join("hub.redb"))?;
    hub.set_hub_mode(1024, usize::MAX);
    let mut tasks = Vec::with_capacity(DOCS);
    for i in 0..DOCS {
        let (task, changes) = Task::new(i, history)?;
        for chunk in changes.chunks(PRELOAD) {
            let batch = chunk.iter().map(|c| (task.id, c.clone())).collect();
            for outcome in hub.apply_group(vec![batch], None)? {
                outcome?;
            }
        }
        tasks.push(task);
    }
    Ok((hub, tasks))
}

/// Medians in µs per change: edit here, apply received, hub commit.
fn measure(history: usize) -> Result<(f64, f64, f64)> {
    let dir = tempfile::tempdir()?;
    let (hub, mut tasks) = hub_with_tasks(&dir, history)?;
    let (mut here, mut received, mut commit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let mut group = Vec::with_capacity(DOCS);
        for task in &mut tasks {
            let t = Instant::now();
            let change = task.edit()?;
            here.push(micros(t.elapsed()));
            let copy = change.clone();
            let t = Instant::now();
            let waiting = task.received.apply(vec![copy])?;
            received.push(micros(t.elapsed()));
            if !waiting.is_empty() {
                return Err(anyhow!("a received edit waited for its dependencies"));
            }
            group.push(vec![(task.id, change)]);
        }
        let t = Instant::now();
        let outcomes = hub.apply_group(group, None)?;
        commit.push(micros(t.elapsed()) / DOCS as f64);
        for outcome in outcomes {
            if outcome?.applied != 1 {
                return Err(anyhow!("the hub did not store a change of the group"));
            }
        }
    }
    Ok((median(here), median(received), median(commit)))
}

/// A copy of `change` with its seq one past its own: Automerge cannot apply
/// it where `change` is not stored, so its batch is refused.
fn seq_gap(change: &Change) -> Change {
    let mut e = change.decode();
    e.seq += 1;
    Change::from(e)
}

/// Median µs of a group commit of `DOCS` pushes (one title edit each, at
/// `history` earlier edits) of which `refused` are refused, spread evenly.
fn measure_refusals(history: usize, refused: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let (hub, mut tasks) = hub_with_tasks(&dir, history)?;
    let mut took = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (mut group, mut later) = (Vec::with_capacity(DOCS), Vec::new());
        for (i, task) in tasks.iter_mut().enumerate() {
            let change = task.edit()?;
            if refused > 0 && i % (DOCS / refused) == 0 && later.len() < refused {
                group.push(vec![(task.id, seq_gap(&change))]);
                later.push(vec![(task.id, change)]);
            } else {
                group.push(vec![(task.id, change)]);
            }
        }
        let t = Instant::now();
        let outcomes = hub.apply_group(group, None)?;
        took.push(micros(t.elapsed()));
        let kept = outcomes.iter().filter(|o| o.as_ref().is_ok_and(|a| a.applied == 1)).count();
        if kept != DOCS - refused {
            return Err(anyhow!("{kept} of {DOCS} pushes kept with {refused} refused"));
        }
        // The real edits, so that the next round's follow them.
        for outcome in hub.apply_group(later, None)? {
            outcome?;
        }
    }
    Ok(median(took))
}

/// Median µs of a push (one title edit) to a document with `waiting` of
/// another device's changes waiting for one the hub never got; then that
/// one comes, and every waiting change must go in.
fn measure_waiting(waiting: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut hub = Replica::open(&dir.path().join("hub.redb"))?;
    hub.set_hub_mode(1024, usize::MAX);
    let (mut task, created) = Task::new(0, 0)?;
    let id = task.id;
    let batch = |changes: &[Change]| changes.iter().map(|c| (id, c.clone())).collect::<Vec<_>>();
    hub.apply_group(vec![batch(&created)], None)?.into_iter().try_for_each(|o| o.map(drop))?;
    let mut other = NodeDoc::empty(&ActorId::random());
    other.apply(created)?;
    let edit = |doc: &mut NodeDoc, i: usize| -> Result<Change> {
        doc.edit(&[Edit::Title(format!("other {i}"))], "edit", Utc::now())?.context("an edit made no change")
    };
    let missing = edit(&mut other, 0)?;
    let later = (1..=waiting).map(|i| edit(&mut other, i)).collect::<Result<Vec<_>>>()?;
    for chunk in later.chunks(PRELOAD) {
        hub.apply_group(vec![batch(chunk)], None)?.into_iter().try_for_each(|o| o.map(drop))?;
    }
    let mut took = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let change = task.edit()?;
        let t = Instant::now();
        let applied = applied_alone(&hub, id, &[change]);
        took.push(micros(t.elapsed()));
        if applied? != 1 {
            return Err(anyhow!("the push was not stored"));
        }
    }
    if applied_alone(&hub, id, &[missing])? != waiting + 1 {
        return Err(anyhow!("the waiting changes did not all go in once what they waited for came"));
    }
    Ok(median(took))
}

/// Commits `changes` to document `id` as a group's one push; how many it applied.
fn applied_alone(hub: &Replica, id: NodeId, changes: &[Change]) -> Result<usize> {
    let batch = changes.iter().map(|c| (id, c.clone())).collect();
    let mut outcomes = hub.apply_group(vec![batch], None)?;
    match (outcomes.pop(), outcomes.is_empty()) {
        (Some(outcome), true) => Ok(outcome?.applied),
        _ => Err(anyhow!("a group of one push had {} outcomes", outcomes.len() + 1)),
    }
}

fn main() -> Result<()> {
    // `cargo test --benches` runs this with `--bench` absent: a quick pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let histories: &[usize] = if quick { &HISTORIES[..1] } else { &HISTORIES };
    println!("| earlier edits | edit here | apply received | hub commit, per change | apply's share |");
    println!("|---:|---:|---:|---:|---:|");
    for &history in histories {
        let (here, received, commit) = measure(history)?;
        println!(
            "| {history} | {here:.1} µs | {received:.1} µs | {commit:.1} µs | {:.0} % |",
            100.0 * received / commit
        );
    }
    println!();
    println!("| pushes refused of {DOCS} | group commit | against none refused |");
    println!("|---:|---:|---:|");
    let refusals: &[usize] = if quick { &[0, 5] } else { &REFUSED };
    let mut none = f64::NAN;
    for &refused in refusals {
        let took = measure_refusals(REFUSAL_HISTORY, refused)?;
        if refused == 0 {
            none = took;
        }
        println!("| {refused} | {:.2} ms | {:.2}× |", took / 1e3, took / none);
    }
    println!();
    println!("| changes waiting in the document | push to it |");
    println!("|---:|---:|");
    let waitings: &[usize] = if quick { &[0, 100] } else { &WAITING };
    for &waiting in waitings {
        println!("| {waiting} | {:.2} ms |", measure_waiting(waiting)? / 1e3);
    }
    Ok(())
}
