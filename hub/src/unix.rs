//! Process plumbing shared by the modes: signals, and the unix socket that
//! `heph` talks to (one JSON-RPC request per line, one response per line).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use heph_engine::rpc::MAX_REQUEST_BYTES;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGTERM, SIGINT or Ctrl-C.
pub async fn on_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
        () = token.cancelled() => return,
    }
    tracing::info!("shutting down");
    token.cancel();
}

/// A bound socket file, removed when dropped.
pub struct SocketFile {
    path: PathBuf,
    listener: UnixListener,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the API socket at `path` (0600). A stale socket file left by a
/// crashed daemon is replaced; a live one means another daemon runs.
pub async fn bind(path: &Path) -> Result<SocketFile> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            bail!("another hephd already serves {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    // A unix socket's path holds at most this many bytes (sun_path, less
    // its terminating zero): 108 on Linux, 104 on macOS and the BSDs.
    const SUN_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };
    let len = path.as_os_str().len();
    if len > SUN_PATH {
        bail!(
            "the socket path {} is {len} bytes, longer than a unix socket allows ({SUN_PATH}); give a shorter one \
             with --socket PATH, and set HEPH_SOCKET=PATH for heph",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(SocketFile { path: path.to_path_buf(), listener })
}

/// Serves line-delimited requests on `socket` with `handle` until `stop`.
pub async fn serve<F, Fut>(socket: SocketFile, stop: CancellationToken, handle: F)
where
    F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send,
{
    let handle = Arc::new(handle);
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let handle = handle.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let mut line = Vec::new();
            loop {
                line.clear();
                let mut limited = (&mut lines).take(MAX_REQUEST_BYTES as u64 + 1);
                let n = tokio::select! {
                    () = stop.cancelled() => return,
                    n = limited.read_until(b'\n', &mut line) => n,
                };
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let response = handle(std::mem::take(&mut line)).await;
                if write.write_all(response.as_bytes()).await.is_err() || write.write_all(b"\n").await.is_err() {
                    return;
                }
            }
        });
    }
}
