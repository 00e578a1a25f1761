//! `hephd`: heph's daemon.
//!
//! - `--mode server`: the hub. Persists every change of its owner in a redb
//!   store and serves `/sync` (WebSocket), `/rpc`, `/healthz`, `/metrics`,
//!   and the browser app at `/`.
//! - `--mode local`: a device's daemon. Owns the device's replica, serves the
//!   JSON-RPC API on a unix socket (which `heph` uses while it runs), and
//!   syncs with the hub in the background.
//! - `--mode client`: no replica; proxies the JSON-RPC API from a unix socket
//!   to the hub's `/rpc`.

mod auth;
mod client;
mod config;
mod connection;
mod forwarded;
mod install;
mod local;
mod metrics;
mod rpc;
mod seed;
mod serve;
mod server;
mod token;
mod unix;
mod web;
mod writer;

use std::process::ExitCode;

use clap::Parser;

use config::{Command, Config, Mode};

fn init_tracing(cfg: &Config) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cfg.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer().with_ansi(colour).with_writer(std::io::stderr);
    let layer = if cfg.log_as_json() { layer.json().boxed() } else { layer.boxed() };
    // One filter of both, so the most verbose level `--log` asks for stays
    // the hint that lets everything above it be skipped cheaply.
    let wire = tracing_subscriber::filter::filter_fn(not_wire_trace)
        .with_max_level_hint(tracing_subscriber::filter::LevelFilter::TRACE);
    tracing_subscriber::registry().with(layer.with_filter(filter.and(wire))).init();
}

/// Crates that carry requests log them whole at trace level (tungstenite
/// the WebSocket handshake with its `Authorization: Bearer` header, the
/// HTTP clients their requests to the identity provider): never recorded,
/// whatever `--log` asks, so no token reaches a log.
const WIRE: [&str; 9] =
    ["tungstenite", "tokio_tungstenite", "hyper", "h2", "reqwest", "rustls", "ureq", "oauth2", "openidconnect"];

fn not_wire_trace(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() != tracing::Level::TRACE || !WIRE.iter().any(|c| meta.target().starts_with(c))
}

fn main() -> ExitCode {
    // A change Automerge asserts on is refused, and logged as such; it is
    // not a crash to print.
    heph_engine::panics::quiet_caught();
    let cfg = Config::parse();
    init_tracing(&cfg);
    if let Some(Command::InstallService(args)) = &cfg.command {
        return match install::run(&cfg, args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hephd: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Every connection is a file descriptor: allow as many as the system lets us.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hephd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        if let Some(Command::Token { action }) = cfg.command.clone() {
            return token::run(&cfg, action).await;
        }
        if let Some(Command::Seed { from, device_socket, json }) = cfg.command.clone() {
            return tokio::task::block_in_place(|| seed::run(&cfg, &from, device_socket.as_deref(), json));
        }
        match cfg.mode {
            Mode::Server => server::run(cfg).await,
            Mode::Local => local::run(cfg).await,
            Mode::Client => client::run(cfg).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hephd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
