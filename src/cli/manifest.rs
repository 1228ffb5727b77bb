//! `modelvet manifest`: draft manifests from model directories.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use modelvet::manifest::time::Timestamp;
use modelvet::manifest::Annotations;
use modelvet::report::{FileEntry, Report};
use modelvet::scan::ScanOptions;
use modelvet::verify::create::{self, CreateRequest, Draft};

use crate::cli::progress::ProgressBar;
use crate::cli::{write_atomically, write_stdout};

/// Create manifests.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    #[command(subcommand)]
    command: ManifestCommand,
}

#[derive(Debug, Subcommand)]
enum ManifestCommand {
    /// Hash and scan every file of a model directory and write its (unsigned) manifest.
    ///
    /// Files are hashed in parallel; each file's format is detected by content and recorded.
    /// Pickle files, symbolic links and special files are refused with the scanner's findings
    /// (exit 1). `.git/` and the output manifest and its signature are left out.
    #[command(after_help = "Example:
  modelvet manifest create fixtures/demo-model --name demo/ct-segmenter --version 1 \\
      --expires 2030-01-01T00:00:00Z --out manifest.json
  modelvet sign manifest.json --key release.key")]
    Create {
        /// The model directory.
        dir: PathBuf,
        /// Release name (letters, digits, `._/-`).
        #[arg(long)]
        name: String,
        /// Release number; must increase with every release of the same name.
        #[arg(long)]
        version: u64,
        /// When verifiers stop accepting this release (RFC 3339 UTC).
        #[arg(long)]
        expires: Timestamp,
        /// When the release was made (RFC 3339 UTC; default: now). Must precede --expires.
        #[arg(long)]
        issued_at: Option<Timestamp>,
        /// Also record the SHA-256 of every BYTES-long piece of larger files (a power of two
        /// from 1 MiB to 1 GiB).
        #[arg(long, value_name = "BYTES")]
        chunk_size: Option<u64>,
        #[arg(long)]
        license: Option<String>,
        #[arg(long)]
        source_repository: Option<String>,
        #[arg(long)]
        source_revision: Option<String>,
        #[arg(long)]
        intended_use: Option<String>,
        /// Where `fetch` finds each file: PREFIX + the file's path (a URL, `hf://ORG/REPO@COMMIT/`,
        /// or a path relative to the manifest). Repeat for mirrors, tried in order.
        #[arg(long = "source-prefix", value_name = "PREFIX")]
        source_prefixes: Vec<String>,
        /// Pin a processing plugin: NAME=PATH, where PATH is a wasm file of the directory
        /// (`modelvet run --manifest ... --plugin NAME` runs it). Repeat for several.
        #[arg(long = "plugin", value_name = "NAME=PATH", value_parser = parse_plugin)]
        plugins: Vec<modelvet::manifest::PluginEntry>,
        /// Where to write the manifest.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, hide = true)]
        current_time: Option<Timestamp>,
    },
    /// Draft a manifest from a Hugging Face repository at a full commit hash.
    ///
    /// LFS files are recorded from the hub's tree listing (size and SHA-256, not downloaded);
    /// small files are downloaded, hashed and scanned. Pickle files are listed as policy
    /// violations and left out (exit 1). Each file's source is `hf://ORG/REPO@COMMIT/PATH`.
    /// Uses $HF_ENDPOINT and $HF_TOKEN. The draft is unsigned: review it, then sign it.
    #[command(
        name = "import-hf",
        after_help = "Example:
  modelvet manifest import-hf org/ct-model@3f1c0e0d9a8b7c6d5e4f30211a2b3c4d5e6f7081 --out manifest.json"
    )]
    ImportHf {
        /// ORG/REPO@COMMIT (a full 40-character commit hash).
        repo: modelvet::fetch::hub::HubRef,
        /// Release name (default: ORG/REPO).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value_t = 1)]
        version: u64,
        /// When verifiers stop accepting this release (default: one year from now).
        #[arg(long)]
        expires: Option<Timestamp>,
        /// Trust this CA certificate (PEM) for the hub endpoint.
        #[arg(long = "ca-cert", value_name = "PEM")]
        ca_certs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, hide = true)]
        current_time: Option<Timestamp>,
    },
}

pub fn run(args: ManifestArgs) -> anyhow::Result<u8> {
    match args.command {
        ManifestCommand::ImportHf {
            repo,
            name,
            version,
            expires,
            ca_certs,
            out,
            current_time,
        } => import_hf(repo, name, version, expires, ca_certs, &out, current_time),
        ManifestCommand::Create {
            dir,
            name,
            version,
            expires,
            issued_at,
            chunk_size,
            license,
            source_repository,
            source_revision,
            intended_use,
            source_prefixes,
            plugins,
            out,
            current_time,
        } => create(CreateOptions {
            dir,
            name,
            version,
            expires,
            issued_at,
            chunk_size,
            annotations: Annotations {
                license,
                source_repository,
                source_revision,
                intended_use,
            },
            source_prefixes,
            plugins,
            out,
            current_time,
        }),
    }
}

fn parse_plugin(text: &str) -> Result<modelvet::manifest::PluginEntry, String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=PATH"))?;
    Ok(modelvet::manifest::PluginEntry {
        name: name.to_owned(),
        path: path.to_owned(),
        timeout_ms: None,
        memory_mb: None,
        fuel: None,
    })
}

