//! The report of `modelvet run`: which plugins ran, pinned by what, under which limits, how
//! long they took, what they logged and emitted, and where the result was written.
//!
//! Part of the versioned JSON contract (`schema_version` as in [`super::SCHEMA_VERSION`]):
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "tool": { "name": "modelvet", "version": "0.1.0" },
//!   "command": "run",
//!   "verdict": "accept",
//!   "manifest": { "path": "...", "name": "...", "version": 1, ... },
//!   "findings": [],
//!   "stages": [{
//!     "plugin": "ct-window", "sha256": "...", "pinned_by": { "kind": "manifest", "name": "...", "version": 1 },
//!     "limits": { "timeout_ms": 10000, "memory_bytes": 536870912, "stack_bytes": 524288, ... },
//!     "verdict": "accept", "findings": [],
//!     "stats": { "compile_ms": 12.0, "instantiate_ms": 0.3, "process_ms": 1.1, "total_ms": 14.0, "memory_bytes": 1245184 },
//!     "outputs": [{ "name": "image", "dtype": "F32", "shape": [1, 64, 64] }],
//!     "log": [{ "level": "info", "message": "..." }], "log_dropped": 0
//!   }],
//!   "output": { "path": "mask.safetensors", "format": "safetensors", "sha256": "...", "tensors": [...] }
//! }
//! ```
//!
//! `findings` at the top are about the run as a whole (authentication of the manifest, a plugin
//! refused before it started: `plugin-pin-mismatch`, `plugin-unpinned`); a stage's `findings`
//! say how that plugin misbehaved. `output` is present only when every stage succeeded and the
//! file was written. Log messages are plugin text, already stripped of control characters.

use std::io::{self, Write};

use serde::Serialize;

use crate::digest::Sha256;
use crate::finding::Finding;
use crate::policy::{self, PolicyOptions, Verdict};
use crate::report::human::{render_finding, render_header, Color};
use crate::report::{escape_terminal, Tool, SCHEMA_VERSION};
use crate::sandbox::{Limits, LogLine, Pinning, Stats};
use crate::tensor::{DType, Tensor};
use crate::verify::ManifestSummary;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub tool: Tool,
    pub command: &'static str,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestSummary>,
    pub findings: Vec<Finding>,
    pub stages: Vec<StageReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputReport>,
}

/// One plugin's invocation.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub plugin: String,
    pub sha256: Sha256,
    pub pinned_by: Pinning,
    pub limits: Limits,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub stats: Stats,
    pub outputs: Vec<TensorSummary>,
    pub log: Vec<LogLine>,
    pub log_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
}

impl TensorSummary {
    pub fn of(tensor: &Tensor<'_>) -> TensorSummary {
        TensorSummary {
            name: tensor.name.to_owned(),
            dtype: tensor.dtype,
            shape: tensor.shape.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub path: String,
    pub format: &'static str,
    /// The SHA-256 of the file as written.
    pub sha256: Sha256,
    pub tensors: Vec<TensorSummary>,
}

impl RunReport {
    pub fn new(
        manifest: Option<ManifestSummary>,
        mut findings: Vec<Finding>,
        mut stages: Vec<StageReport>,
        output: Option<OutputReport>,
        options: &PolicyOptions,
    ) -> RunReport {
        findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
        let mut verdict = policy::decide(&findings, options);
        for stage in &mut stages {
            stage.verdict = policy::decide(&stage.findings, options);
            verdict = verdict.max(stage.verdict);
        }
        RunReport {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            command: "run",
            verdict,
            manifest,
            findings,
            stages,
            output,
        }
    }

    /// 0 every stage ran and the output was written, 1 a plugin was refused or failed.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::Accept | Verdict::Warn => 0,
            Verdict::Reject => 1,
            Verdict::Error => 2,
        }
    }

    pub fn render_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }

    pub fn render_human(&self, color: Color, out: &mut dyn Write) -> io::Result<()> {
        render_header(self.manifest.as_ref(), &self.findings, color, out)?;
        for (index, stage) in self.stages.iter().enumerate() {
            let pinned = match &stage.pinned_by {
                Pinning::Manifest { name, version } => {
                    format!(
                        "pinned by manifest {} version {version}",
                        escape_terminal(name)
                    )
                }
                Pinning::OperatorDigest => "pinned by --sha256".to_owned(),
                Pinning::UnsafeUnpinned => "NOT PINNED (--unsafe-unpinned-plugin)".to_owned(),
            };
            writeln!(
                out,
                "{:<6}  stage {}  {}  sha256:{}  {pinned}",
                stage.verdict.as_str(),
                index + 1,
                escape_terminal(&stage.plugin),
                stage.sha256
            )?;
            let stats = &stage.stats;
            writeln!(
                out,
                "        {:.1} ms (compile {:.1} ms, instantiate {:.1} ms, process {:.1} ms), memory {} KiB of {} KiB",
                stats.total_ms,
                stats.compile_ms,
                stats.instantiate_ms,
                stats.process_ms,
                stats.memory_bytes >> 10,
                stage.limits.memory_bytes >> 10
            )?;
            for finding in &stage.findings {
                render_finding(finding, color, out)?;
            }
            for output in &stage.outputs {
                writeln!(out, "        -> {}", describe(output))?;
            }
            for line in &stage.log {
                writeln!(
                    out,
                    "        log {}: {}",
                    serde_json::to_value(line.level)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    escape_terminal(&line.message)
                )?;
            }
            if stage.log_dropped > 0 {
                writeln!(
                    out,
                    "        ({} more log lines dropped)",
                    stage.log_dropped
                )?;
            }
        }
        match &self.output {
            Some(output) => {
                let tensors: Vec<String> = output.tensors.iter().map(describe).collect();
                writeln!(
                    out,
                    "\nwrote {} ({}): {}",
                    escape_terminal(&output.path),
                    output.format,
                    tensors.join(", ")
                )
            }
            None => writeln!(out, "\nnothing written: {}", self.verdict.as_str()),
        }
    }
}

fn describe(tensor: &TensorSummary) -> String {
    format!(
        "{} {} {:?}",
        escape_terminal(&tensor.name),
        tensor.dtype,
        tensor.shape
    )
}
