//! The differential oracle: CPython's own unpicklers (the C `pickle.Unpickler` and the
//! pure-Python `pickle._Unpickler`), with `find_class` hooked to record and refuse, judge
//! generated streams (tests/oracle/pickle_oracle.py); every stream from which either of them
//! reaches an import or the extension registry must be rejected by modelvet's scan, naming
//! the imported global as the stream spells it.
//!
//! `cargo test` runs a fixed seed; `ORACLE_SEED` and `ORACLE_COUNT` scale it up for a campaign
//! (benches/pickle-oracle-campaign.sh). python3 is required: the test fails without it, so
//! that CI cannot skip the comparison silently.

use std::process::Command;

use modelvet::finding::Code;
use modelvet::policy::{decide, PolicyOptions, Verdict};
use modelvet::scan::{scan_source, ScanOptions};
use serde_json::Value;

use crate::support::root;

/// Failures shown in the panic message; the rest are counted.
const SHOWN: usize = 25;

#[test]
fn every_stream_cpython_would_import_from_is_rejected() {
    let seed = std::env::var("ORACLE_SEED").unwrap_or_else(|_| "20261203".to_owned());
    let count = std::env::var("ORACLE_COUNT").unwrap_or_else(|_| "6000".to_owned());
    let script = root().join("tests/oracle/pickle_oracle.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--seed", &seed, "--count", &count])
        .arg("--corpus")
        .arg(root().join("fixtures/pickle"))
        .output()
        .expect("python3 runs (the oracle needs CPython)");
    assert!(
        output.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let (mut judged, mut with_event, mut failures) = (0usize, 0usize, Vec::new());
    for line in stdout.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        judged += 1;
        let events: Vec<&Value> = [&case["c"], &case["py"]]
            .into_iter()
            .filter(|event| !event.is_null())
            .collect();
        if events.is_empty() {
            continue;
        }
        with_event += 1;
        let hex = case["data"].as_str().unwrap();
        let bytes = decode_hex(hex);
        let scanned = scan_source(&bytes, "", &ScanOptions::default()).unwrap();
        let verdict = decide(&scanned.findings, &PolicyOptions::default());
        let mut problems = Vec::new();
        if verdict != Verdict::Reject {
            problems.push(format!("verdict {}", verdict.as_str()));
        }
        for event in events {
            if !names_event(&scanned.findings, event) {
                problems.push(format!("event {event} not named"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{hex}: {} (format {}, codes {:?})",
                problems.join("; "),
                scanned.format,
                scanned
                    .findings
                    .iter()
                    .map(|f| f.code.as_str())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        judged > 1000 && with_event > 500,
        "the oracle judged too little: {judged} streams, {with_event} with an import"
    );
    let shown: Vec<&String> = failures.iter().take(SHOWN).collect();
    assert!(
        failures.is_empty(),
        "{} of {with_event} importing streams (of {judged}) not rejected or not named:\n{}",
        failures.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Whether some finding names the event: the global as written (long names are shortened
/// in reports, so a shortened prefix counts), or an extension-registry code.
fn names_event(findings: &[modelvet::finding::Finding], event: &Value) -> bool {
    match event[0].as_str() {
        Some("import") => {
            let written = format!(
                "{}.{}",
                event[1].as_str().unwrap_or_default(),
                event[2].as_str().unwrap_or_default()
            );
            findings.iter().any(|finding| {
                finding.global.as_deref().is_some_and(|global| {
                    global == written
                        || global
                            .strip_suffix('…')
                            .is_some_and(|prefix| written.starts_with(prefix))
                        || global_matches_clipped(global, &written)
                })
            })
        }
        Some("ext") => findings
            .iter()
            .any(|finding| finding.code == Code::PickleExtensionCode),
        _ => false,
    }
}

/// Module and name are shortened separately: `module….name…`.
fn global_matches_clipped(global: &str, written: &str) -> bool {
    let pieces: Vec<&str> = global
        .split('…')
        .filter(|piece| !piece.is_empty())
        .collect();
    pieces.len() > 1 && {
        let mut rest = written;
        pieces.iter().all(|piece| {
            let piece = piece.trim_start_matches('.');
            match rest.find(piece) {
                Some(at) => {
                    rest = &rest[at + piece.len()..];
                    true
                }
                None => false,
            }
        })
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect()
}
