//! Differential test of the tar and zip readers against Python's `tarfile` and `zipfile`.
//!
//! tests/oracle/archives.py builds a few thousand seeded archive variants and records what
//! Python makes of each; this test asserts that modelvet is never more permissive: whatever
//! Python opens, modelvet recognises; every member Python lists (with its data inside the
//! file), modelvet lists with the same name, size and data offset; and wherever Python raises
//! half-way or lists something modelvet cannot follow, modelvet has a finding that rejects.

use std::path::Path;
use std::process::Command;

use modelvet::finding::{Code, Severity};
use modelvet::scan::tar::{self, TarKind, TarLimits, TarListing};
use modelvet::scan::zip::{self, ZipLimits};
use serde_json::Value;

use crate::support::root;

/// Runs the oracle with `seed`, `tar` and `zip` case counts; returns the manifest and folder.
fn oracle(seed: u32, tar: u32, zip: u32) -> (Vec<Value>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("python3")
        .arg(root().join("tests/oracle/archives.py"))
        .arg(dir.path())
        .args(["--seed", &seed.to_string()])
        .args(["--tar", &tar.to_string(), "--zip", &zip.to_string()])
        .output()
        .expect("python3 runs (the oracle needs only its standard library)");
    assert!(
        output.status.success(),
        "oracle failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read(dir.path().join("manifest.json")).unwrap();
    let Value::Array(cases) = serde_json::from_slice(&manifest).unwrap() else {
        panic!("manifest is a list");
    };
    (cases, dir)
}

#[test]
fn tar_and_zip_readers_agree_with_python() {
    // A longer campaign: MODELVET_ORACLE_SEED=7 MODELVET_ORACLE_SCALE=20 cargo test ...
    let env = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let scale = env("MODELVET_ORACLE_SCALE", 1);
    let (cases, dir) = oracle(env("MODELVET_ORACLE_SEED", 1), 2000 * scale, 600 * scale);
    assert!(cases.len() as u32 > 2500 * scale);
    let mut failures = Vec::new();
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let what = case["what"].as_str().unwrap();
        for problem in check_tar(&case["tar"], &bytes)
            .into_iter()
            .chain(check_zip(&case["zip"], &bytes))
        {
            failures.push(format!("{file} ({what}): {problem}"));
        }
    }
    if !failures.is_empty() {
        let keep = std::env::var_os("MODELVET_KEEP_ORACLE").is_some();
        if keep {
            let kept = dir.keep();
            eprintln!("oracle cases kept in {}", kept.display());
        }
        panic!(
            "{} divergences from Python (MODELVET_KEEP_ORACLE=1 keeps the files):\n{}",
            failures.len(),
            failures
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn rejects(findings: &[modelvet::finding::Finding]) -> bool {
    findings
        .iter()
        .any(|f| matches!(f.severity, Severity::Error | Severity::Critical))
}

/// Findings that mean modelvet stopped walking before Python did.
fn stopped_early(listing: &TarListing) -> bool {
    listing.findings.iter().any(|f| {
        matches!(
            f.code,
            Code::ArchiveUnsupported | Code::ArchiveLimitExceeded
        ) || (f.code == Code::ArchiveMalformed
            && (f.message.contains("extended headers in a row")
                || f.message.contains("back to an earlier header")
                || f.message.contains("pax `size`")))
    })
}

fn check_tar(python: &Value, bytes: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let source = bytes.to_vec();
    let opened = python["open"].as_bool().unwrap();
    let sniffed = tar::looks_like_tar(&source);
    let listing = tar::list(&source, &TarLimits::default()).unwrap();
    if opened && !sniffed {
        problems.push("tarfile opens it, looks_like_tar says no".to_owned());
    }
    if !opened && sniffed && !stopped_early(&listing) {
        problems.push(format!(
            "tarfile refuses it ({}), looks_like_tar says yes",
            python["error"]
        ));
    }
    if !opened {
        return problems;
    }
    let size = bytes.len() as i128;
    let mut expected = Vec::new();
    let mut must_reject = !python["error"].is_null();
    for member in python["members"].as_array().unwrap() {
        let typeflag = u8::try_from(member["type"].as_u64().unwrap()).unwrap();
        let length = member["size"].as_i64().map_or(i128::MAX, i128::from);
        let data = i128::from(member["offset_data"].as_i64().unwrap());
        let kind = kind_of(typeflag);
        let carries = kind == TarKind::File;
        if member["sparse"].as_bool().unwrap() || typeflag == b'S' {
            must_reject = true;
            expected.push(None);
            continue;
        }
        if carries && (length < 0 || data + length > size) {
            must_reject = true;
            continue;
        }
        expected.push(Some((
            member["name"].as_str().unwrap().to_owned(),
            kind,
            if carries { length as u64 } else { 0 },
            data as u64,
            member["offset"].as_u64().unwrap(),
        )));
    }
    let ours: Vec<_> = listing
        .members
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.kind,
                m.size,
                m.data_offset,
                m.header_offset,
            )
        })
        .collect();
    let comparable =
        expected.len() == ours.len() || (stopped_early(&listing) && ours.len() <= expected.len());
    let same = comparable
        && expected
            .iter()
            .zip(&ours)
            .all(|(want, got)| want.as_ref().is_none_or(|want| want == got));
    if !same {
        let findings: Vec<_> = listing.findings.iter().map(|f| f.code).collect();
        problems.push(shorten(format!(
            "members differ:\n  python   {expected:?}\n  modelvet {ours:?}\n  findings {findings:?}"
        )));
    }
    if must_reject && !rejects(&listing.findings) {
        problems.push(format!(
            "tarfile raised ({}) or listed a member modelvet cannot, but modelvet does not reject",
            python["error"]
        ));
    }
    problems
}

