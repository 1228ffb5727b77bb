#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::scan::tensorflow;

fuzz_target!(|data: &[u8]| {
    let source = data.to_vec();
    let _ = tensorflow::sniff(&source);
    let _ = tensorflow::check_source(&source);
});
