//! Input and output tensors: checked views over guest memory and owned output buffers.
//!
//! A [`TensorView`] is what the SDK builds from one host descriptor after checking it; it
//! lends the input's bytes mutably, so a plugin can transform an input in place and hand the
//! same memory back as an output ([`OutputTensor::reuse_f32`]). An [`OutputTensor`] owns or
//! borrows its bytes; the wasm glue emits their address and then leaks the outputs, so the
//! bytes stay untouched until the host reads them after `modelvet_process` returns.

use crate::dtype::DType;
use crate::error::PluginError;
use crate::raw;

/// Longest tensor name the ABI allows, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Highest rank the ABI allows.
pub const MAX_RANK: usize = 8;
/// Most outputs one run may emit.
pub const MAX_OUTPUTS: usize = 256;

/// The number of elements of `shape` (1 for rank 0), `None` if it overflows `usize`.
pub fn element_count(shape: &[u64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &dim| {
        usize::try_from(dim)
            .ok()
            .and_then(|dim| acc.checked_mul(dim))
    })
}

fn checked_byte_len(dtype: DType, shape: &[u64]) -> Option<usize> {
    element_count(shape).and_then(|n| n.checked_mul(dtype.size()))
}

/// One input tensor: its name, dtype, shape and bytes (row-major, little-endian).
#[derive(Debug)]
pub struct TensorView<'a> {
    name: &'a str,
    dtype: DType,
    shape: Vec<u64>,
    data: &'a mut [u8],
}

impl<'a> TensorView<'a> {
    /// A view over `data`, which must be exactly `product(shape) × dtype.size()` bytes; the
    /// name must be 1–255 bytes without control characters and the rank at most 8.
    pub fn new(
        name: &'a str,
        dtype: DType,
        shape: Vec<u64>,
        data: &'a mut [u8],
    ) -> Result<Self, PluginError> {
        check_name(name).map_err(PluginError::input)?;
        check_shape(dtype, &shape, data.len())
            .map_err(|m| PluginError::input(format!("tensor `{}`: {m}", name.escape_debug())))?;
        Ok(TensorView {
            name,
            dtype,
            shape,
            data,
        })
    }

    pub fn name(&self) -> &str {
        self.name
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The number of elements (checked at construction, so it cannot overflow).
    pub fn element_count(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    pub fn bytes(&self) -> &[u8] {
        self.data
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.data
    }

    /// Gives up the view and returns its bytes, for reuse as an output.
    pub fn into_bytes(self) -> &'a mut [u8] {
        self.data
    }

    /// The elements as f32, if the dtype is F32 and the bytes are 4-byte aligned (the host
    /// aligns data to 16 bytes, so in a plugin this is `Some` for every F32 input).
    pub fn as_f32(&self) -> Option<&[f32]> {
        (self.dtype == DType::F32).then(|| raw::f32_slice(self.data))?
    }

    /// As [`as_f32`](Self::as_f32), mutable: for in-place kernels.
    pub fn as_f32_mut(&mut self) -> Option<&mut [f32]> {
        (self.dtype == DType::F32).then(|| raw::f32_slice_mut(self.data))?
    }

    /// Gives up the view for its f32 elements, to transform in place and return with
    /// [`OutputTensor::reuse_f32`]; hands the view back if the dtype is not F32 or the
    /// bytes are not aligned.
    pub fn into_f32_mut(self) -> Result<&'a mut [f32], TensorView<'a>> {
        if self.dtype != DType::F32 {
            return Err(self);
        }
        let TensorView {
            name,
            dtype,
            shape,
            data,
        } = self;
        raw::f32_slice_mut_or_back(data).map_err(|data| TensorView {
            name,
            dtype,
            shape,
            data,
        })
    }

    /// A copy of the elements as f32 for any alignment, if the dtype is F32.
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        (self.dtype == DType::F32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|b| <[u8; 4]>::try_from(b).map_or(0.0, f32::from_le_bytes))
                .collect()
        })
    }
}

/// One output tensor. Build it with a constructor (which checks name and size), return it
/// from the process function, and the SDK emits it.
#[derive(Debug)]
pub struct OutputTensor<'a> {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    data: OutputData<'a>,
}

