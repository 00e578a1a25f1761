//! The wire frames of the sync protocol: versioned, size-limited JSON text
//! frames (one per WebSocket message). Change bytes travel as base64.
//!
//! Decoding never panics: anything malformed becomes a [`FrameError`], which
//! the receiver answers with an `error` frame and a close.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::NodeId;

/// The protocol version this build speaks. Version 2 added reconciliation
/// (`have`/`need`), the client's known position in `hello`, `diverged` in
/// `welcome`, and `waiting` in `ack`. Version 3 made a known position the
/// log's position digest (see [`crate::sync::storage::SyncStore::position`])
/// instead of the hash of the change there, and `changes` frames carry it.
pub const PROTOCOL_VERSION: u32 = 3;
/// The longest `hello.origin` the hub takes (a device id is 32 hex digits).
pub const MAX_ORIGIN_BYTES: usize = 64;
/// The largest frame accepted, in bytes of JSON text. Both sides cut the
/// frames they build to [`FRAME_BUDGET`], so a frame that honours it always
/// fits.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// The most a frame's items may take: the limit less room for the frame's
/// own JSON around them. One item as large as that (a change of
/// [`crate::limits::MAX_CHANGE_BYTES`]) still fits.
pub const FRAME_BUDGET: usize = MAX_FRAME_BYTES - 64 * 1024;
/// What both sides fill a frame to before starting the next: small enough
/// that a slow device applies one frame in seconds (a hub drops a client
/// that reads nothing for half a minute, and a push is committed in one
/// transaction), large enough that the cost of a frame does not matter. An
/// item larger than this travels alone, within [`FRAME_BUDGET`].
pub const BATCH_BYTES: usize = 1024 * 1024;
/// The most changes one `push` may carry.
pub const MAX_PUSH_CHANGES: usize = 4096;
/// The most documents one `have` may offer. The hub's `need` answers with
/// at most one entry each, so this bounds the answer too.
pub const MAX_HAVE_DOCS: usize = 4096;

/// Bytes that `n` raw bytes take in a frame: base64 (4 per 3) plus the JSON
/// of one item (`{"seq":…,"doc":"…","bytes":"…"}`, or a doc and its heads).
/// Both sides count with this one function, so what one side cuts to fit
/// always fits on the other.
#[must_use]
pub const fn wire_size(n: usize) -> usize {
    n.div_ceil(3) * 4 + 128
}

/// Raw bytes, base64 in JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(text.as_bytes()).map(Bytes).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Bytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Base64".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "contentEncoding": "base64", "description": "Raw bytes (an Automerge change or document), base64."})
    }
}

/// One change on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireChange {
    /// The hub seq (in `changes` frames from the hub; absent in `push`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The node (document) the change belongs to.
    pub doc: NodeId,
    /// The raw Automerge change.
    pub bytes: Bytes,
}

/// One compacted document on the wire (bootstrap).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireDoc {
    /// The node.
    pub doc: NodeId,
    /// The saved Automerge document.
    pub bytes: Bytes,
    /// For a client that asked for views (`hello.views`): what the hub read
    /// of exactly these bytes, when it has read them. A client may show it
    /// without loading the document; it is never more than a reading of
    /// `bytes`, which stay the truth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<DocView>,
}

/// A document as the engine reads it ([`crate::NodeDoc::materialise_as`]
/// and [`crate::NodeDoc::conflicts`]), with the heads that reading is of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocView {
    /// The node.
    pub node: crate::Node,
    /// The fields holding concurrent values, by name.
    pub conflicts: Vec<String>,
    /// The document's heads (hex), sorted.
    pub heads: Vec<String>,
}

impl DocView {
    /// What the engine reads of `doc` as node `id`; `None` when it does not
    /// read as a node (a client reading the bytes finds the same).
    #[must_use]
    pub fn read(doc: &crate::NodeDoc, id: NodeId) -> Option<Self> {
        let node = doc.materialise_as(id).ok()?;
        let conflicts = doc.conflicts(id).ok()?.into_iter().map(|c| c.field).collect();
        let heads = doc.heads().iter().map(ToString::to_string).collect();
        Some(Self { node, conflicts, heads })
    }
}

