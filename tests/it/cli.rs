//! Everyday CLI surface: completions, the man page, `--help` examples and `NO_COLOR`.

use std::process::Command;

use crate::support::{fixture, modelvet};

/// Every subcommand a user runs, as argument paths.
const SUBCOMMANDS: &[&[&str]] = &[
    &["scan"],
    &["verify"],
    &["fetch"],
    &["run"],
    &["registry", "verify"],
    &["receipt", "verify"],
    &["manifest", "create"],
    &["manifest", "import-hf"],
    &["manifest", "import-sha256sums"],
    &["manifest", "import-monai"],
    &["manifest", "export"],
    &["sign"],
    &["key", "generate"],
    &["trust", "init"],
    &["trust", "update"],
    &["explain"],
    &["completions"],
    &["man"],
];

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    let (code, stdout, stderr) = modelvet(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("modelvet") && stdout.contains("import-sha256sums"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let (code, stdout, _) = modelvet(&["completions", shell]);
        assert!(code == 0 && stdout.contains("modelvet"), "{shell}");
    }
    let (code, man, stderr) = modelvet(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(man.starts_with(".ie") || man.contains(".TH"), "{man}");
    for path in SUBCOMMANDS {
        // roff escapes `-` as `\-`.
        let name = format!("modelvet\\-{}", path[0]);
        assert!(man.contains(&name), "man page lacks {name}");
    }
}

#[test]
fn every_subcommand_help_has_examples_that_name_it() {
    for path in SUBCOMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let (code, stdout, _) = modelvet(&args);
        assert_eq!(code, 0, "{args:?}");
        let examples = stdout
            .split_once("Examples")
            .unwrap_or_else(|| panic!("{path:?} --help has no examples:\n{stdout}"))
            .1;
        assert!(
            examples.contains(&format!("modelvet {}", path.join(" "))),
            "{path:?}: {examples}"
        );
    }
}

#[test]
fn no_color_keeps_escape_bytes_out_unless_color_is_always() {
    let pickle = fixture("pickle/builtins-exec-protocol2.pkl");
    let run = |color: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_modelvet"))
            .args(["--color", color, "scan"])
            .arg(&pickle)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "a pickle fails the scan");
        output
    };
    let plain = run("auto");
    assert!(!plain.stdout.contains(&0x1b), "ESC in stdout with NO_COLOR");
    assert!(!plain.stderr.contains(&0x1b), "ESC in stderr with NO_COLOR");
    assert!(!plain.stdout.is_empty());
    let forced = run("always");
    assert!(
        forced.stdout.contains(&0x1b),
        "--color always overrides NO_COLOR"
    );
}
