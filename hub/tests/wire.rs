//! The hub's `/sync` endpoint driven by plain WebSocket clients, as a
//! browser would: live subscription, bad frames, a dropped catch-up, a
//! subscriber that stops reading, and shutdown.

mod common;

use std::time::Duration;

use common::ws::{Ws, hello, next};
use common::{Device, Hub, eventually};
use futures_util::{SinkExt, StreamExt};
use heph_engine::sync::frame::{Bytes, ClientFrame, ErrorCode, HubFrame, WireChange, encode};
use heph_engine::{Node, NodeDoc, NodeId, NodeKind};
use tokio_tungstenite::tungstenite::Message;

async fn connect(hub: &Hub) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/sync", hub.port)).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, frame: &ClientFrame) {
    ws.send(Message::Text(encode(frame).into())).await.unwrap();
}

/// Reads welcome and the catch-up; returns the head and the last seq seen.
async fn catch_up(ws: &mut Ws) -> (u64, u64) {
    let Some(HubFrame::Welcome { head, .. }) = next(ws).await else { panic!("expected welcome") };
    let mut last = 0;
    while last < head {
        match next(ws).await {
            Some(HubFrame::Changes { changes, .. }) => last = changes.last().and_then(|c| c.seq).unwrap(),
            other => panic!("expected changes, got {other:?}"),
        }
    }
    (head, last)
}

/// A new task as a client pushes it: its genesis, then its content.
fn change(title: &str) -> Vec<WireChange> {
    let node = Node::new(NodeId::random(), NodeKind::Task, title.into(), chrono::Utc::now());
    let (_, changes) = NodeDoc::create(&node, &automerge::ActorId::random(), "add").unwrap();
    changes.iter().map(|c| WireChange { seq: None, doc: node.id, bytes: Bytes(c.raw_bytes().to_vec()) }).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_shaped_client_subscribes_and_receives_live_changes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut a = Device::new(dir.path(), "a");
    a.start(&hub.url());
    tokio::task::block_in_place(|| a.ok(&["add", "Existing"]));
    tokio::task::block_in_place(|| a.ok(&["sync"]));

    let mut ws = connect(&hub).await;
    send(&mut ws, &hello(0)).await;
    let (head, last) = catch_up(&mut ws).await;
    // A new task is two changes: its genesis and its content.
    assert_eq!((head, last), (2, 2));

    tokio::task::block_in_place(|| a.ok(&["add", "Live", "one"]));
    // The task's genesis and content, in one frame or two.
    let mut doc = automerge::Automerge::new();
    let mut seqs = Vec::new();
    while automerge::ReadDoc::get(&doc, automerge::ROOT, "title").unwrap().is_none() {
        match next(&mut ws).await {
            Some(HubFrame::Changes { changes, .. }) => {
                for c in &changes {
                    seqs.push(c.seq);
                    doc.apply_changes([automerge::Change::from_bytes(c.bytes.0.clone()).unwrap()]).unwrap();
                }
            }
            other => panic!("expected a live change, got {other:?}"),
        }
    }
    assert_eq!(seqs, [Some(3), Some(4)]);
    let title = automerge::ReadDoc::get(&doc, automerge::ROOT, "title").unwrap().unwrap().0.to_string();
    assert!(title.contains("Live one"), "{title}");
    // And a push from this client reaches the device.
    send(&mut ws, &ClientFrame::Push { batch: 1, changes: change("From the browser") }).await;
    loop {
        match next(&mut ws).await {
            Some(HubFrame::Ack { batch: 1, seqs, .. }) => {
                assert_eq!(seqs, vec![5, 6]);
                break;
            }
            Some(HubFrame::Changes { .. }) => {} // its own change, echoed live
            other => panic!("expected an ack, got {other:?}"),
        }
    }
    eventually(10, "the device to receive the browser's task", || {
        tokio::task::block_in_place(|| a.titles(&[])).contains(&"From the browser".to_string())
    });
}

