//! Tensor files that plugins read and produce: safetensors and NumPy `.npy`, parsed strictly
//! (through the scanner's own validators) and written atomically.
//!
//! This module owns the element types ([`DType`], numbered as plugin ABI v1 numbers them), the
//! borrowed [`Tensor`] view that the sandbox copies into guest memory without an intermediate
//! buffer, and the readers and writers of the two file formats. It runs nothing and decides
//! nothing: which plugin sees which tensor is the sandbox's and the CLI's business.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::digest::{HashingWriter, Sha256};
use crate::finding::quote;
use crate::scan::source::FileSource;
use crate::scan::{numpy, safetensors};

/// Most dimensions a tensor may have (plugin ABI v1).
pub const MAX_RANK: usize = 8;
/// Longest tensor name, in bytes (plugin ABI v1).
pub const MAX_NAME_BYTES: usize = 255;

/// Element types, with the codes plugin ABI v1 gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DType {
    Bool,
    U8,
    I8,
    U16,
    I16,
    F16,
    Bf16,
    U32,
    I32,
    F32,
    U64,
    I64,
    F64,
}

/// Every dtype in code order (code = index + 1).
const DTYPES: [DType; 13] = [
    DType::Bool,
    DType::U8,
    DType::I8,
    DType::U16,
    DType::I16,
    DType::F16,
    DType::Bf16,
    DType::U32,
    DType::I32,
    DType::F32,
    DType::U64,
    DType::I64,
    DType::F64,
];

impl DType {
    /// The ABI code (1 to 13).
    pub fn code(self) -> u32 {
        match self {
            DType::Bool => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::F16 => 6,
            DType::Bf16 => 7,
            DType::U32 => 8,
            DType::I32 => 9,
            DType::F32 => 10,
            DType::U64 => 11,
            DType::I64 => 12,
            DType::F64 => 13,
        }
    }

    pub fn from_code(code: u32) -> Option<DType> {
        let index = usize::try_from(code.checked_sub(1)?).ok()?;
        DTYPES.get(index).copied()
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The name safetensors headers use (`F32`, `BF16`...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::U16 => "U16",
            DType::I16 => "I16",
            DType::F16 => "F16",
            DType::Bf16 => "BF16",
            DType::U32 => "U32",
            DType::I32 => "I32",
            DType::F32 => "F32",
            DType::U64 => "U64",
            DType::I64 => "I64",
            DType::F64 => "F64",
        }
    }

    pub fn from_safetensors(name: &str) -> Option<DType> {
        DTYPES.into_iter().find(|dtype| dtype.as_str() == name)
    }

    /// The little-endian NumPy `descr`; bfloat16 has none.
    pub fn npy_descr(self) -> Option<&'static str> {
        Some(match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::U16 => "<u2",
            DType::I16 => "<i2",
            DType::F16 => "<f2",
            DType::Bf16 => return None,
            DType::U32 => "<u4",
            DType::I32 => "<i4",
            DType::F32 => "<f4",
            DType::U64 => "<u8",
            DType::I64 => "<i8",
            DType::F64 => "<f8",
        })
    }

    fn from_npy_descr(descr: &str) -> Option<DType> {
        // Single-byte types may be written with any byte-order mark.
        let descr = match descr.strip_prefix(['<', '|', '=']) {
            Some(rest) => rest,
            None if matches!(descr, ">b1" | ">u1" | ">i1") => descr.get(1..)?,
            None => return None,
        };
        DTYPES
            .into_iter()
            .find(|dtype| dtype.npy_descr().and_then(|d| d.get(1..)) == Some(descr))
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `product(shape) × size` bytes, or `None` on overflow.
pub fn byte_len(dtype: DType, shape: &[u64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |product, dim| product.checked_mul(*dim))?
        .checked_mul(dtype.size())
}

/// A tensor whose bytes live in memory or in a file; nothing is read until asked.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub shape: &'a [u64],
    pub data: TensorData<'a>,
}

