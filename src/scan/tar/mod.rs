//! Tar container walker: lists the members of a tar archive (legacy torch checkpoints are tar
//! files written by Python's `tarfile`) from its 512-byte headers, never reading member data.
//!
//! The walk follows Python's `tarfile`, which is what loads these checkpoints: octal or GNU
//! base-256 numbers, GNU long names (`L`, `K`), pax extended headers (`x`, `g`), the ustar
//! prefix, and the end of the archive at the first zero block. Anything it cannot read fully
//! (a bad checksum, a truncated header or member) is an `archive-malformed` finding and ends
//! the walk, so the caller rejects the file. This module must not interpret member content
//! nor decide verdicts.

use std::collections::HashMap;
use std::io;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;
use crate::scan::zip::{path_problem, Sink};

/// Bounds on what [`list`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarLimits {
    /// Members listed before `archive-limit-exceeded` stops the walk.
    pub max_members: usize,
    /// Largest pax or GNU long-name data block read, in bytes.
    pub max_header_bytes: u64,
}

impl Default for TarLimits {
    fn default() -> Self {
        TarLimits {
            max_members: 100_000,
            max_header_bytes: 1 << 20,
        }
    }
}

/// What a member is, from its type flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TarKind {
    /// Regular file (`0`, NUL, contiguous `7`).
    File,
    Directory,
    Symlink,
    Hardlink,
    /// Any other type flag (devices, FIFOs, GNU sparse and volume headers...).
    Other(u8),
}

/// One member, with its name after long-name and pax overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Lossy UTF-8 of the effective name (pax `path`, else GNU long name, else
    /// `prefix/name`); directories lose their trailing slash as in `tarfile`.
    pub name: String,
    pub kind: TarKind,
    /// Data size (pax `size` when present); zero for kinds that carry no data.
    pub size: u64,
    /// Absolute offset of the member data in the source.
    pub data_offset: u64,
    /// Absolute offset of the member's own header block.
    pub header_offset: u64,
    /// Link target of symlinks and hardlinks.
    pub link_target: Option<String>,
}

/// Everything [`list`] found. Every listed member's data lies inside the source; a member cut
/// off by the end of the file is named in an `archive-malformed` finding instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TarListing {
    pub members: Vec<TarMember>,
    pub findings: Vec<Finding>,
}

/// Could not read the source; structural problems are findings, never this.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum TarError {
    #[error("cannot read {len} bytes of the tar source at offset {offset}")]
    Read {
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
}

/// Cheap sniff of the first header: `ustar` magic (POSIX or GNU) or plausible v7 fields, and a
/// valid checksum either way.
pub fn looks_like_tar(source: &dyn ReadAt) -> bool {
    let mut block = [0u8; BLOCK as usize];
    if source.read_exact_at(&mut block, 0).is_err() || !checksum_ok(&block) {
        return false;
    }
    let magic = block.get(257..265).unwrap_or_default();
    if magic.starts_with(b"ustar\0") || magic == b"ustar  \0" {
        return true;
    }
    // A v7 header: a name, numeric fields, a v7 type flag, and nothing past the link name.
    let numeric_ok = [(100, 108), (108, 116), (116, 124), (124, 136), (136, 148)]
        .into_iter()
        .all(|(from, to)| block.get(from..to).and_then(number).is_some());
    let type_ok = matches!(block.get(156), Some(b'\0' | b'0'..=b'7'));
    let name_ok = block.first().is_some_and(|b| *b != 0);
    let tail_zero = block.get(257..).is_some_and(|t| t.iter().all(|b| *b == 0));
    numeric_ok && type_ok && name_ok && tail_zero
}

/// Lists every member. Structural problems are findings; only I/O failures are errors.
pub fn list(source: &dyn ReadAt, limits: &TarLimits) -> Result<TarListing, TarError> {
    let mut walk = Walk {
        source,
        limits,
        sink: Sink::default(),
        members: Vec::new(),
        names: HashMap::new(),
    };
    walk.run()?;
    Ok(TarListing {
        members: walk.members,
        findings: walk.sink.finish(),
    })
}

// ---------------------------------------------------------------------------------------------

const BLOCK: u64 = 512;
/// Extended headers (`L`, `K`, `x`, Solaris `X`) allowed in a row before a member must follow.
const MAX_EXTENDED_CHAIN: usize = 8;
/// Trailing bytes after the end-of-archive block checked for being zero padding.
const TRAILER_SCAN: u64 = 4 << 20;

/// Type flags after which data blocks follow, as `tarfile` decides (regular files and any
/// type it does not know; links, directories, devices and FIFOs carry none).
fn has_data(typeflag: u8) -> bool {
    !matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
}

/// Overrides that extended headers carry for the next member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
    sparse: bool,
    chain: usize,
}

