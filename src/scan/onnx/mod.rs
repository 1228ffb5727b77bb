//! ONNX validation: a strict protobuf wire-format walk of a `ModelProto` (onnx.proto) that
//! reaches every node and tensor in the model, in the main graph, in subgraphs held by node
//! attributes, in training graphs and in model-local functions; it checks where each tensor's
//! external data would be read from and whether any node runs Python.
//!
//! ONNX graphs are data, which is why a valid model without custom code is accepted; the
//! dangers are nodes that call into Python (see [`custom`] for which ones, and why other custom
//! domains only warn), a loader's parser, and external data paths that escape the model's
//! directory (`../../etc/passwd`, `/dev/zero`, `C:\...`). Anything that is not well-formed
//! protobuf of the expected shape is a finding, so an accepted file is one every protobuf
//! reader reads the same way.
//!
//! The walk streams from a [`ReadAt`] source ([`protobuf`]): tensor payloads (`raw_data`,
//! `float_data`...) are skipped by offset, packed varint payloads are checked in bounded
//! chunks, and strings are read as bounded prefixes, so memory does not follow the model's
//! size. This module reads only the bytes it is handed: it must not open external data files,
//! copy tensor data, or decide the verdict.

mod custom;
mod external;
pub(crate) mod protobuf;

use std::collections::HashSet;
use std::io;

use crate::finding::{quote_bytes, CappedFindings, Code, Finding, Severity};
use crate::scan::source::ReadAt;
use custom::Domain;
use external::Entry;
use protobuf::{check_packed_varints, head_varint, invalid, Field, Message, Payload, Span, Stop};

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

/// What [`check_source`] established: a summary when the model parsed, and every finding.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxReport {
    pub summary: Option<OnnxSummary>,
    pub findings: Vec<Finding>,
}

/// A cheap content sniff: the file starts with field 1 (`ir_version`, varint) holding a
/// plausible version, followed by a well-formed protobuf tag.
pub fn looks_like_onnx(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(&[0x08]) else {
        return false;
    };
    let Some((version, rest)) = head_varint(rest) else {
        return false;
    };
    // Only the tag: the field it opens (often the whole graph) may extend past `head`.
    (1..=MAX_PLAUSIBLE_IR_VERSION).contains(&version)
        && head_varint(rest).is_some_and(|(tag, _)| {
            tag >> 3 != 0 && tag <= u64::from(u32::MAX) && matches!(tag & 7, 0 | 1 | 2 | 5)
        })
}

/// Validates an ONNX model file read from `source`, in memory bounded whatever its size.
/// Errors are the source's I/O errors only; unparseable bytes are findings.
pub fn check_source(source: &dyn ReadAt) -> io::Result<OnnxReport> {
    let mut walker = Walker::default();
    let summary = match walker.model(source) {
        Ok(summary) => Some(summary),
        Err(Stop::Io(error)) => return Err(error),
        Err(Stop::Invalid { at, message }) => {
            walker
                .findings
                .push(Finding::new(Code::OnnxInvalid, message).at(format!("@{at}")));
            None
        }
    };
    walker.custom_domain_findings();
    Ok(OnnxReport {
        summary,
        findings: walker.findings.finish(),
    })
}

/// Validates a whole ONNX model held in memory.
pub fn check(bytes: &[u8]) -> OnnxReport {
    check_source(&protobuf::Bytes(bytes)).unwrap_or_else(|error| OnnxReport {
        summary: None,
        findings: vec![Finding::new(
            Code::OnnxInvalid,
            format!("model cannot be read: {error}"),
        )],
    })
}

