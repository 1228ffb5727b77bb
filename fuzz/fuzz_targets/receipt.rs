#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::receipt::Receipt;

fuzz_target!(|data: &[u8]| {
    // Whatever parses must print back to JSON that parses to the same receipt and prints
    // identically (the signed bytes are what is written).
    if let Ok(receipt) = Receipt::parse(data) {
        let json = receipt.to_json().expect("a parsed receipt encodes");
        let reparsed = Receipt::parse(&json).expect("an encoded receipt parses");
        assert_eq!(reparsed, receipt);
        assert_eq!(reparsed.to_json().ok(), Some(json));
    }
});
