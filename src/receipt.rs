//! Provenance receipts: a citable record of exactly which manifest, signers, model bytes and
//! plugins produced a result, written by `verify`, `fetch` and `run` when their verdict is
//! `accept` or `warn`, and checked later by `modelvet receipt verify`.
//!
//! This module builds a [`Receipt`] from values the library already returned (a
//! [`Verification`], a [`RunReport`] and the [`TensorFile`]s it read), serialises it, parses
//! one strictly and [`check`]s it: the signature threshold of a trust policy over its exact
//! bytes (DSSE, payload type [`RECEIPT_PAYLOAD_TYPE`], as manifests are signed), its schema,
//! and optionally the manifest it names and the files it lists. It never prints and it writes
//! no file; the CLI decides where receipts go and signs them.
//!
//! A receipt is the word of whoever holds the key that signed it: it proves that *that key*
//! vouched for these facts at `time` on `host`, not that the facts are true now. Re-hashing
//! (`--dir`, `--manifest`) is how a reader checks that the bytes still are the ones recorded.
//!
//! # Schema `modelvet.receipt/v1`
//!
//! Published as JSON Schema 2020-12 in `docs/receipt.schema.json` (a test keeps it in step
//! with these types). Unknown fields are refused; adding a field makes a new schema version.
//!
//! ```json
//! {
//!   "schema": "modelvet.receipt/v1",
//!   "command": "verify",
//!   "time": "2026-03-01T12:00:00Z",
//!   "host": "build-01",
//!   "tool": { "name": "modelvet", "version": "0.1.0", "wasmtime": "48.0.8" },
//!   "verdict": "accept",
//!   "manifest": {
//!     "sha256": "<sha256 of the exact manifest bytes>",
//!     "name": "demo/ct-segmenter", "version": 2, "expires": "2099-01-01T00:00:00Z",
//!     "signers": ["<key id>"], "threshold": 1
//!   },
//!   "files": [
//!     { "path": "model.safetensors", "size": 1234, "sha256": "<hex>", "format": "safetensors" }
//!   ],
//!   "run": {
//!     "stages": [{
//!       "plugin": "ct-window", "sha256": "<hex>",
//!       "pinned_by": { "kind": "manifest", "name": "demo/ct-segmenter", "version": 2 },
//!       "limits": { "timeout_ms": 10000, "memory_bytes": 536870912, "stack_bytes": 524288,
//!                   "table_elements": 10000, "max_outputs": 64, "max_log_lines": 100,
//!                   "max_log_bytes": 65536 }
//!     }],
//!     "inputs": [{ "path": "ct.safetensors", "format": "safetensors", "sha256": "<hex>",
//!                  "tensors": [{ "name": "image", "dtype": "F32", "shape": [1, 64, 64] }] }],
//!     "output": { "path": "mask.safetensors", "format": "safetensors", "sha256": "<hex>",
//!                 "tensors": [{ "name": "mask", "dtype": "U8", "shape": [1, 64, 64] }] }
//!   }
//! }
//! ```
//!
//! - `command`: `verify`, `fetch` or `run`; `time`: when the receipt was made (RFC 3339 UTC);
//!   `host`: the machine's host name (`unknown` when it cannot be read).
//! - `verdict`: `accept` or `warn`; a refused result gets no receipt.
//! - `manifest`: the authenticated manifest, absent for `run` of a plugin pinned by `--sha256`.
//!   `signers` are the trusted key ids whose signatures met `threshold`.
//! - `files`: `verify`/`fetch`: every file of the manifest, as verified (path relative to the
//!   model directory, size, SHA-256, format detected by content). Empty for `run`.
//! - `run`: `run` only: each stage's plugin, digest, pin and limits, the input tensor files
//!   and the written output. Paths are as given on the command line.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{self, HashJob, Progress, Sha256};
use crate::finding::{quote, Code, Finding};
use crate::manifest::path::SafePath;
use crate::manifest::time::Timestamp;
use crate::policy::Verdict;
use crate::report::run::{OutputReport, RunReport, TensorSummary};
use crate::sandbox::{self, Limits, Pinning};
use crate::tensor::{TensorError, TensorFile, TensorFormat};
use crate::trust::dsse::RECEIPT_PAYLOAD_TYPE;
use crate::trust::keys::KeyId;
use crate::verify::{self, ManifestSummary, Verification, VerifiedFile, VerifyError};

