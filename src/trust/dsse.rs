//! DSSE envelopes (https://github.com/secure-systems-lab/dsse): the JSON file `MANIFEST.sig`
//! that carries the exact bytes of a manifest and the signatures over them.
//!
//! Signatures cover `PAE(payloadType, payload)`, the DSSE pre-authentication encoding, over the
//! file's exact bytes: nothing is canonicalised, so what is verified is what is on disk. The
//! envelope's `keyid` is an unauthenticated hint used only to pick the key to try; public keys
//! never come from an envelope. This module owns the envelope format, its strict parsing and
//! the signing of files; it must not decide which keys are trusted or how many must sign (that
//! is `policy`).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::keys::{with_suffix, SecretKey};

/// The payload type of a signed modelvet manifest.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.modelvet.manifest.v1+json";
/// The payload type of a signed trust policy (for key rotation).
pub const TRUST_PAYLOAD_TYPE: &str = "application/vnd.modelvet.trust.v1+json";
/// The payload type of a signed provenance receipt (`modelvet.receipt/v1`).
pub const RECEIPT_PAYLOAD_TYPE: &str = "application/vnd.modelvet.receipt.v1+json";

/// Largest payload an envelope may carry (decoded).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;
/// Most signatures an envelope may carry.
pub const MAX_SIGNATURES: usize = 256;
/// Longest `payloadType` and `keyid` accepted.
pub const MAX_NAME_CHARS: usize = 256;
/// Largest decoded signature: Ed25519 needs 64 bytes; this leaves room for other schemes
/// without letting one entry be large.
pub const MAX_SIGNATURE_BYTES: usize = 1024;
/// Largest envelope file read: a maximal payload in base64 plus room for the signatures.
pub const MAX_ENVELOPE_FILE_BYTES: u64 = (MAX_PAYLOAD_BYTES as u64 / 3 + 1) * 4 + 1024 * 1024;

/// The DSSE pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_length = payload_type.len().to_string();
    let body_length = payload.len().to_string();
    let mut out = Vec::with_capacity(
        payload_type
            .len()
            .saturating_add(payload.len())
            .saturating_add(32),
    );
    for part in [
        &b"DSSEv1 "[..],
        type_length.as_bytes(),
        b" ",
        payload_type.as_bytes(),
        b" ",
        body_length.as_bytes(),
        b" ",
        payload,
    ] {
        out.extend_from_slice(part);
    }
    out
}

