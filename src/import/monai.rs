//! MONAI bundles: the `large_files.yml` (or `.yaml`, `.json`) list of the model zoo, and a
//! draft of the whole bundle directory.
//!
//! The list is a top-level `large_files:` sequence of `{path, url, hash_val, hash_type}`;
//! `hash_type` is `md5` (MONAI's default when a `hash_val` is given), `sha1`, `sha256` or
//! `sha512`. YAML is read with `saphyr-parser` as events and refused outright when it uses
//! aliases, anchors, tags or several documents (no alias bomb can expand), and bounded in size,
//! depth, nodes and entries. Unknown fields are refused: they are arguments of MONAI's
//! downloader that could change what it fetches.
//!
//! The draft holds every regular file of the bundle, hashed and scanned like `manifest
//! create`. PyTorch and TorchScript checkpoints (`.pt`, `.pth`, `.ts`) and anything the scanner
//! finds pickled are policy violations and left out. A listed file that is absent is
//! downloaded from its `url` only when asked, over `fetch`'s transfer (HTTPS, or HTTP to
//! loopback), into a temporary file beside its place, and kept only when its published hash
//! (MD5, SHA-1, SHA-256 or SHA-512) matches. A listed MD5 or SHA-1, or none, yields a
//! `hash-unverifiable` notice: the draft's SHA-256 is then the only thing that vouches for the
//! bytes, and it vouches only for what was downloaded here.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use sha2::digest::DynDigest;

use crate::digest::Progress;
use crate::fetch::source::{check_http, HttpPolicy, Location, Source};
use crate::fetch::transfer::Client;
use crate::finding::{quote, Code, Finding};
use crate::import::{
    finish, read_bounded, DraftHeader, Import, ImportError, ListedPathError, ListedPaths,
};
use crate::manifest::{PathError, SafePath};
use crate::scan::ScanOptions;
use crate::verify::create::{self, RecordOptions};
use crate::verify::tree;

/// Largest list accepted, in bytes.
pub const MAX_LIST_BYTES: usize = 1 << 20;
/// Most entries one list may have.
pub const MAX_ENTRIES: usize = 10_000;
/// Deepest nesting of YAML collections.
pub const MAX_DEPTH: usize = 32;
/// Most YAML nodes (scalars and collections) in one list.
pub const MAX_NODES: usize = 100_000;
/// Largest file downloaded for a list entry.
pub const MAX_DOWNLOAD: u64 = 64 << 30;
/// The names a list may have in the bundle root, in the order they are looked for.
pub const LIST_NAMES: [&str; 3] = ["large_files.yml", "large_files.yaml", "large_files.json"];

/// The checksum algorithm a list entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashType {
    pub fn as_str(self) -> &'static str {
        match self {
            HashType::Md5 => "md5",
            HashType::Sha1 => "sha1",
            HashType::Sha256 => "sha256",
            HashType::Sha512 => "sha512",
        }
    }

    /// Whether a match proves the bytes are the published ones (no practical collisions).
    pub fn vouches(self) -> bool {
        matches!(self, HashType::Sha256 | HashType::Sha512)
    }

    fn hex_len(self) -> usize {
        match self {
            HashType::Md5 => 32,
            HashType::Sha1 => 40,
            HashType::Sha256 => 64,
            HashType::Sha512 => 128,
        }
    }

    fn hasher(self) -> Box<dyn DynDigest> {
        match self {
            HashType::Md5 => Box::new(md5::Md5::default()),
            HashType::Sha1 => Box::new(sha1::Sha1::default()),
            HashType::Sha256 => Box::new(sha2::Sha256::default()),
            HashType::Sha512 => Box::new(sha2::Sha512::default()),
        }
    }
}

/// A published checksum: its algorithm and lower-case hex digits of the right length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedHash {
    pub kind: HashType,
    pub hex: String,
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeFile {
    /// Position in the list, from 0.
    pub index: usize,
    pub path: SafePath,
    pub url: Option<String>,
    /// `None` when the list gives no `hash_val`.
    pub hash: Option<PublishedHash>,
}

/// How the list is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSyntax {
    Yaml,
    Json,
}

