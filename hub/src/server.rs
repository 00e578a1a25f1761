//! The hub (`--mode server`): HTTP routes, shared state, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use heph_engine::Replica;
use heph_engine::rpc::MAX_REQUEST_BYTES;
use heph_engine::sync::frame::MAX_FRAME_BYTES;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{self, Auth, Denied, Identity, Via};
use crate::config::Config;
use crate::connection;
use crate::forwarded::{Peer, Proxies};
use crate::metrics::Metrics;
use crate::rpc;
use crate::web::{self, WebApp};
use crate::writer::{LiveFrame, Writer};

/// What every connection and request shares.
pub struct Hub {
    /// The owner's replica: its log is the canonical order of changes.
    /// Connections read it directly (read transactions); every write goes
    /// through [`Hub::writer`].
    pub replica: Arc<Replica>,
    /// The one writer: group commits, then broadcasts in seq order.
    pub writer: Writer,
    /// Live fan-out of committed changes, in seq order.
    pub live: broadcast::Sender<Arc<LiveFrame>>,
    /// Connection limits and timers.
    pub limits: Limits,
    /// Free connection slots (`--max-connections`).
    pub slots: Arc<Semaphore>,
    /// Free slots for browser connections that have not authenticated yet
    /// ([`WAITING_AUTH`]): such a connection takes a `--max-connections`
    /// slot only once its `auth` frame is checked, so unauthenticated
    /// peers cannot crowd the owner's devices out.
    pub waiting_auth: Arc<Semaphore>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Cancelled on shutdown; connections close cleanly.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Who may connect.
    pub auth: Auth,
    /// The browser app, for every path no other route takes.
    pub web: WebApp,
    /// When this hub started (`/healthz` and `/metrics` report its age).
    pub started: std::time::Instant,
    /// The live queue's capacity (`--queue`).
    pub queue: usize,
    /// The proxies (`--trusted-proxy`) whose `X-Forwarded-For` names the client.
    pub proxies: Proxies,
    /// Free `/rpc` call slots ([`rpc::MAX_CALLS`]).
    pub rpc_slots: Arc<Semaphore>,
    /// Held by the `/rpc` read that is bringing the search indexes up to
    /// date: the reads behind it wait for that one instead of each queuing
    /// a refresh of its own on the writer.
    pub refreshing: Arc<tokio::sync::Mutex<()>>,
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to the first frame.
    pub hello_timeout: Duration,
    /// Time between pings.
    pub ping_interval: Duration,
    /// Changes per second one connection may push.
    pub push_rate: u32,
    /// The cap on connections.
    pub max_connections: usize,
}

impl Limits {
    /// The limits `cfg` asks for.
    #[must_use]
    pub fn of(cfg: &Config) -> Self {
        Self {
            hello_timeout: Duration::from_secs(cfg.hello_timeout.max(1)),
            ping_interval: Duration::from_secs(cfg.ping_interval.max(1)),
            push_rate: cfg.push_rate.max(1),
            max_connections: cfg.max_connections.max(1),
        }
    }
}

impl Hub {
    /// A hub over `replica`.
    pub fn new(replica: Replica, cfg: &Config) -> Result<Arc<Self>> {
        let replica = Arc::new(replica);
        let (live, _) = broadcast::channel(cfg.queue.max(1));
        let metrics = Arc::new(Metrics::default());
        let web = WebApp::new(cfg.web_root.as_deref(), cfg.oidc_issuer.as_deref())?;
        let audit = auth::Audit::open(&cfg.audit_path()?)?;
        let auth = Auth::new(cfg, replica.store(), audit, metrics.clone())?;
        let writer = Writer::start(replica.clone(), live.clone(), metrics.clone(), cfg.pending_quota())
            .context("starting the writer thread")?;
        let limits = Limits::of(cfg);
        Ok(Arc::new(Self {
            replica,
            writer,
            live,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            waiting_auth: Arc::new(Semaphore::new(WAITING_AUTH)),
            limits,
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            auth,
            web,
            started: std::time::Instant::now(),
            queue: cfg.queue.max(1),
            proxies: Proxies::new(cfg.trusted_proxies.clone()),
            rpc_slots: Arc::new(Semaphore::new(rpc::MAX_CALLS)),
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
        }))
    }

