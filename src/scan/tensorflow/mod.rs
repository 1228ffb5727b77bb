//! TensorFlow graphs: a streaming protobuf walk of a SavedModel (`saved_model.pb`: SavedModel
//! -> MetaGraphDef -> GraphDef) or a frozen GraphDef (`*.pb`), reaching every `NodeDef` of
//! every graph and of every function in its `FunctionDefLibrary`, and reporting ops that run
//! Python, touch the file system or the network (see [`ops`] for the list and for what is
//! deliberately allowed, such as the saver's `SaveV2`/`RestoreV2`).
//!
//! Protobufs carry no magic and a loader chooses the message type, so the same bytes are
//! walked both as a SavedModel and as a GraphDef and the findings of every reading that
//! parses are reported: a file cannot hide a `GraphDef` from us by also being a
//! `SavedModel`. A reading that does not parse is one TensorFlow cannot load either, and is
//! dropped; the file is `tensorflow-malformed` when the kind [`sniff`] saw does not parse, or
//! when no reading does. As TensorFlow's parser does, a field with an unexpected wire type is
//! skipped as unknown. Tensor contents (`Const` values) are skipped by offset, so memory does
//! not follow the file's size. This module reads the bytes it is handed and nothing else
//! (no `variables/`, no assets) and does not decide the verdict.

mod ops;

use std::io;

use crate::finding::{quote_bytes, CappedFindings, Code, Finding, Severity};
use crate::scan::onnx::protobuf::{head_varint, invalid, Field, Message, Payload, Span, Stop};
use crate::scan::source::ReadAt;
use ops::Verdict;

/// What a protobuf's first fields look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfKind {
    /// `saved_model.pb`: a `SavedModel` message.
    SavedModel,
    /// A frozen graph: a bare `GraphDef` message.
    GraphDef,
}

/// What [`check_source`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct TfReport {
    /// The kind [`sniff`] recognised, if any.
    pub kind: Option<TfKind>,
    /// Nodes walked in graphs and functions, in the readings that parsed.
    pub nodes: u64,
    pub findings: Vec<Finding>,
}

/// A cheap structural check of the first fields: `saved_model_schema_version` 1 followed by a
/// `MetaGraphDef`, or a `GraphDef` whose first node (or library function) has a name and an
/// op that look like TensorFlow's. Binary protobufs of other types answer `None`.
pub fn sniff(source: &dyn ReadAt) -> Option<TfKind> {
    let head = source.read_vec(0, source.size().min(SNIFF_LEN)).ok()?;
    let size = source.size();
    if let Some(rest) = head.strip_prefix(&[0x08, 0x01]) {
        let (len, inner) = tag_len(rest, 2)?;
        let fits = (head.len() - inner.len()) as u64 + len <= size;
        let first = inner.first().copied();
        return (fits && matches!(first, Some(0x0a | 0x12))).then_some(TfKind::SavedModel);
    }
    if let Some((len, node)) = tag_len(&head, 1) {
        let fits = (head.len() - node.len()) as u64 + len <= size;
        return (fits && named_node(node)).then_some(TfKind::GraphDef);
    }
    // A GraphDef without nodes before its library: function -> signature (OpDef) -> name.
    let (_, library) = tag_len(&head, 2)?;
    let (_, function) = tag_len(library, 1)?;
    let (_, signature) = tag_len(function, 1)?;
    let (name_len, name) = tag_len(signature, 1)?;
    let name = name.get(..usize::try_from(name_len).ok()?)?;
    op_like(name).then_some(TfKind::GraphDef)
}

/// Walks a SavedModel or GraphDef read from `source`. Errors are the source's I/O errors
/// only; unparseable bytes are a `tensorflow-malformed` finding.
pub fn check_source(source: &dyn ReadAt) -> io::Result<TfReport> {
    let kind = sniff(source);
    let mut saved = Walker::default();
    let saved_result = saved.saved_model(source);
    let mut graph = Walker::default();
    let graph_result = graph.graph_def(&Message::root(source), None);
    let mut findings = CappedFindings::default();
    let mut nodes = 0u64;
    let mut failures = Vec::new();
    for (walker, result, reading) in [
        (saved, saved_result, TfKind::SavedModel),
        (graph, graph_result, TfKind::GraphDef),
    ] {
        match result {
            Ok(()) => {
                nodes = nodes.saturating_add(walker.nodes);
                for finding in walker.findings.finish() {
                    findings.push(finding);
                }
            }
            Err(Stop::Io(error)) => return Err(error),
            Err(Stop::Invalid { at, message }) => failures.push((reading, at, message)),
        }
    }
    let malformed = match kind {
        Some(kind) => failures.iter().find(|(reading, ..)| *reading == kind),
        None if failures.len() == 2 => failures.first(),
        None => None,
    };
    if let Some((reading, at, message)) = malformed {
        let what = match reading {
            TfKind::SavedModel => "SavedModel",
            TfKind::GraphDef => "GraphDef",
        };
        findings.push(
            Finding::new(
                Code::TensorflowMalformed,
                format!("not a well-formed {what}: {message}"),
            )
            .at(format!("@{at}")),
        );
    }
    Ok(TfReport {
        kind,
        nodes,
        findings: findings.finish(),
    })
}

