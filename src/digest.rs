//! Streaming SHA-256: the [`Sha256`] digest type, hashing of byte slices and files, optional
//! per-chunk digests computed in the same pass, and hashing several files in parallel.
//!
//! This module owns reading file *contents* for hashing and nothing else: it does not decide
//! which files to hash, does not check that a path is a regular file (the caller has done so)
//! and does not compare digests with a manifest. Memory is bounded by one reused
//! [`BUFFER_SIZE`] buffer per worker thread, whatever the size of the files; no mmap (unsafe
//! code is forbidden). `sha2` picks the CPU's SHA extensions at run time when they exist.
//!
//! The SHA-256 of a whole file is inherently sequential, so parallelism is across files. A job
//! that asks for chunk digests gets them from the same single read of the file (each byte is
//! hashed twice, once for its chunk and once for the whole file).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::finding::quote;

/// Bytes read per `read` call; one such buffer exists per worker thread.
pub const BUFFER_SIZE: usize = 1 << 20;

/// A SHA-256 digest. Text form: 64 lowercase hex digits (uppercase is refused so that one
/// digest has exactly one spelling in a signed manifest).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256([u8; 32]);

/// Why a text is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a sha-256 digest (64 lowercase hex digits): {reason}")]
pub struct Sha256ParseError {
    /// The text, truncated to 80 characters with control characters escaped.
    pub text: String,
    pub reason: &'static str,
}

/// The digest of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Bytes read (the file's size at the time it was read).
    pub size: u64,
    pub sha256: Sha256,
    /// Digest of each `chunk_size` piece, the last one possibly shorter; empty unless the job
    /// asked for chunks.
    pub chunks: Vec<Sha256>,
}

/// One file to hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashJob {
    pub path: PathBuf,
    /// Also compute the digest of every piece of this many bytes.
    pub chunk_size: Option<u64>,
    /// Stop with [`DigestError::TooLarge`] once more than this many bytes have been read, so a
    /// file that grew (or is larger than declared) is not hashed forever.
    pub size_limit: Option<u64>,
}

/// Told how many bytes were hashed, once per buffer, from any worker thread.
pub trait Progress: Sync {
    /// How many bytes the whole job will hash, announced once before hashing starts.
    fn total(&self, _bytes: u64) {}

    /// How many files the job covers, announced once before it starts.
    fn files(&self, _count: usize) {}

    /// One more file is finished (verified, placed, or given up on).
    fn file_done(&self) {}

    fn advance(&self, bytes: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&self, _bytes: u64) {}
}

/// Why a file could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("cannot read `{}`", quote(&path.display().to_string()))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{}` is larger than the {limit} bytes expected; stopped reading it",
        quote(&path.display().to_string())
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error(
        "chunk size for `{}` must be at least 1 byte",
        quote(&path.display().to_string())
    )]
    ChunkSize { path: PathBuf },
    #[error(
        "hashing `{}` did not finish because its worker thread failed",
        quote(&path.display().to_string())
    )]
    Aborted { path: PathBuf },
}

/// The SHA-256 of `bytes`.
pub fn sha256_bytes(bytes: &[u8]) -> Sha256 {
    Sha256(sha2::Sha256::digest(bytes).into())
}

/// A writer that hashes every byte it passes on, so that a file's digest is known the moment
/// it is written, without reading it back.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    /// The writer back, and the SHA-256 of everything written through it.
    pub fn finish(self) -> (W, Sha256) {
        (self.inner, Sha256(self.hasher.finalize().into()))
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(bytes.get(..written).unwrap_or(bytes));
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<Sha256> {
    let mut writer = HashingWriter::new(io::sink());
    io::copy(&mut reader, &mut writer)?;
    Ok(writer.finish().1)
}

/// Hash one file with a freshly allocated buffer.
pub fn hash_file(job: &HashJob, progress: &dyn Progress) -> Result<FileDigest, DigestError> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    hash_file_with(job, progress, &mut buffer)
}

