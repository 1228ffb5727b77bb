//! Unit tests of the parent module, built from raw bytes.
use super::*;

// A tiny protobuf encoder for building models in tests.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn vfield(number: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(number << 3, &mut out);
    varint(v, &mut out);
    out
}

fn lfield(number: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((number << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend(bytes);
    out
}

fn fixed32_field(number: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint((number << 3) | 5, &mut out);
    out.extend([0, 1, 2, 3]);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn entry(key: &str, value: &str) -> Vec<u8> {
    cat(&[lfield(1, key.as_bytes()), lfield(2, value.as_bytes())])
}

fn tensor(name: &str) -> Vec<u8> {
    cat(&[
        vfield(1, 2),
        vfield(2, 1),
        lfield(8, name.as_bytes()),
        lfield(9, &[0; 8]),
    ])
}

fn external_tensor(name: &str, location: &str) -> Vec<u8> {
    cat(&[
        vfield(1, 4),
        vfield(2, 1),
        lfield(8, name.as_bytes()),
        lfield(13, &entry("location", location)),
        lfield(13, &entry("offset", "0")),
        lfield(13, &entry("length", "16")),
        vfield(14, 1),
    ])
}

fn node(op: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = cat(&[lfield(1, b"x"), lfield(2, b"y"), lfield(4, op.as_bytes())]);
    for a in attributes {
        out.extend(lfield(5, a));
    }
    out
}

fn graph(nodes: &[Vec<u8>], initializers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = lfield(2, b"g");
    for n in nodes {
        out.extend(lfield(1, n));
    }
    for t in initializers {
        out.extend(lfield(5, t));
    }
    // A graph input, ValueInfoProto { name: "x" }, skipped but well-formed.
    out.extend(lfield(11, &lfield(1, b"x")));
    out
}

fn model(graph: &[u8]) -> Vec<u8> {
    cat(&[
        vfield(1, 9),
        lfield(2, b"pytorch"),
        lfield(7, graph),
        lfield(8, &cat(&[lfield(1, b""), vfield(2, 17)])),
    ])
}

fn simple_model() -> Vec<u8> {
    model(&graph(&[node("Relu", &[])], &[tensor("w")]))
}

fn codes(report: &OnnxReport) -> Vec<Code> {
    report.findings.iter().map(|f| f.code).collect()
}

fn assert_code(bytes: &[u8], code: Code, needle: &str) -> OnnxReport {
    let report = check(bytes);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == code && f.message.contains(needle)),
        "no {code} containing {needle:?}: {:#?}",
        report.findings
    );
    report
}

#[test]
fn accepts_a_small_model() {
    let bytes = simple_model();
    assert!(looks_like_onnx(&bytes));
    let report = check(&bytes);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let summary = report.summary.unwrap();
    assert_eq!(summary.ir_version, 9);
    assert_eq!(summary.opsets, [(String::new(), 17)]);
    assert_eq!(summary.producer.as_deref(), Some("pytorch"));
    assert_eq!(summary.nodes, 1);
    assert_eq!(summary.initializers, 1);
    assert!(summary.external_locations.is_empty());
}

#[test]
fn accepts_relative_external_data_and_skips_unknown_fields() {
    let g = cat(&[
        graph(
            &[],
            &[
                external_tensor("w", "weights.bin"),
                external_tensor("v", "sub/dir/w.bin"),
            ],
        ),
        // Unknown fields of every wire type are skipped.
        vfield(100, 5),
        lfield(101, b"future"),
        fixed32_field(102),
    ]);
    let report = check(&model(&g));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let summary = report.summary.unwrap();
    assert_eq!(summary.external_locations, ["weights.bin", "sub/dir/w.bin"]);
    assert_eq!(summary.initializers, 2);
}

#[test]
fn accepts_packed_and_unpacked_repeated_scalars() {
    let mut packed = Vec::new();
    for d in [2u64, 3, 300] {
        varint(d, &mut packed);
    }
    let t = cat(&[
        lfield(1, &packed),
        vfield(1, 4),
        vfield(2, 1),
        lfield(8, b"t"),
    ]);
    let attr = cat(&[
        lfield(1, b"axes"),
        vfield(20, 7),
        lfield(8, &packed),
        vfield(8, 1),
    ]);
    let bytes = model(&graph(&[node("Squeeze", &[attr])], &[t]));
    let report = check(&bytes);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn rejects_unsafe_external_locations() {
    for (location, reason) in [
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share", "absolute"),
        ("//server/share", "absolute"),
        ("../x", "`..`"),
        ("a/../../x", "`..`"),
        ("a/..", "`..`"),
        ("C:\\x", "backslash"),
        ("C:x", "`:`"),
        ("dir\\file", "backslash"),
        ("~/w.bin", "`~`"),
        ("", "empty"),
        ("w\0.bin", "NUL"),
        ("w\x1b.bin", "control"),
        ("nul.bin", "device"),
        ("d/COM1", "device"),
    ] {
        let bytes = model(&graph(&[], &[external_tensor("w", location)]));
        let report = assert_code(&bytes, Code::OnnxExternalDataUnsafe, reason);
        assert!(report.summary.is_some(), "{location}");
    }
    let bytes = model(&graph(
        &[],
        &[cat(&[
            lfield(13, &lfield(1, b"location")),
            lfield(13, &cat(&[lfield(1, b"location"), lfield(2, &[0xff])])),
        ])],
    ));
    assert_code(&bytes, Code::OnnxExternalDataUnsafe, "not valid utf-8");
}

#[test]
fn rejects_bad_offsets_lengths_and_keys() {
    for (key, value) in [
        ("offset", "-1"),
        ("length", "0x10"),
        ("offset", ""),
        ("length", "99999999999999999999999"),
    ] {
        let t = cat(&[
            lfield(13, &entry("location", "w.bin")),
            lfield(13, &entry(key, value)),
            vfield(14, 1),
        ]);
        assert_code(
            &model(&graph(&[], &[t])),
            Code::OnnxExternalDataUnsafe,
            "not a non-negative decimal integer",
        );
    }
    let t = cat(&[
        lfield(13, &entry("location", "w.bin")),
        lfield(13, &entry("location", "../w.bin")),
    ]);
    assert_code(
        &model(&graph(&[], &[t])),
        Code::OnnxExternalDataUnsafe,
        "repeats external data key `location`",
    );
    let t = cat(&[
        lfield(13, &entry("location", "w.bin")),
        lfield(13, &entry("basepath", "/")),
    ]);
    let report = assert_code(
        &model(&graph(&[], &[t])),
        Code::OnnxExternalDataUnsafe,
        "unknown external data key",
    );
    assert_eq!(report.findings[0].severity, Severity::Warning);
}

#[test]
fn rejects_external_tensor_without_location() {
    let t = cat(&[
        lfield(8, b"w"),
        lfield(13, &entry("offset", "0")),
        vfield(14, 1),
    ]);
    assert_code(
        &model(&graph(&[], &[t])),
        Code::OnnxInvalid,
        "no `location`",
    );
    let t = cat(&[lfield(8, b"w"), vfield(14, 7)]);
    let report = assert_code(
        &model(&graph(&[], &[t])),
        Code::OnnxInvalid,
        "unknown data_location 7",
    );
    assert!(report.summary.is_none());
}

#[test]
fn finds_external_data_in_subgraphs_and_everywhere_else() {
    let then_branch = graph(&[], &[external_tensor("w", "../../secret")]);
    let attr = cat(&[
        lfield(1, b"then_branch"),
        vfield(20, 5),
        lfield(6, &then_branch),
    ]);
    let bytes = model(&graph(&[node("If", &[attr])], &[]));
    let report = assert_code(&bytes, Code::OnnxExternalDataUnsafe, "../../secret");
    assert_eq!(report.summary.unwrap().nodes, 1);

    // A Constant node's tensor attribute, a sparse initializer, a function body, a
    // training graph: each one's external data is found.
    let attr_t = cat(&[
        lfield(1, b"value"),
        vfield(20, 4),
        lfield(5, &external_tensor("c", "/a")),
    ]);
    let sparse = cat(&[
        lfield(1, &external_tensor("s", "/b")),
        lfield(2, &tensor("i")),
    ]);
    let mut g = graph(&[node("Constant", &[attr_t])], &[]);
    g.extend(lfield(15, &sparse));
    let attr_ts = cat(&[lfield(1, b"ts"), lfield(10, &external_tensor("d", "/c"))]);
    let function = cat(&[lfield(1, b"f"), lfield(7, &node("Op", &[attr_ts]))]);
    let training = lfield(2, &graph(&[], &[external_tensor("e", "/d")]));
    let mut bytes = model(&g);
    bytes.extend(lfield(25, &function));
    bytes.extend(lfield(20, &training));
    let report = check(&bytes);
    for location in ["/a", "/b", "/c", "/d"] {
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.code == Code::OnnxExternalDataUnsafe
                    && f.message.contains(&format!("`{location}`"))),
            "{location} not found: {:#?}",
            report.findings
        );
    }
    let summary = report.summary.unwrap();
    assert_eq!(summary.nodes, 2);
    assert_eq!(summary.initializers, 2);
    assert_eq!(summary.external_locations, ["/a", "/b", "/c", "/d"]);
}