/// Where a tensor's bytes are.
#[derive(Debug, Clone, Copy)]
pub enum TensorData<'a> {
    Memory(&'a [u8]),
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

impl TensorData<'_> {
    pub fn len(&self) -> u64 {
        match self {
            TensorData::Memory(bytes) => bytes.len() as u64,
            TensorData::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the bytes into `destination`, which must be exactly [`len`](Self::len) long.
    pub fn fill(&self, destination: &mut [u8]) -> io::Result<()> {
        if destination.len() as u64 != self.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "destination length differs from the tensor's",
            ));
        }
        match self {
            TensorData::Memory(bytes) => {
                destination.copy_from_slice(bytes);
                Ok(())
            }
            TensorData::File { file, offset, .. } => read_exact_at(file, destination, *offset),
        }
    }

    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            TensorData::Memory(bytes) => out.write_all(bytes),
            TensorData::File { file, offset, len } => {
                let mut reader = *file;
                reader.seek(SeekFrom::Start(*offset))?;
                let copied = io::copy(&mut reader.take(*len), out)?;
                if copied == *len {
                    Ok(())
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                }
            }
        }
    }
}

/// The file formats tensors are read from and written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorFormat {
    Safetensors,
    Npy,
}

impl TensorFormat {
    /// The format an output path asks for: `.npy` is NumPy, anything else safetensors.
    pub fn for_output(path: &Path) -> TensorFormat {
        match path.extension() {
            Some(extension) if extension.eq_ignore_ascii_case("npy") => TensorFormat::Npy,
            _ => TensorFormat::Safetensors,
        }
    }
}

/// A tensor file that passed its format's validation, open for reading its tensors.
#[derive(Debug)]
pub struct TensorFile {
    pub path: PathBuf,
    pub format: TensorFormat,
    file: File,
    tensors: Vec<StoredTensor>,
}

#[derive(Debug)]
struct StoredTensor {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    offset: u64,
    len: u64,
}

/// Why a tensor file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    #[error("could not read `{}`", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("could not write `{}`", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("`{}` is not a tensor file modelvet can use: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("`{}`: {reason}", path.display())]
    Unwritable { path: PathBuf, reason: String },
}