/// Frames a client (device or browser) sends to the hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// A bearer token, for clients that cannot set headers (browsers); first frame.
    Auth {
        /// The token.
        token: String,
    },
    /// Opens the session.
    Hello {
        /// The protocol version the client speaks.
        version: u32,
        /// The client's device id (hex), for logs; at most 64 bytes.
        #[schemars(length(max = 64))]
        origin: String,
        /// The last hub seq the client has stored; 0 for none.
        cursor: u64,
        /// With cursor 0: send compacted documents instead of every change.
        #[serde(default)]
        bootstrap: bool,
        /// With `bootstrap`: send with each document the hub's reading of it
        /// ([`WireDoc::view`]) where it has one, so the client can list the
        /// documents before it reads them itself (the browser app).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        views: bool,
        /// The newest change of the hub's log this client knows, with its
        /// seq: the hub says in `welcome` whether its log still holds it
        /// there (a hub restored from an older copy does not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        known: Option<Known>,
    },
    /// Changes the hub has not acknowledged yet.
    Push {
        /// The client's id for this batch, echoed in the `ack`.
        batch: u64,
        /// The changes.
        changes: Vec<WireChange>,
    },
    /// Reconciliation: documents the client holds, with their heads. The hub
    /// answers with `need` for those it lacks anything of.
    Have {
        /// The documents, in id order.
        docs: Vec<DocHeads>,
    },
}

/// A position in the hub's log: a seq and the log's position digest there
/// (it stands for every change up to that seq, in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Known {
    /// The hub seq.
    pub seq: u64,
    /// The position (hex) the hub last told the client for that seq.
    pub hash: String,
}

/// One document and its heads (reconciliation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocHeads {
    /// The node (document).
    pub doc: NodeId,
    /// Its heads: change hashes, hex.
    pub heads: Vec<String>,
}

/// Why the hub ends or refuses something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON or not a known frame.
    BadFrame,
    /// Larger than [`MAX_FRAME_BYTES`] or [`MAX_PUSH_CHANGES`].
    TooLarge,
    /// The client speaks a protocol version the hub does not.
    UnsupportedVersion,
    /// A frame out of order (e.g. `push` before `hello`).
    Protocol,
    /// Change bytes that are not a valid Automerge change.
    InvalidChange,
    /// The client did not keep up with the live stream; reconnect and resume.
    TooSlow,
    /// Missing or invalid credentials.
    Unauthorized,
    /// Valid credentials that may not do this (a read-only token pushing).
    Forbidden,
    /// The hub keeps too many changes waiting for their dependencies; it
    /// takes more once those arrive (another device, or this one after a
    /// reconciliation, sends them).
    QuotaExceeded,
    /// The hub failed; retry later.
    Internal,
}

/// Frames the hub sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HubFrame {
    /// Answers `hello`.
    Welcome {
        /// The version chosen.
        version: u32,
        /// The hub's id (its log's identity; a new id means a new log).
        hub: String,
        /// The hub's last seq now: catch-up ends here, live changes follow.
        head: u64,
        /// The client's `known` position is not in this hub's log (the hub
        /// was replaced, or restored from an older copy): the client should
        /// start its cursors afresh and reconcile.
        #[serde(default)]
        diverged: bool,
    },
    /// Changes in hub seq order (catch-up and live alike).
    Changes {
        /// The changes, each with its seq.
        changes: Vec<WireChange>,
        /// The hub's log position (hex) at the last change's seq: what the
        /// client sends back as `known` in its next `hello`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<String>,
    },
    /// Compacted documents for a bootstrapping client.
    Snapshot {
        /// The documents.
        docs: Vec<WireDoc>,
        /// The hub seq they reflect; changes after it follow.
        upto: u64,
        /// Whether more snapshot frames follow.
        more: bool,
        /// With the last frame: the hub's log position (hex) at `upto`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hash: Option<String>,
    },
    /// A `push` is durably stored.
    Ack {
        /// The client's batch id.
        batch: u64,
        /// For each pushed change, its hub seq; 0 when it was stored before,
        /// or when it waits (see `waiting`).
        seqs: Vec<u64>,
        /// Indexes (into the push) of changes the hub keeps but cannot apply
        /// yet: they depend on changes it lacks. The client should reconcile
        /// (`have`) so that it sends them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waiting: Vec<u32>,
        /// The hub's log position (hex) at the highest seq in `seqs`: the
        /// client's known position from now on, so that a hub that later
        /// lost these changes (restored from an older copy) is told apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<String>,
    },
    /// Reconciliation: the documents of a `have` the hub lacks changes of,
    /// each with the hub's own heads (empty when it has none of it). The
    /// client sends every change not among their ancestors.
    Need {
        /// The documents.
        docs: Vec<DocHeads>,
    },
    /// Something went wrong.
    Error {
        /// What kind of error.
        code: ErrorCode,
        /// For people.
        message: String,
        /// Whether the hub closes the connection after this frame.
        close: bool,
    },
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Over the size limit.
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl FrameError {
    /// The error code to answer with.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Malformed(_) => ErrorCode::BadFrame,
        }
    }
}

fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))
}

impl ClientFrame {
    /// Decodes a client frame.
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        decode(text)
    }
}

impl HubFrame {
    /// Decodes a hub frame.
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        decode(text)
    }

    /// An error frame that announces a close.
    #[must_use]
    pub fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into(), close: true }
    }
}

/// Encodes any frame as JSON text.
#[must_use]
pub fn encode<T: Serialize>(frame: &T) -> String {
    // Serialising these types cannot fail: no maps with non-string keys, no
    // non-finite floats.
    serde_json::to_string(frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let doc = NodeId::random();
        let frames = vec![
            ClientFrame::Hello {
                version: 2,
                origin: "ab".into(),
                cursor: 7,
                bootstrap: false,
                views: false,
                known: None,
            },
            ClientFrame::Have { docs: vec![DocHeads { doc, heads: vec!["ab".repeat(32)] }] },
            ClientFrame::Push { batch: 3, changes: vec![WireChange { seq: None, doc, bytes: Bytes(vec![1, 2, 255]) }] },
            ClientFrame::Auth { token: "t".into() },
        ];
        for f in frames {
            assert_eq!(ClientFrame::decode(&encode(&f)).unwrap(), f);
        }
        let ack = HubFrame::Ack { batch: 3, seqs: vec![9, 0], waiting: vec![1], position: None };
        assert_eq!(HubFrame::decode(&encode(&ack)).unwrap(), ack);
    }

    #[test]
    fn bad_frames_are_errors() {
        for text in [
            "",
            "{",
            "[]",
            "{\"type\":\"hello\"}",
            "{\"type\":\"nope\"}",
            "{\"type\":\"push\",\"batch\":1,\"changes\":[{\"doc\":\"zz\",\"bytes\":\"\"}]}",
            "{\"type\":\"push\",\"batch\":1,\"changes\":[{\"doc\":\"00000000000000000000000000000000\",\"bytes\":\"***\"}]}",
            "{\"type\":\"hello\",\"version\":1,\"origin\":\"a\",\"cursor\":-1}",
        ] {
            assert!(matches!(ClientFrame::decode(text), Err(FrameError::Malformed(_))), "{text}");
        }
        let huge = format!("{{\"type\":\"auth\",\"token\":\"{}\"}}", "a".repeat(MAX_FRAME_BYTES));
        assert!(matches!(ClientFrame::decode(&huge), Err(FrameError::TooLarge(_))));
    }

    proptest! {
        /// The decoder never panics, whatever the bytes.
        #[test]
        fn decoding_arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = ClientFrame::decode(&text);
            let _ = HubFrame::decode(&text);
        }

        /// Nor on frames that are almost right.
        #[test]
        fn decoding_mutated_frames_never_panics(cursor in any::<u64>(), cut in 0usize..120, byte in any::<u8>()) {
            let good = encode(&ClientFrame::Hello {
                version: 2,
                origin: "abc".into(),
                cursor,
                bootstrap: true,
                views: false,
                known: Some(Known { seq: cursor, hash: "00".repeat(32) }),
            });
            let mut bytes = good.into_bytes();
            let at = cut % bytes.len();
            bytes[at] = byte;
            let text = String::from_utf8_lossy(&bytes);
            let _ = ClientFrame::decode(&text);
        }
    }
}
