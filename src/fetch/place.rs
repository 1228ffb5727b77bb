//! Getting one manifest file to its final path without ever putting unverified bytes there.
//!
//! Bytes go to `DEST/.modelvet-partial/<id>.part` (same file system as the final path, so the
//! last step is an atomic rename), hashed as they arrive and cut off the moment they exceed the
//! signed size. Only a partial whose SHA-256 matches, and that the scanner accepts, is fsynced
//! and renamed into place. An interrupted transfer resumes with a range request; the resumed
//! prefix is re-verified (against chunk digests when the manifest has them, else re-hashed
//! into the running digest) before more bytes are added to it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256 as Sha256Hasher};

use crate::digest::{Progress, Sha256};
use crate::fetch::source::Source;
use crate::fetch::transfer::{Client, Failure, Opened};
use crate::manifest::ManifestFile;

/// The directory, inside the destination, where unverified bytes live.
pub const PARTIAL_DIR: &str = ".modelvet-partial";

const BUFFER: usize = 1 << 20;

/// Retry behaviour for one source.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Further attempts after the first, per source.
    pub retries: u32,
    /// First backoff; doubled per attempt, with jitter, capped at `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The partial file of a manifest entry: named by the digest of its path, so that a later run
/// finds (and re-verifies) what an interrupted run left.
pub fn partial_path(partial_dir: &Path, file: &ManifestFile) -> PathBuf {
    let id = crate::digest::sha256_bytes(file.path.as_str().as_bytes()).to_string();
    partial_dir.join(format!("{}.part", id.get(..32).unwrap_or(&id)))
}

/// Downloads `file` from `source` into `partial`, resuming what is there. On success the
/// partial holds exactly the signed bytes. A permanent failure deletes the partial (its bytes
/// came from a source that is wrong); a transient one keeps it for the next attempt.
pub fn download(
    client: &Client,
    source: &Source,
    file: &ManifestFile,
    partial: &Path,
    retry: RetryPolicy,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let mut attempt = 0u32;
    // Bytes left by an earlier run may belong to another version of the file: if they spoil
    // the digest, that says nothing about this source, so it gets one clean try.
    let mut stale_prefix = fs::metadata(partial).is_ok_and(|metadata| metadata.len() > 0);
    loop {
        match download_once(client, source, file, partial, progress) {
            Ok(()) => return Ok(()),
            Err(Failure::Transient { retry_after, .. }) if attempt < retry.retries => {
                std::thread::sleep(retry_after.unwrap_or_else(|| backoff(retry, attempt)));
                attempt += 1;
            }
            Err(Failure::Permanent { .. }) if stale_prefix => {
                stale_prefix = false;
                let _ = fs::remove_file(partial);
            }
            Err(failure) => {
                if !matches!(failure, Failure::Transient { .. }) {
                    let _ = fs::remove_file(partial);
                }
                return Err(failure);
            }
        }
    }
}

fn download_once(
    client: &Client,
    source: &Source,
    file: &ManifestFile,
    partial: &Path,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let io_failure = |what: &str, error: io::Error| Failure::Permanent {
        reason: format!("{what} `{}`: {error}", partial.display()),
    };
    let mut out = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(partial)
        .map_err(|error| io_failure("cannot open", error))?;
    let (mut hasher, mut have) =
        verified_prefix(&mut out, file).map_err(|error| io_failure("cannot read", error))?;
    if have == file.size {
        return finish(&out, hasher, file);
    }

    let opened = client.open(source, have)?;
    check_server_claims(source, file, &opened)?;
    if opened.start != have {
        // The server ignored the range (or started elsewhere): start over from its offset 0.
        if opened.start != 0 {
            return Err(Failure::Transient {
                reason: format!("server resumed at byte {} instead of {have}", opened.start),
                retry_after: None,
            });
        }
        out.set_len(0)
            .map_err(|error| io_failure("cannot truncate", error))?;
        hasher = Sha256Hasher::new();
        have = 0;
    }
    if let Some(length) = opened.length {
        if have.saturating_add(length) > file.size {
            return Err(Failure::Permanent {
                reason: format!(
                    "server announces {} bytes in all, more than the signed size {}",
                    have.saturating_add(length),
                    file.size
                ),
            });
        }
    }
    out.seek(SeekFrom::Start(have))
        .map_err(|error| io_failure("cannot seek", error))?;

    let mut reader = opened.reader;
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                let _ = out.flush();
                return Err(Failure::Transient {
                    reason: format!(
                        "transfer broke off after byte {have}: {}",
                        crate::error::chain(&error)
                    ),
                    retry_after: None,
                });
            }
        };
        let chunk = buffer.get(..read).unwrap_or_default();
        if have.saturating_add(read as u64) > file.size {
            return Err(Failure::Permanent {
                reason: format!(
                    "source sends more than the signed size of {} bytes",
                    file.size
                ),
            });
        }
        out.write_all(chunk)
            .map_err(|error| io_failure("cannot write", error))?;
        hasher.update(chunk);
        have += read as u64;
        progress.advance(read as u64);
    }
    if have < file.size {
        return Err(Failure::Transient {
            reason: format!("transfer ended after {have} of {} bytes", file.size),
            retry_after: None,
        });
    }
    finish(&out, hasher, file)
}

