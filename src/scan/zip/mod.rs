//! Zip container walker: lists every member of a zip archive (PyTorch checkpoints, `.npz`,
//! `.keras`) from its end record, central directory and local headers, and decompresses a
//! member only when the caller asks for it.
//!
//! Loaders disagree about malformed zips (Python's `zipfile` raises where torch's miniz loads),
//! and scanners have been bypassed through exactly those disagreements: CRC errors, encryption
//! bits on plain data, local names that differ from central ones, prepended junk, members hidden
//! in gaps or sharing data. So every structural oddity is a [`Finding`] in the listing and the
//! caller rejects the file; [`ZipError`] is only for I/O failures of the source. Listing never
//! reads member data (only the tail, the central directory, the local headers, descriptors and
//! unreferenced gaps). This module must not interpret member content (that is the caller's
//! format scanners) nor decide verdicts (that is `policy`).

use std::collections::HashMap;
use std::io;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;

mod member;

pub use member::{read_member, read_member_prefix, read_member_spilled, MemberBytes};

/// Bounds on what [`list`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipLimits {
    /// Central-directory entries listed before `archive-limit-exceeded` stops the walk.
    pub max_members: usize,
    /// Largest central directory read, in bytes.
    pub max_central_directory: u64,
    /// Longest member name accepted without an `archive-limit-exceeded` finding.
    pub max_name_len: usize,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_members: 100_000,
            max_central_directory: 64 << 20,
            max_name_len: 4096,
        }
    }
}

/// A member's compression method (APPNOTE 4.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Stored,
    Deflated,
    Bzip2,
    Lzma,
    Other(u16),
}

impl Method {
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => Method::Stored,
            8 => Method::Deflated,
            12 => Method::Bzip2,
            14 => Method::Lzma,
            other => Method::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
            Method::Bzip2 => 12,
            Method::Lzma => 14,
            Method::Other(code) => code,
        }
    }
}

/// One central-directory entry, with offsets already shifted by the archive's prefix.
///
/// A listed member always has a readable local header and its data
/// `[data_offset, data_offset + compressed_size)` lies inside the source, so the caller can
/// wrap a stored member in a `Slice` directly. Entries that fail this are not listed; their
/// `archive-malformed` finding names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Central-directory name, lossy UTF-8 (what torch and `zipfile` look members up by).
    pub name: String,
    pub raw_name: Vec<u8>,
    /// The local header's name when it differs from the central one.
    pub local_name: Option<Vec<u8>>,
    pub method: Method,
    /// General-purpose flags from the central directory.
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Absolute offset of the local header in the source.
    pub local_header_offset: u64,
    /// Absolute offset of the member data in the source.
    pub data_offset: u64,
}

impl Member {
    /// Bit 0 (traditional encryption), bit 6 (strong encryption) or bit 13 (masked headers).
    pub fn is_marked_encrypted(&self) -> bool {
        self.flags & ENCRYPTION_FLAGS != 0
    }
}

/// Everything [`list`] found: the members in central-directory order and the findings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZipListing {
    pub members: Vec<Member>,
    pub findings: Vec<Finding>,
    /// Bytes before the archive proper (a self-extracting stub or prepended data).
    pub prefix_len: u64,
}

/// Could not read the source; structural problems are findings, never this.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ZipError {
    #[error("cannot read {len} bytes of the zip source at offset {offset}")]
    Read {
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
}

/// Cheap sniff: a local header at offset 0 (what torch checks) or an end record signature in
/// the tail (what Python's `zipfile.is_zipfile` checks).
pub fn looks_like_zip(source: &dyn ReadAt) -> bool {
    let mut magic = [0u8; 4];
    if source.read_exact_at(&mut magic, 0).is_ok() && magic == LOCAL_SIG {
        return true;
    }
    let size = source.size();
    let tail_len = size.min(EOCD_SEARCH);
    let Ok(tail) = source.read_vec(size - tail_len, tail_len) else {
        return false;
    };
    memchr::memmem::rfind_iter(&tail, &EOCD_SIG).any(|pos| {
        pos.checked_add(EOCD_LEN)
            .is_some_and(|end| end <= tail.len())
    })
}

/// Lists every member. Structural problems are findings; only I/O failures are errors.
pub fn list(source: &dyn ReadAt, limits: &ZipLimits) -> Result<ZipListing, ZipError> {
    let mut sink = Sink::default();
    let mut listing = ZipListing::default();
    if let Some(layout) = locate_directory(source, limits, &mut sink)? {
        listing.prefix_len = layout.delta;
        listing.members = walk_directory(source, limits, &layout, &mut sink)?;
    }
    listing.findings = sink.finish();
    Ok(listing)
}

