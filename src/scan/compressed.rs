//! Whole-file compression wrappers (gzip, zlib, bzip2, xz), recognised by magic and inflated
//! with a hard output bound so that the dispatcher can scan what is inside.
//!
//! joblib, `torch.save` via `gzip.open`, and hand-made payloads all hide pickles this way. A
//! stream that inflates past the bound is a bomb (a finding, never an allocation); a corrupt
//! stream is a finding too, since the inner bytes cannot be fully checked. Formats we
//! recognise but cannot open (zstd, 7z, rar, lz4) are reported by name so that the dispatcher
//! rejects them rather than calling them unknown. This module does not look at the inflated
//! content.

use std::io::{self, BufRead, Read, Write};

use super::source::{ReadAt, Reader, Slice, Spill, Spilled};
use crate::finding::{Code, Finding};

/// A compression format recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zlib,
    Bzip2,
    Xz,
    /// The legacy `.lzma` ("LZMA alone") format, which joblib's `compress="lzma"` writes.
    Lzma,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
        }
    }
}

/// Recognises a compression wrapper from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Option<Compression> {
    match head {
        [0x1f, 0x8b, 0x08, ..] => Some(Compression::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, ..] => {
            Some(Compression::Bzip2)
        }
        [b'B', b'Z', b'h', b'1'..=b'9', 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, ..] => {
            Some(Compression::Bzip2)
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Compression::Xz),
        // LZMA alone: the usual properties byte (lc=3, lp=0, pb=2) and a dictionary size of at
        // least 64 KiB, as every encoder writes by default.
        [0x5d, 0x00, 0x00, _, _, _, _, _, _, _, _, _, _, ..] => Some(Compression::Lzma),
        // zlib: deflate with a window of at most 32 KiB, no preset dictionary, and the header
        // checksum that makes CMF:FLG a multiple of 31 (RFC 1950).
        [cmf, flg, ..]
            if cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && flg & 0x20 == 0
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 =>
        {
            Some(Compression::Zlib)
        }
        _ => None,
    }
}

/// Recognises a container or compression format that modelvet refuses because it cannot open
/// it, so its content cannot be checked.
pub fn sniff_unsupported(head: &[u8]) -> Option<&'static str> {
    match head {
        [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, ..] => Some("7z"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        [b'R', b'a', b'r', b'!', 0x1a, 0x07, ..] => Some("rar"),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some("lz4"),
        [b'M', b'S', b'C', b'F', 0, 0, 0, 0, ..] => Some("cab"),
        _ => None,
    }
}

/// The inflated bytes (in memory, or in a temporary file once large), or the finding that
/// says why they are not all there.
pub struct Inflated {
    pub bytes: Spilled,
    pub finding: Option<Finding>,
}

/// Inflates `compressed` up to `limit` output bytes. Never fails on content: a bomb or a
/// corrupt stream becomes a finding next to whatever was produced before it. The input is
/// streamed and the output spills to disk, so memory does not follow either.
pub fn inflate(kind: Compression, compressed: &dyn ReadAt, limit: u64) -> io::Result<Inflated> {
    let mut sink = BoundedSink {
        spill: Spill::default(),
        limit,
        exceeded: false,
    };
    let input = io::BufReader::new(Reader::new(compressed));
    let result = match kind {
        Compression::Gzip => copy(flate2::bufread::MultiGzDecoder::new(input), &mut sink),
        Compression::Zlib => copy(flate2::bufread::ZlibDecoder::new(input), &mut sink),
        Compression::Bzip2 => copy(bzip2::bufread::MultiBzDecoder::new(input), &mut sink),
        Compression::Xz => {
            let mut input = input;
            lzma_rs::xz_decompress(&mut input, &mut sink)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))
        }
        Compression::Lzma => {
            let mut input = input;
            lzma_rs::lzma_decompress(&mut input, &mut sink)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))
        }
    };
    let finding = if sink.exceeded {
        Some(Finding::new(
            Code::ArchiveLimitExceeded,
            format!(
                "{} stream inflates past the limit of {limit} bytes",
                kind.name()
            ),
        ))
    } else {
        result.err().map(|error| {
            Finding::new(
                Code::CompressionMalformed,
                format!("{} stream is corrupt or truncated: {error}", kind.name()),
            )
        })
    };
    Ok(Inflated {
        bytes: sink.spill.finish()?,
        finding,
    })
}

