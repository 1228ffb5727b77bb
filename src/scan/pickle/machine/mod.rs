//! The pickle opcode emulator: one pass over each stream, the way CPython's C unpickler reads
//! it, with a stack, a mark stack and a memo of cheap shared values, plus the driver that
//! chains streams, follows nested pickles and runs the recovery scan.
//!
//! Values are either a short string (all that decides which global STACK_GLOBAL names) or an
//! opaque "other"; containers are never built, and memo entries and stack items are shared by
//! `Rc`, so aliasing tricks (memo "billion laughs") cost one step per opcode. Every read checks
//! its length against the remaining input before anything is allocated. This module must not
//! decide what is dangerous (that is the allowlist) nor build public findings beyond [`Note`].
//!
//! The input is read through a bounded [`Window`], never whole. Arguments up to
//! [`Sizes::max_arg`] are read whole, exactly as CPython reads them. Longer ones are not:
//! - length-prefixed bytes (BINBYTES, BYTEARRAY8, BINSTRING, LONG4, a FRAME) are skipped by
//!   offset once their end is known to exist; a bytes constant is still analysed as a nested
//!   pickle, on a slice of the source, and BINUNICODE text is checked as UTF-8 in chunks and
//!   becomes `Value::LongStr`. Text that decodes to latin-1 bytes beyond ASCII (protocol 2's
//!   `_codecs.encode` argument) cannot be decoded without holding it, so it is reported as not
//!   analysed (`pickle-limit-exceeded`);
//! - a line (`\n`-terminated argument) whose validity cannot be judged without holding it is
//!   taken as valid, and the stream goes on: INT, LONG and FLOAT push a number, PERSID an
//!   unknown value, STRING (if its first and last bytes quote it) and UNICODE a `LongStr`;
//!   GLOBAL and INST record the import under the first bytes of the name (shortened, as every
//!   long name is), with importability judged from them; a GET with such a key pushes
//!   `Value::Unknown`, and a PUT with one makes later GETs of keys never stored push
//!   `Value::Unknown` instead of stopping the stream. Because CPython might instead have
//!   stopped there, the recovery scan also runs from the first such line to the end of the
//!   input: the answer is the union of both readings.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io;
use std::rc::Rc;
use std::time::Instant;

use super::allowlist::classify_qualified;
use super::recover::recover;
use super::window::{Memory, Sizes, Window};
use super::{args, compat};
use super::{End, Global, ImportedGlobal, PickleLimits, Via, MAX_NESTING_CAP};
use crate::finding::{quote, Code, Finding};
use crate::scan::source::{ReadAt, Slice};

mod read;

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
/// Bytes of an over-long GLOBAL or INST name line that are read (more than [`MAX_NAME_BYTES`],
/// so the recorded name is shortened the way every long name is).
const NAME_PREFIX: usize = 4 * MAX_NAME_BYTES;
/// Constants up to this size are copied out for nested analysis; longer ones are analysed
/// where they lie in the source.
pub(super) const INLINE_NESTED: usize = 64 << 10;
/// How far past a PROTO followed at once by an invalid opcode a top-level input is searched
/// for imports before it counts as a pickle. Nothing runs past such a start (every loader
/// raises there), so this only recognises a format; searching gigabytes of tensor data would
/// only find byte patterns that look like imports by chance. 64 KiB is what the dispatcher
/// always read for this.
const TRIAL_SPAN: usize = 64 << 10;

/// The opcode and time budget shared by a whole analysis, nested pickles included.
pub(super) struct Budget {
    used: u64,
    max: u64,
    deadline: Option<Instant>,
    tripped: Option<String>,
    /// How the input is read, for every stream of the analysis.
    sizes: Sizes,
}

impl Budget {
    pub(super) fn new(limits: &PickleLimits, sizes: Sizes) -> Self {
        Budget {
            used: 0,
            max: limits.max_opcodes,
            deadline: limits.deadline,
            tripped: None,
            sizes,
        }
    }

