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
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use memchr::memchr;

use super::allowlist::classify_qualified;
use super::recover::recover;
use super::{args, compat};
use super::{End, Global, ImportedGlobal, PickleLimits, Via, MAX_NESTING_CAP};
use crate::finding::{quote, Code, Finding};

/// The highest protocol CPython knows; PROTO with a larger argument is an error.
const HIGHEST_PROTOCOL: u8 = 5;
/// Strings longer than this are kept as opaque values: no module or attribute name is this
/// long, and STACK_GLOBAL on an opaque value is recorded as the unknown global `?.?`.
const MAX_TRACKED_STR: usize = 64 << 10;
/// Text kept for possible names over one stream; past it, strings are known only as strings.
const MAX_TRACKED_TOTAL: usize = 16 << 20;
/// Names longer than this are shortened when recorded (they are never allowlisted anyway).
const MAX_NAME_BYTES: usize = 1024;
/// The shortest constant worth analysing as a nested pickle (`c` + `a\n` + `b\n`).
const MIN_NESTED: usize = 5;
/// How many opcodes prose may happen to form before its accidental import.
const MAX_PROSE_OPS_BEFORE_IMPORT: u32 = 1;
/// joblib's wrapper for an array whose raw bytes follow inline.
const JOBLIB_WRAPPER: &str = "joblib.numpy_pickle.NumpyArrayWrapper";
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

    pub(super) fn charge_n(&mut self, units: u64) -> bool {
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
    /// Said for information only (what the bytes are), not as a problem.
    info: bool,
}

impl Note {
    fn new(code: Code, offset: u64, message: String) -> Self {
        Note {
            code,
            message,
            offset,
            global: None,
            info: false,
        }
    }

    pub(super) fn into_finding(self) -> Finding {
        let mut finding = Finding::new(self.code, self.message).at(format!("@{}", self.offset));
        if self.info {
            finding = finding.with_severity(crate::finding::Severity::Info);
        }
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
    /// Some recognised stream is shaped like a pickle (see [`StreamOut::structural`]).
    pub(super) structural: bool,
    /// The strongest import evidence of the recognised streams.
    pub(super) code: Option<Strength>,
    /// Some import was spelled out whole (not a GLOBAL line cut by the end of the input).
    pub(super) whole_import: bool,
    seen: HashSet<String>,
}

impl Inner {
    pub(super) fn empty() -> Self {
        Inner {
            is_pickle: false,
            streams: 0,
            protocol: None,
            globals: Vec::new(),
            calls: 0,
            consumed: 0,
            end: End::Truncated { offset: 0 },
            notes: Vec::new(),
            structural: false,
            code: None,
            whole_import: false,
            seen: HashSet::new(),
        }
    }

