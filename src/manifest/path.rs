//! [`SafePath`]: a manifest file path that is safe to join under a model directory on any
//! operating system, established by parsing and never by later checks.
//!
//! This module owns the rules for one path on its own (relative, `/`-separated, no `.` or `..`
//! components, no characters or names that Windows or macOS treat specially). Rules that relate
//! several paths (order, duplicates, case collisions, a file that is also a directory) belong
//! to the manifest parser. Nothing here touches the file system.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::finding::quote;

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest component accepted, in bytes (the common file-system limit).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// A relative, `/`-separated path that passed every rule of [`PathRule`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct SafePath(String);

/// A path that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path `{}`: {rule}", quote(path))]
pub struct PathError {
    /// The path as given (displayed escaped and truncated).
    pub path: String,
    pub rule: PathRule,
}

/// The rules a [`SafePath`] obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathRule {
    Empty,
    TooLong {
        bytes: usize,
    },
    Absolute,
    TrailingSlash,
    Backslash,
    ControlCharacter,
    /// `:` names drive letters and NTFS alternate data streams.
    Colon,
    /// One of `< > " | ? *`, which Windows refuses in file names.
    WindowsCharacter(char),
    EmptyComponent,
    DotComponent,
    DotDotComponent,
    ComponentTooLong {
        bytes: usize,
    },
    /// `CON`, `NUL`, `COM1`... with or without an extension, in any case.
    ReservedName(String),
    /// Windows silently drops a trailing `.` or space, so `a.` would become `a`.
    TrailingDotOrSpace,
}

impl SafePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, in order; never empty, `.` or `..`.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// This path under `root`, joined one component at a time so that no platform separator
    /// rule can reinterpret the whole string.
    pub fn to_path_under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        for component in self.components() {
            path.push(component);
        }
        path
    }
}

impl FromStr for SafePath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        check(text).map_err(|rule| PathError {
            path: text.to_owned(),
            rule,
        })?;
        Ok(SafePath(text.to_owned()))
    }
}

impl TryFrom<String> for SafePath {
    type Error = PathError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match check(&text) {
            Ok(()) => Ok(SafePath(text)),
            Err(rule) => Err(PathError { path: text, rule }),
        }
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SafePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for PathRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathRule::Empty => f.write_str("the path is empty"),
            PathRule::TooLong { bytes } => write!(
                f,
                "the path is {bytes} bytes long, more than the limit of {MAX_PATH_BYTES}"
            ),
            PathRule::Absolute => f.write_str("the path is absolute"),
            PathRule::TrailingSlash => f.write_str("the path ends in `/`"),
            PathRule::Backslash => f.write_str("the path contains a backslash"),
            PathRule::ControlCharacter => f.write_str("the path contains a control character"),
            PathRule::Colon => f.write_str("the path contains `:` (drive letter or data stream)"),
            PathRule::WindowsCharacter(c) => {
                write!(f, "the path contains `{c}`, which Windows refuses")
            }
            PathRule::EmptyComponent => f.write_str("the path has an empty component (`//`)"),
            PathRule::DotComponent => f.write_str("the path has a `.` component"),
            PathRule::DotDotComponent => f.write_str("the path has a `..` component"),
            PathRule::ComponentTooLong { bytes } => write!(
                f,
                "a component is {bytes} bytes long, more than the limit of {MAX_COMPONENT_BYTES}"
            ),
            PathRule::ReservedName(name) => {
                write!(f, "`{}` is a reserved device name on Windows", quote(name))
            }
            PathRule::TrailingDotOrSpace => {
                f.write_str("a component ends in `.` or a space, which Windows drops")
            }
        }
    }
}

/// Device names Windows reserves in every directory, whatever the extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

