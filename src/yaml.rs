//! YAML read as a JSON value, bounded and without the features that expand or retype it.
//!
//! `saphyr-parser` events are folded into a `serde_json::Value`. Anchors, aliases, tags and
//! several documents are refused (no alias bomb can expand, and an alias could carry a value
//! into a key unseen), as are duplicate keys (loaders disagree on which one wins) and keys
//! that are not strings; scalars stay strings (plain `null`/`~`/empty become null). Depth and
//! node counts are bounded by the caller's [`YamlLimits`]. Used by the MONAI importer and the
//! chat-template scan: one reader, one set of rules.

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

use crate::finding::quote;

/// Bounds on one document.
#[derive(Debug, Clone, Copy)]
pub struct YamlLimits {
    pub max_depth: usize,
    pub max_nodes: usize,
}

/// Why a document was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum YamlError {
    #[error("line {line} column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("line {line}: YAML {what} are refused")]
    Refused { line: usize, what: &'static str },
    #[error("line {line}: nested deeper than {limit} levels")]
    TooDeep { line: usize, limit: usize },
    #[error("more than {limit} YAML nodes")]
    TooManyNodes { limit: usize },
    #[error("line {line}: mapping keys must be strings")]
    KeyNotString { line: usize },
    #[error("line {line}: key `{}` appears twice in one mapping", quote(key))]
    DuplicateKey { line: usize, key: String },
}

/// The document as a JSON value, or why it cannot be read completely.
pub fn to_json(text: &str, limits: &YamlLimits) -> Result<Value, YamlError> {
    enum Frame {
        Sequence(Vec<Value>),
        Mapping(Map<String, Value>, Option<String>),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| YamlError::Syntax {
            line: error.marker().line(),
            column: error.marker().col() + 1,
            message: quote(error.info()),
        })?;
        let line = span.start.line();
        let refused = |what| YamlError::Refused { line, what };
        let (anchor, tagged) = match &event {
            Event::Scalar(_, _, anchor, tag) => (*anchor, tag.is_some()),
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                (*anchor, tag.is_some())
            }
            _ => (0, false),
        };
        if anchor != 0 {
            return Err(refused("anchors"));
        }
        if tagged {
            return Err(refused("tags"));
        }
        let value = match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(refused("several documents"));
                }
                continue;
            }
            Event::Alias(_) => return Err(refused("aliases")),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= limits.max_depth {
                    return Err(YamlError::TooDeep {
                        line,
                        limit: limits.max_depth,
                    });
                }
                nodes += 1;
                if nodes > limits.max_nodes {
                    return Err(YamlError::TooManyNodes {
                        limit: limits.max_nodes,
                    });
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Sequence(Vec::new())
                } else {
                    Frame::Mapping(Map::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Sequence(items)) => Value::Array(items),
                Some(Frame::Mapping(map, None)) => Value::Object(map),
                _ => return Err(refused("unbalanced collections")),
            },
            Event::Scalar(text, style, _, _) => {
                nodes += 1;
                if nodes > limits.max_nodes {
                    return Err(YamlError::TooManyNodes {
                        limit: limits.max_nodes,
                    });
                }
                let null = style == ScalarStyle::Plain
                    && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                if null {
                    Value::Null
                } else {
                    Value::String(text.into_owned())
                }
            }
        };
        match stack.last_mut() {
            None => root = Some(value),
            Some(Frame::Sequence(items)) => items.push(value),
            Some(Frame::Mapping(map, pending)) => match pending.take() {
                None => match value {
                    Value::String(key) => *pending = Some(key),
                    _ => return Err(YamlError::KeyNotString { line }),
                },
                Some(key) => {
                    if map.contains_key(&key) {
                        return Err(YamlError::DuplicateKey { line, key });
                    }
                    map.insert(key, value);
                }
            },
        }
    }
    Ok(root.unwrap_or(Value::Null))
}
