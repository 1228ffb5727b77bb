//! Drafting a manifest from a Hugging Face repository at a pinned commit, through the hub's
//! tree API: LFS files carry their SHA-256 and size in the listing (their bytes are not
//! downloaded); small files are downloaded, hashed and scanned. Pickle files (by content for
//! small files, by name for LFS files, whose content is not fetched here) are policy
//! violations and are left out of the draft.
//!
//! The draft is unsigned: a reviewer signs it. This module talks to the hub and drafts; it
//! never signs and never places model files.

use std::str::FromStr;

use serde::Deserialize;

use crate::digest::{sha256_bytes, Sha256};
use crate::fetch::source::{HubConfig, Location, Source};
use crate::fetch::transfer::Client;
use crate::finding::{quote, Code, Finding, Severity};
use crate::manifest::path::SafePath;
use crate::manifest::time::Timestamp;
use crate::manifest::{Annotations, DeclaredFormat, Manifest, ManifestFile};
use crate::scan::{self, ScanOptions};
use crate::verify::declared_format_for;

/// `ORG/REPO@COMMIT`, the commit a full 40-character hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    pub repo: String,
    pub revision: String,
}

impl FromStr for HubRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (repo, revision) = text
            .rsplit_once('@')
            .ok_or_else(|| format!("`{}` is not ORG/REPO@COMMIT", quote(text)))?;
        let parts: Vec<&str> = repo.split('/').collect();
        let valid_part = |part: &&str| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if parts.len() != 2 || !parts.iter().all(valid_part) {
            return Err(format!(
                "`{}` is not an ORG/REPO repository name",
                quote(repo)
            ));
        }
        if revision.len() != 40
            || !revision
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "revision `{}` must be a full 40-character commit hash, not a branch or tag",
                quote(revision)
            ));
        }
        Ok(HubRef {
            repo: repo.to_owned(),
            revision: revision.to_owned(),
        })
    }
}

/// What the publisher says about the draft.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub hub_ref: HubRef,
    pub name: String,
    pub version: u64,
    pub issued_at: Timestamp,
    pub expires: Timestamp,
}

/// A draft and the files left out of it.
#[derive(Debug, Clone)]
pub struct Import {
    /// `None` when no file could be kept.
    pub manifest: Option<Manifest>,
    pub violations: Vec<(String, Vec<Finding>)>,
    /// Files kept in the draft with findings a reviewer should read (`hash-unverifiable`).
    pub notices: Vec<(String, Vec<Finding>)>,
}

/// Largest non-LFS file downloaded to be hashed (the hub stores larger files in LFS).
const MAX_SMALL_FILE: u64 = 64 << 20;
/// Largest tree listing page.
const MAX_LISTING: u64 = 64 << 20;
/// Pages followed at most (1,000 entries each).
const MAX_PAGES: usize = 200;

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

