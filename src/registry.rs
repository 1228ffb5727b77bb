//! Registry mode: every manifest of a repository of model manifests checked at once, as the CI
//! job guarding a model registry runs it on each pull request.
//!
//! A manifest is any JSON file under the root (`.git` skipped) that is named `manifest.json` or
//! `NAME.manifest.json`, has a signature beside it (`NAME.json.sig`), or says
//! `"schema": "modelvet.manifest/v1"`; its DSSE envelope is `FILE.sig`. Each is checked in
//! the order `verify` uses — signature threshold, schema and path safety, expiry — and then
//! against the registry's rules: it must not expire within the warning window, its version must
//! not go back or be reused against the base branch's copy (`--baseline`), no file may be a
//! pickle in disguise (a pickle-typed name without a safe declared format), and every
//! WebAssembly file must be a pinned plugin. Where the model's files sit beside the manifest,
//! the whole directory is verified too. Manifests are checked in parallel and reported in path
//! order; a shard (`I/N`) takes the manifests whose path hashes to it, so the shards of a CI
//! matrix partition the registry whatever its size. This module orchestrates `verify` and
//! `manifest`; it renders nothing and keeps no rollback state of its own (the base branch is
//! the registry's memory).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::digest::sha256_bytes;
use crate::finding::{quote, Code, Finding, Severity};
use crate::manifest::time::Timestamp;
use crate::manifest::{DeclaredFormat, Manifest};
use crate::scan::ScanOptions;
use crate::trust::dsse::{signature_path, Envelope};
use crate::trust::policy::TrustPolicy;
use crate::verify::tree::{self, EntryKind};
use crate::verify::{
    self, ExpirationEnforcement, RollbackEnforcement, VerifyError, VerifyOptions, VerifyRequest,
};

/// What to check, and how.
#[derive(Debug, Clone)]
pub struct RegistryRequest {
    pub root: PathBuf,
    pub trust: PathBuf,
    /// The base branch's checkout, for version monotonicity.
    pub baseline: Option<PathBuf>,
    pub shard: Shard,
    /// Manifests that expire sooner than this many seconds from `now` get a warning.
    pub expiry_warning_seconds: i64,
    pub now: Timestamp,
    /// Manifests checked at once; 0 means one per core.
    pub jobs: usize,
}

/// One manifest's outcome: findings about the manifest itself, and the files verified beside it.
#[derive(Debug, Clone)]
pub struct ManifestCheck {
    /// The manifest's path relative to the root, `/`-separated.
    pub path: String,
    pub findings: Vec<Finding>,
    /// Files verified beside the manifest (empty when only metadata was present).
    pub files: Vec<verify::VerifiedFile>,
    /// The manifest's directory relative to the root (`""` at the root).
    pub dir: String,
}

/// The manifests of one shard, in path order, and how many the whole registry holds.
#[derive(Debug, Clone)]
pub struct RegistryOutcome {
    pub manifests: Vec<ManifestCheck>,
    pub total: usize,
}

/// A registry could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Tree(#[from] tree::TreeError),
    #[error("no manifest (`manifest.json`, `*.manifest.json`, a signed or a `modelvet.manifest/v1` JSON file) under `{}`", root.display())]
    Empty { root: PathBuf },
}

/// `I/N`: the I-th of N shards, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The one shard that holds everything.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Whether the manifest at `path` (relative to the root) belongs to this shard: decided by
    /// a hash of the path, so adding a manifest never moves another between shards.
    pub fn contains(&self, path: &str) -> bool {
        let digest = sha256_bytes(path.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(digest.as_bytes().get(..8).unwrap_or(&[0; 8]));
        u64::from_be_bytes(first) % self.count + 1 == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let fail = || format!("`{text}` is not I/N with 1 <= I <= N");
        let (index, count) = text.split_once('/').ok_or_else(fail)?;
        let index: u64 = index.parse().map_err(|_| fail())?;
        let count: u64 = count.parse().map_err(|_| fail())?;
        if index == 0 || index > count {
            return Err(fail());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Whether a file name marks a manifest.
pub fn is_manifest_name(name: &str) -> bool {
    name == "manifest.json" || name.ends_with(".manifest.json")
}

/// Every manifest under `root`, relative and sorted by path bytes: by name, by a signature
/// beside it, or by content (other JSON files, such as a model's `config.json`, are read only
/// up to the manifest size limit and skipped unless they say they are a manifest).
pub fn discover(root: &Path) -> Result<Vec<String>, RegistryError> {
    let mut entries = tree::list(root, &[])?;
    // A name that is not UTF-8 cannot be named by a manifest, nor be one's path.
    entries.retain(|entry| !entry.unrepresentable);
    let files: std::collections::HashSet<&str> = entries
        .iter()
        .filter(|entry| matches!(entry.kind, EntryKind::File { .. }))
        .map(|entry| entry.path.as_str())
        .collect();
    let mut manifests: Vec<String> = entries
        .iter()
        .filter(|entry| matches!(entry.kind, EntryKind::File { .. }))
        .map(|entry| entry.path.as_str())
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or_default();
            is_manifest_name(name)
                || (name.ends_with(".json")
                    && (files.contains(format!("{path}.sig").as_str())
                        || says_manifest(&root.join(path))))
        })
        .map(str::to_owned)
        .collect();
    manifests.sort();
    if manifests.is_empty() {
        return Err(RegistryError::Empty {
            root: root.to_owned(),
        });
    }
    Ok(manifests)
}

/// Whether a JSON file's top-level `schema` is the manifest schema.
fn says_manifest(path: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        schema: Option<String>,
    }
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    if metadata.len() > crate::manifest::MAX_MANIFEST_BYTES as u64 {
        return false;
    }
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Probe>(&bytes).ok())
        .and_then(|probe| probe.schema)
        .is_some_and(|schema| schema == crate::manifest::SCHEMA)
}

