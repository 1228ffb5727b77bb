//! `modelvet explain`: every code is listed once; unknown codes are usage errors.

use crate::support::modelvet;

#[test]
fn explain_lists_every_code_once_and_refuses_unknown_ones() {
    let (code, stdout, _) = modelvet(&["explain"]);
    assert_eq!(code, 0);
    for finding_code in modelvet::finding::Code::ALL {
        let lines = stdout
            .lines()
            .filter(|line| line.split_whitespace().next() == Some(finding_code.as_str()))
            .count();
        assert_eq!(lines, 1, "{finding_code} listed {lines} times");
    }
    let (code, stdout, _) = modelvet(&["explain", "pickle-format"]);
    assert_eq!((code, stdout.lines().count()), (0, 1));
    let (code, _, stderr) = modelvet(&["explain", "no-such-code"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown finding code"), "{stderr}");
}
