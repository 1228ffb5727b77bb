#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::scan::onnx;

fuzz_target!(|data: &[u8]| {
    let _ = onnx::looks_like_onnx(data);
    // The streaming walk, from a source, must agree with the in-memory wrapper.
    let source = data.to_vec();
    let streamed = onnx::check_source(&source).ok();
    assert_eq!(streamed.as_ref(), Some(&onnx::check(data)));
});
