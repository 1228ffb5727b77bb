//! Opcode arguments read exactly as CPython reads them, in the union of its two unpicklers.
//!
//! Text opcodes (INT, LONG, FLOAT, STRING, UNICODE, GET, PUT) carry a line whose parsing
//! decides whether the stream goes on. The C unpickler (`Modules/_pickle.c`) hands the line,
//! newline and a terminating NUL included, to C's `strtol`, `PyLong_FromString`,
//! `PyOS_string_to_double`, `PyBytes_DecodeEscape` and the raw-unicode-escape codec; the
//! pure-Python unpickler (`pickle._Unpickler`) calls `int()` and `float()` on it. A line is
//! valid here when *either* accepts it: an emulator stricter than a loader stops reading where
//! the loader goes on, which is a bypass, while a more lenient one only reads further. This
//! module owns those rules (CPython 3.9-3.14 agree on all of them) and nothing else.

/// C's `isspace` in the C locale, and CPython's `Py_ISSPACE`: the same six bytes.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The line as a C string: the content, its newline and a NUL, cut at the first NUL.
fn c_string(content: &[u8]) -> Vec<u8> {
    let mut text: Vec<u8> = content.iter().copied().take_while(|b| *b != 0).collect();
    if text.len() == content.len() {
        text.push(b'\n');
    }
    text
}

/// INT (`I`): `strtol(s, &end, 0)` ending at the newline or a NUL, else
/// `PyLong_FromString(s, NULL, 0)`; `int(line, 0)` in Python (a subset of the second).
pub fn int_line(content: &[u8]) -> bool {
    if content.is_empty() {
        return false;
    }
    strtol_base0(content) || py_long(&c_string(content), Base::Auto).is_some()
}

/// LONG (`L`): a trailing `L` is cut (C overwrites it with a NUL), then
/// `PyLong_FromString(s, NULL, 0)`.
pub fn long_line(content: &[u8]) -> bool {
    let digits = content.strip_suffix(b"L").unwrap_or(content);
    if content.is_empty() {
        return false;
    }
    let text = if digits.len() < content.len() {
        digits.iter().copied().take_while(|b| *b != 0).collect()
    } else {
        c_string(digits)
    };
    py_long(&text, Base::Auto).is_some()
}

/// FLOAT (`F`): `PyOS_string_to_double` with overflow an error, ending at the newline or a
/// NUL (C), or Python's `float()` (surrounding whitespace, underscores, overflow to inf).
pub fn float_line(content: &[u8]) -> bool {
    if content.is_empty() {
        return false;
    }
    let c = c_string(content);
    let c_ok = match dtoa_prefix(&c) {
        Some((end, overflow)) => !overflow && matches!(c.get(end), Some(b'\n' | 0) | None),
        None => false,
    };
    c_ok || py_float(content)
}

/// GET/PUT keys (`g`, `p`): `PyLong_FromString(s, NULL, 10)` then `PyLong_AsSsize_t`.
/// `None` when neither unpickler reads an index; negative keys come back as `Negative`.
pub fn memo_key(content: &[u8]) -> Option<Key> {
    if content.is_empty() {
        return None;
    }
    py_long(&c_string(content), Base::Ten)
        .and_then(|value| value.fits_isize())
        .map(|(negative, magnitude)| {
            if negative && magnitude != 0 {
                Key::Negative
            } else {
                Key::Index(magnitude)
            }
        })
}

/// A memo index as read from a text key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Index(u64),
    /// GET finds nothing under it; PUT refuses it.
    Negative,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Auto,
    Ten,
}

/// What `PyLong_FromString` parsed: sign and magnitude when it fits 64 bits.
struct Parsed {
    negative: bool,
    magnitude: Option<u64>,
}

impl Parsed {
    fn fits_isize(&self) -> Option<(bool, u64)> {
        let magnitude = self.magnitude?;
        let limit = if self.negative {
            (isize::MAX as u64) + 1
        } else {
            isize::MAX as u64
        };
        (magnitude <= limit).then_some((self.negative, magnitude))
    }
}

