#![no_main]
//! Lists arbitrary bytes as a tar: no input may panic, hang or allocate past the bounds.

use libfuzzer_sys::fuzz_target;
use modelvet::scan::tar::{self, TarLimits};

fuzz_target!(|data: &[u8]| {
    let source = data.to_vec();
    let _ = tar::looks_like_tar(&source);
    let _ = tar::list(&source, &TarLimits::default());
});
