//! `POST /rpc`: the replica API (JSON-RPC 2.0) over HTTP, for thin clients.
//! Writes go through the hub's write lock and are fanned out like pushes.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use heph_engine::rpc::{self, Response as RpcResponse};

use crate::auth::Identity;
use crate::metrics::Metrics;
use crate::server::Hub;

/// Handles one JSON-RPC request body.
pub async fn http(State(hub): State<Arc<Hub>>, Extension(identity): Extension<Identity>, body: Bytes) -> Response {
    Metrics::add(&hub.metrics.rpc_calls, 1);
    let response = call(&hub, &identity, body).await;
    if response.error.is_some() {
        Metrics::add(&hub.metrics.rpc_errors, 1);
    }
    axum::Json(response).into_response()
}

/// Runs one request body against the hub's replica: reads beside the
/// writer, writes on the writer's thread (then broadcast like pushes).
pub async fn call(hub: &Hub, identity: &Identity, body: Bytes) -> RpcResponse {
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
        if tokio::task::block_in_place(|| hub.replica.stale_count()).unwrap_or(1) > 0 {
            let fresh = hub.writer.call(|replica| (replica.refresh_stale(usize::MAX), Vec::new())).await;
            if let Err(e) = fresh.and_then(|r| r) {
                return RpcResponse::of(id, Err(e.into()));
            }
        }
        return tokio::task::block_in_place(|| RpcResponse::of(id, rpc::dispatch(&hub.replica, envelope.request)));
    }
    let outcome = hub
        .writer
        .call(move |replica| {
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
