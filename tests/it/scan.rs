//! `modelvet scan` end to end: every generated fixture gets the verdict `expected.json` names.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{codes, fixture, globals, modelvet, modelvet_json, root};

#[test]
fn every_fixture_gets_its_expected_verdict() {
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixture("expected.json")).expect("fixtures/expected.json exists"),
    )
    .expect("expected.json is JSON");
    let mut failures = Vec::new();
    let entries = expected["fixtures"].as_array().expect("fixtures array");
    assert!(entries.len() > 50, "the corpus shrank to {}", entries.len());
    for entry in entries {
        let relative = entry["path"].as_str().unwrap();
        let path = fixture(relative);
        let started = Instant::now();
        let (code, report) = modelvet_json(&["scan"], &[&path]);
        let elapsed = started.elapsed();
        let expect = entry["expect"].as_str().unwrap();
        let verdict = report["verdict"].as_str().unwrap_or("?");
        let want_code = if expect == "reject" { 1 } else { 0 };
        if code != want_code || verdict != expect {
            failures.push(format!(
                "{relative}: expected {expect} (exit {want_code}), got {verdict} (exit {code}): {:?}",
                codes(&report)
            ));
            continue;
        }
        let found_codes = codes(&report);
        for want in entry["codes"].as_array().unwrap() {
            let want = want.as_str().unwrap();
            if !found_codes.iter().any(|found| found == want) {
                failures.push(format!(
                    "{relative}: missing code {want}, got {found_codes:?}"
                ));
            }
        }
        let found_globals = globals(&report);
        for want in entry["globals"].as_array().unwrap() {
            let want = want.as_str().unwrap();
            if !found_globals.iter().any(|found| found == want) {
                failures.push(format!(
                    "{relative}: global {want} not named, got {found_globals:?}"
                ));
            }
        }
        if elapsed > Duration::from_secs(5) {
            failures.push(format!("{relative}: took {elapsed:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_demo_model_is_accepted() {
    let (code, report) = modelvet_json(&["scan"], &[&fixture("demo-model")]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["command"], "scan");
    assert_eq!(report["verdict"], "accept");
    let formats: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["format"].as_str().unwrap())
        .collect();
    assert!(formats.contains(&"safetensors"), "{formats:?}");
}

#[test]
fn missing_paths_are_operational_errors() {
    let missing = root().join("fixtures/does-not-exist");
    let (code, report) = modelvet_json(&["scan"], &[&missing]);
    assert_eq!(code, 2);
    assert_eq!(report["verdict"], "error");
    assert_eq!(report["summary"]["errors"], 1);
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = modelvet(&["scan"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = modelvet(&["scan", "--format", "yaml", "x"]);
    assert_eq!(code, 2);
}

#[cfg(unix)]
#[test]
fn symlinks_are_reported_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fixture("pickle"), dir.path().join("link")).unwrap();
    let (code, report) = modelvet_json(&["scan"], &[dir.path()]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["files"][0]["format"], "symlink");
    assert_eq!(codes(&report), ["symlink-not-followed"]);
}

#[test]
fn strict_turns_unknown_formats_into_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, [0xffu8, 0xfe, 0x00, 0x01, 0x02, 0x03]).unwrap();
    let (code, report) = modelvet_json(&["scan"], &[&path]);
    assert_eq!((code, report["verdict"].as_str()), (0, Some("warn")));
    let (code, report) = modelvet_json(&["scan", "--strict"], &[&path]);
    assert_eq!((code, report["verdict"].as_str()), (1, Some("reject")));
}

#[test]
fn human_output_escapes_hostile_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil\x1b[2J.txt");
    std::fs::write(&path, "hello").unwrap();
    let (code, stdout, _) = modelvet(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(stdout.contains("\\u{1b}"), "{stdout}");
}

#[test]
fn gguf_metadata_larger_than_the_first_window_is_read_in_full() {
    // Tokenizer vocabularies make real GGUF metadata several MiB long.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes()); // tensors
    bytes.extend(1u64.to_le_bytes()); // metadata entries
    let key = b"general.description";
    bytes.extend((key.len() as u64).to_le_bytes());
    bytes.extend(key);
    bytes.extend(8u32.to_le_bytes()); // string
    let value = vec![b'a'; 3 << 20];
    bytes.extend((value.len() as u64).to_le_bytes());
    bytes.extend(&value);
    let scanned = modelvet::scan::scan_source(&bytes, "big.gguf", &Default::default()).unwrap();
    assert_eq!(scanned.format, modelvet::scan::Format::Gguf);
    assert!(scanned.findings.is_empty(), "{:?}", scanned.findings);
}
