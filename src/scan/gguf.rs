//! GGUF validation: a deep, fail-closed check of the header, every metadata value, every
//! tensor info and the layout of the tensor data, so that an accepted file is exactly what the
//! GGUF spec (ggml `docs/gguf.md`, versions 2 and 3, little-endian) describes.
//!
//! GGUF holds no code, which is why a valid file is accepted; the danger is a loader's parser,
//! so anything a strict reader would trip over is a finding here. This module reads only the
//! bytes it is handed (the caller's scan window over the file) and the file's length; it must
//! not read the file itself, touch tensor data, or decide the verdict.

use std::collections::HashSet;

use crate::finding::{quote_bytes, CappedFindings, Code, Finding, Severity};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Facts about a GGUF file whose header, metadata and tensor infos all parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufSummary {
    pub version: u32,
    pub tensor_count: u64,
    pub kv_count: u64,
    /// `general.alignment`, or the default of 32.
    pub alignment: u64,
    /// Absolute offset of the tensor data section (the aligned end of the tensor infos).
    pub data_offset: u64,
    /// `general.architecture`, when present.
    pub architecture: Option<String>,
}

/// What [`check`] established: a summary when the metadata parsed, and every finding.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufReport {
    pub summary: Option<GgufSummary>,
    pub findings: Vec<Finding>,
}

/// Validates a GGUF file. `head` is the start of the file (all of it, or the caller's scan
/// window) and `file_len` its full length; tensor extents are checked against `file_len`.
///
/// Metadata that runs past `head` while the file goes on is `scan-limit-exceeded`; metadata
/// that runs past the end of the file is `gguf-invalid`. Never panics, never allocates from a
/// length it has not checked against the bytes that remain.
pub fn check(head: &[u8], file_len: u64) -> GgufReport {
    // A caller bug could pass a head longer than the file; the head is what we have.
    let file_len = file_len.max(head.len() as u64);
    let mut parser = Parser {
        cur: Cursor { buf: head, pos: 0 },
        file_len,
        findings: CappedFindings::default(),
    };
    let summary = match parser.parse() {
        Ok(summary) => Some(summary),
        Err(stop) => {
            let finding = parser.stop_finding(stop);
            parser.findings.push(finding);
            None
        }
    };
    GgufReport {
        summary,
        findings: parser.findings.finish(),
    }
}

// Spec bounds, and bounds of our own so that hostile nesting cannot exhaust the stack.
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_ARRAY_DEPTH: u32 = 4;
const MAX_TENSOR_NAME: u64 = 64;
const MAX_KEY_LEN: u64 = 65_535;
const MAX_DIMS: u32 = 4;

// Smallest encodings, used to reject counts that cannot fit in the bytes that remain before
// looping over them: key length + 1 key byte + value type + 1 value byte; name length +
// n_dims + one dim + type + offset.
const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

/// Metadata value types (`gguf_metadata_value_type`).
mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Block layout of a ggml tensor type: elements per block and bytes per block.
#[derive(Debug, Clone, Copy)]
struct GgmlType {
    name: &'static str,
    block: u64,
    size: u64,
}

/// The ggml types a GGUF file may name (ggml.h `enum ggml_type`; the gaps are removed types).
/// Sizes come from the block structs in ggml-common.h.
fn ggml_type(id: u32) -> Option<GgmlType> {
    let (name, block, size) = match id {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        40 => ("NVFP4", 64, 36),
        41 => ("Q1_0", 128, 18),
        42 => ("Q2_0", 64, 18),
        _ => return None,
    };
    Some(GgmlType { name, block, size })
}

