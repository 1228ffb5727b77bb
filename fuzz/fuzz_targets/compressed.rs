#![no_main]
//! Sniffs and inflates arbitrary bytes as every compression wrapper, joblib's `ZF` header
//! included: no input may panic, hang or allocate past the output bound.

use libfuzzer_sys::fuzz_target;
use modelvet::scan::compressed::{self, Compression};

fuzz_target!(|data: &[u8]| {
    let _ = compressed::sniff(data);
    for kind in [Compression::JoblibZf, Compression::Zlib, Compression::Gzip] {
        let _ = compressed::inflate(kind, data, 1 << 20);
    }
});