#[derive(Debug)]
enum OutputData<'a> {
    Bytes(Vec<u8>),
    F32(Vec<f32>),
    BorrowedBytes(&'a mut [u8]),
    BorrowedF32(&'a mut [f32]),
}

impl<'a> OutputTensor<'a> {
    /// An output that owns raw little-endian bytes of any dtype.
    pub fn from_bytes(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<u64>,
        data: Vec<u8>,
    ) -> Result<Self, PluginError> {
        Self::checked(name.into(), dtype, shape, OutputData::Bytes(data))
    }

    /// A U8 output (a label mask, say).
    pub fn from_u8(
        name: impl Into<String>,
        shape: Vec<u64>,
        data: Vec<u8>,
    ) -> Result<Self, PluginError> {
        Self::checked(name.into(), DType::U8, shape, OutputData::Bytes(data))
    }

    /// An F32 output that owns its elements.
    pub fn from_f32(
        name: impl Into<String>,
        shape: Vec<u64>,
        data: Vec<f32>,
    ) -> Result<Self, PluginError> {
        Self::checked(name.into(), DType::F32, shape, OutputData::F32(data))
    }

    /// An F32 output that reuses an input's memory (see [`TensorView::into_f32_mut`]).
    pub fn reuse_f32(
        name: impl Into<String>,
        shape: Vec<u64>,
        data: &'a mut [f32],
    ) -> Result<Self, PluginError> {
        Self::checked(
            name.into(),
            DType::F32,
            shape,
            OutputData::BorrowedF32(data),
        )
    }

    /// An output of any dtype that reuses an input's bytes (see [`TensorView::into_bytes`]).
    pub fn reuse_bytes(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<u64>,
        data: &'a mut [u8],
    ) -> Result<Self, PluginError> {
        Self::checked(name.into(), dtype, shape, OutputData::BorrowedBytes(data))
    }

    fn checked(
        name: String,
        dtype: DType,
        shape: Vec<u64>,
        data: OutputData<'a>,
    ) -> Result<Self, PluginError> {
        let out = OutputTensor {
            name,
            dtype,
            shape,
            data,
        };
        check_name(&out.name).map_err(PluginError::output)?;
        check_shape(dtype, &out.shape, out.bytes().len()).map_err(|m| {
            PluginError::output(format!("tensor `{}`: {m}", out.name.escape_debug()))
        })?;
        Ok(out)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The bytes the host will read (little-endian).
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            OutputData::Bytes(v) => v,
            OutputData::F32(v) => raw::f32_bytes(v),
            OutputData::BorrowedBytes(v) => v,
            OutputData::BorrowedF32(v) => raw::f32_bytes(v),
        }
    }

    /// The elements as f32, if the dtype is F32 (always aligned: outputs own typed buffers).
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            OutputData::F32(v) => Some(v),
            OutputData::BorrowedF32(v) => Some(v),
            OutputData::Bytes(_) | OutputData::BorrowedBytes(_) => {
                (self.dtype == DType::F32).then(|| raw::f32_slice(self.bytes()))?
            }
        }
    }
}

/// Checks what the host will check of the whole output list, so the plugin fails with its
/// own message instead of `plugin-bad-output`.
pub(crate) fn check_outputs(outputs: &[OutputTensor<'_>]) -> Result<(), PluginError> {
    if outputs.is_empty() {
        return Err(PluginError::output("the plugin returned no output tensor"));
    }
    if outputs.len() > MAX_OUTPUTS {
        return Err(PluginError::output(format!(
            "`{}` output tensors, at most `{MAX_OUTPUTS}` allowed",
            outputs.len()
        )));
    }
    for (i, out) in outputs.iter().enumerate() {
        if outputs
            .iter()
            .take(i)
            .any(|earlier| earlier.name == out.name)
        {
            return Err(PluginError::output(format!(
                "output name `{}` is used twice",
                out.name.escape_debug()
            )));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "tensor name `{}` must be 1 to {MAX_NAME_LEN} bytes, is `{}`",
            name.escape_debug(),
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "tensor name `{}` contains a control character",
            name.escape_debug()
        ));
    }
    Ok(())
}

