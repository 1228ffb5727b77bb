use std::path::PathBuf;

use super::*;

fn fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/chat-templates")
        .join(kind);
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
fn refuses_every_hostile_template() {
    let hostile = fixtures("hostile");
    assert!(hostile.len() >= 30);
    for (name, text) in &hostile {
        let findings = check(text);
        assert!(!findings.is_empty(), "{name} accepted");
        let expected = if name.starts_with("raw-") {
            Code::ChatTemplateInvalid
        } else {
            Code::ChatTemplateInjection
        };
        assert!(
            findings.iter().any(|f| f.code == expected),
            "{name}: {findings:?}"
        );
    }
}

fn codes(template: &str) -> Vec<Code> {
    check(template).into_iter().map(|f| f.code).collect()
}

#[test]
fn names_are_judged_by_their_python_value() {
    let ok = [
        "{{ messages[0]['content'] }}",
        "{{ messages[-1].content }}",
        "{% for i in range(messages|length) %}{{ messages[i] }}{% endfor %}",
        "{{ messages[loop.index0 - 1] if loop is defined }}",
        "{{ messages|selectattr('role', 'equalto', 'system')|list }}",
        "{{ messages|map(attribute='content')|join }}",
        "{{ messages|map('trim')|list }}",
        "{{ '<{}>'.format(bos_token) }}",
        "{% set ns = namespace(i=0) %}{% set ns.i = ns.i + 1 %}{{ messages[ns.i] }}",
        "{% for k, v in tool|items %}{{ tool[k] }}{% endfor %}",
        "{% for k in ['role', 'content'] %}{{ message[k] }}{% endfor %}",
        "{% set m = {'a': 1} %}{{ m[x] }}",
        "{{ (d[k] if k in d else '') }}",
        "{% set key = 'content' %}{{ message[key] }}",
    ];
    for template in ok {
        assert_eq!(codes(template), [], "{template}");
    }
    let bad = [
        "{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}",
        "{{ x[a ~ b] }}",
        "{{ x[key] }}",
        "{{ x|attr(name) }}",
        "{{ x.gi_frame }}",
        "{{ x.mro }}",
        "{{ x|map(attribute='a.__class__')|list }}",
        "{{ x|selectattr(name)|list }}",
        "{{ x|sort(attribute=y) }}",
        "{{ x|sum('__len__') }}",
        "{{ x|map('attr', 'a')|list }}",
        "{{ x|select('callable')|list }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ fmt.format(x) }}",
        "{{ x.format_map(y) }}",
        "{{ x.update(y) }}",
        "{{ x|pprint }}",
        "{{ x is callable }}",
        "{{ cycler }}",
        "{{ lipsum() }}",
        "{{ x()() }}",
        "{% set range = x %}{{ range(3) }}",
        "{% for i in range(3) %}{% set i = key %}{{ x[i] }}{% endfor %}",
        "{% set i = 0 %}{% if c %}{% set i = key %}{% endif %}{{ x[i] }}",
        "{% macro m(i) %}{{ x[i] }}{% endmacro %}",
        "{% block b %}{% endblock %}",
    ];
    for template in bad {
        assert!(
            codes(template).contains(&Code::ChatTemplateInjection),
            "{template}"
        );
    }
}

#[test]
fn unparseable_and_oversized_templates_are_invalid() {
    for template in [
        "{% if %}",
        "{{ x",
        "{% generation x %}{% endgeneration %}",
        "{% endraw %}",
    ] {
        assert_eq!(codes(template), [Code::ChatTemplateInvalid], "{template}");
    }
    let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
    assert_eq!(codes(&big), [Code::ChatTemplateInvalid]);
    let deep = format!("{{{{ x{} }}}}", ".a".repeat(5_000));
    assert_eq!(codes(&deep), [Code::ChatTemplateInvalid]);
    let nested = format!("{{{{ {}1{} }}}}", "(".repeat(1_000), ")".repeat(1_000));
    assert!(codes(&nested).contains(&Code::ChatTemplateInvalid));
}

