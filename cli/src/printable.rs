//! Text for a terminal, safe from what documents carry: a title or body
//! written by another client can hold escape sequences that retitle, clear
//! or rewrite the screen, or a carriage return that hides what comes before
//! it. [`Printable`] writes every control character as U+FFFD, except line
//! feeds and tabs; a carriage return right before a line feed is dropped
//! (a body written on Windows reads as it should). C1 controls
//! (U+0080–U+009F), which some terminals obey too, are replaced the same way.

use std::io::{self, Write};

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// A writer that replaces control characters (see the module documentation).
pub struct Printable<W: Write> {
    inner: W,
    /// The last byte seen was a carriage return, not yet written.
    after_cr: bool,
    /// The last byte seen was 0xC2, which may start a C1 control.
    after_c2: bool,
}

impl<W: Write> Printable<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, after_cr: false, after_c2: false }
    }
}

/// Whether `b` may pass as it is, whatever comes around it.
fn plain(b: u8) -> bool {
    ((b >= 0x20) & (b != 0x7f) & (b != 0xc2)) | (b == b'\n') | (b == b'\t')
}

impl<W: Write> Write for Printable<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Branch-free over the whole buffer, so the compiler vectorises it:
        // most output has nothing to replace.
        let odd = buf.iter().fold(false, |odd, &b| odd | !plain(b));
        if !self.after_cr && !self.after_c2 && !odd {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 8);
        for &b in buf {
            if self.after_cr {
                self.after_cr = false;
                if b != b'\n' {
                    out.extend_from_slice(REPLACEMENT);
                }
            }
            if self.after_c2 {
                self.after_c2 = false;
                if (0x80..=0x9f).contains(&b) {
                    out.extend_from_slice(REPLACEMENT);
                    continue;
                }
                out.push(0xc2);
            }
            match b {
                b'\r' => self.after_cr = true,
                0xc2 => self.after_c2 = true,
                b if plain(b) => out.push(b),
                _ => out.extend_from_slice(REPLACEMENT),
            }
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for Printable<W> {
    fn drop(&mut self) {
        // A carriage return that ended the output.
        if self.after_cr {
            let _ = self.inner.write_all(REPLACEMENT);
        }
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(chunks: &[&[u8]]) -> String {
        let mut out = Vec::new();
        {
            let mut p = Printable::new(&mut out);
            for c in chunks {
                p.write_all(c).unwrap();
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escape_sequences_and_hiding_returns_are_shown_not_obeyed() {
        let title = "E \x1b]0;pwned\x07 \x1b[2J";
        assert_eq!(printed(&[title.as_bytes()]), "E \u{FFFD}]0;pwned\u{FFFD} \u{FFFD}[2J");
        assert_eq!(printed(&[b"safe\rspoof\n"]), "safe\u{FFFD}spoof\n");
        assert_eq!(printed(&["a\u{9b}2Jb".as_bytes()]), "a\u{FFFD}2Jb", "a C1 CSI");
    }

    #[test]
    fn text_and_windows_line_ends_read_as_they_should() {
        assert_eq!(printed(&["naïve café\tñ 👨‍👩‍👧\n".as_bytes()]), "naïve café\tñ 👨‍👩‍👧\n");
        // Split across writes, a CRLF and a two-byte character stay whole.
        assert_eq!(printed(&[b"one\r", b"\ntwo\xc2", b"\xa9\n"]), "one\ntwo\u{a9}\n");
        assert_eq!(printed(&[b"end\r"]), "end\u{FFFD}");
    }
}
