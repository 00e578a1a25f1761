//! `POST /rpc`: the replica API (JSON-RPC 2.0) over HTTP, for thin clients.
//! Writes go through the hub's write lock and are fanned out like pushes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use heph_engine::rpc::{self, Response as RpcResponse};
use heph_engine::sync::hub::Broadcast;

use crate::metrics::Metrics;
use crate::server::Hub;

/// Handles one JSON-RPC request body.
pub async fn http(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    Metrics::add(&hub.metrics.rpc_calls, 1);
    let response = tokio::task::block_in_place(|| call(&hub, &body));
    if response.error.is_some() {
        Metrics::add(&hub.metrics.rpc_errors, 1);
    }
    axum::Json(response).into_response()
}

/// Runs one request body against the hub's replica.
pub fn call(hub: &Hub, body: &[u8]) -> RpcResponse {
    let envelope = match rpc::parse(body) {
        Ok(e) => e,
        Err(response) => return response,
    };
    let id = envelope.id;
    if !rpc::writes(&envelope.request) {
        return RpcResponse::of(id, rpc::dispatch(&hub.replica, envelope.request));
    }
    let outcome = hub.write(|replica| {
        let before = replica.last_seq().unwrap_or(0);
        let outcome = rpc::dispatch(replica, envelope.request);
        let logged = replica.changes_after(before, usize::MAX).unwrap_or_default();
        (outcome, Broadcast::of(&logged))
    });
    RpcResponse::of(id, outcome)
}