/// A DSSE JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload: Vec<u8>,
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope. `keyid` is a hint (possibly empty), not an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// Why an envelope could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("not a DSSE envelope")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("envelope field `{field}` is not valid base64 (standard or URL-safe)")]
    Base64 { field: &'static str },
    #[error("envelope payload is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("envelope has {count} signatures, more than the limit of {limit}")]
    TooManySignatures { count: usize, limit: usize },
    #[error("envelope field `{field}` is longer than the limit of {limit}")]
    FieldTooLong { field: &'static str, limit: usize },
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` is larger than the limit of {limit} bytes")]
    FileTooLarge { path: PathBuf, limit: u64 },
    #[error("in signature file `{path}`")]
    File {
        path: PathBuf,
        #[source]
        source: Box<EnvelopeError>,
    },
    #[error(
        "`{sig_path}` signs other bytes than `{path}` (a signature for another version); \
         remove it to start a new signature file"
    )]
    PayloadDiffers { path: PathBuf, sig_path: PathBuf },
    #[error("`{sig_path}` has payload type `{found}`, expected `{expected}`")]
    PayloadTypeDiffers {
        sig_path: PathBuf,
        expected: String,
        found: String,
    },
}

impl Envelope {
    pub fn new(payload_type: &str, payload: Vec<u8>) -> Envelope {
        Envelope {
            payload,
            payload_type: payload_type.to_owned(),
            signatures: Vec::new(),
        }
    }

    /// Parses the JSON envelope strictly: unknown or duplicate fields, bad base64 and
    /// oversized values are errors. `keyid` may be omitted, as DSSE allows.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let raw: RawEnvelope =
            serde_json::from_slice(bytes).map_err(|source| EnvelopeError::Json { source })?;
        if raw.signatures.len() > MAX_SIGNATURES {
            return Err(EnvelopeError::TooManySignatures {
                count: raw.signatures.len(),
                limit: MAX_SIGNATURES,
            });
        }
        check_length("payloadType", &raw.payload_type, MAX_NAME_CHARS)?;
        // Checked before decoding so that an oversized payload is never decoded.
        if raw.payload.len() > base64_length(MAX_PAYLOAD_BYTES) {
            return Err(EnvelopeError::PayloadTooLarge {
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let payload = decode_base64(&raw.payload, "payload")?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(EnvelopeError::PayloadTooLarge {
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let signatures = raw
            .signatures
            .into_iter()
            .map(|raw| {
                check_length("keyid", &raw.keyid, MAX_NAME_CHARS)?;
                if raw.sig.len() > base64_length(MAX_SIGNATURE_BYTES) {
                    return Err(EnvelopeError::FieldTooLong {
                        field: "sig",
                        limit: MAX_SIGNATURE_BYTES,
                    });
                }
                Ok(EnvelopeSignature {
                    keyid: raw.keyid,
                    sig: decode_base64(&raw.sig, "sig")?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Envelope {
            payload,
            payload_type: raw.payload_type,
            signatures,
        })
    }

    /// Reads and parses an envelope file, refusing files larger than any valid envelope.
    pub fn read(path: &Path) -> Result<Envelope, EnvelopeError> {
        let bytes = read_bounded(path, MAX_ENVELOPE_FILE_BYTES)?;
        Envelope::parse(&bytes).map_err(|source| EnvelopeError::File {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Pretty JSON in the order `payload`, `payloadType`, `signatures` (`keyid`, `sig`), with
    /// standard padded base64 and a final newline, so equal envelopes are equal files.
    pub fn to_json(&self) -> Vec<u8> {
        let out = OutEnvelope {
            payload: STANDARD.encode(&self.payload),
            payload_type: &self.payload_type,
            signatures: self
                .signatures
                .iter()
                .map(|signature| OutSignature {
                    keyid: &signature.keyid,
                    sig: STANDARD.encode(&signature.sig),
                })
                .collect(),
        };
        // Serialising strings and vectors into memory cannot fail; an empty result would
        // fail to parse rather than pass anything.
        let mut json = serde_json::to_vec_pretty(&out).unwrap_or_default();
        json.push(b'\n');
        json
    }

    /// Signs `PAE(payload_type, payload)` and stores the signature under the key's id,
    /// replacing an earlier signature by the same key (one signature per key id).
    pub fn sign(&mut self, key: &SecretKey) {
        let keyid = key.public_key().key_id().to_string();
        let sig = key.sign(&pae(&self.payload_type, &self.payload)).to_vec();
        self.signatures.retain(|signature| signature.keyid != keyid);
        self.signatures.push(EnvelopeSignature { keyid, sig });
    }
}

/// `<path>.sig`, where the signature envelope of a file lives.
pub fn signature_path(path: &Path) -> PathBuf {
    with_suffix(path, ".sig")
}

/// Signs the exact bytes of the file at `path` into `<path>.sig`, adding to the signatures
/// already there (or replacing this key's earlier one). An existing envelope over other bytes
/// or another payload type is refused: it belongs to another version of the file. The new
/// envelope is written to a temporary file and renamed into place, so readers see the old or
/// the new envelope, never a partial one. Returns the `.sig` path.
pub fn sign_file(
    path: &Path,
    key: &SecretKey,
    payload_type: &str,
) -> Result<PathBuf, EnvelopeError> {
    let payload = read_bounded(path, MAX_PAYLOAD_BYTES as u64)?;
    let sig_path = signature_path(path);
    let mut envelope = match fs::symlink_metadata(&sig_path) {
        Ok(_) => Envelope::read(&sig_path)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Envelope::new(payload_type, payload.clone())
        }
        Err(source) => {
            return Err(EnvelopeError::Read {
                path: sig_path,
                source,
            })
        }
    };
    if envelope.payload != payload {
        return Err(EnvelopeError::PayloadDiffers {
            path: path.to_owned(),
            sig_path,
        });
    }
    if envelope.payload_type != payload_type {
        return Err(EnvelopeError::PayloadTypeDiffers {
            sig_path,
            expected: payload_type.to_owned(),
            found: crate::finding::quote(&envelope.payload_type),
        });
    }
    let keyid = key.public_key().key_id().to_string();
    let replaces = envelope.signatures.iter().any(|s| s.keyid == keyid);
    if !replaces && envelope.signatures.len() >= MAX_SIGNATURES {
        return Err(EnvelopeError::File {
            path: sig_path,
            source: Box::new(EnvelopeError::TooManySignatures {
                count: envelope.signatures.len().saturating_add(1),
                limit: MAX_SIGNATURES,
            }),
        });
    }
    envelope.sign(key);
    write_replacing(&sig_path, &envelope.to_json())?;
    Ok(sig_path)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

#[derive(Serialize)]
struct OutEnvelope<'a> {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: &'a str,
    signatures: Vec<OutSignature<'a>>,
}

#[derive(Serialize)]
struct OutSignature<'a> {
    keyid: &'a str,
    sig: String,
}

fn check_length(field: &'static str, text: &str, limit: usize) -> Result<(), EnvelopeError> {
    if text.chars().count() > limit {
        return Err(EnvelopeError::FieldTooLong { field, limit });
    }
    Ok(())
}

/// Characters of padded base64 for `bytes` bytes.
fn base64_length(bytes: usize) -> usize {
    (bytes / 3).saturating_add(1).saturating_mul(4)
}

/// DSSE lets signers use standard or URL-safe base64, and verifiers must accept both. Padding
/// is optional in either; trailing garbage bits and whitespace are refused.
fn decode_base64(text: &str, field: &'static str) -> Result<Vec<u8>, EnvelopeError> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&alphabet::URL_SAFE, config);
    standard
        .decode(text)
        .or_else(|_| url_safe.decode(text))
        .map_err(|_| EnvelopeError::Base64 { field })
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, EnvelopeError> {
    let read_error = |source| EnvelopeError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if u64::try_from(bytes.len()).map_or(true, |length| length > limit) {
        return Err(EnvelopeError::FileTooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), EnvelopeError> {
    crate::atomic::write(path, bytes, crate::atomic::WriteOptions::PUBLIC).map_err(|source| {
        EnvelopeError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn parses_the_dsse_example_envelope() {
        let json = br#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let envelope = Envelope::parse(json).unwrap();
        assert_eq!(envelope.payload, b"hello world");
        assert_eq!(envelope.payload_type, "http://example.com/HelloWorld");
        assert_eq!(envelope.signatures.len(), 1);
        assert_eq!(envelope.signatures[0].keyid, "");
        assert_eq!(envelope.signatures[0].sig.len(), 64);
    }

    #[test]
    fn round_trips_and_serialises_deterministically() {
        let key = SecretKey::snakeoil(1);
        let mut envelope = Envelope::new(MANIFEST_PAYLOAD_TYPE, b"{\"a\":1}\n".to_vec());
        envelope.sign(&key);
        let json = envelope.to_json();
        assert!(json.ends_with(b"}\n"));
        let text = String::from_utf8(json.clone()).unwrap();
        let payload_at = text.find("\"payload\"").unwrap();
        let type_at = text.find("\"payloadType\"").unwrap();
        let sigs_at = text.find("\"signatures\"").unwrap();
        assert!(payload_at < type_at && type_at < sigs_at, "{text}");
        let back = Envelope::parse(&json).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.to_json(), json);
    }

    #[test]
    fn signing_again_with_the_same_key_replaces_its_signature() {
        let first = SecretKey::snakeoil(1);
        let second = SecretKey::snakeoil(2);
        let mut envelope = Envelope::new(MANIFEST_PAYLOAD_TYPE, b"m".to_vec());
        envelope.sign(&first);
        envelope.sign(&second);
        envelope.sign(&first);
        assert_eq!(envelope.signatures.len(), 2);
        let message = pae(MANIFEST_PAYLOAD_TYPE, b"m");
        for signature in &envelope.signatures {
            let key = [&first, &second]
                .into_iter()
                .find(|key| key.public_key().key_id().to_string() == signature.keyid)
                .unwrap();
            assert!(key.public_key().verify(&message, &signature.sig));
        }
    }

    #[test]
    fn accepts_url_safe_and_unpadded_base64() {
        // 0xfb 0xff encodes as `+/8=` standard, `-_8` URL-safe unpadded.
        let json =
            br#"{"payload":"-_8","payloadType":"t","signatures":[{"keyid":"k","sig":"-_8="}]}"#;
        let envelope = Envelope::parse(json).unwrap();
        assert_eq!(envelope.payload, [0xfb, 0xff]);
        assert_eq!(envelope.signatures[0].sig, [0xfb, 0xff]);
    }

    #[test]
    fn parsing_is_strict() {
        let cases: &[(&str, &[u8])] = &[
            (
                "unknown top-level field",
                br#"{"payload":"","payloadType":"t","signatures":[],"extra":1}"#,
            ),
            (
                "unknown signature field",
                br#"{"payload":"","payloadType":"t","signatures":[{"sig":"","cert":"x"}]}"#,
            ),
            (
                "duplicate field",
                br#"{"payload":"","payload":"","payloadType":"t","signatures":[]}"#,
            ),
            ("missing payloadType", br#"{"payload":"","signatures":[]}"#),
            (
                "bad base64",
                br#"{"payload":"a*b=","payloadType":"t","signatures":[]}"#,
            ),
            (
                "whitespace in base64",
                br#"{"payload":"aGVs bG8=","payloadType":"t","signatures":[]}"#,
            ),
            (
                "trailing bits",
                br#"{"payload":"aGVsbG9=","payloadType":"t","signatures":[]}"#,
            ),
            (
                "bad signature base64",
                br#"{"payload":"","payloadType":"t","signatures":[{"sig":"!!"}]}"#,
            ),
            ("not json", b"\x00\xff"),
            (
                "trailing data",
                br#"{"payload":"","payloadType":"t","signatures":[]} x"#,
            ),
        ];
        for (what, json) in cases {
            assert!(Envelope::parse(json).is_err(), "{what}");
        }
    }

    #[test]
    fn bounds_signatures_and_field_sizes() {
        let signature = r#"{"keyid":"k","sig":""}"#;
        let many = vec![signature; MAX_SIGNATURES + 1].join(",");
        let json = format!(r#"{{"payload":"","payloadType":"t","signatures":[{many}]}}"#);
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(EnvelopeError::TooManySignatures { count: 257, .. })
        ));
        let exact = vec![signature; MAX_SIGNATURES].join(",");
        let json = format!(r#"{{"payload":"","payloadType":"t","signatures":[{exact}]}}"#);
        assert!(Envelope::parse(json.as_bytes()).is_ok());

        let long_keyid = "k".repeat(MAX_NAME_CHARS + 1);
        let json = format!(
            r#"{{"payload":"","payloadType":"t","signatures":[{{"keyid":"{long_keyid}","sig":""}}]}}"#
        );
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(EnvelopeError::FieldTooLong { field: "keyid", .. })
        ));
        let long_sig = "A".repeat(base64_length(MAX_SIGNATURE_BYTES) + 4);
        let json =
            format!(r#"{{"payload":"","payloadType":"t","signatures":[{{"sig":"{long_sig}"}}]}}"#);
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(EnvelopeError::FieldTooLong { field: "sig", .. })
        ));
    }

    #[test]
    fn sign_file_creates_extends_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("model.manifest.json");
        fs::write(&manifest, b"{\"version\": 1}\n").unwrap();
        let first = SecretKey::snakeoil(1);
        let second = SecretKey::snakeoil(2);

        let sig_path = sign_file(&manifest, &first, MANIFEST_PAYLOAD_TYPE).unwrap();
        assert_eq!(sig_path, dir.path().join("model.manifest.json.sig"));
        sign_file(&manifest, &second, MANIFEST_PAYLOAD_TYPE).unwrap();
        sign_file(&manifest, &first, MANIFEST_PAYLOAD_TYPE).unwrap();
        let envelope = Envelope::read(&sig_path).unwrap();
        assert_eq!(envelope.payload, b"{\"version\": 1}\n");
        assert_eq!(envelope.signatures.len(), 2);

        assert!(matches!(
            sign_file(&manifest, &first, TRUST_PAYLOAD_TYPE),
            Err(EnvelopeError::PayloadTypeDiffers { .. })
        ));
        fs::write(&manifest, b"{\"version\": 2}\n").unwrap();
        assert!(matches!(
            sign_file(&manifest, &first, MANIFEST_PAYLOAD_TYPE),
            Err(EnvelopeError::PayloadDiffers { .. })
        ));
        // The refused attempts left the old envelope and no temporary file.
        assert_eq!(Envelope::read(&sig_path).unwrap(), envelope);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);

        fs::write(&sig_path, b"{\"payload\": 1}").unwrap();
        assert!(matches!(
            sign_file(&manifest, &first, MANIFEST_PAYLOAD_TYPE),
            Err(EnvelopeError::File { .. })
        ));
        assert!(matches!(
            sign_file(&dir.path().join("missing"), &first, MANIFEST_PAYLOAD_TYPE),
            Err(EnvelopeError::Read { .. })
        ));
    }
}
