//! JSON files that configure code: a Keras model config (`config.json` of a saved model or a
//! `.keras` archive) and chat templates (`tokenizer_config.json`, `chat_template.json`).
//!
//! A small config is parsed whole. A large JSON file (a `tokenizer.json` of tens of
//! megabytes) is streamed, keeping only the top-level keys a loader would take code from, so
//! memory follows those values and not the file. Duplicate keys keep the last value, as
//! Python's `json` does. This module decides which JSON is checked and hands the values to
//! `keras` and `template`; it owns no rule about what is dangerous.

use std::fmt;
use std::io;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::source::{self, ReadAt};
use super::{keras, template};
use crate::finding::Finding;

/// Files up to this size are parsed whole.
const WHOLE_JSON: u64 = 8 << 20;

/// Top-level keys that carry code to a loader, kept from a streamed file.
const KEYS: &[&str] = &[
    "class_name",
    "config",
    "module",
    "registered_name",
    "build_config",
    "compile_config",
    "chat_template",
];

/// Findings about a JSON file already known to be valid JSON.
pub fn check(source: &dyn ReadAt) -> io::Result<Vec<Finding>> {
    let value = if source.size() <= WHOLE_JSON {
        serde_json::from_slice::<Value>(&source.read_vec(0, source.size())?).ok()
    } else {
        let reader = io::BufReader::new(source::Reader::new(source));
        let mut deserializer = serde_json::Deserializer::from_reader(reader);
        deserializer.deserialize_any(TopLevel).ok().flatten()
    };
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut findings = Vec::new();
    if keras::looks_like_config(&value) {
        findings.extend(keras::check_config_value(&value));
    }
    findings.extend(template::check_json(&value));
    Ok(findings)
}

/// Findings about a text file whose name says it holds templates: a standalone Jinja file
/// (`*.jinja`, `*.j2`) is a template; a YAML config is searched for `chat_template` keys.
pub fn check_text(source: &dyn ReadAt, name: &str) -> io::Result<Vec<Finding>> {
    let extension = std::path::Path::new(name)
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    let kind = match extension.as_deref() {
        Some("jinja" | "j2") => TextKind::Jinja,
        Some("yaml" | "yml") => TextKind::Yaml,
        _ => return Ok(Vec::new()),
    };
    if source.size() > WHOLE_JSON {
        return Ok(vec![Finding::new(
            crate::finding::Code::ChatTemplateInvalid,
            format!(
                "a {} bytes template file is larger than the {WHOLE_JSON} bytes modelvet reads to check it",
                source.size()
            ),
        )]);
    }
    let bytes = source.read_vec(0, source.size())?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(match kind {
            TextKind::Jinja => vec![Finding::new(
                crate::finding::Code::ChatTemplateInvalid,
                "a template file that is not UTF-8 cannot be checked",
            )],
            TextKind::Yaml => Vec::new(),
        });
    };
    Ok(match kind {
        TextKind::Jinja => template::check(text),
        // A key can only be spelled `chat_template`, or with escapes in a quoted scalar;
        // other YAML (anchors and all) is left to its own loaders.
        TextKind::Yaml if text.contains("chat_template") || text.contains('\\') => {
            template::check_yaml(text)
        }
        TextKind::Yaml => Vec::new(),
    })
}

enum TextKind {
    Jinja,
    Yaml,
}

/// Keeps the [`KEYS`] of a top-level object; anything else is skipped without being built.
struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Option<Value>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if KEYS.contains(&key.as_str()) {
                kept.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(Value::Object(kept)))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_files_keep_only_the_keys_loaders_take_code_from() {
        let filler = format!("[{}0]", "0, ".repeat(3_000_000));
        let json = format!(
            "{{\"vocab\": {filler}, \"class_name\": \"Sequential\", \"config\": {{\"layers\": [{{\"class_name\": \"Lambda\", \"config\": {{}}}}]}}, \"class_name\": \"Functional\"}}"
        );
        assert!(json.len() as u64 > WHOLE_JSON);
        let bytes = json.into_bytes();
        let findings = check(&bytes).unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f.code == crate::finding::Code::KerasUnsafeLayer),
            "{findings:?}"
        );
    }
}
