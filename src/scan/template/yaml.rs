//! YAML configs read as JSON values, bounded, so their `chat_template` keys can be found.
//!
//! `saphyr-parser` events are folded into a `serde_json::Value`; anchors, aliases, tags and
//! several documents are refused (an alias could carry a template into a key unseen, and no
//! alias bomb can expand), as are duplicate keys (loaders disagree on which one wins).

use serde_json::Value;

const MAX_BYTES: usize = 16 << 20;
const LIMITS: crate::yaml::YamlLimits = crate::yaml::YamlLimits {
    max_depth: 64,
    max_nodes: 100_000,
};

/// The document as a JSON value, or why it cannot be read completely.
pub(super) fn to_json(text: &str) -> Result<Value, String> {
    if text.len() > MAX_BYTES {
        return Err(format!("more than {MAX_BYTES} bytes"));
    }
    crate::yaml::to_json(text, &LIMITS).map_err(|error| error.to_string())
}