struct Walk<'a> {
    source: &'a dyn ReadAt,
    limits: &'a TarLimits,
    sink: Sink,
    members: Vec<TarMember>,
    names: HashMap<String, u64>,
}

impl Walk<'_> {
    fn run(&mut self) -> Result<(), TarError> {
        let size = self.source.size();
        let mut pos = 0u64;
        let mut pending = Pending::default();
        loop {
            if pos == size {
                // No end-of-archive blocks: `tarfile` accepts that, and so do we, unless an
                // extended header was left without its member.
                if pending.chain > 0 {
                    self.malformed(
                        pos,
                        "archive ends after an extended header, before its member",
                    );
                }
                return Ok(());
            }
            if size - pos < BLOCK {
                self.malformed(pos, format!("truncated header: {} bytes left", size - pos));
                return Ok(());
            }
            let block = self.read(pos, BLOCK)?;
            if block.iter().all(|b| *b == 0) {
                if pending.chain > 0 {
                    self.malformed(pos, "end-of-archive block follows an extended header");
                }
                return self.check_trailer(pos + BLOCK);
            }
            if !checksum_ok(&block) {
                self.malformed(
                    pos,
                    "header checksum does not match; the rest of the archive cannot be read",
                );
                return Ok(());
            }
            let Some(header) = Header::parse(&block) else {
                self.malformed(pos, "header has a field that is not a valid number");
                return Ok(());
            };
            let data_offset = pos + BLOCK;
            match header.typeflag {
                b'L' | b'K' | b'x' | b'X' | b'g' => {
                    pending.chain += 1;
                    if pending.chain > MAX_EXTENDED_CHAIN {
                        self.malformed(pos, "too many extended headers in a row");
                        return Ok(());
                    }
                    if header.size > self.limits.max_header_bytes {
                        self.sink.push(
                            Finding::new(
                                Code::ArchiveLimitExceeded,
                                format!(
                                    "extended header is {} bytes, more than the {}-byte limit",
                                    header.size, self.limits.max_header_bytes
                                ),
                            )
                            .at(format!("@{pos}")),
                        );
                        return Ok(());
                    }
                    let Some(next) = self.data_end(data_offset, header.size) else {
                        self.malformed(pos, "extended header data runs past the end of the file");
                        return Ok(());
                    };
                    let data = self.read(data_offset, header.size)?;
                    if !self.extended(header.typeflag, &data, pos, &mut pending) {
                        return Ok(());
                    }
                    pos = next;
                }
                typeflag => {
                    if self.members.len() >= self.limits.max_members {
                        self.sink.push(Finding::new(
                            Code::ArchiveLimitExceeded,
                            format!(
                                "archive has more than {} members; the rest were not listed",
                                self.limits.max_members
                            ),
                        ));
                        return Ok(());
                    }
                    let member = self.member(&header, pos, std::mem::take(&mut pending));
                    let data_size = if has_data(typeflag) { member.size } else { 0 };
                    if !has_data(typeflag) && header.size > 0 {
                        self.malformed(
                            pos,
                            format!(
                                "`{}` is a type without data but declares {} data bytes; readers disagree on where the next header is",
                                quote(&member.name),
                                header.size
                            ),
                        );
                    }
                    // A member whose data is cut off is named in the finding but not listed,
                    // so every listed member's data lies inside the source.
                    let Some(next) = self.data_end(data_offset, data_size) else {
                        self.malformed(
                            pos,
                            format!(
                                "data of `{}` runs past the end of the file",
                                quote(&member.name)
                            ),
                        );
                        return Ok(());
                    };
                    let name = member.name.clone();
                    self.members.push(member);
                    if typeflag == b'S' && block.get(482).is_some_and(|b| *b != 0) {
                        self.malformed(
                            pos,
                            format!(
                                "gnu sparse member `{}` has extension headers this walker cannot follow",
                                quote(&name)
                            ),
                        );
                        return Ok(());
                    }
                    pos = next;
                }
            }
        }
    }

    /// Applies an extended header's data to the pending overrides; `false` ends the walk.
    fn extended(&mut self, typeflag: u8, data: &[u8], pos: u64, pending: &mut Pending) -> bool {
        match typeflag {
            b'L' => pending.long_name = Some(until_nul(data).to_vec()),
            b'K' => pending.long_link = Some(until_nul(data).to_vec()),
            _ => {
                let Some(records) = pax_records(data) else {
                    self.malformed(pos, "pax extended header is not a valid record list");
                    return false;
                };
                let global = typeflag == b'g';
                for (key, value) in records {
                    if key.starts_with(b"GNU.sparse.") {
                        pending.sparse = true;
                    }
                    let known = matches!(key, b"path" | b"linkpath" | b"size");
                    if global && known {
                        self.malformed(
                            pos,
                            format!(
                                "global pax header sets `{}`, which readers apply differently",
                                quote(&String::from_utf8_lossy(key))
                            ),
                        );
                        continue;
                    }
                    match key {
                        b"path" => pending.pax_path = Some(value.to_vec()),
                        b"linkpath" => pending.pax_link = Some(value.to_vec()),
                        b"size" => match std::str::from_utf8(value)
                            .ok()
                            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|v| v.parse::<u64>().ok())
                        {
                            Some(size) => pending.pax_size = Some(size),
                            None => {
                                self.malformed(pos, "pax `size` is not a decimal number");
                                return false;
                            }
                        },
                        _ => {}
                    }
                }
                if global {
                    // A global header is not attached to the next member.
                    pending.chain -= 1;
                }
            }
        }
        true
    }

    /// Builds a member from its header and the overrides before it, reporting unsafe names.
    fn member(&mut self, header: &Header, pos: u64, pending: Pending) -> TarMember {
        let mut raw_name = header.name.clone();
        if let Some(long) = &pending.long_name {
            raw_name.clone_from(long);
        }
        if let Some(path) = &pending.pax_path {
            if pending.long_name.as_ref().is_some_and(|long| long != path) {
                self.sink.push(
                    Finding::new(
                        Code::ArchiveHeaderMismatch,
                        format!(
                            "gnu long name `{}` and pax path `{}` disagree",
                            quote(&String::from_utf8_lossy(&raw_name)),
                            quote(&String::from_utf8_lossy(path))
                        ),
                    )
                    .at(format!("@{pos}")),
                );
            }
            raw_name.clone_from(path);
        }
        let mut kind = match header.typeflag {
            b'0' | b'\0' | b'7' => TarKind::File,
            b'1' => TarKind::Hardlink,
            b'2' => TarKind::Symlink,
            b'5' => TarKind::Directory,
            other => TarKind::Other(other),
        };
        if header.typeflag == b'\0' && raw_name.last() == Some(&b'/') {
            kind = TarKind::Directory;
        }
        if kind == TarKind::Directory {
            while raw_name.len() > 1 && raw_name.last() == Some(&b'/') {
                raw_name.pop();
            }
        }
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let location = name.clone();
        let shown_name = quote(&name);

        if let Some(problem) = path_problem(&raw_name) {
            self.sink.push(
                Finding::new(
                    Code::ArchiveUnsafePath,
                    format!("member name `{shown_name}` {problem}"),
                )
                .at(location.clone()),
            );
        }
        if let Some(first) = self.names.insert(name.clone(), pos) {
            self.sink.push(
                Finding::new(
                    Code::ArchiveMalformed,
                    format!(
                        "duplicate member name `{shown_name}` (headers at @{first} and @{pos}): readers disagree on which one they load"
                    ),
                )
                .at(location.clone()),
            );
        }
        let link_target = match kind {
            TarKind::Symlink | TarKind::Hardlink => {
                let raw = pending
                    .pax_link
                    .or(pending.long_link)
                    .unwrap_or_else(|| header.linkname.clone());
                if let Some(problem) = path_problem(&raw) {
                    let what = if kind == TarKind::Symlink {
                        "symlink"
                    } else {
                        "hardlink"
                    };
                    self.sink.push(
                        Finding::new(
                            Code::ArchiveUnsafePath,
                            format!(
                                "{what} `{shown_name}` points at `{}`, which {problem}",
                                quote(&String::from_utf8_lossy(&raw))
                            ),
                        )
                        .at(location.clone()),
                    );
                }
                Some(String::from_utf8_lossy(&raw).into_owned())
            }
            _ => None,
        };
        if matches!(header.typeflag, b'3' | b'4' | b'6') {
            self.sink.push(
                Finding::new(
                    Code::SpecialFile,
                    format!(
                        "member `{shown_name}` is a device or fifo (type `{}`)",
                        char::from(header.typeflag).escape_default()
                    ),
                )
                .at(location.clone()),
            );
        }
        if header.typeflag == b'S' || pending.sparse {
            self.sink.push(
                Finding::new(
                    Code::ArchiveUnsupported,
                    format!("member `{shown_name}` is a gnu sparse file; its data is not stored contiguously"),
                )
                .at(location),
            );
        }
        let size = pending.pax_size.unwrap_or(header.size);
        TarMember {
            name,
            kind,
            size: if has_data(header.typeflag) { size } else { 0 },
            data_offset: pos + BLOCK,
            header_offset: pos,
            link_target,
        }
    }

    /// Where the next header starts after `len` data bytes at `start`, if inside the file.
    fn data_end(&self, start: u64, len: u64) -> Option<u64> {
        let blocks = len.checked_add(BLOCK - 1)? / BLOCK;
        start
            .checked_add(blocks.checked_mul(BLOCK)?)
            .filter(|end| *end <= self.source.size())
    }

    /// Everything after the end-of-archive block must be zero padding.
    fn check_trailer(&mut self, start: u64) -> Result<(), TarError> {
        let size = self.source.size();
        let mut pos = start;
        while pos < size {
            if pos - start >= TRAILER_SCAN {
                self.extra(
                    start,
                    format!(
                        "{} bytes follow the end-of-archive block, more than zero padding needs",
                        size - start
                    ),
                );
                return Ok(());
            }
            let len = (size - pos).min(1 << 20);
            let chunk = self.read(pos, len)?;
            if let Some(at) = chunk.iter().position(|b| *b != 0) {
                self.extra(
                    start,
                    format!(
                        "non-zero data at @{} after the end-of-archive block (hidden members or appended data)",
                        pos + at as u64
                    ),
                );
                return Ok(());
            }
            pos += len;
        }
        Ok(())
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, TarError> {
        self.source
            .read_vec(offset, len)
            .map_err(|source| TarError::Read {
                offset,
                len,
                source,
            })
    }

    fn malformed(&mut self, pos: u64, message: impl Into<String>) {
        self.sink
            .push(Finding::new(Code::ArchiveMalformed, message).at(format!("@{pos}")));
    }

    fn extra(&mut self, pos: u64, message: String) {
        self.sink
            .push(Finding::new(Code::ArchiveExtraData, message).at(format!("@{pos}")));
    }
}