#[test]
fn rejects_truncated_and_garbage_input() {
    let bytes = simple_model();
    for cut in 0..bytes.len() {
        let report = check(&bytes[..cut]);
        assert!(report.summary.is_none(), "cut at {cut} accepted");
        assert_eq!(codes(&report), [Code::OnnxInvalid], "cut at {cut}");
    }
    for garbage in [
        &b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        b"hello world",
        b"\x08",
    ] {
        assert_eq!(codes(&check(garbage)), [Code::OnnxInvalid]);
    }
}

#[test]
fn rejects_malformed_wire_format() {
    // Group wire types.
    let mut bytes = simple_model();
    bytes.extend([(9 << 3) | 3, (9 << 3) | 4]);
    assert_code(&bytes, Code::OnnxInvalid, "group wire type");
    // Wire types 6 and 7.
    let mut bytes = simple_model();
    bytes.push((9 << 3) | 6);
    assert_code(&bytes, Code::OnnxInvalid, "wire type 6");
    // Field number 0.
    let mut bytes = simple_model();
    bytes.extend([0x02, 0x00]);
    assert_code(&bytes, Code::OnnxInvalid, "field number 0");
    // A varint overflowing 64 bits.
    let mut bytes = simple_model();
    bytes.extend([
        0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
    ]);
    assert_code(&bytes, Code::OnnxInvalid, "overflows 64 bits");
    // A length past the end.
    let mut bytes = simple_model();
    bytes.extend([0x32, 0x10, 0x00]);
    assert_code(&bytes, Code::OnnxInvalid, "runs past the end");
    // Known fields with the wrong wire type.
    let bytes = cat(&[vfield(1, 9), vfield(7, 1)]);
    assert_code(
        &bytes,
        Code::OnnxInvalid,
        "ModelProto field 7 has the wrong wire type",
    );
    let bytes = cat(&[lfield(1, b"9"), lfield(7, &graph(&[], &[]))]);
    assert_code(
        &bytes,
        Code::OnnxInvalid,
        "ModelProto field 1 has the wrong wire type",
    );
    let bytes = model(&graph(&[], &[cat(&[vfield(13, 1)])]));
    assert_code(
        &bytes,
        Code::OnnxInvalid,
        "TensorProto field 13 has the wrong wire type",
    );
    let bytes = model(&graph(&[], &[lfield(4, &[0, 0, 0])]));
    assert_code(&bytes, Code::OnnxInvalid, "TensorProto field 4");
}

