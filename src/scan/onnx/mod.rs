//! ONNX validation: a strict protobuf wire-format walk of a `ModelProto` (onnx.proto) that
//! reaches every tensor in the model, in the main graph, in subgraphs held by node attributes,
//! in training graphs and in model-local functions, and checks where each one's external data
//! would be read from.
//!
//! ONNX holds no code, which is why a valid model is accepted; the dangers are a loader's
//! parser and external data paths that escape the model's directory (`../../etc/passwd`,
//! `/dev/zero`, `C:\...`). Anything that is not well-formed protobuf of the expected shape is
//! a finding, so an accepted file is one every protobuf reader reads the same way. This module
//! reads only the bytes it is handed: it must not open external data files, copy tensor data,
//! or decide the verdict.

use std::collections::HashSet;

use crate::finding::{quote_bytes, CappedFindings, Code, Finding, Severity};

/// Facts about a model whose `ModelProto` parsed completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxSummary {
    pub ir_version: i64,
    /// `(domain, version)` of each operator set import, in file order.
    pub opsets: Vec<(String, i64)>,
    pub producer: Option<String>,
    /// Nodes in every graph and function of the model, subgraphs included.
    pub nodes: u64,
    /// Dense and sparse initializers in every graph of the model, subgraphs included.
    pub initializers: u64,
    /// Distinct external data `location` values, in first-seen order (unsafe ones included;
    /// they also have findings).
    pub external_locations: Vec<String>,
}

/// What [`check`] established: a summary when the model parsed, and every finding.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxReport {
    pub summary: Option<OnnxSummary>,
    pub findings: Vec<Finding>,
}

/// A cheap content sniff: the file starts with field 1 (`ir_version`, varint) holding a
/// plausible version, followed by a well-formed protobuf tag.
pub fn looks_like_onnx(head: &[u8]) -> bool {
    if head.first() != Some(&0x08) {
        return false;
    }
    let mut wire = Wire::new(head, 0);
    wire.pos = 1;
    let plausible = wire
        .varint()
        .is_ok_and(|v| (1..=MAX_PLAUSIBLE_IR_VERSION).contains(&v));
    // Only the tag: the field it opens (often the whole graph) may extend past `head`.
    plausible
        && wire
            .tag()
            .is_ok_and(|(_, wire_type)| matches!(wire_type, 0 | 1 | 2 | 5))
}

/// Validates a whole ONNX model file.
pub fn check(bytes: &[u8]) -> OnnxReport {
    let mut walker = Walker::default();
    let summary = match walker.model(bytes) {
        Ok(summary) => Some(summary),
        Err(invalid) => {
            walker.findings.push(
                Finding::new(Code::OnnxInvalid, invalid.message).at(format!("@{}", invalid.at)),
            );
            None
        }
    };
    OnnxReport {
        summary,
        findings: walker.findings.finish(),
    }
}

// Protobuf nests messages; ONNX nests graphs inside node attributes inside graphs. Each
// message level counts once, so 64 allows about twenty levels of subgraphs.
const MAX_DEPTH: u32 = 64;
const MAX_PLAUSIBLE_IR_VERSION: u64 = 100;
const MAX_OPSETS: usize = 1024;
const MAX_LOCATIONS: usize = 4096;
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Something that cannot be parsed, at an absolute byte offset.
#[derive(Debug)]
struct Invalid {
    at: usize,
    message: String,
}

fn invalid(at: usize, message: impl Into<String>) -> Invalid {
    Invalid {
        at,
        message: message.into(),
    }
}

/// A protobuf field's payload.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    /// Length-delimited bytes and the absolute offset where they start.
    Len(&'a [u8], usize),
}

#[derive(Clone, Copy)]
struct Field<'a> {
    number: u64,
    payload: Payload<'a>,
    /// Absolute offset of the field's tag.
    at: usize,
}

