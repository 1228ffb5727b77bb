//! Random-access byte sources: a file on disk or bytes in memory, read by offset.
//!
//! Scanners read only the parts of a file they need (a safetensors header, a zip's central
//! directory, the pickle members of a checkpoint), which is what keeps a 512 MiB checkpoint
//! scan in milliseconds. This module owns positioned reads and must not interpret content.

use std::fs::File;
use std::io;

/// Bytes that can be read at any offset without moving a shared cursor.
pub trait ReadAt {
    /// Total length in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof` if the source is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Reads `len` bytes from `offset` into a new vector. `len` must already be bounded by
    /// the caller (it is checked against the source size here, never trusted for allocation).
    fn read_vec(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= self.size())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        let len = usize::try_from(end - offset)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "read too large"))?;
        let mut buf = vec![0; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past end");
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let bytes = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

/// An open file whose length was taken once, when it was opened.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, offset)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "read past end",
                    ))
                }
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// A window `[offset, offset + len)` of another source, such as a stored zip member.
pub struct Slice<'a> {
    inner: &'a dyn ReadAt,
    offset: u64,
    len: u64,
}

impl<'a> Slice<'a> {
    /// Fails if the window does not lie inside `inner`.
    pub fn new(inner: &'a dyn ReadAt, offset: u64, len: u64) -> io::Result<Self> {
        match offset.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(Slice { inner, offset, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "window past end of source",
            )),
        }
    }
}

impl ReadAt for Slice<'_> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past end");
        let end = offset.checked_add(buf.len() as u64).ok_or_else(eof)?;
        if end > self.len {
            return Err(eof());
        }
        self.inner.read_exact_at(buf, self.offset + offset)
    }
}

/// Reads a source from start to end, for parsers that stream (JSON, UTF-8 validation), so
/// that memory does not grow with the file.
pub struct Reader<'a> {
    source: &'a dyn ReadAt,
    position: u64,
}

impl<'a> Reader<'a> {
    pub fn new(source: &'a dyn ReadAt) -> Self {
        Reader {
            source,
            position: 0,
        }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.source.size().saturating_sub(self.position);
        let len =
            usize::try_from(remaining).map_or(buf.len(), |remaining| remaining.min(buf.len()));
        let Some(buf) = buf.get_mut(..len) else {
            return Ok(0);
        };
        self.source.read_exact_at(buf, self.position)?;
        self.position += len as u64;
        Ok(len)
    }
}

/// Bytes written in order, then read back by offset: kept in memory up to [`SPILL_AT`], then
/// moved to an anonymous temporary file (deleted when dropped), so inflating a large stream
/// costs disk space, not memory.
#[derive(Default)]
pub struct Spill {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
}

/// Bytes kept in memory before a [`Spill`] moves to disk.
pub const SPILL_AT: usize = 8 << 20;

impl Spill {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written, to be read by offset.
    pub fn finish(self) -> io::Result<Spilled> {
        match self.file {
            None => Ok(Spilled::Memory(self.memory)),
            Some(mut file) => {
                io::Write::flush(&mut file)?;
                Ok(Spilled::File(FileSource::new(file)?))
            }
        }
    }
}

impl io::Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len().saturating_add(buf.len()) > SPILL_AT {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => self.memory.extend_from_slice(buf),
        }
        self.len = self.len.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// What a [`Spill`] holds once written.
pub enum Spilled {
    Memory(Vec<u8>),
    File(FileSource),
}

impl ReadAt for Spilled {
    fn size(&self) -> u64 {
        match self {
            Spilled::Memory(bytes) => bytes.size(),
            Spilled::File(file) => file.size(),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Spilled::Memory(bytes) => bytes.read_exact_at(buf, offset),
            Spilled::File(file) => file.read_exact_at(buf, offset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_stream_a_source_to_its_end() {
        use std::io::Read;
        let bytes = b"0123456789".to_vec();
        let slice = Slice::new(&bytes, 3, 4).unwrap();
        let mut out = String::new();
        Reader::new(&slice).read_to_string(&mut out).unwrap();
        assert_eq!(out, "3456");
    }

    #[test]
    fn a_spill_moves_to_disk_past_its_threshold_and_reads_back() {
        use std::io::Write;
        let mut spill = Spill::default();
        let block: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        for _ in 0..(SPILL_AT / block.len() + 2) {
            spill.write_all(&block).unwrap();
        }
        let total = spill.len();
        let spilled = spill.finish().unwrap();
        assert!(matches!(spilled, Spilled::File(_)));
        assert_eq!(spilled.size(), total);
        assert_eq!(spilled.read_vec(total - 3, 3).unwrap(), [253, 254, 255]);
        let mut small = Spill::default();
        small.write_all(b"abc").unwrap();
        assert!(matches!(small.finish().unwrap(), Spilled::Memory(_)));
    }

    #[test]
    fn slices_refuse_reads_past_their_window() {
        let bytes = b"0123456789".to_vec();
        let slice = Slice::new(&bytes, 2, 5).unwrap();
        assert_eq!(slice.read_vec(0, 5).unwrap(), b"23456");
        assert!(slice.read_vec(1, 5).is_err());
        assert!(Slice::new(&bytes, 8, 5).is_err());
        assert!(slice.read_vec(u64::MAX, 2).is_err());
    }
}
