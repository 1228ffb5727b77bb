//! Static analysis of Python pickles: which globals an unpickler would import, how many calls
//! it would make, and whether some bytes are a pickle at all, all without executing anything.
//!
//! A pickle is a program for a stack machine, and loading one runs it; the only way a pickle
//! reaches code is by importing a global (GLOBAL, INST, STACK_GLOBAL, or the EXT registry) and
//! calling it. [`analyse`] emulates that machine opcode by opcode, the way CPython's C
//! unpickler reads its input (`Modules/_pickle.c`), tracking only what decides which globals
//! are named: strings, and opaque values for everything else. Every global is classified
//! against a tensor-only allowlist ([`classify`]), never a denylist, because denylist scanners
//! (picklescan, modelscan, fickling) have been bypassed by every gap in their lists.
//!
//! Attacks this module is built against: payload followed by a broken stream (which
//! `torch.load` has already executed when it fails), memo and DUP aliasing ("billion laughs",
//! handled by sharing values, never expanding them), FRAME tricks that CPython's two
//! unpicklers read differently, several pickles in one file, pickles nested in bytes
//! constants, and payload hidden past a malformed point where tolerant loaders (joblib) keep
//! reading. Every resource is bounded by [`PickleLimits`]; exceeding a bound is a finding.
//!
//! The input is read by offset through a bounded buffer ([`analyse_source`]), so a pickle of
//! any size is analysed in bounded memory; arguments too long to hold take documented
//! fail-closed readings (see `machine`).
//!
//! This module owns the pickle opcode machine and the allowlist. It must not open files, pick
//! a verdict (that is `policy`) or add the `pickle-format` finding (its caller decides the
//! format); it reports facts.

mod allowlist;
mod args;
mod compat;
mod machine;
mod recover;
#[cfg(test)]
mod streaming_tests;
mod window;

use std::io;
use std::time::Instant;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;
use window::{Memory, Sizes};

pub use allowlist::{classify, lookup, Allowed, TENSOR_ONLY};

/// Bounds on the work and memory one [`analyse`] call may use. Exceeding any of them yields a
/// `pickle-limit-exceeded` finding and stops the analysis (what was found so far is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleLimits {
    /// Opcodes executed over the whole analysis, nested pickles included.
    pub max_opcodes: u64,
    /// Distinct memo entries per stream.
    pub max_memo: usize,
    /// Stack items plus open marks per stream.
    pub max_stack: usize,
    /// How deep pickles nested in bytes constants are followed (capped at
    /// [`MAX_NESTING_CAP`], because nesting is followed by recursion).
    pub max_nesting: u32,
    /// Pickle streams one after the other in the same bytes.
    pub max_streams: u32,
    /// Distinct globals.
    pub max_globals: usize,
    /// Wall-clock deadline, checked every 4096 opcodes.
    pub deadline: Option<Instant>,
}

/// The hard ceiling on [`PickleLimits::max_nesting`], whatever the caller asks for.
pub const MAX_NESTING_CAP: u32 = 16;

impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits {
            max_opcodes: 50_000_000,
            max_memo: 250_000,
            max_stack: 1_000_000,
            max_nesting: 4,
            max_streams: 256,
            max_globals: 10_000,
            deadline: None,
        }
    }
}

/// A global an unpickler would import: `module` is imported, `name` is looked up in it
/// (a dotted `name` is a chain of attribute lookups).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Global {
    pub module: String,
    pub name: String,
    /// `module.name` as the pickle spelled it, when CPython's Python 2 compatibility tables
    /// rename it to `module.name` (`__builtin__.eval` for `builtins.eval`).
    pub spelled: Option<String>,
}

impl Global {
    /// `module.name`, the exact string the allowlist is matched against.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }

    /// `module.name` as the pickle spelled it.
    pub fn written(&self) -> String {
        match &self.spelled {
            Some(spelled) => spelled.clone(),
            None => self.qualified(),
        }
    }
}

/// What importing a global can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalClass {
    /// On the tensor-only allowlist: needed to rebuild tensors, storages or plain containers.
    TensorOnly,
    /// Anything else, including names that could not be determined statically.
    Dangerous,
}

/// How the analysis reached a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// Executing a recognised pickle stream.
    Stream,
    /// Executing a pickle nested in a bytes or string constant.
    Nested,
    /// The recovery scan past a malformed point, where a tolerant loader may still read.
    Recovery,
}

/// One distinct global, at its first occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedGlobal {
    pub global: Global,
    pub class: GlobalClass,
    /// Byte offset of the importing opcode in the analysed bytes (for a nested pickle whose
    /// constant had to be decoded, the offset of that constant's opcode).
    pub offset: u64,
    /// The importing opcode: `GLOBAL`, `INST`, `STACK_GLOBAL`, `EXT1`, `EXT2` or `EXT4`.
    pub opcode: &'static str,
    pub via: Via,
}

/// How the last recognised stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It reached STOP.
    Complete,
    /// The input ran out; `offset` is the input length, so a longer prefix of a longer file
    /// may let the analysis go further.
    Truncated { offset: u64 },
    /// It stopped at `offset`: an invalid opcode or argument, an inconsistent stack, or an
    /// analysis limit (the findings say which).
    Invalid { offset: u64 },
}