#[test]
fn rejects_models_missing_required_parts() {
    let bytes = cat(&[vfield(1, 9), lfield(8, &vfield(2, 17))]);
    assert_code(&bytes, Code::OnnxInvalid, "no graph");
    let bytes = cat(&[lfield(7, &graph(&[], &[])), lfield(8, &vfield(2, 17))]);
    assert_code(&bytes, Code::OnnxInvalid, "no ir_version");
    let bytes = cat(&[vfield(1, 9), lfield(7, &graph(&[], &[]))]);
    assert_code(&bytes, Code::OnnxInvalid, "no operator set");
    let bytes = cat(&[vfield(1, 0), lfield(7, &graph(&[], &[]))]);
    assert_code(&bytes, Code::OnnxInvalid, "ir_version 0");
    let mut bytes = simple_model();
    bytes.extend(lfield(7, &graph(&[], &[])));
    assert_code(&bytes, Code::OnnxInvalid, "2 graph fields");
}

#[test]
fn survives_a_recursion_bomb() {
    // Graph -> node -> attribute -> graph ..., far deeper than the limit.
    let mut g = graph(&[], &[]);
    for _ in 0..200 {
        let attr = cat(&[lfield(1, b"body"), lfield(6, &g)]);
        g = lfield(1, &node("Loop", &[attr]));
    }
    assert_code(&model(&g), Code::OnnxInvalid, "nest deeper than 64");

    // 300,000 levels of graph -> node -> attribute headers: only the headers are
    // written (outermost first), their lengths computed from the inside out.
    let tags: Vec<u64> = [1u64, 5, 6].repeat(100_000);
    let mut headers = Vec::new();
    let mut inner = 0u64;
    for tag in tags.iter().rev() {
        let mut header = Vec::new();
        varint((tag << 3) | 2, &mut header);
        varint(inner, &mut header);
        inner += header.len() as u64;
        headers.push(header);
    }
    headers.reverse();
    let bomb = headers.concat();
    let bytes = cat(&[vfield(1, 9), lfield(7, &bomb)]);
    assert_code(&bytes, Code::OnnxInvalid, "nest deeper");
}

