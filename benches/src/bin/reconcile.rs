//! `reconcile`: what it costs a device to refill a hub that lost its store.
//!
//! A hub (`hephd --mode server`) can be replaced by an empty one (a new hub
//! id) or restored from an older copy of its store. The devices then hold
//! history the hub lacks, much of it *received* (made on other devices), so
//! pushing its own unacknowledged changes is not enough: a device that
//! notices (`welcome.diverged`, or a new hub id) sends `have` frames (every
//! document's heads, 4,096 documents per frame), the hub answers `need`
//! (the documents it lacks anything of, with its heads), and the device
//! pushes every change the hub lacks. This harness measures that exchange
//! end to end, over a real WebSocket to a real hephd process, with the
//! device driven by the engine's own `SpokeSession` on a file-backed
//! `Replica` (as `hephd --mode local` would drive it).
//!
//! Scenarios, in order, on one temp dir and one port:
//! 1. **setup**: an author device (in memory) imports `--count` small tasks
//!    and pushes them to hub A; a second device (a redb file) bootstraps
//!    from hub A, so every one of its nodes is received, none is its own.
//! 2. **replaced**: hub A is stopped and its store deleted; a fresh, empty
//!    hephd starts on the same port (a new hub id). The device connects.
//!    Measured: from the TCP connect until the device's session is idle
//!    (`SpokeSession::is_idle`: reconciliation done and every push
//!    acknowledged) and the hub's `/healthz` `head` equals the number of
//!    changes the device holds; the text frames and their bytes each way,
//!    by frame type. Frames that arrive after that point (the hub's live
//!    echo of the device's own pushes) are counted separately.
//! 3. **restored** (unless `--skip-restored`): the hub is stopped and its
//!    store copied; the device imports `--more` new tasks and pushes them;
//!    the hub is stopped again, the copy put back and hephd restarted (same
//!    hub id, a log shorter than what the device saw: `welcome.diverged`).
//!    Measured the same way.
//!
//! One JSON line per result on stdout, progress on stderr. Only 127.0.0.1
//! is used; every wait is bounded; hephd dies with the harness.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use heph_engine::sync::frame::{HubFrame, encode};
use heph_engine::sync::spoke::SpokeSession;
use heph_engine::{Node, NodeId, Replica};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Reconciliation after a hub replacement or restore: time, frames, bytes.
#[derive(Parser, Debug)]
#[command(name = "reconcile")]
struct Args {
    /// The hephd binary [default: `hephd` beside this binary].
    #[arg(long)]
    hephd: Option<PathBuf>,
    /// Tasks the device holds (all received from the first hub).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Tasks the device adds before the hub is restored from its older copy.
    #[arg(long, default_value_t = 2_000)]
    more: usize,
    /// Skip the "restored from an older copy" scenario.
    #[arg(long)]
    skip_restored: bool,
    /// Upper bound for any one sync, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Keep the temp dir (stores, hephd logs).
    #[arg(long)]
    keep: bool,
}

// ------------------------------------------------------------------ output

