//! GNU coreutils `sha256sum` listings: parsing one into safe paths and digests, writing a
//! manifest as one, and drafting a manifest from one and the files it names.
//!
//! Accepted lines, as `sha256sum` writes them and `sha256sum -c` reads them: `HEX  NAME` (text
//! mode), `HEX *NAME` (binary mode) and the BSD tag form `SHA256 (NAME) = HEX`. A line that
//! starts with `\` has an escaped name (`\\` is a backslash, `\n` a newline, `\r` a carriage
//! return). Blank lines and `#` comments are skipped, a trailing CR is dropped (files edited on
//! Windows), and anything else is refused with its line number.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use crate::digest::{Progress, Sha256};
use crate::finding::{quote, Code, Finding};
use crate::import::{
    finish, read_bounded, DraftHeader, Import, ImportError, ListedPathError, ListedPaths,
};
use crate::manifest::path::MAX_PATH_BYTES;
use crate::manifest::{Manifest, PathError, SafePath, MAX_FILES};
use crate::scan::ScanOptions;
use crate::verify::create::{self, RecordOptions};
use crate::verify::tree::{self, EntryKind};

/// Largest listing accepted, in bytes.
pub const MAX_SUMS_BYTES: usize = 16 << 20;
/// Longest line accepted, in bytes: a digest, the separator and a path whose every byte is
/// escaped, with room for the BSD form's decoration.
pub const MAX_LINE_BYTES: usize = 64 + 16 + 2 * MAX_PATH_BYTES;

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumsEntry {
    /// Where it is listed, from 1.
    pub line: usize,
    pub path: SafePath,
    pub sha256: Sha256,
}

/// Why bytes are not a `sha256sum` listing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SumsError {
    #[error("the listing is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: LineError },
    #[error("line {line}: {error}")]
    Path { line: usize, error: PathError },
    #[error("line {line}: `{}` is already listed on line {first}", quote(path))]
    Duplicate {
        line: usize,
        first: usize,
        path: String,
    },
    #[error("the listing has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("the listing names no files")]
    Empty,
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("not UTF-8")]
    NotUtf8,
    #[error("holds a NUL byte")]
    Nul,
    #[error("not `HEX  NAME`, `HEX *NAME` or `SHA256 (NAME) = HEX`")]
    Shape,
    #[error("the tag `{}` is not `SHA256`", quote(tag))]
    Algorithm { tag: String },
    #[error("`{}` is not a SHA-256 digest (64 hex digits)", quote(text))]
    Digest { text: String },
    #[error("invalid escape `\\{}` in the name (only `\\\\`, `\\n` and `\\r`)", quote(&escape.to_string()))]
    Escape { escape: char },
    #[error("the name ends in a lone `\\`")]
    TrailingBackslash,
}

/// Parses a listing into its entries, in order.
pub fn parse(bytes: &[u8]) -> Result<Vec<SumsEntry>, SumsError> {
    if bytes.len() > MAX_SUMS_BYTES {
        return Err(SumsError::TooLarge {
            size: bytes.len(),
            limit: MAX_SUMS_BYTES,
        });
    }
    let mut entries = Vec::new();
    let mut listed = ListedPaths::default();
    for (index, raw) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let line = index + 1;
        let failed = |reason| SumsError::Line { line, reason };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE_BYTES {
            return Err(failed(LineError::TooLong {
                limit: MAX_LINE_BYTES,
            }));
        }
        if raw.contains(&0) {
            return Err(failed(LineError::Nul));
        }
        let text = std::str::from_utf8(raw).map_err(|_| failed(LineError::NotUtf8))?;
        // `sha256sum -c` skips leading white space too.
        let text = text.trim_start_matches([' ', '\t']);
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (sha256, name) = parse_line(text).map_err(failed)?;
        let path = listed.add(&name, line).map_err(|error| match error {
            ListedPathError::Path(error) => SumsError::Path { line, error },
            ListedPathError::Duplicate { first, path } => {
                SumsError::Duplicate { line, first, path }
            }
        })?;
        if entries.len() >= MAX_FILES {
            return Err(SumsError::TooManyEntries { limit: MAX_FILES });
        }
        entries.push(SumsEntry { line, path, sha256 });
    }
    if entries.is_empty() {
        return Err(SumsError::Empty);
    }
    Ok(entries)
}

