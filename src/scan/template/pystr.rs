//! Jinja2's reading of string literals, so a name is judged by the value Python sees.
//!
//! MiniJinja unescapes literals JSON-style; Jinja2 runs them through Python's
//! `unicode_escape` codec (after `backslashreplace` of non-ASCII text), which also knows
//! `\U0000005f`, `\N{LOW LINE}`, `\a`, `\v`, three-digit octals and line continuations. A
//! literal whose Python value cannot be computed here (`\N{...}`, a lone surrogate, a broken
//! escape) is `None`: the caller treats it as unjudgeable.

/// Decodes the source text of one or more adjacent string literals (`'a' "b"`, which Jinja2
/// concatenates) as Jinja2 does; `None` when the text is anything else or not decodable.
pub(super) fn decode_literals(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let mut chars = rest.char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('\'' | '"'))) => q,
            _ => return None,
        };
        let mut escaped = false;
        let mut end = None;
        for (at, c) in chars {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                end = Some(at);
                break;
            }
        }
        let end = end?;
        out.push_str(&decode_body(rest.get(1..end)?)?);
        rest = rest.get(end + 1..)?.trim_start();
    }
    Some(out)
}

/// `body.replace("\r\n", "\n")...encode("ascii", "backslashreplace").decode("unicode-escape")`.
fn decode_body(body: &str) -> Option<String> {
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let mut ascii = String::with_capacity(normalized.len());
    for c in normalized.chars() {
        let code = u32::from(c);
        match code {
            0..=0x7f => ascii.push(c),
            0x80..=0xff => ascii.push_str(&format!("\\x{code:02x}")),
            0x100..=0xffff => ascii.push_str(&format!("\\u{code:04x}")),
            _ => ascii.push_str(&format!("\\U{code:08x}")),
        }
    }
    unicode_escape(&ascii)
}

/// Python's `unicode_escape` decoder over ASCII input.
fn unicode_escape(ascii: &str) -> Option<String> {
    let bytes = ascii.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0usize;
    while let Some(&b) = bytes.get(at) {
        at += 1;
        if b != b'\\' {
            out.push(char::from(b));
            continue;
        }
        // A trailing lone backslash is an error in Python ("\\ at end of string").
        let e = *bytes.get(at)?;
        at += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(char::from(e)),
            b'a' => out.push('\x07'),
            b'b' => out.push('\x08'),
            b'f' => out.push('\x0c'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'v' => out.push('\x0b'),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                for _ in 0..2 {
                    match bytes.get(at) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            at += 1;
                        }
                        _ => break,
                    }
                }
                out.push(char::from_u32(value)?);
            }
            b'x' | b'u' | b'U' => {
                let digits = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let hex = ascii.get(at..at.checked_add(digits)?)?;
                if !hex.bytes().all(|d| d.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                at += digits;
            }
            // `\N{name}` needs Unicode's name table; unjudgeable here.
            b'N' => return None,
            _ => {
                out.push('\\');
                out.push(char::from(e));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_python_unicode_escape() {
        assert_eq!(decode_literals("'content'").unwrap(), "content");
        assert_eq!(
            decode_literals(r"'\x5f\x5fclass\x5f\x5f'").unwrap(),
            "__class__"
        );
        assert_eq!(decode_literals(r#""\u005f\U0000005fa""#).unwrap(), "__a");
        assert_eq!(decode_literals(r"'\137\137' '_x'").unwrap(), "___x");
        assert_eq!(decode_literals("'a\\\nb'").unwrap(), "ab");
        assert_eq!(decode_literals(r"'\d\/'").unwrap(), r"\d\/");
        assert_eq!(decode_literals(r"'\a\v'").unwrap(), "\x07\x0b");
        assert_eq!(decode_literals("'é'").unwrap(), "é");
        assert_eq!(decode_literals("'\\é'").unwrap(), "\\xe9");
        assert_eq!(decode_literals(r"'\N{LOW LINE}'"), None);
        assert_eq!(decode_literals(r"'\x5'"), None);
        assert_eq!(decode_literals(r"'\ud800'"), None);
        assert_eq!(decode_literals("name"), None);
        assert_eq!(decode_literals("'a' ~ 'b'"), None);
    }
}
