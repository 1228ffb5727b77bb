//! Chat templates (Jinja text in GGUF metadata, `tokenizer_config.json`, `chat_template.json`,
//! YAML configs and standalone `.jinja` files): a template is parsed with a real Jinja parser
//! and accepted only when everything it does is on an allowlist.
//!
//! Loaders render the template with the conversation; llama-cpp-python once rendered GGUF
//! templates in a plain Jinja2 `Environment`, so `{{ cycler.__init__.__globals__.os }}` ran
//! code (CVE-2024-34359), and a substring denylist is beaten by building the name at render
//! time (`x|attr('__cla' ~ 'ss__')`). So the template is parsed with MiniJinja's parser
//! (never rendered) and its AST checked: no attribute or item name that starts with `_` or
//! names a frame, code or generator internal, judged by the literal's Python value
//! (`'\x5f\x5fclass\x5f\x5f'`); no item key or `attr`/`map`/`selectattr`... attribute that is
//! computed rather than a constant string or an integer; only the filters, tests, callables
//! and methods of real chat templates (see `allow.rs`); no `include`/`import`/`extends`,
//! which read other templates through whatever loader the renderer has. A template that does
//! not parse is `chat-template-invalid`: what it does cannot be checked.
//!
//! Hugging Face's renderer adds the `{% generation %}` block tag; it is read as an `if` around
//! its body so the body is checked. `do` and `break`/`continue` are parsed natively. Where
//! MiniJinja and Jinja2 could read the same text differently (string escapes, whitespace in
//! `{% endraw %}`), the stricter reading wins.
//!
//! This module looks at template text and at the JSON or YAML that carries it; it does not
//! know which file it came from (the dispatcher says that in the location).

mod allow;
mod facts;
mod pystr;
mod text;
mod walk;
mod yaml;

use std::borrow::Cow;

use minijinja::machinery::{self, Token};
use minijinja::syntax::SyntaxConfig;
use serde_json::Value;

use crate::finding::{quote, Code, Finding};

/// Larger text is not a chat template (real ones are under 20 KiB).
const MAX_TEMPLATE_BYTES: usize = 1 << 20;
/// Tokens inside one `{{ }}` or `{% %}` tag; bounds the depth of the expression tree (which
/// the parser builds and drops recursively). Real templates stay under a few hundred.
const MAX_TAG_TOKENS: usize = 2_000;
/// Findings reported for one template; the first ones already reject it.
const MAX_FINDINGS: usize = 20;
/// Templates in one `chat_template` list, and `chat_template` keys in one YAML document.
const MAX_TEMPLATES: usize = 64;

const HINT: &str = "use the chat template published with the base model";

/// Checks one chat template; empty when it parses and stays on the allowlist.
pub fn check(template: &str) -> Vec<Finding> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return vec![invalid(format!(
            "chat template is {} bytes, more than the {MAX_TEMPLATE_BYTES} checked",
            template.len()
        ))];
    }
    let source = match prepare(template) {
        Ok(source) => source,
        Err(message) => return vec![invalid(message)],
    };
    match machinery::parse(&source, "chat_template", SyntaxConfig::default()) {
        Ok(ast) => walk::check(&ast, &source, MAX_FINDINGS),
        Err(error) => vec![invalid(format!(
            "chat template does not parse as Jinja: {}",
            quote(&error.to_string())
        ))],
    }
}

/// Checks the `chat_template` of a JSON document (`tokenizer_config.json`,
/// `chat_template.json`, `processor_config.json`...): a string, or a list of
/// `{"name": ..., "template": ...}`. Locations name the key and the list entry.
pub fn check_json(value: &Value) -> Vec<Finding> {
    match value.get("chat_template") {
        None => Vec::new(),
        Some(value) => check_value(value, "chat_template"),
    }
}

/// Checks every `chat_template` key of a YAML document, at any depth. YAML that uses
/// anchors, aliases, tags or several documents is refused (an alias could carry a template
/// into a key unseen), as is YAML that does not parse or exceeds the bounds.
pub fn check_yaml(text: &str) -> Vec<Finding> {
    let value = match yaml::to_json(text) {
        Ok(value) => value,
        Err(message) => {
            return vec![invalid(format!(
                "YAML cannot be read completely, so its chat templates cannot be checked: \
                 {message}"
            ))]
        }
    };
    let mut findings = Vec::new();
    let mut found = 0usize;
    let mut stack = vec![(&value, String::new())];
    while let Some((node, path)) = stack.pop() {
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if key == "chat_template" {
                        found += 1;
                        if found > MAX_TEMPLATES {
                            return vec![invalid(format!(
                                "YAML holds more than {MAX_TEMPLATES} `chat_template` keys"
                            ))];
                        }
                        findings.extend(check_value(child, &quote(&here)));
                    } else {
                        stack.push((child, here));
                    }
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    stack.push((item, format!("{path}[{index}]")));
                }
            }
            _ => {}
        }
    }
    findings
}

