//! The recovery scan: one bounded, linear pass past the point where a stream broke, for the
//! imports a tolerant loader (joblib, which reads array bytes inline and then goes on) could
//! still reach. It recognises GLOBAL/INST with two identifier lines and STACK_GLOBAL right
//! after two short string pushes; it owns nothing else and never decides what is dangerous.
//!
//! The pass reads its source window by window; windows overlap by [`OVERLAP`], more than the
//! longest pattern it matches, so every candidate offset is judged on all the bytes it could
//! use, exactly as over the whole input at once.

use std::collections::BTreeSet;
use std::io;

use super::allowlist::classify_qualified;
use super::machine::{is_dotted_identifier, make_global, opcode_name, Budget, Inner};
use super::{Global, ImportedGlobal, PickleLimits, Via};
use crate::scan::source::ReadAt;

/// The longest line the recovery scan accepts as a module or attribute name.
const MAX_RECOVERY_LINE: usize = 256;
/// Bytes past a window's last candidate that are read with it: the longest pattern is
/// STACK_GLOBAL after two memoised BINUNICODE8 pushes of [`MAX_RECOVERY_LINE`] bytes each
/// (2 × (1 + 8 + 256 + 5) + 1 = 541 bytes), and a GLOBAL needs at most 1 + 2 × 257.
const OVERLAP: usize = 1024;

/// One bounded, linear pass past a malformed point for the imports a tolerant loader could
/// still reach: GLOBAL/INST with two identifier lines, and STACK_GLOBAL right after two short
/// string pushes (each optionally memoised). Work beyond one step per byte is charged to the
/// budget, so hostile filler ends in a limit finding rather than a long scan. Candidates lie
/// in `[from, until)`, and nothing past `until` is read.
pub(super) fn recover(
    source: &dyn ReadAt,
    from: usize,
    until: usize,
    limits: &PickleLimits,
    budget: &mut Budget,
    inner: &mut Inner,
) -> io::Result<()> {
    let len = usize::try_from(source.size())
        .unwrap_or(usize::MAX)
        .min(until);
    let window = budget.sizes().chunk.max(OVERLAP);
    let mut state = State {
        module_line_end: from,
        boundaries: BTreeSet::new(),
    };
    let mut buf = Vec::new();
    let mut base = from;
    while base < len {
        let candidates_end = base.saturating_add(window).min(len);
        let read_end = candidates_end.saturating_add(OVERLAP).min(len);
        buf.clear();
        buf.resize(read_end - base, 0);
        source.read_exact_at(&mut buf, base as u64)?;
        if !scan(
            &buf,
            base,
            candidates_end - base,
            &mut state,
            limits,
            budget,
            inner,
        ) {
            break;
        }
        base = candidates_end;
    }
    Ok(())
}

/// [`recover`] on bytes already in memory, scanned in place.
pub(super) fn recover_bytes(
    bytes: &[u8],
    limits: &PickleLimits,
    budget: &mut Budget,
    inner: &mut Inner,
) {
    let mut state = State {
        module_line_end: 0,
        boundaries: BTreeSet::new(),
    };
    scan(bytes, 0, bytes.len(), &mut state, limits, budget, inner);
}

/// What the scan carries from one window to the next, in source offsets.
struct State {
    /// Where the module line of the last global recovered ends.
    module_line_end: usize,
    /// Where string pushes seen so far end (and their optional memoisation).
    boundaries: BTreeSet<usize>,
}

/// Scans the candidate offsets `[0, candidates)` of `bytes`, which start at source offset
/// `base`; false when the budget or the globals limit stops the scan.
fn scan(
    bytes: &[u8],
    base: usize,
    candidates: usize,
    state: &mut State,
    limits: &PickleLimits,
    budget: &mut Budget,
    inner: &mut Inner,
) -> bool {
    let mut module_lines = Runs::new(bytes);
    let mut name_lines = Runs::new(bytes);
    // A `c` or `i` inside the module line of a global just recovered usually yields only a
    // suffix of it (`builtins` -> `ltins`), so such candidates are skipped, unless a string
    // push ends right there (`X` `intercept_` then `cos\nsystem\n`), where a real opcode may
    // begin. Candidates in the name line are always tried, so a decoy global (reported
    // itself) cannot hide the one that follows it.
    let mut at = 0usize;
    while at < candidates {
        let Some(&op) = bytes.get(at) else {
            break;
        };
        let global_at = base.saturating_add(at);
        let mut work = 0usize;
        while state.boundaries.first().is_some_and(|end| *end < global_at) {
            state.boundaries.pop_first();
        }
        if let Some(end) = push_end(bytes, at) {
            state.boundaries.insert(base.saturating_add(end));
            state
                .boundaries
                .insert(base.saturating_add(skip_memo(bytes, end)));
        }
        let found = match op {
            b'c' | b'i'
                if global_at >= state.module_line_end || state.boundaries.contains(&global_at) =>
            {
                recover_global(at, &mut module_lines, &mut name_lines, &mut work).map(
                    |(global, module_end)| {
                        state.module_line_end = base.saturating_add(module_end);
                        (at, global)
                    },
                )
            }
            0x8c | b'X' | b'U' | b'T' | 0x8d => recover_stack_global(bytes, at, &mut work),
            _ => None,
        };
        if matches!(op, b'c' | b'i' | 0x8c | b'X' | b'U' | b'T' | 0x8d)
            && !budget.charge_n(1 + (work / 8) as u64)
        {
            return false;
        }
        if let Some((offset, global)) = found {
            let opcode = bytes.get(offset).map_or("?", |op| opcode_name(*op));
            let class = classify_qualified(&global.qualified());
            let imported = ImportedGlobal {
                global,
                class,
                offset: base.saturating_add(offset) as u64,
                opcode,
                via: Via::Recovery,
            };
            if !inner.add_global(imported, limits.max_globals) {
                return false;
            }
        }
        at = at.saturating_add(1);
    }
    true
}

