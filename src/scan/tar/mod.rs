//! Tar container walker: lists the members of a tar archive (legacy torch checkpoints are tar
//! files that `torch.load` opens with Python's `tarfile`) from its 512-byte headers, never
//! reading member data.
//!
//! The walk is a model of CPython 3.11's `tarfile` (`TarInfo.frombuf`, `fromtarfile`, the
//! `_proc_*` methods and `TarFile.next`), not of the tar standards, because that is the
//! reader an attacker's checkpoint meets: v7 headers without magic, ustar, GNU long names
//! (`L`, `K`), pax `x`/`X`/`g` headers with Python's loose record syntax and its
//! outermost-wins order, global pax values applied to every later member, Python's `int()`
//! number syntax and base-256, the signed or unsigned checksum, unknown type flags read as
//! regular files, and the same end-of-archive rules (a zero block or an unreadable header ends
//! the walk quietly, except at offset 0 or after an extended header, where `tarfile` raises).
//! [`looks_like_tar`] answers what `tarfile.open(mode='r:')` answers; [`list`] lists the same
//! members, names, sizes and data offsets. Whatever Python reads that this model cannot
//! follow (sparse files, sizes that send the reader backwards) and whatever other readers
//! would read differently is a finding, so the caller rejects the file. This module must not
//! interpret member content nor decide verdicts.

mod header;
mod pax;

use std::collections::HashMap;
use std::io;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;
use crate::scan::zip::{path_problem, Sink};

use header::{padded, trim_slashes, until_nul, Fault, Header, BLOCK};
use pax::PaxValues;

pub(crate) use header::{python_int, IntError};

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
    /// Data `tarfile` hands out as a file: regular (`0`, NUL, contiguous `7`) and every type
    /// flag it does not know.
    File,
    Directory,
    Symlink,
    Hardlink,
    /// Devices, FIFOs (`3`, `4`, `6`) and GNU sparse files (`S`).
    Other(u8),
}

/// One member, with its name after long-name and pax overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Lossy UTF-8 of the effective name, as `tarfile` computes it.
    pub name: String,
    pub kind: TarKind,
    /// Data size (after pax overrides); zero for kinds that carry no data.
    pub size: u64,
    /// Absolute offset of the member data in the source.
    pub data_offset: u64,
    /// Absolute offset of the first header of the member (its first extended header, if
    /// any), as `TarInfo.offset`.
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

/// Whether `tarfile.open(fileobj=f, mode='r:')` opens the source: its first header reads
/// (a first block of zeros counts: an empty archive), or it is one this walker cannot judge,
/// which is then a tar whose listing carries the finding. Reading the first member costs its
/// extended headers at most.
pub fn looks_like_tar(source: &dyn ReadAt) -> bool {
    let limits = TarLimits::default();
    let mut walk = Walk::new(source, &limits);
    match walk.fetch(0) {
        Ok(Fetched::Member(_) | Fetched::Stop(_) | Fetched::Fault(_, Fault::EndBlock)) => true,
        Ok(Fetched::Fault(..) | Fetched::Empty | Fetched::Truncated(_) | Fetched::Raise(_))
        | Err(_) => false,
    }
}

/// Lists every member. Structural problems are findings; only I/O failures are errors.
pub fn list(source: &dyn ReadAt, limits: &TarLimits) -> Result<TarListing, TarError> {
    let mut walk = Walk::new(source, limits);
    walk.run()?;
    Ok(TarListing {
        members: walk.members,
        findings: walk.sink.finish(),
    })
}

// ---------------------------------------------------------------------------------------------

/// Extended headers (`L`, `K`, `x`, `X`, `g`) in a row before a member must follow; Python
/// recurses once per header and gives up near its recursion limit, far above this.
const MAX_EXTENDED_CHAIN: usize = 32;
/// Trailing bytes after the end-of-archive block checked for being zero padding.
const TRAILER_SCAN: u64 = 4 << 20;

/// Type flags `tarfile` knows; data of any other type is skipped and read like a file.
fn supported(typeflag: u8) -> bool {
    matches!(
        typeflag,
        b'0' | 0 | b'1' | b'2' | b'3' | b'4' | b'5' | b'6' | b'7' | b'L' | b'K' | b'S'
    )
}