    pub(super) fn sizes(&self) -> Sizes {
        self.sizes
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

/// What [`analyse_source`] found; [`super::analyse`] turns it into the public analysis.
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

/// Analyses `source` as successive pickle streams (with a fresh memo each, as successive
/// `pickle.load` calls have), following nested pickles up to the nesting limit.
pub(super) fn analyse_source(
    source: &dyn ReadAt,
    limits: &PickleLimits,
    budget: &mut Budget,
    depth: u32,
) -> io::Result<Inner> {
    let mut window = Window::new(source, budget.sizes())?;
    let len = window.len();
    let mut inner = Inner::empty();
    let max_streams = limits.max_streams.max(1);
    let mut pos = 0usize;
    // Where the recovery scan starts once the streams are read: a malformed point, or the
    // first argument too long to judge (CPython may have stopped there).
    let mut recover_from: Option<usize> = None;
    loop {
        let mut out =
            Stream::new(&mut window, pos, limits, budget, depth, Dialect::Linear).run()?;
        if out.saw_frame {
            for dialect in [Dialect::CFile, Dialect::Python] {
                let other = Stream::new(&mut window, pos, limits, budget, depth, dialect).run()?;
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
                inner.end = out.end(len);
                if let Some(offset) = out.broken_after_proto() {
                    // Binary data can start like PROTO (a safetensors header length of 640 is
                    // `80 02 00 ..`); it is a pickle only if imports are hidden after it.
                    let mut trial = Inner::empty();
                    let until = if depth == 0 { len.min(TRIAL_SPAN) } else { len };
                    recover(source, offset, until, limits, budget, &mut trial)?;
                    if !trial.globals.is_empty() {
                        inner.absorb(out, len, limits.max_globals);
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
        if let Some(at) = out.uncertain {
            recover_from = Some(recover_from.map_or(at, |from| from.min(at)));
        }
        if !inner.absorb(out, len, limits.max_globals) {
            recover_from = None;
            break;
        }
        match stop {
            Stop::Complete { .. } if inner.consumed < len as u64 => {
                pos = usize::try_from(inner.consumed).unwrap_or(usize::MAX);
            }
            Stop::Malformed { offset } => {
                recover_from = Some(recover_from.map_or(offset, |from| from.min(offset)));
                break;
            }
            Stop::Complete { .. } | Stop::Truncated | Stop::Limit { .. } | Stop::Io => break,
        }
    }
    if let Some(from) = recover_from {
        recover(source, from, len, limits, budget, &mut inner)?;
    }
    Ok(inner)
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
    /// Reading the source failed (the error is kept by the stream and returned).
    Io,
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
    /// The first argument too long to judge that was taken as valid (see the module docs).
    uncertain: Option<usize>,
}

impl StreamOut {
    /// Takes in another dialect's imports: what any reader imports counts.
    fn merge(&mut self, other: StreamOut) {
        self.code = self.code.max(other.code);
        self.uncertain = match (self.uncertain, other.uncertain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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
            Stop::Truncated | Stop::Io => End::Truncated { offset: len as u64 },
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

/// A `\n`-terminated argument: its bytes, or where it lies when it is too long to hold.
enum Line {
    Whole(Vec<u8>),
    Long { from: usize, length: usize },
}

/// The content of a string or bytes constant, for nested analysis.
#[derive(Clone, Copy)]
enum Content<'b> {
    /// Bytes in hand (read, or decoded from the argument).
    Bytes(&'b [u8]),
    /// The constant's bytes as they lie in the source.
    Range { from: usize, size: usize },
}

struct Stream<'a, 'c> {
    window: &'c mut Window<'a>,
    /// The input's length.
    len: usize,
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
    /// The byte at the offset of the opcode being executed (in the CFile dialect the opcode
    /// itself may come from elsewhere).
    byte_at_op: u8,
    /// Arguments up to this size are read whole.
    max_arg: usize,
    /// See [`StreamOut::uncertain`].
    uncertain: Option<usize>,
    /// A PUT's key was too long to read: any memo key may hold a value.
    memo_unknown: bool,
    io_error: Option<io::Error>,
}

impl<'a, 'c> Stream<'a, 'c> {
    fn new(
        window: &'c mut Window<'a>,
        start: usize,
        limits: &'c PickleLimits,
        budget: &'c mut Budget,
        depth: u32,
        dialect: Dialect,
    ) -> Self {
        let len = window.len();
        let max_arg = budget.sizes().max_arg;
        Stream {
            window,
            len,
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
            byte_at_op: 0,
            max_arg,
            uncertain: None,
            memo_unknown: false,
            io_error: None,
        }
    }

    fn run(mut self) -> io::Result<StreamOut> {
        let stop = loop {
            if !self.budget.charge() {
                break Stop::Limit { offset: self.pos };
            }
            let at = self.pos;
            let imported_before = self.imported.is_some();
            match self.step(at) {
                Ok(None) => {
                    self.last_op = self.byte_at_op;
                    self.steps = self.steps.saturating_add(1);
                    self.continued |= imported_before;
                    self.check_frame(at);
                }
                Ok(Some(stop)) | Err(stop) => break stop,
            }
        };
        if let Some(error) = self.io_error.take() {
            return Err(error);
        }
        // Prose read as opcodes breaks at once after its accidental import; a stream that
        // goes on (a MARK, arguments) is a mutated pickle whatever its module is called.
        let code = match self.imported {
            Some(Strength::Weak) if self.continued => Some(Strength::Plausible),
            other => other,
        };
        let end_pos = match stop {
            Stop::Complete { .. } => self.pos,
            Stop::Truncated | Stop::Io => self.len,
            Stop::Malformed { offset } | Stop::Limit { offset } => offset,
        };
        Ok(StreamOut {
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
            uncertain: self.uncertain,
        })
    }

    /// Executes the opcode at `at`; `Some` when the stream is complete.
    fn step(&mut self, at: usize) -> Step<Option<Stop>> {
        let from = self.take(at, "an opcode", 1)?;
        let op = self.byte(from)?;
        self.byte_at_op = if from == at {
            op
        } else {
            match self.window.byte(at) {
                Ok(byte) => byte.unwrap_or(0),
                Err(error) => return Err(self.io(error)),
            }
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
                if let Some(line) = self.number_line(at, name)? {
                    if !args::float_line(&line) {
                        return Err(self.malformed(
                            at,
                            format!("`FLOAT` argument `{}` is not a float", show(&line)),
                        ));
                    }
                }
                self.push(at, Value::NotStr)?;
            }
            b'I' | b'L' => {
                if let Some(line) = self.number_line(at, name)? {
                    let valid = if op == b'L' {
                        args::long_line(&line)
                    } else {
                        args::int_line(&line)
                    };
                    if !valid {
                        return Err(self.malformed(
                            at,
                            format!("`{name}` argument `{}` is not an integer", show(&line)),
                        ));
                    }
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
                let ascii = match self.line(at, name)? {
                    Line::Whole(line) => line.is_ascii(),
                    Line::Long { from, length } => self.all_ascii(from, length)?,
                };
                if !ascii {
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
                // Offsets are placed from where the argument would start in a linear read.
                let rebase = Rebase::Linear(self.pos as u64);
                let (from, size) = self.take_len(at, name, size)?;
                let value = if size <= self.max_arg {
                    let content = self.read(from, size)?;
                    self.nested(at, name, Content::Bytes(&content), rebase)?;
                    self.tracked(latin1(&content))
                } else {
                    // Its latin-1 text is at least `size` bytes long, far past any name.
                    self.nested(at, name, Content::Range { from, size }, rebase)?;
                    Value::LongStr(size)
                };
                self.push(at, value)?;
            }
            b'V' => {
                let value = match self.line(at, name)? {
                    Line::Whole(line) => {
                        let Some(text) = args::decode_raw_unicode_escape(&line) else {
                            return Err(self.malformed(
                                at,
                                "`UNICODE` argument has a bad \\u escape".to_owned(),
                            ));
                        };
                        drop(line);
                        let value = self.tracked(Cow::Borrowed(text.as_str()));
                        match text_bytes(&text) {
                            TextBytes::Skip => {}
                            TextBytes::Latin1(bytes) => {
                                drop(text);
                                self.nested(
                                    at,
                                    name,
                                    Content::Bytes(&bytes),
                                    Rebase::Fixed(at as u64),
                                )?;
                            }
                            TextBytes::Ascii | TextBytes::Utf8 => {
                                let content = Content::Bytes(text.as_bytes());
                                self.nested(at, name, content, Rebase::Fixed(at as u64))?;
                            }
                        }
                        value
                    }
                    Line::Long { from, length } => {
                        if !self.escapes_decode(args::Escapes::RawUnicode, from, length)? {
                            return Err(self.malformed(
                                at,
                                "`UNICODE` argument has a bad \\u escape".to_owned(),
                            ));
                        }
                        self.not_decoded(at, name, from, length)?;
                        Value::LongStr(length)
                    }
                };
                self.push(at, value)?;
            }
            b'X' | 0x8c | 0x8d => {
                let size = match op {
                    b'X' => self.uint(at, name, 4)?,
                    0x8c => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 8)?,
                };
                let content_at = self.pos;
                let (from, size) = self.take_len(at, name, size)?;
                let value = if size <= self.max_arg {
                    let content = self.read(from, size)?;
                    let Some(text) = args::decode_utf8_surrogatepass(&content) else {
                        return Err(self.malformed(at, format!("`{name}` argument is not UTF-8")));
                    };
                    let value = self.tracked(Cow::Borrowed(text.as_ref()));
                    let fixed = Rebase::Fixed(at as u64);
                    match text_bytes(&text) {
                        TextBytes::Skip => {}
                        TextBytes::Ascii => {
                            let rebase = Rebase::Linear(content_at as u64);
                            self.nested(at, name, Content::Bytes(text.as_bytes()), rebase)?;
                        }
                        TextBytes::Latin1(bytes) => {
                            drop(text);
                            drop(content);
                            self.nested(at, name, Content::Bytes(&bytes), fixed)?;
                        }
                        TextBytes::Utf8 => {
                            self.nested(at, name, Content::Bytes(text.as_bytes()), fixed)?;
                        }
                    }
                    value
                } else {
                    self.long_text(at, name, from, size, content_at)?
                };
                self.push(at, value)?;
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let size = match op {
                    b'B' => self.uint(at, name, 4)?,
                    b'C' => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 8)?,
                };
                let rebase = Rebase::Linear(self.pos as u64);
                let (from, size) = self.take_len(at, name, size)?;
                self.nested(at, name, Content::Range { from, size }, rebase)?;
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
                    b'g' => match self.number_line(at, name)? {
                        Some(line) => match self.memo_key(at, name, &line)? {
                            args::Key::Index(key) => key,
                            args::Key::Negative => {
                                return Err(
                                    self.malformed(at, "`GET` of a negative memo key".to_owned())
                                )
                            }
                        },
                        None => {
                            self.push(at, Value::Unknown)?;
                            return Ok(None);
                        }
                    },
                    b'h' => self.uint(at, name, 1)?,
                    _ => self.uint(at, name, 4)?,
                };
                let value = match self.memo.get(&key) {
                    Some(value) => value.clone(),
                    None if self.memo_unknown => Value::Unknown,
                    None => {
                        return Err(self.malformed(
                            at,
                            format!("`{name}` of memo key {key}, which was never stored"),
                        ));
                    }
                };
                self.push(at, value)?;
            }
            b'p' | b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'p' => match self.number_line(at, name)? {
                        Some(line) => match self.memo_key(at, name, &line)? {
                            args::Key::Index(key) => key,
                            args::Key::Negative => {
                                return Err(self.malformed(at, "negative `PUT` argument".to_owned()))
                            }
                        },
                        None => {
                            self.top(at, name)?;
                            self.memo_unknown = true;
                            return Ok(None);
                        }
                    },
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

    /// One name line, and whether the input ended before its newline. A line too long to
    /// hold is read as its first [`NAME_PREFIX`] bytes (see the module docs).
    fn name_line(&mut self, at: usize, op: u8) -> Step<(String, bool)> {
        let name = opcode_name(op);
        let (from, length, at_end) = match self.find_line(at, name)? {
            Some((from, length)) => {
                self.pos = from.saturating_add(length).saturating_add(1);
                self.buf_end = self.buf_end.max(self.pos);
                (from, length, false)
            }
            // The C unpickler needs the newline; Python's `readline()` returns what is left.
            None if self.dialect == Dialect::CFile => return Err(self.truncated(at, name)),
            None => {
                let from = self.pos;
                let rest = self.len.saturating_sub(from);
                self.pos = self.len;
                (from, rest.saturating_sub(1), true)
            }
        };
        let long = length > self.max_arg;
        let line = if long {
            // Judged whole, in pieces; recorded by its first bytes.
            let valid = if op == b'i' {
                self.all_ascii(from, length)?
            } else {
                let mut check = args::Utf8Stream::strict();
                if let Err(error) = self.window.stream(from, length, |piece| check.feed(piece)) {
                    return Err(self.io(error));
                }
                check.finish().is_some()
            };
            if !valid && op == b'i' {
                return Err(self.malformed(at, "`INST` name is not ASCII".to_owned()));
            }
            if !valid {
                return Err(self.malformed(at, format!("`{name}` name is not UTF-8")));
            }
            self.read(from, length.min(NAME_PREFIX))?
        } else {
            self.read(from, length)?
        };
        if op == b'i' && !line.is_ascii() {
            return Err(self.malformed(at, "`INST` name is not ASCII".to_owned()));
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text,
            // The prefix may end inside a character.
            Err(error) if long && error.error_len().is_none() => {
                let valid = line.get(..error.valid_up_to()).unwrap_or_default();
                std::str::from_utf8(valid).unwrap_or_default()
            }
            Err(_) => return Err(self.malformed(at, format!("`{name}` name is not UTF-8"))),
        };
        Ok((text.to_owned(), at_end))
    }

    /// STRING (`S`): a quoted line with Python bytes escapes.
    fn load_string(&mut self, at: usize) -> Step<()> {
        let content = match self.line(at, "STRING")? {
            Line::Whole(line) => {
                let quoted = match line.as_slice() {
                    [first, inner @ .., last] if first == last && matches!(first, b'\'' | b'"') => {
                        inner
                    }
                    _ => {
                        return Err(
                            self.malformed(at, "the `STRING` argument must be quoted".to_owned())
                        );
                    }
                };
                let Some(content) = args::decode_bytes_escape(quoted) else {
                    return Err(self.malformed(at, "`STRING` argument has a bad escape".to_owned()));
                };
                content
            }
            Line::Long { from, length } => {
                let first = self.byte(from)?;
                let last = self.byte(from.saturating_add(length).saturating_sub(1))?;
                if length < 2 || first != last || !matches!(first, b'\'' | b'"') {
                    return Err(
                        self.malformed(at, "the `STRING` argument must be quoted".to_owned())
                    );
                }
                let (inner, size) = (from.saturating_add(1), length.saturating_sub(2));
                if !self.escapes_decode(args::Escapes::Bytes, inner, size)? {
                    return Err(self.malformed(at, "`STRING` argument has a bad escape".to_owned()));
                }
                self.not_decoded(at, "STRING", inner, size)?;
                return self.push(at, Value::LongStr(size));
            }
        };
        let value = self.tracked(latin1(&content));
        self.nested(
            at,
            "STRING",
            Content::Bytes(&content),
            Rebase::Fixed(at as u64),
        )?;
        self.push(at, value)
    }

    /// Long BINUNICODE text, checked in chunks (see the module docs); `content_at` is where
    /// a linear read would find it.
    fn long_text(
        &mut self,
        at: usize,
        op: &'static str,
        from: usize,
        size: usize,
        content_at: usize,
    ) -> Step<Value> {
        let mut check = args::Utf8Stream::default();
        if let Err(error) = self.window.stream(from, size, |chunk| check.feed(chunk)) {
            return Err(self.io(error));
        }
        let Some(shape) = check.finish() else {
            return Err(self.malformed(at, format!("`{op}` argument is not UTF-8")));
        };
        let starts_like_opcode = shape
            .first
            .and_then(|first| u8::try_from(u32::from(first)).ok())
            .is_some_and(is_opcode);
        if starts_like_opcode {
            let range = Content::Range { from, size };
            if shape.ascii {
                self.nested(at, op, range, Rebase::Linear(content_at as u64))?;
            } else if shape.latin1 {
                self.not_decoded_note(at, op, size);
            } else {
                self.nested(at, op, range, Rebase::Fixed(at as u64))?;
            }
        }
        // UTF-8 of `size` bytes is text of `size` bytes (surrogates become U+FFFD, also 3).
        Ok(Value::LongStr(size))
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
                self.frame = Some(self.pos.saturating_add(size).min(self.len));
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
        let remaining = self.len.saturating_sub(self.pos) as u64;
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
                // The Linear dialect reads each opcode where it stands.
                let name = opcode_name(self.byte_at_op);
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

    /// Analyses a constant as a nested pickle and merges what it imports.
    fn nested(
        &mut self,
        at: usize,
        op: &'static str,
        content: Content<'_>,
        rebase: Rebase,
    ) -> Step<()> {
        let (size, first, second) = match content {
            Content::Bytes(bytes) => (bytes.len(), bytes.first().copied(), bytes.get(1).copied()),
            Content::Range { from, size } => {
                let first = if size >= 1 {
                    Some(self.byte(from)?)
                } else {
                    None
                };
                let second = if size >= 2 {
                    Some(self.byte(from.saturating_add(1))?)
                } else {
                    None
                };
                (size, first, second)
            }
        };
        let Some(first) = first else {
            return Ok(());
        };
        if size < MIN_NESTED || !is_opcode(first) {
            return Ok(());
        }
        let starts_with_proto =
            first == 0x80 && second.is_some_and(|protocol| protocol <= HIGHEST_PROTOCOL);
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
        // The nested analysis reads through a window of its own.
        self.window.release();
        let analysed = match content {
            Content::Bytes(bytes) => {
                analyse_source(&Memory(bytes), self.limits, self.budget, depth)
            }
            Content::Range { from, size } if size <= INLINE_NESTED => {
                let bytes = self.read(from, size)?;
                analyse_source(&Memory(&bytes), self.limits, self.budget, depth)
            }
            Content::Range { from, size } => {
                match Slice::new(self.window.source(), from as u64, size as u64) {
                    Ok(slice) => analyse_source(&slice, self.limits, self.budget, depth),
                    Err(error) => Err(error),
                }
            }
        };
        let inner = match analysed {
            Ok(inner) => inner,
            Err(error) => return Err(self.io(error)),
        };
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

    fn io(&mut self, error: io::Error) -> Stop {
        self.io_error.get_or_insert(error);
        Stop::Io
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

/// Which bytes of a text constant are analysed as a nested pickle: protocols < 3 carry bytes
/// as latin-1 text (for `_codecs.encode`), so text that fits latin-1 is analysed as those
/// bytes, other text as its UTF-8.
enum TextBytes {
    /// It does not start like an opcode.
    Skip,
    /// ASCII: the text's bytes are the constant's bytes.
    Ascii,
    Latin1(Vec<u8>),
    Utf8,
}

fn text_bytes(text: &str) -> TextBytes {
    let Some(first) = text.chars().next() else {
        return TextBytes::Skip;
    };
    if u8::try_from(u32::from(first)).map_or(true, |byte| !is_opcode(byte)) {
        return TextBytes::Skip;
    }
    if text.is_ascii() {
        return TextBytes::Ascii;
    }
    let latin1: Option<Vec<u8>> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    latin1.map_or(TextBytes::Utf8, TextBytes::Latin1)
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
