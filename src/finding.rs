//! Coded findings: the facts a checker establishes about an artifact that it *did* check.
//!
//! A finding is "checked and failed" (or "checked and worth saying"); "could not check" is an
//! error type of the module that tried. Every finding has a stable kebab-case [`Code`] that the
//! JSON report, tests and users' allowlists rely on, a [`Severity`], and a human message. This
//! module owns only the vocabulary: it must not decide verdicts (that is `policy`) nor render
//! anything (that is `report`).

use std::fmt;

use serde::Serialize;

/// How serious a finding is. The policy turns severities into a verdict: `error` and `critical`
/// reject, `warning` warns (rejects under `--strict`), `info` never changes the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $text:literal, $severity:ident; )*) => {
        /// Stable finding codes. Renaming one is a breaking change of the JSON contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order (used by docs, SARIF rule tables and tests).
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The kebab-case text that appears in reports.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }

            /// The severity a finding of this code has unless its producer says otherwise.
            pub fn default_severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }

            /// One line saying what the code means, for `modelvet explain` and SARIF rules.
            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => concat!($($doc),*).trim_ascii(), )* }
            }
        }
    };
}

codes! {
    // Pickle family.
    /// The file or a member of it is a Python pickle, which runs code when loaded.
    PickleFormat = "pickle-format", Error;
    /// A pickle imports a global outside the tensor-only allowlist.
    PickleDangerousGlobal = "pickle-dangerous-global", Critical;
    /// A pickle imports a global on the tensor-only allowlist (what rebuilding tensors needs).
    PickleGlobal = "pickle-global", Info;
    /// A pickle uses an extension-registry code (EXT1/2/4), which resolves to an unknown global.
    PickleExtensionCode = "pickle-extension-code", Critical;
    /// A pickle stream is truncated, has an invalid opcode or an inconsistent stack.
    PickleMalformed = "pickle-malformed", Error;
    /// An opcode straddles a FRAME boundary, which loaders read differently.
    PickleFrameViolation = "pickle-frame-violation", Error;
    /// A pickle exceeded an analysis bound (opcodes, memo, stack, nesting, time).
    PickleLimitExceeded = "pickle-limit-exceeded", Error;
    /// A pickle carries another pickle as a bytes or string argument.
    PickleNested = "pickle-nested", Error;
    /// Bytes sniffed as another format are also a pickle stream that a loader reading them
    /// would execute up to an import or call.
    PickleEmbedded = "pickle-embedded", Critical;
    /// A NumPy array's dtype holds Python objects, which are stored as a pickle.
    NumpyObjectDtype = "numpy-object-dtype", Critical;
    /// A NumPy `.npy` header or payload is malformed.
    NumpyMalformed = "numpy-malformed", Error;

    // Containers and compression.
    /// An archive cannot be read completely; its members cannot all be checked.
    ArchiveMalformed = "archive-malformed", Error;
    /// A zip member's stored CRC-32 does not match its content.
    ArchiveCrcMismatch = "archive-crc-mismatch", Error;
    /// A zip member's local header disagrees with the central directory.
    ArchiveHeaderMismatch = "archive-header-mismatch", Error;
    /// A zip member is marked encrypted (or uses flags that change how it is read).
    ArchiveEncrypted = "archive-encrypted", Error;
    /// Bytes precede or follow the archive structure.
    ArchiveExtraData = "archive-extra-data", Error;
    /// An archive member uses a compression method modelvet cannot read.
    ArchiveUnsupported = "archive-unsupported", Error;
    /// An archive member name is absolute, contains `..` or is otherwise unsafe.
    ArchiveUnsafePath = "archive-unsafe-path", Error;
    /// An archive or compressed stream exceeded a bound (members, size, ratio, nesting).
    ArchiveLimitExceeded = "archive-limit-exceeded", Error;
    /// A compressed stream (gzip, zlib, bz2, xz) is corrupt or truncated.
    CompressionMalformed = "compression-malformed", Error;
    /// A recognised container or compression format that modelvet cannot open (7z, rar, zstd...).
    ContainerUnsupported = "container-unsupported", Error;

    // Safe formats.
    /// The safetensors header is not valid (size, JSON, dtype, shape, offsets).
    SafetensorsInvalid = "safetensors-invalid", Error;
    /// Two tensors (or metadata keys) have the same name.
    SafetensorsDuplicateName = "safetensors-duplicate-name", Error;
    /// Tensor data regions overlap, leave gaps or run past the file.
    SafetensorsOffsetsInvalid = "safetensors-offsets-invalid", Error;
    /// Bytes follow the last tensor.
    SafetensorsTrailingBytes = "safetensors-trailing-bytes", Error;
    /// The file is also a valid file of another, dangerous format to a loader sniffing content.
    PolyglotFile = "polyglot-file", Critical;
    /// A GGUF file is malformed (header, metadata, tensor infos, alignment, offsets).
    GgufInvalid = "gguf-invalid", Error;
    /// A chat template reaches Python internals (`__globals__`, `__subclasses__`...), the
    /// server-side template injection that runs code in loaders rendering it unsandboxed.
    ChatTemplateInjection = "chat-template-injection", Critical;
    /// A chat template cannot be parsed as Jinja, so what it does cannot be checked.
    ChatTemplateInvalid = "chat-template-invalid", Error;
    /// An ONNX model cannot be parsed as a ModelProto.
    OnnxInvalid = "onnx-invalid", Error;
    /// An ONNX tensor refers to external data outside the model's directory.
    OnnxExternalDataUnsafe = "onnx-external-data-unsafe", Error;
    /// An ONNX node runs Python or other custom code (`PyOp`, `PyCustomOp`, script attributes).
    OnnxCustomCode = "onnx-custom-code", Critical;
    /// A TensorFlow graph holds an op that runs Python or touches the file system.
    TensorflowUnsafeOp = "tensorflow-unsafe-op", Critical;
    /// A TensorFlow SavedModel or GraphDef cannot be parsed.
    TensorflowMalformed = "tensorflow-malformed", Error;
    /// A Keras model holds a Lambda layer or serialised Python code.
    KerasUnsafeLayer = "keras-unsafe-layer", Critical;
    /// A Keras model archive or config is malformed.
    KerasMalformed = "keras-malformed", Error;
    /// A file named like a model format is empty, so no loader can read a model from it.
    ModelFileEmpty = "model-file-empty", Error;

    // Signatures and trust.
    /// Fewer distinct trusted keys signed than the trust policy's threshold.
    SignatureThresholdNotMet = "signature-threshold-not-met", Error;
    /// A signature does not verify against the key it names.
    SignatureInvalid = "signature-invalid", Warning;
    /// A signature names a key that the trust policy does not hold; it does not count.
    SignatureUnknownKey = "signature-unknown-key", Info;
    /// A signature is by a trusted key whose validity has expired; it does not count.
    SignatureKeyExpired = "signature-key-expired", Warning;
    /// The signed payload is not byte-for-byte the file being verified.
    SignaturePayloadMismatch = "signature-payload-mismatch", Error;
    /// The envelope's payload type is not the one expected for this kind of file.
    SignaturePayloadType = "signature-payload-type", Error;
    /// A new trust policy does not increase the version of the current one.
    TrustRollback = "trust-rollback", Error;

    // Manifests and verification.
    /// The manifest does not parse or breaks a rule (unknown field, unsafe or duplicate path).
    ManifestInvalid = "manifest-invalid", Error;
    /// The manifest's `expires` time has passed.
    ManifestExpired = "manifest-expired", Error;
    /// The manifest expires within the registry's warning window.
    ManifestExpiring = "manifest-expiring", Warning;
    /// A manifest lists a file named like a pickle (`.pt`, `.pth`, `.pkl`, `.ckpt`, `.bin`...)
    /// without declaring a safe format.
    PolicyPickleDeclared = "policy-pickle-declared", Error;
    /// The manifest's version is lower than one already verified for the same name.
    ManifestRollback = "manifest-rollback", Error;
    /// The manifest reuses a verified version number with different bytes.
    ManifestVersionReused = "manifest-version-reused", Error;
    /// A file the manifest lists is not in the directory.
    FileMissing = "file-missing", Error;
    /// The directory holds a file the manifest does not list.
    FileUnexpected = "file-unexpected", Error;
    /// A listed path is a symbolic link, directory or special file, not a regular file.
    FileNotRegular = "file-not-regular", Error;
    /// A file's size differs from the manifest's.
    SizeMismatch = "size-mismatch", Error;
    /// A file's SHA-256 differs from the manifest's.
    DigestMismatch = "digest-mismatch", Error;
    /// One chunk of a file has a SHA-256 that differs from the manifest's chunk digest.
    ChunkDigestMismatch = "chunk-digest-mismatch", Error;
    /// A file's content is not the format the manifest declares for it.
    FormatMismatch = "format-mismatch", Error;
    /// An imported checksum (MD5, SHA-1, or none published) cannot vouch for a file's bytes.
    HashUnverifiable = "hash-unverifiable", Warning;

    // Downloads.
    /// Every source of a file failed (unreachable, wrong bytes, too many bytes); nothing placed.
    DownloadFailed = "download-failed", Error;
    /// A server's metadata (`X-Linked-Size`, `X-Linked-Etag`, `X-Repo-Commit`) disagrees with the
    /// signed manifest.
    SourceMismatch = "source-mismatch", Error;
    /// A source is not allowed (plain HTTP to a non-loopback host, unknown scheme, offline).
    SourceRefused = "source-refused", Warning;

    // Plugins (the wasm sandbox).
    /// A plugin's bytes differ from the SHA-256 that pins them; it was not started.
    PluginPinMismatch = "plugin-pin-mismatch", Critical;
    /// A plugin has no pin (neither a verified manifest nor `--sha256`); it was not started.
    PluginUnpinned = "plugin-unpinned", Error;
    /// A plugin is not a valid WebAssembly module for the enabled features.
    PluginInvalidModule = "plugin-invalid-module", Error;
    /// A plugin imports something other than the ABI's host functions (WASI, sockets, clocks...).
    PluginForbiddenImport = "plugin-forbidden-import", Critical;
    /// A plugin lacks an export of plugin ABI v1 or declares another ABI version.
    PluginAbiMismatch = "plugin-abi-mismatch", Error;
    /// A plugin ran longer than its wall-clock timeout and was stopped.
    PluginTimeout = "plugin-timeout", Error;
    /// A plugin used up its fuel budget and was stopped.
    PluginFuelExhausted = "plugin-fuel-exhausted", Error;
    /// A plugin asked for more linear memory than its limit (initially or by growing).
    PluginMemoryLimit = "plugin-memory-limit", Error;
    /// A plugin exhausted its wasm stack (deep or endless recursion).
    PluginStackOverflow = "plugin-stack-overflow", Error;
    /// A plugin exceeded a table, instance or memory-count limit.
    PluginResourceLimit = "plugin-resource-limit", Error;
    /// A plugin panicked (executed `unreachable`).
    PluginPanic = "plugin-panic", Error;
    /// A plugin trapped (out-of-bounds access, division by zero, bad indirect call...).
    PluginTrap = "plugin-trap", Error;
    /// A plugin handed the host an invalid pointer, length, dtype, shape or name.
    PluginBadOutput = "plugin-bad-output", Error;
    /// A plugin emitted more outputs, or more output bytes, than allowed.
    PluginOutputLimit = "plugin-output-limit", Error;
    /// A plugin finished without emitting any output.
    PluginNoOutput = "plugin-no-output", Error;
    /// A plugin reported failure (a non-zero status from `modelvet_process`).
    PluginFailed = "plugin-failed", Error;

    // Provenance receipts.
    /// A receipt does not parse, has another schema or breaks a rule (unknown field, unsafe
    /// path); nothing in it can be relied on.
    ReceiptInvalid = "receipt-invalid", Error;

    // General.
    /// The content is not a format modelvet recognises.
    UnknownFormat = "unknown-format", Warning;
    /// The file name's extension does not match the detected content.
    ExtensionMismatch = "extension-mismatch", Info;
    /// A symbolic link was found; it is never followed, so what it points to is unchecked.
    SymlinkNotFollowed = "symlink-not-followed", Error;
    /// A special file (socket, device, FIFO) was found and not read.
    SpecialFile = "special-file", Error;
    /// A file exceeded a scan bound (size read, time).
    ScanLimitExceeded = "scan-limit-exceeded", Error;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One coded fact about an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// Human text; may contain untrusted values, which renderers escape.
    pub message: String,
    /// Where inside the file: a container member path (`archive/data.pkl`), a byte offset
    /// (`@1234`), or both (`archive/data.pkl@12`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For `pickle-dangerous-global`: the imported global as `module.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// What the user can do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For mismatches: the value the manifest or signature promised (`sha256:…`, a size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// For mismatches: the value computed from the bytes on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<String>,
}

