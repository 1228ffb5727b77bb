//! The trust policy (`trust.json`): which public keys the operator trusts, how many distinct
//! keys must sign, until when each key is valid, and how the policy itself is rotated.
//!
//! Only signatures by distinct trusted, unexpired keys over the exact bytes being verified
//! count; the same key signing twice counts once, and a key id the policy does not hold never
//! counts. A new policy replaces the current one only when a threshold of the *current* keys
//! signed it and its version is higher, as TUF rotates root keys. The policy is a local file
//! the operator owns: keys carried inside an artifact or envelope are never trusted. This
//! module owns those rules and the policy file format; it must not read manifests or model
//! files, nor turn findings into a verdict (that is the crate's `policy` module).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dsse::{pae, Envelope, TRUST_PAYLOAD_TYPE};
use super::keys::{KeyError, KeyId, PublicKey};
use crate::finding::{quote, Code, Finding, Severity};
use crate::manifest::time::Timestamp;

/// The `schema` value of a trust policy file.
pub const TRUST_SCHEMA: &str = "modelvet.trust/v1";
/// Most keys a policy may hold.
pub const MAX_TRUSTED_KEYS: usize = 256;
/// Longest key name accepted.
pub const MAX_KEY_NAME_CHARS: usize = 256;
/// Largest trust policy file read.
pub const MAX_TRUST_FILE_BYTES: u64 = 1024 * 1024;

/// A public key the operator trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub key_id: KeyId,
    pub name: Option<String>,
    /// The key's signatures stop counting at this time.
    pub expires: Option<Timestamp>,
}

impl TrustedKey {
    pub fn new(key: PublicKey, name: Option<String>, expires: Option<Timestamp>) -> TrustedKey {
        TrustedKey {
            key_id: key.key_id(),
            key,
            name,
            expires,
        }
    }

    /// `name (0123456789abcdef)` or the short id alone, for messages.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} ({})", quote(name), self.key_id.short()),
            None => self.key_id.short(),
        }
    }

    fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

/// The operator's trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    pub version: u64,
    pub threshold: u32,
    pub keys: Vec<TrustedKey>,
}

/// Why a trust policy is not valid or could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("not a trust policy")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("trust policy schema is `{found}`, expected `{TRUST_SCHEMA}`")]
    Schema { found: String },
    #[error("trust policy threshold {threshold} must be at least 1 and at most the number of keys ({keys})")]
    Threshold { threshold: u32, keys: usize },
    #[error("trust policy holds {count} keys, more than the limit of {limit}")]
    TooManyKeys { count: usize, limit: usize },
    #[error("trust policy lists key `{key_id}` twice")]
    DuplicateKey { key_id: KeyId },
    #[error(
        "trust policy key {index} states key id `{stated}` but its public key has id `{computed}`"
    )]
    KeyIdMismatch {
        index: usize,
        stated: KeyId,
        computed: KeyId,
    },
    #[error("trust policy key {index} has an invalid public key")]
    PublicKey {
        index: usize,
        #[source]
        source: KeyError,
    },
    #[error("trust policy key {index} has a name longer than {limit} characters")]
    NameTooLong { index: usize, limit: usize },
    #[error("cannot read trust policy `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("trust policy `{path}` is larger than the limit of {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("in trust policy `{path}`")]
    File {
        path: PathBuf,
        #[source]
        source: Box<TrustError>,
    },
}

/// What checking an envelope against a policy established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// Distinct trusted, unexpired keys whose signature over the exact bytes verified.
    pub signers: Vec<KeyId>,
    pub threshold: u32,
    pub findings: Vec<Finding>,
}

impl SignatureCheck {
    /// Enough distinct trusted keys signed the expected bytes and type, and nothing else
    /// (a rollback, a payload mismatch) rejects them.
    pub fn met(&self) -> bool {
        let enough = u32::try_from(self.signers.len()).is_ok_and(|count| count >= self.threshold);
        enough
            && self.threshold >= 1
            && !self
                .findings
                .iter()
                .any(|finding| finding.severity >= Severity::Error)
    }
}