/// A strict protobuf wire reader over one message's bytes.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf` in the file, for findings.
    base: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Wire { buf, pos: 0, base }
    }

    fn abs(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// A base-128 varint of at most 10 bytes whose value fits in 64 bits.
    fn varint(&mut self) -> Result<u64, Invalid> {
        let start = self.abs();
        let mut value = 0u64;
        for i in 0..10u32 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(invalid(start, "varint runs past the end of its message"));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(invalid(start, "varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid(start, "varint longer than 10 bytes"))
    }

    fn skip(&mut self, len: usize, what: &str) -> Result<&'a [u8], Invalid> {
        let at = self.abs();
        let bytes = self
            .pos
            .checked_add(len)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| invalid(at, format!("{what} runs past the end of its message")))?;
        self.pos += len;
        Ok(bytes)
    }

    /// A field tag: its field number and wire type.
    fn tag(&mut self) -> Result<(u64, u64), Invalid> {
        let at = self.abs();
        let tag = self.varint()?;
        if tag > u64::from(u32::MAX) {
            return Err(invalid(at, "field tag overflows 32 bits"));
        }
        let number = tag >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(invalid(at, format!("invalid field number {number}")));
        }
        Ok((number, tag & 7))
    }

    /// The next field, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<Field<'a>>, Invalid> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.abs();
        let (number, wire_type) = self.tag()?;
        let payload = match wire_type {
            0 => Payload::Varint(self.varint()?),
            1 => {
                self.skip(8, "fixed64 field")?;
                Payload::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len)
                    .map_err(|_| invalid(at, "length-delimited field runs past the end"))?;
                let start = self.abs();
                let bytes = self.skip(len, "length-delimited field")?;
                Payload::Len(bytes, start)
            }
            5 => {
                self.skip(4, "fixed32 field")?;
                Payload::Fixed32
            }
            3 | 4 => {
                return Err(invalid(
                    at,
                    format!("field {number} uses the deprecated group wire type"),
                ))
            }
            other => return Err(invalid(at, format!("field {number} has wire type {other}"))),
        };
        Ok(Some(Field {
            number,
            payload,
            at,
        }))
    }
}

/// The wire shapes a known field may take. Repeated scalars may be packed (length-delimited).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Len,
    Varint,
    Fixed32,
    PackedVarint,
    PackedFixed32,
    PackedFixed64,
}

/// Checks a known field's wire type (and a packed field's contents).
fn expect(field: &Field<'_>, shape: Shape, message: &str) -> Result<(), Invalid> {
    let ok = match (shape, field.payload) {
        (Shape::Len, Payload::Len(..)) => true,
        (Shape::Varint | Shape::PackedVarint, Payload::Varint(_)) => true,
        (Shape::Fixed32 | Shape::PackedFixed32, Payload::Fixed32) => true,
        (Shape::PackedFixed64, Payload::Fixed64) => true,
        (Shape::PackedVarint, Payload::Len(bytes, base)) => {
            let mut wire = Wire::new(bytes, base);
            while wire.pos < bytes.len() {
                wire.varint()?;
            }
            true
        }
        (Shape::PackedFixed32, Payload::Len(bytes, _)) => bytes.len() % 4 == 0,
        (Shape::PackedFixed64, Payload::Len(bytes, _)) => bytes.len() % 8 == 0,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field.at,
            format!("{message} field {} has the wrong wire type", field.number),
        ))
    }
}

fn len_payload<'a>(field: &Field<'a>, message: &str) -> Result<(&'a [u8], usize), Invalid> {
    expect(field, Shape::Len, message)?;
    match field.payload {
        Payload::Len(bytes, base) => Ok((bytes, base)),
        _ => Err(invalid(field.at, "unreachable wire type")),
    }
}

fn varint_payload(field: &Field<'_>, message: &str) -> Result<u64, Invalid> {
    match field.payload {
        Payload::Varint(v) => Ok(v),
        _ => Err(invalid(
            field.at,
            format!("{message} field {} has the wrong wire type", field.number),
        )),
    }
}

