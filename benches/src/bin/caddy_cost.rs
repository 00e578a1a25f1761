//! `caddy_cost`: what going through a TLS-terminating proxy (Caddy) costs a
//! device, against talking to `hephd` directly, on the same hub in one run.
//!
//! For each path (`--direct`, `--proxied`) it opens two devices, A and B,
//! both live at the hub's head. A pushes one new task at a time; the harness
//! notes the time of the send, of A's `ack` (push → ack: the durable commit
//! and the way back) and of B's receipt of the change (propagation: A → hub
//! → B). One push is in flight at a time, so this is latency, not
//! throughput. The two paths take turns in blocks (`--rounds`), so drift in
//! the machine's load falls on both alike. Prints one JSON line per path
//! and one with the ratios (proxied / direct) on stdout, a table on stderr.
//! See benches/README.md, "Behind Caddy"; `benches/hub/caddy.sh` starts
//! hephd and Caddy and runs this.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use automerge::ActorId;
use chrono::Utc;
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use heph_engine::sync::frame::{Bytes, ClientFrame, HubFrame, PROTOCOL_VERSION, WireChange, encode};
use heph_engine::{NodeDoc, NodeId};
use heph_hub::tls::{self, HubSocket, Trust};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Push → ack and propagation latency through a proxy and directly, side by side.
#[derive(Parser, Debug)]
#[command(name = "caddy_cost")]
struct Args {
    /// The hub directly, e.g. ws://127.0.0.1:8787.
    #[arg(long)]
    direct: String,
    /// The same hub through the proxy, e.g. wss://127.0.0.1:8443.
    #[arg(long)]
    proxied: String,
    /// Also trust the CAs in this PEM file (Caddy's internal root).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Timed pushes per path.
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Untimed pushes per path first (connections, caches, TLS session warm).
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Blocks each path's samples are split into, the paths taking turns.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Added as `"run"` to every JSON line.
    #[arg(long)]
    tag: Option<String>,
}

/// Two devices on one path to the hub.
struct Path {
    name: &'static str,
    a: HubSocket,
    b: HubSocket,
    push_ack_us: Vec<u32>,
    propagation_us: Vec<u32>,
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/sync") { base.to_string() } else { format!("{base}/sync") }
}

/// A device connection, live at the hub's head.
async fn device(base: &str, trust: &Trust) -> Result<HubSocket> {
    let request = url(base).into_client_request()?;
    let (mut ws, _) = tokio::time::timeout(TIMEOUT, tls::connect(request, trust, None))
        .await
        .context("connect timed out")?
        .with_context(|| format!("connecting to {base}"))?;
    // A cursor of 0 with no bootstrap: the catch-up is the whole log, read
    // and dropped until the welcome's head is reached.
    let origin = ActorId::random().to_hex_string();
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        origin,
        cursor: 0,
        bootstrap: false,
        views: false,
        known: None,
    };
    ws.send(Message::Text(encode(&hello).into())).await?;
    let head = match next(&mut ws).await? {
        HubFrame::Welcome { head, .. } => head,
        other => bail!("expected a welcome, got {other:?}"),
    };
    let mut at = 0;
    while at < head {
        if let HubFrame::Changes { changes, .. } = next(&mut ws).await? {
            at = changes.iter().filter_map(|c| c.seq).max().unwrap_or(at);
        }
    }
    Ok(ws)
}

async fn next(ws: &mut HubSocket) -> Result<HubFrame> {
    loop {
        let message = tokio::time::timeout(TIMEOUT, ws.next()).await.context("no frame within 30 s")?;
        match message {
            None => bail!("the hub closed the connection"),
            Some(Err(e)) => bail!("read failed: {e}"),
            Some(Ok(Message::Text(text))) => return Ok(HubFrame::decode(text.as_str())?),
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => {}
        }
    }
}

/// When A's ack of `batch` arrives.
async fn acked(ws: &mut HubSocket, batch: u64) -> Result<Instant> {
    loop {
        match next(ws).await? {
            HubFrame::Ack { batch: b, .. } if b == batch => return Ok(Instant::now()),
            HubFrame::Error { code, message, .. } => bail!("the hub refused the push: {code:?} {message}"),
            _ => {}
        }
    }
}

