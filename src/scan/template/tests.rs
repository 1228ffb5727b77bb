use std::path::PathBuf;

use super::*;

fn fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/chat-templates").join(kind);
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn accepts_every_real_template() {
    let corpus = fixtures("corpus");
    assert!(corpus.len() >= 25);
    let mut failures = Vec::new();
    for (name, text) in &corpus {
        for finding in check(text) {
            failures.push(format!("{name}: {}", finding.message));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn debug_loop_choices() {
    let t = r#"{% for field, field_name in [("maximum", "Maximum"), ("minimum", "Minimum")] %}{% if field in param %}{{ param[field] }}{% endif %}{% endfor %}"#;
    let f = check(t);
    assert!(f.is_empty(), "{f:?}");
    let t = r#"{% set nd = x if x is defined else {} %}{% for tns in y %}{{ (nd[tns] if tns in nd else '') | tojson }}{% endfor %}"#;
    let f = check(t);
    assert!(f.is_empty(), "{f:?}");
}
