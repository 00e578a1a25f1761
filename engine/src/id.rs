//! Node identifiers: random 128-bit values, shown as lower-case hex.
//!
//! Humans refer to nodes by short unique prefixes of that hex form, as with git
//! commit hashes. Because an id is the same on every device, a prefix means the
//! same node everywhere (unlike Taskwarrior's working-set numbers).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The fewest hex digits used when showing an id, even when fewer are unique.
pub const MIN_PREFIX: usize = 6;

/// The fewest hex digits of an id that name a node for a command that
/// changes something (`heph done`, `modify`, `depends:` …): one to three
/// digits match a node by chance too easily once a replica holds a few
/// hundred nodes, so a typo would change the wrong one.
pub const MIN_CHANGE_PREFIX: usize = 4;

/// What a prefix is resolved for: reading accepts any unique prefix,
/// changing needs [`MIN_CHANGE_PREFIX`] digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Showing the node (`show`, `history`).
    #[default]
    Read,
    /// Changing it, or naming it in a change of another node.
    Change,
}

/// A node's identity: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 16]);

impl NodeId {
    /// A fresh random id.
    #[must_use]
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The id of the journal node of `day`: derived, so that every device that
    /// opens the same day's journal offline writes into the same document.
    #[must_use]
    pub fn journal(day: chrono::NaiveDate) -> Self {
        Self::derived(&format!("heph/journal/{day}"))
    }

    /// An id derived from a name by SHA-256 (the first 16 bytes).
    #[must_use]
    pub fn derived(name: &str) -> Self {
        let digest = Sha256::digest(name.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(bytes)
    }

    /// Wraps raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The full 32-digit hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses a full id; also accepts the dashed UUID form (Taskwarrior uuids).
    pub fn parse(text: &str) -> Option<Self> {
        let cleaned: String = text.trim().chars().filter(|c| *c != '-').collect();
        if cleaned.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(cleaned.to_ascii_lowercase(), &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The dashed UUID form (8-4-4-4-12), as Taskwarrior writes it.
    #[must_use]
    pub fn to_uuid(&self) -> String {
        let h = self.to_hex();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

impl FromStr for NodeId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("{s:?} is not a 32-digit hex node id"))
    }
}

/// Hex text in JSON; 16 raw bytes in binary formats (the postcard index).
impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 16]>::deserialize(deserializer).map(Self)
        }
    }
}

impl JsonSchema for NodeId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NodeId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "A node id: 128 bits as 32 lower-case hex digits."
        })
    }
}

/// A validated id prefix: 1 to 32 hex digits, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPrefix(String);

impl IdPrefix {
    /// Parses a prefix as typed by a user (dashes of a UUID are ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let cleaned: String = text.trim().chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect();
        if cleaned.is_empty() || cleaned.len() > 32 || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self(cleaned))
    }

    /// The inclusive byte range of ids that start with this prefix.
    #[must_use]
    pub fn range(&self) -> ([u8; 16], [u8; 16]) {
        let low: String = format!("{:0<32}", self.0);
        let high: String = format!("{:f<32}", self.0);
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        // Both strings are 32 hex digits by construction.
        let _ = hex::decode_to_slice(low, &mut lo);
        let _ = hex::decode_to_slice(high, &mut hi);
        (lo, hi)
    }

    /// The prefix text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this prefix may name a node for `purpose` (see
    /// [`MIN_CHANGE_PREFIX`]).
    #[must_use]
    pub fn serves(&self, purpose: Purpose) -> bool {
        purpose == Purpose::Read || self.0.len() >= MIN_CHANGE_PREFIX
    }
}

/// The length of the shortest prefix of `id` that tells it apart from its
/// neighbours in sorted order (`prev`, `next`), never under [`MIN_PREFIX`].
#[must_use]
pub fn unique_prefix_len(id: &NodeId, prev: Option<&NodeId>, next: Option<&NodeId>) -> usize {
    let shared = |other: &NodeId| -> usize {
        let a = id.to_hex();
        let b = other.to_hex();
        a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
    };
    let longest = prev.map_or(0, shared).max(next.map_or(0, shared));
    (longest + 1).clamp(MIN_PREFIX, 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_uuid_round_trip() {
        let id = NodeId::random();
        assert_eq!(NodeId::parse(&id.to_hex()), Some(id));
        assert_eq!(NodeId::parse(&id.to_uuid()), Some(id));
        assert_eq!(id.to_uuid().len(), 36);
    }

    #[test]
    fn prefix_range_covers_exactly_the_prefix() {
        let p = IdPrefix::parse("AB-c").unwrap();
        assert_eq!(p.as_str(), "abc");
        let (lo, hi) = p.range();
        assert_eq!(hex::encode(lo), format!("abc{}", "0".repeat(29)));
        assert_eq!(hex::encode(hi), format!("abc{}", "f".repeat(29)));
        assert!(IdPrefix::parse("xyz").is_none());
        assert!(IdPrefix::parse("").is_none());
    }

    #[test]
    fn unique_prefix_grows_past_shared_digits() {
        let a = NodeId::parse("abcdef12000000000000000000000000").unwrap();
        let b = NodeId::parse("abcdef13000000000000000000000000").unwrap();
        assert_eq!(unique_prefix_len(&a, None, Some(&b)), 8);
        assert_eq!(unique_prefix_len(&a, None, None), MIN_PREFIX);
    }

    #[test]
    fn serde_is_hex_in_json_and_bytes_in_postcard() {
        let id = NodeId::random();
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", id.to_hex()));
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(postcard::from_bytes::<NodeId>(&bytes).unwrap(), id);
        assert_eq!(serde_json::from_str::<NodeId>(&serde_json::to_string(&id).unwrap()).unwrap(), id);
    }

    #[test]
    fn journal_ids_are_stable() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(NodeId::journal(day), NodeId::journal(day));
        assert_ne!(NodeId::journal(day), NodeId::journal(day.succ_opt().unwrap()));
    }
}
