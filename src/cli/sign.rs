//! `modelvet sign`: add a signature to a manifest's (or trust policy's) DSSE envelope.

use std::path::PathBuf;

use clap::Args;

use modelvet::trust::{dsse, keys};

use crate::cli::write_stdout;

/// Sign a manifest (or a new trust policy) with a secret key.
///
/// Writes or extends FILE.sig, a DSSE envelope whose signatures cover the exact bytes of FILE.
/// Several signers sign the same file in turn; signing again with the same key replaces that
/// key's signature. A trust policy (`"schema": "modelvet.trust/v1"`) is signed as one, so
/// that it can replace the current policy with `modelvet trust update`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet sign manifest.json --key alice.key
  modelvet sign manifest.json --key bob.key      # second signature, same envelope")]
pub struct SignArgs {
    /// The manifest or trust policy to sign.
    file: PathBuf,

    /// The secret key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
}

pub fn run(args: SignArgs) -> anyhow::Result<u8> {
    let key = keys::read_secret_key(&args.key)?;
    let bytes = std::fs::read(&args.file)
        .map_err(|error| anyhow::anyhow!("could not read `{}`: {error}", args.file.display()))?;
    let payload_type = if is_trust_policy(&bytes) {
        dsse::TRUST_PAYLOAD_TYPE
    } else {
        dsse::MANIFEST_PAYLOAD_TYPE
    };
    let signature = dsse::sign_file(&args.file, &key, payload_type)?;
    let key_id = key.public_key().key_id();
    write_stdout(|out| {
        writeln!(
            out,
            "signed `{}` with key {key_id} into `{}`",
            args.file.display(),
            signature.display()
        )
    })?;
    Ok(0)
}

fn is_trust_policy(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: String,
    }
    serde_json::from_slice::<Schema>(bytes).is_ok_and(|doc| doc.schema == "modelvet.trust/v1")
}
