//! Unit tests of manifest parsing: every rule, on JSON built in the test.

use serde_json::{json, Value};

use super::*;
use crate::digest::sha256_bytes;
use crate::testing::{fields_of, keys};

const SCHEMA_FILE: &str = include_str!("../../manifests/schema/manifest.v1.json");

fn hex(seed: &str) -> String {
    sha256_bytes(seed.as_bytes()).to_string()
}

fn file(path: &str) -> Value {
    json!({ "path": path, "size": 3, "sha256": hex(path) })
}

fn valid() -> Value {
    json!({
        "schema": SCHEMA,
        "name": "acme/tiny-llm-1.0",
        "version": 7,
        "issued_at": "2026-01-01T00:00:00Z",
        "expires": "2026-12-31T23:59:59Z",
        "files": [
            {
                "path": "config.json",
                "size": 120,
                "sha256": hex("config"),
                "format": "json",
                "urls": ["https://example.com/config.json"]
            },
            {
                "path": "model.safetensors",
                "size": 3 * 1024 * 1024 + 1,
                "sha256": hex("model"),
                "format": "safetensors",
                "chunks": {
                    "chunk_size": 1 << 20,
                    "sha256": [hex("c0"), hex("c1"), hex("c2"), hex("c3")]
                }
            },
            file("tokenizer/vocab.txt")
        ],
        "annotations": {
            "license": "apache-2.0",
            "source_repository": "https://example.com/acme/tiny",
            "source_revision": "abc123",
            "intended_use": "tests"
        }
    })
}

fn parse(value: &Value) -> Result<Manifest, ManifestError> {
    Manifest::parse(&serde_json::to_vec(value).unwrap())
}

fn with(edit: impl FnOnce(&mut Value)) -> ManifestError {
    let mut value = valid();
    edit(&mut value);
    parse(&value).unwrap_err()
}

fn with_files(paths: &[&str]) -> ManifestError {
    with(|v| v["files"] = paths.iter().map(|p| file(p)).collect())
}

#[test]
fn valid_manifest_round_trips() {
    let manifest = parse(&valid()).unwrap();
    assert_eq!(manifest.name, "acme/tiny-llm-1.0");
    assert_eq!(manifest.version, 7);
    assert_eq!(manifest.issued_at.to_string(), "2026-01-01T00:00:00Z");
    assert_eq!(manifest.files.len(), 3);
    let model = manifest.file("model.safetensors").unwrap();
    assert_eq!(model.format, Some(DeclaredFormat::Safetensors));
    assert_eq!(model.chunks.as_ref().unwrap().sha256.len(), 4);
    assert_eq!(model.sha256.to_string(), hex("model"));
    assert_eq!(
        manifest.file("config.json").unwrap().urls,
        ["https://example.com/config.json"]
    );
    assert!(manifest.file("tokenizer/vocab.txt").is_some());
    assert!(manifest.file("missing").is_none());
    assert_eq!(manifest.annotations.license.as_deref(), Some("apache-2.0"));

    let json = manifest.to_json();
    assert!(json.ends_with(b"}\n"));
    assert_eq!(Manifest::parse(&json).unwrap(), manifest);
    assert_eq!(Manifest::parse(&json).unwrap().to_json(), json);
    let text = String::from_utf8(json).unwrap();
    assert!(text.starts_with("{\n  \"schema\": \"modelvet.manifest/v1\",\n  \"name\""));
    // Absent options stay absent.
    assert!(!text.contains("null"));
    assert_eq!(text.matches("\"urls\"").count(), 1);
}

#[test]
fn plugins_must_name_wasm_files_in_order() {
    let with_plugins = |plugins: Value| {
        let mut value = valid();
        value["files"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "path": "x/pre.wasm", "size": 3, "sha256": hex("w"), "format": "wasm" }));
        value["plugins"] = plugins;
        parse(&value)
    };
    let manifest = with_plugins(json!([
        { "name": "ct-window", "path": "x/pre.wasm", "timeout_ms": 500, "memory_mb": 64 },
        { "name": "label-mask", "path": "x/pre.wasm" }
    ]))
    .unwrap();
    assert_eq!(manifest.plugin("ct-window").unwrap().timeout_ms, Some(500));
    assert_eq!(Manifest::parse(&manifest.to_json()).unwrap(), manifest);
    assert!(String::from_utf8(parse(&valid()).unwrap().to_json())
        .unwrap()
        .find("plugins")
        .is_none());

    for plugins in [
        json!([{ "name": "b", "path": "x/pre.wasm" }, { "name": "a", "path": "x/pre.wasm" }]),
        json!([{ "name": "a", "path": "x/pre.wasm" }, { "name": "a", "path": "x/pre.wasm" }]),
        json!([{ "name": "Upper", "path": "x/pre.wasm" }]),
        json!([{ "name": "-a", "path": "x/pre.wasm" }]),
        json!([{ "name": "a", "path": "missing.wasm" }]),
        json!([{ "name": "a", "path": "config.json" }]),
        json!([{ "name": "a", "path": "x/pre.wasm", "timeout_ms": 0 }]),
        json!([{ "name": "a", "path": "x/pre.wasm", "memory_mb": 4097 }]),
        json!([{ "name": "a", "path": "x/pre.wasm", "fuel": null }]),
        json!([{ "name": "a", "path": "x/pre.wasm", "limits": {} }]),
    ] {
        assert!(with_plugins(plugins.clone()).is_err(), "{plugins}");
    }
}