/// Lists the repository at the pinned commit and drafts its manifest.
pub fn import(
    client: &Client,
    hub: &HubConfig,
    request: &ImportRequest,
    scan_options: &ScanOptions,
) -> Result<Import, String> {
    let HubRef { repo, revision } = &request.hub_ref;
    let mut url = hub.endpoint.clone();
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}/api/models/{repo}/tree/{revision}"));
    url.set_query(Some("recursive=true"));

    let mut entries = Vec::new();
    let mut next = Some(url);
    let mut pages = 0;
    while let Some(page) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(format!("the tree listing has more than {MAX_PAGES} pages"));
        }
        let source = hub_source(hub, page);
        let (bytes, headers) = client.read_document(&source, MAX_LISTING)?;
        let batch: Vec<TreeEntry> = serde_json::from_slice(&bytes)
            .map_err(|error| format!("the tree listing is not what the hub returns: {error}"))?;
        entries.extend(batch);
        next = headers
            .get(reqwest::header::LINK)
            .and_then(|value| value.to_str().ok())
            .and_then(next_link)
            .and_then(|link| reqwest::Url::parse(&link).ok())
            .filter(|link| link.host_str() == hub.endpoint.host_str());
    }

    let mut files = Vec::new();
    let mut violations = Vec::new();
    for entry in entries.into_iter().filter(|entry| entry.kind == "file") {
        let path = match entry.path.parse::<SafePath>() {
            Ok(path) => path,
            Err(error) => {
                violations.push((
                    entry.path.clone(),
                    vec![Finding::new(Code::ManifestInvalid, error.to_string())],
                ));
                continue;
            }
        };
        let source_url = format!("hf://{repo}@{revision}/{}", path.as_str());
        let (size, sha256, format) = match &entry.lfs {
            Some(lfs) => {
                let sha256 = Sha256::from_str(&lfs.oid.to_ascii_lowercase())
                    .map_err(|error| format!("LFS oid of `{}`: {error}", quote(path.as_str())))?;
                if looks_like_pickle_name(path.as_str()) {
                    violations.push((
                        path.as_str().to_owned(),
                        vec![Finding::new(
                            Code::PickleFormat,
                            "by its name a pickle-based checkpoint (LFS content not downloaded): loading it can run code",
                        )
                        .with_hint("publish safetensors weights instead")],
                    ));
                    continue;
                }
                (lfs.size, sha256, format_by_name(path.as_str()))
            }
            None => {
                if entry.size > MAX_SMALL_FILE {
                    return Err(format!(
                        "`{}` is {} bytes and not in LFS",
                        quote(path.as_str()),
                        entry.size
                    ));
                }
                let resolve = crate::fetch::source::resolve(
                    &source_url,
                    &crate::fetch::source::Base::Dir(".".into()),
                    hub,
                    crate::fetch::source::HttpPolicy::LoopbackOnly,
                )?;
                let (bytes, _) = client.read_document(&resolve, MAX_SMALL_FILE)?;
                let scanned = scan::scan_source(&bytes, path.as_str(), scan_options)
                    .map_err(|error| error.to_string())?;
                let blocking: Vec<Finding> = scanned
                    .findings
                    .into_iter()
                    .filter(|finding| finding.severity >= Severity::Error)
                    .collect();
                if !blocking.is_empty() {
                    violations.push((path.as_str().to_owned(), blocking));
                    continue;
                }
                (
                    bytes.len() as u64,
                    sha256_bytes(&bytes),
                    declared_format_for(scanned.format),
                )
            }
        };
        files.push(ManifestFile {
            path,
            size,
            sha256,
            format: Some(format),
            urls: vec![source_url],
            chunks: None,
        });
    }
    files.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    let manifest = (!files.is_empty()).then(|| Manifest {
        name: request.name.clone(),
        version: request.version,
        issued_at: request.issued_at,
        expires: request.expires,
        files,
        plugins: Vec::new(),
        annotations: Annotations {
            source_repository: Some(format!(
                "{}/{repo}",
                hub.endpoint.as_str().trim_end_matches('/')
            )),
            source_revision: Some(revision.clone()),
            ..Annotations::default()
        },
    });
    Ok(Import {
        manifest,
        violations,
        notices: Vec::new(),
    })
}

fn hub_source(hub: &HubConfig, url: reqwest::Url) -> Source {
    let same_host = url.host_str() == hub.endpoint.host_str();
    Source {
        location: Location::Http(url),
        label: String::new(),
        hub_revision: None,
        token: hub.token.clone().filter(|_| same_host),
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|param| matches!(param.trim(), "rel=\"next\"" | "rel=next"))
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// Names under which PyTorch and scikit-learn write pickles.
fn looks_like_pickle_name(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npz", ".h5", ".keras",
        ".msgpack",
    ]
    .iter()
    .any(|extension| lower.ends_with(extension))
        && !lower.ends_with(".safetensors")
}

fn format_by_name(path: &str) -> DeclaredFormat {
    let lower = path.to_ascii_lowercase();
    match lower.rsplit_once('.').map(|(_, extension)| extension) {
        Some("safetensors") => DeclaredFormat::Safetensors,
        Some("gguf") => DeclaredFormat::Gguf,
        Some("onnx") => DeclaredFormat::Onnx,
        Some("npy") => DeclaredFormat::Npy,
        Some("json") => DeclaredFormat::Json,
        Some("wasm") => DeclaredFormat::Wasm,
        Some("txt" | "md") => DeclaredFormat::Text,
        _ => DeclaredFormat::Opaque,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_refs_need_a_full_commit() {
        let good = "org/repo@0123456789abcdef0123456789abcdef01234567";
        assert_eq!(good.parse::<HubRef>().unwrap().repo, "org/repo");
        for bad in [
            "org/repo@main",
            "org/repo",
            "org@0123456789abcdef0123456789abcdef01234567",
            "../repo@0123456789abcdef0123456789abcdef01234567",
            "org/repo@0123456789ABCDEF0123456789abcdef01234567",
        ] {
            assert!(bad.parse::<HubRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn follows_next_links_and_flags_pickle_names() {
        assert_eq!(
            next_link("<https://hub.example/api/models/a/b/tree/x?cursor=2>; rel=\"next\""),
            Some("https://hub.example/api/models/a/b/tree/x?cursor=2".into())
        );
        assert_eq!(next_link("<https://x>; rel=\"prev\""), None);
        assert!(looks_like_pickle_name("pytorch_model.bin"));
        assert!(!looks_like_pickle_name("model.safetensors"));
    }
}
