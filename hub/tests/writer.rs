//! The hub's write path under concurrency: many connections pushing at
//! once share group commits; every ack follows its commit; live broadcasts
//! stay in seq order; a kill -9 in the middle of group commits loses nothing
//! that was acknowledged. And the connection limits: the cap, the hello
//! deadline, pings, the push rate.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use automerge::{Change, ChangeHash};
use common::ws::{Ws, hello, next};
use common::{Hub, free_port};
use futures_util::{SinkExt, StreamExt};
use heph_engine::sync::frame::{Bytes, ClientFrame, HubFrame, WireChange, encode};
use heph_engine::{Node, NodeDoc, NodeId, NodeKind};
use tokio_tungstenite::tungstenite::Message;

async fn connect(port: u16) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/sync")).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, frame: &ClientFrame) -> bool {
    ws.send(Message::Text(encode(frame).into())).await.is_ok()
}

/// Connects and says hello at `cursor`; returns the socket and the head.
async fn open(port: u16, cursor: u64) -> (Ws, u64) {
    let mut ws = connect(port).await;
    assert!(send(&mut ws, &hello(cursor)).await);
    let Some(HubFrame::Welcome { head, .. }) = next(&mut ws).await else { panic!("expected welcome") };
    (ws, head)
}

/// A new task: its genesis and content changes.
fn task(title: &str) -> Vec<(NodeId, Change)> {
    let node = Node::new(NodeId::random(), NodeKind::Task, title.into(), chrono::Utc::now());
    let (_, changes) = NodeDoc::create(&node, &automerge::ActorId::random(), "add").unwrap();
    changes.into_iter().map(|c| (node.id, c)).collect()
}

fn push(batch: u64, changes: &[(NodeId, Change)]) -> ClientFrame {
    ClientFrame::Push {
        batch,
        changes: changes
            .iter()
            .map(|(doc, c)| WireChange { seq: None, doc: *doc, bytes: Bytes(c.raw_bytes().to_vec()) })
            .collect(),
    }
}

/// What one connection saw: the changes the hub acknowledged (hash → seq)
/// and the seqs of the live changes it received, in arrival order.
#[derive(Default)]
struct Seen {
    acked: HashMap<ChangeHash, u64>,
    live: Vec<u64>,
}

/// Pushes up to `pushes` new tasks one at a time, each after the previous
/// ack, reading live changes meanwhile. Stops early when the hub goes away.
async fn pusher(port: u16, pushes: u64) -> Seen {
    let (mut ws, _) = open(port, 0).await;
    let mut seen = Seen::default();
    'pushes: for batch in 1..=pushes {
        let changes = task(&format!("task {batch}"));
        if !send(&mut ws, &push(batch, &changes)).await {
            break;
        }
        loop {
            match next(&mut ws).await {
                None => break 'pushes,
                Some(HubFrame::Changes { changes, .. }) => seen.live.extend(changes.iter().filter_map(|c| c.seq)),
                Some(HubFrame::Ack { batch: b, seqs, .. }) if b == batch => {
                    for ((_, c), seq) in changes.iter().zip(seqs) {
                        assert!(seq > 0, "a new change is acknowledged with its seq");
                        seen.acked.insert(c.hash(), seq);
                    }
                    continue 'pushes;
                }
                Some(other) => panic!("unexpected frame: {other:?}"),
            }
        }
    }
    seen
}

/// Every change in the hub's log, read from seq 0: (seq, hash) in order.
async fn whole_log(port: u16) -> Vec<(u64, ChangeHash)> {
    let (mut ws, head) = open(port, 0).await;
    let mut log = Vec::new();
    while log.last().map_or(0, |(seq, _)| *seq) < head {
        match next(&mut ws).await {
            Some(HubFrame::Changes { changes, .. }) => {
                for c in changes {
                    let hash = Change::from_bytes(c.bytes.0).expect("a stored change parses").hash();
                    log.push((c.seq.expect("catch-up changes carry their seq"), hash));
                }
            }
            other => panic!("expected catch-up changes, got {other:?}"),
        }
    }
    log
}