/// `isreg() or type not in SUPPORTED_TYPES`: data blocks follow the header.
fn carries_data(typeflag: u8) -> bool {
    matches!(typeflag, b'0' | 0 | b'7' | b'S') || !supported(typeflag)
}

/// Bytes `tarfile` skips after a member's header before the next one.
fn skip(typeflag: u8, size: i128) -> i128 {
    if carries_data(typeflag) {
        padded(size)
    } else {
        0
    }
}

/// One extended header of a chain, kept until the member it describes is read.
enum Extended {
    LongName(Vec<u8>),
    LongLink(Vec<u8>),
    /// A local pax header: a copy of the global values as they were, plus its own.
    Pax(PaxValues),
    Global,
}

/// A member as `fromtarfile` returns it.
struct Built {
    name: Vec<u8>,
    typeflag: u8,
    size: i128,
    /// Size the header itself declared, before any override.
    header_size: i128,
    linkname: Vec<u8>,
    header_offset: u64,
    data_offset: u64,
    /// Where `tarfile` looks for the next header.
    next: i128,
    /// A GNU long name and a pax path both named the member, differently.
    name_conflict: Option<(Vec<u8>, Vec<u8>)>,
}

/// The outcome of one `fromtarfile` call.
enum Fetched {
    Member(Box<Built>),
    /// `frombuf` refused the first header of the call: quiet end or `ReadError`, depending
    /// on the offset (`TarFile.next`).
    Fault(u64, Fault),
    /// No bytes at all where a header should be (`EmptyHeaderError`).
    Empty,
    /// Fewer than 512 bytes (`TruncatedHeaderError`); the count left.
    Truncated(u64),
    /// `tarfile` raises whatever the offset (a header after an extended header is bad).
    Raise(Finding),
    /// Something this model does not follow, or a limit: the walk stops on this finding.
    Stop(Finding),
}

struct Walk<'a> {
    source: &'a dyn ReadAt,
    limits: &'a TarLimits,
    sink: Sink,
    members: Vec<TarMember>,
    names: HashMap<String, u64>,
    /// `TarFile.pax_headers`: what `g` headers set, applied to every later member.
    globals: PaxValues,
}

impl<'a> Walk<'a> {
    fn new(source: &'a dyn ReadAt, limits: &'a TarLimits) -> Self {
        Walk {
            source,
            limits,
            sink: Sink::default(),
            members: Vec::new(),
            names: HashMap::new(),
            globals: PaxValues::default(),
        }
    }

    /// `TarFile.next` until it returns `None` or raises.
    fn run(&mut self) -> Result<(), TarError> {
        let size = i128::from(self.source.size());
        let mut offset: i128 = 0;
        let mut tell: i128 = 0;
        loop {
            if offset != tell {
                // `next()` seeks to `offset - 1` and reads a byte to check it is there.
                if offset == 0 {
                    return Ok(());
                }
                if offset < tell {
                    self.malformed(
                        to_u64(tell),
                        "a negative size sends `tarfile` back to an earlier header: it reads the archive in a loop",
                    );
                    return Ok(());
                }
                if offset > size {
                    self.malformed(
                        to_u64(tell),
                        "archive ends inside a member's data or padding (`tarfile` raises `unexpected end of data`)",
                    );
                    return Ok(());
                }
            }
            let at = to_u64(offset);
            match self.fetch(at)? {
                Fetched::Member(built) => {
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
                    offset = built.next;
                    tell = i128::from(built.data_offset);
                    self.record(*built);
                }
                Fetched::Fault(_, Fault::EndBlock) => return self.check_trailer(at + BLOCK64),
                Fetched::Fault(pos, Fault::Invalid(what)) => {
                    let message = if offset == 0 {
                        format!("first header has an invalid {what}: this is not a tar archive")
                    } else if what == "checksum" {
                        "header checksum does not match: `tarfile` stops here quietly, other readers do not".to_owned()
                    } else {
                        format!("header has an invalid {what}: `tarfile` stops here quietly, other readers do not")
                    };
                    self.malformed(pos, message);
                    return Ok(());
                }
                Fetched::Empty => {
                    // No end-of-archive blocks: `tarfile` accepts that, and so do we.
                    if offset == 0 {
                        self.malformed(0, "file is empty");
                    }
                    return Ok(());
                }
                Fetched::Truncated(left) => {
                    self.malformed(
                        at,
                        format!("truncated header: {left} bytes left where a header belongs"),
                    );
                    return Ok(());
                }
                Fetched::Raise(finding) | Fetched::Stop(finding) => {
                    self.sink.push(finding);
                    return Ok(());
                }
            }
        }
    }