/// Hash `jobs` on up to `threads` threads (at least one); results are in job order.
pub fn hash_files(
    jobs: &[HashJob],
    threads: usize,
    progress: &dyn Progress,
) -> Vec<Result<FileDigest, DigestError>> {
    let threads = threads.clamp(1, jobs.len().max(1));
    if threads == 1 {
        let mut buffer = vec![0u8; BUFFER_SIZE];
        return jobs
            .iter()
            .map(|job| hash_file_with(job, progress, &mut buffer))
            .collect();
    }
    // Workers take the next job from a shared counter, so a few large files do not leave one
    // thread with all the work as a fixed split would.
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut buffer = vec![0u8; BUFFER_SIZE];
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(index) else { break };
            done.push((index, hash_file_with(job, progress, &mut buffer)));
        }
        done
    };
    let mut results: Vec<Option<Result<FileDigest, DigestError>>> =
        jobs.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        for handle in handles {
            // A worker that panicked loses its results; they are reported as aborted below
            // rather than propagating the panic.
            if let Ok(done) = handle.join() {
                for (index, result) in done {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = Some(result);
                    }
                }
            }
        }
    });
    results
        .into_iter()
        .zip(jobs)
        .map(|(result, job)| {
            result.unwrap_or_else(|| {
                Err(DigestError::Aborted {
                    path: job.path.clone(),
                })
            })
        })
        .collect()
}

