//! A streaming protobuf wire-format reader over a [`ReadAt`] source, shared by the ONNX and
//! TensorFlow scanners.
//!
//! Model files are protobufs whose bulk is tensor data (`raw_data`, `tensor_content`...), so
//! a message is walked field by field from the source through a window of at most
//! [`WINDOW`] bytes, and a length-delimited field is only a [`Span`] (offset and length) until
//! its owner decides to descend into it, read a bounded prefix of it, or skip it. Nothing here
//! allocates in proportion to the file: each nesting level holds one window, so memory is
//! bounded by `WINDOW` times the caller's depth limit. This module knows the wire format only,
//! never a schema.

use std::io;

use crate::scan::source::ReadAt;

/// The largest buffer one message level holds.
pub(crate) const WINDOW: usize = 64 * 1024;

/// Largest legal field number (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Why a walk stopped: bytes that are not well-formed protobuf, or a failing source.
#[derive(Debug)]
pub(crate) enum Stop {
    Invalid { at: u64, message: String },
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(error: io::Error) -> Self {
        Stop::Io(error)
    }
}

pub(crate) fn invalid(at: u64, message: impl Into<String>) -> Stop {
    Stop::Invalid {
        at,
        message: message.into(),
    }
}

/// Where a length-delimited payload lies in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub at: u64,
    pub len: u64,
}

/// A field's payload; fixed-width values are skipped, length-delimited ones located.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload {
    Varint(u64),
    Fixed64,
    Fixed32,
    Len(Span),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub number: u64,
    pub payload: Payload,
    /// Absolute offset of the field's tag.
    pub at: u64,
}

/// One message's fields, read in order from `[pos, end)` of the source.
pub(crate) struct Message<'s> {
    source: &'s dyn ReadAt,
    /// Bytes `[window_at, window_at + window.len())` of the source.
    window: Vec<u8>,
    window_at: u64,
    pos: u64,
    end: u64,
}

impl<'s> Message<'s> {
    /// The whole source as one message.
    pub fn root(source: &'s dyn ReadAt) -> Self {
        Message {
            source,
            window: Vec::new(),
            window_at: 0,
            pos: 0,
            end: source.size(),
        }
    }

    /// The message held by a length-delimited field of this one. Bytes already in this
    /// message's window are reused, so small nested messages cost no further read.
    pub fn child(&self, span: Span) -> Result<Message<'s>, Stop> {
        let end = span
            .at
            .checked_add(span.len)
            .filter(|end| *end <= self.end)
            .ok_or_else(|| invalid(span.at, "nested message runs past its parent"))?;
        let window = self.buffered(span).map(<[u8]>::to_vec).unwrap_or_default();
        Ok(Message {
            source: self.source,
            window,
            window_at: span.at,
            pos: span.at,
            end,
        })
    }

    /// Up to `cap` leading bytes of a length-delimited field (a name, a path, a string).
    pub fn prefix(&self, span: Span, cap: usize) -> Result<Vec<u8>, Stop> {
        let len = span.len.min(cap as u64);
        let head = Span { at: span.at, len };
        if let Some(bytes) = self.buffered(head) {
            return Ok(bytes.to_vec());
        }
        Ok(self.source.read_vec(span.at, len)?)
    }

    /// The source this message is read from (spans are absolute offsets in it).
    pub fn source(&self) -> &'s dyn ReadAt {
        self.source
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<Field>, Stop> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let at = self.pos;
        let tag = self.varint()?;
        if tag > u64::from(u32::MAX) {
            return Err(invalid(at, "field tag overflows 32 bits"));
        }
        let number = tag >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(invalid(at, format!("invalid field number {number}")));
        }
        let payload = match tag & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => {
                self.skip(8, "fixed64 field")?;
                Payload::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let start = self.pos;
                self.skip(len, "length-delimited field")?;
                Payload::Len(Span { at: start, len })
            }
            5 => {
                self.skip(4, "fixed32 field")?;
                Payload::Fixed32
            }
            3 | 4 => {
                return Err(invalid(
                    at,
                    format!("field {number} uses the deprecated group wire type"),
                ))
            }
            other => return Err(invalid(at, format!("field {number} has wire type {other}"))),
        };
        Ok(Some(Field {
            number,
            payload,
            at,
        }))
    }

    /// A base-128 varint of at most 10 bytes whose value fits in 64 bits.
    pub fn varint(&mut self) -> Result<u64, Stop> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..10u32 {
            let Some(byte) = self.byte()? else {
                return Err(invalid(start, "varint runs past the end of its message"));
            };
            if i == 9 && byte > 1 {
                return Err(invalid(start, "varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid(start, "varint longer than 10 bytes"))
    }

    /// Whether every byte of the message has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn skip(&mut self, len: u64, what: &str) -> Result<(), Stop> {
        match self.pos.checked_add(len) {
            Some(next) if next <= self.end => {
                self.pos = next;
                Ok(())
            }
            _ => Err(invalid(
                self.pos,
                format!("{what} runs past the end of its message"),
            )),
        }
    }

    fn byte(&mut self) -> Result<Option<u8>, Stop> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let offset = self
            .pos
            .checked_sub(self.window_at)
            .and_then(|o| usize::try_from(o).ok());
        let byte = match offset.and_then(|o| self.window.get(o)) {
            Some(&byte) => byte,
            None => {
                // Refill from here: the window never spans more than WINDOW bytes nor runs
                // past the message.
                let len = (self.end - self.pos).min(WINDOW as u64);
                self.window.clear();
                self.window.resize(len as usize, 0);
                self.source.read_exact_at(&mut self.window, self.pos)?;
                self.window_at = self.pos;
                match self.window.first() {
                    Some(&byte) => byte,
                    None => return Ok(None),
                }
            }
        };
        self.pos += 1;
        Ok(Some(byte))
    }

    /// The bytes of `span` if this message's window holds all of them.
    fn buffered(&self, span: Span) -> Option<&[u8]> {
        let start = usize::try_from(span.at.checked_sub(self.window_at)?).ok()?;
        let end = start.checked_add(usize::try_from(span.len).ok()?)?;
        self.window.get(start..end)
    }
}