/// Downloads a file that has chunk digests as parallel ranges, one chunk at a time per
/// connection, each chunk verified against its own signed digest before the next is asked
/// for; since the chunk digests are signed, all chunks matching proves the whole file. A
/// resumed partial keeps every chunk that still verifies. Falls back to one stream when the
/// server does not honour bounded ranges.
pub fn download_chunked(
    client: &Client,
    source: &Source,
    file: &ManifestFile,
    partial: &Path,
    retry: RetryPolicy,
    connections: usize,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let Some(chunks) = &file.chunks else {
        return download(client, source, file, partial, retry, progress);
    };
    let io_failure = |what: &str, error: io::Error| Failure::Permanent {
        reason: format!("{what} `{}`: {error}", partial.display()),
    };
    let out = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(partial)
        .map_err(|error| io_failure("cannot open", error))?;
    out.set_len(file.size)
        .map_err(|error| io_failure("cannot size", error))?;
    let spans: Vec<(u64, u64)> = (0..chunks.sha256.len() as u64)
        .map(|index| {
            let start = index.saturating_mul(chunks.chunk_size);
            (
                start,
                chunks.chunk_size.min(file.size.saturating_sub(start)),
            )
        })
        .collect();
    // Resume: keep the chunks that already verify.
    let mut pending = Vec::new();
    for (index, (span, expected)) in spans.iter().zip(&chunks.sha256).enumerate() {
        let verified =
            read_chunk_digest(&out, span.0, span.1).is_ok_and(|digest| digest == *expected);
        if verified {
            progress.advance(span.1);
        } else {
            pending.push(index);
        }
    }

    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure: std::sync::Mutex<Option<Failure>> = std::sync::Mutex::new(None);
    let workers = connections.clamp(1, 8).min(pending.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if failure.lock().map_or(true, |failure| failure.is_some()) {
                    break;
                }
                let slot = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(index) = pending.get(slot) else {
                    break;
                };
                let (Some(span), Some(expected)) = (spans.get(*index), chunks.sha256.get(*index))
                else {
                    break;
                };
                let mut attempt = 0u32;
                let result = loop {
                    match fetch_chunk(client, source, &out, *span, expected, progress) {
                        Err(Failure::Transient { retry_after, .. }) if attempt < retry.retries => {
                            std::thread::sleep(
                                retry_after.unwrap_or_else(|| backoff(retry, attempt)),
                            );
                            attempt += 1;
                        }
                        other => break other,
                    }
                };
                if let Err(error) = result {
                    if let Ok(mut failure) = failure.lock() {
                        failure.get_or_insert(error);
                    }
                    break;
                }
            });
        }
    });
    match failure.into_inner().ok().flatten() {
        None => out
            .sync_all()
            .map_err(|error| io_failure("cannot flush", error)),
        Some(Failure::Permanent { reason }) if reason.starts_with(NO_RANGES) => {
            // The server cannot serve bounded ranges: one stream from the start instead.
            out.set_len(0)
                .map_err(|error| io_failure("cannot truncate", error))?;
            drop(out);
            download(client, source, file, partial, retry, progress)
        }
        Some(failure) => {
            if !matches!(failure, Failure::Transient { .. }) {
                let _ = fs::remove_file(partial);
            }
            Err(failure)
        }
    }
}

const NO_RANGES: &str = "server does not honour bounded ranges";

