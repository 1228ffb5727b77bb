//! Unit tests of the parent module: hand-encoded protobufs and the real fixtures that
//! `fixtures/tensorflow/make.py` saved with TensorFlow.
use super::*;
use crate::scan::onnx::protobuf::Bytes;

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

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn attr_s(key: &str, value: &str) -> Vec<u8> {
    lfield(
        5,
        &cat(&[
            lfield(1, key.as_bytes()),
            lfield(2, &lfield(2, value.as_bytes())),
        ]),
    )
}

fn node(name: &str, op: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut out = cat(&[lfield(1, name.as_bytes()), lfield(2, op.as_bytes())]);
    for e in extra {
        out.extend(e);
    }
    out
}

fn graph(nodes: &[Vec<u8>], functions: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nodes {
        out.extend(lfield(1, n));
    }
    if !functions.is_empty() {
        let library: Vec<u8> = functions.iter().flat_map(|f| lfield(1, f)).collect();
        out.extend(lfield(2, &library));
    }
    out.extend(lfield(4, &vfield(1, 1882)));
    out
}

fn function(name: &str, nodes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = lfield(1, &lfield(1, name.as_bytes()));
    for n in nodes {
        out.extend(lfield(3, n));
    }
    out
}

fn saved_model(graph: &[u8]) -> Vec<u8> {
    let meta_info = cat(&[lfield(4, b"serve"), lfield(5, b"2.21.0")]);
    cat(&[
        vfield(1, 1),
        lfield(2, &cat(&[lfield(1, &meta_info), lfield(2, graph)])),
    ])
}

fn check(bytes: &[u8]) -> TfReport {
    check_source(&Bytes(bytes)).unwrap()
}

fn sniffed(bytes: &[u8]) -> Option<TfKind> {
    sniff(&Bytes(bytes))
}

fn unsafe_ops(report: &TfReport) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.code == Code::TensorflowUnsafeOp)
        .map(|f| format!("{:?}: {}", f.severity, f.message))
        .collect()
}

#[test]
fn accepts_a_plain_graph_and_saved_model() {
    let g = graph(
        &[
            node("x", "Placeholder", &[attr_s("dtype", "x")]),
            node("save/SaveV2", "SaveV2", &[]),
            node("save/RestoreV2", "RestoreV2", &[]),
            node("p", "PrintV2", &[attr_s("output_stream", "stderr")]),
        ],
        &[function("f", &[node("m", "MatMul", &[])])],
    );
    let report = check(&saved_model(&g));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.kind, Some(TfKind::SavedModel));
    assert_eq!(report.nodes, 5);
    let report = check(&g);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.kind, Some(TfKind::GraphDef));
}

#[test]
fn flags_unsafe_ops_in_graphs_and_functions() {
    let g = graph(
        &[node("r", "ReadFile", &[])],
        &[function(
            "__inference_call_12",
            &[
                node("py", "EagerPyFunc", &[attr_s("token", "pyfunc_0")]),
                node("p", "PrintV2", &[attr_s("output_stream", "file:///tmp/x")]),
                node("v", "InitializeTableFromTextFileV2", &[]),
            ],
        )],
    );
    for bytes in [saved_model(&g), g.clone()] {
        let found = unsafe_ops(&check(&bytes));
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].contains("`r` in the graph uses op `ReadFile`"),
            "{found:?}"
        );
        assert!(
            found[1].contains("function `__inference_call_12`"),
            "{found:?}"
        );
        assert!(found[1].contains("runs Python"), "{found:?}");
        assert!(found[2].starts_with("Critical") && found[2].contains("PrintV2"));
        assert!(found[3].starts_with("Warning"), "{found:?}");
    }
}

#[test]
fn every_op_field_and_both_readings_count() {
    // A node whose first `op` is harmless and whose last one reads files.
    let n = cat(&[node("n", "Identity", &[]), lfield(2, b"MatchingFiles")]);
    assert_eq!(unsafe_ops(&check(&graph(&[n], &[]))).len(), 1);
    // A SavedModel whose bytes, read as a GraphDef, also parse: the GraphDef's nodes count.
    // Field 1 of a GraphDef is a node; as a SavedModel it is a skipped wrong-typed field.
    let polyglot = cat(&[
        lfield(1, &node("w", "WriteFile", &[])),
        lfield(2, &lfield(2, &graph(&[], &[]))),
    ]);
    let found = unsafe_ops(&check(&polyglot));
    assert!(found.iter().any(|f| f.contains("WriteFile")), "{found:?}");
}

