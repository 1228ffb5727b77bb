//! `modelvet registry verify` on a registry of about twenty manifests built through the CLI, one
//! per thing that can be wrong with a manifest in a pull request: each gets exactly its verdict
//! and codes, the SARIF is valid, and shards partition the registry.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::{fixture, modelvet, modelvet_json};

/// The time every check is judged at, so that "expires soon" and "expired" stay put.
const NOW: &str = "2026-11-28T00:00:00Z";

struct Registry {
    _dir: tempfile::TempDir,
    root: PathBuf,
    baseline: PathBuf,
    trust: PathBuf,
    keys: PathBuf,
}

fn cli(args: &[&str]) {
    let (code, stdout, stderr) = modelvet(args);
    assert_eq!(code, 0, "modelvet {args:?}\n{stdout}\n{stderr}");
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

impl Registry {
    /// Keys alice, bob (trusted, threshold 2) and mallory (not trusted).
    fn new() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("registry");
        let baseline = dir.path().join("baseline");
        let keys = dir.path().join("keys");
        for path in [&root, &baseline, &keys] {
            fs::create_dir_all(path).unwrap();
        }
        for name in ["alice", "bob", "mallory"] {
            cli(&["key", "generate", "--out", text(&keys.join(name))]);
        }
        let trust = root.join("trust.json");
        cli(&[
            "trust",
            "init",
            "--key",
            text(&keys.join("alice.pub")),
            "--key",
            text(&keys.join("bob.pub")),
            "--threshold",
            "2",
            "--out",
            text(&trust),
        ]);
        Registry {
            _dir: dir,
            root,
            baseline,
            trust,
            keys,
        }
    }

    /// A model directory under `base/models/NAME` with its manifest (made by `manifest create`
    /// from a copy of the demo model's top-level files), signed by `signers`.
    fn model(
        &self,
        base: &Path,
        name: &str,
        version: u32,
        expires: &str,
        signers: &[&str],
    ) -> PathBuf {
        let dir = base.join("models").join(name);
        fs::create_dir_all(&dir).unwrap();
        for file in ["README.md", "config.json", "model.safetensors"] {
            fs::copy(fixture("demo-model").join(file), dir.join(file)).unwrap();
        }
        let manifest = dir.join("manifest.json");
        cli(&[
            "manifest",
            "create",
            text(&dir),
            "--name",
            &format!("registry/{name}"),
            "--version",
            &version.to_string(),
            "--issued-at",
            "2020-01-01T00:00:00Z",
            "--expires",
            expires,
            "--out",
            text(&manifest),
        ]);
        self.sign(&manifest, signers);
        manifest
    }

    /// A manifest written by hand (for what `manifest create` refuses to make), signed.
    fn handwritten(
        &self,
        name: &str,
        files: Value,
        plugins: Option<Value>,
        signers: &[&str],
    ) -> PathBuf {
        let dir = self.root.join("models").join(name);
        fs::create_dir_all(&dir).unwrap();
        let mut manifest = json!({
            "schema": "modelvet.manifest/v1",
            "name": format!("registry/{name}"),
            "version": 1,
            "issued_at": "2026-01-01T00:00:00Z",
            "expires": "2030-01-01T00:00:00Z",
            "files": files,
        });
        if let Some(plugins) = plugins {
            manifest["plugins"] = plugins;
        }
        let path = dir.join("manifest.json");
        fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
        self.sign(&path, signers);
        path
    }

    fn sign(&self, manifest: &Path, signers: &[&str]) {
        for signer in signers {
            cli(&[
                "sign",
                text(manifest),
                "--key",
                text(&self.keys.join(format!("{signer}.key"))),
            ]);
        }
    }

    /// Keeps only the manifest and its signature: a metadata-only entry.
    fn strip_artifacts(manifest: &Path) {
        let dir = manifest.parent().unwrap();
        for file in ["README.md", "config.json", "model.safetensors"] {
            fs::remove_file(dir.join(file)).unwrap();
        }
    }

    /// `registry verify` of this registry against its baseline, at `NOW`.
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "registry",
            "verify",
            text(&self.root),
            "--trust",
            text(&self.trust),
            "--baseline",
            text(&self.baseline),
            "--current-time",
            NOW,
        ];
        args.extend_from_slice(extra);
        args
    }

    fn verify(&self, extra: &[&str]) -> (i32, Value) {
        modelvet_json(&self.args(extra), &[])
    }
}

