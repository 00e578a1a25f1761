//! A device's daemon (`--mode local`): owns the replica, serves the API on a
//! unix socket, and keeps the replica in sync with the hub.
//!
//! The sync loop runs one session at a time ([`SpokeSession`] decides, this
//! file moves frames). A failed session is retried with jittered exponential
//! backoff; `heph sync` cuts the wait short. Local writes made through the
//! socket are pushed as soon as they commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use heph_engine::Replica;
use heph_engine::rpc::{self, Response as RpcResponse, RpcError};
use heph_engine::sync::SyncHealth;
use heph_engine::sync::frame::{ErrorCode, encode};
use heph_engine::sync::spoke::{SpokeSession, SyncError};
use heph_hub::login;
use heph_hub::tls::{self, Trust};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, hub_endpoints};
use crate::unix;

/// How long `heph sync` waits for a full cycle.
const SYNC_NOW_TIMEOUT: Duration = Duration::from_secs(15);
/// Backoff bounds between failed sessions.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Keep-alive ping interval.
const PING_EVERY: Duration = Duration::from_secs(20);

/// State shared by the socket server and the sync loop.
struct Daemon {
    replica: Replica,
    hub_url: String,
    /// The authorities a `wss://` hub's (and the provider's) certificate is checked against.
    trust: Trust,
    /// A local write committed: push it.
    local_change: Notify,
    /// `heph sync`: stop waiting and connect now.
    wake: Notify,
    /// Bumped each time the device is fully in sync.
    synced: watch::Sender<u64>,
    health: Mutex<SyncHealth>,
    /// A restore is about to replace the replica: end the sync session.
    end_session: Notify,
    /// Held (read) by the sync session while it runs; a restore takes it
    /// (write), so it never replaces the replica under a session whose
    /// in-flight pushes and cursors belong to the replica as it was.
    session_gate: tokio::sync::RwLock<()>,
}

impl Daemon {
    fn health(&self) -> SyncHealth {
        let h = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        tokio::task::block_in_place(|| h.clone().with_store(&self.replica)).unwrap_or(h)
    }

