//! `modelvet run`: run pinned pre- and post-processing plugins on tensor files, in the sandbox.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use modelvet::digest::Sha256;
use modelvet::finding::{quote, Code, Finding};
use modelvet::manifest::time::Timestamp;
use modelvet::manifest::DeclaredFormat;
use modelvet::pipeline::{self, Stage};
use modelvet::receipt::{Origin, Receipt, ReceiptCommand};
use modelvet::report::human::Color;
use modelvet::report::run::RunReport;
use modelvet::sandbox::{self, Plugin, MAX_MODULE_BYTES};
use modelvet::tensor::{Tensor, TensorFile};
use modelvet::verify;
use modelvet::verify::artifact::VerifiedArtifact;

use crate::cli::receipt::ReceiptArgs;
use crate::cli::{
    policy_options, rollback_enforcement, verify_options, write_stdout, OutputFormat,
};

/// Run processing plugins (WebAssembly) on tensors, with no access to anything else.
///
/// A plugin computes on the tensors it is given and nothing else: no files, network, clock or
/// environment, within a wall-clock timeout and a memory cap (`docs/plugin-abi.md`). It must be
/// pinned: either a plugin of a signed manifest (`--manifest`, `--trust`, `--plugin NAME`,
/// verified like `modelvet verify` does before its bytes are compiled), or a file whose SHA-256
/// you give (`--sha256`). Several `--plugin` stages run in order, each on the previous one's
/// outputs. Inputs are safetensors or `.npy` files (a `.npy` tensor is named after its file,
/// or NAME=PATH); the output is written atomically, as `.npy` when its name ends so (one
/// tensor) and safetensors otherwise. Exit status: 0 every stage ran and the output was
/// written, 1 a plugin was refused or failed (nothing written), 2 the inputs could not be used.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet run --manifest manifests/demo/manifest.json --trust manifests/demo/trust.json \\
      --dir target/demo-model --plugin ct-window --plugin label-mask \\
      --input fixtures/ct-slice/ct-slice.safetensors --output target/mask.safetensors
  modelvet run plugin.wasm --sha256 <HEX> --input image.npy --output out.npy \\
      --params '{\"center\": 40, \"width\": 400}' --timeout-ms 2000 --memory-mb 256
  modelvet run --manifest manifest.json --trust trust.json --dir model/ --plugin ct-window \\
      --input ct.safetensors --output out.safetensors --receipt run-receipt.json --receipt-key ci.key")]
pub struct RunArgs {
    /// A plugin module (`.wasm`, or WAT text) to run directly; pin it with --sha256.
    #[arg(value_name = "PLUGIN.wasm", conflicts_with = "manifest")]
    plugin_file: Option<PathBuf>,
    /// The SHA-256 the plugin file must have; a plugin whose bytes differ never starts.
    #[arg(long, value_name = "HEX", requires = "plugin_file")]
    sha256: Option<Sha256>,
    /// A signed manifest that pins the plugins named by --plugin.
    #[arg(long, requires = "trust")]
    manifest: Option<PathBuf>,
    /// The trust policy that the manifest's signatures must meet.
    #[arg(long, requires = "manifest")]
    trust: Option<PathBuf>,
    /// The manifest's DSSE envelope (default: MANIFEST.sig).
    #[arg(long, requires = "manifest")]
    signature: Option<PathBuf>,
    /// Where the manifest's files are (default: the manifest's directory).
    #[arg(long, value_name = "DIR", requires = "manifest")]
    dir: Option<PathBuf>,
    /// A plugin of the manifest, by its name in `plugins` (or its file path). Repeat to chain.
    #[arg(long = "plugin", value_name = "NAME", requires = "manifest")]
    plugins: Vec<String>,
    /// An input tensor file: safetensors (every tensor) or `.npy` (named NAME, or after the
    /// file). Repeat for several.
    #[arg(long = "input", value_name = "[NAME=]PATH", required = true)]
    inputs: Vec<String>,
    /// Where to write the last stage's outputs.
    #[arg(long)]
    output: PathBuf,
    /// Parameters (a JSON object) for every stage, or STAGE=JSON for one stage.
    #[arg(long = "params", value_name = "[STAGE=]JSON")]
    params: Vec<String>,
    /// Wall-clock limit of each stage, in milliseconds (default: the manifest's, else 10000).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Linear-memory limit of each stage, in MiB (default: the manifest's, else 512).
    #[arg(long, value_name = "MIB")]
    memory_mb: Option<u64>,
    /// Fuel budget of each stage, for deterministic limits (default: the manifest's, else none).
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// UNSAFE, for plugin development only: run a plugin file that nothing pins.
    #[arg(long, requires = "plugin_file", conflicts_with = "sha256")]
    unsafe_unpinned_plugin: bool,
    /// Where rollback state is kept (as for `modelvet verify`).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// UNSAFE: skip the manifest's rollback check.
    #[arg(long)]
    unsafe_no_rollback_check: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    #[command(flatten)]
    receipt: ReceiptArgs,
    #[arg(long, hide = true)]
    current_time: Option<Timestamp>,
}