    /// `TarInfo.fromtarfile` at `start`: reads extended headers until a member header, and
    /// builds the member as the unwinding `_proc_*` calls leave it.
    fn fetch(&mut self, start: u64) -> Result<Fetched, TarError> {
        let size = self.source.size();
        let mut chain: Vec<(u64, Extended)> = Vec::new();
        let mut at = start;
        loop {
            let left = size.saturating_sub(at);
            let fault = if left == 0 {
                Some(Fetched::Empty)
            } else if left < BLOCK64 {
                Some(Fetched::Truncated(left))
            } else {
                None
            };
            let parsed = match fault {
                Some(fault) => Err(fault),
                None => {
                    let mut block = [0u8; BLOCK];
                    self.source
                        .read_exact_at(&mut block, at)
                        .map_err(|source| TarError::Read {
                            offset: at,
                            len: BLOCK64,
                            source,
                        })?;
                    Header::parse(&block).map_err(|fault| Fetched::Fault(at, fault))
                }
            };
            let header = match parsed {
                Ok(header) => header,
                Err(fault) if chain.is_empty() => return Ok(fault),
                Err(_) => {
                    return Ok(Fetched::Raise(
                        Finding::new(
                            Code::ArchiveMalformed,
                            "an extended header is not followed by a readable header (`tarfile` raises)",
                        )
                        .at(format!("@{at}")),
                    ))
                }
            };
            let header_at = at;
            at += BLOCK64;
            if !matches!(header.typeflag, b'L' | b'K' | b'x' | b'X' | b'g') {
                if header.sparse.is_some_and(|sparse| sparse.extended) {
                    return Ok(Fetched::Stop(
                        Finding::new(
                            Code::ArchiveUnsupported,
                            format!(
                                "gnu sparse member `{}` has extension headers this walker cannot follow",
                                quote(&String::from_utf8_lossy(&header.name))
                            ),
                        )
                        .at(format!("@{header_at}")),
                    ));
                }
                return Ok(self.build(header, header_at, at, &chain));
            }
            if chain.len() >= MAX_EXTENDED_CHAIN {
                return Ok(Fetched::Stop(malformed_at(
                    header_at,
                    "too many extended headers in a row",
                )));
            }
            // `_block(size)` bytes are read, padding included, and a short read at the end of
            // the file is not an error; a size of -512 or less reads everything that is left.
            let want = padded(header.size);
            if want < 0 {
                return Ok(Fetched::Raise(malformed_at(
                    header_at,
                    "extended header has a negative size (`tarfile` reads the rest of the file and raises)",
                )));
            }
            let len = u64::try_from(want).unwrap_or(u64::MAX).min(size - at);
            if len > self.limits.max_header_bytes {
                return Ok(Fetched::Stop(
                    Finding::new(
                        Code::ArchiveLimitExceeded,
                        format!(
                            "extended header is {len} bytes, more than the {}-byte limit",
                            self.limits.max_header_bytes
                        ),
                    )
                    .at(format!("@{header_at}")),
                ));
            }
            let data = self.read(at, len)?;
            at += len;
            let entry = match header.typeflag {
                b'L' => Extended::LongName(until_nul(&data).to_vec()),
                b'K' => Extended::LongLink(until_nul(&data).to_vec()),
                typeflag => {
                    let global = typeflag == b'g';
                    // A global header updates `TarFile.pax_headers` itself; a local one a copy.
                    let mut values = if global {
                        std::mem::take(&mut self.globals)
                    } else {
                        self.globals.clone()
                    };
                    let before = values.clone();
                    let parsed = values.parse_into(&data);
                    if global {
                        let overrides = values.path != before.path
                            || values.linkpath != before.linkpath
                            || values.size != before.size;
                        self.globals = values.clone();
                        if overrides {
                            self.malformed(
                                header_at,
                                "global pax header sets a path, link or size for every later member; readers apply it differently",
                            );
                        }
                    }
                    if parsed.is_err() {
                        if chain.is_empty() {
                            return Ok(Fetched::Fault(header_at, Fault::Invalid("pax record")));
                        }
                        return Ok(Fetched::Raise(malformed_at(
                            header_at,
                            "pax header has a record of length zero (`tarfile` raises)",
                        )));
                    }
                    if values.sparse {
                        return Ok(Fetched::Stop(
                            Finding::new(
                                Code::ArchiveUnsupported,
                                "pax header describes a gnu sparse file; its data is not stored contiguously",
                            )
                            .at(format!("@{header_at}")),
                        ));
                    }
                    if global {
                        Extended::Global
                    } else {
                        Extended::Pax(values)
                    }
                }
            };
            chain.push((header_at, entry));
        }
    }

