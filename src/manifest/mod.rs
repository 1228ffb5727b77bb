//! Manifests: the JSON document (`modelvet.manifest/v1`) that lists every file of a model
//! directory with its size and SHA-256, parsed strictly into [`Manifest`].
//!
//! This module owns the manifest's types, its parsing and every rule a manifest must obey
//! (schema, name, version, times, path safety, order, duplicates, collisions, chunk digests,
//! bounds), so that a [`Manifest`] value is valid by construction and no file is touched
//! before the whole document has been checked. It does no file or network I/O and does not
//! check signatures, expiry against the clock or rollback (`trust`, `verify`), nor compare
//! digests with files on disk (that is verification). Unknown fields are refused everywhere,
//! and so are duplicate keys (serde's derive refuses a struct field seen twice).
//!
//! The JSON Schema in `manifests/schema/manifest.v1.json` mirrors these rules; a unit test keeps
//! its property names equal to the fields accepted here.

pub mod path;
pub mod time;

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::digest::Sha256;
use crate::finding::quote;
pub use path::{PathError, PathRule, SafePath};
use time::{Timestamp, TimestampError};

/// The value of the `schema` field.
pub const SCHEMA: &str = "modelvet.manifest/v1";
/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;
/// Most files one manifest may list.
pub const MAX_FILES: usize = 100_000;
/// Longest `name`, in characters (all ASCII).
pub const MAX_NAME_CHARS: usize = 128;
/// Most `urls` one file may list.
pub const MAX_URLS: usize = 16;
/// Longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 8192;
/// Longest annotation value, in bytes.
pub const MAX_ANNOTATION_BYTES: usize = 64 << 10;
/// Most plugins one manifest may declare.
pub const MAX_PLUGINS: usize = 64;
/// Longest plugin name, in bytes.
pub const MAX_PLUGIN_NAME_BYTES: usize = 64;
/// Largest `timeout_ms` a plugin entry may declare (one hour).
pub const MAX_PLUGIN_TIMEOUT_MS: u64 = 3_600_000;
/// Largest `memory_mb` a plugin entry may declare (what wasm32 can address).
pub const MAX_PLUGIN_MEMORY_MB: u64 = 4096;
/// Smallest and largest `chunks.chunk_size` (both powers of two).
pub const MIN_CHUNK_SIZE: u64 = 1 << 20;
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;

/// What a file claims to be; the scanner checks the claim against the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeclaredFormat {
    Safetensors,
    Gguf,
    Onnx,
    Npy,
    Json,
    Text,
    Wasm,
    Opaque,
}

/// SHA-256 digests of every `chunk_size` piece of a file, the last piece possibly shorter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunks {
    pub chunk_size: u64,
    pub sha256: Vec<Sha256>,
}

/// One file of the model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestFile {
    pub path: SafePath,
    pub size: u64,
    pub sha256: Sha256,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<DeclaredFormat>,
    /// Where `fetch` may download the file from (checked there, not here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Chunks>,
}

/// A processing plugin the manifest pins: a `wasm` file of `files`, with the limits its
/// publisher declares it needs (the operator's flags still win).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// Lowercase ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit.
    pub name: String,
    /// The path of the plugin's file in `files`.
    pub path: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_ms: Option<u64>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_mb: Option<u64>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub fuel: Option<u64>,
}

/// Free-text facts about the model, shown to users; no other keys are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Annotations {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub license: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_repository: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_revision: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub intended_use: Option<String>,
}

/// A parsed manifest that obeys every rule; `files` is sorted by path bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    /// At least 1; increases with every release of the same name.
    pub version: u64,
    pub issued_at: Timestamp,
    pub expires: Timestamp,
    pub files: Vec<ManifestFile>,
    /// Sorted by name; every `path` is a `wasm` file of `files`.
    pub plugins: Vec<PluginEntry>,
    pub annotations: Annotations,
}