/// One chunk: a bounded range, written at its offset, hashed, compared with its digest.
fn fetch_chunk(
    client: &Client,
    source: &Source,
    out: &File,
    (start, len): (u64, u64),
    expected: &Sha256,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let last = start.saturating_add(len).saturating_sub(1);
    let opened = client.open_range(source, start, Some(last))?;
    if opened.start != start || opened.length.is_some_and(|length| length > len) {
        return Err(Failure::Permanent {
            reason: format!("{NO_RANGES} (asked for bytes {start}-{last})"),
        });
    }
    let mut reader = opened.reader.take(len.saturating_add(1));
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut have = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(Failure::Transient {
                    reason: format!(
                        "chunk at byte {start} broke off: {}",
                        crate::error::chain(&error)
                    ),
                    retry_after: None,
                })
            }
        };
        if have.saturating_add(read as u64) > len {
            return Err(Failure::Permanent {
                reason: format!(
                    "source sends more than the {len} bytes of the chunk at byte {start}"
                ),
            });
        }
        let chunk = buffer.get(..read).unwrap_or_default();
        write_at(out, chunk, start + have).map_err(|error| Failure::Permanent {
            reason: format!("cannot write: {error}"),
        })?;
        hasher.update(chunk);
        have += read as u64;
        progress.advance(read as u64);
    }
    if have < len {
        return Err(Failure::Transient {
            reason: format!("chunk at byte {start} ended after {have} of {len} bytes"),
            retry_after: None,
        });
    }
    let computed = Sha256::from_bytes(hasher.finalize().into());
    if computed != *expected {
        return Err(Failure::Permanent {
            reason: format!("wrong bytes in the chunk at byte {start}: expected sha256:{expected}, computed sha256:{computed}"),
        });
    }
    Ok(())
}

fn read_chunk_digest(file: &File, start: u64, len: u64) -> io::Result<Sha256> {
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from((len - done).min(BUFFER as u64)).unwrap_or(BUFFER);
        let chunk = buffer.get_mut(..want).unwrap_or_default();
        read_exact_at(file, chunk, start + done)?;
        hasher.update(&*chunk);
        done += want as u64;
    }
    Ok(Sha256::from_bytes(hasher.finalize().into()))
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        bytes = bytes.get(written..).unwrap_or_default();
        offset += written as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    crate::scan::source::ReadAt::read_exact_at(
        &crate::scan::source::FileSource::new(file.try_clone()?)?,
        bytes,
        offset,
    )
}

/// Compares the finished digest; a mismatch is permanent for this source.
fn finish(out: &File, hasher: Sha256Hasher, file: &ManifestFile) -> Result<(), Failure> {
    let computed = Sha256::from_bytes(hasher.finalize().into());
    if computed != file.sha256 {
        return Err(Failure::Permanent {
            reason: format!(
                "wrong bytes: expected sha256:{}, computed sha256:{computed}",
                file.sha256
            ),
        });
    }
    out.sync_all().map_err(|error| Failure::Permanent {
        reason: format!("cannot flush the download to disk: {error}"),
    })
}

/// The bytes already in the partial file that can be trusted to continue from, and the
/// running digest over them. With chunk digests, only whole chunks that verify are kept;
/// without, the prefix is re-hashed (the final digest decides).
fn verified_prefix(out: &mut File, file: &ManifestFile) -> io::Result<(Sha256Hasher, u64)> {
    let mut len = out.metadata()?.len();
    if len > file.size {
        out.set_len(0)?;
        len = 0;
    }
    let mut keep = len;
    if let Some(chunks) = &file.chunks {
        keep = 0;
        out.seek(SeekFrom::Start(0))?;
        for expected in &chunks.sha256 {
            if keep.saturating_add(chunks.chunk_size).min(file.size) > len {
                break;
            }
            let chunk_len = chunks.chunk_size.min(file.size - keep);
            let mut chunk_hasher = Sha256Hasher::new();
            copy_hashing(&mut *out, chunk_len, &mut [&mut chunk_hasher])?;
            if Sha256::from_bytes(chunk_hasher.finalize().into()) != *expected {
                break;
            }
            keep += chunk_len;
        }
        if keep != len {
            out.set_len(keep)?;
        }
    }
    let mut hasher = Sha256Hasher::new();
    out.seek(SeekFrom::Start(0))?;
    copy_hashing(&mut *out, keep, &mut [&mut hasher])?;
    Ok((hasher, keep))
}

fn copy_hashing(
    reader: &mut dyn Read,
    mut len: u64,
    hashers: &mut [&mut Sha256Hasher],
) -> io::Result<()> {
    let mut buffer = vec![0u8; BUFFER];
    while len > 0 {
        let want = usize::try_from(len.min(BUFFER as u64)).unwrap_or(BUFFER);
        let chunk = buffer.get_mut(..want).unwrap_or_default();
        reader.read_exact(chunk)?;
        for hasher in hashers.iter_mut() {
            hasher.update(&*chunk);
        }
        len -= want as u64;
    }
    Ok(())
}