    /// `_proc_builtin` or `_proc_sparse` on the member header, then the extended headers
    /// before it applied innermost first, so that the outermost one wins.
    fn build(
        &self,
        header: Header,
        header_at: u64,
        data_at: u64,
        chain: &[(u64, Extended)],
    ) -> Fetched {
        let data = i128::from(data_at);
        let typeflag = header.typeflag;
        let mut member = Built {
            name: header.name,
            typeflag,
            size: header.size,
            header_size: header.size,
            linkname: header.linkname,
            header_offset: header_at,
            data_offset: data_at,
            next: data.saturating_add(skip(typeflag, header.size)),
            name_conflict: None,
        };
        if let Some(sparse) = header.sparse {
            // `_proc_sparse` skips the stored data, reports the real size, and applies no
            // global pax values.
            member.size = sparse.real_size;
        } else {
            if let Err(why) = apply(&mut member, &self.globals) {
                return Fetched::Stop(malformed_at(member.header_offset, why));
            }
            if typeflag == b'5' {
                trim_slashes(&mut member.name);
            }
        }
        let mut long_name = None;
        let mut pax_path = None;
        for (at, entry) in chain.iter().rev() {
            // Every extended header but a global one hands its own offset to the member.
            if !matches!(entry, Extended::Global) {
                member.header_offset = *at;
            }
            match entry {
                Extended::LongName(value) => {
                    member.name.clone_from(value);
                    if typeflag == b'5' && member.name.last() == Some(&b'/') {
                        member.name.pop();
                    }
                    long_name = Some(value);
                }
                Extended::LongLink(value) => {
                    member.linkname.clone_from(value);
                    if typeflag == b'5' && member.name.last() == Some(&b'/') {
                        member.name.pop();
                    }
                }
                Extended::Pax(values) => {
                    if let Err(why) = apply(&mut member, values) {
                        return Fetched::Stop(malformed_at(member.header_offset, why));
                    }
                    if values.size.is_some() {
                        member.next = data.saturating_add(skip(typeflag, member.size));
                    }
                    pax_path = pax_path.or(values.path.as_ref());
                }
                Extended::Global => {}
            }
        }
        if let (Some(long), Some(path)) = (long_name, pax_path) {
            let mut path = path.clone();
            trim_slashes(&mut path);
            if *long != path {
                member.name_conflict = Some((long.clone(), path));
            }
        }
        Fetched::Member(Box::new(member))
    }