fn check(text: &str) -> Result<(), PathRule> {
    if text.is_empty() {
        return Err(PathRule::Empty);
    }
    if text.len() > MAX_PATH_BYTES {
        return Err(PathRule::TooLong { bytes: text.len() });
    }
    if text.starts_with('/') {
        return Err(PathRule::Absolute);
    }
    if text.ends_with('/') {
        return Err(PathRule::TrailingSlash);
    }
    for c in text.chars() {
        match c {
            '\\' => return Err(PathRule::Backslash),
            ':' => return Err(PathRule::Colon),
            '<' | '>' | '"' | '|' | '?' | '*' => return Err(PathRule::WindowsCharacter(c)),
            c if c.is_control() => return Err(PathRule::ControlCharacter),
            _ => {}
        }
    }
    for component in text.split('/') {
        check_component(component)?;
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), PathRule> {
    match component {
        "" => return Err(PathRule::EmptyComponent),
        "." => return Err(PathRule::DotComponent),
        ".." => return Err(PathRule::DotDotComponent),
        _ => {}
    }
    if component.len() > MAX_COMPONENT_BYTES {
        return Err(PathRule::ComponentTooLong {
            bytes: component.len(),
        });
    }
    if component.ends_with('.') || component.ends_with(' ') {
        return Err(PathRule::TrailingDotOrSpace);
    }
    // Windows resolves `nul.txt` and `NUL .tar.gz` to the device as well.
    let stem = component
        .split('.')
        .next()
        .unwrap_or(component)
        .trim_end_matches(' ');
    if RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(stem))
    {
        return Err(PathRule::ReservedName(component.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> PathRule {
        text.parse::<SafePath>().unwrap_err().rule
    }

    #[test]
    fn accepts_ordinary_and_nested_paths() {
        for text in [
            "model.safetensors",
            "a/b/c.json",
            "tokenizer/vocab.txt",
            ".gitattributes",
            "dir.d/.hidden/x",
            "model-00001-of-00002.safetensors",
            "ünïcode/模型.bin",
            "console.txt",
            "com10",
            "lpt",
            "a..b",
            "x/...y",
        ] {
            let path: SafePath = text.parse().unwrap();
            assert_eq!(path.as_str(), text);
            assert_eq!(path.to_string(), text);
        }
        let nested: SafePath = "a/b/c.json".parse().unwrap();
        assert_eq!(
            nested.components().collect::<Vec<_>>(),
            ["a", "b", "c.json"]
        );
        assert_eq!(
            nested.to_path_under(Path::new("/models/m")),
            Path::new("/models/m/a/b/c.json")
        );
    }

    #[test]
    fn refuses_every_unsafe_form() {
        let long_component = "x".repeat(256);
        let long_path = ["y"; 2049].join("/");
        let cases: Vec<(&str, PathRule)> = vec![
            ("", PathRule::Empty),
            ("/etc/passwd", PathRule::Absolute),
            ("/", PathRule::Absolute),
            ("a/", PathRule::TrailingSlash),
            ("a\\b", PathRule::Backslash),
            ("..\\evil", PathRule::Backslash),
            ("a\0b", PathRule::ControlCharacter),
            ("a\nb", PathRule::ControlCharacter),
            ("a\u{7f}", PathRule::ControlCharacter),
            ("a\u{9b}b", PathRule::ControlCharacter),
            ("C:/windows", PathRule::Colon),
            ("c:evil", PathRule::Colon),
            ("file.txt:stream", PathRule::Colon),
            ("a?b", PathRule::WindowsCharacter('?')),
            ("a*", PathRule::WindowsCharacter('*')),
            ("a<b>", PathRule::WindowsCharacter('<')),
            ("a|b", PathRule::WindowsCharacter('|')),
            ("a\"b", PathRule::WindowsCharacter('"')),
            ("a//b", PathRule::EmptyComponent),
            (".", PathRule::DotComponent),
            ("./a", PathRule::DotComponent),
            ("a/./b", PathRule::DotComponent),
            ("..", PathRule::DotDotComponent),
            ("../a", PathRule::DotDotComponent),
            ("a/../../b", PathRule::DotDotComponent),
            ("a/..", PathRule::DotDotComponent),
            (&long_component, PathRule::ComponentTooLong { bytes: 256 }),
            (&long_path, PathRule::TooLong { bytes: 4097 }),
            ("a.", PathRule::TrailingDotOrSpace),
            ("dir./b", PathRule::TrailingDotOrSpace),
            ("a ", PathRule::TrailingDotOrSpace),
            ("a/b ", PathRule::TrailingDotOrSpace),
        ];
        for (text, expected) in cases {
            assert_eq!(rule(text), expected, "{text:?}");
        }
        for reserved in [
            "CON",
            "con",
            "Con.txt",
            "PRN",
            "aux.json",
            "NUL",
            "nul.tar.gz",
            "COM1",
            "com9.bin",
            "LPT1",
            "lpt9",
            "dir/NUL",
            "NUL/x",
            "nul .txt",
            "COM¹",
            "conin$",
        ] {
            assert!(
                matches!(rule(reserved), PathRule::ReservedName(_)),
                "{reserved}"
            );
        }
    }

    #[test]
    fn exact_limits_are_accepted() {
        let component = "x".repeat(MAX_COMPONENT_BYTES);
        assert!(component.parse::<SafePath>().is_ok());
        let path = [component.as_str(); 16].join("/");
        assert_eq!(path.len(), 16 * 255 + 15);
        assert!(path.parse::<SafePath>().is_ok());
    }

    #[test]
    fn error_quotes_the_path_and_escapes_it() {
        let error = "a/../\u{1b}[2J".parse::<SafePath>().unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("unsafe path `a/../\\u{1b}[2J`"),
            "{message}"
        );
        assert!(message.contains("control character"), "{message}");
        assert_eq!(error.path, "a/../\u{1b}[2J");
        let long = format!("../{}", "z".repeat(5000));
        assert!(long.parse::<SafePath>().unwrap_err().to_string().len() < 400);
    }

    #[test]
    fn serde_uses_the_same_rules() {
        let path: SafePath = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(serde_json::to_string(&path).unwrap(), "\"a/b\"");
        assert!(serde_json::from_str::<SafePath>("\"../a\"").is_err());
        assert_eq!(
            SafePath::try_from("x/y".to_owned()).unwrap().as_str(),
            "x/y"
        );
        assert_eq!(
            SafePath::try_from("x\\y".to_owned()).unwrap_err().rule,
            PathRule::Backslash
        );
    }
}