/// Inflates each member of a multi-member gzip file on its own (`gzip.open` concatenates them,
/// so a payload can start in any member), sharing one output `limit`. A single-member file
/// yields one entry, as [`inflate`] would.
pub fn inflate_gzip_members(compressed: &dyn ReadAt, limit: u64) -> io::Result<Vec<Inflated>> {
    let mut members = Vec::new();
    let size = compressed.size();
    let mut offset = 0u64;
    let mut budget = limit;
    while offset < size && members.len() < MAX_GZIP_MEMBERS {
        let rest = Slice::new(compressed, offset, size - offset)?;
        // Zero padding after the last member is tolerated by gzip(1) and Python alike.
        if !members.is_empty() && all_zero(&rest)? {
            break;
        }
        let mut sink = BoundedSink {
            spill: Spill::default(),
            limit: budget,
            exceeded: false,
        };
        let mut decoder = flate2::bufread::GzDecoder::new(io::BufReader::new(Reader::new(&rest)));
        let result = io::copy(&mut decoder, &mut sink);
        let input = decoder.into_inner();
        let consumed = input
            .get_ref()
            .position()
            .saturating_sub(input.buffer().len() as u64);
        let finding = if sink.exceeded {
            Some(Finding::new(
                Code::ArchiveLimitExceeded,
                format!("gzip stream inflates past the limit of {limit} bytes"),
            ))
        } else {
            result.err().map(|error| {
                Finding::new(
                    Code::CompressionMalformed,
                    format!("gzip stream is corrupt or truncated: {error}"),
                )
            })
        };
        budget = budget.saturating_sub(sink.spill.len());
        let stop = finding.is_some() || consumed == 0;
        members.push(Inflated {
            bytes: sink.spill.finish()?,
            finding,
        });
        if stop {
            break;
        }
        offset = offset.saturating_add(consumed);
    }
    Ok(members)
}

/// Whether every byte of `source` is zero, read a window at a time.
fn all_zero(source: &dyn ReadAt) -> io::Result<bool> {
    let mut reader = io::BufReader::new(Reader::new(source));
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(true);
        }
        if chunk.iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
        let len = chunk.len();
        reader.consume(len);
    }
}

/// More members than any real file has; past it the rest is left unread (and reported).
const MAX_GZIP_MEMBERS: usize = 1024;

fn copy(mut reader: impl Read, sink: &mut BoundedSink) -> io::Result<()> {
    io::copy(&mut reader, sink).map(|_| ())
}

/// A writer that refuses to grow past `limit`, so a bomb costs `limit` bytes of disk at most.
struct BoundedSink {
    spill: Spill,
    limit: u64,
    exceeded: bool,
}

impl Write for BoundedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.spill.len());
        if buf.len() as u64 > room {
            self.exceeded = true;
            return Err(io::Error::other("output limit exceeded"));
        }
        self.spill.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(inflated: &Inflated) -> Vec<u8> {
        inflated.bytes.read_vec(0, inflated.bytes.size()).unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn recognises_and_inflates_each_wrapper() {
        let plain = b"cos\nsystem\n(S'echo'\ntR.";
        let gz = gzip(plain);
        assert_eq!(sniff(&gz), Some(Compression::Gzip));
        let inflated = inflate(Compression::Gzip, &gz, 1 << 20).unwrap();
        assert_eq!(bytes(&inflated), plain);
        assert!(inflated.finding.is_none());

        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(plain).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(sniff(&zlib), Some(Compression::Zlib));
        assert_eq!(
            bytes(&inflate(Compression::Zlib, &zlib, 1 << 20).unwrap()),
            plain
        );

        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(plain).unwrap();
        let bz = bz.finish().unwrap();
        assert_eq!(sniff(&bz), Some(Compression::Bzip2));
        assert_eq!(
            bytes(&inflate(Compression::Bzip2, &bz, 1 << 20).unwrap()),
            plain
        );

        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
        assert_eq!(sniff(&xz), Some(Compression::Xz));
        assert_eq!(
            bytes(&inflate(Compression::Xz, &xz, 1 << 20).unwrap()),
            plain
        );

        let mut lzma = Vec::new();
        lzma_rs::lzma_compress(&mut &plain[..], &mut lzma).unwrap();
        assert_eq!(sniff(&lzma), Some(Compression::Lzma));
        assert_eq!(
            bytes(&inflate(Compression::Lzma, &lzma, 1 << 20).unwrap()),
            plain
        );
    }

    #[test]
    fn gzip_members_are_inflated_one_by_one() {
        let mut two = gzip(b"hello\n");
        two.extend(gzip(b"cos\nsystem\n."));
        let members = inflate_gzip_members(&two, 1 << 20).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(bytes(&members[1]), b"cos\nsystem\n.");
        assert!(members.iter().all(|m| m.finding.is_none()));
        two.extend([0; 8]);
        assert_eq!(inflate_gzip_members(&two, 1 << 20).unwrap().len(), 2);
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let bomb = gzip(&vec![0; 4 << 20]);
        let inflated = inflate(Compression::Gzip, &bomb, 1 << 20).unwrap();
        assert!(inflated.bytes.size() <= 1 << 20);
        assert_eq!(inflated.finding.unwrap().code, Code::ArchiveLimitExceeded);
    }

    #[test]
    fn corrupt_streams_are_findings() {
        let mut gz = gzip(b"hello world, hello world");
        gz.truncate(gz.len() - 6);
        let inflated = inflate(Compression::Gzip, &gz, 1 << 20).unwrap();
        assert_eq!(inflated.finding.unwrap().code, Code::CompressionMalformed);
    }

    #[test]
    fn text_is_not_mistaken_for_zlib() {
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b"{\"a\": 1}"), None);
        assert_eq!(sniff_unsupported(b"7z\xbc\xaf\x27\x1c rest"), Some("7z"));
    }
}
