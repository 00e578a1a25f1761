//! `hub_load`: a load harness for the hub (`hephd --mode server`).
//!
//! Starts its own `hephd --mode server` on 127.0.0.1 (ephemeral port, temp
//! `--db`), drives it over real WebSockets with the sync protocol
//! (`heph_engine::sync::frame`), prints one JSON line per result on stdout
//! (progress on stderr), and kills hephd at the end. See benches/README.md, "Hub".
//!
//! Phases, in order (`--phases` picks a subset, but later ones need the
//! preload): `preload`, `bootstrap`, `catchup`, `latency`, `latency_ref`,
//! `idle`, `fanout`. The write-path phases, run only when asked for and
//! needing no preload: `acks`, `acks1000`, `pushlat`, `pushrate`, and `storm` (last: it
//! restarts hephd).
//!
//! Every loop is bounded in count and in time; only 127.0.0.1 is contacted.

use std::collections::VecDeque;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use automerge::ActorId;
use chrono::{DateTime, Utc};
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use heph_engine::sync::frame::{Bytes, ClientFrame, HubFrame, PROTOCOL_VERSION, WireChange, encode};
use heph_engine::sync::spoke::SpokeSession;
use heph_engine::{Edit, NodeDoc, NodeId, Replica};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Load harness for `hephd --mode server`: preload, bootstrap, latency, fan-out, idle memory.
#[derive(Parser, Debug, Clone)]
#[command(name = "hub_load")]
struct Args {
    /// The hephd binary [default: `hephd` beside this binary].
    #[arg(long)]
    hephd: Option<PathBuf>,
    /// Phases to run, comma-separated (preload,bootstrap,catchup,latency,latency_ref,idle,fanout;
    /// write path: acks,acks1000,pushlat,pushrate,storm).
    #[arg(long, default_value = "preload,bootstrap,catchup,latency,latency_ref,idle,fanout")]
    phases: String,
    /// Task documents to preload.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Changes per preload push.
    #[arg(long, default_value_t = 250)]
    preload_batch: usize,
    /// Preload pushes in flight at once.
    #[arg(long, default_value_t = 1)]
    preload_window: usize,
    /// Latency: subscribers.
    #[arg(long, default_value_t = 100)]
    lat_subs: usize,
    /// Latency: changes per second (one change per push).
    #[arg(long, default_value_t = 100)]
    lat_rate: u64,
    /// Latency: seconds of writing.
    #[arg(long, default_value_t = 10)]
    lat_seconds: u64,
    /// The reference's latency setting: subscribers.
    #[arg(long, default_value_t = 10)]
    ref_subs: usize,
    /// The reference's latency setting: changes per second.
    #[arg(long, default_value_t = 50)]
    ref_rate: u64,
    /// The reference's latency setting: seconds.
    #[arg(long, default_value_t = 10)]
    ref_seconds: u64,
    /// Idle connections (also the fan-out subscribers).
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Fan-out: changes per push, one run per value (comma-separated).
    #[arg(long, default_value = "1,10")]
    fan_batches: String,
    /// Fan-out: seconds of writing per run (upper bound).
    #[arg(long, default_value_t = 10.0)]
    fan_seconds: f64,
    /// Fan-out: pushes per run (upper bound).
    #[arg(long, default_value_t = 3000)]
    fan_max_pushes: usize,
    /// Pass --queue to hephd (its per-connection live queue, in batches).
    #[arg(long)]
    queue: Option<usize>,
    /// Write path (`acks`): connections, each pushing one change at a time and waiting for its ack.
    #[arg(long, default_value_t = 100)]
    acks_conns: usize,
    /// Write path (`acks1000`): connections of the large run.
    #[arg(long, default_value_t = 1000)]
    acks_big_conns: usize,
    /// Write path (`acks`, `acks1000`): seconds of pushing.
    #[arg(long, default_value_t = 10.0)]
    acks_seconds: f64,
    /// Write path: changes pre-generated per connection [default: 300,000 / connections, within 200..=100,000].
    #[arg(long)]
    acks_max: Option<usize>,
    /// Write path: changes per document before a connection moves to a new
    /// one (its creation counts); the default keeps each connection on one
    /// document for the whole phase, the worst case for Automerge's apply.
    #[arg(long, default_value_t = CHAIN_MAX)]
    acks_doc_changes: usize,
    /// Write path: the phase fails when no ack arrives for this many seconds.
    #[arg(long, default_value_t = 10.0)]
    acks_stall: f64,
    /// Push → ack latency (`pushlat`): concurrent pushers, one run per value (comma-separated).
    #[arg(long, default_value = "1,100")]
    pushlat_pushers: String,
    /// Push → ack latency: seconds of pushing per run.
    #[arg(long, default_value_t = 10.0)]
    pushlat_seconds: f64,
    /// Push → ack latency at an offered load (`pushrate`): the pushers.
    #[arg(long, default_value_t = 100)]
    pushrate_pushers: usize,
    /// Push → ack latency at an offered load: pushes per second per pusher,
    /// one run per value (comma-separated).
    #[arg(long, default_value = "10,20,30,40")]
    pushrate_rates: String,
    /// Reconnect storm (`storm`): devices connecting at once after a restart of hephd.
    #[arg(long, default_value_t = 1000)]
    storm_devices: usize,
    /// Reconnect storm: each device's cursor is this many changes behind the head.
    #[arg(long, default_value_t = 100)]
    storm_back: u64,
    /// Reconnect storm: changes pushed first until the log holds at least this many.
    #[arg(long, default_value_t = 5000)]
    storm_min_head: u64,
    /// Added as `"run"` to every JSON line (to tell several runs apart in one file).
    #[arg(long)]
    tag: Option<String>,
    /// Keep the temp dir (hub.db, hephd.log).
    #[arg(long)]
    keep: bool,
}

static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

// ------------------------------------------------------------------ output

