//! Walking the paths given to `scan`: files are scanned, directories descended (sorted, so
//! output is deterministic), symlinks and special files reported but never followed or read.
//!
//! Files are scanned in parallel on a few threads; results keep the walk order. This module
//! owns file-system access for scanning and nothing about formats.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::finding::{quote, Code, Finding};
use crate::scan::source::FileSource;
use crate::scan::{scan_source, FileScan, Format, ScanOptions};

/// Directories deeper than this are not descended (a finding says so).
const MAX_DIRECTORY_DEPTH: usize = 64;

/// A file that could not be checked: the scan cannot vouch for it either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error("could not read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ScanError {
    pub fn path(&self) -> &Path {
        match self {
            ScanError::Read { path, .. } => path,
        }
    }
}

/// Scans every file under `paths`, in walk order. Each entry is the file's scan, or the error
/// that kept it from being checked.
pub fn scan_paths(paths: &[PathBuf], options: &ScanOptions) -> Vec<Result<FileScan, ScanError>> {
    let mut entries = Vec::new();
    for path in paths {
        collect(path, 0, &mut entries);
    }
    let results: Vec<Mutex<Option<Result<FileScan, ScanError>>>> =
        entries.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(entries.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let (Some(entry), Some(slot)) = (entries.get(index), results.get(index)) else {
                    break;
                };
                let outcome = scan_entry(entry, options);
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(outcome);
                }
            });
        }
    });
    results
        .into_iter()
        .zip(entries)
        .map(|(slot, entry)| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(ScanError::Read {
                    path: entry.path().to_path_buf(),
                    source: io::Error::other("scan thread did not finish"),
                })
            })
        })
        .collect()
}

enum Entry {
    File(PathBuf),
    Reported(FileScan),
    Failed(PathBuf, io::Error),
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::File(path) | Entry::Failed(path, _) => path,
            Entry::Reported(scan) => &scan.path,
        }
    }
}

fn collect(path: &Path, depth: usize, entries: &mut Vec<Entry>) {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => return entries.push(Entry::Failed(path.to_path_buf(), error)),
    };
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        let target = fs::read_link(path)
            .map(|target| target.display().to_string())
            .unwrap_or_else(|_| "?".into());
        let finding = Finding::new(
            Code::SymlinkNotFollowed,
            format!(
                "symbolic link to `{}` was not followed, so its target was not checked",
                quote(&target)
            ),
        )
        .with_hint("scan the link's target directly");
        entries.push(reported(path, Format::Symlink, 0, finding));
    } else if file_type.is_dir() {
        if depth >= MAX_DIRECTORY_DEPTH {
            let finding = Finding::new(
                Code::ScanLimitExceeded,
                format!("directory nests deeper than {MAX_DIRECTORY_DEPTH} levels and was not descended"),
            );
            return entries.push(reported(path, Format::Special, 0, finding));
        }
        let mut children =
            match fs::read_dir(path).and_then(|dir| dir.collect::<io::Result<Vec<_>>>()) {
                Ok(children) => children,
                Err(error) => return entries.push(Entry::Failed(path.to_path_buf(), error)),
            };
        children.sort_by_key(|child| child.file_name());
        for child in children {
            // Version-control metadata is not part of a model; loaders never read it.
            if child.file_name() == ".git" {
                continue;
            }
            collect(&child.path(), depth + 1, entries);
        }
    } else if file_type.is_file() {
        entries.push(Entry::File(path.to_path_buf()));
    } else {
        let finding = Finding::new(
            Code::SpecialFile,
            "special file (device, socket or FIFO) was not read",
        );
        entries.push(reported(path, Format::Special, 0, finding));
    }
}

fn reported(path: &Path, format: Format, size: u64, finding: Finding) -> Entry {
    Entry::Reported(FileScan {
        path: path.to_path_buf(),
        format,
        size,
        findings: vec![finding],
    })
}

fn scan_entry(entry: &Entry, options: &ScanOptions) -> Result<FileScan, ScanError> {
    let path = match entry {
        Entry::Reported(scan) => return Ok(scan.clone()),
        Entry::Failed(path, error) => {
            return Err(ScanError::Read {
                path: path.clone(),
                source: io::Error::new(error.kind(), error.to_string()),
            })
        }
        Entry::File(path) => path,
    };
    let failed = |source| ScanError::Read {
        path: path.clone(),
        source,
    };
    let source = File::open(path).and_then(FileSource::new).map_err(failed)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scanned = scan_source(&source, &name, options).map_err(failed)?;
    Ok(FileScan {
        path: path.clone(),
        format: scanned.format,
        size: crate::scan::source::ReadAt::size(&source),
        findings: scanned.findings,
    })
}
