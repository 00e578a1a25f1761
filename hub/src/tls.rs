//! The certificate authorities a device trusts when it reaches a hub
//! (`wss://`) or an identity provider (`https://`) over TLS.
//!
//! The roots are Mozilla's, built in (the `webpki-roots` set, the same one
//! the sign-in's HTTP client uses), plus the certificates of one PEM file
//! given with `--ca-file PATH` or `HEPH_CA_FILE` ([`CA_FILE_ENV`]): for a
//! hub behind a proxy whose certificates come from a private authority,
//! such as Caddy's `tls internal` or a company CA. Certificates are always
//! verified; there is no switch to turn that off.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The environment variable naming an extra PEM file of trusted
/// certificate authorities (what `--ca-file` sets).
pub const CA_FILE_ENV: &str = "HEPH_CA_FILE";

/// Why a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file cannot be read.
    #[error("cannot read the CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not PEM, or no certificate in it.
    #[error("the CA file {path} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate that cannot serve as a root.
    #[error("the CA file {path} has a certificate that cannot be a root of trust: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// The authorities trusted for TLS: the built-in roots and those of a CA file.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    extra: Vec<CertificateDer<'static>>,
}

impl Trust {
    /// The built-in roots, plus the certificates in `ca_file` if given.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, TrustError> {
        let Some(path) = ca_file else { return Ok(Self::default()) };
        let pem = std::fs::read(path).map_err(|source| TrustError::Read { path: path.to_path_buf(), source })?;
        let extra: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).map(CertificateDer::into_owned).collect();
        if extra.is_empty() {
            return Err(TrustError::NoCertificate { path: path.to_path_buf() });
        }
        // Each must parse as a trust anchor, so a bad file fails here, not
        // on the first connection.
        let mut store = rustls::RootCertStore::empty();
        for cert in &extra {
            store
                .add(cert.clone())
                .map_err(|e| TrustError::BadCertificate { path: path.to_path_buf(), reason: e.to_string() })?;
        }
        Ok(Self { extra })
    }

    /// [`Trust::load`] of the file named by `HEPH_CA_FILE`, if set and not empty.
    pub fn from_env() -> Result<Self, TrustError> {
        let path = std::env::var_os(CA_FILE_ENV).filter(|p| !p.is_empty()).map(PathBuf::from);
        Self::load(path.as_deref())
    }

    /// How many certificates the CA file added.
    #[must_use]
    pub fn extra_roots(&self) -> usize {
        self.extra.len()
    }

    /// A rustls client configuration over these roots, for `wss://`.
    #[must_use]
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        // Checked in `load`.
        let _ = roots.add_parsable_certificates(self.extra.iter().cloned());
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| unreachable!("ring's provider supports the default protocol versions"))
                .with_root_certificates(roots)
                .with_no_client_auth();
        // A WebSocket upgrade is HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// `builder` trusting these roots too (for the identity provider).
    pub fn http_client(&self, builder: openidconnect::reqwest::ClientBuilder) -> openidconnect::reqwest::ClientBuilder {
        self.extra.iter().fold(builder, |b, cert| match openidconnect::reqwest::Certificate::from_der(cert) {
            Ok(c) => b.add_root_certificate(c),
            Err(_) => b,
        })
    }
}

/// A connection to a hub: plain TCP (`ws://`) or TLS over it (`wss://`).
#[derive(Debug)]
pub enum HubStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A WebSocket to a hub.
pub type HubSocket = WebSocketStream<HubStream>;

/// Why a connection to a hub failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not a `ws://` or `wss://` address with a host.
    #[error("bad hub URL {0}")]
    Url(String),
    /// TCP.
    #[error("cannot reach {addr}: {source}")]
    Tcp {
        /// host:port.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake (an untrusted certificate shows here).
    #[error("TLS with {host} failed: {source} (a private CA can be trusted with --ca-file or {CA_FILE_ENV})")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// The WebSocket upgrade (an HTTP refusal shows here).
    #[error(transparent)]
    WebSocket(#[from] tungstenite::Error),
}

/// Where a `ws://` or `wss://` request goes: (TLS?, host, port).
fn target(request: &Request) -> Result<(bool, String, u16), ConnectError> {
    let uri = request.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(ConnectError::Url(uri.to_string())),
    };
    let host = uri.host().ok_or_else(|| ConnectError::Url(uri.to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((tls, host, port))
}

/// Opens a WebSocket to `request`'s URI (`ws://` or `wss://`), with no
/// Nagle delay, verifying a TLS certificate against `trust`.
pub async fn connect(
    request: Request,
    trust: &Trust,
    config: Option<WebSocketConfig>,
) -> Result<(HubSocket, Response), ConnectError> {
    let (_, host, port) = target(&request)?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| ConnectError::Tcp { addr: format!("{host}:{port}"), source })?;
    handshake(tcp, request, trust, config).await
}

/// [`connect`] over a TCP connection already open to the request's host
/// (one bound to a chosen local address, say).
pub async fn handshake(
    tcp: TcpStream,
    request: Request,
    trust: &Trust,
    config: Option<WebSocketConfig>,
) -> Result<(HubSocket, Response), ConnectError> {
    let (tls, host, _) = target(&request)?;
    let _ = tcp.set_nodelay(true);
    let stream = if tls {
        let name = ServerName::try_from(host.clone()).map_err(|_| ConnectError::Url(request.uri().to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(trust.client_config());
        let stream = connector.connect(name, tcp).await.map_err(|source| ConnectError::Tls { host, source })?;
        HubStream::Tls(Box::new(stream))
    } else {
        HubStream::Plain(tcp)
    };
    Ok(tokio_tungstenite::client_async_with_config(request, stream, config).await?)
}

impl AsyncRead for HubStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for HubStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(Trust::load(Some(&empty)), Err(TrustError::NoCertificate { .. })));
        assert!(matches!(Trust::load(Some(&dir.path().join("missing.pem"))), Err(TrustError::Read { .. })));
        assert_eq!(Trust::load(None).unwrap().extra_roots(), 0);
    }
}