impl Sha256 {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn write_hex(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            for (out, nibble) in pair.iter_mut().zip([byte >> 4, byte & 0x0f]) {
                *out = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
            }
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl From<[u8; 32]> for Sha256 {
    fn from(bytes: [u8; 32]) -> Self {
        Sha256(bytes)
    }
}

impl FromStr for Sha256 {
    type Err = Sha256ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| Sha256ParseError {
            text: quote(&text.chars().take(80).collect::<String>()),
            reason,
        };
        if text.len() != 64 {
            return Err(fail("wrong length"));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let mut value = 0u8;
            for digit in pair {
                let nibble = match digit {
                    b'0'..=b'9' => digit - b'0',
                    b'a'..=b'f' => digit - b'a' + 10,
                    b'A'..=b'F' => return Err(fail("uppercase hex digit")),
                    _ => return Err(fail("not a hex digit")),
                };
                value = (value << 4) | nibble;
            }
            *byte = value;
        }
        Ok(Sha256(bytes))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_hex(f)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.write_hex(f)
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Sha256;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sha-256 digest as 64 lowercase hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Sha256, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

/// The single pass over one file, reusing the caller's buffer.
fn hash_file_with(
    job: &HashJob,
    progress: &dyn Progress,
    buffer: &mut [u8],
) -> Result<FileDigest, DigestError> {
    let io_error = |source| DigestError::Io {
        path: job.path.clone(),
        source,
    };
    if job.chunk_size == Some(0) {
        return Err(DigestError::ChunkSize {
            path: job.path.clone(),
        });
    }
    let file = File::open(&job.path).map_err(io_error)?;
    // Reading one byte past the limit is enough to know the file is too large.
    let mut reader = file.take(
        job.size_limit
            .map_or(u64::MAX, |limit| limit.saturating_add(1)),
    );
    let mut whole = sha2::Sha256::new();
    let mut chunker = job.chunk_size.map(Chunker::new);
    let mut size: u64 = 0;
    loop {
        let read = match reader.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(io_error(error)),
        };
        let data = buffer.get(..read).unwrap_or_default();
        size = size.saturating_add(u64::try_from(read).unwrap_or(u64::MAX));
        if let Some(limit) = job.size_limit {
            if size > limit {
                return Err(DigestError::TooLarge {
                    path: job.path.clone(),
                    limit,
                });
            }
        }
        whole.update(data);
        if let Some(chunker) = chunker.as_mut() {
            chunker.update(data);
        }
        progress.advance(u64::try_from(read).unwrap_or(u64::MAX));
    }
    Ok(FileDigest {
        size,
        sha256: Sha256(whole.finalize().into()),
        chunks: chunker.map(Chunker::finish).unwrap_or_default(),
    })
}

/// Splits a stream at every `chunk_size` bytes, whatever the sizes of the reads.
struct Chunker {
    chunk_size: u64,
    filled: u64,
    current: sha2::Sha256,
    done: Vec<Sha256>,
}

impl Chunker {
    fn new(chunk_size: u64) -> Self {
        Chunker {
            chunk_size,
            filled: 0,
            current: sha2::Sha256::new(),
            done: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.chunk_size.saturating_sub(self.filled);
            let take = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
            let (head, tail) = data.split_at_checked(take).unwrap_or((data, &[]));
            self.current.update(head);
            self.filled = self
                .filled
                .saturating_add(u64::try_from(head.len()).unwrap_or(u64::MAX));
            if self.filled >= self.chunk_size {
                let finished = std::mem::replace(&mut self.current, sha2::Sha256::new());
                self.done.push(Sha256(finished.finalize().into()));
                self.filled = 0;
            }
            data = tail;
        }
    }

    fn finish(mut self) -> Vec<Sha256> {
        if self.filled > 0 {
            self.done.push(Sha256(self.current.finalize().into()));
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicU64;

    use super::*;

    fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn job(path: PathBuf) -> HashJob {
        HashJob {
            path,
            chunk_size: None,
            size_limit: None,
        }
    }

    /// Deterministic, not all-equal bytes (so that misplaced chunk boundaries show).
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
            .collect()
    }

    struct Counter(AtomicU64);
    impl Progress for Counter {
        fn advance(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(sha256_bytes(b"").to_string(), EMPTY);
        assert_eq!(sha256_bytes(b"abc").to_string(), ABC);
        assert_eq!(
            format!("{:?}", sha256_bytes(b"abc")),
            format!("sha256:{ABC}")
        );
    }

    #[test]
    fn hex_text_round_trips_and_is_strict() {
        let digest: Sha256 = ABC.parse().unwrap();
        assert_eq!(digest, sha256_bytes(b"abc"));
        assert_eq!(digest.as_bytes().first(), Some(&0xba));
        assert!(ABC.to_uppercase().parse::<Sha256>().is_err());
        assert!(ABC[..63].parse::<Sha256>().is_err());
        assert!(format!("{ABC}0").parse::<Sha256>().is_err());
        assert!(format!("{}g", &ABC[..63]).parse::<Sha256>().is_err());
        assert!(format!("{}é", &ABC[..62]).parse::<Sha256>().is_err());
        let error = "\u{1b}[31m".parse::<Sha256>().unwrap_err().to_string();
        assert!(!error.contains('\u{1b}'), "{error}");

        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{ABC}\""));
        assert_eq!(serde_json::from_str::<Sha256>(&json).unwrap(), digest);
        assert!(serde_json::from_str::<Sha256>("12").is_err());
    }

    #[test]
    fn hashes_files_across_many_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = pattern(BUFFER_SIZE * 2 + 12_345);
        let path = write_temp(dir.path(), "big", &bytes);
        let progress = Counter(AtomicU64::new(0));
        let digest = hash_file(&job(path), &progress).unwrap();
        assert_eq!(digest.size, bytes.len() as u64);
        assert_eq!(digest.sha256, sha256_bytes(&bytes));
        assert!(digest.chunks.is_empty());
        assert_eq!(progress.0.load(Ordering::Relaxed), bytes.len() as u64);

        let empty = write_temp(dir.path(), "empty", b"");
        let digest = hash_file(&job(empty), &()).unwrap();
        assert_eq!((digest.size, digest.sha256.to_string()), (0, EMPTY.into()));
    }

    #[test]
    fn chunk_digests_equal_hashing_the_chunks_separately() {
        let dir = tempfile::tempdir().unwrap();
        // Chunk sizes smaller than, equal to, and not dividing the buffer size.
        for (len, chunk_size) in [
            (BUFFER_SIZE * 3 + 7, BUFFER_SIZE),
            (BUFFER_SIZE * 2, BUFFER_SIZE),
            (100_000, 4096),
            (BUFFER_SIZE + 5, 300_007),
            (10, 1 << 20),
            (0, 1 << 20),
        ] {
            let bytes = pattern(len);
            let path = write_temp(dir.path(), "chunked", &bytes);
            let mut with_chunks = job(path);
            with_chunks.chunk_size = Some(chunk_size as u64);
            let digest = hash_file(&with_chunks, &()).unwrap();
            let expected: Vec<Sha256> = bytes.chunks(chunk_size).map(sha256_bytes).collect();
            assert_eq!(digest.chunks, expected, "{len} / {chunk_size}");
            assert_eq!(digest.sha256, sha256_bytes(&bytes));
            assert_eq!(digest.size, len as u64);
        }
    }

    #[test]
    fn zero_chunk_size_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut zero = job(write_temp(dir.path(), "f", b"x"));
        zero.chunk_size = Some(0);
        assert!(matches!(
            hash_file(&zero, &()),
            Err(DigestError::ChunkSize { .. })
        ));
    }

