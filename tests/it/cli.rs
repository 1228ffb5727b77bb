//! Everyday CLI surface: completions, the man page and `--help` examples.

use crate::support::modelvet;

/// Every subcommand a user runs, as argument paths.
const SUBCOMMANDS: &[&[&str]] = &[
    &["scan"],
    &["verify"],
    &["fetch"],
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
