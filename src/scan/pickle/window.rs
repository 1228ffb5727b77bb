//! The bounded buffer the pickle emulator reads its input through, so that a 1 GB pickle
//! costs the same memory as a small one.
//!
//! The emulator reads mostly forward, one opcode at a time, with jumps the frame dialects
//! make (back to a frame's start, forward to where a file reader's buffer ends). A [`Window`]
//! keeps one run of bytes of the source in memory and refills it, by positioned reads, from
//! wherever a read falls outside it. Arguments up to [`Sizes::max_arg`] are handed out whole
//! (the buffer grows to hold one, and shrinks back at the next refill); longer ones are never
//! read whole: their callers skip them by offset or stream through them in chunks. This
//! module owns buffering only and must not interpret bytes.

use std::io;

use memchr::memchr;

use crate::scan::source::ReadAt;

/// How much the emulator reads at a time and materialises at most. Tests shrink both to
/// push every input across buffer boundaries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    /// Bytes read per refill.
    pub(super) chunk: usize,
    /// The longest argument or line read whole; longer ones take the fail-closed readings
    /// documented in `machine`.
    pub(super) max_arg: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            chunk: 1 << 20,
            max_arg: MAX_ARG,
        }
    }
}

/// The longest argument materialised. With nesting capped at 4 levels below the top, each
/// holding at most one decoded argument while the next runs, memory stays near 5 × this plus
/// one chunk per level, under the 64 MB a scan may use.
pub(super) const MAX_ARG: usize = 8 << 20;

/// Bytes of the input that `&[u8]` callers hand in, as a source.
pub(super) struct Memory<'a>(pub(super) &'a [u8]);

impl ReadAt for Memory<'_> {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

/// One run of a source's bytes, refilled on demand.
pub(super) struct Window<'s> {
    source: &'s dyn ReadAt,
    len: usize,
    chunk: usize,
    buf: Vec<u8>,
    /// Source offset of `buf[0]`.
    start: usize,
}