async fn expect_error(ws: &mut Ws, code: ErrorCode) {
    match next(ws).await {
        Some(HubFrame::Error { code: got, close: true, .. }) => assert_eq!(got, code),
        other => panic!("expected error {code:?}, got {other:?}"),
    }
    assert!(next(ws).await.is_none(), "the hub closes after a fatal error");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_frames_close_that_connection_only_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    // A healthy subscriber watches throughout.
    let mut watcher = connect(&hub).await;
    send(&mut watcher, &hello(0)).await;
    catch_up(&mut watcher).await;

    let mut ws = connect(&hub).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    expect_error(&mut ws, ErrorCode::BadFrame).await;

    let mut ws = connect(&hub).await;
    send(&mut ws, &ClientFrame::Push { batch: 1, changes: vec![] }).await;
    expect_error(&mut ws, ErrorCode::Protocol).await;

    let mut ws = connect(&hub).await;
    send(
        &mut ws,
        &ClientFrame::Hello { version: 0, origin: "x".into(), cursor: 0, bootstrap: false, views: false, known: None },
    )
    .await;
    expect_error(&mut ws, ErrorCode::UnsupportedVersion).await;

    let mut ws = connect(&hub).await;
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    expect_error(&mut ws, ErrorCode::BadFrame).await;

    let mut ws = connect(&hub).await;
    send(&mut ws, &hello(0)).await;
    catch_up(&mut ws).await;
    let mut changes = change("valid");
    changes.push(WireChange { seq: None, doc: NodeId::random(), bytes: Bytes(vec![0x85, 0x6f, 0x4a, 0x83, 9, 9, 9]) });
    send(&mut ws, &ClientFrame::Push { batch: 1, changes }).await;
    expect_error(&mut ws, ErrorCode::InvalidChange).await;
    assert_eq!(hub.head(), 0, "nothing partial stored");

    // Oversized: the WebSocket layer refuses it and closes.
    let mut ws = connect(&hub).await;
    let huge = "x".repeat(9 * 1024 * 1024);
    let _ = ws.send(Message::Text(huge.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "an oversized frame closes the connection");

    // The watcher is still served.
    let mut writer = connect(&hub).await;
    send(&mut writer, &hello(0)).await;
    catch_up(&mut writer).await;
    send(&mut writer, &ClientFrame::Push { batch: 7, changes: change("after the bad ones") }).await;
    match next(&mut watcher).await {
        Some(HubFrame::Changes { changes, .. }) => assert_eq!(changes[0].seq, Some(1)),
        other => panic!("the watcher should still receive live changes, got {other:?}"),
    }
    assert!(hub.metric("heph_hub_error_frames_total{code=\"bad_frame\"}") >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_catch_up_resumes_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let mut writer = connect(&hub).await;
    send(&mut writer, &hello(0)).await;
    catch_up(&mut writer).await;
    // 6000 changes (two per task): catch-up frames are filled to 1 MiB, so
    // this takes several.
    for batch in 0..12 {
        let changes = (0..250).flat_map(|i| change(&format!("t{batch}-{i}"))).collect();
        send(&mut writer, &ClientFrame::Push { batch, changes }).await;
    }
    eventually(60, "the hub to store 6000 changes", || hub.head() == 6000);

    let mut ws = connect(&hub).await;
    send(&mut ws, &hello(0)).await;
    let Some(HubFrame::Welcome { head, .. }) = next(&mut ws).await else { panic!() };
    assert_eq!(head, 6000);
    let Some(HubFrame::Changes { changes, .. }) = next(&mut ws).await else { panic!() };
    let cursor = changes.last().unwrap().seq.unwrap();
    assert!(cursor > 0 && cursor < 6000, "one frame of several: {cursor}");
    drop(ws); // the connection drops mid catch-up

    let mut ws = connect(&hub).await;
    send(&mut ws, &hello(cursor)).await;
    let Some(HubFrame::Welcome { .. }) = next(&mut ws).await else { panic!() };
    let mut seqs = Vec::new();
    while seqs.last() != Some(&6000) {
        let Some(HubFrame::Changes { changes, .. }) = next(&mut ws).await else { panic!() };
        seqs.extend(changes.iter().map(|c| c.seq.unwrap()));
    }
    assert_eq!(seqs, (cursor + 1..=6000).collect::<Vec<_>>(), "exactly the rest, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_stops_reading_is_dropped_and_others_keep_up() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), common::free_port(), &["--queue", "4"]);
    let mut stalled = connect(&hub).await;
    send(&mut stalled, &hello(0)).await;
    let Some(HubFrame::Welcome { .. }) = next(&mut stalled).await else { panic!() };
    let mut healthy = connect(&hub).await;
    send(&mut healthy, &hello(0)).await;
    catch_up(&mut healthy).await;
    let mut writer = connect(&hub).await;
    send(&mut writer, &hello(0)).await;
    catch_up(&mut writer).await;

    // The stalled client never reads again; the writer pushes ~20 MB of changes.
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < 4000 {
            match next(&mut healthy).await {
                Some(HubFrame::Changes { changes, .. }) => seen += changes.len(),
                other => panic!("healthy subscriber got {other:?}"),
            }
        }
        seen
    });
    for batch in 0..40 {
        // ~5 KB titles: the stalled socket's kernel buffers fill quickly.
        let changes = (0..50).flat_map(|i| change(&format!("{batch}-{i} {}", "x".repeat(5000)))).collect();
        send(&mut writer, &ClientFrame::Push { batch, changes }).await;
        // Let acks flow so the writer is not the slow one.
        loop {
            match next(&mut writer).await {
                Some(HubFrame::Ack { .. }) => break,
                Some(HubFrame::Changes { .. }) => {}
                other => panic!("writer got {other:?}"),
            }
        }
    }
    assert_eq!(reader.await.unwrap(), 4000, "the healthy subscriber got everything");
    eventually(30, "the stalled subscriber to be dropped", || hub.metric("heph_hub_dropped_slow_total") >= 1);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_connections_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(dir.path());
    let mut ws = connect(&hub).await;
    send(&mut ws, &hello(0)).await;
    catch_up(&mut ws).await;
    let status = tokio::task::block_in_place(|| hub.proc.stop());
    assert!(status.success(), "{status}");
    let close = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap();
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame 1001, got {other:?}"),
    }
}

/// A peer that connects and never finishes a request (a slow-headers
/// attack, or a stuck client) is disconnected once the hub's deadline for
/// a request's head passes, holding nothing; requests that do finish are
/// served meanwhile.
#[test]
fn a_request_never_finished_is_cut_off() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(dir.path(), common::free_port(), &["--request-timeout", "3"]);
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", hub.port)).unwrap();
    let mut partial = std::net::TcpStream::connect(("127.0.0.1", hub.port)).unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    assert_eq!(hub.health()["status"], "ok", "a finished request is served meanwhile");
    for (what, stream) in [("an idle connection", &mut idle), ("a half-sent request", &mut partial)] {
        // Well past the hub's 3 s deadline; a hub without one never closes it.
        stream.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut buf = [0u8; 256];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("{what}: got {:?} instead of a close", String::from_utf8_lossy(&buf[..n])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => {}
            Err(e) => panic!("{what} was not closed: {e}"),
        }
    }
}