/// Why bytes are not a valid manifest. `index` is a position in `files`, from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("manifest is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("manifest is not valid JSON of the expected shape: {message}")]
    Json {
        /// serde_json's message (with its line and column), control characters escaped.
        message: String,
        line: usize,
        column: usize,
    },
    #[error("unsupported manifest schema `{}`, expected `{SCHEMA}`", quote(found))]
    Schema { found: String },
    #[error("invalid manifest name `{}`: {reason}", quote(name))]
    Name { name: String, reason: &'static str },
    #[error("manifest version must be at least 1, found {version}")]
    Version { version: u64 },
    #[error("invalid `{field}`: {error}")]
    Timestamp {
        field: &'static str,
        error: TimestampError,
    },
    #[error("`expires` ({expires}) is not after `issued_at` ({issued_at})")]
    ExpiresBeforeIssued {
        issued_at: Timestamp,
        expires: Timestamp,
    },
    #[error("annotation `{key}` is {bytes} bytes long, more than the limit of {limit}")]
    AnnotationTooLong {
        key: &'static str,
        bytes: usize,
        limit: usize,
    },
    #[error("plugin `{}`: {reason}", quote(name))]
    Plugin { name: String, reason: String },
    #[error("the manifest declares {count} plugins, more than the limit of {limit}")]
    TooManyPlugins { count: usize, limit: usize },
    #[error("the manifest lists no files")]
    NoFiles,
    #[error("the manifest lists {count} files, more than the limit of {limit}")]
    TooManyFiles { count: usize, limit: usize },
    #[error("file {index}: {error}")]
    Path { index: usize, error: PathError },
    #[error("file {index} `{}`: {error}", quote(path))]
    Sha256 {
        index: usize,
        path: String,
        error: crate::digest::Sha256ParseError,
    },
    #[error(
        "files are not sorted by path: `{}` (file {index}) comes after `{}`",
        quote(path),
        quote(previous)
    )]
    Unsorted {
        index: usize,
        path: String,
        previous: String,
    },
    #[error("file {index}: `{}` is listed twice", quote(path))]
    Duplicate { index: usize, path: String },
    #[error(
        "file {index}: `{}` and `{}` differ only in case and collide on case-insensitive file systems",
        quote(path),
        quote(other)
    )]
    CaseCollision {
        index: usize,
        path: String,
        other: String,
    },
    #[error(
        "file {index}: `{}` is a file but also a directory of `{}`",
        quote(path),
        quote(descendant)
    )]
    DirectoryPrefix {
        index: usize,
        path: String,
        descendant: String,
    },
    #[error(
        "file {index} `{}`: chunk size {chunk_size} is not a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}",
        quote(path)
    )]
    ChunkSize {
        index: usize,
        path: String,
        chunk_size: u64,
    },
    #[error(
        "file {index} `{}`: {found} chunk digests, expected {expected} for {size} bytes in chunks of {chunk_size}",
        quote(path)
    )]
    ChunkCount {
        index: usize,
        path: String,
        size: u64,
        chunk_size: u64,
        expected: u64,
        found: usize,
    },
    #[error(
        "file {index} `{}`: {count} urls, more than the limit of {limit}",
        quote(path)
    )]
    TooManyUrls {
        index: usize,
        path: String,
        count: usize,
        limit: usize,
    },
    #[error("file {index} `{}`: url `{}` {reason}", quote(path), quote(url))]
    Url {
        index: usize,
        path: String,
        url: String,
        reason: &'static str,
    },
}

