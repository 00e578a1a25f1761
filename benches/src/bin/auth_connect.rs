//! What authentication costs a connection: `/sync` connects (upgrade,
//! token check, `hello` → `welcome`) to a hub with OpenID Connect auth on,
//! beside the same against an open hub, in one run.
//!
//! Both hubs are real `hephd --mode server` processes on 127.0.0.1; the
//! tokens come from a real OpenID provider (the npm package oidc-provider,
//! `hub/tests/oidc/provider.mjs`, run with Node.js). Each round opens
//! `--connects` connections at once and times each from the TCP connect to
//! the `welcome`; then all close. The authenticated hub's JWKS fetch counter
//! shows the keys were fetched once, not per connection.
//!
//!   cargo run --release -p heph-benches --bin auth_connect -- --rounds 20
//!
//! Prints one JSON object on stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream as StdTcp;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use heph_engine::sync::frame::{ClientFrame, HubFrame, PROTOCOL_VERSION, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser, Debug)]
#[command(name = "auth_connect")]
struct Args {
    /// The hephd binary [default: `hephd` beside this binary].
    #[arg(long)]
    hephd: Option<PathBuf>,
    /// The folder of provider.mjs (with its node_modules) [default: hub/tests/oidc of this checkout].
    #[arg(long)]
    provider: Option<PathBuf>,
    /// Connections opened at once per round.
    #[arg(long, default_value_t = 100)]
    connects: usize,
    /// Rounds per hub (the first is a warm-up and not counted).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http(port: u16, request: &str) -> Result<(u16, String)> {
    let mut s = StdTcp::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn start_provider(dir: &Path) -> Result<(Proc, String, u16)> {
    if !dir.join("node_modules/oidc-provider").exists() {
        let ok = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).status()?.success();
        if !ok {
            bail!("npm ci in {} failed", dir.display());
        }
    }
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting node provider.mjs (Node.js is needed)")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("provider stdout")?).read_line(&mut line)?;
    let info: Value = serde_json::from_str(&line).context("the provider's first line")?;
    let issuer = info["issuer"].as_str().context("issuer")?.to_string();
    let port = issuer.rsplit(':').next().and_then(|p| p.parse().ok()).context("the issuer's port")?;
    Ok((Proc(child), issuer, port))
}

fn token(port: u16) -> Result<String> {
    let body = "grant_type=client_credentials&resource=urn%3Aheph&scope=sync";
    // heph-ci:ci-secret
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic aGVwaC1jaTpjaS1zZWNyZXQ=\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = http(port, &request)?;
    if status != 200 {
        bail!("the token endpoint answered {status}: {body}");
    }
    let v: Value = serde_json::from_str(&body)?;
    Ok(v["access_token"].as_str().context("access_token")?.to_string())
}

fn start_hub(hephd: &Path, dir: &Path, name: &str, extra: &[&str]) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let child = Command::new(hephd)
        .args(["--mode", "server", "--http-addr", &format!("127.0.0.1:{port}"), "--log", "warn", "--db"])
        .arg(dir.join(format!("{name}.db")))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", hephd.display()))?;
    let proc = Proc(child);
    let start = Instant::now();
    while http(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").map(|r| r.0).ok()
        != Some(200)
    {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("{name} hub did not answer /healthz");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((proc, port))
}

/// One connect: TCP + upgrade (+ token check) + hello → welcome, in µs.
async fn connect(
    port: u16,
    bearer: Option<&str>,
) -> Result<(u64, tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>)> {
    let t = Instant::now();
    let mut request = format!("ws://127.0.0.1:{port}/sync").into_client_request()?;
    if let Some(b) = bearer {
        request.headers_mut().insert("authorization", format!("Bearer {b}").parse()?);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        origin: "00000000000000000000000000000001".into(),
        cursor: 0,
        bootstrap: false,
        views: false,
        known: None,
    };
    ws.send(Message::Text(encode(&hello).into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
            Some(Ok(Message::Text(t2))) => match HubFrame::decode(t2.as_str())? {
                HubFrame::Welcome { .. } => break,
                other => bail!("expected welcome, got {other:?}"),
            },
            Some(Ok(_)) => {}
            other => bail!("connection ended before welcome: {other:?}"),
        }
    }
    Ok((u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX), ws))
}

async fn rounds(port: u16, bearer: Option<String>, args: &Args) -> Result<Vec<u64>> {
    let mut samples = Vec::new();
    for round in 0..args.rounds {
        let tasks: Vec<_> = (0..args.connects)
            .map(|_| {
                let bearer = bearer.clone();
                tokio::spawn(async move { connect(port, bearer.as_deref()).await })
            })
            .collect();
        let mut sockets = Vec::new();
        for task in tasks {
            let (us, ws) = task.await??;
            if round > 0 {
                samples.push(us);
            }
            sockets.push(ws);
        }
        for mut ws in sockets {
            let _ = ws.close(None).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(samples)
}

fn percentiles(mut v: Vec<u64>) -> Value {
    v.sort_unstable();
    let pick = |p: f64| {
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v.get(rank.clamp(1, v.len().max(1)) - 1).copied()
    };
    json!({"n": v.len(), "p50_us": pick(50.0), "p90_us": pick(90.0), "p99_us": pick(99.0), "max_us": v.last()})
}

fn metric(port: u16, bearer: &str, name: &str) -> Result<u64> {
    let (status, body) = http(
        port,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
        ),
    )?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    body.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).ok_or_else(|| anyhow!("no {name} in /metrics"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?;
    let hephd = args.hephd.clone().unwrap_or_else(|| here.with_file_name("hephd"));
    let provider_dir =
        args.provider.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../hub/tests/oidc"));
    let dir = tempfile::tempdir()?;
    let (_provider, issuer, provider_port) = start_provider(&provider_dir)?;
    let bearer = token(provider_port)?;
    let (_open, open_port) = start_hub(&hephd, dir.path(), "open", &[])?;
    let (_authed, authed_port) = start_hub(
        &hephd,
        dir.path(),
        "authed",
        &["--oidc-issuer", &issuer, "--oidc-audience", "heph", "--owner-sub", "heph-ci"],
    )?;
    eprintln!("auth_connect: {} rounds of {} concurrent connects per hub", args.rounds, args.connects);
    let open = rounds(open_port, None, &args).await?;
    let authed = rounds(authed_port, Some(bearer.clone()), &args).await?;
    let fetches = metric(authed_port, &bearer, "heph_hub_jwks_fetches_total ")?;
    let accepted = metric(authed_port, &bearer, "heph_hub_auth_accepted_total ")?;
    let out = json!({
        "connects": args.connects, "rounds_counted": args.rounds.saturating_sub(1),
        "open": percentiles(open), "authenticated": percentiles(authed),
        "jwks_fetches": fetches, "tokens_accepted": accepted,
    });
    println!("{out}");
    Ok(())
}