fn emit(mut v: Value) {
    if let Value::Object(m) = &mut v {
        m.insert("load1".into(), json!(load1()));
        if let Some(tag) = TAG.get() {
            m.insert("run".into(), json!(tag));
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[hub_load] {}", msg.as_ref());
}

fn load1() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(-1.0)
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// CPU seconds (user + system) of a process from /proc/PID/stat.
fn cpu_seconds(stat_path: &str) -> f64 {
    let Ok(text) = fs::read_to_string(stat_path) else { return -1.0 };
    let Some(close) = text.rfind(')') else { return -1.0 };
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After ")": state(3) ... utime(14) stime(15) → indexes 11, 12.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

fn self_cpu() -> f64 {
    cpu_seconds("/proc/self/stat")
}

/// A `VmXXX:` line of /proc/PID/status, in KiB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn latency_json(samples: &mut [u32]) -> Value {
    samples.sort_unstable();
    let mean = if samples.is_empty() {
        f64::NAN
    } else {
        samples.iter().map(|&s| f64::from(s)).sum::<f64>() / samples.len() as f64 / 1000.0
    };
    json!({
        "samples": samples.len(),
        "p50_ms": r3(percentile(samples, 50.0)),
        "p90_ms": r3(percentile(samples, 90.0)),
        "p99_ms": r3(percentile(samples, 99.0)),
        "max_ms": r3(samples.last().map_or(f64::NAN, |&m| f64::from(m) / 1000.0)),
        "mean_ms": r3(mean),
    })
}

/// Measures a phase's CPU: hephd's and this process's.
struct CpuMeter {
    hub_stat: String,
    hub0: f64,
    me0: f64,
}

impl CpuMeter {
    fn start(hub: &Hephd) -> Self {
        let hub_stat = format!("/proc/{}/stat", hub.pid);
        Self { hub0: cpu_seconds(&hub_stat), me0: self_cpu(), hub_stat }
    }
    fn json(&self) -> Value {
        json!({"hub_cpu_s": r3(cpu_seconds(&self.hub_stat) - self.hub0), "harness_cpu_s": r3(self_cpu() - self.me0)})
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

// ------------------------------------------------------------------ hephd

struct Hephd {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    log_path: PathBuf,
}

impl Hephd {
    /// Starts hephd on `dir/hub.db`, logging to `dir/<log>`.
    fn start(bin: &Path, dir: &Path, log: &str, queue: Option<usize>) -> Result<Self> {
        let log_path = dir.join(log);
        let log_file = fs::File::create(&log_path)?;
        let mut cmd = Command::new(bin);
        cmd.args(["--mode", "server", "--http-addr", "127.0.0.1:0", "--log", "info", "--log-json", "--db"])
            .arg(dir.join("hub.db"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(q) = queue {
            cmd.arg("--queue").arg(q.to_string());
        }
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
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("hub listening")) {
                let v: Value = serde_json::from_str(line).context("hephd's log line is not JSON")?;
                let addr = v["fields"]["addr"].as_str().ok_or_else(|| anyhow!("no addr in {line}"))?;
                let addr: SocketAddr = addr.parse()?;
                if !addr.ip().is_loopback() {
                    bail!("hephd listens on {addr}, not loopback");
                }
                return Ok(Self { child: Some(child), pid, addr, log_path });
            }
            if let Some(status) = child.try_wait()? {
                bail!("hephd exited ({status}) before listening:\n{text}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("hephd did not listen within 30 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    fn rss_kb(&self) -> u64 {
        status_kb(self.pid, "VmRSS:")
    }

    fn threads(&self) -> u64 {
        status_kb(self.pid, "Threads:")
    }

    /// GET a path over plain HTTP/1.1 (hephd's /healthz, /metrics).
    fn http_get(&self, path: &str) -> Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr)?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(out))
    }

    fn metric(&self, name: &str) -> Option<f64> {
        let text = self.http_get("/metrics").ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    }

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

// ------------------------------------------------------------------ changes

/// A small task like the reference's `taskDoc`: title, pending, two tags,
/// priority, project, due; its genesis and its content change.
fn task_change(id: NodeId, i: usize, actor: &ActorId, now: DateTime<Utc>) -> Result<Vec<(NodeId, Vec<u8>)>> {
    let node = heph_benches::sample_task(id, i, now);
    let (_doc, changes) = NodeDoc::create(&node, actor, "add")?;
    Ok(changes.iter().map(|c| (id, c.raw_bytes().to_vec())).collect())
}

fn push_text(batch: u64, changes: Vec<(NodeId, Vec<u8>)>) -> String {
    let changes = changes.into_iter().map(|(doc, bytes)| WireChange { seq: None, doc, bytes: Bytes(bytes) }).collect();
    encode(&ClientFrame::Push { batch, changes })
}

/// Change ids of timed changes: 8 bytes of a per-run magic, then the index.
/// Subscribers recognise them in the `doc` field and look up the send time.
struct Timed {
    base: Instant,
    magic: u64,
    magic_hex: [u8; 16],
    /// Send time (ns since `base`, 0 = not sent) by index.
    sent: Vec<AtomicU64>,
    next: AtomicU64,
}

impl Timed {
    fn new(capacity: usize) -> Self {
        let magic: u64 = rand_u64() | 1;
        let mut magic_hex = [0u8; 16];
        magic_hex.copy_from_slice(format!("{magic:016x}").as_bytes());
        Self {
            base: Instant::now(),
            magic,
            magic_hex,
            sent: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicU64::new(0),
        }
    }
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    /// `n` fresh ids.
    fn ids(&self, n: usize) -> Result<Vec<(u64, NodeId)>> {
        let first = self.next.fetch_add(n as u64, Ordering::Relaxed);
        if first + n as u64 > self.sent.len() as u64 {
            bail!("out of timed ids (capacity {})", self.sent.len());
        }
        Ok((first..first + n as u64)
            .map(|i| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&self.magic.to_be_bytes());
                b[8..].copy_from_slice(&i.to_be_bytes());
                (i, NodeId::from_bytes(b))
            })
            .collect())
    }
    fn mark_sent(&self, indexes: &[u64]) {
        let now = self.now_ns().max(1);
        for &i in indexes {
            self.sent[i as usize].store(now, Ordering::Release);
        }
    }
}

fn rand_u64() -> u64 {
    let id = NodeId::random();
    u64::from_le_bytes(id.as_bytes()[..8].try_into().unwrap_or([7; 8]))
}

/// Timed tasks, pre-encoded as pushes of `batch` tasks each: each push's
/// timed indexes, its number of changes (a task is its genesis and its content
/// change) and its text.
fn timed_pushes(
    timed: &Timed,
    pushes: usize,
    batch: usize,
    first_batch_id: u64,
) -> Result<Vec<(Vec<u64>, usize, String)>> {
    let actor = ActorId::random();
    let now = Utc::now();
    let mut out = Vec::with_capacity(pushes);
    for p in 0..pushes {
        let ids = timed.ids(batch)?;
        let mut changes = Vec::with_capacity(batch);
        for (i, id) in &ids {
            changes.extend(task_change(*id, *i as usize, &actor, now)?);
        }
        let n = changes.len();
        out.push((ids.iter().map(|(i, _)| *i).collect(), n, push_text(first_batch_id + p as u64, changes)));
    }
    Ok(out)
}

// ------------------------------------------------------------------ sockets

fn ws_config(small: bool) -> WebSocketConfig {
    let c = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
    if small { c.read_buffer_size(8 << 10).write_buffer_size(0) } else { c }
}

async fn connect(url: &str, small: bool) -> Result<Ws> {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config(small)), true),
    )
    .await
    .context("connect timed out")??;
    Ok(ws)
}

fn hello(cursor: u64, bootstrap: bool) -> String {
    encode(&ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        origin: format!("{:032x}", u128::from(rand_u64()) << 64 | u128::from(rand_u64())),
        cursor,
        bootstrap,
        views: false,
        known: None,
    })
}

async fn next_text(ws: &mut Ws, timeout: Duration) -> Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => bail!("no frame from the hub within {timeout:?}"),
            Ok(None) => bail!("the hub closed the connection"),
            Ok(Some(Err(e))) => bail!("read failed: {e}"),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(f)))) => bail!("the hub closed the connection: {f:?}"),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Connects and says hello; returns the socket and the welcome's head.
async fn open(url: &str, cursor: u64, small: bool) -> Result<(Ws, u64)> {
    let mut ws = connect(url, small).await?;
    ws.send(Message::Text(hello(cursor, false).into())).await?;
    let text = next_text(&mut ws, Duration::from_secs(30)).await?;
    match HubFrame::decode(&text)? {
        HubFrame::Welcome { head, .. } => Ok((ws, head)),
        other => bail!("expected welcome, got {other:?}"),
    }
}

/// The hub's head now, from `/healthz`. (Not a hello with a cursor past the
/// head: since protocol version 2 the hub takes that for a client that saw
/// another history and starts serving it a full snapshot bootstrap.)
async fn head(hub: &Hephd) -> Result<u64> {
    let body = hub.http_get("/healthz")?;
    let health: Value = serde_json::from_str(&body).with_context(|| format!("/healthz: {body}"))?;
    health["head"].as_u64().ok_or_else(|| anyhow!("/healthz without a head: {body}"))
}

/// Whether a `snapshot` frame says more follow. Looked up as text (base64
/// holds no quotes), not at the end: the last frame carries a `hash` after
/// `more` since protocol version 2.
fn snapshot_more(text: &str) -> bool {
    text.contains("\"more\":true")
}

async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
}

// ------------------------------------------------------------------ subscribers

#[derive(Default)]
struct SubStats {
    changes: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    last_ns: AtomicU64,
    samples: Mutex<Vec<u32>>,
    error: Mutex<Option<String>>,
    ended: AtomicBool,
}

static DOC_FIELD: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\"doc\":\""));

fn hex_u64(h: &[u8]) -> Option<u64> {
    std::str::from_utf8(h).ok().and_then(|s| u64::from_str_radix(s, 16).ok())
}

impl SubStats {
    /// One text frame from the hub. Only `changes` frames are looked at, and
    /// only their `"doc":"…"` fields (no JSON parse, no base64).
    fn on_text(&self, text: &str, timed: &Timed) -> Result<(), String> {
        let now = timed.now_ns();
        let bytes = text.as_bytes();
        if bytes.starts_with(b"{\"type\":\"changes\"") {
            let mut n = 0u64;
            let mut samples = Vec::new();
            for pos in DOC_FIELD.find_iter(bytes) {
                n += 1;
                let Some(id) = bytes.get(pos + 7..pos + 39) else { continue };
                if id[..16] != timed.magic_hex {
                    continue;
                }
                if let Some(i) = hex_u64(&id[16..])
                    && let Some(sent) = timed.sent.get(i as usize)
                {
                    let sent = sent.load(Ordering::Acquire);
                    if sent != 0 && now >= sent {
                        samples.push(((now - sent) / 1000).min(u64::from(u32::MAX)) as u32);
                    }
                }
            }
            if !samples.is_empty()
                && let Ok(mut s) = self.samples.lock()
            {
                s.extend(samples);
            }
            self.changes.fetch_add(n, Ordering::Relaxed);
            self.frames.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            self.last_ns.store(now, Ordering::Relaxed);
        } else if bytes.starts_with(b"{\"type\":\"error\"") {
            return Err(text.chars().take(300).collect());
        }
        Ok(())
    }

    fn reset(&self) {
        self.changes.store(0, Ordering::Relaxed);
        self.frames.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.last_ns.store(0, Ordering::Relaxed);
        if let Ok(mut s) = self.samples.lock() {
            s.clear();
        }
    }
}

/// Live subscribers, each its own WebSocket connection and tokio task.
struct Subs {
    stats: Vec<Arc<SubStats>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    connect_s: f64,
}

