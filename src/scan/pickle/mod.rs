//! STUB (replaced by the pickle emulator).
#![allow(dead_code, unused_variables)]
use crate::finding::Finding;
#[derive(Debug, Clone)]
pub struct PickleLimits {
    pub max_opcodes: u64,
    pub max_memo: usize,
    pub max_stack: usize,
    pub max_nesting: u32,
    pub max_streams: u32,
    pub max_globals: usize,
    pub deadline: Option<std::time::Instant>,
}
impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits {
            max_opcodes: 1,
            max_memo: 1,
            max_stack: 1,
            max_nesting: 1,
            max_streams: 1,
            max_globals: 1,
            deadline: None,
        }
    }
}
#[derive(Debug, Clone)]
pub struct Global {
    pub module: String,
    pub name: String,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalClass {
    TensorOnly,
    Dangerous,
}
#[derive(Debug, Clone)]
pub struct ImportedGlobal {
    pub global: Global,
    pub class: GlobalClass,
    pub offset: u64,
    pub opcode: &'static str,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Complete,
    Truncated { offset: u64 },
    Invalid { offset: u64 },
}
#[derive(Debug, Clone)]
pub struct PickleAnalysis {
    pub is_pickle: bool,
    pub streams: u32,
    pub protocol: Option<u8>,
    pub globals: Vec<ImportedGlobal>,
    pub calls: u64,
    pub consumed: u64,
    pub end: End,
    pub findings: Vec<Finding>,
}
pub fn analyse(bytes: &[u8], limits: &PickleLimits) -> PickleAnalysis {
    PickleAnalysis {
        is_pickle: bytes.first() == Some(&0x80),
        streams: 0,
        protocol: None,
        globals: vec![],
        calls: 0,
        consumed: 0,
        end: End::Complete,
        findings: vec![],
    }
}
