//! The files of a model directory as verification sees them: every entry by its relative,
//! `/`-separated path, with its kind, never following a symbolic link.
//!
//! Both `manifest create` and `verify` list a directory through this one walk, so what is
//! recorded and what is checked can never differ in what they skip (`.git/`, and the manifest
//! and signature files themselves when they are kept inside the directory).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a directory entry is. Only regular files can be part of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File { size: u64 },
    Symlink,
    Special,
}

/// One entry below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path with `/` separators; lossy when the name is not UTF-8.
    pub path: String,
    pub kind: EntryKind,
    /// Some component of the name is not UTF-8, so no manifest path can name it: the lossy
    /// `path` may even equal a listed path, and the entry is always an extra file.
    pub unrepresentable: bool,
}

/// A directory could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("could not list `{path}`")]
pub struct TreeError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Deeper trees than this are refused rather than walked (a loop through bind mounts, or a
/// hostile archive extraction).
const MAX_DEPTH: usize = 128;

/// Lists every non-directory entry under `root`, sorted by path bytes, leaving out `.git`
/// directories and the files in `exclude` (absolute or as given; compared after
/// canonicalising their parent directory).
pub fn list(root: &Path, exclude: &[PathBuf]) -> Result<Vec<Entry>, TreeError> {
    let excluded: Vec<PathBuf> = exclude
        .iter()
        .filter_map(|path| canonical_file(path))
        .collect();
    let mut entries = Vec::new();
    walk(root, "", false, 0, &excluded, &mut entries)?;
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(entries)
}

/// What `path` is under `root`, found one component at a time without following a symbolic
/// link on the way (a linked directory makes the entry a [`EntryKind::Symlink`]); `None` when
/// nothing is there.
pub fn entry(root: &Path, path: &crate::manifest::SafePath) -> io::Result<Option<EntryKind>> {
    let mut current = root.to_path_buf();
    let mut components = path.components().peekable();
    while let Some(component) = components.next() {
        current.push(component);
        let metadata = match fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let file_type = metadata.file_type();
        let last = components.peek().is_none();
        if file_type.is_symlink() {
            return Ok(Some(EntryKind::Symlink));
        }
        if last {
            return Ok(Some(if file_type.is_file() {
                EntryKind::File {
                    size: metadata.len(),
                }
            } else {
                EntryKind::Special
            }));
        }
        if !file_type.is_dir() {
            return Ok(None);
        }
    }
    Ok(None)
}

fn walk(
    dir: &Path,
    prefix: &str,
    unrepresentable: bool,
    depth: usize,
    excluded: &[PathBuf],
    entries: &mut Vec<Entry>,
) -> Result<(), TreeError> {
    let failed = |source| TreeError {
        path: dir.to_path_buf(),
        source,
    };
    if depth > MAX_DEPTH {
        return Err(failed(io::Error::other(format!(
            "directories nest deeper than {MAX_DEPTH} levels"
        ))));
    }
    for child in fs::read_dir(dir).map_err(failed)? {
        let child = child.map_err(failed)?;
        let os_name = child.file_name();
        let unrepresentable = unrepresentable || os_name.to_str().is_none();
        let name = os_name.to_string_lossy();
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = child.file_type().map_err(failed)?;
        if file_type.is_dir() {
            if name == ".git" {
                continue;
            }
            walk(
                &child.path(),
                &path,
                unrepresentable,
                depth + 1,
                excluded,
                entries,
            )?;
            continue;
        }
        if canonical_file(&child.path()).is_some_and(|canonical| excluded.contains(&canonical)) {
            continue;
        }
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_file() {
            let size = child.metadata().map_err(failed)?.len();
            EntryKind::File { size }
        } else {
            EntryKind::Special
        };
        entries.push(Entry {
            path,
            kind,
            unrepresentable,
        });
    }
    Ok(())
}

/// A file's path with its parent directory canonicalised (the file itself is not resolved,
/// so a symlink is compared as itself).
fn canonical_file(path: &Path) -> Option<PathBuf> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_sorted_skipping_git_and_excluded_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir_all(root.join(".git/objects")).unwrap();
        fs::write(root.join("b.json"), b"{}").unwrap();
        fs::write(root.join("sub/deeper/a.bin"), b"abc").unwrap();
        fs::write(root.join(".git/objects/x"), b"x").unwrap();
        fs::write(root.join("manifest.json"), b"{}").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("b.json", root.join("link")).unwrap();
        let entries = list(root, &[root.join("manifest.json")]).unwrap();
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        #[cfg(unix)]
        assert_eq!(paths, ["b.json", "link", "sub/deeper/a.bin"]);
        assert_eq!(entries[0].kind, EntryKind::File { size: 2 });
        #[cfg(unix)]
        assert_eq!(entries[1].kind, EntryKind::Symlink);
    }

    #[test]
    fn entry_never_follows_a_linked_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/a.bin"), b"abc").unwrap();
        let path = |text: &str| text.parse::<crate::manifest::SafePath>().unwrap();
        assert_eq!(
            entry(root, &path("sub/a.bin")).unwrap(),
            Some(EntryKind::File { size: 3 })
        );
        assert_eq!(entry(root, &path("sub")).unwrap(), Some(EntryKind::Special));
        assert_eq!(entry(root, &path("sub/missing")).unwrap(), None);
        assert_eq!(entry(root, &path("sub/a.bin/x")).unwrap(), None);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("sub", root.join("link")).unwrap();
            assert_eq!(
                entry(root, &path("link/a.bin")).unwrap(),
                Some(EntryKind::Symlink)
            );
        }
    }
}