/// Why parsing could not go on.
enum Stop {
    /// `need` bytes were wanted at `at` but the head ends first (`need` saturates on overflow).
    Truncated { at: usize, need: u64 },
    /// The structure is broken at `at`; the cursor cannot be trusted past it.
    Fatal { at: usize, message: String },
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        self.buf.len().saturating_sub(self.pos) as u64
    }

    /// Fails unless `need` bytes (`None`: an overflowed size) remain.
    fn ensure(&self, need: Option<u64>) -> Result<(), Stop> {
        match need {
            Some(need) if need <= self.remaining() => Ok(()),
            need => Err(Stop::Truncated {
                at: self.pos,
                need: need.unwrap_or(u64::MAX),
            }),
        }
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Stop> {
        self.ensure(Some(len))?;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .and_then(|end| self.buf.get(self.pos..end).map(|bytes| (bytes, end)));
        match bytes {
            Some((bytes, end)) => {
                self.pos = end;
                Ok(bytes)
            }
            None => Err(Stop::Truncated {
                at: self.pos,
                need: len,
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let bytes = self.take(N as u64)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Stop> {
        self.array().map(u64::from_le_bytes)
    }

    /// A GGUF string: u64 length, then that many bytes (not yet checked as UTF-8).
    fn string(&mut self) -> Result<&'a [u8], Stop> {
        let len = self.u64()?;
        self.take(len)
    }
}

/// A metadata value, kept only as far as validation needs it.
enum Value<'a> {
    U32(u32),
    Str(&'a str),
    Other,
}

struct Parser<'a> {
    cur: Cursor<'a>,
    file_len: u64,
    findings: CappedFindings,
}

/// One tensor info, with its data extent relative to the data section.
struct TensorInfo {
    name: String,
    at: usize,
    offset: u64,
    size: u64,
}

impl<'a> Parser<'a> {
    fn parse(&mut self) -> Result<GgufSummary, Stop> {
        let magic = self.cur.take(4)?;
        if magic != MAGIC {
            return Err(self.fatal_at(0, format!("missing GGUF magic (found {magic:02x?})")));
        }
        let version = self.cur.u32()?;
        match version {
            2 | 3 => {}
            1 => return Err(self.fatal_at(4, "gguf version 1 is not supported (only 2 and 3)")),
            v if v & 0xffff == 0 && matches!(v.swap_bytes(), 1..=3) => {
                return Err(self.fatal_at(
                    4,
                    format!(
                        "big-endian gguf (version {}) is not supported",
                        v.swap_bytes()
                    ),
                ))
            }
            v => return Err(self.fatal_at(4, format!("unknown gguf version {v}"))),
        }
        let tensor_count = self.cur.u64()?;
        let kv_count = self.cur.u64()?;
        self.cur.ensure(kv_count.checked_mul(MIN_KV_BYTES))?;

        let mut alignment = None;
        let mut architecture = None;
        let mut keys = HashSet::new();
        for _ in 0..kv_count {
            self.kv(&mut keys, &mut alignment, &mut architecture)?;
        }
        let alignment = alignment.unwrap_or(DEFAULT_ALIGNMENT);

        self.cur
            .ensure(tensor_count.checked_mul(MIN_TENSOR_INFO_BYTES))?;
        let mut tensors = Vec::new();
        let mut names = HashSet::new();
        for _ in 0..tensor_count {
            if let Some(info) = self.tensor_info(alignment, &mut names)? {
                tensors.push(info);
            }
        }

        let end_of_infos = self.cur.pos as u64;
        let data_offset = align_up(end_of_infos, alignment).ok_or_else(|| {
            self.fatal_at(self.cur.pos, "data section offset overflows".to_owned())
        })?;
        self.check_layout(&tensors, tensor_count, data_offset, alignment);

        Ok(GgufSummary {
            version,
            tensor_count,
            kv_count,
            alignment,
            data_offset,
            architecture,
        })
    }

    fn kv(
        &mut self,
        keys: &mut HashSet<&'a [u8]>,
        alignment: &mut Option<u64>,
        architecture: &mut Option<String>,
    ) -> Result<(), Stop> {
        let at = self.cur.pos;
        let key = self.cur.string()?;
        let shown = quote_bytes(key);
        match std::str::from_utf8(key) {
            Ok("") => self.invalid(at, "metadata key is empty".to_owned()),
            Ok(_) => {}
            Err(_) => self.invalid(at, format!("metadata key `{shown}` is not valid utf-8")),
        }
        if key.len() as u64 > MAX_KEY_LEN {
            self.invalid(
                at,
                format!("metadata key `{shown}` is longer than {MAX_KEY_LEN} bytes"),
            );
        }
        if !keys.insert(key) {
            self.invalid(at, format!("duplicate metadata key `{shown}`"));
        }
        let vtype = self.cur.u32()?;
        let value = self.value(vtype, &shown, 0)?;
        match key {
            b"general.alignment" => match value {
                Value::U32(a) if a != 0 && a.is_power_of_two() => *alignment = Some(a.into()),
                Value::U32(a) => {
                    self.invalid(
                        at,
                        format!("`general.alignment` {a} is not a nonzero power of two"),
                    );
                    // Keep validating offsets against something sane.
                    *alignment = Some(DEFAULT_ALIGNMENT);
                }
                _ => self.invalid(
                    at,
                    format!("`general.alignment` has type {vtype}, not uint32"),
                ),
            },
            _ if key.starts_with(b"tokenizer.chat_template") => {
                if let Value::Str(template) = value {
                    for finding in super::template::check(template) {
                        self.findings.push(finding.at(format!("@{at}")));
                    }
                }
            }
            b"general.architecture" => match value {
                Value::Str(s) => *architecture = Some(s.to_owned()),
                _ => self.invalid(
                    at,
                    format!("`general.architecture` has type {vtype}, not string"),
                ),
            },
            _ => {}
        }
        Ok(())
    }

    /// Reads one value of type `vtype`; `key` (already escaped) names it in findings.
    fn value(&mut self, vtype: u32, key: &str, depth: u32) -> Result<Value<'a>, Stop> {
        let at = self.cur.pos;
        let value = match vtype {
            vt::U8 | vt::I8 => {
                self.cur.take(1)?;
                Value::Other
            }
            vt::U16 | vt::I16 => {
                self.cur.take(2)?;
                Value::Other
            }
            vt::U32 => Value::U32(self.cur.u32()?),
            vt::I32 | vt::F32 => {
                self.cur.take(4)?;
                Value::Other
            }
            vt::U64 | vt::I64 | vt::F64 => {
                self.cur.take(8)?;
                Value::Other
            }
            vt::BOOL => {
                let b = self.cur.u8()?;
                if b > 1 {
                    self.invalid(at, format!("bool in `{key}` has value {b}, not 0 or 1"));
                }
                Value::Other
            }
            vt::STRING => {
                let bytes = self.cur.string()?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Value::Str(s),
                    Err(_) => {
                        self.invalid(at, format!("string in `{key}` is not valid utf-8"));
                        Value::Other
                    }
                }
            }
            vt::ARRAY => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.fatal_at(
                        at,
                        format!("arrays in `{key}` nest deeper than {MAX_ARRAY_DEPTH} levels"),
                    ));
                }
                let etype = self.cur.u32()?;
                let count = self.cur.u64()?;
                let min = min_value_bytes(etype).ok_or_else(|| {
                    self.fatal_at(
                        at,
                        format!("array in `{key}` has unknown element type {etype}"),
                    )
                })?;
                // Bound the count by the bytes left before looping over it.
                self.cur.ensure(count.checked_mul(min))?;
                for _ in 0..count {
                    self.value(etype, key, depth + 1)?;
                }
                Value::Other
            }
            other => {
                return Err(self.fatal_at(at, format!("`{key}` has unknown value type {other}")))
            }
        };
        Ok(value)
    }

    fn tensor_info(
        &mut self,
        alignment: u64,
        names: &mut HashSet<&'a [u8]>,
    ) -> Result<Option<TensorInfo>, Stop> {
        let at = self.cur.pos;
        let name = self.cur.string()?;
        let shown = quote_bytes(name);
        if std::str::from_utf8(name).is_err() {
            self.invalid(at, format!("tensor name `{shown}` is not valid utf-8"));
        }
        if name.len() as u64 > MAX_TENSOR_NAME {
            self.invalid(
                at,
                format!("tensor name `{shown}` is longer than {MAX_TENSOR_NAME} bytes"),
            );
        }
        if !names.insert(name) {
            self.invalid(at, format!("duplicate tensor name `{shown}`"));
        }
        let n_dims = self.cur.u32()?;
        if !(1..=MAX_DIMS).contains(&n_dims) {
            return Err(self.fatal_at(
                at,
                format!("tensor `{shown}` has {n_dims} dimensions (allowed 1 to {MAX_DIMS})"),
            ));
        }
        let mut dims = [1u64; MAX_DIMS as usize];
        for dim in dims.iter_mut().take(n_dims as usize) {
            *dim = self.cur.u64()?;
        }
        let type_id = self.cur.u32()?;
        let offset = self.cur.u64()?;

        let mut ok = true;
        if dims.contains(&0) || dims.iter().any(|d| i64::try_from(*d).is_err()) {
            self.invalid(
                at,
                format!("tensor `{shown}` has a dimension of 0 or above 2^63"),
            );
            ok = false;
        }
        let elements = dims
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d))
            .filter(|n| i64::try_from(*n).is_ok());
        if elements.is_none() {
            self.invalid(at, format!("tensor `{shown}` element count overflows"));
            ok = false;
        }
        let Some(ty) = ggml_type(type_id) else {
            self.invalid(
                at,
                format!("tensor `{shown}` has unknown ggml type {type_id}"),
            );
            return Ok(None);
        };
        if dims[0] % ty.block != 0 {
            self.invalid(
                at,
                format!(
                    "tensor `{shown}` first dimension {} is not a multiple of the {} block size {}",
                    dims[0], ty.name, ty.block
                ),
            );
            ok = false;
        }
        if offset % alignment != 0 {
            self.invalid(
                at,
                format!("tensor `{shown}` offset {offset} is not a multiple of the alignment {alignment}"),
            );
        }
        if !ok {
            return Ok(None);
        }
        let size = (dims[0] / ty.block).checked_mul(ty.size).and_then(|s| {
            dims.iter()
                .skip(1)
                .try_fold(s, |acc, d| acc.checked_mul(*d))
        });
        let Some(size) = size else {
            self.invalid(at, format!("tensor `{shown}` byte size overflows"));
            return Ok(None);
        };
        Ok(Some(TensorInfo {
            name: shown,
            at,
            offset,
            size,
        }))
    }

    /// Every tensor inside the file, no two overlapping, nothing hidden after the last one.
    fn check_layout(
        &mut self,
        tensors: &[TensorInfo],
        tensor_count: u64,
        data_offset: u64,
        alignment: u64,
    ) {
        let mut extents = Vec::new();
        for t in tensors.iter() {
            let extent = data_offset
                .checked_add(t.offset)
                .and_then(|start| start.checked_add(t.size).map(|end| (start, end)));
            match extent {
                Some((start, end)) if end <= self.file_len => extents.push((start, end, t)),
                _ => self.invalid(
                    t.at,
                    format!(
                        "tensor `{}` data [{data_offset} + {}, + {}) runs past the end of the file ({} bytes)",
                        t.name, t.offset, t.size, self.file_len
                    ),
                ),
            }
        }
        extents.sort_by_key(|(start, end, _)| (*start, *end));
        let mut reach: Option<(u64, &TensorInfo)> = None;
        let mut overlaps = Vec::new();
        for (start, end, t) in &extents {
            if let Some((prev_end, prev)) = reach {
                if *start < prev_end {
                    overlaps.push((t.at, t.name.clone(), prev.name.clone()));
                }
            }
            if reach.is_none_or(|(prev_end, _)| *end > prev_end) {
                reach = Some((*end, t));
            }
        }
        for (at, name, other) in overlaps {
            self.invalid(at, format!("tensor `{name}` overlaps tensor `{other}`"));
        }
        // Writers pad every tensor to the alignment, so anything past the padded end of the
        // data is not part of the model (a place to hide a second, loadable format). Only
        // said when every tensor was laid out: bytes of a rejected tensor are not "extra".
        if extents.len() as u64 != tensor_count {
            return;
        }
        let end = reach.map_or(data_offset, |(end, _)| end);
        if let Some(padded) = align_up(end, alignment) {
            if self.file_len > padded {
                self.findings.push(
                    Finding::new(
                        Code::GgufInvalid,
                        format!(
                            "{} bytes follow the tensor data",
                            self.file_len.saturating_sub(end)
                        ),
                    )
                    .with_severity(Severity::Warning)
                    .at(format!("@{end}")),
                );
            }
        }
    }

    fn invalid(&mut self, at: usize, message: String) {
        self.findings
            .push(Finding::new(Code::GgufInvalid, message).at(format!("@{at}")));
    }

    fn fatal_at(&self, at: usize, message: impl Into<String>) -> Stop {
        Stop::Fatal {
            at,
            message: message.into(),
        }
    }

    fn stop_finding(&self, stop: Stop) -> Finding {
        match stop {
            Stop::Fatal { at, message } => {
                Finding::new(Code::GgufInvalid, message).at(format!("@{at}"))
            }
            Stop::Truncated { at, need } => {
                let head_len = self.cur.buf.len() as u64;
                let fits_in_file = (at as u64)
                    .checked_add(need)
                    .is_some_and(|end| end <= self.file_len);
                if head_len < self.file_len && fits_in_file {
                    Finding::new(
                        Code::ScanLimitExceeded,
                        format!("gguf metadata larger than the scan window ({head_len} bytes)"),
                    )
                    .at(format!("@{at}"))
                } else if need == u64::MAX {
                    Finding::new(
                        Code::GgufInvalid,
                        "a length or count overflows the file size",
                    )
                    .at(format!("@{at}"))
                } else {
                    Finding::new(
                        Code::GgufInvalid,
                        format!(
                            "truncated: {need} bytes needed but the file ends ({} bytes)",
                            self.file_len
                        ),
                    )
                    .at(format!("@{at}"))
                }
            }
        }
    }
}