// Protobuf nests messages; ONNX nests graphs inside node attributes inside graphs. Each
// message level counts once, so 64 allows about twenty levels of subgraphs. Each level holds
// one window of `protobuf::WINDOW` bytes, so this also bounds memory (4 MiB).
const MAX_DEPTH: u32 = 64;
const MAX_PLAUSIBLE_IR_VERSION: u64 = 100;
const MAX_OPSETS: usize = 1024;
const MAX_LOCATIONS: usize = 4096;
/// Names, domains and op types are read up to this many bytes (findings quote 200 chars).
const MAX_NAME: usize = 1024;
/// Distinct `(domain, op)` pairs of custom domains remembered until the functions are known.
const MAX_CUSTOM: usize = 256;
/// Model-local functions remembered, to tell their domains from custom-op domains.
const MAX_FUNCTIONS: usize = 4096;

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
fn expect(message: &Message<'_>, field: &Field, shape: Shape, name: &str) -> Result<(), Stop> {
    let ok = match (shape, field.payload) {
        (Shape::Len, Payload::Len(_)) => true,
        (Shape::Varint | Shape::PackedVarint, Payload::Varint(_)) => true,
        (Shape::Fixed32 | Shape::PackedFixed32, Payload::Fixed32) => true,
        (Shape::PackedFixed64, Payload::Fixed64) => true,
        (Shape::PackedVarint, Payload::Len(span)) => {
            check_packed_varints(message, span)?;
            true
        }
        (Shape::PackedFixed32, Payload::Len(span)) => span.len % 4 == 0,
        (Shape::PackedFixed64, Payload::Len(span)) => span.len % 8 == 0,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field.at,
            format!("{name} field {} has the wrong wire type", field.number),
        ))
    }
}

fn len_payload(field: &Field, message: &str) -> Result<Span, Stop> {
    match field.payload {
        Payload::Len(span) => Ok(span),
        _ => Err(invalid(
            field.at,
            format!("{message} field {} has the wrong wire type", field.number),
        )),
    }
}