/// Builds the registry; returns it with the expected (verdict, codes) of each manifest path.
fn build() -> (
    Registry,
    BTreeMap<String, (&'static str, Vec<&'static str>)>,
) {
    let r = Registry::new();
    let both = ["alice", "bob"];
    let later = "2030-01-01T00:00:00Z";
    let mut expected = BTreeMap::new();
    let mut expect = |path: &Path, verdict, codes: Vec<&'static str>| {
        let relative = path
            .strip_prefix(&r.root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        expected.insert(relative, (verdict, codes));
    };

    // Good ones: with files beside, metadata only, nested and named NAME.manifest.json.
    let with_files = r.model(&r.root, "valid-with-files", 1, later, &both);
    expect(&with_files, "accept", vec![]);
    for name in ["valid-a", "valid-b", "valid-c", "valid-d"] {
        let manifest = r.model(&r.root, name, 1, later, &both);
        Registry::strip_artifacts(&manifest);
        expect(&manifest, "accept", vec![]);
    }
    let nested = r.model(&r.root.join("team"), "nested", 1, later, &both);
    Registry::strip_artifacts(&nested);
    expect(&rename(&nested, "ct.manifest.json"), "accept", vec![]);
    // Any name: found by the signature beside it, or (unsigned) by its content.
    let signed = r.model(&r.root, "any-name-signed", 1, later, &both);
    expect(&rename(&signed, "release-7.json"), "accept", vec![]);
    let draft = r.model(&r.root, "any-name-unsigned", 1, later, &[]);
    Registry::strip_artifacts(&draft);
    expect(
        &rename(&draft, "draft.json"),
        "reject",
        vec!["signature-threshold-not-met"],
    );

    // Time.
    let expired = r.model(&r.root, "expired", 1, "2026-06-01T00:00:00Z", &both);
    Registry::strip_artifacts(&expired);
    expect(&expired, "reject", vec!["manifest-expired"]);
    let soon = r.model(&r.root, "expiring-soon", 1, "2026-12-08T00:00:00Z", &both);
    Registry::strip_artifacts(&soon);
    expect(&soon, "warn", vec!["manifest-expiring"]);

    // Signatures.
    let unsigned = r.model(&r.root, "unsigned", 1, later, &[]);
    Registry::strip_artifacts(&unsigned);
    expect(&unsigned, "reject", vec!["signature-threshold-not-met"]);
    let unknown = r.model(&r.root, "unknown-key", 1, later, &["mallory"]);
    Registry::strip_artifacts(&unknown);
    expect(
        &unknown,
        "reject",
        vec!["signature-threshold-not-met", "signature-unknown-key"],
    );
    let below = r.model(&r.root, "below-threshold", 1, later, &["alice"]);
    Registry::strip_artifacts(&below);
    expect(&below, "reject", vec!["signature-threshold-not-met"]);
    let edited = r.model(&r.root, "edited-after-signing", 1, later, &both);
    Registry::strip_artifacts(&edited);
    let mut bytes = fs::read(&edited).unwrap();
    bytes.extend_from_slice(b" ");
    fs::write(&edited, bytes).unwrap();
    expect(&edited, "reject", vec!["signature-payload-mismatch"]);

    // Versions against the base branch.
    for (name, base_version, version, verdict, codes) in [
        ("rolled-back", 5, 4, "reject", vec!["manifest-rollback"]),
        (
            "version-reused",
            3,
            3,
            "reject",
            vec!["manifest-version-reused"],
        ),
        ("version-bumped", 3, 4, "accept", vec![]),
    ] {
        let base = r.model(
            &r.baseline,
            name,
            base_version,
            "2029-01-01T00:00:00Z",
            &both,
        );
        Registry::strip_artifacts(&base);
        let head = r.model(&r.root, name, version, later, &both);
        Registry::strip_artifacts(&head);
        expect(&head, verdict, codes);
    }

    // Policy and structure, written by hand and properly signed.
    let pickle = r.handwritten(
        "pickle-declared",
        json!([{ "path": "model.pt", "size": 10, "sha256": "a".repeat(64) }]),
        None,
        &both,
    );
    expect(&pickle, "reject", vec!["policy-pickle-declared"]);
    let unpinned = r.handwritten(
        "plugin-unpinned",
        json!([{ "path": "plugins/pre.wasm", "size": 10, "sha256": "b".repeat(64), "format": "wasm" }]),
        None,
        &both,
    );
    expect(&unpinned, "reject", vec!["plugin-unpinned"]);
    let pinned = r.handwritten(
        "plugin-pinned",
        json!([{ "path": "plugins/pre.wasm", "size": 10, "sha256": "b".repeat(64), "format": "wasm" }]),
        Some(json!([{ "name": "pre", "path": "plugins/pre.wasm" }])),
        &both,
    );
    expect(&pinned, "accept", vec![]);
    let traversal = r.handwritten(
        "path-traversal",
        json!([{ "path": "../../etc/passwd", "size": 1, "sha256": "c".repeat(64) }]),
        None,
        &both,
    );
    expect(&traversal, "reject", vec!["manifest-invalid"]);

    // Files beside the manifest that do not match it.
    let tampered = r.model(&r.root, "tampered-file", 1, later, &both);
    let weights = tampered.with_file_name("model.safetensors");
    let mut bytes = fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&weights, bytes).unwrap();
    expect(&tampered, "accept", vec![]);
    let extra = r.model(&r.root, "extra-file", 1, later, &both);
    fs::write(extra.with_file_name("payload.pkl"), b"\x80\x04N.").unwrap();
    expect(&extra, "accept", vec![]);

    (r, expected)
}