/// Borrowed bytes as a source (`[u8]` itself is unsized, so it cannot be a `&dyn ReadAt`).
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl ReadAt for Bytes<'_> {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

/// Checks that a packed repeated varint field holds whole varints, streaming through it.
pub(crate) fn check_packed_varints(parent: &Message<'_>, span: Span) -> Result<(), Stop> {
    let mut packed = parent.child(span)?;
    while !packed.at_end() {
        packed.varint()?;
    }
    Ok(())
}

/// Calls `each` with consecutive chunks of a length-delimited field, each overlapping the
/// previous by `overlap` bytes so that a needle shorter than `overlap` is never cut in two.
pub(crate) fn scan_chunks(
    source: &dyn ReadAt,
    span: Span,
    overlap: usize,
    mut each: impl FnMut(&[u8]) -> bool,
) -> io::Result<bool> {
    let step = (WINDOW - overlap) as u64;
    let end = span.at.saturating_add(span.len);
    let mut at = span.at;
    loop {
        let len = (end - at).min(WINDOW as u64);
        let chunk = source.read_vec(at, len)?;
        if each(&chunk) {
            return Ok(true);
        }
        if at.saturating_add(len) >= end {
            return Ok(false);
        }
        at = at.saturating_add(step);
    }
}

/// A varint at the start of `bytes`, and the bytes after it (for sniffing a head).
pub(crate) fn head_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..).unwrap_or_default()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_fields_across_window_refills() {
        // A message of many small fields spanning several windows.
        let mut bytes = Vec::new();
        for i in 0..50_000u64 {
            bytes.extend([0x08, (i % 100) as u8]);
            bytes.extend([0x12, 0x03, b'a', b'b', b'c']);
        }
        let source = Bytes(&bytes);
        let mut message = Message::root(&source);
        let mut count = 0;
        while let Some(field) = message.next_field().unwrap() {
            count += 1;
            if let Payload::Len(span) = field.payload {
                assert_eq!(message.prefix(span, 10).unwrap(), b"abc");
                let mut child = message.child(span).unwrap();
                assert!(child.next_field().is_err());
            }
        }
        assert_eq!(count, 100_000);
    }

    #[test]
    fn rejects_lengths_past_the_end_without_allocating() {
        // A field claiming 2^62 bytes.
        let bytes = [0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
        let source = Bytes(&bytes);
        let mut message = Message::root(&source);
        assert!(matches!(message.next_field(), Err(Stop::Invalid { .. })));
    }

    #[test]
    fn chunks_overlap() {
        let mut bytes = vec![b'x'; WINDOW * 3];
        bytes.splice(WINDOW - 2..WINDOW - 2, b"needle".iter().copied());
        let span = Span {
            at: 0,
            len: bytes.len() as u64,
        };
        let found = scan_chunks(&Bytes(&bytes), span, 16, |chunk| {
            memchr::memmem::find(chunk, b"needle").is_some()
        })
        .unwrap();
        assert!(found);
    }
}