// ---------------------------------------------------------------------------------------------
// Record layouts (APPNOTE.TXT 4.3).

const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
const EOCD_SIG: [u8; 4] = *b"PK\x05\x06";
const ZIP64_EOCD_SIG: [u8; 4] = *b"PK\x06\x06";
const ZIP64_LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const DESCRIPTOR_SIG: [u8; 4] = *b"PK\x07\x08";

const LOCAL_LEN: u64 = 30;
const CENTRAL_LEN: usize = 46;
const EOCD_LEN: usize = 22;
const ZIP64_EOCD_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;
/// Python's `zipfile` searches the last 64 KiB plus the record; a comment is at most 65535.
const EOCD_SEARCH: u64 = (1 << 16) + EOCD_LEN as u64;

const FLAG_ENCRYPTED: u16 = 1;
const FLAG_LZMA_EOS: u16 = 1 << 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_UTF8: u16 = 1 << 11;
const FLAG_MASKED_HEADERS: u16 = 1 << 13;
const ENCRYPTION_FLAGS: u16 = FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS;
/// Flags that change how a member is read; the local and central copies must agree on them.
const READ_FLAGS: u16 = ENCRYPTION_FLAGS | FLAG_DESCRIPTOR;

const ZIP64_EXTRA_ID: u16 = 0x0001;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// Gap bytes searched for hidden local headers, over the whole archive.
const GAP_SCAN_BUDGET: u64 = 16 << 20;
const GAP_SCAN_CHUNK: u64 = 1 << 20;
/// Local-header bytes read in one go beyond the fixed part and the central name (torch pads
/// its extra fields to 64-byte alignment, so one read usually covers the whole header).
const LOCAL_READ_SLACK: u64 = 128;
/// Bytes of compressed input read per step while decompressing.
const INPUT_CHUNK: u64 = 64 << 10;
const OUTPUT_CHUNK: usize = 256 << 10;
/// Findings of one code kept before the rest are summarised (a bomb with 100k shared entries
/// must not make a 100k-line report).
const MAX_FINDINGS_PER_CODE: usize = 32;

// ---------------------------------------------------------------------------------------------
// Finding collection and shared helpers (also used by the tar walker).

#[derive(Default)]
pub(crate) struct Sink {
    findings: Vec<Finding>,
    kept: HashMap<Code, usize>,
    dropped: Vec<(Code, usize)>,
}