/// Why bytes are not a large-files list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LargeFilesError {
    #[error("the list is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the list is not UTF-8 (at byte {offset})")]
    NotUtf8 { offset: usize },
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("not a `large_files:` list of `{{path, url, hash_val, hash_type}}`: {message}")]
    Shape { message: String },
    #[error("the list has {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("entry {index}: {error}")]
    Path { index: usize, error: PathError },
    #[error("entry {index}: `{}` is already entry {first}", quote(path))]
    Duplicate {
        index: usize,
        first: usize,
        path: String,
    },
    #[error(
        "entry {index}: unknown hash_type `{}` (md5, sha1, sha256 or sha512)",
        quote(hash_type)
    )]
    HashType { index: usize, hash_type: String },
    #[error("entry {index}: `{}` is not a {} digest ({} hex digits)", quote(hash_val), kind.as_str(), kind.hex_len())]
    HashValue {
        index: usize,
        kind: HashType,
        hash_val: String,
    },
}

/// Parses a large-files list.
pub fn parse(bytes: &[u8], syntax: ListSyntax) -> Result<Vec<LargeFile>, LargeFilesError> {
    if bytes.len() > MAX_LIST_BYTES {
        return Err(LargeFilesError::TooLarge {
            size: bytes.len(),
            limit: MAX_LIST_BYTES,
        });
    }
    let shape = |error: serde_json::Error| LargeFilesError::Shape {
        message: quote(&error.to_string()),
    };
    let raw: RawList = match syntax {
        ListSyntax::Json => serde_json::from_slice(bytes).map_err(shape)?,
        ListSyntax::Yaml => {
            let text = std::str::from_utf8(bytes).map_err(|error| LargeFilesError::NotUtf8 {
                offset: error.valid_up_to(),
            })?;
            serde_json::from_value(yaml_to_json(text)?).map_err(shape)?
        }
    };
    if raw.large_files.len() > MAX_ENTRIES {
        return Err(LargeFilesError::TooManyEntries {
            count: raw.large_files.len(),
            limit: MAX_ENTRIES,
        });
    }
    let mut listed = ListedPaths::default();
    let mut entries = Vec::with_capacity(raw.large_files.len());
    for (index, entry) in raw.large_files.into_iter().enumerate() {
        let path = listed
            .add(&entry.path, index)
            .map_err(|error| match error {
                ListedPathError::Path(error) => LargeFilesError::Path { index, error },
                ListedPathError::Duplicate { first, path } => {
                    LargeFilesError::Duplicate { index, first, path }
                }
            })?;
        entries.push(LargeFile {
            index,
            path,
            url: entry.url.filter(|url| !url.is_empty()),
            hash: published_hash(index, entry.hash_val, entry.hash_type)?,
        });
    }
    Ok(entries)
}

/// What the publisher names: the bundle and what to do about absent files.
#[derive(Debug, Clone)]
pub struct MonaiRequest {
    pub bundle: PathBuf,
    pub header: DraftHeader,
    /// Files inside the bundle that are not part of it (the draft and its signature).
    pub exclude: Vec<PathBuf>,
}

/// Drafts a manifest of a MONAI bundle directory. With a `client`, listed files that are
/// absent are downloaded from their `url` first.
pub fn import(
    request: &MonaiRequest,
    client: Option<&Client>,
    scan_options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Import, ImportError> {
    let bundle = &request.bundle;
    let entries = read_list(bundle)?;
    let mut violations = Vec::new();
    // Files whose published hash was checked while downloading.
    let mut downloaded = HashSet::new();
    for entry in &entries {
        let kind = tree::entry(bundle, &entry.path).map_err(|source| ImportError::Read {
            path: entry.path.to_path_under(bundle),
            source,
        })?;
        if kind.is_some() {
            continue;
        }
        let finding = match (client, &entry.url) {
            _ if is_torch_checkpoint(&entry.path) => torch_finding("not downloaded: "),
            (Some(client), Some(url)) => match download(client, url, bundle, entry) {
                Ok(()) => {
                    downloaded.insert(entry.path.clone());
                    continue;
                }
                Err(finding) => *finding,
            },
            (Some(_), None) => Finding::new(
                Code::FileMissing,
                "listed without a url and not in the bundle",
            ),
            (None, _) => Finding::new(Code::FileMissing, "listed but not in the bundle")
                .with_hint("pass --download to fetch it from its listed url"),
        };
        violations.push((entry.path.as_str().to_owned(), vec![finding]));
    }

    let examined = create::examine_dir(
        bundle,
        &request.exclude,
        &RecordOptions::default(),
        scan_options,
        progress,
    )?;
    violations.extend(examined.refused);
    let listed: HashMap<&SafePath, &LargeFile> =
        entries.iter().map(|entry| (&entry.path, entry)).collect();
    let mut files = Vec::new();
    let mut notices = Vec::new();
    for file in examined.files {
        let path = file.path.as_str().to_owned();
        if is_torch_checkpoint(&file.path) {
            violations.push((path, vec![torch_finding("")]));
            continue;
        }
        let Some(entry) = listed.get(&file.path) else {
            files.push(file);
            continue;
        };
        if let Some(published) = &entry.hash {
            if !downloaded.contains(&file.path) {
                let on_disk = file.path.to_path_under(bundle);
                if let Some(mismatch) = check_published(&on_disk, published)? {
                    violations.push((path, vec![mismatch]));
                    continue;
                }
            }
        }
        if let Some(notice) = unverifiable(entry.hash.as_ref()) {
            notices.push((path, vec![notice]));
        }
        files.push(file);
    }
    finish(&request.header, bundle, files, violations, notices)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    large_files: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    path: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    hash_val: Option<String>,
    #[serde(default)]
    hash_type: Option<String>,
}

fn published_hash(
    index: usize,
    hash_val: Option<String>,
    hash_type: Option<String>,
) -> Result<Option<PublishedHash>, LargeFilesError> {
    // MONAI drops an empty hash_val, and checks MD5 when no hash_type is given.
    let Some(hash_val) = hash_val.filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    let kind = match hash_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("md5") => HashType::Md5,
        Some("sha1") => HashType::Sha1,
        Some("sha256") => HashType::Sha256,
        Some("sha512") => HashType::Sha512,
        Some(_) => {
            return Err(LargeFilesError::HashType {
                index,
                hash_type: hash_type.unwrap_or_default(),
            })
        }
    };
    if hash_val.len() != kind.hex_len() || !hash_val.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LargeFilesError::HashValue {
            index,
            kind,
            hash_val,
        });
    }
    Ok(Some(PublishedHash {
        kind,
        hex: hash_val.to_ascii_lowercase(),
    }))
}

