use super::*;

fn codes(findings: &[Finding]) -> Vec<Code> {
    findings.iter().map(|f| f.code).collect()
}

#[test]
fn finds_lambda_layers_in_a_keras_config() {
    let config = br#"{"class_name":"Sequential","config":{"layers":[
        {"class_name":"Dense","config":{"name":"d"}},
        {"class_name":"Lambda","config":{"name":"evil","function":{"class_name":"__lambda__","config":{"code":"4wEA"}}}}]}}"#;
    let findings = check_config(config);
    assert_eq!(findings.len(), 2);
    assert!(findings[0].message.contains("evil"));
    assert_eq!(findings[0].location.as_deref(), Some("$.config.layers[1]"));
}

#[test]
fn refuses_objects_from_modules_outside_keras() {
    let config = br#"{"module":"keras.layers","class_name":"Dense","config":{"activation":
        {"module":"os","class_name":"system","config":"id"}}}"#;
    let findings = check_config(config);
    assert_eq!(findings.len(), 1);
    assert!(findings[0].message.contains("os.system"));
    for module in [
        "builtins",
        "__main__",
        "subprocess",
        "my_package.layers",
        "kerasx",
        "tensorflow",
    ] {
        let config = format!(r#"{{"class_name":"X","module":"{module}","config":{{}}}}"#);
        assert_eq!(
            codes(&check_config(config.as_bytes())),
            [Code::KerasUnsafeLayer],
            "{module}"
        );
    }
    for module in [
        "keras",
        "keras.layers",
        "keras.src.models.functional",
        "tf_keras.src.engine",
        "tensorflow.keras.layers",
        "keras_hub.src.models.gemma.gemma_backbone",
    ] {
        let config = format!(r#"{{"class_name":"X","module":"{module}","config":{{}}}}"#);
        assert!(check_config(config.as_bytes()).is_empty(), "{module}");
    }
}

#[test]
fn refuses_function_references_outside_modelling_functions() {
    let refused = [
        r#"{"module":"builtins","class_name":"function","config":"exec","registered_name":null}"#,
        r#"{"module":"keras.config","class_name":"function","config":"enable_unsafe_deserialization"}"#,
        r#"{"module":"keras.models","class_name":"function","config":"load_model","registered_name":"function"}"#,
        r#"{"module":"keras.utils","class_name":"function","config":"get_file"}"#,
        r#"{"module":"numpy","class_name":"function","config":"load"}"#,
        r#"{"class_name":"function","config":"Custom>evil"}"#,
    ];
    for text in refused {
        let config = format!(r#"{{"class_name":"Dense","config":{{"activation":{text}}}}}"#);
        assert_eq!(
            codes(&check_config(config.as_bytes())),
            [Code::KerasUnsafeLayer],
            "{text}"
        );
    }
    let allowed = [
        r#"{"module":"builtins","class_name":"function","config":"relu"}"#,
        r#"{"module":"keras.activations","class_name":"function","config":"gelu","registered_name":"gelu"}"#,
        r#"{"module":"keras.src.losses.losses","class_name":"function","config":"mean_squared_error"}"#,
        r#""relu""#,
    ];
    for text in allowed {
        let config = format!(r#"{{"class_name":"Dense","config":{{"activation":{text}}}}}"#);
        assert!(check_config(config.as_bytes()).is_empty(), "{text}");
    }
}

#[test]
fn refuses_custom_registrations_and_lambda_functions() {
    let config = br#"{"class_name":"Model","config":{"layers":[
        {"module":null,"class_name":"MyLayer","registered_name":"my_pkg>MyLayer","config":{}},
        {"module":"keras_hub.src.x","class_name":"Backbone","registered_name":"keras_hub>Backbone","config":{}},
        {"class_name":"Lambda2","config":{"name":"l","function_type":"lambda","function":"x"}}]}}"#;
    let findings = check_config(config);
    assert_eq!(
        codes(&findings),
        [Code::KerasUnsafeLayer, Code::KerasUnsafeLayer]
    );
    assert!(findings[0].message.contains("my_pkg>MyLayer"));
    assert!(findings[1].message.contains("function_type: lambda"));
}