#[test]
fn generation_tags_parse_and_their_body_is_checked() {
    let ok =
        "{% for m in messages %}{%- generation -%}{{ m.content }}{%- endgeneration -%}{% endfor %}";
    assert_eq!(codes(ok), []);
    let bad = "{% generation %}{{ x.__class__ }}{% endgeneration %}";
    let findings = check(bad);
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].message.contains("column 20"),
        "{}",
        findings[0].message
    );
    // Inside a string the tag is text, and stays untouched.
    assert_eq!(codes("{{ '{% generation %}' }}"), []);
}

#[test]
fn json_chat_templates_are_found_as_string_or_named_list() {
    let value = serde_json::json!({"chat_template": "{{ x.__class__ }}"});
    let findings = check_json(&value);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].location.as_deref(), Some("chat_template"));
    let value = serde_json::json!({"chat_template": [
        {"name": "default", "template": "{{ messages[0].content }}"},
        {"name": "tool_use", "template": "{{ lipsum.__globals__ }}"},
    ]});
    let findings = check_json(&value);
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|f| f.location.as_deref() == Some("chat_template[tool_use]")));
    for shape in [
        serde_json::json!({"chat_template": 3}),
        serde_json::json!({"chat_template": [{"template": "x"}]}),
        serde_json::json!({"chat_template": [{"name": "a", "template": "x", "extra": 1}]}),
        serde_json::json!({"chat_template": {"name": "a"}}),
    ] {
        assert_eq!(
            check_json(&shape)
                .iter()
                .map(|f| f.code)
                .collect::<Vec<_>>(),
            [Code::ChatTemplateInvalid],
            "{shape}"
        );
    }
    assert_eq!(check_json(&serde_json::json!({"bos_token": "<s>"})), []);
    assert_eq!(check_json(&serde_json::json!(["chat_template"])), []);
}

#[test]
fn yaml_chat_templates_are_found_anywhere_and_aliases_refused() {
    let yaml = "model:\n  tokenizer:\n    chat_template: \"{{ x.__class__ }}\"\nother: 1\n";
    let findings = check_yaml(yaml);
    assert_eq!(findings.len(), 1);
    assert_eq!(
        findings[0].location.as_deref(),
        Some("model.tokenizer.chat_template")
    );
    let fine = "chat_template: |\n  {% for m in messages %}{{ m.content }}{% endfor %}\n";
    assert_eq!(check_yaml(fine), []);
    for refused in [
        "t: &a \"{{ x }}\"\nchat_template: *a\n",
        "chat_template: !!str x\n",
        "a: 1\n---\nchat_template: x\n",
        "chat_template: x\nchat_template: y\n",
        "chat_template: [\n",
    ] {
        assert_eq!(
            check_yaml(refused)
                .iter()
                .map(|f| f.code)
                .collect::<Vec<_>>(),
            [Code::ChatTemplateInvalid],
            "{refused}"
        );
    }
}

/// A seeded mutator over the real corpus: splices Jinja fragments into real templates. No
/// mutation may panic, findings stay bounded and the answer is deterministic.
#[test]
fn mutated_real_templates_never_panic() {
    const FRAGMENTS: &[&str] = &[
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "'",
        "\"",
        "\\",
        "__class__",
        ".__init__",
        "|attr(",
        "[",
        "]",
        "(",
        ")",
        "~",
        "{% raw %}",
        "{% endraw %}",
        "{% generation %}",
        "\u{b}",
        "{% endgeneration %}",
        "|map(attribute=",
        "'\\x5f'",
        "-",
        "+",
        " ",
        "\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % u64::try_from(bound.max(1)).unwrap()).unwrap()
    };
    for (name, text) in fixtures("corpus") {
        for _ in 0..20 {
            let mut mutated = text.clone();
            for _ in 0..1 + next(3) {
                let mut at = next(mutated.len() + 1);
                while !mutated.is_char_boundary(at) {
                    at -= 1;
                }
                mutated.insert_str(at, FRAGMENTS[next(FRAGMENTS.len())]);
            }
            let findings = check(&mutated);
            assert!(findings.len() <= MAX_FINDINGS, "{name}");
            assert_eq!(findings, check(&mutated), "{name}: not deterministic");
        }
    }
}
