//! The human report: one line per file (verdict, format, path), its findings indented below,
//! and a summary line. Colour only when asked for (the CLI decides from the terminal and
//! `NO_COLOR`); every untrusted string goes through [`escape_terminal`].

use std::io::{self, Write};

use crate::finding::{Finding, Severity};
use crate::policy::Verdict;
use crate::report::{escape_terminal, Report};

/// Whether to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Never,
    Always,
}

pub fn render(report: &Report, color: Color, out: &mut dyn Write) -> io::Result<()> {
    let paint = |code: &str, text: &str| paint(color, code, text);
    render_header(report.manifest.as_ref(), &report.findings, color, out)?;
    for file in &report.files {
        let verdict = format!("{:<6}", file.verdict.as_str());
        let verdict = match file.verdict {
            Verdict::Accept => paint("32", &verdict),
            Verdict::Warn => paint("33", &verdict),
            Verdict::Reject => paint("1;31", &verdict),
            Verdict::Error => paint("1;35", &verdict),
        };
        let format = file.format.map_or("-", |format| format.as_str());
        writeln!(
            out,
            "{verdict}  {format:<11}  {}",
            escape_terminal(&file.path)
        )?;
        if let Some(error) = &file.error {
            writeln!(out, "        {}", escape_terminal(error))?;
        }
        for finding in &file.findings {
            render_finding(finding, color, out)?;
        }
    }
    let summary = &report.summary;
    // A registry's entries are its manifests and the model files verified beside them.
    let files = match (report.command, summary.files) {
        ("registry", 1) => "entry",
        ("registry", _) => "entries (manifests and the files beside them)",
        (_, 1) => "file",
        _ => "files",
    };
    write!(
        out,
        "\n{} {files}: {} accepted, {} with warnings, {} rejected",
        summary.files, summary.accepted, summary.warned, summary.rejected
    )?;
    if summary.errors > 0 {
        write!(out, ", {} could not be checked", summary.errors)?;
    }
    writeln!(out, "; verdict: {}", report.verdict.as_str())
}

fn paint(color: Color, code: &str, text: &str) -> String {
    match color {
        Color::Always => format!("\x1b[{code}m{text}\x1b[0m"),
        Color::Never => text.to_owned(),
    }
}

/// The authenticated manifest's line and the findings about the run as a whole, which open
/// every report that has them (`verify`, `fetch`, `run`).
pub(crate) fn render_header(
    manifest: Option<&crate::verify::ManifestSummary>,
    findings: &[Finding],
    color: Color,
    out: &mut dyn Write,
) -> io::Result<()> {
    if let Some(manifest) = manifest {
        writeln!(
            out,
            "manifest {} version {} (expires {}), signed by {} of {} required keys",
            escape_terminal(&manifest.name),
            manifest.version,
            manifest.expires,
            manifest.signers.len(),
            manifest.threshold
        )?;
    }
    for finding in findings {
        render_finding(finding, color, out)?;
    }
    Ok(())
}

pub(crate) fn render_finding(
    finding: &Finding,
    color: Color,
    out: &mut dyn Write,
) -> io::Result<()> {
    let severity = format!("{:<8}", finding.severity.as_str());
    let severity = match finding.severity {
        Severity::Critical => paint(color, "1;31", &severity),
        Severity::Error => paint(color, "31", &severity),
        Severity::Warning => paint(color, "33", &severity),
        Severity::Info => paint(color, "2", &severity),
    };
    write!(
        out,
        "        {severity}  {}: {}",
        finding.code,
        escape_terminal(&finding.message)
    )?;
    if let Some(location) = &finding.location {
        write!(out, " (at {})", escape_terminal(location))?;
    }
    writeln!(out)?;
    if let Some(expected) = &finding.expected {
        writeln!(
            out,
            "                  expected: {}",
            escape_terminal(expected)
        )?;
    }
    if let Some(computed) = &finding.computed {
        writeln!(
            out,
            "                  computed: {}",
            escape_terminal(computed)
        )?;
    }
    if let Some(hint) = &finding.hint {
        writeln!(out, "                  hint: {}", escape_terminal(hint))?;
    }
    Ok(())
}
