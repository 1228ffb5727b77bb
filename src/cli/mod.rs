//! Command-line definitions (clap) and dispatch to one file per subcommand. Only the binary
//! knows clap; the library receives plain option values.

mod completions;
mod explain;
mod fetch;
mod key;
mod manifest;
mod progress;
mod receipt;
mod registry;
mod run;
mod scan;
mod sign;
mod trust;
mod verify;

use std::io::{self, IsTerminal, Write};

use clap::{Parser, Subcommand, ValueEnum};

use modelvet::report::human::Color;

/// Fetch, verify, scan and sandbox machine-learning models so that nothing unverified runs.
#[derive(Debug, Parser)]
#[command(name = "modelvet", version, about, long_about = None)]
pub struct Cli {
    /// When to colour human output (`NO_COLOR` set means never, unless `always`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Scan(scan::ScanArgs),
    Verify(verify::VerifyArgs),
    Fetch(fetch::FetchArgs),
    Run(run::RunArgs),
    Registry(registry::RegistryArgs),
    Manifest(manifest::ManifestArgs),
    Sign(sign::SignArgs),
    Key(key::KeyArgs),
    Trust(trust::TrustArgs),
    Receipt(receipt::ReceiptCommandArgs),
    Explain(explain::ExplainArgs),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Report formats shared by the subcommands that produce a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Human,
    /// The versioned JSON contract (see the `modelvet::report::json` docs).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards (GitHub code scanning).
    Sarif,
    /// JUnit XML, for CI test-result views (GitLab, Jenkins).
    Junit,
}

impl OutputFormat {
    /// Writes `report` in this format.
    pub fn render(
        self,
        report: &modelvet::report::Report,
        color: Color,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        use modelvet::report;
        match self {
            OutputFormat::Human => report::human::render(report, color, out),
            OutputFormat::Json => report::json::render(report, out),
            OutputFormat::Sarif => report::sarif::render(report, out),
            OutputFormat::Junit => report::junit::render(report, out),
        }
    }
}

/// Runs the chosen subcommand and returns the exit code it stands for.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let color = match cli.color {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            if !no_color && io::stdout().is_terminal() {
                Color::Always
            } else {
                Color::Never
            }
        }
    };
    match cli.command {
        Command::Scan(args) => scan::run(args, color),
        Command::Verify(args) => verify::run(args, color),
        Command::Fetch(args) => fetch::run(args, color),
        Command::Run(args) => run::run(args, color),
        Command::Registry(args) => registry::run(args, color),
        Command::Manifest(args) => manifest::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Key(args) => key::run(args),
        Command::Trust(args) => trust::run(args),
        Command::Receipt(args) => receipt::run(args, color),
        Command::Explain(args) => explain::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}

/// Prints an error and its causes to stderr, with a hint where one helps.
pub fn print_error(error: &anyhow::Error) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
}

/// A warning for the operator on stderr (never part of the report).
pub fn eprintln_warning(text: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {text}");
}

/// Writes to stdout, treating a closed pipe (`modelvet scan ... | head`) as success.
pub fn write_stdout(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match render(&mut out).and_then(|()| out.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that `path` holds either its old content or the whole new content, never a part.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    // Manifests, signatures, trust policies and receipts are public documents: readable by
    // all, as a plain write would leave them.
    modelvet::atomic::write(path, bytes, modelvet::atomic::WriteOptions::PUBLIC)
        .with_context(|| format!("could not write `{}`", path.display()))
}

/// The verdict options a `--strict` flag stands for.
pub fn policy_options(strict: bool) -> modelvet::policy::PolicyOptions {
    use modelvet::policy::{PolicyOptions, WarningPolicy};
    PolicyOptions {
        warnings: if strict {
            WarningPolicy::Deny
        } else {
            WarningPolicy::Allow
        },
    }
}

/// The authentication and verification options that `--current-time` and
/// `--unsafe-allow-expired` ask for, with the given rollback protection and hashing threads.
pub fn verify_options(
    current_time: Option<modelvet::manifest::time::Timestamp>,
    unsafe_allow_expired: bool,
    rollback: modelvet::verify::RollbackEnforcement,
    threads: usize,
) -> modelvet::verify::VerifyOptions {
    use modelvet::verify::ExpirationEnforcement;
    modelvet::verify::VerifyOptions {
        now: current_time.unwrap_or_else(modelvet::manifest::time::Timestamp::now),
        expiration: if unsafe_allow_expired {
            ExpirationEnforcement::UnsafeAllowExpired
        } else {
            ExpirationEnforcement::Enforce
        },
        rollback,
        threads,
        scan: modelvet::scan::ScanOptions::default(),
    }
}

/// Rollback protection as `--state` and `--unsafe-no-rollback-check` ask for it.
pub fn rollback_enforcement(
    unsafe_skip: bool,
    state: Option<std::path::PathBuf>,
) -> anyhow::Result<modelvet::verify::RollbackEnforcement> {
    use anyhow::Context;
    use modelvet::verify::RollbackEnforcement;
    if unsafe_skip {
        return Ok(RollbackEnforcement::UnsafeSkip);
    }
    let state_dir = state
        .or_else(modelvet::trust::rollback::default_state_dir)
        .context("no state directory for rollback protection: pass --state DIR (or set MODELVET_STATE_DIR)")?;
    Ok(RollbackEnforcement::Enforce { state_dir })
}