/// The manifest's files as `sha256sum -c` lines (text mode, names escaped the coreutils way).
pub fn export(manifest: &Manifest) -> String {
    let mut out = String::new();
    for file in &manifest.files {
        let (prefix, name) = escape_name(file.path.as_str());
        out.push_str(&format!("{prefix}{}  {name}\n", file.sha256));
    }
    out
}

/// What the publisher names: the listing and the directory its paths are relative to.
#[derive(Debug, Clone)]
pub struct SumsRequest {
    pub sums: PathBuf,
    pub dir: PathBuf,
    pub header: DraftHeader,
}

/// Drafts a manifest from a listing: every listed file must be a regular file under
/// `request.dir` whose SHA-256 is the listed one; each is hashed and scanned like `manifest
/// create` does. Files that are missing, differ or are refused by the scanner are violations
/// and left out of the draft.
pub fn import(
    request: &SumsRequest,
    scan_options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Import, ImportError> {
    let bytes = read_bounded(&request.sums, MAX_SUMS_BYTES)?;
    let entries = parse(&bytes).map_err(|source| ImportError::Sums {
        path: request.sums.clone(),
        source,
    })?;
    let mut violations = Vec::new();
    let mut present = Vec::new();
    let mut listed = HashMap::new();
    for entry in entries {
        let kind = tree::entry(&request.dir, &entry.path).map_err(|source| ImportError::Read {
            path: entry.path.to_path_under(&request.dir),
            source,
        })?;
        let finding = match kind {
            Some(EntryKind::File { size }) => {
                present.push((entry.path.clone(), size));
                listed.insert(entry.path, (entry.line, entry.sha256));
                continue;
            }
            None => Finding::new(
                Code::FileMissing,
                format!(
                    "listed on line {} but not in `{}`",
                    entry.line,
                    quote(&request.dir.display().to_string())
                ),
            ),
            Some(EntryKind::Symlink) => Finding::new(
                Code::FileNotRegular,
                "is (or is under) a symbolic link, which is never followed",
            ),
            Some(EntryKind::Special) => Finding::new(Code::FileNotRegular, "is not a regular file"),
        };
        violations.push((entry.path.as_str().to_owned(), vec![finding]));
    }
    let examined = create::examine(
        &request.dir,
        present,
        &RecordOptions::default(),
        scan_options,
        progress,
    )?;
    violations.extend(examined.refused);
    let mut files = Vec::new();
    for file in examined.files {
        match listed.get(&file.path) {
            Some(&(line, expected)) if expected != file.sha256 => violations.push((
                file.path.as_str().to_owned(),
                vec![Finding::new(
                    Code::DigestMismatch,
                    format!("content differs from the SHA-256 listed on line {line}"),
                )
                .with_mismatch(
                    format!("sha256:{expected}"),
                    format!("sha256:{}", file.sha256),
                )],
            )),
            _ => files.push(file),
        }
    }
    finish(&request.header, &request.dir, files, violations, Vec::new())
}

/// Splits a non-blank, non-comment line into its digest and (unescaped) name.
fn parse_line(text: &str) -> Result<(Sha256, Cow<'_, str>), LineError> {
    let (escaped, text) = match text.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if let Some(rest) = text.strip_prefix("SHA256 (") {
        let (name, hex) = rest.rsplit_once(") = ").ok_or(LineError::Shape)?;
        return Ok((digest(hex)?, unescape(name, escaped)?));
    }
    if let Some((tag, rest)) = text.split_once(" (") {
        let looks_tagged = !tag.is_empty()
            && tag.len() <= 16
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && rest.contains(") = ");
        if looks_tagged {
            return Err(LineError::Algorithm {
                tag: tag.to_owned(),
            });
        }
    }
    let (hex, rest) = match (text.get(..64), text.get(64..)) {
        (Some(hex), Some(rest)) => (hex, rest),
        _ => return Err(LineError::Shape),
    };
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))
        .filter(|name| !name.is_empty())
        .ok_or(LineError::Shape)?;
    Ok((digest(hex)?, unescape(name, escaped)?))
}

fn digest(hex: &str) -> Result<Sha256, LineError> {
    let failed = || LineError::Digest {
        text: hex.to_owned(),
    };
    // `sha256sum -c` accepts upper-case digits; a manifest spells them in lower case.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(failed());
    }
    hex.to_ascii_lowercase().parse().map_err(|_| failed())
}

