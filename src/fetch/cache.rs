//! The content-addressed download cache: `CACHE/sha256/<hex>`, one file per digest.
//!
//! A second fetch of the same model costs no network. Entries are never trusted as they are:
//! every use copies them through the digest again (`place::copy_verified`), and an entry that
//! no longer matches is evicted. This module owns the cache directory's layout only.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Sha256;

/// `$MODELVET_CACHE`, else `$XDG_CACHE_HOME/modelvet`, else `~/.cache/modelvet`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = from_env("MODELVET_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("modelvet"));
    }
    from_env("HOME").map(|home| PathBuf::from(home).join(".cache/modelvet"))
}

/// An opened cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> io::Result<Cache> {
        let dir = dir.join("sha256");
        fs::create_dir_all(&dir)?;
        Ok(Cache { dir })
    }

    /// The entry for `digest`, if the cache holds one.
    pub fn lookup(&self, digest: &Sha256) -> Option<PathBuf> {
        let path = self.dir.join(digest.to_string());
        fs::symlink_metadata(&path)
            .is_ok_and(|metadata| metadata.is_file())
            .then_some(path)
    }

    /// Removes an entry that failed verification.
    pub fn evict(&self, digest: &Sha256) {
        let _ = fs::remove_file(self.dir.join(digest.to_string()));
    }

    /// Adds a verified file: a hard link when possible (no copy), else a copy; both through a
    /// temporary name and a rename, so a reader never sees half an entry.
    pub fn store(&self, verified: &Path, digest: &Sha256) -> io::Result<()> {
        let target = self.dir.join(digest.to_string());
        if target.exists() {
            return Ok(());
        }
        let temporary = self
            .dir
            .join(format!("{digest}.tmp-{}", std::process::id()));
        let _ = fs::remove_file(&temporary);
        let stored = fs::hard_link(verified, &temporary)
            .or_else(|_| fs::copy(verified, &temporary).map(|_| ()))
            .and_then(|()| fs::rename(&temporary, &target));
        if stored.is_err() {
            // No half-written entry stays behind.
            let _ = fs::remove_file(&temporary);
        }
        stored
    }
}