impl Sink {
    pub(crate) fn push(&mut self, finding: Finding) {
        let kept = self.kept.entry(finding.code).or_insert(0);
        if *kept < MAX_FINDINGS_PER_CODE {
            *kept += 1;
            self.findings.push(finding);
        } else if let Some(entry) = self.dropped.iter_mut().find(|(c, _)| *c == finding.code) {
            entry.1 = entry.1.saturating_add(1);
        } else {
            self.dropped.push((finding.code, 1));
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Finding> {
        for (code, count) in std::mem::take(&mut self.dropped) {
            self.findings.push(Finding::new(
                code,
                format!("{count} more `{code}` findings in this archive were left out"),
            ));
        }
        self.findings
    }
}

/// Why an archive path is unsafe to extract or resolve, if it is.
pub(crate) fn path_problem(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.contains(&0) {
        return Some("contains a nul byte");
    }
    if name.iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Some("contains control characters");
    }
    if name.first() == Some(&b'/') {
        return Some("is absolute");
    }
    if name.contains(&b'\\') {
        return Some("contains a backslash");
    }
    if let [drive, b':', ..] = name {
        if drive.is_ascii_alphabetic() {
            return Some("starts with a drive letter");
        }
    }
    if name.split(|b| *b == b'/').any(|part| part == b"..") {
        return Some("has a `..` component");
    }
    None
}

fn read_at(source: &dyn ReadAt, offset: u64, len: u64) -> Result<Vec<u8>, ZipError> {
    source
        .read_vec(offset, len)
        .map_err(|source| ZipError::Read {
            offset,
            len,
            source,
        })
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(field.try_into().ok()?))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

fn malformed(message: impl Into<String>) -> Finding {
    Finding::new(Code::ArchiveMalformed, message)
}

// ---------------------------------------------------------------------------------------------
// End records.

/// Where the central directory is, once the end records have been read.
struct Layout {
    /// Absolute position of the central directory.
    cd_pos: u64,
    cd_size: u64,
    /// Entry count the end record declares.
    declared_entries: u64,
    /// Added to every offset the archive stores (Python's "concat"): bytes prepended.
    delta: u64,
    /// Start of the end structures (zip64 record, or the end record) and their end.
    end_start: u64,
    end_stop: u64,
}

fn locate_directory(
    source: &dyn ReadAt,
    limits: &ZipLimits,
    sink: &mut Sink,
) -> Result<Option<Layout>, ZipError> {
    let size = source.size();
    let tail_len = size.min(EOCD_SEARCH);
    let tail_start = size - tail_len;
    let tail = read_at(source, tail_start, tail_len)?;

    // The record Python's `_EndRecData` and miniz take: the last 22 bytes when they are a
    // record without a comment, else the last signature with a whole record after it, whatever
    // its comment length says. Python gives up when that last signature is cut short; miniz
    // looks further back, and so do we, reporting the cut one.
    let mut later_candidates = 0usize;
    let mut found = None;
    let fast = tail
        .len()
        .checked_sub(EOCD_LEN)
        .and_then(|pos| tail.get(pos..).map(|record| (pos, record)))
        .filter(|(_, record)| record.starts_with(&EOCD_SIG) && record.ends_with(&[0, 0]));
    if let Some(fast) = fast {
        found = Some(fast);
    } else {
        for pos in memchr::memmem::rfind_iter(&tail, &EOCD_SIG) {
            match pos.checked_add(EOCD_LEN).and_then(|end| tail.get(pos..end)) {
                Some(record) => {
                    found = Some((pos, record));
                    break;
                }
                None => later_candidates += 1,
            }
        }
    }
    let Some((pos, record)) = found else {
        sink.push(malformed(if later_candidates > 0 {
            "end-of-central-directory record is truncated"
        } else {
            "no end-of-central-directory record: the archive cannot be listed"
        }));
        return Ok(None);
    };
    let eocd_pos = tail_start + pos as u64;
    if later_candidates > 0 {
        sink.push(
            malformed(format!(
                "{later_candidates} truncated end-of-central-directory signature(s) follow the record at @{eocd_pos}; Python's zipfile refuses the archive, other readers use the earlier record"
            ))
            .at(format!("@{eocd_pos}")),
        );
    }

    let field16 = |at| u64::from(le16(record, at).unwrap_or(0));
    let field32 = |at| u64::from(le32(record, at).unwrap_or(0));
    let disk = field16(4);
    let cd_disk = field16(6);
    let entries_disk = field16(8);
    let mut entries = field16(10);
    let mut cd_size = field32(12);
    let mut cd_offset = field32(16);
    let comment_len = field16(20);
    let eocd_end = eocd_pos + EOCD_LEN as u64 + comment_len;
    if eocd_end > size {
        // Python and miniz take the shorter comment; Go's archive/zip rejects the archive.
        sink.push(
            malformed(format!(
                "end-of-central-directory comment of {comment_len} bytes runs {} bytes past the end of the file",
                eocd_end - size
            ))
            .at(format!("@{eocd_pos}")),
        );
    }
    let eocd_end = eocd_end.min(size);
    if eocd_end < size {
        sink.push(
            Finding::new(
                Code::ArchiveExtraData,
                format!(
                    "{} bytes follow the end-of-central-directory record and its comment",
                    size - eocd_end
                ),
            )
            .at(format!("@{eocd_end}")),
        );
    }

    let mut end_start = eocd_pos;
    let mut zip64_locator_offset = None;
    let locator = match eocd_pos.checked_sub(ZIP64_LOCATOR_LEN) {
        Some(at) => Some((at, read_at(source, at, ZIP64_LOCATOR_LEN)?)),
        None => None,
    };
    if let Some((locator_pos, locator)) = locator.filter(|(_, l)| l.starts_with(&ZIP64_LOCATOR_SIG))
    {
        let record_disk = le32(&locator, 4).unwrap_or(0);
        let record_offset = le64(&locator, 8).unwrap_or(0);
        let disks = le32(&locator, 16).unwrap_or(0);
        if record_disk != 0 || disks > 1 {
            sink.push(malformed(format!(
                "zip64 locator describes a multi-disk archive (record on disk {record_disk} of {disks})"
            )));
            return Ok(None);
        }
        // Python reads the zip64 record right before the locator, whatever offset the locator
        // stores; there being no room for it makes Python's seek fail.
        let Some(record_pos) = locator_pos.checked_sub(ZIP64_EOCD_LEN) else {
            sink.push(malformed(
                "zip64 locator present but no room for the zip64 end record",
            ));
            return Ok(None);
        };
        let record64 = read_at(source, record_pos, ZIP64_EOCD_LEN)?;
        if record64.starts_with(&ZIP64_EOCD_SIG) {
            let disk64 = le32(&record64, 16).unwrap_or(0);
            let cd_disk64 = le32(&record64, 20).unwrap_or(0);
            let entries_disk64 = le64(&record64, 24).unwrap_or(0);
            let entries64 = le64(&record64, 32).unwrap_or(0);
            let cd_size64 = le64(&record64, 40).unwrap_or(0);
            let cd_offset64 = le64(&record64, 48).unwrap_or(0);
            if disk64 != 0 || cd_disk64 != 0 || entries_disk64 != entries64 {
                // Python ignores these fields; readers that honour them see another archive.
                sink.push(malformed(format!(
                    "zip64 end record describes a multi-disk archive (disk {disk64}, directory on disk {cd_disk64})"
                )));
            }
            for (what, narrow, wide, sentinel) in [
                ("entry count", entries, entries64, 0xFFFF),
                ("directory size", cd_size, cd_size64, U32_MAX),
                ("directory offset", cd_offset, cd_offset64, U32_MAX),
            ] {
                if narrow != sentinel && narrow != wide {
                    sink.push(Finding::new(
                        Code::ArchiveHeaderMismatch,
                        format!(
                            "end record {what} {narrow} disagrees with the zip64 end record's {wide}"
                        ),
                    ));
                }
            }
            entries = entries64;
            cd_size = cd_size64;
            cd_offset = cd_offset64;
            end_start = record_pos;
            zip64_locator_offset = Some(record_offset);
        } else {
            // Python quietly falls back to the plain end record; readers that trust the
            // locator do not.
            sink.push(
                malformed("zip64 locator present but the zip64 end record does not precede it")
                    .at(format!("@{record_pos}")),
            );
        }
    } else if disk != 0 || cd_disk != 0 || entries_disk != entries {
        // Python ignores these fields; readers that honour them refuse or see another archive.
        sink.push(malformed(format!(
            "end record describes a multi-disk archive (disk {disk}, directory on disk {cd_disk})"
        )));
    }

    // Python's "concat": the directory ends where the end records start; whatever the stored
    // offset leaves unexplained before it was prepended to the archive.
    let Some(mut cd_pos) = end_start.checked_sub(cd_size) else {
        sink.push(malformed(format!(
            "central directory size {cd_size} exceeds the {end_start} bytes before the end record"
        )));
        return Ok(None);
    };
    let Some(mut delta) = cd_pos.checked_sub(cd_offset) else {
        sink.push(
            malformed(format!(
                "central directory offset {cd_offset} plus its size {cd_size} runs into the end record at @{end_start}"
            ))
            .at(format!("@{cd_offset}")),
        );
        return Ok(None);
    };
    if cd_size > limits.max_central_directory {
        sink.push(Finding::new(
            Code::ArchiveLimitExceeded,
            format!(
                "central directory is {cd_size} bytes, more than the {}-byte limit",
                limits.max_central_directory
            ),
        ));
        return Ok(None);
    }
    if delta > 0 && cd_size >= 4 {
        // Junk between the directory and the end record also shows up as a delta; the
        // directory's signature tells the two apart.
        let at_actual = read_at(source, cd_pos, 4)?;
        let at_stored = read_at(source, cd_offset, 4)?;
        if at_actual != CENTRAL_SIG && at_stored == CENTRAL_SIG {
            cd_pos = cd_offset;
            delta = 0;
        }
    }
    if delta > 0 {
        sink.push(
            Finding::new(
                Code::ArchiveExtraData,
                format!(
                    "{delta} bytes precede the archive (prepended data or a self-extracting stub)"
                ),
            )
            .at("@0"),
        );
    }
    if let Some(stored) = zip64_locator_offset {
        if stored.checked_add(delta) != Some(end_start) {
            sink.push(
                malformed(format!(
                    "zip64 locator points at @{stored} but the zip64 end record is at @{end_start}"
                ))
                .at(format!("@{end_start}")),
            );
        }
    }
    Ok(Some(Layout {
        cd_pos,
        cd_size,
        declared_entries: entries,
        delta,
        end_start,
        end_stop: eocd_end,
    }))
}

// ---------------------------------------------------------------------------------------------
// Central directory and local headers.

struct CentralEntry {
    flags: u16,
    method: u16,
    crc32: u32,
    compressed_size: u64,
    uncompressed_size: u64,
    local_header_offset: u64,
    disk_start: u64,
    name: Vec<u8>,
    /// The zip64 extra field was present, so a data descriptor carries 8-byte sizes.
    zip64: bool,
}

#[derive(Clone, Copy)]
enum Owner {
    Member(usize),
    Directory,
    EndRecords,
}

struct Region {
    start: u64,
    end: u64,
    owner: Owner,
}

fn walk_directory(
    source: &dyn ReadAt,
    limits: &ZipLimits,
    layout: &Layout,
    sink: &mut Sink,
) -> Result<Vec<Member>, ZipError> {
    let directory = read_at(source, layout.cd_pos, layout.cd_size)?;
    let mut entries = Vec::new();
    let mut rest: &[u8] = &directory;
    let mut hit_limit = false;
    while !rest.is_empty() {
        if entries.len() >= limits.max_members {
            sink.push(Finding::new(
                Code::ArchiveLimitExceeded,
                format!(
                    "archive has more than {} members; the rest were not listed",
                    limits.max_members
                ),
            ));
            hit_limit = true;
            break;
        }
        let at = layout.cd_pos + (directory.len() - rest.len()) as u64;
        match parse_central(rest, sink, at) {
            Some((entry, next)) => {
                entries.push(entry);
                rest = next;
            }
            None => {
                sink.push(
                    malformed(format!(
                        "central directory entry {} is truncated or has a bad signature",
                        entries.len()
                    ))
                    .at(format!("@{at}")),
                );
                hit_limit = true;
                break;
            }
        }
    }
    if !hit_limit && entries.len() as u64 != layout.declared_entries {
        sink.push(malformed(format!(
            "end record declares {} entries but the central directory holds {}",
            layout.declared_entries,
            entries.len()
        )));
    }

    let size = source.size();
    let mut members = Vec::with_capacity(entries.len());
    let mut regions = Vec::with_capacity(entries.len().saturating_add(2));
    let mut names: HashMap<Vec<u8>, usize> = HashMap::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        check_central(&entry, &name, limits, sink);
        if let Some(first) = names.insert(entry.name.clone(), index) {
            sink.push(
                malformed(format!(
                    "duplicate member name `{}` (entries {first} and {index}): loaders disagree on which one they read (reported as archive-malformed)",
                    quote(&name)
                ))
                .at(name.clone()),
            );
        }
        let Some(local_offset) = entry.local_header_offset.checked_add(layout.delta) else {
            sink.push(
                malformed(format!(
                    "member `{}` has an impossible offset",
                    quote(&name)
                ))
                .at(name),
            );
            continue;
        };
        let mut member = Member {
            name,
            raw_name: entry.name.clone(),
            local_name: None,
            method: Method::from_code(entry.method),
            flags: entry.flags,
            crc32: entry.crc32,
            compressed_size: entry.compressed_size,
            uncompressed_size: entry.uncompressed_size,
            local_header_offset: local_offset,
            data_offset: local_offset,
        };
        // A member whose local header or data is unreadable is named in its finding but not
        // listed, so every listed member can be sliced and read.
        if let Some(end) = check_local(source, &entry, &mut member, sink)? {
            regions.push(Region {
                start: local_offset,
                end,
                owner: Owner::Member(members.len()),
            });
            members.push(member);
        }
    }
    regions.push(Region {
        start: layout.cd_pos,
        end: layout.cd_pos + layout.cd_size,
        owner: Owner::Directory,
    });
    regions.push(Region {
        start: layout.end_start,
        end: layout.end_stop.min(size),
        owner: Owner::EndRecords,
    });
    check_tiling(source, &members, regions, layout.delta, sink)?;
    Ok(members)
}

