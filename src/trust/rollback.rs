//! Rollback protection: the highest manifest version verified so far for each manifest name,
//! kept on the operator's machine.
//!
//! A verifier that forgets what it has seen can be fed an old, validly signed release with a
//! known flaw. Each successful verification records `(name, version, manifest digest)`; a
//! later manifest with a lower version is refused, and one with the same version must be the
//! same bytes (a re-signed, altered release under an old number is refused too). This module
//! owns the state directory's files and nothing else; it decides nothing about signatures.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the state lives when the operator does not say: `$MODELVET_STATE_DIR`, else
/// `$XDG_STATE_HOME/modelvet`, else `~/.local/state/modelvet`.
pub fn default_state_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = from_env("MODELVET_STATE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = from_env("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("modelvet"));
    }
    from_env("HOME").map(|home| PathBuf::from(home).join(".local/state/modelvet"))
}

/// The rollback state directory.
#[derive(Debug, Clone)]
pub struct RollbackStore {
    dir: PathBuf,
}

/// What the state says about a manifest about to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackCheck {
    /// No version of this name was verified here before.
    First,
    /// The same version with the same bytes was verified before.
    Same,
    /// A newer version than any verified before.
    Newer { previous: u64 },
    /// Older than a version already verified.
    Rollback { highest: u64 },
    /// The version number was verified before with different bytes.
    Reused { version: u64 },
}

/// The state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    #[error("could not use the rollback state directory `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "rollback state file `{path}` is corrupt; delete it only if you trust every release since"
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    name: String,
    version: u64,
    manifest_sha256: String,
}

impl RollbackStore {
    /// Opens (creating if needed, private to the user) the state directory.
    pub fn open(dir: &Path) -> Result<Self, RollbackError> {
        let dir = dir.join("rollback");
        let io_error = |source| RollbackError::Io {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_error)?;
        }
        Ok(RollbackStore { dir })
    }

    /// Compares a manifest with what was verified before for its name.
    pub fn check(
        &self,
        name: &str,
        version: u64,
        manifest: &[u8],
    ) -> Result<RollbackCheck, RollbackError> {
        let Some(record) = self.read(name)? else {
            return Ok(RollbackCheck::First);
        };
        let digest = hex(&Sha256::digest(manifest));
        Ok(match version.cmp(&record.version) {
            std::cmp::Ordering::Less => RollbackCheck::Rollback {
                highest: record.version,
            },
            std::cmp::Ordering::Equal if record.manifest_sha256 == digest => RollbackCheck::Same,
            std::cmp::Ordering::Equal => RollbackCheck::Reused { version },
            std::cmp::Ordering::Greater => RollbackCheck::Newer {
                previous: record.version,
            },
        })
    }

    /// Records a verified manifest, unless a higher version is already recorded. The file is
    /// replaced atomically, so a crash leaves the old record or the new one.
    pub fn record(&self, name: &str, version: u64, manifest: &[u8]) -> Result<(), RollbackError> {
        if self
            .read(name)?
            .is_some_and(|record| record.version > version)
        {
            return Ok(());
        }
        let record = Record {
            name: name.to_owned(),
            version,
            manifest_sha256: hex(&Sha256::digest(manifest)),
        };
        let path = self.path(name);
        let io_error = |source| RollbackError::Io {
            path: path.clone(),
            source,
        };
        let mut bytes =
            serde_json::to_vec_pretty(&record).map_err(|e| io_error(io::Error::other(e)))?;
        bytes.push(b'\n');
        crate::atomic::write(&path, &bytes, crate::atomic::WriteOptions::PRIVATE).map_err(io_error)
    }

    fn read(&self, name: &str) -> Result<Option<Record>, RollbackError> {
        let path = self.path(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RollbackError::Io { path, source }),
        };
        let record: Record =
            serde_json::from_slice(&bytes).map_err(|source| RollbackError::Corrupt {
                path: path.clone(),
                source,
            })?;
        Ok((record.name == name).then_some(record))
    }

    /// One file per name, named by the name's digest so any name is a safe file name.
    fn path(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", hex(&Sha256::digest(name.as_bytes()))))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_lower_versions_and_reused_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let store = RollbackStore::open(dir.path()).unwrap();
        assert_eq!(store.check("demo", 2, b"v2").unwrap(), RollbackCheck::First);
        store.record("demo", 2, b"v2").unwrap();
        assert_eq!(store.check("demo", 2, b"v2").unwrap(), RollbackCheck::Same);
        assert_eq!(
            store.check("demo", 2, b"v2 altered").unwrap(),
            RollbackCheck::Reused { version: 2 }
        );
        assert_eq!(
            store.check("demo", 1, b"v1").unwrap(),
            RollbackCheck::Rollback { highest: 2 }
        );
        assert_eq!(
            store.check("demo", 3, b"v3").unwrap(),
            RollbackCheck::Newer { previous: 2 }
        );
        store.record("demo", 1, b"v1").unwrap();
        assert_eq!(store.check("demo", 2, b"v2").unwrap(), RollbackCheck::Same);
        assert_eq!(store.check("other", 1, b"x").unwrap(), RollbackCheck::First);
    }

    #[test]
    fn a_corrupt_record_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = RollbackStore::open(dir.path()).unwrap();
        store.record("demo", 2, b"v2").unwrap();
        fs::write(store.path("demo"), b"{").unwrap();
        assert!(matches!(
            store.check("demo", 1, b"v1"),
            Err(RollbackError::Corrupt { .. })
        ));
    }
}