impl Manifest {
    /// Parse and check a manifest; every rule is checked before anything else can use it.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size: bytes.len(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|error| ManifestError::Json {
                message: quote(&error.to_string()),
                line: error.line(),
                column: error.column(),
            })?;
        if raw.schema != SCHEMA {
            return Err(ManifestError::Schema { found: raw.schema });
        }
        check_name(&raw.name)?;
        if raw.version == 0 {
            return Err(ManifestError::Version {
                version: raw.version,
            });
        }
        let timestamp = |field, text: &str| {
            text.parse::<Timestamp>()
                .map_err(|error| ManifestError::Timestamp { field, error })
        };
        let issued_at = timestamp("issued_at", &raw.issued_at)?;
        let expires = timestamp("expires", &raw.expires)?;
        if expires <= issued_at {
            return Err(ManifestError::ExpiresBeforeIssued { issued_at, expires });
        }
        check_annotations(&raw.annotations)?;
        if raw.files.total > MAX_FILES {
            return Err(ManifestError::TooManyFiles {
                count: raw.files.total,
                limit: MAX_FILES,
            });
        }
        if raw.files.items.is_empty() {
            return Err(ManifestError::NoFiles);
        }
        let mut files: Vec<ManifestFile> = Vec::with_capacity(raw.files.items.len());
        for (index, raw_file) in raw.files.items.into_iter().enumerate() {
            let file = check_file(index, raw_file)?;
            if let Some(previous) = files.last() {
                if file.path == previous.path {
                    return Err(ManifestError::Duplicate {
                        index,
                        path: file.path.to_string(),
                    });
                }
                if file.path < previous.path {
                    return Err(ManifestError::Unsorted {
                        index,
                        path: file.path.to_string(),
                        previous: previous.path.to_string(),
                    });
                }
            }
            files.push(file);
        }
        check_collisions(&files)?;
        if raw.plugins.total > MAX_PLUGINS {
            return Err(ManifestError::TooManyPlugins {
                count: raw.plugins.total,
                limit: MAX_PLUGINS,
            });
        }
        let manifest = Manifest {
            name: raw.name,
            version: raw.version,
            issued_at,
            expires,
            files,
            plugins: raw.plugins.items,
            annotations: raw.annotations,
        };
        check_plugins(&manifest)?;
        Ok(manifest)
    }

    /// Deterministic pretty JSON (two-space indent, fixed key order, files sorted by path,
    /// absent options left out), ending in a newline. `parse(&m.to_json())` gives back `m`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut files: Vec<&ManifestFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let out = ManifestOut {
            schema: SCHEMA,
            name: &self.name,
            version: self.version,
            issued_at: self.issued_at,
            expires: self.expires,
            files,
            plugins: &self.plugins,
            annotations: &self.annotations,
        };
        // Serialising these types cannot fail: every map key is a string and no Serialize
        // impl here returns an error.
        let mut json = serde_json::to_vec_pretty(&out).unwrap_or_default();
        json.push(b'\n');
        json
    }

    /// The plugin entry called `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginEntry> {
        self.plugins.iter().find(|plugin| plugin.name == name)
    }

    /// The entry for `path`, found by binary search over the sorted `files`.
    pub fn file(&self, path: &str) -> Option<&ManifestFile> {
        self.files
            .binary_search_by(|file| file.path.as_str().cmp(path))
            .ok()
            .and_then(|index| self.files.get(index))
    }
}

impl DeclaredFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclaredFormat::Safetensors => "safetensors",
            DeclaredFormat::Gguf => "gguf",
            DeclaredFormat::Onnx => "onnx",
            DeclaredFormat::Npy => "npy",
            DeclaredFormat::Json => "json",
            DeclaredFormat::Text => "text",
            DeclaredFormat::Wasm => "wasm",
            DeclaredFormat::Opaque => "opaque",
        }
    }
}

impl fmt::Display for DeclaredFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The document as JSON spells it, before the rules that serde cannot express.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    schema: String,
    name: String,
    version: u64,
    issued_at: String,
    expires: String,
    files: Bounded<RawFile, MAX_FILES>,
    #[serde(default)]
    plugins: Bounded<PluginEntry, MAX_PLUGINS>,
    #[serde(default)]
    annotations: Annotations,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: String,
    size: u64,
    sha256: String,
    #[serde(default, deserialize_with = "present")]
    format: Option<DeclaredFormat>,
    #[serde(default)]
    urls: Bounded<String, MAX_URLS>,
    #[serde(default, deserialize_with = "present")]
    chunks: Option<RawChunks>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChunks {
    chunk_size: u64,
    sha256: Vec<Sha256>,
}