/// Finds runs of bytes that may belong to a dotted identifier, for queries whose start only
/// moves forward: each byte is looked at once, whatever the number of queries.
struct Runs<'a> {
    bytes: &'a [u8],
    from: usize,
    end: usize,
}

impl<'a> Runs<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Runs {
            bytes,
            from: 0,
            end: 0,
        }
    }

    /// The first offset at or after `from` whose byte cannot be part of a dotted identifier.
    fn run_end(&mut self, from: usize) -> usize {
        if from < self.from || from > self.end {
            self.end = from;
        }
        self.from = from;
        while let Some(&byte) = self.bytes.get(self.end) {
            if !(byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.' || byte >= 0x80) {
                break;
            }
            self.end = self.end.saturating_add(1);
        }
        self.end
    }

    /// A `\n`-terminated dotted identifier of bounded length at `at`, and where the next line
    /// begins; `work` grows by the bytes validated.
    fn line(&mut self, at: usize, work: &mut usize) -> Option<(&'a str, usize)> {
        let end = self.run_end(at);
        let length = end.checked_sub(at)?;
        if length == 0 || length > MAX_RECOVERY_LINE || self.bytes.get(end) != Some(&b'\n') {
            return None;
        }
        *work = work.saturating_add(length);
        let text = std::str::from_utf8(self.bytes.get(at..end)?).ok()?;
        is_dotted_identifier(text).then_some((text, end.checked_add(1)?))
    }
}

/// GLOBAL or INST at `at` with two identifier lines, and where its module line ends.
fn recover_global(
    at: usize,
    module_lines: &mut Runs<'_>,
    name_lines: &mut Runs<'_>,
    work: &mut usize,
) -> Option<(Global, usize)> {
    let (module, next) = module_lines.line(at.checked_add(1)?, work)?;
    let (name, _) = name_lines.line(next, work)?;
    Some((make_global(module.to_owned(), name.to_owned(), 2).0, next))
}

fn recover_stack_global(bytes: &[u8], at: usize, work: &mut usize) -> Option<(usize, Global)> {
    let (module, next) = recovery_string(bytes, at, work)?;
    let (name, next) = recovery_string(bytes, skip_memo(bytes, next), work)?;
    let op_at = skip_memo(bytes, next);
    (bytes.get(op_at) == Some(&0x93))
        .then(|| (op_at, make_global(module.to_owned(), name.to_owned(), 2).0))
}

/// A short string push (SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, SHORT_BINSTRING,
/// BINSTRING) holding a dotted identifier, and where the next opcode begins.
fn recovery_string<'a>(bytes: &'a [u8], at: usize, work: &mut usize) -> Option<(&'a str, usize)> {
    let op = *bytes.get(at)?;
    let size_bytes = match op {
        0x8c | b'U' => 1,
        b'X' | b'T' => 4,
        0x8d => 8,
        _ => return None,
    };
    let size_at = at.checked_add(1)?;
    let size_field = bytes.get(size_at..size_at.checked_add(size_bytes)?)?;
    let size = size_field
        .iter()
        .rev()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
    let size = usize::try_from(size)
        .ok()
        .filter(|size| *size <= MAX_RECOVERY_LINE)?;
    let text_at = size_at.checked_add(size_bytes)?;
    let end = text_at.checked_add(size)?;
    *work = work.saturating_add(size);
    let text = std::str::from_utf8(bytes.get(text_at..end)?).ok()?;
    is_dotted_identifier(text).then_some((text, end))
}

/// Where a string or bytes push at `at` with an argument of at most [`MAX_RECOVERY_LINE`]
/// bytes ends, if there is one (its content is not checked).
fn push_end(bytes: &[u8], at: usize) -> Option<usize> {
    let width = match *bytes.get(at)? {
        0x8c | b'U' | b'C' => 1,
        b'X' | b'T' | b'B' => 4,
        0x8d | 0x8e | 0x96 => 8,
        _ => return None,
    };
    let size_at = at.checked_add(1)?;
    let content_at = size_at.checked_add(width)?;
    let size = bytes
        .get(size_at..content_at)?
        .iter()
        .rev()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
    let size = usize::try_from(size)
        .ok()
        .filter(|size| *size <= MAX_RECOVERY_LINE)?;
    let end = content_at.checked_add(size)?;
    (end <= bytes.len()).then_some(end)
}

/// Skips one MEMOIZE, BINPUT or LONG_BINPUT at `at`, if there is one.
fn skip_memo(bytes: &[u8], at: usize) -> usize {
    let length = match bytes.get(at) {
        Some(0x94) => 1,
        Some(b'q') => 2,
        Some(b'r') => 5,
        _ => 0,
    };
    at.saturating_add(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_helpers() {
        let recover_global = |bytes: &[u8], at: usize| {
            let mut work = 0;
            recover_global(at, &mut Runs::new(bytes), &mut Runs::new(bytes), &mut work)
        };
        assert_eq!(
            recover_global(b"cos\nsystem\n", 0),
            Some((
                Global {
                    module: "os".into(),
                    name: "system".into(),
                    spelled: None,
                },
                4
            ))
        );
        assert_eq!(recover_global(b"call me\nmaybe\n", 0), None);
        let bytes = b"\x8c\x02os\x94\x8c\x06system\x94\x93";
        let (at, global) = recover_stack_global(bytes, 0, &mut 0).unwrap();
        assert_eq!(at, bytes.len() - 1);
        assert_eq!(global.qualified(), "os.system");
    }
}