/// Reads the YAML document into a JSON value, refusing what could expand or change types.
fn yaml_to_json(text: &str) -> Result<Value, LargeFilesError> {
    let limits = crate::yaml::YamlLimits {
        max_depth: MAX_DEPTH,
        max_nodes: MAX_NODES,
    };
    Ok(crate::yaml::to_json(text, &limits)?)
}

/// Finds and parses the bundle's list; a bundle without one has no large files.
fn read_list(bundle: &Path) -> Result<Vec<LargeFile>, ImportError> {
    let mut found: Option<(&str, PathBuf)> = None;
    for name in LIST_NAMES {
        let path = bundle.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {
                if let Some((first, _)) = &found {
                    return Err(ImportError::AmbiguousList {
                        first: (*first).to_owned(),
                        second: name.to_owned(),
                    });
                }
                found = Some((name, path));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ImportError::Read { path, source }),
        }
    }
    let Some((name, path)) = found else {
        return Ok(Vec::new());
    };
    let bytes = read_bounded(&path, MAX_LIST_BYTES)?;
    let syntax = if name.ends_with(".json") {
        ListSyntax::Json
    } else {
        ListSyntax::Yaml
    };
    parse(&bytes, syntax).map_err(|source| ImportError::LargeFiles { path, source })
}

/// `.pt`, `.pth` and `.ts` files: PyTorch and TorchScript checkpoints, pickles inside.
fn is_torch_checkpoint(path: &SafePath) -> bool {
    let lower = path.as_str().to_ascii_lowercase();
    [".pt", ".pth", ".ts"]
        .iter()
        .any(|extension| lower.ends_with(extension))
}

fn torch_finding(prefix: &str) -> Finding {
    Finding::new(
        Code::PickleFormat,
        format!("{prefix}by its name a PyTorch or TorchScript checkpoint, whose pickles run code when loaded"),
    )
    .with_hint("publish safetensors (or ONNX) weights instead")
}

/// The notice for a file whose listed checksum cannot vouch for its bytes.
fn unverifiable(published: Option<&PublishedHash>) -> Option<Finding> {
    let message = match published {
        Some(published) if published.kind.vouches() => return None,
        Some(published) => format!(
            "the list publishes only {}, which collisions defeat: the draft's SHA-256 vouches for the bytes found here, not for the publisher's",
            published.kind.as_str()
        ),
        None => "the list publishes no checksum: the draft's SHA-256 vouches for the bytes found here, not for the publisher's".to_owned(),
    };
    Some(
        Finding::new(Code::HashUnverifiable, message)
            .with_hint("compare the file with one obtained independently before signing"),
    )
}

