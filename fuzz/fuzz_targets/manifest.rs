#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::manifest::{path::SafePath, Manifest};

fuzz_target!(|data: &[u8]| {
    // Whatever parses must print back to JSON that parses to the same manifest and prints
    // identically (to_json is deterministic).
    if let Ok(manifest) = Manifest::parse(data) {
        let json = manifest.to_json();
        let reparsed = Manifest::parse(&json);
        assert_eq!(reparsed.as_ref(), Ok(&manifest));
        assert_eq!(reparsed.map(|m| m.to_json()).ok(), Some(json));
    }
    // The path rules on their own, with any bytes as a path.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(path) = text.parse::<SafePath>() {
            assert_eq!(path.as_str(), text);
            assert!(path
                .components()
                .all(|c| !c.is_empty() && c != "." && c != ".."));
        }
    }
});
