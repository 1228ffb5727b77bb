//! The publisher's side: a manifest drafted from a model directory. Every file is hashed (in
//! parallel, with chunk digests when asked) and scanned; its detected format is recorded; a
//! file the scanner refuses (any pickle) or that is not a regular file stops the draft, with
//! the findings that say why. Signing is `trust`'s job, not this module's.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::digest::{self, HashJob, Progress};
use crate::finding::{quote, Code, Finding, Severity};
use crate::manifest::path::SafePath;
use crate::manifest::time::Timestamp;
use crate::manifest::{Annotations, Chunks, Manifest, ManifestFile};
use crate::scan::source::FileSource;
use crate::scan::{self, ScanOptions};
use crate::verify::tree::{self, EntryKind};
use crate::verify::{declared_format_for, VerifyError};

/// What the publisher says about the release.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub dir: PathBuf,
    pub name: String,
    pub version: u64,
    pub issued_at: Timestamp,
    pub expires: Timestamp,
    /// Record per-chunk digests of files larger than one chunk.
    pub chunk_size: Option<u64>,
    pub annotations: Annotations,
    /// Files inside `dir` that are not part of the model (the manifest and its signature).
    pub exclude: Vec<PathBuf>,
    /// Threads for hashing; 0 means one per core.
    pub threads: usize,
    /// Each file's sources for `fetch`: prefix + path, in order (mirrors).
    pub source_prefixes: Vec<String>,
    /// Processing plugins to pin; each path must be a wasm file of the directory.
    pub plugins: Vec<crate::manifest::PluginEntry>,
}

/// A drafted manifest, or the files that keep one from being drafted.
#[derive(Debug, Clone)]
pub enum Draft {
    Created(Manifest),
    Refused(Vec<(String, Vec<Finding>)>),
}

/// How examined files are recorded in a manifest.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// Record per-chunk digests of files larger than one chunk.
    pub chunk_size: Option<u64>,
    /// Each file's sources for `fetch`: prefix + path, in order (mirrors).
    pub source_prefixes: Vec<String>,
    /// Threads for hashing; 0 means one per core.
    pub threads: usize,
}

/// Files hashed and scanned: the entries a manifest can list, and the files refused with the
/// findings that say why.
#[derive(Debug, Clone, Default)]
pub struct Examined {
    pub files: Vec<ManifestFile>,
    pub refused: Vec<(String, Vec<Finding>)>,
}

