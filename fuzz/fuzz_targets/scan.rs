#![no_main]
//! The whole dispatcher: sniffing, containers, compression, every format parser.
use libfuzzer_sys::fuzz_target;
use modelvet::scan::{scan_source, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    let _ = scan_source(&bytes, "fuzz.bin", &ScanOptions::default());
});
