#![no_main]
use libfuzzer_sys::fuzz_target;
use modelvet::manifest::time::Timestamp;
use modelvet::trust::{Envelope, PublicKey, TrustPolicy, TrustedKey, MANIFEST_PAYLOAD_TYPE};

fuzz_target!(|data: &[u8]| {
    // The same bytes as a DSSE envelope and as a trust policy: both parsers must return,
    // and what they accept must survive a write/read round trip unchanged.
    if let Ok(envelope) = Envelope::parse(data) {
        let again = Envelope::parse(&envelope.to_json());
        assert_eq!(again.ok().as_ref(), Some(&envelope), "envelope round trip");
        // Checking the signatures against a fixed policy (the Ed25519 base point as the only
        // trusted key) must not panic whatever the envelope holds.
        if let Ok(key) =
            PublicKey::from_text("5866666666666666666666666666666666666666666666666666666666666666")
        {
            if let Ok(policy) = TrustPolicy::new(vec![TrustedKey::new(key, None, None)], 1, 1) {
                let check = policy.check_envelope(
                    &envelope,
                    &envelope.payload,
                    MANIFEST_PAYLOAD_TYPE,
                    Timestamp::from_unix(0),
                );
                assert!(!check.met(), "no one holds the base point's secret key");
            }
        }
    }
    if let Ok(policy) = TrustPolicy::parse(data) {
        let again = TrustPolicy::parse(&policy.to_json());
        assert_eq!(
            again.ok().as_ref(),
            Some(&policy),
            "trust policy round trip"
        );
    }
});
