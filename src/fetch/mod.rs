//! `fetch`: download a signed model so that nothing unverified ever lands at a final path.
//!
//! Order: the manifest and its signature are read (size-capped, from a path or a URL) and
//! authenticated exactly as `verify` does (signature threshold, manifest, expiry, rollback)
//! before the first byte of a model file is requested. Then every file is taken from the
//! destination (if already there and intact), the cache, or its sources in order, hashed as
//! it streams into the partial area, scanned, and only then renamed into place.
//!
//! This module orchestrates; `source` decides what may be fetched from where, `transfer`
//! moves bytes, `place` guards the destination, `cache` keeps verified copies.

pub mod cache;
pub mod hub;
pub mod place;
pub mod source;
pub mod transfer;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::digest::Progress;
use crate::finding::{quote, Code, Finding, Severity};
use crate::manifest::ManifestFile;
use crate::trust::dsse::Envelope;
use crate::verify::{self, Verification, VerifiedFile, VerifyError, VerifyOptions};
use cache::Cache;
use place::{RetryPolicy, PARTIAL_DIR};
use source::{HubConfig, Location};
use transfer::{Client, Failure, TransferOptions};

/// Largest manifest or signature document fetched.
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// Whether the network may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkPolicy {
    #[default]
    Online,
    /// Only the cache and local files (`--offline`, `HF_HUB_OFFLINE=1`).
    Offline,
}

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// A path or URL.
    pub manifest: String,
    /// A path or URL; default: the manifest's location with `.sig` appended.
    pub signature: Option<String>,
    pub trust: PathBuf,
    pub dest: PathBuf,
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub verify: VerifyOptions,
    pub transfer: TransferOptions,
    pub retry: RetryPolicy,
    pub network: NetworkPolicy,
    /// `None`: no cache.
    pub cache: Option<PathBuf>,
    pub hub: HubConfig,
    /// Files fetched at once.
    pub jobs: usize,
    /// Connections per file for files with chunk digests (parallel ranges).
    pub range_connections: usize,
}

/// The fetch could not be carried out at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("could not get the manifest `{location}`: {reason}")]
    Manifest { location: String, reason: String },
    #[error("{0}")]
    Client(#[from] transfer::ClientError),
    #[error("could not use the destination `{path}`")]
    Destination {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not use the cache `{path}`")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Fetches the model a signed manifest describes into `request.dest`.
pub fn fetch(
    request: &FetchRequest,
    options: &FetchOptions,
    progress: &dyn Progress,
) -> Result<Verification, FetchError> {
    let trust = verify::read_trust(&request.trust)?;
    let client = Client::new(&options.transfer)?;
    let manifest_location =
        source::operator_location(&request.manifest).map_err(|reason| FetchError::Manifest {
            location: request.manifest.clone(),
            reason,
        })?;
    let signature_text = request
        .signature
        .clone()
        .unwrap_or_else(|| format!("{}.sig", request.manifest));
    let read_document = |location: &Location| {
        if options.network == NetworkPolicy::Offline && matches!(location, Location::Http(_)) {
            return Err("offline: only local files and the cache may be used".to_owned());
        }
        client.read_small(location, MAX_DOCUMENT_BYTES)
    };
    let manifest_bytes =
        read_document(&manifest_location).map_err(|reason| FetchError::Manifest {
            location: request.manifest.clone(),
            reason,
        })?;
    let envelope = source::operator_location(&signature_text)
        .and_then(|location| read_document(&location))
        .and_then(|bytes| Envelope::parse(&bytes).map_err(|error| error.to_string()));

    let mut verification = Verification::default();
    let Some(authenticated) = verify::authenticate(
        &trust,
        manifest_bytes,
        envelope,
        &request.manifest,
        &signature_text,
        &options.verify,
        &mut verification,
    )?
    else {
        return Ok(verification);
    };
    let manifest = &authenticated.manifest;

    let dest = &request.dest;
    let partial_dir = dest.join(PARTIAL_DIR);
    fs::create_dir_all(&partial_dir).map_err(|source| FetchError::Destination {
        path: partial_dir.clone(),
        source,
    })?;
    let cache = match &options.cache {
        Some(dir) => Some(Cache::open(dir).map_err(|source| FetchError::Cache {
            path: dir.clone(),
            source,
        })?),
        None => None,
    };
    progress.total(manifest.files.iter().map(|file| file.size).sum());
    progress.files(manifest.files.len());

    let base = source::base_of(&manifest_location);
    let context = Context {
        client: &client,
        options,
        cache: cache.as_ref(),
        base: &base,
        dest,
        partial_dir: &partial_dir,
        progress,
    };
    let results: Vec<Mutex<Option<Result<VerifiedFile, FetchError>>>> =
        manifest.files.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = options.jobs.clamp(1, 16).min(manifest.files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let (Some(file), Some(slot)) = (manifest.files.get(index), results.get(index))
                else {
                    break;
                };
                let result = context.obtain(file);
                progress.file_done();
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(result);
                }
            });
        }
    });
    for (slot, file) in results.into_iter().zip(&manifest.files) {
        let result = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Ok(failed(
                file,
                Code::DownloadFailed,
                "the download thread stopped unexpectedly".into(),
            ))
        });
        verification.files.push(result?);
    }
    // The partial area is removed when nothing is left in it; what an interrupted transfer
    // left stays for the next run to resume.
    let _ = fs::remove_dir(&partial_dir);
    authenticated.record_if_accepted(&verification)?;
    Ok(verification)
}

