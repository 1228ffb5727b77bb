//! NumPy `.npy` headers: the magic, version, the Python-literal header dict, and the dtype.
//!
//! A `.npy` whose dtype holds Python objects (`|O`, or a structured dtype with an object field)
//! stores its payload as a pickle, which `np.load(allow_pickle=True)` runs. This module parses
//! the header with a small bounded literal parser (never `eval`), says whether the dtype holds
//! objects and where the payload starts, and checks that plain payloads have exactly the
//! length the header promises. It does not analyse the pickle payload (the dispatcher hands it
//! to `scan::pickle`).

use crate::finding::{quote, Code, Finding};
use crate::scan::source::ReadAt;

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Larger than NumPy's own default `max_header_size` (10 000) so that we parse whatever a
/// permissive loader would, yet small enough that a header cannot exhaust memory.
const MAX_HEADER_LEN: u64 = 1 << 20;
const MAX_LITERAL_DEPTH: u32 = 32;

/// The parsed header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub version: (u8, u8),
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    /// Offset of the first payload byte.
    pub data_offset: u64,
    /// Whether any field of the dtype is a Python object (payload is a pickle).
    pub holds_objects: bool,
    /// Bytes per element, when the dtype has a fixed size (not for object dtypes).
    pub itemsize: Option<u64>,
}

/// The outcome of checking one `.npy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyCheck {
    pub header: Option<NpyHeader>,
    pub findings: Vec<Finding>,
}

/// Checks the `.npy` behind `source`: header, dtype, payload length. An object dtype yields a
/// `numpy-object-dtype` finding; the caller analyses the payload from `data_offset`.
pub fn check(source: &dyn ReadAt) -> std::io::Result<NpyCheck> {
    let malformed = |message: String| NpyCheck {
        header: None,
        findings: vec![Finding::new(Code::NumpyMalformed, message)],
    };
    let size = source.size();
    let mut prefix = [0u8; 12];
    let available = usize::try_from(size.min(12)).unwrap_or(12);
    let prefix = prefix.get_mut(..available).unwrap_or_default();
    source.read_exact_at(prefix, 0)?;
    let (version, header_len, header_start) = match prefix {
        [0x93, b'N', b'U', b'M', b'P', b'Y', 1, minor, l0, l1, ..] => {
            ((1, *minor), u64::from(u16::from_le_bytes([*l0, *l1])), 10)
        }
        [0x93, b'N', b'U', b'M', b'P', b'Y', major @ (2 | 3), minor, l0, l1, l2, l3] => (
            (*major, *minor),
            u64::from(u32::from_le_bytes([*l0, *l1, *l2, *l3])),
            12,
        ),
        [0x93, b'N', b'U', b'M', b'P', b'Y', major, ..] if *major > 3 || *major == 0 => {
            return Ok(malformed(format!(
                "unsupported .npy format version {major}"
            )));
        }
        _ => return Ok(malformed("file is shorter than the .npy preamble".into())),
    };
    if header_len > MAX_HEADER_LEN {
        return Ok(malformed(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        )));
    }
    let data_offset = header_start + header_len;
    if data_offset > size {
        return Ok(malformed(format!(
            "header length {header_len} runs past the end of the {size}-byte file"
        )));
    }
    let header_bytes = source.read_vec(header_start, header_len)?;
    let header = match parse_header(&header_bytes, version, data_offset) {
        Ok(header) => header,
        Err(message) => return Ok(malformed(message)),
    };

    let mut findings = Vec::new();
    if header.holds_objects {
        findings.push(
            Finding::new(
                Code::NumpyObjectDtype,
                format!(
                    "dtype `{}` holds Python objects, stored as a pickle that runs code when loaded",
                    quote(&header.descr)
                ),
            )
            .with_hint("store plain numeric arrays, or convert to safetensors"),
        );
    } else if let Some(itemsize) = header.itemsize {
        let expected = header
            .shape
            .iter()
            .try_fold(itemsize, |product, dim| product.checked_mul(*dim));
        let actual = size - data_offset;
        match expected {
            None => findings.push(Finding::new(
                Code::NumpyMalformed,
                format!("shape {:?} overflows when multiplied out", header.shape),
            )),
            Some(expected) if expected != actual => findings.push(Finding::new(
                Code::NumpyMalformed,
                format!(
                    "payload is {actual} bytes but dtype `{}` with shape {:?} needs {expected}",
                    quote(&header.descr),
                    header.shape
                ),
            )),
            Some(_) => {}
        }
    }
    Ok(NpyCheck {
        header: Some(header),
        findings,
    })
}