/// Everything [`analyse`] learned about some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleAnalysis {
    /// Whether the bytes are a pickle: the first stream starts with a valid PROTO (not
    /// followed at once by an invalid opcode, unless imports hide behind it), or parses to
    /// STOP leaving exactly one value, or imports a global with identifier-like names before
    /// any error, or runs into an analysis limit without an error. When false, every other
    /// field is empty or zero (`end` says where parsing failed).
    pub is_pickle: bool,
    /// Pickle streams recognised one after the other (legacy `torch.save` files hold 5).
    pub streams: u32,
    /// The highest PROTO seen in the recognised streams.
    pub protocol: Option<u8>,
    /// Every distinct global (by qualified name), in first-occurrence order.
    pub globals: Vec<ImportedGlobal>,
    /// REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX and BUILD opcodes executed.
    pub calls: u64,
    /// Bytes covered by the recognised streams, from offset 0.
    pub consumed: u64,
    /// The only evidence is imports of module names that cannot name a module (empty, with
    /// spaces or punctuation), which printable text produces by accident (`callbacks: [x]\n`
    /// reads as GLOBAL `allbacks: [x]`). CPython would still call `find_class`, but nothing
    /// that exists gets imported; the caller decides (binary bytes are a pickle all the
    /// same, printable text is not).
    pub weak_evidence: bool,
    /// How the last recognised stream ended.
    pub end: End,
    /// `pickle-dangerous-global`, `pickle-extension-code`, `pickle-malformed`,
    /// `pickle-frame-violation`, `pickle-limit-exceeded` and `pickle-nested` findings, with
    /// `@offset` locations. Never `pickle-format`: the caller decides the format.
    pub findings: Vec<Finding>,
}

impl PickleAnalysis {
    /// The globals outside the tensor-only allowlist.
    pub fn dangerous_globals(&self) -> impl Iterator<Item = &ImportedGlobal> {
        self.globals
            .iter()
            .filter(|imported| imported.class == GlobalClass::Dangerous)
    }
}

/// Analyses untrusted bytes as a sequence of pickle streams, executing nothing.
pub fn analyse(bytes: &[u8], limits: &PickleLimits) -> PickleAnalysis {
    analyse_with(&Memory(bytes), limits, Sizes::default()).unwrap_or_else(unreadable)
}

/// [`analyse`] on a source read by offset through a bounded buffer: memory does not grow with
/// the source's size. Read errors are returned, never taken for the end of the input.
pub fn analyse_source(source: &dyn ReadAt, limits: &PickleLimits) -> io::Result<PickleAnalysis> {
    analyse_with(source, limits, Sizes::default())
}

fn analyse_with(
    source: &dyn ReadAt,
    limits: &PickleLimits,
    sizes: Sizes,
) -> io::Result<PickleAnalysis> {
    let mut budget = machine::Budget::new(limits, sizes);
    let inner = machine::analyse_source(source, limits, &mut budget, 0)?;
    Ok(analysis_of(inner, &budget))
}

fn analysis_of(inner: machine::Inner, budget: &machine::Budget) -> PickleAnalysis {
    if !inner.is_pickle {
        return PickleAnalysis {
            is_pickle: false,
            streams: 0,
            protocol: None,
            globals: Vec::new(),
            calls: 0,
            consumed: 0,
            weak_evidence: false,
            end: inner.end,
            findings: Vec::new(),
        };
    }
    let weak_evidence = inner.weak_evidence();
    let mut findings = Vec::new();
    for imported in &inner.globals {
        if imported.opcode.starts_with("EXT") {
            continue;
        }
        findings.push(match imported.class {
            GlobalClass::Dangerous => dangerous_finding(imported),
            GlobalClass::TensorOnly => allowlisted_finding(imported),
        });
    }
    findings.extend(inner.notes.into_iter().map(machine::Note::into_finding));
    if let Some(tripped) = budget.tripped() {
        let offset = match inner.end {
            End::Complete => inner.consumed,
            End::Truncated { offset } | End::Invalid { offset } => offset,
        };
        findings.push(Finding::new(Code::PickleLimitExceeded, tripped).at(format!("@{offset}")));
    }
    PickleAnalysis {
        is_pickle: true,
        streams: inner.streams,
        protocol: inner.protocol,
        globals: inner.globals,
        calls: inner.calls,
        consumed: inner.consumed,
        weak_evidence,
        end: inner.end,
        findings,
    }
}

/// Bytes in memory cannot fail to read; should they, the answer is still not "no pickle".
fn unreadable(error: io::Error) -> PickleAnalysis {
    PickleAnalysis {
        is_pickle: true,
        streams: 0,
        protocol: None,
        globals: Vec::new(),
        calls: 0,
        consumed: 0,
        weak_evidence: false,
        end: End::Invalid { offset: 0 },
        findings: vec![Finding::new(
            Code::PickleLimitExceeded,
            format!("the pickle could not be read: {error}"),
        )],
    }
}

/// Imports a pickle stream embedded anywhere in `bytes` would make: GLOBAL/INST with two
/// identifier lines and STACK_GLOBAL right after two string pushes, at any offset. For opaque
/// binary data, where no loader's reading starts at a known place; the caller bounds `bytes`
/// (its windows are searched in place).
pub fn embedded_imports(bytes: &[u8], limits: &PickleLimits) -> Vec<ImportedGlobal> {
    let mut budget = machine::Budget::new(limits, Sizes::default());
    let mut inner = machine::Inner::empty();
    recover::recover_bytes(bytes, limits, &mut budget, &mut inner);
    inner.globals
}

fn allowlisted_finding(imported: &ImportedGlobal) -> Finding {
    let written = imported.global.written();
    Finding::new(
        Code::PickleGlobal,
        format!(
            "imports `{}`, which is on the tensor-only allowlist",
            quote(&written)
        ),
    )
    .with_global(written)
    .at(format!("@{}", imported.offset))
}

