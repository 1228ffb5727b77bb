//! The pickle opcode emulator: one pass over each stream, the way CPython's C unpickler reads
//! it, with a stack, a mark stack and a memo of cheap shared values, plus the driver that
//! chains streams, follows nested pickles and runs the recovery scan.
//!
//! Values are either a short string (all that decides which global STACK_GLOBAL names) or an
//! opaque "other"; containers are never built, and memo entries and stack items are shared by
//! `Rc`, so aliasing tricks (memo "billion laughs") cost one step per opcode. Every read checks
//! its length against the remaining input before anything is allocated. This module must not
//! decide what is dangerous (that is the allowlist) nor build public findings beyond [`Note`].

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use memchr::memchr;

use super::allowlist::classify_qualified;
use super::{End, Global, ImportedGlobal, PickleLimits, Via, MAX_NESTING_CAP};
use crate::finding::{quote, Code, Finding};

/// The highest protocol CPython knows; PROTO with a larger argument is an error.
const HIGHEST_PROTOCOL: u8 = 5;
/// Strings longer than this are kept as opaque values: no module or attribute name is this
/// long, and STACK_GLOBAL on an opaque value is recorded as the unknown global `?.?`.
const MAX_TRACKED_STR: usize = 1024;
/// Names longer than this are shortened when recorded (they are never allowlisted anyway).
const MAX_NAME_BYTES: usize = 1024;
/// The shortest constant worth analysing as a nested pickle (`c` + `a\n` + `b\n`).
const MIN_NESTED: usize = 5;
/// The longest line the recovery scan accepts as a module or attribute name.
const MAX_RECOVERY_LINE: usize = 256;
/// Frame violations reported per stream before the rest are only counted by the first.
const MAX_FRAME_NOTES: usize = 8;

/// The opcode and time budget shared by a whole analysis, nested pickles included.
pub(super) struct Budget {
    used: u64,
    max: u64,
    deadline: Option<Instant>,
    tripped: Option<String>,
}

impl Budget {
    pub(super) fn new(limits: &PickleLimits) -> Self {
        Budget {
            used: 0,
            max: limits.max_opcodes,
            deadline: limits.deadline,
            tripped: None,
        }
    }

    /// Spends one unit of work (one opcode); false once the budget or deadline is exhausted.
    fn charge(&mut self) -> bool {
        self.charge_n(1)
    }

    fn charge_n(&mut self, units: u64) -> bool {
        if self.tripped.is_some() {
            return false;
        }
        let before = self.used;
        self.used = self.used.saturating_add(units);
        if self.used > self.max {
            self.tripped = Some(format!(
                "analysis stopped after {} opcodes, the limit",
                self.max
            ));
            return false;
        }
        if before / 4096 != self.used / 4096 {
            if let Some(deadline) = self.deadline {
                if Instant::now() >= deadline {
                    self.tripped = Some("analysis stopped at its deadline".to_owned());
                    return false;
                }
            }
        }
        true
    }

    /// Why the budget ran out, if it did.
    pub(super) fn tripped(&self) -> Option<String> {
        self.tripped.clone()
    }

    fn is_tripped(&self) -> bool {
        self.tripped.is_some()
    }
}

/// A finding before it is placed: offsets stay numbers so nested pickles can be re-based.
pub(super) struct Note {
    code: Code,
    message: String,
    offset: u64,
    global: Option<String>,
}

impl Note {
    fn new(code: Code, offset: u64, message: String) -> Self {
        Note {
            code,
            message,
            offset,
            global: None,
        }
    }

    pub(super) fn into_finding(self) -> Finding {
        let finding = Finding::new(self.code, self.message).at(format!("@{}", self.offset));
        match self.global {
            Some(global) => finding.with_global(global),
            None => finding,
        }
    }
}

/// What [`analyse_bytes`] found; [`super::analyse`] turns it into the public analysis.
pub(super) struct Inner {
    pub(super) is_pickle: bool,
    pub(super) streams: u32,
    pub(super) protocol: Option<u8>,
    pub(super) globals: Vec<ImportedGlobal>,
    pub(super) calls: u64,
    pub(super) consumed: u64,
    pub(super) end: End,
    pub(super) notes: Vec<Note>,
    seen: HashSet<String>,
}