fn unescape(name: &str, escaped: bool) -> Result<Cow<'_, str>, LineError> {
    if !escaped {
        return Ok(Cow::Borrowed(name));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(escape) => return Err(LineError::Escape { escape }),
            None => return Err(LineError::TrailingBackslash),
        }
    }
    Ok(Cow::Owned(out))
}

/// The line prefix (`\` when escaped) and the name as coreutils writes it.
fn escape_name(name: &str) -> (&'static str, Cow<'_, str>) {
    if !name.contains(['\\', '\n', '\r']) {
        return ("", Cow::Borrowed(name));
    }
    let escaped = name
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r");
    ("\\", Cow::Owned(escaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn error(text: &[u8]) -> SumsError {
        parse(text).unwrap_err()
    }

    #[test]
    fn reads_text_binary_and_tag_lines_with_comments() {
        let text = format!(
            "# made by sha256sum\r\n\n{A}  model.safetensors\r\n{} *configs/inference.json\nSHA256 (./docs/README.md) = {B}\n",
            B.to_ascii_uppercase()
        );
        let entries = parse(text.as_bytes()).unwrap();
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model.safetensors",
                "configs/inference.json",
                "docs/README.md"
            ]
        );
        assert_eq!(entries[0].line, 3);
        assert_eq!(entries[1].sha256.to_string(), B);
    }

    #[test]
    fn unescapes_names_the_coreutils_way() {
        assert_eq!(unescape(r"a\\b\nc", true).unwrap(), "a\\b\nc");
        assert_eq!(unescape(r"a\\b", false).unwrap(), r"a\\b");
        assert_eq!(
            unescape(r"a\t", true),
            Err(LineError::Escape { escape: 't' })
        );
        assert_eq!(unescape("a\\", true), Err(LineError::TrailingBackslash));
        // An escaped name parses, and the path rules then refuse its backslash.
        let line = format!("\\{A}  a\\\\b\n");
        assert!(matches!(
            error(line.as_bytes()),
            SumsError::Path { line: 1, .. }
        ));
        assert_eq!(escape_name("a\\b\nc"), ("\\", Cow::Borrowed("a\\\\b\\nc")));
        assert_eq!(escape_name("plain"), ("", Cow::Borrowed("plain")));
    }

    #[test]
    fn refuses_hostile_lines_with_their_numbers() {
        let line = |n, reason| SumsError::Line { line: n, reason };
        assert_eq!(
            error(format!("{A}  ok\n{A} x\n").as_bytes()),
            line(2, LineError::Shape)
        );
        assert_eq!(
            error(format!("{A}  a\0b").as_bytes()),
            line(1, LineError::Nul)
        );
        assert_eq!(error(b"\xff\xfe  x"), line(1, LineError::NotUtf8));
        assert_eq!(
            error(format!("MD5 (x) = {A}").as_bytes()),
            line(1, LineError::Algorithm { tag: "MD5".into() })
        );
        assert!(matches!(
            error(format!("{}  x", &A[..63]).as_bytes()),
            SumsError::Line { line: 1, .. }
        ));
        let huge = format!("{A}  {}", "a".repeat(MAX_LINE_BYTES));
        assert_eq!(
            error(huge.as_bytes()),
            line(
                1,
                LineError::TooLong {
                    limit: MAX_LINE_BYTES
                }
            )
        );
        assert_eq!(error(b"# only a comment\n"), SumsError::Empty);
        assert!(matches!(
            error(&vec![b'#'; MAX_SUMS_BYTES + 1]),
            SumsError::TooLarge { .. }
        ));
        // Multi-byte characters where the digest should end are a shape error, not a panic.
        assert_eq!(
            error(format!("{}é  x", &A[..63]).as_bytes()),
            line(1, LineError::Shape)
        );
    }

    #[test]
    fn refuses_traversal_absolute_paths_and_duplicates() {
        for name in ["../etc/passwd", "/etc/passwd", "a/../../b", "C:x"] {
            assert!(
                matches!(
                    error(format!("{B}  ok\n{A}  {name}\n").as_bytes()),
                    SumsError::Path { line: 2, .. }
                ),
                "{name}"
            );
        }
        assert_eq!(
            error(format!("{A}  a\n{B}  ./a\n").as_bytes()),
            SumsError::Duplicate {
                line: 2,
                first: 1,
                path: "a".into()
            }
        );
    }
}
