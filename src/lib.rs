//! modelvet: take a machine-learning model from the internet and run it locally, safely.
//!
//! The library never prints and never exits; it returns values that the `modelvet` binary
//! renders. Modules are the architecture and depend on each other in one direction only:
//!
//! ```text
//! atomic    whole-file writes through an O_EXCL temporary file and a rename
//! error     rendering of error chains
//! finding   coded findings shared by every checker
//! digest    streaming, parallel SHA-256; the Sha256 newtype
//! manifest  manifest types, strict parsing, safe relative paths, timestamps; no I/O
//! trust     keys, DSSE envelopes, trust policies and thresholds, rollback state
//! scan      format sniffing by content; one module per format; findings, never verdicts
//! verify    signature -> manifest -> expiry -> rollback -> files -> digests -> scan
//! fetch     authenticated downloads: sources, transfers, partial area, placement, cache
//! import    draft manifests from sha256sum listings and MONAI bundles (unsigned)
//! tensor    tensor files for plugins (safetensors, .npy): strict reading, atomic writing
//! sandbox   wasmtime engine, limits, plugin ABI v1; runs only verified plugins
//! pipeline  chains of plugins over tensor files, stage to stage without copies
//! registry  every manifest of a model registry at once: parallel, sharded, against a baseline
//! policy    pure function: findings + options -> verdict
//! report    the report data model and its renderers (human, json)
//! receipt   provenance receipts of verify/fetch/run results: building, strict parsing, checks
//! ```
#![forbid(unsafe_code)]

pub mod atomic;
pub mod digest;
pub mod error;
pub mod fetch;
pub mod finding;
pub mod import;
pub mod manifest;
pub mod pipeline;
pub mod policy;
pub mod receipt;
pub mod registry;
pub mod report;
pub mod sandbox;
pub mod scan;
pub mod tensor;
pub mod trust;
pub mod verify;
pub mod yaml;

#[cfg(test)]
mod testing;
