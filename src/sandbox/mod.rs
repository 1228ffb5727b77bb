//! The plugin sandbox: runs a model's pre- and post-processing plugins, WebAssembly modules of
//! plugin ABI v1 (`docs/plugin-abi.md`), in wasmtime with no way out.
//!
//! This module owns the engine configuration, the checks of a module before it is
//! instantiated (imports against the ABI's allowlist, exports, ABI version, declared memory and
//! tables against the limits), the limits of every run (wall clock through epoch interruption,
//! fuel, memory, stack, tables, outputs, log) and the host side of the ABI. A [`Plugin`] can
//! only be made from a [`VerifiedArtifact`] (or through a loudly named development escape), so
//! unverified bytes never reach the compiler. It reads and writes no files and decides no
//! verdicts: a plugin that misbehaves yields a coded [`Finding`], and "could not run" (the
//! engine failed, an input could not be read) is a [`SandboxError`].
//!
//! Each invocation gets a fresh engine, store and instance: nothing survives from one input to
//! the next, and one invocation's epoch ticker cannot interrupt another. Native code is always
//! compiled from the verified bytes; loading precompiled code (unsafe by nature) is impossible
//! here because the crate forbids `unsafe`.

mod engine;
mod host;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::digest::Sha256;
use crate::finding::{Code, Finding};
use crate::tensor::Tensor;
use crate::verify::artifact::{PinnedBy, VerifiedArtifact};
pub use host::{LogLevel, LogLine};

/// Default wall-clock budget of one invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default linear-memory cap.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;
/// The most linear memory a wasm32 module can address.
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;
/// Largest plugin module accepted, in bytes.
pub const MAX_MODULE_BYTES: usize = 64 << 20;

/// The largest WAT text accepted: text is converted to a module before any check, so its
/// parser meets hostile bytes first; it runs under the plugin's deadline, and this cap
/// bounds its memory (hand-written plugins are far smaller).
pub const MAX_WAT_BYTES: usize = 4 << 20;
/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;

/// A plugin ready to run: verified bytes and where the pin came from.
#[derive(Debug, Clone)]
pub struct Plugin {
    name: String,
    sha256: Sha256,
    bytes: Arc<[u8]>,
    pinned_by: Pinning,
}

/// What vouched for a plugin's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Pinning {
    /// A file of an authenticated manifest.
    Manifest { name: String, version: u64 },
    /// A `--sha256` the operator gave.
    OperatorDigest,
    /// Nothing: the operator chose the development escape.
    UnsafeUnpinned,
}

impl Plugin {
    /// A plugin whose bytes were verified against a manifest or an operator's pin.
    pub fn new(name: impl Into<String>, artifact: VerifiedArtifact) -> Plugin {
        let pinned_by = match artifact.pinned_by() {
            PinnedBy::Manifest { name, version } => Pinning::Manifest {
                name: name.clone(),
                version: *version,
            },
            PinnedBy::OperatorDigest => Pinning::OperatorDigest,
        };
        let sha256 = *artifact.sha256();
        Plugin {
            name: name.into(),
            sha256,
            bytes: artifact.into_bytes().into(),
            pinned_by,
        }
    }

    /// A plugin nobody vouched for. Only for developing a plugin on one's own machine: the
    /// report says so on every run.
    pub fn unsafe_unpinned(name: impl Into<String>, bytes: Vec<u8>) -> Plugin {
        Plugin {
            name: name.into(),
            sha256: crate::digest::sha256_bytes(&bytes),
            bytes: bytes.into(),
            pinned_by: Pinning::UnsafeUnpinned,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn sha256(&self) -> &Sha256 {
        &self.sha256
    }

    pub fn pinned_by(&self) -> &Pinning {
        &self.pinned_by
    }
}

/// The bounds of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall clock for the whole invocation: compiling, `start`, copying inputs, processing.
    #[serde(serialize_with = "as_millis", rename = "timeout_ms")]
    pub timeout: Duration,
    /// Linear memory, in bytes (at most 4 GiB).
    pub memory_bytes: u64,
    /// Instructions' worth of fuel, for deterministic budgets; `None` runs on time alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wasm stack, in bytes.
    pub stack_bytes: usize,
    /// Elements of the (single) table.
    pub table_elements: u64,
    /// Output tensors.
    pub max_outputs: usize,
    /// Log lines kept, and their total bytes.
    pub max_log_lines: usize,
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            fuel: None,
            stack_bytes: 512 << 10,
            table_elements: 100_000,
            max_outputs: 256,
            max_log_lines: 200,
            max_log_bytes: 64 << 10,
        }
    }
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// "Could not run", as opposed to "ran and misbehaved" (a finding).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    #[error("could not set up the WebAssembly engine: {message}")]
    Engine { message: String },
    #[error("could not read input tensor `{name}`")]
    Input { name: String, source: io::Error },
    #[error("input tensor `{name}`: {reason}")]
    InvalidInput { name: String, reason: String },
}