#[test]
fn finds_marshalled_bytecode_in_any_string() {
    // base64 of marshal.dumps((lambda x: x).__code__) as Python 3.11 writes it (prefix).
    let code = "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAACXAHwAUwCpAU6pAKkB2gF4cwEAAAAg+h48c3RkaW4+";
    let config = format!(
        r#"{{"class_name":"Sequential","config":{{"layers":[{{"class_name":"Custom","config":{{"f":["{code}",null,null]}}}}]}}}}"#
    );
    let findings = check_config(config.as_bytes());
    assert_eq!(codes(&findings), [Code::KerasUnsafeLayer]);
    assert_eq!(
        findings[0].location.as_deref(),
        Some("$.config.layers[0].config.f[0]")
    );
    // Python's decoder skips characters outside the alphabet; so does the check.
    let noisy: String = code.chars().flat_map(|c| [c, '!']).collect();
    let config = format!(r#"{{"class_name":"X","config":{{"f":"{noisy}"}}}}"#);
    assert_eq!(
        codes(&check_config(config.as_bytes())),
        [Code::KerasUnsafeLayer]
    );
    // Names that merely look like base64 are not code.
    let config = br#"{"class_name":"X","config":{"name":"4wheel_drive_layer_number_one_two"}}"#;
    assert!(check_config(config).is_empty());
}

#[test]
fn accepts_plain_layers_and_refuses_broken_json() {
    assert!(check_config(br#"{"class_name":"Dense","config":{"name":"Lambda"}}"#).is_empty());
    assert_eq!(codes(&check_config(b"{")), [Code::KerasMalformed]);
    assert_eq!(codes(&check_config(b"[1]")), [Code::KerasMalformed]);
    assert_eq!(
        codes(&check_config(
            br#"{"class_name":"X","module":7,"config":{}}"#
        )),
        [Code::KerasMalformed]
    );
}

#[test]
fn escaped_class_names_are_read_as_keras_reads_them() {
    let config = br#"{"class_name":"Sequential","config":{"layers":[{"class_name":"Lamb\u0064a","config":{"name":"x"}}]}}"#;
    assert_eq!(codes(&check_config(config)), [Code::KerasUnsafeLayer]);
}

#[test]
fn tells_keras_configs_from_other_json() {
    let keras: Value =
        serde_json::from_str(r#"{"module":"keras","class_name":"Sequential","config":{}}"#)
            .unwrap();
    assert!(looks_like_config(&keras));
    let legacy: Value = serde_json::from_str(
        r#"{"class_name":"Model","config":{"layers":[]},"keras_version":"2.15.0"}"#,
    )
    .unwrap();
    assert!(looks_like_config(&legacy));
    let hf: Value = serde_json::from_str(
        r#"{"architectures":["BertModel"],"model_type":"bert","hidden_size":768}"#,
    )
    .unwrap();
    assert!(!looks_like_config(&hf));
    let diffusers: Value =
        serde_json::from_str(r#"{"_class_name":"UNet2DModel","_diffusers_version":"0.30.0"}"#)
            .unwrap();
    assert!(!looks_like_config(&diffusers));
}

#[test]
fn deep_and_wide_configs_stay_bounded() {
    let mut value = Value::Null;
    for _ in 0..1000 {
        value = Value::Array(vec![value]);
    }
    let findings = check_config_value(&serde_json::json!({"class_name": "X", "config": value}));
    assert!(codes(&findings).contains(&Code::KerasMalformed));
    let layers: Vec<Value> = (0..500)
        .map(|i| serde_json::json!({"class_name": "Lambda", "config": {"name": format!("l{i}")}}))
        .collect();
    let findings =
        check_config_value(&serde_json::json!({"class_name": "X", "config": {"layers": layers}}));
    assert!(findings.len() <= crate::finding::CappedFindings::CAP + 1);
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/keras-h5")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The verdict each sample of fixtures/keras-h5 (see make.py) must get from `check_hdf5`.
const H5_VERDICTS: &[(&str, &[Code])] = &[
    ("real-benign.h5", &[]),
    ("real-benign-sequential.h5", &[]),
    ("real-weights-only.weights.h5", &[]),
    ("real-lambda.h5", &[Code::KerasUnsafeLayer]),
    ("tfk-benign.h5", &[]),
    ("tfk-weights-only.h5", &[]),
    ("tfk-lambda.h5", &[Code::KerasUnsafeLayer]),
    ("benign-keras2-model.h5", &[]),
    ("benign-dense-vlen.h5", &[]),
    ("benign-plain-data.h5", &[]),
    ("benign-plain-data-latest.h5", &[]),
    ("lambda-compact-json.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-respaced-json.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-unicode-escape.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-vlen-string.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-libver-latest.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-dense-attributes.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-dense-huge-vlen.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-huge-compact-v1.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-among-1200-attributes.h5", &[Code::KerasUnsafeLayer]),
    ("lambda-userblock.h5", &[Code::KerasUnsafeLayer]),
    ("exec-in-training-config.h5", &[Code::KerasUnsafeLayer]),
    ("model-config-not-json.h5", &[Code::KerasMalformed]),
    ("model-config-array.h5", &[Code::KerasMalformed]),
    ("corrupt-root-header.h5", &[Code::KerasMalformed]),
];

#[test]
fn hdf5_samples_get_their_verdicts() {
    for (name, expected) in H5_VERDICTS {
        let findings = check_hdf5(&fixture(name)).unwrap();
        let mut got = codes(&findings);
        got.dedup();
        assert_eq!(&got, expected, "{name}: {findings:#?}");
    }
    assert!(looks_like_hdf5(&fixture("lambda-userblock.h5")).unwrap());
    let unicode = check_hdf5(&fixture("lambda-unicode-escape.h5")).unwrap();
    assert_eq!(
        unicode[0].location.as_deref(),
        Some("model_config:$.config.layers[1]")
    );
}

#[test]
fn unreadable_hdf5_is_malformed_only_with_keras_markers() {
    // A signature and zeros (an empty weights stub): no superblock to read, nothing of Keras.
    let mut stub = HDF5_MAGIC.to_vec();
    stub.extend_from_slice(&[0; 56]);
    assert!(check_hdf5(&stub).unwrap().is_empty());
    // The same with the name Keras's loader looks for: it cannot be checked, so it is refused.
    stub.extend_from_slice(b"model_config\0{\"class_name\": \"Lambda\"}");
    assert_eq!(codes(&check_hdf5(&stub).unwrap()), [Code::KerasMalformed]);
}

#[test]
fn keras_archive_configs_saved_by_keras_are_read_exactly() {
    use crate::scan::zip;
    for (name, expected) in [
        ("real-benign.keras", &[][..]),
        ("real-lambda.keras", &[Code::KerasUnsafeLayer][..]),
    ] {
        let archive = fixture(name);
        let listing = zip::list(&archive, &zip::ZipLimits::default()).unwrap();
        let member = listing
            .members
            .iter()
            .find(|m| m.name == "config.json")
            .unwrap();
        let bytes = zip::read_member(&archive, member, 1 << 20).unwrap().bytes;
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(looks_like_config(&value), "{name}");
        let mut got = codes(&check_config_value(&value));
        got.dedup();
        assert_eq!(got, expected, "{name}");
        let weights = listing
            .members
            .iter()
            .find(|m| m.name == "model.weights.h5")
            .unwrap();
        let weights = zip::read_member(&archive, weights, 1 << 20).unwrap().bytes;
        assert!(check_hdf5(&weights).unwrap().is_empty(), "{name} weights");
    }
}