/// Leading whitespace and an optional sign, as `strtol` and `PyLong_FromString` both skip
/// them: where the digits start and whether the number is negative.
fn space_and_sign(text: &[u8]) -> (usize, bool) {
    let mut at = 0usize;
    while text.get(at).copied().is_some_and(is_space) {
        at += 1;
    }
    match text.get(at) {
        Some(b'+') => (at + 1, false),
        Some(b'-') => (at + 1, true),
        _ => (at, false),
    }
}

/// `PyLong_FromString(text, NULL, base)` on a C string (`text` has no NUL): leading and
/// trailing whitespace, a sign, `0x`/`0o`/`0b` prefixes (base 0) with one optional underscore
/// after them, single underscores between digits, and no leading zeros in base-0 decimals
/// unless the value is zero.
fn py_long(text: &[u8], base: Base) -> Option<Parsed> {
    let (mut at, negative) = space_and_sign(text);
    let mut radix = 10u32;
    let mut zero_only = false;
    if base == Base::Auto && text.get(at) == Some(&b'0') {
        match text.get(at + 1).map(u8::to_ascii_lowercase) {
            Some(b'x') => radix = 16,
            Some(b'o') => radix = 8,
            Some(b'b') => radix = 2,
            _ => zero_only = true,
        }
        if radix != 10 {
            at += 2;
            if text.get(at) == Some(&b'_') {
                at += 1;
            }
        }
    }
    if text.get(at) == Some(&b'_') {
        return None;
    }
    let mut digits = 0usize;
    let mut previous = 0u8;
    let mut magnitude = Some(0u64);
    let mut nonzero = false;
    while let Some(&byte) = text.get(at) {
        if byte == b'_' {
            if previous == b'_' {
                return None;
            }
        } else {
            let Some(value) = char::from(byte).to_digit(radix) else {
                break;
            };
            digits += 1;
            nonzero |= value != 0;
            magnitude = magnitude
                .and_then(|m| m.checked_mul(u64::from(radix)))
                .and_then(|m| m.checked_add(u64::from(value)));
        }
        previous = byte;
        at += 1;
    }
    if previous == b'_' || digits == 0 || (zero_only && nonzero) {
        return None;
    }
    while text.get(at).copied().is_some_and(is_space) {
        at += 1;
    }
    (at == text.len()).then_some(Parsed {
        negative,
        magnitude,
    })
}

/// glibc `strtol(s, &end, 0)` succeeding with `end` at the newline or the NUL: no
/// underscores, `0x` only (a leading `0` is octal), overflow past `long` an error.
fn strtol_base0(content: &[u8]) -> bool {
    let text = c_string(content);
    let end_ok = |at: usize| matches!(text.get(at), Some(b'\n' | 0) | None);
    let (mut at, negative) = space_and_sign(&text);
    let mut radix = 10u32;
    if text.get(at) == Some(&b'0') {
        let hex = matches!(text.get(at + 1), Some(b'x' | b'X'))
            && text
                .get(at + 2)
                .is_some_and(|byte| byte.is_ascii_hexdigit());
        if hex {
            at += 2;
            radix = 16;
        } else {
            radix = 8;
        }
    }
    let digits_from = at;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(digit) = text.get(at).and_then(|b| char::from(*b).to_digit(radix)) {
        match value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(next) => value = next,
            None => overflow = true,
        }
        at += 1;
    }
    if at == digits_from {
        // No conversion: `end` is the start of the string.
        return end_ok(0);
    }
    let limit = if negative {
        (i64::MAX as u64) + 1
    } else {
        i64::MAX as u64
    };
    !overflow && value <= limit && end_ok(at)
}