#[test]
fn to_json_sorts_files_and_minimal_manifest_parses() {
    let minimal = json!({
        "schema": SCHEMA, "name": "m", "version": 1,
        "issued_at": "2026-01-01T00:00:00.5Z", "expires": "2026-01-01T00:00:01Z",
        "files": [file("a")]
    });
    let mut manifest = parse(&minimal).unwrap();
    assert_eq!(manifest.annotations, Annotations::default());
    let mut extra = manifest.files[0].clone();
    extra.path = "0".parse().unwrap();
    manifest.files.push(extra);
    let reparsed = Manifest::parse(&manifest.to_json()).unwrap();
    assert_eq!(reparsed.files[0].path.as_str(), "0");
    assert_eq!(reparsed.files[1].path.as_str(), "a");
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    for edit in [
        (|v: &mut Value| v["extra"] = json!(1)) as fn(&mut Value),
        |v| v["files"][0]["mode"] = json!("0755"),
        |v| v["files"][1]["chunks"]["extra"] = json!(true),
        |v| v["annotations"]["author"] = json!("x"),
    ] {
        let error = with(edit);
        assert!(
            matches!(&error, ManifestError::Json { message, .. } if message.contains("unknown field")),
            "{error}"
        );
    }
}

#[test]
fn duplicate_keys_are_refused() {
    let text = serde_json::to_string(&valid()).unwrap();
    let twice = text.replacen("\"version\":7", "\"version\":7,\"version\":8", 1);
    assert_ne!(text, twice);
    let error = Manifest::parse(twice.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("duplicate field"), "{error}");
    let in_file = text.replacen("\"size\":120", "\"size\":120,\"size\":121", 1);
    assert_ne!(text, in_file);
    assert!(Manifest::parse(in_file.as_bytes()).is_err());
}

#[test]
fn missing_and_mistyped_fields_are_refused() {
    for edit in [
        (|v: &mut Value| drop(v.as_object_mut().unwrap().remove("schema"))) as fn(&mut Value),
        |v| drop(v.as_object_mut().unwrap().remove("files")),
        |v| drop(v["files"][0].as_object_mut().unwrap().remove("sha256")),
        |v| v["version"] = json!(-1),
        |v| v["version"] = json!(1.5),
        |v| v["version"] = json!("7"),
        |v| v["files"][0]["size"] = json!(-3),
        |v| v["files"][0]["format"] = json!(null),
        |v| v["files"][0]["format"] = json!("pickle"),
        |v| v["files"][0]["format"] = json!("JSON"),
        |v| v["files"][0]["urls"] = json!("https://x"),
        |v| v["annotations"]["license"] = json!(3),
        |v| v["annotations"]["license"] = json!(null),
    ] {
        assert!(matches!(with(edit), ManifestError::Json { .. }));
    }
    assert!(matches!(
        Manifest::parse(b"[]"),
        Err(ManifestError::Json { .. })
    ));
    assert!(matches!(
        Manifest::parse(b"{} trailing"),
        Err(ManifestError::Json { .. })
    ));
}

#[test]
fn header_rules() {
    assert!(matches!(
        with(|v| v["schema"] = json!("modelvet.manifest/v2")),
        ManifestError::Schema { found } if found == "modelvet.manifest/v2"
    ));
    assert!(matches!(
        with(|v| v["version"] = json!(0)),
        ManifestError::Version { version: 0 }
    ));
    for name in ["", ".hidden", "/abs", "has space", "ünï", "a:b", "x\u{1b}"] {
        assert!(
            matches!(
                with(|v| v["name"] = json!(name)),
                ManifestError::Name { .. }
            ),
            "{name:?}"
        );
    }
    let long = "n".repeat(129);
    assert!(matches!(
        with(|v| v["name"] = json!(long)),
        ManifestError::Name { .. }
    ));
    let longest = "n".repeat(128);
    let mut value = valid();
    value["name"] = json!(longest);
    assert!(parse(&value).is_ok());
    assert!(matches!(
        with(|v| v["issued_at"] = json!("2026-01-01 00:00:00Z")),
        ManifestError::Timestamp {
            field: "issued_at",
            ..
        }
    ));
    assert!(matches!(
        with(|v| v["expires"] = json!("2026-12-31T23:59:59+01:00")),
        ManifestError::Timestamp {
            field: "expires",
            ..
        }
    ));
    for expires in ["2025-12-31T00:00:00Z", "2026-01-01T00:00:00Z"] {
        assert!(matches!(
            with(|v| v["expires"] = json!(expires)),
            ManifestError::ExpiresBeforeIssued { .. }
        ));
    }
}