    fn update(&self, f: impl FnOnce(&mut SyncHealth)) {
        f(&mut self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

/// Runs the device daemon until SIGTERM or Ctrl-C.
pub async fn run(cfg: Config) -> Result<()> {
    let hub_url = cfg.hub_url()?.to_string();
    let (ws_url, _) = hub_endpoints(&hub_url)?;
    let trust = Trust::load(cfg.ca_file.as_deref())?;
    let path = cfg.db_path()?;
    // The socket first, the store second: from the moment the store is
    // ours, `heph` can no longer open it, so it must already find the
    // socket. A command that connects before the store is open waits in
    // the socket's backlog until the accept loop below starts.
    let socket_path = cfg.socket_path()?;
    let socket = unix::bind(&socket_path).await?;
    let replica = open_replica(&path).await?;
    let (synced, _) = watch::channel(0);
    let daemon = Arc::new(Daemon {
        replica,
        hub_url: hub_url.clone(),
        trust,
        local_change: Notify::new(),
        wake: Notify::new(),
        synced,
        health: Mutex::new(SyncHealth { daemon: true, hub_url: Some(hub_url), offline: true, ..SyncHealth::default() }),
        end_session: Notify::new(),
        session_gate: tokio::sync::RwLock::new(()),
    });
    tracing::info!(store = %path.display(), socket = %socket_path.display(), hub = %ws_url, "device daemon running");
    let stop = CancellationToken::new();
    tokio::spawn(unix::on_signal(stop.clone()));
    let sync = tokio::spawn(sync_loop(daemon.clone(), ws_url, stop.clone()));
    tokio::spawn(fill_readings(daemon.clone(), stop.clone()));
    let server = {
        let daemon = daemon.clone();
        unix::serve(socket, stop.clone(), move |body| {
            let daemon = daemon.clone();
            async move { handle(&daemon, &body).await }
        })
    };
    server.await;
    let _ = sync.await;
    tracing::info!("device daemon stopped");
    Ok(())
}

/// Documents a store reads from per write while filling readings.
const FILL_BATCH: usize = 64;

/// Gives a store written before every store kept readings (see
/// `heph_engine::store`) the reading of each node, a batch per write in
/// the background, so `heph show` and `heph export` stop loading documents.
async fn fill_readings(daemon: Arc<Daemon>, stop: CancellationToken) {
    let marked = match tokio::task::block_in_place(|| daemon.replica.stale_without_views()) {
        Ok(0) => return,
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not look for documents without a stored reading");
            return;
        }
    };
    tracing::info!(documents = marked, "storing readings of documents in the background");
    while !stop.is_cancelled() {
        match tokio::task::block_in_place(|| daemon.replica.refresh_stale(FILL_BATCH)) {
            Ok(n) if n == FILL_BATCH => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(_) => {
                tracing::info!(documents = marked, "every document has its stored reading");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not store readings; the next start tries again");
                return;
            }
        }
    }
}

/// How long the daemon waits for a `heph` command that has the store open
/// (one that started before the daemon's socket existed) to finish with it.
const STORE_WAIT: Duration = Duration::from_secs(30);

/// Opens the replica, waiting while another process (a `heph` command run
/// by hand) holds it.
async fn open_replica(path: &std::path::Path) -> Result<Replica> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    let mut told = false;
    loop {
        let opened = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || Replica::open(&path)).await.context("opening the replica")?
        };
        match opened {
            Err(heph_engine::OpenError::Locked { .. }) if started.elapsed() < STORE_WAIT => {
                if !told && started.elapsed() > Duration::from_secs(1) {
                    tracing::info!(store = %path.display(), "waiting for another heph process to finish with the store");
                    told = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            opened => return opened.with_context(|| format!("opening the replica {}", path.display())),
        }
    }
}

/// The methods a device daemon answers itself, beside the API the hub's
/// `/rpc` serves too: they are about this device's replica.
pub const DEVICE_METHODS: [&str; 6] = ["sync_status", "sync_now", "census", "backup", "restore", "check"];

/// One request from `heph`.
async fn handle(daemon: &Arc<Daemon>, body: &[u8]) -> String {
    // The daemon's own methods first.
    let probe: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = probe.get("id").cloned().unwrap_or(Value::Null);
    let response = match probe.get("method").and_then(Value::as_str) {
        Some("sync_status") => RpcResponse::of(id, json(daemon.health())),
        Some("sync_now") => RpcResponse::of(id, sync_now(daemon).await),
        // Backups write files where the caller says: the device's own
        // socket (0600) offers them, the hub's /rpc never does.
        Some("census") => RpcResponse::of(
            id,
            tokio::task::block_in_place(|| daemon.replica.census()).map_err(RpcError::from).and_then(json),
        ),
        Some("backup") => RpcResponse::of(id, backup(daemon, probe.get("params")).await),
        // `heph check [--repair]`: one read transaction beside the sync;
        // a repair is one write.
        Some("check") => {
            let repair = probe.pointer("/params/repair").and_then(Value::as_bool).unwrap_or(false);
            RpcResponse::of(
                id,
                tokio::task::block_in_place(|| daemon.replica.check_and_repair(repair, |_, _| {}))
                    .map_err(RpcError::from)
                    .and_then(json),
            )
        }
        Some("restore") => RpcResponse::of(id, restore(daemon, probe.get("params")).await),
        _ => match rpc::parse(body) {
            Err(response) => response,
            Ok(envelope) => {
                let writes = rpc::writes(&envelope.request);
                let outcome = tokio::task::block_in_place(|| rpc::dispatch(&daemon.replica, envelope.request));
                if writes && outcome.is_ok() {
                    daemon.local_change.notify_one();
                }
                RpcResponse::of(envelope.id, outcome)
            }
        },
    };
    encode(&response)
}

fn json<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(rpc::code::INTERNAL, e.to_string()))
}

/// Parameters of `backup` and `restore`.
#[derive(serde::Deserialize)]
struct FileParams {
    /// The backup file (absolute: the daemon's working folder is not the caller's).
    path: std::path::PathBuf,
    /// Replace an existing file (backup).
    #[serde(default)]
    force: bool,
}

fn file_params(params: Option<&Value>) -> Result<FileParams, RpcError> {
    let params = params.cloned().unwrap_or(Value::Null);
    let p: FileParams = serde_json::from_value(params)
        .map_err(|e| RpcError::new(rpc::code::INVALID_PARAMS, format!("bad params: {e}")))?;
    if !p.path.is_absolute() {
        return Err(RpcError::new(rpc::code::INVALID_PARAMS, "the backup path must be absolute"));
    }
    Ok(p)
}

