#![no_main]
//! Fuzzes the static pickle emulator: any bytes must be analysed without panicking, within the
//! limits, and with a self-consistent result.

use libfuzzer_sys::fuzz_target;
use modelvet::scan::pickle::{analyse, End, GlobalClass, PickleLimits};

fuzz_target!(|data: &[u8]| {
    let limits = PickleLimits {
        max_opcodes: 1_000_000,
        ..PickleLimits::default()
    };
    let analysis = analyse(data, &limits);
    let len = data.len() as u64;
    assert!(analysis.consumed <= len);
    match analysis.end {
        End::Complete => {}
        End::Truncated { offset } => assert_eq!(offset, len),
        End::Invalid { offset } => assert!(offset <= len),
    }
    if analysis.is_pickle {
        assert!(analysis.streams >= 1);
        let mut names: Vec<String> = analysis
            .globals
            .iter()
            .map(|imported| imported.global.qualified())
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "globals are distinct");
        for imported in &analysis.globals {
            assert_eq!(
                imported.class,
                modelvet::scan::pickle::classify(&imported.global),
                "{}",
                imported.global.qualified()
            );
        }
        let dangerous = analysis
            .globals
            .iter()
            .filter(|g| g.class == GlobalClass::Dangerous && !g.opcode.starts_with("EXT"))
            .count();
        let findings = analysis
            .findings
            .iter()
            .filter(|f| f.code.as_str() == "pickle-dangerous-global")
            .count();
        assert_eq!(dangerous, findings);
    } else {
        assert!(analysis.findings.is_empty());
        assert!(analysis.globals.is_empty());
        assert_eq!(analysis.streams, 0);
    }
});
