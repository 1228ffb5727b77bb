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
    #[command(after_help = "Examples:
  modelvet manifest create fixtures/demo-model --name demo/ct-segmenter --version 1 \\
      --expires 2030-01-01T00:00:00Z --out manifest.json
  modelvet sign manifest.json --key release.key")]
    Create {
        /// The model directory.
        dir: PathBuf,
        #[command(flatten)]
        draft: DraftArgs,
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
        /// (`modelvet run --manifest ... --plugin NAME` runs it), optionally with the limits it
        /// needs: NAME=PATH,timeout_ms=N,memory_mb=N,fuel=N. Repeat for several.
        #[arg(long = "plugin", value_name = "NAME=PATH[,LIMIT=N]", value_parser = parse_plugin)]
        plugins: Vec<modelvet::manifest::PluginEntry>,
    },
    /// Draft a manifest from a Hugging Face repository at a full commit hash.
    ///
    /// LFS files are recorded from the hub's tree listing (size and SHA-256, not downloaded);
    /// small files are downloaded, hashed and scanned. Pickle files are listed as policy
    /// violations and left out (exit 1). Each file's source is `hf://ORG/REPO@COMMIT/PATH`.
    /// Uses $HF_ENDPOINT and $HF_TOKEN. The draft is unsigned: review it, then sign it.
    #[command(
        name = "import-hf",
        after_help = "Examples:
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
    /// Draft a manifest from a `sha256sum` listing and the files it names.
    ///
    /// Reads GNU coreutils output (`HEX  NAME`, `HEX *NAME`, escaped names) and the BSD tag form
    /// (`SHA256 (NAME) = HEX`). Every listed file must be under DIR (default: the listing's
    /// directory); each is hashed, compared with its listed SHA-256 and scanned like `manifest
    /// create`. Missing or differing files and pickles are reported and left out (exit 1).
    /// The draft is unsigned: review it, then sign it.
    #[command(
        name = "import-sha256sums",
        after_help = "Examples:
  cd fixtures/demo-model && sha256sum config.json model.safetensors > SHA256SUMS && cd -
  modelvet manifest import-sha256sums fixtures/demo-model/SHA256SUMS --name demo/ct-segmenter \\
      --version 1 --expires 2030-01-01T00:00:00Z --out manifest.json"
    )]
    ImportSha256sums {
        /// The listing, as `sha256sum` writes it.
        sums: PathBuf,
        /// The directory the listed paths are relative to (default: the listing's directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        draft: DraftArgs,
    },
    /// Draft a manifest of a MONAI bundle directory and its `large_files` list.
    ///
    /// Reads `large_files.yml`, `.yaml` or `.json` in the bundle root. Every file of the bundle
    /// is hashed and scanned like `manifest create`; listed files that are absent are
    /// downloaded from their url only with --download, and checked against the listed
    /// md5/sha1/sha256/sha512. An md5 or sha1 (or no hash) cannot vouch for the bytes: such
    /// files get a `hash-unverifiable` warning. `.pt`, `.pth` and `.ts` checkpoints and pickles
    /// are policy violations and left out (exit 1). The draft is unsigned.
    #[command(
        name = "import-monai",
        after_help = "Examples:
  modelvet manifest import-monai spleen_ct_segmentation --name monai/spleen --version 1 \\
      --expires 2030-01-01T00:00:00Z --out spleen.manifest.json
  modelvet manifest import-monai spleen_ct_segmentation --download --name monai/spleen \\
      --version 1 --expires 2030-01-01T00:00:00Z --out spleen.manifest.json"
    )]
    ImportMonai {
        /// The bundle directory (holding configs/ and large_files.yml).
        bundle: PathBuf,
        /// Download listed files that are absent from their url (HTTPS, or HTTP to loopback).
        #[arg(long)]
        download: bool,
        #[command(flatten)]
        draft: DraftArgs,
    },
    /// Write a manifest's files in another tool's format.
    ///
    /// With --sha256sums: lines `sha256sum -c` checks, names escaped the coreutils way. The
    /// manifest is parsed strictly but its signature is not checked: verify it first.
    #[command(after_help = "Examples:
  modelvet manifest export manifests/demo/manifest.json --sha256sums
  modelvet manifest export manifests/demo/manifest.json --sha256sums --out SHA256SUMS")]
    Export {
        /// The manifest.
        manifest: PathBuf,
        /// Write `sha256sum -c` lines (the only format for now).
        #[arg(long, required = true)]
        sha256sums: bool,
        /// Where to write (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What the publisher says about a release, and where its (unsigned) manifest goes.
#[derive(Debug, Args)]
struct DraftArgs {
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
    /// Where to write the manifest.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, hide = true)]
    current_time: Option<Timestamp>,
}

impl DraftArgs {
    fn header(&self) -> anyhow::Result<modelvet::import::DraftHeader> {
        let issued_at = self
            .issued_at
            .unwrap_or_else(|| self.current_time.unwrap_or_else(Timestamp::now));
        anyhow::ensure!(
            issued_at < self.expires,
            "--expires {} is not after the issue time {issued_at} (set --issued-at to publish an already expired release on purpose)",
            self.expires
        );
        Ok(modelvet::import::DraftHeader {
            name: self.name.clone(),
            version: self.version,
            issued_at,
            expires: self.expires,
        })
    }
}

pub fn run(args: ManifestArgs) -> anyhow::Result<u8> {
    match args.command {
        ManifestCommand::ImportSha256sums { sums, dir, draft } => {
            import_sha256sums(sums, dir, &draft)
        }
        ManifestCommand::ImportMonai {
            bundle,
            download,
            draft,
        } => import_monai(bundle, download, &draft),
        ManifestCommand::Export {
            manifest,
            sha256sums: _,
            out,
        } => export(&manifest, out.as_deref()),
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
            draft,
            chunk_size,
            license,
            source_repository,
            source_revision,
            intended_use,
            source_prefixes,
            plugins,
        } => create(CreateOptions {
            dir,
            draft,
            chunk_size,
            annotations: Annotations {
                license,
                source_repository,
                source_revision,
                intended_use,
            },
            source_prefixes,
            plugins,
        }),
    }
}