/// `_Py_dg_strtod` then `_Py_parse_inf_or_nan` over a prefix of `text` (no leading
/// whitespace): where the number ends and whether it overflowed. `None` when nothing parses.
fn dtoa_prefix(text: &[u8]) -> Option<(usize, bool)> {
    let mut at = 0usize;
    if matches!(text.first(), Some(b'+' | b'-')) {
        at = 1;
    }
    let number_from = at;
    let mut digits = 0usize;
    while text.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
        digits += 1;
    }
    if text.get(at) == Some(&b'.') {
        let mut after = at + 1;
        let mut fraction = 0usize;
        while text.get(after).is_some_and(u8::is_ascii_digit) {
            after += 1;
            fraction += 1;
        }
        if digits + fraction > 0 {
            at = after;
            digits += fraction;
        }
    }
    if digits == 0 {
        let rest = text.get(number_from..).unwrap_or_default();
        let lower: Vec<u8> = rest.iter().take(8).map(u8::to_ascii_lowercase).collect();
        if lower.starts_with(b"infinity") {
            return Some((number_from + 8, false));
        }
        if lower.starts_with(b"inf") || lower.starts_with(b"nan") {
            return Some((number_from + 3, false));
        }
        return None;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        let mut after = at + 1;
        if matches!(text.get(after), Some(b'+' | b'-')) {
            after += 1;
        }
        let exponent_from = after;
        while text.get(after).is_some_and(u8::is_ascii_digit) {
            after += 1;
        }
        if after > exponent_from {
            at = after;
        }
    }
    let literal = std::str::from_utf8(text.get(..at)?).ok()?;
    let overflow = literal.parse::<f64>().map_or(true, f64::is_infinite);
    Some((at, overflow))
}

/// Python's `float(bytes)`: whitespace around, single underscores between digits, then the
/// same grammar with overflow giving infinity.
fn py_float(content: &[u8]) -> bool {
    let start = content.iter().position(|b| !is_space(*b));
    let end = content.iter().rposition(|b| !is_space(*b));
    let (Some(start), Some(end)) = (start, end) else {
        return false;
    };
    let Some(inner) = content.get(start..=end) else {
        return false;
    };
    let mut cleaned = Vec::with_capacity(inner.len());
    let mut previous = 0u8;
    for &byte in inner {
        if byte == b'_' {
            if !previous.is_ascii_digit() {
                return false;
            }
        } else {
            if previous == b'_' && !byte.is_ascii_digit() {
                return false;
            }
            cleaned.push(byte);
        }
        previous = byte;
    }
    if previous == b'_' {
        return false;
    }
    matches!(dtoa_prefix(&cleaned), Some((end, _)) if end == cleaned.len())
}