#[test]
fn sniffs_onnx_heads() {
    assert!(looks_like_onnx(&simple_model()));
    assert!(!looks_like_onnx(b""));
    assert!(!looks_like_onnx(b"\x08"));
    assert!(!looks_like_onnx(b"\x08\x00\x12\x00"));
    assert!(!looks_like_onnx(b"\x08\x65\x12\x00"));
    assert!(!looks_like_onnx(b"\x08\x07\x0f"));
    assert!(!looks_like_onnx(b"\x08\x07"));
    assert!(!looks_like_onnx(b"GGUF\x03\x00\x00\x00"));
    assert!(!looks_like_onnx(b"\x80\x02\x8a"));
    assert!(looks_like_onnx(b"\x08\x07\x12\x00"));
    // The second field may run past the sniffed head.
    assert!(looks_like_onnx(b"\x08\x07\x3a\xff\xff\x7f"));
    assert!(!looks_like_onnx(b"\x08\x07\x00"));
}

#[test]
fn escapes_hostile_names_and_caps_findings() {
    let t = cat(&[
        lfield(8, b"\x1b]0;pwn\x07"),
        lfield(13, &entry("location", "/x")),
    ]);
    let report = check(&model(&graph(&[], &[t])));
    assert!(
        report.findings[0].message.contains("`\\u{1b}]0;pwn\\u{7}`"),
        "{:#?}",
        report.findings
    );

    let many: Vec<_> = (0..200)
        .map(|i| external_tensor(&format!("t{i}"), "/abs"))
        .collect();
    let report = check(&model(&graph(&[], &many)));
    assert_eq!(report.findings.len(), CappedFindings::CAP + 1);
    assert!(report
        .findings
        .last()
        .unwrap()
        .message
        .contains("136 further"));
}

