//! `manifest import-sha256sums`, `manifest export --sha256sums` (checked by the real coreutils
//! `sha256sum`) and `manifest import-monai` on a tiny bundle built here, downloads served by the
//! loopback test server.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::Digest;

use crate::server::{Route, TestServer};
use crate::support::{fixture, modelvet, root};

/// The demo model's top-level files (its plugins live in a subdirectory).
const DEMO_FILES: [&str; 3] = ["README.md", "config.json", "model.safetensors"];
const EXPIRES: &str = "2099-01-01T00:00:00Z";

fn copy_demo(dir: &Path) {
    crate::support::copy_dir(&fixture("demo-model"), dir);
}

fn sha256sum(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("sha256sum")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("coreutils sha256sum runs")
}

fn draft(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn paths(manifest: &Value) -> Vec<String> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["path"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `modelvet manifest COMMAND INPUT` with the draft header, writing the draft to `out`.
fn import(command: &str, input: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let (input, out) = (input.display().to_string(), out.display().to_string());
    let mut args = vec![
        "manifest",
        command,
        &input,
        "--name",
        "demo/imported",
        "--version",
        "1",
        "--expires",
        EXPIRES,
        "--out",
        &out,
    ];
    args.extend(extra);
    modelvet(&args)
}

#[test]
fn sha256sum_output_imports_and_export_passes_sha256sum_check() {
    let work = tempfile::tempdir().unwrap();
    copy_demo(work.path());
    let listing = sha256sum(
        work.path(),
        &["--binary", "config.json", "./model.safetensors"],
    );
    let mut sums = listing.stdout;
    sums.extend(sha256sum(work.path(), &["--tag", "README.md"]).stdout);
    fs::write(work.path().join("SHA256SUMS"), &sums).unwrap();
    let out = work.path().join("manifest.json");
    let (code, stdout, stderr) = import(
        "import-sha256sums",
        &work.path().join("SHA256SUMS"),
        &out,
        &[],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let manifest = draft(&out);
    assert_eq!(paths(&manifest), DEMO_FILES);
    assert_eq!(manifest["files"][2]["format"], "safetensors");

    // The shipped demo manifest, exported, is what `sha256sum -c` accepts for the demo files.
    let check = tempfile::tempdir().unwrap();
    copy_demo(check.path());
    let exported = check.path().join("SHA256SUMS");
    let demo = root().join("manifests/demo/manifest.json");
    let (code, _, stderr) = modelvet(&[
        "manifest",
        "export",
        &demo.display().to_string(),
        "--sha256sums",
        "--out",
        &exported.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let checked = sha256sum(check.path(), &["--check", "--strict", "SHA256SUMS"]);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // And stdout carries the same lines.
    let (code, stdout, _) = modelvet(&[
        "manifest",
        "export",
        &demo.display().to_string(),
        "--sha256sums",
    ]);
    assert_eq!(
        (code, stdout.into_bytes()),
        (0, fs::read(&exported).unwrap())
    );
}

#[test]
fn sha256sums_mismatch_missing_and_unsafe_lines() {
    let work = tempfile::tempdir().unwrap();
    copy_demo(work.path());
    let sums = sha256sum(work.path(), &DEMO_FILES).stdout;
    fs::write(work.path().join("config.json"), b"{\"changed\": true}").unwrap();
    let mut text = String::from_utf8(sums).unwrap();
    text.push_str(&format!("{}  gone.bin\n", "0".repeat(64)));
    let listing = work.path().join("sums.txt");
    fs::write(&listing, &text).unwrap();
    let out = work.path().join("draft.json");
    let (code, stdout, stderr) = import("import-sha256sums", &listing, &out, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("digest-mismatch") && stdout.contains("config.json"),
        "{stdout}"
    );
    assert!(
        stdout.contains("file-missing") && stdout.contains("gone.bin"),
        "{stdout}"
    );
    assert_eq!(paths(&draft(&out)), ["README.md", "model.safetensors"]);

    // A traversal is refused before any file is read, with its line number.
    text.push_str(&format!("{}  ../outside\n", "0".repeat(64)));
    fs::write(&listing, &text).unwrap();
    let (code, _, stderr) = import("import-sha256sums", &listing, &out, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 5"), "{stderr}");
}

/// A MONAI-like bundle: configs, a pickle `.pt`, safetensors weights, and a `large_files.yml`
/// listing them plus `models/extra.safetensors`, absent, at `extra_url` with `extra_md5`.
fn monai_bundle(dir: &Path, extra_url: &str, extra_md5: &str) {
    fs::create_dir_all(dir.join("configs")).unwrap();
    fs::create_dir_all(dir.join("models")).unwrap();
    fs::create_dir_all(dir.join("docs")).unwrap();
    fs::write(
        dir.join("configs/metadata.json"),
        br#"{"version": "0.1.0", "name": "tiny"}"#,
    )
    .unwrap();
    fs::write(
        dir.join("configs/inference.json"),
        br#"{"network_def": {"_target_": "UNet"}}"#,
    )
    .unwrap();
    fs::write(dir.join("docs/README.md"), b"# tiny bundle\n").unwrap();
    // Protocol 2: an empty dict, as `torch.save` would wrap one.
    fs::write(dir.join("models/model.pt"), b"\x80\x02}q\x00.").unwrap();
    let weights = fs::read(fixture("demo-model/model.safetensors")).unwrap();
    fs::write(dir.join("models/model.safetensors"), &weights).unwrap();
    let weights_sha256 = format!("{:x}", sha2::Sha256::digest(&weights));
    fs::write(
        dir.join("large_files.yml"),
        format!(
            "large_files:\n\
             - path: \"models/model.pt\"\n  url: \"{extra_url}\"\n  hash_val: \"{}\"\n  hash_type: \"md5\"\n\
             - path: \"models/model.safetensors\"\n  url: \"{extra_url}\"\n  hash_val: \"{weights_sha256}\"\n  hash_type: \"sha256\"\n\
             - path: \"models/extra.safetensors\"\n  url: \"{extra_url}\"\n  hash_val: \"{extra_md5}\"\n",
            "0".repeat(32)
        ),
    )
    .unwrap();
}

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::Md5::digest(bytes))
}

#[test]
fn monai_bundle_without_download_drafts_the_rest_and_reports_violations() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    monai_bundle(
        &bundle,
        "http://127.0.0.1:9/extra.safetensors",
        &"a".repeat(32),
    );
    let out = work.path().join("draft.json");
    let (code, stdout, stderr) = import("import-monai", &bundle, &out, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("models/model.pt") && stdout.contains("pickle-format"),
        "{stdout}"
    );
    assert!(
        stdout.contains("models/extra.safetensors") && stdout.contains("file-missing"),
        "{stdout}"
    );
    assert_eq!(
        paths(&draft(&out)),
        [
            "configs/inference.json",
            "configs/metadata.json",
            "docs/README.md",
            "large_files.yml",
            "models/model.safetensors"
        ]
    );
}

#[test]
fn monai_download_checks_the_published_md5_and_flags_it_unverifiable() {
    let extra = fs::read(fixture("demo-model/model.safetensors")).unwrap();
    let server = TestServer::start(
        "127.0.0.1",
        vec![Route::normal("/extra.safetensors", extra.clone())],
    );
    let url = server.url("/extra.safetensors");
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name);

    // The right MD5: downloaded, placed, drafted, with a hash-unverifiable notice.
    let bundle = work.path().join("good");
    monai_bundle(&bundle, &url, &md5_hex(&extra));
    let (code, stdout, stderr) =
        import("import-monai", &bundle, &path("good.json"), &["--download"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("hash-unverifiable"), "{stdout}");
    assert_eq!(
        fs::read(bundle.join("models/extra.safetensors")).unwrap(),
        extra
    );
    let manifest = draft(&path("good.json"));
    assert!(paths(&manifest).contains(&"models/extra.safetensors".to_owned()));
    // Files already in the bundle are never downloaded, though they list the same url.
    assert_eq!(server.requests_to("/extra.safetensors").len(), 1);

    // A wrong MD5: nothing placed, digest-mismatch.
    let bundle = work.path().join("bad");
    monai_bundle(&bundle, &url, &"b".repeat(32));
    let (code, stdout, stderr) =
        import("import-monai", &bundle, &path("bad.json"), &["--download"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("digest-mismatch"), "{stdout}");
    assert!(!bundle.join("models/extra.safetensors").exists());
    let leftovers: Vec<_> = fs::read_dir(bundle.join("models")).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn monai_list_with_an_alias_bomb_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    fs::write(bundle.join("weights.json"), b"{}").unwrap();
    fs::write(
        bundle.join("large_files.yaml"),
        "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nlarge_files: [*b, *b]\n",
    )
    .unwrap();
    let (code, _, stderr) = import(
        "import-monai",
        &bundle,
        &work.path().join("draft.json"),
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("anchors"), "{stderr}");
}