impl Subs {
    /// Connects `n` subscribers (at most 64 handshakes at a time), each saying
    /// hello with `cursor`; returns once every one has its welcome.
    async fn connect(url: &str, n: usize, cursor: u64, timed: &Arc<Timed>) -> Result<Self> {
        let t0 = Instant::now();
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(64));
        let (ready_tx, mut ready_rx) = mpsc::channel::<Result<()>>(n.max(1));
        let mut stats = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let s = Arc::new(SubStats::default());
            stats.push(s.clone());
            let (url, timed, gate, ready, mut stop_rx) =
                (url.to_string(), timed.clone(), gate.clone(), ready_tx.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let mut ws = match open(&url, cursor, true).await {
                    Ok((ws, _)) => ws,
                    Err(e) => {
                        let _ = ready.send(Err(e)).await;
                        return;
                    }
                };
                drop(permit);
                let _ = ready.send(Ok(())).await;
                drop(ready);
                let stopped = stop_rx.wait_for(|v| *v);
                tokio::pin!(stopped);
                let stop_asked = loop {
                    tokio::select! {
                        biased;
                        _ = &mut stopped => break true,
                        msg = ws.next() => match msg {
                            Some(Ok(Message::Text(t))) => {
                                if let Err(e) = s.on_text(t.as_str(), &timed) {
                                    *s.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                                    break false;
                                }
                            }
                            Some(Ok(Message::Close(f))) => {
                                *s.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!("closed by hub: {f:?}"));
                                break false;
                            }
                            None => {
                                *s.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some("connection ended".into());
                                break false;
                            }
                            Some(Err(e)) => {
                                *s.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!("read failed: {e}"));
                                break false;
                            }
                            Some(Ok(_)) => {}
                        }
                    }
                };
                if stop_asked {
                    close(ws).await;
                }
                s.ended.store(true, Ordering::Relaxed);
            }));
        }
        drop(ready_tx);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut ok = 0;
        while ok < n {
            match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                Ok(Some(Ok(()))) => ok += 1,
                Ok(Some(Err(e))) => {
                    let _ = stop.send(true);
                    bail!("subscriber {ok} of {n} failed to connect: {e:#}");
                }
                Ok(None) => bail!("subscribers ended before connecting"),
                Err(_) => {
                    let _ = stop.send(true);
                    bail!("only {ok} of {n} subscribers connected within 120 s");
                }
            }
        }
        Ok(Self { stats, tasks, stop, connect_s: t0.elapsed().as_secs_f64() })
    }

    fn reset(&self) {
        for s in &self.stats {
            s.reset();
        }
    }

    fn changes(&self) -> u64 {
        self.stats.iter().map(|s| s.changes.load(Ordering::Relaxed)).sum()
    }

    /// Waits (bounded) until every live subscriber has `expected` changes.
    async fn drain(&self, expected: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self
                .stats
                .iter()
                .all(|s| s.changes.load(Ordering::Relaxed) >= expected || s.ended.load(Ordering::Relaxed));
            if done {
                return self.stats.iter().all(|s| s.changes.load(Ordering::Relaxed) >= expected);
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn samples(&self) -> Vec<u32> {
        let mut all = Vec::new();
        for s in &self.stats {
            if let Ok(mut v) = s.samples.lock() {
                all.append(&mut v);
            }
        }
        all
    }

    fn errors(&self) -> (usize, Vec<String>) {
        let errs: Vec<String> = self.stats.iter().filter_map(|s| s.error.lock().ok().and_then(|e| e.clone())).collect();
        let first = errs.iter().take(3).cloned().collect();
        (errs.len(), first)
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

// ------------------------------------------------------------------ phases

/// Phase 1: One client creates `count` tasks and pushes them; time until all are acknowledged.
async fn preload(args: &Args, hub: &Hephd) -> Result<Value> {
    let cpu = CpuMeter::start(hub);
    let (mut ws, _) = open(&hub.url(), 0, false).await?;
    let actor = ActorId::random();
    let t0 = Instant::now();
    let mut create = Duration::ZERO;
    let (mut next, mut acked, mut stored, mut echoes, mut batch_id) = (0usize, 0usize, 0usize, 0u64, 0u64);
    // (batch, tasks, changes) of each push in flight.
    let mut in_flight: VecDeque<(u64, usize, usize)> = VecDeque::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while acked < args.count {
        while in_flight.len() < args.preload_window.max(1) && next < args.count {
            let end = (next + args.preload_batch.max(1)).min(args.count);
            let c0 = Instant::now();
            let now = Utc::now();
            let mut changes = Vec::with_capacity(2 * (end - next));
            for i in next..end {
                changes.extend(task_change(NodeId::random(), i, &actor, now)?);
            }
            create += c0.elapsed();
            batch_id += 1;
            let n_changes = changes.len();
            ws.send(Message::Text(push_text(batch_id, changes).into())).await?;
            in_flight.push_back((batch_id, end - next, n_changes));
            next = end;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let text = next_text(&mut ws, left.max(Duration::from_millis(1))).await?;
        if text.starts_with("{\"type\":\"changes\"") {
            echoes += 1; // our own changes, fanned out back to us
            continue;
        }
        match HubFrame::decode(&text)? {
            HubFrame::Ack { batch, seqs, .. } => {
                let Some((want, n, n_changes)) = in_flight.pop_front() else {
                    bail!("ack {batch} with nothing in flight")
                };
                if want != batch || seqs.len() != n_changes {
                    bail!("ack of batch {batch} with {} seqs; expected batch {want} with {n_changes}", seqs.len());
                }
                acked += n;
                stored += seqs.iter().filter(|s| **s != 0).count();
                if acked % 2000 < args.preload_batch || acked == args.count {
                    log(format!("preload: {acked}/{} acknowledged, {:.1} s", args.count, t0.elapsed().as_secs_f64()));
                }
            }
            HubFrame::Error { code, message, .. } => bail!("hub error {code:?}: {message}"),
            other => bail!("unexpected frame during preload: {other:?}"),
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    close(ws).await;
    Ok(merge(
        json!({
            "op": "preload", "count": args.count, "batch": args.preload_batch, "window": args.preload_window,
            "seconds": r3(seconds), "docs_per_s": r1(args.count as f64 / seconds),
            "create_s": r3(create.as_secs_f64()), "stored": stored, "echo_frames": echoes,
            "hub_rss_kb": hub.rss_kb(),
        }),
        cpu.json(),
    ))
}

/// Phases 2 and 2b: A fresh device with an in-memory replica: `hello` with cursor 0,
/// driven by the engine's `SpokeSession` (as a device would); time until its
/// cursor reaches the welcome's head. `snapshots`: bootstrap from compacted
/// documents (the default for a new device); otherwise the whole change log.
async fn bootstrap(hub: &Hephd, snapshots: bool, expect_docs: usize) -> Result<Value> {
    let cpu = CpuMeter::start(hub);
    let replica = Replica::in_memory()?;
    let t0 = Instant::now();
    let mut ws = connect(&hub.url(), false).await?;
    let connected = t0.elapsed();
    let (mut session, first) = SpokeSession::start(&replica)?;
    let first = match first {
        ClientFrame::Hello { version, origin, cursor, known, .. } => {
            ClientFrame::Hello { version, origin, cursor, bootstrap: snapshots, views: false, known }
        }
        other => other,
    };
    ws.send(Message::Text(encode(&first).into())).await?;
    let (mut head, mut frames, mut bytes, mut received) = (None::<u64>, 0u64, 0u64, 0usize);
    let mut apply = Duration::ZERO;
    let mut first_data = None;
    let (mut more_snapshots, mut cursor_at_head) = (false, None::<u64>);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let text = next_text(&mut ws, left.max(Duration::from_millis(1))).await?;
        frames += 1;
        bytes += text.len() as u64;
        if head.is_none() && text.starts_with("{\"type\":\"welcome\"") {
            if let HubFrame::Welcome { head: h, .. } = HubFrame::decode(&text)? {
                head = Some(h);
            }
        } else if first_data.is_none() {
            first_data = Some(t0.elapsed());
        }
        if text.starts_with("{\"type\":\"snapshot\"") {
            more_snapshots = snapshot_more(&text);
        }
        let a0 = Instant::now();
        let step = session.receive(&text, &replica).map_err(|e| anyhow!("{e}"))?;
        received += step.received;
        let cursor = replica.cursors()?.hub_cursor;
        apply += a0.elapsed();
        for f in step.send {
            ws.send(Message::Text(encode(&f).into())).await?;
        }
        if let Some(h) = head
            && cursor >= h
        {
            // The engine moves the cursor to `upto` on every snapshot frame,
            // also those with more to come: wait for the last one too.
            cursor_at_head.get_or_insert(frames);
            if !more_snapshots {
                break;
            }
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    close(ws).await;
    let docs = replica.store().read(|r| r.count())?;
    if docs as usize != expect_docs {
        log(format!("bootstrap: the device has {docs} nodes; expected {expect_docs}"));
    }
    Ok(merge(
        json!({
            "op": if snapshots { "bootstrap" } else { "catchup" },
            "head": head, "docs": docs, "received": received, "seconds": r3(seconds),
            "docs_per_s": r1(docs as f64 / seconds),
            "connect_ms": r3(connected.as_secs_f64() * 1000.0),
            "first_data_ms": r3(first_data.unwrap_or_default().as_secs_f64() * 1000.0),
            "apply_s": r3(apply.as_secs_f64()), "frames": frames, "mb": r3(bytes as f64 / 1e6),
            "cursor_at_head_after_frames": cursor_at_head,
        }),
        cpu.json(),
    ))
}

/// Phase 2d: A bootstrap cut off after its first snapshot frame, then resumed as a
/// device would (a new `SpokeSession` on the same replica): does the device
/// end up with every document?
async fn bootstrap_resume(hub: &Hephd, expect_docs: usize) -> Result<Value> {
    let replica = Replica::in_memory()?;
    let url = hub.url();
    // Session 1: hello, welcome, one snapshot frame, then the connection drops.
    let mut ws = connect(&url, false).await?;
    let (mut session, hello) = SpokeSession::start(&replica)?;
    ws.send(Message::Text(encode(&hello).into())).await?;
    let mut first_more = None;
    while first_more.is_none() {
        let text = next_text(&mut ws, Duration::from_secs(60)).await?;
        if text.starts_with("{\"type\":\"snapshot\"") {
            first_more = Some(snapshot_more(&text));
        }
        session.receive(&text, &replica).map_err(|e| anyhow!("{e}"))?;
    }
    drop(ws);
    let after_cut = replica.store().read(|r| r.count())?;
    let cursor_after_cut = replica.cursors()?.hub_cursor;
    // Session 2: resume from the stored cursor, until the session is idle (or 5 s of silence).
    let mut ws = connect(&url, false).await?;
    let (mut session, hello) = SpokeSession::start(&replica)?;
    let resume_hello = match &hello {
        ClientFrame::Hello { cursor, bootstrap, .. } => json!({"cursor": cursor, "bootstrap": bootstrap}),
        _ => Value::Null,
    };
    ws.send(Message::Text(encode(&hello).into())).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Ok(text) = next_text(&mut ws, Duration::from_secs(5)).await else { break };
        session.receive(&text, &replica).map_err(|e| anyhow!("{e}"))?;
        if session.is_idle(&replica)? && replica.store().read(|r| r.count())? as usize >= expect_docs {
            break;
        }
    }
    close(ws).await;
    let after_resume = replica.store().read(|r| r.count())?;
    Ok(json!({
        "op": "bootstrap_resume", "expected_docs": expect_docs, "first_frame_more": first_more,
        "docs_after_cut": after_cut, "cursor_after_cut": cursor_after_cut, "resume_hello": resume_hello,
        "docs_after_resume": after_resume, "idle_after_resume": session.is_idle(&replica)?,
        "ok": after_resume as usize == expect_docs,
    }))
}

/// Phase 2c: The same bootstrap, receiving only (no decode, no apply): what the
/// hub and the socket cost.
async fn bootstrap_recv(hub: &Hephd) -> Result<Value> {
    let cpu = CpuMeter::start(hub);
    let t0 = Instant::now();
    let mut ws = connect(&hub.url(), false).await?;
    ws.send(Message::Text(hello(0, true).into())).await?;
    let (mut frames, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let text = next_text(&mut ws, left.max(Duration::from_millis(1))).await?;
        frames += 1;
        bytes += text.len() as u64;
        if text.starts_with("{\"type\":\"snapshot\"") && !snapshot_more(&text) {
            break;
        }
        if text.starts_with("{\"type\":\"error\"") {
            bail!("hub error: {text}");
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    close(ws).await;
    Ok(merge(
        json!({"op": "bootstrap_recv", "seconds": r3(seconds), "frames": frames, "mb": r3(bytes as f64 / 1e6)}),
        cpu.json(),
    ))
}

/// Phase 3: `subs` live subscribers, one writer pushing `rate` new tasks per second
/// (one change per push, paced, not waiting for acks) for `seconds`; each
/// subscriber records send → receipt.
async fn latency(hub: &Hephd, timed: &Arc<Timed>, op: &str, subs: usize, rate: u64, seconds: u64) -> Result<Value> {
    let total = (rate * seconds) as usize;
    let pushes = timed_pushes(timed, total, 1, 1)?;
    let url = hub.url();
    let head = head(hub).await?;
    let subs_set = Subs::connect(&url, subs, head, timed).await?;
    let (ws, _) = open(&url, head, false).await?;
    let (mut sink, mut stream) = ws.split();
    // Acks (and the echo of our own changes) are read beside the paced sends.
    let ack_sent: Arc<Vec<AtomicU64>> = Arc::new((0..=total).map(|_| AtomicU64::new(0)).collect());
    let reader = {
        let (ack_sent, timed) = (ack_sent.clone(), timed.clone());
        tokio::spawn(async move {
            let (mut acks, mut ack_lat) = (0usize, Vec::with_capacity(total));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 60);
            while acks < total {
                let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, stream.next()).await else { break };
                let Message::Text(t) = msg else { continue };
                if !t.as_str().starts_with("{\"type\":\"ack\"") {
                    continue;
                }
                let now = timed.now_ns();
                if let Ok(HubFrame::Ack { batch, .. }) = HubFrame::decode(t.as_str()) {
                    acks += 1;
                    let s = ack_sent.get(batch as usize).map_or(0, |a| a.load(Ordering::Acquire));
                    if s != 0 {
                        ack_lat.push(((now - s) / 1000) as u32);
                    }
                }
            }
            (acks, ack_lat, stream)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // let the subscriptions settle
    let cpu = CpuMeter::start(hub);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = tokio::time::Instant::now();
    let hard_stop = t0 + Duration::from_secs(seconds + 5);
    let (mut written, mut written_changes) = (0usize, 0usize);
    for (indexes, n_changes, text) in pushes {
        let due = t0 + interval * written as u32;
        if tokio::time::Instant::now() > hard_stop {
            break;
        }
        tokio::time::sleep_until(due).await;
        timed.mark_sent(&indexes);
        ack_sent[written + 1].store(timed.now_ns().max(1), Ordering::Release);
        sink.send(Message::Text(text.into())).await?;
        written += 1;
        written_changes += n_changes;
    }
    let write_s = t0.elapsed().as_secs_f64();
    let complete = subs_set.drain(written_changes as u64, Duration::from_secs(10)).await;
    let cpu = cpu.json();
    let (acks, mut ack_lat, stream) =
        tokio::time::timeout(Duration::from_secs(70), reader).await.context("ack reader hung")??;
    if let Ok(ws) = sink.reunite(stream) {
        close(ws).await;
    }
    let mut samples = subs_set.samples();
    let delivered = subs_set.changes();
    let (errors, first_errors) = subs_set.errors();
    subs_set.stop().await;
    Ok(merge(
        merge(
            json!({
                "op": op, "subscribers": subs, "rate": rate, "tasks": written, "changes": written_changes,
                "write_seconds": r3(write_s), "expected": written_changes * subs, "deliveries": delivered, "complete": complete,
                "acks": acks, "ack": latency_json(&mut ack_lat),
                "sub_errors": errors, "first_errors": first_errors,
            }),
            latency_json(&mut samples),
        ),
        cpu,
    ))
}

/// Phase 5: `n` idle live connections; hephd's VmRSS before and after. The
/// connections stay open for the fan-out.
async fn idle(hub: &Hephd, timed: &Arc<Timed>, n: usize) -> Result<(Value, Subs)> {
    let url = hub.url();
    let head = head(hub).await?;
    // A settled hub: its background indexing of what earlier phases wrote
    // is done (else the memory it still has to touch is not counted).
    let t_settle = Instant::now();
    while hub.metric("heph_hub_stale_docs").is_some_and(|n| n > 0.0) && t_settle.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settle_s = t_settle.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = hub.rss_kb();
    let threads_before = hub.threads();
    let subs = Subs::connect(&url, n, head, timed).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = hub.rss_kb();
    let health: Value =
        hub.http_get("/healthz").ok().and_then(|b| serde_json::from_str(&b).ok()).unwrap_or(Value::Null);
    let v = json!({
        "op": "idle", "connections": n, "hub_connections": health["connections"], "settle_s": r1(settle_s),
        "connect_s": r3(subs.connect_s), "rss_before_kb": before, "rss_idle_kb": after,
        "rss_idle_mb": r1(after as f64 / 1024.0),
        "per_conn_kb": r1((after as f64 - before as f64) / n.max(1) as f64),
        "hub_threads_before": threads_before, "hub_threads": hub.threads(),
        "harness_rss_kb": status_kb(std::process::id(), "VmRSS:"),
    });
    Ok((v, subs))
}

/// Phase 4: A writer pushing as fast as acks allow (one push in flight) to `subs`;
/// deliveries per second summed over subscribers.
async fn fanout(hub: &Hephd, timed: &Arc<Timed>, subs: &Subs, batch: usize, args: &Args) -> Result<Value> {
    let max_pushes = args.fan_max_pushes.min(60_000 / batch.max(1)).max(1);
    log(format!("fanout: preparing {max_pushes} pushes of {batch}"));
    let pushes = timed_pushes(timed, max_pushes, batch, 1)?;
    let url = hub.url();
    let head = head(hub).await?;
    let (mut ws, _) = open(&url, head, false).await?;
    subs.reset();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = CpuMeter::start(hub);
    let dropped0 = hub.metric("heph_hub_dropped_slow_total");
    let start_ns = timed.now_ns();
    let t0 = Instant::now();
    let stop_at = t0 + Duration::from_secs_f64(args.fan_seconds);
    let (mut pushed, mut changes, mut echoes) = (0usize, 0u64, 0u64);
    for (indexes, n_changes, text) in pushes {
        if Instant::now() > stop_at {
            break;
        }
        timed.mark_sent(&indexes);
        ws.send(Message::Text(text.into())).await?;
        loop {
            let text = next_text(&mut ws, Duration::from_secs(30)).await?;
            if text.starts_with("{\"type\":\"ack\"") {
                break;
            }
            if text.starts_with("{\"type\":\"error\"") {
                bail!("hub error: {text}");
            }
            echoes += 1;
        }
        pushed += 1;
        changes += n_changes as u64;
    }
    let write_s = t0.elapsed().as_secs_f64();
    let complete = subs.drain(changes, Duration::from_secs(60)).await;
    let drain_s = t0.elapsed().as_secs_f64();
    let cpu = cpu.json();
    close(ws).await;
    let delivered = subs.changes();
    let frames: u64 = subs.stats.iter().map(|s| s.frames.load(Ordering::Relaxed)).sum();
    let mb: u64 = subs.stats.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
    let end_ns = subs.stats.iter().map(|s| s.last_ns.load(Ordering::Relaxed)).max().unwrap_or(start_ns);
    let window = (end_ns.saturating_sub(start_ns) as f64 / 1e9).max(1e-9);
    let live = subs.stats.iter().filter(|s| !s.ended.load(Ordering::Relaxed)).count();
    let (errors, first_errors) = subs.errors();
    let mut samples = subs.samples();
    let dropped = match (dropped0, hub.metric("heph_hub_dropped_slow_total")) {
        (Some(a), Some(b)) => json!(b - a),
        _ => Value::Null,
    };
    Ok(merge(
        json!({
            "op": "fanout", "batch": batch, "subscribers": subs.stats.len(), "live_subscribers": live,
            "pushes": pushed, "changes": changes, "write_seconds": r3(write_s),
            "pushes_per_s": r1(pushed as f64 / write_s),
            "expected": changes * subs.stats.len() as u64, "deliveries": delivered, "complete": complete,
            "seconds": r3(window), "drain_seconds": r3(drain_s),
            "deliveries_per_s": r1(delivered as f64 / window), "frames": frames,
            "frames_per_s": r1(frames as f64 / window), "mb": r3(mb as f64 / 1e6),
            "echo_frames": echoes, "dropped_slow": dropped, "sub_errors": errors, "first_errors": first_errors,
            "latency": latency_json(&mut samples), "hub_rss_kb": hub.rss_kb(),
        }),
        cpu,
    ))
}

// ------------------------------------------------------------------ write path

/// The longest chain of changes one document gets; a connection needing more
/// changes gets more documents.
const CHAIN_MAX: usize = 5000;

/// Changes to push one at a time, in order, each with its document.
type Chain = Vec<(NodeId, Vec<u8>)>;

/// One task document's changes in order: its creation (as [`task_change`]),
/// then edits of its title, each one change depending on the one before.
fn doc_chain(i: usize, len: usize, now: DateTime<Utc>) -> Result<Chain> {
    let id = NodeId::random();
    let actor = ActorId::random();
    let node = heph_benches::sample_task(id, i, now);
    let (mut doc, created) = NodeDoc::create(&node, &actor, "add")?;
    let mut out: Vec<(NodeId, Vec<u8>)> = created.iter().map(|c| (id, c.raw_bytes().to_vec())).collect();
    let mut k = 0i64;
    while out.len() < len {
        k += 1;
        let at = now + chrono::Duration::milliseconds(k);
        let change = doc
            .edit(&[Edit::Title(format!("task {i} rev {k}"))], "edit", at)?
            .ok_or_else(|| anyhow!("an edit of the title made no change"))?;
        out.push((id, change.raw_bytes().to_vec()));
    }
    out.truncate(len.max(1));
    Ok(out)
}

/// `conns` chains of `per_conn` changes each (one document per `per_doc`
/// changes), generated on every core, with progress on stderr.
fn chains(conns: usize, per_conn: usize, per_doc: usize) -> Result<Vec<Chain>> {
    let t0 = Instant::now();
    let now = Utc::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(conns.max(1));
    let done = AtomicU64::new(0);
    let total = (conns * per_conn) as u64;
    let mut slots: Vec<Option<Result<Chain>>> = (0..conns).map(|_| None).collect();
    std::thread::scope(|scope| {
        let done = &done;
        let mut handles = Vec::new();
        for (t, chunk) in slots.chunks_mut(conns.div_ceil(threads).max(1)).enumerate() {
            let first = t * conns.div_ceil(threads).max(1);
            handles.push(scope.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    let conn = first + j;
                    let mut chain = Vec::with_capacity(per_conn);
                    let mut r = Ok(());
                    while chain.len() < per_conn {
                        let len = (per_conn - chain.len()).min(per_doc);
                        match doc_chain(conn * 100_000 + chain.len() / per_doc, len, now) {
                            Ok(c) => chain.extend(c),
                            Err(e) => {
                                r = Err(e);
                                break;
                            }
                        }
                        done.fetch_add(len as u64, Ordering::Relaxed);
                    }
                    *slot = Some(r.map(|()| chain));
                }
            }));
        }
        let mut last = Instant::now();
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= Duration::from_secs(2) {
                last = Instant::now();
                let d = done.load(Ordering::Relaxed);
                log(format!("  generated {d}/{total} changes, {:.1} s", t0.elapsed().as_secs_f64()));
            }
        }
    });
    let out = slots.into_iter().map(|s| s.unwrap_or_else(|| Err(anyhow!("a generator thread died")))).collect();
    log(format!("  generated {total} changes in {:.1} s", t0.elapsed().as_secs_f64()));
    out
}

static SEQ_FIELD: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\"seq\":"));

/// The number of changes in a `changes` frame and the highest seq among them
/// (by text: its `"seq":N` fields).
fn scan_seqs(bytes: &[u8]) -> (u64, u64) {
    let (mut n, mut max) = (0u64, 0u64);
    for pos in SEQ_FIELD.find_iter(bytes) {
        n += 1;
        let digits = bytes[pos + 6..].iter().take_while(|b| b.is_ascii_digit());
        let seq = digits.fold(0u64, |acc, b| acc.saturating_mul(10).saturating_add(u64::from(b - b'0')));
        max = max.max(seq);
    }
    (n, max)
}

/// Every sample of `/metrics`, by its name with labels.
fn metrics_map(hub: &Hephd) -> Option<std::collections::BTreeMap<String, f64>> {
    let text = hub.http_get("/metrics").ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.trim().rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.trim().to_string(), v.parse::<f64>().ok()?)))
            .collect(),
    )
}

