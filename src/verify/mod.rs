//! Verification of a model directory against a signed manifest, in the order that keeps
//! untrusted input from being interpreted before it is authenticated:
//!
//! signature threshold → manifest parse → expiry → rollback → exact file set → sizes →
//! SHA-256 → the scanner on every file, enforcing the declared format.
//!
//! This module orchestrates `trust`, `manifest`, `digest` and `scan`; it owns no parser of its
//! own. It returns a [`Verification`] of facts (coded findings); the verdict is `policy`'s and
//! the rendering `report`'s. "Could not check" (an unreadable trust file, a directory that
//! cannot be listed) is a [`VerifyError`]; everything about the artifact is a finding.

pub mod artifact;
pub mod create;
pub mod tree;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::{self, HashJob, Progress, Sha256};
use crate::finding::{quote, Code, Finding, Severity};
use crate::manifest::time::Timestamp;
use crate::manifest::{DeclaredFormat, Manifest, ManifestFile};
use crate::scan::source::FileSource;
use crate::scan::{self, Format, ScanOptions};
use crate::trust::dsse::{Envelope, MANIFEST_PAYLOAD_TYPE};
use crate::trust::policy::{SignatureCheck, TrustError, TrustPolicy};
use crate::trust::rollback::{RollbackCheck, RollbackError, RollbackStore};
use tree::EntryKind;

/// What to do with a manifest whose `expires` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpirationEnforcement {
    /// Refuse it.
    #[default]
    Enforce,
    /// Accept it with a warning (`--unsafe-allow-expired`).
    UnsafeAllowExpired,
}

/// Where the highest verified versions are kept, or the loud absence of rollback protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackEnforcement {
    Enforce {
        state_dir: PathBuf,
    },
    /// No rollback check at all (`--unsafe-no-rollback-check`).
    UnsafeSkip,
}

/// The operator's inputs.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The model directory.
    pub dir: PathBuf,
    pub manifest: PathBuf,
    /// The DSSE envelope; by convention `<manifest>.sig`.
    pub signature: PathBuf,
    pub trust: PathBuf,
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The time against which expiry is judged (injectable for tests and audits).
    pub now: Timestamp,
    pub expiration: ExpirationEnforcement,
    pub rollback: RollbackEnforcement,
    /// Threads for hashing; 0 means one per core.
    pub threads: usize,
    pub scan: ScanOptions,
}

/// What verification established.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Facts about the manifest once it was authenticated and parsed.
    pub manifest: Option<ManifestSummary>,
    /// Findings about the signature, manifest, expiry, rollback and the file set as a whole.
    pub findings: Vec<Finding>,
    /// One entry per file listed by the manifest or found in the directory.
    pub files: Vec<VerifiedFile>,
}

/// The authenticated manifest, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestSummary {
    /// The SHA-256 of the exact manifest bytes that were authenticated (for receipts; not part
    /// of report schema version 1).
    #[serde(skip)]
    pub sha256: Sha256,
    pub path: String,
    pub name: String,
    pub version: u64,
    pub expires: Timestamp,
    /// The trusted keys whose signatures counted towards the threshold.
    pub signers: Vec<String>,
    pub threshold: u32,
}

/// One file's verification.
#[derive(Debug, Clone)]
pub struct VerifiedFile {
    pub path: String,
    /// Detected by the scanner, when the file was scanned.
    pub format: Option<Format>,
    pub size: Option<u64>,
    /// The SHA-256 of the file, present only when it matched the manifest's.
    pub sha256: Option<Sha256>,
    pub findings: Vec<Finding>,
}