/// A `chat_template` value at `location`: a template string or a list of named templates.
fn check_value(value: &Value, location: &str) -> Vec<Finding> {
    match value {
        Value::String(template) => located(check(template), location),
        Value::Array(entries) if entries.len() <= MAX_TEMPLATES => {
            let mut findings = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                let name = entry.get("name").and_then(Value::as_str);
                let template = entry.get("template").and_then(Value::as_str);
                let fields_ok = entry
                    .as_object()
                    .is_some_and(|map| map.keys().all(|key| key == "name" || key == "template"));
                match (name, template) {
                    (Some(name), Some(template)) if fields_ok => {
                        let here = format!("{location}[{}]", quote(name));
                        findings.extend(located(check(template), &here));
                    }
                    _ => findings.push(
                        invalid(
                            "`chat_template` list entry is not `{\"name\": ..., \"template\": \
                             ...}`"
                                .to_owned(),
                        )
                        .at(format!("{location}[{index}]")),
                    ),
                }
            }
            findings
        }
        Value::Array(entries) => vec![invalid(format!(
            "`chat_template` lists {} templates, more than the {MAX_TEMPLATES} checked",
            entries.len()
        ))
        .at(location)],
        _ => vec![invalid(
            "`chat_template` is neither a string nor a list of named templates".to_owned(),
        )
        .at(location)],
    }
}

fn located(findings: Vec<Finding>, location: &str) -> Vec<Finding> {
    findings.into_iter().map(|f| f.at(location)).collect()
}

fn invalid(message: String) -> Finding {
    Finding::new(Code::ChatTemplateInvalid, message).with_hint(HINT)
}

/// Rewrites Hugging Face's `{% generation %}` / `{% endgeneration %}` into `{% if true %}` /
/// `{% endif %}` of the same length (so spans still point into `template`), and bounds the
/// tokens of each tag. Lexer errors are left for the parser to report.
fn prepare(template: &str) -> Result<Cow<'_, str>, String> {
    let mut edits: Vec<(usize, &str, &str)> = Vec::new();
    let mut tokens = machinery::tokenize(template, false, SyntaxConfig::default());
    let mut in_tag = 0usize;
    // The two tokens before the current one, with their start offsets.
    let mut window: [Option<(Token<'_>, u32)>; 2] = [None, None];
    while let Some(Ok((token, span))) = tokens.next() {
        match token {
            Token::BlockStart | Token::VariableStart => in_tag = 1,
            Token::BlockEnd | Token::VariableEnd => in_tag = 0,
            _ if in_tag > 0 => {
                in_tag += 1;
                if in_tag > MAX_TAG_TOKENS {
                    return Err(format!(
                        "chat template line {}: a tag holds more than {MAX_TAG_TOKENS} tokens",
                        span.start_line
                    ));
                }
            }
            _ => {}
        }
        if let (Token::BlockEnd, [Some((Token::BlockStart, _)), Some((Token::Ident(name), at))]) =
            (&token, &window)
        {
            let replacement = match *name {
                "generation" => Some("if true"),
                "endgeneration" => Some("endif"),
                _ => None,
            };
            if let (Some(replacement), Ok(at)) = (replacement, usize::try_from(*at)) {
                edits.push((at, name, replacement));
            }
        }
        let [_, last] = window;
        window = [last, Some((token, span.start_offset))];
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(template));
    }
    let mut out = String::with_capacity(template.len());
    let mut copied = 0usize;
    for (at, name, replacement) in edits {
        out.push_str(template.get(copied..at).unwrap_or_default());
        // Padded to the tag name's length, so offsets after it do not move.
        out.push_str(&format!("{replacement:<width$}", width = name.len()));
        copied = at.saturating_add(name.len());
    }
    out.push_str(template.get(copied..).unwrap_or_default());
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests;