fn emit(mut v: Value) {
    if let Value::Object(m) = &mut v {
        m.insert("loadavg".into(), json!(fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[reconcile] {}", msg.as_ref());
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return -1.0 };
    let Some(close) = text.rfind(')') else { return -1.0 };
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

// ------------------------------------------------------------------ hephd

/// One `hephd --mode server` process on a given address and store.
struct Hephd {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
}

impl Hephd {
    /// Starts hephd on `addr` (`127.0.0.1:0` for any port) with store `db`,
    /// logging (JSON) to `log_path`; returns once it listens.
    fn start(bin: &Path, db: &Path, addr: &str, log_path: &Path) -> Result<Self> {
        let log_file = fs::File::create(log_path)?;
        let mut cmd = Command::new(bin);
        cmd.args(["--mode", "server", "--http-addr", addr, "--log", "info", "--log-json", "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, _) in std::env::vars() {
            if k.starts_with("HEPH_") {
                cmd.env_remove(k);
            }
        }
        // If this harness dies, so does hephd.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(log_path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("hub listening")) {
                let v: Value = serde_json::from_str(line).context("hephd's log line is not JSON")?;
                let addr = v["fields"]["addr"].as_str().ok_or_else(|| anyhow!("no addr in {line}"))?;
                let addr: SocketAddr = addr.parse()?;
                if !addr.ip().is_loopback() {
                    bail!("hephd listens on {addr}, not loopback");
                }
                return Ok(Self { child: Some(child), pid, addr });
            }
            if let Some(status) = child.try_wait()? {
                bail!("hephd exited ({status}) before listening:\n{text}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("hephd did not listen within 30 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// hephd's `/healthz` (hub id, head, pending changes, connections).
    fn healthz(&self) -> Result<Value> {
        let mut s = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr)?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let body = out.split_once("\r\n\r\n").map_or(out.as_str(), |(_, b)| b);
        Ok(serde_json::from_str(body)?)
    }

    fn head(&self) -> Result<u64> {
        self.healthz()?["head"].as_u64().ok_or_else(|| anyhow!("/healthz without a head"))
    }

    /// SIGTERM, then SIGKILL after 10 s; waits for the exit (the store is
    /// closed when this returns).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if !heph_benches::stop_process(&mut child) {
            log("hephd did not stop within 10 s of SIGTERM; killed it");
        }
    }
}

impl Drop for Hephd {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ tasks

/// `n` small tasks like hub_load's (title, two tags, priority, project, due).
fn tasks(first: usize, n: usize) -> Vec<Node> {
    let now = Utc::now();
    (first..first + n).map(|i| heph_benches::sample_task(NodeId::random(), i, now)).collect()
}

/// Every change the replica holds, over all its documents.
fn changes_held(replica: &Replica) -> Result<u64> {
    let (mut after, mut total) = (None, 0u64);
    loop {
        let page = replica.heads_after(after, 4096)?;
        let Some((last, _)) = page.last() else { return Ok(total) };
        after = Some(*last);
        for (doc, _) in &page {
            total += replica.changes_since(*doc, &[])?.len() as u64;
        }
    }
}

fn docs_held(replica: &Replica) -> Result<u64> {
    Ok(replica.store().read(|r| r.count())?)
}

// ------------------------------------------------------------------ one sync

/// Text frames and their bytes (the JSON text's length) one way, by type.
#[derive(Default)]
struct Tally {
    frames: u64,
    bytes: u64,
    by_type: BTreeMap<String, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, text: &str) {
        self.frames += 1;
        self.bytes += text.len() as u64;
        let kind = text.strip_prefix("{\"type\":\"").and_then(|t| t.split('"').next()).unwrap_or("?").to_string();
        let e = self.by_type.entry(kind).or_default();
        e.0 += 1;
        e.1 += text.len() as u64;
    }

    fn json(&self) -> Value {
        let by_type: serde_json::Map<String, Value> =
            self.by_type.iter().map(|(k, (f, b))| (k.clone(), json!({"frames": f, "bytes": b}))).collect();
        json!({"frames": self.frames, "bytes": self.bytes, "mb": r3(self.bytes as f64 / 1e6), "by_type": by_type})
    }
}

/// What one session did, until the device was idle and the hub's head
/// reached `expect_head`.
struct SyncRun {
    seconds: f64,
    sent: Tally,
    received: Tally,
    /// Frames received after that point, within a short drain.
    trailing: Tally,
    welcome: Value,
    /// Changes the device stored / got acknowledged / pushed as repairs.
    stored: usize,
    acknowledged: usize,
    repaired: usize,
    /// Time inside the device's session (decode, store reads and writes).
    device_s: f64,
    hub_cpu_s: f64,
    hub_head: u64,
}

impl SyncRun {
    fn json(&self) -> Value {
        json!({
            "seconds": r3(self.seconds), "sent": self.sent.json(), "received": self.received.json(),
            "trailing_received": self.trailing.json(), "welcome": self.welcome,
            "device_stored": self.stored, "device_acknowledged": self.acknowledged, "device_repaired": self.repaired,
            "device_session_s": r3(self.device_s), "hub_cpu_s": r3(self.hub_cpu_s), "hub_head": self.hub_head,
        })
    }
}

async fn next_text(ws: &mut Ws, timeout: Duration) -> Result<Option<String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("the hub closed the connection"),
            Ok(Some(Err(e))) => bail!("read failed: {e}"),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(Some(t.as_str().to_owned())),
            Ok(Some(Ok(Message::Close(f)))) => bail!("the hub closed the connection: {f:?}"),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Connects the device to `hub` and drives its `SpokeSession` until the
/// session is idle and the hub's head is at least `expect_head` (polled on
/// `/healthz` once the device is idle); then reads what still arrives until
/// 300 ms pass without a frame, and closes.
async fn sync(hub: &Hephd, device: &Replica, expect_head: u64, timeout: Duration) -> Result<SyncRun> {
    let cpu0 = cpu_seconds(hub.pid);
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(hub.url(), Some(config), true),
    )
    .await
    .context("connect timed out")??;
    let (mut sent, mut received) = (Tally::default(), Tally::default());
    let (mut session, hello) = SpokeSession::start(device)?;
    let hello = encode(&hello);
    sent.add(&hello);
    ws.send(Message::Text(hello.into())).await?;
    let (mut welcome, mut stored, mut acknowledged, mut repaired) = (Value::Null, 0, 0, 0);
    let mut device_time = Duration::ZERO;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("not idle within {timeout:?}");
        }
        // Once idle, the hub has acknowledged everything; its head is
        // checked between frames, briefly, rather than waiting for one.
        let idle = session.is_idle(device)?;
        let wait = if idle { Duration::from_millis(5) } else { left };
        if idle && hub.head()? >= expect_head {
            break;
        }
        let Some(text) = next_text(&mut ws, wait).await? else {
            if idle {
                continue;
            }
            bail!("no frame from the hub within {wait:?}");
        };
        received.add(&text);
        if text.starts_with("{\"type\":\"welcome\"")
            && let Ok(HubFrame::Welcome { hub, head, diverged, .. }) = HubFrame::decode(&text)
        {
            welcome = json!({"hub": hub, "head": head, "diverged": diverged});
        }
        let d0 = Instant::now();
        let step = session.receive(&text, device).map_err(|e| anyhow!("{e}"))?;
        device_time += d0.elapsed();
        stored += step.received;
        acknowledged += step.acknowledged;
        repaired += step.repaired;
        for frame in step.send {
            let text = encode(&frame);
            sent.add(&text);
            ws.send(Message::Text(text.into())).await?;
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let hub_cpu_s = cpu_seconds(hub.pid) - cpu0;
    let hub_head = hub.head()?;
    let mut trailing = Tally::default();
    while let Some(text) = next_text(&mut ws, Duration::from_millis(300)).await? {
        trailing.add(&text);
        session.receive(&text, device).map_err(|e| anyhow!("{e}"))?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(SyncRun {
        seconds,
        sent,
        received,
        trailing,
        welcome,
        stored,
        acknowledged,
        repaired,
        device_s: device_time.as_secs_f64(),
        hub_cpu_s,
        hub_head,
    })
}

// ------------------------------------------------------------------ main

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.hephd {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.parent().context("no exe dir")?.join("hephd"),
    };
    let dir = tempfile::Builder::new().prefix("heph-reconcile.").tempdir()?;
    let d = dir.path();
    let timeout = Duration::from_secs(args.timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    emit(json!({
        "op": "env", "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "hephd": bin.display().to_string(), "date": Utc::now().to_rfc3339(), "count": args.count, "more": args.more,
    }));

    // 1. Setup: hub A gets `count` tasks from an author; the device bootstraps.
    let mut hub = Hephd::start(&bin, &d.join("hub-a.db"), "127.0.0.1:0", &d.join("hephd-a.log"))?;
    let addr = hub.addr.to_string();
    log(format!("hub A (pid {}) on {addr}; the author imports {} tasks", hub.pid, args.count));
    let author = Replica::in_memory()?;
    author.import(&tasks(0, args.count), |_, _| {})?;
    let push = runtime.block_on(sync(&hub, &author, args.count as u64, timeout))?;
    drop(author);
    let device = Replica::open(&d.join("device.db"))?;
    let boot = runtime.block_on(sync(&hub, &device, 0, timeout))?;
    let (docs, changes) = (docs_held(&device)?, changes_held(&device)?);
    let own = device.pending_push()?;
    emit(json!({
        "op": "setup", "author_push_s": r3(push.seconds), "device_bootstrap_s": r3(boot.seconds),
        "hub_a_head": hub.head()?, "device_docs": docs, "device_changes": changes, "device_unpushed": own,
    }));
    if docs != args.count as u64 {
        bail!("the device holds {docs} nodes after its bootstrap; expected {}", args.count);
    }

    // 2. Replaced: hub A's store is gone; an empty hub starts on the same port.
    hub.stop();
    fs::remove_file(d.join("hub-a.db")).context("deleting hub A's store")?;
    let hub_b_db = d.join("hub-b.db");
    let mut hub = Hephd::start(&bin, &hub_b_db, &addr, &d.join("hephd-b.log"))?;
    log(format!("hub A deleted; empty hub B (pid {}) on {addr}; the device reconnects", hub.pid));
    let before = hub.healthz()?;
    let run = runtime.block_on(sync(&hub, &device, changes, timeout))?;
    let after = hub.healthz()?;
    emit(json!({
        "op": "reconcile_replaced", "docs": docs, "changes": changes,
        "hub_before": {"head": before["head"], "hub": before["hub"]},
        "hub_after": {"head": after["head"], "pending_changes": after["pending_changes"]},
        "ok": after["head"].as_u64() == Some(changes) && after["pending_changes"].as_u64() == Some(0),
        "run": run.json(),
    }));
    log(format!("replaced: {:.3} s, sent {} B, received {} B", run.seconds, run.sent.bytes, run.received.bytes));

    // 3. Restored: the hub goes back to a copy taken before the device's
    //    last `more` tasks were pushed.
    if !args.skip_restored {
        hub.stop();
        let copy = d.join("hub-b.copy");
        fs::copy(&hub_b_db, &copy).context("copying hub B's store")?;
        let mut started = Hephd::start(&bin, &hub_b_db, &addr, &d.join("hephd-b2.log"))?;
        std::mem::swap(&mut hub, &mut started);
        drop(started);
        device.import(&tasks(args.count, args.more), |_, _| {})?;
        let total = changes_held(&device)?;
        let pushed = runtime.block_on(sync(&hub, &device, total, timeout))?;
        log(format!("the device pushed {} more tasks in {:.3} s; restoring the copy", args.more, pushed.seconds));
        hub.stop();
        fs::copy(&copy, &hub_b_db).context("restoring hub B's store")?;
        let mut started = Hephd::start(&bin, &hub_b_db, &addr, &d.join("hephd-b3.log"))?;
        std::mem::swap(&mut hub, &mut started);
        drop(started);
        let before = hub.healthz()?;
        let run = runtime.block_on(sync(&hub, &device, total, timeout))?;
        let after = hub.healthz()?;
        emit(json!({
            "op": "reconcile_restored", "docs": docs_held(&device)?, "changes": total, "added": args.more,
            "hub_before": {"head": before["head"], "hub": before["hub"]},
            "hub_after": {"head": after["head"], "pending_changes": after["pending_changes"]},
            "ok": after["head"].as_u64() == Some(total) && after["pending_changes"].as_u64() == Some(0),
            "run": run.json(),
        }));
        log(format!("restored: {:.3} s, sent {} B, received {} B", run.seconds, run.sent.bytes, run.received.bytes));
    }

    hub.stop();
    drop(device);
    if args.keep {
        log(format!("kept {}", dir.keep().display()));
    }
    Ok(())
}
