//! The Keras model config check: a parsed JSON value, walked whole, against what Keras's
//! deserialiser would import or run.
//!
//! Keras rebuilds a model by resolving every `{"module", "class_name", "config",
//! "registered_name"}` object it meets, at any depth (nested layers, functional graphs,
//! `build_config`, `compile_config`, losses, metrics, initialisers...). Code gets in through
//! `Lambda`-like layers and `__lambda__` functions (marshalled bytecode), through objects from
//! modules outside Keras (`os`, `builtins`, `__main__`, custom packages: CVE-2025-1550), and
//! through references to functions that are not modelling functions even inside Keras
//! (`keras.config.enable_unsafe_deserialization`, `keras.models.load_model`: CVE-2025-9906,
//! CVE-2025-8747). Functions are therefore allowed only from Keras's modelling namespaces,
//! where Keras itself looks up built-in function names.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::finding::{quote, CappedFindings, Code, Finding};

/// Layer and object classes that carry Python code.
const CODE_CLASSES: &[&str] = &["Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__"];

/// Top-level packages whose classes Keras itself deserialises (Keras 3 refuses any other
/// package; `tensorflow.keras` is the TF 2 alias of Keras 2).
const KERAS_PACKAGES: &[&str] = &["keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp"];

/// The modules (after the Keras package and an optional `src.`) whose functions Keras looks up
/// by name as built-ins: the only places a config may name a function from.
const FUNCTION_MODULES: &[&str] = &[
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
];

/// Names Keras writes with `module: builtins` for its own built-in functions (it then looks
/// them up in the modules above, never in Python's `builtins`).
const BUILTIN_FUNCTIONS: &[&str] = &[
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "ctc",
    "dice",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "log_cosh",
    "logcosh",
    "mae",
    "mape",
    "mse",
    "msle",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "tversky",
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
];

/// Deepest nesting walked; serde_json's own parser stops at 128.
const MAX_DEPTH: usize = 256;
/// Longest key or index text kept per step of a finding's location.
const MAX_STEP: usize = 64;

/// Walks a config and reports everything Keras would turn into code.
pub(super) fn check(value: &Value) -> Vec<Finding> {
    let mut walk = Walk {
        findings: CappedFindings::default(),
        path: "$".to_owned(),
    };
    if !value.is_object() {
        walk.findings.push(Finding::new(
            Code::KerasMalformed,
            "model config is not a JSON object",
        ));
    }
    walk.value(value, 0);
    walk.findings.finish()
}

/// One walk: the findings so far and the location of the value being looked at (one string
/// grown and cut back, so memory follows the depth, not the number of values).
struct Walk {
    findings: CappedFindings,
    path: String,
}

impl Walk {
    fn value(&mut self, value: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            self.findings.push(
                Finding::new(
                    Code::KerasMalformed,
                    "model config nests deeper than modelvet walks",
                )
                .at(quote(&self.path)),
            );
            return;
        }
        match value {
            Value::Object(map) => {
                if let Some(finding) = object(map) {
                    self.findings.push(finding.at(quote(&self.path)));
                }
                for (key, child) in map {
                    let step: String = key.chars().take(MAX_STEP).collect();
                    self.child(&format!(".{step}"), child, depth);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.child(&format!("[{i}]"), child, depth);
                }
            }
            Value::String(text) if is_marshalled_code(text) => self.findings.push(
                Finding::new(
                    Code::KerasUnsafeLayer,
                    "config holds base64 text of marshalled Python bytecode",
                )
                .at(quote(&self.path))
                .with_hint(HINT_LAMBDA),
            ),
            _ => {}
        }
    }

    fn child(&mut self, step: &str, child: &Value, depth: usize) {
        let len = self.path.len();
        self.path.push_str(step);
        self.value(child, depth + 1);
        self.path.truncate(len);
    }
}

/// Whether a JSON value is a Keras model config (a `.keras` archive's `config.json`, a
/// `model.to_json()` text, an HDF5 `model_config`) rather than, say, a Hugging Face
/// `config.json`: a top-level object naming a class and carrying its config.
pub(super) fn looks_like(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    map.get("class_name").is_some_and(Value::is_string) && map.contains_key("config")
}

const HINT_LAMBDA: &str = "rebuild the layer in code and save the weights only (safetensors)";
const HINT_IMPORT: &str = "custom objects must be registered in code, not named in the config";

