//! Member data: decompresses one member (stored, deflate, bzip2, LZMA) within a caller's
//! bound and checks what it produced against the headers (size, CRC-32, trailing compressed
//! bytes). Output goes through a [`Spill`], so a large member costs temporary disk, not
//! memory. This module reads only the member's own data range; listing and structural checks
//! belong to the parent module, interpreting the content to the format scanners.

use std::io::{self, BufRead, Read, Write};

use super::{
    le16, malformed, read_at, Member, Method, ZipError, FLAG_LZMA_EOS, INPUT_CHUNK, OUTPUT_CHUNK,
};
use crate::finding::{quote, Code, Finding};
use crate::scan::source::{ReadAt, Spill, Spilled};

/// The largest LZMA dictionary buffer a member may make the decoder hold; a stream that needs
/// more fails as malformed rather than growing memory with the file.
const MAX_LZMA_DICTIONARY: usize = 32 << 20;

/// The decompressed bytes of one member and what went wrong producing them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberBytes<B = Vec<u8>> {
    pub bytes: B,
    /// CRC mismatch, decompression failure, size disagreement, limit.
    pub findings: Vec<Finding>,
    /// `bytes` hold the member's whole content as its compressed stream encodes it (the
    /// findings may still say the content disagrees with the headers).
    pub complete: bool,
}

/// Decompresses a whole member, bounded by `max_output`, and checks its size and CRC-32.
/// The bytes are held in memory: for small members (configs); scanning uses
/// [`read_member_spilled`].
pub fn read_member(
    source: &dyn ReadAt,
    member: &Member,
    max_output: u64,
) -> Result<MemberBytes, ZipError> {
    in_memory(extract(source, member, max_output, Extent::Whole)?)
}

/// As [`read_member`], with bytes past a few MiB kept in an anonymous temporary file.
pub fn read_member_spilled(
    source: &dyn ReadAt,
    member: &Member,
    max_output: u64,
) -> Result<MemberBytes<Spilled>, ZipError> {
    extract(source, member, max_output, Extent::Whole)
}

/// Decompresses the first `max_output` bytes of a member (no CRC check), reading no more of
/// the compressed data than that needs.
pub fn read_member_prefix(
    source: &dyn ReadAt,
    member: &Member,
    max_output: u64,
) -> Result<MemberBytes, ZipError> {
    in_memory(extract(source, member, max_output, Extent::Prefix)?)
}

