//! Pax extended-header records (`x`, `X`, `g`) parsed as CPython 3.11's `TarInfo._proc_pax`
//! parses them, which is far looser than POSIX: records are found by the regular expression
//! `(\d+) ([^=]+)=` anchored at the running position, a record's value is whatever its length
//! says (no newline is checked), the first text that does not match ends the list quietly,
//! and only a length of zero is an error. The buffer is the whole padded data block, so
//! records hidden in the padding after the declared size count too. Only the keys that decide
//! what a member is called, how large it is and where the next header starts are kept.

/// The keys of one pax dictionary that the walk needs; later records win, as in a dict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PaxValues {
    pub path: Option<Vec<u8>>,
    pub linkpath: Option<Vec<u8>>,
    /// The raw `size` text; Python turns it into a number only when applying it.
    pub size: Option<Vec<u8>>,
    /// A `GNU.sparse.*` key: sparse maps and real sizes this walker does not follow.
    pub sparse: bool,
}

/// A record with length zero: `InvalidHeaderError` in Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ZeroLength;

impl PaxValues {
    /// Adds the records of `buf` (a whole padded pax data block) to the dictionary.
    pub fn parse_into(&mut self, buf: &[u8]) -> Result<(), ZeroLength> {
        let mut pos = 0usize;
        while let Some(record) = match_record(buf, pos) {
            if record.length == 0 {
                return Err(ZeroLength);
            }
            // value = buf[match.end(2) + 1 : match.start(1) + length - 1], clamped as a
            // slice is, and empty when the end falls before the start.
            let start = record.equals + 1;
            let end = pos
                .saturating_add(record.length)
                .saturating_sub(1)
                .min(buf.len());
            let value = buf.get(start..end).unwrap_or_default().to_vec();
            match record.key {
                b"path" => self.path = Some(value),
                b"linkpath" => self.linkpath = Some(value),
                b"size" => self.size = Some(value),
                key if key.starts_with(b"GNU.sparse.") => self.sparse = true,
                _ => {}
            }
            pos = pos.saturating_add(record.length);
        }
        Ok(())
    }
}

struct Record<'a> {
    /// The decimal length, saturated: a length past the buffer ends the list anyway.
    length: usize,
    key: &'a [u8],
    /// Index of the `=` after the key.
    equals: usize,
}

/// `re.compile(br"(\d+) ([^=]+)=").match(buf, pos)`.
fn match_record(buf: &[u8], pos: usize) -> Option<Record<'_>> {
    let rest = buf.get(pos..)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b' ') {
        return None;
    }
    let key_start = digits + 1;
    let key_len = rest.get(key_start..)?.iter().position(|b| *b == b'=')?;
    if key_len == 0 {
        return None;
    }
    let length = rest
        .get(..digits)?
        .iter()
        .try_fold(0usize, |acc, b| {
            acc.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        })
        .unwrap_or(usize::MAX);
    Some(Record {
        length,
        key: rest.get(key_start..key_start + key_len)?,
        equals: pos + key_start + key_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<PaxValues, ZeroLength> {
        let mut values = PaxValues::default();
        values.parse_into(buf).map(|()| values)
    }

    #[test]
    fn records_follow_the_tarfile_regex() {
        let values = parse(b"12 path=a/b\n11 size=12\n\0\0").unwrap();
        assert_eq!(values.path.as_deref(), Some(&b"a/b"[..]));
        assert_eq!(values.size.as_deref(), Some(&b"12"[..]));

        // No newline check: the length alone cuts the value.
        let values = parse(b"10 path=xyz!").unwrap();
        assert_eq!(values.path.as_deref(), Some(&b"x"[..]));
        // A length shorter than the key gives an empty value, then parsing resumes mid-record.
        let values = parse(b"4 path=abc\n").unwrap();
        assert_eq!(values.path.as_deref(), Some(&b""[..]));
        // Keys may hold newlines; anything that does not match ends the list quietly.
        let values = parse(b"9 a\nb=c\nx 12 path=q\n").unwrap();
        assert_eq!(values, PaxValues::default());
        // Later records win; sparse keys are noticed.
        let values = parse(b"10 path=a\n10 path=b\n22 GNU.sparse.major=1\n").unwrap();
        assert_eq!(values.path.as_deref(), Some(&b"b"[..]));
        assert!(values.sparse);
        // A huge length swallows the rest of the buffer.
        let values = parse(b"99999999999999999999999 path=rest").unwrap();
        assert_eq!(values.path.as_deref(), Some(&b"rest"[..]));
        assert_eq!(parse(b"0 path=x\n"), Err(ZeroLength));
        assert_eq!(parse(b"000 a=\n"), Err(ZeroLength));
    }
}
