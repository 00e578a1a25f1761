//! Every flag of `hephd`, with its `HEPH_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

/// What this process is.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The hub: stores every change and fans it out to every device.
    Server,
    /// A device's daemon: owns the local replica and syncs it with the hub.
    Local,
    /// No replica: forwards the local API to the hub's /rpc.
    Client,
}

const LONG_ABOUT: &str = "hephd is heph's daemon.

  hephd --mode server [--http-addr 127.0.0.1:8787] [--db PATH]
      The hub. Stores every change in a redb file and streams them to every
      connected device: GET /sync (WebSocket), POST /rpc (JSON-RPC 2.0),
      GET /healthz (store writable, version, uptime), GET /config,
      GET /metrics (Prometheus: connections, frames, fan-out queues, commit
      latency, pending changes, auth failures by reason), and the browser
      app at / (built into hephd from web/ when Node.js 20+ and npm are
      installed at build time; --web-root serves another build).
      --log-format json writes one JSON object per log line.

      Authentication: --oidc-issuer URL --oidc-audience AUD make every
      route but /healthz, /config and the web app need a valid access token
      from that OpenID provider (Authorization: Bearer, or for a browser an
      `auth` frame first on /sync). The first identity to sign in owns the
      hub (--owner-sub sets it up front); any other is refused. Automation
      tokens (`hephd token create`) are accepted too. Without
      authentication the hub listens on loopback addresses only
      (--insecure-no-auth overrides) and answers only requests whose Host
      is an IP address or localhost. Browsers may call it from the
      origins listed with --cors-origin, and from its own; no other.
      Every decision goes to an append-only audit log (--audit-log).
      Pushes from every connection are committed together by one writer
      (one fsync per group); connections are capped (--max-connections),
      must say hello in time (--hello-timeout), are pinged
      (--ping-interval), and pushes are rate-limited per connection
      (--push-rate). Behind a reverse proxy such as Caddy, --trusted-proxy
      ADDR makes the audit log name clients by its X-Forwarded-For.

  hephd --mode local --hub-url ws://127.0.0.1:8787 [--db PATH]
      A device's daemon. Owns the replica (the same store `heph` uses),
      serves the heph API on a unix socket beside it (PATH.sock), and syncs
      in the background: local changes are pushed as they happen, changes
      from other devices arrive live. Reconnects with jittered backoff.
      A wss:// or https:// hub's certificate is checked against Mozilla's
      roots, and those in --ca-file PATH (a private CA such as Caddy's).

  hephd --mode client --hub-url http://127.0.0.1:8787 [--socket PATH]
      No local replica: `heph` commands go to the hub's /rpc.

  sudo hephd install-service [--http-addr ADDR] [--oidc-issuer URL …]
      Installs the hub as a systemd system service with its own account
      and a hardened sandbox (--print shows the unit). A device's daemon
      is installed by `heph daemon install`.

Stop it with SIGTERM or Ctrl-C: connections are closed cleanly and every
acknowledged write is already on disk.";

/// One-off commands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Automation tokens of the hub at --db (for scripts, CI, home automation).
    Token {
        /// What to do.
        #[command(subcommand)]
        action: crate::token::TokenCommand,
    },
    /// Install the hub as a system service: a hardened systemd unit run by its own account.
    ///
    /// sudo hephd install-service --http-addr 127.0.0.1:8787 --oidc-issuer URL --oidc-audience heph
    ///
    /// Writes /etc/systemd/system/hephd.service (--print shows it instead), creates the account
    /// (--user, default heph), and enables and starts the unit. The store goes to
    /// /var/lib/heph/hub.db unless --db says otherwise. The unit passes every setting as a
    /// HEPH_* variable; installing again keeps those it carries unless given anew (an empty
    /// value removes one, --fresh forgets them all). The sandbox leaves hephd the network and
    /// its store only: no home directories, a read-only system, no privileges, so it listens on
    /// a port above 1023, behind a TLS proxy such as Caddy.
    InstallService(crate::install::InstallService),
    /// Build a new hub store (--db) from a device's store: every node with its whole history, the owner, a new hub id.
    ///
    /// The device's file is never written. While the device's daemon runs (it holds the file), the
    /// snapshot is taken through its socket (DEVICE_DB.sock, or --device-socket); otherwise the file is
    /// read directly. An existing --db is refused. Devices that synced with another hub see a new
    /// hub id and reconcile: each offers what the hub lacks, nothing is duplicated. The audit log
    /// of the new hub records the seeding.
    Seed {
        /// The device's store (its heph.db).
        #[arg(long, value_name = "DEVICE_DB")]
        from: PathBuf,
        /// The device daemon's socket [default: DEVICE_DB.sock].
        #[arg(long, value_name = "PATH")]
        device_socket: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// hephd: heph's hub and device daemon.
#[derive(Parser, Debug, Clone)]
#[command(name = "hephd", version, about = "heph's hub and device sync daemon", long_about = LONG_ABOUT)]
pub struct Config {
    /// A one-off command instead of the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// What to run.
    #[arg(long, value_enum, env = "HEPH_MODE", default_value_t = Mode::Server)]
    pub mode: Mode,

    /// Address the hub listens on.
    #[arg(long, env = "HEPH_HTTP_ADDR", default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub http_addr: SocketAddr,

    /// The store file [default: server: $XDG_DATA_HOME/heph/hub.db; local: $XDG_DATA_HOME/heph/heph.db].
    #[arg(long, env = "HEPH_DB", value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,

    /// The hub to sync with (local, client): ws://host:port or http://host:port.
    #[arg(long, env = "HEPH_HUB_URL", value_name = "URL")]
    pub hub_url: Option<String>,

    /// The unix socket for `heph` (local, client) [default: the store path + ".sock"].
    #[arg(long, env = "HEPH_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// The OpenID provider whose access tokens the hub accepts (turns authentication on; needs --oidc-audience).
    #[arg(long, env = "HEPH_OIDC_ISSUER", value_name = "URL", requires = "oidc_audience")]
    pub oidc_issuer: Option<String>,

    /// The audience (`aud`) access tokens must carry for this hub.
    #[arg(long, env = "HEPH_OIDC_AUDIENCE", value_name = "AUD", requires = "oidc_issuer")]
    pub oidc_audience: Option<String>,

    /// The OAuth client id browsers and devices sign in with (served at /config).
    #[arg(long, env = "HEPH_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,

    /// Clock skew allowed when checking a token's exp and nbf, in seconds.
    #[arg(long, env = "HEPH_OIDC_LEEWAY", default_value_t = 30, value_name = "SECONDS")]
    pub oidc_leeway: u64,

    /// The identity (`sub`) that owns this hub; without it, the first to sign in claims it.
    #[arg(long, env = "HEPH_OWNER_SUB", value_name = "SUB")]
    pub owner_sub: Option<String>,

    /// A browser origin allowed to call the hub (repeatable), e.g. https://app.example.org; the hub's own needs none.
    #[arg(long = "cors-origin", env = "HEPH_CORS_ORIGIN", value_delimiter = ',', value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,

    /// Seconds a browser connection has to send its `auth` frame.
    #[arg(long, env = "HEPH_AUTH_TIMEOUT", default_value_t = 5, value_name = "SECONDS")]
    pub auth_timeout: u64,

    /// The append-only audit log (JSON lines) [default: the store path + ".audit.jsonl"].
    #[arg(long, env = "HEPH_AUDIT_LOG", value_name = "PATH", global = true)]
    pub audit_log: Option<PathBuf>,

    /// A reverse proxy in front of the hub (repeatable; an IP address or a CIDR block, e.g. 127.0.0.1 or 10.0.0.0/8):
    /// for requests from it, the audit log and the logs take the client's address from X-Forwarded-For
    /// (the right-most address that is not itself a trusted proxy). From any other peer the header is ignored.
    #[arg(long = "trusted-proxy", env = "HEPH_TRUSTED_PROXY", value_delimiter = ',', value_name = "ADDR")]
    pub trusted_proxies: Vec<crate::forwarded::Cidr>,

    /// Also trust the certificate authorities in this PEM file when reaching a wss:// hub or an
    /// https:// identity provider (local, client), e.g. the root of Caddy's `tls internal`.
    #[arg(long, env = "HEPH_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Serve without authentication on a non-loopback address (only behind something else that authenticates).
    #[arg(long, env = "HEPH_INSECURE_NO_AUTH", alias = "allow-open")]
    pub insecure_no_auth: bool,

    /// Per-connection queue: live batches a subscriber may fall behind before it is dropped (it resumes from its cursor).
    #[arg(long, env = "HEPH_QUEUE", default_value_t = 1024, value_name = "BATCHES")]
    pub queue: usize,

    /// The most received changes the hub keeps waiting for changes they depend on; a push past it is refused with quota_exceeded until those arrive.
    #[arg(long, env = "HEPH_MAX_PENDING", default_value_t = 100_000, value_name = "CHANGES")]
    pub max_pending: u64,

    /// The most bytes of received changes the hub keeps waiting for changes they depend on, in MiB; a push past it is refused with quota_exceeded until those arrive.
    #[arg(long, env = "HEPH_MAX_PENDING_MB", default_value_t = 1024, value_name = "MIB")]
    pub max_pending_mb: u64,

    /// Memory for the hub store's page cache, in MiB. Pages beyond it are
    /// read again from the operating system's file cache; the documents
    /// being written are kept loaded apart from it.
    #[arg(long, env = "HEPH_CACHE_MB", default_value_t = 16, value_name = "MIB")]
    pub cache_mb: usize,

    /// Memory for the documents the hub keeps loaded between writes, in
    /// MiB (estimated; at most 1,024 documents). The least recently written
    /// are dropped past it and loaded again from the store when written.
    #[arg(long, env = "HEPH_DOC_CACHE_MB", default_value_t = 128, value_name = "MIB")]
    pub doc_cache_mb: usize,

    /// The most /sync connections served at once; more are refused with HTTP 503 until some close.
    #[arg(long, env = "HEPH_MAX_CONNECTIONS", default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,

    /// Seconds a new connection has to send its first frame (hello) before it is closed.
    #[arg(long, env = "HEPH_HELLO_TIMEOUT", default_value_t = 10, value_name = "SECONDS")]
    pub hello_timeout: u64,

    /// Seconds an HTTP connection has to send each request's head (its request line and headers), counted from when it connected or its last response went out: a connection idle or sending slower is closed. Above the idle time a proxy in front keeps its connections to the hub (Caddy 2 min, nginx 1 min).
    #[arg(long, env = "HEPH_REQUEST_TIMEOUT", default_value_t = 300, value_name = "SECONDS")]
    pub request_timeout: u64,

    /// Seconds between WebSocket pings to each connection; one that answers nothing for two intervals is closed (it resumes from its cursor when it reconnects).
    #[arg(long, env = "HEPH_PING_INTERVAL", default_value_t = 20, value_name = "SECONDS")]
    pub ping_interval: u64,

    /// Changes per second one connection may push (a burst of twice that is allowed); faster pushes are delayed, not refused.
    #[arg(long, env = "HEPH_PUSH_RATE", default_value_t = 5_000, value_name = "CHANGES")]
    pub push_rate: u32,

    /// Serve the browser app from DIR instead of the copy built into hephd (server mode).
    ///
    /// DIR is a build of web/ (`node web/tools/build.mjs --out DIR`): index.html, sw.js and hashed
    /// files under assets/. Files are read on every request, so a rebuilt app shows on the next
    /// reload; while DIR has no index.html (a build under way), / answers 503 with a page that says so.
    #[arg(long, env = "HEPH_WEB_ROOT", value_name = "DIR")]
    pub web_root: Option<PathBuf>,

    /// Log filter (tracing's EnvFilter syntax), e.g. info or heph_hub=debug.
    #[arg(long, env = "HEPH_LOG", default_value = "info")]
    pub log: String,

    /// How log lines are written to standard error: text for people, or one JSON object per line
    /// (timestamp, level, target, fields, span) for a log collector.
    #[arg(long, env = "HEPH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// The same as --log-format json (the older spelling).
    #[arg(long, env = "HEPH_LOG_JSON", hide = true)]
    pub log_json: bool,
}

/// How log lines are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// The store path for this mode.
    pub fn db_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.db {
            return Ok(p.clone());
        }
        let data = dirs::data_dir().context("cannot find your data folder; pass --db PATH")?;
        let name = if self.mode == Mode::Server { "hub.db" } else { "heph.db" };
        Ok(data.join("heph").join(name))
    }

    /// The unix socket path (local and client modes).
    pub fn socket_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.socket {
            return Ok(p.clone());
        }
        Ok(beside(&self.db_path()?, ".sock"))
    }

    /// The hub URL, required in local and client modes.
    pub fn hub_url(&self) -> Result<&str> {
        match self.hub_url.as_deref() {
            Some(u) if !u.is_empty() => Ok(u),
            _ => bail!("--hub-url (or HEPH_HUB_URL) is required in {:?} mode, e.g. ws://127.0.0.1:8787", self.mode),
        }
    }

    /// Whether logs are JSON lines.
    #[must_use]
    pub fn log_as_json(&self) -> bool {
        self.log_json || self.log_format == LogFormat::Json
    }

    /// Whether the hub requires credentials.
    #[must_use]
    pub fn auth_on(&self) -> bool {
        self.oidc_issuer.is_some()
    }

    /// The audit log's path.
    pub fn audit_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.audit_log {
            return Ok(p.clone());
        }
        Ok(beside(&self.db_path()?, ".audit.jsonl"))
    }

    /// The waiting quota `--max-pending` and `--max-pending-mb` ask for.
    #[must_use]
    pub fn pending_quota(&self) -> heph_engine::limits::PendingQuota {
        heph_engine::limits::PendingQuota {
            changes: self.max_pending,
            bytes: self.max_pending_mb.saturating_mul(1 << 20),
        }
    }

    /// Refuses an unauthenticated hub on a non-loopback address unless
    /// forced, and browser origins that are not origins.
    pub fn check_exposure(&self) -> Result<()> {
        if !self.auth_on() && !self.http_addr.ip().is_loopback() && !self.insecure_no_auth {
            bail!(
                "refusing to serve without authentication on {}: only loopback addresses are allowed. \
                 Turn authentication on with --oidc-issuer URL --oidc-audience AUD, listen on 127.0.0.1, \
                 or pass --insecure-no-auth if something in front of hephd authenticates",
                self.http_addr
            );
        }
        for origin in &self.cors_origins {
            if origin == "*"
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                bail!(
                    "--cors-origin {origin:?} is not an origin: give a scheme and host, and a port if not the default, \
                     e.g. https://app.example.org (wildcards are not accepted)"
                );
            }
        }
        Ok(())
    }
}

