//! The SARIF 2.1.0 report, for code-scanning dashboards (GitHub code scanning, Azure DevOps,
//! IDE viewers).
//!
//! This module owns the mapping from a [`Report`] to one SARIF run; it decides nothing (the
//! verdicts are already in the report) and must not change the JSON contract of [`super::json`].
//! The output is deterministic: rules in [`Code::ALL`] order, results in report order (run-level
//! findings first, then each file's findings worst first), no timestamps.
//!
//! Shape, for `modelvet scan --format sarif model.pt`:
//!
//! ```json
//! {
//!   "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
//!   "version": "2.1.0",
//!   "runs": [{
//!     "tool": { "driver": { "name": "modelvet", "version": "0.1.0", "rules": [ ... ] } },
//!     "invocations": [{ "executionSuccessful": true, "exitCode": 1, ... }],
//!     "results": [{
//!       "ruleId": "pickle-dangerous-global",
//!       "ruleIndex": 1,
//!       "level": "error",
//!       "message": { "text": "imports `os.system`, which is not on the tensor-only allowlist" },
//!       "locations": [{ "physicalLocation": { "artifactLocation": { "uri": "model.pt" } } }],
//!       "partialFingerprints": { "primaryLocationLineHash": "…" },
//!       "properties": { "severity": "critical", "location": "archive/data.pkl@52",
//!                       "global": "os.system" }
//!     }]
//!   }]
//! }
//! ```
//!
//! Choices, and why:
//! - **Rules**: one per finding code, `id` = the kebab-case code, descriptions from
//!   [`Code::summary`], `defaultConfiguration.level` from [`Code::default_severity`] (critical
//!   and error → `error`, warning → `warning`, info → `note`). Every rule is tagged `security`
//!   and carries a `security-severity` score (critical 9.5, error 7.5, warning 4.0; none for
//!   info), which is what makes GitHub rank results as critical / high / medium security alerts.
//!   One extra rule, [`UNCHECKED_RULE_ID`], stands for a file that could not be checked.
//! - **Results**: one per finding; `level` comes from the finding's own severity (a producer
//!   may raise or lower the default). The facts that are not text (severity, location inside
//!   the file, pickle global, expected / computed values, hint) go to `properties`.
//! - **Files that could not be checked** (verdict `error`) become results of the
//!   [`UNCHECKED_RULE_ID`] rule at level `error`. GitHub displays only `results` (it ignores
//!   `invocations[].toolExecutionNotifications`), and an unchecked model file is exactly what a
//!   reviewer must see, so a notification alone would hide it.
//! - **`executionSuccessful`** is false when some file could not be checked: that is the
//!   report's exit code 2, an operational error, and `exitCode` carries the code itself.
//! - **Locations**: `artifactLocation.uri` is the report's path as a URI reference (forward
//!   slashes, leading `./` dropped, every byte outside the unreserved set percent-encoded, so
//!   that hostile names cannot forge a scheme, a query or a fragment); absolute paths become
//!   `file://` URIs. Paths are those of the report: as given on the command line for `scan`,
//!   relative to the model directory for `verify` and `fetch`. Run-level findings (signatures,
//!   expiry, rollback) point at the manifest when it was authenticated and have no location
//!   otherwise. No `region` is given: model files are binary and have no lines.
//! - **`partialFingerprints.primaryLocationLineHash`** is a SHA-256 over rule, path, location
//!   inside the file and global. GitHub keys alerts on it; without it the upload action would
//!   read the (binary, possibly multi-gigabyte) file to hash its "lines".

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::finding::{Code, Finding, Severity};
use crate::policy::Verdict;
use crate::report::{FileEntry, Report};

/// The `$schema` written into every log: the URI GitHub's documentation uses.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rule of results for files that could not be checked (verdict `error`); not a finding
/// code, so it follows every code in the rule table.
pub const UNCHECKED_RULE_ID: &str = "could-not-check";

/// Writes the report as a pretty-printed SARIF 2.1.0 log followed by a newline.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    out.write_all(b"\n")
}

/// The SARIF log of a report, as a JSON value.
pub fn to_value(report: &Report) -> Value {
    let manifest_uri = report
        .manifest
        .as_ref()
        .map(|manifest| path_to_uri(&manifest.path));
    let mut results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| finding_result(finding, manifest_uri.as_deref()))
        .collect();
    for file in &report.files {
        results.extend(file_results(file));
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": report.tool.name,
                    "version": report.tool.version,
                    "semanticVersion": report.tool.version,
                    "rules": rules(),
                }
            },
            "invocations": [{
                "executionSuccessful": report.verdict != Verdict::Error,
                "exitCode": report.exit_code(),
                "properties": {
                    "command": report.command,
                    "verdict": report.verdict,
                    "summary": report.summary,
                },
            }],
            "results": results,
        }]
    })
}

/// The SARIF `level` of a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score of a severity (over 9.0 critical, 7.0–8.9 high, 4.0–6.9
/// medium); `None` for info, which is not a security alert.
pub fn security_severity(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Critical => Some("9.5"),
        Severity::Error => Some("7.5"),
        Severity::Warning => Some("4.0"),
        Severity::Info => None,
    }
}