impl Inner {
    fn empty() -> Self {
        Inner {
            is_pickle: false,
            streams: 0,
            protocol: None,
            globals: Vec::new(),
            calls: 0,
            consumed: 0,
            end: End::Truncated { offset: 0 },
            notes: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Takes a recognised stream in; false if its globals exceed the limit.
    fn absorb(&mut self, out: StreamOut, len: usize, max_globals: usize) -> bool {
        self.is_pickle = true;
        self.streams = self.streams.saturating_add(1);
        self.protocol = self.protocol.max(out.protocol);
        self.calls = self.calls.saturating_add(out.calls);
        self.end = out.end(len);
        self.consumed = out.end_pos as u64;
        self.notes.extend(out.notes);
        out.globals
            .into_iter()
            .all(|imported| self.add_global(imported, max_globals))
    }

    /// Adds a global unless one of that name is already known; false if that exceeds the
    /// globals limit (a limit note has then been added).
    fn add_global(&mut self, imported: ImportedGlobal, max: usize) -> bool {
        let qualified = imported.global.qualified();
        if self.seen.contains(&qualified) {
            return true;
        }
        if self.seen.len() >= max {
            self.notes.push(Note::new(
                Code::PickleLimitExceeded,
                imported.offset,
                format!("more than {max} distinct globals"),
            ));
            return false;
        }
        self.seen.insert(qualified);
        self.globals.push(imported);
        true
    }

    fn has_limit_or_extension(&self) -> bool {
        self.notes.iter().any(|note| {
            matches!(
                note.code,
                Code::PickleLimitExceeded | Code::PickleExtensionCode
            )
        })
    }
}

/// Analyses `bytes` as successive pickle streams (with a fresh memo each, as successive
/// `pickle.load` calls have), following nested pickles up to the nesting limit.
pub(super) fn analyse_bytes(
    bytes: &[u8],
    limits: &PickleLimits,
    budget: &mut Budget,
    depth: u32,
) -> Inner {
    let mut inner = Inner::empty();
    let max_streams = limits.max_streams.max(1);
    let mut pos = 0usize;
    loop {
        let out = Stream::new(bytes, pos, limits, budget, depth).run();
        let recognised = if inner.streams == 0 {
            out.is_pickle()
        } else {
            out.is_later_pickle()
        };
        if !recognised {
            if inner.streams == 0 {
                inner.end = out.end(bytes.len());
                if let Some(offset) = out.broken_after_proto() {
                    // Binary data can start like PROTO (a safetensors header length of 640 is
                    // `80 02 00 ..`); it is a pickle only if imports are hidden after it.
                    let mut trial = Inner::empty();
                    recover(bytes, offset, limits, budget, &mut trial);
                    if !trial.globals.is_empty() {
                        inner.absorb(out, bytes.len(), limits.max_globals);
                        inner.notes.extend(trial.notes);
                        for imported in trial.globals {
                            if !inner.add_global(imported, limits.max_globals) {
                                break;
                            }
                        }
                    }
                }
            }
            // After a recognised stream, what does not parse as a pickle is raw data (legacy
            // torch files put storage bytes there), not an error.
            break;
        }
        if inner.streams >= max_streams {
            inner.notes.push(Note::new(
                Code::PickleLimitExceeded,
                pos as u64,
                format!("more than {max_streams} pickle streams"),
            ));
            break;
        }
        let stop = out.stop;
        if !inner.absorb(out, bytes.len(), limits.max_globals) {
            break;
        }
        match stop {
            Stop::Complete { .. } if inner.consumed < bytes.len() as u64 => {
                pos = usize::try_from(inner.consumed).unwrap_or(usize::MAX);
            }
            Stop::Malformed { offset } => {
                recover(bytes, offset, limits, budget, &mut inner);
                break;
            }
            Stop::Complete { .. } | Stop::Truncated | Stop::Limit { .. } => break,
        }
    }
    inner
}

/// How one stream stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// STOP was executed; `single` says exactly one value was on the stack and no mark open.
    Complete { single: bool },
    /// The input ended inside the stream.
    Truncated,
    /// CPython would raise at `offset`.
    Malformed { offset: usize },
    /// An analysis limit was reached at `offset`.
    Limit { offset: usize },
}

struct StreamOut {
    start: usize,
    stop: Stop,
    /// Where a byte that is not an opcode stopped the stream.
    invalid_opcode: Option<usize>,
    end_pos: usize,
    starts_with_proto: bool,
    named_global: bool,
    protocol: Option<u8>,
    globals: Vec<ImportedGlobal>,
    calls: u64,
    notes: Vec<Note>,
}

impl StreamOut {
    /// The `is_pickle` rules, applied to one stream.
    fn is_pickle(&self) -> bool {
        (self.starts_with_proto && self.broken_after_proto().is_none())
            || self.named_global
            || matches!(
                self.stop,
                Stop::Complete { single: true } | Stop::Limit { .. }
            )
    }

    /// Where the stream broke if it did so right after its leading PROTO.
    fn broken_after_proto(&self) -> Option<usize> {
        match self.stop {
            Stop::Malformed { offset }
                if self.starts_with_proto
                    && self.invalid_opcode == Some(self.start.saturating_add(2)) =>
            {
                Some(offset)
            }
            _ => None,
        }
    }

    /// After a recognised stream, more evidence than a PROTO is needed: legacy torch files
    /// follow their pickles with storage sizes, and a size of 128 elements (`80 00 ..`) reads
    /// as PROTO 0. A later stream counts if it reaches STOP, imports anything, or runs into
    /// a limit.
    fn is_later_pickle(&self) -> bool {
        !self.globals.is_empty() || matches!(self.stop, Stop::Complete { .. } | Stop::Limit { .. })
    }

    fn end(&self, len: usize) -> End {
        match self.stop {
            Stop::Complete { .. } => End::Complete,
            Stop::Truncated => End::Truncated { offset: len as u64 },
            Stop::Malformed { offset } | Stop::Limit { offset } => End::Invalid {
                offset: offset as u64,
            },
        }
    }
}

/// A stack or memo value: all the emulator needs to know about a Python object.
#[derive(Debug, Clone)]
enum Value {
    Str(Rc<str>),
    Other,
}

/// Where a nested pickle's offsets land in the outer bytes.
#[derive(Debug, Clone, Copy)]
enum Rebase {
    /// The constant's content is the nested pickle itself, starting at this offset.
    Linear(u64),
    /// The content had to be decoded; everything is placed at the constant's opcode.
    Fixed(u64),
}

impl Rebase {
    fn map(self, inner: u64) -> u64 {
        match self {
            Rebase::Linear(base) => base.saturating_add(inner),
            Rebase::Fixed(at) => at,
        }
    }
}

type Step<T> = Result<T, Stop>;

struct Stream<'a, 'c> {
    data: &'a [u8],
    start: usize,
    pos: usize,
    limits: &'c PickleLimits,
    budget: &'c mut Budget,
    depth: u32,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    frame_end: Option<usize>,
    frame_notes: usize,
    invalid_opcode: Option<usize>,
    starts_with_proto: bool,
    named_global: bool,
    protocol: Option<u8>,
    globals: Vec<ImportedGlobal>,
    seen: HashSet<String>,
    calls: u64,
    notes: Vec<Note>,
}

impl<'a, 'c> Stream<'a, 'c> {
    fn new(
        data: &'a [u8],
        start: usize,
        limits: &'c PickleLimits,
        budget: &'c mut Budget,
        depth: u32,
    ) -> Self {
        Stream {
            data,
            start,
            pos: start,
            limits,
            budget,
            depth,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            frame_end: None,
            frame_notes: 0,
            invalid_opcode: None,
            starts_with_proto: false,
            named_global: false,
            protocol: None,
            globals: Vec::new(),
            seen: HashSet::new(),
            calls: 0,
            notes: Vec::new(),
        }
    }