    #[test]
    fn size_limit_stops_reading() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = pattern(BUFFER_SIZE * 3);
        let path = write_temp(dir.path(), "grown", &bytes);
        let mut limited = job(path.clone());
        limited.size_limit = Some(1000);
        let progress = Counter(AtomicU64::new(0));
        match hash_file(&limited, &progress) {
            Err(DigestError::TooLarge { path: at, limit }) => {
                assert_eq!((at, limit), (path.clone(), 1000));
            }
            other => panic!("{other:?}"),
        }
        // Only the limit plus one byte was read.
        assert_eq!(progress.0.load(Ordering::Relaxed), 0);

        limited.size_limit = Some(bytes.len() as u64);
        assert_eq!(
            hash_file(&limited, &()).unwrap().sha256,
            sha256_bytes(&bytes)
        );
        limited.size_limit = Some(bytes.len() as u64 - 1);
        assert!(matches!(
            hash_file(&limited, &()),
            Err(DigestError::TooLarge { .. })
        ));
        let message = hash_file(&limited, &()).unwrap_err().to_string();
        assert!(message.contains("larger than the"), "{message}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent\u{1b}");
        let error = hash_file(&job(path.clone()), &()).unwrap_err();
        assert!(matches!(&error, DigestError::Io { path: at, .. } if *at == path));
        assert!(!error.to_string().contains('\u{1b}'));
    }

    #[test]
    fn hash_files_keeps_job_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        let mut expected = Vec::new();
        for index in 0..9 {
            let bytes = pattern(index * 50_000 + 1);
            expected.push(Some(sha256_bytes(&bytes)));
            jobs.push(job(write_temp(dir.path(), &format!("f{index}"), &bytes)));
        }
        jobs.push(job(dir.path().join("missing")));
        expected.push(None);
        let total: u64 = (0..9).map(|i| i as u64 * 50_000 + 1).sum();
        for threads in [0, 1, 2, 3, 16] {
            let progress = Counter(AtomicU64::new(0));
            let results = hash_files(&jobs, threads, &progress);
            let got: Vec<Option<Sha256>> = results
                .iter()
                .map(|result| result.as_ref().ok().map(|digest| digest.sha256))
                .collect();
            assert_eq!(got, expected, "{threads} threads");
            assert_eq!(progress.0.load(Ordering::Relaxed), total);
        }
        assert!(hash_files(&[], 4, &()).is_empty());
    }
}