/// STRING arguments: `PyBytes_DecodeEscape` (Python bytes-literal escapes; an unknown escape
/// keeps its backslash, a trailing backslash or a short `\x` is an error).
pub fn decode_bytes_escape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escaped = bytes.next()?;
        match escaped {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(escaped),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(value.to_le_bytes().first().copied().unwrap_or(0));
            }
            b'x' => {
                let high = char::from(bytes.next()?).to_digit(16)?;
                let low = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(high * 16 + low).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// UNICODE arguments: the `raw-unicode-escape` codec. A backslash followed by anything but
/// `u`/`U` is copied *with* that next byte (so `\\u0041` is the six characters `\\u0041`:
/// the pair is consumed together), `\u` takes exactly 4 hex digits and `\U` 8, and every
/// other byte is a latin-1 character. A trailing lone backslash is kept.
pub fn decode_raw_unicode_escape(text: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    while let Some(&byte) = text.get(at) {
        at += 1;
        if byte != b'\\' {
            out.push(char::from(byte));
            continue;
        }
        let Some(&next) = text.get(at) else {
            out.push('\\');
            break;
        };
        at += 1;
        let count = match next {
            b'u' => 4,
            b'U' => 8,
            _ => {
                out.push('\\');
                out.push(char::from(next));
                continue;
            }
        };
        let mut code = 0u32;
        for _ in 0..count {
            let digit = char::from(*text.get(at)?).to_digit(16)?;
            code = (code << 4) | digit;
            at += 1;
        }
        if code > 0x10ffff {
            return None;
        }
        // Lone surrogates are legal in Python strings but not in Rust ones.
        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
    }
    Some(out)
}

/// UTF-8 as CPython decodes BINUNICODE (`surrogatepass`: encoded surrogates are accepted).
pub fn decode_utf8_surrogatepass(bytes: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(std::borrow::Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0usize;
    let continuation = |index: usize| -> Option<u32> {
        let byte = *bytes.get(index)?;
        (byte & 0xc0 == 0x80).then_some(u32::from(byte & 0x3f))
    };
    while let Some(&lead) = bytes.get(at) {
        let (code, length) = match lead {
            0x00..=0x7f => (u32::from(lead), 1),
            0xc2..=0xdf => ((u32::from(lead & 0x1f) << 6) | continuation(at + 1)?, 2),
            0xe0..=0xef => {
                let code = (u32::from(lead & 0x0f) << 12)
                    | (continuation(at + 1)? << 6)
                    | continuation(at + 2)?;
                if code < 0x800 {
                    return None;
                }
                (code, 3)
            }
            0xf0..=0xf4 => {
                let code = (u32::from(lead & 0x07) << 18)
                    | (continuation(at + 1)? << 12)
                    | (continuation(at + 2)? << 6)
                    | continuation(at + 3)?;
                if !(0x10000..=0x10ffff).contains(&code) {
                    return None;
                }
                (code, 4)
            }
            _ => return None,
        };
        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
        at += length;
    }
    Some(std::borrow::Cow::Owned(out))
}

/// UTF-8 checked piece by piece exactly as [`decode_utf8_surrogatepass`] (or, when
/// [`Utf8Stream::strict`], `str::from_utf8`) checks it whole, for text too long to hold, with
/// what nested analysis needs to know of it.
#[derive(Debug)]
pub struct Utf8Stream {
    /// The start of a character cut by the end of the last piece.
    carry: Vec<u8>,
    valid: bool,
    /// Surrogates refused, as GLOBAL's `utf-8` decoding refuses them.
    strict: bool,
    shape: TextShape,
}

/// What a checked text is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextShape {
    pub first: Option<char>,
    pub ascii: bool,
    /// Every character is below U+0100.
    pub latin1: bool,
}

impl Default for Utf8Stream {
    fn default() -> Self {
        Utf8Stream {
            carry: Vec::new(),
            valid: true,
            strict: false,
            shape: TextShape {
                first: None,
                ascii: true,
                latin1: true,
            },
        }
    }
}

impl Utf8Stream {
    pub fn strict() -> Self {
        Utf8Stream {
            strict: true,
            ..Utf8Stream::default()
        }
    }

    /// Takes the next piece; false once the text is known not to be UTF-8.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        if !self.valid {
            return false;
        }
        let mut joined;
        let bytes = if self.carry.is_empty() {
            piece
        } else {
            joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(piece);
            joined.as_slice()
        };
        // Cut before a lead byte whose character runs past the piece: decoding never joins
        // a lead byte to what precedes it, so the pieces decode as the whole does.
        let mut cut = bytes.len();
        let tail_from = bytes.len().saturating_sub(3);
        if let Some(lead) = (tail_from..bytes.len())
            .rev()
            .find(|index| bytes.get(*index).is_some_and(|byte| byte & 0xc0 != 0x80))
        {
            let width = match bytes.get(lead) {
                Some(0xc0..=0xdf) => 2,
                Some(0xe0..=0xef) => 3,
                Some(0xf0..=0xf7) => 4,
                _ => 1,
            };
            if lead.saturating_add(width) > bytes.len() {
                cut = lead;
            }
        }
        let (whole, rest) = bytes.split_at(cut);
        let decoded = if self.strict {
            std::str::from_utf8(whole)
                .ok()
                .map(std::borrow::Cow::Borrowed)
        } else {
            decode_utf8_surrogatepass(whole)
        };
        match decoded {
            Some(text) => {
                self.shape.first = self.shape.first.or_else(|| text.chars().next());
                self.shape.ascii &= text.is_ascii();
                self.shape.latin1 &= text.chars().all(|c| u32::from(c) < 0x100);
            }
            None => self.valid = false,
        }
        self.carry = rest.to_vec();
        self.valid
    }

    /// The text's shape, `None` if it is not UTF-8 (a character cut by its end included).
    pub fn finish(self) -> Option<TextShape> {
        (self.valid && self.carry.is_empty()).then_some(self.shape)
    }
}

/// Which escapes an [`EscapeStream`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// STRING: [`decode_bytes_escape`].
    Bytes,
    /// UNICODE: [`decode_raw_unicode_escape`].
    RawUnicode,
}

/// Whether an argument decodes, checked piece by piece exactly as the whole-argument decoder
/// decides it, for arguments too long to hold.
#[derive(Debug)]
pub struct EscapeStream {
    escapes: Escapes,
    valid: bool,
    after_backslash: bool,
    /// Hex digits still due after `\x`, `\u` or `\U`, and the code point so far.
    hex_due: u8,
    code: u32,
}