impl TensorFile {
    /// Opens `path`, tells safetensors from `.npy` by content and validates it strictly. A
    /// `.npy` holds one tensor, named `name_for_npy`.
    pub fn open(path: &Path, name_for_npy: &str) -> Result<TensorFile, TensorError> {
        let read_error = |source| TensorError::Read {
            path: path.to_owned(),
            source,
        };
        let invalid = |reason: String| TensorError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(read_error)?;
        let source = FileSource::new(file.try_clone().map_err(read_error)?).map_err(read_error)?;
        let mut head = [0u8; 6];
        let head_len =
            usize::try_from(crate::scan::source::ReadAt::size(&source).min(6)).unwrap_or_default();
        let head = head.get_mut(..head_len).unwrap_or_default();
        crate::scan::source::ReadAt::read_exact_at(&source, head, 0).map_err(read_error)?;
        if head == b"\x93NUMPY" {
            let check = numpy::check(&source).map_err(read_error)?;
            if let Some(finding) = check.findings.first() {
                return Err(invalid(finding.message.clone()));
            }
            let header = check
                .header
                .ok_or_else(|| invalid("the .npy header could not be read".into()))?;
            if header.fortran_order {
                return Err(invalid(
                    "the array is in Fortran order; save it C-contiguous".into(),
                ));
            }
            let dtype = DType::from_npy_descr(&header.descr).ok_or_else(|| {
                invalid(format!(
                    "dtype `{}` is not a little-endian numeric or bool type",
                    quote(&header.descr)
                ))
            })?;
            let len = byte_len(dtype, &header.shape)
                .ok_or_else(|| invalid("the shape overflows".into()))?;
            let size = crate::scan::source::ReadAt::size(&source);
            if header.data_offset.checked_add(len) != Some(size) {
                return Err(invalid(format!(
                    "the payload is {} bytes, expected {len} for shape {:?}",
                    size.saturating_sub(header.data_offset),
                    header.shape
                )));
            }
            let tensors = vec![StoredTensor {
                name: name_for_npy.to_owned(),
                dtype,
                shape: header.shape,
                offset: header.data_offset,
                len,
            }];
            return Self::checked(path, TensorFormat::Npy, file, tensors);
        }
        let report = safetensors::check(&source).map_err(read_error)?;
        if let Some(finding) = report.findings.first() {
            return Err(invalid(finding.message.clone()));
        }
        let summary = report
            .summary
            .ok_or_else(|| invalid("neither safetensors nor .npy".into()))?;
        // The scanner checked that the tensors tile the data region inside the file, so these
        // cannot overflow; checked anyway, since the numbers come from the file.
        let data_start = summary.header_len.saturating_add(8);
        let mut tensors = Vec::with_capacity(summary.layout.len());
        for layout in summary.layout {
            let dtype = DType::from_safetensors(&layout.dtype).ok_or_else(|| {
                invalid(format!(
                    "tensor `{}` has dtype {}, which plugins do not take",
                    quote(&layout.name),
                    layout.dtype
                ))
            })?;
            let (Some(offset), Some(len)) = (
                data_start.checked_add(layout.start),
                layout.end.checked_sub(layout.start),
            ) else {
                return Err(invalid(format!(
                    "tensor `{}` has offsets outside the file",
                    quote(&layout.name)
                )));
            };
            tensors.push(StoredTensor {
                name: layout.name,
                dtype,
                shape: layout.shape,
                offset,
                len,
            });
        }
        Self::checked(path, TensorFormat::Safetensors, file, tensors)
    }

    fn checked(
        path: &Path,
        format: TensorFormat,
        file: File,
        tensors: Vec<StoredTensor>,
    ) -> Result<TensorFile, TensorError> {
        for tensor in &tensors {
            if let Err(reason) = check_tensor(&tensor.name, &tensor.shape) {
                return Err(TensorError::Invalid {
                    path: path.to_owned(),
                    reason,
                });
            }
        }
        Ok(TensorFile {
            path: path.to_owned(),
            format,
            file,
            tensors,
        })
    }

    /// The SHA-256 of the whole file, read through the handle that was validated (so it is
    /// the file the tensors come from, even if the path has been replaced since).
    pub fn sha256(&self) -> Result<Sha256, TensorError> {
        let read_error = |source| TensorError::Read {
            path: self.path.clone(),
            source,
        };
        let mut reader = &self.file;
        reader.seek(SeekFrom::Start(0)).map_err(read_error)?;
        crate::digest::sha256_reader(reader).map_err(read_error)
    }

    /// The tensors, in the file's order.
    pub fn tensors(&self) -> Vec<Tensor<'_>> {
        self.tensors
            .iter()
            .map(|tensor| Tensor {
                name: &tensor.name,
                dtype: tensor.dtype,
                shape: &tensor.shape,
                data: TensorData::File {
                    file: &self.file,
                    offset: tensor.offset,
                    len: tensor.len,
                },
            })
            .collect()
    }
}

/// The ABI's rules for a tensor name and shape, as a reason when broken.
pub fn check_tensor(name: &str, shape: &[u64]) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "tensor name `{}` is {} bytes; names must be 1 to {MAX_NAME_BYTES} bytes",
            quote(name),
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "tensor name `{}` contains control characters",
            quote(name)
        ));
    }
    if shape.len() > MAX_RANK {
        return Err(format!(
            "tensor `{}` has {} dimensions, more than {MAX_RANK}",
            quote(name),
            shape.len()
        ));
    }
    Ok(())
}