fn varint_payload(field: &Field, message: &str) -> Result<u64, Stop> {
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

/// Walks the message in `span` of `parent`, checking each known field's wire type.
fn walk<'s>(
    parent: &Message<'s>,
    span: Span,
    name: &'static str,
    each: impl FnMut(&Message<'s>, Field) -> Result<(), Stop>,
) -> Result<(), Stop> {
    fields(parent.child(span)?, name, each)
}

fn fields<'s>(
    mut message: Message<'s>,
    name: &'static str,
    mut each: impl FnMut(&Message<'s>, Field) -> Result<(), Stop>,
) -> Result<(), Stop> {
    while let Some(field) = message.next_field()? {
        if let Some(shape) = shape(name, field.number) {
            expect(&message, &field, shape, name)?;
        }
        each(&message, field)?;
    }
    Ok(())
}

/// A node's op, as found: for findings that name it and for the custom-domain check.
struct Op {
    domain: Vec<u8>,
    op_type: Vec<u8>,
}

#[derive(Default)]
struct Walker {
    findings: CappedFindings,
    nodes: u64,
    initializers: u64,
    locations: Vec<String>,
    seen_locations: HashSet<String>,
    locations_capped: bool,
    /// Custom-domain ops, with where each was first seen.
    custom: Vec<(Op, u64)>,
    custom_capped: bool,
    /// `(domain, name)` of model-local functions.
    functions: HashSet<(Vec<u8>, Vec<u8>)>,
}

impl Walker {
    fn model(&mut self, source: &dyn ReadAt) -> Result<OnnxSummary, Stop> {
        const M: &str = "ModelProto";
        if source.size() == 0 {
            return Err(invalid(0, "empty file"));
        }
        let mut ir_version = None;
        let mut opsets = Vec::new();
        let mut producer = None;
        let mut graphs = 0u64;
        fields(Message::root(source), M, |message, field| {
            match field.number {
                1 => ir_version = Some((varint_payload(&field, M)?, field.at)),
                2 => {
                    let span = len_payload(&field, M)?;
                    producer = Some(lossy(&message.prefix(span, MAX_NAME)?));
                }
                7 => {
                    graphs += 1;
                    self.graph(message, len_payload(&field, M)?, 1)?;
                }
                8 => {
                    if opsets.len() >= MAX_OPSETS {
                        return Err(invalid(
                            field.at,
                            format!("more than {MAX_OPSETS} operator set imports"),
                        ));
                    }
                    opsets.push(opset(message, len_payload(&field, M)?)?);
                }
                20 => self.training_info(message, len_payload(&field, M)?, 1)?,
                25 => self.function(message, len_payload(&field, M)?, 1)?,
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

    fn enter(depth: u32, at: u64) -> Result<u32, Stop> {
        if depth >= MAX_DEPTH {
            Err(invalid(
                at,
                format!("messages nest deeper than {MAX_DEPTH} levels"),
            ))
        } else {
            Ok(depth + 1)
        }
    }

    fn graph(&mut self, parent: &Message<'_>, span: Span, depth: u32) -> Result<(), Stop> {
        const M: &str = "GraphProto";
        let depth = Self::enter(depth, span.at)?;
        walk(parent, span, M, |message, field| {
            match field.number {
                1 => {
                    self.nodes = self.nodes.saturating_add(1);
                    self.node(message, len_payload(&field, M)?, depth)?;
                }
                5 => {
                    self.initializers = self.initializers.saturating_add(1);
                    self.tensor(message, len_payload(&field, M)?, depth)?;
                }
                15 => {
                    self.initializers = self.initializers.saturating_add(1);
                    self.sparse_tensor(message, len_payload(&field, M)?, depth)?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    fn node(&mut self, parent: &Message<'_>, span: Span, depth: u32) -> Result<(), Stop> {
        const M: &str = "NodeProto";
        let depth = Self::enter(depth, span.at)?;
        let mut name = Vec::new();
        let mut op_types: Vec<Vec<u8>> = Vec::new();
        let mut domains: Vec<Vec<u8>> = Vec::new();
        let mut python = Vec::new();
        walk(parent, span, M, |message, field| {
            match field.number {
                3 => name = message.prefix(len_payload(&field, M)?, MAX_NAME)?,
                // Protobuf keeps the last of repeated singular fields; every one is checked
                // so that no reader's choice hides an op.
                4 => {
                    let op = message.prefix(len_payload(&field, M)?, MAX_NAME)?;
                    if custom::python_op(&op) {
                        python.push((format!("op `{}`", quote_bytes(&op)), field.at));
                    }
                    push_bounded(&mut op_types, op);
                }
                5 => {
                    if let Some(reason) = self.attribute(message, len_payload(&field, M)?, depth)? {
                        python.push((reason, field.at));
                    }
                }
                7 => {
                    let domain = message.prefix(len_payload(&field, M)?, MAX_NAME)?;
                    push_bounded(&mut domains, domain);
                }
                _ => {}
            }
            Ok(())
        })?;
        let shown = quote_bytes(&name);
        for (reason, at) in python {
            self.findings.push(
                Finding::new(
                    Code::OnnxCustomCode,
                    format!("node `{shown}` runs Python: {reason}"),
                )
                .at(format!("@{at}"))
                .with_hint("a model must not choose code for its loader to run"),
            );
        }
        if domains.is_empty() {
            domains.push(Vec::new());
        }
        let op_type = op_types.pop().unwrap_or_default();
        for domain in domains {
            match custom::domain(&domain) {
                Domain::Known => {}
                Domain::Extensions if op_type.starts_with(b"Py") => self.findings.push(
                    Finding::new(
                        Code::OnnxCustomCode,
                        format!(
                            "node `{shown}` runs Python: op `{}` of onnxruntime-extensions' `{}`",
                            quote_bytes(&op_type),
                            quote_bytes(&domain)
                        ),
                    )
                    .at(format!("@{}", span.at)),
                ),
                Domain::Extensions | Domain::Custom => self.record_custom(
                    Op {
                        domain,
                        op_type: op_type.clone(),
                    },
                    span.at,
                ),
            }
        }
        Ok(())
    }

    /// Walks an attribute (and the graphs and tensors it holds); returns why it carries
    /// Python, if it does.
    fn attribute(
        &mut self,
        parent: &Message<'_>,
        span: Span,
        depth: u32,
    ) -> Result<Option<String>, Stop> {
        const M: &str = "AttributeProto";
        let depth = Self::enter(depth, span.at)?;
        let mut name = Vec::new();
        let mut marker = None;
        walk(parent, span, M, |message, field| {
            match field.number {
                1 => name = message.prefix(len_payload(&field, M)?, MAX_NAME)?,
                4 | 9 => {
                    let span = len_payload(&field, M)?;
                    if marker.is_none() {
                        marker = python_marker_in(message.source(), span)?;
                    }
                }
                5 | 10 => self.tensor(message, len_payload(&field, M)?, depth)?,
                6 | 11 => self.graph(message, len_payload(&field, M)?, depth)?,
                22 | 23 => self.sparse_tensor(message, len_payload(&field, M)?, depth)?,
                _ => {}
            }
            Ok(())
        })?;
        let shown = quote_bytes(&name);
        Ok(if let Some(marker) = marker {
            Some(format!(
                "attribute `{shown}` holds Python source (`{}`)",
                quote_bytes(marker)
            ))
        } else if custom::python_attribute(&name) {
            Some(format!(
                "attribute `{shown}` names Python code for an interop op"
            ))
        } else {
            None
        })
    }

    fn training_info(&mut self, parent: &Message<'_>, span: Span, depth: u32) -> Result<(), Stop> {
        const M: &str = "TrainingInfoProto";
        let depth = Self::enter(depth, span.at)?;
        walk(parent, span, M, |message, field| {
            if let 1 | 2 = field.number {
                self.graph(message, len_payload(&field, M)?, depth)?;
            }
            Ok(())
        })
    }

    fn function(&mut self, parent: &Message<'_>, span: Span, depth: u32) -> Result<(), Stop> {
        const M: &str = "FunctionProto";
        let depth = Self::enter(depth, span.at)?;
        let mut name = Vec::new();
        let mut domain = Vec::new();
        walk(parent, span, M, |message, field| {
            match field.number {
                1 => name = message.prefix(len_payload(&field, M)?, MAX_NAME)?,
                10 => domain = message.prefix(len_payload(&field, M)?, MAX_NAME)?,
                7 => {
                    self.nodes = self.nodes.saturating_add(1);
                    self.node(message, len_payload(&field, M)?, depth)?;
                }
                // attribute_proto: default values of the function's attributes.
                11 => {
                    if let Some(reason) = self.attribute(message, len_payload(&field, M)?, depth)? {
                        self.findings.push(
                            Finding::new(
                                Code::OnnxCustomCode,
                                format!("function `{}` runs Python: {reason}", quote_bytes(&name)),
                            )
                            .at(format!("@{}", field.at)),
                        );
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        if self.functions.len() < MAX_FUNCTIONS {
            self.functions.insert((domain, name));
        }
        Ok(())
    }

    fn sparse_tensor(&mut self, parent: &Message<'_>, span: Span, depth: u32) -> Result<(), Stop> {
        const M: &str = "SparseTensorProto";
        let depth = Self::enter(depth, span.at)?;
        walk(parent, span, M, |message, field| {
            if let 1 | 2 = field.number {
                self.tensor(message, len_payload(&field, M)?, depth)?;
            }
            Ok(())
        })
    }

    fn tensor(&mut self, parent: &Message<'_>, span: Span, depth: u32) -> Result<(), Stop> {
        const M: &str = "TensorProto";
        Self::enter(depth, span.at)?;
        let mut name = Vec::new();
        let mut data_location = None;
        let mut entries = Vec::new();
        let mut dropped = false;
        walk(parent, span, M, |message, field| {
            match field.number {
                8 => name = message.prefix(len_payload(&field, M)?, MAX_NAME)?,
                13 => {
                    let entry = entry(message, len_payload(&field, M)?, field.at)?;
                    if entries.len() < external::MAX_ENTRIES {
                        entries.push(entry);
                    } else {
                        dropped = true;
                    }
                }
                14 => data_location = Some((varint_payload(&field, M)?, field.at)),
                _ => {}
            }
            Ok(())
        })?;
        let shown = quote_bytes(&name);
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
        let (findings, locations) =
            external::check_entries(&shown, span.at, external, &entries, dropped);
        for finding in findings {
            self.findings.push(finding);
        }
        for (location, at) in locations {
            self.record_location(&location, at);
        }
        Ok(())
    }

    fn record_location(&mut self, value: &[u8], at: u64) {
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

    fn record_custom(&mut self, op: Op, at: u64) {
        let seen = self
            .custom
            .iter()
            .any(|(o, _)| o.domain == op.domain && o.op_type == op.op_type);
        if seen {
            return;
        }
        if self.custom.len() >= MAX_CUSTOM {
            self.custom_capped = true;
            return;
        }
        self.custom.push((op, at));
    }

    /// Custom-domain ops that no model-local function defines: warnings, since ONNX Runtime
    /// refuses them unless the loading process registered a library for the domain.
    fn custom_domain_findings(&mut self) {
        for (op, at) in std::mem::take(&mut self.custom) {
            if self
                .functions
                .contains(&(op.domain.clone(), op.op_type.clone()))
            {
                continue;
            }
            let domain = quote_bytes(&op.domain);
            let extensions = custom::domain(&op.domain) == Domain::Extensions;
            let why = if extensions {
                "onnxruntime-extensions' ops may be Python functions the loading process registered"
            } else {
                "it runs only with a custom-op library the loading process registers"
            };
            self.findings.push(
                Finding::new(
                    Code::OnnxCustomCode,
                    format!(
                        "op `{}` of custom domain `{domain}`: {why}",
                        quote_bytes(&op.op_type)
                    ),
                )
                .with_severity(Severity::Warning)
                .at(format!("@{at}")),
            );
        }
        if self.custom_capped {
            self.findings.push(
                Finding::new(
                    Code::OnnxCustomCode,
                    format!("more than {MAX_CUSTOM} distinct custom-domain ops"),
                )
                .with_severity(Severity::Warning),
            );
        }
    }
}

/// Repeated singular fields are rare; a few are kept, the last one always.
fn push_bounded(list: &mut Vec<Vec<u8>>, value: Vec<u8>) {
    const KEEP: usize = 8;
    if list.len() >= KEEP {
        list.remove(0);
    }
    list.push(value);
}

/// The first Python marker in a string attribute, scanned in bounded chunks.
fn python_marker_in(source: &dyn ReadAt, span: Span) -> Result<Option<&'static [u8]>, Stop> {
    let mut found = None;
    protobuf::scan_chunks(source, span, custom::MARKER_OVERLAP, |chunk| {
        found = custom::python_marker(chunk);
        found.is_some()
    })?;
    Ok(found)
}

fn opset(parent: &Message<'_>, span: Span) -> Result<(String, i64), Stop> {
    const M: &str = "OperatorSetIdProto";
    let mut domain = String::new();
    let mut version = None;
    walk(parent, span, M, |message, field| {
        match field.number {
            1 => domain = lossy(&message.prefix(len_payload(&field, M)?, MAX_NAME)?),
            2 => version = Some(varint_payload(&field, M)? as i64),
            _ => {}
        }
        Ok(())
    })?;
    let version = version.ok_or_else(|| invalid(span.at, "operator set import has no version"))?;
    Ok((domain, version))
}

fn entry(parent: &Message<'_>, span: Span, at: u64) -> Result<Entry, Stop> {
    const M: &str = "StringStringEntryProto";
    let mut key = Vec::new();
    let mut value = Vec::new();
    let mut value_len = 0;
    walk(parent, span, M, |message, field| {
        match field.number {
            1 => key = message.prefix(len_payload(&field, M)?, external::MAX_KEY)?,
            2 => {
                let span = len_payload(&field, M)?;
                value = message.prefix(span, external::MAX_LOCATION)?;
                value_len = span.len;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(Entry {
        key,
        value,
        value_len,
        at,
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
