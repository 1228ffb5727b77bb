#![no_main]
//! The whole dispatcher: sniffing, containers, compression, every format parser.
use libfuzzer_sys::fuzz_target;
use modelvet::scan::{scan_source, ScanOptions};

fuzz_target!(|data: &[u8]| {
    // Small inflation bounds keep bombs cheap so the fuzzer spends its time on structure;
    // the bounds themselves are unit-tested.
    let mut options = ScanOptions::default();
    options.limits.max_inflated = 4 << 20;
    options.limits.max_total_inflated = 8 << 20;
    let bytes = data.to_vec();
    let _ = scan_source(&bytes, "fuzz.bin", &options);
});
