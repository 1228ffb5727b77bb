//! The tensor-only allowlist: the exact globals a pickle needs to rebuild tensors, storages and
//! plain containers, and nothing else.
//!
//! Classification is by exact, full qualified name (`module.name`); there is no prefix or
//! module-wide matching, so `torch._utils._rebuild_tensor.__globals__` or `torch.load` are
//! dangerous even though their prefixes are allowed. Every entry says why it is needed; an entry
//! is admitted only if calling or instantiating it with attacker-chosen arguments cannot run
//! code or touch the file system by itself (anything it calls must be imported as a global too,
//! and so is classified on its own). The list follows PyTorch's weights-only unpickler
//! (`torch/_weights_only_unpickler.py`, `_get_allowed_globals`) minus user additions, plus the
//! NumPy reconstructors that NumPy arrays pickle through. This module owns only the table and
//! the lookup; it must not parse pickles.

use super::{Global, GlobalClass};

/// One allowlisted global and the reason it is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The exact qualified name, `module.name` (dotted attribute paths included).
    pub qualified: &'static str,
    /// Why a tensor-only pickle needs it.
    pub why: &'static str,
}

const fn allow(qualified: &'static str, why: &'static str) -> Allowed {
    Allowed { qualified, why }
}

const DTYPE: &str = "a tensor dtype, pickled by name as the argument of a rebuild function";
const ALIAS: &str = "an alias of a tensor dtype; harmless constant that hand-written pickles use";
const STORAGE: &str = "a typed storage class, named in the persistent id of every legacy tensor";
const QSCHEME: &str = "a quantization scheme constant, an argument of `_rebuild_qtensor`";