fn dangerous_finding(imported: &ImportedGlobal) -> Finding {
    let qualified = imported.global.qualified();
    let how = match imported.via {
        Via::Stream => "",
        Via::Nested => " (in a nested pickle)",
        Via::Recovery => " (past a malformed point, where a tolerant loader may still reach it)",
    };
    let written = imported.global.written();
    let resolved = if written == qualified {
        String::new()
    } else {
        format!(" (`{}` in Python 3)", quote(&qualified))
    };
    // `global` carries the name as the file spells it; the message also gives what it
    // resolves to, so both spellings can be searched for.
    Finding::new(
        Code::PickleDangerousGlobal,
        format!(
            "imports `{}`{resolved}, which is not on the tensor-only allowlist{how}",
            quote(&written)
        ),
    )
    .with_global(written)
    .at(format!("@{}", imported.offset))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::finding::Severity;

    fn run(bytes: &[u8]) -> PickleAnalysis {
        analyse(bytes, &PickleLimits::default())
    }

    fn names(analysis: &PickleAnalysis) -> Vec<String> {
        analysis
            .globals
            .iter()
            .map(|imported| imported.global.qualified())
            .collect()
    }

    fn codes(analysis: &PickleAnalysis) -> Vec<&'static str> {
        analysis
            .findings
            .iter()
            .map(|finding| finding.code.as_str())
            .collect()
    }

    /// Every finding says only that an allowlisted global is imported.
    fn only_allowlisted(analysis: &PickleAnalysis) -> bool {
        analysis
            .findings
            .iter()
            .all(|f| f.code == Code::PickleGlobal)
    }

    fn count(analysis: &PickleAnalysis, code: Code) -> usize {
        analysis.findings.iter().filter(|f| f.code == code).count()
    }

    /// `\x80\x04` + one FRAME around `body`, as protocol 4 writes small pickles.
    fn proto4(body: &[u8]) -> Vec<u8> {
        let mut out = b"\x80\x04\x95".to_vec();
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn short_unicode(text: &str) -> Vec<u8> {
        let mut out = vec![0x8c, text.len() as u8];
        out.extend_from_slice(text.as_bytes());
        out
    }

    fn binunicode(text: &str) -> Vec<u8> {
        let mut out = b"X".to_vec();
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// A `torch.save`-shaped state dict: one float tensor under `weight`.
    fn torch_state_dict() -> Vec<u8> {
        let mut out = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01".to_vec();
        out.extend(binunicode("weight"));
        out.extend_from_slice(b"q\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((");
        out.extend(binunicode("storage"));
        out.extend_from_slice(b"q\x04ctorch\nFloatStorage\nq\x05");
        out.extend(binunicode("0"));
        out.extend_from_slice(b"q\x06");
        out.extend(binunicode("cpu"));
        out.extend_from_slice(
            b"q\x07K\x04tq\x08QK\x00K\x02K\x02\x86q\tK\x02K\x01\x86q\n\x89h\x00)Rq\x0btq\x0cRq\rs.",
        );
        out
    }

    fn os_system_proto2() -> Vec<u8> {
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.".to_vec()
    }

    #[test]
    fn protocol_0_os_system() {
        let analysis = run(b"cos\nsystem\n(S'ls'\ntR.");
        assert!(analysis.is_pickle);
        assert_eq!(analysis.streams, 1);
        assert_eq!(analysis.protocol, None);
        assert_eq!(names(&analysis), ["os.system"]);
        let imported = &analysis.globals[0];
        assert_eq!(imported.class, GlobalClass::Dangerous);
        assert_eq!(
            (imported.offset, imported.opcode, imported.via),
            (0, "GLOBAL", Via::Stream)
        );
        assert_eq!(analysis.calls, 1);
        assert_eq!(analysis.end, End::Complete);
        assert_eq!(analysis.consumed, 21);
        assert_eq!(analysis.findings.len(), 1);
        let finding = &analysis.findings[0];
        assert_eq!(finding.code, Code::PickleDangerousGlobal);
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(
            finding.message,
            "imports `os.system`, which is not on the tensor-only allowlist"
        );
        assert_eq!(finding.global.as_deref(), Some("os.system"));
        assert_eq!(finding.location.as_deref(), Some("@0"));
    }

    #[test]
    fn protocol_2_global_and_reduce() {
        let analysis = run(&os_system_proto2());
        assert!(analysis.is_pickle);
        assert_eq!(analysis.protocol, Some(2));
        assert_eq!(names(&analysis), ["posix.system"]);
        assert_eq!(analysis.globals[0].offset, 2);
        assert_eq!(analysis.calls, 1);
        assert_eq!(codes(&analysis), ["pickle-dangerous-global"]);
    }

    #[test]
    fn protocol_4_stack_global_with_memoize() {
        let mut body = short_unicode("os");
        body.push(0x94);
        body.extend(short_unicode("system"));
        body.extend_from_slice(b"\x94\x93\x94");
        body.extend(short_unicode("ls"));
        body.extend_from_slice(b"\x94\x85\x94R\x94.");
        let analysis = run(&proto4(&body));
        assert_eq!(analysis.protocol, Some(4));
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(analysis.globals[0].opcode, "STACK_GLOBAL");
        assert_eq!(analysis.globals[0].offset, 11 + 4 + 1 + 8 + 1);
        assert_eq!(analysis.end, End::Complete);
        assert_eq!(codes(&analysis), ["pickle-dangerous-global"]);
    }

    #[test]
    fn stack_global_operands_from_the_memo() {
        let mut bytes = b"\x80\x04".to_vec();
        bytes.extend(short_unicode("subprocess"));
        bytes.extend_from_slice(b"q\x070");
        bytes.extend(short_unicode("Popen"));
        bytes.extend_from_slice(b"r\x09\x00\x00\x000N)h\x07j\x09\x00\x00\x00\x93)R.");
        let analysis = run(&bytes);
        assert_eq!(names(&analysis), ["subprocess.Popen"]);
        assert_eq!(analysis.end, End::Complete);
        // GET by text key works too.
        let analysis = run(b"Vos\np0\n0Vsystem\np1\n0g0\ng1\n\x93.");
        assert_eq!(names(&analysis), ["os.system"]);
    }

    #[test]
    fn stack_global_with_unknown_operands_fails_closed() {
        // A call's result may be a string at run time.
        let analysis = run(b"\x80\x04N)R\x8c\x06system\x93.");
        assert_eq!(names(&analysis), ["?.system"]);
        let analysis = run(b"\x80\x04N)RN)R\x93.");
        assert_eq!(names(&analysis), ["?.?"]);
        assert_eq!(analysis.globals[0].class, GlobalClass::Dangerous);
        assert_eq!(count(&analysis, Code::PickleDangerousGlobal), 1);
        // Operands that are surely not strings stop CPython: "STACK_GLOBAL requires str".
        let analysis = run(b"\x80\x04K\x01\x8c\x06system\x93.");
        assert!(analysis.globals.is_empty());
        assert_eq!(count(&analysis, Code::PickleMalformed), 1);
    }

    #[test]
    fn dotted_names_are_classified_whole() {
        let mut bytes = b"\x80\x04".to_vec();
        bytes.extend(short_unicode("builtins"));
        bytes.extend(short_unicode("getattr.__call__"));
        bytes.push(0x93);
        bytes.extend(short_unicode("torch"));
        bytes.extend(short_unicode("_utils._rebuild_tensor"));
        bytes.extend_from_slice(b"\x93\x86.");
        let analysis = run(&bytes);
        assert_eq!(
            names(&analysis),
            ["builtins.getattr.__call__", "torch._utils._rebuild_tensor"]
        );
        assert_eq!(analysis.globals[0].class, GlobalClass::Dangerous);
        assert_eq!(analysis.globals[1].class, GlobalClass::TensorOnly);
        assert_eq!(count(&analysis, Code::PickleDangerousGlobal), 1);
    }

    #[test]
    fn python_2_module_names_are_normalised() {
        let analysis = run(b"c__builtin__\neval\n(S'1'\ntRccopy_reg\n_reconstructor\n0.");
        assert_eq!(
            names(&analysis),
            ["builtins.eval", "copyreg._reconstructor"]
        );
        assert_eq!(analysis.globals[0].class, GlobalClass::Dangerous);
    }

    #[test]
    fn inst_imports_and_calls() {
        let analysis = run(b"(S'ls'\nios\nsystem\n.");
        assert!(analysis.is_pickle);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(analysis.globals[0].opcode, "INST");
        assert_eq!(analysis.globals[0].offset, 7);
        assert_eq!(analysis.calls, 1);
        assert_eq!(analysis.end, End::Complete);
    }

    #[test]
    fn extension_codes_are_critical() {
        let analysis = run(b"\x80\x02\x82\x01)R\x83\x00\x01)R0.");
        assert_eq!(
            names(&analysis),
            ["copyreg.extension:1", "copyreg.extension:256"]
        );
        assert!(analysis
            .globals
            .iter()
            .all(|g| g.class == GlobalClass::Dangerous));
        assert_eq!(
            codes(&analysis),
            ["pickle-extension-code", "pickle-extension-code"]
        );
        let finding = &analysis.findings[0];
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(finding.global.as_deref(), Some("copyreg.extension:1"));
        assert_eq!(finding.location.as_deref(), Some("@2"));
        // Code 0 is refused by CPython.
        let analysis = run(b"\x80\x02\x82\x00.");
        assert_eq!(codes(&analysis), ["pickle-malformed"]);
    }

    #[test]
    fn nested_pickle_in_binbytes() {
        let payload = b"cos\nsystem\n(S'id'\ntR.";
        let mut bytes = b"\x80\x03cbuiltins\nbytes\nB".to_vec();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let content_at = bytes.len() as u64;
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(b"\x85R.");
        let analysis = run(&bytes);
        assert_eq!(names(&analysis), ["builtins.bytes", "os.system"]);
        let nested = &analysis.globals[1];
        assert_eq!(nested.via, Via::Nested);
        assert_eq!(nested.offset, content_at);
        assert_eq!(count(&analysis, Code::PickleNested), 1);
        let nested_finding = analysis
            .findings
            .iter()
            .find(|f| f.code == Code::PickleNested)
            .unwrap();
        assert_eq!(nested_finding.location.as_deref(), Some("@18"));
        let dangerous = analysis
            .findings
            .iter()
            .find(|f| f.code == Code::PickleDangerousGlobal)
            .unwrap();
        assert_eq!(dangerous.location, Some(format!("@{content_at}")));
        assert!(dangerous.message.contains("nested"));
        assert_eq!(analysis.calls, 2);
    }

    #[test]
    fn nested_pickle_in_latin1_text_of_codecs_encode() {
        // Protocol 2 pickles bytes as `_codecs.encode(latin-1 text, 'latin1')`.
        let inner = "\u{80}\u{2}cos\nsystem\n.";
        let mut bytes = b"\x80\x02c_codecs\nencode\n".to_vec();
        bytes.extend(binunicode(inner));
        bytes.extend(binunicode("latin1"));
        bytes.extend_from_slice(b"\x86R.");
        let analysis = run(&bytes);
        assert_eq!(names(&analysis), ["_codecs.encode", "os.system"]);
        assert_eq!(count(&analysis, Code::PickleNested), 1);
    }

    #[test]
    fn benign_nested_data_is_not_a_nested_pickle() {
        // Bytes that start like PROTO but do not parse on are tensor data, not a pickle.
        let analysis = run(b"\x80\x03C\x08\x80\x02\xff\xff\x00\x01\x02\x03q\x00.");
        assert!(analysis.findings.is_empty(), "{:?}", analysis.findings);
        // A string that merely starts with an opcode letter is not one either.
        let analysis = run(b"\x80\x03X\x0b\x00\x00\x00cuda:0 textq\x00.");
        assert!(analysis.findings.is_empty());
    }

    #[test]
    fn two_concatenated_streams() {
        let mut bytes = torch_state_dict();
        let first_len = bytes.len() as u64;
        bytes.extend(os_system_proto2());
        let analysis = run(&bytes);
        assert_eq!(analysis.streams, 2);
        assert_eq!(analysis.consumed, bytes.len() as u64);
        assert_eq!(analysis.end, End::Complete);
        assert_eq!(analysis.dangerous_globals().count(), 1);
        let posix = analysis.dangerous_globals().next().unwrap();
        assert_eq!(posix.global.qualified(), "posix.system");
        assert_eq!(posix.offset, first_len + 2);
    }

    #[test]
    fn legacy_torch_shape_five_streams_then_raw_storage() {
        let mut bytes = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.".to_vec();
        bytes.extend_from_slice(b"\x80\x02M\xe9\x03.");
        bytes.extend_from_slice(b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\r\x00\x00\x00little_endianq\x02\x88u.");
        bytes.extend(torch_state_dict());
        bytes.extend_from_slice(b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a.");
        let pickles_end = bytes.len() as u64;
        // Storage sizes come first; 128 elements reads like PROTO 0, and is still raw data.
        bytes.extend_from_slice(&128u64.to_le_bytes());
        for index in 0..128 {
            bytes.extend_from_slice(&(index as f32 * 0.5).to_le_bytes());
        }
        let analysis = run(&bytes);
        assert!(analysis.is_pickle);
        assert_eq!(analysis.streams, 5);
        assert_eq!(analysis.consumed, pickles_end);
        assert_eq!(analysis.end, End::Complete);
        assert_eq!(analysis.protocol, Some(2));
        assert!(only_allowlisted(&analysis), "{:?}", analysis.findings);
        assert_eq!(analysis.dangerous_globals().count(), 0);
    }

    #[test]
    fn benign_torch_state_dict_has_no_dangerous_globals() {
        let analysis = run(&torch_state_dict());
        assert!(analysis.is_pickle);
        assert_eq!(
            names(&analysis),
            [
                "collections.OrderedDict",
                "torch._utils._rebuild_tensor_v2",
                "torch.FloatStorage"
            ]
        );
        assert!(analysis
            .globals
            .iter()
            .all(|g| g.class == GlobalClass::TensorOnly));
        assert!(only_allowlisted(&analysis), "{:?}", analysis.findings);
        assert_eq!(analysis.end, End::Complete);
        assert_eq!(analysis.calls, 3);
    }

    #[test]
    fn payload_then_invalid_opcode_is_still_reported() {
        // nullifAI: the payload runs before the loader trips over the broken rest.
        let mut bytes = os_system_proto2();
        bytes.pop();
        let bad_at = bytes.len() as u64;
        bytes.extend_from_slice(b"\x00\xff\xfe");
        let analysis = run(&bytes);
        assert!(analysis.is_pickle);
        assert_eq!(names(&analysis), ["posix.system"]);
        assert_eq!(analysis.end, End::Invalid { offset: bad_at });
        assert_eq!(
            codes(&analysis),
            ["pickle-dangerous-global", "pickle-malformed"]
        );
        let malformed = &analysis.findings[1];
        assert_eq!(malformed.location, Some(format!("@{bad_at}")));
        assert!(malformed.message.contains("invalid opcode 0x00"));
    }

    #[test]
    fn payload_then_truncation_is_still_reported() {
        let bytes = b"\x80\x02cos\nsystem\nX\xff\x00\x00\x00ab";
        let analysis = run(bytes);
        assert!(analysis.is_pickle);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(
            analysis.end,
            End::Truncated {
                offset: bytes.len() as u64
            }
        );
        assert_eq!(
            codes(&analysis),
            ["pickle-dangerous-global", "pickle-malformed"]
        );
        // Lengths are checked before anything is allocated.
        let analysis = run(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f");
        assert_eq!(analysis.end, End::Truncated { offset: 11 });
        let analysis = run(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff");
        assert_eq!(analysis.end, End::Invalid { offset: 2 });
    }

    #[test]
    fn malformed_streams() {
        for (bytes, offset, text) in [
            (&b"\x80\x02R."[..], 2, "stack underflow at `REDUCE`"),
            (b"\x80\x02N(0R.", 5, "stack underflow at `REDUCE`"),
            (b"\x80\x02Nt.", 3, "`TUPLE` without a MARK"),
            (b"\x80\x02h\x05.", 2, "memo key 5"),
            (b"\x80\x02gx\n.", 2, "memo key `x`"),
            (b"\x80\x02c\xff\nx\n.", 2, "not UTF-8"),
            (b"\x80\x02X\x01\x00\x00\x00\xff.", 2, "not UTF-8"),
            (b"\x80\x02(K\x01d.", 5, "odd number of items for `DICT`"),
            (b"\x80\x02Sabc\n.", 2, "must be quoted"),
            (b"\x80\x02\x80\x09.", 2, "unsupported pickle protocol 9"),
            (b"\x80\x02T\xff\xff\xff\xff.", 2, "negative length"),
            (b"\x80\x02.", 2, "stack underflow at `STOP`"),
        ] {
            let analysis = run(bytes);
            assert!(analysis.is_pickle, "{bytes:?}");
            assert_eq!(analysis.end, End::Invalid { offset }, "{bytes:?}");
            let finding = analysis
                .findings
                .iter()
                .find(|f| f.code == Code::PickleMalformed)
                .unwrap();
            assert!(
                finding.message.contains(text),
                "{bytes:?}: {}",
                finding.message
            );
            assert_eq!(finding.location, Some(format!("@{offset}")));
        }
    }

    #[test]
    fn pop_right_after_mark_drops_the_mark() {
        let analysis = run(b"N(0.");
        assert!(analysis.is_pickle);
        assert_eq!(analysis.end, End::Complete);
    }

    #[test]
    fn frame_straddle_is_a_violation() {
        // The frame ends one byte into `SHORT_BINUNICODE 'os'`.
        let mut bytes = b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00".to_vec();
        bytes.extend(short_unicode("os"));
        bytes.extend(short_unicode("system"));
        bytes.extend_from_slice(b"\x93)R.");
        let analysis = run(&bytes);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(analysis.end, End::Complete);
        let violation = analysis
            .findings
            .iter()
            .find(|f| f.code == Code::PickleFrameViolation)
            .unwrap();
        assert_eq!(violation.location.as_deref(), Some("@11"));
        assert!(violation.message.contains("straddles"));
        // A well-framed pickle has no violation.
        let analysis = run(&proto4(b"N."));
        assert!(analysis.findings.is_empty());
    }

    #[test]
    fn frame_past_end_and_frame_inside_frame_are_violations() {
        let analysis = run(b"\x80\x04\x95\xe8\x03\x00\x00\x00\x00\x00\x00N.");
        assert_eq!(codes(&analysis), ["pickle-frame-violation"]);
        assert!(analysis.findings[0].message.contains("past the end"));
        assert_eq!(analysis.end, End::Complete);
        let inner = b"\x95\x02\x00\x00\x00\x00\x00\x00\x00N.";
        let analysis = run(&proto4(inner));
        assert_eq!(codes(&analysis), ["pickle-frame-violation"]);
        assert!(analysis.findings[0]
            .message
            .contains("before the current frame ends"));
    }

    #[test]
    fn memo_billion_laughs_stays_linear() {
        let mut bytes = b"\x80\x02]q\x00".to_vec();
        for _ in 0..100_000 {
            bytes.extend_from_slice(b"h\x002a");
        }
        bytes.extend_from_slice(b"0h\x00.");
        let started = Instant::now();
        let analysis = run(&bytes);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(analysis.end, End::Complete);
        assert!(analysis.findings.is_empty());
    }

    #[test]
    fn opcode_limit() {
        let limits = PickleLimits {
            max_opcodes: 10,
            ..PickleLimits::default()
        };
        let mut bytes = b"\x80\x02".to_vec();
        bytes.extend_from_slice(&[b'N'; 20]);
        bytes.push(b'.');
        let analysis = analyse(&bytes, &limits);
        assert!(analysis.is_pickle);
        assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
        assert!(analysis.findings[0].message.contains("10 opcodes"));
        assert!(matches!(analysis.end, End::Invalid { .. }));
        // Without a PROTO, a stream that is still valid when the limit hits is a pickle too.
        let analysis = analyse(&bytes[2..], &limits);
        assert!(analysis.is_pickle);
    }

    #[test]
    fn deadline_limit() {
        let limits = PickleLimits {
            deadline: Some(Instant::now()),
            ..PickleLimits::default()
        };
        let mut bytes = b"\x80\x02".to_vec();
        bytes.extend(std::iter::repeat_n(*b"N0", 5000).flatten());
        bytes.extend_from_slice(b"N.");
        let analysis = analyse(&bytes, &limits);
        assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
        assert!(analysis.findings[0].message.contains("deadline"));
    }

    #[test]
    fn memo_and_stack_limits() {
        let limits = PickleLimits {
            max_memo: 2,
            max_stack: 3,
            ..PickleLimits::default()
        };
        let analysis = analyse(b"\x80\x02Nq\x00q\x01q\x02.", &limits);
        assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
        assert!(analysis.findings[0].message.contains("memo"));
        assert_eq!(analysis.end, End::Invalid { offset: 7 });
        let analysis = analyse(b"\x80\x02NNNN.", &limits);
        assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
        assert!(analysis.findings[0].message.contains("stack"));
        // Marks count against the stack too.
        let analysis = analyse(b"\x80\x02((((.", &limits);
        assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
    }

    #[test]
    fn globals_limit() {
        let limits = PickleLimits {
            max_globals: 2,
            ..PickleLimits::default()
        };
        let analysis = analyse(b"ca\nb\n0cc\nd\n0ce\nf\n0N.", &limits);
        assert_eq!(names(&analysis), ["a.b", "c.d"]);
        assert_eq!(count(&analysis, Code::PickleLimitExceeded), 1);
        assert_eq!(count(&analysis, Code::PickleDangerousGlobal), 2);
    }

    #[test]
    fn streams_limit() {
        let limits = PickleLimits {
            max_streams: 2,
            ..PickleLimits::default()
        };
        let analysis = analyse(b"N.N.N.", &limits);
        assert_eq!(analysis.streams, 2);
        assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
        assert_eq!(analysis.findings[0].location.as_deref(), Some("@4"));
        // Raw data after the last stream is no reason.
        let analysis = analyse(b"N.N.\x00\x00", &limits);
        assert!(analysis.findings.is_empty());
    }

    #[test]
    fn nesting_limit() {
        fn wrap(inner: &[u8]) -> Vec<u8> {
            let mut out = b"\x80\x03B".to_vec();
            out.extend_from_slice(&(inner.len() as u32).to_le_bytes());
            out.extend_from_slice(inner);
            out.push(b'.');
            out
        }
        let mut bytes = b"\x80\x02cos\nsystem\n.".to_vec();
        for _ in 0..3 {
            bytes = wrap(&bytes);
        }
        let analysis = run(&bytes);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(count(&analysis, Code::PickleNested), 3);
        assert_eq!(count(&analysis, Code::PickleLimitExceeded), 0);
        let limits = PickleLimits {
            max_nesting: 2,
            ..PickleLimits::default()
        };
        let analysis = analyse(&bytes, &limits);
        assert_eq!(count(&analysis, Code::PickleLimitExceeded), 1);
        assert!(analysis.globals.is_empty());
        assert_eq!(count(&analysis, Code::PickleNested), 2);
    }

    #[test]
    fn not_pickles() {
        let mut random = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            random.push(state.to_le_bytes()[0]);
        }
        for bytes in [
            &b""[..],
            b"hello world",
            b"hello world\n",
            b"{\"a\": 1}",
            b"[1, 2, 3]\n",
            b"call me\nmaybe\n",
            &[0u8; 4096],
            &random,
            b"\x80\x07N.",
            // A safetensors header of 640 bytes: PROTO 2, then nothing that parses.
            b"\x80\x02\x00\x00\x00\x00\x00\x00{\"w\":{\"dtype\":\"F32\"}}",
            b"\x80",
            b"# a python file\nimport os\n",
            b"PK\x03\x04\x14\x00\x00\x00",
        ] {
            let analysis = run(bytes);
            if analysis.is_pickle {
                // Text that reads as an import of a module that cannot exist.
                assert!(analysis.weak_evidence, "{bytes:?}");
                continue;
            }
            assert!(analysis.findings.is_empty(), "{bytes:?}");
            assert!(analysis.globals.is_empty(), "{bytes:?}");
            assert_eq!(analysis.streams, 0);
        }
    }

    #[test]
    fn proto_then_garbage_is_a_pickle_only_with_hidden_imports() {
        let analysis = run(b"\x80\x02\x00 junk cos\nsystem\n");
        assert!(analysis.is_pickle);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(analysis.globals[0].via, Via::Recovery);
        assert_eq!(analysis.end, End::Invalid { offset: 2 });
        assert_eq!(
            codes(&analysis),
            ["pickle-dangerous-global", "pickle-malformed"]
        );
        // Broken later, it is a (malformed) pickle whatever follows.
        let analysis = run(b"\x80\x02N\x00");
        assert!(analysis.is_pickle);
        assert_eq!(codes(&analysis), ["pickle-malformed"]);
    }

    #[test]
    fn minimal_pickles() {
        for bytes in [
            &b"N."[..],
            b"\x80\x02N.",
            b"\x80\x05",
            b"I1\n.",
            b"(lp0\nI1\naI2\na.",
        ] {
            assert!(run(bytes).is_pickle, "{bytes:?}");
        }
        // A protocol 0 pickle cut short is not yet recognisable; the caller may read more.
        let analysis = run(b"(lp0\nI1\naI2\n");
        assert!(!analysis.is_pickle);
        assert_eq!(analysis.end, End::Truncated { offset: 12 });
    }

    #[test]
    fn recovery_scan_finds_globals_after_garbage() {
        let mut bytes = b"\x80\x02N\x00 raw array bytes \x01\x02 cos\nsystem\n".to_vec();
        bytes.extend_from_slice(b"\xff\xfe");
        bytes.extend(short_unicode("subprocess"));
        bytes.push(0x94);
        bytes.extend(short_unicode("run"));
        bytes.extend_from_slice(b"q\x05\x93 tail");
        let analysis = run(&bytes);
        assert_eq!(names(&analysis), ["os.system", "subprocess.run"]);
        assert!(analysis.globals.iter().all(|g| g.via == Via::Recovery));
        assert_eq!(analysis.globals[0].offset, 24);
        assert_eq!(analysis.globals[1].opcode, "STACK_GLOBAL");
        assert_eq!(analysis.end, End::Invalid { offset: 3 });
        assert!(analysis.findings[0].message.contains("malformed point"));
        // Text that only looks like names is not taken for a global.
        let analysis = run(b"\x80\x02N\x00 call me\nmaybe\n cat dog\n");
        assert!(analysis.globals.is_empty());
    }

    #[test]
    fn recovery_scan_skips_suffixes_but_not_what_follows_a_decoy() {
        let analysis = run(b"\x80\x02N\x00cbuiltins\nset\np0\ncab\ncos\nsystem\n");
        assert_eq!(names(&analysis), ["builtins.set", "ab.cos", "os.system"]);
    }

    #[test]
    fn recovery_scan_tries_a_global_right_after_a_string_push() {
        // joblib: raw array bytes, then a string whose content ends in `i...`, then GLOBAL.
        let mut bytes = b"\x80\x02N\r\xff\xffN.\x00\x00".to_vec();
        bytes.extend(binunicode("intercept_"));
        bytes.extend_from_slice(b"cos\nsystem\n");
        bytes.extend(short_unicode("intercept_"));
        bytes.extend_from_slice(b"q\x01cposix\nsystem\n");
        let analysis = run(&bytes);
        let names = names(&analysis);
        assert!(names.contains(&"os.system".to_owned()), "{names:?}");
        assert!(names.contains(&"posix.system".to_owned()), "{names:?}");
    }

    #[test]
    fn recovery_scan_of_hostile_filler_stays_fast() {
        let mut bytes = b"\x80\x02N\x00".to_vec();
        for _ in 0..1024 {
            bytes.extend_from_slice(&[b'c'; 250]);
            bytes.extend_from_slice(b" \n");
        }
        bytes.extend_from_slice(&[b'U'; 256 * 1024]);
        bytes.extend_from_slice(&[b'i'; 256 * 1024]);
        let started = Instant::now();
        let analysis = run(&bytes);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(analysis.globals.is_empty());
        assert_eq!(codes(&analysis), ["pickle-malformed"]);
    }

    #[test]
    fn later_streams_can_carry_the_payload() {
        let mut bytes = b"\x80\x02N.".to_vec();
        bytes.extend_from_slice(b"cos\nsystem\n\x00");
        let analysis = run(&bytes);
        assert_eq!(analysis.streams, 2);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(analysis.end, End::Invalid { offset: 15 });
    }

    #[test]
    fn mutated_pickles_never_panic() {
        let limits = PickleLimits {
            max_opcodes: 100_000,
            ..PickleLimits::default()
        };
        let mut seeds = vec![torch_state_dict(), os_system_proto2()];
        seeds.push(b"cos\nsystem\n(S'ls'\ntR.".to_vec());
        seeds.push(proto4(b"\x8c\x02os\x94\x8c\x06system\x94\x93\x94)R."));
        for seed in seeds {
            for at in 0..seed.len() {
                for value in [0x00, 0x0a, 0x28, 0x2e, 0x63, 0x80, 0x93, 0x95, 0xff] {
                    let mut bytes = seed.clone();
                    bytes[at] = value;
                    let analysis = analyse(&bytes, &limits);
                    assert!(analysis.consumed <= bytes.len() as u64);
                    if !analysis.is_pickle {
                        assert!(analysis.findings.is_empty());
                    }
                    let _ = analyse(&bytes[..at], &limits);
                }
            }
        }
    }

    #[test]
    fn hostile_names_are_escaped_in_messages() {
        let analysis = run(b"cos\x1b[2J\nsys`tem\n.");
        let finding = &analysis.findings[0];
        assert!(!finding.message.contains('\x1b'));
        assert!(finding.message.contains("\\u{1b}[2J"));
        assert!(finding.message.contains("sys\\`tem"));
        assert_eq!(finding.global.as_deref(), Some("os\x1b[2J.sys`tem"));
    }

    #[test]
    fn every_opcode_is_understood() {
        // One pickle using every opcode of protocols 0-5 once, built as CPython would read it.
        let mut bytes = b"\x80\x05(N\x88\x89K\x01M\x02\x00J\x03\x00\x00\x00".to_vec();
        bytes.extend_from_slice(
            b"G\x00\x00\x00\x00\x00\x00\xf0?F1.5\nI7\nL8L\n\x8a\x01\x01\x8b\x01\x00\x00\x00\x02",
        );
        bytes.extend_from_slice(b"S'a\\x41'\nT\x01\x00\x00\x00bU\x01cV\\u0041\nX\x01\x00\x00\x00d");
        bytes.extend_from_slice(b"\x8c\x01e\x8d\x01\x00\x00\x00\x00\x00\x00\x00f");
        bytes.extend_from_slice(b"B\x01\x00\x00\x00gC\x01h\x8e\x01\x00\x00\x00\x00\x00\x00\x00i\x96\x01\x00\x00\x00\x00\x00\x00\x00j\x98");
        bytes.extend_from_slice(b"l]}\x8f)(t\x85\x86\x87(\x91\x8f(\x90](e}(u0");
        bytes.extend_from_slice(
            b"\x94p1\nq\x02r\x03\x00\x00\x00g1\nh\x02j\x03\x00\x00\x00(N12Pabc\nQ\x97",
        );
        bytes.extend_from_slice(b"cbuiltins\nset\n)R(ccollections\nOrderedDict\no}b");
        bytes.extend_from_slice(
            b"(K\x01K\x02d\x81NK\x01sNa0\x8c\x08builtins\x8c\x05slice\x93)}\x92",
        );
        bytes.extend_from_slice(b"\x82\x01(ibuiltins\nint\n\x95\x00\x00\x00\x00\x00\x00\x00\x00.");
        let analysis = run(&bytes);
        assert_eq!(analysis.end, End::Complete, "{:?}", analysis.findings);
        assert_eq!(
            names(&analysis),
            [
                "builtins.set",
                "collections.OrderedDict",
                "builtins.slice",
                "copyreg.extension:1",
                "builtins.int"
            ]
        );
        assert_eq!(
            codes(&analysis),
            [
                "pickle-global",
                "pickle-global",
                "pickle-global",
                "pickle-global",
                "pickle-extension-code"
            ]
        );
        assert_eq!(analysis.calls, 6);
    }
}