/// Parses one central-directory entry at the start of `bytes`; `None` if it does not fit.
fn parse_central<'a>(
    bytes: &'a [u8],
    sink: &mut Sink,
    at: u64,
) -> Option<(CentralEntry, &'a [u8])> {
    let (fixed, rest) = bytes.split_at_checked(CENTRAL_LEN)?;
    if fixed.get(..4)? != CENTRAL_SIG {
        return None;
    }
    let name_len = usize::from(le16(fixed, 28)?);
    let extra_len = usize::from(le16(fixed, 30)?);
    let comment_len = usize::from(le16(fixed, 32)?);
    let (name, rest) = rest.split_at_checked(name_len)?;
    let (extra, rest) = rest.split_at_checked(extra_len)?;
    let (_comment, rest) = rest.split_at_checked(comment_len)?;
    let entry_at = at;
    let mut entry = CentralEntry {
        flags: le16(fixed, 8)?,
        method: le16(fixed, 10)?,
        crc32: le32(fixed, 16)?,
        compressed_size: u64::from(le32(fixed, 20)?),
        uncompressed_size: u64::from(le32(fixed, 24)?),
        disk_start: u64::from(le16(fixed, 34)?),
        local_header_offset: u64::from(le32(fixed, 42)?),
        name: name.to_vec(),
        zip64: false,
    };
    let shown_name = quote(&String::from_utf8_lossy(name));
    match zip64_extra(extra) {
        Err(()) => sink.push(
            malformed(format!("member `{shown_name}` has a corrupt extra field"))
                .at(format!("@{entry_at}")),
        ),
        Ok(None) => {}
        Ok(Some(fields)) => {
            entry.zip64 = true;
            // Only the fields whose 32-bit copy is saturated are present, in this order.
            let mut at = 0usize;
            let mut short = false;
            for slot in [
                &mut entry.uncompressed_size,
                &mut entry.compressed_size,
                &mut entry.local_header_offset,
            ] {
                if *slot == U32_MAX {
                    match le64(fields, at) {
                        Some(value) => {
                            *slot = value;
                            at += 8;
                        }
                        None => short = true,
                    }
                }
            }
            if entry.disk_start == 0xFFFF {
                match le32(fields, at) {
                    Some(value) => entry.disk_start = u64::from(value),
                    None => short = true,
                }
            }
            if short {
                sink.push(
                    malformed(format!(
                        "member `{shown_name}` has a zip64 extra field too short for its saturated fields"
                    ))
                    .at(format!("@{entry_at}")),
                );
            }
        }
    }
    Some((entry, rest))
}

