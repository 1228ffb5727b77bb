//! Plugin params: one flat JSON object of numbers, strings, booleans and nulls.
//!
//! A small hand-written parser instead of serde_json: params are a handful of scalars, the
//! parser is about 200 lines with no dependency (so the plugins' `Cargo.lock` stays empty and
//! nothing from a registry enters the reproducible build), and it keeps the wasm small.
//! It follows RFC 8259 for the subset it accepts and rejects the rest by name: nested arrays
//! and objects, duplicate keys, trailing data, numbers that overflow. Numbers are parsed
//! with `str::parse::<f64>` (correctly rounded, the same on every target).

use crate::error::{Float, PluginError};

/// One param value. `null` counts as absent for the `*_or` accessors.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
        }
    }
}

/// The parsed params object, in document order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    entries: Vec<(String, Value)>,
}

impl Params {
    /// Parses a JSON object (`{}` for none). Errors name the byte offset.
    pub fn parse(json: &[u8]) -> Result<Params, PluginError> {
        let text = std::str::from_utf8(json).map_err(|err| {
            PluginError::params(format!("not UTF-8 at byte `{}`", err.valid_up_to()))
        })?;
        Parser { text, pos: 0 }.object()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The keys, in document order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Fails on any key not in `known`, so a misspelt param is an error, not a silent
    /// default.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), PluginError> {
        match self.keys().find(|key| !known.contains(key)) {
            None => Ok(()),
            Some(key) => {
                let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                Err(PluginError::params(format!(
                    "unknown param `{key}` (known: {})",
                    known.join(", ")
                )))
            }
        }
    }

    /// A number param, or `default` when absent or null.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, PluginError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => Ok(*n),
            Some(other) => Err(mistyped(key, "a number", other)),
        }
    }

    /// A number param converted to f32 (round to nearest), or `default` when absent or
    /// null. A number too large for f32 is an error, never infinity.
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32, PluginError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => {
                let narrowed = *n as f32;
                if narrowed.is_finite() {
                    Ok(narrowed)
                } else {
                    Err(PluginError::params(format!(
                        "param `{key}` = `{}` is out of range for f32",
                        Float(*n)
                    )))
                }
            }
            Some(other) => Err(mistyped(key, "a number", other)),
        }
    }

    /// A boolean param, or `default` when absent or null.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, PluginError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(mistyped(key, "a boolean", other)),
        }
    }

    /// A string param, or `None` when absent or null.
    pub fn str_opt(&self, key: &str) -> Result<Option<&str>, PluginError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(mistyped(key, "a string", other)),
        }
    }

    /// A string param, or `default` when absent or null.
    pub fn str_or<'p>(&'p self, key: &str, default: &'p str) -> Result<&'p str, PluginError> {
        Ok(self.str_opt(key)?.unwrap_or(default))
    }
}

fn mistyped(key: &str, expected: &str, actual: &Value) -> PluginError {
    PluginError::params(format!(
        "param `{key}` must be {expected}, got {}",
        actual.kind()
    ))
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
}

