//! Draft manifests from other tools' checksum listings: GNU `sha256sum` files ([`sha256sums`])
//! and the `large_files` lists of MONAI bundles ([`monai`]).
//!
//! A listing is untrusted text: each is read through a pure, bounded parser over bytes (with a
//! fuzz target) before any file is touched. Every file that goes into a draft is hashed and
//! scanned through `verify::create`, exactly as `manifest create` does, and recorded with the
//! SHA-256 computed here; a listed checksum is only compared with the bytes, never copied into
//! the draft. MD5 and SHA-1 (or no checksum at all) cannot vouch for bytes, so such files carry
//! a `hash-unverifiable` notice. MONAI downloads go through `fetch::transfer`. Drafts are
//! unsigned: this module never signs, never prints and never decides a verdict.

pub mod monai;
pub mod sha256sums;

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::finding::Finding;
use crate::manifest::time::Timestamp;
use crate::manifest::{Annotations, Manifest, ManifestFile, PathError, SafePath};
use crate::verify::create;
use crate::verify::VerifyError;

/// A draft and the files left out of it (shared with `manifest import-hf`).
pub use crate::fetch::hub::Import;

/// What the publisher says about the draft.
#[derive(Debug, Clone)]
pub struct DraftHeader {
    pub name: String,
    pub version: u64,
    pub issued_at: Timestamp,
    pub expires: Timestamp,
}

/// An import could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("could not read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` is {size} bytes or more, more than the limit of {limit}")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
    #[error("`{path}` is not a sha256sum listing")]
    Sums {
        path: PathBuf,
        #[source]
        source: sha256sums::SumsError,
    },
    #[error("`{path}` is not a MONAI large-files list")]
    LargeFiles {
        path: PathBuf,
        #[source]
        source: monai::LargeFilesError,
    },
    #[error("the bundle has more than one large-files list: `{first}` and `{second}`")]
    AmbiguousList { first: String, second: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl From<crate::verify::tree::TreeError> for ImportError {
    fn from(error: crate::verify::tree::TreeError) -> Self {
        ImportError::Verify(error.into())
    }
}

/// Reads a whole listing, refusing one larger than `limit` bytes before reading it all.
fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > limit {
        return Err(ImportError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// The import's result: a checked draft of `files` (none when no file could be kept).
fn finish(
    header: &DraftHeader,
    dir: &Path,
    files: Vec<ManifestFile>,
    violations: Vec<(String, Vec<Finding>)>,
    notices: Vec<(String, Vec<Finding>)>,
) -> Result<Import, ImportError> {
    let manifest = if files.is_empty() {
        None
    } else {
        let draft = Manifest {
            name: header.name.clone(),
            version: header.version,
            issued_at: header.issued_at,
            expires: header.expires,
            files,
            plugins: Vec::new(),
            annotations: Annotations::default(),
        };
        Some(create::checked(draft, dir)?)
    };
    Ok(Import {
        manifest,
        violations,
        notices,
    })
}

/// The paths a listing names so far, each with where it was listed (a line or an index).
#[derive(Debug, Default)]
struct ListedPaths {
    seen: HashMap<SafePath, usize>,
}

/// Why a listed name cannot be one more path of the draft.
enum ListedPathError {
    Path(PathError),
    Duplicate { first: usize, path: String },
}

impl ListedPaths {
    /// `name` as a safe path not listed before; leading `./` are dropped, as `sha256sum ./a`
    /// writes `./a` for the file `a`.
    fn add(&mut self, name: &str, position: usize) -> Result<SafePath, ListedPathError> {
        let mut name = name;
        while let Some(rest) = name.strip_prefix("./") {
            name = rest;
        }
        let path = name.parse::<SafePath>().map_err(ListedPathError::Path)?;
        if let Some(&first) = self.seen.get(&path) {
            return Err(ListedPathError::Duplicate {
                first,
                path: path.as_str().to_owned(),
            });
        }
        self.seen.insert(path.clone(), position);
        Ok(path)
    }
}