struct CreateOptions {
    dir: PathBuf,
    name: String,
    version: u64,
    expires: Timestamp,
    issued_at: Option<Timestamp>,
    chunk_size: Option<u64>,
    annotations: Annotations,
    source_prefixes: Vec<String>,
    plugins: Vec<modelvet::manifest::PluginEntry>,
    out: PathBuf,
    current_time: Option<Timestamp>,
}

fn create(options: CreateOptions) -> anyhow::Result<u8> {
    let CreateOptions {
        dir,
        name,
        version,
        expires,
        issued_at,
        chunk_size,
        annotations,
        source_prefixes,
        plugins,
        out,
        current_time,
    } = options;
    let signature = modelvet::trust::dsse::signature_path(&out);
    let issued_at = issued_at.unwrap_or_else(|| current_time.unwrap_or_else(Timestamp::now));
    anyhow::ensure!(
        issued_at < expires,
        "--expires {expires} is not after the issue time {issued_at} (set --issued-at to publish an already expired release on purpose)"
    );
    if let Some(chunk_size) = chunk_size {
        anyhow::ensure!(
            chunk_size.is_power_of_two()
                && (modelvet::manifest::MIN_CHUNK_SIZE..=modelvet::manifest::MAX_CHUNK_SIZE)
                    .contains(&chunk_size),
            "--chunk-size {chunk_size} must be a power of two from {} to {} bytes",
            modelvet::manifest::MIN_CHUNK_SIZE,
            modelvet::manifest::MAX_CHUNK_SIZE
        );
    }
    let request = CreateRequest {
        dir,
        name,
        version,
        issued_at,
        expires,
        chunk_size,
        annotations,
        exclude: vec![out.clone(), signature.clone()],
        source_prefixes,
        plugins,
        threads: 0,
    };
    let progress = ProgressBar::new("hashing");
    let draft = create::create(&request, &ScanOptions::default(), &progress)?;
    drop(progress);
    match draft {
        Draft::Created(manifest) => {
            let bytes = manifest.to_json();
            write_atomically(&out, &bytes)?;
            // Signatures over an earlier manifest at this path no longer sign anything here.
            let stale = modelvet::trust::dsse::Envelope::read(&signature)
                .is_ok_and(|envelope| envelope.payload != bytes);
            if stale {
                std::fs::remove_file(&signature)?;
                eprintln_note(&format!(
                    "removed `{}`: it signed the previous manifest",
                    signature.display()
                ));
            }
            write_stdout(|stdout| {
                writeln!(
                    stdout,
                    "wrote `{}`: {} files of `{}` version {}",
                    out.display(),
                    manifest.files.len(),
                    manifest.name,
                    manifest.version
                )
            })?;
            Ok(0)
        }
        Draft::Refused(files) => {
            let entries = files
                .into_iter()
                .map(|(path, findings)| FileEntry::rejected(path, findings))
                .collect();
            let report = Report::new("manifest-create", entries);
            write_stdout(|stdout| {
                modelvet::report::human::render(
                    &report,
                    modelvet::report::human::Color::Never,
                    stdout,
                )?;
                writeln!(
                    stdout,
                    "no manifest written: the files above cannot be published"
                )
            })?;
            Ok(1)
        }
    }
}

fn eprintln_note(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "note: {text}");
}

fn import_hf(
    repo: modelvet::fetch::hub::HubRef,
    name: Option<String>,
    version: u64,
    expires: Option<Timestamp>,
    ca_certs: Vec<PathBuf>,
    out: &std::path::Path,
    current_time: Option<Timestamp>,
) -> anyhow::Result<u8> {
    use modelvet::fetch::hub::{self, ImportRequest};
    use modelvet::fetch::source::HubConfig;
    use modelvet::fetch::transfer::{Client, TransferOptions};

    let now = current_time.unwrap_or_else(Timestamp::now);
    let client = Client::new(&TransferOptions {
        ca_certs,
        ..TransferOptions::default()
    })?;
    let hub_config = HubConfig::from_env().map_err(anyhow::Error::msg)?;
    let request = ImportRequest {
        name: name.unwrap_or_else(|| repo.repo.clone()),
        hub_ref: repo,
        version,
        issued_at: now,
        expires: expires.unwrap_or_else(|| now.plus_seconds(365 * 86_400)),
    };
    let import = hub::import(&client, &hub_config, &request, &ScanOptions::default())
        .map_err(|reason| anyhow::anyhow!("could not import from the hub: {reason}"))?;
    let violations = !import.violations.is_empty();
    if let Some(manifest) = &import.manifest {
        write_atomically(out, &manifest.to_json())?;
    }
    let entries = import
        .violations
        .into_iter()
        .map(|(path, findings)| FileEntry::rejected(path, findings))
        .collect();
    let report = Report::new("manifest-import-hf", entries);
    write_stdout(|stdout| {
        if violations {
            modelvet::report::human::render(
                &report,
                modelvet::report::human::Color::Never,
                stdout,
            )?;
        }
        match &import.manifest {
            Some(manifest) => writeln!(
                stdout,
                "wrote draft `{}`: {} files of `{}` (unsigned: review, then `modelvet sign`)",
                out.display(),
                manifest.files.len(),
                manifest.name
            ),
            None => writeln!(
                stdout,
                "no draft written: no file of the repository can be published"
            ),
        }
    })?;
    Ok(if violations || import.manifest.is_none() {
        1
    } else {
        0
    })
}
