//! `modelvet verify`: prove a model directory is exactly what trusted signers published.

use std::path::PathBuf;

use clap::Args;

use modelvet::manifest::time::Timestamp;
use modelvet::receipt::{Origin, Receipt, ReceiptCommand};
use modelvet::report::{human::Color, Report};
use modelvet::verify::{self, VerifyRequest};

use crate::cli::progress::ProgressBar;
use crate::cli::receipt::ReceiptArgs;
use crate::cli::{
    policy_options, rollback_enforcement, verify_options, write_stdout, OutputFormat,
};

/// Verify a model directory against its signed manifest.
///
/// In order: the signature threshold of the trust policy over the exact manifest bytes, the
/// manifest itself, its expiry, rollback (the highest version verified before, kept in the
/// state directory), the exact file set (nothing missing, nothing extra, no links), sizes,
/// SHA-256 of every file, and the scanner on every file, enforcing each declared format.
/// Exit status: 0 verified, 1 anything refused, 2 the inputs could not be used.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet verify fixtures/demo-model --manifest manifests/demo/manifest.json \\
      --trust manifests/demo/trust.json
  modelvet verify model/ --manifest model/manifest.json --trust trust.json --format json
  modelvet verify model/ --manifest model/manifest.json --trust trust.json --format junit > modelvet.xml
  modelvet verify model/ --manifest model/manifest.json --trust trust.json \\
      --receipt receipt.json --receipt-key ci.key   # then: modelvet receipt verify")]
pub struct VerifyArgs {
    /// The model directory.
    dir: PathBuf,
    /// The manifest (JSON).
    #[arg(long)]
    manifest: PathBuf,
    /// The trust policy (which keys, how many must sign).
    #[arg(long)]
    trust: PathBuf,
    /// The DSSE envelope (default: MANIFEST.sig).
    #[arg(long)]
    signature: Option<PathBuf>,
    /// Where the highest verified version of each manifest name is kept
    /// (default: $MODELVET_STATE_DIR, $XDG_STATE_HOME/modelvet or ~/.local/state/modelvet).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Treat warnings (unknown formats) as rejections.
    #[arg(long)]
    strict: bool,
    /// UNSAFE: accept a manifest whose expiry has passed (with a warning).
    #[arg(long)]
    unsafe_allow_expired: bool,
    /// UNSAFE: skip the rollback check and do not record this version.
    #[arg(long)]
    unsafe_no_rollback_check: bool,
    /// Hashing threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[command(flatten)]
    receipt: ReceiptArgs,
    /// Judge expiry at this time instead of now (RFC 3339 UTC), for audits and tests.
    #[arg(long, hide = true)]
    current_time: Option<Timestamp>,
}

pub fn run(args: VerifyArgs, color: Color) -> anyhow::Result<u8> {
    let signature = args
        .signature
        .unwrap_or_else(|| modelvet::trust::dsse::signature_path(&args.manifest));
    let rollback = rollback_enforcement(args.unsafe_no_rollback_check, args.state)?;
    let receipt = args.receipt.writer()?;
    let request = VerifyRequest {
        dir: args.dir,
        manifest: args.manifest,
        signature,
        trust: args.trust,
    };
    let options = verify_options(
        args.current_time,
        args.unsafe_allow_expired,
        rollback,
        args.threads,
    );
    let progress = ProgressBar::new("verifying");
    let verification = verify::verify(&request, &options, &progress)?;
    drop(progress);
    let policy = policy_options(args.strict);
    let report = Report::from_verification(verification.clone(), &policy);
    if let Some(receipt) = receipt {
        let origin = Origin::here(ReceiptCommand::Verify, options.now);
        receipt.write_if_vouched(report.verdict, || {
            Receipt::for_verification(origin, &verification, report.verdict)
        })?;
    }
    write_stdout(|out| args.format.render(&report, color, out))?;
    Ok(report.exit_code())
}
