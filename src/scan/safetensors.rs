//! safetensors validation: the header, every tensor's dtype/shape/offsets, and the file's
//! exact length, read from the first `8 + n` bytes only.
//!
//! Everything the `safetensors` crate checks is checked (its own `Metadata` parser runs on the
//! header as a second opinion), plus what it lets through: duplicate tensor names and metadata
//! keys (JSON objects keep the last duplicate silently), non-string metadata, unknown fields, a
//! header that does not start with `{`, and bytes after the last tensor. Whether the file is
//! *also* a pickle or zip to a content-sniffing loader is decided by the dispatcher, which owns
//! those parsers; this module never reads tensor data.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;

/// The header size limit of the reference implementation; larger headers are refused there.
pub const MAX_HEADER_SIZE: u64 = 100_000_000;

/// What a valid file holds, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsSummary {
    pub tensors: usize,
    pub header_len: u64,
    pub data_len: u64,
    /// Every tensor as the header lists it, for readers of the file (plugin inputs).
    pub layout: Vec<TensorLayout>,
}

/// Where one tensor of a valid file lies; offsets count from the end of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorLayout {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsReport {
    pub summary: Option<SafetensorsSummary>,
    pub findings: Vec<Finding>,
}

/// Cheap structural sniff: an 8-byte little-endian header length that fits the file, followed
/// by `{` (or whitespace then `{`, which is then a finding). Used by the dispatcher to decide
/// the format before validating.
pub fn looks_like_safetensors(head: &[u8], file_len: u64) -> bool {
    let Some((len_bytes, rest)) = head.split_first_chunk::<8>() else {
        return false;
    };
    let n = u64::from_le_bytes(*len_bytes);
    if !(2..=MAX_HEADER_SIZE).contains(&n) || n.checked_add(8).is_none_or(|end| end > file_len) {
        return false;
    }
    rest.iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'{')
}

/// Validates the file behind `source`. I/O errors are returned; every structural problem is a
/// finding.
pub fn check(source: &dyn ReadAt) -> std::io::Result<SafetensorsReport> {
    let file_len = source.size();
    let reject = |code: Code, message: String| SafetensorsReport {
        summary: None,
        findings: vec![Finding::new(code, message)],
    };
    if file_len < 8 {
        return Ok(reject(
            Code::SafetensorsInvalid,
            format!("file is {file_len} bytes, shorter than the 8-byte header length"),
        ));
    }
    let mut len_bytes = [0; 8];
    source.read_exact_at(&mut len_bytes, 0)?;
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_SIZE {
        return Ok(reject(
            Code::SafetensorsInvalid,
            format!("header length {n} exceeds the limit of {MAX_HEADER_SIZE} bytes"),
        ));
    }
    let header_end = 8 + n;
    if header_end > file_len {
        return Ok(reject(
            Code::SafetensorsInvalid,
            format!("header length {n} runs past the end of the {file_len}-byte file"),
        ));
    }
    let header = source.read_vec(8, n)?;
    Ok(check_header(&header, file_len))
}