/// The fewest bytes one value of `vtype` can occupy, or `None` for an unknown type.
fn min_value_bytes(vtype: u32) -> Option<u64> {
    Some(match vtype {
        vt::U8 | vt::I8 | vt::BOOL => 1,
        vt::U16 | vt::I16 => 2,
        vt::U32 | vt::I32 | vt::F32 => 4,
        vt::U64 | vt::I64 | vt::F64 | vt::STRING => 8,
        // element type + count
        vt::ARRAY => 12,
        _ => return None,
    })
}

fn align_up(n: u64, alignment: u64) -> Option<u64> {
    let rem = n.checked_rem(alignment)?;
    if rem == 0 {
        Some(n)
    } else {
        n.checked_add(alignment - rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF builder for tests: raw little-endian pieces, no validation of its own.
    #[derive(Default)]
    struct Gguf {
        kvs: Vec<u8>,
        kv_count: u64,
        infos: Vec<u8>,
        tensor_count: u64,
        version: u32,
    }

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s);
    }

    impl Gguf {
        fn new() -> Self {
            Gguf {
                version: 3,
                ..Default::default()
            }
        }

        fn kv_raw(mut self, key: &[u8], vtype: u32, value: &[u8]) -> Self {
            string(&mut self.kvs, key);
            self.kvs.extend(vtype.to_le_bytes());
            self.kvs.extend(value);
            self.kv_count += 1;
            self
        }

        fn kv_str(self, key: &str, value: &str) -> Self {
            let mut v = Vec::new();
            string(&mut v, value.as_bytes());
            self.kv_raw(key.as_bytes(), vt::STRING, &v)
        }

        fn kv_u32(self, key: &str, value: u32) -> Self {
            self.kv_raw(key.as_bytes(), vt::U32, &value.to_le_bytes())
        }

        fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
            string(&mut self.infos, name.as_bytes());
            self.infos.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                self.infos.extend(d.to_le_bytes());
            }
            self.infos.extend(ty.to_le_bytes());
            self.infos.extend(offset.to_le_bytes());
            self.tensor_count += 1;
            self
        }

        /// Header, metadata and infos, padded to `alignment`, then `data` bytes of zeros.
        fn build(&self, alignment: usize, data: usize) -> Vec<u8> {
            let mut out = MAGIC.to_vec();
            out.extend(self.version.to_le_bytes());
            out.extend(self.tensor_count.to_le_bytes());
            out.extend(self.kv_count.to_le_bytes());
            out.extend(&self.kvs);
            out.extend(&self.infos);
            while out.len() % alignment != 0 {
                out.push(0);
            }
            out.resize(out.len() + data, 0);
            out
        }
    }

    fn valid() -> Gguf {
        let mut tokens = Vec::new();
        tokens.extend(vt::STRING.to_le_bytes());
        tokens.extend(2u64.to_le_bytes());
        string(&mut tokens, b"hello");
        string(&mut tokens, b"world");
        Gguf::new()
            .kv_str("general.architecture", "llama")
            .kv_raw(b"tokenizer.ggml.tokens", vt::ARRAY, &tokens)
            .kv_u32("general.alignment", 64)
            .kv_raw(b"general.flag", vt::BOOL, &[1])
            // F32 [8, 2] = 64 bytes at 0; Q8_0 [64] = 2 blocks * 34 = 68 bytes at 64.
            .tensor("a.weight", &[8, 2], 0, 0)
            .tensor("b.weight", &[64], 8, 64)
    }

    fn codes(report: &GgufReport) -> Vec<(Code, Severity)> {
        report
            .findings
            .iter()
            .map(|f| (f.code, f.severity))
            .collect()
    }

    fn assert_invalid(bytes: &[u8], needle: &str) {
        let report = check(bytes, bytes.len() as u64);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.code == Code::GgufInvalid && f.message.contains(needle)),
            "no gguf-invalid containing {needle:?}: {:#?}",
            report.findings
        );
    }

    #[test]
    fn accepts_a_valid_file() {
        let bytes = valid().build(64, 64 + 68 + 60);
        let report = check(&bytes, bytes.len() as u64);
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        let summary = report.summary.unwrap();
        assert_eq!(summary.version, 3);
        assert_eq!(summary.tensor_count, 2);
        assert_eq!(summary.kv_count, 4);
        assert_eq!(summary.alignment, 64);
        assert_eq!(summary.data_offset % 64, 0);
        assert_eq!(summary.architecture.as_deref(), Some("llama"));
    }

    #[test]
    fn accepts_version_2_and_default_alignment_and_nested_arrays() {
        let mut inner = Vec::new();
        inner.extend(vt::U8.to_le_bytes());
        inner.extend(2u64.to_le_bytes());
        inner.extend([1, 2]);
        let mut outer = Vec::new();
        outer.extend(vt::ARRAY.to_le_bytes());
        outer.extend(2u64.to_le_bytes());
        outer.extend(&inner);
        outer.extend(&inner);
        let mut g = Gguf::new()
            .kv_raw(b"nested", vt::ARRAY, &outer)
            .tensor("t", &[4], 0, 0);
        g.version = 2;
        let bytes = g.build(32, 32);
        let report = check(&bytes, bytes.len() as u64);
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        assert_eq!(report.summary.unwrap().alignment, 32);
    }

    #[test]
    fn rejects_bad_magic_and_versions() {
        let mut bytes = valid().build(64, 192);
        bytes[0] = b'X';
        assert_invalid(&bytes, "magic");

        let mut g = valid();
        g.version = 1;
        assert_invalid(&g.build(64, 192), "version 1");
        g.version = 7;
        assert_invalid(&g.build(64, 192), "unknown gguf version 7");
        g.version = 3u32.swap_bytes();
        assert_invalid(&g.build(64, 192), "big-endian");
    }

    #[test]
    fn rejects_huge_string_length_before_allocating() {
        let mut v = Vec::new();
        v.extend(u64::MAX.to_le_bytes());
        let bytes = Gguf::new().kv_raw(b"k", vt::STRING, &v).build(32, 0);
        assert_invalid(&bytes, "overflows");
        let mut v = Vec::new();
        v.extend((1u64 << 40).to_le_bytes());
        let bytes = Gguf::new().kv_raw(b"k", vt::STRING, &v).build(32, 0);
        assert_invalid(&bytes, "truncated");
    }

    #[test]
    fn rejects_huge_array_count() {
        let mut v = Vec::new();
        v.extend(vt::U64.to_le_bytes());
        v.extend((u64::MAX / 4).to_le_bytes());
        let bytes = Gguf::new().kv_raw(b"k", vt::ARRAY, &v).build(32, 0);
        assert_invalid(&bytes, "overflows");
        let mut v = Vec::new();
        v.extend(vt::STRING.to_le_bytes());
        v.extend(1_000_000u64.to_le_bytes());
        let bytes = Gguf::new().kv_raw(b"k", vt::ARRAY, &v).build(32, 0);
        assert_invalid(&bytes, "truncated");
    }

    #[test]
    fn rejects_huge_counts_in_the_header() {
        let mut bytes = valid().build(64, 192);
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_invalid(&bytes, "overflows");
        let mut bytes = valid().build(64, 192);
        bytes[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_invalid(&bytes, "truncated");
    }

    #[test]
    fn rejects_arrays_nested_too_deep() {
        // Innermost: array of 0 u8; wrap it in arrays of one element, deeper than allowed.
        let mut v = Vec::new();
        v.extend(vt::U8.to_le_bytes());
        v.extend(0u64.to_le_bytes());
        for _ in 0..MAX_ARRAY_DEPTH {
            let mut outer = Vec::new();
            outer.extend(vt::ARRAY.to_le_bytes());
            outer.extend(1u64.to_le_bytes());
            outer.extend(&v);
            v = outer;
        }
        let bytes = Gguf::new().kv_raw(b"deep", vt::ARRAY, &v).build(32, 0);
        assert_invalid(&bytes, "nest deeper");
    }

    #[test]
    fn survives_an_array_nesting_bomb() {
        let mut v = Vec::new();
        for _ in 0..100_000 {
            v.extend(vt::ARRAY.to_le_bytes());
            v.extend(1u64.to_le_bytes());
        }
        let bytes = Gguf::new().kv_raw(b"bomb", vt::ARRAY, &v).build(32, 0);
        assert_invalid(&bytes, "nest deeper");
    }

    #[test]
    fn rejects_duplicate_keys() {
        let bytes = valid().kv_u32("general.alignment", 64).build(64, 192);
        assert_invalid(&bytes, "duplicate metadata key `general.alignment`");
    }

    #[test]
    fn rejects_bad_alignment() {
        for a in [0, 3, 48] {
            let bytes = Gguf::new().kv_u32("general.alignment", a).build(32, 0);
            assert_invalid(&bytes, "not a nonzero power of two");
        }
        let bytes = Gguf::new()
            .kv_raw(b"general.alignment", vt::U64, &32u64.to_le_bytes())
            .build(32, 0);
        assert_invalid(&bytes, "not uint32");
    }

    #[test]
    fn rejects_bad_bool_and_non_string_architecture() {
        let bytes = Gguf::new().kv_raw(b"b", vt::BOOL, &[2]).build(32, 0);
        assert_invalid(&bytes, "not 0 or 1");
        let bytes = Gguf::new().kv_u32("general.architecture", 1).build(32, 0);
        assert_invalid(&bytes, "not string");
    }

    #[test]
    fn rejects_invalid_utf8_and_bad_keys() {
        let mut v = Vec::new();
        string(&mut v, &[0xff, 0xfe]);
        let bytes = Gguf::new().kv_raw(b"k", vt::STRING, &v).build(32, 0);
        assert_invalid(&bytes, "string in `k` is not valid utf-8");
        let bytes = Gguf::new().kv_raw(&[0xc3], vt::U8, &[0]).build(32, 0);
        assert_invalid(&bytes, "key `\u{fffd}` is not valid utf-8");
        let bytes = Gguf::new().kv_raw(b"", vt::U8, &[0]).build(32, 0);
        assert_invalid(&bytes, "key is empty");
        let bytes = Gguf::new().kv_raw(b"k", 13, &[0]).build(32, 0);
        assert_invalid(&bytes, "unknown value type 13");
        let mut v = Vec::new();
        v.extend(77u32.to_le_bytes());
        v.extend(0u64.to_le_bytes());
        let bytes = Gguf::new().kv_raw(b"k", vt::ARRAY, &v).build(32, 0);
        assert_invalid(&bytes, "unknown element type 77");
    }

    #[test]
    fn escapes_hostile_names() {
        let bytes = Gguf::new().kv_raw(b"\x1b[31m", 13, &[]).build(32, 0);
        let report = check(&bytes, bytes.len() as u64);
        assert!(report.findings[0].message.contains("`\\u{1b}[31m`"));
    }

    #[test]
    fn rejects_bad_tensor_infos() {
        let bytes = Gguf::new().tensor("t", &[4], 99, 0).build(32, 32);
        assert_invalid(&bytes, "unknown ggml type 99");
        let bytes = Gguf::new().tensor("t", &[4], 4, 0).build(32, 32);
        assert_invalid(&bytes, "unknown ggml type 4");
        let bytes = Gguf::new().tensor("t", &[33], 8, 0).build(32, 64);
        assert_invalid(&bytes, "not a multiple of the Q8_0 block size 32");
        let bytes = Gguf::new().tensor("t", &[4, 0], 0, 0).build(32, 32);
        assert_invalid(&bytes, "dimension of 0");
        let bytes = Gguf::new().tensor("t", &[1; 5], 0, 0).build(32, 32);
        assert_invalid(&bytes, "5 dimensions");
        let bytes = Gguf::new().tensor("t", &[], 0, 0).build(32, 32);
        assert_invalid(&bytes, "0 dimensions");
        let bytes = Gguf::new()
            .tensor("t", &[1 << 62, 1 << 62], 0, 0)
            .build(32, 32);
        assert_invalid(&bytes, "element count overflows");
        let bytes = Gguf::new()
            .tensor(&"n".repeat(65), &[4], 0, 0)
            .build(32, 32);
        assert_invalid(&bytes, "longer than 64 bytes");
    }

    #[test]
    fn rejects_tensor_past_end() {
        let bytes = valid().build(64, 64 + 67);
        assert_invalid(&bytes, "runs past the end of the file");
        // The bytes that are there belong to the rejected tensor, not "extra" data.
        let bytes = Gguf::new().tensor("t", &[64], 0, 0).build(32, 200);
        let report = check(&bytes, bytes.len() as u64);
        assert_eq!(codes(&report), [(Code::GgufInvalid, Severity::Error)]);
        let bytes = Gguf::new()
            .tensor("t", &[4], 0, u64::MAX - 31)
            .build(32, 32);
        assert_invalid(&bytes, "runs past the end of the file");
    }

    #[test]
    fn rejects_overlapping_tensors() {
        let bytes = Gguf::new()
            .tensor("a", &[16], 0, 0)
            .tensor("b", &[8], 0, 32)
            .build(32, 64);
        assert_invalid(&bytes, "tensor `b` overlaps tensor `a`");
    }

    #[test]
    fn rejects_misaligned_offset() {
        let bytes = Gguf::new().tensor("a", &[4], 0, 16).build(32, 64);
        assert_invalid(&bytes, "offset 16 is not a multiple of the alignment 32");
    }

    #[test]
    fn rejects_duplicate_tensor_names() {
        let bytes = Gguf::new()
            .tensor("a", &[8], 0, 0)
            .tensor("a", &[8], 0, 32)
            .build(32, 64);
        assert_invalid(&bytes, "duplicate tensor name `a`");
    }

    #[test]
    fn warns_about_bytes_after_the_data() {
        let bytes = Gguf::new().tensor("a", &[8], 0, 0).build(32, 32 + 100);
        let report = check(&bytes, bytes.len() as u64);
        assert_eq!(codes(&report), [(Code::GgufInvalid, Severity::Warning)]);
        assert!(report.findings[0]
            .message
            .contains("follow the tensor data"));
        assert!(report.summary.is_some());
    }

    #[test]
    fn truncation_inside_the_window_is_invalid_beyond_it_a_scan_limit() {
        let bytes = valid().build(64, 192);
        let cut = 60;
        // The whole file is the head: truncated file.
        let report = check(&bytes[..cut], cut as u64);
        assert_eq!(codes(&report), [(Code::GgufInvalid, Severity::Error)]);
        assert!(report.findings[0].message.contains("truncated"));
        assert!(report.summary.is_none());
        // The head is a window over a longer file: a scan limit.
        let report = check(&bytes[..cut], bytes.len() as u64);
        assert_eq!(codes(&report), [(Code::ScanLimitExceeded, Severity::Error)]);
        assert!(report.findings[0]
            .message
            .contains("larger than the scan window"));
        // A window whose metadata is complete checks tensor extents against the file length.
        let data_offset = check(&bytes, bytes.len() as u64)
            .summary
            .unwrap()
            .data_offset as usize;
        let report = check(&bytes[..data_offset], bytes.len() as u64);
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        // The metadata itself, without even the padding, is enough.
        let report = check(&bytes[..data_offset - 34], bytes.len() as u64);
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn caps_the_number_of_findings() {
        let mut g = Gguf::new();
        for _ in 0..200 {
            g = g.kv_raw(b"b", vt::BOOL, &[9]);
        }
        let report = check(&g.build(32, 0), 0);
        assert_eq!(report.findings.len(), CappedFindings::CAP + 1);
        assert!(report
            .findings
            .last()
            .unwrap()
            .message
            .contains("further findings"));
    }

    #[test]
    fn never_panics_on_prefixes_or_byte_flips() {
        let bytes = valid().build(64, 192);
        for cut in 0..bytes.len() {
            check(&bytes[..cut], cut as u64);
            check(&bytes[..cut], bytes.len() as u64);
        }
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                check(&b, b.len() as u64);
            }
        }
    }
}
