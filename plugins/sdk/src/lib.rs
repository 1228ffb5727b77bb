//! Write modelvet plugins (ABI v1, `docs/plugin-abi.md`) in safe Rust.
//!
//! A plugin is a function from named input tensors and JSON params to named output tensors:
//!
//! ```
//! use modelvet_plugin_sdk::{kernels, OutputTensor, Params, PluginError, TensorView};
//!
//! fn process<'a>(
//!     inputs: Vec<TensorView<'a>>,
//!     params: &Params,
//! ) -> Result<Vec<OutputTensor<'a>>, PluginError> {
//!     params.allow_only(&["threshold"])?;
//!     let t = params.f32_or("threshold", 0.5)?;
//!     let input = modelvet_plugin_sdk::single_input(inputs)?;
//!     let x = input.to_f32_vec().ok_or_else(|| PluginError::input("expected an F32 tensor"))?;
//!     let mut mask = vec![0u8; x.len()];
//!     kernels::threshold(&x, &mut mask, t)?;
//!     Ok(vec![OutputTensor::from_u8("mask", input.shape().to_vec(), mask)?])
//! }
//!
//! modelvet_plugin_sdk::plugin!(process);
//! # fn main() {}
//! ```
//!
//! [`plugin!`] generates, on `wasm32` only, everything the host looks for: the `memory`
//! export (from the toolchain), `modelvet_abi_v1`, the `modelvet.abi` custom section,
//! `modelvet_alloc` and `modelvet_process`, plus a panic hook that logs the panic message
//! at error level before the module traps. On other targets it only type-checks the
//! function, so plugin crates build and test natively; [`run`] is the same entry path
//! without the FFI, for tests and native reference runs.
//!
//! What this crate owns: the safe types ([`DType`], [`TensorView`], [`OutputTensor`],
//! [`Params`], [`PluginError`]), the vetted [`kernels`] (pure functions over slices that
//! give the same bits natively and in wasm), and the FFI glue. All `unsafe` lives in one
//! private module, `raw`, each block with its `SAFETY:` argument; the rest of the crate
//! denies `unsafe_code`. Everything compiles for the host target too, so the main crate
//! can use the kernels as its bit-for-bit reference and benchmark them natively.

mod dtype;
mod error;
pub mod kernels;
mod params;
mod raw;
mod tensor;

pub use dtype::DType;
pub use error::{Float, KernelError, PluginError};
pub use params::{Params, Value};
pub use tensor::{element_count, OutputTensor, TensorView, MAX_NAME_LEN, MAX_OUTPUTS, MAX_RANK};

/// Log levels of the host's `log` import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// The signature of a plugin's entry function, as [`plugin!`] and [`run`] expect it.
///
/// Outputs may borrow input buffers (`'a`): a plugin that transforms a tensor in place
/// returns the input's own memory as its output, so the data is never copied.
pub type ProcessFn =
    for<'a> fn(Vec<TensorView<'a>>, &Params) -> Result<Vec<OutputTensor<'a>>, PluginError>;

/// Adds one line to the run's log (the host cuts it at 1 KiB and escapes control
/// characters). Off wasm32 the line is kept in a per-thread buffer that
/// [`take_native_log`] drains, so tests can assert on it.
pub fn log(level: Level, message: &str) {
    raw::host_log(level as i32, message.as_bytes());
}

/// The lines [`log`] recorded on this thread since the last call (native targets only; on
/// wasm32 lines go to the host and this is always empty).
pub fn take_native_log() -> Vec<(Level, String)> {
    raw::take_native_log()
}

/// Takes the only input, or fails with an input error naming how many there were.
pub fn single_input(inputs: Vec<TensorView<'_>>) -> Result<TensorView<'_>, PluginError> {
    let count = inputs.len();
    let mut iter = inputs.into_iter();
    match (iter.next(), iter.next()) {
        (Some(only), None) => Ok(only),
        _ => Err(PluginError::input(format!(
            "expected exactly one input tensor, got {count}; name one with the `input` param"
        ))),
    }
}

/// Takes the input named `name`, or fails with an input error listing the names given.
pub fn take_input<'a>(
    inputs: Vec<TensorView<'a>>,
    name: &str,
) -> Result<TensorView<'a>, PluginError> {
    let names: Vec<String> = inputs.iter().map(|t| format!("`{}`", t.name())).collect();
    inputs
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            PluginError::input(format!(
                "no input tensor named `{name}` (inputs: {})",
                names.join(", ")
            ))
        })
}

/// Runs `process` exactly as the wasm entry point does, minus the FFI: parses `params`
/// (a JSON object), calls the function and checks the outputs (1–256 of them, unique
/// names). The wasm glue emits what this returns.
pub fn run<'a>(
    process: ProcessFn,
    inputs: Vec<TensorView<'a>>,
    params: &[u8],
) -> Result<Vec<OutputTensor<'a>>, PluginError> {
    let params = Params::parse(params)?;
    let outputs = process(inputs, &params)?;
    tensor::check_outputs(&outputs)?;
    Ok(outputs)
}

/// Generates the ABI v1 exports for `process` (a [`ProcessFn`]). Use it once, at the
/// crate root of a `cdylib`.
///
/// On wasm32: the `modelvet.abi` custom section (`1`), the `modelvet_abi_v1` marker,
/// `modelvet_alloc` and `modelvet_process`. `modelvet_process` returns 0 on success and
/// otherwise [`PluginError::code`], after logging the error at error level. On other
/// targets the macro only checks that `process` has the right type.
#[macro_export]
macro_rules! plugin {
    ($process:path) => {
        const _: $crate::ProcessFn = $process;

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            #[link_section = "modelvet.abi"]
            #[used]
            static MODELVET_ABI: [u8; 1] = *b"1";

            #[no_mangle]
            pub extern "C" fn modelvet_abi_v1() {}

            #[no_mangle]
            pub extern "C" fn modelvet_alloc(size: i32, align: i32) -> i32 {
                $crate::__private::alloc(size, align)
            }

            #[no_mangle]
            pub extern "C" fn modelvet_process(
                inputs: i32,
                input_count: i32,
                params: i32,
                params_len: i32,
            ) -> i32 {
                $crate::__private::process(inputs, input_count, params, params_len, $process)
            }
        };
    };
}

/// Support for [`plugin!`]; not a stable API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::raw::{alloc, process};
}
