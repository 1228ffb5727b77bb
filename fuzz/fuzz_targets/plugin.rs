#![no_main]
//! Hostile plugin bytes (binary or WAT) through the whole sandbox: text conversion, the ABI
//! section, import/export checks, instantiation, the host functions and the output checks.
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use modelvet::sandbox::{self, Limits, Plugin};
use modelvet::tensor::{DType, Tensor, TensorData};

fuzz_target!(|data: &[u8]| {
    let plugin = Plugin::unsafe_unpinned("fuzz", data.to_vec());
    let limits = Limits {
        timeout: Duration::from_millis(200),
        memory_bytes: 16 << 20,
        fuel: Some(1_000_000),
        ..Limits::default()
    };
    let bytes = [0u8; 24];
    let input = Tensor {
        name: "image",
        dtype: DType::F32,
        shape: &[2, 3],
        data: TensorData::Memory(&bytes),
    };
    if let Ok(sandbox::Outcome::Completed(completed)) = sandbox::invoke(&plugin, &limits, &[input], "{}") {
        for output in completed.outputs() {
            assert_eq!(
                modelvet::tensor::byte_len(output.dtype, output.shape),
                Some(output.data.len())
            );
        }
    }
});