impl TrustPolicy {
    /// A validated policy: 1 ≤ threshold ≤ number of keys, no key listed twice, and each
    /// `key_id` the id of its key.
    pub fn new(
        keys: Vec<TrustedKey>,
        threshold: u32,
        version: u64,
    ) -> Result<TrustPolicy, TrustError> {
        if keys.len() > MAX_TRUSTED_KEYS {
            return Err(TrustError::TooManyKeys {
                count: keys.len(),
                limit: MAX_TRUSTED_KEYS,
            });
        }
        let enough_keys = usize::try_from(threshold).is_ok_and(|threshold| threshold <= keys.len());
        if threshold == 0 || !enough_keys {
            return Err(TrustError::Threshold {
                threshold,
                keys: keys.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for (index, trusted) in keys.iter().enumerate() {
            let computed = trusted.key.key_id();
            if computed != trusted.key_id {
                return Err(TrustError::KeyIdMismatch {
                    index,
                    stated: trusted.key_id,
                    computed,
                });
            }
            if !seen.insert(computed) {
                return Err(TrustError::DuplicateKey { key_id: computed });
            }
            if trusted
                .name
                .as_ref()
                .is_some_and(|name| name.chars().count() > MAX_KEY_NAME_CHARS)
            {
                return Err(TrustError::NameTooLong {
                    index,
                    limit: MAX_KEY_NAME_CHARS,
                });
            }
        }
        Ok(TrustPolicy {
            version,
            threshold,
            keys,
        })
    }

    /// Parses `{"schema": "modelvet.trust/v1", "version": N, "threshold": N, "keys": [{"keyid":
    /// hex, "public_key": "<SPKI PEM>", "name": opt, "expires": opt RFC 3339}]}` strictly
    /// (unknown fields are errors) and validates it as [`TrustPolicy::new`] does.
    pub fn parse(bytes: &[u8]) -> Result<TrustPolicy, TrustError> {
        let raw: RawPolicy =
            serde_json::from_slice(bytes).map_err(|source| TrustError::Json { source })?;
        if raw.schema != TRUST_SCHEMA {
            return Err(TrustError::Schema {
                found: quote(&raw.schema),
            });
        }
        if raw.keys.len() > MAX_TRUSTED_KEYS {
            return Err(TrustError::TooManyKeys {
                count: raw.keys.len(),
                limit: MAX_TRUSTED_KEYS,
            });
        }
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (index, raw_key) in raw.keys.into_iter().enumerate() {
            // The policy holds SPKI PEM only: one spelling per key in the operator's file.
            if !raw_key
                .public_key
                .trim_start()
                .starts_with("-----BEGIN PUBLIC KEY-----")
            {
                return Err(TrustError::PublicKey {
                    index,
                    source: KeyError::InvalidPublicKey {
                        form: "SPKI PEM",
                        reason: "a trust policy holds keys as `-----BEGIN PUBLIC KEY-----` PEM"
                            .to_owned(),
                    },
                });
            }
            let key = PublicKey::from_text(&raw_key.public_key)
                .map_err(|source| TrustError::PublicKey { index, source })?;
            let computed = key.key_id();
            if computed != raw_key.keyid {
                return Err(TrustError::KeyIdMismatch {
                    index,
                    stated: raw_key.keyid,
                    computed,
                });
            }
            keys.push(TrustedKey {
                key,
                key_id: computed,
                name: raw_key.name,
                expires: raw_key.expires,
            });
        }
        TrustPolicy::new(keys, raw.threshold, raw.version)
    }

    /// Reads and parses a trust policy file.
    pub fn read(path: &Path) -> Result<TrustPolicy, TrustError> {
        let bytes = read_bounded(path)?;
        TrustPolicy::parse(&bytes).map_err(|source| TrustError::File {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Pretty JSON in the schema [`TrustPolicy::parse`] reads, newline-terminated.
    pub fn to_json(&self) -> Vec<u8> {
        let out = OutPolicy {
            schema: TRUST_SCHEMA,
            version: self.version,
            threshold: self.threshold,
            keys: self
                .keys
                .iter()
                .map(|trusted| OutKey {
                    keyid: trusted.key_id,
                    public_key: trusted.key.to_spki_pem(),
                    name: trusted.name.as_deref(),
                    expires: trusted.expires,
                })
                .collect(),
        };
        // Serialising strings and numbers into memory cannot fail; an empty result would fail
        // to parse rather than pass anything.
        let mut json = serde_json::to_vec_pretty(&out).unwrap_or_default();
        json.push(b'\n');
        json
    }

    pub fn key(&self, key_id: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|trusted| trusted.key_id == *key_id)
    }

    /// Checks the signatures of `envelope` over `signed_bytes` (the exact bytes of the file
    /// being verified) with payload type `payload_type`, at time `now`.
    ///
    /// A payload that differs from `signed_bytes`, or another payload type, is reported and no
    /// signature is looked at. A signature counts when its key id names a trusted, unexpired
    /// key whose strict verification of `PAE(type, bytes)` succeeds; a signature without a key
    /// id is tried against every trusted key, as DSSE allows.
    pub fn check_envelope(
        &self,
        envelope: &Envelope,
        signed_bytes: &[u8],
        payload_type: &str,
        now: Timestamp,
    ) -> SignatureCheck {
        let mut check = SignatureCheck {
            signers: Vec::new(),
            threshold: self.threshold,
            findings: Vec::new(),
        };
        if envelope.payload != signed_bytes {
            check.findings.push(
                Finding::new(
                    Code::SignaturePayloadMismatch,
                    format!(
                        "the signed payload ({} bytes) is not byte-for-byte the file ({} bytes)",
                        envelope.payload.len(),
                        signed_bytes.len()
                    ),
                )
                .with_hint("the signature is for another version of the file; sign this one again"),
            );
            return check;
        }
        if envelope.payload_type != payload_type {
            check.findings.push(Finding::new(
                Code::SignaturePayloadType,
                format!(
                    "the envelope's payload type is `{}`, expected `{}`",
                    quote(&envelope.payload_type),
                    quote(payload_type)
                ),
            ));
            return check;
        }
        let message = pae(&envelope.payload_type, &envelope.payload);
        let mut signers = BTreeSet::new();
        for (index, signature) in envelope.signatures.iter().enumerate() {
            let number = index.saturating_add(1);
            let candidates: Vec<&TrustedKey> = if signature.keyid.is_empty() {
                self.keys.iter().collect()
            } else {
                match signature
                    .keyid
                    .parse::<KeyId>()
                    .ok()
                    .and_then(|id| self.key(&id))
                {
                    Some(trusted) => vec![trusted],
                    None => {
                        check.findings.push(Finding::new(
                            Code::SignatureUnknownKey,
                            format!(
                                "signature {number} names key `{}`, which the trust policy does not hold; it does not count",
                                quote(&signature.keyid)
                            ),
                        ));
                        continue;
                    }
                }
            };
            let verified = candidates
                .into_iter()
                .find(|trusted| trusted.key.verify(&message, &signature.sig));
            match verified {
                Some(trusted) if trusted.is_expired(now) => {
                    let expires = trusted.expires.map(|t| t.to_string()).unwrap_or_default();
                    check.findings.push(
                        Finding::new(
                            Code::SignatureKeyExpired,
                            format!(
                                "signature {number} is by trusted key {}, which expired at {expires}; it does not count",
                                trusted.label()
                            ),
                        )
                        .with_hint("renew the key's `expires` in the trust policy or re-sign with a valid key"),
                    );
                }
                Some(trusted) => {
                    // The same key signing twice counts once.
                    signers.insert(trusted.key_id);
                }
                None if signature.keyid.is_empty() => {
                    check.findings.push(Finding::new(
                        Code::SignatureUnknownKey,
                        format!(
                            "signature {number} has no key id and verifies with no trusted key; it does not count"
                        ),
                    ));
                }
                None => {
                    check.findings.push(Finding::new(
                        Code::SignatureInvalid,
                        format!(
                            "signature {number} names trusted key {} but does not verify; it does not count",
                            self.label_of(&signature.keyid)
                        ),
                    ));
                }
            }
        }
        check.signers = signers.into_iter().collect();
        let count = check.signers.len();
        if u32::try_from(count).map_or(true, |count| count < self.threshold) {
            check.findings.push(Finding::new(
                Code::SignatureThresholdNotMet,
                format!(
                    "{count} of {} trusted keys signed; the trust policy requires {}",
                    self.keys.len(),
                    self.threshold
                ),
            ));
        }
        check
    }

    fn label_of(&self, keyid: &str) -> String {
        keyid
            .parse::<KeyId>()
            .ok()
            .and_then(|id| self.key(&id))
            .map_or_else(|| format!("`{}`", quote(keyid)), TrustedKey::label)
    }
}

/// Checks a proposed new trust policy (`new_bytes`, signed in `envelope`) against the current
/// one. The new policy must parse (else an error), be signed by a threshold of the *current*
/// keys with [`TRUST_PAYLOAD_TYPE`], and have a higher version (else a `trust-rollback`
/// finding). The caller installs the returned policy only if the check is [`met`].
///
/// [`met`]: SignatureCheck::met
pub fn check_rotation(
    current: &TrustPolicy,
    new_bytes: &[u8],
    envelope: &Envelope,
    now: Timestamp,
) -> Result<(TrustPolicy, SignatureCheck), TrustError> {
    let new = TrustPolicy::parse(new_bytes)?;
    let mut check = current.check_envelope(envelope, new_bytes, TRUST_PAYLOAD_TYPE, now);
    if new.version <= current.version {
        check.findings.push(Finding::new(
            Code::TrustRollback,
            format!(
                "the new trust policy has version {}, not higher than the current version {}",
                new.version, current.version
            ),
        ));
    }
    Ok((new, check))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    schema: String,
    version: u64,
    threshold: u32,
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    keyid: KeyId,
    public_key: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    expires: Option<Timestamp>,
}

#[derive(Serialize)]
struct OutPolicy<'a> {
    schema: &'static str,
    version: u64,
    threshold: u32,
    keys: Vec<OutKey<'a>>,
}

#[derive(Serialize)]
struct OutKey<'a> {
    keyid: KeyId,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<Timestamp>,
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TrustError> {
    let read_error = |source| TrustError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_TRUST_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if u64::try_from(bytes.len()).map_or(true, |length| length > MAX_TRUST_FILE_BYTES) {
        return Err(TrustError::TooLarge {
            path: path.to_owned(),
            limit: MAX_TRUST_FILE_BYTES,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::dsse::{EnvelopeSignature, MANIFEST_PAYLOAD_TYPE};
    use super::super::keys::SecretKey;
    use super::*;

    const MANIFEST: &[u8] = b"{\"name\": \"snakeoil-model\", \"version\": 3}\n";
    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn trusted(seed: u8) -> TrustedKey {
        TrustedKey::new(
            SecretKey::snakeoil(seed).public_key(),
            Some(format!("snakeoil-{seed}")),
            None,
        )
    }

    /// Keys 1..=n trusted, `threshold` required.
    fn policy(n: u8, threshold: u32) -> TrustPolicy {
        TrustPolicy::new((1..=n).map(trusted).collect(), threshold, 1).unwrap()
    }

    fn signed_by(seeds: &[u8]) -> Envelope {
        let mut envelope = Envelope::new(MANIFEST_PAYLOAD_TYPE, MANIFEST.to_vec());
        for seed in seeds {
            envelope.sign(&SecretKey::snakeoil(*seed));
        }
        envelope
    }

    fn codes(check: &SignatureCheck) -> Vec<Code> {
        check.findings.iter().map(|finding| finding.code).collect()
    }

    fn check(policy: &TrustPolicy, envelope: &Envelope) -> SignatureCheck {
        policy.check_envelope(envelope, MANIFEST, MANIFEST_PAYLOAD_TYPE, NOW)
    }

    #[test]
    fn threshold_met_by_distinct_trusted_keys() {
        let result = check(&policy(3, 2), &signed_by(&[1, 3]));
        assert!(result.met(), "{:?}", result.findings);
        assert_eq!(result.signers.len(), 2);
        assert!(result.findings.is_empty());
    }

    #[test]
    fn below_threshold_says_k_of_n() {
        let result = check(&policy(3, 2), &signed_by(&[2]));
        assert!(!result.met());
        assert_eq!(codes(&result), [Code::SignatureThresholdNotMet]);
        let message = &result.findings[0].message;
        assert!(message.contains("1 of 3"), "{message}");
        assert!(message.contains("requires 2"), "{message}");
    }

    #[test]
    fn wrong_key_named_as_a_trusted_key_is_invalid() {
        let mut envelope = signed_by(&[9]);
        // Key 9 signs but claims to be trusted key 1.
        envelope.signatures[0].keyid = trusted(1).key_id.to_string();
        let result = check(&policy(1, 1), &envelope);
        assert!(!result.met());
        assert_eq!(
            codes(&result),
            [Code::SignatureInvalid, Code::SignatureThresholdNotMet]
        );
        assert_eq!(result.findings[0].severity, Severity::Warning);
        assert!(result.findings[0].message.contains("snakeoil-1"));
    }

    #[test]
    fn tampered_payload_is_a_mismatch_and_counts_nothing() {
        let result = policy(1, 1).check_envelope(
            &signed_by(&[1]),
            b"{\"name\": \"evil\"}\n",
            MANIFEST_PAYLOAD_TYPE,
            NOW,
        );
        assert!(!result.met());
        assert_eq!(codes(&result), [Code::SignaturePayloadMismatch]);
        assert!(result.signers.is_empty());
    }

    #[test]
    fn tampered_payload_inside_the_envelope_does_not_verify() {
        // Both the file and the envelope changed in step: the signatures no longer verify.
        let mut envelope = signed_by(&[1]);
        envelope.payload = b"{}".to_vec();
        let result = policy(1, 1).check_envelope(&envelope, b"{}", MANIFEST_PAYLOAD_TYPE, NOW);
        assert!(!result.met());
        assert_eq!(
            codes(&result),
            [Code::SignatureInvalid, Code::SignatureThresholdNotMet]
        );
    }

    #[test]
    fn payload_type_changed_fails_either_way() {
        // Expected another type than the envelope states.
        let result =
            policy(1, 1).check_envelope(&signed_by(&[1]), MANIFEST, TRUST_PAYLOAD_TYPE, NOW);
        assert!(!result.met());
        assert_eq!(codes(&result), [Code::SignaturePayloadType]);
        // The envelope's type was edited after signing: the PAE no longer matches.
        let mut envelope = signed_by(&[1]);
        envelope.payload_type = TRUST_PAYLOAD_TYPE.to_owned();
        let result = policy(1, 1).check_envelope(&envelope, MANIFEST, TRUST_PAYLOAD_TYPE, NOW);
        assert!(!result.met());
        assert_eq!(
            codes(&result),
            [Code::SignatureInvalid, Code::SignatureThresholdNotMet]
        );
    }

    #[test]
    fn same_key_twice_counts_once() {
        let mut envelope = signed_by(&[1]);
        let copy = envelope.signatures[0].clone();
        envelope.signatures.push(copy.clone());
        // And once more without a key id, which is tried against every key.
        envelope.signatures.push(EnvelopeSignature {
            keyid: String::new(),
            sig: copy.sig,
        });
        let result = check(&policy(2, 2), &envelope);
        assert!(!result.met());
        assert_eq!(result.signers, [trusted(1).key_id]);
        assert_eq!(codes(&result), [Code::SignatureThresholdNotMet]);
    }

    #[test]
    fn unknown_key_ids_do_not_count() {
        let result = check(&policy(2, 1), &signed_by(&[1, 7]));
        assert!(result.met());
        assert_eq!(result.signers.len(), 1);
        assert_eq!(codes(&result), [Code::SignatureUnknownKey]);
        assert_eq!(result.findings[0].severity, Severity::Info);

        // A hostile key id is quoted, not echoed raw.
        let mut envelope = signed_by(&[7]);
        envelope.signatures[0].keyid = "\u{1b}[2J`x".to_owned();
        let result = check(&policy(1, 1), &envelope);
        assert!(!result.met());
        assert!(!result.findings[0].message.contains('\u{1b}'));
        // No key id and no trusted key verifies it.
        envelope.signatures[0].keyid = String::new();
        let result = check(&policy(1, 1), &envelope);
        assert_eq!(
            codes(&result),
            [Code::SignatureUnknownKey, Code::SignatureThresholdNotMet]
        );
    }

    #[test]
    fn expired_key_does_not_count() {
        let mut keys = vec![trusted(1), trusted(2)];
        keys[0].expires = Some(NOW);
        keys[1].expires = Some(NOW.plus_seconds(1));
        let policy = TrustPolicy::new(keys, 2, 1).unwrap();
        let result = check(&policy, &signed_by(&[1, 2]));
        assert!(!result.met());
        assert_eq!(result.signers, [trusted(2).key_id]);
        assert_eq!(
            codes(&result),
            [Code::SignatureKeyExpired, Code::SignatureThresholdNotMet]
        );
        assert_eq!(result.findings[0].severity, Severity::Warning);
        // A second earlier, both count.
        let earlier = policy.check_envelope(
            &signed_by(&[1, 2]),
            MANIFEST,
            MANIFEST_PAYLOAD_TYPE,
            NOW.plus_seconds(-1),
        );
        assert!(earlier.met());
    }

    #[test]
    fn new_validates_threshold_and_duplicates() {
        assert!(matches!(
            TrustPolicy::new(vec![trusted(1)], 0, 1),
            Err(TrustError::Threshold { .. })
        ));
        assert!(matches!(
            TrustPolicy::new(vec![trusted(1)], 2, 1),
            Err(TrustError::Threshold { .. })
        ));
        assert!(matches!(
            TrustPolicy::new(vec![], 1, 1),
            Err(TrustError::Threshold { .. })
        ));
        assert!(matches!(
            TrustPolicy::new(vec![trusted(1), trusted(1)], 1, 1),
            Err(TrustError::DuplicateKey { .. })
        ));
        let mut wrong = trusted(1);
        wrong.key_id = trusted(2).key_id;
        assert!(matches!(
            TrustPolicy::new(vec![wrong], 1, 1),
            Err(TrustError::KeyIdMismatch { .. })
        ));
    }

    #[test]
    fn policy_json_round_trips_and_parses_strictly() {
        let mut keys = vec![trusted(1), trusted(2)];
        keys[1].name = None;
        keys[1].expires = Some("2030-01-01T00:00:00Z".parse().unwrap());
        let policy = TrustPolicy::new(keys, 2, 7).unwrap();
        let json = policy.to_json();
        assert!(json.ends_with(b"}\n"));
        assert_eq!(TrustPolicy::parse(&json).unwrap(), policy);

        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let edit = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut value = value.clone();
            change(&mut value);
            TrustPolicy::parse(&serde_json::to_vec(&value).unwrap())
        };
        assert!(matches!(
            edit(&|v| v["extra"] = 1.into()),
            Err(TrustError::Json { .. })
        ));
        assert!(matches!(
            edit(&|v| v["keys"][0]["role"] = "root".into()),
            Err(TrustError::Json { .. })
        ));
        assert!(matches!(
            edit(&|v| v["schema"] = "modelvet.trust/v2".into()),
            Err(TrustError::Schema { .. })
        ));
        assert!(matches!(
            edit(&|v| v["keys"][0]["keyid"] = v["keys"][1]["keyid"].clone()),
            Err(TrustError::KeyIdMismatch { index: 0, .. })
        ));
        assert!(matches!(
            edit(&|v| v["keys"][0]["keyid"] = "ABC".into()),
            Err(TrustError::Json { .. })
        ));
        assert!(matches!(
            edit(&|v| v["threshold"] = 3.into()),
            Err(TrustError::Threshold { .. })
        ));
        assert!(matches!(
            edit(&|v| v["keys"][1] = v["keys"][0].clone()),
            Err(TrustError::DuplicateKey { .. })
        ));
        assert!(matches!(
            edit(&|v| v["keys"][0]["expires"] = "tomorrow".into()),
            Err(TrustError::Json { .. })
        ));
        let raw_base64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(trusted(1).key.to_bytes())
        };
        assert!(matches!(
            edit(&|v| v["keys"][0]["public_key"] = raw_base64.clone().into()),
            Err(TrustError::PublicKey { index: 0, .. })
        ));
    }

    fn signed_policy(new: &TrustPolicy, seeds: &[u8]) -> (Vec<u8>, Envelope) {
        let bytes = new.to_json();
        let mut envelope = Envelope::new(TRUST_PAYLOAD_TYPE, bytes.clone());
        for seed in seeds {
            envelope.sign(&SecretKey::snakeoil(*seed));
        }
        (bytes, envelope)
    }

    #[test]
    fn rotation_signed_by_a_threshold_of_old_keys_is_accepted() {
        let current = policy(3, 2);
        let new = TrustPolicy::new(vec![trusted(4), trusted(5)], 1, 2).unwrap();
        let (bytes, envelope) = signed_policy(&new, &[1, 2]);
        let (parsed, result) = check_rotation(&current, &bytes, &envelope, NOW).unwrap();
        assert!(result.met(), "{:?}", result.findings);
        assert_eq!(parsed, new);
    }

    #[test]
    fn rotation_signed_by_too_few_old_keys_or_only_new_keys_is_refused() {
        let current = policy(3, 2);
        let new = TrustPolicy::new(vec![trusted(4), trusted(5)], 1, 2).unwrap();
        // One old key plus the new keys vouching for themselves.
        let (bytes, envelope) = signed_policy(&new, &[1, 4, 5]);
        let (_, result) = check_rotation(&current, &bytes, &envelope, NOW).unwrap();
        assert!(!result.met());
        assert_eq!(result.signers, [trusted(1).key_id]);
        assert!(codes(&result).contains(&Code::SignatureThresholdNotMet));
        // A manifest envelope cannot be replayed as a policy rotation.
        let mut envelope = Envelope::new(MANIFEST_PAYLOAD_TYPE, bytes.clone());
        envelope.sign(&SecretKey::snakeoil(1));
        envelope.sign(&SecretKey::snakeoil(2));
        let (_, result) = check_rotation(&current, &bytes, &envelope, NOW).unwrap();
        assert!(!result.met());
        assert_eq!(codes(&result), [Code::SignaturePayloadType]);
    }

    #[test]
    fn rotation_to_a_lower_or_equal_version_is_a_rollback() {
        let mut current = policy(2, 1);
        current.version = 5;
        for version in [4, 5] {
            let new = TrustPolicy::new(vec![trusted(3)], 1, version).unwrap();
            let (bytes, envelope) = signed_policy(&new, &[1, 2]);
            let (_, result) = check_rotation(&current, &bytes, &envelope, NOW).unwrap();
            assert!(!result.met(), "version {version}");
            assert_eq!(codes(&result), [Code::TrustRollback]);
            assert_eq!(result.signers.len(), 2);
        }
    }

    #[test]
    fn rotation_to_an_invalid_policy_is_an_error() {
        let current = policy(1, 1);
        let mut envelope = Envelope::new(TRUST_PAYLOAD_TYPE, b"{}".to_vec());
        envelope.sign(&SecretKey::snakeoil(1));
        assert!(matches!(
            check_rotation(&current, b"{}", &envelope, NOW),
            Err(TrustError::Json { .. })
        ));
    }

    #[test]
    fn read_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        std::fs::write(&path, policy(1, 1).to_json()).unwrap();
        assert_eq!(TrustPolicy::read(&path).unwrap(), policy(1, 1));
        std::fs::write(&path, b"{}").unwrap();
        let error = TrustPolicy::read(&path).unwrap_err();
        assert!(error.to_string().contains("trust.json"), "{error}");
        assert!(matches!(
            TrustPolicy::read(&dir.path().join("missing.json")),
            Err(TrustError::Read { .. })
        ));
    }
}
