//! STUB (replaced by the zip walker).
#![allow(dead_code, unused_variables)]
use crate::finding::Finding;
use crate::scan::source::ReadAt;
#[derive(Debug, Clone)]
pub struct ZipLimits {
    pub max_members: usize,
    pub max_central_directory: u64,
    pub max_name_len: usize,
}
impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_members: 1,
            max_central_directory: 1,
            max_name_len: 1,
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Stored,
    Deflated,
    Bzip2,
    Lzma,
    Other(u16),
}
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub raw_name: Vec<u8>,
    pub method: Method,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
    pub data_offset: u64,
}
#[derive(Debug)]
pub struct ZipListing {
    pub members: Vec<Member>,
    pub findings: Vec<Finding>,
    pub prefix_len: u64,
}
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("i/o")]
    Io(#[from] std::io::Error),
}
#[derive(Debug)]
pub struct MemberBytes {
    pub bytes: Vec<u8>,
    pub findings: Vec<Finding>,
    pub complete: bool,
}
pub fn looks_like_zip(source: &dyn ReadAt) -> bool {
    false
}
pub fn list(source: &dyn ReadAt, limits: &ZipLimits) -> Result<ZipListing, ZipError> {
    Ok(ZipListing {
        members: vec![],
        findings: vec![],
        prefix_len: 0,
    })
}
pub fn read_member(
    source: &dyn ReadAt,
    member: &Member,
    max_output: u64,
) -> Result<MemberBytes, ZipError> {
    Ok(MemberBytes {
        bytes: vec![],
        findings: vec![],
        complete: true,
    })
}
pub fn read_member_prefix(
    source: &dyn ReadAt,
    member: &Member,
    max_output: u64,
) -> Result<MemberBytes, ZipError> {
    read_member(source, member, max_output)
}
