//! Where an ONNX tensor's external data would be read from: the `location` path rules (no
//! absolute paths, `..`, drive letters, devices) and the shape of the other entries. Pure
//! functions over bytes already read; the walker owns the reading and the findings list.

use crate::finding::{quote_bytes, Code, Finding, Severity};

/// Longest `location` accepted: `PATH_MAX` on Linux. Longer values are not read whole.
pub(super) const MAX_LOCATION: usize = 4096;
/// Longest key kept; real keys are `location`, `offset`, `length`, `checksum`.
pub(super) const MAX_KEY: usize = 256;
/// External data entries kept per tensor; four are defined.
pub(super) const MAX_ENTRIES: usize = 16;

/// One `StringStringEntryProto`, with bounded copies of its key and value.
pub(super) struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The value's full length, which may exceed what was copied.
    pub value_len: u64,
    pub at: u64,
}

/// Checks a tensor's external data entries. Entries are checked even when the tensor is not
/// marked external: a loader that disagrees about the marking must still be safe. Returns the
/// findings and the locations seen, in order.
pub(super) fn check_entries(
    tensor: &str,
    at: u64,
    external: bool,
    entries: &[Entry],
    dropped: bool,
) -> (Vec<Finding>, Vec<(Vec<u8>, u64)>) {
    let mut findings = Vec::new();
    let mut locations = Vec::new();
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut has_location = false;
    if dropped {
        findings.push(
            Finding::new(
                Code::OnnxExternalDataUnsafe,
                format!("tensor `{tensor}` has more than {MAX_ENTRIES} external data entries"),
            )
            .at(format!("@{at}")),
        );
    }
    for e in entries {
        let key = quote_bytes(&e.key);
        let value = quote_bytes(&e.value);
        let here = format!("@{}", e.at);
        if seen.contains(&e.key.as_slice()) {
            findings.push(
                Finding::new(
                    Code::OnnxExternalDataUnsafe,
                    format!("tensor `{tensor}` repeats external data key `{key}`, which loaders resolve differently"),
                )
                .at(here.clone()),
            );
        }
        seen.push(&e.key);
        match e.key.as_slice() {
            b"location" => {
                has_location = true;
                let reason = if e.value_len > MAX_LOCATION as u64 {
                    Some("it is longer than 4096 bytes")
                } else {
                    locations.push((e.value.clone(), e.at));
                    unsafe_location(&e.value)
                };
                if let Some(reason) = reason {
                    findings.push(
                        Finding::new(
                            Code::OnnxExternalDataUnsafe,
                            format!(
                                "tensor `{tensor}` reads external data from `{value}`: {reason}"
                            ),
                        )
                        .at(here)
                        .with_hint(
                            "external data must be a relative path inside the model's directory",
                        ),
                    );
                }
            }
            b"offset" | b"length" => {
                if !is_decimal_u64(&e.value) || e.value_len > 20 {
                    findings.push(
                        Finding::new(
                            Code::OnnxExternalDataUnsafe,
                            format!("tensor `{tensor}` external data `{key}` is `{value}`, not a non-negative decimal integer"),
                        )
                        .at(here),
                    );
                }
            }
            b"checksum" => {}
            _ => findings.push(
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
        findings.push(
            Finding::new(
                Code::OnnxInvalid,
                format!("tensor `{tensor}` has external data but no `location`"),
            )
            .at(format!("@{at}")),
        );
    }
    (findings, locations)
}

/// Why an external data location is unsafe, or `None` for a plain relative path.
pub(super) fn unsafe_location(location: &[u8]) -> Option<&'static str> {
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
