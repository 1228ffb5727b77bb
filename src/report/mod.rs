//! The report: the data model every command fills, and its renderers.
//!
//! [`Report`] is what `--format json` prints, a versioned contract (see [`json`]); the human
//! renderer draws the same data as a table, [`sarif`] and [`junit`] map it onto the formats CI
//! systems read. Renderers escape every untrusted string (paths,
//! tensor and global names, messages built from file content) before it reaches a terminal.
//! This module decides nothing: verdicts come from `policy`, findings from the checkers.

pub mod human;
pub mod json;
pub mod junit;
pub mod run;
pub mod sarif;

use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::policy::{self, PolicyOptions, Verdict};
use crate::scan::{FileScan, Format, ScanError};
use crate::verify::{ManifestSummary, Verification};

/// The version of the JSON report contract. Adding fields keeps it; renaming or removing a
/// field or a finding code bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// The subcommand that produced the report (`scan`).
    pub command: &'static str,
    /// The worst verdict over all files and run-level findings (`error` > `reject` > `warn` >
    /// `accept`).
    pub verdict: Verdict,
    /// `verify`: the authenticated manifest (absent when it could not be authenticated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestSummary>,
    /// Findings about the run as a whole rather than one file (signatures, expiry, rollback).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The verdict of the run-level findings alone, which renderers that judge the run apart
    /// from its files (JUnit) need; not part of the JSON contract.
    #[serde(skip)]
    pub run_verdict: Verdict,
    pub files: Vec<FileEntry>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

/// One file's entry.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// The path as it was reached from the command-line argument.
    pub path: String,
    /// Detected from content; absent when the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Why the file could not be checked (verdict `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub accepted: usize,
    pub warned: usize,
    pub rejected: usize,
    pub errors: usize,
    pub findings: SeverityCounts,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub error: usize,
    pub warning: usize,
    pub info: usize,
}

impl FileEntry {
    /// A file refused before it could be part of anything (a draft, a download).
    pub fn rejected(path: String, findings: Vec<Finding>) -> FileEntry {
        FileEntry {
            path,
            format: None,
            size: None,
            verdict: Verdict::Reject,
            findings,
            error: None,
        }
    }
}

impl FileEntry {
    /// A file kept (in a draft) with findings a reviewer should read, its verdict decided by
    /// the default policy.
    pub fn noted(path: String, findings: Vec<Finding>) -> FileEntry {
        FileEntry {
            path,
            format: None,
            size: None,
            verdict: policy::decide(&findings, &PolicyOptions::default()),
            findings,
            error: None,
        }
    }
}

impl SeverityCounts {
    fn count(&mut self, severity: Severity) {
        match severity {
            Severity::Critical => self.critical += 1,
            Severity::Error => self.error += 1,
            Severity::Warning => self.warning += 1,
            Severity::Info => self.info += 1,
        }
    }
}

impl Report {
    /// Builds the report of a scan, deciding each file's verdict with `options`.
    pub fn from_scan(
        outcomes: Vec<Result<FileScan, ScanError>>,
        options: &PolicyOptions,
    ) -> Report {
        let files = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(scan) => {
                    let mut findings = scan.findings;
                    // Worst first, so that a reader (and `head`) sees what matters.
                    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
                    FileEntry {
                        path: scan.path.display().to_string(),
                        format: Some(scan.format),
                        size: Some(scan.size),
                        verdict: policy::decide(&findings, options),
                        findings,
                        error: None,
                    }
                }
                Err(error) => FileEntry {
                    path: error.path().display().to_string(),
                    format: None,
                    size: None,
                    verdict: Verdict::Error,
                    findings: Vec::new(),
                    error: Some(crate::error::chain(&error)),
                },
            })
            .collect();
        Report::new("scan", files)
    }

    /// Builds the report of a verification.
    pub fn from_verification(verification: Verification, options: &PolicyOptions) -> Report {
        let files = verification
            .files
            .into_iter()
            .map(|file| {
                let mut findings = file.findings;
                findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
                FileEntry {
                    path: file.path,
                    format: file.format,
                    size: file.size,
                    verdict: policy::decide(&findings, options),
                    findings,
                    error: None,
                }
            })
            .collect();
        let mut report = Report::new("verify", files);
        report.manifest = verification.manifest;
        report.add_run_findings(verification.findings, options);
        report
    }

    /// Builds the report of a registry check: one entry per manifest (its own findings), then
    /// one per model file verified beside it, paths relative to the registry's root.
    pub fn from_registry(
        outcome: crate::registry::RegistryOutcome,
        options: &PolicyOptions,
    ) -> Report {
        let mut files = Vec::new();
        for check in outcome.manifests {
            let mut findings = check.findings;
            findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
            files.push(FileEntry {
                path: check.path,
                format: None,
                size: None,
                verdict: policy::decide(&findings, options),
                findings,
                error: None,
            });
            for file in check.files {
                let mut findings = file.findings;
                findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
                let path = if check.dir.is_empty() {
                    file.path
                } else {
                    format!("{}/{}", check.dir, file.path)
                };
                files.push(FileEntry {
                    path,
                    format: file.format,
                    size: file.size,
                    verdict: policy::decide(&findings, options),
                    findings,
                    error: None,
                });
            }
        }
        Report::new("registry", files)
    }

    /// Adds findings about the whole run and folds them into the verdict.
    pub fn add_run_findings(&mut self, mut findings: Vec<Finding>, options: &PolicyOptions) {
        findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
        for finding in &findings {
            self.summary.findings.count(finding.severity);
        }
        self.run_verdict = policy::decide(&findings, options);
        self.verdict = self.verdict.max(self.run_verdict);
        self.findings = findings;
    }

    pub fn new(command: &'static str, files: Vec<FileEntry>) -> Report {
        let mut summary = Summary {
            files: files.len(),
            ..Summary::default()
        };
        for file in &files {
            match file.verdict {
                Verdict::Accept => summary.accepted += 1,
                Verdict::Warn => summary.warned += 1,
                Verdict::Reject => summary.rejected += 1,
                Verdict::Error => summary.errors += 1,
            }
            for finding in &file.findings {
                summary.findings.count(finding.severity);
            }
        }
        let verdict = files
            .iter()
            .map(|file| file.verdict)
            .max()
            .unwrap_or(Verdict::Accept);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            command,
            verdict,
            manifest: None,
            findings: Vec::new(),
            run_verdict: Verdict::Accept,
            files,
            summary,
        }
    }

    /// The process exit code the report stands for: 0 accepted (warnings included), 1 something
    /// rejected, 2 something could not be checked.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::Accept | Verdict::Warn => 0,
            Verdict::Reject => 1,
            Verdict::Error => 2,
        }
    }
}

/// Makes untrusted text safe to print on a terminal: control characters (escape sequences),
/// and bidirectional overrides that reorder what is shown, are written as `\u{..}` escapes.
pub fn escape_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_bidi_overrides() {
        assert_eq!(escape_terminal("plain `name`"), "plain `name`");
        assert_eq!(escape_terminal("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape_terminal("x\u{202e}y\n"), "x\\u{202e}y\\u{a}");
    }
}
