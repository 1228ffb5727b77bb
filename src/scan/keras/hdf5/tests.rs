use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras-h5")
}

fn digest(bytes: &[u8]) -> String {
    format!("{}:{:x}", bytes.len(), Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn finds_superblocks_where_libhdf5_looks() {
    let mut bytes = vec![0u8; 2048 + 8];
    bytes[1024..1032].copy_from_slice(SIGNATURE);
    assert_eq!(find_superblock(&bytes).unwrap(), Some(1024));
    bytes[1024] = 0;
    bytes[100..108].copy_from_slice(SIGNATURE);
    assert_eq!(find_superblock(&bytes).unwrap(), None);
}

/// Every root attribute h5py lists for a sample (fixtures/keras-h5/attributes.json, written by
/// make.py with h5py) is read with the same name, class and value by this reader.
#[test]
fn reads_every_root_attribute_as_h5py_does() {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("attributes.json")).unwrap())
            .unwrap();
    let files = reference.as_object().unwrap();
    assert!(files.len() >= 15, "reference lists {} files", files.len());
    for (file, expected) in files {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let ours = root_attributes(&bytes, &|_| true).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut ours: Vec<serde_json::Value> = ours
            .iter()
            .map(|a| {
                let mut entry = serde_json::json!({"name": hex(&a.name), "class": a.class});
                match a.value.as_ref().unwrap() {
                    Value::Fixed(items) | Value::Variable(items) => {
                        entry["strings"] = items.iter().map(|i| digest(i)).collect();
                    }
                    Value::Raw(raw) => entry["raw"] = digest(raw).into(),
                }
                entry
            })
            .collect();
        let mut expected = expected.as_array().unwrap().clone();
        let key = |v: &serde_json::Value| v["name"].as_str().unwrap().to_owned();
        ours.sort_by_key(key);
        expected.sort_by_key(key);
        // h5py reports variable-length strings as class 3 (string); the file says 9.
        for entry in &mut ours {
            if entry["class"] == 9 && entry.get("strings").is_some() {
                entry["class"] = 3.into();
            }
        }
        assert_eq!(ours, expected, "{file}");
    }
}

#[test]
fn reads_dense_and_huge_attributes() {
    let bytes = std::fs::read(fixtures().join("lambda-dense-huge-vlen.h5")).unwrap();
    let attrs = root_attributes(&bytes, &|name| name == b"model_config").unwrap();
    let config = attrs.iter().find(|a| a.name == b"model_config").unwrap();
    assert_eq!(config.storage, Storage::Dense);
    let Some(Value::Variable(items)) = &config.value else {
        panic!("{config:?}")
    };
    assert!(items[0].len() > 70_000);
    assert!(attrs.iter().filter(|a| a.value.is_some()).count() == 1);
}

#[test]
fn truncations_and_corruptions_never_panic() {
    for name in [
        "lambda-dense-attributes.h5",
        "benign-dense-vlen.h5",
        "real-lambda.h5",
    ] {
        let bytes = std::fs::read(fixtures().join(name)).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            let _ = root_attributes(&bytes[..cut].to_vec(), &|_| true);
        }
        // A deterministic walk of single-byte corruptions over the metadata.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut copy = bytes.clone();
            let at = (seed as usize) % copy.len().min(8192);
            copy[at] = (seed >> 32) as u8;
            let _ = root_attributes(&copy, &|_| true);
        }
    }
}

#[test]
fn refuses_loops_and_out_of_file_addresses() {
    // Superblock v2 whose root object header address points past the end.
    let mut bytes = SIGNATURE.to_vec();
    bytes.extend_from_slice(&[2, 8, 8, 0]);
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&100u64.to_le_bytes());
    bytes.extend_from_slice(&1_000_000u64.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    assert!(matches!(
        root_attributes(&bytes, &|_| true),
        Err(Error::Malformed { .. })
    ));
    // A version 1 header whose continuation points back at its own first chunk.
    let mut bytes = SIGNATURE.to_vec();
    bytes.extend_from_slice(&[2, 8, 8, 0]);
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&200u64.to_le_bytes());
    bytes.extend_from_slice(&48u64.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    // Header at 48: version 1, 1 message, chunk of 24 bytes at 64.
    bytes.extend_from_slice(&[1, 0, 1, 0, 1, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0x10, 0, 16, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&64u64.to_le_bytes());
    bytes.extend_from_slice(&24u64.to_le_bytes());
    bytes.resize(200, 0);
    assert!(matches!(
        root_attributes(&bytes, &|_| true),
        Err(Error::Malformed { .. })
    ));
}

/// Names are cut as libhdf5 cuts them: `name_size - 1` bytes, then at the first NUL. A name
/// stored without its terminator must not read as a different name than h5py sees.
#[test]
fn attribute_names_are_cut_as_libhdf5_cuts_them() {
    let mut bytes = std::fs::read(fixtures().join("lambda-compact-json.h5")).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"model_config\0")
        .unwrap();
    bytes[at + 12] = b'X';
    let attrs = root_attributes(&bytes, &|_| true).unwrap();
    assert!(attrs.iter().any(|a| a.name == b"model_config"));
}
