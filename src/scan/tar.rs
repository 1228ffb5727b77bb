//! STUB (replaced by the tar walker).
#![allow(dead_code, unused_variables)]
use crate::finding::Finding;
use crate::scan::source::ReadAt;
#[derive(Debug, Clone)]
pub struct TarLimits {
    pub max_members: usize,
    pub max_header_bytes: u64,
}
impl Default for TarLimits {
    fn default() -> Self {
        TarLimits {
            max_members: 1,
            max_header_bytes: 1,
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    File,
    Directory,
    Symlink,
    Hardlink,
    Other(u8),
}
#[derive(Debug, Clone)]
pub struct TarMember {
    pub name: String,
    pub kind: TarKind,
    pub size: u64,
    pub data_offset: u64,
}
#[derive(Debug)]
pub struct TarListing {
    pub members: Vec<TarMember>,
    pub findings: Vec<Finding>,
}
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("i/o")]
    Io(#[from] std::io::Error),
}
pub fn looks_like_tar(source: &dyn ReadAt) -> bool {
    false
}
pub fn list(source: &dyn ReadAt, limits: &TarLimits) -> Result<TarListing, TarError> {
    Ok(TarListing {
        members: vec![],
        findings: vec![],
    })
}