/// Hashes and scans every file of `request.dir` and drafts its manifest.
pub fn create(
    request: &CreateRequest,
    scan_options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Draft, VerifyError> {
    let record = RecordOptions {
        chunk_size: request.chunk_size,
        source_prefixes: request.source_prefixes.clone(),
        threads: request.threads,
    };
    let examined = examine_dir(
        &request.dir,
        &request.exclude,
        &record,
        scan_options,
        progress,
    )?;
    if !examined.refused.is_empty() {
        return Ok(Draft::Refused(examined.refused));
    }
    let manifest = Manifest {
        name: request.name.clone(),
        version: request.version,
        issued_at: request.issued_at,
        expires: request.expires,
        files: examined.files,
        plugins: sorted_plugins(&request.plugins),
        annotations: request.annotations.clone(),
    };
    checked(manifest, &request.dir).map(Draft::Created)
}

/// Lists `dir` the way `verify` does and examines every regular file in it; symbolic links,
/// special files and names that cannot be manifest paths are refused.
pub fn examine_dir(
    dir: &Path,
    exclude: &[PathBuf],
    record: &RecordOptions,
    scan_options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Examined, VerifyError> {
    let entries = tree::list(dir, exclude)?;
    let mut refused = Vec::new();
    let mut files = Vec::new();
    for entry in &entries {
        let finding = match entry.kind {
            EntryKind::File { .. } if entry.unrepresentable => Finding::new(
                Code::ManifestInvalid,
                "its name is not UTF-8, so no manifest path can name it",
            ),
            EntryKind::File { size } => match entry.path.parse::<SafePath>() {
                Ok(path) => {
                    files.push((path, size));
                    continue;
                }
                Err(error) => Finding::new(
                    Code::ManifestInvalid,
                    format!("its name cannot be a manifest path: {error}"),
                ),
            },
            EntryKind::Symlink => Finding::new(
                Code::FileNotRegular,
                "is a symbolic link; publish the file it points to instead",
            ),
            EntryKind::Special => Finding::new(Code::FileNotRegular, "is a special file"),
        };
        refused.push((entry.path.clone(), vec![finding]));
    }
    let mut examined = examine(dir, files, record, scan_options, progress)?;
    refused.append(&mut examined.refused);
    examined.refused = refused;
    Ok(examined)
}

/// Hashes `files` (regular files of the given sizes under `dir`) in parallel and scans each;
/// a file with a finding of severity `error` or worse is refused, the others are recorded with
/// their detected format.
pub fn examine(
    dir: &Path,
    files: Vec<(SafePath, u64)>,
    record: &RecordOptions,
    scan_options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Examined, VerifyError> {
    let jobs: Vec<HashJob> = files
        .iter()
        .map(|(path, size)| HashJob {
            path: path.to_path_under(dir),
            chunk_size: record.chunk_size.filter(|chunk| size > chunk),
            size_limit: Some(*size),
        })
        .collect();
    let threads = match record.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    progress.total(files.iter().map(|(_, size)| size).sum());
    let digests = digest::hash_files(&jobs, threads, progress);

    let mut examined = Examined::default();
    for (((path, size), job), digest) in files.into_iter().zip(&jobs).zip(digests) {
        let digest = digest.map_err(|error| VerifyError::Read {
            path: job.path.clone(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let scanned = scan_file(&job.path, path.as_str(), scan_options)?;
        let blocking: Vec<Finding> = scanned
            .findings
            .iter()
            .filter(|finding| finding.severity >= Severity::Error)
            .cloned()
            .collect();
        if !blocking.is_empty() {
            examined.refused.push((path.as_str().to_owned(), blocking));
            continue;
        }
        let chunks = match (job.chunk_size, digest.chunks.is_empty()) {
            (Some(chunk_size), false) => Some(Chunks {
                chunk_size,
                sha256: digest.chunks,
            }),
            _ => None,
        };
        let urls = record
            .source_prefixes
            .iter()
            .map(|prefix| format!("{prefix}{path}"))
            .collect();
        examined.files.push(ManifestFile {
            path,
            size,
            sha256: digest.sha256,
            format: Some(declared_format_for(scanned.format)),
            urls,
            chunks,
        });
    }
    Ok(examined)
}

/// `manifest` once it passes the parser a verifier will run (a draft that does not is not a
/// manifest); `dir` names the model directory in errors.
pub fn checked(mut manifest: Manifest, dir: &Path) -> Result<Manifest, VerifyError> {
    if manifest.files.is_empty() {
        return Err(VerifyError::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::other("the directory holds no files to publish"),
        });
    }
    manifest
        .files
        .sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    Manifest::parse(&manifest.to_json()).map_err(|error| VerifyError::Read {
        path: dir.to_path_buf(),
        source: std::io::Error::other(format!("the drafted manifest is not valid: {error}")),
    })?;
    Ok(manifest)
}

fn sorted_plugins(plugins: &[crate::manifest::PluginEntry]) -> Vec<crate::manifest::PluginEntry> {
    let mut sorted = plugins.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
}

fn scan_file(path: &Path, name: &str, options: &ScanOptions) -> Result<scan::Scanned, VerifyError> {
    let read_error = |source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let source = File::open(path)
        .and_then(FileSource::new)
        .map_err(read_error)?;
    scan::scan_source(&source, name, options).map_err(read_error)
}

/// A one-line reason for a refused draft, for error messages.
pub fn describe_refusal(path: &str, findings: &[Finding]) -> String {
    let codes: Vec<&str> = findings
        .iter()
        .map(|finding| finding.code.as_str())
        .collect();
    format!("`{}`: {}", quote(path), codes.join(", "))
}
