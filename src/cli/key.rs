//! `modelvet key`: make signing keys.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use modelvet::trust::keys;

use crate::cli::write_stdout;

/// Manage ed25519 signing keys.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).
    ///
    /// Keys made by `openssl genpkey -algorithm ed25519` work the same way. Existing files are
    /// never overwritten. The key id printed is the SHA-256 of the public key's SPKI DER.
    #[command(
        after_help = "Examples:\n  modelvet key generate --out keys/release-2026\n  modelvet key generate --out snakeoil && modelvet trust init --key snakeoil.pub --out trust.json"
    )]
    Generate {
        /// Path prefix of the two files to write.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
}

pub fn run(args: KeyArgs) -> anyhow::Result<u8> {
    match args.command {
        KeyCommand::Generate { out } => {
            let key_id = keys::write_key_pair(&out)?;
            write_stdout(|stdout| writeln!(stdout, "{key_id}"))?;
            Ok(0)
        }
    }
}
