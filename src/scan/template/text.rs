//! Small readings of template text that the walker needs: the targets a loop unpacks,
//! `str.format` fields, and where raw text would end differently in Jinja2.

use minijinja::machinery::ast::Expr;

/// The items of a tuple or list (loop targets unpack either).
pub(super) fn unpacked<'x, 'a>(expr: &'x Expr<'a>) -> Option<&'x [Expr<'a>]> {
    match expr {
        Expr::Tuple(t) => Some(&t.items),
        Expr::List(l) => Some(&l.items),
        _ => None,
    }
}

/// Whether every replacement field of a `str.format` string is `{}`, `{0}` or `{name}` with
/// an optional `!r`/`!s`/`!a` and a spec without nested fields: no `.attr` or `[key]` walks.
pub(super) fn plain_format_fields(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => return false,
                        Some(c) => field.push(c),
                    }
                }
                let name = field.split(['!', ':']).next().unwrap_or_default();
                let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with('_');
                if !plain {
                    return false;
                }
            }
            '}' => return false,
            _ => {}
        }
    }
    true
}

/// Where raw text holds what Jinja2 would read as `{% endraw %}`: MiniJinja only skips ASCII
/// whitespace inside that tag, Jinja2 skips any Python whitespace (`\v`, `\u00a0`...), so
/// text MiniJinja keeps raw could be code to Jinja2.
pub(super) fn jinja2_tag_in_raw(raw: &str) -> Option<usize> {
    let mut from = 0usize;
    while let Some(found) = raw.get(from..).and_then(|rest| rest.find("{%")) {
        let at = from + found;
        let rest = raw.get(at + 2..).unwrap_or_default();
        let rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
        // Python's `\s` also counts the separators U+001C..U+001F, which Rust does not.
        let rest =
            rest.trim_start_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
        if rest.starts_with("endraw") {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_fields_and_raw_ends() {
        assert!(plain_format_fields("<{}>{0}{name!r:>8}{{x}}"));
        for walking in ["{0.__class__}", "{x[0]}", "{:{w}}", "{_x}", "}", "{"] {
            assert!(!plain_format_fields(walking), "{walking}");
        }
        assert_eq!(jinja2_tag_in_raw("a {%\u{b}endraw%} b"), Some(2));
        assert_eq!(jinja2_tag_in_raw("a {%-\u{1f} endraw %}"), Some(2));
        assert_eq!(jinja2_tag_in_raw("{{ x }} {% if %}"), None);
    }
}
