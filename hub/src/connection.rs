//! One `/sync` WebSocket connection on the hub.
//!
//! Reads frames, decodes them here (concurrently with every other
//! connection), feeds them to the engine's [`HubSession`], hands pushes to
//! the hub's one writer and sends the `ack` once it committed; between
//! frames it streams catch-up from the store (read transactions, never
//! waiting for the writer), then live broadcasts. An error on this
//! connection ends this connection only.
//!
//! Hygiene: the first frame must come within `--hello-timeout`; the hub
//! pings every `--ping-interval` and closes a connection it has heard
//! nothing from for two intervals; pushes are rate-limited per connection
//! (`--push-rate` changes per second): a faster sender is slowed down, not
//! refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use heph_engine::sync::frame::{ErrorCode, HubFrame, encode};
use heph_engine::sync::hub::{HubSession, Inbound, Live};
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use crate::auth::{self, Denied, Identity, Via, Who};
use crate::forwarded::Peer;
use crate::metrics::Metrics;
use crate::server::Hub;

/// How long one send may wait on a client that does not read. A device
/// applying a frame of catch-up reads nothing meanwhile: frames are small
/// enough (`BATCH_BYTES`) that this is seconds even on a slow one.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Frames up to this size are decoded on the runtime's thread: a push of a
/// few changes decodes in microseconds, less than handing the thread's
/// other tasks to another thread ([`tokio::task::block_in_place`]) costs.
/// Larger ones (up to the frame limit, megabytes of changes to parse) are
/// decoded off it.
const DECODE_INLINE: usize = 16 << 10;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why the connection ended.
enum End {
    Peer,
    Shutdown,
    Failed(String),
}

/// Serves one connection until it ends; `slot` is its place under
/// `--max-connections`, freed when it ends.
/// `identity` is the caller when it authenticated on the upgrade (or the
/// hub is open); `None` means its first frame must be `auth`, and `slot`
/// is then one of [`Hub::waiting_auth`]'s, traded for a `--max-connections`
/// one once that frame is checked.
pub async fn run(
    socket: WebSocket,
    hub: Arc<Hub>,
    peer: Peer,
    mut slot: OwnedSemaphorePermit,
    identity: Option<Identity>,
) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("conn", id, %peer, device = tracing::field::Empty);
    Metrics::add(&hub.metrics.connections, 1);
    Metrics::add(&hub.metrics.connections_total, 1);
    let end = serve(socket, &hub, peer, identity, &mut slot).instrument(span.clone()).await;
    hub.metrics.connections.fetch_sub(1, Ordering::Relaxed);
    drop(slot);
    let _enter = span.enter();
    match end {
        End::Peer => tracing::debug!("closed by peer"),
        End::Shutdown => tracing::debug!("closed for shutdown"),
        End::Failed(why) => tracing::info!(%why, "connection ended"),
    }
}

struct Conn {
    socket: WebSocket,
}

impl Conn {
    async fn send_text(&mut self, text: Utf8Bytes, metrics: &Metrics) -> Result<(), String> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text))).await {
            Ok(Ok(())) => {
                Metrics::add(&metrics.frames_out, 1);
                Ok(())
            }
            Ok(Err(e)) => Err(format!("send failed: {e}")),
            Err(_) => {
                Metrics::add(&metrics.dropped_slow, 1);
                Err("dropped: the client stopped reading".into())
            }
        }
    }

    async fn send(&mut self, frame: &HubFrame, metrics: &Metrics) -> Result<(), String> {
        if let HubFrame::Error { code, .. } = frame {
            metrics.error(*code);
        }
        self.send_text(encode(frame).into(), metrics).await
    }

    async fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.send(Message::Close(Some(frame)))).await;
    }
}