    fn run(mut self) -> StreamOut {
        let stop = loop {
            if !self.budget.charge() {
                break Stop::Limit { offset: self.pos };
            }
            let at = self.pos;
            match self.step(at) {
                Ok(None) => self.check_frame(at),
                Ok(Some(stop)) | Err(stop) => break stop,
            }
        };
        let end_pos = match stop {
            Stop::Complete { .. } => self.pos,
            Stop::Truncated => self.data.len(),
            Stop::Malformed { offset } | Stop::Limit { offset } => offset,
        };
        StreamOut {
            start: self.start,
            stop,
            invalid_opcode: self.invalid_opcode,
            end_pos,
            starts_with_proto: self.starts_with_proto,
            named_global: self.named_global,
            protocol: self.protocol,
            globals: self.globals,
            calls: self.calls,
            notes: self.notes,
        }
    }

    /// Executes the opcode at `at`; `Some` when the stream is complete.
    fn step(&mut self, at: usize) -> Step<Option<Stop>> {
        let Some(&op) = self.data.get(self.pos) else {
            return Err(self.truncated(at, "an opcode"));
        };
        self.pos = self.pos.saturating_add(1);
        let name = opcode_name(op);
        match op {
            b'(' => {
                self.check_room(at)?;
                self.marks.push(self.stack.len());
            }
            b'.' => {
                let single = self.stack.len() == 1 && self.marks.is_empty();
                self.pop(at, name)?;
                return Ok(Some(Stop::Complete { single }));
            }
            b'0' => {
                if self.marks.last() == Some(&self.stack.len()) {
                    // CPython keeps marks apart from objects: POP right after MARK drops it.
                    self.marks.pop();
                } else {
                    self.pop(at, name)?;
                }
            }
            b'1' => {
                self.pop_mark(at, name)?;
            }
            b'2' => {
                let top = self.top(at, name)?;
                self.push(at, top)?;
            }
            b'F' => {
                let line = self.line(at, name)?;
                if !is_float_literal(line) {
                    return Err(self.malformed(
                        at,
                        format!("`FLOAT` argument `{}` is not a float", show(line)),
                    ));
                }
                self.push(at, Value::Other)?;
            }
            b'I' | b'L' => {
                let line = self.line(at, name)?;
                let digits = match line.strip_suffix(b"L") {
                    Some(digits) if op == b'L' => digits,
                    _ => line,
                };
                if !is_int_literal(digits) {
                    return Err(self.malformed(
                        at,
                        format!("`{name}` argument `{}` is not an integer", show(line)),
                    ));
                }
                self.push(at, Value::Other)?;
            }
            b'J' | b'K' | b'M' | b'G' => {
                let size = match op {
                    b'J' => 4,
                    b'K' => 1,
                    b'M' => 2,
                    _ => 8,
                };
                self.take(at, name, size)?;
                self.push(at, Value::Other)?;
            }
            0x8a | 0x8b => {
                let size = if op == 0x8a {
                    self.uint(at, name, 1)?
                } else {
                    self.signed_len(at, name)?
                };
                self.take_len(at, name, size)?;
                self.push(at, Value::Other)?;
            }
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f | 0x97 => {
                self.push(at, Value::Other)?;
            }
            b'P' => {
                let line = self.line(at, name)?;
                if !line.is_ascii() {
                    return Err(self.malformed(at, "`PERSID` argument is not ASCII".to_owned()));
                }
                self.push(at, Value::Other)?;
            }
            b'Q' => {
                self.pop(at, name)?;
                self.push(at, Value::Other)?;
            }
            b'R' | 0x81 => {
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.call(at, Value::Other)?;
            }
            0x92 => {
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.call(at, Value::Other)?;
            }
            b'b' => {
                self.pop(at, name)?;
                self.top(at, name)?;
                self.calls = self.calls.saturating_add(1);
            }
            b'S' => self.load_string(at)?,
            b'T' | b'U' => {
                let size = if op == b'T' {
                    self.signed_len(at, name)?
                } else {
                    self.uint(at, name, 1)?
                };
                let content_at = self.pos;
                let content = self.take_len(at, name, size)?;
                self.nested(at, name, content, Rebase::Linear(content_at as u64))?;
                let value = tracked(String::from_utf8_lossy(content));
                self.push(at, value)?;
            }
            b'V' => {
                let line = self.line(at, name)?;
                let Some(text) = decode_raw_unicode_escape(line) else {
                    return Err(
                        self.malformed(at, "`UNICODE` argument has a bad \\u escape".to_owned())
                    );
                };
                self.nested_text(at, name, &text, None)?;
                self.push(at, tracked(Cow::Owned(text)))?;
            }
            b'X' | 0x8c | 0x8d => {
                let size = match op {
                    b'X' => self.uint(at, name, 4)?,
                    0x8c => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 8)?,
                };
                let content_at = self.pos;
                let content = self.take_len(at, name, size)?;
                let Some(text) = decode_utf8_surrogatepass(content) else {
                    return Err(self.malformed(at, format!("`{name}` argument is not UTF-8")));
                };
                self.nested_text(at, name, &text, Some(content_at))?;
                self.push(at, tracked(text))?;
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let size = match op {
                    b'B' => self.uint(at, name, 4)?,
                    b'C' => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 8)?,
                };
                let content_at = self.pos;
                let content = self.take_len(at, name, size)?;
                self.nested(at, name, content, Rebase::Linear(content_at as u64))?;
                self.push(at, Value::Other)?;
            }
            b'a' => {
                self.pop(at, name)?;
                self.top(at, name)?;
            }
            b'e' | b'u' | 0x90 => {
                let count = self.pop_mark(at, name)?;
                if op == b'u' && count % 2 != 0 {
                    return Err(self.malformed(at, "odd number of items for `SETITEMS`".to_owned()));
                }
                self.top(at, name)?;
            }
            b's' => {
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.top(at, name)?;
            }
            b'd' | b'l' | b't' | 0x91 => {
                let count = self.pop_mark(at, name)?;
                if op == b'd' && count % 2 != 0 {
                    return Err(self.malformed(at, "odd number of items for `DICT`".to_owned()));
                }
                self.push(at, Value::Other)?;
            }
            0x85..=0x87 => {
                for _ in 0..(op - 0x84) {
                    self.pop(at, name)?;
                }
                self.push(at, Value::Other)?;
            }
            b'c' | b'i' => self.load_global(at, op)?,
            0x93 => {
                let attribute = self.pop(at, name)?;
                let module = self.pop(at, name)?;
                // Operands that are not known strings may still be strings at run time (a call
                // result), so they are recorded as unknown rather than treated as an error.
                let known = |value: Value| match value {
                    Value::Str(text) => text.to_string(),
                    Value::Other => "?".to_owned(),
                };
                self.record(at, name, make_global(known(module), known(attribute)))?;
                self.push(at, Value::Other)?;
            }
            0x82..=0x84 => {
                let code = match op {
                    0x82 => self.uint(at, name, 1)?,
                    0x83 => self.uint(at, name, 2)?,
                    _ => self.uint(at, name, 4)?,
                };
                if code == 0 {
                    return Err(self.malformed(at, format!("`{name}` code is 0")));
                }
                let global = Global {
                    module: "copyreg".to_owned(),
                    name: format!("extension:{code}"),
                    written_module: None,
                };
                let qualified = global.qualified();
                if self.record(at, name, global)? {
                    let mut note = Note::new(
                        Code::PickleExtensionCode,
                        at as u64,
                        format!("uses extension-registry code {code} (`{name}`), which imports whatever global is registered under it"),
                    );
                    note.global = Some(qualified);
                    self.notes.push(note);
                }
                self.push(at, Value::Other)?;
            }
            b'g' | b'h' | b'j' => {
                let key = match op {
                    b'g' => {
                        let line = self.line(at, name)?;
                        self.memo_key(at, name, line)?
                    }
                    b'h' => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 4)?,
                };
                let Some(value) = self.memo.get(&key).cloned() else {
                    return Err(self.malformed(
                        at,
                        format!("`{name}` of memo key {key}, which was never stored"),
                    ));
                };
                self.push(at, value)?;
            }
            b'p' | b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'p' => {
                        let line = self.line(at, name)?;
                        self.memo_key(at, name, line)?
                    }
                    b'q' => self.uint(at, name, 1)?,
                    b'r' => self.uint(at, name, 4)?,
                    _ => self.memo.len() as u64,
                };
                let top = self.top(at, name)?;
                if !self.memo.contains_key(&key) && self.memo.len() >= self.limits.max_memo {
                    return Err(self.limit(
                        at,
                        format!("more than {} memo entries", self.limits.max_memo),
                    ));
                }
                self.memo.insert(key, top);
            }
            b'o' => {
                if self.pop_mark(at, name)? == 0 {
                    return Err(self.malformed(at, "`OBJ` without a class".to_owned()));
                }
                self.call(at, Value::Other)?;
            }
            0x80 => {
                let protocol = self.uint(at, name, 1)?;
                let Some(protocol) = u8::try_from(protocol)
                    .ok()
                    .filter(|p| *p <= HIGHEST_PROTOCOL)
                else {
                    return Err(
                        self.malformed(at, format!("unsupported pickle protocol {protocol}"))
                    );
                };
                if at == self.start {
                    self.starts_with_proto = true;
                }
                self.protocol = self.protocol.max(Some(protocol));
            }
            0x95 => self.load_frame(at)?,
            0x98 => {
                self.top(at, name)?;
            }
            _ => {
                self.invalid_opcode = Some(at);
                return Err(self.malformed(at, format!("invalid opcode 0x{op:02x}")));
            }
        }
        Ok(None)
    }

    /// GLOBAL (`c`) and INST (`i`): two newline-terminated names, UTF-8 for GLOBAL and ASCII
    /// for INST, as in CPython's `load_global` and `load_inst`.
    fn load_global(&mut self, at: usize, op: u8) -> Step<()> {
        let name = opcode_name(op);
        let module = self.name_line(at, op)?;
        let attribute = self.name_line(at, op)?;
        self.record(at, name, make_global(module, attribute))?;
        if op == b'i' {
            self.pop_mark(at, name)?;
            self.call(at, Value::Other)?;
        } else {
            self.push(at, Value::Other)?;
        }
        Ok(())
    }

    fn name_line(&mut self, at: usize, op: u8) -> Step<String> {
        let name = opcode_name(op);
        let line = self.line(at, name)?;
        if line.is_empty() {
            return Err(self.malformed(at, format!("`{name}` has an empty name line")));
        }
        if op == b'i' && !line.is_ascii() {
            return Err(self.malformed(at, "`INST` name is not ASCII".to_owned()));
        }
        match std::str::from_utf8(line) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(self.malformed(at, format!("`{name}` name is not UTF-8"))),
        }
    }

    /// STRING (`S`): a quoted line with Python bytes escapes.
    fn load_string(&mut self, at: usize) -> Step<()> {
        let line = self.line(at, "STRING")?;
        let quoted = match line {
            [first, inner @ .., last] if first == last && matches!(first, b'\'' | b'"') => inner,
            _ => {
                return Err(self.malformed(at, "the `STRING` argument must be quoted".to_owned()));
            }
        };
        let Some(content) = decode_bytes_escape(quoted) else {
            return Err(self.malformed(at, "`STRING` argument has a bad escape".to_owned()));
        };
        self.nested(at, "STRING", &content, Rebase::Fixed(at as u64))?;
        self.push(at, tracked(String::from_utf8_lossy(&content)))
    }

    /// FRAME: CPython's C unpickler only checks that the frame's bytes exist and then reads on
    /// linearly, while the Python unpickler refuses opcodes that straddle a frame's end; a
    /// pickle that the two read differently is reported.
    fn load_frame(&mut self, at: usize) -> Step<()> {
        let length = self.uint(at, "FRAME", 8)?;
        if let Some(end) = self.frame_end {
            if at < end {
                self.frame_note(
                    at,
                    format!("a new frame starts before the current frame ends at @{end}"),
                );
            }
        }
        let remaining = self.data.len().saturating_sub(self.pos) as u64;
        if length > remaining {
            self.frame_note(at, format!("a frame of {length} bytes runs past the end of the input ({remaining} bytes remain)"));
        }
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        self.frame_end = Some(self.pos.saturating_add(length));
        Ok(())
    }

    fn check_frame(&mut self, at: usize) {
        if let Some(end) = self.frame_end {
            if at < end && self.pos > end {
                let name = self.data.get(at).map_or("?", |op| opcode_name(*op));
                self.frame_note(
                    at,
                    format!("`{name}` straddles the end of its frame at @{end}"),
                );
            }
            if self.pos >= end {
                self.frame_end = None;
            }
        }
    }

    fn frame_note(&mut self, at: usize, message: String) {
        if self.frame_notes < MAX_FRAME_NOTES {
            self.notes
                .push(Note::new(Code::PickleFrameViolation, at as u64, message));
        }
        self.frame_notes = self.frame_notes.saturating_add(1);
    }

    /// Records an imported global (once per name in this stream); true if it is new.
    fn record(&mut self, at: usize, opcode: &'static str, global: Global) -> Step<bool> {
        if is_dotted_identifier(&global.module) && is_dotted_identifier(&global.name) {
            self.named_global = true;
        }
        self.record_as(at as u64, opcode, global, Via::Stream)
    }

    fn record_as(
        &mut self,
        offset: u64,
        opcode: &'static str,
        global: Global,
        via: Via,
    ) -> Step<bool> {
        let qualified = global.qualified();
        if self.seen.contains(&qualified) {
            return Ok(false);
        }
        if self.seen.len() >= self.limits.max_globals {
            let at = usize::try_from(offset).unwrap_or(self.pos);
            return Err(self.limit(
                at,
                format!("more than {} distinct globals", self.limits.max_globals),
            ));
        }
        let class = classify_qualified(&qualified);
        self.seen.insert(qualified);
        self.globals.push(ImportedGlobal {
            global,
            class,
            offset,
            opcode,
            via,
        });
        Ok(true)
    }

    /// Analyses a bytes constant as a nested pickle and merges what it imports.
    fn nested(&mut self, at: usize, op: &'static str, content: &[u8], rebase: Rebase) -> Step<()> {
        let Some(&first) = content.first() else {
            return Ok(());
        };
        if content.len() < MIN_NESTED || !is_opcode(first) {
            return Ok(());
        }
        let starts_with_proto = matches!(content, [0x80, p, ..] if *p <= HIGHEST_PROTOCOL);
        let cap = self.limits.max_nesting.min(MAX_NESTING_CAP);
        if self.depth >= cap {
            if starts_with_proto {
                self.notes.push(Note::new(
                    Code::PickleLimitExceeded,
                    at as u64,
                    format!("`{op}` holds a pickle nested more than {cap} deep, not analysed"),
                ));
            }
            return Ok(());
        }
        let depth = self.depth.saturating_add(1);
        let inner = analyse_bytes(content, self.limits, self.budget, depth);
        let tripped = self.budget.is_tripped();
        let counts = inner.is_pickle
            && (!inner.globals.is_empty()
                || inner.has_limit_or_extension()
                || tripped
                || (starts_with_proto && inner.end == End::Complete));
        if counts {
            self.notes.push(Note::new(
                Code::PickleNested,
                at as u64,
                format!("a `{op}` constant holds a nested pickle"),
            ));
            self.calls = self.calls.saturating_add(inner.calls);
            for mut note in inner.notes {
                note.offset = rebase.map(note.offset);
                self.notes.push(note);
            }
            for imported in inner.globals {
                let offset = rebase.map(imported.offset);
                self.record_as(offset, imported.opcode, imported.global, Via::Nested)?;
            }
        }
        if tripped {
            return Err(Stop::Limit { offset: at });
        }
        Ok(())
    }

    /// A text constant as a nested pickle: protocols < 3 carry bytes as latin-1 text (for
    /// `_codecs.encode`), so text that fits latin-1 is analysed as those bytes.
    fn nested_text(
        &mut self,
        at: usize,
        op: &'static str,
        text: &str,
        content_at: Option<usize>,
    ) -> Step<()> {
        let Some(first) = text.chars().next() else {
            return Ok(());
        };
        if u8::try_from(u32::from(first)).map_or(true, |byte| !is_opcode(byte)) {
            return Ok(());
        }
        if text.is_ascii() {
            let rebase = match content_at {
                Some(offset) => Rebase::Linear(offset as u64),
                None => Rebase::Fixed(at as u64),
            };
            return self.nested(at, op, text.as_bytes(), rebase);
        }
        let latin1: Option<Vec<u8>> = text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect();
        match latin1 {
            Some(bytes) => self.nested(at, op, &bytes, Rebase::Fixed(at as u64)),
            None => self.nested(at, op, text.as_bytes(), Rebase::Fixed(at as u64)),
        }
    }

    // ----- stack

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn check_room(&mut self, at: usize) -> Step<()> {
        if self.stack.len().saturating_add(self.marks.len()) >= self.limits.max_stack {
            return Err(self.limit(
                at,
                format!("more than {} stack items", self.limits.max_stack),
            ));
        }
        Ok(())
    }

    fn push(&mut self, at: usize, value: Value) -> Step<()> {
        self.check_room(at)?;
        self.stack.push(value);
        Ok(())
    }

    /// Pushes a call's result and counts the call.
    fn call(&mut self, at: usize, result: Value) -> Step<()> {
        self.calls = self.calls.saturating_add(1);
        self.push(at, result)
    }

    fn pop(&mut self, at: usize, op: &str) -> Step<Value> {
        if self.stack.len() <= self.fence() {
            return Err(self.malformed(at, format!("stack underflow at `{op}`")));
        }
        match self.stack.pop() {
            Some(value) => Ok(value),
            None => Err(self.malformed(at, format!("stack underflow at `{op}`"))),
        }
    }

    fn top(&mut self, at: usize, op: &str) -> Step<Value> {
        match self.stack.last() {
            Some(value) if self.stack.len() > self.fence() => Ok(value.clone()),
            _ => Err(self.malformed(at, format!("stack underflow at `{op}`"))),
        }
    }

    /// Drops everything above the last MARK and the mark itself; returns how many items.
    fn pop_mark(&mut self, at: usize, op: &str) -> Step<usize> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.malformed(at, format!("`{op}` without a MARK")));
        };
        let count = self.stack.len().saturating_sub(mark);
        self.stack.truncate(mark);
        Ok(count)
    }

    // ----- reading

    fn take(&mut self, at: usize, op: &str, size: usize) -> Step<&'a [u8]> {
        let data = self.data;
        let end = self.pos.checked_add(size);
        match end.and_then(|end| data.get(self.pos..end)) {
            Some(bytes) => {
                self.pos = self.pos.saturating_add(size);
                Ok(bytes)
            }
            None => Err(self.truncated(at, op)),
        }
    }

    /// Reads a length-prefixed argument, checking the length against the input first.
    fn take_len(&mut self, at: usize, op: &str, size: u64) -> Step<&'a [u8]> {
        if size > isize::MAX as u64 {
            return Err(self.malformed(
                at,
                format!("`{op}` length {size} exceeds the largest possible object"),
            ));
        }
        match usize::try_from(size) {
            Ok(size) => self.take(at, op, size),
            Err(_) => Err(self.truncated(at, op)),
        }
    }

    /// A little-endian unsigned integer of `size` (1..=8) bytes.
    fn uint(&mut self, at: usize, op: &str, size: usize) -> Step<u64> {
        let bytes = self.take(at, op, size)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
    }

    /// A 4-byte signed length (BINSTRING, LONG4), which CPython refuses when negative.
    fn signed_len(&mut self, at: usize, op: &str) -> Step<u64> {
        let raw = self.uint(at, op, 4)?;
        let value = i32::from_le_bytes(u32::try_from(raw).unwrap_or(u32::MAX).to_le_bytes());
        match u64::try_from(value) {
            Ok(size) => Ok(size),
            Err(_) => Err(self.malformed(at, format!("`{op}` has a negative length"))),
        }
    }

    /// A `\n`-terminated argument, without its newline.
    fn line(&mut self, at: usize, op: &str) -> Step<&'a [u8]> {
        let data = self.data;
        let rest = data.get(self.pos..).unwrap_or_default();
        match memchr(b'\n', rest) {
            Some(length) => {
                let line = rest.get(..length).unwrap_or_default();
                self.pos = self.pos.saturating_add(length).saturating_add(1);
                Ok(line)
            }
            None => Err(self.truncated(at, op)),
        }
    }

    fn memo_key(&mut self, at: usize, op: &str, line: &[u8]) -> Step<u64> {
        match parse_decimal(line) {
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

    // ----- stopping

    fn malformed(&mut self, at: usize, message: String) -> Stop {
        self.notes
            .push(Note::new(Code::PickleMalformed, at as u64, message));
        Stop::Malformed { offset: at }
    }

    fn truncated(&mut self, at: usize, what: &str) -> Stop {
        let message = if at == self.pos && what == "an opcode" {
            "the input ends before the pickle's STOP".to_owned()
        } else {
            format!("the input ends inside `{what}`")
        };
        self.notes
            .push(Note::new(Code::PickleMalformed, at as u64, message));
        Stop::Truncated
    }

    fn limit(&mut self, at: usize, message: String) -> Stop {
        self.notes
            .push(Note::new(Code::PickleLimitExceeded, at as u64, message));
        Stop::Limit { offset: at }
    }
}

/// One bounded, linear pass past a malformed point for the imports a tolerant loader could
/// still reach: GLOBAL/INST with two identifier lines, and STACK_GLOBAL right after two short
/// string pushes (each optionally memoised). Work beyond one step per byte is charged to the
/// budget, so hostile filler ends in a limit finding rather than a long scan.
fn recover(
    bytes: &[u8],
    from: usize,
    limits: &PickleLimits,
    budget: &mut Budget,
    inner: &mut Inner,
) {
    let mut module_lines = Runs::new(bytes);
    let mut name_lines = Runs::new(bytes);
    // A `c` or `i` inside the module line of a global just recovered usually yields only a
    // suffix of it (`builtins` -> `ltins`), so such candidates are skipped, unless a string
    // push ends right there (`X` `intercept_` then `cos\nsystem\n`), where a real opcode may
    // begin. Candidates in the name line are always tried, so a decoy global (reported
    // itself) cannot hide the one that follows it.
    let mut module_line_end = from;
    let mut boundaries = BTreeSet::new();
    let mut at = from;
    while let Some(&op) = bytes.get(at) {
        let mut work = 0usize;
        while boundaries.first().is_some_and(|end| *end < at) {
            boundaries.pop_first();
        }
        if let Some(end) = push_end(bytes, at) {
            boundaries.insert(end);
            boundaries.insert(skip_memo(bytes, end));
        }
        let found = match op {
            b'c' | b'i' if at >= module_line_end || boundaries.contains(&at) => {
                recover_global(at, &mut module_lines, &mut name_lines, &mut work).map(
                    |(global, module_end)| {
                        module_line_end = module_end;
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
            return;
        }
        if let Some((offset, global)) = found {
            let opcode = bytes.get(offset).map_or("?", |op| opcode_name(*op));
            let class = classify_qualified(&global.qualified());
            let imported = ImportedGlobal {
                global,
                class,
                offset: offset as u64,
                opcode,
                via: Via::Recovery,
            };
            if !inner.add_global(imported, limits.max_globals) {
                return;
            }
        }
        at = at.saturating_add(1);
    }
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
    Some((make_global(module.to_owned(), name.to_owned()), next))
}

fn recover_stack_global(bytes: &[u8], at: usize, work: &mut usize) -> Option<(usize, Global)> {
    let (module, next) = recovery_string(bytes, at, work)?;
    let (name, next) = recovery_string(bytes, skip_memo(bytes, next), work)?;
    let op_at = skip_memo(bytes, next);
    (bytes.get(op_at) == Some(&0x93))
        .then(|| (op_at, make_global(module.to_owned(), name.to_owned())))
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

/// A global as CPython's `find_class` sees it: `_compat_pickle` maps the two Python 2 module
/// names that matter here, and very long names are shortened (they are never allowlisted).
fn make_global(module: String, name: String) -> Global {
    let (module, written_module) = match module.as_str() {
        "__builtin__" => ("builtins".to_owned(), Some(module)),
        "copy_reg" => ("copyreg".to_owned(), Some(module)),
        _ => (clip(module), None),
    };
    Global {
        module,
        name: clip(name),
        written_module,
    }
}

fn clip(mut text: String) -> String {
    if text.len() > MAX_NAME_BYTES {
        let mut cut = MAX_NAME_BYTES;
        while !text.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Keeps short strings (possible module or attribute names) and makes long ones opaque.
fn tracked(text: Cow<'_, str>) -> Value {
    if text.len() <= MAX_TRACKED_STR {
        Value::Str(Rc::from(text.as_ref()))
    } else {
        Value::Other
    }
}

/// Dotted Python identifiers: `os`, `torch._utils`, `_rebuild_tensor_v2`, `a.b.c`.
pub(super) fn is_dotted_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

fn show(line: &[u8]) -> String {
    quote(&String::from_utf8_lossy(line))
}

/// INT and LONG arguments as CPython's `strtol`/`PyLong_FromString(s, NULL, 0)` read them.
fn is_int_literal(text: &[u8]) -> bool {
    let text = text.trim_ascii();
    let text = match text {
        [b'+' | b'-', rest @ ..] => rest,
        _ => text,
    };
    let (digits, radix) = match text {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', b'o' | b'O', rest @ ..] => (rest, 8),
        [b'0', b'b' | b'B', rest @ ..] => (rest, 2),
        _ => (text, 10),
    };
    digits.first().is_some_and(u8::is_ascii_alphanumeric)
        && digits
            .iter()
            .all(|byte| *byte == b'_' || char::from(*byte).is_digit(radix))
}

/// FLOAT arguments as `PyOS_string_to_double` reads them.
fn is_float_literal(text: &[u8]) -> bool {
    let text = match text {
        [b'+' | b'-', rest @ ..] => rest,
        _ => text,
    };
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_slice(), b"inf" | b"infinity" | b"nan") {
        return true;
    }
    let (mantissa, exponent) = match lower.iter().position(|byte| *byte == b'e') {
        Some(split) => (
            lower.get(..split).unwrap_or_default(),
            lower.get(split + 1..),
        ),
        None => (lower.as_slice(), None),
    };
    let mut dots = 0;
    let mut digits = 0;
    for byte in mantissa {
        match byte {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    let exponent_ok = match exponent {
        None => true,
        Some(exponent) => {
            let exponent = match exponent {
                [b'+' | b'-', rest @ ..] => rest,
                _ => exponent,
            };
            !exponent.is_empty() && exponent.iter().all(u8::is_ascii_digit)
        }
    };
    digits > 0 && dots <= 1 && exponent_ok
}

/// GET/PUT keys: `PyLong_FromString(s, NULL, 10)`, non-negative and within a machine word.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    let text = text.strip_prefix(b"+").unwrap_or(text);
    if text.first().is_none_or(|byte| !byte.is_ascii_digit()) {
        return None;
    }
    let mut value = 0u64;
    for byte in text {
        match byte {
            b'_' => {}
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
            }
            _ => return None,
        }
    }
    (value <= isize::MAX as u64).then_some(value)
}

/// Python bytes-literal escapes, as `PyBytes_DecodeEscape` applies them to STRING arguments.
fn decode_bytes_escape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escaped = bytes.next()?;
        match escaped {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(escaped),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(value.to_le_bytes().first().copied().unwrap_or(0));
            }
            b'x' => {
                let high = char::from(bytes.next()?).to_digit(16)?;
                let low = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(high * 16 + low).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// UNICODE arguments: `raw-unicode-escape`, where only `\uXXXX` and `\UXXXXXXXX` are escapes
/// and every other byte is a latin-1 character.
fn decode_raw_unicode_escape(text: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    while let Some(&byte) = text.get(at) {
        at += 1;
        let digits = match (byte, text.get(at)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => {
                out.push(char::from(byte));
                continue;
            }
        };
        let hex = text.get(at + 1..at + 1 + digits)?;
        let hex = std::str::from_utf8(hex).ok()?;
        let code = u32::from_str_radix(hex, 16).ok()?;
        if code > 0x10ffff || hex.starts_with(['+', '-']) {
            return None;
        }
        // Lone surrogates are legal in Python strings but not in Rust ones.
        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
        at += 1 + digits;
    }
    Some(out)
}

/// UTF-8 as CPython decodes BINUNICODE (`surrogatepass`: encoded surrogates are accepted).
fn decode_utf8_surrogatepass(bytes: &[u8]) -> Option<Cow<'_, str>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0usize;
    let continuation = |index: usize| -> Option<u32> {
        let byte = *bytes.get(index)?;
        (byte & 0xc0 == 0x80).then_some(u32::from(byte & 0x3f))
    };
    while let Some(&lead) = bytes.get(at) {
        let (code, length) = match lead {
            0x00..=0x7f => (u32::from(lead), 1),
            0xc2..=0xdf => ((u32::from(lead & 0x1f) << 6) | continuation(at + 1)?, 2),
            0xe0..=0xef => {
                let code = (u32::from(lead & 0x0f) << 12)
                    | (continuation(at + 1)? << 6)
                    | continuation(at + 2)?;
                if code < 0x800 {
                    return None;
                }
                (code, 3)
            }
            0xf0..=0xf4 => {
                let code = (u32::from(lead & 0x07) << 18)
                    | (continuation(at + 1)? << 12)
                    | (continuation(at + 2)? << 6)
                    | continuation(at + 3)?;
                if !(0x10000..=0x10ffff).contains(&code) {
                    return None;
                }
                (code, 4)
            }
            _ => return None,
        };
        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
        at += length;
    }
    Some(Cow::Owned(out))
}

fn is_opcode(byte: u8) -> bool {
    opcode_name(byte) != "?"
}

/// The pickletools name of an opcode byte, `?` for bytes that are not opcodes.
fn opcode_name(byte: u8) -> &'static str {
    match byte {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_byte_has_one_name() {
        let names: Vec<_> = (0..=255u8).map(opcode_name).filter(|n| *n != "?").collect();
        assert_eq!(names.len(), 68);
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn identifiers() {
        assert!(is_dotted_identifier("os"));
        assert!(is_dotted_identifier("torch._utils._rebuild_tensor_v2"));
        assert!(is_dotted_identifier("módulo"));
        assert!(!is_dotted_identifier(""));
        assert!(!is_dotted_identifier("all me"));
        assert!(!is_dotted_identifier("a..b"));
        assert!(!is_dotted_identifier(".a"));
        assert!(!is_dotted_identifier("1a"));
        assert!(!is_dotted_identifier("?"));
        assert!(!is_dotted_identifier("os\r"));
    }

    #[test]
    fn number_literals() {
        for ok in [&b"1"[..], b"-12", b"01", b"00", b" 7 ", b"0x1f", b"1_000"] {
            assert!(is_int_literal(ok), "{ok:?}");
        }
        for bad in [&b""[..], b"x", b"12abc", b"-", b"0x", b"_1", b"1.5"] {
            assert!(!is_int_literal(bad), "{bad:?}");
        }
        for ok in [
            &b"1.5"[..],
            b"-0.25e-3",
            b"3",
            b"inf",
            b"-NaN",
            b"1e10",
            b".5",
        ] {
            assert!(is_float_literal(ok), "{ok:?}");
        }
        for bad in [&b""[..], b".", b"1.2.3", b"1e", b"abc", b"1 "] {
            assert!(!is_float_literal(bad), "{bad:?}");
        }
        assert_eq!(parse_decimal(b"12"), Some(12));
        assert_eq!(parse_decimal(b" 3 "), Some(3));
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b"99999999999999999999999"), None);
        assert_eq!(parse_decimal(b""), None);
    }

    #[test]
    fn string_escapes_follow_python() {
        assert_eq!(
            decode_bytes_escape(br"a\nb\x41\101\\\'").unwrap(),
            b"a\nbAA\\'"
        );
        assert_eq!(decode_bytes_escape(br"\q").unwrap(), b"\\q");
        assert_eq!(decode_bytes_escape(br"\777").unwrap(), [0xff]);
        assert!(decode_bytes_escape(br"\x4").is_none());
        assert!(decode_bytes_escape(b"\\").is_none());
        assert_eq!(
            decode_raw_unicode_escape(br"os\u0041\\u0042").unwrap(),
            "osA\\B"
        );
        assert_eq!(decode_raw_unicode_escape(b"\xe9").unwrap(), "\u{e9}");
        assert!(decode_raw_unicode_escape(br"\u12").is_none());
        assert!(decode_raw_unicode_escape(br"\UFFFFFFFF").is_none());
    }

    #[test]
    fn utf8_accepts_surrogates_like_surrogatepass() {
        assert_eq!(decode_utf8_surrogatepass(b"os").unwrap(), "os");
        assert_eq!(
            decode_utf8_surrogatepass(b"a\xed\xa0\x80").unwrap(),
            "a\u{fffd}"
        );
        assert!(decode_utf8_surrogatepass(b"\xff").is_none());
        assert!(decode_utf8_surrogatepass(b"\xc0\x80").is_none());
        assert!(decode_utf8_surrogatepass(b"\xe0\x80\x80").is_none());
    }

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
                    written_module: None,
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
