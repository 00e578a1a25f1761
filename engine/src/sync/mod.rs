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
//! [`spoke::SpokeSession`] the two sides as state machines with no I/O; the
//! `hub` crate moves their frames over WebSockets.
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
pub mod spoke;
