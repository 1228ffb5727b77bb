//! `--format sarif`, `--format junit` and `--format json` held to their published schemas:
//! SARIF to the official OASIS SARIF 2.1.0 schema, JUnit XML to the Jenkins/Surefire JUnit XSD
//! (through `xmllint`, plus a small well-formedness check of our own that needs no tool), the
//! JSON report to `docs/report.schema.json`. The schemas are vendored in `tests/data/` (see its
//! README for where they come from). Assertions are on structure (codes, levels, counts), never
//! on human text.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use modelvet::finding::Code;

use crate::support::{fixture, root};

/// Directories of hostile fixtures with critical findings, and one clean file.
const SCAN_FIXTURES: [&str; 4] = ["pickle", "safetensors", "torch", "demo-model"];

#[test]
fn sarif_of_a_scan_with_critical_findings_is_valid_and_matches_the_json_report() {
    let paths = scan_paths();
    let (code, sarif) = run_json(&with_format(&scan_args(&paths), "sarif"));
    assert_eq!(code, 1);
    assert_valid(&sarif_validator(), &sarif);
    let (_, report) = run_json(&with_format(&scan_args(&paths), "json"));
    assert_valid(&report_validator(), &report);

    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), Code::ALL.len() + 1);
    for (rule, code) in rules.iter().zip(Code::ALL) {
        assert_eq!(rule["id"], code.as_str());
    }
    // One result per finding, in report order, each pointing at its file and its rule.
    let results = run["results"].as_array().unwrap();
    let mut expected = Vec::new();
    for file in report["files"].as_array().unwrap() {
        for finding in file["findings"].as_array().unwrap() {
            let level = match finding["severity"].as_str().unwrap() {
                "critical" | "error" => "error",
                "warning" => "warning",
                _ => "note",
            };
            expected.push((
                uri(file["path"].as_str().unwrap()),
                finding["code"].as_str().unwrap().to_owned(),
                level,
            ));
        }
    }
    let found: Vec<(String, String, &str)> = results
        .iter()
        .map(|result| {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
            (
                result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                result["ruleId"].as_str().unwrap().to_owned(),
                result["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    assert!(found
        .iter()
        .any(|(_, code, level)| code == "pickle-dangerous-global" && *level == "error"));
    assert!(found.iter().any(|(_, code, _)| code == "polyglot-file"));
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true);
    assert_eq!(invocation["exitCode"], 1);
}

#[test]
fn sarif_of_a_clean_verify_has_no_results() {
    let (code, sarif) = run_json(&with_format(
        &demo_verify_args(&fixture("demo-model")),
        "sarif",
    ));
    assert_eq!(code, 0);
    assert_valid(&sarif_validator(), &sarif);
    let run = &sarif["runs"][0];
    assert_eq!(run["results"], serde_json::json!([]));
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    assert_eq!(run["invocations"][0]["exitCode"], 0);
    assert_eq!(run["invocations"][0]["properties"]["command"], "verify");

    let (_, report) = run_json(&with_format(
        &demo_verify_args(&fixture("demo-model")),
        "json",
    ));
    assert_valid(&report_validator(), &report);
}

#[test]
fn sarif_of_a_failing_verify_points_at_the_tampered_file() {
    let temp = tempfile::tempdir().unwrap();
    let model = tampered_demo(temp.path());
    let (code, sarif) = run_json(&with_format(&demo_verify_args(&model), "sarif"));
    assert_eq!(code, 1);
    assert_valid(&sarif_validator(), &sarif);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let mismatch = results
        .iter()
        .find(|result| result["ruleId"] == "digest-mismatch")
        .expect("a digest-mismatch result");
    assert_eq!(mismatch["level"], "error");
    assert_eq!(
        mismatch["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "model.safetensors"
    );
    for fact in ["expected", "computed"] {
        assert!(mismatch["properties"][fact]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    let (_, report) = run_json(&with_format(&demo_verify_args(&model), "json"));
    assert_valid(&report_validator(), &report);
}

#[test]
fn junit_of_scans_and_verifications_matches_the_xsd_and_the_report() {
    let temp = tempfile::tempdir().unwrap();
    let tampered = tampered_demo(temp.path());
    let scan = scan_args(&scan_paths());
    let clean = demo_verify_args(&fixture("demo-model"));
    let failing = demo_verify_args(&tampered);
    for (args, exit) in [(scan, 1), (clean, 0), (failing, 1)] {
        let (code, xml) = run(&with_format(&args, "junit"));
        assert_eq!(code, exit, "{args:?}");
        check_junit(&xml, temp.path());
        let (_, report) = run_json(&with_format(&args, "json"));
        let summary = &report["summary"];
        // Run-level findings, or an authenticated manifest, make one more testcase.
        let run_case = report.get("manifest").is_some() || report.get("findings").is_some();
        let run_failed = usize::from(report["findings"].as_array().is_some_and(|findings| {
            findings
                .iter()
                .any(|finding| matches!(finding["severity"].as_str(), Some("error" | "critical")))
        }));
        let tests = summary["files"].as_u64().unwrap() as usize + usize::from(run_case);
        let failures = summary["rejected"].as_u64().unwrap() as usize + run_failed;
        let errors = summary["errors"].as_u64().unwrap() as usize;
        let suite = element(&xml, "<testsuite ");
        assert_eq!(attribute(suite, "tests"), tests.to_string(), "{xml}");
        assert_eq!(attribute(suite, "failures"), failures.to_string(), "{xml}");
        assert_eq!(attribute(suite, "errors"), errors.to_string(), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), tests);
        assert_eq!(xml.matches("<failure ").count(), failures);
        let command = report["command"].as_str().unwrap();
        assert_eq!(attribute(suite, "name"), format!("modelvet {command}"));
    }
}

#[test]
fn hostile_file_names_give_well_formed_junit_and_valid_sarif() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("models");
    fs::create_dir(&dir).unwrap();
    let pickle = fs::read(fixture("pickle/os-system-protocol0.pkl")).unwrap();
    let names = [
        "evil\u{1}\u{1b}[31m]]>&<'\".pkl",
        "cdata]]><![CDATA[x.pkl",
        "bidi\u{202e}lkp.pt",
        "tab\tand\rcr.pkl",
    ];
    for name in names {
        fs::write(dir.join(name), &pickle).unwrap();
    }
    let args = scan_args(std::slice::from_ref(&dir));
    let (code, xml) = run(&with_format(&args, "junit"));
    assert_eq!(code, 1);
    check_junit(&xml, temp.path());
    let suite = element(&xml, "<testsuite ");
    assert_eq!(attribute(suite, "tests"), names.len().to_string());
    assert_eq!(attribute(suite, "failures"), names.len().to_string());
    assert!(!xml.contains("]]>"));
    assert!(!xml.contains("<![CDATA["));

    let (code, sarif) = run_json(&with_format(&args, "sarif"));
    assert_eq!(code, 1);
    assert_valid(&sarif_validator(), &sarif);
    let uris: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(!uris.is_empty());
    for uri in uris {
        assert!(uri.starts_with("file:///"), "{uri}");
        assert!(
            uri.bytes().all(|byte| byte.is_ascii_graphic()
                && !matches!(byte, b'?' | b'#' | b'[' | b']' | b'<' | b'>' | b'"')),
            "{uri}"
        );
    }
}

/// The scan fixtures as paths relative to the repository root, as a user in the repository
/// would type them (SARIF URIs are then relative too).
fn scan_paths() -> Vec<PathBuf> {
    SCAN_FIXTURES
        .iter()
        .map(|dir| Path::new("fixtures").join(dir))
        .collect()
}

fn scan_args(paths: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["scan".to_owned()];
    args.extend(paths.iter().map(|path| path.display().to_string()));
    args
}

/// `verify` of a copy of the demo model against the demo release's manifest and trust policy.
fn demo_verify_args(model: &Path) -> Vec<String> {
    let demo = root().join("manifests/demo");
    vec![
        "verify".to_owned(),
        model.display().to_string(),
        "--manifest".to_owned(),
        demo.join("manifest.json").display().to_string(),
        "--trust".to_owned(),
        demo.join("trust.json").display().to_string(),
        "--unsafe-no-rollback-check".to_owned(),
        "--current-time".to_owned(),
        "2030-01-01T00:00:00Z".to_owned(),
    ]
}

/// A copy of the demo model whose weights have one byte changed (same size, other digest).
fn tampered_demo(temp: &Path) -> PathBuf {
    let model = temp.join("tampered-model");
    crate::support::copy_dir(&fixture("demo-model"), &model);
    let weights = model.join("model.safetensors");
    let mut bytes = fs::read(&weights).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    fs::write(&weights, bytes).unwrap();
    model
}

fn with_format(args: &[String], format: &str) -> Vec<String> {
    let mut args = args.to_vec();
    args.extend(["--format".to_owned(), format.to_owned()]);
    args
}

/// Runs `modelvet` from the repository root; returns the exit code and stdout.
fn run(args: &[String]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_modelvet"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("modelvet runs");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    assert!(
        !stdout.is_empty(),
        "modelvet {args:?} printed nothing; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().expect("exited normally"), stdout)
}

fn run_json(args: &[String]) -> (i32, Value) {
    let (code, stdout) = run(args);
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("modelvet {args:?}: not JSON ({error}):\n{stdout}"));
    (code, value)
}

/// The SARIF URI of a report path (relative, forward slashes; these fixture names need no
/// percent-encoding).
fn uri(path: &str) -> String {
    path.trim_start_matches("./").to_owned()
}

/// The official SARIF 2.1.0 schema (draft-04), with format assertions on.
fn sarif_validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&read(&root().join("tests/data/sarif-schema-2.1.0.json"))).unwrap();
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// `docs/report.schema.json`, with unknown fields forbidden everywhere: the published schema
/// lets consumers accept fields added later, but our own output must be fully described.
fn report_validator() -> jsonschema::Validator {
    let mut schema: Value =
        serde_json::from_str(&read(&root().join("docs/report.schema.json"))).unwrap();
    forbid_unknown_fields(&mut schema);
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn forbid_unknown_fields(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if object.contains_key("properties") {
                object.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            object.values_mut().for_each(forbid_unknown_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_unknown_fields),
        _ => {}
    }
}

/// Fails unless `sarif` is valid against the official SARIF 2.1.0 schema.
pub fn assert_valid_sarif(sarif: &Value) {
    assert_valid(&sarif_validator(), sarif);
}

/// Fails unless `report` is valid against the published JSON report schema.
pub fn assert_valid_report(report: &Value) {
    assert_valid(&report_validator(), report);
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "schema violations:\n{}",
        errors.join("\n")
    );
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Checks a JUnit document: well-formed by our own small checker, and valid against the
/// Jenkins/Surefire JUnit XSD through `xmllint` where it is installed (CI installs it).
#[allow(clippy::print_stderr)] // a skipped check says so in the test's output
fn check_junit(xml: &str, temp: &Path) {
    assert_well_formed(xml);
    let xmllint = Command::new("xmllint").arg("--version").output();
    if xmllint.is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "xmllint is missing, and CI must have it: `apt-get install libxml2-utils` (see .ci/run)"
        );
        eprintln!("note: xmllint not found; JUnit output checked for well-formedness only");
        return;
    }
    let file = temp.join("report.xml");
    fs::write(&file, xml).unwrap();
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(root().join("tests/data/junit-10.xsd"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "xmllint rejects the JUnit report:\n{}\n{xml}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small XML 1.0 well-formedness check, enough for what the renderer writes (declaration,
/// elements, attributes, character data, the five entities and numeric references): legal
/// characters only, balanced tags, no markup characters in text or attribute values.
fn assert_well_formed(xml: &str) {
    let legal = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            || c >= '\u{10000}'
    };
    assert!(xml.chars().all(legal), "illegal character in:\n{xml}");
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut open: Vec<&str> = Vec::new();
    let mut rest = body;
    let mut seen_root = false;
    while let Some(start) = rest.find('<') {
        check_text(&rest[..start], xml);
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "mismatched end tag in:\n{xml}");
            continue;
        }
        assert!(!tag.contains('<'), "`<` inside a tag in:\n{xml}");
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().expect("element name");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "bad element name `{name}`"
        );
        // Attribute values: quoted, and every quote accounted for.
        let attributes = &tag[name.len()..];
        assert_eq!(attributes.matches('"').count() % 2, 0, "unbalanced quotes");
        for value in attributes.split('"').skip(1).step_by(2) {
            check_text(value, xml);
        }
        if open.is_empty() {
            assert!(!seen_root, "two root elements in:\n{xml}");
            seen_root = true;
        }
        if !self_closing {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "unclosed elements {open:?}");
    assert!(rest.trim().is_empty(), "text after the root element");
}