fn check_shape(dtype: DType, shape: &[u64], data_len: usize) -> Result<(), String> {
    if shape.len() > MAX_RANK {
        return Err(format!("rank `{}` is above `{MAX_RANK}`", shape.len()));
    }
    match checked_byte_len(dtype, shape) {
        Some(expected) if expected == data_len => Ok(()),
        Some(expected) => Err(format!(
            "shape {shape:?} of {dtype} needs `{expected}` bytes, data has `{data_len}`"
        )),
        None => Err(format!("shape {shape:?} of {dtype} overflows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn element_count_is_checked() {
        assert_eq!(element_count(&[]), Some(1));
        assert_eq!(element_count(&[2, 3, 4]), Some(24));
        assert_eq!(element_count(&[0, u64::MAX]), Some(0));
        assert_eq!(element_count(&[u64::MAX, 2]), None);
    }

    #[test]
    fn views_check_names_and_sizes() {
        let mut data = f32_bytes(&[1.0, 2.0]);
        assert!(TensorView::new("x", DType::F32, vec![2], &mut data).is_ok());
        assert!(TensorView::new("x", DType::F32, vec![3], &mut data).is_err());
        assert!(TensorView::new("", DType::F32, vec![2], &mut data).is_err());
        assert!(TensorView::new("a\u{1b}b", DType::F32, vec![2], &mut data).is_err());
        assert!(TensorView::new(&"n".repeat(256), DType::F32, vec![2], &mut data).is_err());
        assert!(TensorView::new("x", DType::F32, vec![1; 9], &mut []).is_err());
        assert!(TensorView::new("x", DType::F32, vec![u64::MAX, 2], &mut data).is_err());
        let err = TensorView::new("x", DType::U16, vec![3], &mut data).unwrap_err();
        assert_eq!(
            err,
            PluginError::input("tensor `x`: shape [3] of U16 needs `6` bytes, data has `8`")
        );
    }

    #[test]
    fn typed_access_checks_dtype_and_alignment() {
        let mut backing = [0u8; 16];
        let skip = (4 - backing.as_ptr() as usize % 4) % 4;
        let bytes = &mut backing[skip..skip + 12];
        bytes[..4].copy_from_slice(&1.5f32.to_le_bytes());
        bytes[4..8].copy_from_slice(&(-2.0f32).to_le_bytes());
        let mut view = TensorView::new("x", DType::F32, vec![2], &mut bytes[..8]).unwrap();
        assert_eq!(view.as_f32(), Some(&[1.5, -2.0][..]));
        view.as_f32_mut().unwrap()[0] = 3.0;
        assert_eq!(view.to_f32_vec(), Some(vec![3.0, -2.0]));
        let floats = view.into_f32_mut().unwrap();
        assert_eq!(floats, &[3.0, -2.0]);

        let misaligned = &mut backing[skip + 1..skip + 9];
        let view = TensorView::new("x", DType::F32, vec![2], misaligned).unwrap();
        assert_eq!(view.as_f32(), None);
        assert_eq!(view.to_f32_vec().map(|v| v.len()), Some(2));
        let view = view.into_f32_mut().unwrap_err();
        assert_eq!(view.shape(), &[2]);

        let mut raw_u8 = [1u8, 2];
        let view = TensorView::new("m", DType::U8, vec![2], &mut raw_u8).unwrap();
        assert_eq!(view.as_f32(), None);
        assert_eq!(view.to_f32_vec(), None);
        assert_eq!(view.element_count(), 2);
    }

    #[test]
    fn outputs_check_and_expose_bytes() {
        let out = OutputTensor::from_f32("y", vec![2], vec![1.0, 0.5]).unwrap();
        assert_eq!(out.bytes(), f32_bytes(&[1.0, 0.5]).as_slice());
        assert_eq!(out.as_f32(), Some(&[1.0, 0.5][..]));
        assert!(OutputTensor::from_u8("m", vec![3], vec![0; 2]).is_err());
        assert!(OutputTensor::from_u8("", vec![2], vec![0; 2]).is_err());
        let mut reused = [2.0f32, 4.0];
        let out = OutputTensor::reuse_f32("r", vec![1, 2], &mut reused).unwrap();
        assert_eq!(out.bytes(), f32_bytes(&[2.0, 4.0]).as_slice());
        let out = OutputTensor::from_bytes("b", DType::F32, vec![1], f32_bytes(&[9.0])).unwrap();
        assert_eq!(out.dtype(), DType::F32);
        assert_eq!(out.shape(), &[1]);
        assert_eq!(out.name(), "b");
    }

    #[test]
    fn output_lists_need_one_to_256_unique_names() {
        assert!(check_outputs(&[]).is_err());
        let a = || OutputTensor::from_u8("a", vec![], vec![0]).unwrap();
        let b = OutputTensor::from_u8("b", vec![], vec![0]).unwrap();
        assert!(check_outputs(&[a(), b]).is_ok());
        assert_eq!(
            check_outputs(&[a(), a()]).unwrap_err(),
            PluginError::output("output name `a` is used twice")
        );
        let many: Vec<_> = (0..257)
            .map(|i| OutputTensor::from_u8(format!("o{i}"), vec![], vec![0]).unwrap())
            .collect();
        assert!(check_outputs(&many).is_err());
    }
}