/// Checks the manifests of `request.shard`.
pub fn verify_registry(request: &RegistryRequest) -> Result<RegistryOutcome, RegistryError> {
    let trust = verify::read_trust(&request.trust)?;
    let all = discover(&request.root)?;
    let total = all.len();
    let mine: Vec<String> = all
        .iter()
        .filter(|path| request.shard.contains(path))
        .cloned()
        .collect();
    // Other manifests (and the trust policy) may share a model's directory; they are not the
    // model's files. Grouped by directory, for the manifests whose files are present.
    let mut by_dir: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    for path in all
        .iter()
        .map(|path| request.root.join(path))
        .chain(std::iter::once(request.trust.clone()))
    {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let files = by_dir.entry(dir).or_default();
        files.push(signature_path(&path));
        files.push(path);
    }
    let jobs = match request.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(mine.len().max(1));

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<ManifestCheck, RegistryError>)>> =
        Mutex::new(Vec::with_capacity(mine.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = mine.get(index) else { break };
                let outcome = check_manifest(request, &trust, path, &by_dir);
                if let Ok(mut results) = results.lock() {
                    results.push((index, outcome));
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(index, _)| *index);
    let manifests = results
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RegistryOutcome { manifests, total })
}

fn check_manifest(
    request: &RegistryRequest,
    trust: &TrustPolicy,
    relative: &str,
    registry_files: &HashMap<PathBuf, Vec<PathBuf>>,
) -> Result<ManifestCheck, RegistryError> {
    let manifest_path = request.root.join(relative);
    let signature = signature_path(&manifest_path);
    let dir_relative = relative
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir)
        .to_owned();
    let mut check = ManifestCheck {
        path: relative.to_owned(),
        findings: Vec::new(),
        files: Vec::new(),
        dir: dir_relative,
    };
    let bytes = std::fs::read(&manifest_path).map_err(|source| VerifyError::Read {
        path: manifest_path.clone(),
        source,
    })?;
    let envelope = std::fs::read(&signature)
        .map_err(|error| format!("cannot read it: {error}"))
        .and_then(|bytes| Envelope::parse(&bytes).map_err(|error| error.to_string()));
    // The registry's history is the base branch, not this machine's state directory.
    let options = VerifyOptions {
        now: request.now,
        expiration: ExpirationEnforcement::Enforce,
        rollback: RollbackEnforcement::UnsafeSkip,
        threads: 1,
        scan: ScanOptions::default(),
    };
    let mut verification = verify::Verification::default();
    let signature_label = format!("{relative}.sig");
    let authenticated = verify::authenticate(
        trust,
        bytes.clone(),
        envelope,
        relative,
        &signature_label,
        &options,
        &mut verification,
    )?;
    check.findings = verification.findings;
    let Some(authenticated) = authenticated else {
        return Ok(check);
    };
    let manifest = &authenticated.manifest;

    let remaining = manifest.expires.unix().saturating_sub(request.now.unix());
    if remaining < request.expiry_warning_seconds {
        check.findings.push(
            Finding::new(
                Code::ManifestExpiring,
                format!(
                    "manifest `{}` version {} expires at {}, in {} days",
                    quote(&manifest.name),
                    manifest.version,
                    manifest.expires,
                    remaining / 86_400
                ),
            )
            .with_hint("publish a re-signed manifest with a later `expires`"),
        );
    }
    if let Some(baseline) = &request.baseline {
        check.findings.extend(compare_with_baseline(
            &baseline.join(relative),
            manifest,
            &bytes,
        ));
    }
    check.findings.extend(policy_findings(manifest));

    // The model's files beside the manifest: verify the whole directory.
    let dir = manifest_path
        .parent()
        .map_or_else(|| request.root.clone(), Path::to_path_buf);
    let present = manifest
        .files
        .iter()
        .any(|file| file.path.to_path_under(&dir).symlink_metadata().is_ok());
    if present {
        let verify_request = VerifyRequest {
            dir: dir.clone(),
            manifest: manifest_path,
            signature,
            trust: request.trust.clone(),
        };
        check.files = verify::verify_files_beside(
            &verify_request,
            manifest,
            &options,
            &(),
            registry_files.get(&dir).map_or(&[], Vec::as_slice),
        )?;
    }
    Ok(check)
}