impl Finding {
    /// A finding with the code's default severity.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity: code.default_severity(),
            message: message.into(),
            location: None,
            global: None,
            hint: None,
            expected: None,
            computed: None,
        }
    }

    /// Records the promised and the computed value of a mismatch.
    pub fn with_mismatch(
        mut self,
        expected: impl Into<String>,
        computed: impl Into<String>,
    ) -> Self {
        self.expected = Some(expected.into());
        self.computed = Some(computed.into());
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn with_global(mut self, global: impl Into<String>) -> Self {
        self.global = Some(global.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the location with a container member path, so a finding from inside
    /// `archive/data.pkl` of `model.pt` says where it came from.
    pub fn inside(mut self, member: &str) -> Self {
        self.location = Some(match self.location.take() {
            None => member.to_owned(),
            Some(inner) if inner.starts_with('@') => format!("{member}{inner}"),
            Some(inner) => format!("{member}/{inner}"),
        });
        self
    }
}

/// Makes an untrusted value safe to quote between backticks in a message: control characters,
/// bidirectional overrides and backticks are escaped, and long values are cut, so a hostile
/// name can neither drive a terminal nor flood a report.
pub fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_CHARS {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c == '`' {
            out.push_str("\\`");
        } else if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`quote`] for bytes that should be text (invalid UTF-8 shows as U+FFFD).
pub fn quote_bytes(bytes: &[u8]) -> String {
    quote(&String::from_utf8_lossy(bytes))
}

/// Findings with a cap, so that a file with a million bad entries yields a bounded report.
/// What the cap hides is summarised in one last finding of the worst hidden code.
#[derive(Debug, Default)]
pub struct CappedFindings {
    list: Vec<Finding>,
    hidden: Option<(Code, u64)>,
}

impl CappedFindings {
    /// Findings kept before the rest are only counted.
    pub const CAP: usize = 64;

    pub fn push(&mut self, finding: Finding) {
        if self.list.len() < Self::CAP {
            self.list.push(finding);
            return;
        }
        let (code, count) = self.hidden.get_or_insert((finding.code, 0));
        *count = count.saturating_add(1);
        // Keep the worst code, so the summary line is never milder than what it hides.
        if finding.code.default_severity() > code.default_severity() {
            *code = finding.code;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.hidden.is_none()
    }

    pub fn finish(mut self) -> Vec<Finding> {
        if let Some((code, count)) = self.hidden {
            self.list.push(Finding::new(
                code,
                format!("{count} further findings not shown"),
            ));
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_documented() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{text} is not kebab-case"
            );
            assert!(!code.summary().is_empty(), "{text} has no summary");
        }
    }

    #[test]
    fn quote_escapes_and_cuts_hostile_text() {
        assert_eq!(quote("a`b\x1b[2J\u{202e}"), "a\\`b\\u{1b}[2J\\u{202e}");
        assert_eq!(quote(&"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn capped_findings_summarise_the_worst_hidden_code() {
        let mut findings = CappedFindings::default();
        for _ in 0..CappedFindings::CAP {
            findings.push(Finding::new(Code::UnknownFormat, "w"));
        }
        findings.push(Finding::new(Code::UnknownFormat, "w"));
        findings.push(Finding::new(Code::GgufInvalid, "e"));
        let list = findings.finish();
        assert_eq!(list.len(), CappedFindings::CAP + 1);
        assert_eq!(list.last().unwrap().code, Code::GgufInvalid);
    }

    #[test]
    fn inside_nests_member_paths() {
        let finding = Finding::new(Code::PickleMalformed, "x")
            .at("@12")
            .inside("data.pkl")
            .inside("archive");
        assert_eq!(finding.location.as_deref(), Some("archive/data.pkl@12"));
    }
}