impl EscapeStream {
    pub fn new(escapes: Escapes) -> Self {
        EscapeStream {
            escapes,
            valid: true,
            after_backslash: false,
            hex_due: 0,
            code: 0,
        }
    }

    /// Takes the next piece; false once the argument is known not to decode.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        for &byte in piece {
            if !self.valid {
                break;
            }
            if self.hex_due > 0 {
                match char::from(byte).to_digit(16) {
                    Some(digit) => {
                        self.code = (self.code << 4) | digit;
                        self.hex_due -= 1;
                        if self.hex_due == 0 && self.code > 0x10ffff {
                            self.valid = false;
                        }
                    }
                    None => self.valid = false,
                }
            } else if self.after_backslash {
                self.after_backslash = false;
                self.code = 0;
                self.hex_due = match (self.escapes, byte) {
                    (Escapes::Bytes, b'x') => 2,
                    (Escapes::RawUnicode, b'u') => 4,
                    (Escapes::RawUnicode, b'U') => 8,
                    _ => 0,
                };
            } else if byte == b'\\' {
                self.after_backslash = true;
            }
        }
        self.valid
    }

    /// Whether the whole argument decodes.
    pub fn finish(self) -> bool {
        // A trailing lone backslash is kept by raw-unicode-escape and refused by bytes escapes.
        let trailing = self.after_backslash && self.escapes == Escapes::Bytes;
        self.valid && self.hex_due == 0 && !trailing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_lines_as_cpython_reads_them() {
        for ok in [
            &b"1"[..],
            b"\x0b1",
            b" 1",
            b"1 ",
            b"\t-1",
            b"+1",
            b"-0",
            b"0x1f",
            b"0o17",
            b"0b101",
            b"1_000",
            b"01",
            b"00",
            b"007",
            b"1\x00junk",
            b"\x00",
            b"\x00abc",
            b"99999999999999999999999",
            b"0x_1f",
            b"0_0",
            b"\x0c2\r",
        ] {
            assert!(int_line(ok), "{ok:?}");
        }
        for bad in [
            &b""[..],
            b" ",
            b"1__0",
            b"_1",
            b"1_",
            b"0x",
            b"1.5",
            b"abc",
            b"--1",
            b"1e5",
            b"\xa01",
            b"08",
            b"0_7",
            b"1L",
            b"0777777777777777777777777",
        ] {
            assert!(!int_line(bad), "{bad:?}");
        }
        assert!(long_line(b"1L"));
        assert!(long_line(b"123"));
        assert!(long_line(b"1\x00xL"));
        assert!(!long_line(b"L"));
        assert!(!long_line(b"1LL"));
    }

    #[test]
    fn float_lines_as_cpython_reads_them() {
        for ok in [
            &b"1.5"[..],
            b" 1.5",
            b"1.5 ",
            b"1e999",
            b"inf",
            b"-Infinity",
            b"NaN",
            b"1_0.5",
            b".5",
            b"5.",
            b"1E+5",
            b"1.5\x00x",
            b"\t2.0\r",
            b"infinity",
        ] {
            assert!(float_line(ok), "{ok:?}");
        }
        for bad in [
            &b""[..],
            b"1e",
            b"0x1p3",
            b"\x00",
            b"in",
            b"infinit",
            b"1,5",
            b"1__0.5",
            b"1_e5",
            b".",
        ] {
            assert!(!float_line(bad), "{bad:?}");
        }
    }

    #[test]
    fn memo_keys_as_cpython_reads_them() {
        assert_eq!(memo_key(b"1"), Some(Key::Index(1)));
        assert_eq!(memo_key(b" 1 "), Some(Key::Index(1)));
        assert_eq!(memo_key(b"+1"), Some(Key::Index(1)));
        assert_eq!(memo_key(b"01"), Some(Key::Index(1)));
        assert_eq!(memo_key(b"1_0"), Some(Key::Index(10)));
        assert_eq!(memo_key(b"-0"), Some(Key::Index(0)));
        assert_eq!(memo_key(b"1\x00x"), Some(Key::Index(1)));
        assert_eq!(memo_key(b"-1"), Some(Key::Negative));
        assert_eq!(memo_key(b"a"), None);
        assert_eq!(memo_key(b"0x1"), None);
        assert_eq!(memo_key(b"99999999999999999999"), None);
    }

    #[test]
    fn escapes_follow_python() {
        assert_eq!(
            decode_bytes_escape(br"a\nb\x41\101\\\'").unwrap(),
            b"a\nbAA\\'"
        );
        assert_eq!(decode_bytes_escape(br"\q").unwrap(), b"\\q");
        assert_eq!(decode_bytes_escape(br"\777").unwrap(), [0xff]);
        assert!(decode_bytes_escape(br"\x4").is_none());
        assert!(decode_bytes_escape(b"\\").is_none());
        assert_eq!(decode_raw_unicode_escape(br"os\u0041").unwrap(), "osA");
        // A backslash pair is consumed together: no escape follows it.
        assert_eq!(decode_raw_unicode_escape(br"\\u0041").unwrap(), r"\\u0041");
        assert_eq!(decode_raw_unicode_escape(br"\\uZZZZ").unwrap(), r"\\uZZZZ");
        assert_eq!(decode_raw_unicode_escape(br"\\\u0041").unwrap(), r"\\A");
        assert_eq!(decode_raw_unicode_escape(br"a\").unwrap(), r"a\");
        assert_eq!(decode_raw_unicode_escape(br"\x41").unwrap(), r"\x41");
        assert_eq!(decode_raw_unicode_escape(b"\xe9").unwrap(), "\u{e9}");
        assert!(decode_raw_unicode_escape(br"\u12").is_none());
        assert!(decode_raw_unicode_escape(br"\u+041").is_none());
        assert!(decode_raw_unicode_escape(br"\U00110000").is_none());
    }

    #[test]
    fn utf8_in_pieces_decides_as_whole() {
        let samples: [&[u8]; 9] = [
            b"os.system",
            "caf\u{e9} \u{ff}".as_bytes(),
            "\u{20ac}\u{1f600}x".as_bytes(),
            b"a\xed\xa0\x80b",
            b"\xff",
            b"ab\xe2\x82",
            b"\xc0\x80",
            b"\xf0\x9f\x98",
            b"",
        ];
        for sample in samples {
            let whole = decode_utf8_surrogatepass(sample);
            for size in 1..=sample.len().max(1) {
                let mut check = Utf8Stream::default();
                for piece in sample.chunks(size) {
                    check.feed(piece);
                }
                let shape = check.finish();
                assert_eq!(shape.is_some(), whole.is_some(), "{sample:?} in {size}");
                if let (Some(shape), Some(text)) = (shape, &whole) {
                    assert_eq!(shape.first, text.chars().next());
                    assert_eq!(shape.ascii, text.is_ascii());
                    assert_eq!(shape.latin1, text.chars().all(|c| (c as u32) < 256));
                }
            }
        }
    }

    #[test]
    fn escapes_in_pieces_decide_as_whole() {
        let samples: [&[u8]; 14] = [
            br"plain",
            br"a\nb\x41\101\\\'",
            br"\x4",
            br"\x4g",
            b"\\\\",
            b"\\",
            br"a\",
            br"os\u0041",
            br"\\u0041",
            br"\u12",
            br"\u+041",
            br"\U00110000",
            br"\U0010ffff",
            br"\q\xzz",
        ];
        for sample in samples {
            for (escapes, whole) in [
                (Escapes::Bytes, decode_bytes_escape(sample).is_some()),
                (
                    Escapes::RawUnicode,
                    decode_raw_unicode_escape(sample).is_some(),
                ),
            ] {
                for size in 1..=sample.len() {
                    let mut check = EscapeStream::new(escapes);
                    for piece in sample.chunks(size) {
                        check.feed(piece);
                    }
                    assert_eq!(check.finish(), whole, "{sample:?} {escapes:?} in {size}");
                }
            }
        }
    }

    #[test]
    fn utf8_accepts_surrogates_like_surrogatepass() {
        assert_eq!(decode_utf8_surrogatepass(b"os").unwrap(), "os");
        assert_eq!(
            decode_utf8_surrogatepass(b"a\xed\xa0\x80").unwrap(),
            "a\u{fffd}"
        );
        assert!(decode_utf8_surrogatepass(b"\xff").is_none());
        assert!(decode_utf8_surrogatepass(b"\xc0\x80").is_none());
        assert!(decode_utf8_surrogatepass(b"\xe0\x80\x80").is_none());
    }
}