/// `heph backup FILE`: a consistent copy of the replica, taken in one read
/// transaction beside the running sync.
async fn backup(daemon: &Arc<Daemon>, params: Option<&Value>) -> Result<Value, RpcError> {
    let p = file_params(params)?;
    let census = tokio::task::block_in_place(|| daemon.replica.backup_to(&p.path, Utc::now(), p.force));
    match census {
        Ok(c) => json(c),
        Err(e @ heph_engine::backup::BackupError::Exists { .. }) => {
            Err(RpcError::new(rpc::code::EXISTS, e.to_string()))
        }
        Err(e) => Err(RpcError::new(rpc::code::INTERNAL, e.to_string())),
    }
}

/// `heph restore FILE`: ends the sync session, replaces the replica's
/// contents with the backup's, and syncs again (the restored replica
/// reconciles with the hub; see `heph_engine::backup`).
async fn restore(daemon: &Arc<Daemon>, params: Option<&Value>) -> Result<Value, RpcError> {
    let p = file_params(params)?;
    let backup = tokio::task::block_in_place(|| heph_engine::backup::open_backup(&p.path))
        .map_err(|e| RpcError::new(rpc::code::NOT_FOUND, e.to_string()))?;
    let census = {
        // Queue for the gate first (the lock is fair: no new session starts
        // ahead of a queued restore), then end the session that holds it.
        // The sync loop may have started the next session between a notice
        // and the queueing: the notice is repeated until the gate is ours.
        let gate = daemon.session_gate.write();
        tokio::pin!(gate);
        let _gate = loop {
            daemon.end_session.notify_one();
            tokio::select! {
                held = &mut gate => break held,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        };
        tokio::task::block_in_place(|| daemon.replica.restore_from(&backup))?
    };
    tracing::info!(backup = %p.path.display(), nodes = census.nodes, "restored a backup; syncing again");
    daemon.wake.notify_one();
    daemon.local_change.notify_one();
    json(census)
}

/// `heph sync`: a full cycle now (connect if needed, pull, push, wait for acks).
async fn sync_now(daemon: &Arc<Daemon>) -> Result<Value, RpcError> {
    let mut synced = daemon.synced.subscribe();
    synced.borrow_and_update();
    daemon.wake.notify_one();
    daemon.local_change.notify_one();
    match tokio::time::timeout(SYNC_NOW_TIMEOUT, synced.changed()).await {
        Ok(Ok(())) => json(daemon.health()),
        _ => {
            let health = daemon.health();
            let why = health.last_error.clone().unwrap_or_else(|| "no answer from the hub".into());
            Err(RpcError::new(
                rpc::code::UNAVAILABLE,
                format!("could not sync with {} within {}s: {why}", daemon.hub_url, SYNC_NOW_TIMEOUT.as_secs()),
            ))
        }
    }
}

async fn sync_loop(daemon: Arc<Daemon>, url: String, stop: CancellationToken) {
    let mut failures: u32 = 0;
    let mut cycle: u64 = 0;
    while !stop.is_cancelled() {
        cycle += 1;
        daemon.update(|h| h.last_attempt = Some(Utc::now()));
        let span = tracing::info_span!("sync", cycle, hub = %url);
        let outcome = {
            let _gate = daemon.session_gate.read().await;
            session(&daemon, &url, &stop, &mut failures).instrument(span).await
        };
        daemon.update(|h| h.connected = false);
        if matches!(outcome, Err(Failure::Restored)) {
            // Connect again at once, to the replica as restored.
            tracing::info!("session ended for a restore");
            failures = 0;
            continue;
        }
        match outcome {
            Ok(()) => return,
            Err(e) => {
                let auth = matches!(e, Failure::Auth(_));
                let text = e.to_string();
                tracing::warn!(error = %text, "sync session ended");
                daemon.update(|h| {
                    h.offline = true;
                    h.last_error = Some(text);
                    h.auth_failure = auth;
                });
                if auth {
                    // Retrying cannot help until someone signs in again:
                    // wait for new credentials (or `heph sync`).
                    if !wait_for_new_credentials(&daemon, &stop).await {
                        return;
                    }
                    failures = 0;
                    continue;
                }
            }
        }
        failures = failures.saturating_add(1);
        let delay = backoff(failures);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = daemon.wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// After the hub refused our credentials: waits until the stored token
/// changes (`heph auth login`), or `heph sync` asks to try anyway. False on
/// shutdown.
async fn wait_for_new_credentials(daemon: &Daemon, stop: &CancellationToken) -> bool {
    let current = || login::load(&daemon.hub_url).ok().flatten().map(|(set, _)| set.access_token);
    let before = current();
    loop {
        tokio::select! {
            () = tokio::time::sleep(CREDENTIALS_POLL) => {
                if current() != before {
                    tracing::info!("new credentials: connecting again");
                    return true;
                }
            }
            () = daemon.wake.notified() => return true,
            () = stop.cancelled() => return false,
        }
    }
}

/// How often a daemon refused by the hub looks for new credentials.
const CREDENTIALS_POLL: Duration = Duration::from_secs(2);

/// The bearer to connect with: the stored token (refreshed first if it is
/// about to expire), none if this device never signed in to the hub.
async fn credentials(hub: &str, trust: &Trust) -> Result<Option<login::Access>, Failure> {
    match login::access_token(hub, trust).await {
        Ok(token) => {
            // A token never crosses the network in the clear.
            login::check_transport(hub).map_err(|e| Failure::Other(format!("{e:#}")))?;
            Ok(Some(token))
        }
        Err(login::TokenError::NotSignedIn(_)) => Ok(None),
        Err(e) if e.needs_login() => Err(Failure::Auth(e.to_string())),
        Err(e) => Err(Failure::Other(e.to_string())),
    }
}

/// When to send a fresh token on a live connection (at least a second on).
fn renew_at(at: Option<i64>) -> Option<tokio::time::Instant> {
    let left = u64::try_from(at? - Utc::now().timestamp()).unwrap_or(0).max(1);
    Some(tokio::time::Instant::now() + Duration::from_secs(left))
}

/// Exponential backoff with full jitter in [d/2, d].
fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1u32 << failures.min(16)).min(BACKOFF_MAX);
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    exp.mul_f64(jitter)
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the hub refused our credentials: {0}")]
    Auth(String),
    #[error("{0}")]
    Other(String),
    #[error("the replica is being restored from a backup")]
    Restored,
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Hub { code: ErrorCode::Unauthorized, message } => Self::Auth(message),
            other => Self::Other(other.to_string()),
        }
    }
}

