//! How a [`Stream`] takes its arguments from the [`Window`](super::Window): where each
//! dialect's reader finds the next bytes and lines, and the pieces-wise judgements of
//! arguments too long to hold (see the parent module's docs for the readings chosen).

use super::{args, is_opcode, show, Dialect, Line, Note, Step, Stream};
use crate::finding::Code;

impl Stream<'_, '_> {
    /// Moves past the next `size` bytes the way the dialect's reader delivers them, checking
    /// that they exist; returns where they start (they are not read).
    pub(super) fn take(&mut self, at: usize, op: &str, size: usize) -> Step<usize> {
        let from = match self.dialect {
            Dialect::Linear => self.pos,
            Dialect::CFile => {
                if self
                    .pos
                    .checked_add(size)
                    .is_some_and(|end| end <= self.buf_end)
                {
                    self.pos
                } else {
                    // Past the buffered frame: fresh bytes from where the buffer ends.
                    self.buf_end
                }
            }
            Dialect::Python => match self.frame {
                Some(end) if self.pos == end && size != 0 => {
                    self.frame = None;
                    self.pos
                }
                Some(end) if self.pos.checked_add(size).is_none_or(|stop| stop > end) => {
                    return Err(self.malformed(
                        at,
                        format!("`{op}` runs past the end of its frame (pickle exhausted before end of frame)"),
                    ));
                }
                _ => self.pos,
            },
        };
        match from.checked_add(size).filter(|end| *end <= self.len) {
            Some(end) => {
                self.pos = end;
                self.buf_end = self.buf_end.max(end);
                Ok(from)
            }
            None => Err(self.truncated(at, op)),
        }
    }

    /// Moves past a length-prefixed argument, checking the length against the input first;
    /// returns where it starts and its size.
    pub(super) fn take_len(&mut self, at: usize, op: &str, size: u64) -> Step<(usize, usize)> {
        if size > isize::MAX as u64 {
            return Err(self.malformed(
                at,
                format!("`{op}` length {size} exceeds the largest possible object"),
            ));
        }
        match usize::try_from(size) {
            Ok(size) => Ok((self.take(at, op, size)?, size)),
            Err(_) => Err(self.truncated(at, op)),
        }
    }

    /// The byte at `at`, which a `take` has shown to exist.
    pub(super) fn byte(&mut self, at: usize) -> Step<u8> {
        match self.window.byte(at) {
            Ok(Some(byte)) => Ok(byte),
            Ok(None) => Err(self.truncated(at, "an opcode")),
            Err(error) => Err(self.io(error)),
        }
    }

    /// Copies out `[from, from + size)`, which a `take` has shown to exist; `size` is at
    /// most `max_arg` (or [`NAME_PREFIX`]). What exceeds a chunk is read straight from the
    /// source rather than through the window, so it is held once.
    pub(super) fn read(&mut self, from: usize, size: usize) -> Step<Vec<u8>> {
        let read = if size > self.budget.sizes().chunk {
            self.window
                .source()
                .read_vec(from as u64, size as u64)
                .map(Some)
        } else {
            self.window.copy(from, size)
        };
        match read {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(self.truncated(from, "an argument")),
            Err(error) => Err(self.io(error)),
        }
    }

    /// A little-endian unsigned integer of `size` (1..=8) bytes.
    pub(super) fn uint(&mut self, at: usize, op: &str, size: usize) -> Step<u64> {
        let from = self.take(at, op, size)?;
        let value = self.window.get(from, size).map(|bytes| {
            bytes.map(|bytes| {
                bytes
                    .iter()
                    .rev()
                    .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
            })
        });
        match value {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(self.truncated(at, op)),
            Err(error) => Err(self.io(error)),
        }
    }

    /// A 4-byte signed length (BINSTRING, LONG4), which CPython refuses when negative.
    pub(super) fn signed_len(&mut self, at: usize, op: &str) -> Step<u64> {
        let raw = self.uint(at, op, 4)?;
        let value = i32::from_le_bytes(u32::try_from(raw).unwrap_or(u32::MAX).to_le_bytes());
        match u64::try_from(value) {
            Ok(size) => Ok(size),
            Err(_) => Err(self.malformed(at, format!("`{op}` has a negative length"))),
        }
    }

    /// A `\n`-terminated argument, without its newline.
    pub(super) fn line(&mut self, at: usize, op: &str) -> Step<Line> {
        match self.find_line(at, op)? {
            Some((from, length)) => {
                self.pos = from.saturating_add(length).saturating_add(1);
                self.buf_end = self.buf_end.max(self.pos);
                if length > self.max_arg {
                    return Ok(Line::Long { from, length });
                }
                Ok(Line::Whole(self.read(from, length)?))
            }
            None => Err(self.truncated(at, op)),
        }
    }