/// Measurements of one invocation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub compile_ms: f64,
    pub instantiate_ms: f64,
    pub process_ms: f64,
    pub total_ms: f64,
    /// Linear memory at the end, in bytes.
    pub memory_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_consumed: Option<u64>,
}

/// What an invocation left behind when the plugin misbehaved or refused.
#[derive(Debug, Clone)]
pub struct Failure {
    pub finding: Finding,
    pub log: Vec<LogLine>,
    pub log_dropped: u64,
    pub stats: Stats,
}

/// A plugin's successful run: its outputs still live in its (now idle) linear memory and are
/// read from there, so that large tensors are not copied inside the host.
pub struct Completed {
    run: host::FinishedRun,
    pub log: Vec<LogLine>,
    pub log_dropped: u64,
    pub stats: Stats,
}

impl std::fmt::Debug for Completed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completed")
            .field("outputs", &self.run.output_count())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Completed {
    /// The emitted tensors, in emission order, borrowed from the plugin's memory.
    pub fn outputs(&self) -> Vec<Tensor<'_>> {
        self.run.outputs()
    }
}

/// The result of one invocation.
#[derive(Debug)]
pub enum Outcome {
    Completed(Completed),
    Failed(Failure),
}

/// Runs `plugin` once on `inputs` with `params` (JSON text) under `limits`.
pub fn invoke(
    plugin: &Plugin,
    limits: &Limits,
    inputs: &[Tensor<'_>],
    params: &str,
) -> Result<Outcome, SandboxError> {
    let started = Instant::now();
    for input in inputs {
        crate::tensor::check_tensor(input.name, input.shape).map_err(|reason| {
            SandboxError::InvalidInput {
                name: crate::finding::quote(input.name),
                reason,
            }
        })?;
    }
    let text = !plugin.bytes.starts_with(b"\0asm");
    let cap = if text {
        MAX_WAT_BYTES
    } else {
        MAX_MODULE_BYTES
    };
    if plugin.bytes.len() > cap {
        let kind = if text { "WAT text" } else { "module" };
        return Ok(Outcome::Failed(Failure {
            finding: Finding::new(
                Code::PluginInvalidModule,
                format!(
                    "the {kind} is {} bytes, more than the limit of {cap}",
                    plugin.bytes.len()
                ),
            ),
            log: Vec::new(),
            log_dropped: 0,
            stats: Stats::default(),
        }));
    }
    host::run(plugin, limits, inputs, params, started)
}

/// The limits as a plugin entry of a manifest and the command line combine them: each value
/// the operator gives wins, then the manifest's, then the default.
pub fn limits_from(
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    fuel: Option<u64>,
) -> Result<Limits, String> {
    let mut limits = Limits::default();
    if let Some(milliseconds) = timeout_ms {
        if milliseconds == 0 {
            return Err("the timeout must be at least 1 ms".into());
        }
        limits.timeout = Duration::from_millis(milliseconds);
    }
    if let Some(megabytes) = memory_mb {
        let bytes = megabytes.saturating_mul(1 << 20);
        if megabytes == 0 || bytes > MAX_MEMORY_BYTES {
            return Err(format!(
                "the memory limit must be 1 to {} MiB, not {megabytes}",
                MAX_MEMORY_BYTES >> 20
            ));
        }
        limits.memory_bytes = bytes;
    }
    if let Some(fuel) = fuel {
        if fuel == 0 {
            return Err("the fuel budget must be at least 1".into());
        }
        limits.fuel = Some(fuel);
    }
    Ok(limits)
}

/// The wasmtime version compiled in, for reports and receipts.
pub fn engine_version() -> &'static str {
    engine::WASMTIME_VERSION
}