/// Validates a header (the `n` bytes after the length prefix) for a file of `file_len` bytes.
pub fn check_header(header: &[u8], file_len: u64) -> SafetensorsReport {
    let mut findings = Vec::new();
    let header_len = header.len() as u64;
    let invalid = |message: String| Finding::new(Code::SafetensorsInvalid, message);

    let Ok(text) = std::str::from_utf8(header) else {
        findings.push(invalid("header is not valid UTF-8".into()));
        return SafetensorsReport {
            summary: None,
            findings,
        };
    };
    // The reference reader (serde_json in the safetensors crate) skips JSON whitespace
    // before the object; anything else first is refused.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        findings.push(invalid(
            "header does not start with `{` (loaders that sniff content disagree on it)".into(),
        ));
    }
    let parsed: Header = match serde_json::from_str(text) {
        Ok(header) => header,
        Err(error) => {
            findings.push(invalid(format!(
                "header is not a valid safetensors header: {error}"
            )));
            return SafetensorsReport {
                summary: None,
                findings,
            };
        }
    };

    let mut names = HashSet::new();
    for (name, _) in &parsed.tensors {
        if !names.insert(name.as_str()) {
            findings.push(Finding::new(
                Code::SafetensorsDuplicateName,
                format!("tensor name `{}` appears more than once", quote(name)),
            ));
        }
    }
    if parsed.metadata_count > 1 {
        findings.push(Finding::new(
            Code::SafetensorsDuplicateName,
            "`__metadata__` appears more than once",
        ));
    }
    let mut keys = HashSet::new();
    for (key, value) in &parsed.metadata {
        if !keys.insert(key.as_str()) {
            findings.push(Finding::new(
                Code::SafetensorsDuplicateName,
                format!("metadata key `{}` appears more than once", quote(key)),
            ));
        }
        if let MetadataValue::Other(kind) = value {
            findings.push(invalid(format!(
                "metadata value of `{}` is {kind}, not a string",
                quote(key)
            )));
        }
    }

    let mut spans = Vec::with_capacity(parsed.tensors.len());
    for (name, tensor) in &parsed.tensors {
        let shown = quote(name);
        let Some(bits) = dtype_bits(&tensor.dtype) else {
            findings.push(invalid(format!(
                "tensor `{shown}` has unknown dtype `{}`",
                quote(&tensor.dtype)
            )));
            continue;
        };
        let [start, end] = tensor.data_offsets;
        let expected = tensor
            .shape
            .iter()
            .try_fold(1u64, |product, dim| product.checked_mul(*dim))
            .and_then(|elements| elements.checked_mul(bits));
        match expected {
            None => findings.push(invalid(format!(
                "tensor `{shown}` shape {:?} overflows when multiplied out",
                tensor.shape
            ))),
            Some(bits) if bits % 8 != 0 => findings.push(invalid(format!(
                "tensor `{shown}` holds {bits} bits, not a whole number of bytes"
            ))),
            Some(bits) if end.checked_sub(start) != Some(bits / 8) => {
                findings.push(Finding::new(
                    Code::SafetensorsInvalid,
                    format!(
                        "tensor `{shown}` spans bytes {start}..{end} but dtype {} with shape {:?} needs {} bytes",
                        tensor.dtype,
                        tensor.shape,
                        bits / 8
                    ),
                ));
            }
            Some(_) => {}
        }
        spans.push((start, end, name.as_str()));
    }

    // Tensors must tile the data region from 0 with no gap and no overlap: a gap can hide a
    // payload, an overlap makes two tensors alias the same bytes.
    spans.sort_unstable();
    let mut cursor = 0u64;
    for (start, end, name) in &spans {
        let shown = quote(name);
        if *start != cursor || end < start {
            let what = if *start > cursor {
                "leaves a gap before it"
            } else {
                "overlaps the tensor before it"
            };
            findings.push(Finding::new(
                Code::SafetensorsOffsetsInvalid,
                format!(
                    "tensor `{shown}` at offsets [{start}, {end}] {what} (expected start {cursor})"
                ),
            ));
        }
        cursor = cursor.max(*end);
    }
    let data_len = file_len.saturating_sub(8 + header_len);
    if cursor > data_len {
        findings.push(Finding::new(
            Code::SafetensorsOffsetsInvalid,
            format!(
                "tensor data ends at offset {cursor}, past the {data_len} bytes after the header"
            ),
        ));
    } else if cursor < data_len {
        findings.push(Finding::new(
            Code::SafetensorsTrailingBytes,
            format!(
                "{} bytes follow the last tensor (data region is {data_len} bytes, tensors cover {cursor})",
                data_len - cursor
            ),
        ));
    }

    // Second opinion from the reference implementation on anything we might have missed.
    if findings.is_empty() {
        if let Err(error) = serde_json::from_str::<safetensors::tensor::Metadata>(text) {
            findings.push(invalid(format!(
                "the safetensors crate refuses the header: {error}"
            )));
        }
    }

    let summary = findings.is_empty().then(|| SafetensorsSummary {
        tensors: parsed.tensors.len(),
        header_len,
        data_len,
        layout: parsed
            .tensors
            .into_iter()
            .map(|(name, tensor)| {
                let [start, end] = tensor.data_offsets;
                TensorLayout {
                    name,
                    dtype: tensor.dtype,
                    shape: tensor.shape,
                    start,
                    end,
                }
            })
            .collect(),
    });
    SafetensorsReport { summary, findings }
}

/// Element size in bits, for the dtypes of the safetensors specification.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" => 64,
        _ => return None,
    })
}

/// The header as written, duplicates and all.
struct Header {
    tensors: Vec<(String, TensorEntry)>,
    metadata: Vec<(String, MetadataValue)>,
    metadata_count: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

enum MetadataValue {
    String,
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of tensors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header {
            tensors: Vec::new(),
            metadata: Vec::new(),
            metadata_count: 0,
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                header.metadata_count += 1;
                let MetadataEntries(entries) = map.next_value()?;
                header.metadata.extend(entries);
            } else {
                let entry = map.next_value::<TensorEntry>().map_err(|error| {
                    de::Error::custom(format_args!("tensor `{}`: {error}", quote(&key)))
                })?;
                header.tensors.push((key, entry));
            }
        }
        Ok(header)
    }
}

