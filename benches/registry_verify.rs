//! `modelvet registry verify` over a generated registry of 5,000 signed manifests (metadata
//! only, as a registry repository holds them), timed end to end through the real binary and
//! printed as manifests per second.
//!
//!     cargo bench --bench registry_verify [-- MANIFESTS]
//!
//! Each manifest lists three files and is signed by two of the trust policy's keys (threshold
//! 2), so every check pays two ed25519 verifications, the strict parse and the policy rules.

// A benchmark's report is its output.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use modelvet::trust::dsse::{signature_path, Envelope, MANIFEST_PAYLOAD_TYPE};
use modelvet::trust::keys::{read_secret_key, write_key_pair};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("registry");
    std::fs::create_dir_all(&root)?;
    let modelvet = env!("CARGO_BIN_EXE_modelvet");

    let mut keys = Vec::new();
    for name in ["alice", "bob"] {
        let prefix = dir.path().join(name);
        write_key_pair(&prefix)?;
        keys.push(read_secret_key(&prefix.with_extension("key"))?);
    }
    let trust = root.join("trust.json");
    let status = Command::new(modelvet)
        .args(["trust", "init", "--threshold", "2", "--out"])
        .arg(&trust)
        .arg("--key")
        .arg(dir.path().join("alice.pub"))
        .arg("--key")
        .arg(dir.path().join("bob.pub"))
        .status()?;
    if !status.success() {
        return Err("trust init failed".into());
    }

    let generated = Instant::now();
    for index in 0..count {
        let model = root.join(format!("org{}/model-{index}", index % 50));
        std::fs::create_dir_all(&model)?;
        write_manifest(&model.join("manifest.json"), index, &keys)?;
    }
    println!(
        "generated {count} signed manifests in {:.1} s",
        generated.elapsed().as_secs_f64()
    );

    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let output = Command::new(modelvet)
            .args(["registry", "verify", "--format", "json", "--trust"])
            .arg(&trust)
            .arg(&root)
            .output()?;
        times.push(started.elapsed().as_secs_f64());
        if output.status.code() != Some(0) {
            return Err(format!(
                "registry verify failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
    }
    times.sort_by(f64::total_cmp);
    let best = times.first().copied().unwrap_or_default();
    let median = times.get(1).copied().unwrap_or(best);
    println!(
        "registry verify, {count} manifests: {best:.2} s fastest, {median:.2} s median of 3 \
         -> {:.0} manifests/s (target: 5,000 in <= 5 s)",
        count as f64 / best
    );
    Ok(())
}

fn write_manifest(
    path: &Path,
    index: usize,
    keys: &[modelvet::trust::keys::SecretKey],
) -> Result<(), Box<dyn std::error::Error>> {
    let digest = |seed: &str| modelvet::digest::sha256_bytes(format!("{index}/{seed}").as_bytes());
    let manifest = serde_json::json!({
        "schema": "modelvet.manifest/v1",
        "name": format!("bench/model-{index}"),
        "version": 1 + index % 7,
        "issued_at": "2026-01-01T00:00:00Z",
        "expires": "2036-01-01T00:00:00Z",
        "files": [
            { "path": "config.json", "size": 212, "sha256": digest("config").to_string(), "format": "json" },
            { "path": "model.safetensors", "size": 123_456_789, "sha256": digest("model").to_string(), "format": "safetensors" },
            { "path": "tokenizer.json", "size": 4_321, "sha256": digest("tokenizer").to_string(), "format": "json" },
        ],
        "annotations": { "license": "apache-2.0" }
    });
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    let mut envelope = Envelope::new(MANIFEST_PAYLOAD_TYPE, bytes.clone());
    for key in keys {
        envelope.sign(key);
    }
    std::fs::write(path, &bytes)?;
    std::fs::write(signature_path(path), envelope.to_json())?;
    Ok(())
}