/// A token bucket of changes per second: a burst of twice the rate, then
/// the rate.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self { rate, tokens: 2.0 * rate, at: Instant::now() }
    }

    /// Takes `n` tokens; returns how long to wait before going on.
    fn take(&mut self, n: usize) -> Duration {
        let now = Instant::now();
        let burst = 2.0 * self.rate;
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(burst);
        self.at = now;
        #[allow(clippy::cast_precision_loss)]
        let n = n as f64;
        self.tokens -= n;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

/// A refused credential ends the connection with 4401 or 4403, and only a
/// close frame: nothing else is sent before authentication.
async fn refuse(conn: Conn, denied: &Denied) -> End {
    let code = match denied {
        // Try again later (RFC 6455): the identity provider is unreachable.
        Denied::Unavailable(_) => 1013,
        d if d.forbidden() => auth::CLOSE_FORBIDDEN,
        _ => auth::CLOSE_UNAUTHORIZED,
    };
    let reason = denied.to_string();
    // A close reason is at most 123 bytes.
    let mut cut = reason.len().min(120);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    conn.close(code, &reason[..cut]).await;
    End::Failed(format!("refused: {}", denied.reason()))
}

/// Waits for a browser's `auth` frame (the first frame, within
/// `--auth-timeout`) and checks it.
async fn authenticate(conn: &mut Conn, hub: &Hub, peer: Peer) -> Result<Identity, Denied> {
    let first = tokio::time::timeout(hub.auth.auth_timeout, async {
        loop {
            match conn.socket.recv().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    })
    .await;
    let text = match first {
        Err(_) => {
            hub.auth.denied(&Denied::Late, Via::SyncFrame, peer, None);
            return Err(Denied::Late);
        }
        Ok(None) => return Err(Denied::Missing),
        Ok(Some(text)) => text,
    };
    Metrics::add(&hub.metrics.frames_in, 1);
    match HubSession::new().decode(text.as_str()) {
        Ok(Inbound::Auth { token }) => hub.verify(&token, Via::SyncFrame, peer).await,
        _ => {
            hub.auth.denied(&Denied::Missing, Via::SyncFrame, peer, None);
            Err(Denied::Missing)
        }
    }
}

/// When `identity` stops being valid, on the runtime's clock.
fn expiry(identity: &Identity) -> Option<Instant> {
    let at = identity.expires?;
    let left = at.saturating_sub(chrono::Utc::now().timestamp()).max(0);
    Some(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}

async fn serve(
    socket: WebSocket,
    hub: &Arc<Hub>,
    peer: Peer,
    identity: Option<Identity>,
    slot: &mut OwnedSemaphorePermit,
) -> End {
    let mut conn = Conn { socket };
    let mut identity = match identity {
        Some(identity) => identity,
        None => match authenticate(&mut conn, hub, peer).await {
            Ok(identity) => match hub.slots.clone().try_acquire_owned() {
                // The waiting slot goes back as the connection takes its place.
                Ok(place) => {
                    *slot = place;
                    identity
                }
                Err(_) => {
                    Metrics::add(&hub.metrics.refused, 1);
                    let why = crate::server::full(hub);
                    let _ = conn.send(&HubFrame::fatal(ErrorCode::Internal, why.clone()), &hub.metrics).await;
                    conn.close(1013, "at --max-connections").await;
                    return End::Failed(why);
                }
            },
            Err(denied) => return refuse(conn, &denied).await,
        },
    };
    let mut expires = expiry(&identity);
    let mut revocations = hub.auth.revocations.subscribe();
    let holds_token = matches!(identity.who, Who::Token { .. });
    // A revocation between the check on the upgrade and the subscription
    // above was marked seen: look once more now that none can be missed.
    if holds_token && !hub.auth.still_valid(&identity) {
        hub.auth.denied(&Denied::Revoked, Via::SyncFrame, peer, Some(&identity.label()));
        return refuse(conn, &Denied::Revoked).await;
    }
    // Subscribe before reading the store, so nothing committed in between is missed.
    let mut live = hub.live.subscribe();
    let mut session = HubSession::new();
    let mut catching_up = false;
    let limits = hub.limits;
    let mut greeted = false;
    let hello_deadline = Instant::now() + limits.hello_timeout;
    let mut ping = tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let mut bucket = Bucket::new(limits.push_rate);
    loop {
        tokio::select! {
            biased;
            () = hub.shutdown.cancelled() => {
                conn.close(1001, "hub shutting down").await;
                return End::Shutdown;
            }
            () = tokio::time::sleep_until(expires.unwrap_or(hello_deadline)), if expires.is_some() => {
                hub.auth.denied(&Denied::Expired, Via::SyncFrame, peer, Some(&identity.label()));
                return refuse(conn, &Denied::Expired).await;
            }
            Ok(()) = revocations.changed(), if holds_token => {
                if !hub.auth.still_valid(&identity) {
                    hub.auth.denied(&Denied::Revoked, Via::SyncFrame, peer, Some(&identity.label()));
                    return refuse(conn, &Denied::Revoked).await;
                }
            }
            () = tokio::time::sleep_until(hello_deadline), if !greeted => {
                Metrics::add(&hub.metrics.timed_out, 1);
                let why = format!("no hello within {} s of connecting", limits.hello_timeout.as_secs());
                let _ = conn.send(&HubFrame::fatal(ErrorCode::Protocol, why.clone()), &hub.metrics).await;
                conn.close(1008, "no hello").await;
                return End::Failed(why);
            }
            _ = ping.tick() => {
                if heard.elapsed() > 2 * limits.ping_interval {
                    Metrics::add(&hub.metrics.timed_out, 1);
                    conn.close(1001, "no pong").await;
                    return End::Failed(format!("nothing heard for {} s (missed pongs)", heard.elapsed().as_secs()));
                }
                let sent = tokio::time::timeout(SEND_TIMEOUT, conn.socket.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return End::Failed("ping failed".into());
                }
            }
            message = conn.socket.recv() => {
                heard = Instant::now();
                let text = match message {
                    None | Some(Ok(Message::Close(_))) => return End::Peer,
                    Some(Err(e)) => return End::Failed(format!("read failed: {e}")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        let frame = HubFrame::fatal(ErrorCode::BadFrame, "frames are JSON text, not binary");
                        let _ = conn.send(&frame, &hub.metrics).await;
                        conn.close(1003, "binary frame").await;
                        return End::Failed("binary frame".into());
                    }
                    Some(Ok(Message::Text(text))) => text,
                };
                Metrics::add(&hub.metrics.frames_in, 1);
                // Decoding (JSON, base64, every change within its limits) and
                // reads run here, beside every other connection; only a
                // push's commit goes to the writer.
                let decoded = if text.len() <= DECODE_INLINE {
                    session.decode(text.as_str())
                } else {
                    tokio::task::block_in_place(|| session.decode(text.as_str()))
                };
                drop(text);
                let mut step = match decoded {
                    Err(step) => step,
                    Ok(Inbound::Auth { token }) => {
                        // A fresh token before the old one expires.
                        match hub.verify(&token, Via::SyncFrame, peer).await {
                            Ok(fresh) if fresh.same_caller(&identity) => {
                                expires = expiry(&fresh);
                                identity = fresh;
                                continue;
                            }
                            Ok(_) => return refuse(conn, &Denied::NotOwner).await,
                            Err(denied) => return refuse(conn, &denied).await,
                        }
                    }
                    Ok(Inbound::Push { .. }) if !identity.can_write() => {
                        let frame = HubFrame::Error {
                            code: ErrorCode::Forbidden,
                            message: format!("{} may only read: pushes are refused", identity.label()),
                            close: false,
                        };
                        if let Err(why) = conn.send(&frame, &hub.metrics).await {
                            return End::Failed(why);
                        }
                        continue;
                    }
                    Ok(inbound) => {
                        if let Inbound::Push { changes, .. } = &inbound {
                            let wait = bucket.take(changes.len());
                            if !wait.is_zero() {
                                Metrics::add(&hub.metrics.throttled, 1);
                                tokio::time::sleep(wait).await;
                            }
                        }
                        if matches!(inbound, Inbound::Push { .. }) {
                            // Reads nothing: the write goes to the writer below.
                            session.handle(inbound, &*hub.replica)
                        } else {
                            // Reads the store (hello, have).
                            tokio::task::block_in_place(|| session.handle(inbound, &*hub.replica))
                        }
                    }
                };
                if let Some(write) = step.write.take() {
                    let (batch, hashes) = (write.batch, write.hashes());
                    let outcome = hub.writer.push(write).await;
                    step = session.committed(batch, &hashes, outcome);
                }
                if let Some(device) = &step.hello {
                    let short: String = device.chars().take(12).collect();
                    tracing::Span::current().record("device", short.as_str());
                    catching_up = true;
                    greeted = true;
                }
                Metrics::add(&hub.metrics.changes_stored, step.stored as u64);
                for reply in &step.replies {
                    if let Err(why) = conn.send(reply, &hub.metrics).await {
                        return End::Failed(why);
                    }
                }
                if step.close {
                    conn.close(1008, "protocol error").await;
                    return End::Failed(format!("closed after {:?}", step.replies.first()));
                }
            }
            () = std::future::ready(()), if catching_up => {
                match tokio::task::block_in_place(|| session.catch_up(&*hub.replica)) {
                    Ok(Some(frame)) => {
                        if let Err(why) = conn.send(&frame, &hub.metrics).await {
                            return End::Failed(why);
                        }
                    }
                    Ok(None) => catching_up = false,
                    Err(e) => {
                        let frame = HubFrame::fatal(ErrorCode::Internal, format!("the hub could not read its store: {e}"));
                        let _ = conn.send(&frame, &hub.metrics).await;
                        conn.close(1011, "store error").await;
                        return End::Failed(e.to_string());
                    }
                }
            }
            received = live.recv() => match received {
                Ok(frame) => match session.live_seqs(frame.first, frame.last) {
                    Live::Send => {
                        if let Err(why) = conn.send_text(frame.text.clone(), &hub.metrics).await {
                            return End::Failed(why);
                        }
                        Metrics::add(&hub.metrics.deliveries, 1);
                    }
                    Live::Skip => {}
                    Live::CatchUp => catching_up = true,
                },
                Err(RecvError::Lagged(n)) if catching_up || !session.is_live() => {
                    // Still catching up from the store, which has all of it.
                    tracing::debug!(skipped = n, "live queue skipped during catch-up");
                }
                Err(RecvError::Lagged(n)) => {
                    Metrics::add(&hub.metrics.dropped_slow, 1);
                    let frame = HubFrame::fatal(
                        ErrorCode::TooSlow,
                        format!("fell {n} batches behind the live stream; reconnect to resume from your cursor"),
                    );
                    let _ = conn.send(&frame, &hub.metrics).await;
                    conn.close(1008, "too slow").await;
                    return End::Failed("dropped: too slow".into());
                }
                Err(RecvError::Closed) => {
                    conn.close(1001, "hub shutting down").await;
                    return End::Shutdown;
                }
            },
        }
    }
}