/// A server's claims about the file that can be checked before its body is read.
fn check_server_claims(
    source: &Source,
    file: &ManifestFile,
    opened: &Opened,
) -> Result<(), Failure> {
    let header = |name: &str| {
        opened
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(size) = header("x-linked-size") {
        if size.parse::<u64>().ok() != Some(file.size) {
            return Err(Failure::Mismatch {
                reason: format!(
                    "server says X-Linked-Size {size}, the manifest says {}",
                    file.size
                ),
            });
        }
    }
    if let Some(etag) = header("x-linked-etag") {
        let etag = etag.trim_start_matches("W/").trim_matches('"');
        // The hub's linked etag is the SHA-256 for LFS files; other etags are not digests.
        if etag.len() == 64
            && etag.bytes().all(|b| b.is_ascii_hexdigit())
            && !etag.eq_ignore_ascii_case(&file.sha256.to_string())
        {
            return Err(Failure::Mismatch {
                reason: format!(
                    "server says X-Linked-Etag {etag}, the manifest says sha256 {}",
                    file.sha256
                ),
            });
        }
    }
    if let (Some(revision), Some(commit)) = (&source.hub_revision, header("x-repo-commit")) {
        if commit != revision {
            return Err(Failure::Mismatch {
                reason: format!("server says X-Repo-Commit {commit}, the source names {revision}"),
            });
        }
    }
    Ok(())
}

/// Exponential backoff with jitter: `initial * 2^attempt`, capped, then a random 50–100 %.
fn backoff(retry: RetryPolicy, attempt: u32) -> Duration {
    let base = retry
        .initial_backoff
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(retry.max_backoff);
    let mut random = [0u8; 2];
    let _ = getrandom::fill(&mut random);
    let fraction = 0.5 + f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX) / 2.0;
    base.mul_f64(fraction)
}

/// Copies `from` (a cached or already-present file) into `partial`, hashing as it goes;
/// true when the copy holds the signed bytes.
pub fn copy_verified(
    from: &Path,
    file: &ManifestFile,
    partial: &Path,
    progress: &dyn Progress,
) -> io::Result<bool> {
    let mut input = File::open(from)?;
    if input.metadata()?.len() != file.size {
        return Ok(false);
    }
    let mut out = File::create(partial)?;
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let read = input.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        let chunk = buffer.get(..read).unwrap_or_default();
        out.write_all(chunk)?;
        hasher.update(chunk);
        progress.advance(read as u64);
    }
    let matches = Sha256::from_bytes(hasher.finalize().into()) == file.sha256;
    if matches {
        out.sync_all()?;
    } else {
        drop(out);
        fs::remove_file(partial)?;
    }
    Ok(matches)
}

/// Moves a verified partial file to `dest/<path>`, creating parent directories and refusing
/// to go through a symbolic link or replace anything but a regular file.
pub fn place(partial: &Path, dest: &Path, file: &ManifestFile) -> io::Result<PathBuf> {
    let mut dir = dest.to_path_buf();
    let components: Vec<&str> = file.path.components().collect();
    let (name, parents) = components
        .split_last()
        .ok_or_else(|| io::Error::other("empty manifest path"))?;
    for component in parents {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "`{}` is in the way: not a plain directory",
                    dir.display()
                )))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => match fs::create_dir(&dir) {
                Ok(()) => {}
                // Files of one directory are placed in parallel: another may have just made
                // it. It counts only if it is a plain directory, never a link planted there.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&dir)?.is_dir() {
                        return Err(io::Error::other(format!(
                            "`{}` is in the way: not a plain directory",
                            dir.display()
                        )));
                    }
                }
                Err(error) => return Err(error),
            },
            Err(error) => return Err(error),
        }
    }
    let target = dir.join(name);
    match fs::symlink_metadata(&target) {
        Ok(metadata) if !metadata.is_file() => {
            return Err(io::Error::other(format!(
                "`{}` is in the way: not a regular file",
                target.display()
            )))
        }
        _ => {}
    }
    fs::rename(partial, &target)?;
    #[cfg(unix)]
    if let Ok(directory) = File::open(&dir) {
        // Make the rename itself durable.
        let _ = directory.sync_all();
    }
    Ok(target)
}
