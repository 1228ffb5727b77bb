//! The JUnit XML report, for CI systems that show test results (GitLab, Jenkins, Azure
//! Pipelines, GitHub test-report actions).
//!
//! This module owns the mapping from a [`Report`] to one `<testsuite>` and the XML escaping it
//! needs; it decides nothing (verdicts are already in the report) and must not change the JSON
//! contract of [`super::json`]. XML is written by hand: the shape is small and fixed, and a
//! dependency would not make the escaping, the one hard part, any less our job.
//!
//! Shape, for `modelvet scan --format junit models/`:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="modelvet" tests="2" failures="1" errors="0">
//!   <testsuite name="modelvet scan" tests="2" failures="1" errors="0" skipped="0">
//!     <properties>
//!       <property name="modelvet.version" value="0.1.0"/>
//!       <property name="verdict" value="reject"/>
//!     </properties>
//!     <testcase classname="modelvet scan" name="models/model.pt">
//!       <failure message="imports `os.system`, …" type="pickle-dangerous-global">critical pickle-dangerous-global: imports `os.system`, … (at archive/data.pkl@52)
//! error pickle-format: Python pickle, protocol 2: loading it can run arbitrary code</failure>
//!     </testcase>
//!     <testcase classname="modelvet scan" name="models/model.safetensors"/>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! - One `<testcase>` per file (`name` = its path): verdict `reject` is a `<failure>` whose
//!   `type` is the worst finding's code, `message` its text and body every finding, one a line;
//!   verdict `error` (could not be checked) is an `<error>`; `accept` and `warn` pass, with any
//!   findings as `<system-out>`.
//! - Findings about the run as a whole (signatures, expiry, rollback) make one more testcase,
//!   named after the manifest (`manifest` when none was authenticated), judged the same way.
//! - Untrusted text (paths, messages) is escaped twice over: terminal control and bidi
//!   characters become `\u{..}` as on a terminal (CI pages and `cat` both show this file), then
//!   XML's five special characters become entities, and any character XML 1.0 forbids is
//!   written as `\u{..}` instead of making the document ill-formed. No CDATA is used, so `]]>`
//!   in a name is just text.
//! - No times or timestamps: the output is deterministic.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::finding::Finding;
use crate::policy::Verdict;
use crate::report::{escape_terminal, Report};

/// Writes the report as a JUnit XML document.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(to_xml(report).as_bytes())
}

/// The JUnit XML document of a report.
pub fn to_xml(report: &Report) -> String {
    let suite = format!("{} {}", report.tool.name, report.command);
    let mut cases: Vec<Case> = Vec::new();
    if report.manifest.is_some() || !report.findings.is_empty() {
        let name = report
            .manifest
            .as_ref()
            .map_or("manifest", |manifest| manifest.path.as_str());
        cases.push(Case {
            name,
            verdict: report.run_verdict,
            findings: &report.findings,
            error: None,
        });
    }
    cases.extend(report.files.iter().map(|file| Case {
        name: &file.path,
        verdict: file.verdict,
        findings: &file.findings,
        error: file.error.as_deref(),
    }));
    let failures = cases
        .iter()
        .filter(|c| c.verdict == Verdict::Reject)
        .count();
    let errors = cases.iter().filter(|c| c.verdict == Verdict::Error).count();
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\"",
        cases.len()
    );

    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" {counts}>",
        attribute(report.tool.name)
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" {counts} skipped=\"0\">",
        attribute(&suite)
    );
    xml.push_str("    <properties>\n");
    let properties = [
        ("modelvet.version", report.tool.version),
        ("verdict", report.verdict.as_str()),
    ];
    for (name, value) in properties {
        let _ = writeln!(
            xml,
            "      <property name=\"{}\" value=\"{}\"/>",
            attribute(name),
            attribute(value)
        );
    }
    xml.push_str("    </properties>\n");
    for case in &cases {
        case.write(&suite, &mut xml);
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// One testcase: a file, or the run's own findings.
struct Case<'a> {
    name: &'a str,
    verdict: Verdict,
    findings: &'a [Finding],
    error: Option<&'a str>,
}

impl Case<'_> {
    fn write(&self, suite: &str, xml: &mut String) {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\"",
            attribute(suite),
            attribute(&escape_terminal(self.name))
        );
        let lines = self
            .findings
            .iter()
            .map(line)
            .collect::<Vec<String>>()
            .join("\n");
        let worst = self.findings.first();
        match (self.verdict, worst) {
            (Verdict::Reject, Some(worst)) => {
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                    attribute(&escape_terminal(&worst.message)),
                    attribute(worst.code.as_str()),
                    text(&lines)
                );
            }
            (Verdict::Reject, None) => {
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"rejected\" type=\"reject\"/>\n    </testcase>"
                );
            }
            (Verdict::Error, _) => {
                let reason = escape_terminal(self.error.unwrap_or("could not be checked"));
                let _ = write!(
                    xml,
                    ">\n      <error message=\"{}\" type=\"could-not-check\">{}</error>\n",
                    attribute(&reason),
                    text(&reason)
                );
                if !lines.is_empty() {
                    let _ = writeln!(xml, "      <system-out>{}</system-out>", text(&lines));
                }
                xml.push_str("    </testcase>\n");
            }
            (Verdict::Accept | Verdict::Warn, _) if !lines.is_empty() => {
                let _ = writeln!(
                    xml,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    text(&lines)
                );
            }
            (Verdict::Accept | Verdict::Warn, _) => xml.push_str("/>\n"),
        }
    }
}

