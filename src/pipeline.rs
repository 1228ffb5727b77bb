//! A chain of plugins over tensor files: input tensors → stage 1 → stage 2 → … → one output
//! file, written only when every stage succeeded.
//!
//! This module owns the order of stages and the hand-over between them: a stage's outputs are
//! read straight from its finished instance's memory into the next stage's memory, and the
//! last stage's outputs straight into the output file, so no tensor is copied inside the host.
//! Running a plugin is the sandbox's job and reading or writing files the tensor module's;
//! nothing here decides a verdict.

use std::path::Path;

use crate::finding::{Code, Finding, Severity};
use crate::report::run::{OutputReport, StageReport, TensorSummary};
use crate::sandbox::{self, Completed, Limits, Outcome, Pinning, Plugin, SandboxError};
use crate::tensor::{self, Tensor, TensorError, TensorFormat};

/// One plugin of the chain, with its limits and parameters (JSON text).
#[derive(Debug, Clone)]
pub struct Stage {
    pub plugin: Plugin,
    pub limits: Limits,
    pub params: String,
}

/// What a chain produced: a report per stage that ran, and the output when all succeeded.
#[derive(Debug, Clone)]
pub struct PipelineResult {
    pub stages: Vec<StageReport>,
    pub output: Option<OutputReport>,
}

/// "Could not run the chain" (as opposed to a plugin failing, which is a stage finding).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Output(#[from] TensorError),
    #[error("no plugin to run")]
    NoStages,
}

/// Runs `stages` in order on `inputs`, writing the last stage's outputs to `output`.
pub fn run(
    stages: &[Stage],
    inputs: &[Tensor<'_>],
    output: &Path,
) -> Result<PipelineResult, PipelineError> {
    let mut reports = Vec::with_capacity(stages.len());
    let mut previous: Option<Completed> = None;
    for stage in stages {
        let outcome = {
            let handed_over;
            let stage_inputs = match &previous {
                Some(completed) => {
                    handed_over = completed.outputs();
                    handed_over.as_slice()
                }
                None => inputs,
            };
            sandbox::invoke(&stage.plugin, &stage.limits, stage_inputs, &stage.params)?
        };
        match outcome {
            Outcome::Completed(completed) => {
                reports.push(stage_report(
                    stage,
                    Vec::new(),
                    completed.stats.clone(),
                    completed.outputs().iter().map(TensorSummary::of).collect(),
                    completed.log.clone(),
                    completed.log_dropped,
                ));
                previous = Some(completed);
            }
            Outcome::Failed(failure) => {
                reports.push(stage_report(
                    stage,
                    vec![failure.finding],
                    failure.stats,
                    Vec::new(),
                    failure.log,
                    failure.log_dropped,
                ));
                return Ok(PipelineResult {
                    stages: reports,
                    output: None,
                });
            }
        }
    }
    let last = previous.ok_or(PipelineError::NoStages)?;
    let tensors = last.outputs();
    let format = TensorFormat::for_output(output);
    let sha256 = tensor::write_tensor_file(output, format, &tensors)?;
    Ok(PipelineResult {
        stages: reports,
        output: Some(OutputReport {
            path: output.display().to_string(),
            format: match format {
                TensorFormat::Safetensors => "safetensors",
                TensorFormat::Npy => "npy",
            },
            sha256,
            tensors: tensors.iter().map(TensorSummary::of).collect(),
        }),
    })
}

fn stage_report(
    stage: &Stage,
    mut findings: Vec<Finding>,
    stats: sandbox::Stats,
    outputs: Vec<TensorSummary>,
    log: Vec<sandbox::LogLine>,
    log_dropped: u64,
) -> StageReport {
    if *stage.plugin.pinned_by() == Pinning::UnsafeUnpinned {
        findings.push(
            Finding::new(
                Code::PluginUnpinned,
                format!(
                    "`{}` ran without a pin: nothing vouches for these bytes",
                    crate::finding::quote(stage.plugin.name())
                ),
            )
            .with_severity(Severity::Warning)
            .with_hint(
                "pin the plugin in a signed manifest or with --sha256 before using its output",
            ),
        );
    }
    StageReport {
        plugin: stage.plugin.name().to_owned(),
        sha256: *stage.plugin.sha256(),
        pinned_by: stage.plugin.pinned_by().clone(),
        limits: stage.limits.clone(),
        verdict: crate::policy::Verdict::Accept,
        findings,
        stats,
        outputs,
        log,
        log_dropped,
    }
}
