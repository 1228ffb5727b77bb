//! Signing and trust: Ed25519 keys, DSSE envelopes over a manifest's exact bytes, and the
//! operator's trust policy (trusted keys, a threshold of distinct signers, per-key expiry,
//! rotation by a threshold of the old keys with a rising version).
//!
//! What is signed is the file on disk, byte for byte: `MANIFEST.sig` is a DSSE envelope whose
//! signatures cover `PAE(payloadType, manifest bytes)`, and verification compares the
//! envelope's payload with the file before any signature is looked at, so no JSON
//! canonicalisation stands between what was signed and what is used. Trust comes only from the
//! operator's policy file; a key carried by an artifact or named by an envelope is a hint,
//! never trusted. "Checked and failed" outcomes (bad signature, threshold not met, rollback)
//! are findings; unreadable or malformed operator inputs (key files, the policy) are errors.
//!
//! This module must not parse manifests or model files (that is `manifest` and `scan`) nor
//! decide a verdict (that is `policy`); it answers "did enough trusted keys sign these bytes".
//!
//! - [`keys`]: key generation, PKCS#8 / SPKI PEM files, public-key import forms, key ids.
//! - [`dsse`]: the envelope, PAE, strict parsing, signing a file into `<file>.sig`.
//! - [`policy`]: the trust policy, signature checks and rotation.
//! - [`rollback`]: the highest manifest version verified so far, per manifest name.

pub mod dsse;
pub mod keys;
pub mod policy;
pub mod rollback;

pub use dsse::{
    pae, sign_file, signature_path, Envelope, EnvelopeError, EnvelopeSignature,
    MANIFEST_PAYLOAD_TYPE, TRUST_PAYLOAD_TYPE,
};
pub use keys::{
    read_public_key, read_secret_key, write_key_pair, KeyError, KeyId, PublicKey, SecretKey,
};
pub use policy::{check_rotation, SignatureCheck, TrustError, TrustPolicy, TrustedKey};
