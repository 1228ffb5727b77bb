#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::import::sha256sums;

fuzz_target!(|data: &[u8]| {
    // Whatever parses has safe paths, no duplicates, and lines numbered in order.
    if let Ok(entries) = sha256sums::parse(data) {
        assert!(!entries.is_empty());
        assert!(entries.windows(2).all(|pair| pair[0].line < pair[1].line));
        let mut paths: Vec<_> = entries.iter().map(|entry| entry.path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), entries.len());
    }
});
