//! Chat templates (Jinja text shipped inside GGUF metadata): a template that reaches Python
//! internals is refused.
//!
//! Loaders render the template with the conversation; llama-cpp-python once rendered GGUF
//! templates in an unsandboxed Jinja environment, so `{{ cycler.__init__.__globals__.os }}`
//! ran code (CVE-2024-34359). Legitimate templates format messages and never touch dunder
//! attributes, so any access to one of the attributes that lead out of Jinja is a finding.
//! This module looks at template text only; it does not know where the text came from.

use crate::finding::{quote, Code, Finding};

/// Attributes that walk from a template value to Python's object graph, modules or builtins.
const ESCAPES: &[&str] = &[
    "__class__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__mro__",
    "__base__",
    "__bases__",
    "__init__",
    "__getattribute__",
    "__dict__",
    "__code__",
    "__reduce__",
    "__reduce_ex__",
];

/// A finding when `template` reaches Python internals.
pub fn check(template: &str) -> Option<Finding> {
    let escape = ESCAPES.iter().find(|name| template.contains(*name))?;
    let context = template
        .find(escape)
        .map(|at| {
            let mut start = at.saturating_sub(40);
            while !template.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = at.saturating_add(escape.len() + 40).min(template.len());
            while !template.is_char_boundary(end) {
                end += 1;
            }
            template.get(start..end).unwrap_or(escape)
        })
        .unwrap_or(escape);
    Some(
        Finding::new(
            Code::ChatTemplateInjection,
            format!(
                "chat template accesses `{escape}`, which reaches Python internals: `{}`",
                quote(context)
            ),
        )
        .with_hint("use the chat template published with the base model"),
    )
}

/// Chat templates in a JSON config (`tokenizer_config.json`, `chat_template.json`): a
/// `chat_template` string, or a list of `{"name", "template"}` entries.
pub fn check_json(value: &serde_json::Value) -> Vec<Finding> {
    let Some(templates) = value.get("chat_template") else {
        return Vec::new();
    };
    let texts: Vec<&str> = match templates {
        serde_json::Value::String(text) => vec![text.as_str()],
        serde_json::Value::Array(entries) => entries
            .iter()
            .filter_map(|entry| entry.get("template").and_then(serde_json::Value::as_str))
            .collect(),
        _ => Vec::new(),
    };
    texts.into_iter().filter_map(check).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_template_injection_and_accepts_ordinary_templates() {
        let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + \
                      message['content'] + '<|im_end|>'}}{% endfor %}";
        assert!(check(chatml).is_none());
        let evil = "{{ cycler.__init__.__globals__.os.popen('id').read() }}";
        let finding = check(evil).unwrap();
        assert_eq!(finding.code, Code::ChatTemplateInjection);
        assert!(finding.message.contains("__init__"));
        assert!(check("{{ ''.__class__.__mro__[1].__subclasses__() }}").is_some());
    }
}
