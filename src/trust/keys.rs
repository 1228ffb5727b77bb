//! Ed25519 keys: generation, PKCS#8 / SPKI PEM files, public-key import forms and key ids.
//!
//! A key id is the lowercase hex SHA-256 of the key's SPKI DER, so an OpenSSL user can compute
//! it with `openssl pkey -pubin -outform DER | sha256sum`. Secret keys are only ever read from
//! and written to PKCS#8 PEM files with mode 0600; public keys may also be imported from the
//! forms other tools print (raw base64/hex, `ssh-ed25519` lines, minisign). This module owns
//! key material and key files; it must not decide what is trusted (that is `policy`) nor know
//! the envelope format (that is `dsse`).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Key files are a few hundred bytes; anything much larger is not a key.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE, AlgorithmIdentifier
/// with OID 1.3.101.112 and no parameters, BIT STRING of 33 bytes with no unused bits.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key could not be generated, read, written or imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("cannot read key file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write key file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing to overwrite existing file `{path}`")]
    Exists { path: PathBuf },
    #[error(
        "secret key file `{path}` is readable by other users (mode {mode:03o}); run `chmod 600` on it"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("key file `{path}` is larger than {limit} bytes, so it is not a key")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("key file `{path}` is not valid UTF-8 text")]
    NotText { path: PathBuf },
    #[error("in key file `{path}`")]
    File {
        path: PathBuf,
        #[source]
        source: Box<KeyError>,
    },
    #[error(
        "expected an Ed25519 private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`): {reason}"
    )]
    NotPrivateKey { reason: String },
    #[error("expected a public key but found a private key; give the `.pub` file")]
    PrivateKeyGiven,
    #[error(
        "not a recognised Ed25519 public key; tried SPKI PEM, `ssh-ed25519` line, minisign, \
         raw 32 bytes as hex or base64: {reason}"
    )]
    UnrecognisedPublicKey { reason: String },
    #[error("invalid {form} public key: {reason}")]
    InvalidPublicKey { form: &'static str, reason: String },
    #[error("the public key is a weak (small-order) Ed25519 point, which no signature can bind")]
    WeakKey,
    #[error("the system random number generator failed: {reason}")]
    Random { reason: String },
    #[error("cannot encode the key as PEM: {reason}")]
    Encode { reason: String },
}

/// Lowercase hex SHA-256 of a public key's SPKI DER.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 32]);

/// Why a key id string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a key id (64 lowercase hex digits)")]
pub struct KeyIdError {
    pub text: String,
}

impl KeyId {
    pub const fn from_bytes(bytes: [u8; 32]) -> KeyId {
        KeyId(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 16 hex digits, enough for a human to tell keys apart in a message.
    pub fn short(&self) -> String {
        self.to_string().chars().take(16).collect()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || KeyIdError {
            text: crate::finding::quote(text),
        };
        // Only lowercase: one spelling per id, so ids compare as strings too.
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(fail());
        }
        let bytes = decode_hex(text).ok_or_else(fail)?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| fail())?;
        Ok(KeyId(array))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl PublicKey {
    /// A key from its 32 raw bytes; weak (small-order) points are refused.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey {
            form: "raw",
            reason: "not a valid Ed25519 point".to_owned(),
        })?;
        PublicKey::checked(key)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn key_id(&self) -> KeyId {
        KeyId(Sha256::digest(self.spki_der()).into())
    }