/// Long names make unreadable reports.
fn shorten(text: String) -> String {
    text.lines()
        .map(|line| line.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn kind_of(typeflag: u8) -> TarKind {
    match typeflag {
        b'1' => TarKind::Hardlink,
        b'2' => TarKind::Symlink,
        b'5' => TarKind::Directory,
        b'3' | b'4' | b'6' | b'S' => TarKind::Other(typeflag),
        _ => TarKind::File,
    }
}

fn check_zip(python: &Value, bytes: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let source = bytes.to_vec();
    if python["is_zipfile"].as_bool() == Some(true) && !zip::looks_like_zip(&source) {
        problems.push("zipfile.is_zipfile says yes, looks_like_zip says no".to_owned());
    }
    if !python["open"].as_bool().unwrap() {
        return problems;
    }
    let listing = zip::list(&source, &ZipLimits::default()).unwrap();
    let theirs: Vec<_> = python["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["header_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    let ours: Vec<_> = listing
        .members
        .iter()
        .map(|m| (m.name.clone(), m.local_header_offset as i64))
        .collect();
    if theirs != ours && !rejects(&listing.findings) {
        problems.push(format!(
            "members differ and modelvet does not reject:\n  python   {theirs:?}\n  modelvet {ours:?}"
        ));
    }
    if !ours.is_empty() && python["concat"].as_i64() != Some(listing.prefix_len as i64) {
        problems.push(format!(
            "prefix length {} but zipfile's concat is {}",
            listing.prefix_len, python["concat"]
        ));
    }
    problems
}

/// The archive fixtures (fixtures/archive/make.py) each pin a divergence found and fixed
/// here; Python's reading of each must still be modelvet's.
#[test]
fn archive_fixtures_agree_with_python() {
    let mut files: Vec<_> = std::fs::read_dir(root().join("fixtures/archive"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "tar" || e == "zip"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    // Real-world archives to compare as well: MODELVET_ORACLE_EXTRA=/some/dir.
    if let Some(extra) = std::env::var_os("MODELVET_ORACLE_EXTRA") {
        for entry in std::fs::read_dir(extra).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("python3")
        .arg(root().join("tests/oracle/archives.py"))
        .arg(dir.path())
        .arg("--files")
        .args(&files)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read(dir.path().join("manifest.json")).unwrap();
    let Value::Array(cases) = serde_json::from_slice(&manifest).unwrap() else {
        panic!("manifest is a list");
    };
    let mut failures = Vec::new();
    for case in &cases {
        let path = Path::new(case["file"].as_str().unwrap());
        let bytes = std::fs::read(path).unwrap();
        for problem in check_tar(&case["tar"], &bytes)
            .into_iter()
            .chain(check_zip(&case["zip"], &bytes))
        {
            failures.push(format!("{}: {problem}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