/// The `schema` of every receipt this version writes and reads.
pub const SCHEMA: &str = "modelvet.receipt/v1";
/// Largest receipt read.
pub const MAX_RECEIPT_BYTES: u64 = 64 << 20;
/// Most files a receipt may list (as many as a manifest).
pub const MAX_FILES: usize = crate::manifest::MAX_FILES;
/// Longest host name recorded.
const MAX_HOST_CHARS: usize = 255;

/// A provenance receipt (see the module docs for the JSON form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub command: ReceiptCommand,
    pub time: Timestamp,
    pub host: String,
    pub tool: ToolVersions,
    pub verdict: ReceiptVerdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ReceiptManifest>,
    pub files: Vec<ReceiptFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<ReceiptRun>,
}

/// The command whose result a receipt records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptCommand {
    Verify,
    Fetch,
    Run,
}

/// The verdicts a receipt can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptVerdict {
    Accept,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolVersions {
    pub name: String,
    pub version: String,
    /// The sandbox's WebAssembly engine.
    pub wasmtime: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptManifest {
    /// The SHA-256 of the exact manifest bytes that were authenticated.
    pub sha256: Sha256,
    pub name: String,
    pub version: u64,
    pub expires: Timestamp,
    /// Trusted key ids whose signatures counted towards the threshold.
    pub signers: Vec<KeyId>,
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptFile {
    /// Relative to the model directory.
    pub path: SafePath,
    pub size: u64,
    pub sha256: Sha256,
    /// The format detected by content (`safetensors`, `json`, `wasm`...).
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRun {
    pub stages: Vec<ReceiptStage>,
    pub inputs: Vec<ReceiptTensorFile>,
    pub output: ReceiptTensorFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptStage {
    pub plugin: String,
    pub sha256: Sha256,
    pub pinned_by: ReceiptPin,
    pub limits: ReceiptLimits,
}

/// What vouched for a plugin's bytes (as [`Pinning`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum ReceiptPin {
    Manifest { name: String, version: u64 },
    OperatorDigest,
    UnsafeUnpinned,
}

/// A stage's limits (as [`Limits`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLimits {
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    pub stack_bytes: u64,
    pub table_elements: u64,
    pub max_outputs: u64,
    pub max_log_lines: u64,
    pub max_log_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTensorFile {
    pub path: String,
    /// `safetensors` or `npy`.
    pub format: String,
    pub sha256: Sha256,
    pub tensors: Vec<ReceiptTensor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
}

/// Where and when a receipt is made.
#[derive(Debug, Clone)]
pub struct Origin {
    pub command: ReceiptCommand,
    pub time: Timestamp,
    pub host: String,
}

impl Origin {
    /// This machine (its host name), at `time`.
    pub fn here(command: ReceiptCommand, time: Timestamp) -> Origin {
        Origin {
            command,
            time,
            host: host_name(),
        }
    }
}

/// A receipt could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("no receipt for a result whose verdict is `{verdict}`: a receipt vouches only for accepted results")]
    NotVouched { verdict: &'static str },
    #[error("no receipt: `{path}` was not verified (no digest)")]
    Unverified { path: String },
    #[error("no receipt: signer `{text}` is not a key id")]
    Signer { text: String },
    #[error("no receipt: the run wrote no output")]
    NoOutput,
    #[error("could not hash an input of the run")]
    Input(#[from] TensorError),
    #[error("could not encode the receipt")]
    Encode(#[source] serde_json::Error),
    #[error("could not read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// Why bytes are not a receipt of this schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptParseError {
    #[error("not a receipt: {0}")]
    Json(#[source] serde_json::Error),
    #[error("schema is `{found}`, expected `{SCHEMA}`")]
    Schema { found: String },
    #[error("lists {count} files; at most {MAX_FILES} are allowed")]
    TooManyFiles { count: usize },
}

impl Receipt {
    /// The receipt of a `verify` or `fetch` whose report has `verdict`.
    pub fn for_verification(
        origin: Origin,
        verification: &Verification,
        verdict: Verdict,
    ) -> Result<Receipt, ReceiptError> {
        let files = verification
            .files
            .iter()
            .map(receipt_file)
            .collect::<Result<Vec<_>, _>>()?;
        Receipt::new(origin, verdict, verification.manifest.as_ref(), files, None)
    }

    /// The receipt of a `run` (its report) over `inputs`, the tensor files it read.
    pub fn for_run(
        origin: Origin,
        report: &RunReport,
        inputs: &[TensorFile],
    ) -> Result<Receipt, ReceiptError> {
        let output = report.output.as_ref().ok_or(ReceiptError::NoOutput)?;
        let inputs = inputs
            .iter()
            .map(|file| {
                Ok(ReceiptTensorFile {
                    path: file.path.display().to_string(),
                    format: match file.format {
                        TensorFormat::Safetensors => "safetensors",
                        TensorFormat::Npy => "npy",
                    }
                    .to_owned(),
                    sha256: file.sha256()?,
                    tensors: file
                        .tensors()
                        .iter()
                        .map(|tensor| receipt_tensor(&TensorSummary::of(tensor)))
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, ReceiptError>>()?;
        let run = ReceiptRun {
            stages: report
                .stages
                .iter()
                .map(|stage| ReceiptStage {
                    plugin: stage.plugin.clone(),
                    sha256: stage.sha256,
                    pinned_by: match &stage.pinned_by {
                        Pinning::Manifest { name, version } => ReceiptPin::Manifest {
                            name: name.clone(),
                            version: *version,
                        },
                        Pinning::OperatorDigest => ReceiptPin::OperatorDigest,
                        Pinning::UnsafeUnpinned => ReceiptPin::UnsafeUnpinned,
                    },
                    limits: receipt_limits(&stage.limits),
                })
                .collect(),
            inputs,
            output: receipt_output(output),
        };
        Receipt::new(
            origin,
            report.verdict,
            report.manifest.as_ref(),
            Vec::new(),
            Some(run),
        )
    }

    fn new(
        origin: Origin,
        verdict: Verdict,
        manifest: Option<&ManifestSummary>,
        files: Vec<ReceiptFile>,
        run: Option<ReceiptRun>,
    ) -> Result<Receipt, ReceiptError> {
        let verdict = match verdict {
            Verdict::Accept => ReceiptVerdict::Accept,
            Verdict::Warn => ReceiptVerdict::Warn,
            refused => {
                return Err(ReceiptError::NotVouched {
                    verdict: refused.as_str(),
                })
            }
        };
        let manifest =
            manifest
                .map(|summary| {
                    Ok::<_, ReceiptError>(ReceiptManifest {
                        sha256: summary.sha256,
                        name: summary.name.clone(),
                        version: summary.version,
                        expires: summary.expires,
                        signers: summary
                            .signers
                            .iter()
                            .map(|signer| signer.parse())
                            .collect::<Result<_, _>>()
                            .map_err(|error: crate::trust::keys::KeyIdError| {
                                ReceiptError::Signer { text: error.text }
                            })?,
                        threshold: summary.threshold,
                    })
                })
                .transpose()?;
        Ok(Receipt {
            schema: SCHEMA.to_owned(),
            command: origin.command,
            time: origin.time,
            host: origin.host,
            tool: ToolVersions {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                wasmtime: sandbox::engine_version().to_owned(),
            },
            verdict,
            manifest,
            files,
            run,
        })
    }

    /// The receipt's JSON: these exact bytes are what gets signed.
    pub fn to_json(&self) -> Result<Vec<u8>, ReceiptError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(ReceiptError::Encode)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses a receipt strictly: unknown fields, another schema, unsafe paths and more than
    /// [`MAX_FILES`] files are refused.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, ReceiptParseError> {
        let receipt: Receipt = serde_json::from_slice(bytes).map_err(ReceiptParseError::Json)?;
        if receipt.schema != SCHEMA {
            return Err(ReceiptParseError::Schema {
                found: quote(&receipt.schema),
            });
        }
        if receipt.files.len() > MAX_FILES {
            return Err(ReceiptParseError::TooManyFiles {
                count: receipt.files.len(),
            });
        }
        Ok(receipt)
    }
}

/// What `modelvet receipt verify` was given.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub receipt: PathBuf,
    /// The DSSE envelope; by convention `<receipt>.sig`.
    pub signature: PathBuf,
    pub trust: PathBuf,
    /// Also check that the receipt's manifest digest is this file's SHA-256.
    pub manifest: Option<PathBuf>,
    /// Also re-hash the listed files under this directory.
    pub dir: Option<PathBuf>,
}

/// What checking a receipt established: findings as a [`Verification`] (so that it is
/// reported like one: the receipt's manifest, its files, and findings about the receipt as a
/// whole), and the receipt when it was authenticated and parsed.
#[derive(Debug, Clone, Default)]
pub struct ReceiptCheck {
    pub receipt: Option<Receipt>,
    /// The trusted keys whose signatures over the receipt counted towards the threshold.
    pub signers: Vec<KeyId>,
    pub verification: Verification,
}

/// Checks a receipt: signature threshold over its exact bytes, strict parse, then the manifest
/// and the files it names when asked. Findings are in the result; an error means something
/// could not be read at all.
pub fn check(
    request: &CheckRequest,
    now: Timestamp,
    threads: usize,
    progress: &dyn Progress,
) -> Result<ReceiptCheck, ReceiptError> {
    let trust = verify::read_trust(&request.trust)?;
    let mut result = ReceiptCheck::default();
    let findings = &mut result.verification.findings;
    let label = request.receipt.display().to_string();
    let Some(bytes) = read_capped(&request.receipt, MAX_RECEIPT_BYTES)? else {
        findings.push(Finding::new(
            Code::ReceiptInvalid,
            format!(
                "receipt `{}` is larger than {MAX_RECEIPT_BYTES} bytes",
                quote(&label)
            ),
        ));
        return Ok(result);
    };
    let Some(signatures) = verify::check_signatures(
        &trust,
        &bytes,
        verify::read_envelope(&request.signature),
        RECEIPT_PAYLOAD_TYPE,
        &request.signature.display().to_string(),
        now,
        findings,
    ) else {
        return Ok(result);
    };
    result.signers = signatures.signers;
    let receipt = match Receipt::parse(&bytes) {
        Ok(receipt) => receipt,
        Err(error) => {
            findings.push(Finding::new(
                Code::ReceiptInvalid,
                format!("signed receipt `{}` is invalid: {error}", quote(&label)),
            ));
            return Ok(result);
        }
    };

    if let Some(manifest) = &receipt.manifest {
        result.verification.manifest = Some(ManifestSummary {
            sha256: manifest.sha256,
            path: request
                .manifest
                .as_ref()
                .map_or_else(|| label.clone(), |path| path.display().to_string()),
            name: manifest.name.clone(),
            version: manifest.version,
            expires: manifest.expires,
            signers: manifest.signers.iter().map(ToString::to_string).collect(),
            threshold: manifest.threshold,
        });
    }
    if let Some(path) = &request.manifest {
        let bytes = fs::read(path).map_err(|source| ReceiptError::Read {
            path: path.clone(),
            source,
        })?;
        let computed = digest::sha256_bytes(&bytes);
        let expected = receipt.manifest.as_ref().map(|manifest| manifest.sha256);
        if expected != Some(computed) {
            findings.push(
                Finding::new(
                    Code::DigestMismatch,
                    format!(
                        "manifest `{}` is not the one the receipt records",
                        quote(&path.display().to_string())
                    ),
                )
                .with_mismatch(
                    expected.map_or_else(|| "no manifest".to_owned(), |e| format!("sha256:{e}")),
                    format!("sha256:{computed}"),
                ),
            );
        }
    }
    result.verification.files = match &request.dir {
        Some(dir) => rehash(&receipt.files, dir, threads, progress)?,
        None => receipt
            .files
            .iter()
            .map(|file| VerifiedFile {
                path: file.path.to_string(),
                format: None,
                size: Some(file.size),
                sha256: Some(file.sha256),
                findings: Vec::new(),
            })
            .collect(),
    };
    result.receipt = Some(receipt);
    Ok(result)
}

/// The host name, from the kernel (`/proc/sys/kernel/hostname`), or `unknown`.
pub fn host_name() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_HOST_CHARS)
        .collect();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name
    }
}

fn receipt_file(file: &VerifiedFile) -> Result<ReceiptFile, ReceiptError> {
    let unverified = || ReceiptError::Unverified {
        path: file.path.clone(),
    };
    Ok(ReceiptFile {
        path: file.path.clone().try_into().map_err(|_| unverified())?,
        size: file.size.ok_or_else(unverified)?,
        sha256: file.sha256.ok_or_else(unverified)?,
        format: file.format.ok_or_else(unverified)?.as_str().to_owned(),
    })
}

fn receipt_tensor(tensor: &TensorSummary) -> ReceiptTensor {
    ReceiptTensor {
        name: tensor.name.clone(),
        dtype: tensor.dtype.as_str().to_owned(),
        shape: tensor.shape.clone(),
    }
}

fn receipt_output(output: &OutputReport) -> ReceiptTensorFile {
    ReceiptTensorFile {
        path: output.path.clone(),
        format: output.format.to_owned(),
        sha256: output.sha256,
        tensors: output.tensors.iter().map(receipt_tensor).collect(),
    }
}

fn receipt_limits(limits: &Limits) -> ReceiptLimits {
    let wide = |value: usize| u64::try_from(value).unwrap_or(u64::MAX);
    ReceiptLimits {
        timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: limits.memory_bytes,
        fuel: limits.fuel,
        stack_bytes: wide(limits.stack_bytes),
        table_elements: limits.table_elements,
        max_outputs: wide(limits.max_outputs),
        max_log_lines: wide(limits.max_log_lines),
        max_log_bytes: wide(limits.max_log_bytes),
    }
}

/// Reads at most `limit` bytes of `path`; `None` when the file is larger.
fn read_capped(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReceiptError> {
    let read_error = |source| ReceiptError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(read_error)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Re-hashes the receipt's files under `dir`: each must be a regular file of the recorded size
/// and SHA-256.
fn rehash(
    files: &[ReceiptFile],
    dir: &Path,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Vec<VerifiedFile>, ReceiptError> {
    let mut entries = Vec::with_capacity(files.len());
    let mut jobs = Vec::new();
    let mut hashed = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let path = file.path.to_path_under(dir);
        let mut entry = VerifiedFile {
            path: file.path.to_string(),
            format: None,
            size: None,
            sha256: None,
            findings: Vec::new(),
        };
        match fs::symlink_metadata(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                entry.findings.push(Finding::new(
                    Code::FileMissing,
                    "listed in the receipt but missing",
                ));
            }
            Err(source) => return Err(ReceiptError::Read { path, source }),
            Ok(metadata) if !metadata.is_file() => entry.findings.push(Finding::new(
                Code::FileNotRegular,
                "is not a regular file (a link, directory or special file)",
            )),
            Ok(metadata) if metadata.len() != file.size => {
                entry.size = Some(metadata.len());
                entry.findings.push(
                    Finding::new(
                        Code::SizeMismatch,
                        format!(
                            "is {} bytes; the receipt records {}",
                            metadata.len(),
                            file.size
                        ),
                    )
                    .with_mismatch(file.size.to_string(), metadata.len().to_string()),
                );
            }
            Ok(metadata) => {
                entry.size = Some(metadata.len());
                jobs.push(HashJob {
                    path,
                    chunk_size: None,
                    size_limit: Some(file.size),
                });
                hashed.push(index);
            }
        }
        entries.push(entry);
    }
    progress.total(jobs.iter().filter_map(|job| job.size_limit).sum());
    let digests = digest::hash_files(&jobs, threads.max(1), progress);
    for ((index, job), computed) in hashed.into_iter().zip(jobs).zip(digests) {
        let (Some(entry), Some(file)) = (entries.get_mut(index), files.get(index)) else {
            continue;
        };
        let computed = computed.map_err(|error| ReceiptError::Read {
            path: job.path,
            source: io::Error::other(error.to_string()),
        })?;
        if computed.sha256 == file.sha256 {
            entry.sha256 = Some(computed.sha256);
        } else {
            entry.findings.push(
                Finding::new(
                    Code::DigestMismatch,
                    "content differs from the receipt's SHA-256",
                )
                .with_mismatch(
                    format!("sha256:{}", file.sha256),
                    format!("sha256:{}", computed.sha256),
                ),
            );
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::testing::{fields_of, keys};

    const SCHEMA_FILE: &str = include_str!("../docs/receipt.schema.json");

    fn sample() -> Value {
        json!({
            "schema": SCHEMA,
            "command": "run",
            "time": "2026-03-01T12:00:00Z",
            "host": "build-01",
            "tool": { "name": "modelvet", "version": "0.1.0", "wasmtime": "48.0.8" },
            "verdict": "accept",
            "manifest": {
                "sha256": "a".repeat(64), "name": "demo", "version": 2,
                "expires": "2099-01-01T00:00:00Z", "signers": ["b".repeat(64)], "threshold": 1
            },
            "files": [{ "path": "model.safetensors", "size": 3, "sha256": "c".repeat(64), "format": "safetensors" }],
            "run": {
                "stages": [{
                    "plugin": "p", "sha256": "d".repeat(64),
                    "pinned_by": { "kind": "manifest", "name": "demo", "version": 2 },
                    "limits": { "timeout_ms": 1, "memory_bytes": 2, "stack_bytes": 3,
                        "table_elements": 4, "max_outputs": 5, "max_log_lines": 6, "max_log_bytes": 7 }
                }],
                "inputs": [],
                "output": { "path": "o.npy", "format": "npy", "sha256": "e".repeat(64),
                    "tensors": [{ "name": "x", "dtype": "F32", "shape": [1] }] }
            }
        })
    }

    fn parse(value: &Value) -> Result<Receipt, ReceiptParseError> {
        Receipt::parse(&serde_json::to_vec(value).unwrap())
    }

    #[test]
    fn round_trips_and_refuses_what_it_does_not_know() {
        let receipt = parse(&sample()).unwrap();
        assert_eq!(
            Receipt::parse(&receipt.to_json().unwrap()).unwrap(),
            receipt
        );

        type Mutation = (&'static str, fn(&mut Value));
        let mutations: [Mutation; 7] = [
            ("unknown field", |v| v["extra"] = json!(1)),
            ("unknown nested field", |v| v["files"][0]["mode"] = json!(1)),
            ("schema", |v| v["schema"] = json!("modelvet.receipt/v2")),
            ("refused verdict", |v| v["verdict"] = json!("reject")),
            ("unsafe path", |v| {
                v["files"][0]["path"] = json!("../etc/passwd")
            }),
            ("bad digest", |v| v["files"][0]["sha256"] = json!("x")),
            ("unknown pin", |v| {
                v["run"]["stages"][0]["pinned_by"] = json!({ "kind": "vibes" })
            }),
        ];
        for (what, mutate) in mutations {
            let mut value = sample();
            mutate(&mut value);
            assert!(parse(&value).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn refuses_to_vouch_for_a_refused_result() {
        let origin = Origin::here(ReceiptCommand::Verify, Timestamp::from_unix(0));
        let error = Receipt::for_verification(origin, &Verification::default(), Verdict::Reject)
            .unwrap_err();
        assert!(matches!(error, ReceiptError::NotVouched { .. }), "{error}");
    }

    #[test]
    fn host_name_is_never_empty() {
        assert!(!host_name().is_empty());
    }

    #[test]
    fn json_schema_matches_the_rust_types() {
        let schema: Value = serde_json::from_str(SCHEMA_FILE).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["properties"]["schema"]["const"], SCHEMA);
        assert_eq!(keys(&schema), fields_of::<Receipt>());
        let defs = &schema["$defs"];
        assert_eq!(keys(&defs["tool"]), fields_of::<ToolVersions>());
        assert_eq!(keys(&defs["manifest"]), fields_of::<ReceiptManifest>());
        assert_eq!(keys(&defs["file"]), fields_of::<ReceiptFile>());
        assert_eq!(keys(&defs["run"]), fields_of::<ReceiptRun>());
        assert_eq!(keys(&defs["stage"]), fields_of::<ReceiptStage>());
        assert_eq!(keys(&defs["limits"]), fields_of::<ReceiptLimits>());
        assert_eq!(keys(&defs["tensor_file"]), fields_of::<ReceiptTensorFile>());
        assert_eq!(keys(&defs["tensor"]), fields_of::<ReceiptTensor>());
        assert_eq!(schema["properties"]["files"]["maxItems"], MAX_FILES);
        assert_eq!(
            schema["properties"]["command"]["enum"],
            json!(["verify", "fetch", "run"])
        );
        assert_eq!(
            schema["properties"]["verdict"]["enum"],
            json!(["accept", "warn"])
        );
        let kinds: Vec<Value> = [
            ReceiptPin::Manifest {
                name: String::new(),
                version: 0,
            },
            ReceiptPin::OperatorDigest,
            ReceiptPin::UnsafeUnpinned,
        ]
        .iter()
        .map(|pin| serde_json::to_value(pin).unwrap()["kind"].clone())
        .collect();
        let schema_kinds: Vec<Value> = defs["pin"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|variant| variant["properties"]["kind"]["const"].clone())
            .collect();
        assert_eq!(schema_kinds, kinds);
    }
}