/// The data of the zip64 extended-information field, if present; `Err` if the extra block is
/// corrupt the way Python's `zipfile` rejects (a field running past the block).
fn zip64_extra(mut extra: &[u8]) -> Result<Option<&[u8]>, ()> {
    let mut found = None;
    // Python tolerates fewer than 4 trailing bytes (zipalign padding), and so do we.
    while extra.len() >= 4 {
        let id = le16(extra, 0).ok_or(())?;
        let len = usize::from(le16(extra, 2).ok_or(())?);
        let body = extra.get(4..).ok_or(())?;
        let (data, rest) = body.split_at_checked(len).ok_or(())?;
        if id == ZIP64_EXTRA_ID && found.is_none() {
            found = Some(data);
        }
        extra = rest;
    }
    Ok(found)
}

fn check_central(entry: &CentralEntry, name: &str, limits: &ZipLimits, sink: &mut Sink) {
    let shown_name = quote(name);
    if entry.flags & ENCRYPTION_FLAGS != 0 {
        sink.push(
            Finding::new(
                Code::ArchiveEncrypted,
                format!(
                    "member `{shown_name}` is marked encrypted (flags {:#06x}); torch's miniz ignores the mark and reads it as plain data",
                    entry.flags
                ),
            )
            .at(name),
        );
    }
    if entry.disk_start != 0 {
        sink.push(
            malformed(format!(
                "member `{shown_name}` starts on disk {}",
                entry.disk_start
            ))
            .at(name),
        );
    }
    if entry.name.len() > limits.max_name_len {
        sink.push(
            Finding::new(
                Code::ArchiveLimitExceeded,
                format!(
                    "member name is {} bytes, more than the {}-byte limit",
                    entry.name.len(),
                    limits.max_name_len
                ),
            )
            .at(name),
        );
    }
    if let Some(problem) = path_problem(&entry.name) {
        sink.push(
            Finding::new(
                Code::ArchiveUnsafePath,
                format!("member name `{shown_name}` {problem}"),
            )
            .at(name),
        );
    } else if std::str::from_utf8(&entry.name).is_err() {
        sink.push(
            Finding::new(
                Code::ArchiveUnsafePath,
                format!(
                    "member name `{shown_name}` is not valid utf-8; loaders decode it differently"
                ),
            )
            .at(name),
        );
    } else if entry.flags & FLAG_UTF8 == 0 && !entry.name.is_ascii() {
        sink.push(
            Finding::new(
                Code::ArchiveUnsafePath,
                format!(
                    "member name `{shown_name}` is not ascii and not flagged utf-8; python decodes it as cp437, torch as bytes"
                ),
            )
            .at(name),
        );
    }
}