#[test]
fn never_panics_on_byte_flips() {
    let g = graph(
        &[node(
            "If",
            &[cat(&[
                lfield(1, b"then_branch"),
                lfield(6, &graph(&[], &[external_tensor("w", "w.bin")])),
            ])],
        )],
        &[tensor("w")],
    );
    let bytes = model(&g);
    for i in 0..bytes.len() {
        for flip in [0x01, 0x07, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            check(&b);
            looks_like_onnx(&b);
        }
    }
}

fn string_attr(name: &str, value: &str) -> Vec<u8> {
    cat(&[
        lfield(1, name.as_bytes()),
        vfield(20, 3),
        lfield(4, value.as_bytes()),
    ])
}

fn domain_node(op: &str, domain: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = node(op, attributes);
    out.extend(lfield(7, domain.as_bytes()));
    out
}

fn critical_custom(report: &OnnxReport) -> Vec<&str> {
    report
        .findings
        .iter()
        .filter(|f| f.code == Code::OnnxCustomCode && f.severity == Severity::Critical)
        .map(|f| f.message.as_str())
        .collect()
}

#[test]
fn flags_nodes_that_run_python() {
    // ORT's language-interop PyOp, in its own custom domain as its docs build it.
    let pyop = domain_node(
        "PyOp",
        "pyopmulti_1",
        &[
            string_attr("module", "mymodule"),
            string_attr("class_name", "Multi_1"),
        ],
    );
    let report = check(&model(&graph(&[pyop], &[])));
    let found = critical_custom(&report);
    assert!(found.iter().any(|m| m.contains("op `PyOp`")), "{found:?}");
    assert!(found.iter().any(|m| m.contains("`module`")), "{found:?}");
    assert!(report.summary.is_some());

    // ORT training's PythonOp, inside a Loop body inside a model-local function.
    let python_op = domain_node(
        "PythonOp",
        "com.microsoft",
        &[string_attr("func_name", "evil.Function")],
    );
    let body = cat(&[
        lfield(1, b"body"),
        vfield(20, 5),
        lfield(6, &graph(&[python_op], &[])),
    ]);
    let function = cat(&[
        lfield(1, b"f"),
        lfield(10, b"local"),
        lfield(7, &node("Loop", &[body])),
    ]);
    let mut bytes = model(&graph(&[domain_node("f", "local", &[])], &[]));
    bytes.extend(lfield(25, &function));
    let report = check(&bytes);
    let found = critical_custom(&report);
    assert!(
        found.iter().any(|m| m.contains("op `PythonOp`")),
        "{found:?}"
    );
    // The call of the local function `local.f` is not a custom op.
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.message.contains("custom domain")),
        "{:#?}",
        report.findings
    );

    // A string attribute holding Python, on an otherwise ordinary op, and in `strings`.
    let script = string_attr("pattern", "x = __import__('os').system('id')");
    let report = check(&model(&graph(&[node("RegexFullMatch", &[script])], &[])));
    assert!(
        critical_custom(&report)
            .iter()
            .any(|m| m.contains("holds Python source (`__import__`)")),
        "{:#?}",
        report.findings
    );
    let strings = cat(&[
        lfield(1, b"stopwords"),
        lfield(9, b"a"),
        lfield(9, b"import os\n"),
    ]);
    let report = check(&model(&graph(&[node("StringNormalizer", &[strings])], &[])));
    assert_eq!(critical_custom(&report).len(), 1, "{:#?}", report.findings);

    // onnxruntime-extensions: `Py*` ops are Python, others warn.
    let report = check(&model(&graph(
        &[
            domain_node("PyReverseMatrix", "ai.onnx.contrib", &[]),
            domain_node("GPT2Tokenizer", "ai.onnx.contrib", &[]),
        ],
        &[],
    )));
    assert_eq!(critical_custom(&report).len(), 1, "{:#?}", report.findings);
    assert!(report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Warning && f.message.contains("`GPT2Tokenizer`")));
}