    /// Checks a bearer credential; an unclaimed hub is claimed by the first
    /// identity that presents a valid token.
    pub async fn verify(&self, bearer: &str, via: Via, peer: Peer) -> Result<Identity, Denied> {
        self.auth
            .verify(bearer, via, peer, |sub| async move {
                let claimed = self
                    .writer
                    .call(move |replica| (replica.store().write(|w| auth::settings::claim(w, &sub)), Vec::new()))
                    .await;
                match claimed {
                    Ok(Ok(owner)) => Ok(owner),
                    Ok(Err(e)) | Err(e) => Err(format!("cannot store the hub's owner: {e}")),
                }
            })
            .await
    }

    /// What the store says of itself for `/metrics` and `/healthz`.
    pub fn store_stats(&self) -> Result<StoreStats, heph_engine::Error> {
        Ok(StoreStats {
            head: self.replica.last_seq()?,
            pending: self.replica.pending_stats()?,
            unreadable: self.replica.unreadable_count()?,
            stale: self.replica.stale_count()?,
            cache: self.replica.doc_cache().unwrap_or_default(),
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
    /// Documents whose search indexes (and unreadable mark) are behind.
    pub stale: u64,
    /// What the writer keeps loaded.
    pub cache: heph_engine::DocCacheUse,
}

/// The router, for `serve` and for tests.
pub fn router(hub: Arc<Hub>) -> Router {
    let router = Router::new()
        .route("/sync", any(sync))
        .route("/rpc", post(rpc::http))
        .route("/healthz", get(healthz))
        .route("/config", get(config))
        .route("/metrics", get(metrics))
        // The browser app and its assets: public, like /healthz and /config.
        .fallback(get(web::serve))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), guard));
    // No wildcard, ever: only the origins listed (the hub's own app is
    // same-origin and needs no CORS).
    let origins: Vec<HeaderValue> = hub.auth.cors_origins.iter().filter_map(|o| o.parse().ok()).collect();
    let router = if origins.is_empty() {
        router
    } else {
        router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(3600)),
        )
    };
    router.with_state(hub)
}

/// What every request passes first: who sent it (its [`Peer`], through a
/// trusted proxy or not), the `Host` check of an open hub, the
/// `Origin` check of `/sync`, `/rpc` and `/metrics`, and the bearer of
/// `/rpc` and `/metrics` (`/sync` checks its own, from a header or its first
/// frame). Every other path (`/healthz`, `/config`, the web app) needs none.
async fn guard(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(tcp): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = hub.proxies.peer(tcp, request.headers());
    hub.metrics.peer(peer, request.headers());
    request.extensions_mut().insert(peer);
    let path = request.uri().path().to_string();
    let headers = request.headers();
    if !hub.auth.required() && !auth::host_is_safe(headers.get(header::HOST).and_then(|h| h.to_str().ok())) {
        hub.auth.denied(&Denied::Host, Via::Http, peer, None);
        return refuse(&Denied::Host);
    }
    let api = matches!(path.as_str(), "/sync" | "/rpc" | "/metrics");
    if api && !hub.auth.origin_allowed(headers) {
        let via = if path == "/sync" { Via::SyncHeader } else { Via::Http };
        hub.auth.denied(&Denied::Origin, via, peer, None);
        return refuse(&Denied::Origin);
    }
    if path == "/rpc" || path == "/metrics" {
        let identity = if hub.auth.required() {
            let Some(bearer) = auth::bearer(headers).map(str::to_string) else {
                hub.auth.denied(&Denied::Missing, Via::Http, peer, None);
                return refuse(&Denied::Missing);
            };
            match hub.verify(&bearer, Via::Http, peer).await {
                Ok(identity) => identity,
                Err(denied) => return refuse(&denied),
            }
        } else {
            Identity::open()
        };
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}

/// A refusal: 401 with `WWW-Authenticate`, 403, or 503 while the identity
/// provider cannot be reached.
pub fn refuse(denied: &Denied) -> Response {
    // The identity provider cannot be reached: nothing is wrong with the
    // caller's credentials, so it is told to retry, not to sign in again.
    if matches!(denied, Denied::Unavailable(_)) {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "10")], format!("{denied}\n")).into_response();
    }
    if denied.forbidden() {
        (StatusCode::FORBIDDEN, format!("{denied}\n")).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], format!("{denied}\n")).into_response()
    }
}

