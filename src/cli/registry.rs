//! `modelvet registry verify`: check every manifest of a model registry, as its CI job.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use modelvet::manifest::time::Timestamp;
use modelvet::registry::{self, RegistryRequest, Shard};
use modelvet::report::{human::Color, Report};

use crate::cli::{policy_options, write_stdout, OutputFormat};

/// Work on a repository of model manifests.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    Verify(VerifyArgs),
}

/// Check every manifest under ROOT: signatures, schema, expiry, versions, policy, files.
///
/// Manifests are the JSON files named `manifest.json` or `NAME.manifest.json`, those with a
/// signature beside them (`FILE.sig`), and any other that says `"schema":
/// "modelvet.manifest/v1"` (`.git` skipped). Each is checked for the trust policy's
/// signature threshold, schema and path safety, expiry (a warning when it expires within
/// --expiry-warning-days), a version that neither goes back nor is reused against the base
/// branch's copy (--baseline), and the registry's policy: no file named like a pickle without a
/// safe declared format (`policy-pickle-declared`), every WebAssembly file pinned as a named
/// plugin. Where the model's files are present beside a manifest, the whole directory is
/// verified like `modelvet verify` does. Manifests are checked in parallel and reported in path
/// order; --shard I/N checks the manifests whose path hashes to shard I, so the N jobs of a CI
/// matrix cover the registry exactly once. No rollback state is read or written.
/// Exit status: 0 all accepted (warnings included), 1 something refused, 2 could not check.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet registry verify registry/ --trust registry/trust.json
  modelvet registry verify registry/ --trust registry/trust.json --baseline base/registry \\
      --shard 2/4 --format sarif > modelvet.sarif")]
struct VerifyArgs {
    /// The registry's root directory.
    root: PathBuf,
    /// The trust policy every manifest's signatures must meet.
    #[arg(long)]
    trust: PathBuf,
    /// The base branch's checkout of the same registry: versions must not go back or be reused.
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,
    /// Check only shard I of N (1-based), e.g. `--shard 2/4`.
    #[arg(long, value_name = "I/N", default_value_t = Shard::ALL)]
    shard: Shard,
    /// Warn about manifests that expire within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    expiry_warning_days: u32,
    /// Manifests checked at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Treat warnings (expiring soon, unknown formats) as rejections.
    #[arg(long)]
    strict: bool,
    /// Judge expiry at this time instead of now (RFC 3339 UTC), for audits and tests.
    #[arg(long, hide = true)]
    current_time: Option<Timestamp>,
}

pub fn run(args: RegistryArgs, color: Color) -> anyhow::Result<u8> {
    let RegistryCommand::Verify(args) = args.command;
    let request = RegistryRequest {
        root: args.root,
        trust: args.trust,
        baseline: args.baseline,
        shard: args.shard,
        expiry_warning_seconds: i64::from(args.expiry_warning_days) * 86_400,
        now: args.current_time.unwrap_or_else(Timestamp::now),
        jobs: args.jobs,
    };
    let outcome = registry::verify_registry(&request)?;
    let report = Report::from_registry(outcome, &policy_options(args.strict));
    write_stdout(|out| args.format.render(&report, color, out))?;
    Ok(report.exit_code())
}