/// A `digest-mismatch` finding when the file at `path` does not have its published hash.
fn check_published(path: &Path, published: &PublishedHash) -> Result<Option<Finding>, ImportError> {
    let computed = hash_file(path, published.kind).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(mismatch(published, &computed))
}

fn mismatch(published: &PublishedHash, computed: &str) -> Option<Finding> {
    let kind = published.kind.as_str();
    (computed != published.hex).then(|| {
        Finding::new(
            Code::DigestMismatch,
            format!("content differs from the list's {kind}"),
        )
        .with_mismatch(
            format!("{kind}:{}", published.hex),
            format!("{kind}:{computed}"),
        )
    })
}

fn hash_file(path: &Path, kind: HashType) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = kind.hasher();
    let mut buffer = vec![0u8; crate::digest::BUFFER_SIZE];
    loop {
        let read = file.read(&mut buffer)?;
        let Some(bytes) = buffer.get(..read).filter(|bytes| !bytes.is_empty()) else {
            break;
        };
        hasher.update(bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Downloads `entry` from `url` into a temporary file beside its place and moves it there once
/// its published hash (if any) matches; a finding says why not.
fn download(
    client: &Client,
    url: &str,
    bundle: &Path,
    entry: &LargeFile,
) -> Result<(), Box<Finding>> {
    let failed = |reason: String| {
        Box::new(Finding::new(
            Code::DownloadFailed,
            format!("from `{}`: {reason}", quote(url)),
        ))
    };
    let parsed = reqwest::Url::parse(url).map_err(|error| failed(error.to_string()))?;
    check_http(&parsed, HttpPolicy::LoopbackOnly).map_err(|reason| {
        Finding::new(Code::SourceRefused, format!("`{}`: {reason}", quote(url)))
    })?;
    let target = entry.path.to_path_under(bundle);
    let parent = target.parent().unwrap_or(bundle);
    std::fs::create_dir_all(parent).map_err(|error| failed(error.to_string()))?;
    let mut partial =
        tempfile::NamedTempFile::new_in(parent).map_err(|error| failed(error.to_string()))?;
    let source = Source {
        location: Location::Http(parsed),
        label: url.to_owned(),
        hub_revision: None,
        token: None,
    };
    let opened = client
        .open(&source, 0)
        .map_err(|failure| failed(failure.reason().to_owned()))?;
    let copied = io::copy(&mut opened.reader.take(MAX_DOWNLOAD + 1), &mut partial)
        .map_err(|error| failed(error.to_string()))?;
    if copied > MAX_DOWNLOAD {
        return Err(failed(format!(
            "larger than the limit of {MAX_DOWNLOAD} bytes"
        )));
    }
    if let Some(published) = &entry.hash {
        let computed =
            hash_file(partial.path(), published.kind).map_err(|error| failed(error.to_string()))?;
        if let Some(finding) = mismatch(published, &computed) {
            return Err(Box::new(finding));
        }
    }
    partial
        .as_file()
        .sync_all()
        .map_err(|error| failed(error.to_string()))?;
    partial
        .persist_noclobber(&target)
        .map_err(|error| failed(error.error.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "0123456789abcdef0123456789abcdef";

    fn yaml(text: &str) -> Result<Vec<LargeFile>, LargeFilesError> {
        parse(text.as_bytes(), ListSyntax::Yaml)
    }

    #[test]
    fn reads_the_model_zoo_format_in_yaml_and_json() {
        let text = format!(
            "large_files:\r\n  - path: \"models/model.pt\"\r\n    url: \"https://example.org/model.pt\"\r\n    hash_val: \"{MD5}\"\r\n    hash_type: \"md5\"\r\n  - path: ./models/model.safetensors\n    url: https://example.org/m.safetensors\n    hash_val: \"\"\n    hash_type: ~\n  - path: models/b.bin\n    hash_type: SHA256\n    hash_val: {}\n",
            "AB".repeat(32)
        );
        let entries = yaml(&text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].path.as_str(), "models/model.pt");
        assert_eq!(entries[0].hash.as_ref().unwrap().kind, HashType::Md5);
        assert_eq!(entries[1].path.as_str(), "models/model.safetensors");
        assert_eq!(entries[1].hash, None);
        assert_eq!(entries[2].hash.as_ref().unwrap().hex, "ab".repeat(32));
        // No hash_type means MD5 to MONAI, and a 64-digit value is not one.
        assert!(matches!(
            yaml(&text.replace("    hash_type: SHA256\n", "")),
            Err(LargeFilesError::HashValue { index: 2, .. })
        ));
        let json = format!(
            r#"{{"large_files": [{{"path": "models/model.pt", "url": "https://x/y", "hash_val": "{MD5}"}}]}}"#
        );
        let entries = parse(json.as_bytes(), ListSyntax::Json).unwrap();
        assert_eq!(entries[0].hash.as_ref().unwrap().hex, MD5);
    }

    #[test]
    fn refuses_aliases_anchors_tags_and_bounds() {
        let bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
        assert!(matches!(
            yaml(bomb),
            Err(LargeFilesError::Yaml(crate::yaml::YamlError::Refused {
                what: "anchors",
                ..
            }))
        ));
        assert!(matches!(
            yaml("large_files: !!python/object:os.system []\n"),
            Err(LargeFilesError::Yaml(crate::yaml::YamlError::Refused {
                what: "tags",
                ..
            }))
        ));
        assert!(matches!(
            yaml("large_files: []\n---\nlarge_files: []\n"),
            Err(LargeFilesError::Yaml(
                crate::yaml::YamlError::Refused { .. }
            ))
        ));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            yaml(&deep),
            Err(LargeFilesError::Yaml(
                crate::yaml::YamlError::TooDeep { .. }
            ))
        ));
        let big = format!(
            "large_files: [{}]",
            "{path: a}, ".repeat(MAX_LIST_BYTES / 8)
        );
        assert!(matches!(yaml(&big), Err(LargeFilesError::TooLarge { .. })));
        let many = format!("x: [{}]", "1,".repeat(MAX_NODES));
        assert!(matches!(
            yaml(&many),
            Err(LargeFilesError::Yaml(
                crate::yaml::YamlError::TooManyNodes { .. }
            ))
        ));
        assert!(matches!(
            parse(b"large_files: [{path: \xff}]", ListSyntax::Yaml),
            Err(LargeFilesError::NotUtf8 { offset: 21 })
        ));
        assert!(matches!(
            yaml("large_files: [{path: \"a\0b\"}]"),
            Err(LargeFilesError::Path { .. }
                | LargeFilesError::Yaml(crate::yaml::YamlError::Syntax { .. }))
        ));
        assert!(matches!(
            yaml("large_files: [{path: a, path: b}]"),
            Err(LargeFilesError::Yaml(
                crate::yaml::YamlError::DuplicateKey { .. }
            ))
        ));
    }

    #[test]
    fn refuses_traversal_duplicates_and_unknown_fields() {
        for path in ["../x", "/etc/passwd", "a/../../b", "models\\\\m.pt"] {
            assert!(
                matches!(
                    yaml(&format!("large_files:\n  - path: \"{path}\"\n")),
                    Err(LargeFilesError::Path { index: 0, .. })
                ),
                "{path}"
            );
        }
        assert!(matches!(
            yaml("large_files:\n  - path: a\n  - path: ./a\n"),
            Err(LargeFilesError::Duplicate {
                index: 1,
                first: 0,
                ..
            })
        ));
        assert!(matches!(
            yaml("large_files:\n  - path: a\n    fuzzy: true\n"),
            Err(LargeFilesError::Shape { .. })
        ));
        assert!(matches!(
            yaml("large_files:\n  - path: a\n    hash_val: abc\n    hash_type: crc32\n"),
            Err(LargeFilesError::HashType { index: 0, .. })
        ));
        assert!(matches!(
            yaml("large_files:\n  - path: a\n    hash_val: abc\n"),
            Err(LargeFilesError::HashValue { .. })
        ));
        assert!(matches!(
            yaml("other: 1\n"),
            Err(LargeFilesError::Shape { .. })
        ));
    }

    #[test]
    fn names_and_notices() {
        let path = |text: &str| text.parse::<SafePath>().unwrap();
        assert!(is_torch_checkpoint(&path("models/model.PT")));
        assert!(is_torch_checkpoint(&path("models/model.ts")));
        assert!(!is_torch_checkpoint(&path("models/model.safetensors")));
        let md5 = PublishedHash {
            kind: HashType::Md5,
            hex: MD5.into(),
        };
        assert_eq!(
            unverifiable(Some(&md5)).unwrap().code,
            Code::HashUnverifiable
        );
        assert_eq!(unverifiable(None).unwrap().code, Code::HashUnverifiable);
        let sha = PublishedHash {
            kind: HashType::Sha256,
            hex: String::new(),
        };
        assert!(unverifiable(Some(&sha)).is_none());
        let finding = mismatch(&md5, "ff").unwrap();
        assert_eq!(finding.expected.as_deref(), Some(&*format!("md5:{MD5}")));
    }
}