/// Each task's output, in order, waiting at most 10 s for each; a task that
/// failed or hung (then aborted) gives `failed` of why.
async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>, failed: impl Fn(String) -> T) -> Vec<T> {
    let mut outs = Vec::with_capacity(tasks.len());
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout(Duration::from_secs(10), t).await {
            Ok(Ok(o)) => outs.push(o),
            Ok(Err(e)) => outs.push(failed(format!("task failed: {e}"))),
            Err(_) => {
                abort.abort();
                outs.push(failed("task hung; aborted".into()));
            }
        }
    }
    outs
}

type Metrics = Option<std::collections::BTreeMap<String, f64>>;

/// after − before of one sample; `None` when either side lacks it.
fn metric_delta(before: &Metrics, after: &Metrics, key: &str) -> Option<f64> {
    Some(after.as_ref()?.get(key)? - before.as_ref()?.get(key)?)
}

/// What the write path's metrics say between two readings: group commits,
/// the group-size histogram, changes stored, live deliveries.
fn write_metrics(before: &Metrics, after: &Metrics, seconds: f64) -> Value {
    let commits = metric_delta(before, after, "heph_hub_commits_total");
    let batches = metric_delta(before, after, "heph_hub_group_batches_sum");
    let groups = metric_delta(before, after, "heph_hub_group_batches_count");
    let deliveries = metric_delta(before, after, "heph_hub_live_deliveries_total");
    let mut buckets = Vec::new();
    if let Some(a) = after {
        for (k, v) in a.iter().filter(|(k, _)| k.starts_with("heph_hub_group_batches_bucket{")) {
            let le = k.split("le=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?").to_string();
            let b = before.as_ref().and_then(|b| b.get(k)).copied().unwrap_or(0.0);
            buckets.push((le, v - b));
        }
    }
    buckets.sort_by(|a, b| {
        let f = |s: &str| if s == "+Inf" { f64::INFINITY } else { s.parse().unwrap_or(f64::NAN) };
        f(&a.0).total_cmp(&f(&b.0))
    });
    let per_s = |x: Option<f64>| x.map(|x| r1(x / seconds.max(1e-9)));
    json!({
        "commits": commits, "commits_per_s": per_s(commits),
        "group_batches": batches, "group_commits": groups,
        "group_mean": match (batches, commits) { (Some(b), Some(c)) if c > 0.0 => json!(r3(b / c)), _ => Value::Null },
        "group_buckets": if buckets.is_empty() { Value::Null } else { json!(buckets) },
        "changes_stored": metric_delta(before, after, "heph_hub_changes_stored_total"),
        "live_deliveries": deliveries, "live_deliveries_per_s": per_s(deliveries),
        "frames_sent": metric_delta(before, after, "heph_hub_frames_sent_total"),
        "dropped_slow": metric_delta(before, after, "heph_hub_dropped_slow_total"),
        // The writer's busy time (applying and committing groups) per second.
        "writer_busy": metric_delta(before, after, "heph_hub_commit_seconds_total").map(|x| r3(x / seconds.max(1e-9))),
    })
}