const SNIFF_LEN: u64 = 4096;
const MAX_NAME: usize = 1024;
/// Values kept per watched attribute (a `list(string)` may hold many).
const MAX_VALUES: usize = 16;

#[derive(Default)]
struct Walker {
    findings: CappedFindings,
    nodes: u64,
}

/// Where a node lives, for findings.
#[derive(Clone, Copy)]
enum Owner<'a> {
    Graph,
    Function(&'a [u8]),
}

impl Walker {
    fn saved_model(&mut self, source: &dyn ReadAt) -> Result<(), Stop> {
        let root = Message::root(source);
        each_len(root, &[2], |message, _, span| {
            self.meta_graph(message, span)
        })
    }

    fn meta_graph(&mut self, parent: &Message<'_>, span: Span) -> Result<(), Stop> {
        each_len(parent.child(span)?, &[2], |message, _, span| {
            self.graph_def(message, Some(span))
        })
    }

    /// A GraphDef: the whole of `parent` when `span` is `None`.
    fn graph_def(&mut self, parent: &Message<'_>, span: Option<Span>) -> Result<(), Stop> {
        let message = match span {
            Some(span) => parent.child(span)?,
            None => parent.child(Span {
                at: 0,
                len: parent.source().size(),
            })?,
        };
        each_len(message, &[1, 2], |message, number, span| {
            if number == 1 {
                self.node(message, span, Owner::Graph)
            } else {
                self.library(message, span)
            }
        })
    }

    fn library(&mut self, parent: &Message<'_>, span: Span) -> Result<(), Stop> {
        each_len(parent.child(span)?, &[1], |message, _, span| {
            self.function(message, span)
        })
    }

    fn function(&mut self, parent: &Message<'_>, span: Span) -> Result<(), Stop> {
        // TensorFlow writes the signature (field 1, which names the function) before the
        // nodes (field 3); nodes seen before any signature are reported without a name.
        let mut name = Vec::new();
        each_len(parent.child(span)?, &[1, 3], |message, number, span| {
            if number == 1 {
                name = op_def_name(message, span)?;
                Ok(())
            } else {
                self.node(message, span, Owner::Function(&name))
            }
        })
    }