struct MetadataEntries(Vec<(String, MetadataValue)>);

impl<'de> Deserialize<'de> for MetadataEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MetadataVisitor)
    }
}

struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = MetadataEntries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of string metadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetadataEntries, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<serde_json::Value>()?;
            let value = match value {
                serde_json::Value::String(_) => MetadataValue::String,
                serde_json::Value::Null => MetadataValue::Other("null"),
                serde_json::Value::Bool(_) => MetadataValue::Other("a boolean"),
                serde_json::Value::Number(_) => MetadataValue::Other("a number"),
                serde_json::Value::Array(_) => MetadataValue::Other("an array"),
                serde_json::Value::Object(_) => MetadataValue::Other("an object"),
            };
            entries.push((key, value));
        }
        Ok(MetadataEntries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data_len: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data_len));
        bytes
    }

    fn codes(bytes: &[u8]) -> Vec<Code> {
        check(&bytes.to_vec())
            .unwrap()
            .findings
            .iter()
            .map(|f| f.code)
            .collect()
    }

    const VALID: &str = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}"#;

    #[test]
    fn accepts_a_valid_file() {
        let report = check(&file(VALID, 22)).unwrap();
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(report.summary.unwrap().tensors, 2);
        assert!(looks_like_safetensors(
            &file(VALID, 22),
            22 + 8 + VALID.len() as u64
        ));
    }

    #[test]
    fn accepts_an_empty_header_and_trailing_space_padding() {
        assert!(codes(&file("{}", 0)).is_empty());
        assert!(codes(&file("{}      ", 0)).is_empty());
    }

    #[test]
    fn refuses_trailing_bytes_and_short_data() {
        assert_eq!(codes(&file(VALID, 23)), [Code::SafetensorsTrailingBytes]);
        assert_eq!(codes(&file(VALID, 21)), [Code::SafetensorsOffsetsInvalid]);
    }

    #[test]
    fn refuses_duplicate_tensor_names_and_metadata_keys() {
        let dup = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        assert!(codes(&file(dup, 2)).contains(&Code::SafetensorsDuplicateName));
        let dup_meta = r#"{"__metadata__":{"k":"1","k":"2"}}"#;
        assert_eq!(codes(&file(dup_meta, 0)), [Code::SafetensorsDuplicateName]);
        let two_meta = r#"{"__metadata__":{"k":"1"},"__metadata__":{"j":"2"}}"#;
        assert_eq!(codes(&file(two_meta, 0)), [Code::SafetensorsDuplicateName]);
    }

    #[test]
    fn refuses_non_string_metadata_unknown_fields_and_dtypes() {
        assert_eq!(
            codes(&file(r#"{"__metadata__":{"k":1}}"#, 0)),
            [Code::SafetensorsInvalid]
        );
        let unknown_field = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}"#;
        assert_eq!(codes(&file(unknown_field, 1)), [Code::SafetensorsInvalid]);
        let unknown_dtype = r#"{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,1]}}"#;
        assert!(codes(&file(unknown_dtype, 1)).contains(&Code::SafetensorsInvalid));
    }

    #[test]
    fn refuses_overlaps_gaps_and_size_mismatches() {
        let overlap = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#;
        assert!(codes(&file(overlap, 3)).contains(&Code::SafetensorsOffsetsInvalid));
        let gap = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        assert!(codes(&file(gap, 2)).contains(&Code::SafetensorsOffsetsInvalid));
        let wrong = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(codes(&file(wrong, 4)).contains(&Code::SafetensorsInvalid));
        let overflow =
            r#"{"a":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,4]}}"#;
        assert!(codes(&file(overflow, 4)).contains(&Code::SafetensorsInvalid));
    }

    #[test]
    fn refuses_bad_headers() {
        // JSON whitespace first is what the safetensors crate accepts; a form feed is not.
        assert!(codes(&file(" \n\t\r{}", 0)).is_empty());
        assert!(codes(&file("\x0c{}", 0)).contains(&Code::SafetensorsInvalid));
        assert_eq!(codes(&file(r#"{"a":"#, 0)), [Code::SafetensorsInvalid]);
        assert_eq!(codes(&file("[]", 0)), [Code::SafetensorsInvalid; 2]);
        assert_eq!(
            codes(b"\xff\xff\xff\xff\xff\xff\xff\xff{}"),
            [Code::SafetensorsInvalid]
        );
        assert_eq!(
            codes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}"),
            [Code::SafetensorsInvalid]
        );
        assert_eq!(codes(b"\x02\x00"), [Code::SafetensorsInvalid]);
    }
}