/// The number of connections hephd counts now (`/healthz`).
fn hub_connections(hub: &Hephd) -> Option<u64> {
    let body = hub.http_get("/healthz").ok()?;
    serde_json::from_str::<Value>(&body).ok()?["connections"].as_u64()
}

/// Waits (bounded) until hephd counts at most `n` connections; returns its count.
async fn connections_down_to(hub: &Hephd, n: u64, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = hub_connections(hub);
        if c.is_none_or(|c| c <= n) || Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn first_line(text: &str) -> String {
    text.chars().take(300).collect()
}

/// What one pushing connection saw.
#[derive(Default)]
struct PusherOut {
    /// Push → ack, µs.
    lat: Vec<u32>,
    acked: u64,
    /// Acks with a seq of 0 (stored before) or changes left waiting.
    odd_acks: u64,
    live_changes: u64,
    live_frames: u64,
    exhausted: bool,
    end: Option<Instant>,
    error: Option<String>,
}

/// One connection of the write-path phases: says hello at `head`, waits for
/// `go`, then pushes its chain one change at a time, each after the ack of
/// the one before, until `window` closes; reads everything the hub sends
/// meanwhile (live `changes` frames are counted, not decoded).
#[allow(clippy::too_many_arguments)]
async fn pusher(
    url: String,
    head: u64,
    chain: Chain,
    pace: Option<(Duration, Duration)>,
    gate: Arc<Semaphore>,
    ready: mpsc::Sender<Result<()>>,
    mut go: watch::Receiver<Option<Instant>>,
    window: Arc<AtomicBool>,
    mut abort: watch::Receiver<bool>,
    acked_total: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    mut release: watch::Receiver<bool>,
) -> PusherOut {
    let mut out = PusherOut::default();
    let permit = gate.acquire_owned().await;
    let mut ws = match open(&url, head, true).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            out.error = Some(format!("connect: {e:#}"));
            let _ = ready.send(Err(e)).await;
            return out;
        }
    };
    drop(permit);
    let _ = ready.send(Ok(())).await;
    drop(ready);
    // Waiting for the start, reading whatever comes (nothing should).
    let started = loop {
        tokio::select! {
            r = go.wait_for(Option::is_some) => break r.ok().and_then(|t0| *t0),
            _ = abort.wait_for(|a| *a) => break None,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let b = t.as_bytes();
                    if b.starts_with(b"{\"type\":\"changes\"") {
                        out.live_changes += scan_seqs(b).0;
                        out.live_frames += 1;
                    } else if b.starts_with(b"{\"type\":\"error\"") {
                        out.error = Some(format!("before the start: {}", first_line(t.as_str())));
                        break None;
                    }
                }
                Some(Ok(_)) => {}
                other => {
                    out.error = Some(format!("before the start: connection ended ({other:?})"));
                    break None;
                }
            }
        }
    };
    let Some(t0) = started else {
        finished.fetch_add(1, Ordering::Relaxed);
        close(ws).await;
        return out;
    };
    let aborted = abort.wait_for(|a| *a);
    tokio::pin!(aborted);
    let mut chain = chain.into_iter();
    let mut batch = 0u64;
    'push: while window.load(Ordering::Relaxed) {
        let Some(change) = chain.next() else {
            out.exhausted = true;
            break;
        };
        batch += 1;
        let t = match pace {
            Some((every, offset)) => {
                let due = t0 + offset + every.mul_f64((batch - 1) as f64);
                // Reading the live changes until it is due.
                while Instant::now() < due {
                    let msg = tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => break,
                        m = ws.next() => m,
                    };
                    match msg {
                        Some(Ok(Message::Text(t))) if t.as_bytes().starts_with(b"{\"type\":\"changes\"") => {
                            out.live_changes += scan_seqs(t.as_bytes()).0;
                            out.live_frames += 1;
                        }
                        Some(Ok(Message::Text(t))) if t.as_bytes().starts_with(b"{\"type\":\"error\"") => {
                            out.error = Some(format!("hub error: {}", first_line(t.as_str())));
                            break 'push;
                        }
                        Some(Ok(Message::Close(f))) => {
                            out.error = Some(format!("closed by the hub: {f:?}"));
                            break 'push;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            out.error = Some(format!("read failed: {e}"));
                            break 'push;
                        }
                        None => {
                            out.error = Some("connection ended".into());
                            break 'push;
                        }
                    }
                }
                if !window.load(Ordering::Relaxed) {
                    break;
                }
                due
            }
            None => Instant::now(),
        };
        if let Err(e) = ws.send(Message::Text(push_text(batch, vec![change]).into())).await {
            out.error = Some(format!("send: {e}"));
            break;
        }
        loop {
            let msg = tokio::select! {
                biased;
                _ = &mut aborted => {
                    out.error = Some(format!("aborted while waiting for the ack of push {batch}"));
                    break 'push;
                }
                m = tokio::time::timeout(Duration::from_secs(60), ws.next()) => m,
            };
            let text = match msg {
                Err(_) => {
                    out.error = Some(format!("no ack of push {batch} within 60 s"));
                    break 'push;
                }
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(Message::Close(f)))) => {
                    out.error = Some(format!("closed by the hub: {f:?}"));
                    break 'push;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => {
                    out.error = Some(format!("read failed: {e}"));
                    break 'push;
                }
                Ok(None) => {
                    out.error = Some("connection ended".into());
                    break 'push;
                }
            };
            let b = text.as_bytes();
            if b.starts_with(b"{\"type\":\"changes\"") {
                out.live_changes += scan_seqs(b).0;
                out.live_frames += 1;
            } else if b.starts_with(b"{\"type\":\"ack\"") {
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                match HubFrame::decode(text.as_str()) {
                    Ok(HubFrame::Ack { batch: got, seqs, waiting, .. }) if got == batch => {
                        if seqs.first().is_none_or(|s| *s == 0) || !waiting.is_empty() {
                            out.odd_acks += 1;
                        }
                    }
                    _ => {
                        out.error =
                            Some(format!("expected the ack of push {batch}, got {}", first_line(text.as_str())));
                        break 'push;
                    }
                }
                out.lat.push(us);
                out.acked += 1;
                acked_total.fetch_add(1, Ordering::Relaxed);
                out.end = Some(Instant::now());
                break;
            } else if b.starts_with(b"{\"type\":\"error\"") {
                out.error = Some(first_line(text.as_str()));
                break 'push;
            }
        }
    }
    finished.fetch_add(1, Ordering::Relaxed);
    // Done pushing: stay a live subscriber until every connection is done.
    if out.error.is_none() {
        loop {
            tokio::select! {
                biased;
                _ = release.wait_for(|r| *r) => break,
                _ = &mut aborted => break,
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let b = t.as_bytes();
                        if b.starts_with(b"{\"type\":\"changes\"") {
                            out.live_changes += scan_seqs(b).0;
                            out.live_frames += 1;
                        } else if b.starts_with(b"{\"type\":\"error\"") {
                            out.error = Some(format!("after its last push: {}", first_line(t.as_str())));
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => {
                        out.error = Some(format!("after its last push: connection ended ({other:?})"));
                        break;
                    }
                }
            }
        }
    }
    close(ws).await;
    out
}