    /// The SPKI DER: built by hand because for Ed25519 it is a fixed prefix and the key, and
    /// that keeps this function infallible.
    pub fn spki_der(&self) -> Vec<u8> {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.key.as_bytes());
        der
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM, byte-identical to `openssl pkey -pubout`.
    pub fn to_spki_pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(self.spki_der());
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    /// Imports a public key from any form [`KeyError::UnrecognisedPublicKey`] lists: the form
    /// is detected from the text, never guessed after a failure of the detected one.
    pub fn from_text(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        let first_line = text.lines().next().unwrap_or_default();
        // minisign secret keys say `minisign encrypted secret key` in their comment line.
        let minisign_secret =
            first_line.starts_with("untrusted comment:") && first_line.contains("secret key");
        if text.contains("PRIVATE KEY-----") || minisign_secret {
            return Err(KeyError::PrivateKeyGiven);
        }
        if text.starts_with("-----BEGIN") {
            let key = VerifyingKey::from_public_key_pem(text).map_err(|error| {
                KeyError::InvalidPublicKey {
                    form: "SPKI PEM",
                    reason: error.to_string(),
                }
            })?;
            return PublicKey::checked(key);
        }
        if let Some(rest) = text.strip_prefix("ssh-") {
            return from_ssh_line(rest);
        }
        if let Some(rest) = text.strip_prefix("untrusted comment:") {
            // The comment is one line; the key is the next non-empty line.
            let line = rest
                .lines()
                .skip(1)
                .map(str::trim)
                .find(|line| !line.is_empty())
                .ok_or_else(|| KeyError::InvalidPublicKey {
                    form: "minisign",
                    reason: "no key line after the comment".to_owned(),
                })?;
            return from_minisign_blob(&decode_base64_key("minisign", line)?);
        }
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(KeyError::UnrecognisedPublicKey {
                reason: if text.is_empty() {
                    "the text is empty".to_owned()
                } else {
                    "expected a single token".to_owned()
                },
            });
        }
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = decode_hex(text).ok_or_else(|| KeyError::UnrecognisedPublicKey {
                reason: "bad hex".to_owned(),
            })?;
            return from_raw(&bytes, "hex");
        }
        let bytes = decode_base64_any(text).ok_or_else(|| KeyError::UnrecognisedPublicKey {
            reason: "not hex of 32 bytes and not base64".to_owned(),
        })?;
        match bytes.len() {
            32 => from_raw(&bytes, "base64"),
            MINISIGN_BLOB_LEN => from_minisign_blob(&bytes),
            length => Err(KeyError::UnrecognisedPublicKey {
                reason: format!(
                    "base64 decodes to {length} bytes, expected 32 (raw) or {MINISIGN_BLOB_LEN} (minisign)"
                ),
            }),
        }
    }

    /// Strict Ed25519 verification (`verify_strict`): refuses non-canonical signatures and
    /// small-order components, so one message has one valid signature per key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &signature).is_ok()
    }

    fn checked(key: VerifyingKey) -> Result<PublicKey, KeyError> {
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(PublicKey { key })
    }
}

/// An Ed25519 secret key. Its `Debug` shows only the key id.
pub struct SecretKey {
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Random {
            reason: error.to_string(),
        })?;
        let key = SigningKey::from_bytes(&seed);
        // Best effort: the seed now lives in `key`, which zeroes itself on drop.
        seed.fill(0);
        Ok(SecretKey { key })
    }

    /// Reads PKCS#8 v1 (OpenSSL's `genpkey` output) and v2 (with the public key, which must
    /// match the secret key).
    pub fn from_pkcs8_pem(text: &str) -> Result<SecretKey, KeyError> {
        let key =
            SigningKey::from_pkcs8_pem(text.trim()).map_err(|error| KeyError::NotPrivateKey {
                reason: error.to_string(),
            })?;
        Ok(SecretKey { key })
    }

    /// PKCS#8 v1 PEM, the layout OpenSSL writes, so every tool that reads OpenSSL keys reads
    /// ours.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let pem = bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::Encode {
                reason: error.to_string(),
            })?;
        Ok(pem.as_str().to_owned())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// A fixed snakeoil key from a repeated seed byte, so that tests are reproducible.
    #[cfg(test)]
    pub(crate) fn snakeoil(seed: u8) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }
}