async fn session(daemon: &Arc<Daemon>, url: &str, stop: &CancellationToken, failures: &mut u32) -> Result<(), Failure> {
    let token = credentials(&daemon.hub_url, &daemon.trust).await?;
    let mut request = url.into_client_request().map_err(|e| Failure::Other(format!("bad hub URL {url}: {e}")))?;
    if let Some(access) = &token {
        let value = format!("Bearer {}", access.token)
            .parse()
            .map_err(|_| Failure::Other("the stored token is not ASCII".into()))?;
        request.headers_mut().insert("authorization", value);
    }
    let mut renew = renew_at(token.as_ref().and_then(|t| t.renew_at));
    let (ws, _) = tls::connect(request, &daemon.trust, None).await.map_err(|e| match &e {
        tls::ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(r))
            if matches!(r.status().as_u16(), 401 | 403) =>
        {
            let body = r.body().as_ref().map(|b| String::from_utf8_lossy(b).trim().to_string()).unwrap_or_default();
            let hint = if token.is_none() { "; this device is not signed in: run `heph auth login`" } else { "" };
            Failure::Auth(format!("HTTP {}: {body}{hint}", r.status().as_u16()))
        }
        // Something answers, but not a heph hub's sync endpoint: a web page
        // (the hub's own app under a wrong path), a redirect, a 404.
        // The hub itself, busy (at --max-connections) or unable to check
        // tokens: its reason, and a retry.
        tls::ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(r))
            if r.status().is_server_error() =>
        {
            let body = r.body().as_ref().map(|b| String::from_utf8_lossy(b).trim().to_string()).unwrap_or_default();
            Failure::Other(format!("the hub is unavailable for now (HTTP {}: {body}); retrying", r.status().as_u16()))
        }
        tls::ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(r)) => Failure::Other(format!(
            "no heph hub answers at {url} (HTTP {} instead of a WebSocket); check --hub-url: it is the hub's \
             address, such as ws://127.0.0.1:8787 or wss://heph.example.org",
            r.status().as_u16()
        )),
        tls::ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Protocol(p)) => Failure::Other(format!(
            "no heph hub answers at {url} ({p}); check --hub-url: it is the hub's address, such as \
             ws://127.0.0.1:8787 or wss://heph.example.org"
        )),
        _ => Failure::Other(format!("cannot connect: {e}")),
    })?;
    let (mut spoke, hello) = tokio::task::block_in_place(|| SpokeSession::start(&daemon.replica))
        .map_err(|e| Failure::Other(e.to_string()))?;
    // Reading and writing run apart: while a large push is being written the
    // hub may be writing a large frame to us, and if we read nothing until
    // our write finished, both sides' buffers would fill and each wait on
    // the other.
    let (sink, mut ws) = ws.split();
    let (out, mut writer) = writer(sink);
    send(&out, Message::Text(encode(&hello).into())).await?;
    daemon.update(|h| {
        h.connected = true;
        h.offline = false;
    });
    tracing::info!("connected");
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let outgoing = tokio::select! {
            () = stop.cancelled() => {
                let close = CloseFrame { code: CloseCode::Away, reason: "device daemon stopping".into() };
                let _ = out.send(Message::Close(Some(close))).await;
                drop(out);
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
                return Ok(());
            }
            () = daemon.end_session.notified() => {
                let close = CloseFrame { code: CloseCode::Away, reason: "restoring a backup".into() };
                let _ = out.send(Message::Close(Some(close))).await;
                return Err(Failure::Restored);
            }
            ended = &mut writer => {
                return Err(ended.unwrap_or_else(|e| Failure::Other(format!("the connection's writer failed: {e}"))));
            }
            message = ws.next() => {
                let text = match message {
                    None => return Err(Failure::Other("the hub closed the connection".into())),
                    Some(Err(e)) => return Err(Failure::Other(format!("connection lost: {e}"))),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        if code == 4401 || code == 4403 {
                            return Err(Failure::Auth(format!("{code} {reason}")));
                        }
                        return Err(Failure::Other(format!("the hub closed the connection ({code} {reason})")));
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                let step = tokio::task::block_in_place(|| spoke.receive(text.as_str(), &daemon.replica))?;
                if step.received > 0 {
                    tracing::debug!(changes = step.received, "received");
                }
                step.send
            }
            () = daemon.local_change.notified() => {
                tokio::task::block_in_place(|| spoke.next_push(&daemon.replica))
                    .map_err(|e| Failure::Other(e.to_string()))?
            }
            _ = ping.tick() => {
                send(&out, Message::Ping(Vec::new().into())).await?;
                Vec::new()
            }
            () = tokio::time::sleep_until(renew.unwrap_or_else(tokio::time::Instant::now)), if renew.is_some() => {
                // The token runs out soon: a fresh one keeps the connection.
                match credentials(&daemon.hub_url, &daemon.trust).await? {
                    Some(access) => {
                        let frame = heph_engine::sync::frame::ClientFrame::Auth { token: access.token };
                        send(&out, Message::Text(encode(&frame).into())).await?;
                        renew = renew_at(access.renew_at);
                        tracing::debug!("sent a fresh token");
                    }
                    None => renew = None,
                }
                Vec::new()
            }
        };
        for frame in outgoing {
            send(&out, Message::Text(encode(&frame).into())).await?;
        }
        if tokio::task::block_in_place(|| spoke.is_idle(&daemon.replica)).unwrap_or(false) {
            *failures = 0;
            daemon.update(|h| {
                h.last_success = Some(Utc::now());
                h.last_error = None;
                h.auth_failure = false;
            });
            daemon.synced.send_modify(|n| *n += 1);
        }
    }
}

type Ws = tls::HubSocket;

/// The task that writes a session's frames, in order; it ends with the
/// reason when a write fails (or when the session drops its sender).
fn writer(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<Failure>) {
    // A session has at most a push, a `have` and a ping outstanding.
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let task = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if let Err(e) = sink.send(message).await {
                return Failure::Other(format!("send failed: {e}"));
            }
        }
        let _ = sink.close().await;
        Failure::Other("the session ended".into())
    });
    (tx, task)
}

async fn send(out: &mpsc::Sender<Message>, message: Message) -> Result<(), Failure> {
    // A closed channel means the writer failed; the session's select reads
    // its reason on the next turn, this is the fallback.
    out.send(message).await.map_err(|_| Failure::Other("send failed: the connection is gone".into()))
}
