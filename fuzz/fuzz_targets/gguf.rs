#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::scan::gguf;

fuzz_target!(|data: &[u8]| {
    // The bytes as a whole file, and as the scan window over a longer file.
    let _ = gguf::check(data, data.len() as u64);
    let _ = gguf::check(
        data,
        (data.len() as u64).saturating_mul(2).saturating_add(1),
    );
});
