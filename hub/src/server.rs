//! The hub (`--mode server`): HTTP routes, shared state, graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use heph_engine::Replica;
use heph_engine::rpc::MAX_REQUEST_BYTES;
use heph_engine::sync::frame::MAX_FRAME_BYTES;
use heph_engine::sync::hub::Broadcast;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::CorsLayer;

use crate::config::Config;
use crate::connection;
use crate::metrics::Metrics;
use crate::rpc;

/// What every connection and request shares.
pub struct Hub {
    /// The owner's replica: its log is the canonical order of changes.
    pub replica: Replica,
    /// The most received changes that may wait for their dependencies.
    pub max_pending: u64,
    /// Live fan-out of committed changes, in seq order.
    pub live: broadcast::Sender<Arc<Broadcast>>,
    /// Serialises "commit, then broadcast" so broadcasts leave in seq order.
    pub write_lock: Mutex<()>,
    /// Counters.
    pub metrics: Metrics,
    /// Cancelled on shutdown; connections close cleanly.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Hub {
    /// Runs a write against the replica and broadcasts what it logged, under
    /// the write lock. `f` returns its result and the changes it logged.
    pub fn write<T>(&self, f: impl FnOnce(&Replica) -> (T, Vec<Broadcast>)) -> T {
        let _guard = self.write_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (out, broadcast) = f(&self.replica);
        for b in broadcast {
            // No subscribers is not an error.
            let _ = self.live.send(Arc::new(b));
        }
        out
    }

    /// What the store says of itself for `/metrics` and `/healthz`.
    pub fn store_stats(&self) -> Result<StoreStats, heph_engine::Error> {
        Ok(StoreStats {
            head: self.replica.last_seq()?,
            pending: self.replica.pending_stats()?,
            unreadable: self.replica.unreadable_count()?,
        })
    }
}

/// The store's own figures, read in a few read transactions.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreStats {
    /// The last seq of the log.
    pub head: u64,
    /// Received changes waiting for their dependencies.
    pub pending: heph_engine::store::PendingStats,
    /// Documents that do not read as nodes.
    pub unreadable: u64,
}

/// The router, for `serve` and for tests.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/sync", any(sync))
        .route("/rpc", post(rpc::http))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(get(web_shell))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(CorsLayer::permissive())
        .with_state(hub)
}

async fn sync(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let tracker = hub.tasks.clone();
    // A small read buffer: the default 128 KiB is zero-filled on every read
    // attempt and held per connection, while client frames are mostly small.
    // The transport lets frames up to twice the protocol's limit through, so
    // that one just over it gets an error frame that says so (the session
    // refuses it) rather than a bare reset.
    ws.max_message_size(2 * MAX_FRAME_BYTES)
        .max_frame_size(2 * MAX_FRAME_BYTES)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| tracker.track_future(connection::run(socket, hub, peer)))
}

async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    let stats = tokio::task::block_in_place(|| hub.store_stats());
    match stats {
        Ok(stats) => axum::Json(serde_json::json!({
            "status": "ok",
            "hub": hub.replica.origin().to_hex_string(),
            "head": stats.head,
            "pending_changes": stats.pending.count,
            "unreadable": stats.unreadable,
            "connections": hub.metrics.connections.load(std::sync::atomic::Ordering::Relaxed),
        }))
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store error: {e}")).into_response(),
    }
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let stats = tokio::task::block_in_place(|| hub.store_stats()).unwrap_or_default();
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], hub.metrics.render(&stats, now_ms)).into_response()
}

const SHELL: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>heph</title></head>
<body><h1>heph hub</h1><p>This hub syncs heph replicas over <code>/sync</code>.
Health: <a href=\"/healthz\">/healthz</a>.</p></body></html>
";

async fn web_shell() -> Html<&'static str> {
    Html(SHELL)
}

/// Runs the hub until SIGTERM or Ctrl-C.
pub async fn run(cfg: Config) -> Result<()> {
    cfg.check_exposure()?;
    let path = cfg.db_path()?;
    let replica = Replica::open(&path).with_context(|| format!("opening the hub store {}", path.display()))?;
    let (live, _) = broadcast::channel(cfg.queue.max(1));
    let hub = Arc::new(Hub {
        max_pending: cfg.max_pending,
        replica,
        live,
        write_lock: Mutex::new(()),
        metrics: Metrics::default(),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.http_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %path.display(), hub = %hub.replica.origin().to_hex_string(), "hub listening");
    let shutdown = hub.shutdown.clone();
    let app = router(hub.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Frames are small and latency matters: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serving = axum::serve(listener, app).with_graceful_shutdown({
        let shutdown = shutdown.clone();
        async move { shutdown.cancelled().await }
    });
    tokio::spawn(crate::unix::on_signal(shutdown.clone()));
    serving.await.context("serving HTTP")?;
    // Upgraded WebSocket connections are not tracked by axum: wait for ours.
    hub.tasks.close();
    hub.tasks.wait().await;
    tracing::info!("hub stopped; every acknowledged change is on disk");
    Ok(())
}
