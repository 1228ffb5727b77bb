//! Element types and their ABI codes (the safetensors set, `docs/plugin-abi.md`).

/// An element type, with the code the ABI uses for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Bool = 1,
    U8 = 2,
    I8 = 3,
    U16 = 4,
    I16 = 5,
    F16 = 6,
    BF16 = 7,
    U32 = 8,
    I32 = 9,
    F32 = 10,
    U64 = 11,
    I64 = 12,
    F64 = 13,
}

impl DType {
    /// Every dtype, in code order.
    pub const ALL: [DType; 13] = [
        DType::Bool,
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::F16,
        DType::BF16,
        DType::U32,
        DType::I32,
        DType::F32,
        DType::U64,
        DType::I64,
        DType::F64,
    ];

    /// The ABI code.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The dtype of an ABI code, `None` for an unknown code.
    pub const fn from_code(code: u32) -> Option<DType> {
        Some(match code {
            1 => DType::Bool,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::F16,
            7 => DType::BF16,
            8 => DType::U32,
            9 => DType::I32,
            10 => DType::F32,
            11 => DType::U64,
            12 => DType::I64,
            13 => DType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The safetensors spelling (`F32`, `BOOL`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::U16 => "U16",
            DType::I16 => "I16",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::U32 => "U32",
            DType::I32 => "I32",
            DType::F32 => "F32",
            DType::U64 => "U64",
            DType::I64 => "I64",
            DType::F64 => "F64",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_the_abi_table() {
        for (i, dtype) in DType::ALL.iter().enumerate() {
            assert_eq!(dtype.code() as usize, i + 1);
            assert_eq!(DType::from_code(dtype.code()), Some(*dtype));
        }
        assert_eq!(DType::from_code(0), None);
        assert_eq!(DType::from_code(14), None);
        assert_eq!(DType::F32.size(), 4);
        assert_eq!(DType::BF16.size(), 2);
        assert_eq!(DType::F64.size(), 8);
        assert_eq!(DType::Bool.to_string(), "BOOL");
    }
}