    fn node(&mut self, parent: &Message<'_>, span: Span, owner: Owner<'_>) -> Result<(), Stop> {
        self.nodes = self.nodes.saturating_add(1);
        let mut name = Vec::new();
        let mut ops: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut watched: Vec<(&'static str, Vec<u8>)> = Vec::new();
        each_len(
            parent.child(span)?,
            &[1, 2, 5],
            |message, number, field_span| {
                match number {
                    1 => name = message.prefix(field_span, MAX_NAME)?,
                    // Protobuf keeps the last `op`; every one is judged so that no reader's
                    // choice hides an op.
                    2 => {
                        if ops.len() < MAX_VALUES {
                            ops.push((message.prefix(field_span, MAX_NAME)?, field_span.at));
                        } else {
                            return Err(invalid(field_span.at, "node repeats its op field"));
                        }
                    }
                    _ => attr_entry(message, field_span, &mut watched)?,
                }
                Ok(())
            },
        )?;
        for (op, at) in ops {
            let verdict = ops::judge(&op, |wanted| {
                let values: Vec<Vec<u8>> = watched
                    .iter()
                    .filter(|(key, _)| *key == wanted)
                    .map(|(_, v)| v.clone())
                    .collect();
                (!values.is_empty()).then_some(values)
            });
            let (danger, severity) = match verdict {
                None => continue,
                Some(Verdict::Unsafe(danger)) => (danger, Severity::Critical),
                Some(Verdict::Suspect(danger)) => (danger, Severity::Warning),
            };
            let place = match owner {
                Owner::Graph => "the graph".to_owned(),
                Owner::Function(f) => format!("function `{}`", quote_bytes(f)),
            };
            self.findings.push(
                Finding::new(
                    Code::TensorflowUnsafeOp,
                    format!(
                        "node `{}` in {place} uses op `{}`, which {}",
                        quote_bytes(&name),
                        quote_bytes(&op),
                        danger.describe()
                    ),
                )
                .with_severity(severity)
                .at(format!("@{at}")),
            );
        }
        Ok(())
    }
}

/// Calls `each` for every length-delimited field of `message` whose number is in `wanted`;
/// the rest, and wanted fields of another wire type, are skipped as TensorFlow's parser does.
fn each_len<'s>(
    mut message: Message<'s>,
    wanted: &[u64],
    mut each: impl FnMut(&Message<'s>, u64, Span) -> Result<(), Stop>,
) -> Result<(), Stop> {
    while let Some(Field {
        number, payload, ..
    }) = message.next_field()?
    {
        if let Payload::Len(span) = payload {
            if wanted.contains(&number) {
                each(&message, number, span)?;
            }
        }
    }
    Ok(())
}

/// `OpDef.name` (field 1) of a function's signature.
fn op_def_name(parent: &Message<'_>, span: Span) -> Result<Vec<u8>, Stop> {
    let mut name = Vec::new();
    each_len(parent.child(span)?, &[1], |message, _, span| {
        name = message.prefix(span, MAX_NAME)?;
        Ok(())
    })?;
    Ok(name)
}

/// One `map<string, AttrValue>` entry; the string values of watched attributes are kept.
fn attr_entry(
    parent: &Message<'_>,
    span: Span,
    watched: &mut Vec<(&'static str, Vec<u8>)>,
) -> Result<(), Stop> {
    let mut key = Vec::new();
    let mut values = Vec::new();
    each_len(parent.child(span)?, &[1, 2], |message, number, span| {
        if number == 1 {
            key = message.prefix(span, MAX_NAME)?;
        } else {
            // AttrValue: `s` (2) or `list` (1) of `s` (2).
            each_len(message.child(span)?, &[1, 2], |message, number, span| {
                if number == 2 {
                    push_value(&mut values, message.prefix(span, MAX_NAME)?);
                    return Ok(());
                }
                each_len(message.child(span)?, &[2], |message, _, span| {
                    push_value(&mut values, message.prefix(span, MAX_NAME)?);
                    Ok(())
                })
            })?;
        }
        Ok(())
    })?;
    if let Some(name) = ops::WATCHED_ATTRIBUTES
        .iter()
        .find(|name| name.as_bytes() == key.as_slice())
    {
        for value in values {
            if watched.len() < MAX_VALUES {
                watched.push((name, value));
            }
        }
    }
    Ok(())
}

fn push_value(values: &mut Vec<Vec<u8>>, value: Vec<u8>) {
    if values.len() < MAX_VALUES {
        values.push(value);
    }
}

/// `(length, payload...)` of a length-delimited field `number` at the start of `bytes`.
fn tag_len(bytes: &[u8], number: u64) -> Option<(u64, &[u8])> {
    let (tag, rest) = head_varint(bytes)?;
    if tag != (number << 3) | 2 {
        return None;
    }
    head_varint(rest)
}

/// A NodeDef's start: `name` then `op`, both plausible.
fn named_node(node: &[u8]) -> bool {
    let Some((name_len, rest)) = tag_len(node, 1) else {
        return false;
    };
    let Some(name_len) = usize::try_from(name_len).ok().filter(|n| *n <= MAX_NAME) else {
        return false;
    };
    let (Some(name), Some(rest)) = (rest.get(..name_len), rest.get(name_len..)) else {
        return false;
    };
    let Some((op_len, rest)) = tag_len(rest, 2) else {
        return false;
    };
    let op = usize::try_from(op_len).ok().and_then(|n| rest.get(..n));
    std::str::from_utf8(name).is_ok_and(|n| !n.chars().any(char::is_control))
        && op.is_some_and(op_like)
}

/// TensorFlow op and function names: `[A-Za-z_][A-Za-z0-9_.>-]*`.
fn op_like(name: &[u8]) -> bool {
    name.first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'>' | b'-'))
}

#[cfg(test)]
mod tests;
