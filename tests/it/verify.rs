//! `modelvet key / trust / manifest create / sign / verify` end to end, through the binary:
//! the untouched release verifies; every tampering is refused with its code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{codes, fixture, modelvet, snakeoil_trust};

/// A release made through the CLI in a temporary directory.
struct Release {
    _temp: tempfile::TempDir,
    root: PathBuf,
}

impl Release {
    /// The demo model, one snakeoil key, threshold 1, version 1.
    fn new() -> Release {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().to_path_buf();
        crate::support::copy_dir(&fixture("demo-model"), &root.join("model"));
        let release = Release { _temp: temp, root };
        snakeoil_trust(&release.root, "snakeoil-a");
        release.publish(1, "snakeoil-a");
        release
    }

    fn path(&self, relative: &str) -> String {
        self.root.join(relative).display().to_string()
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = modelvet(args);
        assert_eq!(
            code, 0,
            "modelvet {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    /// Writes manifest.json for `version` and signs it with `key`.
    fn publish(&self, version: u64, key: &str) {
        let _ = fs::remove_file(self.root.join("manifest.json"));
        let _ = fs::remove_file(self.root.join("manifest.json.sig"));
        self.create(
            "demo/ct-segmenter",
            version,
            &["--expires", "2099-01-01T00:00:00Z"],
        );
        self.sign(key);
    }

    /// `manifest create` of the model directory into manifest.json, with `extra` options.
    fn create(&self, name: &str, version: u64, extra: &[&str]) {
        let (model, out, version) = (
            self.path("model"),
            self.path("manifest.json"),
            version.to_string(),
        );
        let mut args = vec![
            "manifest",
            "create",
            &model,
            "--name",
            name,
            "--version",
            &version,
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    fn sign(&self, key: &str) {
        self.ok(&[
            "sign",
            &self.path("manifest.json"),
            "--key",
            &self.path(&format!("{key}.key")),
        ]);
    }

    /// Runs verify with JSON output and a private state directory.
    fn verify(&self, extra: &[&str]) -> (i32, Value) {
        let model = self.path("model");
        let manifest = self.path("manifest.json");
        let trust = self.path("trust.json");
        let state = self.path("state");
        let mut args = vec![
            "verify",
            &model,
            "--manifest",
            &manifest,
            "--trust",
            &trust,
            "--state",
            &state,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = modelvet(&args);
        if code == 2 {
            // Operational errors print to stderr only; there is no report.
            assert!(stdout.is_empty(), "{stdout}");
            assert!(stderr.starts_with("error: "), "{stderr}");
            return (code, Value::Null);
        }
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("{error}: {stdout}\nstderr: {stderr}"));
        (code, report)
    }

    fn model_file(&self, relative: &str) -> PathBuf {
        self.root.join("model").join(relative)
    }
}

/// Every code in the report, run-level and per file.
fn all_codes(report: &Value) -> Vec<String> {
    let mut found = codes(report);
    found.extend(
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|finding| finding["code"].as_str().map(str::to_owned)),
    );
    found
}

fn assert_refused(release: &Release, extra: &[&str], code: &str) -> Value {
    let (exit, report) = release.verify(extra);
    assert_eq!(exit, 1, "expected {code}: {report:#}");
    assert_eq!(report["verdict"], "reject");
    assert!(
        all_codes(&report).iter().any(|found| found == code),
        "expected {code}: {report:#}"
    );
    report
}

#[test]
fn an_untouched_release_verifies() {
    let release = Release::new();
    let (exit, report) = release.verify(&[]);
    assert_eq!(exit, 0, "{report:#}");
    assert_eq!(report["command"], "verify");
    assert_eq!(report["verdict"], "accept");
    assert_eq!(report["manifest"]["name"], "demo/ct-segmenter");
    assert_eq!(report["manifest"]["signers"].as_array().unwrap().len(), 1);
    assert_eq!(report["files"].as_array().unwrap().len(), 5);
}

#[test]
fn every_tampering_of_the_files_is_refused() {
    type Tamper = fn(&Release);
    let cases: [(&str, Tamper, &str); 8] = [
        (
            "bit flip",
            |r| flip_byte(&r.model_file("model.safetensors"), 100),
            "digest-mismatch",
        ),
        (
            "truncation",
            |r| truncate(&r.model_file("model.safetensors"), 10),
            "size-mismatch",
        ),
        (
            "appended bytes",
            |r| append(&r.model_file("config.json"), b" "),
            "size-mismatch",
        ),
        (
            "replaced file",
            |r| replace_same_size(&r.model_file("config.json")),
            "digest-mismatch",
        ),
        (
            "renamed file",
            |r| fs::rename(r.model_file("config.json"), r.model_file("config.json.bak")).unwrap(),
            "file-missing",
        ),
        (
            "extra file",
            |r| fs::write(r.model_file("extra.txt"), "hi").unwrap(),
            "file-unexpected",
        ),
        (
            "missing file",
            |r| fs::remove_file(r.model_file("README.md")).unwrap(),
            "file-missing",
        ),
        ("symlink swap", symlink_swap, "file-not-regular"),
    ];
    for (name, tamper, code) in cases {
        let release = Release::new();
        tamper(&release);
        let (exit, report) = release.verify(&[]);
        assert_eq!(exit, 1, "{name}: {report:#}");
        assert!(
            all_codes(&report).iter().any(|found| found == code),
            "{name}: expected {code}: {report:#}"
        );
    }
}

#[test]
fn digest_mismatches_show_expected_and_computed() {
    let release = Release::new();
    flip_byte(&release.model_file("model.safetensors"), 100);
    let report = assert_refused(&release, &[], "digest-mismatch");
    let file = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["path"] == "model.safetensors")
        .unwrap();
    let finding = &file["findings"][0];
    assert!(finding["expected"].as_str().unwrap().starts_with("sha256:"));
    assert!(finding["computed"].as_str().unwrap().starts_with("sha256:"));
    assert_ne!(finding["expected"], finding["computed"]);
}

#[test]
fn signatures_by_untrusted_keys_or_over_other_bytes_do_not_count() {
    // Wrong key.
    let release = Release::new();
    release.ok(&["key", "generate", "--out", &release.path("snakeoil-b")]);
    release.publish(1, "snakeoil-b");
    assert_refused(&release, &[], "signature-threshold-not-met");

    // Tampered payload: the manifest changes after signing.
    let release = Release::new();
    append(&release.root.join("manifest.json"), b"\n");
    assert_refused(&release, &[], "signature-payload-mismatch");

    // Payload type changed inside the envelope.
    let release = Release::new();
    let sig = release.root.join("manifest.json.sig");
    let mut envelope: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    envelope["payloadType"] = "application/vnd.modelvet.trust.v1+json".into();
    fs::write(&sig, serde_json::to_vec(&envelope).unwrap()).unwrap();
    assert_refused(&release, &[], "signature-payload-type");

    // No signature at all.
    let release = Release::new();
    fs::remove_file(release.root.join("manifest.json.sig")).unwrap();
    assert_refused(&release, &[], "signature-threshold-not-met");
}

#[test]
fn thresholds_count_distinct_unexpired_keys() {
    let release = Release::new();
    release.ok(&["key", "generate", "--out", &release.path("snakeoil-b")]);
    fs::remove_file(release.root.join("trust.json")).unwrap();
    release.ok(&[
        "trust",
        "init",
        "--key",
        &release.path("snakeoil-a.pub"),
        "--key",
        &release.path("snakeoil-b.pub"),
        "--threshold",
        "2",
        "--out",
        &release.path("trust.json"),
    ]);
    // Below threshold: one of two.
    assert_refused(&release, &[], "signature-threshold-not-met");

    // The same key twice counts once.
    let sig = release.root.join("manifest.json.sig");
    let mut envelope: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    let first = envelope["signatures"][0].clone();
    envelope["signatures"].as_array_mut().unwrap().push(first);
    fs::write(&sig, serde_json::to_vec(&envelope).unwrap()).unwrap();
    assert_refused(&release, &[], "signature-threshold-not-met");

    // Both keys: verified.
    release.publish(1, "snakeoil-a");
    release.sign("snakeoil-b");
    let (exit, report) = release.verify(&[]);
    assert_eq!(exit, 0, "{report:#}");
    assert_eq!(report["manifest"]["signers"].as_array().unwrap().len(), 2);
}

#[test]
fn expired_keys_and_manifests_are_refused_unless_loudly_allowed() {
    let release = Release::new();
    fs::remove_file(release.root.join("trust.json")).unwrap();
    let key = release.path("snakeoil-a.pub");
    release.ok(&[
        "trust",
        "init",
        "--key",
        &key,
        "--expires",
        &format!("{key}=2000-01-01T00:00:00Z"),
        "--out",
        &release.path("trust.json"),
    ]);
    let report = assert_refused(&release, &[], "signature-threshold-not-met");
    assert!(all_codes(&report)
        .iter()
        .any(|code| code == "signature-key-expired"));

    let release = Release::new();
    assert_refused(
        &release,
        &["--current-time", "2100-01-01T00:00:00Z"],
        "manifest-expired",
    );
    let (exit, report) = release.verify(&[
        "--current-time",
        "2100-01-01T00:00:00Z",
        "--unsafe-allow-expired",
    ]);
    assert_eq!(exit, 0, "{report:#}");
    assert_eq!(report["verdict"], "warn");
}

#[test]
fn rollback_and_reused_versions_are_refused() {
    let release = Release::new();
    release.publish(2, "snakeoil-a");
    assert_eq!(release.verify(&[]).0, 0);
    // An older, validly signed release.
    release.publish(1, "snakeoil-a");
    assert_refused(&release, &[], "manifest-rollback");
    // Version 2 again, but different bytes (a later expiry is enough).
    fs::remove_file(release.root.join("manifest.json")).unwrap();
    fs::remove_file(release.root.join("manifest.json.sig")).unwrap();
    release.create(
        "demo/ct-segmenter",
        2,
        &["--expires", "2098-01-01T00:00:00Z"],
    );
    release.sign("snakeoil-a");
    assert_refused(&release, &[], "manifest-version-reused");
    // The loud escape skips the check.
    assert_eq!(release.verify(&["--unsafe-no-rollback-check"]).0, 0);
}

#[test]
fn keys_made_by_openssl_sign_and_verify() {
    let Ok(status) = Command::new("openssl").arg("version").output() else {
        eprintln!("openssl not found; skipping");
        return;
    };
    assert!(status.status.success());
    let release = Release::new();
    let key = release.path("snakeoil-openssl.key");
    let public = release.path("snakeoil-openssl.pub");
    let run = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&["genpkey", "-algorithm", "ed25519", "-out", &key]);
    run(&["pkey", "-in", &key, "-pubout", "-out", &public]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::remove_file(release.root.join("trust.json")).unwrap();
    release.ok(&[
        "trust",
        "init",
        "--key",
        &public,
        "--out",
        &release.path("trust.json"),
    ]);
    release.publish(1, "snakeoil-openssl");
    let (exit, report) = release.verify(&[]);
    assert_eq!(exit, 0, "{report:#}");
}

#[test]
fn manifests_with_unsafe_paths_are_refused_even_when_signed() {
    let release = Release::new();
    let path = release.root.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    manifest["files"][0]["path"] = "../escape.json".into();
    fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    fs::remove_file(release.root.join("manifest.json.sig")).unwrap();
    release.sign("snakeoil-a");
    assert_refused(&release, &[], "manifest-invalid");
}

#[test]
fn unusable_operator_inputs_exit_2() {
    let release = Release::new();
    fs::write(release.root.join("trust.json"), "{").unwrap();
    assert_eq!(release.verify(&[]).0, 2);
    fs::remove_file(release.root.join("trust.json")).unwrap();
    assert_eq!(release.verify(&[]).0, 2);
}

#[test]
fn trust_rotation_needs_a_threshold_of_the_old_keys() {
    let release = Release::new();
    release.ok(&["key", "generate", "--out", &release.path("snakeoil-b")]);
    release.ok(&[
        "trust",
        "init",
        "--key",
        &release.path("snakeoil-b.pub"),
        "--version",
        "2",
        "--out",
        &release.path("trust.new.json"),
    ]);
    let update = |release: &Release| {
        modelvet(&[
            "trust",
            "update",
            "--current",
            &release.path("trust.json"),
            "--new",
            &release.path("trust.new.json"),
        ])
        .0
    };
    // Signed only by the new key: refused.
    release.ok(&[
        "sign",
        &release.path("trust.new.json"),
        "--key",
        &release.path("snakeoil-b.key"),
    ]);
    assert_eq!(update(&release), 1);
    // Signed by the old key too: accepted, and the old key no longer verifies releases.
    release.ok(&[
        "sign",
        &release.path("trust.new.json"),
        "--key",
        &release.path("snakeoil-a.key"),
    ]);
    assert_eq!(update(&release), 0);
    assert_refused(&release, &[], "signature-threshold-not-met");
}

#[test]
fn pickle_files_cannot_be_published() {
    let release = Release::new();
    fs::copy(
        fixture("pickle/os-system-protocol0.pkl"),
        release.model_file("weights.bin"),
    )
    .unwrap();
    let (code, stdout, _) = modelvet(&[
        "manifest",
        "create",
        &release.path("model"),
        "--name",
        "demo",
        "--version",
        "3",
        "--expires",
        "2099-01-01T00:00:00Z",
        "--out",
        &release.path("other.json"),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("pickle-format"), "{stdout}");
    assert!(!release.root.join("other.json").exists());
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, by: usize) {
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() - by]).unwrap();
}

fn append(path: &Path, extra: &[u8]) {
    let mut bytes = fs::read(path).unwrap();
    bytes.extend_from_slice(extra);
    fs::write(path, bytes).unwrap();
}

fn replace_same_size(path: &Path) {
    let len = fs::read(path).unwrap().len();
    fs::write(path, vec![b' '; len]).unwrap();
}

fn symlink_swap(release: &Release) {
    let target = release.root.join("config-copy.json");
    fs::copy(release.model_file("config.json"), &target).unwrap();
    fs::remove_file(release.model_file("config.json")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, release.model_file("config.json")).unwrap();
}

#[test]
fn the_shipped_demo_release_verifies() {
    let state = tempfile::tempdir().unwrap();
    let root = crate::support::root();
    let (code, stdout, stderr) = modelvet(&[
        "verify",
        &fixture("demo-model").display().to_string(),
        "--manifest",
        &root
            .join("manifests/demo/manifest.json")
            .display()
            .to_string(),
        "--trust",
        &root.join("manifests/demo/trust.json").display().to_string(),
        "--state",
        &state.path().display().to_string(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

#[test]
fn a_manifest_kept_inside_the_model_directory_is_not_part_of_the_file_set() {
    let release = Release::new();
    let inside = release.path("model/manifest.json");
    release.ok(&[
        "manifest",
        "create",
        &release.path("model"),
        "--name",
        "demo/inside",
        "--version",
        "1",
        "--expires",
        "2099-01-01T00:00:00Z",
        "--chunk-size",
        "1048576",
        "--out",
        &inside,
    ]);
    release.ok(&["sign", &inside, "--key", &release.path("snakeoil-a.key")]);
    let (code, stdout, stderr) = modelvet(&[
        "verify",
        &release.path("model"),
        "--manifest",
        &inside,
        "--trust",
        &release.path("trust.json"),
        "--state",
        &release.path("state"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // A new manifest at the same path makes the old signature stale: it is removed, not kept.
    release.ok(&[
        "manifest",
        "create",
        &release.path("model"),
        "--name",
        "demo/inside",
        "--version",
        "2",
        "--expires",
        "2099-01-01T00:00:00Z",
        "--out",
        &inside,
    ]);
    assert!(!release.root.join("model/manifest.json.sig").exists());
}

#[test]
fn an_expired_release_can_be_made_on_purpose_and_is_refused() {
    let release = Release::new();
    fs::remove_file(release.root.join("manifest.json")).unwrap();
    let (code, _, stderr) = modelvet(&[
        "manifest",
        "create",
        &release.path("model"),
        "--name",
        "demo/old",
        "--version",
        "1",
        "--expires",
        "2020-01-01T00:00:00Z",
        "--out",
        &release.path("manifest.json"),
    ]);
    assert_eq!(code, 2, "an expiry in the past needs --issued-at: {stderr}");
    release.create(
        "demo/old",
        1,
        &[
            "--issued-at",
            "2019-01-01T00:00:00Z",
            "--expires",
            "2020-01-01T00:00:00Z",
        ],
    );
    release.sign("snakeoil-a");
    assert_refused(&release, &[], "manifest-expired");
}

/// A name that is not UTF-8 is compared as bytes: its lossy spelling (`a\u{fffd}.bin`) may be
/// a listed path, and the file behind it is still an extra file, never the listed one.
#[cfg(target_os = "linux")]
#[test]
fn names_that_are_not_utf8_are_extra_files() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let release = Release::new();
    let model = release.root.join("model");
    fs::write(model.join("a\u{fffd}.bin"), b"listed").unwrap();
    release.publish(2, "snakeoil-a");
    assert_eq!(release.verify(&[]).0, 0);
    fs::write(
        model.join(OsStr::from_bytes(b"a\xff.bin")),
        b"cos\nsystem\n(S'id'\ntR.",
    )
    .unwrap();
    assert_refused(&release, &[], "file-unexpected");
}
