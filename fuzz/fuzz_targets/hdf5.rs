#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::scan::keras::{self, hdf5};

fuzz_target!(|data: &[u8]| {
    let source = data.to_vec();
    // The structure reader alone, asked for every value, then the Keras check on top of it.
    let _ = hdf5::root_attributes(&source, &|_| true);
    let _ = keras::check_hdf5(&source);
});