/// Generates a key pair and writes `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub`
/// (SPKI PEM). Neither file is overwritten, and neither ever exists half-written: each is
/// written to a temporary name in the same directory and then linked into place.
pub fn write_key_pair(prefix: &Path) -> Result<KeyId, KeyError> {
    let key_path = with_suffix(prefix, ".key");
    let pub_path = with_suffix(prefix, ".pub");
    for path in [&key_path, &pub_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let secret = SecretKey::generate()?;
    let public = secret.public_key();
    let pem = secret.to_pkcs8_pem()?;
    write_new_file(&key_path, pem.as_bytes(), 0o600)?;
    if let Err(error) = write_new_file(&pub_path, public.to_spki_pem().as_bytes(), 0o644) {
        // A secret key without its public half is useless and confusing; it is ours to remove.
        let _ = fs::remove_file(&key_path);
        return Err(error);
    }
    Ok(public.key_id())
}

/// Reads a PKCS#8 PEM secret key. On unix a file that group or others may read is refused:
/// the key may already have leaked, and the operator should know.
pub fn read_secret_key(path: &Path) -> Result<SecretKey, KeyError> {
    let file = File::open(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = file.metadata().map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let text = read_bounded_text(file, path)?;
    SecretKey::from_pkcs8_pem(&text).map_err(|source| KeyError::File {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// Reads a public key in any form [`PublicKey::from_text`] accepts.
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let file = File::open(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = read_bounded_text(file, path)?;
    PublicKey::from_text(&text).map_err(|source| KeyError::File {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// `Ed` + 8-byte key id + 32-byte key.
const MINISIGN_BLOB_LEN: usize = 42;

fn from_raw(bytes: &[u8], form: &'static str) -> Result<PublicKey, KeyError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidPublicKey {
        form,
        reason: format!("{} bytes, expected 32", bytes.len()),
    })?;
    let key = VerifyingKey::from_bytes(&array).map_err(|_| KeyError::InvalidPublicKey {
        form,
        reason: "not a valid Ed25519 point".to_owned(),
    })?;
    PublicKey::checked(key)
}

fn from_minisign_blob(bytes: &[u8]) -> Result<PublicKey, KeyError> {
    let fail = |reason: &str| KeyError::InvalidPublicKey {
        form: "minisign",
        reason: reason.to_owned(),
    };
    if bytes.len() != MINISIGN_BLOB_LEN {
        return Err(fail(
            "expected 42 bytes: `Ed`, an 8-byte key id and a 32-byte key",
        ));
    }
    let (algorithm, rest) = bytes.split_at_checked(2).ok_or_else(|| fail("too short"))?;
    if algorithm != b"Ed" {
        return Err(fail("algorithm is not `Ed`"));
    }
    let (_minisign_id, key) = rest.split_at_checked(8).ok_or_else(|| fail("too short"))?;
    from_raw(key, "minisign")
}

/// `ssh-ed25519 AAAA... comment`: the base64 blob is SSH wire format, a length-prefixed
/// algorithm name and a length-prefixed key, and the name inside must match the one outside.
fn from_ssh_line(rest: &str) -> Result<PublicKey, KeyError> {
    let fail = |reason: &str| KeyError::InvalidPublicKey {
        form: "ssh",
        reason: reason.to_owned(),
    };
    let mut words = rest.split_whitespace();
    let algorithm = words.next().unwrap_or_default();
    if algorithm != "ed25519" {
        return Err(fail("only `ssh-ed25519` keys are supported"));
    }
    let blob = words
        .next()
        .ok_or_else(|| fail("no base64 key after `ssh-ed25519`"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| fail("the key is not valid base64"))?;
    let (name, rest) = ssh_string(&blob).ok_or_else(|| fail("truncated algorithm name"))?;
    if name != b"ssh-ed25519" {
        return Err(fail("the key blob names another algorithm"));
    }
    let (key, rest) = ssh_string(rest).ok_or_else(|| fail("truncated key"))?;
    if !rest.is_empty() {
        return Err(fail("bytes follow the key in the blob"));
    }
    from_raw(key, "ssh")
}

fn ssh_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_at_checked(4)?;
    let length = u32::from_be_bytes(length.try_into().ok()?);
    rest.split_at_checked(usize::try_from(length).ok()?)
}

fn decode_base64_key(form: &'static str, text: &str) -> Result<Vec<u8>, KeyError> {
    decode_base64_any(text).ok_or_else(|| KeyError::InvalidPublicKey {
        form,
        reason: "the key line is not valid base64".to_owned(),
    })
}

fn decode_base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_bounded_text(file: File, path: &Path) -> Result<String, KeyError> {
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
    if u64::try_from(bytes.len()).map_or(true, |length| length > MAX_KEY_FILE_BYTES) {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
            limit: MAX_KEY_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| KeyError::NotText {
        path: path.to_owned(),
    })
}

/// Writes a new file at `path`; a file there, even one created meanwhile, is never replaced.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let options = crate::atomic::WriteOptions {
        mode,
        existing: crate::atomic::Existing::Keep,
    };
    match crate::atomic::write(path, bytes, options) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(KeyError::Exists {
            path: path.to_owned(),
        }),
        Err(source) => Err(KeyError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn snakeoil(seed: u8) -> SecretKey {
        SecretKey::snakeoil(seed)
    }

    fn openssl_available() -> bool {
        let found = Command::new("openssl").arg("version").output().is_ok();
        if !found {
            println!("note: `openssl` is not on PATH; skipping the OpenSSL interoperability test");
        }
        found
    }

    #[test]
    fn key_id_display_parse_and_serde_round_trip() {
        let id = snakeoil(1).public_key().key_id();
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<KeyId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("KeyId({text})"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
        for bad in [
            "",
            "abc",
            &text.to_uppercase(),
            &format!("{text}0"),
            &"g".repeat(64),
        ] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spki_pem_matches_the_library_encoder() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let public = snakeoil(2).public_key();
        let library = public.key.to_public_key_pem(LineEnding::LF).unwrap();
        assert_eq!(public.to_spki_pem(), library);
        assert_eq!(
            public.spki_der(),
            public.key.to_public_key_der().unwrap().as_bytes()
        );
    }

    #[test]
    fn generate_write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("snakeoil");
        let id = write_key_pair(&prefix).unwrap();
        let secret = read_secret_key(&dir.path().join("snakeoil.key")).unwrap();
        let public = read_public_key(&dir.path().join("snakeoil.pub")).unwrap();
        assert_eq!(secret.public_key(), public);
        assert_eq!(public.key_id(), id);
        let signature = secret.sign(b"model bytes");
        assert!(public.verify(b"model bytes", &signature));
        assert!(!public.verify(b"model bytez", &signature));
        assert!(!public.verify(b"model bytes", &signature[..63]));
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn secret_key_debug_hides_the_secret() {
        let secret = snakeoil(3);
        let pem = secret.to_pkcs8_pem().unwrap();
        let debug = format!("{secret:?}");
        assert!(debug.contains(&secret.public_key().key_id().to_string()));
        assert!(!debug.contains("[3, 3"));
        assert!(!debug.contains(pem.lines().nth(1).unwrap()));
    }

    #[test]
    fn pkcs8_round_trip_and_refusals() {
        let secret = snakeoil(4);
        let pem = secret.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SecretKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.public_key(), secret.public_key());
        // The v2 layout (with the public key) that ed25519-dalek writes also loads.
        let v2 = secret.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(
            SecretKey::from_pkcs8_pem(&v2).unwrap().public_key(),
            secret.public_key()
        );
        assert!(matches!(
            SecretKey::from_pkcs8_pem(&secret.public_key().to_spki_pem()),
            Err(KeyError::NotPrivateKey { .. })
        ));
        assert!(matches!(
            PublicKey::from_text(&pem),
            Err(KeyError::PrivateKeyGiven)
        ));
        assert!(matches!(
            PublicKey::from_text("untrusted comment: minisign encrypted secret key\nRWQAAEIy"),
            Err(KeyError::PrivateKeyGiven)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_modes_and_refusing_group_readable_keys() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("snakeoil");
        write_key_pair(&prefix).unwrap();
        let key_path = dir.path().join("snakeoil.key");
        let mode = fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = read_secret_key(&key_path).unwrap_err();
        assert!(matches!(
            error,
            KeyError::InsecurePermissions { mode: 0o640, .. }
        ));
        assert!(error.to_string().contains("chmod 600"));
    }

    #[test]
    fn refuses_to_overwrite_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("snakeoil");
        let first = write_key_pair(&prefix).unwrap();
        assert!(matches!(
            write_key_pair(&prefix),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(
            read_public_key(&dir.path().join("snakeoil.pub"))
                .unwrap()
                .key_id(),
            first
        );
        // Only the .pub exists: still refused, and no .key is created.
        let other = dir.path().join("other");
        fs::write(dir.path().join("other.pub"), "x").unwrap();
        assert!(matches!(
            write_key_pair(&other),
            Err(KeyError::Exists { .. })
        ));
        assert!(!dir.path().join("other.key").exists());
        // Writing beside an existing file fails at link time, not by replacing it.
        let target = dir.path().join("raced.pub");
        fs::write(&target, "mine").unwrap();
        assert!(matches!(
            write_new_file(&target, b"theirs", 0o644),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(fs::read_to_string(&target).unwrap(), "mine");
    }

    #[test]
    fn every_public_key_import_form() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let public = snakeoil(5).public_key();
        let raw = public.to_bytes();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();

        let mut ssh_blob = Vec::new();
        for part in [&b"ssh-ed25519"[..], &raw[..]] {
            ssh_blob.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            ssh_blob.extend_from_slice(part);
        }
        let ssh = format!(
            "ssh-ed25519 {} snakeoil@example\n",
            STANDARD.encode(&ssh_blob)
        );

        let mut minisign_blob = b"Ed".to_vec();
        minisign_blob.extend_from_slice(&[7; 8]);
        minisign_blob.extend_from_slice(&raw);
        let minisign_line = STANDARD.encode(&minisign_blob);
        let minisign =
            format!("untrusted comment: minisign public key 0707070707070707\n{minisign_line}\n");

        for (form, text) in [
            ("pem", public.to_spki_pem()),
            ("base64", STANDARD.encode(raw)),
            ("base64url", URL_SAFE_NO_PAD.encode(raw)),
            ("hex", hex.clone()),
            ("HEX", hex.to_uppercase()),
            ("ssh", ssh),
            ("minisign", minisign),
            ("minisign line", minisign_line),
        ] {
            let imported =
                PublicKey::from_text(&text).unwrap_or_else(|error| panic!("{form}: {error}"));
            assert_eq!(imported, public, "{form}");
        }
    }

    #[test]
    fn public_key_import_refusals_name_what_was_tried() {
        use base64::engine::general_purpose::STANDARD;
        let error = PublicKey::from_text("not a key at all").unwrap_err();
        assert!(error.to_string().contains("ssh-ed25519"), "{error}");
        assert!(matches!(
            PublicKey::from_text(&STANDARD.encode([1u8; 31])),
            Err(KeyError::UnrecognisedPublicKey { .. })
        ));
        assert!(matches!(
            PublicKey::from_text("ssh-rsa AAAAB3NzaC1yc2E= x"),
            Err(KeyError::InvalidPublicKey { form: "ssh", .. })
        ));
        // A blob whose inner algorithm name disagrees with the outer one.
        let mut blob = Vec::new();
        for part in [&b"ssh-rsa"[..], &[9u8; 32][..]] {
            blob.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            blob.extend_from_slice(part);
        }
        assert!(matches!(
            PublicKey::from_text(&format!("ssh-ed25519 {}", STANDARD.encode(&blob))),
            Err(KeyError::InvalidPublicKey { form: "ssh", .. })
        ));
        // Truncated length prefix claiming more than the blob holds.
        let truncated = STANDARD.encode([0, 0, 0xff, 0xff, b's']);
        assert!(PublicKey::from_text(&format!("ssh-ed25519 {truncated}")).is_err());
        // A minisign blob with another algorithm.
        let mut minisign = b"ED".to_vec();
        minisign.extend_from_slice(&[0; 40]);
        assert!(PublicKey::from_text(&STANDARD.encode(&minisign)).is_err());
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            PublicKey::from_text(&STANDARD.encode(identity)),
            Err(KeyError::WeakKey)
        ));
    }

    #[test]
    fn openssl_keys_load_sign_and_have_the_documented_key_id() {
        if !openssl_available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("snakeoil.key");
        let pub_path = dir.path().join("snakeoil.pub");
        let der_path = dir.path().join("snakeoil.pub.der");
        let run = |args: &[&str]| {
            let status = Command::new("openssl").args(args).status().unwrap();
            assert!(status.success(), "openssl {args:?}");
        };
        let key = key_path.to_str().unwrap();
        run(&["genpkey", "-algorithm", "ed25519", "-out", key]);
        run(&[
            "pkey",
            "-in",
            key,
            "-pubout",
            "-out",
            pub_path.to_str().unwrap(),
        ]);
        run(&[
            "pkey",
            "-pubin",
            "-in",
            pub_path.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der_path.to_str().unwrap(),
        ]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let secret = read_secret_key(&key_path).unwrap();
        let public = read_public_key(&pub_path).unwrap();
        assert_eq!(secret.public_key(), public);
        assert!(public.verify(b"snakeoil", &secret.sign(b"snakeoil")));
        // Our PEM is byte-identical to OpenSSL's, and the key id is sha256 of its DER.
        assert_eq!(public.to_spki_pem(), fs::read_to_string(&pub_path).unwrap());
        let der = fs::read(&der_path).unwrap();
        let expected: String = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(public.key_id().to_string(), expected);

        // And OpenSSL reads the secret keys we write, deriving the same public key.
        let ours = dir.path().join("ours");
        write_key_pair(&ours).unwrap();
        let output = Command::new("openssl")
            .args([
                "pkey",
                "-in",
                dir.path().join("ours.key").to_str().unwrap(),
                "-pubout",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            fs::read_to_string(dir.path().join("ours.pub")).unwrap()
        );
    }
}