/// Renames a manifest (and its signature, when there is one) within its directory.
fn rename(manifest: &Path, name: &str) -> PathBuf {
    let renamed = manifest.with_file_name(name);
    fs::rename(manifest, &renamed).unwrap();
    let signature = manifest.with_file_name("manifest.json.sig");
    if signature.exists() {
        fs::rename(signature, manifest.with_file_name(format!("{name}.sig"))).unwrap();
    }
    renamed
}

/// The entries of a report keyed by path: (verdict, codes sorted).
fn entries(report: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let mut codes: Vec<String> = entry["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|finding| finding["code"].as_str().unwrap().to_owned())
                .collect();
            codes.sort();
            (
                entry["path"].as_str().unwrap().to_owned(),
                (entry["verdict"].as_str().unwrap().to_owned(), codes),
            )
        })
        .collect()
}

#[test]
fn every_manifest_gets_its_verdict_and_shards_partition_the_registry() {
    let (registry, expected) = build();
    assert!(expected.len() >= 20, "{} manifests", expected.len());
    let (code, report) = registry.verify(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["command"], "registry");
    let got = entries(&report);
    for (path, (verdict, codes)) in &expected {
        let (got_verdict, got_codes) = got
            .get(path)
            .unwrap_or_else(|| panic!("`{path}` missing from {report:#}"));
        let mut codes: Vec<String> = codes.iter().map(|code| (*code).to_owned()).collect();
        codes.sort();
        assert_eq!(
            (got_verdict.as_str(), got_codes),
            (*verdict, &codes),
            "{path}"
        );
    }
    // Files verified beside their manifest appear with their own findings.
    assert_eq!(
        got["models/tampered-file/model.safetensors"],
        ("reject".to_owned(), vec!["digest-mismatch".to_owned()])
    );
    assert_eq!(
        got["models/extra-file/payload.pkl"],
        ("reject".to_owned(), vec!["file-unexpected".to_owned()])
    );
    assert_eq!(got["models/valid-with-files/model.safetensors"].0, "accept");
    // Manifests come in path order, each followed by its files.
    let paths: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["path"].as_str().unwrap())
        .filter(|path| expected.contains_key(*path))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);

    // Shards: for every N, each manifest is in exactly one of the N shards.
    let manifests: Vec<&String> = expected.keys().collect();
    for count in 1..=7 {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for index in 1..=count {
            let shard = format!("{index}/{count}");
            let (_, report) = registry.verify(&["--shard", &shard]);
            for path in entries(&report).into_keys() {
                if expected.contains_key(&path) {
                    *seen.entry(path).or_default() += 1;
                }
            }
        }
        let covered: Vec<&String> = seen.keys().collect();
        assert_eq!(covered, manifests, "N = {count}");
        assert!(
            seen.values().all(|&times| times == 1),
            "N = {count}: {seen:?}"
        );
    }
}