fn parse_plugin(text: &str) -> Result<modelvet::manifest::PluginEntry, String> {
    let mut parts = text.split(',');
    let (name, path) = parts
        .next()
        .and_then(|first| first.split_once('='))
        .ok_or_else(|| {
            format!("`{text}` is not NAME=PATH[,timeout_ms=N][,memory_mb=N][,fuel=N]")
        })?;
    let mut entry = modelvet::manifest::PluginEntry {
        name: name.to_owned(),
        path: path.to_owned(),
        timeout_ms: None,
        memory_mb: None,
        fuel: None,
    };
    for limit in parts {
        let (key, value) = limit
            .split_once('=')
            .ok_or_else(|| format!("`{limit}` is not LIMIT=N"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("`{value}` is not a whole number"))?;
        match key {
            "timeout_ms" => entry.timeout_ms = Some(value),
            "memory_mb" => entry.memory_mb = Some(value),
            "fuel" => entry.fuel = Some(value),
            _ => {
                return Err(format!(
                    "unknown plugin limit `{key}` (timeout_ms, memory_mb, fuel)"
                ))
            }
        }
    }
    Ok(entry)
}

struct CreateOptions {
    dir: PathBuf,
    draft: DraftArgs,
    chunk_size: Option<u64>,
    annotations: Annotations,
    source_prefixes: Vec<String>,
    plugins: Vec<modelvet::manifest::PluginEntry>,
}

fn create(options: CreateOptions) -> anyhow::Result<u8> {
    let CreateOptions {
        dir,
        draft,
        chunk_size,
        annotations,
        source_prefixes,
        plugins,
    } = options;
    let header = draft.header()?;
    let out = draft.out;
    let signature = modelvet::trust::dsse::signature_path(&out);
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
        name: header.name,
        version: header.version,
        issued_at: header.issued_at,
        expires: header.expires,
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
    report_import(
        "manifest-import-hf",
        import,
        out,
        "no file of the repository",
    )
}

fn import_sha256sums(sums: PathBuf, dir: Option<PathBuf>, draft: &DraftArgs) -> anyhow::Result<u8> {
    use modelvet::import::sha256sums::{self, SumsRequest};
    let dir = dir.unwrap_or_else(|| match sums.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    });
    let request = SumsRequest {
        sums,
        dir,
        header: draft.header()?,
    };
    let progress = ProgressBar::new("hashing");
    let import = sha256sums::import(&request, &ScanOptions::default(), &progress)?;
    drop(progress);
    report_import(
        "manifest-import-sha256sums",
        import,
        &draft.out,
        "no listed file",
    )
}

fn import_monai(bundle: PathBuf, download: bool, draft: &DraftArgs) -> anyhow::Result<u8> {
    use modelvet::fetch::transfer::{Client, TransferOptions};
    use modelvet::import::monai::{self, MonaiRequest};
    let client = if download {
        Some(Client::new(&TransferOptions::default())?)
    } else {
        None
    };
    let request = MonaiRequest {
        bundle,
        header: draft.header()?,
        exclude: vec![
            draft.out.clone(),
            modelvet::trust::dsse::signature_path(&draft.out),
        ],
    };
    let progress = ProgressBar::new("hashing");
    let import = monai::import(
        &request,
        client.as_ref(),
        &ScanOptions::default(),
        &progress,
    )?;
    drop(progress);
    report_import(
        "manifest-import-monai",
        import,
        &draft.out,
        "no file of the bundle",
    )
}

fn export(manifest: &std::path::Path, out: Option<&std::path::Path>) -> anyhow::Result<u8> {
    use anyhow::Context;
    let bytes = std::fs::read(manifest)
        .with_context(|| format!("could not read `{}`", manifest.display()))?;
    let parsed = modelvet::manifest::Manifest::parse(&bytes)
        .with_context(|| format!("`{}` is not a valid manifest", manifest.display()))?;
    let lines = modelvet::import::sha256sums::export(&parsed);
    match out {
        Some(out) => write_atomically(out, lines.as_bytes())?,
        None => write_stdout(|stdout| stdout.write_all(lines.as_bytes()))?,
    }
    Ok(0)
}

/// Writes an import's draft and reports what was left out (and what a reviewer should read);
/// exit 1 when anything was left out or nothing could be kept.
fn report_import(
    command: &'static str,
    import: modelvet::import::Import,
    out: &std::path::Path,
    nothing_kept: &str,
) -> anyhow::Result<u8> {
    if let Some(manifest) = &import.manifest {
        write_atomically(out, &manifest.to_json())?;
    }
    let failed = !import.violations.is_empty() || import.manifest.is_none();
    let mut entries: Vec<FileEntry> = import
        .violations
        .into_iter()
        .map(|(path, findings)| FileEntry::rejected(path, findings))
        .collect();
    entries.extend(
        import
            .notices
            .into_iter()
            .map(|(path, findings)| FileEntry::noted(path, findings)),
    );
    let report = Report::new(command, entries);
    write_stdout(|stdout| {
        if !report.files.is_empty() {
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
            None => writeln!(stdout, "no draft written: {nothing_kept} can be published"),
        }
    })?;
    Ok(u8::from(failed))
}
