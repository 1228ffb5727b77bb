//! Keras models: the `.keras` zip's `config.json` and the legacy HDF5 `.h5` model config.
//!
//! Keras can serialise Python code into a model: a `Lambda` layer carries marshalled bytecode
//! (`__lambda__`, `function_type: lambda`) that runs when the model is loaded with safe mode
//! off, which older Keras versions and many loaders do. Such models are rejected. This module
//! reads configs only; the zip itself is walked by the dispatcher and `scan::zip`, and HDF5
//! datasets are never interpreted (the model config is an attribute stored as plain text).

use memchr::memmem;
use serde_json::Value;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;

/// The HDF5 superblock signature, at offset 0 for files Keras writes.
pub const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Layer classes and config keys that carry Python code.
const CODE_CLASSES: &[&str] = &["Lambda", "__lambda__", "TFOpLambda"];

/// Checks a `.keras` `config.json`. A config that is not JSON is `keras-malformed`.
pub fn check_config(bytes: &[u8]) -> Vec<Finding> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => {
            return vec![Finding::new(
                Code::KerasMalformed,
                format!("config.json is not valid JSON: {error}"),
            )]
        }
    };
    let mut findings = Vec::new();
    walk(&value, &mut findings);
    findings
}

/// Searches an HDF5 file for a model config that declares code-carrying layers. The config is
/// JSON text inside an attribute, so a byte search finds it wherever HDF5 put it.
pub fn check_hdf5(source: &dyn ReadAt) -> std::io::Result<Vec<Finding>> {
    const CHUNK: u64 = 8 << 20;
    const OVERLAP: u64 = 64;
    let patterns: Vec<(String, memmem::Finder<'static>)> = CODE_CLASSES
        .iter()
        .flat_map(|class| {
            [
                format!("\"class_name\": \"{class}\""),
                format!("\"class_name\":\"{class}\""),
            ]
        })
        .chain([
            "\"function_type\": \"lambda\"".to_owned(),
            "\"function_type\":\"lambda\"".to_owned(),
        ])
        .map(|pattern| {
            let finder = memmem::Finder::new(pattern.as_bytes()).into_owned();
            (pattern, finder)
        })
        .collect();
    let size = source.size();
    let mut offset = 0u64;
    let mut found = Vec::new();
    while offset < size {
        let len = CHUNK.min(size - offset);
        let chunk = source.read_vec(offset, len)?;
        for (pattern, finder) in &patterns {
            if let Some(at) = finder.find(&chunk) {
                let at = offset + at as u64;
                if !found.iter().any(|(p, _): &(&String, u64)| *p == pattern) {
                    found.push((pattern, at));
                }
            }
        }
        if offset + len >= size {
            break;
        }
        offset += len.saturating_sub(OVERLAP).max(1);
    }
    Ok(found
        .into_iter()
        .map(|(pattern, at)| {
            Finding::new(
                Code::KerasUnsafeLayer,
                format!("model config declares `{pattern}`, which carries serialised Python code"),
            )
            .at(format!("@{at}"))
            .with_hint("rebuild the layer in code and save the weights only (safetensors)")
        })
        .collect())
}

/// Modules a Keras config may name for deserialisation: Keras itself and its known families.
const KERAS_MODULES: &[&str] = &["keras", "keras_hub", "keras_nlp", "keras_cv", "tf_keras"];

/// The `module` of a serialised object, when it is a module Keras would import that is not
/// Keras (`{"module": "os", "class_name": "system"}`).
fn foreign_module(map: &serde_json::Map<String, Value>) -> Option<&str> {
    let module = map.get("module")?.as_str()?;
    map.get("class_name")?;
    let root = module.split('.').next().unwrap_or(module);
    (!KERAS_MODULES.contains(&root)).then_some(module)
}

fn walk(value: &Value, findings: &mut Vec<Finding>) {
    match value {
        Value::Object(map) => {
            let class = map.get("class_name").and_then(Value::as_str);
            let lambda_function =
                map.get("function_type").and_then(Value::as_str) == Some("lambda");
            if let Some(class) = class.filter(|class| CODE_CLASSES.contains(class)) {
                let name = map
                    .get("config")
                    .and_then(|config| config.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                findings.push(
                    Finding::new(
                        Code::KerasUnsafeLayer,
                        format!(
                            "layer `{}` is a `{class}`, which carries serialised Python code",
                            quote(name)
                        ),
                    )
                    .with_hint("rebuild the layer in code and save the weights only (safetensors)"),
                );
            } else if let Some(module) = foreign_module(map) {
                let class = class.unwrap_or("?");
                findings.push(
                    Finding::new(
                        Code::KerasUnsafeLayer,
                        format!(
                            "config asks the loader to import `{}.{}`, outside Keras",
                            quote(module),
                            quote(class)
                        ),
                    )
                    .with_hint(
                        "custom objects must be registered in code, not named in the config",
                    ),
                );
            } else if lambda_function {
                findings.push(Finding::new(
                    Code::KerasUnsafeLayer,
                    "config holds a function of `function_type: lambda` (serialised Python code)",
                ));
            }
            map.values().for_each(|child| walk(child, findings));
        }
        Value::Array(items) => items.iter().for_each(|child| walk(child, findings)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lambda_layers_in_a_keras_config() {
        let config = br#"{"class_name":"Sequential","config":{"layers":[
            {"class_name":"Dense","config":{"name":"d"}},
            {"class_name":"Lambda","config":{"name":"evil","function":{"class_name":"__lambda__","config":{"code":"4wEA"}}}}]}}"#;
        let findings = check_config(config);
        assert_eq!(findings.len(), 2);
        assert!(findings[0].message.contains("evil"));
    }

    #[test]
    fn refuses_objects_from_modules_outside_keras() {
        let config = br#"{"module":"keras.layers","class_name":"Dense","config":{"activation":
            {"module":"os","class_name":"system","config":"id"}}}"#;
        let findings = check_config(config);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("os.system"));
    }

    #[test]
    fn accepts_plain_layers_and_refuses_broken_json() {
        assert!(check_config(br#"{"class_name":"Dense","config":{"name":"Lambda"}}"#).is_empty());
        assert_eq!(
            check_config(b"{").first().unwrap().code,
            Code::KerasMalformed
        );
    }

    #[test]
    fn finds_lambda_text_inside_hdf5_bytes() {
        let mut bytes = HDF5_MAGIC.to_vec();
        bytes.extend_from_slice(&[0; 100]);
        bytes.extend_from_slice(br#"{"class_name": "Lambda", "config": {"function": ["4wEAAAAA", null, null], "function_type": "lambda"}}"#);
        let findings = check_hdf5(&bytes).unwrap();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].location.as_deref(), Some("@109"));
        let mut plain = HDF5_MAGIC.to_vec();
        plain.extend_from_slice(br#"{"class_name": "Dense"}"#);
        assert!(check_hdf5(&plain).unwrap().is_empty());
    }
}