fn check_text(text: &str, xml: &str) {
    assert!(!text.contains('>'), "raw `>` in text in:\n{xml}");
    for (index, _) in text.match_indices('&') {
        let reference = &text[index..];
        let end = reference.find(';').expect("unterminated reference");
        let name = &reference[1..end];
        assert!(
            matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                || name
                    .strip_prefix('#')
                    .is_some_and(|digits| digits.parse::<u32>().is_ok()),
            "bad reference `&{name};` in:\n{xml}"
        );
    }
}

/// The start tag beginning with `prefix` (such as `<testsuite `).
fn element<'a>(xml: &'a str, prefix: &str) -> &'a str {
    let start = xml
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in:\n{xml}"));
    let end = xml[start..].find('>').unwrap() + start;
    &xml[start..end]
}

fn attribute<'a>(tag: &'a str, name: &str) -> &'a str {
    let needle = format!(" {name}=\"");
    let start = tag
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + needle.len();
    let end = tag[start..].find('"').unwrap() + start;
    &tag[start..end]
}

#[test]
fn the_validators_are_not_vacuous() {
    let (_, sarif) = run_json(&with_format(&scan_args(&scan_paths()), "sarif"));
    let validator = sarif_validator();
    let broken: [fn(&mut Value); 4] = [
        |log| log["runs"][0]["results"][0]["level"] = "critical".into(),
        |log| {
            drop(
                log["runs"][0]["results"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("message"),
            )
        },
        |log| log["runs"][0]["results"][0]["ruleIndex"] = (-2).into(),
        |log| {
            log["runs"][0]["tool"]["driver"]["rules"][0]["defaultConfiguration"]["level"] =
                "severe".into()
        },
    ];
    for (index, breaking) in broken.iter().enumerate() {
        let mut log = sarif.clone();
        breaking(&mut log);
        assert!(!validator.is_valid(&log), "breakage {index} went unnoticed");
    }

    let (_, report) = run_json(&with_format(&scan_args(&scan_paths()), "json"));
    let validator = report_validator();
    let broken: [fn(&mut Value); 3] = [
        |report| report["files"][0]["findings"][0]["code"] = "no-such-code".into(),
        |report| report["files"][0]["verdict"] = "maybe".into(),
        |report| report["files"][0]["surprise"] = true.into(),
    ];
    for (index, breaking) in broken.iter().enumerate() {
        let mut report = report.clone();
        breaking(&mut report);
        assert!(
            !validator.is_valid(&report),
            "breakage {index} went unnoticed"
        );
    }
}