pub fn run(args: RunArgs, color: Color) -> anyhow::Result<u8> {
    if matches!(args.format, OutputFormat::Sarif | OutputFormat::Junit) {
        bail!("`run` reports as human or json (SARIF and JUnit describe files, not plugin runs)");
    }
    let params = Params::parse(&args.params)?;
    let receipt = args.receipt.writer()?;
    let mut run_findings = Vec::new();
    let mut manifest_summary = None;
    let stages = if let Some(manifest) = &args.manifest {
        if args.plugins.is_empty() {
            bail!("name the manifest's plugins to run with --plugin NAME");
        }
        manifest_stages(
            &args,
            manifest,
            &params,
            &mut run_findings,
            &mut manifest_summary,
        )?
    } else if let Some(path) = &args.plugin_file {
        file_stage(&args, path, &params, &mut run_findings)?
    } else {
        bail!("give a plugin file (with --sha256) or --manifest, --trust and --plugin NAME");
    };
    params.check_used(&stages)?;

    let files = open_inputs(&args.inputs)?;
    let mut inputs: Vec<Tensor> = Vec::new();
    let mut names = HashSet::new();
    for file in &files {
        for tensor in file.tensors() {
            if !names.insert(tensor.name.to_owned()) {
                bail!(
                    "two inputs hold a tensor named `{}`; rename one (NAME=PATH for .npy)",
                    quote(tensor.name)
                );
            }
            inputs.push(tensor);
        }
    }

    let result = match stages {
        Some(stages) => Some(pipeline::run(&stages, &inputs, &args.output)?),
        None => None,
    };
    let (stages, output) =
        result.map_or((Vec::new(), None), |result| (result.stages, result.output));
    let report = RunReport::new(
        manifest_summary,
        run_findings,
        stages,
        output,
        &policy_options(false),
    );
    if let Some(receipt) = receipt {
        let now = args.current_time.unwrap_or_else(Timestamp::now);
        let origin = Origin::here(ReceiptCommand::Run, now);
        receipt.write_if_vouched(report.verdict, || Receipt::for_run(origin, &report, &files))?;
    }
    write_stdout(|out| match args.format {
        OutputFormat::Json => report.render_json(out),
        OutputFormat::Human => report.render_human(color, out),
        // Checked before anything ran.
        OutputFormat::Sarif | OutputFormat::Junit => Ok(()),
    })?;
    Ok(report.exit_code())
}

