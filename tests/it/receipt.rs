//! Provenance receipts end to end: `verify`, `fetch` and `run --receipt` write one (signed with
//! `--receipt-key`) only for a good result; `modelvet receipt verify` checks signatures, schema,
//! the manifest and the files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use modelvet::digest::sha256_bytes;
use modelvet::trust::dsse::{Envelope, RECEIPT_PAYLOAD_TYPE};

use crate::support::{copy_dir, fixture, modelvet, modelvet_json, root, snakeoil_trust};

const SNAKEOIL_KEY_ID: &str = "4e9078807b84d8dfa48aae65009eaa06ffca216e0b38e00ef0b29a250397e6cf";

fn demo(relative: &str) -> String {
    root()
        .join("manifests/demo")
        .join(relative)
        .display()
        .to_string()
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn sha256_of(path: &Path) -> String {
    sha256_bytes(&fs::read(path).unwrap()).to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Every finding code of a report, run-level and per file.
fn all_codes(report: &Value) -> Vec<String> {
    let run = report["findings"].as_array().into_iter().flatten();
    let files = report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|file| file["findings"].as_array().into_iter().flatten());
    run.chain(files)
        .filter_map(|finding| finding["code"].as_str().map(str::to_owned))
        .collect()
}

/// A temporary directory with a receipt key pair (`ci.key`, `ci.pub`) and the trust policy
/// `trust.json` for it.
struct Workspace {
    _temp: tempfile::TempDir,
    dir: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        snakeoil_trust(&dir, "ci");
        Workspace { _temp: temp, dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// `modelvet verify` of `model` against the demo manifest, with `extra` options.
    fn verify_demo(&self, model: &Path, extra: &[&str]) -> i32 {
        let (state, manifest, trust) = (
            text(&self.path("state")),
            demo("manifest.json"),
            demo("trust.json"),
        );
        let mut args = vec![
            "verify",
            "--manifest",
            manifest.as_str(),
            "--trust",
            trust.as_str(),
            "--state",
            state.as_str(),
        ];
        args.extend_from_slice(extra);
        let (code, report) = modelvet_json(&args, &[model]);
        assert!(code == 0 || code == 1, "{report}");
        code
    }

    /// `modelvet receipt verify RECEIPT --trust TRUST` with `extra` options.
    fn check(&self, receipt: &Path, trust: &Path, extra: &[&str]) -> (i32, Value) {
        let (receipt, trust) = (text(receipt), text(trust));
        let mut args = vec![
            "receipt",
            "verify",
            receipt.as_str(),
            "--trust",
            trust.as_str(),
        ];
        args.extend_from_slice(extra);
        modelvet_json(&args, &[])
    }
}

#[test]
fn verify_receipt_records_manifest_signers_and_every_file() {
    let work = Workspace::new();
    let receipt = work.path("receipt.json");
    let code = work.verify_demo(
        &fixture("demo-model"),
        &[
            "--receipt",
            &text(&receipt),
            "--current-time",
            "2030-01-01T00:00:00Z",
        ],
    );
    assert_eq!(code, 0);
    let json = read_json(&receipt);
    assert_eq!(json["schema"], "modelvet.receipt/v1");
    assert_eq!(json["command"], "verify");
    assert_eq!(json["time"], "2030-01-01T00:00:00Z");
    assert_eq!(json["verdict"], "accept");
    assert_eq!(json["tool"]["name"], "modelvet");
    assert_eq!(
        json["tool"]["wasmtime"],
        modelvet::sandbox::engine_version()
    );
    assert!(!json["host"].as_str().unwrap().is_empty());

    let manifest_path = root().join("manifests/demo/manifest.json");
    let manifest = read_json(&manifest_path);
    assert_eq!(json["manifest"]["sha256"], sha256_of(&manifest_path));
    assert_eq!(json["manifest"]["name"], manifest["name"]);
    assert_eq!(json["manifest"]["version"], manifest["version"]);
    assert_eq!(json["manifest"]["expires"], manifest["expires"]);
    assert_eq!(
        json["manifest"]["signers"],
        serde_json::json!([SNAKEOIL_KEY_ID])
    );
    assert_eq!(json["manifest"]["threshold"], 1);

    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 5);
    for listed in manifest["files"].as_array().unwrap() {
        let recorded = files
            .iter()
            .find(|file| file["path"] == listed["path"])
            .unwrap_or_else(|| panic!("{} missing from the receipt", listed["path"]));
        assert_eq!(recorded["sha256"], listed["sha256"]);
        assert_eq!(recorded["size"], listed["size"]);
        assert_eq!(recorded["format"], listed["format"]);
    }
    assert!(json.get("run").is_none());
    // Unsigned: no envelope.
    assert!(!work.path("receipt.json.sig").exists());
}

#[test]
fn signed_receipt_verifies_and_tampering_or_another_key_is_refused() {
    let work = Workspace::new();
    let receipt = work.path("receipt.json");
    let key = text(&work.path("ci.key"));
    let code = work.verify_demo(
        &fixture("demo-model"),
        &["--receipt", &text(&receipt), "--receipt-key", &key],
    );
    assert_eq!(code, 0);
    let envelope = read_json(&work.path("receipt.json.sig"));
    assert_eq!(envelope["payloadType"], RECEIPT_PAYLOAD_TYPE);

    let trust = work.path("trust.json");
    let (code, report) = work.check(&receipt, &trust, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["command"], "receipt");
    assert_eq!(report["verdict"], "accept");
    assert_eq!(report["files"].as_array().unwrap().len(), 5);
    assert_eq!(
        report["manifest"]["signers"],
        serde_json::json!([SNAKEOIL_KEY_ID])
    );

    // Another key's trust policy: the receipt's signer does not count.
    let other = tempfile::tempdir().unwrap();
    snakeoil_trust(other.path(), "other");
    let (code, report) = work.check(&receipt, &other.path().join("trust.json"), &[]);
    assert_eq!(code, 1, "{report}");
    assert!(all_codes(&report).contains(&"signature-threshold-not-met".to_owned()));

    // Tampered receipt: the signature no longer covers its bytes.
    let original = fs::read_to_string(&receipt).unwrap();
    fs::write(&receipt, original.replace("\"accept\"", "\"warn\"")).unwrap();
    let (code, report) = work.check(&receipt, &trust, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(all_codes(&report).contains(&"signature-payload-mismatch".to_owned()));

    // No envelope at all.
    fs::write(&receipt, original).unwrap();
    fs::remove_file(work.path("receipt.json.sig")).unwrap();
    let (code, report) = work.check(&receipt, &trust, &[]);
    assert_eq!(code, 1, "{report}");
}

#[test]
fn receipt_check_rehashes_files_and_compares_the_manifest() {
    let work = Workspace::new();
    let model = work.path("model");
    copy_dir(&fixture("demo-model"), &model);
    let receipt = work.path("receipt.json");
    let key = text(&work.path("ci.key"));
    let code = work.verify_demo(
        &model,
        &["--receipt", &text(&receipt), "--receipt-key", &key],
    );
    assert_eq!(code, 0);
    let trust = work.path("trust.json");
    let manifest = demo("manifest.json");
    let model_text = text(&model);
    let (code, report) = work.check(
        &receipt,
        &trust,
        &["--dir", &model_text, "--manifest", &manifest],
    );
    assert_eq!(code, 0, "{report}");

    // Another manifest file is not the one recorded.
    let (code, report) = work.check(&receipt, &trust, &["--manifest", &demo("trust.json")]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(all_codes(&report), ["digest-mismatch"]);

    // Same size, other bytes; one file longer; one gone.
    let config = model.join("config.json");
    let mut bytes = fs::read(&config).unwrap();
    bytes[0] ^= 0x20;
    fs::write(&config, bytes).unwrap();
    let mut readme = fs::read(model.join("README.md")).unwrap();
    readme.push(b'\n');
    fs::write(model.join("README.md"), readme).unwrap();
    fs::remove_file(model.join("model.safetensors")).unwrap();
    let (code, report) = work.check(&receipt, &trust, &["--dir", &model_text]);
    assert_eq!(code, 1, "{report}");
    let file_codes = |path: &str| -> Vec<String> {
        let file = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|file| file["path"] == path)
            .unwrap();
        file["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| finding["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(file_codes("config.json"), ["digest-mismatch"]);
    assert_eq!(file_codes("README.md"), ["size-mismatch"]);
    assert_eq!(file_codes("model.safetensors"), ["file-missing"]);
    assert!(file_codes("plugins/ct-window.wasm").is_empty());
}

#[test]
fn a_signed_but_malformed_receipt_is_invalid() {
    let work = Workspace::new();
    let receipt = work.path("receipt.json");
    let code = work.verify_demo(&fixture("demo-model"), &["--receipt", &text(&receipt)]);
    assert_eq!(code, 0);
    let key = modelvet::trust::keys::read_secret_key(&work.path("ci.key")).unwrap();
    let mut json = read_json(&receipt);
    json["reviewed_by"] = Value::from("someone");
    for (name, document) in [
        ("unknown-field.json", json.clone()),
        ("other-schema.json", {
            let mut other = read_json(&receipt);
            other["schema"] = Value::from("modelvet.receipt/v9");
            other
        }),
    ] {
        let path = work.path(name);
        let bytes = serde_json::to_vec_pretty(&document).unwrap();
        let mut envelope = Envelope::new(RECEIPT_PAYLOAD_TYPE, bytes.clone());
        envelope.sign(&key);
        fs::write(&path, bytes).unwrap();
        fs::write(work.path(&format!("{name}.sig")), envelope.to_json()).unwrap();
        let (code, report) = work.check(&path, &work.path("trust.json"), &[]);
        assert_eq!(code, 1, "{name}: {report}");
        assert_eq!(all_codes(&report), ["receipt-invalid"], "{name}");
    }
}

#[test]
fn a_refused_verification_writes_no_receipt() {
    let work = Workspace::new();
    let model = work.path("model");
    copy_dir(&fixture("demo-model"), &model);
    fs::write(model.join("config.json"), b"{}").unwrap();
    let receipt = work.path("receipt.json");
    let key = text(&work.path("ci.key"));
    let code = work.verify_demo(
        &model,
        &["--receipt", &text(&receipt), "--receipt-key", &key],
    );
    assert_eq!(code, 1);
    assert!(!receipt.exists());
    assert!(!work.path("receipt.json.sig").exists());
}

#[test]
fn run_receipt_records_plugins_limits_inputs_and_output() {
    let work = Workspace::new();
    let receipt = work.path("run-receipt.json");
    let output = work.path("mask.safetensors");
    let input = fixture("ct-slice/ct-slice.safetensors");
    let (state, dir) = (text(&work.path("state")), text(&fixture("demo-model")));
    let (output_text, input_text, receipt_text) = (text(&output), text(&input), text(&receipt));
    let key = text(&work.path("ci.key"));
    let (manifest, trust) = (demo("manifest.json"), demo("trust.json"));
    let args = [
        "run",
        "--manifest",
        &manifest,
        "--trust",
        &trust,
        "--dir",
        &dir,
        "--plugin",
        "ct-window",
        "--plugin",
        "label-mask",
        "--input",
        &input_text,
        "--output",
        &output_text,
        "--state",
        &state,
        "--receipt",
        &receipt_text,
        "--receipt-key",
        &key,
    ];
    let (code, report) = modelvet_json(&args, &[]);
    assert_eq!(code, 0, "{report}");
    let json = read_json(&receipt);
    assert_eq!(json["command"], "run");
    assert_eq!(json["files"], serde_json::json!([]));
    assert_eq!(
        json["manifest"]["signers"],
        serde_json::json!([SNAKEOIL_KEY_ID])
    );

    let stages = json["run"]["stages"].as_array().unwrap();
    let plugin_digest = |file: &str| sha256_of(&fixture("demo-model/plugins").join(file));
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0]["plugin"], "ct-window");
    assert_eq!(stages[0]["sha256"], plugin_digest("ct-window.wasm"));
    assert_eq!(stages[1]["plugin"], "label-mask");
    assert_eq!(stages[1]["sha256"], plugin_digest("label-mask.wasm"));
    for (stage, reported) in stages.iter().zip(report["stages"].as_array().unwrap()) {
        assert_eq!(stage["pinned_by"]["kind"], "manifest");
        assert_eq!(stage["limits"], reported["limits"]);
        assert!(stage["limits"]["timeout_ms"].as_u64().unwrap() > 0);
    }
    let inputs = json["run"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0]["sha256"], sha256_of(&input));
    assert_eq!(json["run"]["output"]["sha256"], sha256_of(&output));
    assert_eq!(report["output"]["sha256"], sha256_of(&output));
    assert_eq!(
        json["run"]["output"]["tensors"],
        report["output"]["tensors"]
    );

    let (code, checked) = work.check(&receipt, &work.path("trust.json"), &[]);
    assert_eq!(code, 0, "{checked}");
}

#[test]
fn fetch_receipt_records_the_fetched_files() {
    let work = Workspace::new();
    let receipt = work.path("fetch-receipt.json");
    let (dest, state, receipt_text) = (
        text(&work.path("dest")),
        text(&work.path("state")),
        text(&receipt),
    );
    let (manifest, trust) = (demo("manifest.json"), demo("trust.json"));
    let args = [
        "fetch",
        &manifest,
        "--trust",
        &trust,
        "--dest",
        &dest,
        "--state",
        &state,
        "--no-cache",
        "--receipt",
        &receipt_text,
    ];
    let (code, report) = modelvet_json(&args, &[]);
    assert_eq!(code, 0, "{report}");
    let json = read_json(&receipt);
    assert_eq!(json["command"], "fetch");
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 5);
    for file in files {
        let placed = work.path("dest").join(file["path"].as_str().unwrap());
        assert_eq!(file["sha256"], sha256_of(&placed));
    }
    let (code, _, stderr) = modelvet(&["receipt", "verify", &receipt_text, "--trust", &trust]);
    // Unsigned: nothing vouches for it.
    assert_eq!(code, 1, "{stderr}");
}
