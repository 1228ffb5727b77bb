//! Keras models: the `.keras` zip's `config.json` and the legacy HDF5 `.h5` model config.
//!
//! Keras can serialise Python code into a model: a `Lambda` layer carries marshalled bytecode
//! (`__lambda__`, `function_type: lambda`) that runs when the model is loaded with safe mode
//! off, which older Keras versions, and any Keras loading a legacy `.h5` file, do; and a config
//! can name objects and functions from any module (CVE-2025-1550, CVE-2025-9906). Such models
//! are rejected. This module reads configs by parsing them (`config`): a `.keras` archive's
//! `config.json` as JSON, an `.h5` file's `model_config` and `training_config` root attributes
//! through a structural HDF5 reader (`hdf5`), never by searching bytes. A file that looks like
//! a Keras model but cannot be read completely is `keras-malformed`. The zip itself is walked
//! by the dispatcher and `scan::zip`; HDF5 datasets (the weights) are never interpreted.

mod config;
pub mod hdf5;

use std::io;

use memchr::memmem;
use serde_json::Value;

use crate::finding::{quote, quote_bytes, Code, Finding};
use crate::scan::source::ReadAt;

/// The HDF5 superblock signature, at offset 0 for files Keras writes.
pub const HDF5_MAGIC: &[u8; 8] = hdf5::SIGNATURE;

/// Root attributes Keras's legacy loader deserialises into objects.
const CONFIG_ATTRIBUTES: &[&[u8]] = &[b"model_config", b"training_config"];

/// Root attributes read for the report and the differential tests, besides the configs.
const INFO_ATTRIBUTES: &[&[u8]] = &[b"keras_version", b"backend"];

/// Bytes whose presence makes an unreadable HDF5 file a Keras model that could not be checked.
const KERAS_MARKERS: &[&[u8]] = &[b"model_config", b"training_config", b"keras_version"];

/// How much of a `config.json` that did not scan as JSON is read to say why it is malformed.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Checks a `.keras` `config.json`. A config that is not JSON is `keras-malformed`.
pub fn check_config(bytes: &[u8]) -> Vec<Finding> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => check_config_value(&value),
        Err(error) => vec![Finding::new(
            Code::KerasMalformed,
            format!(
                "config.json is not valid JSON: {}",
                quote(&error.to_string())
            ),
        )],
    }
}

/// Checks a parsed Keras model config, whole: every nested object Keras would deserialise.
pub fn check_config_value(value: &Value) -> Vec<Finding> {
    config::check(value)
}

/// Whether a JSON value is a Keras model config (what a `.keras` archive's or a saved model
/// directory's `config.json` holds, or `model.to_json()`), as opposed to a Hugging Face
/// transformers `config.json`: a top-level object with a string `class_name` and a `config`.
pub fn looks_like_config(value: &Value) -> bool {
    config::looks_like(value)
}

/// Whether the source is an HDF5 file, with its superblock at offset 0 or after a user block
/// (512, 1024, 2048... bytes), as libhdf5 and so h5py and Keras accept it.
pub fn looks_like_hdf5(source: &dyn ReadAt) -> io::Result<bool> {
    Ok(hdf5::find_superblock(source)?.is_some())
}

/// Checks an HDF5 file: the root group's `model_config` and `training_config` attributes are
/// read by structure and checked as configs. An HDF5 file with no Keras config gives no
/// findings; one that cannot be read completely is `keras-malformed` when it carries Keras
/// markers or uses a feature that could hide them. Errors are I/O failures of the source only.
pub fn check_hdf5(source: &dyn ReadAt) -> io::Result<Vec<Finding>> {
    let want = |name: &[u8]| CONFIG_ATTRIBUTES.contains(&name) || INFO_ATTRIBUTES.contains(&name);
    let attributes = match hdf5::root_attributes(source, &want) {
        Ok(attributes) => attributes,
        Err(hdf5::Error::Io(error)) => return Err(error),
        Err(error) => {
            let hides_names = matches!(error, hdf5::Error::Unsupported { .. });
            if hides_names || has_keras_marker(source)? {
                return Ok(vec![Finding::new(
                    Code::KerasMalformed,
                    format!(
                        "HDF5 file with Keras model markers cannot be read completely: {}",
                        quote(&error.to_string())
                    ),
                )
                .with_hint(
                    "re-save the model in the `.keras` format, or its weights as safetensors",
                )]);
            }
            return Ok(Vec::new());
        }
    };
    let mut findings = Vec::new();
    for attribute in &attributes {
        if !CONFIG_ATTRIBUTES.contains(&attribute.name.as_slice()) {
            continue;
        }
        let name = String::from_utf8_lossy(&attribute.name).into_owned();
        let malformed = |why: &str| {
            Finding::new(
                Code::KerasMalformed,
                format!("root attribute `{}` {why}", quote_bytes(&attribute.name)),
            )
            .at(name.clone())
        };
        let text = match &attribute.value {
            Some(hdf5::Value::Fixed(items) | hdf5::Value::Variable(items)) if items.len() == 1 => {
                items.first().map(Vec::as_slice).unwrap_or_default()
            }
            _ => {
                findings.push(malformed("is not a single string"));
                continue;
            }
        };
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => findings.extend(
                check_config_value(&value)
                    .into_iter()
                    .map(|finding| locate(finding, &name)),
            ),
            Err(error) => findings.push(malformed(&format!(
                "is not valid JSON: {}",
                quote(&error.to_string())
            ))),
        }
    }
    Ok(findings)
}

/// Prefixes a config finding's JSON location with the attribute it came from.
fn locate(mut finding: Finding, attribute: &str) -> Finding {
    finding.location = Some(match finding.location.take() {
        Some(path) => format!("{attribute}:{path}"),
        None => attribute.to_owned(),
    });
    finding
}

/// Whether any Keras marker occurs in the file's bytes (read in bounded chunks).
fn has_keras_marker(source: &dyn ReadAt) -> io::Result<bool> {
    const CHUNK: u64 = 8 << 20;
    const OVERLAP: u64 = 64;
    let finders: Vec<memmem::Finder<'_>> = KERAS_MARKERS.iter().map(memmem::Finder::new).collect();
    let size = source.size();
    let mut offset = 0u64;
    while offset < size {
        let len = CHUNK.min(size - offset);
        let chunk = source.read_vec(offset, len)?;
        if finders.iter().any(|finder| finder.find(&chunk).is_some()) {
            return Ok(true);
        }
        if offset + len >= size {
            break;
        }
        offset += len - OVERLAP;
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