/// Reads and checks a member's local header (and data descriptor), filling in the data
/// offset. Returns where the member's bytes end, or `None` if its header is unreadable.
fn check_local(
    source: &dyn ReadAt,
    entry: &CentralEntry,
    member: &mut Member,
    sink: &mut Sink,
) -> Result<Option<u64>, ZipError> {
    let size = source.size();
    let start = member.local_header_offset;
    let name = member.name.clone();
    let shown_name = quote(&name);
    let Some(fixed_end) = start.checked_add(LOCAL_LEN).filter(|end| *end <= size) else {
        sink.push(
            malformed(format!(
                "local header of `{shown_name}` lies past the end of the file"
            ))
            .at(name),
        );
        return Ok(None);
    };
    let want = LOCAL_LEN + entry.name.len() as u64 + LOCAL_READ_SLACK;
    let mut header = read_at(source, start, want.min(size - start))?;
    if !header.starts_with(&LOCAL_SIG) {
        sink.push(
            malformed(format!(
                "member `{shown_name}` has no local header signature at @{start}"
            ))
            .at(name),
        );
        return Ok(None);
    }
    let field16 = |h: &[u8], at| le16(h, at).unwrap_or(0);
    let field32 = |h: &[u8], at| le32(h, at).unwrap_or(0);
    let flags = field16(&header, 6);
    let method = field16(&header, 8);
    let crc = field32(&header, 14);
    let mut compressed = u64::from(field32(&header, 18));
    let mut uncompressed = u64::from(field32(&header, 22));
    let name_len = u64::from(field16(&header, 26));
    let extra_len = u64::from(field16(&header, 28));
    let Some(data_offset) = fixed_end
        .checked_add(name_len)
        .and_then(|n| n.checked_add(extra_len))
        .filter(|end| *end <= size)
    else {
        sink.push(
            malformed(format!(
                "local header of `{shown_name}` runs past the end of the file"
            ))
            .at(name),
        );
        return Ok(None);
    };
    if data_offset - start > header.len() as u64 {
        header = read_at(source, start, data_offset - start)?;
    }
    member.data_offset = data_offset;
    let body = header.get(30..).unwrap_or_default();
    let (local_name, extra) = body.split_at_checked(name_len as usize).unwrap_or_default();
    let extra = extra.get(..extra_len as usize).unwrap_or_default();

    if local_name != entry.name.as_slice() {
        let local_shown = quote(&String::from_utf8_lossy(local_name));
        sink.push(
            Finding::new(
                Code::ArchiveHeaderMismatch,
                format!(
                    "central directory names the member `{shown_name}` but its local header says `{local_shown}`"
                ),
            )
            .at(name.clone()),
        );
        member.local_name = Some(local_name.to_vec());
        if let Some(problem) = path_problem(local_name) {
            sink.push(
                Finding::new(
                    Code::ArchiveUnsafePath,
                    format!("local header name `{local_shown}` {problem}"),
                )
                .at(name.clone()),
            );
        }
    }
    if flags & ENCRYPTION_FLAGS != 0 && entry.flags & ENCRYPTION_FLAGS == 0 {
        sink.push(
            Finding::new(
                Code::ArchiveEncrypted,
                format!("member `{shown_name}` is marked encrypted in its local header (flags {flags:#06x})"),
            )
            .at(name.clone()),
        );
    }
    let mut mismatch = |what: &str, local: String, central: String| {
        sink.push(
            Finding::new(
                Code::ArchiveHeaderMismatch,
                format!("member `{shown_name}`: local header {what} {local} disagrees with the central directory's {central}"),
            )
            .at(name.clone()),
        );
    };
    if flags & READ_FLAGS != entry.flags & READ_FLAGS {
        mismatch(
            "flags",
            format!("{flags:#06x}"),
            format!("{:#06x}", entry.flags),
        );
    }
    if method != entry.method {
        mismatch("method", method.to_string(), entry.method.to_string());
    }
    let mut local_zip64 = false;
    if let Ok(Some(fields)) = zip64_extra(extra) {
        local_zip64 = true;
        // In a local header the zip64 field holds both sizes whenever either is saturated.
        if uncompressed == U32_MAX || compressed == U32_MAX {
            uncompressed = le64(fields, 0).unwrap_or(uncompressed);
            compressed = le64(fields, 8).unwrap_or(compressed);
        }
    }
    // With a data descriptor the local copies may be zero; anything else must agree.
    let deferred = flags & FLAG_DESCRIPTOR != 0;
    if !(deferred && crc == 0) && crc != entry.crc32 {
        mismatch(
            "crc-32",
            format!("{crc:#010x}"),
            format!("{:#010x}", entry.crc32),
        );
    }
    if !(deferred && compressed == 0) && compressed != entry.compressed_size {
        mismatch(
            "compressed size",
            compressed.to_string(),
            entry.compressed_size.to_string(),
        );
    }
    if !(deferred && uncompressed == 0) && uncompressed != entry.uncompressed_size {
        mismatch(
            "uncompressed size",
            uncompressed.to_string(),
            entry.uncompressed_size.to_string(),
        );
    }

    let Some(data_end) = data_offset
        .checked_add(entry.compressed_size)
        .filter(|end| *end <= size)
    else {
        sink.push(
            malformed(format!(
                "data of `{shown_name}` ({} bytes at @{data_offset}) runs past the end of the file",
                entry.compressed_size
            ))
            .at(name),
        );
        return Ok(None);
    };
    if !deferred {
        return Ok(Some(data_end));
    }
    let descriptor = read_at(source, data_end, 24.min(size - data_end))?;
    let wide = local_zip64 || entry.zip64;
    match descriptor_end(&descriptor, entry, wide) {
        Some(len) => Ok(Some(data_end + len)),
        None => {
            // Count the descriptor the writer most likely meant, so that its bytes are not
            // reported a second time as a gap.
            let signed = if descriptor.starts_with(&DESCRIPTOR_SIG) {
                4
            } else {
                0
            };
            let assumed = signed + if wide { 20 } else { 12 };
            let len = (descriptor.len() as u64).min(assumed);
            sink.push(
                Finding::new(
                    Code::ArchiveHeaderMismatch,
                    format!(
                        "data descriptor of `{shown_name}` at @{data_end} is missing or disagrees with the central directory"
                    ),
                )
                .at(name),
            );
            Ok(Some(data_end + len))
        }
    }
}