/// The one finding an object deserves, if any (the walk visits its children separately).
fn object(map: &Map<String, Value>) -> Option<Finding> {
    let class = map.get("class_name").and_then(Value::as_str);
    let name = map
        .get("config")
        .and_then(|config| config.get("name"))
        .and_then(Value::as_str)
        .or_else(|| map.get("name").and_then(Value::as_str))
        .map(|name| format!("layer `{}`", quote(name)))
        .unwrap_or_else(|| "config object".to_owned());
    let registered = map.get("registered_name").and_then(Value::as_str);
    let registered_class = registered.map(|r| r.rsplit('>').next().unwrap_or(r));
    if let Some(code) = class
        .into_iter()
        .chain(registered_class)
        .find(|c| CODE_CLASSES.contains(c))
    {
        return Some(
            Finding::new(
                Code::KerasUnsafeLayer,
                format!("{name} is a `{code}`, which carries serialised Python code"),
            )
            .with_hint(HINT_LAMBDA),
        );
    }
    if map.get("function_type").and_then(Value::as_str) == Some("lambda") {
        return Some(
            Finding::new(
                Code::KerasUnsafeLayer,
                format!(
                    "{name} holds a function of `function_type: lambda` (serialised Python code)"
                ),
            )
            .with_hint(HINT_LAMBDA),
        );
    }
    let module = match map.get("module") {
        None | Some(Value::Null) => None,
        Some(Value::String(module)) => Some(module.as_str()),
        Some(_) => {
            return Some(Finding::new(
                Code::KerasMalformed,
                "config object has a `module` that is not a string",
            ))
        }
    };
    if class == Some("function") {
        return function(module, map.get("config"));
    }
    if let Some(module) = module.filter(|m| !is_keras_module(m)) {
        return Some(
            Finding::new(
                Code::KerasUnsafeLayer,
                format!(
                    "config asks the loader to import `{}.{}`, outside Keras",
                    quote(module),
                    quote(class.unwrap_or("?"))
                ),
            )
            .with_hint(HINT_IMPORT),
        );
    }
    if let Some(registered) = registered.filter(|r| is_custom_registration(r)) {
        return Some(
            Finding::new(
                Code::KerasUnsafeLayer,
                format!(
                    "config names the custom object `{}`, whose code is not part of Keras",
                    quote(registered)
                ),
            )
            .with_hint(HINT_IMPORT),
        );
    }
    None
}

/// A `{"class_name": "function", "module": m, "config": name}` reference.
fn function(module: Option<&str>, config: Option<&Value>) -> Option<Finding> {
    let name = config.and_then(Value::as_str).unwrap_or("?");
    let allowed = match module {
        Some("builtins") => BUILTIN_FUNCTIONS.contains(&name),
        Some(module) => is_function_module(module),
        // No module: Keras looks the name up among registered custom objects only.
        None => config.is_some_and(Value::is_string) && !name.contains('>'),
    };
    (!allowed).then(|| {
        Finding::new(
            Code::KerasUnsafeLayer,
            format!(
                "config calls the function `{}.{}`, which is not a Keras modelling function",
                quote(module.unwrap_or("?")),
                quote(name)
            ),
        )
        .with_hint(HINT_IMPORT)
    })
}

/// The package part of a module path Keras would deserialise from: `keras`, `keras.layers`,
/// `keras.src.models.functional`, `tf_keras.src...`, `tensorflow.keras...`.
fn is_keras_module(module: &str) -> bool {
    let rest = module.strip_prefix("tensorflow.").unwrap_or(module);
    let root = rest.split('.').next().unwrap_or(rest);
    if module.starts_with("tensorflow.") {
        return root == "keras";
    }
    KERAS_PACKAGES.contains(&root)
}

/// Whether functions of this module are Keras built-ins: `keras.activations`,
/// `keras.src.losses.losses`, `tf_keras.metrics`...
fn is_function_module(module: &str) -> bool {
    let mut parts = module.split('.');
    let mut first = parts.next();
    if first == Some("tensorflow") {
        first = parts.next();
    }
    if !matches!(first, Some("keras" | "tf_keras")) {
        return false;
    }
    let mut next = parts.next();
    if next == Some("src") {
        next = parts.next();
    }
    next.is_some_and(|part| FUNCTION_MODULES.contains(&part))
}

/// A `Package>Name` registration from a package other than Keras's own.
fn is_custom_registration(registered: &str) -> bool {
    match registered.split_once('>') {
        Some((package, _)) => !KERAS_PACKAGES.contains(&package),
        None => false,
    }
}

/// Whether text is base64 (as `marshal.dumps` then `codecs.encode(.., "base64")` writes it)
/// of a Python code object. Python's decoder skips characters outside the alphabet, so this
/// does too; the object must open with the code type byte (`c`, with or without the reference
/// flag) and a small argument count, which ordinary names never decode to.
fn is_marshalled_code(text: &str) -> bool {
    const MIN_LEN: usize = 24;
    if text.len() < MIN_LEN {
        return false;
    }
    let alphabet = |c: &char| c.is_ascii_alphanumeric() || *c == '+' || *c == '/';
    let head: String = text.chars().filter(alphabet).take(8).collect();
    let engine = &base64::engine::general_purpose::STANDARD_NO_PAD;
    let Ok(bytes) = engine.decode(head) else {
        return false;
    };
    // Type byte, then the little-endian argument count (an i32 below 256).
    matches!(bytes.as_slice(), [0x63 | 0xE3, _, 0, 0, 0, ..])
        && text.chars().filter(alphabet).count() >= MIN_LEN
}
