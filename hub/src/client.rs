//! `--mode client`: no replica; each API request from `heph` on the unix
//! socket is forwarded to the hub's `POST /rpc`.

use anyhow::{Context, Result};
use heph_engine::rpc::{self, RpcError};
use heph_engine::sync::frame::encode;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, hub_endpoints};
use crate::unix;

/// Runs the proxy until SIGTERM or Ctrl-C.
pub async fn run(cfg: Config) -> Result<()> {
    let (_, base) = hub_endpoints(cfg.hub_url()?)?;
    let authority = base
        .strip_prefix("http://")
        .context("client mode reaches the hub over http:// (TLS is terminated in front of the hub)")?
        .to_string();
    let trust = heph_hub::tls::Trust::load(cfg.ca_file.as_deref())?;
    let socket_path = cfg.socket_path()?;
    let socket = unix::bind(&socket_path).await?;
    tracing::info!(socket = %socket_path.display(), hub = %base, "client proxy running");
    let stop = CancellationToken::new();
    tokio::spawn(unix::on_signal(stop.clone()));
    unix::serve(socket, stop, move |body| {
        let (authority, base, trust) = (authority.clone(), base.clone(), trust.clone());
        async move {
            // Read once: the method decides what is done here, the id is
            // what any answer this proxy gives itself carries.
            let probe: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = probe.get("id").cloned().unwrap_or(Value::Null);
            if let Some(method) = probe.get("method").and_then(Value::as_str)
                && crate::local::DEVICE_METHODS.contains(&method)
            {
                let error = RpcError::new(
                    rpc::code::INVALID_REQUEST,
                    format!(
                        "this daemon (hephd --mode client) keeps no replica: it forwards each request to the hub at \
                         {authority}, and sync status, backups, restores and checks are a device's own; run hephd --mode \
                         local for them"
                    ),
                );
                return encode(&rpc::Response::of(id, Err(error)));
            }
            match forward(&authority, &base, &trust, body).await {
                Ok(text) => text,
                Err(e) => {
                    let error =
                        RpcError::new(rpc::code::UNAVAILABLE, format!("cannot reach the hub at {authority}: {e:#}"));
                    encode(&rpc::Response::of(id, Err(error)))
                }
            }
        }
    })
    .await;
    Ok(())
}

async fn forward(authority: &str, base: &str, trust: &heph_hub::tls::Trust, body: Vec<u8>) -> Result<String> {
    // Signed in (`heph auth login`): the token goes along, refreshed first if need be.
    let bearer = match heph_hub::login::access_token(base, trust).await {
        Ok(access) => Some(access.token),
        Err(heph_hub::login::TokenError::NotSignedIn(_)) => None,
        Err(e) => anyhow::bail!("{e}"),
    };
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = hyper::Request::post("/rpc")
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(token) = bearer {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if status == hyper::StatusCode::UNAUTHORIZED || status == hyper::StatusCode::FORBIDDEN {
        anyhow::bail!(
            "the hub refused our credentials (HTTP {status}: {}); run `heph auth login --hub-url {base}`",
            String::from_utf8_lossy(&bytes).trim()
        );
    }
    anyhow::ensure!(status.is_success(), "the hub answered HTTP {status}");
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}