/// Length of a data descriptor that agrees with the central directory, trying the layouts
/// writers use (with or without signature, 4- or 8-byte sizes), preferred one first.
fn descriptor_end(bytes: &[u8], entry: &CentralEntry, zip64: bool) -> Option<u64> {
    let signed = bytes.starts_with(&DESCRIPTOR_SIG);
    let skip = if signed { 4 } else { 0 };
    let layouts: [bool; 2] = if zip64 { [true, false] } else { [false, true] };
    layouts.into_iter().find_map(|wide| {
        let crc = le32(bytes, skip)?;
        let (compressed, uncompressed, len) = if wide {
            (le64(bytes, skip + 4)?, le64(bytes, skip + 12)?, skip + 20)
        } else {
            (
                u64::from(le32(bytes, skip + 4)?),
                u64::from(le32(bytes, skip + 8)?),
                skip + 12,
            )
        };
        (crc == entry.crc32
            && compressed == entry.compressed_size
            && uncompressed == entry.uncompressed_size)
            .then_some(len as u64)
    })
}

// ---------------------------------------------------------------------------------------------
// Tiling: members, directory and end records must cover the file without overlap or gaps.

fn check_tiling(
    source: &dyn ReadAt,
    members: &[Member],
    mut regions: Vec<Region>,
    prefix: u64,
    sink: &mut Sink,
) -> Result<(), ZipError> {
    let describe = |owner: Owner| match owner {
        Owner::Member(index) => members.get(index).map_or_else(
            || "a member".to_owned(),
            |m| format!("member `{}`", quote(&m.name)),
        ),
        Owner::Directory => "the central directory".to_owned(),
        Owner::EndRecords => "the end records".to_owned(),
    };
    regions.sort_by_key(|r| (r.start, r.end));
    let mut reach = prefix;
    let mut reach_owner: Option<Owner> = None;
    let mut scan_budget = GAP_SCAN_BUDGET;
    for region in &regions {
        if region.start < reach {
            let other = reach_owner.map_or_else(|| "the prepended data".to_owned(), describe);
            sink.push(
                malformed(format!(
                    "{} (@{}..@{}) overlaps {other}; shared or overlapping data is how zip bombs and hidden payloads are built",
                    describe(region.owner),
                    region.start,
                    region.end
                ))
                .at(format!("@{}", region.start)),
            );
        } else if region.start > reach {
            check_gap(source, reach, region.start, &mut scan_budget, sink)?;
        }
        if region.end > reach {
            reach = region.end;
            reach_owner = Some(region.owner);
        }
    }
    Ok(())
}

