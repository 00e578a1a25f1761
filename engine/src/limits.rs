//! Bounded decoding of untrusted Automerge bytes.
//!
//! Every Automerge byte string that comes from outside this process (a
//! change in a `push` frame, a bootstrap snapshot, an imported document)
//! passes through this module before automerge parses it: [`parse_change`]
//! and [`load_document`] run [`check`] first, then hand the bytes to
//! automerge.
//!
//! # Why
//! Automerge inflates DEFLATE data with no bound (`storage/chunk.rs` reads
//! a compressed change with `read_to_end`; `storage/columns/raw_column.rs`
//! does the same for deflated document columns), and the inflated size is
//! written nowhere in the header. A 2 MiB push can therefore claim 2 GiB of
//! memory. The hub applies commits one at a time, so one connection that
//! takes the process's memory takes every other owner's sync with it.
//! [`check`] refuses such input *before* anything is inflated in full.
//!
//! # What is bounded
//! - **Raw size** of one change: [`MAX_CHANGE_BYTES`] (in [`parse_change`]),
//!   the largest change that fits in one sync frame.
//! - **Inflated size**: compressed change chunks and deflated columns of
//!   document (and bundle) chunks are inflated with a streaming decoder
//!   that stops one byte past the budget. The budget
//!   ([`MAX_INFLATED_BYTES`]) is shared by every column of a chunk and every
//!   chunk of the input. Uncompressed chunks are not inflated: their size
//!   is their length, already bounded by whoever read them off the wire.
//! - **Rows implied by run-length encoding**: automerge's RLE columns can
//!   say "this value, 2^40 times" in a few bytes, and automerge walks every
//!   one of those rows (`Change::new_from_unverified` counts the ops of a
//!   change one by one; loading a document rebuilds its changes). [`check`]
//!   sums the run lengths of every column of a change, document or bundle
//!   (a walk over the run headers, no values are decoded) and refuses a
//!   chunk whose columns claim more than [`MAX_ROWS`] rows.
//!
//! # What is not bounded
//! - Checksums and hashes are not verified here; automerge does that.
//! - Column contents are not validated: a column this module cannot walk
//!   is left to automerge, which rejects it. [`check`] only ever refuses
//!   input that is over a limit or not a sequence of Automerge chunks, so
//!   anything automerge accepts under the limits, it accepts too.
//! - Peak memory while checking is up to about twice the inflated size of
//!   the largest compressed chunk (the inflated bytes are kept to walk their
//!   columns); automerge itself then inflates again.
//! - Work done after loading (applying ops, materialising text) is
//!   bounded only through the row and byte limits above.

use std::io::Read;

use automerge::{Automerge, Change};

use crate::sync::frame::MAX_FRAME_BYTES;

/// How much a hub lets wait for changes it depends on (received changes
/// whose dependencies have not arrived): past either bound, a push that
/// would leave more waiting is refused ([`crate::Error::PendingQuota`],
/// [`crate::Error::PendingBytes`]) and stores nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingQuota {
    /// Waiting changes.
    pub changes: u64,
    /// Their bytes (raw, as stored).
    pub bytes: u64,
}

/// The most bytes one change, or one document, may inflate to (summed over
/// every compressed chunk and deflated column of the input).
pub const MAX_INFLATED_BYTES: usize = 64 * 1024 * 1024;

/// The largest raw change heph accepts or writes.
///
/// One such change must always fit in one sync frame: the frame holds at
/// most [`MAX_FRAME_BYTES`] of JSON, change bytes travel as base64 (4 output
/// bytes per 3 input bytes), and the frame's JSON around one change
/// (keys, node id, quotes) takes well under 1 KiB:
///
/// (8 MiB − 1 KiB) / 4 × 3 = 2,096,896 × 3 = 6,290,688 bytes (6 MiB − 768 B).
pub const MAX_CHANGE_BYTES: usize = (MAX_FRAME_BYTES - 1024) / 4 * 3;

