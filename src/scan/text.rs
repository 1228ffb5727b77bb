//! What counts as text: valid UTF-8 with no control bytes but tab, newline, carriage return
//! and form feed. A binary protobuf (a TensorFlow `saved_model.pb`) is often valid UTF-8, and
//! pickle opcodes are mostly printable ASCII, so "text" must mean printable, not "decodes".
//! This module answers that question for every caller and decides nothing else.

use std::io;

use super::source::ReadAt;

/// Whether `byte` may appear in printable text.
fn allowed(byte: u8) -> bool {
    !(byte < 0x20 || byte == 0x7f) || matches!(byte, b'\t' | b'\n' | b'\r' | 0x0c)
}

/// True if `head` is printable text, allowing a character cut at its end when more bytes
/// follow (`whole` is false).
pub fn printable_prefix(head: &[u8], whole: bool) -> bool {
    if !head.iter().all(|byte| allowed(*byte)) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(error) => !whole && error.error_len().is_none(),
    }
}

/// Whether the whole source is printable text, checked a window at a time.
pub fn is_printable(source: &dyn ReadAt) -> io::Result<bool> {
    const WINDOW: u64 = 1 << 20;
    let size = source.size();
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    while offset < size {
        let len = WINDOW.min(size - offset);
        let mut chunk = std::mem::take(&mut carry);
        chunk.extend(source.read_vec(offset, len)?);
        offset += len;
        if !chunk.iter().all(|byte| allowed(*byte)) {
            return Ok(false);
        }
        match std::str::from_utf8(&chunk) {
            Ok(_) => {}
            // A character cut by the window boundary continues in the next window.
            Err(error) if error.error_len().is_none() && offset < size => {
                carry = chunk
                    .get(error.valid_up_to()..)
                    .unwrap_or_default()
                    .to_vec();
            }
            Err(_) => return Ok(false),
        }
    }
    Ok(carry.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_across_window_boundaries() {
        let mut text = "a".repeat((1 << 20) - 1).into_bytes();
        text.extend("é and more text\n\t\r\x0c".as_bytes());
        assert!(is_printable(&text).unwrap());
        let mut cut = text.clone();
        cut.truncate(1 << 20);
        assert!(
            !is_printable(&cut).unwrap(),
            "a file ending inside a character"
        );
        for control in [0u8, 0x01, 0x0b, 0x1b, 0x7f] {
            let mut bad = text.clone();
            bad.push(control);
            assert!(!is_printable(&bad).unwrap(), "{control:#x}");
        }
        assert!(printable_prefix(b"abc\xc3", false));
        assert!(!printable_prefix(b"abc\xc3", true));
        assert!(!printable_prefix(b"\x08\x01\x12", true));
    }
}