#[derive(Serialize)]
struct ManifestOut<'a> {
    schema: &'static str,
    name: &'a str,
    version: u64,
    issued_at: Timestamp,
    expires: Timestamp,
    files: Vec<&'a ManifestFile>,
    #[serde(skip_serializing_if = "<[PluginEntry]>::is_empty")]
    plugins: &'a [PluginEntry],
    annotations: &'a Annotations,
}

/// A JSON array of which at most `N` elements are kept; the rest are skipped without being
/// stored (`IgnoredAny`) and only counted, so a huge array costs no memory and the caller can
/// still report how long it was.
struct Bounded<T, const N: usize> {
    items: Vec<T>,
    total: usize,
}

impl<T, const N: usize> Default for Bounded<T, N> {
    fn default() -> Self {
        Bounded {
            items: Vec::new(),
            total: 0,
        }
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const N: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVisitor<T, N> {
            type Value = Bounded<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut bounded = Bounded::default();
                loop {
                    if bounded.items.len() < N {
                        match seq.next_element::<T>()? {
                            Some(item) => bounded.items.push(item),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    bounded.total = bounded.total.saturating_add(1);
                }
                Ok(bounded)
            }
        }

        deserializer.deserialize_seq(BoundedVisitor::<T, N>(PhantomData))
    }
}

fn check_name(name: &str) -> Result<(), ManifestError> {
    let fail = |reason| ManifestError::Name {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(fail("the name is empty"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
    {
        return Err(fail(
            "only ASCII letters, digits, `.`, `_`, `/` and `-` are allowed",
        ));
    }
    if name.len() > MAX_NAME_CHARS {
        return Err(fail("the name is longer than 128 characters"));
    }
    if name.starts_with('.') || name.starts_with('/') {
        return Err(fail("the name starts with `.` or `/`"));
    }
    Ok(())
}

fn check_annotations(annotations: &Annotations) -> Result<(), ManifestError> {
    for (key, value) in [
        ("license", &annotations.license),
        ("source_repository", &annotations.source_repository),
        ("source_revision", &annotations.source_revision),
        ("intended_use", &annotations.intended_use),
    ] {
        let bytes = value.as_ref().map_or(0, String::len);
        if bytes > MAX_ANNOTATION_BYTES {
            return Err(ManifestError::AnnotationTooLong {
                key,
                bytes,
                limit: MAX_ANNOTATION_BYTES,
            });
        }
    }
    Ok(())
}

/// Rules of one file entry on its own.
fn check_file(index: usize, raw: RawFile) -> Result<ManifestFile, ManifestError> {
    let path =
        SafePath::try_from(raw.path).map_err(|error| ManifestError::Path { index, error })?;
    let sha256 = raw
        .sha256
        .parse::<Sha256>()
        .map_err(|error| ManifestError::Sha256 {
            index,
            path: path.to_string(),
            error,
        })?;
    if raw.urls.total > MAX_URLS {
        return Err(ManifestError::TooManyUrls {
            index,
            path: path.to_string(),
            count: raw.urls.total,
            limit: MAX_URLS,
        });
    }
    for url in &raw.urls.items {
        let reason = if url.is_empty() {
            Some("is empty")
        } else if url.len() > MAX_URL_BYTES {
            Some("is longer than 8192 bytes")
        } else if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            Some("contains whitespace or a control character")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ManifestError::Url {
                index,
                path: path.to_string(),
                url: url.clone(),
                reason,
            });
        }
    }
    let chunks = match raw.chunks {
        None => None,
        Some(chunks) => {
            let chunk_size = chunks.chunk_size;
            if !chunk_size.is_power_of_two()
                || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size)
            {
                return Err(ManifestError::ChunkSize {
                    index,
                    path: path.to_string(),
                    chunk_size,
                });
            }
            let expected = raw.size.div_ceil(chunk_size);
            if u64::try_from(chunks.sha256.len()).ok() != Some(expected) {
                return Err(ManifestError::ChunkCount {
                    index,
                    path: path.to_string(),
                    size: raw.size,
                    chunk_size,
                    expected,
                    found: chunks.sha256.len(),
                });
            }
            Some(Chunks {
                chunk_size,
                sha256: chunks.sha256,
            })
        }
    };
    Ok(ManifestFile {
        path,
        size: raw.size,
        sha256,
        format: raw.format,
        urls: raw.urls.items,
        chunks,
    })
}

/// Plugin names, order, files and declared limits.
fn check_plugins(manifest: &Manifest) -> Result<(), ManifestError> {
    let mut previous: Option<&str> = None;
    for plugin in &manifest.plugins {
        let fail = |reason: String| ManifestError::Plugin {
            name: plugin.name.clone(),
            reason,
        };
        let name = plugin.name.as_bytes();
        let well_formed = name
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name.len() <= MAX_PLUGIN_NAME_BYTES
            && name.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !well_formed {
            return Err(fail(format!(
                "names are 1 to {MAX_PLUGIN_NAME_BYTES} lowercase ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"
            )));
        }
        if let Some(previous) = previous {
            if plugin.name.as_str() <= previous {
                return Err(fail(format!(
                    "plugins must be sorted by name and unique; it follows `{}`",
                    quote(previous)
                )));
            }
        }
        previous = Some(&plugin.name);
        match manifest.file(&plugin.path) {
            Some(file) if file.format == Some(DeclaredFormat::Wasm) => {}
            Some(_) => {
                return Err(fail(format!(
                    "its file `{}` is not declared with format `wasm`",
                    quote(&plugin.path)
                )))
            }
            None => {
                return Err(fail(format!(
                    "its file `{}` is not listed in `files`",
                    quote(&plugin.path)
                )))
            }
        }
        for (field, value, max) in [
            ("timeout_ms", plugin.timeout_ms, MAX_PLUGIN_TIMEOUT_MS),
            ("memory_mb", plugin.memory_mb, MAX_PLUGIN_MEMORY_MB),
            ("fuel", plugin.fuel, u64::MAX),
        ] {
            if value.is_some_and(|value| value == 0 || value > max) {
                return Err(fail(format!("`{field}` must be from 1 to {max}")));
            }
        }
    }
    Ok(())
}

/// Paths that are different strings but the same place on some file system: equal ignoring
/// case, or one file standing where another file needs a directory (`a` and `a/b`, also in
/// other cases: `A` and `a/b`). Compared per component after `to_lowercase`, so that the
/// context-dependent lowercasing of a final sigma cannot hide a prefix.
fn check_collisions(files: &[ManifestFile]) -> Result<(), ManifestError> {
    let mut folded: HashMap<String, usize> = HashMap::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let key = file
            .path
            .components()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join("/");
        if let Some(&other) = folded.get(&key) {
            return Err(ManifestError::CaseCollision {
                index,
                path: file.path.to_string(),
                other: files
                    .get(other)
                    .map(|f| f.path.to_string())
                    .unwrap_or_default(),
            });
        }
        folded.insert(key, index);
    }
    let mut sorted: Vec<(&str, usize)> = folded.iter().map(|(key, &i)| (key.as_str(), i)).collect();
    sorted.sort_unstable();
    for &(key, index) in &sorted {
        // Every key that starts with `key/` sorts in one run starting at `key/` itself.
        let probe = format!("{key}/");
        let start = sorted.partition_point(|&(other, _)| other < probe.as_str());
        if let Some(&(other, descendant)) = sorted.get(start) {
            if other.starts_with(&probe) {
                let path_of =
                    |i: usize| files.get(i).map(|f| f.path.to_string()).unwrap_or_default();
                return Err(ManifestError::DirectoryPrefix {
                    index,
                    path: path_of(index),
                    descendant: path_of(descendant),
                });
            }
        }
    }
    Ok(())
}

/// A field that may be left out but, when present, must not be `null`: one spelling for
/// "absent" keeps the JSON Schema (which refuses `null`) and the parser in agreement.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests;
