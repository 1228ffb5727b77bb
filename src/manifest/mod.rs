//! Manifests (placeholder while the manifest module is written).

pub mod time;