/// `--plugin NAME` stages of an authenticated manifest; `None` when something was refused (the
/// findings say what).
fn manifest_stages(
    args: &RunArgs,
    manifest_path: &Path,
    params: &Params,
    findings: &mut Vec<Finding>,
    summary: &mut Option<modelvet::verify::ManifestSummary>,
) -> anyhow::Result<Option<Vec<Stage>>> {
    let trust = args.trust.as_deref().context("--manifest needs --trust")?;
    let signature = args
        .signature
        .clone()
        .unwrap_or_else(|| modelvet::trust::dsse::signature_path(manifest_path));
    let options = verify_options(
        args.current_time,
        false,
        rollback_enforcement(args.unsafe_no_rollback_check, args.state.clone())?,
        1,
    );
    let (verification, authenticated) =
        verify::authenticate_paths(trust, manifest_path, &signature, &options)?;
    *summary = verification.manifest;
    findings.extend(verification.findings);
    let Some(authenticated) = authenticated else {
        return Ok(None);
    };
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => manifest_path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let mut stages = Vec::with_capacity(args.plugins.len());
    for requested in &args.plugins {
        let manifest = &authenticated.manifest;
        let entry = manifest.plugin(requested);
        let path = match entry {
            Some(entry) => entry.path.clone(),
            None if manifest
                .file(requested)
                .is_some_and(|file| file.format == Some(DeclaredFormat::Wasm)) =>
            {
                requested.clone()
            }
            None => {
                findings.push(
                    Finding::new(
                        Code::PluginUnpinned,
                        format!(
                            "manifest `{}` version {} pins no plugin `{}`",
                            manifest.name,
                            manifest.version,
                            quote(requested)
                        ),
                    )
                    .with_hint(format!(
                        "the manifest's plugins: {}",
                        manifest
                            .plugins
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
                return Ok(None);
            }
        };
        let bytes = read_capped(&dir.join(&path))?;
        let artifact = match VerifiedArtifact::from_manifest(
            &authenticated,
            &path,
            DeclaredFormat::Wasm,
            bytes,
        ) {
            Ok(artifact) => artifact,
            Err(finding) => {
                findings.push((*finding).at(path));
                return Ok(None);
            }
        };
        let limits = sandbox::limits_from(
            args.timeout_ms.or(entry.and_then(|e| e.timeout_ms)),
            args.memory_mb.or(entry.and_then(|e| e.memory_mb)),
            args.fuel.or(entry.and_then(|e| e.fuel)),
        )
        .map_err(anyhow::Error::msg)?;
        stages.push(Stage {
            plugin: Plugin::new(requested.clone(), artifact),
            limits,
            params: params.for_stage(requested).to_owned(),
        });
    }
    Ok(Some(stages))
}

/// The one stage of a plugin file; `None` when it was refused before starting.
fn file_stage(
    args: &RunArgs,
    path: &Path,
    params: &Params,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<Option<Vec<Stage>>> {
    let name = path.file_stem().map_or_else(
        || "plugin".to_owned(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let bytes = read_capped(path)?;
    let plugin = match (&args.sha256, args.unsafe_unpinned_plugin) {
        (Some(pin), _) => {
            match VerifiedArtifact::from_pin(path.display().to_string(), bytes, pin) {
                Ok(artifact) => Plugin::new(name.clone(), artifact),
                Err(finding) => {
                    findings.push((*finding).at(path.display().to_string()));
                    return Ok(None);
                }
            }
        }
        (None, true) => {
            crate::cli::eprintln_warning(&format!(
                "running `{}` WITHOUT a pin (--unsafe-unpinned-plugin): nothing vouches for its bytes",
                path.display()
            ));
            Plugin::unsafe_unpinned(name.clone(), bytes)
        }
        (None, false) => {
            findings.push(
                Finding::new(
                    Code::PluginUnpinned,
                    format!(
                        "`{}` is not pinned; it was not started",
                        quote(&path.display().to_string())
                    ),
                )
                .with_hint(format!(
                    "pin it with --sha256 {} after reviewing it, or run it from a signed manifest",
                    modelvet::digest::sha256_bytes(&bytes)
                )),
            );
            return Ok(None);
        }
    };
    let limits = sandbox::limits_from(args.timeout_ms, args.memory_mb, args.fuel)
        .map_err(anyhow::Error::msg)?;
    Ok(Some(vec![Stage {
        plugin,
        limits,
        params: params.for_stage(&name).to_owned(),
    }]))
}

/// Reads a plugin file, refusing one larger than any plugin may be before reading it all.
fn read_capped(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("could not read `{}`", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_MODULE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read `{}`", path.display()))?;
    if bytes.len() > MAX_MODULE_BYTES {
        bail!(
            "`{}` is larger than the {MAX_MODULE_BYTES}-byte limit for plugins",
            path.display()
        );
    }
    Ok(bytes)
}

fn open_inputs(inputs: &[String]) -> anyhow::Result<Vec<TensorFile>> {
    inputs
        .iter()
        .map(|input| {
            // NAME=PATH only where NAME looks like a name; a path may contain `=` too.
            let (name, path) = match input.split_once('=') {
                Some((name, path)) if !name.is_empty() && !name.contains(['/', '\\']) => {
                    (Some(name), Path::new(path))
                }
                _ => (None, Path::new(input.as_str())),
            };
            let default_name = path
                .file_stem()
                .map_or_else(|| "input".to_owned(), |stem| stem.to_string_lossy().into_owned());
            let file = TensorFile::open(path, name.unwrap_or(&default_name))?;
            if name.is_some() && file.format != modelvet::tensor::TensorFormat::Npy {
                bail!(
                    "NAME=PATH names the tensor of a .npy file; `{}` is safetensors, whose tensors keep their names",
                    path.display()
                );
            }
            Ok(file)
        })
        .collect()
}

/// `--params`: one JSON object for every stage, or STAGE=JSON for one.
struct Params {
    all: Option<String>,
    by_stage: Vec<(String, String)>,
}

impl Params {
    fn parse(values: &[String]) -> anyhow::Result<Params> {
        let mut params = Params {
            all: None,
            by_stage: Vec::new(),
        };
        for value in values {
            let trimmed = value.trim_start();
            let (stage, json) = if trimmed.starts_with('{') {
                (None, value.as_str())
            } else {
                let (stage, json) = value.split_once('=').with_context(|| {
                    format!("--params `{value}` is neither a JSON object nor STAGE=JSON")
                })?;
                (Some(stage), json)
            };
            let parsed: serde_json::Value = serde_json::from_str(json)
                .with_context(|| format!("--params `{value}` is not valid JSON"))?;
            if !parsed.is_object() {
                bail!("--params `{value}` must be a JSON object");
            }
            match stage {
                None if params.all.is_some() => bail!("--params for every stage is given twice"),
                None => params.all = Some(json.to_owned()),
                Some(stage) if params.by_stage.iter().any(|(s, _)| s == stage) => {
                    bail!("--params for stage `{stage}` is given twice")
                }
                Some(stage) => params.by_stage.push((stage.to_owned(), json.to_owned())),
            }
        }
        Ok(params)
    }

    fn for_stage(&self, stage: &str) -> &str {
        self.by_stage
            .iter()
            .find(|(name, _)| name == stage)
            .map(|(_, json)| json.as_str())
            .or(self.all.as_deref())
            .unwrap_or("{}")
    }

    /// A STAGE=JSON for a stage that is not run is a typo worth stopping for.
    fn check_used(&self, stages: &Option<Vec<Stage>>) -> anyhow::Result<()> {
        let Some(stages) = stages else { return Ok(()) };
        for (stage, _) in &self.by_stage {
            if !stages.iter().any(|s| s.plugin.name() == stage) {
                bail!("--params names stage `{stage}`, which is not run");
            }
        }
        Ok(())
    }
}
