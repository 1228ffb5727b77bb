//! `modelvet scan`: scan files and directories by content and report what must be refused.

use std::path::PathBuf;

use clap::Args;

use modelvet::report::{human::Color, Report};
use modelvet::scan::{self, ScanOptions};

use crate::cli::{policy_options, write_stdout, OutputFormat};

/// Scan model files by content: reject pickle in every disguise, validate safe formats.
///
/// Directories are scanned recursively (`.git` is skipped); symbolic links are reported,
/// never followed. Exit status: 0 nothing rejected, 1 something rejected, 2 a file could not
/// be read or the arguments are wrong.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet scan fixtures/demo-model
  modelvet scan --format json model.pt | jq '.files[].findings[].code'
  modelvet scan --format sarif models/ > modelvet.sarif
  modelvet scan --strict downloads/")]
pub struct ScanArgs {
    /// Files or directories to scan.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,

    /// Treat warnings (unknown formats, unfollowed links) as rejections.
    #[arg(long)]
    strict: bool,
}

pub fn run(args: ScanArgs, color: Color) -> anyhow::Result<u8> {
    let policy = policy_options(args.strict);
    let outcomes = scan::scan_paths(&args.paths, &ScanOptions::default());
    let report = Report::from_scan(outcomes, &policy);
    write_stdout(|out| args.format.render(&report, color, out))?;
    Ok(report.exit_code())
}
