#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::import::monai::{self, ListSyntax};

fuzz_target!(|data: &[u8]| {
    // The same bytes as YAML and as JSON: never a panic, and entries within the bounds.
    for syntax in [ListSyntax::Yaml, ListSyntax::Json] {
        if let Ok(entries) = monai::parse(data, syntax) {
            assert!(entries.len() <= monai::MAX_ENTRIES);
            for (index, entry) in entries.iter().enumerate() {
                assert_eq!(entry.index, index);
                assert!(!entry.path.as_str().starts_with('/'));
            }
        }
    }
});