fn latency_us_json(samples: &mut [u32]) -> Value {
    samples.sort_unstable();
    let pick = |p: f64| {
        if samples.is_empty() {
            return Value::Null;
        }
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        json!(samples[rank.clamp(1, samples.len()) - 1])
    };
    let mean = if samples.is_empty() {
        Value::Null
    } else {
        json!(r1(samples.iter().map(|&s| f64::from(s)).sum::<f64>() / samples.len() as f64))
    };
    json!({"p50_us": pick(50.0), "p90_us": pick(90.0), "p99_us": pick(99.0), "max_us": samples.last(), "mean_us": mean})
}

/// Write-path phases `acks`, `acks1000`, `pushlat`, `pushrate`: `conns`
/// connections, each a live subscriber that pushes one change, waits for its
/// ack, and repeats for `seconds`. Acks per second, push → ack latency, what
/// the hub's write-path metrics say, and hephd's CPU and memory.
///
/// With `rate` > 0 (`pushrate`), each connection pushes on a schedule,
/// `rate` pushes per second (the connections' schedules spread over one
/// interval), still one push in flight: a push whose time came while the one
/// before waited for its ack goes as soon as that ack is in, and its latency
/// is counted from when it was due, not from when it went (so a slow ack's
/// delay to the pushes behind it is counted too).
async fn acks(hub: &Hephd, op: &str, conns: usize, seconds: f64, rate: f64, args: &Args) -> Result<Value> {
    let per_conn = args.acks_max.unwrap_or_else(|| (300_000 / conns.max(1)).clamp(200, 100_000));
    log(format!("{op}: generating {per_conn} changes for each of {conns} connections"));
    let per_doc = args.acks_doc_changes.clamp(2, CHAIN_MAX);
    let chains = tokio::task::spawn_blocking(move || chains(conns, per_conn, per_doc)).await??;
    let url = hub.url();
    let head = head(hub).await?;
    let conns_before = hub_connections(hub).unwrap_or(0);
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let (abort_tx, abort_rx) = watch::channel(false);
    let window = Arc::new(AtomicBool::new(true));
    let acked_total = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let (release_tx, release_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(64));
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<()>>(conns.max(1));
    let t_connect = Instant::now();
    let tasks: Vec<_> = chains
        .into_iter()
        .enumerate()
        .map(|(i, chain)| {
            let pace = (rate > 0.0).then(|| {
                let every = Duration::from_secs_f64(1.0 / rate);
                (every, every.mul_f64(i as f64 / conns.max(1) as f64))
            });
            tokio::spawn(pusher(
                url.clone(),
                head,
                chain,
                pace,
                gate.clone(),
                ready_tx.clone(),
                go_rx.clone(),
                window.clone(),
                abort_rx.clone(),
                acked_total.clone(),
                finished.clone(),
                release_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let mut error = None::<String>;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut ok = 0;
    while ok < conns {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ok += 1,
            Ok(Some(Err(e))) => {
                error = Some(format!("connection {ok} of {conns} failed to connect: {e:#}"));
                break;
            }
            Ok(None) => {
                error = Some("connections ended before connecting".into());
                break;
            }
            Err(_) => {
                error = Some(format!("only {ok} of {conns} connected within 120 s"));
                break;
            }
        }
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    log(format!("{op}: {ok} connections in {connect_s:.1} s; pushing for {seconds} s"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m0 = metrics_map(hub);
    let cpu = CpuMeter::start(hub);
    let t0 = Instant::now();
    if error.is_none() {
        let _ = go_tx.send(Some(t0));
        // Watch the acks: the window closes after `seconds`; no ack for
        // `acks_stall` seconds while connections wait is a failure.
        let stall = Duration::from_secs_f64(args.acks_stall);
        let (mut last_n, mut last_t) = (0u64, Instant::now());
        let mut closed = false;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if finished.load(Ordering::Relaxed) >= conns as u64 {
                break;
            }
            if !closed && t0.elapsed().as_secs_f64() >= seconds {
                window.store(false, Ordering::Relaxed);
                closed = true;
            }
            let n = acked_total.load(Ordering::Relaxed);
            if n != last_n {
                (last_n, last_t) = (n, Instant::now());
            } else if last_t.elapsed() >= stall {
                error = Some(format!(
                    "acks stopped: none for {:.0} s after {n} acks, {:.1} s into the phase",
                    stall.as_secs_f64(),
                    t0.elapsed().as_secs_f64()
                ));
                break;
            }
        }
    }
    window.store(false, Ordering::Relaxed);
    let cpu = cpu.json();
    let m1 = metrics_map(hub);
    let _ = release_tx.send(true);
    if error.is_some() {
        let _ = abort_tx.send(true);
    }
    let mut outs = join_all(tasks, |error| PusherOut { error: Some(error), ..Default::default() }).await;
    let seconds_run = outs.iter().filter_map(|o| o.end).max().map_or(0.0, |e| (e - t0).as_secs_f64());
    let conns_after = connections_down_to(hub, conns_before, Duration::from_secs(10)).await;
    let acked: u64 = outs.iter().map(|o| o.acked).sum();
    let live_changes: u64 = outs.iter().map(|o| o.live_changes).sum();
    let live_frames: u64 = outs.iter().map(|o| o.live_frames).sum();
    let mut lat: Vec<u32> = outs.iter_mut().flat_map(|o| std::mem::take(&mut o.lat)).collect();
    let errs: Vec<&String> = outs.iter().filter_map(|o| o.error.as_ref()).collect();
    // The hub dropping a connection as too slow (its live queue overflowed)
    // is the hub's answer to load, reported beside the numbers; any other
    // failure fails the phase. A dropped connection stops pushing.
    let too_slow = |e: &str| e.contains("\"code\":\"too_slow\"");
    let dropped = errs.iter().filter(|e| too_slow(e)).count();
    let failed: Vec<&String> = errs.iter().copied().filter(|e| !too_slow(e)).collect();
    if error.is_none() && !failed.is_empty() {
        error = Some(format!("{} connections failed; first: {}", failed.len(), failed[0]));
    }
    let warning = (dropped > 0).then(|| {
        format!("{dropped} of {conns} connections dropped by the hub as too slow (they stopped pushing then)")
    });
    let per_s = |x: u64| r1(x as f64 / seconds_run.max(1e-9));
    let mut v = json!({
        "op": op, "connections": conns, "pushers": conns, "seconds_asked": seconds, "seconds": r3(seconds_run),
        "rate_per_pusher": (rate > 0.0).then_some(rate), "offered_per_s": (rate > 0.0).then(|| r1(rate * conns as f64)),
        "connect_s": r3(connect_s), "per_conn_max": per_conn, "head_before": head,
        "acked": acked, "acks_per_s": per_s(acked), "doc_changes": per_doc,
        "ack": latency_us_json(&mut lat),
        "odd_acks": outs.iter().map(|o| o.odd_acks).sum::<u64>(),
        "exhausted": outs.iter().filter(|o| o.exhausted).count(),
        "live_changes_recv": live_changes, "live_changes_recv_per_s": per_s(live_changes),
        "live_frames_recv": live_frames, "live_frames_recv_per_s": per_s(live_frames),
        "hub_rss_kb": hub.rss_kb(), "hub_rss_mb": r1(hub.rss_kb() as f64 / 1024.0),
        "hub_hwm_kb": status_kb(hub.pid, "VmHWM:"), "hub_hwm_mb": r1(status_kb(hub.pid, "VmHWM:") as f64 / 1024.0),
        "hub_connections_before": conns_before, "hub_connections_after": conns_after,
        "errors": errs.len(), "dropped_too_slow": dropped, "warning": warning,
        "first_errors": errs.iter().take(3).collect::<Vec<_>>(),
    });
    v = merge(merge(v, write_metrics(&m0, &m1, seconds_run)), cpu);
    if let (Some(e), Value::Object(m)) = (error, &mut v) {
        m.insert("error".into(), json!(e));
    }
    Ok(v)
}

/// Pushes tasks (pushes of 250, one at a time) until the hub's log holds at least `min_head` changes.
async fn fill_log(hub: &Hephd, min_head: u64) -> Result<u64> {
    let mut h = head(hub).await?;
    if h >= min_head {
        return Ok(h);
    }
    log(format!("storm: filling the log from {h} to {min_head} changes"));
    let (mut ws, _) = open(&hub.url(), h, false).await?;
    let actor = ActorId::random();
    let now = Utc::now();
    let (mut batch, mut i) = (0u64, 0usize);
    while h < min_head {
        let mut changes = Vec::with_capacity(500);
        for _ in 0..250 {
            changes.extend(task_change(NodeId::random(), i, &actor, now)?);
            i += 1;
        }
        batch += 1;
        ws.send(Message::Text(push_text(batch, changes).into())).await?;
        loop {
            let text = next_text(&mut ws, Duration::from_secs(60)).await?;
            if text.starts_with("{\"type\":\"ack\"") {
                if let Ok(HubFrame::Ack { seqs, .. }) = HubFrame::decode(&text) {
                    h = h.max(seqs.iter().copied().max().unwrap_or(0));
                }
                break;
            }
            if text.starts_with("{\"type\":\"error\"") {
                bail!("hub error while filling the log: {text}");
            }
        }
    }
    close(ws).await;
    head(hub).await
}

/// What one storm device saw.
#[derive(Default)]
struct DeviceOut {
    /// From the start to the welcome.
    welcome: Option<Duration>,
    caught_up: Option<Duration>,
    changes: u64,
    frames: u64,
    error: Option<String>,
}

/// One storm device: at `go`, connects, says hello at `cursor`, reads until
/// a change with seq ≥ `head` arrived, reports, and stays connected until `stop`.
async fn storm_device(
    url: String,
    cursor: u64,
    head: u64,
    mut go: watch::Receiver<Option<Instant>>,
    done: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> DeviceOut {
    let mut out = DeviceOut::default();
    let Ok(t0) = go.wait_for(Option::is_some).await.map(|t| t.unwrap_or_else(Instant::now)) else {
        return out;
    };
    let result: Result<Ws> = async {
        let (mut ws, welcome_head) = open(&url, cursor, true).await?;
        out.welcome = Some(t0.elapsed());
        if welcome_head < head {
            bail!("welcome head {welcome_head} below the head {head}");
        }
        loop {
            let text = next_text(&mut ws, Duration::from_secs(60)).await?;
            let b = text.as_bytes();
            if b.starts_with(b"{\"type\":\"changes\"") {
                let (n, max) = scan_seqs(b);
                out.changes += n;
                out.frames += 1;
                if max >= head {
                    out.caught_up = Some(t0.elapsed());
                    return Ok(ws);
                }
            } else if b.starts_with(b"{\"type\":\"error\"") {
                bail!("hub error: {}", first_line(&text));
            }
        }
    }
    .await;
    let _ = done.send(()).await;
    match result {
        Ok(mut ws) => {
            // Stay connected (reading) until every device is done.
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    m = ws.next() => if !matches!(m, Some(Ok(_))) { out.error = Some("connection ended after catch-up".into()); break; },
                }
            }
            close(ws).await;
        }
        Err(e) => out.error = Some(format!("{e:#}")),
    }
    out
}

/// Phase `storm`: the log filled to `storm_min_head`, hephd restarted on the
/// same store, then `storm_devices` devices connect at once, each `storm_back`
/// changes behind; time until all have caught up, and hephd's peak memory.
async fn storm(hub: &mut Hephd, bin: &Path, dir: &Path, args: &Args) -> Result<Value> {
    let before_restart = fill_log(hub, args.storm_min_head).await?;
    emit(hephd_report(hub, dir));
    log("storm: restarting hephd on the same store");
    hub.stop();
    *hub = Hephd::start(bin, dir, "hephd-storm.log", args.queue)?;
    log(format!("storm: hephd pid {} on {}", hub.pid, hub.addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let head = head(hub).await?;
    if head != before_restart {
        log(format!("storm: head {head} after the restart, {before_restart} before"));
    }
    let rss_start = hub.rss_kb();
    let cursor = head.saturating_sub(args.storm_back);
    let n = args.storm_devices;
    let url = hub.url();
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(n.max(1));
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(storm_device(url.clone(), cursor, head, go_rx.clone(), done_tx.clone(), stop_rx.clone())))
        .collect();
    drop(done_tx);
    tokio::time::sleep(Duration::from_millis(200)).await; // every task waiting at the start line
    let m0 = metrics_map(hub);
    let cpu = CpuMeter::start(hub);
    let t0 = Instant::now();
    let _ = go_tx.send(Some(t0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut finished = 0;
    let mut error = None;
    while finished < n {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(())) => finished += 1,
            Ok(None) => break,
            Err(_) => {
                error = Some(format!("only {finished} of {n} devices finished within 180 s"));
                break;
            }
        }
    }
    let all_s = t0.elapsed().as_secs_f64();
    let hwm = status_kb(hub.pid, "VmHWM:");
    let rss_all = hub.rss_kb();
    let hub_conns = hub_connections(hub);
    let cpu = cpu.json();
    let m1 = metrics_map(hub);
    let _ = stop_tx.send(true);
    let outs = join_all(tasks, |error| DeviceOut { error: Some(error), ..Default::default() }).await;
    let conns_after = connections_down_to(hub, 0, Duration::from_secs(10)).await;
    let mut times: Vec<u32> =
        outs.iter().filter_map(|o| o.caught_up).map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32).collect();
    let caught_up = times.len();
    let mut welcomes: Vec<u32> =
        outs.iter().filter_map(|o| o.welcome).map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32).collect();
    let errs: Vec<&String> = outs.iter().filter_map(|o| o.error.as_ref()).collect();
    let failed = outs.iter().filter(|o| o.caught_up.is_none()).count();
    if error.is_none() && failed > 0 {
        error = Some(format!("{failed} of {n} devices did not catch up; first: {}", errs.first().map_or("?", |e| e)));
    }
    let mut v = json!({
        "op": "storm", "devices": n, "head": head, "cursor": cursor, "head_before_restart": before_restart,
        "caught_up": caught_up, "failed": failed, "all_caught_up_s": r3(all_s),
        "device": latency_json(&mut times), "welcome": latency_json(&mut welcomes),
        "changes_recv": outs.iter().map(|o| o.changes).sum::<u64>(),
        "frames_recv": outs.iter().map(|o| o.frames).sum::<u64>(),
        "hub_rss_start_kb": rss_start, "hub_rss_all_kb": rss_all, "hub_hwm_kb": hwm,
        "hub_hwm_mb": r1(hwm as f64 / 1024.0), "hub_connections_all": hub_conns,
        "hub_connections_after": conns_after,
        "frames_sent": metric_delta(&m0, &m1, "heph_hub_frames_sent_total"),
        "errors": errs.len(), "first_errors": errs.iter().take(3).collect::<Vec<_>>(),
    });
    v = merge(v, cpu);
    if let (Some(e), Value::Object(m)) = (error, &mut v) {
        m.insert("error".into(), json!(e));
    }
    Ok(v)
}

/// What hephd says about a run: memory, CPU, its log's warnings, errors and
/// ends of connections, its counters.
fn hephd_report(hub: &Hephd, dir: &Path) -> Value {
    let log_text = fs::read_to_string(&hub.log_path).unwrap_or_default();
    let mut ended: std::collections::BTreeMap<String, u64> = Default::default();
    let (mut warns, mut errors) = (0, 0);
    for line in log_text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        match v["level"].as_str() {
            Some("WARN") => warns += 1,
            Some("ERROR") => errors += 1,
            _ => {}
        }
        if let Some(why) = v["fields"]["why"].as_str() {
            let key: String = why.chars().take(60).collect();
            *ended.entry(key).or_default() += 1;
        }
    }
    let metrics = [
        "heph_hub_connections_total",
        "heph_hub_frames_received_total",
        "heph_hub_frames_sent_total",
        "heph_hub_changes_stored_total",
        "heph_hub_live_deliveries_total",
        "heph_hub_dropped_slow_total",
        "heph_hub_commits_total",
    ]
    .iter()
    .map(|m| (m.to_string(), json!(hub.metric(m))))
    .collect::<serde_json::Map<_, _>>();
    json!({
        "op": "hephd", "pid": hub.pid, "rss_end_kb": hub.rss_kb(), "rss_hwm_kb": status_kb(hub.pid, "VmHWM:"),
        "cpu_s": r3(cpu_seconds(&format!("/proc/{}/stat", hub.pid))), "log_warn": warns, "log_error": errors,
        "connections_ended": ended, "metrics": metrics,
        "db_bytes": fs::metadata(dir.join("hub.db")).map_or(0, |m| m.len()),
    })
}

// ------------------------------------------------------------------ main

/// Pushes per second per pusher (`--pushrate-rates`).
fn rates(list: &str) -> Vec<f64> {
    list.split(',').filter_map(|r| r.trim().parse().ok()).filter(|r: &f64| *r > 0.0).collect()
}

fn pushlat_pushers(args: &Args) -> Vec<usize> {
    args.pushlat_pushers.split(',').filter_map(|b| b.trim().parse().ok()).filter(|n| *n > 0).collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let phases: Vec<String> = args.phases.split(',').map(|s| s.trim().to_string()).collect();
    let want = |p: &str| phases.iter().any(|x| x == p);
    if let Some(tag) = &args.tag {
        let _ = TAG.set(tag.clone());
    }
    // Both ends of every connection are open files here; hephd inherits the limit.
    let most_conns = [
        (want("idle") || want("fanout")).then_some(args.conns),
        want("acks").then_some(args.acks_conns),
        want("acks1000").then_some(args.acks_big_conns),
        want("storm").then_some(args.storm_devices),
        want("pushlat").then(|| pushlat_pushers(&args).into_iter().max().unwrap_or(0)),
        want("pushrate").then_some(args.pushrate_pushers),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if (nofile as usize) < most_conns + 200 {
        log(format!("warning: open-file limit is {nofile}, below {most_conns} connections"));
    }
    let hephd = match &args.hephd {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.parent().context("no exe dir")?.join("hephd"),
    };
    let dir = tempfile::Builder::new().prefix("heph-hub-load.").tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string());
    emit(json!({
        "op": "env", "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()), "cpu": cpu_model,
        "hephd": hephd.display().to_string(), "nofile": nofile, "date": Utc::now().to_rfc3339(),
        "loadavg": fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    }));
    let mut hub = Hephd::start(&hephd, dir.path(), "hephd.log", args.queue)?;
    log(format!("hephd pid {} on {}, store {}", hub.pid, hub.addr, dir.path().display()));
    let rss_start = hub.rss_kb();
    // Ids for every timed change this run can send.
    let fan_batches: Vec<usize> = args.fan_batches.split(',').filter_map(|b| b.trim().parse().ok()).collect();
    let capacity = (args.lat_rate * args.lat_seconds + args.ref_rate * args.ref_seconds) as usize
        + fan_batches.iter().map(|b| args.fan_max_pushes.min(60_000 / b.max(&1)).max(1) * b).sum::<usize>()
        + 16;
    let timed = Arc::new(Timed::new(capacity));
    let outcome = runtime.block_on(async {
        let mut failures = Vec::new();
        let mut record = |name: &str, r: Result<Value>| match r {
            Ok(v) => {
                if let Some(e) = v.get("error") {
                    log(format!("{name} failed: {e}"));
                    failures.push(name.to_string());
                }
                emit(v);
            }
            Err(e) => {
                log(format!("{name} failed: {e:#}"));
                emit(json!({"op": name, "error": format!("{e:#}")}));
                failures.push(name.to_string());
            }
        };
        if want("preload") {
            log(format!("preload: {} tasks in pushes of {}", args.count, args.preload_batch));
            record("preload", preload(&args, &hub).await);
        }
        if want("bootstrap") {
            log("bootstrap: fresh device, snapshots");
            record("bootstrap", bootstrap(&hub, true, args.count).await);
            record("bootstrap_recv", bootstrap_recv(&hub).await);
            record("bootstrap_resume", bootstrap_resume(&hub, args.count).await);
        }
        if want("catchup") {
            log("catchup: fresh device, whole change log");
            record("catchup", bootstrap(&hub, false, args.count).await);
        }
        if want("latency") {
            log(format!("latency: {} subscribers, {}/s for {} s", args.lat_subs, args.lat_rate, args.lat_seconds));
            record("latency", latency(&hub, &timed, "latency", args.lat_subs, args.lat_rate, args.lat_seconds).await);
        }
        if want("latency_ref") {
            log(format!("latency_ref: {} subscribers, {}/s for {} s", args.ref_subs, args.ref_rate, args.ref_seconds));
            record(
                "latency_ref",
                latency(&hub, &timed, "latency_ref", args.ref_subs, args.ref_rate, args.ref_seconds).await,
            );
        }
        let mut subs = None;
        if want("idle") || want("fanout") {
            log(format!("idle: {} connections", args.conns));
            match idle(&hub, &timed, args.conns).await {
                Ok((mut v, s)) => {
                    if let Value::Object(m) = &mut v {
                        m.insert("rss_start_kb".into(), json!(rss_start));
                    }
                    emit(v);
                    subs = Some(s);
                }
                Err(e) => record("idle", Err(e)),
            }
        }
        if want("fanout")
            && let Some(s) = &subs
        {
            for &b in &fan_batches {
                log(format!("fanout: {} subscribers, pushes of {b}", s.stats.len()));
                record("fanout", fanout(&hub, &timed, s, b, &args).await);
            }
        }
        if let Some(s) = subs {
            s.stop().await;
        }
        if want("acks") {
            log(format!("acks: {} connections for {} s", args.acks_conns, args.acks_seconds));
            record("acks", acks(&hub, "acks", args.acks_conns, args.acks_seconds, 0.0, &args).await);
        }
        if want("acks1000") {
            log(format!("acks1000: {} connections for {} s", args.acks_big_conns, args.acks_seconds));
            record("acks1000", acks(&hub, "acks1000", args.acks_big_conns, args.acks_seconds, 0.0, &args).await);
        }
        if want("pushlat") {
            for n in pushlat_pushers(&args) {
                log(format!("pushlat: {n} pushers for {} s", args.pushlat_seconds));
                record("pushlat", acks(&hub, "pushlat", n, args.pushlat_seconds, 0.0, &args).await);
            }
        }
        if want("pushrate") {
            for rate in rates(&args.pushrate_rates) {
                let n = args.pushrate_pushers;
                log(format!("pushrate: {n} pushers, {rate} pushes/s each, for {} s", args.pushlat_seconds));
                record("pushrate", acks(&hub, "pushrate", n, args.pushlat_seconds, rate, &args).await);
            }
        }
        if want("storm") {
            log(format!("storm: {} devices, {} changes behind", args.storm_devices, args.storm_back));
            let r = storm(&mut hub, &hephd, dir.path(), &args).await;
            record("storm", r);
        }
        failures
    });
    let mut report = hephd_report(&hub, dir.path());
    if hub.log_path.ends_with("hephd-storm.log") {
        report["op"] = json!("hephd_storm");
    }
    emit(report);
    hub.stop();
    if args.keep {
        let kept = dir.keep();
        log(format!("kept {}", kept.display()));
    }
    if outcome.is_empty() { Ok(()) } else { bail!("failed: {}", outcome.join(", ")) }
}
