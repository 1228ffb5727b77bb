//! Verified artifacts: bytes held in memory whose SHA-256 was checked against a pin before
//! anything else could see them.
//!
//! A [`VerifiedArtifact`] is the only thing the sandbox runs, and this module is the only place
//! that makes one: from an [`Authenticated`] manifest (signature, expiry and rollback already
//! checked) or from a digest the operator pinned on the command line. The bytes that were
//! hashed are the bytes that are kept, so nothing can change between the check and the use.
//! This module reads no files; the caller hands over the bytes it read.

use crate::digest::{sha256_bytes, Sha256};
use crate::finding::{quote, Code, Finding};
use crate::manifest::DeclaredFormat;
use crate::verify::Authenticated;

/// Bytes whose digest matched their pin.
#[derive(Debug, Clone)]
pub struct VerifiedArtifact {
    label: String,
    bytes: Vec<u8>,
    sha256: Sha256,
    pinned_by: PinnedBy,
}

/// What vouched for an artifact's digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PinnedBy {
    /// A file entry of an authenticated manifest.
    Manifest { name: String, version: u64 },
    /// A digest given by the operator (`--sha256`).
    OperatorDigest,
}

impl VerifiedArtifact {
    /// Checks `bytes` against the entry for `path` in an authenticated manifest, which must
    /// declare the file as `format`.
    pub fn from_manifest(
        authenticated: &Authenticated,
        path: &str,
        format: DeclaredFormat,
        bytes: Vec<u8>,
    ) -> Result<VerifiedArtifact, Box<Finding>> {
        let manifest = &authenticated.manifest;
        let Some(entry) = manifest.file(path) else {
            return Err(Box::new(Finding::new(
                Code::PluginUnpinned,
                format!(
                    "`{}` is not a file of manifest `{}` version {}",
                    quote(path),
                    manifest.name,
                    manifest.version
                ),
            )));
        };
        if entry.format != Some(format) {
            return Err(Box::new(Finding::new(
                Code::FormatMismatch,
                format!(
                    "manifest `{}` declares `{}` as {}, not {format}",
                    manifest.name,
                    quote(path),
                    entry.format.map_or("no format", DeclaredFormat::as_str)
                ),
            )));
        }
        let pinned_by = PinnedBy::Manifest {
            name: manifest.name.clone(),
            version: manifest.version,
        };
        if bytes.len() as u64 != entry.size {
            return Err(Box::new(
                Finding::new(
                    Code::PluginPinMismatch,
                    format!(
                        "`{}` is {} bytes but the manifest pins {} bytes; it was not started",
                        quote(path),
                        bytes.len(),
                        entry.size
                    ),
                )
                .with_mismatch(entry.size.to_string(), bytes.len().to_string()),
            ));
        }
        Self::checked(path.to_owned(), bytes, &entry.sha256, pinned_by)
    }

    /// Checks `bytes` against a digest the operator gave.
    pub fn from_pin(
        label: String,
        bytes: Vec<u8>,
        pin: &Sha256,
    ) -> Result<VerifiedArtifact, Box<Finding>> {
        Self::checked(label, bytes, pin, PinnedBy::OperatorDigest)
    }

    fn checked(
        label: String,
        bytes: Vec<u8>,
        pin: &Sha256,
        pinned_by: PinnedBy,
    ) -> Result<VerifiedArtifact, Box<Finding>> {
        let computed = sha256_bytes(&bytes);
        if computed != *pin {
            return Err(Box::new(
                Finding::new(
                    Code::PluginPinMismatch,
                    format!(
                        "`{}` does not have the pinned SHA-256; it was not started",
                        quote(&label)
                    ),
                )
                .with_mismatch(format!("sha256:{pin}"), format!("sha256:{computed}")),
            ));
        }
        Ok(VerifiedArtifact {
            label,
            bytes,
            sha256: computed,
            pinned_by,
        })
    }

    /// The manifest path or file name the bytes came from.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn sha256(&self) -> &Sha256 {
        &self.sha256
    }

    pub fn pinned_by(&self) -> &PinnedBy {
        &self.pinned_by
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_admits_only_its_bytes() {
        let bytes = b"\0asm\x01\0\0\0".to_vec();
        let pin = sha256_bytes(&bytes);
        let artifact = VerifiedArtifact::from_pin("p.wasm".into(), bytes.clone(), &pin).unwrap();
        assert_eq!(artifact.bytes(), &bytes[..]);
        assert_eq!(artifact.pinned_by(), &PinnedBy::OperatorDigest);

        let mut tampered = bytes;
        tampered.push(0);
        let finding = VerifiedArtifact::from_pin("p.wasm".into(), tampered, &pin).unwrap_err();
        assert_eq!(finding.code, Code::PluginPinMismatch);
        assert_eq!(finding.expected, Some(format!("sha256:{pin}")));
    }
}