fn in_memory(read: MemberBytes<Spilled>) -> Result<MemberBytes, ZipError> {
    let bytes = match read.bytes {
        Spilled::Memory(bytes) => bytes,
        spilled => {
            let len = spilled.size();
            spilled.read_vec(0, len).map_err(|source| ZipError::Read {
                offset: 0,
                len,
                source,
            })?
        }
    };
    Ok(MemberBytes {
        bytes,
        findings: read.findings,
        complete: read.complete,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Extent {
    Whole,
    Prefix,
}

fn extract(
    source: &dyn ReadAt,
    member: &Member,
    max_output: u64,
    extent: Extent,
) -> Result<MemberBytes<Spilled>, ZipError> {
    let mut findings = Vec::new();
    let name = member.name.as_str();
    let shown_name = quote(name);
    let nothing = |findings| {
        Ok(MemberBytes {
            bytes: Spilled::Memory(Vec::new()),
            findings,
            complete: false,
        })
    };
    let Some(data_end) = member
        .data_offset
        .checked_add(member.compressed_size)
        .filter(|end| *end <= source.size())
    else {
        findings.push(
            malformed(format!(
                "data of `{shown_name}` runs past the end of the file"
            ))
            .at(name),
        );
        return nothing(findings);
    };
    let input = Input::new(source, member.data_offset, data_end);
    let declared = member.uncompressed_size;
    // Whole reads stop at the declared size (plus one byte to notice an overrun); prefix reads
    // at the caller's bound (plus one byte to notice whether the stream went on).
    let cap = match extent {
        Extent::Whole => declared.min(max_output),
        Extent::Prefix => max_output,
    };
    let mut out = Collector::new(cap);
    let outcome = match member.method {
        Method::Stored => stored(input, &mut out)?,
        Method::Deflated => streamed(
            input,
            Inflater::Deflate(flate2::Decompress::new(false)),
            &mut out,
        )?,
        Method::Bzip2 => streamed(
            input,
            Inflater::Bzip2(bzip2::Decompress::new(false)),
            &mut out,
        )?,
        Method::Lzma => lzma(input, member, declared.min(max_output), &mut out)?,
        Method::Other(code) => {
            findings.push(
                Finding::new(
                    Code::ArchiveUnsupported,
                    format!("member `{shown_name}` uses compression method {code}"),
                )
                .at(name),
            );
            return nothing(findings);
        }
    };
    let Outcome {
        end,
        trailing_input,
    } = outcome;
    let produced = out.produced;
    let mut complete = false;
    match end {
        End::Stream if produced <= cap => complete = true,
        End::Stream | End::Limit => {
            if extent == Extent::Whole {
                findings.push(
                    Finding::new(
                        Code::ArchiveLimitExceeded,
                        if declared <= max_output {
                            format!(
                                "member `{shown_name}` decompresses past its declared size of {declared} bytes"
                            )
                        } else {
                            format!(
                                "member `{shown_name}` declares {declared} bytes, more than the {max_output}-byte limit"
                            )
                        },
                    )
                    .at(name),
                );
            }
        }
        End::Failed(why) => {
            findings.push(
                Finding::new(
                    Code::CompressionMalformed,
                    format!("member `{shown_name}` cannot be decompressed: {why}"),
                )
                .at(name),
            );
        }
    }
    if complete && trailing_input > 0 {
        findings.push(
            Finding::new(
                Code::ArchiveExtraData,
                format!(
                    "{trailing_input} bytes of compressed data of `{shown_name}` follow the end of its stream"
                ),
            )
            .at(name),
        );
    }
    if complete && extent == Extent::Whole {
        if produced != declared {
            findings.push(
                Finding::new(
                    Code::ArchiveHeaderMismatch,
                    format!("member `{shown_name}` holds {produced} bytes but declares {declared}"),
                )
                .at(name),
            );
        }
        // Complete means nothing was cut off, so the CRC covers every byte produced.
        let crc = out.crc.sum();
        if crc != member.crc32 {
            findings.push(
                Finding::new(
                    Code::ArchiveCrcMismatch,
                    format!(
                        "member `{shown_name}` has crc-32 {crc:#010x} but declares {:#010x}",
                        member.crc32
                    ),
                )
                .at(name),
            );
        }
    }
    let bytes = out.finish().map_err(|source| ZipError::Read {
        offset: member.data_offset,
        len: produced,
        source,
    })?;
    Ok(MemberBytes {
        bytes,
        findings,
        complete,
    })
}

/// Where decompressed bytes go: the first `cap` are kept (spilling to disk past a few MiB)
/// and checksummed; everything produced is counted, so an overrun is noticed.
struct Collector {
    kept: Spill,
    crc: flate2::Crc,
    cap: u64,
    produced: u64,
    error: Option<io::Error>,
}

impl Collector {
    fn new(cap: u64) -> Self {
        Collector {
            kept: Spill::default(),
            crc: flate2::Crc::new(),
            cap,
            produced: 0,
            error: None,
        }
    }

    fn take(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.produced);
        let keep = data
            .get(..usize::try_from(room).unwrap_or(usize::MAX).min(data.len()))
            .unwrap_or_default();
        if !keep.is_empty() && self.error.is_none() {
            self.crc.update(keep);
            if let Err(error) = self.kept.write_all(keep) {
                self.error = Some(error);
            }
        }
        self.produced = self.produced.saturating_add(data.len() as u64);
    }

    /// Output has gone past the cap (one byte is enough to know).
    fn over(&self) -> bool {
        self.produced > self.cap
    }

    fn finish(self) -> io::Result<Spilled> {
        match self.error {
            Some(error) => Err(error),
            None => self.kept.finish(),
        }
    }
}

enum End {
    /// The stream (or stored data) ended by itself.
    Stream,
    /// Output went past the cap and reading stopped.
    Limit,
    Failed(String),
}

struct Outcome {
    end: End,
    /// Compressed bytes left unread after the stream ended.
    trailing_input: u64,
}

/// The compressed bytes of a member, read in chunks as the decoder asks for them.
struct Input<'a> {
    source: &'a dyn ReadAt,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    consumed: usize,
    error: Option<ZipError>,
}

impl<'a> Input<'a> {
    fn new(source: &'a dyn ReadAt, pos: u64, end: u64) -> Self {
        Input {
            source,
            pos,
            end,
            buf: Vec::new(),
            consumed: 0,
            error: None,
        }
    }

    /// Bytes not yet handed to the decoder.
    fn remaining(&self) -> u64 {
        (self.end - self.pos) + (self.buf.len().saturating_sub(self.consumed)) as u64
    }

    fn into_error(self) -> Result<(), ZipError> {
        self.error.map_or(Ok(()), Err)
    }
}

impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out.iter_mut()
            .zip(available)
            .for_each(|(dst, src)| *dst = *src);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed >= self.buf.len() && self.pos < self.end {
            let len = (self.end - self.pos).min(INPUT_CHUNK);
            match read_at(self.source, self.pos, len) {
                Ok(bytes) => {
                    self.buf = bytes;
                    self.consumed = 0;
                    self.pos += len;
                }
                Err(error) => {
                    self.error = Some(error);
                    return Err(io::Error::other("source read failed"));
                }
            }
        }
        Ok(self.buf.get(self.consumed..).unwrap_or_default())
    }

    fn consume(&mut self, amount: usize) {
        self.consumed = self.consumed.saturating_add(amount).min(self.buf.len());
    }
}

fn stored(mut input: Input<'_>, out: &mut Collector) -> Result<Outcome, ZipError> {
    // Stored members can be huge: read what is asked for and decide completeness by size.
    let available = input.end - input.pos;
    let mut wanted = available.min(out.cap);
    while wanted > 0 {
        let chunk = match input.fill_buf() {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => break,
        };
        let n = chunk
            .len()
            .min(usize::try_from(wanted).unwrap_or(usize::MAX));
        out.take(chunk.get(..n).unwrap_or_default());
        input.consume(n);
        wanted -= n as u64;
    }
    input.into_error()?;
    Ok(Outcome {
        end: if available <= out.cap {
            End::Stream
        } else {
            End::Limit
        },
        trailing_input: 0,
    })
}