/// A path as a SARIF URI reference: forward slashes, no leading `./`, bytes outside the
/// unreserved set and `/` percent-encoded; an absolute path becomes a `file://` URI.
pub fn path_to_uri(path: &str) -> String {
    // On Windows the separator is `\`; elsewhere a backslash is part of a name and is encoded.
    let path = if cfg!(windows) {
        std::borrow::Cow::Owned(path.replace('\\', "/"))
    } else {
        std::borrow::Cow::Borrowed(path)
    };
    let mut relative: &str = &path;
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest.trim_start_matches('/');
    }
    let mut uri = String::with_capacity(relative.len() + 8);
    if relative.starts_with('/') {
        uri.push_str("file://");
    } else if cfg!(windows) && relative.as_bytes().get(1) == Some(&b':') {
        // `C:/dir/file`: the drive letter's colon stays, as RFC 8089 writes it.
        uri.push_str("file:///");
        uri.push_str(relative.get(..2).unwrap_or_default());
        relative = relative.get(2..).unwrap_or_default();
    }
    for byte in relative.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// One rule per finding code, then the could-not-check rule.
fn rules() -> Vec<Value> {
    let mut rules: Vec<Value> = Code::ALL
        .iter()
        .map(|code| {
            rule(
                code.as_str(),
                code.summary(),
                code.default_severity(),
                &format!(
                    "{} Run `modelvet explain {}` for the code's meaning.",
                    code.summary(),
                    code.as_str()
                ),
            )
        })
        .collect();
    rules.push(rule(
        UNCHECKED_RULE_ID,
        "A file could not be checked (unreadable, vanished, I/O error), so it cannot be vouched for.",
        Severity::Error,
        "The file could not be read to the end; nothing about it was verified. Fix the cause \
         given in the message and run modelvet again.",
    ));
    rules
}

fn rule(id: &str, summary: &str, severity: Severity, help: &str) -> Value {
    let mut properties = Map::new();
    properties.insert("tags".into(), json!(["security", "supply-chain"]));
    properties.insert("precision".into(), json!("very-high"));
    if let Some(score) = security_severity(severity) {
        properties.insert("security-severity".into(), json!(score));
    }
    json!({
        "id": id,
        "shortDescription": { "text": summary },
        "fullDescription": { "text": summary },
        "help": { "text": help },
        "defaultConfiguration": { "level": level(severity) },
        "properties": properties,
    })
}

/// The index of a rule in the table [`rules`] builds.
fn rule_index(rule_id: &str) -> Option<usize> {
    Code::ALL
        .iter()
        .position(|code| code.as_str() == rule_id)
        .or_else(|| (rule_id == UNCHECKED_RULE_ID).then_some(Code::ALL.len()))
}

fn file_results(file: &FileEntry) -> Vec<Value> {
    let uri = path_to_uri(&file.path);
    let mut results: Vec<Value> = file
        .findings
        .iter()
        .map(|finding| finding_result(finding, Some(&uri)))
        .collect();
    if file.verdict == Verdict::Error {
        let message = file
            .error
            .as_deref()
            .unwrap_or("the file could not be checked");
        let mut properties = Map::new();
        properties.insert("verdict".into(), json!(file.verdict));
        results.push(result(
            UNCHECKED_RULE_ID,
            "error",
            message,
            Some(&uri),
            &[],
            properties,
        ));
    }
    results
}

fn finding_result(finding: &Finding, uri: Option<&str>) -> Value {
    let mut properties = Map::new();
    properties.insert("severity".into(), json!(finding.severity));
    let facts = [
        ("location", &finding.location),
        ("global", &finding.global),
        ("expected", &finding.expected),
        ("computed", &finding.computed),
        ("hint", &finding.hint),
    ];
    for (key, value) in facts {
        if let Some(value) = value {
            properties.insert(key.into(), json!(value));
        }
    }
    let identity = [
        finding.location.as_deref().unwrap_or_default(),
        finding.global.as_deref().unwrap_or_default(),
    ];
    result(
        finding.code.as_str(),
        level(finding.severity),
        &finding.message,
        uri,
        &identity,
        properties,
    )
}

