//! The JSON report, a versioned contract for machines.
//!
//! `modelvet scan --format json` prints one JSON object (pretty-printed, UTF-8, newline at the
//! end):
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "tool": { "name": "modelvet", "version": "0.1.0" },
//!   "command": "scan",
//!   "verdict": "reject",
//!   "files": [
//!     {
//!       "path": "model.pt",
//!       "format": "torch-zip",
//!       "size": 1234,
//!       "verdict": "reject",
//!       "findings": [
//!         {
//!           "code": "pickle-dangerous-global",
//!           "severity": "critical",
//!           "message": "imports `os.system`, which is not on the tensor-only allowlist",
//!           "location": "archive/data.pkl@52",
//!           "global": "os.system"
//!         }
//!       ]
//!     }
//!   ],
//!   "summary": { "files": 1, "accepted": 0, "warned": 0, "rejected": 1, "errors": 0,
//!                "findings": { "critical": 1, "error": 1, "warning": 0, "info": 0 } }
//! }
//! ```
//!
//! Fields:
//! - `schema_version` (integer): bumped when a field or finding code is renamed or removed;
//!   adding fields or codes keeps it.
//! - `verdict`, per file and overall: `accept`, `warn` (accepted with warnings), `reject`,
//!   `error` (could not be checked; `error` holds the reason). The overall verdict is the worst.
//! - `format`: detected from content: `pickle`, `joblib`, `torch-zip`, `torch-tar`, `npy`,
//!   `npz`, `safetensors`, `gguf`, `onnx`, `keras`, `hdf5`, `wasm`, `zip`, `tar`, `gzip`, `zlib`,
//!   `bzip2`, `xz`, `lzma`, `json`, `text`, `empty`, `unsupported`, `unknown`, `symlink`, `special`.
//! - `findings[]`: `code` (stable kebab-case, see `modelvet explain` / [`crate::finding::Code`]),
//!   `severity` (`info`, `warning`, `error`, `critical`), `message` (human text, may quote file
//!   content), and optional `location` (container member path and/or `@byte-offset`), `global`
//!   (for pickle globals, `module.name` as the file spells it), `hint`, and for mismatches
//!   `expected` / `computed` (`sha256:<hex>` digests, byte sizes).
//!
//! Exit codes go with it: 0 when the overall verdict is `accept` or `warn`, 1 for `reject`,
//! 2 for `error` or a usage error.
//!
//! The same contract as a JSON Schema (2020-12) is published in `docs/report.schema.json`; a
//! unit test below keeps its enums in step with the code, and the integration tests validate
//! real reports against it.

use std::io::{self, Write};

use crate::report::Report;

/// Writes the report as pretty-printed JSON followed by a newline.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::finding::{Code, Severity};
    use crate::policy::Verdict;

    const SCHEMA_FILE: &str = include_str!("../../docs/report.schema.json");

    #[test]
    fn published_schema_lists_every_code_verdict_and_severity() {
        let schema: Value = serde_json::from_str(SCHEMA_FILE).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            super::super::SCHEMA_VERSION
        );
        let codes: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(schema["$defs"]["code"]["enum"], json!(codes));
        let verdicts = [
            Verdict::Accept,
            Verdict::Warn,
            Verdict::Reject,
            Verdict::Error,
        ];
        assert_eq!(
            schema["$defs"]["verdict"]["enum"],
            json!(verdicts.map(|verdict| serde_json::to_value(verdict).unwrap()))
        );
        let severities = [
            Severity::Info,
            Severity::Warning,
            Severity::Error,
            Severity::Critical,
        ];
        assert_eq!(
            schema["$defs"]["severity"]["enum"],
            json!(severities.map(|severity| serde_json::to_value(severity).unwrap()))
        );
    }
}