/// When B receives a change of `doc`.
async fn received(ws: &mut HubSocket, doc: NodeId) -> Result<Instant> {
    loop {
        if let HubFrame::Changes { changes, .. } = next(ws).await?
            && changes.iter().any(|c| c.doc == doc)
        {
            return Ok(Instant::now());
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Path {
    /// One push from A, timed to A's ack and to B's receipt.
    async fn once(&mut self, batch: u64, actor: &ActorId, timed: bool) -> Result<()> {
        let doc = NodeId::random();
        let node = heph_benches::sample_task(doc, usize::try_from(batch).unwrap_or(0), Utc::now());
        let (_, changes) = NodeDoc::create(&node, actor, "add")?;
        let changes =
            changes.iter().map(|c| WireChange { seq: None, doc, bytes: Bytes(c.raw_bytes().to_vec()) }).collect();
        let text = encode(&ClientFrame::Push { batch, changes });
        let sent = Instant::now();
        self.a.send(Message::Text(text.into())).await?;
        let (ack, got) = tokio::join!(acked(&mut self.a, batch), received(&mut self.b, doc));
        if timed {
            self.push_ack_us.push(micros(ack?.duration_since(sent)));
            self.propagation_us.push(micros(got?.duration_since(sent)));
        }
        Ok(())
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// p50, p99, max and mean in ms.
fn stats(samples: &mut [u32]) -> Value {
    samples.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let mean = samples.iter().map(|&s| f64::from(s)).sum::<f64>() / samples.len().max(1) as f64 / 1000.0;
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "samples": samples.len(),
        "p50_ms": r3(percentile(samples, 50.0)),
        "p99_ms": r3(percentile(samples, 99.0)),
        "max_ms": r3(samples.last().map_or(f64::NAN, |&m| f64::from(m) / 1000.0)),
        "mean_ms": r3(mean),
    })
}

fn emit(mut line: Value, tag: Option<&str>) {
    if let (Value::Object(m), Some(tag)) = (&mut line, tag) {
        m.insert("run".into(), json!(tag));
    }
    println!("{line}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let trust = Trust::load(args.ca_file.as_deref())?;
    let actor = ActorId::random();
    let mut paths = Vec::new();
    for (name, base) in [("direct", &args.direct), ("caddy", &args.proxied)] {
        let a = device(base, &trust).await?;
        let b = device(base, &trust).await?;
        paths.push(Path { name, a, b, push_ack_us: Vec::new(), propagation_us: Vec::new() });
    }
    let mut batch = 0u64;
    for path in &mut paths {
        for _ in 0..args.warmup {
            batch += 1;
            path.once(batch, &actor, false).await?;
        }
    }
    let rounds = args.rounds.max(1);
    let per_round = args.samples.div_ceil(rounds);
    for round in 0..rounds {
        // Take turns, and swap who goes first each round.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            for _ in 0..per_round {
                batch += 1;
                paths[i].once(batch, &actor, true).await?;
            }
        }
        eprintln!("[caddy_cost] round {}/{rounds}", round + 1);
    }
    let mut report = Vec::new();
    for path in &mut paths {
        let line = json!({
            "op": "caddy_cost",
            "path": path.name,
            "push_ack": stats(&mut path.push_ack_us),
            "propagation": stats(&mut path.propagation_us),
        });
        emit(line.clone(), args.tag.as_deref());
        report.push(line);
    }
    let ratio = |what: &str, p: &str| -> Result<f64> {
        let direct = report[0][what][p].as_f64().ok_or_else(|| anyhow!("no {what}.{p}"))?;
        let proxied = report[1][what][p].as_f64().ok_or_else(|| anyhow!("no {what}.{p}"))?;
        Ok((proxied / direct * 100.0).round() / 100.0)
    };
    emit(
        json!({
            "op": "caddy_cost_ratio",
            "push_ack_p50": ratio("push_ack", "p50_ms")?,
            "push_ack_p99": ratio("push_ack", "p99_ms")?,
            "propagation_p50": ratio("propagation", "p50_ms")?,
            "propagation_p99": ratio("propagation", "p99_ms")?,
        }),
        args.tag.as_deref(),
    );
    eprintln!(
        "{:<8} {:>14} {:>14} {:>16} {:>16}",
        "path", "push→ack p50", "push→ack p99", "propagation p50", "propagation p99"
    );
    for line in &report {
        let ms = |what: &str, p: &str| line[what][p].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "{:<8} {:>11.3} ms {:>11.3} ms {:>13.3} ms {:>13.3} ms",
            line["path"].as_str().unwrap_or("?"),
            ms("push_ack", "p50_ms"),
            ms("push_ack", "p99_ms"),
            ms("propagation", "p50_ms"),
            ms("propagation", "p99_ms"),
        );
    }
    for path in paths {
        let (mut a, mut b) = (path.a, path.b);
        let _ = a.close(None).await;
        let _ = b.close(None).await;
    }
    Ok(())
}