/// The most rows (ops, or changes of a document) the run-length encoded
/// columns of one input may claim, summed over its chunks.
///
/// A legitimate change of [`MAX_CHANGE_BYTES`] holds at most about one op
/// per byte when every op carries its own value (typing a note body), so
/// this is well above anything heph writes; deletes are RLE-compressed to a
/// few bytes for any count, and 16 Mi rows is still cheap for automerge to
/// walk, where a few crafted bytes could otherwise claim 2^63.
pub const MAX_ROWS: u64 = 16 * 1024 * 1024;

/// The magic bytes every Automerge chunk starts with (`storage.rs`).
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Chunk types (`storage/chunk.rs`, `ChunkType`).
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;
const CHUNK_BUNDLE: u8 = 3;

/// A change hash is a SHA-256 (`types.rs`, `HASH_SIZE`).
const HASH_SIZE: usize = 32;

/// The deflate bit of a column spec: `spec = (id << 4) | (deflate << 3) | type`
/// (`storage/columns/column_specification.rs`).
const DEFLATE_BIT: u64 = 0b1000;

/// Why untrusted Automerge bytes were refused.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The raw bytes are larger than the caller's limit.
    #[error("this change is {size} bytes, over the {limit}-byte limit; split the edit into smaller changes")]
    TooLarge {
        /// The size of the bytes offered.
        size: usize,
        /// The limit they exceed.
        limit: usize,
    },
    /// Compressed data would inflate past the limit; nothing was inflated
    /// beyond it.
    #[error(
        "this data would inflate past {limit} bytes; it was refused before inflating (split it, or send it uncompressed)"
    )]
    InflatesTooFar {
        /// The inflation budget, in bytes.
        limit: usize,
    },
    /// Run-length encoded columns claim more rows than the limit.
    #[error("this data claims more than {limit} ops or changes in its columns; it was refused before decoding them")]
    TooManyRows {
        /// The row limit.
        limit: u64,
    },
    /// Not a sequence of Automerge chunks (bad magic, truncated, bad LEB128,
    /// corrupt deflate stream), or automerge itself refused it.
    #[error("not valid Automerge data: {0}")]
    Malformed(String),
}

fn malformed(what: &str) -> LimitError {
    LimitError::Malformed(what.to_owned())
}

/// Checks that `bytes` (one or more concatenated Automerge chunks) stay
/// within the limits when decoded: compressed data inflates to at most
/// `max_inflated` bytes in all, and run-length encoded columns claim at most
/// [`MAX_ROWS`] rows.
///
/// Never panics, on any input. Uncompressed chunks are not inflated or
/// copied; for them this is one pass over the chunk headers and column run
/// headers.
///
/// # Errors
/// [`LimitError::InflatesTooFar`], [`LimitError::TooManyRows`], or
/// [`LimitError::Malformed`] when the bytes are not Automerge chunks.
pub fn check(bytes: &[u8], max_inflated: usize) -> Result<(), LimitError> {
    let mut budget = Budget { inflate_left: max_inflated, inflate_limit: max_inflated, rows: 0 };
    let mut r = Reader::new(bytes);
    let mut scratch = Vec::new();
    while !r.is_empty() {
        if r.take(4)? != MAGIC {
            return Err(malformed("chunk does not start with the Automerge magic bytes"));
        }
        let _checksum = r.take(4)?;
        let chunk_type = r.byte()?;
        let len = r.len()?;
        let data = r.take(len)?;
        match chunk_type {
            CHUNK_DOCUMENT => document(data, &mut budget, &mut scratch)?,
            CHUNK_CHANGE => change(data, &mut budget)?,
            CHUNK_COMPRESSED => {
                // The whole change body is raw DEFLATE (`storage/chunk.rs`,
                // `ChunkType::Compressed`); inflate it under the budget, then
                // walk it like an uncompressed change.
                let mut body = Vec::new();
                inflate(data, &mut budget, &mut body)?;
                change(&body, &mut budget)?;
            }
            CHUNK_BUNDLE => bundle(data, &mut budget, &mut scratch)?,
            other => {
                return Err(LimitError::Malformed(format!("unknown chunk type {other}")));
            }
        }
    }
    Ok(())
}

