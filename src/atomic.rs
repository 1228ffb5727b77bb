//! Atomic file writes: the one place where modelvet puts a whole file at a path that others
//! read (manifests, signatures, trust policies, keys, receipts, rollback state, tensor outputs,
//! placed downloads).
//!
//! A write goes to a fresh temporary file beside the target, created with `O_CREAT|O_EXCL`
//! under an unpredictable name (so a planted file or symlink there is never written through),
//! is flushed to disk, then renamed over the target (or linked to it, when an existing file
//! must not be replaced), and the directory is flushed so the rename survives a crash. A
//! reader sees the old content or the whole new one, never a part, and a failure leaves no
//! temporary file behind. This module decides nothing about where files may go (that is the
//! caller's, with `manifest::path` for untrusted names).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Whether an existing file at the target is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Replace it (a rename: a symlink at the target is replaced, never followed).
    #[default]
    Replace,
    /// Fail with [`io::ErrorKind::AlreadyExists`], even if it appears while writing.
    Keep,
}

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Unix permission bits of the new file (ignored elsewhere).
    pub mode: u32,
    pub existing: Existing,
}

impl WriteOptions {
    /// A public document (manifest, signature, policy, receipt): readable by all.
    pub const PUBLIC: WriteOptions = WriteOptions {
        mode: 0o644,
        existing: Existing::Replace,
    };
    /// Private to the user (secret keys, state).
    pub const PRIVATE: WriteOptions = WriteOptions {
        mode: 0o600,
        existing: Existing::Replace,
    };

    /// The same, but never replacing an existing file.
    pub const fn keep_existing(self) -> WriteOptions {
        WriteOptions {
            mode: self.mode,
            existing: Existing::Keep,
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8], options: WriteOptions) -> io::Result<()> {
    write_with(path, options, |file| file.write_all(bytes))
}

/// Writes `path` atomically with what `fill` writes into the temporary file (which it may
/// also read back or hash); `fill`'s result is returned once the file is in place.
pub fn write_with<T>(
    path: &Path,
    options: WriteOptions,
    fill: impl FnOnce(&mut File) -> io::Result<T>,
) -> io::Result<T> {
    let (mut file, temp_path) = create_temp_beside(path, options.mode)?;
    let result = fill(&mut file)
        .and_then(|value| file.sync_all().map(|()| value))
        .and_then(|value| {
            drop(file);
            match options.existing {
                Existing::Replace => fs::rename(&temp_path, path),
                // A link fails if the target exists, even if it appeared after any check.
                Existing::Keep => {
                    fs::hard_link(&temp_path, path).and_then(|()| fs::remove_file(&temp_path))
                }
            }
            .map(|()| value)
        });
    match result {
        Ok(value) => {
            sync_parent(path)?;
            Ok(value)
        }
        Err(error) => {
            let _ = fs::remove_file(&temp_path);
            Err(error)
        }
    }
}

/// Flushes the directory holding `path`, so that a rename into it is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(parent_of(path))?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Creates `.<name>.tmp-<pid>-<random>` beside `path` with `create_new` (`O_EXCL`): a file or
/// symlink planted at that name makes the creation fail instead of being written through.
pub fn create_temp_beside(path: &Path, mode: u32) -> io::Result<(File, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|error| io::Error::other(error.to_string()))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(
        ".tmp-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(random)
    ));
    let temp_path = parent_of(path).join(temp_name);
    let mut options = OpenOptions::new();
    options.write(true).read(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let file = options.open(&temp_path)?;
    Ok((file, temp_path))
}

/// The directory a relative or absolute file path lives in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write(&path, b"one", WriteOptions::PUBLIC).unwrap();
        write(&path, b"two", WriteOptions::PUBLIC).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn keep_existing_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write(&path, b"old", WriteOptions::PRIVATE.keep_existing()).unwrap();
        let error = write(&path, b"new", WriteOptions::PRIVATE.keep_existing()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"precious").unwrap();
        let path = dir.path().join("state.json");
        std::os::unix::fs::symlink(&outside, &path).unwrap();
        write(&path, b"{}", WriteOptions::PRIVATE).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write(&path, b"old", WriteOptions::PUBLIC).unwrap();
        let error = write_with(&path, WriteOptions::PUBLIC, |file| {
            file.write_all(b"half")?;
            Err::<(), _>(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "disk full");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