impl<'s> Window<'s> {
    pub(super) fn new(source: &'s dyn ReadAt, sizes: Sizes) -> io::Result<Self> {
        let len = usize::try_from(source.size()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "pickle larger than memory can address",
            )
        })?;
        Ok(Window {
            source,
            len,
            chunk: sizes.chunk.max(1),
            buf: Vec::new(),
            start: 0,
        })
    }

    pub(super) fn source(&self) -> &'s dyn ReadAt {
        self.source
    }

    /// The source's length.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The byte at `at`, `None` past the end.
    pub(super) fn byte(&mut self, at: usize) -> io::Result<Option<u8>> {
        if let Some(byte) = at
            .checked_sub(self.start)
            .and_then(|index| self.buf.get(index))
        {
            return Ok(Some(*byte));
        }
        if at >= self.len {
            return Ok(None);
        }
        self.fill(at, 1)?;
        Ok(self.buf.first().copied())
    }

    /// The bytes `[from, from + size)`, `None` when they run past the end. `size` must be
    /// bounded by the caller (it is the buffer's size for this one read).
    pub(super) fn get(&mut self, from: usize, size: usize) -> io::Result<Option<&[u8]>> {
        let Some(end) = from.checked_add(size).filter(|end| *end <= self.len) else {
            return Ok(None);
        };
        let buffered_end = self.start.saturating_add(self.buf.len());
        if from < self.start || end > buffered_end {
            self.fill(from, size)?;
        }
        let offset = from.saturating_sub(self.start);
        Ok(self.buf.get(offset..offset.saturating_add(size)))
    }

    /// Copies `[from, from + size)` out, `None` when it runs past the end.
    pub(super) fn copy(&mut self, from: usize, size: usize) -> io::Result<Option<Vec<u8>>> {
        Ok(self.get(from, size)?.map(<[u8]>::to_vec))
    }

    /// The first `needle` in `[from, to)`, read chunk by chunk (`to` is clamped to the end).
    pub(super) fn find(&mut self, needle: u8, from: usize, to: usize) -> io::Result<Option<usize>> {
        let to = to.min(self.len);
        let mut at = from;
        while at < to {
            let buffered_end = self.start.saturating_add(self.buf.len());
            if at < self.start || at >= buffered_end {
                self.fill(at, 1)?;
            }
            let stop = to.min(self.start.saturating_add(self.buf.len()));
            let Some(bytes) = self
                .buf
                .get(at.saturating_sub(self.start)..stop.saturating_sub(self.start))
            else {
                break;
            };
            if bytes.is_empty() {
                break;
            }
            if let Some(index) = memchr(needle, bytes) {
                return Ok(Some(at.saturating_add(index)));
            }
            at = stop;
        }
        Ok(None)
    }

    /// Calls `visit` on `[from, from + size)` chunk by chunk, in order; the range must lie in
    /// the source. Reading stops early when `visit` returns false.
    pub(super) fn stream(
        &mut self,
        from: usize,
        size: usize,
        mut visit: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<()> {
        let end = from.saturating_add(size).min(self.len);
        let mut at = from;
        while at < end {
            let step = (end - at).min(self.chunk);
            let Some(bytes) = self.get(at, step)? else {
                break;
            };
            if !visit(bytes) {
                break;
            }
            at = at.saturating_add(step);
        }
        Ok(())
    }

    /// Gives back a buffer grown past one chunk, before nested work that has its own.
    pub(super) fn release(&mut self) {
        if self.buf.capacity() > self.chunk {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// Reads at least `size` bytes (and up to a chunk) from `from`, which lies in the source.
    fn fill(&mut self, from: usize, size: usize) -> io::Result<()> {
        let want = size.max(self.chunk).min(self.len.saturating_sub(from));
        if self.buf.capacity() > self.chunk && want <= self.chunk {
            self.buf = Vec::new();
        }
        self.buf.clear();
        self.buf.resize(want, 0);
        self.start = from;
        if let Err(error) = self.source.read_exact_at(&mut self.buf, from as u64) {
            self.buf.clear();
            return Err(error);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(chunk: usize) -> Sizes {
        Sizes { chunk, max_arg: 16 }
    }

    #[test]
    fn reads_across_refills() {
        let bytes: Vec<u8> = (0..100u8).collect();
        let source = Memory(&bytes);
        let mut window = Window::new(&source, sizes(7)).unwrap();
        for at in (0..100).chain((0..100).rev()) {
            assert_eq!(window.byte(at).unwrap(), Some(at as u8));
        }
        assert_eq!(window.byte(100).unwrap(), None);
        assert_eq!(window.get(5, 20).unwrap().unwrap(), &bytes[5..25]);
        assert_eq!(window.get(90, 10).unwrap().unwrap(), &bytes[90..]);
        assert_eq!(window.get(100, 0).unwrap().unwrap(), b"");
        assert!(window.get(95, 6).unwrap().is_none());
        assert!(window.get(usize::MAX, 2).unwrap().is_none());
    }

    #[test]
    fn finds_across_refills() {
        let mut bytes = vec![b'a'; 50];
        bytes[33] = b'\n';
        let source = Memory(&bytes);
        let mut window = Window::new(&source, sizes(4)).unwrap();
        assert_eq!(window.find(b'\n', 0, 50).unwrap(), Some(33));
        assert_eq!(window.find(b'\n', 34, 50).unwrap(), None);
        assert_eq!(window.find(b'\n', 0, 33).unwrap(), None);
        assert_eq!(window.find(b'\n', 0, 1000).unwrap(), Some(33));
        let mut seen = Vec::new();
        window
            .stream(3, 40, |chunk| {
                seen.extend_from_slice(chunk);
                true
            })
            .unwrap();
        assert_eq!(seen, &bytes[3..43]);
    }
}
