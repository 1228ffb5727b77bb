//! `--receipt FILE [--receipt-key KEY]` of `verify`, `fetch` and `run`, and `modelvet receipt
//! verify`: write, sign and check provenance receipts (`modelvet::receipt`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use modelvet::manifest::time::Timestamp;
use modelvet::policy::Verdict;
use modelvet::receipt::{self, CheckRequest, Receipt, ReceiptError};
use modelvet::report::{human::Color, Report};
use modelvet::trust::dsse::{self, Envelope, RECEIPT_PAYLOAD_TYPE};
use modelvet::trust::keys::{self, SecretKey};

use crate::cli::progress::ProgressBar;
use crate::cli::{eprintln_warning, policy_options, write_atomically, write_stdout, OutputFormat};

/// The receipt options shared by `verify`, `fetch` and `run`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// Write a provenance receipt (JSON, `modelvet.receipt/v1`) to FILE: which manifest bytes,
    /// signers, files and plugins produced this result. Written only when the verdict is
    /// accept or warn: a receipt vouches for a good result.
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// Sign the receipt with this secret key (PKCS#8 PEM) into FILE.sig (DSSE, as manifests).
    #[arg(long, value_name = "KEY", requires = "receipt")]
    receipt_key: Option<PathBuf>,
}

/// Where a receipt goes and the key that signs it, read before the command does any work.
pub struct ReceiptWriter {
    path: PathBuf,
    key: Option<SecretKey>,
}

impl ReceiptArgs {
    /// `None` when no receipt was asked for; reads the key now, so that a bad key stops the
    /// command before it starts.
    pub fn writer(&self) -> anyhow::Result<Option<ReceiptWriter>> {
        let Some(path) = &self.receipt else {
            return Ok(None);
        };
        let key = match &self.receipt_key {
            Some(key) => Some(keys::read_secret_key(key)?),
            None => None,
        };
        Ok(Some(ReceiptWriter {
            path: path.clone(),
            key,
        }))
    }
}

impl ReceiptWriter {
    /// Writes the receipt that `make` builds when `verdict` is one a receipt vouches for; says
    /// on stderr that none was written otherwise.
    pub fn write_if_vouched(
        &self,
        verdict: Verdict,
        make: impl FnOnce() -> Result<Receipt, ReceiptError>,
    ) -> anyhow::Result<()> {
        if !matches!(verdict, Verdict::Accept | Verdict::Warn) {
            eprintln_warning(&format!(
                "no receipt written to `{}`: the verdict is {}",
                self.path.display(),
                verdict.as_str()
            ));
            return Ok(());
        }
        let bytes = make()?.to_json()?;
        let signature = dsse::signature_path(&self.path);
        match &self.key {
            Some(key) => {
                let mut envelope = Envelope::new(RECEIPT_PAYLOAD_TYPE, bytes.clone());
                envelope.sign(key);
                write_atomically(&self.path, &bytes)?;
                write_atomically(&signature, &envelope.to_json())?;
            }
            None => {
                write_atomically(&self.path, &bytes)?;
                // An envelope left from an earlier receipt at this path would not match it.
                let _ = std::fs::remove_file(&signature);
            }
        }
        Ok(())
    }
}

/// Provenance receipts: check one written by `verify`, `fetch` or `run --receipt`.
#[derive(Debug, Args)]
pub struct ReceiptCommandArgs {
    #[command(subcommand)]
    command: ReceiptCommand,
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    Verify(VerifyReceiptArgs),
}

/// Check a receipt: its signatures against a trust policy, then its content.
///
/// In order: the trust policy's signature threshold over the receipt's exact bytes (FILE.sig,
/// payload type application/vnd.modelvet.receipt.v1+json), the receipt itself (strictly:
/// schema `modelvet.receipt/v1`, no unknown fields), and when asked, that --manifest is the
/// manifest it records (SHA-256) and that the files it lists are still under --dir with the
/// recorded sizes and digests. A receipt proves only that a holder of a trusted key vouched
/// for its content. Exit status: 0 checked, 1 anything refused, 2 the inputs could not be used.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet verify model/ --manifest model/manifest.json --trust trust.json \\
      --receipt receipt.json --receipt-key ci.key
  modelvet receipt verify receipt.json --trust receipts-trust.json
  modelvet receipt verify receipt.json --trust receipts-trust.json \\
      --manifest model/manifest.json --dir model/ --format json")]
pub struct VerifyReceiptArgs {
    /// The receipt (JSON).
    receipt: PathBuf,
    /// The trust policy for receipt signers (which keys, how many must sign).
    #[arg(long)]
    trust: PathBuf,
    /// The DSSE envelope (default: RECEIPT.sig).
    #[arg(long)]
    signature: Option<PathBuf>,
    /// Also check that this manifest file is the one the receipt records.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Also re-hash the receipt's files under this model directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Hashing threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Judge signing keys' expiry at this time instead of now (RFC 3339 UTC).
    #[arg(long, hide = true)]
    current_time: Option<Timestamp>,
}

pub fn run(args: ReceiptCommandArgs, color: Color) -> anyhow::Result<u8> {
    let ReceiptCommand::Verify(args) = args.command;
    let request = CheckRequest {
        signature: args
            .signature
            .unwrap_or_else(|| dsse::signature_path(&args.receipt)),
        receipt: args.receipt,
        trust: args.trust,
        manifest: args.manifest,
        dir: args.dir,
    };
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let progress = ProgressBar::new("re-hashing");
    let checked = receipt::check(
        &request,
        args.current_time.unwrap_or_else(Timestamp::now),
        threads,
        &progress,
    )?;
    drop(progress);
    let mut report = Report::from_verification(checked.verification, &policy_options(false));
    report.command = "receipt";
    write_stdout(|out| args.format.render(&report, color, out))?;
    Ok(report.exit_code())
}