/// Known fields of each message we walk (onnx.proto), and their wire shapes. Fields not
/// listed are skipped, as any protobuf reader would.
fn shape(message: &str, number: u64) -> Option<Shape> {
    use Shape::*;
    Some(match (message, number) {
        ("ModelProto", 1 | 5) => Varint,
        ("ModelProto", 2 | 3 | 4 | 6 | 7 | 8 | 14 | 20 | 25 | 26) => Len,
        ("OperatorSetIdProto", 1) => Len,
        ("OperatorSetIdProto", 2) => Varint,
        ("GraphProto", 1 | 2 | 5 | 10 | 11 | 12 | 13 | 14 | 15 | 16) => Len,
        ("NodeProto", 1..=10) => Len,
        ("AttributeProto", 1 | 4..=6 | 9..=11 | 13..=15 | 21..=23) => Len,
        ("AttributeProto", 3 | 20) => Varint,
        ("AttributeProto", 2) => Fixed32,
        ("AttributeProto", 7) => PackedFixed32,
        ("AttributeProto", 8) => PackedVarint,
        ("TensorProto", 1 | 5 | 7 | 11) => PackedVarint,
        ("TensorProto", 2 | 14) => Varint,
        ("TensorProto", 3 | 6 | 8 | 9 | 12 | 13 | 16) => Len,
        ("TensorProto", 4) => PackedFixed32,
        ("TensorProto", 10) => PackedFixed64,
        ("SparseTensorProto", 1 | 2) => Len,
        ("SparseTensorProto", 3) => PackedVarint,
        ("StringStringEntryProto", 1 | 2) => Len,
        ("TrainingInfoProto", 1..=4) => Len,
        ("FunctionProto", 1 | 4..=14) => Len,
        _ => return None,
    })
}

/// Iterates a message's fields, checking each known field's wire type.
fn fields<'a>(
    bytes: &'a [u8],
    base: usize,
    message: &'static str,
    mut each: impl FnMut(Field<'a>) -> Result<(), Invalid>,
) -> Result<(), Invalid> {
    let mut wire = Wire::new(bytes, base);
    while let Some(field) = wire.next_field()? {
        if let Some(shape) = shape(message, field.number) {
            expect(&field, shape, message)?;
        }
        each(field)?;
    }
    Ok(())
}

#[derive(Default)]
struct Walker {
    findings: CappedFindings,
    nodes: u64,
    initializers: u64,
    locations: Vec<String>,
    seen_locations: HashSet<String>,
    locations_capped: bool,
}

