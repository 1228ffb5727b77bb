//! One 512-byte tar header read the way CPython 3.11's `TarInfo.frombuf` reads it, and the
//! number syntax behind it (`nti`, and `int()` itself, which joblib's `ZF` header uses too).
//!
//! Python's rules are looser than any tar specification: numbers may carry a sign, an `0o`
//! prefix, underscores and surrounding whitespace; base-256 fields may be negative; the
//! checksum may be the signed or the unsigned byte sum. A header modelvet calls invalid must be
//! one that `tarfile` refuses too, or a file `tarfile` opens would escape the tar walk, so
//! this module copies those rules rather than the standard's. It reads no file.

/// Size of a header and the unit of member data.
pub(super) const BLOCK: usize = 512;

/// Why `frombuf` refused a full block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// All 512 bytes are zero (`EOFHeaderError`): the end of the archive.
    EndBlock,
    /// `InvalidHeaderError`: bad checksum or a number field `nti` rejects.
    Invalid(&'static str),
}

/// The fields of one header after `frombuf`'s own fix-ups (v7 directories, ustar prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub name: Vec<u8>,
    /// Type flag, `b'5'` for a v7 directory (`\0` with a name ending in `/`).
    pub typeflag: u8,
    /// Declared size; Python's integers may be negative or wider than 64 bits.
    pub size: i128,
    pub linkname: Vec<u8>,
    /// Old GNU sparse header (`S`): whether extension blocks follow, and the real size.
    pub sparse: Option<Sparse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sparse {
    pub extended: bool,
    pub real_size: i128,
}

impl Header {
    /// `TarInfo.frombuf` on a full block.
    pub fn parse(block: &[u8; BLOCK]) -> Result<Header, Fault> {
        if block.iter().all(|b| *b == 0) {
            return Err(Fault::EndBlock);
        }
        let field = |from: usize, to: usize| block.get(from..to).unwrap_or_default();
        let chksum = nti(field(148, 156)).map_err(|()| Fault::Invalid("checksum"))?;
        let (unsigned, signed) = checksums(block);
        if chksum != unsigned && chksum != signed {
            return Err(Fault::Invalid("checksum"));
        }
        // mode, uid, gid, mtime, devmajor, devminor: only their syntax matters to `tarfile`.
        for (from, to) in [
            (100, 108),
            (108, 116),
            (116, 124),
            (136, 148),
            (329, 337),
            (337, 345),
        ] {
            nti(field(from, to)).map_err(|()| Fault::Invalid("number"))?;
        }
        let size = nti(field(124, 136)).map_err(|()| Fault::Invalid("number"))?;
        let mut typeflag = block.get(156).copied().unwrap_or_default();
        let mut name = until_nul(field(0, 100)).to_vec();
        let prefix = until_nul(field(345, 500));
        if typeflag == 0 && name.last() == Some(&b'/') {
            typeflag = b'5';
        }
        let sparse = if typeflag == b'S' {
            // Four (offset, size) pairs, then the extension flag and the real size. Python
            // parses every pair, so a bad number in any of them refuses the header.
            for at in (386..482).step_by(12) {
                nti(field(at, at + 12)).map_err(|()| Fault::Invalid("number"))?;
            }
            Some(Sparse {
                extended: block.get(482).is_some_and(|b| *b != 0),
                real_size: nti(field(483, 495)).map_err(|()| Fault::Invalid("number"))?,
            })
        } else {
            None
        };
        if typeflag == b'5' {
            trim_slashes(&mut name);
        }
        if !prefix.is_empty() && !matches!(typeflag, b'L' | b'K' | b'S') {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
        Ok(Header {
            name,
            typeflag,
            size,
            linkname: until_nul(field(157, 257)).to_vec(),
            sparse,
        })
    }
}

/// `nts`: the bytes before the first NUL.
pub(super) fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

/// `str.rstrip("/")`.
pub(super) fn trim_slashes(name: &mut Vec<u8>) {
    while name.last() == Some(&b'/') {
        name.pop();
    }
}

/// `TarInfo._block`: `count` rounded up to whole blocks, with Python's floor division, so a
/// negative count of -511..=-1 rounds to 0 and anything lower goes backwards.
pub(super) fn padded(count: i128) -> i128 {
    let block = BLOCK as i128;
    let blocks = count.div_euclid(block) + i128::from(count.rem_euclid(block) != 0);
    blocks.saturating_mul(block)
}

/// `nti`: GNU base-256 (a leading `0x80` or `0xff`, the latter negative) or octal text up to
/// the first NUL, parsed by `int(s.strip() or "0", 8)`.
fn nti(field: &[u8]) -> Result<i128, ()> {
    match field.split_first() {
        Some((lead @ (0x80 | 0xff), rest)) => {
            // At most 11 bytes follow (a 12-byte field), which fits an i128.
            let magnitude = rest
                .iter()
                .try_fold(0i128, |acc, b| {
                    acc.checked_mul(256)?.checked_add(i128::from(*b))
                })
                .ok_or(())?;
            if *lead == 0x80 {
                return Ok(magnitude);
            }
            let width = u32::try_from(rest.len()).map_err(|_| ())?;
            let full = 256i128.checked_pow(width).ok_or(())?;
            Ok(magnitude - full)
        }
        // An empty field only comes from a short slice; Python would raise there too.
        None => Err(()),
        Some(_) => {
            let text = until_nul(field);
            if !text.is_ascii() {
                return Err(());
            }
            let text = strip_str_whitespace(text);
            if text.is_empty() {
                return Ok(0);
            }
            match python_int(text, 8) {
                Ok(value) => Ok(value),
                // Twelve octal digits cannot overflow; treat it as the refusal it cannot be.
                Err(_) => Err(()),
            }
        }
    }
}

/// `str.strip()` on ASCII text: Unicode whitespace includes the four separators 0x1c-0x1f,
/// which `int()` itself does not skip.
fn strip_str_whitespace(text: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f);
    let start = text.iter().position(|b| !space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |at| at + 1);
    text.get(start..end).unwrap_or_default()
}