/// Reports unreferenced bytes: any gap that could hold a local header, that holds the
/// signature of one (a member hidden from the central directory), or that holds anything but
/// zero padding (a bare pickle fits in a few bytes).
fn check_gap(
    source: &dyn ReadAt,
    start: u64,
    end: u64,
    budget: &mut u64,
    sink: &mut Sink,
) -> Result<(), ZipError> {
    let len = end - start;
    let mut hidden = None;
    let mut nonzero = false;
    let mut pos = start;
    while pos < end && *budget > 0 && hidden.is_none() {
        // Overlap chunks by three bytes so a signature split across them is still seen.
        let chunk = (end - pos).min(GAP_SCAN_CHUNK).min(*budget);
        let bytes = read_at(source, pos, chunk)?;
        hidden = memchr::memmem::find(&bytes, &LOCAL_SIG).map(|at| pos + at as u64);
        nonzero |= bytes.iter().any(|b| *b != 0);
        *budget = budget.saturating_sub(chunk);
        if pos + chunk >= end || chunk <= 3 {
            break;
        }
        pos += chunk - 3;
    }
    let message = match hidden {
        Some(at) => format!(
            "{len} unreferenced bytes at @{start} hold a local header signature at @{at}: a member hidden from the central directory"
        ),
        None if start == 0 => format!("{len} bytes precede the first member"),
        None if len >= LOCAL_LEN => format!(
            "{len} unreferenced bytes at @{start} between archive records, room for a hidden member"
        ),
        None if nonzero => format!(
            "{len} unreferenced bytes at @{start} between archive records hold data that no entry describes"
        ),
        None => return Ok(()),
    };
    sink.push(Finding::new(Code::ArchiveExtraData, message).at(format!("@{start}")));
    Ok(())
}

#[cfg(test)]
mod tests;