/// Writes `tensors` to `path` in `format` through a temporary file in the same directory, a
/// flush to disk and a rename: `path` never holds a partial file.
/// Returns the SHA-256 of the bytes written (the file's content).
pub fn write_tensor_file(
    path: &Path,
    format: TensorFormat,
    tensors: &[Tensor<'_>],
) -> Result<Sha256, TensorError> {
    let unwritable = |reason: String| TensorError::Unwritable {
        path: path.to_owned(),
        reason,
    };
    let header = match format {
        TensorFormat::Safetensors => safetensors_header(tensors).map_err(unwritable)?,
        TensorFormat::Npy => match tensors {
            [tensor] => npy_header(tensor).map_err(unwritable)?,
            _ => {
                return Err(unwritable(format!(
                    "a .npy file holds one tensor, and there are {}; write safetensors instead",
                    tensors.len()
                )))
            }
        },
    };
    let write_error = |source| TensorError::Write {
        path: path.to_owned(),
        source,
    };
    // Outputs may be derived from patient data: private to the user, as before.
    let sha256 = crate::atomic::write_with(path, crate::atomic::WriteOptions::PRIVATE, |file| {
        let mut out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
        out.write_all(&header)?;
        for tensor in sorted_for_layout(format, tensors) {
            tensor.data.write_to(&mut out)?;
        }
        out.flush()?;
        Ok(out.finish().1)
    })
    .map_err(write_error)?;
    Ok(sha256)
}

/// Safetensors data is laid out in name order, the order of the header's keys.
fn sorted_for_layout<'t, 'a>(
    format: TensorFormat,
    tensors: &'t [Tensor<'a>],
) -> Vec<&'t Tensor<'a>> {
    let mut sorted: Vec<&Tensor> = tensors.iter().collect();
    if format == TensorFormat::Safetensors {
        sorted.sort_by(|a, b| a.name.cmp(b.name));
    }
    sorted
}