/// Why [`python_int`] has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntError {
    /// Python raises `ValueError`.
    Invalid,
    /// Python has a value, too large for an i128.
    Overflow,
}

/// CPython's `int(text, base)` for ASCII text and base 8, 10 or 16 (`PyLong_FromString`):
/// whitespace around, a sign, an optional `0o`/`0x` prefix matching the base (one underscore
/// may follow it), digits with single underscores between them. Non-ASCII text is `Invalid`,
/// which is what `int()` says for `bytes`; callers holding `str` must decide for themselves.
pub(crate) fn python_int(text: &[u8], base: u32) -> Result<i128, IntError> {
    let space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r');
    let start = text.iter().position(|b| !space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |at| at + 1);
    let rest = text.get(start..end).unwrap_or_default();
    let (negative, unsigned) = match rest.split_first() {
        Some((b'-', after)) => (true, after),
        Some((b'+', after)) => (false, after),
        _ => (false, rest),
    };
    let value = digits(unsigned, base)?;
    Ok(if negative { -value } else { value })
}

/// The digits of [`python_int`], after the sign.
fn digits(mut rest: &[u8], base: u32) -> Result<i128, IntError> {
    let prefix = match base {
        8 => Some(b'o'),
        16 => Some(b'x'),
        _ => None,
    };
    if let (Some(letter), [b'0', marker, after @ ..]) = (prefix, rest) {
        if marker.to_ascii_lowercase() == letter {
            rest = after.strip_prefix(b"_").unwrap_or(after);
        }
    }
    if rest.is_empty() || rest.first() == Some(&b'_') || rest.last() == Some(&b'_') {
        return Err(IntError::Invalid);
    }
    let mut value = Some(0i128);
    let mut previous_underscore = false;
    for byte in rest {
        if *byte == b'_' {
            if previous_underscore {
                return Err(IntError::Invalid);
            }
            previous_underscore = true;
            continue;
        }
        previous_underscore = false;
        let digit = char::from(*byte).to_digit(base).ok_or(IntError::Invalid)?;
        value = value
            .and_then(|v| v.checked_mul(i128::from(base)))
            .and_then(|v| v.checked_add(i128::from(digit)));
    }
    value.ok_or(IntError::Overflow)
}

/// `calc_chksums`: the unsigned and the signed byte sums, the checksum field counted as
/// eight spaces.
fn checksums(block: &[u8; BLOCK]) -> (i128, i128) {
    let mut unsigned = 256i128;
    let mut signed = 256i128;
    for (index, byte) in block.iter().enumerate() {
        if !(148..156).contains(&index) {
            unsigned += i128::from(*byte);
            signed += i128::from(i8::from_ne_bytes([*byte]));
        }
    }
    (unsigned, signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_cpython() {
        let cases: &[(&[u8], u32, Result<i128, IntError>)] = &[
            (b"1_7", 8, Ok(15)),
            (b"0o17", 8, Ok(15)),
            (b"0O_17", 8, Ok(15)),
            (b"0_17", 8, Ok(15)),
            (b" +17 ", 8, Ok(15)),
            (b"-17", 8, Ok(-15)),
            (b"_17", 8, Err(IntError::Invalid)),
            (b"17_", 8, Err(IntError::Invalid)),
            (b"1__7", 8, Err(IntError::Invalid)),
            (b"- 17", 8, Err(IntError::Invalid)),
            (b"0o", 8, Err(IntError::Invalid)),
            (b"0x1", 8, Err(IntError::Invalid)),
            (b"8", 8, Err(IntError::Invalid)),
            (b"\x1c17", 8, Err(IntError::Invalid)),
            (b"0x139  ", 16, Ok(0x139)),
            (b" 0x_1f ", 16, Ok(31)),
            (b"\x0b1\x0c", 16, Ok(1)),
            (b"0x", 16, Err(IntError::Invalid)),
            (b"0x 1", 16, Err(IntError::Invalid)),
            (b"012", 10, Ok(12)),
            (b"0x12", 10, Err(IntError::Invalid)),
            (b"", 10, Err(IntError::Invalid)),
        ];
        for (text, base, want) in cases {
            assert_eq!(
                python_int(text, *base),
                *want,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(
            python_int(&[b'7'; 60], 10),
            Err(IntError::Overflow),
            "Python has a value; it is just large"
        );
    }

    #[test]
    fn nti_strips_like_str_strip() {
        assert_eq!(nti(b"\x1c17\x1f\0xx"), Ok(15));
        assert_eq!(nti(b"   \0"), Ok(0));
        assert_eq!(nti(b"\0garbage"), Ok(0));
        assert_eq!(nti(b"1 7\0"), Err(()));
        assert_eq!(nti(b"\xe917\0"), Err(()));
        assert_eq!(nti(&[0x80, 0, 0, 1, 0]), Ok(256));
        assert_eq!(nti(&[0xff, 0xff, 0xff, 0xff]), Ok(-1));
        assert_eq!(nti(&[0xff; 12]), Ok(-1));
        assert_eq!(nti(&[0xff, 0, 0, 0]), Ok(-(1 << 24)));
    }

    #[test]
    fn padding_uses_floor_division() {
        assert_eq!(padded(0), 0);
        assert_eq!(padded(1), 512);
        assert_eq!(padded(512), 512);
        assert_eq!(padded(-1), 0);
        assert_eq!(padded(-511), 0);
        assert_eq!(padded(-512), -512);
        assert_eq!(padded(-513), -512);
    }
}
