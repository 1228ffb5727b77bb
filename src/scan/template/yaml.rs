//! YAML configs read as JSON values, bounded, so their `chat_template` keys can be found.
//!
//! `saphyr-parser` events are folded into a `serde_json::Value`; anchors, aliases, tags and
//! several documents are refused (an alias could carry a template into a key unseen, and no
//! alias bomb can expand), as are duplicate keys (loaders disagree on which one wins).

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

use crate::finding::quote;

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 100_000;
const MAX_BYTES: usize = 16 << 20;

/// The document as a JSON value, or why it cannot be read completely.
pub(super) fn to_json(text: &str) -> Result<Value, String> {
    enum Frame {
        Sequence(Vec<Value>),
        Mapping(Map<String, Value>, Option<String>),
    }
    if text.len() > MAX_BYTES {
        return Err(format!("more than {MAX_BYTES} bytes"));
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event
            .map_err(|error| format!("line {}: {}", error.marker().line(), quote(error.info())))?;
        let line = span.start.line();
        let refused = |what: &str| format!("line {line}: uses {what}");
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
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("line {line}: nested deeper than {MAX_DEPTH}"));
                }
                nodes += 1;
                if nodes > MAX_NODES {
                    return Err(format!("more than {MAX_NODES} nodes"));
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
                if nodes > MAX_NODES {
                    return Err(format!("more than {MAX_NODES} nodes"));
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
                    _ => return Err(refused("a key that is not a string")),
                },
                Some(key) => {
                    if map.contains_key(&key) {
                        return Err(format!("line {line}: duplicate key `{}`", quote(&key)));
                    }
                    map.insert(key, value);
                }
            },
        }
    }
    Ok(root.unwrap_or(Value::Null))
}