enum Inflater {
    Deflate(flate2::Decompress),
    Bzip2(bzip2::Decompress),
}

impl Inflater {
    /// One decoder step; `Ok(true)` once the stream has ended.
    fn step(&mut self, input: &[u8], output: &mut Vec<u8>) -> Result<bool, String> {
        match self {
            Inflater::Deflate(d) => d
                .decompress_vec(input, output, flate2::FlushDecompress::None)
                .map(|s| s == flate2::Status::StreamEnd)
                .map_err(|e| e.to_string()),
            Inflater::Bzip2(d) => d
                .decompress_vec(input, output)
                .map(|s| s == bzip2::Status::StreamEnd)
                .map_err(|e| e.to_string()),
        }
    }

    fn total_in(&self) -> u64 {
        match self {
            Inflater::Deflate(d) => d.total_in(),
            Inflater::Bzip2(d) => d.total_in(),
        }
    }
}

fn streamed(
    mut input: Input<'_>,
    mut inflater: Inflater,
    out: &mut Collector,
) -> Result<Outcome, ZipError> {
    let mut chunk_out: Vec<u8> = Vec::with_capacity(OUTPUT_CHUNK);
    let end = loop {
        if out.over() {
            break End::Limit;
        }
        chunk_out.clear();
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(_) => break End::Failed("read failed".to_owned()),
        };
        let input_empty = chunk.is_empty();
        let before_in = inflater.total_in();
        let stepped = inflater.step(chunk, &mut chunk_out);
        let consumed = usize::try_from(inflater.total_in() - before_in).unwrap_or(usize::MAX);
        input.consume(consumed);
        out.take(&chunk_out);
        match stepped {
            Ok(true) => break End::Stream,
            Ok(false) => {}
            Err(why) => break End::Failed(why),
        }
        if consumed == 0 && chunk_out.is_empty() {
            break End::Failed(if input_empty {
                "stream is truncated".to_owned()
            } else {
                "decoder made no progress".to_owned()
            });
        }
    };
    let trailing_input = input.remaining();
    input.into_error()?;
    Ok(Outcome {
        end,
        trailing_input,
    })
}

/// A `Write` into a [`Collector`] that fails a little past its cap, so that a decoder which
/// cannot be stopped mid-stream stops soon after the bound.
struct Bounded<'a> {
    out: &'a mut Collector,
    limit: u64,
}

impl Write for Bounded<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.out.produced.saturating_add(data.len() as u64) > self.limit {
            return Err(io::Error::other("output limit reached"));
        }
        self.out.take(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Zip LZMA (method 14): 2-byte version, 2-byte properties length, the properties, then a raw
/// LZMA stream whose size the central directory gives.
fn lzma(
    mut input: Input<'_>,
    member: &Member,
    cap: u64,
    out: &mut Collector,
) -> Result<Outcome, ZipError> {
    let failed = |why: &str| Outcome {
        end: End::Failed(why.to_owned()),
        trailing_input: 0,
    };
    let mut header = [0u8; 4];
    if input.read_exact(&mut header).is_err() {
        input.into_error()?;
        return Ok(failed("lzma header is truncated"));
    }
    if le16(&header, 2) != Some(5) {
        return Ok(failed("lzma properties are not 5 bytes long"));
    }
    let mut props = [0u8; 5];
    if input.read_exact(&mut props).is_err() {
        input.into_error()?;
        return Ok(failed("lzma properties are truncated"));
    }
    let limit = usize::try_from(cap).unwrap_or(usize::MAX);
    let options = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(Some(cap)),
        // The decoder's dictionary is its own memory, bounded here; the output is not held.
        memlimit: Some(limit.min(MAX_LZMA_DICTIONARY).saturating_add(1 << 16)),
        allow_incomplete: false,
    };
    let mut output = Bounded {
        out,
        limit: cap.saturating_add(1 << 10),
    };
    let mut stream = io::Cursor::new(props).chain(&mut input);
    let result = lzma_rs::lzma_decompress_with_options(&mut stream, &mut output, &options);
    let trailing = input.remaining();
    input.into_error()?;
    let end = match result {
        Ok(()) if cap < member.uncompressed_size => End::Limit,
        Ok(()) => End::Stream,
        // The decoder cannot stop mid-match, so a bounded read of a larger member may fail
        // near the bound; that is the limit, not corruption.
        Err(_) if cap < member.uncompressed_size => End::Limit,
        Err(error) => End::Failed(error.to_string()),
    };
    // An end-of-stream marker (flag bit 1) and the range coder's flush leave a few bytes.
    let slack = if member.flags & FLAG_LZMA_EOS != 0 {
        16
    } else {
        8
    };
    Ok(Outcome {
        end,
        trailing_input: if trailing > slack { trailing } else { 0 },
    })
}
