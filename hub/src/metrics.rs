//! The hub's counters, exposed in Prometheus' text format at `/metrics`.
//!
//! A fixed set of atomics: one per queue and per error class, cheap enough to
//! bump on every frame.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use heph_engine::sync::frame::ErrorCode;

use crate::server::StoreStats;

/// Every counter and gauge of the hub.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Open `/sync` connections (gauge).
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Frames received.
    pub frames_in: AtomicU64,
    /// Frames sent.
    pub frames_out: AtomicU64,
    /// Changes pushed that were new.
    pub changes_stored: AtomicU64,
    /// Live batches delivered to subscribers.
    pub deliveries: AtomicU64,
    /// Subscribers dropped for falling behind.
    pub dropped_slow: AtomicU64,
    /// RPC calls served.
    pub rpc_calls: AtomicU64,
    /// RPC calls that failed.
    pub rpc_errors: AtomicU64,
    /// Error frames sent, by code (index = `code_index`).
    pub errors: [AtomicU64; CODES.len()],
    /// Group commits by the writer.
    pub commits: AtomicU64,
    /// Pushes committed in those groups (the histogram's sum).
    pub group_pushes: AtomicU64,
    /// Groups by size: at most 1, 2, 4, … [`GROUP_BUCKETS`] pushes, then more.
    pub group_sizes: [AtomicU64; GROUP_BUCKETS.len() + 1],
    /// Time spent committing groups, in microseconds.
    pub commit_us: AtomicU64,
    /// Group commits by latency: at most [`COMMIT_BUCKETS_US`] µs each, then more.
    pub commit_latency: [AtomicU64; COMMIT_BUCKETS_US.len() + 1],
    /// Pushes and calls handed to the writer and not yet taken by it (gauge).
    pub writer_queue: AtomicU64,
    /// Connections refused at the --max-connections cap.
    pub refused: AtomicU64,
    /// Connections closed for silence (no hello in time, missed pongs).
    pub timed_out: AtomicU64,
    /// Pushes delayed by the per-connection rate limit.
    pub throttled: AtomicU64,
    /// Credentials accepted.
    pub auth_ok: AtomicU64,
    /// Credentials refused, by reason (`crate::auth::Denied::reason`).
    pub auth_denied: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Fetches of the issuer's JWKS.
    pub jwks_fetches: AtomicU64,
    /// Requests whose client address came from a trusted proxy's `X-Forwarded-For`.
    pub forwarded: AtomicU64,
    /// Requests with an `X-Forwarded-For` from a peer that is not a trusted proxy (ignored).
    pub forwarded_ignored: AtomicU64,
}

/// Upper bounds of the group size histogram's buckets.
pub const GROUP_BUCKETS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Upper bounds of the commit latency histogram's buckets, in microseconds
/// (0.5 ms to 2.5 s: an fsync on a fast disk to a stalled one).
pub const COMMIT_BUCKETS_US: [u64; 12] =
    [500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000];

/// The live fan-out's figures at one moment, read from its channel.
#[derive(Debug, Default, Clone, Copy)]
pub struct FanOut {
    /// Connections subscribed to live changes.
    pub subscribers: u64,
    /// Batches the slowest subscriber has not taken yet.
    pub deepest: u64,
    /// The queue's capacity (`--queue`): past it a subscriber is dropped.
    pub capacity: u64,
}

const CODES: [(ErrorCode, &str); 10] = [
    (ErrorCode::BadFrame, "bad_frame"),
    (ErrorCode::TooLarge, "too_large"),
    (ErrorCode::UnsupportedVersion, "unsupported_version"),
    (ErrorCode::Protocol, "protocol"),
    (ErrorCode::InvalidChange, "invalid_change"),
    (ErrorCode::TooSlow, "too_slow"),
    (ErrorCode::Unauthorized, "unauthorized"),
    (ErrorCode::Forbidden, "forbidden"),
    (ErrorCode::QuotaExceeded, "quota_exceeded"),
    (ErrorCode::Internal, "internal"),
];

impl Metrics {
    /// Counts an error frame.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = CODES.iter().position(|(c, _)| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one group commit of `pushes` pushes that took `took`.
    pub fn commit(&self, pushes: usize, took: std::time::Duration) {
        let n = pushes as u64;
        Self::add(&self.commits, 1);
        Self::add(&self.group_pushes, n);
        let bucket = GROUP_BUCKETS.iter().position(|&le| n <= le).unwrap_or(GROUP_BUCKETS.len());
        Self::add(&self.group_sizes[bucket], 1);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        Self::add(&self.commit_us, us);
        let bucket = COMMIT_BUCKETS_US.iter().position(|&le| us <= le).unwrap_or(COMMIT_BUCKETS_US.len());
        Self::add(&self.commit_latency[bucket], 1);
    }

