//! The sync protocol: change sets with cursors over any message transport.
//!
//! Automerge changes are content-addressed and idempotent to apply, so sync is
//! not a per-document handshake but two streams with cursors:
//! - **pull**: the hub streams its log after the device's cursor (or, for a
//!   new device, compacted documents), then keeps streaming live changes;
//! - **push**: the device sends the changes it made that the hub has not
//!   acknowledged; the hub stores them in one transaction, acknowledges after
//!   the commit, and fans them out.
//!
//! [`frame`] holds the wire format, [`hub::HubSession`] and
//! [`spoke::SpokeSession`] the two sides as state machines with no I/O,
//! [`storage`] the one seam through which they reach a store; the `hub`
//! crate moves their frames over WebSockets.
//!
//! ```
//! use heph_engine::sync::{frame::encode, hub::HubSession, spoke::SpokeSession};
//! use heph_engine::{Node, NodeId, NodeKind, Replica};
//!
//! let hub = Replica::in_memory().unwrap();
//! let (laptop, phone) = (Replica::in_memory().unwrap(), Replica::in_memory().unwrap());
//! laptop.create(&Node::new(NodeId::random(), NodeKind::Task, "Buy milk".into(), chrono::Utc::now()), &[], "add").unwrap();
//!
//! // One round of a session, as a transport would carry it.
//! fn sync(device: &Replica, hub: &Replica) {
//!     let mut at_hub = HubSession::new();
//!     let (mut session, hello) = SpokeSession::start(device).unwrap();
//!     let mut to_hub = vec![encode(&hello)];
//!     while !to_hub.is_empty() {
//!         let mut to_device = Vec::new();
//!         for text in to_hub.drain(..) {
//!             to_device.extend(at_hub.receive(&text, hub).replies.iter().map(encode));
//!         }
//!         while let Some(frame) = at_hub.catch_up(hub).unwrap() {
//!             to_device.push(encode(&frame));
//!         }
//!         for text in to_device {
//!             to_hub.extend(session.receive(&text, device).unwrap().send.iter().map(encode));
//!         }
//!     }
//! }
//! sync(&laptop, &hub);
//! sync(&phone, &hub);
//! assert_eq!(phone.export().unwrap(), laptop.export().unwrap());
//! ```

pub mod frame;
pub mod hub;
pub mod memory;
pub mod spoke;
pub mod storage;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a device's sync stands (`heph sync --status`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncHealth {
    /// Whether a daemon (`hephd --mode local`) runs for this store.
    pub daemon: bool,
    /// The hub it syncs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_url: Option<String>,
    /// Connected to the hub right now.
    pub connected: bool,
    /// Not connected, and the last attempt failed.
    pub offline: bool,
    /// The hub refused our credentials (HTTP 401 or close code 4401).
    pub auth_failure: bool,
    /// When a connection was last attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<DateTime<Utc>>,
    /// When the device was last fully in sync (caught up, everything acknowledged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    /// The last error, if the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Local changes the hub has not acknowledged yet.
    pub pending_push: u64,
    /// The last hub seq stored here.
    pub hub_cursor: u64,
    /// Nodes with unresolved conflicts.
    pub conflicts: usize,
    /// Received changes waiting here for changes they depend on.
    #[serde(default)]
    pub pending_changes: u64,
    /// When the oldest of those started waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Stored documents this heph cannot read (`heph unreadable` lists them).
    #[serde(default)]
    pub unreadable: u64,
    /// A reconciliation with the hub is owed or under way (the hub was
    /// replaced or restored, or lacked history).
    #[serde(default)]
    pub reconciling: bool,
}

impl SyncHealth {
    /// Fills in what the store knows: pending pushes, cursor, conflicts.
    pub fn with_store(mut self, replica: &crate::Replica) -> Result<Self, crate::Error> {
        let cursors = replica.cursors()?;
        self.hub_cursor = cursors.hub_cursor;
        self.reconciling = cursors.reconcile;
        self.pending_push = replica.pending_push()?;
        self.conflicts = replica.conflict_count()?;
        let pending = replica.pending_stats()?;
        self.pending_changes = pending.count;
        self.oldest_pending =
            pending.oldest_ms.and_then(|ms| i64::try_from(ms).ok()).and_then(DateTime::from_timestamp_millis);
        self.unreadable = replica.unreadable_count()?;
        Ok(self)
    }
}