/// Seqs must arrive each one past the last: in order, with no gap.
fn assert_in_order(what: &str, seqs: &[u64]) {
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{what}: seq {} arrived after {}", pair[1], pair[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_connections_share_group_commits_acks_follow_commits_and_broadcasts_stay_in_order() {
    const PUSHERS: usize = 40;
    const PUSHES: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let port = hub.port;

    // A subscriber that only listens, from an empty log.
    let (mut watcher, _) = open(port, 0).await;
    let expected = PUSHERS as u64 * PUSHES * 2;
    let watching = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while (seqs.len() as u64) < expected {
            match next(&mut watcher).await {
                Some(HubFrame::Changes { changes, .. }) => seqs.extend(changes.iter().filter_map(|c| c.seq)),
                other => panic!("the watcher expected live changes, got {other:?}"),
            }
        }
        seqs
    });

    let tasks: Vec<_> = (0..PUSHERS).map(|_| tokio::spawn(pusher(port, PUSHES))).collect();
    let mut acked = HashMap::new();
    for t in tasks {
        let seen = t.await.unwrap();
        assert_eq!(seen.acked.len() as u64, PUSHES * 2, "every push of every connection is acknowledged");
        // Each connection's live stream is in seq order too.
        assert_in_order("a pusher's live stream", &seen.live);
        acked.extend(seen.acked);
    }
    let watched = tokio::time::timeout(Duration::from_secs(60), watching).await.unwrap().unwrap();
    assert_eq!(watched.first(), Some(&1));
    assert_in_order("the watcher's live stream", &watched);

    // Every acknowledged change is in the log at the seq its ack named.
    let log = whole_log(port).await;
    assert_eq!(log.len() as u64, expected);
    let at: HashMap<ChangeHash, u64> = log.iter().map(|(seq, hash)| (*hash, *seq)).collect();
    for (hash, seq) in &acked {
        assert_eq!(at.get(hash), Some(seq), "an acknowledged change is in the log at its seq");
    }

    // The pushes shared commits: fewer commits than pushes.
    let pushes = PUSHERS as u64 * PUSHES;
    let commits = hub.metric("heph_hub_commits_total");
    let grouped = hub.metric("heph_hub_group_batches_sum");
    assert_eq!(grouped, pushes, "every push went through the writer");
    assert!(commits < pushes, "{pushes} concurrent pushes took {commits} commits: none were grouped");
    let alone = hub.metric("heph_hub_group_batches_bucket{le=\"1\"}");
    assert!(alone < commits, "every group held one push");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_during_group_commits_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let port = hub.port;
    let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(pusher(port, 10_000))).collect();
    // Let the groups form, then kill the hub in the middle of them.
    let started = std::time::Instant::now();
    while hub.metric("heph_hub_commits_total") < 50 {
        assert!(started.elapsed() < Duration::from_secs(60), "the hub commits nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| hub.proc.kill9());
    let mut acked = HashMap::new();
    for t in tasks {
        acked.extend(t.await.unwrap().acked);
    }
    assert!(acked.len() > 100, "only {} changes were acknowledged before the kill", acked.len());

    tokio::task::block_in_place(|| hub.restart());
    let log = whole_log(port).await;
    let at: HashMap<ChangeHash, u64> = log.iter().map(|(seq, hash)| (*hash, *seq)).collect();
    assert_eq!(at.len(), log.len(), "no change is logged twice");
    let seqs: Vec<u64> = log.iter().map(|(seq, _)| *seq).collect();
    assert_in_order("the log after the restart", &seqs);
    for (hash, seq) in &acked {
        assert_eq!(at.get(hash), Some(seq), "an acknowledged change survived the kill at its seq");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_are_capped_must_say_hello_in_time_answer_pings_and_push_at_a_bounded_rate() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(
        dir.path(),
        free_port(),
        &["--max-connections", "3", "--hello-timeout", "1", "--ping-interval", "1", "--push-rate", "10"],
    );
    let port = hub.port;

    // Two connections that never say hello, and one that does and keeps reading.
    let mut silent = [connect(port).await, connect(port).await];
    let (mut talker, _) = open(port, 0).await;
    // The cap: a fourth is refused with a reason.
    match tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/sync")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("at most 3 connections"), "{body}");
        }
        other => panic!("a fourth connection should be refused, got {:?}", other.map(|_| ())),
    }
    assert_eq!(hub.metric("heph_hub_connections_refused_total"), 1);

    // The silent ones are told why and closed.
    for ws in &mut silent {
        match next(ws).await {
            Some(HubFrame::Error { message, .. }) => assert!(message.contains("no hello within 1 s"), "{message}"),
            other => panic!("expected an error frame, got {other:?}"),
        }
        assert!(next(ws).await.is_none(), "closed after the error");
    }

    // A connection that reads answers the pings and stays; pushes past the
    // rate (10 changes/s, bursts of 20) are slowed down, not refused.
    let quiet = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(frame) = tokio::time::timeout_at(quiet, talker.next()).await {
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("a reading connection is kept open and sent nothing but pings, got {other:?}"),
        }
    }
    let mut changes = Vec::new();
    while changes.len() < 30 {
        changes.extend(task("rated"));
    }
    for (batch, part) in changes.chunks(10).enumerate() {
        let batch = batch as u64 + 1;
        assert!(send(&mut talker, &push(batch, part)).await);
        loop {
            match next(&mut talker).await {
                Some(HubFrame::Ack { batch: b, .. }) if b == batch => break,
                Some(HubFrame::Changes { .. }) => {}
                other => panic!("expected the ack of batch {batch}, got {other:?}"),
            }
        }
    }
    assert!(hub.metric("heph_hub_pushes_throttled_total") >= 1, "30 changes at once at 10/s were not slowed");

    let timed_out = hub.metric("heph_hub_connections_timed_out_total");
    assert_eq!(timed_out, 2, "the two silent connections");
    drop(talker);

    // A peer that stops reading stops answering pings and is dropped (its
    // slot freed: a new connection is served again).
    let (mut deaf, _) = open(port, 0).await;
    let started = std::time::Instant::now();
    while hub.metric("heph_hub_connections_timed_out_total") == timed_out {
        assert!(started.elapsed() < Duration::from_secs(20), "a peer that answers no ping was not dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while next(&mut deaf).await.is_some() {}
    let (_again, _) = open(port, 0).await;
}