/// Parses one change received from outside: refuses it if its size is
/// over [`MAX_CHANGE_BYTES`], [`check`]s it against [`MAX_INFLATED_BYTES`],
/// then decodes it with automerge.
///
/// A change may arrive compressed, but it is stored, logged and sent on
/// inflated (automerge's `raw_bytes`), so the inflated form is held to
/// [`MAX_CHANGE_BYTES`] too: a larger one could never travel in a frame,
/// and every device's catch-up would stop at it.
///
/// # Errors
/// [`LimitError::TooLarge`] for an oversize change, the errors of [`check`],
/// and [`LimitError::Malformed`] when automerge refuses the bytes.
pub fn parse_change(bytes: Vec<u8>) -> Result<Change, LimitError> {
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(LimitError::TooLarge { size: bytes.len(), limit: MAX_CHANGE_BYTES });
    }
    check(&bytes, MAX_INFLATED_BYTES)?;
    let change = Change::from_bytes(bytes).map_err(|e| LimitError::Malformed(e.to_string()))?;
    let size = change.raw_bytes().len();
    if size > MAX_CHANGE_BYTES {
        return Err(LimitError::TooLarge { size, limit: MAX_CHANGE_BYTES });
    }
    Ok(change)
}

/// Loads a document (or concatenated changes) received from outside:
/// [`check`]s it against [`MAX_INFLATED_BYTES`], then loads it with
/// automerge.
///
/// # Errors
/// The errors of [`check`], and [`LimitError::Malformed`] when automerge
/// refuses the bytes.
pub fn load_document(bytes: &[u8]) -> Result<Automerge, LimitError> {
    check(bytes, MAX_INFLATED_BYTES)?;
    crate::doc::guarded(|| Automerge::load(bytes)).map_err(|e| match e {
        crate::doc::DocError::Automerge(e) => LimitError::Malformed(e.to_string()),
        other => LimitError::Malformed(other.to_string()),
    })
}

/// Builds a compressed change chunk whose body inflates to `inflated` zero
/// bytes: correct magic, a meaningless checksum, chunk type 2, and the
/// DEFLATE of the zeros. The zeros are streamed into the encoder in blocks,
/// so building a 2 GiB bomb (about 2 MiB of output) allocates only the
/// output.
#[doc(hidden)]
pub fn compressed_change_bomb(inflated: usize) -> Vec<u8> {
    chunk(CHUNK_COMPRESSED, &deflate_zeros(inflated))
}

/// Builds a document chunk with one deflated column (the ops' value column)
/// that inflates to `inflated` zero bytes; everything else is empty. Built
/// like [`compressed_change_bomb`], without allocating `inflated` bytes.
#[doc(hidden)]
pub fn document_bomb(inflated: usize) -> Vec<u8> {
    let column = deflate_zeros(inflated);
    let mut data = Vec::with_capacity(column.len() + 16);
    write_uleb(&mut data, 0); // actors
    write_uleb(&mut data, 0); // heads
    write_uleb(&mut data, 0); // change columns
    write_uleb(&mut data, 1); // op columns
    // Value column of the ops (`op_set2/columns.rs`, VAL_COL_ID = 5,
    // ColumnType::Value = 7), with the deflate bit.
    write_uleb(&mut data, (5 << 4) | DEFLATE_BIT | 7);
    write_uleb(&mut data, column.len() as u64);
    data.extend_from_slice(&column);
    chunk(CHUNK_DOCUMENT, &data)
}

/// DEFLATE of `n` zero bytes, streamed in blocks. The default level gives
/// the same ~1000:1 ratio on zeros as the best level, about three times
/// faster (2 GiB: ~2 MiB in ~1.7 s).
fn deflate_zeros(n: usize) -> Vec<u8> {
    use std::io::Write as _;
    static BLOCK: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut left = n;
    while left > 0 {
        let step = left.min(BLOCK.len());
        // Writing to a Vec cannot fail.
        if enc.write_all(&BLOCK[..step]).is_err() {
            break;
        }
        left -= step;
    }
    enc.finish().unwrap_or_default()
}