#[test]
fn a_clean_registry_passes_and_reports_as_sarif_and_junit() {
    let registry = Registry::new();
    for name in ["one", "two", "three"] {
        let manifest = registry.model(
            &registry.root,
            name,
            1,
            "2030-01-01T00:00:00Z",
            &["alice", "bob"],
        );
        Registry::strip_artifacts(&manifest);
    }
    let (code, report) = registry.verify(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["files"], 3);
    crate::formats::assert_valid_report(&report);

    for format in ["sarif", "junit"] {
        let (code, stdout, stderr) = modelvet(&registry.args(&["--format", format]));
        assert_eq!(code, 0, "{stderr}");
        assert!(!stdout.is_empty());
    }
}

#[test]
fn the_registry_sarif_is_valid() {
    let (registry, _) = build();
    let (code, stdout, stderr) = modelvet(&registry.args(&["--format", "sarif"]));
    assert_eq!(code, 1, "{stderr}");
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    crate::formats::assert_valid_sarif(&sarif);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results
        .iter()
        .any(|result| result["ruleId"] == "policy-pickle-declared"));
}

#[test]
fn operator_mistakes_exit_2() {
    let registry = Registry::new();
    let empty = registry.root.join("empty");
    fs::create_dir_all(&empty).unwrap();
    for args in [
        vec![
            "registry",
            "verify",
            text(&empty),
            "--trust",
            text(&registry.trust),
        ],
        vec![
            "registry",
            "verify",
            text(&registry.root),
            "--trust",
            "missing.json",
        ],
        vec![
            "registry",
            "verify",
            text(&registry.root),
            "--trust",
            text(&registry.trust),
            "--shard",
            "3/2",
        ],
    ] {
        let (code, _, stderr) = modelvet(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}

#[test]
fn the_github_action_installs_verifies_and_uploads() {
    let action = fs::read_to_string(crate::support::root().join("action.yml")).unwrap();
    assert!(action.contains("using: composite"));
    assert!(action.contains("cargo install --locked"));
    assert!(action.contains("registry verify"));
    assert!(action.contains("github/codeql-action/upload-sarif@"));
    // Every input the steps use is declared.
    let declared: Vec<&str> = action
        .split("\ninputs:\n")
        .nth(1)
        .unwrap()
        .split("\noutputs:\n")
        .next()
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':'))
        .map(|line| line.trim().trim_end_matches(':'))
        .collect();
    for used in action.split("inputs.").skip(1) {
        let name: String = used
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(
            declared.contains(&name.as_str()),
            "undeclared input `{name}`"
        );
    }
    let workflow =
        fs::read_to_string(crate::support::root().join("docs/github-workflow.yml")).unwrap();
    assert!(workflow.contains("security-events: write"));
    assert!(workflow.contains("shard: ${{ matrix.shard }}"));
}