fn result(
    rule_id: &str,
    level: &str,
    message: &str,
    uri: Option<&str>,
    identity: &[&str],
    properties: Map<String, Value>,
) -> Value {
    let mut result = Map::new();
    result.insert("ruleId".into(), json!(rule_id));
    if let Some(index) = rule_index(rule_id) {
        result.insert("ruleIndex".into(), json!(index));
    }
    result.insert("level".into(), json!(level));
    result.insert("message".into(), json!({ "text": message }));
    if let Some(uri) = uri {
        result.insert(
            "locations".into(),
            json!([{ "physicalLocation": { "artifactLocation": { "uri": uri } } }]),
        );
    }
    // Each part is length-prefixed, so that two different identities cannot hash alike by
    // moving text from one part to the next.
    let mut key = Vec::new();
    for part in [rule_id, uri.unwrap_or_default()].iter().chain(identity) {
        key.extend_from_slice(&(part.len() as u64).to_le_bytes());
        key.extend_from_slice(part.as_bytes());
    }
    result.insert(
        "partialFingerprints".into(),
        json!({ "primaryLocationLineHash": crate::digest::sha256_bytes(&key).to_string() }),
    );
    result.insert("properties".into(), Value::Object(properties));
    Value::Object(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyOptions;
    use crate::report::FileEntry;

    fn sample() -> Report {
        let mut dangerous = Finding::new(Code::PickleDangerousGlobal, "imports `os.system`");
        dangerous.location = Some("archive/data.pkl@52".into());
        dangerous.global = Some("os.system".into());
        let mut mismatch = Finding::new(Code::DigestMismatch, "digest differs");
        mismatch.expected = Some("sha256:aa".into());
        mismatch.computed = Some("sha256:bb".into());
        let files = vec![
            FileEntry::rejected("dir/model.pt".into(), vec![dangerous]),
            FileEntry::rejected("weights.bin".into(), vec![mismatch]),
            FileEntry {
                path: "gone.bin".into(),
                format: None,
                size: None,
                verdict: Verdict::Error,
                findings: Vec::new(),
                error: Some("could not read `gone.bin`".into()),
            },
            FileEntry {
                path: "ok.safetensors".into(),
                format: None,
                size: Some(1),
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
        report
    }

    #[test]
    fn rules_cover_every_code_in_order_then_the_unchecked_rule() {
        let log = to_value(&sample());
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        assert_eq!(rules.len(), Code::ALL.len() + 1);
        for (rule, code) in rules.iter().zip(Code::ALL) {
            assert_eq!(rule["id"], code.as_str());
            assert_eq!(rule["shortDescription"]["text"], code.summary());
            assert_eq!(
                rule["defaultConfiguration"]["level"],
                level(code.default_severity())
            );
        }
        assert_eq!(rules.last().unwrap()["id"], UNCHECKED_RULE_ID);
        assert!(!Code::ALL.iter().any(|c| c.as_str() == UNCHECKED_RULE_ID));
        let critical = &rules[rule_index("pickle-dangerous-global").unwrap()];
        assert_eq!(critical["properties"]["security-severity"], "9.5");
        let info = &rules[rule_index("extension-mismatch").unwrap()];
        assert!(info["properties"].get("security-severity").is_none());
        assert_eq!(info["defaultConfiguration"]["level"], "note");
    }

    #[test]
    fn results_follow_the_report_with_facts_in_properties() {
        let log = to_value(&sample());
        let run = &log["runs"][0];
        let results = run["results"].as_array().unwrap();
        let ids: Vec<&str> = results
            .iter()
            .map(|r| r["ruleId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "manifest-expired",
                "pickle-dangerous-global",
                "digest-mismatch",
                UNCHECKED_RULE_ID
            ]
        );
        // No manifest was authenticated: the run-level finding has no location.
        assert!(results[0].get("locations").is_none());
        let dangerous = &results[1];
        assert_eq!(dangerous["level"], "error");
        assert_eq!(
            dangerous["ruleIndex"],
            rule_index("pickle-dangerous-global").unwrap()
        );
        assert_eq!(
            dangerous["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "dir/model.pt"
        );
        assert_eq!(dangerous["properties"]["global"], "os.system");
        assert_eq!(dangerous["properties"]["severity"], "critical");
        assert_eq!(dangerous["properties"]["location"], "archive/data.pkl@52");
        assert_eq!(results[2]["properties"]["expected"], "sha256:aa");
        assert_eq!(results[2]["properties"]["computed"], "sha256:bb");
        assert_eq!(results[3]["level"], "error");
        assert_eq!(results[3]["ruleIndex"], Code::ALL.len());
        assert_eq!(run["invocations"][0]["executionSuccessful"], false);
        assert_eq!(run["invocations"][0]["exitCode"], 2);
        let fingerprints: std::collections::HashSet<&str> = results
            .iter()
            .map(|r| {
                r["partialFingerprints"]["primaryLocationLineHash"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(fingerprints.len(), results.len());
    }

    #[test]
    fn output_is_deterministic() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        render(&sample(), &mut first).unwrap();
        render(&sample(), &mut second).unwrap();
        assert_eq!(first, second);
        assert!(first.ends_with(b"}\n"));
    }

    #[test]
    fn paths_become_uri_references_that_cannot_forge_a_scheme() {
        assert_eq!(path_to_uri("dir/model.pt"), "dir/model.pt");
        assert_eq!(path_to_uri("./dir/./x"), "dir/./x");
        assert_eq!(path_to_uri(".//x"), "x");
        assert_eq!(path_to_uri("/tmp/a b"), "file:///tmp/a%20b");
        assert_eq!(
            path_to_uri("javascript:alert(1)"),
            "javascript%3Aalert%281%29"
        );
        assert_eq!(path_to_uri("a?b#c%d"), "a%3Fb%23c%25d");
        assert_eq!(path_to_uri("é\u{1b}"), "%C3%A9%1B");
        if !cfg!(windows) {
            assert_eq!(path_to_uri("a\\b"), "a%5Cb");
        }
    }
}
