#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::finding::Code;
use modelvet::scan::template;

fuzz_target!(|data: &[u8]| {
    // The same text as a template, inside JSON and as YAML: never a panic, only template
    // codes, and a bounded number of findings.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let json = serde_json::json!({ "chat_template": text });
    for findings in [
        template::check(text),
        template::check_json(&json),
        template::check_yaml(text),
    ] {
        assert!(findings.len() <= 64 * 20);
        for finding in findings {
            assert!(matches!(
                finding.code,
                Code::ChatTemplateInjection | Code::ChatTemplateInvalid
            ));
        }
    }
});
