#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::scan::onnx;

fuzz_target!(|data: &[u8]| {
    let _ = onnx::looks_like_onnx(data);
    let _ = onnx::check(data);
});