/// One finding on one line: `severity code: message (at location)`, with its facts.
fn line(finding: &Finding) -> String {
    let mut line = format!(
        "{} {}: {}",
        finding.severity,
        finding.code,
        escape_terminal(&finding.message)
    );
    let facts = [
        ("at", &finding.location),
        ("global", &finding.global),
        ("expected", &finding.expected),
        ("computed", &finding.computed),
    ];
    for (label, value) in facts {
        if let Some(value) = value {
            let _ = write!(line, " ({label} {})", escape_terminal(value));
        }
    }
    line
}

/// Escapes character data: XML's special characters, and characters XML 1.0 forbids.
fn text(value: &str) -> String {
    escape_xml(value, false)
}

/// Escapes an attribute value; untrusted values must already have been through
/// [`escape_terminal`]. Tabs and line breaks become character references, which survive
/// attribute-value normalisation.
fn attribute(value: &str) -> String {
    escape_xml(value, true)
}

fn escape_xml(value: &str, in_attribute: bool) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' if in_attribute => {
                let _ = write!(escaped, "&#{};", u32::from(c));
            }
            '\t' | '\n' => escaped.push(c),
            c if allowed_in_xml(c) => escaped.push(c),
            c => escaped.extend(c.escape_unicode()),
        }
    }
    escaped
}

/// XML 1.0's `Char` production, less `\r` (which parsers turn into `\n`) and the C1 controls
/// (legal, but they are terminal escape sequences).
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Code;
    use crate::policy::PolicyOptions;
    use crate::report::FileEntry;

    fn count(xml: &str, needle: &str) -> usize {
        xml.matches(needle).count()
    }

    #[test]
    fn one_testcase_per_file_and_one_for_the_run() {
        let mut dangerous = Finding::new(Code::PickleDangerousGlobal, "imports `os.system`");
        dangerous.location = Some("archive/data.pkl@52".into());
        let files = vec![
            FileEntry::rejected(
                "model.pt".into(),
                vec![dangerous, Finding::new(Code::PickleFormat, "pickle")],
            ),
            FileEntry {
                path: "gone.bin".into(),
                format: None,
                size: None,
                verdict: Verdict::Error,
                findings: Vec::new(),
                error: Some("could not read `gone.bin`".into()),
            },
            FileEntry {
                path: "odd.dat".into(),
                format: None,
                size: Some(3),
                verdict: Verdict::Warn,
                findings: vec![Finding::new(Code::UnknownFormat, "unknown")],
                error: None,
            },
            FileEntry {
                path: "ok.safetensors".into(),
                format: None,
                size: Some(3),
                verdict: Verdict::Accept,
                findings: Vec::new(),
                error: None,
            },
        ];
        let mut report = Report::new("verify", files);
        report.add_run_findings(
            vec![Finding::new(Code::ManifestExpired, "expired")],
            &PolicyOptions::default(),
        );
        let xml = to_xml(&report);
        assert!(xml.contains(
            "<testsuite name=\"modelvet verify\" tests=\"5\" failures=\"2\" errors=\"1\""
        ));
        assert_eq!(count(&xml, "<testcase "), 5);
        assert_eq!(count(&xml, "<failure "), 2);
        assert_eq!(count(&xml, "<error "), 1);
        assert_eq!(count(&xml, "<system-out>"), 1);
        assert!(xml.contains("name=\"manifest\""));
        assert!(xml.contains("type=\"pickle-dangerous-global\""));
        assert!(xml.contains("type=\"could-not-check\""));
        // Every finding of a rejected file is in the failure body, one a line.
        assert!(xml.contains("(at archive/data.pkl@52)\nerror pickle-format: pickle</failure>"));
        assert!(xml.contains("<testcase classname=\"modelvet verify\" name=\"ok.safetensors\"/>"));
    }

    #[test]
    fn hostile_text_cannot_break_the_document() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(attribute("\"'\t\n"), "&quot;&apos;&#9;&#10;");
        assert_eq!(text("]]>"), "]]&gt;");
        assert_eq!(text("a\u{0}b\u{1b}c\u{fffe}"), "a\\u{0}b\\u{1b}c\\u{fffe}");
        assert_eq!(text("x\u{9b}y\rz"), "x\\u{9b}y\\u{d}z");
        assert_eq!(text("tab\tnew\nline é 🦀"), "tab\tnew\nline é 🦀");
        let name = "evil\u{0}]]>\u{1b}[2J<x>&\"'\u{202e}.pkl";
        let report = Report::new(
            "scan",
            vec![FileEntry::rejected(
                name.into(),
                vec![Finding::new(Code::PickleFormat, name)],
            )],
        );
        let xml = to_xml(&report);
        assert!(xml.chars().all(|c| c == '\n' || allowed_in_xml(c)));
        assert!(!xml.contains("]]>"));
        assert!(!xml.contains("<x>"));
        assert!(xml.contains("name=\"evil\\u{0}]]&gt;\\u{1b}[2J&lt;x&gt;&amp;&quot;&apos;"));
    }
}