/// A chunk with header: magic, checksum (zeros), type, uLEB length, data.
fn chunk(chunk_type: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 20);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.push(chunk_type);
    write_uleb(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// What is left of the limits while walking one input.
struct Budget {
    inflate_left: usize,
    inflate_limit: usize,
    rows: u64,
}

impl Budget {
    /// Adds the rows of one set of columns (a change's ops, a document's
    /// changes or ops).
    fn add_rows(&mut self, rows: u64) -> Result<(), LimitError> {
        self.rows = self.rows.saturating_add(rows);
        if self.rows > MAX_ROWS {
            return Err(LimitError::TooManyRows { limit: MAX_ROWS });
        }
        Ok(())
    }
}

/// Inflates raw DEFLATE `data` into `out` (cleared first), stopping one byte
/// past what is left of the budget.
fn inflate(data: &[u8], budget: &mut Budget, out: &mut Vec<u8>) -> Result<(), LimitError> {
    out.clear();
    let left = budget.inflate_left;
    // `take(left + 1)`: reading one byte more than allowed is how we learn
    // the stream goes on past the limit, without inflating any further.
    let mut dec = flate2::bufread::DeflateDecoder::new(data).take((left as u64).saturating_add(1));
    dec.read_to_end(out).map_err(|e| LimitError::Malformed(format!("corrupt deflate stream: {e}")))?;
    if out.len() > left {
        out.clear();
        out.shrink_to_fit();
        return Err(LimitError::InflatesTooFar { limit: budget.inflate_limit });
    }
    budget.inflate_left = left - out.len();
    Ok(())
}

/// One column of a column metadata block: its spec and length
/// (`storage/columns/raw_column.rs`, `RawColumns::parse`).
#[derive(Clone, Copy)]
struct Column {
    spec: u64,
    len: usize,
}

impl Column {
    fn deflated(self) -> bool {
        self.spec & DEFLATE_BIT != 0
    }

    /// `ColumnType` (`storage/columns/column_specification.rs`): the low
    /// three bits.
    fn col_type(self) -> u8 {
        (self.spec & 0b111) as u8
    }
}

/// Parses a column metadata block: uLEB count, then (uLEB spec, uLEB length)
/// per column.
fn columns(r: &mut Reader<'_>) -> Result<Vec<Column>, LimitError> {
    let n = r.uleb()?;
    let mut cols = Vec::new();
    for _ in 0..n {
        // Every column takes at least two bytes, so this loop ends with the
        // input even when `n` is huge.
        let spec = r.uleb()?;
        let len = r.len()?;
        cols.push(Column { spec, len });
    }
    Ok(cols)
}

fn total_len(cols: &[Column]) -> Result<usize, LimitError> {
    cols.iter().try_fold(0usize, |acc, c| acc.checked_add(c.len)).ok_or_else(|| malformed("column lengths overflow"))
}

/// Walks the data of one set of columns: inflates deflated columns under
/// the budget, and counts the rows every column claims. The set's rows are
/// those of its longest column (automerge reads one value of every column
/// per row).
fn walk_columns(cols: &[Column], data: &[u8], budget: &mut Budget, scratch: &mut Vec<u8>) -> Result<(), LimitError> {
    let mut at = 0usize;
    let mut rows = 0u64;
    for &col in cols {
        let end = at.checked_add(col.len).ok_or_else(|| malformed("column lengths overflow"))?;
        let raw = data.get(at..end).ok_or_else(|| malformed("column data runs past the end of the chunk"))?;
        at = end;
        let col_rows = if col.deflated() {
            inflate(raw, budget, scratch)?;
            column_rows(col.col_type(), scratch)
        } else {
            column_rows(col.col_type(), raw)
        };
        rows = rows.max(col_rows);
        if rows > MAX_ROWS {
            return Err(LimitError::TooManyRows { limit: MAX_ROWS });
        }
    }
    budget.add_rows(rows)
}

/// A change chunk body (`storage/change.rs`, `parse_following_header`):
/// deps, actor, seq, start op, time, message, other actors, op column
/// metadata, op column data, extra bytes.
fn change(data: &[u8], budget: &mut Budget) -> Result<(), LimitError> {
    let mut r = Reader::new(data);
    hashes(&mut r)?;
    r.bytes_prefixed()?; // actor
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    r.bytes_prefixed()?; // message
    actors(&mut r)?;
    let cols = columns(&mut r)?;
    if cols.iter().any(|c| c.deflated()) {
        // Automerge refuses these (`ParseError::CompressedChangeCols`);
        // refusing here keeps us from inflating them.
        return Err(malformed("a change chunk has deflated columns"));
    }
    let ops = r.take(total_len(&cols)?)?;
    // Nothing in a change is deflated, so the scratch buffer is never used.
    walk_columns(&cols, ops, budget, &mut Vec::new())
}

/// A document chunk body (`storage/document.rs`, `Document::parse`):
/// actors, heads, change column metadata, op column metadata, change column
/// data, op column data, head indices.
fn document(data: &[u8], budget: &mut Budget, scratch: &mut Vec<u8>) -> Result<(), LimitError> {
    let mut r = Reader::new(data);
    actors(&mut r)?;
    hashes(&mut r)?;
    let change_cols = columns(&mut r)?;
    let op_cols = columns(&mut r)?;
    let change_data = r.take(total_len(&change_cols)?)?;
    let op_data = r.take(total_len(&op_cols)?)?;
    walk_columns(&change_cols, change_data, budget, scratch)?;
    walk_columns(&op_cols, op_data, budget, scratch)
}

/// A bundle chunk body (`storage/bundle/storage.rs`,
/// `parse_following_header`): deps, actors, change column metadata and
/// data, op column metadata and data.
fn bundle(data: &[u8], budget: &mut Budget, scratch: &mut Vec<u8>) -> Result<(), LimitError> {
    let mut r = Reader::new(data);
    hashes(&mut r)?;
    actors(&mut r)?;
    let change_cols = columns(&mut r)?;
    let change_data = r.take(total_len(&change_cols)?)?;
    let op_cols = columns(&mut r)?;
    let op_data = r.take(total_len(&op_cols)?)?;
    walk_columns(&change_cols, change_data, budget, scratch)?;
    walk_columns(&op_cols, op_data, budget, scratch)
}

/// uLEB count, then that many 32-byte hashes.
fn hashes(r: &mut Reader<'_>) -> Result<(), LimitError> {
    let n = usize::try_from(r.uleb()?).map_err(|_| malformed("hash count overflows"))?;
    let len = n.checked_mul(HASH_SIZE).ok_or_else(|| malformed("hash count overflows"))?;
    r.take(len)?;
    Ok(())
}

/// uLEB count, then that many length-prefixed actor ids.
fn actors(r: &mut Reader<'_>) -> Result<(), LimitError> {
    let n = r.uleb()?;
    for _ in 0..n {
        // Each actor takes at least one byte: the loop ends with the input.
        r.bytes_prefixed()?;
    }
    Ok(())
}

/// The number of rows a column's data claims, from its run headers alone
/// (`columnar/encoding/rle.rs`, `boolean.rs`).
///
/// Stops at the first thing it cannot read and returns the rows counted so
/// far: validating columns is automerge's job, this only has to see every
/// run length that is there. Saturates instead of overflowing.
fn column_rows(col_type: u8, data: &[u8]) -> u64 {
    let mut r = Reader::new(data);
    let mut rows = 0u64;
    match col_type {
        // Value: raw bytes, rows are counted by its metadata column.
        7 => 0,
        // Boolean: alternating run lengths of false and true, all uLEB.
        4 => {
            while let Ok(n) = r.uleb() {
                rows = rows.saturating_add(n);
                if rows > MAX_ROWS {
                    break;
                }
            }
            rows
        }
        // Group, Actor, Integer, DeltaInteger, String, ValueMetadata: RLE.
        // A run starts with a signed LEB count: n > 0 is n copies of one
        // value, n < 0 is -n literal values, 0 is a null run whose length
        // follows as a uLEB.
        _ => {
            let skip_value = |r: &mut Reader<'_>| -> Result<(), LimitError> {
                if col_type == 5 { r.bytes_prefixed().map(|_| ()) } else { r.uleb().map(|_| ()) }
            };
            while !r.is_empty() && rows <= MAX_ROWS {
                let Ok(count) = r.sleb() else { break };
                let n = if count > 0 {
                    if skip_value(&mut r).is_err() {
                        break;
                    }
                    count.unsigned_abs()
                } else if count < 0 {
                    // Literals: every value is in the data, so this run
                    // cannot claim more rows than it has bytes.
                    let n = count.unsigned_abs();
                    let mut read = 0u64;
                    while read < n && skip_value(&mut r).is_ok() {
                        read += 1;
                    }
                    read
                } else {
                    match r.uleb() {
                        Ok(n) => n,
                        Err(_) => break,
                    }
                };
                rows = rows.saturating_add(n);
            }
            rows
        }
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LimitError> {
        if n > self.bytes.len() {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, LimitError> {
        let (&b, rest) = self.bytes.split_first().ok_or_else(|| malformed("truncated"))?;
        self.bytes = rest;
        Ok(b)
    }

    /// An unsigned LEB128 of at most 10 bytes that fits in a u64.
    fn uleb(&mut self) -> Result<u64, LimitError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(malformed("LEB128 overflows 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("LEB128 longer than 10 bytes"))
    }

    /// A signed LEB128 of at most 10 bytes.
    fn sleb(&mut self) -> Result<i64, LimitError> {
        let mut v = 0i64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift < 64 {
                v |= i64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                if shift + 7 < 64 && b & 0x40 != 0 {
                    v |= -1i64 << (shift + 7);
                }
                return Ok(v);
            }
        }
        Err(malformed("LEB128 longer than 10 bytes"))
    }

    /// A uLEB length that fits in a usize.
    fn len(&mut self) -> Result<usize, LimitError> {
        usize::try_from(self.uleb()?).map_err(|_| malformed("length overflows"))
    }

    /// A uLEB length, then that many bytes.
    fn bytes_prefixed(&mut self) -> Result<&'a [u8], LimitError> {
        let n = self.len()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable as _;
    use automerge::{AutoCommit, ObjType, ROOT};
    use proptest::prelude::*;

    /// A document with a title and a text body of `body_len` characters,
    /// and the change that wrote them.
    fn note(body_len: usize) -> (AutoCommit, Change) {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "title", "a note").unwrap();
        let body = doc.put_object(ROOT, "body", ObjType::Text).unwrap();
        let text: String = (0..body_len).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        doc.splice_text(&body, 0, 0, &text).unwrap();
        let change = doc.get_last_local_change().unwrap().clone();
        (doc, change)
    }

    fn chunk_type(bytes: &[u8]) -> u8 {
        bytes[8]
    }

    #[test]
    fn max_change_fits_in_a_frame() {
        // base64 of MAX_CHANGE_BYTES plus 1 KiB of JSON stays within a frame.
        let b64 = MAX_CHANGE_BYTES.div_ceil(3) * 4;
        assert!(b64 + 1024 <= MAX_FRAME_BYTES);
    }

    #[test]
    fn small_change_is_accepted_uncompressed() {
        let (_, mut change) = note(10);
        let bytes = change.bytes().into_owned();
        // Under 256 bytes automerge does not compress (`DEFLATE_MIN_SIZE`).
        assert_eq!(chunk_type(&bytes), CHUNK_CHANGE);
        check(&bytes, MAX_INFLATED_BYTES).unwrap();
        let parsed = parse_change(bytes).unwrap();
        assert_eq!(parsed.hash(), change.hash());
    }

    #[test]
    fn large_note_change_is_compressed_and_accepted() {
        let (_, mut change) = note(50_000);
        let compressed = change.bytes().into_owned();
        assert_eq!(chunk_type(&compressed), CHUNK_COMPRESSED);
        assert!(compressed.len() < change.raw_bytes().len());
        check(&compressed, MAX_INFLATED_BYTES).unwrap();
        check(change.raw_bytes(), MAX_INFLATED_BYTES).unwrap();
        assert_eq!(parse_change(compressed).unwrap().hash(), change.hash());
        // The same change, refused when the budget is smaller than its body.
        let err = check(&change.bytes(), 1000).unwrap_err();
        assert!(matches!(err, LimitError::InflatesTooFar { limit: 1000 }), "{err}");
    }

    /// A change putting a scalar string of `len` times one letter: it
    /// deflates to almost nothing.
    fn compressible(len: usize) -> Change {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "body", "a".repeat(len)).unwrap();
        doc.get_last_local_change().unwrap().clone()
    }

    #[test]
    fn a_compressed_change_that_inflates_past_the_change_limit_is_refused() {
        let mut change = compressible(MAX_CHANGE_BYTES);
        let inflated = change.raw_bytes().len();
        assert!(inflated > MAX_CHANGE_BYTES);
        let compressed = change.bytes().into_owned();
        assert_eq!(chunk_type(&compressed), CHUNK_COMPRESSED);
        assert!(compressed.len() < MAX_CHANGE_BYTES / 100, "{} bytes compressed", compressed.len());
        let err = parse_change(compressed).unwrap_err();
        assert!(matches!(err, LimitError::TooLarge { size, limit: MAX_CHANGE_BYTES } if size == inflated), "{err}");
        // Inflated to just under the limit, it is accepted.
        let mut fits = compressible(MAX_CHANGE_BYTES - 1024);
        assert!(fits.raw_bytes().len() <= MAX_CHANGE_BYTES);
        let compressed = fits.bytes().into_owned();
        assert_eq!(chunk_type(&compressed), CHUNK_COMPRESSED);
        assert_eq!(parse_change(compressed).unwrap().hash(), fits.hash());
    }

    #[test]
    fn documents_with_deflated_columns_are_accepted() {
        let (mut doc, _) = note(50_000);
        let saved = doc.save();
        assert_eq!(chunk_type(&saved), CHUNK_DOCUMENT);
        // Columns over 256 bytes are deflated on save.
        assert!(saved.len() < doc.save_nocompress().len());
        check(&saved, MAX_INFLATED_BYTES).unwrap();
        let loaded = load_document(&saved).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
        // A budget smaller than the deflated columns refuses the document.
        let err = check(&saved, 1000).unwrap_err();
        assert!(matches!(err, LimitError::InflatesTooFar { .. }), "{err}");
    }

    #[test]
    fn concatenated_changes_load() {
        let (mut doc, _) = note(1000);
        doc.put(ROOT, "title", "renamed").unwrap();
        let mut bytes = Vec::new();
        for c in doc.get_changes(&[]) {
            bytes.extend_from_slice(&c.clone().bytes());
        }
        check(&bytes, MAX_INFLATED_BYTES).unwrap();
        assert_eq!(load_document(&bytes).unwrap().get_heads(), doc.get_heads());
    }

    #[test]
    fn compressed_change_bomb_is_refused() {
        let bomb = compressed_change_bomb(256 * 1024 * 1024);
        assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
        let err = check(&bomb, MAX_INFLATED_BYTES).unwrap_err();
        assert!(matches!(err, LimitError::InflatesTooFar { limit: MAX_INFLATED_BYTES }), "{err}");
        assert!(err.to_string().contains("refused before inflating"));
        assert!(matches!(parse_change(bomb), Err(LimitError::InflatesTooFar { .. })));
    }

    #[test]
    fn document_bomb_is_refused() {
        let bomb = document_bomb(256 * 1024 * 1024);
        assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
        assert!(matches!(load_document(&bomb), Err(LimitError::InflatesTooFar { .. })));
        // A small one passes the check (and is then automerge's to judge).
        check(&document_bomb(1000), MAX_INFLATED_BYTES).unwrap();
    }

    #[test]
    fn the_budget_is_shared_by_all_chunks() {
        let one = compressed_change_bomb(600 * 1024);
        check(&one, 1024 * 1024).unwrap();
        let two = [one.as_slice(), one.as_slice()].concat();
        assert!(matches!(check(&two, 1024 * 1024), Err(LimitError::InflatesTooFar { .. })));
        let doc = document_bomb(600 * 1024);
        let both = [one.as_slice(), doc.as_slice()].concat();
        assert!(matches!(check(&both, 1024 * 1024), Err(LimitError::InflatesTooFar { .. })));
    }

    /// A change chunk whose action column is one RLE run of `rows` ops.
    fn rle_bomb(rows: i64) -> Vec<u8> {
        let mut body = Vec::new();
        write_uleb(&mut body, 0); // deps
        write_uleb(&mut body, 16); // actor
        body.extend_from_slice(&[7; 16]);
        write_uleb(&mut body, 1); // seq
        write_uleb(&mut body, 1); // start op
        write_uleb(&mut body, 0); // time
        write_uleb(&mut body, 0); // message
        write_uleb(&mut body, 0); // other actors
        let mut action = Vec::new();
        let mut n = rows; // signed LEB of the run length
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
                action.push(byte);
                break;
            }
            action.push(byte | 0x80);
        }
        action.push(1); // the value: action "put"
        write_uleb(&mut body, 1); // one column
        write_uleb(&mut body, (4 << 4) | 2); // action, Integer
        write_uleb(&mut body, action.len() as u64);
        body.extend_from_slice(&action);
        chunk(CHUNK_CHANGE, &body)
    }

    #[test]
    fn rle_runs_claiming_billions_of_ops_are_refused() {
        let bomb = rle_bomb(1 << 40);
        assert!(bomb.len() < 64);
        let err = check(&bomb, MAX_INFLATED_BYTES).unwrap_err();
        assert!(matches!(err, LimitError::TooManyRows { limit: MAX_ROWS }), "{err}");
        // Under the limit the same shape passes the check.
        check(&rle_bomb(1000), MAX_INFLATED_BYTES).unwrap();
    }

    #[test]
    fn sleb_and_uleb_read_back() {
        for v in [0i64, 1, -1, 63, 64, -64, -65, 1 << 40, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            let mut n = v;
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
            assert_eq!(Reader::new(&out).sleb().unwrap(), v);
        }
        for v in [0u64, 127, 128, u64::MAX] {
            let mut out = Vec::new();
            write_uleb(&mut out, v);
            assert_eq!(Reader::new(&out).uleb().unwrap(), v);
        }
        assert!(Reader::new(&[0xff; 11]).uleb().is_err());
        assert!(Reader::new(&[0xff; 9]).uleb().is_err());
    }

    #[test]
    fn oversize_change_is_too_large() {
        let err = parse_change(vec![0; MAX_CHANGE_BYTES + 1]).unwrap_err();
        assert!(
            matches!(err, LimitError::TooLarge { size, limit } if size == MAX_CHANGE_BYTES + 1 && limit == MAX_CHANGE_BYTES),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bytes in [
            &b"hello world"[..],
            &[0x85, 0x6f, 0x4a],
            &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 9, 0],
            &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff],
        ] {
            assert!(matches!(check(bytes, MAX_INFLATED_BYTES), Err(LimitError::Malformed(_))), "{bytes:?}");
            assert!(parse_change(bytes.to_vec()).is_err());
            assert!(load_document(bytes).is_err());
        }
        // Empty input holds no chunks: nothing to bound.
        check(&[], MAX_INFLATED_BYTES).unwrap();
    }

    #[test]
    fn every_truncation_is_refused_without_panicking() {
        let (mut doc, mut change) = note(2000);
        let compressed = change.bytes().into_owned();
        let raw = change.raw_bytes().to_vec();
        let saved = doc.save();
        for bytes in [&compressed, &raw, &saved] {
            for end in 0..bytes.len() {
                let _ = check(&bytes[..end], MAX_INFLATED_BYTES);
                assert!(parse_change(bytes[..end].to_vec()).is_err());
            }
        }
    }

    fn samples() -> Vec<Vec<u8>> {
        let (mut doc, mut change) = note(600);
        vec![change.bytes().into_owned(), change.raw_bytes().to_vec(), doc.save(), doc.save_nocompress()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn mutations_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = samples().swap_remove(which);
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let _ = check(&bytes, MAX_INFLATED_BYTES);
            let _ = parse_change(bytes.clone());
            let _ = load_document(&bytes);
        }
    }
}