    /// Counts a refused credential.
    pub fn denied(&self, reason: &'static str) {
        *self.auth_denied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(reason).or_default() += 1;
    }

    /// Counts where a request's client address came from.
    pub fn peer(&self, peer: crate::forwarded::Peer, headers: &axum::http::HeaderMap) {
        match peer {
            crate::forwarded::Peer::Forwarded { .. } => Self::add(&self.forwarded, 1),
            crate::forwarded::Peer::Direct(_) if headers.contains_key(crate::forwarded::X_FORWARDED_FOR) => {
                Self::add(&self.forwarded_ignored, 1);
            }
            crate::forwarded::Peer::Direct(_) => {}
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition, with the store's and the fan-out's figures, the
    /// process's age and the clock passed in.
    pub fn render(&self, store: &StoreStats, fanout: FanOut, uptime: std::time::Duration, now_ms: u64) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let head = store.head;
        let oldest = store.pending.oldest_ms.map_or(0, |at| now_ms.saturating_sub(at) / 1000);
        let rows: [(&str, &str, &str, u64); 26] = [
            ("heph_hub_uptime_seconds", "gauge", "Seconds since hephd started.", uptime.as_secs()),
            ("heph_hub_connections", "gauge", "Open /sync connections.", get(&self.connections)),
            ("heph_hub_connections_total", "counter", "Connections accepted.", get(&self.connections_total)),
            ("heph_hub_frames_received_total", "counter", "Frames received.", get(&self.frames_in)),
            ("heph_hub_frames_sent_total", "counter", "Frames sent.", get(&self.frames_out)),
            ("heph_hub_changes_stored_total", "counter", "New changes stored.", get(&self.changes_stored)),
            (
                "heph_hub_live_deliveries_total",
                "counter",
                "Live batches delivered to subscribers.",
                get(&self.deliveries),
            ),
            (
                "heph_hub_dropped_slow_total",
                "counter",
                "Subscribers dropped for falling behind.",
                get(&self.dropped_slow),
            ),
            ("heph_hub_commits_total", "counter", "Group commits by the writer.", get(&self.commits)),
            ("heph_hub_writer_queue", "gauge", "Pushes and calls waiting for the writer.", get(&self.writer_queue)),
            ("heph_hub_fanout_subscribers", "gauge", "Connections receiving live changes.", fanout.subscribers),
            (
                "heph_hub_fanout_queue_depth_max",
                "gauge",
                "Live batches the slowest subscriber has yet to take.",
                fanout.deepest,
            ),
            (
                "heph_hub_fanout_queue_capacity",
                "gauge",
                "Live batches a subscriber may fall behind before it is dropped (--queue).",
                fanout.capacity,
            ),
            (
                "heph_hub_connections_refused_total",
                "counter",
                "Connections refused at the --max-connections cap.",
                get(&self.refused),
            ),
            (
                "heph_hub_connections_timed_out_total",
                "counter",
                "Connections closed for silence (no hello in time, or missed pongs).",
                get(&self.timed_out),
            ),
            (
                "heph_hub_pushes_throttled_total",
                "counter",
                "Pushes delayed by the per-connection rate limit.",
                get(&self.throttled),
            ),
            ("heph_hub_rpc_calls_total", "counter", "JSON-RPC calls.", get(&self.rpc_calls)),
            ("heph_hub_rpc_errors_total", "counter", "JSON-RPC calls that failed.", get(&self.rpc_errors)),
            ("heph_hub_log_head", "gauge", "The last seq of the hub's log.", head),
            (
                "heph_hub_pending_changes",
                "gauge",
                "Received changes waiting for changes they depend on.",
                store.pending.count,
            ),
            (
                "heph_hub_pending_bytes",
                "gauge",
                "Raw bytes of the received changes waiting (bounded by --max-pending-mb).",
                store.pending.bytes,
            ),
            (
                "heph_hub_pending_oldest_seconds",
                "gauge",
                "How long the oldest waiting change has waited (0: none waits).",
                oldest,
            ),
            (
                "heph_hub_unreadable_docs",
                "gauge",
                "Stored documents that do not read as heph nodes (kept and synced).",
                store.unreadable,
            ),
            (
                "heph_hub_stale_docs",
                "gauge",
                "Documents not yet read into the search indexes (done when the writer is idle).",
                store.stale,
            ),
            (
                "heph_hub_doc_cache_docs",
                "gauge",
                "Documents the writer keeps loaded between commits.",
                store.cache.docs as u64,
            ),
            (
                "heph_hub_doc_cache_bytes",
                "gauge",
                "Estimated memory of the documents the writer keeps loaded (bounded by --doc-cache-mb).",
                store.cache.bytes as u64,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(out, "# HELP heph_hub_group_batches Pushes per group commit.");
        let _ = writeln!(out, "# TYPE heph_hub_group_batches histogram");
        let mut cumulative = 0;
        for (i, le) in GROUP_BUCKETS.iter().enumerate() {
            cumulative += get(&self.group_sizes[i]);
            let _ = writeln!(out, "heph_hub_group_batches_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += get(&self.group_sizes[GROUP_BUCKETS.len()]);
        let _ = writeln!(out, "heph_hub_group_batches_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "heph_hub_group_batches_sum {}", get(&self.group_pushes));
        let _ = writeln!(out, "heph_hub_group_batches_count {cumulative}");
        let _ =
            writeln!(out, "# HELP heph_hub_commit_latency_seconds How long each group commit took (fsync included).");
        let _ = writeln!(out, "# TYPE heph_hub_commit_latency_seconds histogram");
        let mut cumulative = 0;
        for (i, le) in COMMIT_BUCKETS_US.iter().enumerate() {
            cumulative += get(&self.commit_latency[i]);
            let _ = writeln!(out, "heph_hub_commit_latency_seconds_bucket{{le=\"{}\"}} {cumulative}", *le as f64 / 1e6);
        }
        cumulative += get(&self.commit_latency[COMMIT_BUCKETS_US.len()]);
        let _ = writeln!(out, "heph_hub_commit_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "heph_hub_commit_latency_seconds_sum {:.6}", get(&self.commit_us) as f64 / 1e6);
        let _ = writeln!(out, "heph_hub_commit_latency_seconds_count {cumulative}");
        let _ = writeln!(out, "# HELP heph_hub_commit_seconds_total Time spent in group commits.");
        let _ = writeln!(out, "# TYPE heph_hub_commit_seconds_total counter");
        let _ = writeln!(out, "heph_hub_commit_seconds_total {:.6}", get(&self.commit_us) as f64 / 1e6);
        let _ = writeln!(out, "# HELP heph_hub_error_frames_total Error frames sent, by code.");
        let _ = writeln!(out, "# TYPE heph_hub_error_frames_total counter");
        for (i, (_, label)) in CODES.iter().enumerate() {
            let _ = writeln!(out, "heph_hub_error_frames_total{{code=\"{label}\"}} {}", get(&self.errors[i]));
        }
        let _ = writeln!(out, "# HELP heph_hub_auth_accepted_total Credentials accepted.");
        let _ = writeln!(out, "# TYPE heph_hub_auth_accepted_total counter");
        let _ = writeln!(out, "heph_hub_auth_accepted_total {}", get(&self.auth_ok));
        let _ = writeln!(out, "# HELP heph_hub_auth_failures_total Credentials refused, by reason.");
        let _ = writeln!(out, "# TYPE heph_hub_auth_failures_total counter");
        for (reason, n) in self.auth_denied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "heph_hub_auth_failures_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP heph_hub_jwks_fetches_total Fetches of the issuer's signing keys.");
        let _ = writeln!(out, "# TYPE heph_hub_jwks_fetches_total counter");
        let _ = writeln!(out, "heph_hub_jwks_fetches_total {}", get(&self.jwks_fetches));
        let _ = writeln!(
            out,
            "# HELP heph_hub_forwarded_requests_total Requests whose client address came from a trusted proxy's \
             X-Forwarded-For (--trusted-proxy).\n# TYPE heph_hub_forwarded_requests_total counter\n\
             heph_hub_forwarded_requests_total {}",
            get(&self.forwarded)
        );
        let _ = writeln!(
            out,
            "# HELP heph_hub_forwarded_ignored_total Requests with an X-Forwarded-For from a peer that is not a \
             trusted proxy (the header was ignored).\n# TYPE heph_hub_forwarded_ignored_total counter\n\
             heph_hub_forwarded_ignored_total {}",
            get(&self.forwarded_ignored)
        );
        out
    }
}
