//! `POST /rpc`: the replica API (JSON-RPC 2.0) over HTTP, for thin clients.
//! Writes go through the hub's writer and are fanned out like pushes; at most
//! [`MAX_CALLS`] calls are served at once.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use heph_engine::rpc::{self, Response as RpcResponse};
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::Identity;
use crate::metrics::Metrics;
use crate::server::Hub;

/// The most `/rpc` calls served at once; more are answered with HTTP 503
/// (and `Retry-After`) until some finish. Each holds its request body and
/// may hold a job on the writer's queue: this bounds both.
pub const MAX_CALLS: usize = 64;

/// Handles one JSON-RPC request body.
pub async fn http(State(hub): State<Arc<Hub>>, Extension(identity): Extension<Identity>, body: Bytes) -> Response {
    Metrics::add(&hub.metrics.rpc_calls, 1);
    let Ok(slot) = hub.rpc_slots.clone().try_acquire_owned() else {
        Metrics::add(&hub.metrics.rpc_errors, 1);
        let message = format!("the hub is serving {MAX_CALLS} calls at once; retry in a moment");
        let busy = RpcResponse::of(serde_json::Value::Null, Err(rpc::RpcError::new(rpc::code::UNAVAILABLE, message)));
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(busy)).into_response();
    };
    let response = call(&hub, &identity, body, slot).await;
    if response.error.is_some() {
        Metrics::add(&hub.metrics.rpc_errors, 1);
    }
    axum::Json(response).into_response()
}