async fn sync(
    State(hub): State<Arc<Hub>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // A native client authenticates on the upgrade; a browser, which cannot
    // set headers, with its first frame.
    let identity = if !hub.auth.required() {
        Some(Identity::open())
    } else if let Some(bearer) = auth::bearer(&headers).map(str::to_string) {
        match hub.verify(&bearer, Via::SyncHeader, peer).await {
            Ok(identity) => Some(identity),
            Err(denied) => return refuse(&denied),
        }
    } else {
        None
    };
    // A browser waits for its `auth` frame in a pool of its own.
    let pool = if identity.is_some() { &hub.slots } else { &hub.waiting_auth };
    let Ok(slot) = pool.clone().try_acquire_owned() else {
        Metrics::add(&hub.metrics.refused, 1);
        let message = if identity.is_some() {
            tracing::warn!(%peer, max = hub.limits.max_connections, "connection refused: at --max-connections");
            full(&hub)
        } else {
            tracing::warn!(%peer, max = WAITING_AUTH, "connection refused: too many waiting to authenticate");
            format!("{WAITING_AUTH} connections are already waiting to authenticate; retry later")
        };
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], message).into_response();
    };
    let tracker = hub.tasks.clone();
    // A small read buffer: the default 128 KiB is zero-filled on every read
    // attempt and held per connection, while client frames are mostly small.
    // The transport lets frames up to twice the protocol's limit through, so
    // that one just over it gets an error frame that says so (the session
    // refuses it) rather than a bare reset.
    ws.max_message_size(2 * MAX_FRAME_BYTES)
        .max_frame_size(2 * MAX_FRAME_BYTES)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| tracker.track_future(connection::run(socket, hub, peer, slot, identity)))
}

/// Browser connections that may wait for their `auth` frame at once
/// (each for `--auth-timeout` at most).
pub const WAITING_AUTH: usize = 32;

/// Why a connection is refused at `--max-connections`, for the peer.
pub fn full(hub: &Hub) -> String {
    format!(
        "this hub serves at most {} connections at once and all are in use; retry later \
         (the hub's operator can raise --max-connections)",
        hub.limits.max_connections
    )
}

/// How long `/healthz` waits for the writer to show the store takes writes.
const WRITABLE_WITHIN: Duration = Duration::from_secs(2);

/// Whether the hub can take writes now: the writer thread answers within
/// [`WRITABLE_WITHIN`] (between groups, so a busy writer is not a failure)
/// and the store can start a write transaction.
async fn writable(hub: &Hub) -> Result<(), String> {
    let probe = hub.writer.call(|replica| (replica.store().check_writable(), Vec::new()));
    match tokio::time::timeout(WRITABLE_WITHIN, probe).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e)) | Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the writer did not answer within {} s", WRITABLE_WITHIN.as_secs())),
    }
}