    /// Where the next line starts and how long it is (without its newline), as the dialect's
    /// reader finds it; `None` when the input ends first.
    pub(super) fn find_line(&mut self, at: usize, op: &str) -> Step<Option<(usize, usize)>> {
        let found = match self.dialect {
            Dialect::Linear => self.search(self.pos, self.len)?,
            Dialect::CFile => match self.search(self.pos, self.buf_end)? {
                Some(line) => Some(line),
                // `readline()` on the file, which stands where the buffer ends.
                None => self.search(self.buf_end, self.len)?,
            },
            Dialect::Python => match self.frame {
                Some(end) if self.pos == end => {
                    self.frame = None;
                    self.search(self.pos, self.len)?
                }
                Some(end) => match self.search(self.pos, end)? {
                    Some(line) => Some(line),
                    None => {
                        return Err(self
                            .malformed(at, format!("`{op}` line runs past the end of its frame")))
                    }
                },
                None => self.search(self.pos, self.len)?,
            },
        };
        Ok(found)
    }

    /// The line starting at `from` whose newline lies before `to`: its start and length.
    pub(super) fn search(&mut self, from: usize, to: usize) -> Step<Option<(usize, usize)>> {
        match self.window.find(b'\n', from, to) {
            Ok(found) => Ok(found.map(|newline| (from, newline.saturating_sub(from)))),
            Err(error) => Err(self.io(error)),
        }
    }

    /// A numeric line (INT, LONG, FLOAT, GET, PUT): its bytes, or for a line too long to
    /// hold, the bytes that decide it, `None` (and the stream marked uncertain) when none do.
    /// Both of CPython's readers stop at a NUL (C reads no further, Python refuses one), so a
    /// NUL among the first `max_arg` bytes decides on what precedes it; before one, a byte no
    /// number contains decides against it.
    pub(super) fn number_line(&mut self, at: usize, op: &str) -> Step<Option<Vec<u8>>> {
        let (from, length) = match self.line(at, op)? {
            Line::Whole(line) => return Ok(Some(line)),
            Line::Long { from, length } => (from, length),
        };
        let mut head = self.read(from, self.max_arg.min(length))?;
        if let Some(nul) = head.iter().position(|byte| *byte == 0) {
            head.truncate(nul.saturating_add(1));
            return Ok(Some(head));
        }
        let numeric = |byte: &u8| {
            byte.is_ascii_alphanumeric()
                || matches!(
                    byte,
                    b'_' | b'.' | b'+' | b'-' | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'
                )
        };
        let Some(bad) = head.iter().position(|byte| !numeric(byte)) else {
            self.uncertain(at);
            return Ok(None);
        };
        // Any text holding that byte is refused; a little of it is enough to show.
        let shown = head.get(bad.saturating_sub(63)..=bad).unwrap_or_default();
        Ok(Some(shown.to_vec()))
    }

    /// Whether `[from, from + size)` is ASCII, read in pieces.
    pub(super) fn all_ascii(&mut self, from: usize, size: usize) -> Step<bool> {
        let mut ascii = true;
        let read = self.window.stream(from, size, |piece| {
            ascii &= piece.is_ascii();
            ascii
        });
        match read {
            Ok(()) => Ok(ascii),
            Err(error) => Err(self.io(error)),
        }
    }

    /// Whether the escapes of `[from, from + size)` decode, read in pieces.
    pub(super) fn escapes_decode(
        &mut self,
        escapes: args::Escapes,
        from: usize,
        size: usize,
    ) -> Step<bool> {
        let mut check = args::EscapeStream::new(escapes);
        match self.window.stream(from, size, |piece| check.feed(piece)) {
            Ok(()) => Ok(check.finish()),
            Err(error) => Err(self.io(error)),
        }
    }

    /// A STRING or UNICODE constant too long to decode: if it may start like an opcode (a
    /// leading escape could be anything), it is reported as not analysed for a nested pickle.
    pub(super) fn not_decoded(
        &mut self,
        at: usize,
        op: &'static str,
        from: usize,
        size: usize,
    ) -> Step<()> {
        if size == 0 {
            return Ok(());
        }
        let first = self.byte(from)?;
        if first == b'\\' || is_opcode(first) {
            self.not_decoded_note(at, op, size);
        }
        Ok(())
    }

    pub(super) fn not_decoded_note(&mut self, at: usize, op: &'static str, size: usize) {
        self.notes.push(Note::new(
            Code::PickleLimitExceeded,
            at as u64,
            format!(
                "`{op}` holds {size} bytes of text, too long to decode and analyse as a nested \
                 pickle"
            ),
        ));
    }

    /// Notes the first argument taken as valid without being judged.
    pub(super) fn uncertain(&mut self, at: usize) {
        self.uncertain.get_or_insert(at);
    }

    pub(super) fn memo_key(&mut self, at: usize, op: &str, line: &[u8]) -> Step<args::Key> {
        match args::memo_key(line) {
            Some(key) => Ok(key),
            None => Err(self.malformed(
                at,
                format!(
                    "`{op}` memo key `{}` is not a non-negative integer",
                    show(line)
                ),
            )),
        }
    }
}
