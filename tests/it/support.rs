//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository root (fixtures, manifests).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(relative: &str) -> PathBuf {
    root().join("fixtures").join(relative)
}

/// Copies a directory tree of regular files (a fixture model) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Runs `modelvet` with `args` and returns the exit code and stdout parsed as JSON.
pub fn modelvet_json(args: &[&str], paths: &[&Path]) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_modelvet"))
        .args(args)
        .args(["--format", "json"])
        .args(paths)
        .env("NO_COLOR", "1")
        .output()
        .expect("modelvet runs");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let json = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().expect("exited normally"), json)
}

/// Runs `modelvet` and returns exit code, stdout, stderr.
pub fn modelvet(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_modelvet"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("modelvet runs");
    (
        output.status.code().expect("exited normally"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every finding code in a report.
pub fn codes(report: &Value) -> Vec<String> {
    findings(report)
        .filter_map(|finding| finding["code"].as_str().map(str::to_owned))
        .collect()
}

/// Every `global` named in a report's findings.
pub fn globals(report: &Value) -> Vec<String> {
    findings(report)
        .filter_map(|finding| finding["global"].as_str().map(str::to_owned))
        .collect()
}

fn findings(report: &Value) -> impl Iterator<Item = &Value> {
    report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|file| file["findings"].as_array().into_iter().flatten())
}

/// Makes the key pair `DIR/KEY.key` / `DIR/KEY.pub` and the trust policy `DIR/trust.json`
/// (that key alone, threshold 1) through the CLI, as an operator would.
pub fn snakeoil_trust(dir: &Path, key: &str) {
    let key = dir.join(key).display().to_string();
    let public = format!("{key}.pub");
    let trust = dir.join("trust.json").display().to_string();
    for args in [
        vec!["key", "generate", "--out", key.as_str()],
        vec![
            "trust",
            "init",
            "--key",
            public.as_str(),
            "--out",
            trust.as_str(),
        ],
    ] {
        let (code, stdout, stderr) = modelvet(&args);
        assert_eq!(code, 0, "modelvet {args:?}\n{stdout}\n{stderr}");
    }
}