/// Health for load balancers and service managers: 200 when the store reads
/// and takes writes, 503 with the reason otherwise. Public, like `/config`.
async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    let stats = tokio::task::block_in_place(|| hub.store_stats());
    let writable = writable(&hub).await;
    let mut body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": hub.started.elapsed().as_secs(),
        "hub": hub.replica.origin().to_hex_string(),
        "writable": writable.is_ok(),
        "connections": hub.metrics.connections.load(std::sync::atomic::Ordering::Relaxed),
    });
    let mut problems = Vec::new();
    match stats {
        Ok(stats) => {
            body["head"] = stats.head.into();
            body["pending_changes"] = stats.pending.count.into();
            body["unreadable"] = stats.unreadable.into();
        }
        Err(e) => problems.push(format!("the store cannot be read: {e}")),
    }
    if let Err(e) = writable {
        problems.push(format!("the store does not take writes: {e}"));
    }
    if problems.is_empty() {
        return axum::Json(body).into_response();
    }
    tracing::error!(problems = ?problems, "health check failed");
    body["status"] = "unavailable".into();
    body["problems"] = problems.into();
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// What a browser needs to sign in: public, like `/healthz`.
async fn config(State(hub): State<Arc<Hub>>) -> Response {
    axum::Json(serde_json::json!({
        "auth": hub.auth.required(),
        "issuer": hub.auth.issuer(),
        "client_id": hub.auth.client_id,
        "audience": hub.auth.audience(),
    }))
    .into_response()
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let stats = tokio::task::block_in_place(|| hub.store_stats()).unwrap_or_default();
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let fanout = crate::metrics::FanOut {
        subscribers: hub.live.receiver_count() as u64,
        deepest: hub.live.len() as u64,
        capacity: hub.queue as u64,
    };
    let text = hub.metrics.render(&stats, fanout, hub.started.elapsed(), now_ms);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Listens on `addr` with room for a reconnect storm: every device of an
/// owner reconnecting at once after the hub restarts (the kernel caps the
/// backlog at `net.core.somaxconn`).
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Documents the writer keeps loaded between commits.
const CACHED_DOCS: usize = 1024;

/// Runs the hub until SIGTERM or Ctrl-C.
pub async fn run(cfg: Config) -> Result<()> {
    cfg.check_exposure()?;
    let path = cfg.db_path()?;
    let cache = cfg.cache_mb.max(1).saturating_mul(1 << 20);
    let mut replica =
        Replica::open_with_cache(&path, cache).with_context(|| format!("opening the hub store {}", path.display()))?;
    replica.set_hub_mode(CACHED_DOCS, cfg.doc_cache_mb.saturating_mul(1 << 20));
    // Browsers bootstrap from the hub's readings of its documents; a store
    // from before they were kept gets them in the background.
    let unread = replica.stale_without_views().context("marking documents to read for browsers")?;
    if unread > 0 {
        tracing::info!(documents = unread, "reading documents for browsers in the background");
    }
    let hub = Hub::new(replica, &cfg)?;
    if hub.auth.required() {
        hub.auth.warm_up().await;
    } else if !cfg.http_addr.ip().is_loopback() {
        tracing::warn!(
            addr = %cfg.http_addr,
            "SERVING WITHOUT AUTHENTICATION ON A NON-LOOPBACK ADDRESS (--insecure-no-auth): anyone who can reach \
             this address can read and change everything in this hub. Use it only behind a proxy that authenticates."
        );
    }
    crate::token::serve_admin(hub.clone(), &path).await?;
    let listener = listen(cfg.http_addr).with_context(|| format!("cannot listen on {}", cfg.http_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %path.display(), hub = %hub.replica.origin().to_hex_string(), "hub listening");
    if hub.web.available() {
        tracing::info!(web = %hub.web.describe(), "serving the web app at /");
    } else {
        tracing::warn!("the web app is {}", hub.web.describe());
    }
    let shutdown = hub.shutdown.clone();
    tokio::spawn(crate::unix::on_signal(shutdown.clone()));
    let head_timeout = Duration::from_secs(cfg.request_timeout.max(1));
    crate::serve::serve(listener, router(hub.clone()), head_timeout, shutdown).await;
    // Upgraded WebSocket connections are not tracked by axum: wait for ours.
    hub.tasks.close();
    hub.tasks.wait().await;
    // Every connection is gone: the writer finishes what it holds.
    let closing = hub.clone();
    tokio::task::spawn_blocking(move || closing.writer.close()).await.context("closing the writer")?;
    tracing::info!("hub stopped; every acknowledged change is on disk");
    Ok(())
}
