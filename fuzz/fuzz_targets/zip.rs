#![no_main]
//! Lists arbitrary bytes as a zip and decompresses the first members with a small bound:
//! no input may panic, hang or allocate past the bounds.

use libfuzzer_sys::fuzz_target;
use modelvet::scan::zip::{self, ZipLimits};

fuzz_target!(|data: &[u8]| {
    let source = data.to_vec();
    let _ = zip::looks_like_zip(&source);
    let limits = ZipLimits {
        max_members: 1_000,
        ..ZipLimits::default()
    };
    if let Ok(listing) = zip::list(&source, &limits) {
        for member in listing.members.iter().take(16) {
            let _ = zip::read_member(&source, member, 1 << 20);
            let _ = zip::read_member_prefix(&source, member, 256);
        }
    }
});
