#![no_main]
//! Tensor input files (safetensors or .npy, told apart by content) as `modelvet run` reads them.
use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    if let Ok(tensors) = modelvet::tensor::TensorFile::open(file.path(), "input") {
        for tensor in tensors.tensors() {
            let mut bytes = vec![0u8; usize::try_from(tensor.data.len()).unwrap_or(0).min(1 << 20)];
            if bytes.len() as u64 == tensor.data.len() {
                let _ = tensor.data.fill(&mut bytes);
            }
        }
    }
});
