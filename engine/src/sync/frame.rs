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

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame accepted, in bytes of JSON text.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// The most changes one `push` may carry.
pub const MAX_PUSH_CHANGES: usize = 4096;

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
        /// The client's device id (hex), for logs.
        origin: String,
        /// The last hub seq the client has stored; 0 for none.
        cursor: u64,
        /// With cursor 0: send compacted documents instead of every change.
        #[serde(default)]
        bootstrap: bool,
    },
    /// Changes the hub has not acknowledged yet.
    Push {
        /// The client's id for this batch, echoed in the `ack`.
        batch: u64,
        /// The changes.
        changes: Vec<WireChange>,
    },
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
    },
    /// Changes in hub seq order (catch-up and live alike).
    Changes {
        /// The changes, each with its seq.
        changes: Vec<WireChange>,
    },
    /// Compacted documents for a bootstrapping client.
    Snapshot {
        /// The documents.
        docs: Vec<WireDoc>,
        /// The hub seq they reflect; changes after it follow.
        upto: u64,
        /// Whether more snapshot frames follow.
        more: bool,
    },
    /// A `push` is durably stored.
    Ack {
        /// The client's batch id.
        batch: u64,
        /// For each pushed change, its hub seq (0: already known, or waiting
        /// for changes it depends on).
        seqs: Vec<u64>,
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
            ClientFrame::Hello { version: 1, origin: "ab".into(), cursor: 7, bootstrap: false },
            ClientFrame::Push { batch: 3, changes: vec![WireChange { seq: None, doc, bytes: Bytes(vec![1, 2, 255]) }] },
            ClientFrame::Auth { token: "t".into() },
        ];
        for f in frames {
            assert_eq!(ClientFrame::decode(&encode(&f)).unwrap(), f);
        }
        let ack = HubFrame::Ack { batch: 3, seqs: vec![9] };
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
            let good = encode(&ClientFrame::Hello { version: 1, origin: "abc".into(), cursor, bootstrap: true });
            let mut bytes = good.into_bytes();
            let at = cut % bytes.len();
            bytes[at] = byte;
            let text = String::from_utf8_lossy(&bytes);
            let _ = ClientFrame::decode(&text);
        }
    }
}
