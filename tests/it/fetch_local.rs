//! `modelvet fetch` from local sources (paths relative to the manifest): the demo release,
//! tampered sources, the cache and offline mode. Network faults are in `fetch.rs`.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::{fixture, modelvet, root, snakeoil_trust};

fn fetch(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["fetch"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let (code, stdout, stderr) = modelvet(&all);
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    assert!(code == 2 || !report.is_null(), "{stdout}\n{stderr}");
    (code, report)
}

fn codes(report: &Value) -> Vec<String> {
    let mut codes = crate::support::codes(report);
    codes.extend(
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|finding| finding["code"].as_str().map(str::to_owned)),
    );
    codes
}

/// Every file at a final path has the digest the manifest signs, and nothing else is there
/// except the partial area.
fn assert_dest_holds_only_verified_files(dest: &Path, manifest: &Path) {
    let manifest: Value = serde_json::from_slice(&fs::read(manifest).unwrap()).unwrap();
    let mut pending = vec![dest.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == ".modelvet-partial" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
                continue;
            }
            let name = entry
                .path()
                .strip_prefix(dest)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let listed = manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|file| file["path"] == name.as_str())
                .unwrap_or_else(|| panic!("`{name}` is not a manifest file"));
            let digest = modelvet::digest::sha256_bytes(&fs::read(entry.path()).unwrap());
            assert_eq!(listed["sha256"], digest.to_string(), "{name}");
        }
    }
}

#[test]
fn the_demo_release_fetches_offline_and_then_from_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    let manifest = root().join("manifests/demo/manifest.json");
    let trust = root().join("manifests/demo/trust.json");
    let (manifest_arg, trust_arg) = (manifest.display().to_string(), trust.display().to_string());
    let common = |dest: &str| {
        vec![
            manifest_arg.clone(),
            "--trust".into(),
            trust_arg.clone(),
            "--dest".into(),
            dest.to_owned(),
            "--state".into(),
            path("state"),
            "--cache".into(),
            path("cache"),
        ]
    };
    let args = common(&path("dest"));
    let (code, report) = fetch(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["command"], "fetch");
    assert_dest_holds_only_verified_files(&work.path().join("dest"), &manifest);
    assert!(!work.path().join("dest/.modelvet-partial").exists());

    // Offline, from the cache alone, into a new destination.
    let mut args = common(&path("dest2"));
    args.push("--offline".into());
    let (code, report) = fetch(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{report:#}");
    assert_dest_holds_only_verified_files(&work.path().join("dest2"), &manifest);
}

#[test]
fn a_tampered_source_never_reaches_the_destination() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    // A release whose sources are a copy of the demo model next to the manifest.
    fs::create_dir_all(work.path().join("model")).unwrap();
    for name in ["README.md", "config.json", "model.safetensors"] {
        fs::copy(
            fixture("demo-model").join(name),
            work.path().join("model").join(name),
        )
        .unwrap();
    }
    let ok = |args: &[&str]| assert_eq!(modelvet(args).0, 0, "{args:?}");
    snakeoil_trust(work.path(), "snakeoil");
    ok(&[
        "manifest",
        "create",
        &path("model"),
        "--name",
        "demo/local",
        "--version",
        "1",
        "--expires",
        "2099-01-01T00:00:00Z",
        "--source-prefix",
        "model/",
        "--out",
        &path("manifest.json"),
    ]);
    ok(&[
        "sign",
        &path("manifest.json"),
        "--key",
        &path("snakeoil.key"),
    ]);
    let bytes = fs::read(work.path().join("model/model.safetensors")).unwrap();
    let mut flipped = bytes.clone();
    flipped[100] ^= 1;
    fs::write(work.path().join("model/model.safetensors"), &flipped).unwrap();

    let (manifest, trust, dest, state) = (
        path("manifest.json"),
        path("trust.json"),
        path("dest"),
        path("state"),
    );
    let fetch_into_dest = |extra: &[&str]| {
        let mut args = vec![
            manifest.as_str(),
            "--trust",
            &trust,
            "--dest",
            &dest,
            "--state",
            &state,
            "--no-cache",
        ];
        args.extend_from_slice(extra);
        fetch(&args)
    };
    let (code, report) = fetch_into_dest(&["--retries", "0"]);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        codes(&report).iter().any(|code| code == "download-failed"),
        "{report:#}"
    );
    assert!(!work.path().join("dest/model.safetensors").exists());
    assert_dest_holds_only_verified_files(
        &work.path().join("dest"),
        &work.path().join("manifest.json"),
    );

    // With the source repaired, the same destination completes (the good files stay).
    fs::write(work.path().join("model/model.safetensors"), &bytes).unwrap();
    let (code, report) = fetch_into_dest(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_dest_holds_only_verified_files(
        &work.path().join("dest"),
        &work.path().join("manifest.json"),
    );
}

#[test]
fn an_unsigned_manifest_downloads_nothing() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    fs::copy(
        root().join("manifests/demo/manifest.json"),
        work.path().join("manifest.json"),
    )
    .unwrap();
    let (code, report) = fetch(&[
        &path("manifest.json"),
        "--trust",
        &root()
            .join("manifests/demo/trust.json")
            .display()
            .to_string(),
        "--dest",
        &path("dest"),
        "--state",
        &path("state"),
        "--no-cache",
    ]);
    assert_eq!(code, 1, "{report:#}");
    assert!(codes(&report)
        .iter()
        .any(|code| code == "signature-threshold-not-met"));
    assert!(!work.path().join("dest").exists());
}

#[test]
fn a_stale_partial_from_another_version_does_not_fail_a_good_source() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    let manifest_path = root().join("manifests/demo/manifest.json");
    let manifest = modelvet::manifest::Manifest::parse(&fs::read(&manifest_path).unwrap()).unwrap();
    let weights = manifest.file("model.safetensors").unwrap();
    let partial_dir = work
        .path()
        .join("dest")
        .join(modelvet::fetch::place::PARTIAL_DIR);
    fs::create_dir_all(&partial_dir).unwrap();
    // Half a file of other bytes, as an interrupted fetch of another version would leave.
    fs::write(
        modelvet::fetch::place::partial_path(&partial_dir, weights),
        vec![0x5a; weights.size as usize / 2],
    )
    .unwrap();
    let (code, report) = fetch(&[
        &manifest_path.display().to_string(),
        "--trust",
        &root()
            .join("manifests/demo/trust.json")
            .display()
            .to_string(),
        "--dest",
        &path("dest"),
        "--state",
        &path("state"),
        "--no-cache",
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert_dest_holds_only_verified_files(&work.path().join("dest"), &manifest_path);
    assert!(!partial_dir.exists());
}
