//! The allowlists: every filter, test, callable and method a chat template may use.
//!
//! Collected from the real templates in `fixtures/chat-templates/corpus/` (Llama, Mistral,
//! Qwen, Gemma, Phi, DeepSeek, Command-R, Granite, tool-calling templates...) and limited to
//! Jinja2 built-ins and Hugging Face additions that only compute on values: none of them
//! reaches a module, a class or a frame. Anything else is a finding, however harmless it may
//! be, so a new filter of a loader cannot quietly become a way out.

/// Filters (`x|name`). The attribute-walking ones are judged further by the checker.
pub(super) const FILTERS: &[&str] = &[
    "abs",
    "attr",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    // Not Jinja2's: vLLM and SGLang renderers add it for DeepSeek V3.2+ (`json.loads`).
    "from_json",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "sort",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "wordcount",
];

/// Filters whose arguments name attributes (`attribute=`, `attr('x')`, `selectattr('x')`), which
/// Jinja2 resolves with `getattr` and splits on dots.
pub(super) const ATTRIBUTE_FILTERS: &[&str] = &[
    "attr",
    "groupby",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "select",
    "selectattr",
    "sort",
    "sum",
    "unique",
];

/// Tests (`x is name`).
pub(super) const TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "eq",
    "equalto",
    "even",
    "false",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "sameas",
    "sequence",
    "string",
    "true",
    "undefined",
    "upper",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
];

/// Globals a template may call (Jinja2's `range`, `dict` and `namespace`; Hugging Face's
/// `raise_exception` and `strftime_now`). `cycler`, `joiner` and `lipsum` are left out: they
/// are where SSTI payloads start (`cycler.__init__.__globals__`).
pub(super) const FUNCTIONS: &[&str] = &[
    "dict",
    "namespace",
    "raise_exception",
    "range",
    "strftime_now",
];

/// Names a template may not even mention unless it binds them itself: Jinja2's default
/// globals that are objects, and the objects of web frameworks that SSTI payloads use.
pub(super) const FORBIDDEN_NAMES: &[&str] = &[
    "config",
    "cycler",
    "dict",
    "g",
    "get_flashed_messages",
    "joiner",
    "lipsum",
    "namespace",
    "range",
    "request",
    "self",
    "session",
    "url_for",
];

/// Methods (`x.name(...)`): those of `str`, `dict` and `list` that real templates call.
/// `format` and `format_map` are refused by name: `'{0.__class__}'.format(x)` walks
/// attributes inside the format string, out of the checker's sight.
pub(super) const METHODS: &[&str] = &[
    "append",
    "capitalize",
    "count",
    "endswith",
    "find",
    "get",
    "index",
    "isdigit",
    "items",
    "join",
    "keys",
    "lower",
    "lstrip",
    "pop",
    "replace",
    "rfind",
    "rsplit",
    "rstrip",
    "split",
    "splitlines",
    "startswith",
    "strip",
    "title",
    "upper",
    "values",
];

/// `loop` attributes that are integers.
pub(super) const LOOP_INTEGERS: &[&str] = &[
    "depth",
    "depth0",
    "index",
    "index0",
    "length",
    "revindex",
    "revindex0",
];

/// Attribute names that lead from an ordinary value to Python's machinery without a leading
/// underscore: frames, code and tracebacks of generators, coroutines and functions, and
/// `type.mro`. Jinja2's sandbox refuses the same ones.
pub(super) fn is_internal(name: &str) -> bool {
    const PREFIXES: &[&str] = &["ag_", "co_", "cr_", "f_", "func_", "gi_", "im_", "tb_"];
    name.starts_with('_') || name == "mro" || PREFIXES.iter().any(|p| name.starts_with(p))
}