#[test]
fn malformed_files_are_findings() {
    let good = saved_model(&graph(&[node("x", "Placeholder", &[])], &[]));
    for cut in [3, good.len() / 2, good.len() - 1] {
        let report = check(&good[..cut]);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.code == Code::TensorflowMalformed),
            "cut at {cut}: {:#?}",
            report.findings
        );
    }
    let report = check(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].code, Code::TensorflowMalformed);
    // Well-formed protobuf of another type (an ONNX TensorProto): no ops, no finding.
    let tensor = cat(&[
        vfield(1, 2),
        vfield(2, 1),
        lfield(8, b"t"),
        lfield(9, &[0; 8]),
    ]);
    let report = check(&tensor);
    assert_eq!(report.kind, None);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn sniffs_saved_models_and_graph_defs() {
    let g = graph(&[node("x", "Placeholder", &[])], &[]);
    assert_eq!(sniffed(&saved_model(&g)), Some(TfKind::SavedModel));
    assert_eq!(sniffed(&g), Some(TfKind::GraphDef));
    let library_first = graph(&[], &[function("f", &[])]);
    assert_eq!(sniffed(&library_first), Some(TfKind::GraphDef));
    assert_eq!(sniffed(b""), None);
    assert_eq!(sniffed(b"hello world"), None);
    // ONNX: ir_version 8 then producer "pytorch".
    assert_eq!(sniffed(&cat(&[vfield(1, 8), lfield(2, b"pytorch")])), None);
    // A truncated SavedModel whose meta graph claims more bytes than the file has.
    let sm = saved_model(&g);
    assert_eq!(sniffed(&sm[..sm.len() - 1]), None);
    assert_eq!(sniffed(&lfield(1, &node("bad name\x07", "Op", &[]))), None);
    assert_eq!(sniffed(&lfield(1, &node("n", "9op", &[]))), None);
}

#[test]
fn never_panics_on_byte_flips() {
    let g = graph(
        &[node("p", "PrintV2", &[attr_s("output_stream", "stdout")])],
        &[function("f", &[node("r", "ReadFile", &[])])],
    );
    let bytes = saved_model(&g);
    for i in 0..bytes.len() {
        for flip in [0x01, 0x07, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            check(&b);
        }
    }
}

#[test]
fn reads_the_real_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tensorflow");
    let expect: &[(&str, Option<&str>, TfKind)] = &[
        ("plain-module/saved_model.pb", None, TfKind::SavedModel),
        ("keras-dense/saved_model.pb", None, TfKind::SavedModel),
        (
            "py-function/saved_model.pb",
            Some("EagerPyFunc"),
            TfKind::SavedModel,
        ),
        (
            "read-file/saved_model.pb",
            Some("ReadFile"),
            TfKind::SavedModel,
        ),
        (
            "print-to-file/saved_model.pb",
            Some("PrintV2"),
            TfKind::SavedModel,
        ),
        ("frozen-plain.pb", None, TfKind::GraphDef),
        ("frozen-pyfunc.pb", Some("PyFunc"), TfKind::GraphDef),
        ("frozen-write-file.pb", Some("WriteFile"), TfKind::GraphDef),
    ];
    for (path, op, kind) in expect {
        let bytes = std::fs::read(dir.join(path)).unwrap();
        let report = check(&bytes);
        assert_eq!(report.kind, Some(*kind), "{path}");
        assert!(report.nodes > 0, "{path}");
        match op {
            None => assert!(report.findings.is_empty(), "{path}: {:#?}", report.findings),
            Some(op) => {
                let found = unsafe_ops(&report);
                assert!(
                    found
                        .iter()
                        .any(|f| f.starts_with("Critical") && f.contains(&format!("`{op}`"))),
                    "{path}: {found:#?}"
                );
            }
        }
    }
}

/// Scans every `*.pb` under `$MODELVET_TF_CORPUS` and prints counts; a `saved_model.pb` whose
/// path holds `unsafe` must have a critical finding, every other file none. Run with
/// `MODELVET_TF_CORPUS=DIR cargo test --lib tensorflow::tests::corpus -- --ignored --nocapture`.
#[test]
#[ignore = "needs a corpus directory"]
fn corpus() {
    let root = std::env::var("MODELVET_TF_CORPUS").unwrap();
    let mut stack = vec![std::path::PathBuf::from(root)];
    let (mut files, mut kinds, mut bad) = (0, std::collections::BTreeMap::new(), Vec::new());
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "pb") {
                continue;
            }
            files += 1;
            let source =
                crate::scan::source::FileSource::new(std::fs::File::open(&path).unwrap()).unwrap();
            let report = check_source(&source).unwrap();
            *kinds.entry(format!("{:?}", report.kind)).or_insert(0) += 1;
            let critical = report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Critical);
            let wants_critical =
                path.to_string_lossy().contains("unsafe") && path.ends_with("saved_model.pb");
            if critical != wants_critical || (!wants_critical && !report.findings.is_empty()) {
                bad.push(format!("{}: {:?}", path.display(), report.findings));
            }
        }
    }
    println!("files={files} kinds={kinds:?} unexpected={}", bad.len());
    assert!(bad.is_empty(), "{bad:#?}");
}