struct Context<'a> {
    client: &'a Client,
    options: &'a FetchOptions,
    cache: Option<&'a Cache>,
    base: &'a source::Base,
    dest: &'a Path,
    partial_dir: &'a Path,
    progress: &'a dyn Progress,
}

impl Context<'_> {
    /// Gets one file to its final path, or says why not.
    fn obtain(&self, file: &ManifestFile) -> Result<VerifiedFile, FetchError> {
        let partial = place::partial_path(self.partial_dir, file);
        let final_path = file.path.to_path_under(self.dest);
        let io_error = |source| FetchError::Destination {
            path: partial.clone(),
            source,
        };

        // Already in place and intact: nothing to transfer (re-verified, never trusted).
        if fs::symlink_metadata(&final_path)
            .is_ok_and(|metadata| metadata.len() == file.size && metadata.is_file())
        {
            let job = crate::digest::HashJob {
                path: final_path.clone(),
                chunk_size: None,
                size_limit: Some(file.size),
            };
            if crate::digest::hash_file(&job, self.progress)
                .is_ok_and(|digest| digest.sha256 == file.sha256)
            {
                return self.scan_in_place(file, &final_path);
            }
        }
        // The cache, through the digest again.
        if let Some(cache) = self.cache {
            if let Some(entry) = cache.lookup(&file.sha256) {
                if place::copy_verified(&entry, file, &partial, self.progress).map_err(io_error)? {
                    return self.accept(file, &partial);
                }
                cache.evict(&file.sha256);
            }
        }

        let raw_sources: Vec<String> = if file.urls.is_empty() {
            vec![file.path.as_str().to_owned()]
        } else {
            file.urls.clone()
        };
        let mut reasons = Vec::new();
        let mut mismatch = None;
        let mut refused = Vec::new();
        for raw in &raw_sources {
            let resolved = source::resolve(
                raw,
                self.base,
                &self.options.hub,
                self.options.transfer.http,
            );
            let source = match resolved {
                Ok(source) => source,
                Err(reason) => {
                    reasons.push(format!("`{}`: refused: {reason}", quote(raw)));
                    refused.push(Finding::new(
                        Code::SourceRefused,
                        format!("source `{}` not used: {reason}", quote(raw)),
                    ));
                    continue;
                }
            };
            if self.options.network == NetworkPolicy::Offline
                && matches!(source.location, Location::Http(_))
            {
                reasons.push(format!(
                    "`{}`: skipped: offline and not in the cache",
                    quote(raw)
                ));
                continue;
            }
            let retry = self.options.retry;
            let parallel = file
                .chunks
                .as_ref()
                .is_some_and(|chunks| chunks.sha256.len() > 1)
                && matches!(source.location, Location::Http(_));
            let downloaded = if parallel {
                let connections = self.options.range_connections;
                place::download_chunked(
                    self.client,
                    &source,
                    file,
                    &partial,
                    retry,
                    connections,
                    self.progress,
                )
            } else {
                place::download(self.client, &source, file, &partial, retry, self.progress)
            };
            match downloaded {
                Ok(()) => {
                    let mut entry = self.accept(file, &partial)?;
                    entry.findings.extend(refused);
                    return Ok(entry);
                }
                Err(Failure::Mismatch { reason }) => {
                    reasons.push(format!("`{}`: {reason}", quote(raw)));
                    mismatch.get_or_insert(reason);
                }
                Err(failure) => reasons.push(format!("`{}`: {}", quote(raw), failure.reason())),
            }
        }
        let code = if mismatch.is_some() {
            Code::SourceMismatch
        } else {
            Code::DownloadFailed
        };
        let reasons = reasons.join("; ");
        let mut entry = failed(
            file,
            code,
            format!("no source delivered the signed bytes: {reasons}"),
        );
        entry.findings.extend(refused);
        Ok(entry)
    }

    /// A partial file holding the signed bytes: scan it, then place it (or refuse it).
    fn accept(&self, file: &ManifestFile, partial: &Path) -> Result<VerifiedFile, FetchError> {
        let (format, findings) = verify::scan_file(partial, file, &self.options.verify.scan)?;
        let mut entry = VerifiedFile {
            path: file.path.as_str().to_owned(),
            format: Some(format),
            size: Some(file.size),
            sha256: Some(file.sha256),
            findings,
        };
        if entry
            .findings
            .iter()
            .any(|finding| finding.severity >= Severity::Error)
        {
            // Signed, but refused by the scanner: it does not go where a loader would find it.
            let _ = fs::remove_file(partial);
            return Ok(entry);
        }
        match place::place(partial, self.dest, file) {
            Ok(final_path) => {
                if let Some(cache) = self.cache {
                    // A cache that cannot be written is only slower next time.
                    let _ = cache.store(&final_path, &file.sha256);
                }
            }
            Err(error) => {
                let _ = fs::remove_file(partial);
                entry.findings.push(Finding::new(
                    Code::FileNotRegular,
                    format!("could not be placed: {error}"),
                ));
            }
        }
        Ok(entry)
    }

    fn scan_in_place(&self, file: &ManifestFile, path: &Path) -> Result<VerifiedFile, FetchError> {
        let (format, findings) = verify::scan_file(path, file, &self.options.verify.scan)?;
        Ok(VerifiedFile {
            path: file.path.as_str().to_owned(),
            format: Some(format),
            size: Some(file.size),
            sha256: Some(file.sha256),
            findings,
        })
    }
}

fn failed(file: &ManifestFile, code: Code, message: String) -> VerifiedFile {
    VerifiedFile {
        path: file.path.as_str().to_owned(),
        format: None,
        size: None,
        sha256: None,
        findings: vec![Finding::new(code, message)],
    }
}
