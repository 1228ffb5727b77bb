//! `modelvet fetch`: download a signed model so that nothing unverified ever lands.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use modelvet::fetch::cache::default_cache_dir;
use modelvet::fetch::place::RetryPolicy;
use modelvet::fetch::source::{HttpPolicy, HubConfig};
use modelvet::fetch::transfer::TransferOptions;
use modelvet::fetch::{self, FetchOptions, FetchRequest, NetworkPolicy};
use modelvet::manifest::time::Timestamp;
use modelvet::receipt::{Origin, Receipt, ReceiptCommand};
use modelvet::report::{human::Color, Report};

use crate::cli::progress::ProgressBar;
use crate::cli::receipt::ReceiptArgs;
use crate::cli::{
    policy_options, rollback_enforcement, verify_options, write_stdout, OutputFormat,
};

/// Download a signed model: nothing unverified ever lands at a final path.
///
/// The manifest and its signature (paths or URLs) are authenticated exactly as `verify` does
/// before any model byte is requested. Each file then comes from the destination (if already
/// intact), the cache, or its sources in order (mirrors): https://, http:// to loopback only,
/// file://, paths relative to the manifest, and hf://ORG/REPO@COMMIT/PATH (via $HF_ENDPOINT,
/// with $HF_TOKEN sent to that host only). Bytes are hashed as they stream into
/// DEST/.modelvet-partial/, cut off past the signed size, scanned, and renamed into place only
/// when they match. Interrupted downloads resume with range requests.
/// Exit status: 0 every file placed and accepted, 1 anything refused or not fetched, 2 the
/// inputs could not be used.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet fetch manifests/demo/manifest.json --trust manifests/demo/trust.json --dest /tmp/demo
  modelvet fetch https://models.example/ct/manifest.json --trust trust.json --dest model/ --format json
  modelvet fetch manifest.json --trust trust.json --dest model/ --receipt fetch-receipt.json --receipt-key ci.key")]
pub struct FetchArgs {
    /// The manifest: a path or an http(s):// or file:// URL.
    manifest: String,
    /// The trust policy (which keys, how many must sign).
    #[arg(long)]
    trust: PathBuf,
    /// Where the model's files go.
    #[arg(long)]
    dest: PathBuf,
    /// The DSSE envelope (path or URL; default: MANIFEST.sig).
    #[arg(long)]
    signature: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Rollback state directory (as for `verify`).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Content-addressed cache (default: $MODELVET_CACHE, $XDG_CACHE_HOME/modelvet or
    /// ~/.cache/modelvet).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache: Option<PathBuf>,
    /// Do not use or fill the cache.
    #[arg(long)]
    no_cache: bool,
    /// Use only the cache and local files (also when HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    /// Trust this CA certificate (PEM) for https sources, in addition to the built-in roots.
    #[arg(long = "ca-cert", value_name = "PEM")]
    ca_certs: Vec<PathBuf>,
    /// Retries per source for transient failures (dropped connections, 5xx, 429).
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// Seconds to wait for the next bytes of a response.
    #[arg(long, default_value_t = 30)]
    read_timeout: u64,
    /// Files downloaded at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Parallel range requests per file, for files whose manifest entry has chunk digests.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Treat warnings as rejections.
    #[arg(long)]
    strict: bool,
    /// UNSAFE: allow plain http:// to hosts other than loopback.
    #[arg(long)]
    unsafe_allow_http: bool,
    /// UNSAFE: accept a manifest whose expiry has passed (with a warning).
    #[arg(long)]
    unsafe_allow_expired: bool,
    /// UNSAFE: skip the rollback check and do not record this version.
    #[arg(long)]
    unsafe_no_rollback_check: bool,
    #[command(flatten)]
    receipt: ReceiptArgs,
    #[arg(long, hide = true)]
    current_time: Option<Timestamp>,
}

pub fn run(args: FetchArgs, color: Color) -> anyhow::Result<u8> {
    let rollback = rollback_enforcement(args.unsafe_no_rollback_check, args.state)?;
    let receipt = args.receipt.writer()?;
    let offline = args.offline || std::env::var("HF_HUB_OFFLINE").is_ok_and(|value| value == "1");
    let cache = if args.no_cache {
        None
    } else {
        Some(args.cache.or_else(default_cache_dir).context(
            "no cache directory: pass --cache DIR or --no-cache (or set MODELVET_CACHE)",
        )?)
    };
    let options = FetchOptions {
        verify: verify_options(args.current_time, args.unsafe_allow_expired, rollback, 0),
        transfer: TransferOptions {
            connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
            read_timeout: Duration::from_secs(args.read_timeout.max(1)),
            http: if args.unsafe_allow_http {
                HttpPolicy::UnsafeAllowAnyHost
            } else {
                HttpPolicy::LoopbackOnly
            },
            ca_certs: args.ca_certs,
            ..TransferOptions::default()
        },
        retry: RetryPolicy {
            retries: args.retries,
            ..RetryPolicy::default()
        },
        network: if offline {
            NetworkPolicy::Offline
        } else {
            NetworkPolicy::Online
        },
        cache,
        hub: HubConfig::from_env().map_err(anyhow::Error::msg)?,
        jobs: args.jobs,
        range_connections: args.connections,
    };
    let request = FetchRequest {
        manifest: args.manifest,
        signature: args.signature,
        trust: args.trust,
        dest: args.dest,
    };
    let progress = ProgressBar::new("fetching");
    let verification = fetch::fetch(&request, &options, &progress)?;
    drop(progress);
    let policy = policy_options(args.strict);
    let mut report = Report::from_verification(verification.clone(), &policy);
    report.command = "fetch";
    if let Some(receipt) = receipt {
        let origin = Origin::here(ReceiptCommand::Fetch, options.verify.now);
        receipt.write_if_vouched(report.verdict, || {
            Receipt::for_verification(origin, &verification, report.verdict)
        })?;
    }
    write_stdout(|out| args.format.render(&report, color, out))?;
    Ok(report.exit_code())
}
