//! `modelvet trust`: the operator's trust policy (which keys, how many must sign).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use modelvet::manifest::time::Timestamp;
use modelvet::policy::PolicyOptions;
use modelvet::report::Report;
use modelvet::trust::dsse::Envelope;
use modelvet::trust::keys;
use modelvet::trust::policy::{check_rotation, TrustPolicy, TrustedKey};

use crate::cli::{write_atomically, write_stdout};

/// Manage the trust policy: the keys you trust and how many of them must sign.
#[derive(Debug, Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Create a trust policy from public keys and a threshold.
    #[command(after_help = "Examples:
  modelvet trust init --key alice.pub --key bob.pub --threshold 2 --out trust.json
  modelvet trust init --key alice.pub --expires alice.pub=2027-12-31T00:00:00Z --out trust.json")]
    Init {
        /// A trusted public key (SPKI PEM, raw base64/hex, ssh-ed25519 line or minisign).
        #[arg(long = "key", value_name = "PUBLIC_KEY", required = true)]
        keys: Vec<PathBuf>,
        /// Distinct keys whose signatures a manifest needs.
        #[arg(long, default_value_t = 1)]
        threshold: u32,
        /// `KEYFILE=TIME`: stop trusting that key at TIME (RFC 3339 UTC).
        #[arg(long = "expires", value_name = "KEYFILE=TIME")]
        expiries: Vec<String>,
        /// Policy version; a replacement must have a higher one.
        #[arg(long, default_value_t = 1)]
        version: u64,
        /// Where to write the policy.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing policy at --out (rotation is `trust update`, which checks
        /// that the old keys agree).
        #[arg(long)]
        force: bool,
    },
    /// Replace the current policy with a new one signed by a threshold of the current keys.
    #[command(after_help = "Examples (rotation):
  modelvet trust init --key bob.pub --key carol.pub --threshold 2 --version 2 --out trust.new.json
  modelvet sign trust.new.json --key alice.key && modelvet sign trust.new.json --key bob.key
  modelvet trust update --current trust.json --new trust.new.json")]
    Update {
        /// The policy in force.
        #[arg(long)]
        current: PathBuf,
        /// The proposed policy.
        #[arg(long)]
        new: PathBuf,
        /// Its DSSE envelope (default: NEW.sig).
        #[arg(long)]
        signature: Option<PathBuf>,
        #[arg(long, hide = true)]
        current_time: Option<Timestamp>,
    },
}

pub fn run(args: TrustArgs) -> anyhow::Result<u8> {
    match args.command {
        TrustCommand::Init {
            keys: key_paths,
            threshold,
            expiries,
            version,
            out,
            force,
        } => {
            let mut trusted = Vec::new();
            for path in &key_paths {
                let key = keys::read_public_key(path)?;
                trusted.push(TrustedKey {
                    key_id: key.key_id(),
                    key,
                    name: path
                        .file_stem()
                        .map(|stem| stem.to_string_lossy().into_owned()),
                    expires: expiry_for(path, &expiries)?,
                });
            }
            for expiry in &expiries {
                let (file, _) = expiry.split_once('=').unwrap_or((expiry, ""));
                anyhow::ensure!(
                    key_paths.iter().any(|path| path == Path::new(file)),
                    "--expires names `{file}`, which is not one of the --key files"
                );
            }
            let policy = TrustPolicy::new(trusted, threshold, version)?;
            if force {
                write_atomically(&out, &policy.to_json())?;
            } else {
                write_new_file(&out, &policy.to_json())?;
            }
            write_stdout(|stdout| {
                writeln!(
                    stdout,
                    "wrote `{}`: {} keys, threshold {threshold}, version {version}",
                    out.display(),
                    policy.keys.len()
                )
            })?;
            Ok(0)
        }
        TrustCommand::Update {
            current,
            new,
            signature,
            current_time,
        } => {
            let read = |path: &Path| {
                std::fs::read(path).with_context(|| format!("could not read `{}`", path.display()))
            };
            let current_policy = TrustPolicy::parse(&read(&current)?).with_context(|| {
                format!("current trust policy `{}` is not usable", current.display())
            })?;
            let new_bytes = read(&new)?;
            let signature = signature.unwrap_or_else(|| sig_path(&new));
            let envelope = Envelope::parse(&read(&signature)?)
                .with_context(|| format!("`{}` is not a DSSE envelope", signature.display()))?;
            let now = current_time.unwrap_or_else(Timestamp::now);
            let (_, check) = check_rotation(&current_policy, &new_bytes, &envelope, now)?;
            if !check.met() {
                let mut report = Report::new("trust-update", Vec::new());
                report.add_run_findings(check.findings, &PolicyOptions::default());
                write_stdout(|out| {
                    modelvet::report::human::render(
                        &report,
                        modelvet::report::human::Color::Never,
                        out,
                    )
                })?;
                return Ok(1);
            }
            write_atomically(&current, &new_bytes)?;
            write_stdout(|out| {
                writeln!(
                    out,
                    "`{}` now holds the policy of `{}`",
                    current.display(),
                    new.display()
                )
            })?;
            Ok(0)
        }
    }
}

fn expiry_for(path: &Path, expiries: &[String]) -> anyhow::Result<Option<Timestamp>> {
    for expiry in expiries {
        let Some((file, time)) = expiry.split_once('=') else {
            anyhow::bail!("--expires takes KEYFILE=TIME, got `{expiry}`");
        };
        if Path::new(file) == path {
            return Ok(Some(time.parse()?));
        }
    }
    Ok(None)
}

fn sig_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

fn write_new_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !path.exists(),
        "`{}` already exists; choose another --out, pass --force, or rotate keys with `modelvet trust update`",
        path.display()
    );
    write_atomically(path, bytes)
}