#[test]
fn unsafe_paths_are_refused_with_their_index() {
    let error = with(|v| v["files"][2]["path"] = json!("tokenizer/../../etc/passwd"));
    match &error {
        ManifestError::Path { index: 2, error } => {
            assert_eq!(error.rule, PathRule::DotDotComponent);
        }
        other => panic!("{other:?}"),
    }
    assert!(error
        .to_string()
        .starts_with("file 2: unsafe path `tokenizer/../../etc/passwd`"));
    for path in ["/abs", "a\\b", "C:x", "nul.txt", "a.", ""] {
        assert!(
            matches!(
                with(|v| v["files"][2]["path"] = json!(path)),
                ManifestError::Path { index: 2, .. }
            ),
            "{path:?}"
        );
    }
}

#[test]
fn order_duplicates_and_collisions() {
    assert!(matches!(
        with_files(&["b", "a"]),
        ManifestError::Unsorted { index: 1, ref path, ref previous } if path == "a" && previous == "b"
    ));
    // Byte order, not case-insensitive or natural order.
    assert!(matches!(
        with_files(&["a", "B"]),
        ManifestError::Unsorted { .. }
    ));
    assert!(matches!(
        with_files(&["a", "b", "b"]),
        ManifestError::Duplicate { index: 2, ref path } if path == "b"
    ));
    assert!(matches!(
        with_files(&["Model.bin", "model.bin"]),
        ManifestError::CaseCollision { index: 1, ref path, ref other }
            if path == "model.bin" && other == "Model.bin"
    ));
    assert!(matches!(
        with_files(&["Dir/a", "dir/a"]),
        ManifestError::CaseCollision { .. }
    ));
    assert!(matches!(
        with_files(&["ΑΣ", "ας"]),
        ManifestError::CaseCollision { .. }
    ));
    assert!(matches!(
        with_files(&["a", "a/b"]),
        ManifestError::DirectoryPrefix { index: 0, ref path, ref descendant }
            if path == "a" && descendant == "a/b"
    ));
    // `a.txt` sorts between `a` and `a/b`, so the prefix is not the neighbour.
    assert!(matches!(
        with_files(&["a", "a.txt", "a/b/c"]),
        ManifestError::DirectoryPrefix { .. }
    ));
    assert!(matches!(
        with_files(&["A", "a/b"]),
        ManifestError::DirectoryPrefix { .. }
    ));
    assert!(matches!(
        with_files(&["x/ΑΣ", "x/ας/b"]),
        ManifestError::DirectoryPrefix { .. }
    ));
    // Shared directories and common string prefixes are fine.
    let mut value = valid();
    value["files"] = ["a/b", "a/c", "ab", "ab.txt", "abc/d"]
        .iter()
        .map(|p| file(p))
        .collect();
    assert_eq!(parse(&value).unwrap().files.len(), 5);
}

#[test]
fn bad_sha256_is_refused() {
    for digest in [
        hex("x").to_uppercase(),
        "abc".into(),
        format!("{}0", hex("x")),
    ] {
        let error = with(|v| v["files"][0]["sha256"] = json!(digest));
        assert!(
            matches!(&error, ManifestError::Sha256 { index: 0, path, .. } if path == "config.json"),
            "{error}"
        );
    }
    assert!(matches!(
        with(|v| v["files"][1]["chunks"]["sha256"][0] = json!("zz")),
        ManifestError::Json { .. }
    ));
}

