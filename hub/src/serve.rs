//! The HTTP server loop: axum's `serve`, plus a deadline on each request's
//! head.
//!
//! `axum::serve` sets hyper no timer, so hyper's `header_read_timeout` never
//! runs: a peer that opens connections and never finishes a request line
//! holds them, and a file descriptor each, for as long as it likes, whether
//! or not the hub asks for a token (`--max-connections` counts only
//! upgraded `/sync` sockets). Here every connection gets
//! `--request-timeout` to send each request's head, counted from when it
//! connected or its last response went out (so it also closes a kept-alive
//! connection idle that long: the default stays above what proxies keep
//! theirs). The rest is as axum does it (HTTP/1.1 with upgrades for
//! WebSockets, the peer's address as `ConnectInfo`, a graceful shutdown).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

/// Serves `app` on `listener` until `shutdown`, giving each request
/// `head_timeout` to send its head; then stops accepting, lets requests in
/// flight finish, and returns. Upgraded connections are the application's
/// to close.
pub async fn serve(listener: TcpListener, app: Router, head_timeout: Duration, shutdown: CancellationToken) {
    let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // As axum does: a connection that failed as it came is
                    // the peer's problem; anything else (out of file
                    // descriptors) is given a moment to pass.
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "cannot accept connections; retrying in a second");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Frames are small and latency matters: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let Ok(service) = make.call(peer).await;
        let service = TowerToHyperService::new(service.map_request(|r: hyper::Request<Incoming>| r.map(Body::new)));
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::trace!(%peer, error = %e, "connection ended");
                    }
                }
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset)
}