/// Parses the header dict text (`{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }`).
pub fn parse_header(
    bytes: &[u8],
    version: (u8, u8),
    data_offset: u64,
) -> Result<NpyHeader, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "header is not valid UTF-8".to_owned())?;
    let mut parser = LiteralParser { text, pos: 0 };
    let literal = parser.value(0)?;
    parser.skip_space();
    if parser.pos != text.len() {
        return Err("unexpected text after the header dict".into());
    }
    let Literal::Dict(entries) = literal else {
        return Err("header is not a dict".into());
    };
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in entries {
        let Literal::Str(key) = key else {
            return Err("header dict has a non-string key".into());
        };
        let slot_was_empty = match key.as_str() {
            "descr" => descr.replace(value).is_none(),
            "fortran_order" => fortran_order.replace(value).is_none(),
            "shape" => shape.replace(value).is_none(),
            other => return Err(format!("header has unexpected key `{}`", quote(other))),
        };
        if !slot_was_empty {
            return Err(format!("header key `{key}` appears more than once"));
        }
    }
    let (Some(descr), Some(fortran_order), Some(shape)) = (descr, fortran_order, shape) else {
        return Err("header lacks one of `descr`, `fortran_order`, `shape`".into());
    };
    let Literal::Bool(fortran_order) = fortran_order else {
        return Err("`fortran_order` is not a boolean".into());
    };
    let Literal::Tuple(dims) = shape else {
        return Err("`shape` is not a tuple".into());
    };
    let shape = dims
        .iter()
        .map(|dim| match dim {
            Literal::Int(value) => Ok(*value),
            _ => Err("`shape` holds something other than non-negative integers".to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let layout = dtype_layout(&descr, 0)?;
    Ok(NpyHeader {
        version,
        descr: descr_text(&descr),
        fortran_order,
        shape,
        data_offset,
        holds_objects: layout.holds_objects,
        itemsize: (!layout.holds_objects).then_some(layout.itemsize),
    })
}

struct Layout {
    itemsize: u64,
    holds_objects: bool,
}

/// Size and object-ness of a dtype description: a type string or a list of fields.
fn dtype_layout(descr: &Literal, depth: u32) -> Result<Layout, String> {
    if depth > MAX_LITERAL_DEPTH {
        return Err("dtype nests too deeply".into());
    }
    match descr {
        Literal::Str(text) => simple_layout(text),
        Literal::List(fields) => {
            let mut total = Layout {
                itemsize: 0,
                holds_objects: false,
            };
            for field in fields {
                let Literal::Tuple(parts) = field else {
                    return Err("structured dtype field is not a tuple".into());
                };
                let (name, field_type, subshape) = match parts.as_slice() {
                    [name, field_type] => (name, field_type, None),
                    [name, field_type, subshape] => (name, field_type, Some(subshape)),
                    _ => return Err("structured dtype field has the wrong arity".into()),
                };
                if !matches!(name, Literal::Str(_) | Literal::Tuple(_)) {
                    return Err("structured dtype field name is not a string".into());
                }
                let inner = dtype_layout(field_type, depth + 1)?;
                let count = match subshape {
                    None => 1,
                    Some(Literal::Int(n)) => *n,
                    Some(Literal::Tuple(dims)) => {
                        dims.iter().try_fold(1u64, |product, dim| match dim {
                            Literal::Int(n) => product.checked_mul(*n).ok_or("subarray overflows"),
                            _ => Err("subarray shape is not integers"),
                        })?
                    }
                    Some(_) => return Err("subarray shape is not a tuple".into()),
                };
                let field_size = inner
                    .itemsize
                    .checked_mul(count)
                    .ok_or("structured dtype size overflows")?;
                total.itemsize = total
                    .itemsize
                    .checked_add(field_size)
                    .ok_or("structured dtype size overflows")?;
                total.holds_objects |= inner.holds_objects;
            }
            Ok(total)
        }
        _ => Err("`descr` is neither a type string nor a list of fields".into()),
    }
}

/// `<f4`, `|O`, `<U10`, `|S5`, `|V8`, `<M8[ns]`, `|b1`...
fn simple_layout(text: &str) -> Result<Layout, String> {
    let body = text.strip_prefix(['<', '>', '|', '=']).unwrap_or(text);
    let mut chars = body.chars();
    let kind = chars.next().ok_or("empty dtype string")?;
    let rest = chars.as_str();
    let unknown = || format!("unknown dtype `{}`", quote(text));
    if kind == 'O' {
        return match rest {
            "" | "8" | "4" => Ok(Layout {
                itemsize: 8,
                holds_objects: true,
            }),
            _ => Err(unknown()),
        };
    }
    let digits = match kind {
        'M' | 'm' => rest.split_once('[').map_or(rest, |(size, _)| size),
        _ => rest,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return Err(unknown());
    }
    let count: u64 = digits.parse().map_err(|_| unknown())?;
    let itemsize = match kind {
        'b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'a' | 'V' | 'M' | 'm' => count,
        'U' => count.checked_mul(4).ok_or_else(unknown)?,
        _ => return Err(unknown()),
    };
    Ok(Layout {
        itemsize,
        holds_objects: false,
    })
}

fn descr_text(descr: &Literal) -> String {
    match descr {
        Literal::Str(text) => text.clone(),
        _ => "structured".into(),
    }
}

/// The subset of Python literals that NumPy writes in headers.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

struct LiteralParser<'a> {
    text: &'a str,
    pos: usize,
}

impl LiteralParser<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: u32) -> Result<Literal, String> {
        if depth > MAX_LITERAL_DEPTH {
            return Err("header literal nests too deeply".into());
        }
        self.skip_space();
        let rest = self.rest();
        let first = rest.chars().next().ok_or("header ends too early")?;
        match first {
            '\'' | '"' => self.string(first),
            '(' => {
                self.pos += 1;
                let (items, trailing_comma) = self.sequence(')', depth)?;
                // `(x)` is just `x` in Python; only `(x,)` is a one-tuple.
                match (items.len(), trailing_comma) {
                    (1, false) => items.into_iter().next().ok_or_else(|| "empty".into()),
                    _ => Ok(Literal::Tuple(items)),
                }
            }
            '[' => {
                self.pos += 1;
                Ok(Literal::List(self.sequence(']', depth)?.0))
            }
            '{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.eat("}") {
                        return Ok(Literal::Dict(entries));
                    }
                    let key = self.value(depth + 1)?;
                    if !self.eat(":") {
                        return Err("expected `:` in header dict".into());
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    if !self.eat(",") {
                        if self.eat("}") {
                            return Ok(Literal::Dict(entries));
                        }
                        return Err("expected `,` or `}` in header dict".into());
                    }
                }
            }
            '0'..='9' => {
                let digits = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                self.pos += digits.len();
                // NumPy writes `3L` in headers made by Python 2.
                if self.rest().starts_with('L') {
                    self.pos += 1;
                }
                digits
                    .parse()
                    .map(Literal::Int)
                    .map_err(|_| format!("integer `{digits}` is out of range"))
            }
            _ if self.eat("True") => Ok(Literal::Bool(true)),
            _ if self.eat("False") => Ok(Literal::Bool(false)),
            _ if self.eat("None") => Ok(Literal::None),
            other => Err(format!(
                "unexpected `{}` in header",
                quote(&other.to_string())
            )),
        }
    }

    fn sequence(&mut self, close: char, depth: u32) -> Result<(Vec<Literal>, bool), String> {
        let mut items = Vec::new();
        let close = close.to_string();
        loop {
            if self.eat(&close) {
                return Ok((items, true));
            }
            items.push(self.value(depth + 1)?);
            if !self.eat(",") {
                if self.eat(&close) {
                    return Ok((items, false));
                }
                return Err(format!("expected `,` or `{close}` in header"));
            }
        }
    }

    fn string(&mut self, quote: char) -> Result<Literal, String> {
        let body = self.rest().get(1..).unwrap_or_default();
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.pos += 1 + index + 1;
                    return Ok(Literal::Str(value));
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('\\' | '\'' | '"'))) => value.push(escaped),
                    _ => return Err("unsupported escape in header string".into()),
                },
                '\n' => break,
                c => value.push(c),
            }
        }
        Err("unterminated string in header".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, payload: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn codes(bytes: Vec<u8>) -> Vec<Code> {
        check(&bytes)
            .unwrap()
            .findings
            .iter()
            .map(|f| f.code)
            .collect()
    }

    #[test]
    fn accepts_plain_arrays() {
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
            &[0; 12],
        );
        let result = check(&bytes).unwrap();
        assert!(result.findings.is_empty(), "{:?}", result.findings);
        assert_eq!(result.header.unwrap().shape, [3]);
        let scalar = npy(
            "{'descr': '|b1', 'fortran_order': True, 'shape': (), }",
            &[1],
        );
        assert!(codes(scalar).is_empty());
        let structured = npy(
            "{'descr': [('x', '<f8'), ('y', '<i4', (2,))], 'fortran_order': False, 'shape': (1,), }",
            &[0; 16],
        );
        assert!(codes(structured).is_empty());
    }

    #[test]
    fn flags_object_dtypes_including_nested_fields() {
        let object = npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
            b"\x80\x02N.",
        );
        let result = check(&object).unwrap();
        assert_eq!(result.findings[0].code, Code::NumpyObjectDtype);
        assert_eq!(result.header.unwrap().data_offset, 10 + 56);
        let nested = npy(
            "{'descr': [('Opacity', '<f4'), ('obj', '|O')], 'fortran_order': False, 'shape': (1,), }",
            b"",
        );
        assert_eq!(codes(nested), [Code::NumpyObjectDtype]);
        let name_only = npy(
            "{'descr': [('O', '<f4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        assert!(codes(name_only).is_empty());
    }

    #[test]
    fn refuses_malformed_headers_and_payloads() {
        let short = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
            &[0; 11],
        );
        assert_eq!(codes(short), [Code::NumpyMalformed]);
        let extra_key = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}",
            &[0; 4],
        );
        assert_eq!(codes(extra_key), [Code::NumpyMalformed]);
        let dup = npy(
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
            &[0; 4],
        );
        assert_eq!(codes(dup), [Code::NumpyMalformed]);
        let bad_type = npy(
            "{'descr': '<z4', 'fortran_order': False, 'shape': ()}",
            &[0; 4],
        );
        assert_eq!(codes(bad_type), [Code::NumpyMalformed]);
        let deep = format!(
            "{{'descr': {}'<f4'{}, 'fortran_order': False, 'shape': ()}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(codes(npy(&deep, &[])), [Code::NumpyMalformed]);
        assert_eq!(codes(b"\x93NUMPY\x01".to_vec()), [Code::NumpyMalformed]);
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[2, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(codes(huge), [Code::NumpyMalformed]);
    }
}