/// Every global a tensor-only pickle may import, sorted by name for review.
pub const TENSOR_ONLY: &[Allowed] = &[
    // Tensor rebuild functions (torch/_utils.py): they rebuild a tensor from a storage and
    // metadata and call nothing the pickle chooses.
    allow("torch._utils._rebuild_tensor", "rebuilds a tensor from a storage (legacy format)"),
    allow("torch._utils._rebuild_tensor_v2", "rebuilds a dense tensor; every `torch.save` uses it"),
    allow("torch._utils._rebuild_tensor_v3", "rebuilds a dense tensor with an explicit dtype"),
    allow("torch._utils._rebuild_parameter", "rebuilds an `nn.Parameter` around a tensor"),
    allow("torch._utils._rebuild_parameter_with_state", "rebuilds an `nn.Parameter` with attributes"),
    allow("torch._utils._rebuild_sparse_tensor", "rebuilds a sparse tensor from index/value tensors"),
    allow("torch._utils._rebuild_nested_tensor", "rebuilds a nested tensor from its buffer and sizes"),
    allow("torch._utils._rebuild_qtensor", "rebuilds a quantized tensor"),
    allow("torch._utils._rebuild_device_tensor_from_numpy", "rebuilds an XLA/device tensor from a NumPy array"),
    allow("torch._utils._rebuild_device_tensor_from_cpu_tensor", "rebuilds a device tensor from a CPU tensor (torch >= 2.6)"),
    allow("torch._utils._rebuild_meta_tensor_no_storage", "rebuilds a meta tensor, which has no data"),
    allow("torch._utils._rebuild_wrapper_subclass", "rebuilds a wrapper tensor; its class argument is a global checked on its own"),
    allow("torch._tensor._rebuild_from_type_v2", "rebuilds a tensor subclass; its function and type arguments are globals checked on their own"),
    allow("torch.serialization._get_layout", "maps a layout name to a `torch.layout` for sparse tensors"),
    // Tensor and parameter types, used as the type argument of `_rebuild_from_type_v2`.
    allow("torch.Tensor", "the tensor type, argument of `_rebuild_from_type_v2`"),
    allow("torch.nn.parameter.Parameter", "the parameter type, argument of `_rebuild_from_type_v2`"),
    // Storages.
    allow("torch.storage.UntypedStorage", "the untyped byte storage behind every tensor"),
    allow("torch.UntypedStorage", "the untyped byte storage, as exported by `torch`"),
    allow("torch.storage.TypedStorage", "the typed storage wrapper of torch >= 1.13"),
    allow("torch.FloatStorage", STORAGE),
    allow("torch.DoubleStorage", STORAGE),
    allow("torch.HalfStorage", STORAGE),
    allow("torch.BFloat16Storage", STORAGE),
    allow("torch.LongStorage", STORAGE),
    allow("torch.IntStorage", STORAGE),
    allow("torch.ShortStorage", STORAGE),
    allow("torch.CharStorage", STORAGE),
    allow("torch.ByteStorage", STORAGE),
    allow("torch.BoolStorage", STORAGE),
    allow("torch.ComplexFloatStorage", STORAGE),
    allow("torch.ComplexDoubleStorage", STORAGE),
    allow("torch.QUInt8Storage", STORAGE),
    allow("torch.QInt8Storage", STORAGE),
    allow("torch.QInt32Storage", STORAGE),
    allow("torch.QUInt4x2Storage", STORAGE),
    allow("torch.QUInt2x4Storage", STORAGE),
    // Dtypes: `torch.dtype.__reduce__` returns its canonical name, so pickles name these.
    allow("torch.float32", DTYPE),
    allow("torch.float64", DTYPE),
    allow("torch.float16", DTYPE),
    allow("torch.bfloat16", DTYPE),
    allow("torch.complex32", DTYPE),
    allow("torch.complex64", DTYPE),
    allow("torch.complex128", DTYPE),
    allow("torch.uint8", DTYPE),
    allow("torch.uint16", DTYPE),
    allow("torch.uint32", DTYPE),
    allow("torch.uint64", DTYPE),
    allow("torch.int8", DTYPE),
    allow("torch.int16", DTYPE),
    allow("torch.int32", DTYPE),
    allow("torch.int64", DTYPE),
    allow("torch.bool", DTYPE),
    allow("torch.qint8", DTYPE),
    allow("torch.quint8", DTYPE),
    allow("torch.qint32", DTYPE),
    allow("torch.quint4x2", DTYPE),
    allow("torch.quint2x4", DTYPE),
    allow("torch.float8_e4m3fn", DTYPE),
    allow("torch.float8_e4m3fnuz", DTYPE),
    allow("torch.float8_e5m2", DTYPE),
    allow("torch.float8_e5m2fnuz", DTYPE),
    allow("torch.float8_e8m0fnu", DTYPE),
    allow("torch.float4_e2m1fn_x2", DTYPE),
    allow("torch.float", ALIAS),
    allow("torch.double", ALIAS),
    allow("torch.half", ALIAS),
    allow("torch.long", ALIAS),
    allow("torch.int", ALIAS),
    allow("torch.short", ALIAS),
    allow("torch.cfloat", ALIAS),
    allow("torch.cdouble", ALIAS),
    // Small value types.
    allow("torch.Size", "a tensor shape (a tuple of ints)"),
    allow("torch.device", "a device name such as `cpu` or `cuda:0`"),
    allow("torch.per_tensor_affine", QSCHEME),
    allow("torch.per_tensor_symmetric", QSCHEME),
    allow("torch.per_channel_affine", QSCHEME),
    allow("torch.per_channel_symmetric", QSCHEME),
    allow("torch.per_channel_affine_float_qparams", QSCHEME),
    // Plain containers and scalars.
    allow("collections.OrderedDict", "the state-dict container"),
    allow("collections.Counter", "a dict subclass of counts, allowed by torch's weights-only loader"),
    allow("builtins.set", "a set (protocols < 4 pickle sets through a call)"),
    allow("builtins.frozenset", "a frozenset (protocols < 4 pickle it through a call)"),
    allow("builtins.bytearray", "a bytearray (protocols < 5 pickle it through a call)"),
    allow("builtins.complex", "a complex number"),
    allow("builtins.slice", "a slice, e.g. in saved indexing metadata"),
    allow("builtins.list", "a list type, used by reduce-based container pickles"),
    allow("builtins.dict", "a dict type, used by reduce-based container pickles"),
    allow("builtins.tuple", "a tuple type, used by reduce-based container pickles"),
    allow("builtins.int", "an int type"),
    allow("builtins.float", "a float type"),
    allow("builtins.bool", "a bool type"),
    allow("builtins.str", "a str type"),
    allow("builtins.bytes", "a bytes type"),
    allow("_codecs.encode", "how protocols < 3 pickle `bytes`: `encode(latin-1 text, 'latin1')`"),
    // NumPy arrays (numpy/core/numeric.py, numpy/_core for NumPy 2).
    allow("numpy.core.multiarray._reconstruct", "creates an empty ndarray that BUILD then fills (NumPy 1)"),
    allow("numpy._core.multiarray._reconstruct", "creates an empty ndarray that BUILD then fills (NumPy 2)"),
    allow("numpy.core.multiarray.scalar", "rebuilds a NumPy scalar from a dtype and bytes (NumPy 1)"),
    allow("numpy._core.multiarray.scalar", "rebuilds a NumPy scalar from a dtype and bytes (NumPy 2)"),
    allow("numpy.core.numeric._frombuffer", "rebuilds an array from a protocol-5 buffer (NumPy 1)"),
    allow("numpy._core.numeric._frombuffer", "rebuilds an array from a protocol-5 buffer (NumPy 2)"),
    allow("numpy.ndarray", "the array type, argument of `_reconstruct`"),
    // joblib writes each array's raw bytes right after a wrapper naming its dtype and shape.
    allow("joblib.numpy_pickle.NumpyArrayWrapper", "joblib's marker for an array whose raw bytes follow inline"),
    allow("numpy.dtype", "an array dtype such as `f4`"),
];