/// A file beside the store: its path with `suffix` appended (`hub.db` →
/// `hub.db.sock`).
#[must_use]
pub fn beside(db: &std::path::Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// Turns a hub URL into its WebSocket sync endpoint and its HTTP base.
pub fn hub_endpoints(url: &str) -> Result<(String, String)> {
    let url = url.trim_end_matches('/');
    let (ws, http) = if let Some(rest) = url.strip_prefix("ws://") {
        (format!("ws://{rest}"), format!("http://{rest}"))
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (format!("wss://{rest}"), format!("https://{rest}"))
    } else if let Some(rest) = url.strip_prefix("http://") {
        (format!("ws://{rest}"), format!("http://{rest}"))
    } else if let Some(rest) = url.strip_prefix("https://") {
        (format!("wss://{rest}"), format!("https://{rest}"))
    } else {
        bail!("{url:?} is not a hub URL (expected ws://, wss://, http:// or https://)");
    };
    let ws = if ws.ends_with("/sync") { ws } else { format!("{ws}/sync") };
    let http = http.trim_end_matches("/sync").to_string();
    Ok((ws, http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls() {
        assert_eq!(
            hub_endpoints("http://127.0.0.1:8787/").unwrap(),
            ("ws://127.0.0.1:8787/sync".into(), "http://127.0.0.1:8787".into())
        );
        assert_eq!(hub_endpoints("ws://h:1/sync").unwrap(), ("ws://h:1/sync".into(), "http://h:1".into()));
        assert!(hub_endpoints("ftp://x").is_err());
    }

    #[test]
    fn open_mode_is_loopback_only() {
        let mut cfg = Config::parse_from(["hephd", "--http-addr", "0.0.0.0:8787"]);
        assert!(cfg.check_exposure().is_err());
        cfg.insecure_no_auth = true;
        assert!(cfg.check_exposure().is_ok());
        assert!(Config::parse_from(["hephd", "--http-addr", "[::1]:1"]).check_exposure().is_ok());
        // The old spelling still works.
        assert!(Config::parse_from(["hephd", "--http-addr", "0.0.0.0:1", "--allow-open"]).check_exposure().is_ok());
        // With authentication any address may be served.
        let authed =
            ["hephd", "--http-addr", "0.0.0.0:1", "--oidc-issuer", "https://id.example", "--oidc-audience", "heph"];
        assert!(Config::parse_from(authed).check_exposure().is_ok());
        // Both or neither.
        assert!(Config::try_parse_from(["hephd", "--oidc-issuer", "https://id.example"]).is_err());
    }

    #[test]
    fn log_format() {
        assert!(!Config::parse_from(["hephd"]).log_as_json());
        assert!(Config::parse_from(["hephd", "--log-format", "json"]).log_as_json());
        assert!(Config::parse_from(["hephd", "--log-json"]).log_as_json());
        assert!(Config::try_parse_from(["hephd", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn cors_origins_are_origins() {
        for bad in ["*", "app.example.org", "https://app.example.org/"] {
            assert!(Config::parse_from(["hephd", "--cors-origin", bad]).check_exposure().is_err(), "{bad}");
        }
        let cfg = Config::parse_from([
            "hephd",
            "--cors-origin",
            "https://a.example",
            "--cors-origin",
            "http://b.example:8080",
        ]);
        assert!(cfg.check_exposure().is_ok());
        assert_eq!(cfg.cors_origins.len(), 2);
    }
}