/// Verification could not be carried out; nothing can be said about the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("could not read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("trust policy `{path}` is not usable")]
    Trust {
        path: PathBuf,
        #[source]
        source: TrustError,
    },
    #[error(transparent)]
    Tree(#[from] tree::TreeError),
    #[error(transparent)]
    Rollback(#[from] RollbackError),
}

/// Verifies `request.dir` against its signed manifest.
pub fn verify(
    request: &VerifyRequest,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<Verification, VerifyError> {
    let (mut verification, authenticated) = authenticate_paths(
        &request.trust,
        &request.manifest,
        &request.signature,
        options,
    )?;
    let Some(authenticated) = authenticated else {
        return Ok(verification);
    };
    verification.files = verify_files(request, &authenticated.manifest, options, progress)?;
    authenticated.record_if_accepted(&verification)?;
    Ok(verification)
}

/// Steps 1 to 4 from files: reads the trust policy, the manifest and its signature, then
/// [`authenticate`]s. The findings are in the returned [`Verification`].
pub fn authenticate_paths(
    trust: &Path,
    manifest: &Path,
    signature: &Path,
    options: &VerifyOptions,
) -> Result<(Verification, Option<Authenticated>), VerifyError> {
    let trust = read_trust(trust)?;
    let manifest_bytes = fs::read(manifest).map_err(|source| VerifyError::Read {
        path: manifest.to_path_buf(),
        source,
    })?;
    let envelope = read_envelope(signature);
    let mut verification = Verification::default();
    let authenticated = authenticate(
        &trust,
        manifest_bytes,
        envelope,
        &manifest.display().to_string(),
        &signature.display().to_string(),
        options,
        &mut verification,
    )?;
    Ok((verification, authenticated))
}

/// Reads and parses a DSSE envelope; the error is the reason it cannot be used, for a finding
/// (a missing or malformed signature is "checked and failed", not "could not check").
pub fn read_envelope(path: &Path) -> Result<Envelope, String> {
    fs::read(path)
        .map_err(|error| format!("cannot read it: {error}"))
        .and_then(|bytes| Envelope::parse(&bytes).map_err(|error| error.to_string()))
}

/// Step 1 for any signed document: the trust policy's signature threshold over its exact
/// bytes and payload type. Findings go into `findings`; the check is returned only when the
/// threshold was met.
pub fn check_signatures(
    trust: &TrustPolicy,
    signed_bytes: &[u8],
    envelope: Result<Envelope, String>,
    payload_type: &str,
    signature_label: &str,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) -> Option<SignatureCheck> {
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(reason) => {
            findings.push(
                Finding::new(
                    Code::SignatureThresholdNotMet,
                    format!(
                        "no usable signature at `{}`: {reason}",
                        quote(signature_label)
                    ),
                )
                .with_hint("sign it with `modelvet sign FILE --key KEY`"),
            );
            return None;
        }
    };
    let check = trust.check_envelope(&envelope, signed_bytes, payload_type, now);
    findings.extend(check.findings.iter().cloned());
    check.met().then_some(check)
}

/// Reads and parses the operator's trust policy.
pub fn read_trust(path: &Path) -> Result<TrustPolicy, VerifyError> {
    let bytes = fs::read(path).map_err(|source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    TrustPolicy::parse(&bytes).map_err(|source| VerifyError::Trust {
        path: path.to_path_buf(),
        source,
    })
}

/// A manifest that passed the first four steps: signatures, parsing, expiry and rollback.
/// Only [`authenticate`] makes one, so file checks and downloads can only start from it.
#[derive(Debug)]
pub struct Authenticated {
    pub manifest: Manifest,
    bytes: Vec<u8>,
    store: Option<RollbackStore>,
}

impl Authenticated {
    /// Records the version as verified when nothing in `verification` was refused.
    pub fn record_if_accepted(&self, verification: &Verification) -> Result<(), VerifyError> {
        let refused = verification
            .findings
            .iter()
            .chain(verification.files.iter().flat_map(|file| &file.findings))
            .any(|finding| finding.severity >= Severity::Error);
        if let (Some(store), false) = (&self.store, refused) {
            store.record(&self.manifest.name, self.manifest.version, &self.bytes)?;
        }
        Ok(())
    }
}

/// Steps 1 to 4: the signature threshold over the exact manifest bytes, the manifest itself,
/// expiry and rollback. Findings go into `verification`; `None` means a step refused.
pub fn authenticate(
    trust: &TrustPolicy,
    manifest_bytes: Vec<u8>,
    envelope: Result<Envelope, String>,
    manifest_label: &str,
    signature_label: &str,
    options: &VerifyOptions,
    verification: &mut Verification,
) -> Result<Option<Authenticated>, VerifyError> {
    // 1. Signatures, over the exact bytes, before anything in them is believed.
    let Some(check) = check_signatures(
        trust,
        &manifest_bytes,
        envelope,
        MANIFEST_PAYLOAD_TYPE,
        signature_label,
        options.now,
        &mut verification.findings,
    ) else {
        return Ok(None);
    };

    // 2. The manifest, now authenticated.
    let manifest = match Manifest::parse(&manifest_bytes) {
        Ok(manifest) => manifest,
        Err(error) => {
            verification.findings.push(Finding::new(
                Code::ManifestInvalid,
                format!("signed manifest is invalid: {error}"),
            ));
            return Ok(None);
        }
    };
    verification.manifest = Some(ManifestSummary {
        sha256: digest::sha256_bytes(&manifest_bytes),
        path: manifest_label.to_owned(),
        name: manifest.name.clone(),
        version: manifest.version,
        expires: manifest.expires,
        signers: check.signers.iter().map(ToString::to_string).collect(),
        threshold: check.threshold,
    });

    // 3. Expiry.
    if manifest.expires <= options.now {
        let finding = Finding::new(
            Code::ManifestExpired,
            format!(
                "manifest `{}` version {} expired at {}",
                quote(&manifest.name),
                manifest.version,
                manifest.expires
            ),
        )
        .with_mismatch(
            format!("now before {}", manifest.expires),
            options.now.to_string(),
        );
        match options.expiration {
            ExpirationEnforcement::Enforce => {
                verification
                    .findings
                    .push(finding.with_hint(
                        "ask the publisher for a fresh release or a re-signed manifest",
                    ));
                return Ok(None);
            }
            ExpirationEnforcement::UnsafeAllowExpired => verification.findings.push(
                finding
                    .with_severity(Severity::Warning)
                    .with_hint("accepted only because of --unsafe-allow-expired"),
            ),
        }
    }

    // 4. Rollback.
    let store = match &options.rollback {
        RollbackEnforcement::Enforce { state_dir } => Some(RollbackStore::open(state_dir)?),
        RollbackEnforcement::UnsafeSkip => None,
    };
    if let Some(store) = &store {
        match store.check(&manifest.name, manifest.version, &manifest_bytes)? {
            RollbackCheck::First | RollbackCheck::Same | RollbackCheck::Newer { .. } => {}
            RollbackCheck::Rollback { highest } => {
                verification.findings.push(
                    Finding::new(
                        Code::ManifestRollback,
                        format!(
                            "manifest `{}` version {} is older than version {highest}, verified before",
                            quote(&manifest.name),
                            manifest.version
                        ),
                    )
                    .with_mismatch(format!("version >= {highest}"), manifest.version.to_string()),
                );
                return Ok(None);
            }
            RollbackCheck::Reused { version } => {
                verification.findings.push(Finding::new(
                    Code::ManifestVersionReused,
                    format!(
                        "manifest `{}` version {version} was verified before with different content",
                        quote(&manifest.name)
                    ),
                ));
                return Ok(None);
            }
        }
    }
    Ok(Some(Authenticated {
        manifest,
        bytes: manifest_bytes,
        store,
    }))
}

/// The exact file set, sizes, digests and scan of every file.
pub fn verify_files(
    request: &VerifyRequest,
    manifest: &Manifest,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<Vec<VerifiedFile>, VerifyError> {
    verify_files_beside(request, manifest, options, progress, &[])
}

/// [`verify_files`] in a directory that also holds files known not to be the model's (other
/// manifests of a registry, a trust policy): `also_exclude` are left out of the file set.
pub fn verify_files_beside(
    request: &VerifyRequest,
    manifest: &Manifest,
    options: &VerifyOptions,
    progress: &dyn Progress,
    also_exclude: &[PathBuf],
) -> Result<Vec<VerifiedFile>, VerifyError> {
    let mut exclude = vec![request.manifest.clone(), request.signature.clone()];
    exclude.extend_from_slice(also_exclude);
    let entries = tree::list(&request.dir, &exclude)?;
    // A name that is not UTF-8 is compared as the bytes it is: no manifest path equals it,
    // whatever its lossy spelling looks like.
    let on_disk: BTreeMap<&str, EntryKind> = entries
        .iter()
        .filter(|entry| !entry.unrepresentable)
        .map(|entry| (entry.path.as_str(), entry.kind))
        .collect();
    let listed: HashSet<&str> = manifest
        .files
        .iter()
        .map(|file| file.path.as_str())
        .collect();

    let mut files = Vec::new();
    let mut jobs = Vec::new();
    let mut hashed = Vec::new();
    for file in &manifest.files {
        let path = file.path.as_str();
        let mut entry = VerifiedFile {
            path: path.to_owned(),
            format: None,
            size: None,
            sha256: None,
            findings: Vec::new(),
        };
        match on_disk.get(path) {
            None => entry.findings.push(Finding::new(
                Code::FileMissing,
                "listed in the manifest but missing (or a directory)",
            )),
            Some(EntryKind::Symlink) => entry.findings.push(Finding::new(
                Code::FileNotRegular,
                "is a symbolic link; a model file must be a regular file",
            )),
            Some(EntryKind::Special) => entry.findings.push(Finding::new(
                Code::FileNotRegular,
                "is a special file (device, socket or FIFO), not a regular file",
            )),
            Some(EntryKind::File { size }) => {
                entry.size = Some(*size);
                if *size == file.size {
                    jobs.push(HashJob {
                        path: file.path.to_path_under(&request.dir),
                        chunk_size: file.chunks.as_ref().map(|chunks| chunks.chunk_size),
                        size_limit: Some(file.size),
                    });
                    hashed.push(files.len());
                } else {
                    entry.findings.push(
                        Finding::new(
                            Code::SizeMismatch,
                            format!("is {size} bytes; the manifest says {}", file.size),
                        )
                        .with_mismatch(file.size.to_string(), size.to_string()),
                    );
                }
            }
        }
        files.push(entry);
    }

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    progress.total(manifest.files.iter().map(|file| file.size).sum());
    let digests = digest::hash_files(&jobs, threads, progress);
    for ((index, job), digest) in hashed.iter().zip(&jobs).zip(digests) {
        let (Some(entry), Some(file)) = (files.get_mut(*index), manifest.files.get(*index)) else {
            continue;
        };
        let digest = match digest {
            Ok(digest) => digest,
            Err(error) => {
                return Err(VerifyError::Read {
                    path: job.path.clone(),
                    source: io::Error::other(error.to_string()),
                })
            }
        };
        if digest.sha256 != file.sha256 {
            entry.findings.push(
                Finding::new(
                    Code::DigestMismatch,
                    "content differs from the manifest's SHA-256",
                )
                .with_mismatch(
                    format!("sha256:{}", file.sha256),
                    format!("sha256:{}", digest.sha256),
                ),
            );
            continue;
        }
        if let Some(chunks) = &file.chunks {
            for (number, (expected, computed)) in
                chunks.sha256.iter().zip(&digest.chunks).enumerate()
            {
                if expected != computed {
                    entry.findings.push(
                        Finding::new(
                            Code::ChunkDigestMismatch,
                            format!("chunk {number} (of {} bytes) differs", chunks.chunk_size),
                        )
                        .with_mismatch(format!("sha256:{expected}"), format!("sha256:{computed}")),
                    );
                }
            }
        }
        entry.sha256 = Some(digest.sha256);
        // The bytes are the ones signed; now check what they are.
        let (format, findings) = scan_file(&job.path, file, &options.scan)?;
        entry.format = Some(format);
        entry.findings.extend(findings);
    }

    for entry in &entries {
        if entry.unrepresentable || !listed.contains(entry.path.as_str()) {
            files.push(VerifiedFile {
                path: entry.path.clone(),
                format: None,
                size: match entry.kind {
                    EntryKind::File { size } => Some(size),
                    _ => None,
                },
                sha256: None,
                findings: vec![Finding::new(
                    Code::FileUnexpected,
                    "is in the directory but not in the manifest",
                )
                .with_hint("remove it, or publish a manifest that lists it")],
            });
        }
    }
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(files)
}

/// Scans a file whose bytes are known to be the signed ones, enforcing its declared format.
pub fn scan_file(
    path: &Path,
    file: &ManifestFile,
    options: &ScanOptions,
) -> Result<(Format, Vec<Finding>), VerifyError> {
    let read_error = |source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let source = File::open(path)
        .and_then(FileSource::new)
        .map_err(read_error)?;
    let scanned = scan::scan_source(&source, file.path.as_str(), options).map_err(read_error)?;
    let mut findings: Vec<Finding> = scanned
        .findings
        .into_iter()
        // A declared format supersedes what the name suggests.
        .filter(|finding| finding.code != Code::ExtensionMismatch || file.format.is_none())
        .collect();
    if let Some(declared) = file.format {
        if !declared_format_matches(declared, scanned.format) {
            findings.push(
                Finding::new(
                    Code::FormatMismatch,
                    format!(
                        "declared as {} but the content is {}",
                        declared.as_str(),
                        scanned.format
                    ),
                )
                .with_mismatch(declared.as_str(), scanned.format.as_str()),
            );
        }
    }
    Ok((scanned.format, findings))
}

/// Whether the scanner's reading of a file is the format its manifest entry declares.
pub fn declared_format_matches(declared: DeclaredFormat, detected: Format) -> bool {
    match declared {
        DeclaredFormat::Safetensors => detected == Format::Safetensors,
        DeclaredFormat::Gguf => detected == Format::Gguf,
        DeclaredFormat::Onnx => detected == Format::Onnx,
        DeclaredFormat::Npy => detected == Format::Npy,
        DeclaredFormat::Json => detected == Format::Json,
        DeclaredFormat::Text => matches!(detected, Format::Text | Format::Json | Format::Empty),
        DeclaredFormat::Wasm => detected == Format::Wasm,
        // Opaque data may be anything the scanner does not refuse on its own.
        DeclaredFormat::Opaque => !detected.carries_pickle(),
    }
}

/// The format a scanned file is recorded under in a new manifest.
pub fn declared_format_for(detected: Format) -> DeclaredFormat {
    match detected {
        Format::Safetensors => DeclaredFormat::Safetensors,
        Format::Gguf => DeclaredFormat::Gguf,
        Format::Onnx => DeclaredFormat::Onnx,
        Format::Npy => DeclaredFormat::Npy,
        Format::Json => DeclaredFormat::Json,
        Format::Text | Format::Empty => DeclaredFormat::Text,
        Format::Wasm => DeclaredFormat::Wasm,
        _ => DeclaredFormat::Opaque,
    }
}