#[test]
fn chunk_rules() {
    assert!(matches!(
        with(|v| drop(
            v["files"][1]["chunks"]["sha256"]
                .as_array_mut()
                .unwrap()
                .pop()
        )),
        ManifestError::ChunkCount {
            index: 1,
            expected: 4,
            found: 3,
            ..
        }
    ));
    assert!(matches!(
        with(|v| v["files"][1]["chunks"]["sha256"]
            .as_array_mut()
            .unwrap()
            .push(json!(hex("c4")))),
        ManifestError::ChunkCount {
            expected: 4,
            found: 5,
            ..
        }
    ));
    for chunk_size in [0u64, 3 << 20, (1 << 20) - 1, 1 << 19, 1 << 31, u64::MAX] {
        assert!(
            matches!(
                with(|v| v["files"][1]["chunks"]["chunk_size"] = json!(chunk_size)),
                ManifestError::ChunkSize { index: 1, .. }
            ),
            "{chunk_size}"
        );
    }
    // Exactly ceil(size / chunk_size): an exact multiple and an empty file.
    let mut value = valid();
    value["files"][1]["size"] = json!(2u64 << 20);
    value["files"][1]["chunks"]["sha256"] = json!([hex("a"), hex("b")]);
    assert!(parse(&value).is_ok());
    value["files"][1]["size"] = json!(0);
    value["files"][1]["chunks"]["sha256"] = json!([]);
    assert!(parse(&value).is_ok());
    value["files"][1]["size"] = json!(u64::MAX);
    value["files"][1]["chunks"]["chunk_size"] = json!(1u64 << 30);
    assert!(matches!(
        parse(&value),
        Err(ManifestError::ChunkCount {
            expected: 17_179_869_184,
            ..
        })
    ));
}

#[test]
fn url_rules() {
    let many: Vec<String> = (0..1000).map(|i| format!("https://x/{i}")).collect();
    assert!(matches!(
        with(|v| v["files"][0]["urls"] = json!(many)),
        ManifestError::TooManyUrls {
            index: 0,
            count: 1000,
            limit: 16,
            ..
        }
    ));
    for url in ["", "https://x/a b", "https://x/\u{1b}", &"u".repeat(8193)] {
        assert!(matches!(
            with(|v| v["files"][0]["urls"] = json!([url])),
            ManifestError::Url { index: 0, .. }
        ));
    }
}

#[test]
fn size_bounds() {
    let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
    assert!(matches!(
        Manifest::parse(&huge),
        Err(ManifestError::TooLarge { size, .. }) if size == MAX_MANIFEST_BYTES + 1
    ));
    assert!(matches!(
        with(|v| v["files"] = json!([])),
        ManifestError::NoFiles
    ));
    assert!(matches!(
        with(|v| v["annotations"]["intended_use"] = json!("u".repeat(MAX_ANNOTATION_BYTES + 1))),
        ManifestError::AnnotationTooLong {
            key: "intended_use",
            ..
        }
    ));
    // More files than allowed: counted without being kept.
    let entry = serde_json::to_string(&file("a")).unwrap();
    let files = vec![entry.as_str(); MAX_FILES + 1].join(",");
    let text = serde_json::to_string(&valid()).unwrap().replacen(
        "\"files\":[",
        &format!("\"files\":[{files},"),
        1,
    );
    assert!(matches!(
        Manifest::parse(text.as_bytes()),
        Err(ManifestError::TooManyFiles { count, limit: MAX_FILES }) if count == MAX_FILES + 4
    ));
}

#[test]
fn error_messages_escape_untrusted_text() {
    let error = with(|v| v["evil\u{1b}[2J"] = json!(1));
    assert!(!error.to_string().contains('\u{1b}'), "{error}");
    let error = with(|v| v["schema"] = json!("\u{9b}x"));
    assert!(!error.to_string().contains('\u{9b}'), "{error}");
    let error = with(|v| v["files"][0]["format"] = json!("x".repeat(100_000)));
    assert!(error.to_string().len() < 1000);
}

#[test]
fn json_schema_matches_the_rust_types() {
    let schema: Value = serde_json::from_str(SCHEMA_FILE).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["properties"]["schema"]["const"], SCHEMA);
    assert_eq!(keys(&schema), fields_of::<RawManifest>());
    assert_eq!(keys(&schema["$defs"]["file"]), fields_of::<RawFile>());
    assert_eq!(keys(&schema["$defs"]["chunks"]), fields_of::<RawChunks>());
    assert_eq!(keys(&schema["$defs"]["plugin"]), fields_of::<PluginEntry>());
    assert_eq!(schema["properties"]["plugins"]["maxItems"], MAX_PLUGINS);
    assert_eq!(
        keys(&schema["$defs"]["annotations"]),
        fields_of::<Annotations>()
    );
    let formats: Vec<Value> = [
        DeclaredFormat::Safetensors,
        DeclaredFormat::Gguf,
        DeclaredFormat::Onnx,
        DeclaredFormat::Npy,
        DeclaredFormat::Json,
        DeclaredFormat::Text,
        DeclaredFormat::Wasm,
        DeclaredFormat::Opaque,
    ]
    .iter()
    .map(|format| {
        assert_eq!(serde_json::to_value(format).unwrap(), format.as_str());
        json!(format.as_str())
    })
    .collect();
    assert_eq!(
        schema["$defs"]["file"]["properties"]["format"]["enum"],
        json!(formats)
    );
    assert_eq!(schema["properties"]["files"]["maxItems"], MAX_FILES);
    assert_eq!(schema["properties"]["name"]["maxLength"], MAX_NAME_CHARS);
}