impl Parser<'_> {
    fn object(mut self) -> Result<Params, PluginError> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        self.expect(b'{', "`{` (params must be a JSON object)")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let key_at = self.pos;
                let key = self.string()?;
                if entries.iter().any(|(k, _)| *k == key) {
                    return Err(self.error_at(key_at, &format!("duplicate key `{key}`")));
                }
                self.skip_ws();
                self.expect(b':', "`:`")?;
                self.skip_ws();
                let value = self.value()?;
                entries.push((key, value));
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected `,` or `}`")),
                }
            }
        }
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.error("trailing data after the object"));
        }
        Ok(Params { entries })
    }

    fn value(&mut self) -> Result<Value, PluginError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[' | b'{') => {
                Err(self.error("nested arrays and objects are not supported in params"))
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, PluginError> {
        if self.rest().starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Value, PluginError> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit")),
        }
        if self.eat(b'.') {
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit after `.`"));
            }
            self.digits();
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.digits();
        }
        let literal = self.text.get(start..self.pos).unwrap_or_default();
        match literal.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(self.error_at(start, &format!("number `{literal}` is out of range"))),
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, PluginError> {
        self.expect(b'"', "`\"`")?;
        let mut out = String::new();
        loop {
            let mut chars = self.rest().chars();
            let Some(c) = chars.next() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                c if u32::from(c) < 0x20 => {
                    return Err(self.error("control character in string"));
                }
                c => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
            }
        }
    }

    /// One escape after the backslash.
    fn escape(&mut self) -> Result<char, PluginError> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !(self.eat(b'\\') && self.eat(b'u')) {
                        return Err(self.error("unpaired surrogate in `\\u` escape"));
                    }
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.error("unpaired surrogate in `\\u` escape"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    first
                };
                char::from_u32(code)
                    .ok_or_else(|| self.error("unpaired surrogate in `\\u` escape"))?
            }
            _ => return Err(self.error_at(self.pos - 1, "unknown escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, PluginError> {
        let digits = self
            .text
            .get(self.pos..self.pos.saturating_add(4))
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected 4 hex digits"))?;
        let value =
            u32::from_str_radix(digits, 16).map_err(|_| self.error("expected 4 hex digits"))?;
        self.pos += 4;
        Ok(value)
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), PluginError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> PluginError {
        self.error_at(self.pos, what)
    }

    fn error_at(&self, at: usize, what: &str) -> PluginError {
        PluginError::params(format!("{what} at byte `{at}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Params, PluginError> {
        Params::parse(s.as_bytes())
    }

    fn message(err: PluginError) -> String {
        match err {
            PluginError::Params { message } => message,
            other => panic!("not a params error: {other:?}"),
        }
    }

    #[test]
    fn parses_scalars_in_order() {
        let p = parse(
            r#" { "center": 40, "width": -1.5e2, "name": "a\"b\u00e9\ud83d\ude00", "on": true,
                 "off": false, "none": null } "#,
        )
        .unwrap();
        assert_eq!(
            p.keys().collect::<Vec<_>>(),
            ["center", "width", "name", "on", "off", "none"]
        );
        assert_eq!(p.f32_or("center", 0.0).unwrap(), 40.0);
        assert_eq!(p.f64_or("width", 0.0).unwrap(), -150.0);
        assert_eq!(p.str_or("name", "").unwrap(), "a\"b\u{e9}\u{1F600}");
        assert!(p.bool_or("on", false).unwrap());
        assert!(!p.bool_or("off", true).unwrap());
        assert_eq!(p.f32_or("none", 7.0).unwrap(), 7.0);
        assert_eq!(p.f32_or("absent", 7.0).unwrap(), 7.0);
        assert_eq!(p.str_opt("absent").unwrap(), None);
        assert_eq!(parse("{}").unwrap(), Params::default());
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for ok in ["0", "-0", "1.25", "1e3", "1E+3", "2.5e-3", "123456789"] {
            let p = parse(&format!(r#"{{"x": {ok}}}"#)).unwrap();
            assert_eq!(
                p.f64_or("x", f64::NAN).unwrap(),
                ok.parse::<f64>().unwrap(),
                "{ok}"
            );
        }
        for bad in [
            "01", "+1", ".5", "1.", "1e", "-", "NaN", "Infinity", "0x10", "1e400",
        ] {
            assert!(parse(&format!(r#"{{"x": {bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_what_it_does_not_take_with_offsets() {
        assert_eq!(
            message(parse("").unwrap_err()),
            "expected `{` (params must be a JSON object) at byte `0`"
        );
        assert_eq!(
            message(parse("[1]").unwrap_err()),
            "expected `{` (params must be a JSON object) at byte `0`"
        );
        assert_eq!(
            message(parse(r#"{"a": [1]}"#).unwrap_err()),
            "nested arrays and objects are not supported in params at byte `6`"
        );
        assert_eq!(
            message(parse(r#"{"a": 1, "a": 2}"#).unwrap_err()),
            "duplicate key `a` at byte `9`"
        );
        assert_eq!(
            message(parse(r#"{"a": 1} x"#).unwrap_err()),
            "trailing data after the object at byte `9`"
        );
        assert_eq!(
            message(parse(r#"{"a": 1,}"#).unwrap_err()),
            "expected `\"` at byte `8`"
        );
        assert_eq!(
            message(parse(r#"{"a" 1}"#).unwrap_err()),
            "expected `:` at byte `5`"
        );
        assert_eq!(
            message(parse(r#"{"a": tru}"#).unwrap_err()),
            "expected a value at byte `6`"
        );
        assert_eq!(
            message(parse("{\"a\": \"x\ny\"}").unwrap_err()),
            "control character in string at byte `8`"
        );
        assert_eq!(
            message(parse(r#"{"a": "\q"}"#).unwrap_err()),
            "unknown escape at byte `8`"
        );
        assert_eq!(
            message(parse(r#"{"a": "\ud800"}"#).unwrap_err()),
            "unpaired surrogate in `\\u` escape at byte `13`"
        );
        assert_eq!(
            message(parse(r#"{"a": "\u12"}"#).unwrap_err()),
            "expected 4 hex digits at byte `9`"
        );
        assert_eq!(
            message(parse(r#"{"a": "abc"#).unwrap_err()),
            "unterminated string at byte `10`"
        );
        assert_eq!(
            message(Params::parse(b"{\"a\": \"\xff\"}").unwrap_err()),
            "not UTF-8 at byte `7`"
        );
    }

    #[test]
    fn accessors_check_types_and_ranges() {
        let p = parse(r#"{"n": 1, "s": "x", "b": true, "big": 1e39}"#).unwrap();
        assert_eq!(
            message(p.str_or("n", "").unwrap_err()),
            "param `n` must be a string, got a number"
        );
        assert_eq!(
            message(p.f32_or("s", 0.0).unwrap_err()),
            "param `s` must be a number, got a string"
        );
        assert_eq!(
            message(p.f32_or("b", 0.0).unwrap_err()),
            "param `b` must be a number, got a boolean"
        );
        assert_eq!(
            message(p.bool_or("n", false).unwrap_err()),
            "param `n` must be a boolean, got a number"
        );
        assert_eq!(
            message(p.f32_or("big", 0.0).unwrap_err()),
            "param `big` = `1e39` is out of range for f32"
        );
        assert_eq!(p.f64_or("big", 0.0).unwrap(), 1e39);
        assert!(p.allow_only(&["n", "s", "b", "big"]).is_ok());
        assert_eq!(
            message(p.allow_only(&["n", "s"]).unwrap_err()),
            "unknown param `b` (known: `n`, `s`)"
        );
    }
}