impl Walker {
    fn model(&mut self, bytes: &[u8]) -> Result<OnnxSummary, Invalid> {
        const M: &str = "ModelProto";
        if bytes.is_empty() {
            return Err(invalid(0, "empty file"));
        }
        let mut ir_version = None;
        let mut opsets = Vec::new();
        let mut producer = None;
        let mut graphs = 0u64;
        fields(bytes, 0, M, |field| {
            match field.number {
                1 => ir_version = Some((varint_payload(&field, M)?, field.at)),
                2 => producer = Some(lossy(len_payload(&field, M)?.0)),
                7 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    graphs += 1;
                    self.graph(bytes, base, 1)?;
                }
                8 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    if opsets.len() >= MAX_OPSETS {
                        return Err(invalid(
                            field.at,
                            format!("more than {MAX_OPSETS} operator set imports"),
                        ));
                    }
                    opsets.push(opset(bytes, base)?);
                }
                20 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.training_info(bytes, base, 1)?;
                }
                25 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.function(bytes, base, 1)?;
                }
                _ => {}
            }
            Ok(())
        })?;
        let Some((ir_version, at)) = ir_version else {
            return Err(invalid(0, "model has no ir_version"));
        };
        if !(1..=MAX_PLAUSIBLE_IR_VERSION).contains(&ir_version) {
            return Err(invalid(
                at,
                format!(
                    "ir_version {} is not between 1 and {MAX_PLAUSIBLE_IR_VERSION}",
                    ir_version as i64
                ),
            ));
        }
        if graphs == 0 {
            return Err(invalid(0, "model has no graph"));
        }
        // Protobuf merges repeated singular messages; loaders would see one merged graph.
        if graphs > 1 {
            return Err(invalid(0, format!("model has {graphs} graph fields")));
        }
        if ir_version >= 3 && opsets.is_empty() {
            return Err(invalid(0, "model imports no operator set"));
        }
        Ok(OnnxSummary {
            ir_version: ir_version as i64,
            opsets,
            producer,
            nodes: self.nodes,
            initializers: self.initializers,
            external_locations: std::mem::take(&mut self.locations),
        })
    }

    fn enter(depth: u32, at: usize) -> Result<u32, Invalid> {
        if depth >= MAX_DEPTH {
            Err(invalid(
                at,
                format!("messages nest deeper than {MAX_DEPTH} levels"),
            ))
        } else {
            Ok(depth + 1)
        }
    }

    fn graph(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "GraphProto";
        let depth = Self::enter(depth, base)?;
        fields(bytes, base, M, |field| {
            match field.number {
                1 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.nodes = self.nodes.saturating_add(1);
                    self.node(bytes, base, depth)?;
                }
                5 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.initializers = self.initializers.saturating_add(1);
                    self.tensor(bytes, base, depth)?;
                }
                15 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.initializers = self.initializers.saturating_add(1);
                    self.sparse_tensor(bytes, base, depth)?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    fn node(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "NodeProto";
        let depth = Self::enter(depth, base)?;
        fields(bytes, base, M, |field| {
            if field.number == 5 {
                let (bytes, base) = len_payload(&field, M)?;
                self.attribute(bytes, base, depth)?;
            }
            Ok(())
        })
    }

    fn attribute(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "AttributeProto";
        let depth = Self::enter(depth, base)?;
        fields(bytes, base, M, |field| {
            match field.number {
                5 | 10 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.tensor(bytes, base, depth)?;
                }
                6 | 11 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.graph(bytes, base, depth)?;
                }
                22 | 23 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.sparse_tensor(bytes, base, depth)?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    fn training_info(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "TrainingInfoProto";
        let depth = Self::enter(depth, base)?;
        fields(bytes, base, M, |field| {
            if let 1 | 2 = field.number {
                let (bytes, base) = len_payload(&field, M)?;
                self.graph(bytes, base, depth)?;
            }
            Ok(())
        })
    }

    fn function(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "FunctionProto";
        let depth = Self::enter(depth, base)?;
        fields(bytes, base, M, |field| {
            match field.number {
                7 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.nodes = self.nodes.saturating_add(1);
                    self.node(bytes, base, depth)?;
                }
                // attribute_proto: default values of the function's attributes.
                11 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    self.attribute(bytes, base, depth)?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    fn sparse_tensor(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "SparseTensorProto";
        let depth = Self::enter(depth, base)?;
        fields(bytes, base, M, |field| {
            if let 1 | 2 = field.number {
                let (bytes, base) = len_payload(&field, M)?;
                self.tensor(bytes, base, depth)?;
            }
            Ok(())
        })
    }

    fn tensor(&mut self, bytes: &[u8], base: usize, depth: u32) -> Result<(), Invalid> {
        const M: &str = "TensorProto";
        Self::enter(depth, base)?;
        let mut name = None;
        let mut data_location = None;
        let mut entries = Vec::new();
        fields(bytes, base, M, |field| {
            match field.number {
                8 => name = Some(len_payload(&field, M)?.0),
                13 => {
                    let (bytes, base) = len_payload(&field, M)?;
                    entries.push(entry(bytes, base, field.at)?);
                }
                14 => data_location = Some((varint_payload(&field, M)?, field.at)),
                _ => {}
            }
            Ok(())
        })?;
        let shown = quote_bytes(name.unwrap_or_default());
        let external = match data_location {
            None | Some((0, _)) => false,
            Some((1, _)) => true,
            Some((other, at)) => {
                return Err(invalid(
                    at,
                    format!("tensor `{shown}` has unknown data_location {other}"),
                ))
            }
        };
        self.external_data(&shown, base, external, &entries);
        Ok(())
    }

    /// Checks a tensor's external data entries. Entries are checked even when the tensor is
    /// not marked external: a loader that disagrees about the marking must still be safe.
    fn external_data(&mut self, tensor: &str, at: usize, external: bool, entries: &[Entry<'_>]) {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut has_location = false;
        for e in entries {
            let key = quote_bytes(e.key);
            let value = quote_bytes(e.value);
            let here = format!("@{}", e.at);
            if !seen.insert(e.key) {
                self.findings.push(
                    Finding::new(
                        Code::OnnxExternalDataUnsafe,
                        format!("tensor `{tensor}` repeats external data key `{key}`, which loaders resolve differently"),
                    )
                    .at(here.clone()),
                );
            }
            match e.key {
                b"location" => {
                    has_location = true;
                    self.record_location(e.value, e.at);
                    if let Some(reason) = unsafe_location(e.value) {
                        self.findings.push(
                            Finding::new(
                                Code::OnnxExternalDataUnsafe,
                                format!("tensor `{tensor}` reads external data from `{value}`: {reason}"),
                            )
                            .at(here)
                            .with_hint("external data must be a relative path inside the model's directory"),
                        );
                    }
                }
                b"offset" | b"length" => {
                    if !is_decimal_u64(e.value) {
                        self.findings.push(
                            Finding::new(
                                Code::OnnxExternalDataUnsafe,
                                format!("tensor `{tensor}` external data `{key}` is `{value}`, not a non-negative decimal integer"),
                            )
                            .at(here),
                        );
                    }
                }
                b"checksum" => {}
                _ => self.findings.push(
                    Finding::new(
                        Code::OnnxExternalDataUnsafe,
                        format!("tensor `{tensor}` has unknown external data key `{key}`"),
                    )
                    .with_severity(Severity::Warning)
                    .at(here),
                ),
            }
        }
        if external && !has_location {
            self.findings.push(
                Finding::new(
                    Code::OnnxInvalid,
                    format!("tensor `{tensor}` has external data but no `location`"),
                )
                .at(format!("@{at}")),
            );
        }
    }

    fn record_location(&mut self, value: &[u8], at: usize) {
        let location = lossy(value);
        if self.seen_locations.contains(&location) {
            return;
        }
        if self.locations.len() >= MAX_LOCATIONS {
            if !self.locations_capped {
                self.locations_capped = true;
                self.findings.push(
                    Finding::new(
                        Code::ScanLimitExceeded,
                        format!("more than {MAX_LOCATIONS} distinct external data files"),
                    )
                    .at(format!("@{at}")),
                );
            }
            return;
        }
        self.seen_locations.insert(location.clone());
        self.locations.push(location);
    }
}

fn opset(bytes: &[u8], base: usize) -> Result<(String, i64), Invalid> {
    const M: &str = "OperatorSetIdProto";
    let mut domain = String::new();
    let mut version = None;
    fields(bytes, base, M, |field| {
        match field.number {
            1 => domain = lossy(len_payload(&field, M)?.0),
            2 => version = Some(varint_payload(&field, M)? as i64),
            _ => {}
        }
        Ok(())
    })?;
    let version = version.ok_or_else(|| invalid(base, "operator set import has no version"))?;
    Ok((domain, version))
}

/// One `StringStringEntryProto`.
struct Entry<'a> {
    key: &'a [u8],
    value: &'a [u8],
    at: usize,
}

fn entry(bytes: &[u8], base: usize, at: usize) -> Result<Entry<'_>, Invalid> {
    const M: &str = "StringStringEntryProto";
    let mut key: &[u8] = &[];
    let mut value: &[u8] = &[];
    fields(bytes, base, M, |field| {
        match field.number {
            1 => key = len_payload(&field, M)?.0,
            2 => value = len_payload(&field, M)?.0,
            _ => {}
        }
        Ok(())
    })?;
    Ok(Entry { key, value, at })
}

/// Why an external data location is unsafe, or `None` for a plain relative path.
fn unsafe_location(location: &[u8]) -> Option<&'static str> {
    let Ok(text) = std::str::from_utf8(location) else {
        return Some("it is not valid utf-8");
    };
    if text.is_empty() {
        return Some("it is empty");
    }
    if text.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if text.chars().any(char::is_control) {
        return Some("it contains control characters");
    }
    if text.starts_with('/') || text.starts_with('\\') {
        return Some("it is an absolute path");
    }
    if text.contains('\\') {
        return Some("it contains a backslash, a path separator on Windows");
    }
    if text.contains(':') {
        return Some("it contains `:` (a drive letter, stream name or URL)");
    }
    if text.contains('~') {
        return Some("it contains `~` (home directory or short-name expansion)");
    }
    for component in text.split('/') {
        if component == ".." {
            return Some("it has a `..` component");
        }
        if is_windows_device(component) {
            return Some("it names a Windows device");
        }
    }
    None
}

/// `CON`, `NUL`, `COM1`... open devices on Windows whatever their extension.
fn is_windows_device(component: &str) -> bool {
    let stem = component.split('.').next().unwrap_or_default();
    let stem = stem.trim_end_matches([' ']).to_ascii_uppercase();
    match stem.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let digit_after = |prefix: &str| {
                stem.strip_prefix(prefix)
                    .is_some_and(|rest| rest.len() == 1 && rest.chars().all(|c| c.is_ascii_digit()))
            };
            digit_after("COM") || digit_after("LPT")
        }
    }
}

fn is_decimal_u64(value: &[u8]) -> bool {
    !value.is_empty()
        && value.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(value).is_ok_and(|s| s.parse::<u64>().is_ok())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