/// Runs one request body against the hub's replica: reads beside the
/// writer, writes on the writer's thread (then broadcast like pushes).
/// `slot` is the call's place among [`MAX_CALLS`]: a write holds it until
/// the writer is done with it, even when the caller has gone.
pub async fn call(hub: &Hub, identity: &Identity, body: Bytes, slot: OwnedSemaphorePermit) -> RpcResponse {
    let envelope = match rpc::parse(&body) {
        Ok(e) => e,
        Err(response) => return response,
    };
    let id = envelope.id;
    // Undo reverts the last change made where it runs: on a hub that would be
    // the hub's own RPC writes, never what a device wrote.
    if matches!(envelope.request, rpc::Request::UndoPlan | rpc::Request::Undo { .. }) {
        let message = "undo reverts a device's own last change: run heph undo on that device";
        return RpcResponse::of(id, Err(rpc::RpcError::new(rpc::code::INVALID_REQUEST, message)));
    }
    if rpc::writes(&envelope.request) && !identity.can_write() {
        let message = format!("{} may only read: this method writes", identity.label());
        return RpcResponse::of(id, Err(rpc::RpcError::new(rpc::code::FORBIDDEN, message)));
    }
    if !rpc::writes(&envelope.request) {
        // Pushes leave the search indexes behind: reads see every change
        // the hub acknowledged.
        let stale = || tokio::task::block_in_place(|| hub.replica.stale_count()).unwrap_or(1) > 0;
        if stale() {
            // One refresh at a time: a read that waited finds most of the
            // work done by the one before it.
            let refreshing = hub.refreshing.clone().lock_owned().await;
            if stale() {
                let fresh = hub
                    .writer
                    .call(move |replica| {
                        // The gate is held until the refresh is done, even
                        // when this caller has gone.
                        let _refreshing = refreshing;
                        (replica.refresh_stale(usize::MAX), Vec::new())
                    })
                    .await;
                if let Err(e) = fresh.and_then(|r| r) {
                    return RpcResponse::of(id, Err(e.into()));
                }
            }
        }
        return tokio::task::block_in_place(|| RpcResponse::of(id, rpc::dispatch(&hub.replica, envelope.request)));
    }
    let outcome = hub
        .writer
        .call(move |replica| {
            let _slot = slot;
            let before = replica.last_seq().unwrap_or(0);
            let outcome = rpc::dispatch(replica, envelope.request);
            let logged = replica.changes_after(before, usize::MAX).unwrap_or_default();
            (outcome, logged)
        })
        .await;
    match outcome {
        Ok(outcome) => RpcResponse::of(id, outcome),
        Err(e) => RpcResponse::of(id, Err(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use heph_engine::{Node, NodeId, NodeKind, Replica};

    fn hub(dir: &tempfile::TempDir) -> Arc<Hub> {
        let db = dir.path().join("hub.db");
        let cfg = crate::config::Config::parse_from(["hephd", "--db", db.to_str().expect("a UTF-8 path")]);
        let mut replica = Replica::open(&db).expect("the hub store");
        replica.set_hub_mode(16, usize::MAX);
        Hub::new(replica, &cfg).expect("a hub")
    }

    fn list() -> Bytes {
        let filter = heph_engine::Filter::default();
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "list", "params": {"filter": filter, "now": chrono::Utc::now()}});
        Bytes::from(serde_json::to_vec(&body).expect("JSON"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_past_the_limit_is_refused_with_a_retry_after() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let hub = hub(&dir);
        let held =
            hub.rpc_slots.try_acquire_many(u32::try_from(MAX_CALLS).expect("a small limit")).expect("free slots");
        let refused = http(State(hub.clone()), Extension(Identity::open()), list()).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"1"[..]));
        let body = axum::body::to_bytes(refused.into_body(), 1 << 20).await.expect("the body");
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("a JSON-RPC answer");
        assert_eq!(answer["error"]["code"], rpc::code::UNAVAILABLE, "{answer}");
        drop(held);
        let served = http(State(hub.clone()), Extension(Identity::open()), list()).await;
        assert_eq!(served.status(), StatusCode::OK);
        hub.writer.close();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_at_once_share_one_refresh_and_see_every_acknowledged_change() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let hub = hub(&dir);
        let device = Replica::in_memory().expect("an in-memory store");
        for round in 0..5 {
            // Received changes leave the indexes behind (hub mode).
            for i in 0..20 {
                let node = Node::new(NodeId::random(), NodeKind::Task, format!("r{round} t{i}"), chrono::Utc::now());
                device.create(&node, &[], "add").expect("a task");
            }
            let changes = device.changes_after(0, usize::MAX).expect("the device's log");
            let batch = heph_engine::replica::parse_changes(changes.into_iter().map(|c| (c.doc, c.bytes)).collect())
                .expect("its changes");
            hub.replica.apply_group(vec![batch], None).expect("stored").into_iter().for_each(|o| {
                o.expect("stored");
            });
            assert!(hub.replica.stale_count().expect("a count") > 0);
            // How many jobs wait for the writer at most while the reads run:
            // one refresh, the others waiting for it rather than queuing theirs.
            let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let sampler = {
                let (hub, busy) = (hub.clone(), busy.clone());
                tokio::spawn(async move {
                    let mut most = 0;
                    while busy.load(std::sync::atomic::Ordering::Relaxed) {
                        most = most.max(hub.metrics.writer_queue.load(std::sync::atomic::Ordering::Relaxed));
                        tokio::task::yield_now().await;
                    }
                    most
                })
            };
            let reads: Vec<_> = (0..16)
                .map(|_| {
                    let body = list();
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        let slot = hub.rpc_slots.clone().try_acquire_owned().expect("a free slot");
                        call(&hub, &Identity::open(), body, slot).await
                    })
                })
                .collect();
            for read in reads {
                let answer = read.await.expect("the read");
                let rows = answer.result.expect("rows");
                assert_eq!(rows.as_array().map(Vec::len), Some(20 * (round + 1)), "round {round}");
            }
            busy.store(false, std::sync::atomic::Ordering::Relaxed);
            assert!(sampler.await.expect("the sampler") <= 1, "round {round}: reads queued refreshes of their own");
        }
        hub.writer.close();
    }
}