#[test]
fn warns_once_per_custom_op_and_accepts_known_domains() {
    let nodes: Vec<_> = (0..10)
        .map(|_| domain_node("MyOp", "com.example", &[]))
        .chain([
            domain_node("FusedMatMul", "com.microsoft", &[]),
            domain_node("LabelEncoder", "ai.onnx.ml", &[]),
            domain_node("Relu", "ai.onnx", &[]),
        ])
        .collect();
    let report = check(&model(&graph(&nodes, &[])));
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].severity, Severity::Warning);
    assert!(report.findings[0].message.contains("`com.example`"));
    // Ordinary text in string attributes is not Python.
    let labels = string_attr("classes_strings", "evaluation of import-export data");
    let report = check(&model(&graph(&[node("LabelEncoder", &[labels])], &[])));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn every_op_type_of_a_node_is_checked() {
    // Protobuf keeps the last `op_type`; a reader that kept the first must not hide PyOp.
    let mut n = node("PyOp", &[]);
    n.extend(lfield(4, b"Relu"));
    let report = check(&model(&graph(&[n], &[])));
    assert_eq!(critical_custom(&report).len(), 1, "{:#?}", report.findings);
}

/// A source that records how many bytes were read, and the largest single read.
struct Counting<'a> {
    bytes: &'a [u8],
    total: std::cell::Cell<u64>,
    largest: std::cell::Cell<usize>,
}

impl ReadAt for Counting<'_> {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.total.set(self.total.get() + buf.len() as u64);
        self.largest.set(self.largest.get().max(buf.len()));
        self.bytes.read_exact_at(buf, offset)
    }
}

#[test]
fn skips_tensor_payloads_and_reads_in_bounded_windows() {
    // Four 8 MiB initializers, then a node with Python after them: the node is found, and
    // the payloads are never read.
    let big = |name: &str| {
        cat(&[
            vfield(1, 2 << 20),
            vfield(2, 1),
            lfield(8, name.as_bytes()),
            lfield(9, &vec![0x5a; 8 << 20]),
        ])
    };
    let initializers: Vec<_> = ["a", "b", "c", "d"].iter().map(|n| big(n)).collect();
    let mut g = graph(&[], &initializers);
    g.extend(lfield(1, &node("PyOp", &[])));
    let bytes = model(&g);
    let source = Counting {
        bytes: &bytes,
        total: Default::default(),
        largest: Default::default(),
    };
    let report = check_source(&source).unwrap();
    assert_eq!(critical_custom(&report).len(), 1, "{:#?}", report.findings);
    assert_eq!(report.summary.unwrap().initializers, 4);
    assert!(source.largest.get() <= protobuf::WINDOW);
    assert!(
        source.total.get() < 1 << 20,
        "read {} of {} bytes",
        source.total.get(),
        bytes.len()
    );
    // The same answer from memory and from a window of a larger source.
    let mut padded = vec![0xee; 100];
    padded.extend(&bytes);
    let vec_source = padded.clone();
    let slice = crate::scan::source::Slice::new(&vec_source, 100, bytes.len() as u64).unwrap();
    assert_eq!(check_source(&slice).unwrap(), check(&bytes));
}

#[test]
fn reads_the_real_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx/real");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            let bytes = std::fs::read(&path).unwrap();
            let report = check(&bytes);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("custom-") {
                assert!(!critical_custom(&report).is_empty(), "{name}: {report:#?}");
            } else {
                assert!(report.findings.is_empty(), "{name}: {:#?}", report.findings);
                assert!(report.summary.is_some(), "{name}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 5, "only {seen} real fixtures");
}
