//! Mutation smoke test on the stable toolchain: every fixture, truncated and bit-flipped many
//! ways, must scan without panicking and within the time bound. (Coverage-guided fuzzing of the
//! same entry point lives in `fuzz/`.)

use std::time::{Duration, Instant};

use modelvet::scan::{scan_source, ScanOptions};

use crate::support::fixture;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.below(4) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            for _ in 0..1 + rng.below(4) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
                }
            }
        }
        _ => {
            let at = rng.below(bytes.len() + 1);
            let insert: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, insert);
        }
    }
    bytes
}

#[test]
fn mutated_fixtures_never_panic_or_hang() {
    // Small inflation bounds keep decompression bombs cheap in a debug build; the bounds
    // themselves are tested elsewhere.
    let mut options = ScanOptions::default();
    options.limits.max_inflated = 8 << 20;
    options.limits.max_total_inflated = 16 << 20;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut files = Vec::new();
    let mut stack = vec![fixture("")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.metadata().unwrap().len() <= 256 << 10 {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 50);
    let mut slowest = (Duration::ZERO, String::new());
    for path in &files {
        let original = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for _ in 0..24 {
            let bytes = mutate(&original, &mut rng);
            let started = Instant::now();
            let result = scan_source(&bytes, &name, &options);
            assert!(result.is_ok(), "{}: {result:?}", path.display());
            if started.elapsed() > slowest.0 {
                slowest = (started.elapsed(), path.display().to_string());
            }
        }
    }
    assert!(
        slowest.0 < Duration::from_secs(2),
        "slowest mutated scan: {slowest:?}"
    );
}
