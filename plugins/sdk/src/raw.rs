//! The only module with `unsafe`: byte/f32 reinterpretation, and on wasm32 the FFI glue
//! (host imports, `modelvet_alloc`, reading input descriptors out of linear memory).
//!
//! The soundness argument for the FFI: descriptor fields are untrusted numbers. Every
//! region the SDK turns into a slice (descriptor array, params, names, shapes, data) must lie
//! inside one block that `modelvet_alloc` handed out (recorded here, never freed), so it is
//! live memory that no Rust value owns. The host fills those blocks from outside the module,
//! between `modelvet_alloc` returning and `modelvet_process` being called: to the compiled
//! code that is an opaque foreign write, like a buffer filled by an FFI call, and wasm linear
//! memory always holds defined bytes. Data regions become `&mut` and so must not overlap any
//! other region. Nothing else turns an integer into a pointer. Everything outside this
//! module is `deny(unsafe_code)`.
#![allow(unsafe_code)]

#[cfg(not(target_endian = "little"))]
compile_error!("the plugin ABI is little-endian; typed views assume a little-endian target");

/// The bytes as f32 if they are 4-byte aligned (any length that is a multiple of 4).
pub(crate) fn f32_slice(bytes: &[u8]) -> Option<&[f32]> {
    // SAFETY: every 4-byte pattern is a valid f32 and `align_to` only puts correctly aligned,
    // whole elements in the middle slice; the target is little-endian (checked above), so
    // the values are the ABI's little-endian f32s.
    let (head, body, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(body)
}

/// As [`f32_slice`], mutable.
pub(crate) fn f32_slice_mut(bytes: &mut [u8]) -> Option<&mut [f32]> {
    f32_slice_mut_or_back(bytes).ok()
}

/// As [`f32_slice_mut`], handing the bytes back when they are not aligned.
pub(crate) fn f32_slice_mut_or_back(bytes: &mut [u8]) -> Result<&mut [f32], &mut [u8]> {
    if f32_slice(bytes).is_none() {
        return Err(bytes);
    }
    // SAFETY: as in `f32_slice`; any f32 written back is 4 valid bytes.
    let (_, body, _) = unsafe { bytes.align_to_mut::<f32>() };
    Ok(body)
}

/// The little-endian bytes of f32s, without a copy.
pub(crate) fn f32_bytes(values: &[f32]) -> &[u8] {
    // SAFETY: the pointer is valid for `size_of_val(values)` bytes of initialised memory,
    // u8 has alignment 1 and no invalid values, and the borrow keeps `values` alive.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;

    use crate::Level;

    thread_local! {
        static LOG: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn host_log(level: i32, message: &[u8]) {
        let level = match level {
            0 => Level::Debug,
            2 => Level::Warn,
            3 => Level::Error,
            _ => Level::Info,
        };
        let line = String::from_utf8_lossy(message).into_owned();
        LOG.with(|log| log.borrow_mut().push((level, line)));
    }

    pub(crate) fn take_native_log() -> Vec<(Level, String)> {
        LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::{host_log, take_native_log};

#[cfg(target_arch = "wasm32")]
pub(crate) fn take_native_log() -> Vec<(crate::Level, String)> {
    Vec::new()
}

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::host_log;
#[cfg(target_arch = "wasm32")]
pub use wasm::{alloc, process};

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::alloc::Layout;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, PoisonError};

    use crate::dtype::DType;
    use crate::error::PluginError;
    use crate::tensor::{OutputTensor, TensorView, MAX_RANK};
    use crate::{Level, ProcessFn};

    #[link(wasm_import_module = "modelvet")]
    extern "C" {
        #[link_name = "emit"]
        fn modelvet_emit(
            name_ptr: i32,
            name_len: i32,
            dtype: i32,
            shape_ptr: i32,
            rank: i32,
            data_ptr: i32,
            data_len: i32,
        ) -> i32;
        #[link_name = "log"]
        fn modelvet_log(level: i32, ptr: i32, len: i32);
    }

    const DESCRIPTOR_LEN: usize = 32;

    /// `(address, size)` of every block `modelvet_alloc` handed out; they are never freed.
    static ALLOCATIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    static PROCESSED: AtomicBool = AtomicBool::new(false);
    static HOOKED: AtomicBool = AtomicBool::new(false);

    /// An address as the ABI's i32 (wasm32 addresses are 32 bits).
    fn addr<T>(ptr: *const T) -> i32 {
        ptr.expose_provenance() as u32 as i32
    }

    /// A length as the ABI's i32; lengths of live wasm32 objects fit in 32 bits.
    fn len32(len: usize) -> i32 {
        len as u32 as i32
    }

    pub(crate) fn host_log(level: i32, message: &[u8]) {
        // SAFETY: the import only reads `message.len()` bytes at its address, which the
        // borrow keeps alive for the call.
        unsafe { modelvet_log(level, addr(message.as_ptr()), len32(message.len())) }
    }

    /// `modelvet_alloc`: `size` bytes aligned to `align` (a power of two), or 0. A size of
    /// 0 gets a real 1-byte block, so the address is never 0. The bytes are not zeroed: the
    /// host overwrites them all, and zeroing a 64 MiB input costs more than windowing it.
    pub fn alloc(size: i32, align: i32) -> i32 {
        install_panic_hook();
        let (Ok(size), Ok(align)) = (usize::try_from(size), usize::try_from(align)) else {
            return 0;
        };
        let Ok(layout) = Layout::from_size_align(size.max(1), align) else {
            return 0;
        };
        let mut allocations = ALLOCATIONS.lock().unwrap_or_else(PoisonError::into_inner);
        if allocations.try_reserve(1).is_err() {
            return 0;
        }
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return 0;
        }
        let address = ptr.expose_provenance();
        allocations.push((address, size));
        address as u32 as i32
    }

    /// `modelvet_process`: reads the inputs, runs the plugin, emits its outputs.
    pub fn process(
        inputs: i32,
        input_count: i32,
        params: i32,
        params_len: i32,
        f: ProcessFn,
    ) -> i32 {
        install_panic_hook();
        match process_inner(inputs, input_count, params, params_len, f) {
            Ok(()) => 0,
            Err(err) => {
                host_log(Level::Error as i32, err.to_string().as_bytes());
                err.code()
            }
        }
    }

    fn process_inner(
        inputs: i32,
        input_count: i32,
        params: i32,
        params_len: i32,
        f: ProcessFn,
    ) -> Result<(), PluginError> {
        if PROCESSED.swap(true, Ordering::SeqCst) {
            return Err(PluginError::abi(
                "`modelvet_process` called twice on one instance",
            ));
        }
        let mut regions = Regions::new();
        let params = regions.shared(params, params_len as u32 as usize, "params")?;
        let count = input_count as u32 as usize;
        let table_len = count
            .checked_mul(DESCRIPTOR_LEN)
            .ok_or_else(|| PluginError::abi(format!("input count `{count}` overflows")))?;
        let table = regions.shared(inputs, table_len, "input descriptors")?;

        let mut pending = Vec::with_capacity(count);
        for (i, descriptor) in table.chunks_exact(DESCRIPTOR_LEN).enumerate() {
            let field = |n: usize| {
                descriptor
                    .get(n * 4..n * 4 + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_le_bytes)
            };
            let what = |part: &str| format!("input {i} {part}");
            let name = regions.shared(field(0) as i32, field(1) as usize, &what("name"))?;
            let name = std::str::from_utf8(name)
                .map_err(|_| PluginError::abi(format!("input {i} name is not UTF-8")))?;
            let dtype = DType::from_code(field(2)).ok_or_else(|| {
                PluginError::abi(format!(
                    "input `{name}` has unknown dtype code `{}`",
                    field(2)
                ))
            })?;
            let rank = field(3) as usize;
            if rank > MAX_RANK {
                return Err(PluginError::abi(format!(
                    "input `{name}` has rank `{rank}`"
                )));
            }
            let shape_bytes = regions.shared(field(4) as i32, rank * 8, &what("shape"))?;
            let shape: Vec<u64> = shape_bytes
                .chunks_exact(8)
                .map(|b| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes))
                .collect();
            let data = regions.claim(field(5) as i32, field(6) as usize, &what("data"))?;
            pending.push((name, dtype, shape, data));
        }
        let mut views = Vec::with_capacity(count);
        for (name, dtype, shape, data) in pending {
            let data = regions.exclusive(data)?;
            views.push(TensorView::new(name, dtype, shape, data).map_err(|err| {
                PluginError::abi(format!("descriptor does not match its data: {err}"))
            })?);
        }
        let outputs = crate::run(f, views, params)?;
        emit_all(outputs)
    }

    /// Emits every output, then leaks them all: the host reads the bytes after
    /// `modelvet_process` returns, and the instance is dropped after that.
    fn emit_all(outputs: Vec<OutputTensor<'static>>) -> Result<(), PluginError> {
        for out in &outputs {
            let (name, shape, data) = (out.name().as_bytes(), out.shape(), out.bytes());
            // SAFETY: the import only reads the three ranges, which `outputs` owns or
            // borrows and which stay alive and unchanged: `outputs` is leaked below.
            let rc = unsafe {
                modelvet_emit(
                    addr(name.as_ptr()),
                    len32(name.len()),
                    out.dtype().code() as i32,
                    addr(shape.as_ptr()),
                    len32(shape.len()),
                    addr(data.as_ptr()),
                    len32(data.len()),
                )
            };
            if rc != 0 {
                return Err(PluginError::output(format!(
                    "host refused output `{}` with code `{rc}`",
                    out.name().escape_debug()
                )));
            }
        }
        std::mem::forget(outputs);
        Ok(())
    }

    /// A data region checked to lie in an allocation, not yet turned into a slice.
    struct Claim {
        start: usize,
        len: usize,
        what: String,
    }

    /// The regions read so far, so data regions can be proven disjoint from all others.
    struct Regions {
        allocations: Vec<(usize, usize)>,
        seen: Vec<(usize, usize)>,
    }

    impl Regions {
        fn new() -> Self {
            let allocations = ALLOCATIONS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            Regions {
                allocations,
                seen: Vec::new(),
            }
        }

        /// Checks `[ptr, ptr + len)` lies inside one recorded allocation; empty regions
        /// are never dereferenced and always pass.
        fn check(
            &mut self,
            ptr: i32,
            len: usize,
            what: &str,
        ) -> Result<(usize, usize), PluginError> {
            let start = ptr as u32 as usize;
            if len == 0 {
                return Ok((start, 0));
            }
            let inside = start.checked_add(len).is_some_and(|end| {
                self.allocations
                    .iter()
                    .any(|&(a, size)| a <= start && end <= a + size)
            });
            if !inside {
                return Err(PluginError::abi(format!(
                    "{what} at `{start}`+`{len}` is not inside memory from `modelvet_alloc`"
                )));
            }
            self.seen.push((start, len));
            Ok((start, len))
        }

        fn shared(
            &mut self,
            ptr: i32,
            len: usize,
            what: &str,
        ) -> Result<&'static [u8], PluginError> {
            let (start, len) = self.check(ptr, len, what)?;
            if len == 0 {
                return Ok(&[]);
            }
            let ptr = std::ptr::with_exposed_provenance::<u8>(start);
            // SAFETY: `check` proved the range lies in a live block from `modelvet_alloc`
            // that is never freed (so `'static` holds for the instance), that no Rust value
            // owns and that the host has filled (see the module docs); no `&mut` to it
            // exists, because `exclusive` refuses data regions that overlap any region seen.
            Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
        }

        fn claim(&mut self, ptr: i32, len: usize, what: &str) -> Result<Claim, PluginError> {
            let (start, len) = self.check(ptr, len, what)?;
            Ok(Claim {
                start,
                len,
                what: what.to_owned(),
            })
        }

        fn exclusive(&self, claim: Claim) -> Result<&'static mut [u8], PluginError> {
            let Claim { start, len, what } = claim;
            if len == 0 {
                return Ok(&mut []);
            }
            let end = start + len;
            let overlaps = self
                .seen
                .iter()
                .filter(|&&region| region != (start, len))
                .any(|&(s, l)| s < end && start < s + l);
            let repeated = self
                .seen
                .iter()
                .filter(|&&region| region == (start, len))
                .count()
                > 1;
            if overlaps || repeated {
                return Err(PluginError::abi(format!(
                    "{what} at `{start}`+`{len}` overlaps another input region"
                )));
            }
            let ptr = std::ptr::with_exposed_provenance_mut::<u8>(start);
            // SAFETY: as in `shared`, and the range overlaps no other region handed out
            // (shared or exclusive), so this is the only reference to these bytes.
            Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
        }
    }

    fn install_panic_hook() {
        if HOOKED.swap(true, Ordering::SeqCst) {
            return;
        }
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = match (
                payload.downcast_ref::<&str>(),
                payload.downcast_ref::<String>(),
            ) {
                (Some(s), _) => s,
                (None, Some(s)) => s.as_str(),
                (None, None) => "(no message)",
            };
            let line = match info.location() {
                Some(at) => format!("plugin panicked at {}:{}: {message}", at.file(), at.line()),
                None => format!("plugin panicked: {message}"),
            };
            host_log(Level::Error as i32, line.as_bytes());
        }));
    }
}