/// The allowlist entry for a qualified name, if any.
pub fn lookup(qualified: &str) -> Option<&'static Allowed> {
    TENSOR_ONLY
        .iter()
        .find(|entry| entry.qualified == qualified)
}

/// Tensor-only if the exact qualified name is on the allowlist, dangerous otherwise.
pub fn classify(global: &Global) -> GlobalClass {
    classify_qualified(&global.qualified())
}

pub(super) fn classify_qualified(qualified: &str) -> GlobalClass {
    match lookup(qualified) {
        Some(_) => GlobalClass::TensorOnly,
        None => GlobalClass::Dangerous,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn global(module: &str, name: &str) -> Global {
        Global {
            module: module.to_owned(),
            name: name.to_owned(),
            spelled: None,
        }
    }

    #[test]
    fn entries_are_unique_documented_and_dotted() {
        let mut seen = HashSet::new();
        for entry in TENSOR_ONLY {
            assert!(seen.insert(entry.qualified), "{} twice", entry.qualified);
            assert!(!entry.why.is_empty(), "{} has no reason", entry.qualified);
            assert!(entry.qualified.contains('.'), "{}", entry.qualified);
        }
    }

    #[test]
    fn tensor_globals_are_allowed() {
        for (module, name) in [
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "_utils._rebuild_tensor"),
            ("torch", "FloatStorage"),
            ("torch", "bfloat16"),
            ("torch", "float8_e4m3fn"),
            ("collections", "OrderedDict"),
            ("builtins", "set"),
            ("_codecs", "encode"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "dtype"),
            ("torch._tensor", "_rebuild_from_type_v2"),
        ] {
            assert_eq!(
                classify(&global(module, name)),
                GlobalClass::TensorOnly,
                "{module}.{name}"
            );
        }
    }

    #[test]
    fn everything_else_is_dangerous_with_no_prefix_matching() {
        for (module, name) in [
            ("torch._utils", "_rebuild_tensor.__globals__"),
            ("torch", "_utils._rebuild_tensor.__globals__"),
            ("builtins", "getattr"),
            ("builtins", "eval"),
            ("builtins", "exec"),
            ("torch", "load"),
            ("numpy", "load"),
            ("pip", "main"),
            ("asyncio.unix_events", "_UnixSubprocessTransport"),
            ("runpy", "_run_code"),
            ("torch.serialization", "load"),
            ("__builtin__", "eval"),
            ("__builtin__", "set"),
            ("os", "system"),
            ("posix", "system"),
            ("torch", "float32 "),
            ("", "torch.float32"),
            ("collections.OrderedDict", ""),
            ("?", "?"),
        ] {
            assert_eq!(
                classify(&global(module, name)),
                GlobalClass::Dangerous,
                "{module}.{name}"
            );
        }
    }

    #[test]
    fn lookup_gives_the_reason() {
        let entry = lookup("torch.Size").unwrap();
        assert!(entry.why.contains("shape"));
        assert!(lookup("torch").is_none());
    }
}