/// The fields of one header block that the walk uses.
struct Header {
    name: Vec<u8>,
    size: u64,
    typeflag: u8,
    linkname: Vec<u8>,
}

impl Header {
    /// `None` if a numeric field is not a number, as `tarfile` rejects.
    fn parse(block: &[u8]) -> Option<Header> {
        let field = |from: usize, to: usize| block.get(from..to).unwrap_or_default();
        // mode, uid, gid, mtime, devmajor, devminor: parsed only to reject what `tarfile` does.
        for (from, to) in [
            (100, 108),
            (108, 116),
            (116, 124),
            (136, 148),
            (329, 337),
            (337, 345),
        ] {
            number(field(from, to))?;
        }
        let size = number(field(124, 136))?;
        let typeflag = *block.get(156)?;
        let mut name = until_nul(field(0, 100)).to_vec();
        let prefix = until_nul(field(345, 500));
        // `tarfile` joins the ustar prefix for every type but GNU's own, whatever the magic.
        if !prefix.is_empty() && !matches!(typeflag, b'L' | b'K' | b'S') {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
        Some(Header {
            name,
            size,
            typeflag,
            linkname: until_nul(field(157, 257)).to_vec(),
        })
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

/// A numeric header field: octal text (spaces around, NUL-terminated) or GNU base-256.
/// Negative base-256 values and anything else are rejected.
fn number(field: &[u8]) -> Option<u64> {
    match field.split_first() {
        Some((0x80, rest)) => rest.iter().try_fold(0u64, |acc, b| {
            acc.checked_mul(256)?.checked_add(u64::from(*b))
        }),
        Some((0xff, _)) => None,
        _ => {
            let text = until_nul(field).trim_ascii();
            text.iter().try_fold(0u64, |acc, b| {
                if !(b'0'..=b'7').contains(b) {
                    return None;
                }
                acc.checked_mul(8)?.checked_add(u64::from(b - b'0'))
            })
        }
    }
}

/// The header checksum, which `tarfile` accepts as an unsigned or a signed byte sum with the
/// checksum field counted as spaces.
fn checksum_ok(block: &[u8]) -> bool {
    let Some(stored) = block.get(148..156).and_then(number) else {
        return false;
    };
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (index, byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&index) {
            b' '
        } else {
            *byte
        };
        unsigned += u64::from(byte);
        signed += i64::from(byte as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Pax records `"<len> <key>=<value>\n"`, framed as `tarfile` checks them; stops at a NUL.
fn pax_records(mut data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut records = Vec::new();
    while data.first().is_some_and(|b| *b != 0) {
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        let length: usize = std::str::from_utf8(data.get(..digits)?)
            .ok()?
            .parse()
            .ok()?;
        if length < 5 || data.get(digits) != Some(&b' ') {
            return None;
        }
        let (record, rest) = data.split_at_checked(length)?;
        let (body, newline) = record.split_at_checked(length - 1)?;
        if newline != b"\n" {
            return None;
        }
        let body = body.get(digits + 1..)?;
        let equals = body.iter().position(|b| *b == b'=')?;
        let (key, value) = body.split_at_checked(equals)?;
        if key.is_empty() {
            return None;
        }
        records.push((key, value.get(1..)?));
        data = rest;
    }
    Some(records)
}

#[cfg(test)]
mod tests;