    /// Turns a built member into a listed one, reporting what makes it unsafe.
    fn record(&mut self, built: Built) {
        let pos = built.header_offset;
        let name = String::from_utf8_lossy(&built.name).into_owned();
        let location = name.clone();
        let shown_name = quote(&name);
        if let Some((long, path)) = &built.name_conflict {
            self.sink.push(
                Finding::new(
                    Code::ArchiveHeaderMismatch,
                    format!(
                        "gnu long name `{}` and pax path `{}` disagree",
                        quote(&String::from_utf8_lossy(long)),
                        quote(&String::from_utf8_lossy(path))
                    ),
                )
                .at(format!("@{pos}")),
            );
        }
        let kind = match built.typeflag {
            b'0' | 0 | b'7' => TarKind::File,
            b'1' => TarKind::Hardlink,
            b'2' => TarKind::Symlink,
            b'5' => TarKind::Directory,
            other if supported(other) => TarKind::Other(other),
            _ => TarKind::File,
        };
        if let Some(problem) = path_problem(&built.name) {
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
                let raw = &built.linkname;
                if let Some(problem) = path_problem(raw) {
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
                                quote(&String::from_utf8_lossy(raw))
                            ),
                        )
                        .at(location.clone()),
                    );
                }
                Some(String::from_utf8_lossy(raw).into_owned())
            }
            _ => None,
        };
        if matches!(built.typeflag, b'3' | b'4' | b'6') {
            self.sink.push(
                Finding::new(
                    Code::SpecialFile,
                    format!(
                        "member `{shown_name}` is a device or fifo (type `{}`)",
                        char::from(built.typeflag).escape_default()
                    ),
                )
                .at(location.clone()),
            );
        }
        let data_carrying = carries_data(built.typeflag);
        if !data_carrying && built.header_size > 0 {
            self.malformed(
                pos,
                format!(
                    "`{shown_name}` is a type without data but declares {} data bytes; readers disagree on where the next header is",
                    built.header_size
                ),
            );
        }
        let mut size = if data_carrying { built.size } else { 0 };
        if built.typeflag == b'S' {
            self.sink.push(
                Finding::new(
                    Code::ArchiveUnsupported,
                    format!("member `{shown_name}` is a gnu sparse file; its data is not stored contiguously"),
                )
                .at(location),
            );
            // Listed with the bytes actually stored, which is all the archive holds of it.
            size = built.header_size.max(0);
        }
        if size < 0 {
            self.malformed(pos, format!("`{shown_name}` has a negative size ({size})"));
            return;
        }
        let fits = u64::try_from(size)
            .ok()
            .and_then(|size| built.data_offset.checked_add(size).map(|end| (size, end)))
            .filter(|(_, end)| *end <= self.source.size());
        // A member whose data is cut off is named in the finding but not listed, so every
        // listed member's data lies inside the source.
        let Some((size, _)) = fits else {
            self.malformed(
                pos,
                format!("data of `{shown_name}` runs past the end of the file"),
            );
            return;
        };
        self.members.push(TarMember {
            name,
            kind,
            size,
            data_offset: built.data_offset,
            header_offset: pos,
            link_target,
        });
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
        self.sink.push(malformed_at(pos, message));
    }

    fn extra(&mut self, pos: u64, message: String) {
        self.sink
            .push(Finding::new(Code::ArchiveExtraData, message).at(format!("@{pos}")));
    }
}

const BLOCK64: u64 = BLOCK as u64;

fn malformed_at(pos: u64, message: impl Into<String>) -> Finding {
    Finding::new(Code::ArchiveMalformed, message).at(format!("@{pos}"))
}

/// Offsets here are never negative; the clamp only keeps the conversion total.
fn to_u64(value: i128) -> u64 {
    u64::try_from(value.max(0)).unwrap_or(u64::MAX)
}

/// `_apply_pax_info` for the keys that matter: `path` (trailing slashes dropped), `linkpath`
/// and `size` (`int()`, and 0 when that raises).
/// The error is why the value cannot be modelled.
fn apply(member: &mut Built, values: &PaxValues) -> Result<(), &'static str> {
    if let Some(path) = &values.path {
        member.name.clone_from(path);
        trim_slashes(&mut member.name);
    }
    if let Some(link) = &values.linkpath {
        member.linkname.clone_from(link);
    }
    if let Some(text) = &values.size {
        // Python decodes the value and `int()` accepts any Unicode digits and spaces; only
        // ASCII is modelled here.
        if !text.is_ascii() {
            return Err("pax `size` holds non-ASCII text, which Python may read as a number");
        }
        member.size = match python_int(text, 10) {
            Ok(size) => size,
            Err(IntError::Invalid) => 0,
            Err(IntError::Overflow) => return Err("pax `size` is out of range"),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests;