/// Version monotonicity against the base branch's copy of the same manifest.
fn compare_with_baseline(path: &Path, manifest: &Manifest, bytes: &[u8]) -> Vec<Finding> {
    let Ok(base_bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(base) = Manifest::parse(&base_bytes) else {
        return Vec::new();
    };
    if base.name != manifest.name {
        return Vec::new();
    }
    if manifest.version < base.version {
        vec![Finding::new(
            Code::ManifestRollback,
            format!(
                "manifest `{}` goes back from version {} on the base branch to {}",
                quote(&manifest.name),
                base.version,
                manifest.version
            ),
        )
        .with_mismatch(
            format!("version >= {}", base.version),
            manifest.version.to_string(),
        )]
    } else if manifest.version == base.version && base_bytes != bytes {
        vec![Finding::new(
            Code::ManifestVersionReused,
            format!(
                "manifest `{}` changes without a new version ({} on the base branch too)",
                quote(&manifest.name),
                manifest.version
            ),
        )
        .with_hint("bump `version` with every change")]
    } else {
        Vec::new()
    }
}

/// The registry's rules about what a manifest may list.
fn policy_findings(manifest: &Manifest) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in &manifest.files {
        let path = file.path.as_str();
        let extension = path
            .rsplit_once('.')
            .map(|(_, extension)| extension.to_ascii_lowercase())
            .unwrap_or_default();
        let safe_declared = matches!(
            file.format,
            Some(
                DeclaredFormat::Safetensors
                    | DeclaredFormat::Gguf
                    | DeclaredFormat::Onnx
                    | DeclaredFormat::Npy
                    | DeclaredFormat::Json
                    | DeclaredFormat::Text
                    | DeclaredFormat::Wasm
            )
        );
        if crate::scan::PICKLE_EXTENSIONS.contains(&extension.as_str()) && !safe_declared {
            findings.push(
                Finding::new(
                    Code::PolicyPickleDeclared,
                    format!(
                        "`{}` is named like a pickle and declares no safe format",
                        quote(path)
                    ),
                )
                .at(path)
                .with_hint(
                    "convert the weights to safetensors and declare `\"format\": \"safetensors\"`",
                ),
            );
        }
        let wasm = file.format == Some(DeclaredFormat::Wasm) || extension == "wasm";
        if wasm && !manifest.plugins.iter().any(|plugin| plugin.path == path) {
            findings.push(
                Finding::new(
                    Code::PluginUnpinned,
                    format!(
                        "`{}` is WebAssembly but no `plugins` entry pins it under a name",
                        quote(path)
                    ),
                )
                .at(path)
                .with_hint("add a `plugins` entry (`manifest create --plugin NAME=PATH`)"),
            );
        }
    }
    findings
}

/// Findings of severity `error` or worse anywhere in a check.
pub fn refused(check: &ManifestCheck) -> bool {
    check
        .findings
        .iter()
        .chain(check.files.iter().flat_map(|file| &file.findings))
        .any(|finding| finding.severity >= Severity::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_any_set_of_paths() {
        let paths: Vec<String> = (0..500)
            .map(|i| format!("models/m{i}/manifest.json"))
            .collect();
        for count in 1..=7u64 {
            let shards: Vec<Shard> = (1..=count)
                .map(|index| format!("{index}/{count}").parse().unwrap())
                .collect();
            for path in &paths {
                let holders = shards.iter().filter(|shard| shard.contains(path)).count();
                assert_eq!(holders, 1, "{path} in {holders} of {count} shards");
            }
        }
        for bad in ["0/3", "4/3", "1", "a/b", "1/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_names() {
        assert!(is_manifest_name("manifest.json"));
        assert!(is_manifest_name("ct.manifest.json"));
        assert!(!is_manifest_name("manifest.json.sig"));
        assert!(!is_manifest_name("config.json"));
    }
}