fn safetensors_header(tensors: &[Tensor<'_>]) -> Result<Vec<u8>, String> {
    let mut json = String::from("{");
    let mut offset = 0u64;
    let mut previous: Option<&str> = None;
    for (index, tensor) in sorted_for_layout(TensorFormat::Safetensors, tensors)
        .into_iter()
        .enumerate()
    {
        if previous == Some(tensor.name) {
            return Err(format!("tensor `{}` appears twice", quote(tensor.name)));
        }
        previous = Some(tensor.name);
        check_tensor(tensor.name, tensor.shape)?;
        let len = tensor.data.len();
        if byte_len(tensor.dtype, tensor.shape) != Some(len) {
            return Err(format!(
                "tensor `{}` has {len} bytes, which is not {} × {:?}",
                quote(tensor.name),
                tensor.dtype,
                tensor.shape
            ));
        }
        let end = offset
            .checked_add(len)
            .ok_or_else(|| "the tensors add up to more than 2^64 bytes".to_owned())?;
        if index > 0 {
            json.push(',');
        }
        let name = serde_json::to_string(tensor.name).map_err(|error| error.to_string())?;
        json.push_str(&format!(
            "{name}:{{\"dtype\":\"{}\",\"shape\":{:?},\"data_offsets\":[{offset},{end}]}}",
            tensor.dtype, tensor.shape
        ));
        offset = end;
    }
    json.push('}');
    // Pad with spaces so that tensor data starts 8-byte aligned, as the reference writer does.
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut header = (json.len() as u64).to_le_bytes().to_vec();
    header.extend_from_slice(json.as_bytes());
    Ok(header)
}

fn npy_header(tensor: &Tensor<'_>) -> Result<Vec<u8>, String> {
    let descr = tensor.dtype.npy_descr().ok_or_else(|| {
        format!(
            "NumPy has no {} dtype; write safetensors instead",
            tensor.dtype
        )
    })?;
    if byte_len(tensor.dtype, tensor.shape) != Some(tensor.data.len()) {
        return Err(format!(
            "tensor `{}` has {} bytes, which is not {} × {:?}",
            quote(tensor.name),
            tensor.data.len(),
            tensor.dtype,
            tensor.shape
        ));
    }
    let dims: Vec<String> = tensor.shape.iter().map(u64::to_string).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Version 1.0: magic (6) + version (2) + length (2) + dict + padding + newline, a multiple
    // of 64 bytes in all.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let len = u16::try_from(dict.len()).map_err(|_| "the .npy header is too long".to_owned())?;
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&len.to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    Ok(header)
}

fn read_exact_at(file: &File, destination: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, destination, offset)
    }
    #[cfg(not(unix))]
    {
        let mut reader = file;
        reader.seek(SeekFrom::Start(offset))?;
        reader.read_exact(destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_codes_round_trip() {
        for (index, dtype) in DTYPES.into_iter().enumerate() {
            assert_eq!(dtype.code() as usize, index + 1);
            assert_eq!(DType::from_code(dtype.code()), Some(dtype));
            assert_eq!(DType::from_safetensors(dtype.as_str()), Some(dtype));
            if let Some(descr) = dtype.npy_descr() {
                assert_eq!(DType::from_npy_descr(descr), Some(dtype));
            }
        }
        assert_eq!(DType::from_code(0), None);
        assert_eq!(DType::from_code(14), None);
        assert_eq!(DType::from_npy_descr(">f4"), None);
        assert_eq!(DType::from_npy_descr("|O"), None);
        assert_eq!(DType::from_npy_descr("=f4"), Some(DType::F32));
    }

    #[test]
    fn byte_len_checks_overflow() {
        assert_eq!(byte_len(DType::F32, &[2, 3]), Some(24));
        assert_eq!(byte_len(DType::F64, &[]), Some(8));
        assert_eq!(byte_len(DType::F32, &[u64::MAX, 2]), None);
    }

    #[test]
    fn written_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..24).collect();
        let b = [1u8, 0, 1];
        let tensors = [
            Tensor {
                name: "zeta",
                dtype: DType::F32,
                shape: &[2, 3],
                data: TensorData::Memory(&a),
            },
            Tensor {
                name: "alpha",
                dtype: DType::Bool,
                shape: &[3],
                data: TensorData::Memory(&b),
            },
        ];
        let path = dir.path().join("out.safetensors");
        write_tensor_file(&path, TensorFormat::Safetensors, &tensors).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(crate::scan::safetensors::check(&bytes)
            .unwrap()
            .findings
            .is_empty());
        let file = TensorFile::open(&path, "unused").unwrap();
        let read = file.tensors();
        assert_eq!(read.len(), 2);
        for (name, expected) in [("alpha", &b[..]), ("zeta", &a[..])] {
            let tensor = read.iter().find(|t| t.name == name).unwrap();
            let mut copy = vec![0; tensor.data.len() as usize];
            tensor.data.fill(&mut copy).unwrap();
            assert_eq!(copy, expected);
        }

        let npy = dir.path().join("out.npy");
        write_tensor_file(&npy, TensorFormat::Npy, &tensors[..1]).unwrap();
        let file = TensorFile::open(&npy, "image").unwrap();
        let [tensor] = file.tensors()[..] else {
            panic!("one tensor expected")
        };
        assert_eq!(
            (tensor.name, tensor.dtype, tensor.shape),
            ("image", DType::F32, &[2u64, 3][..])
        );
        assert!(write_tensor_file(&npy, TensorFormat::Npy, &tensors).is_err());
    }

    #[test]
    fn duplicate_or_inconsistent_outputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.safetensors");
        let data = [0u8; 4];
        let tensor = Tensor {
            name: "x",
            dtype: DType::F32,
            shape: &[1],
            data: TensorData::Memory(&data),
        };
        assert!(write_tensor_file(&path, TensorFormat::Safetensors, &[tensor, tensor]).is_err());
        let wrong = Tensor {
            shape: &[2],
            ..tensor
        };
        assert!(write_tensor_file(&path, TensorFormat::Safetensors, &[wrong]).is_err());
        assert!(!path.exists());
    }
}
