//! Which ONNX nodes run Python or other code the model does not describe, as names and
//! patterns only: the walker reads the nodes and reports the findings.
//!
//! - ONNX Runtime's language-interop `PyOp` (built with `--enable_language_interop_ops`)
//!   imports the Python module named by its `module` attribute and calls `class_name` /
//!   `compute` from it, in whatever custom domain the node names: the model chooses the code.
//! - ORT training's `PythonOp` / `PythonOpGrad` (`com.microsoft`) call back into Python
//!   (`torch.autograd.Function`s found by their `func_name` attribute).
//! - onnxruntime-extensions (`ai.onnx.contrib`) mixes C++ kernels with Python functions the
//!   loading process registered with `@onnx_op` (its `PyOp` / `PyCustomOpDef`): a node there
//!   whose op type starts with `Py` is treated as Python; the domain's other ops get a warning.
//! - A string attribute holding Python source (`__import__`, `os.system`, `exec(`...), or an
//!   attribute named like the interop ops' code hooks, is flagged whatever the op.
//!
//! Other custom domains get a warning, not a rejection: ONNX Runtime refuses a model whose
//! domain no registered library implements, so the code such a node runs is a custom-op
//! library the user chose to load, not something the model carries. A model-local function's
//! own domain is not custom.

/// Op types that hand tensors to Python, in any domain.
const PYTHON_OPS: &[&str] = &["PyOp", "PythonOp", "PythonOpGrad", "PyFunc", "PyCustomOp"];

/// Attributes of the interop ops that name the Python to run.
const PYTHON_ATTRIBUTES: &[&str] = &["module", "class_name", "compute", "func_name", "script"];

/// Domains whose ops ONNX Runtime or the ONNX standard implement natively.
const KNOWN_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.preview",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.mlfeaturizers",
    "com.microsoft.experimental",
    "com.microsoft.dml",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
];

/// onnxruntime-extensions' domains, where ops may be Python functions.
const EXTENSIONS_DOMAINS: &[&str] = &["ai.onnx.contrib", "com.microsoft.extensions"];

/// Text that only Python source (or a shell one-liner) holds. Kept specific: attribute
/// strings also hold regexes, vocabularies and labels, which must not match.
pub(super) const PYTHON_MARKERS: &[&[u8]] = &[
    b"__import__",
    b"__builtins__",
    b"__globals__",
    b"__subclasses__",
    b"import os",
    b"import sys",
    b"import subprocess",
    b"import socket",
    b"os.system",
    b"os.popen",
    b"subprocess.",
    b"exec(",
    b"eval(",
    b"pickle.loads",
    b"marshal.loads",
    b"#!/",
];

/// Longest marker, so chunked scans overlap enough to never split one.
pub(super) const MARKER_OVERLAP: usize = 32;

/// Why an op type runs Python, if it does.
pub(super) fn python_op(op: &[u8]) -> bool {
    PYTHON_OPS.iter().any(|p| p.as_bytes() == op)
}

pub(super) fn python_attribute(name: &[u8]) -> bool {
    PYTHON_ATTRIBUTES.iter().any(|p| p.as_bytes() == name)
}

/// What kind of domain a node's op lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Domain {
    Known,
    Extensions,
    Custom,
}

pub(super) fn domain(domain: &[u8]) -> Domain {
    if KNOWN_DOMAINS.iter().any(|d| d.as_bytes() == domain) {
        Domain::Known
    } else if EXTENSIONS_DOMAINS.iter().any(|d| d.as_bytes() == domain) {
        Domain::Extensions
    } else {
        Domain::Custom
    }
}

/// The first Python marker in `text`.
pub(super) fn python_marker(text: &[u8]) -> Option<&'static [u8]> {
    PYTHON_MARKERS
        .iter()
        .copied()
        .find(|marker| memchr::memmem::find(text, marker).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_fit_the_overlap() {
        assert!(PYTHON_MARKERS.iter().all(|m| m.len() < MARKER_OVERLAP));
    }

    #[test]
    fn classifies_domains_and_text() {
        assert_eq!(domain(b""), Domain::Known);
        assert_eq!(domain(b"com.microsoft"), Domain::Known);
        assert_eq!(domain(b"ai.onnx.contrib"), Domain::Extensions);
        assert_eq!(domain(b"pyopmulti_1"), Domain::Custom);
        assert!(python_op(b"PyOp"));
        assert!(!python_op(b"Pyop"));
        assert_eq!(
            python_marker(b"x = __import__('os')"),
            Some(&b"__import__"[..])
        );
        assert_eq!(python_marker(b"^[a-z]+(ex|ev)al$"), None);
    }
}