    /// Takes a recognised stream in; false if its globals exceed the limit.
    fn absorb(&mut self, out: StreamOut, len: usize, max_globals: usize) -> bool {
        self.is_pickle = true;
        self.structural |= out.structural();
        self.code = self.code.max(out.code);
        self.whole_import |= out.whole_import;
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
    pub(super) fn add_global(&mut self, imported: ImportedGlobal, max: usize) -> bool {
        let qualified = imported.global.written();
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

    /// Only imports that printable text produces by accident (see [`Strength`]).
    pub(super) fn weak_evidence(&self) -> bool {
        !self.structural && self.code.is_none_or(|strength| strength == Strength::Weak)
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
        let mut out = Stream::new(bytes, pos, limits, budget, depth, Dialect::Linear).run();
        if out.saw_frame {
            for dialect in [Dialect::CFile, Dialect::Python] {
                let other = Stream::new(bytes, pos, limits, budget, depth, dialect).run();
                out.merge(other);
            }
        }
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

/// Which of CPython's readers the emulation follows. They agree except around FRAME, where
/// each reads differently, so a stream with frames is read in all three and their imports
/// are merged: whichever reader reaches an import, the file is code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// The C unpickler on bytes (`pickle.loads`) or on a file with `peek()`: a frame only
    /// checks that its bytes exist; reads run on linearly.
    Linear,
    /// The C unpickler on a file without `peek()` (`io.BytesIO`, how `torch.load` reads
    /// `data.pkl`): a frame is buffered, and a read or line that runs past the buffer takes
    /// fresh bytes from where the buffer ends, skipping the rest of the frame.
    CFile,
    /// `pickle._Unpickler`: reads stay within the current frame or fail; a frame may be cut
    /// short by the end of the input.
    Python,
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
    saw_frame: bool,
    whole_import: bool,
    /// How surely the stream's imports reach code, if it imports anything.
    code: Option<Strength>,
    protocol: Option<u8>,
    globals: Vec<ImportedGlobal>,
    calls: u64,
    notes: Vec<Note>,
}

impl StreamOut {
    /// Takes in another dialect's imports: what any reader imports counts.
    fn merge(&mut self, other: StreamOut) {
        self.code = self.code.max(other.code);
        self.whole_import |= other.whole_import;
        let known: HashSet<String> = self.globals.iter().map(|g| g.global.written()).collect();
        let mut added = false;
        for imported in other.globals {
            if !known.contains(&imported.global.written()) {
                self.globals.push(imported);
                added = true;
            }
        }
        if added {
            self.notes.push(Note::new(
                Code::PickleFrameViolation,
                self.start as u64,
                "CPython's readers take this stream's frames differently, and one of them imports \
                 more than the others"
                    .to_owned(),
            ));
        }
        self.notes.extend(other.notes.into_iter().filter(|note| {
            note.code == Code::PickleExtensionCode
                && note
                    .global
                    .as_ref()
                    .is_some_and(|global| !known.contains(global))
        }));
    }

    /// The `is_pickle` rules, applied to one stream: it reaches an import or the extension
    /// registry (CPython would run code), or it is shaped like a pickle.
    fn is_pickle(&self) -> bool {
        self.code.is_some() || self.structural()
    }

    /// Shaped like a pickle whatever it imports: a valid leading PROTO, a STOP, or a stream
    /// long enough to reach an analysis limit.
    fn structural(&self) -> bool {
        (self.starts_with_proto && self.broken_after_proto().is_none())
            || matches!(self.stop, Stop::Complete { .. } | Stop::Limit { .. })
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

/// A stack or memo value: all the emulator needs to know about a Python object, which is
/// whether STACK_GLOBAL would accept it (CPython requires an exact `str`) and what it says.
#[derive(Debug, Clone)]
enum Value {
    /// A `str` whose text is known.
    Str(Rc<str>),
    /// A `str` too long (or over the tracking budget) to keep: known to be text, content not.
    LongStr(usize),
    /// Certainly not a `str` (numbers, bytes, containers, None, booleans).
    NotStr,
    /// Anything a call, an import or a persistent id produced: it could be a `str`.
    Unknown,
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
    dialect: Dialect,
    /// CFile: where the bytes the reader has buffered end (the file stands there).
    buf_end: usize,
    /// Python: where the current frame ends.
    frame: Option<usize>,
    saw_frame: bool,
    /// Whether an import was spelled out whole.
    whole_import: bool,
    /// Whether an opcode completed after the first import.
    continued: bool,
    /// Opcodes completed so far.
    steps: u32,
    /// The last opcode executed.
    last_op: u8,
    /// The strongest import so far.
    imported: Option<Strength>,
    protocol: Option<u8>,
    /// The last PROTO's argument: the compatibility tables apply below 3.
    current_protocol: u8,
    tracked_bytes: usize,
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
        dialect: Dialect,
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
            dialect,
            buf_end: start,
            frame: None,
            saw_frame: false,
            whole_import: false,
            continued: false,
            steps: 0,
            last_op: 0,
            imported: None,
            protocol: None,
            current_protocol: 0,
            tracked_bytes: 0,
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
            let imported_before = self.imported.is_some();
            match self.step(at) {
                Ok(None) => {
                    self.last_op = self.data.get(at).copied().unwrap_or(0);
                    self.steps = self.steps.saturating_add(1);
                    self.continued |= imported_before;
                    self.check_frame(at);
                }
                Ok(Some(stop)) | Err(stop) => break stop,
            }
        };
        // Prose read as opcodes breaks at once after its accidental import; a stream that
        // goes on (a MARK, arguments) is a mutated pickle whatever its module is called.
        let code = match self.imported {
            Some(Strength::Weak) if self.continued => Some(Strength::Plausible),
            other => other,
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
            saw_frame: self.saw_frame,
            whole_import: self.whole_import,
            code,
            protocol: self.protocol,
            globals: self.globals,
            calls: self.calls,
            notes: self.notes,
        }
    }

    /// Executes the opcode at `at`; `Some` when the stream is complete.
    fn step(&mut self, at: usize) -> Step<Option<Stop>> {
        let op = match self.take(at, "an opcode", 1)? {
            [op] => *op,
            _ => return Err(self.truncated(at, "an opcode")),
        };
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
                if !args::float_line(line) {
                    return Err(self.malformed(
                        at,
                        format!("`FLOAT` argument `{}` is not a float", show(line)),
                    ));
                }
                self.push(at, Value::NotStr)?;
            }
            b'I' | b'L' => {
                let line = self.line(at, name)?;
                let valid = if op == b'L' {
                    args::long_line(line)
                } else {
                    args::int_line(line)
                };
                if !valid {
                    return Err(self.malformed(
                        at,
                        format!("`{name}` argument `{}` is not an integer", show(line)),
                    ));
                }
                self.push(at, Value::NotStr)?;
            }
            b'J' | b'K' | b'M' | b'G' => {
                let size = match op {
                    b'J' => 4,
                    b'K' => 1,
                    b'M' => 2,
                    _ => 8,
                };
                self.take(at, name, size)?;
                self.push(at, Value::NotStr)?;
            }
            0x8a | 0x8b => {
                let size = if op == 0x8a {
                    self.uint(at, name, 1)?
                } else {
                    self.signed_len(at, name)?
                };
                self.take_len(at, name, size)?;
                self.push(at, Value::NotStr)?;
            }
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f => {
                self.push(at, Value::NotStr)?;
            }
            // Out-of-band buffers exist only when the loader passed `buffers=`.
            0x97 => self.push(at, Value::Unknown)?,
            b'P' => {
                let line = self.line(at, name)?;
                if !line.is_ascii() {
                    return Err(self.malformed(at, "`PERSID` argument is not ASCII".to_owned()));
                }
                self.push(at, Value::Unknown)?;
            }
            b'Q' => {
                self.pop(at, name)?;
                self.push(at, Value::Unknown)?;
            }
            b'R' | 0x81 => {
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.call(at, Value::Unknown)?;
            }
            0x92 => {
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.pop(at, name)?;
                self.call(at, Value::Unknown)?;
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
                let value = self.tracked(latin1(content));
                self.push(at, value)?;
            }
            b'V' => {
                let line = self.line(at, name)?;
                let Some(text) = args::decode_raw_unicode_escape(line) else {
                    return Err(
                        self.malformed(at, "`UNICODE` argument has a bad \\u escape".to_owned())
                    );
                };
                self.nested_text(at, name, &text, None)?;
                let value = self.tracked(Cow::Owned(text));
                self.push(at, value)?;
            }
            b'X' | 0x8c | 0x8d => {
                let size = match op {
                    b'X' => self.uint(at, name, 4)?,
                    0x8c => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 8)?,
                };
                let content_at = self.pos;
                let content = self.take_len(at, name, size)?;
                let Some(text) = args::decode_utf8_surrogatepass(content) else {
                    return Err(self.malformed(at, format!("`{name}` argument is not UTF-8")));
                };
                self.nested_text(at, name, &text, Some(content_at))?;
                let value = self.tracked(text);
                self.push(at, value)?;
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
                self.push(at, Value::NotStr)?;
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
                self.push(at, Value::NotStr)?;
            }
            0x85..=0x87 => {
                for _ in 0..(op - 0x84) {
                    self.pop(at, name)?;
                }
                self.push(at, Value::NotStr)?;
            }
            b'c' | b'i' => self.load_global(at, op)?,
            0x93 => {
                let attribute = self.pop(at, name)?;
                let module = self.pop(at, name)?;
                // CPython requires two exact `str`s. Operands that may be strings at run time
                // (a call result) are recorded as unknown rather than treated as an error.
                if matches!(module, Value::NotStr) || matches!(attribute, Value::NotStr) {
                    return Err(self.malformed(at, "`STACK_GLOBAL` requires str".to_owned()));
                }
                let known = |value: Value| match value {
                    Value::Str(text) => (text.to_string(), true),
                    Value::LongStr(length) => (format!("<{length}-byte name>"), true),
                    _ => ("?".to_owned(), false),
                };
                let ((module, module_known), (attribute, _)) = (known(module), known(attribute));
                self.whole_import = true;
                let (global, mut strength) = make_global(module, attribute, self.current_protocol);
                if !module_known {
                    strength = Strength::Strong;
                }
                self.record(at, name, (global, strength))?;
                self.push(at, Value::Unknown)?;
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
                    spelled: None,
                };
                let qualified = global.qualified();
                self.whole_import = true;
                if self.record(at, name, (global, Strength::Strong))? {
                    let mut note = Note::new(
                        Code::PickleExtensionCode,
                        at as u64,
                        format!("uses extension-registry code {code} (`{name}`), which imports whatever global is registered under it"),
                    );
                    note.global = Some(qualified);
                    self.notes.push(note);
                }
                self.push(at, Value::Unknown)?;
            }
            b'g' | b'h' | b'j' => {
                let key = match op {
                    b'g' => {
                        let line = self.line(at, name)?;
                        match self.memo_key(at, name, line)? {
                            args::Key::Index(key) => key,
                            args::Key::Negative => {
                                return Err(
                                    self.malformed(at, "`GET` of a negative memo key".to_owned())
                                )
                            }
                        }
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
                        match self.memo_key(at, name, line)? {
                            args::Key::Index(key) => key,
                            args::Key::Negative => {
                                return Err(self.malformed(at, "negative `PUT` argument".to_owned()))
                            }
                        }
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
                self.call(at, Value::Unknown)?;
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
                self.current_protocol = protocol;
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

    /// GLOBAL (`c`) and INST (`i`): two names, UTF-8 for GLOBAL and ASCII for INST, as in
    /// CPython's `load_global` and `load_inst`. The C unpickler needs two non-empty,
    /// newline-terminated lines; the pure-Python one takes empty lines and, at the end of the
    /// input, a last line without its newline (minus its last byte, which `[:-1]` cuts), and
    /// imports before INST looks for its MARK. The union is modelled.
    fn load_global(&mut self, at: usize, op: u8) -> Step<()> {
        let name = opcode_name(op);
        let (module, mut at_end) = self.name_line(at, op)?;
        let attribute = if at_end {
            String::new()
        } else {
            let (attribute, end) = self.name_line(at, op)?;
            at_end = end;
            attribute
        };
        let global = make_global(module, attribute, self.current_protocol);
        self.record(at, name, global)?;
        if at_end {
            return Err(self.truncated(at, name));
        }
        self.whole_import = true;
        if op == b'i' {
            self.pop_mark(at, name)?;
            self.call(at, Value::Unknown)?;
        } else {
            self.push(at, Value::Unknown)?;
        }
        Ok(())
    }

    /// One name line, and whether the input ended before its newline.
    fn name_line(&mut self, at: usize, op: u8) -> Step<(String, bool)> {
        let name = opcode_name(op);
        let data = self.data;
        let (line, at_end) = match self.find_line(at, name)? {
            Some((from, length)) => {
                self.pos = from.saturating_add(length).saturating_add(1);
                self.buf_end = self.buf_end.max(self.pos);
                (
                    data.get(from..from.saturating_add(length))
                        .unwrap_or_default(),
                    false,
                )
            }
            // The C unpickler needs the newline; Python's `readline()` returns what is left.
            None if self.dialect == Dialect::CFile => return Err(self.truncated(at, name)),
            None => {
                let rest = data.get(self.pos..).unwrap_or_default();
                self.pos = data.len();
                let cut = rest.len().saturating_sub(1);
                (rest.get(..cut).unwrap_or_default(), true)
            }
        };
        if op == b'i' && !line.is_ascii() {
            return Err(self.malformed(at, "`INST` name is not ASCII".to_owned()));
        }
        match std::str::from_utf8(line) {
            Ok(text) => Ok((text.to_owned(), at_end)),
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
        let Some(content) = args::decode_bytes_escape(quoted) else {
            return Err(self.malformed(at, "`STRING` argument has a bad escape".to_owned()));
        };
        self.nested(at, "STRING", &content, Rebase::Fixed(at as u64))?;
        let value = self.tracked(latin1(&content));
        self.push(at, value)
    }

    /// FRAME: CPython's C unpickler only checks that the frame's bytes exist and then reads on
    /// linearly, while the Python unpickler refuses opcodes that straddle a frame's end; a
    /// pickle that the two read differently is reported.
    fn load_frame(&mut self, at: usize) -> Step<()> {
        let length = self.uint(at, "FRAME", 8)?;
        self.saw_frame = true;
        match self.dialect {
            Dialect::Linear => {}
            Dialect::CFile => {
                // The frame's bytes are read (fresh from the file if they are not all
                // buffered) and then re-read from the buffer.
                let size = usize::try_from(length).unwrap_or(usize::MAX);
                self.take_len(at, "FRAME", length)?;
                self.pos = self.pos.saturating_sub(size);
                return Ok(());
            }
            Dialect::Python => {
                if self.frame.is_some_and(|end| end != self.pos) {
                    return Err(self.malformed(
                        at,
                        "beginning of a new frame before end of current frame".to_owned(),
                    ));
                }
                let size = usize::try_from(length).unwrap_or(usize::MAX);
                self.frame = Some(self.pos.saturating_add(size).min(self.data.len()));
                return Ok(());
            }
        }
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
        if self.dialect != Dialect::Linear {
            return;
        }
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
    fn record(
        &mut self,
        at: usize,
        opcode: &'static str,
        (global, strength): (Global, Strength),
    ) -> Step<bool> {
        // Text read as opcodes imports by its first or second opcode (`callbacks:` is GLOBAL
        // `allbacks:`, `Mozilla` is BININT2 then INST); an odd name that a longer run of valid
        // opcodes leads up to is a mutated pickle, not prose.
        let strength = if self.steps <= MAX_PROSE_OPS_BEFORE_IMPORT {
            strength
        } else {
            strength.max(Strength::Plausible)
        };
        self.imported = Some(self.imported.map_or(strength, |s| s.max(strength)));
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
        let spelled = global.written();
        if self.seen.contains(&spelled) {
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
        self.seen.insert(spelled);
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
        // A string that merely starts like GLOBAL (`coef_` is GLOBAL `oef` cut by its end) is
        // a name, not a pickle: an import must be spelled out whole to count here.
        let counts = inner.is_pickle
            && !inner.weak_evidence()
            && (inner.whole_import
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

    /// A string value, kept whole while it could be a name and the budget lasts.
    fn tracked(&mut self, text: Cow<'_, str>) -> Value {
        let length = text.len();
        if length > MAX_TRACKED_STR || self.tracked_bytes.saturating_add(length) > MAX_TRACKED_TOTAL
        {
            return Value::LongStr(length);
        }
        self.tracked_bytes = self.tracked_bytes.saturating_add(length);
        Value::Str(Rc::from(text.as_ref()))
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

    /// Reads `size` bytes the way the dialect's reader delivers them.
    fn take(&mut self, at: usize, op: &str, size: usize) -> Step<&'a [u8]> {
        let from = match self.dialect {
            Dialect::Linear => self.pos,
            Dialect::CFile => {
                if self
                    .pos
                    .checked_add(size)
                    .is_some_and(|end| end <= self.buf_end)
                {
                    self.pos
                } else {
                    // Past the buffered frame: fresh bytes from where the buffer ends.
                    self.buf_end
                }
            }
            Dialect::Python => match self.frame {
                Some(end) if self.pos == end && size != 0 => {
                    self.frame = None;
                    self.pos
                }
                Some(end) if self.pos.checked_add(size).is_none_or(|stop| stop > end) => {
                    return Err(self.malformed(
                        at,
                        format!("`{op}` runs past the end of its frame (pickle exhausted before end of frame)"),
                    ));
                }
                _ => self.pos,
            },
        };
        let data = self.data;
        let end = from.checked_add(size);
        match end.and_then(|end| data.get(from..end).map(|bytes| (end, bytes))) {
            Some((end, bytes)) => {
                self.pos = end;
                self.buf_end = self.buf_end.max(end);
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
        match self.find_line(at, op)? {
            Some((from, length)) => {
                let line = self
                    .data
                    .get(from..from.saturating_add(length))
                    .unwrap_or_default();
                self.pos = from.saturating_add(length).saturating_add(1);
                self.buf_end = self.buf_end.max(self.pos);
                Ok(line)
            }
            None => Err(self.truncated(at, op)),
        }
    }

    /// Where the next line starts and how long it is (without its newline), as the dialect's
    /// reader finds it; `None` when the input ends first.
    fn find_line(&mut self, at: usize, op: &str) -> Step<Option<(usize, usize)>> {
        let data = self.data;
        let search = |from: usize| {
            memchr(b'\n', data.get(from..).unwrap_or_default()).map(|length| (from, length))
        };
        Ok(match self.dialect {
            Dialect::Linear => search(self.pos),
            Dialect::CFile => {
                let buffered = data.get(self.pos..self.buf_end).unwrap_or_default();
                match memchr(b'\n', buffered) {
                    Some(length) => Some((self.pos, length)),
                    // `readline()` on the file, which stands where the buffer ends.
                    None => search(self.buf_end),
                }
            }
            Dialect::Python => match self.frame {
                Some(end) if self.pos == end => {
                    self.frame = None;
                    search(self.pos)
                }
                Some(end) => {
                    let framed = data.get(self.pos..end).unwrap_or_default();
                    match memchr(b'\n', framed) {
                        Some(length) => Some((self.pos, length)),
                        None => {
                            return Err(self.malformed(
                                at,
                                format!("`{op}` line runs past the end of its frame"),
                            ))
                        }
                    }
                }
                None => search(self.pos),
            },
        })
    }

    fn memo_key(&mut self, at: usize, op: &str, line: &[u8]) -> Step<args::Key> {
        match args::memo_key(line) {
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
        // joblib writes each array's raw bytes right after BUILD of its NumpyArrayWrapper and
        // reads them itself; the stream goes on after them (the recovery scan follows it).
        let joblib_array = self.last_op == b'b' && self.seen.contains(JOBLIB_WRAPPER);
        let mut note = if joblib_array {
            Note::new(
                Code::PickleMalformed,
                at as u64,
                "raw array bytes written by joblib after a `NumpyArrayWrapper` (joblib reads them itself)".to_owned(),
            )
        } else {
            Note::new(Code::PickleMalformed, at as u64, message)
        };
        note.info = joblib_array;
        self.notes.push(note);
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

/// How surely an import reaches code. A top-level module name that cannot name a module
/// (with spaces or punctuation) imports nothing that exists: in printable text such an
/// import, made by the very first byte, is the text's own words read as opcodes
/// (`callbacks: [x]\n...` is GLOBAL `allbacks: [x]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Strength {
    /// The top-level module name is not an identifier.
    Weak,
    /// An identifier that is not a standard module (or an empty name, which the pure-Python
    /// unpickler still hands to `find_class`).
    Plausible,
    /// A standard module, an EXT code, or a name not known statically.
    Strong,
}

/// A global as CPython's `find_class` sees it under `protocol` (the compatibility tables
/// rename Python 2 names below protocol 3), and how surely importing it reaches code. Very
/// long names are shortened (they are never allowlisted).
pub(super) fn make_global(module: String, name: String, protocol: u8) -> (Global, Strength) {
    let (global, looked_up) = match compat::map(&module, &name, protocol) {
        Some((to_module, to_name)) => {
            let spelled = clip(format!("{module}.{name}"));
            let global = Global {
                module: clip(to_module.clone()),
                name: clip(to_name),
                spelled: Some(spelled),
            };
            (global, to_module)
        }
        None => {
            let global = Global {
                module: clip(module.clone()),
                name: clip(name),
                spelled: None,
            };
            (global, module)
        }
    };
    // `__import__("a.b c")` imports `a` before it fails on the rest, and the pure-Python
    // unpickler calls `find_class("", "")` on a truncated GLOBAL: only a top-level name that
    // cannot be a module makes the import an accident of text.
    let top = looked_up.split('.').next().unwrap_or_default();
    let strength = if compat::is_stdlib(top) {
        Strength::Strong
    } else if top.is_empty() || is_dotted_identifier(top) {
        Strength::Plausible
    } else {
        Strength::Weak
    };
    (global, strength)
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

/// Bytes as the latin-1 text `encoding='latin1'` loaders (NumPy) make of Python 2 strings.
fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    Cow::Owned(bytes.iter().map(|byte| char::from(*byte)).collect())
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

fn is_opcode(byte: u8) -> bool {
    opcode_name(byte) != "?"
}

/// The pickletools name of an opcode byte, `?` for bytes that are not opcodes.
pub(super) fn opcode_name(byte: u8) -> &'static str {
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
}
