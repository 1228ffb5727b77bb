//! The host side of one invocation: the store and its limiter, the epoch ticker, the `emit` and
//! `log` host functions, and the copying of inputs into guest memory. Every address and length
//! the guest hands back is checked here, with checked arithmetic, before it is used.

use std::ops::Range;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use serde::Serialize;
use wasmtime::{
    Caller, Engine, Extern, Instance, Linker, Memory, Module, ResourceLimiter, Store, Trap,
    TypedFunc,
};

use super::engine::{self, ALLOC_EXPORT, HOST_MODULE, MEMORY_EXPORT, PROCESS_EXPORT};
use super::{Completed, Failure, Limits, Outcome, Plugin, SandboxError, Stats};
use crate::finding::{quote, Code, Finding};
use crate::tensor::{self, DType, Tensor, TensorData, MAX_RANK};

/// Bytes of one input descriptor (plugin ABI v1).
const DESCRIPTOR_BYTES: usize = 32;
/// Longest log line kept, in bytes.
const MAX_LOG_LINE_BYTES: usize = 1024;

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// One line a plugin logged, already stripped of control and escape characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// An output the guest declared: its bytes stay in guest memory at `range`.
#[derive(Debug)]
struct Emitted {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    range: Range<usize>,
}

/// Everything the host knows during one invocation.
struct HostState {
    memory_limit: u64,
    table_elements: u64,
    max_outputs: usize,
    max_log_lines: usize,
    max_log_bytes: usize,
    /// The first fault the host detected; it explains the trap that follows.
    fault: Option<Finding>,
    outputs: Vec<Emitted>,
    output_bytes: u64,
    log: Vec<LogLine>,
    log_bytes: usize,
    log_dropped: u64,
}

/// A store whose plugin returned successfully, kept so that outputs can be read in place.
pub(super) struct FinishedRun {
    store: Store<HostState>,
    memory: Memory,
}

impl FinishedRun {
    pub(super) fn output_count(&self) -> usize {
        self.store.data().outputs.len()
    }

    pub(super) fn outputs(&self) -> Vec<Tensor<'_>> {
        let memory = self.memory.data(&self.store);
        self.store
            .data()
            .outputs
            .iter()
            .map(|output| Tensor {
                name: &output.name,
                dtype: output.dtype,
                shape: &output.shape,
                // Checked when emitted, and memory never shrinks.
                data: TensorData::Memory(memory.get(output.range.clone()).unwrap_or_default()),
            })
            .collect()
    }
}

/// Why an invocation stopped early.
enum Stop {
    Refused(Box<Finding>),
    Error(SandboxError),
}

impl From<Finding> for Stop {
    fn from(finding: Finding) -> Self {
        Stop::Refused(Box::new(finding))
    }
}

impl From<Box<Finding>> for Stop {
    fn from(finding: Box<Finding>) -> Self {
        Stop::Refused(finding)
    }
}

/// Runs one invocation from the plugin's bytes to its outputs.
pub(super) fn run(
    plugin: &Plugin,
    limits: &Limits,
    inputs: &[Tensor<'_>],
    params: &str,
    started: Instant,
) -> Result<Outcome, SandboxError> {
    let mut stats = Stats::default();
    let mut store_slot: Option<Store<HostState>> = None;
    let result = run_stages(
        plugin,
        limits,
        inputs,
        params,
        started,
        &mut stats,
        &mut store_slot,
    );
    stats.total_ms = millis_since(started);
    let (log, log_dropped) = match store_slot.as_mut() {
        Some(store) => {
            stats.fuel_consumed = limits
                .fuel
                .map(|fuel| fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
            let state = store.data_mut();
            (std::mem::take(&mut state.log), state.log_dropped)
        }
        None => (Vec::new(), 0),
    };
    match result {
        Ok(memory) => match store_slot {
            Some(store) => Ok(Outcome::Completed(Completed {
                run: FinishedRun { store, memory },
                log,
                log_dropped,
                stats,
            })),
            None => Err(SandboxError::Engine {
                message: "the store disappeared".into(),
            }),
        },
        Err(Stop::Refused(finding)) => Ok(Outcome::Failed(Failure {
            finding: *finding,
            log,
            log_dropped,
            stats,
        })),
        Err(Stop::Error(error)) => Err(error),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_stages(
    plugin: &Plugin,
    limits: &Limits,
    inputs: &[Tensor<'_>],
    params: &str,
    started: Instant,
    stats: &mut Stats,
    store_slot: &mut Option<Store<HostState>>,
) -> Result<Memory, Stop> {
    let engine =
        engine::engine(limits).map_err(|message| Stop::Error(SandboxError::Engine { message }))?;
    let deadline = started + limits.timeout;

    let compile_started = Instant::now();
    let module = compile(&engine, plugin.bytes.to_vec(), deadline, limits)?;
    stats.compile_ms = millis_since(compile_started);
    engine::check_module(&module, limits)?;

    // From here on, wasm code runs: the ticker ends it at the deadline.
    let _ticker = Ticker::start(engine.clone(), deadline).map_err(|error| {
        Stop::Error(SandboxError::Engine {
            message: error.to_string(),
        })
    })?;
    let mut store = Store::new(
        &engine,
        HostState {
            memory_limit: limits.memory_bytes,
            table_elements: limits.table_elements,
            max_outputs: limits.max_outputs,
            max_log_lines: limits.max_log_lines,
            max_log_bytes: limits.max_log_bytes,
            fault: None,
            outputs: Vec::new(),
            output_bytes: 0,
            log: Vec::new(),
            log_bytes: 0,
            log_dropped: 0,
        },
    );
    store.limiter(|state| state);
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(|error| {
            Stop::Error(SandboxError::Engine {
                message: error.to_string(),
            })
        })?;
    }
    let store = store_slot.insert(store);

    let mut linker: Linker<HostState> = Linker::new(&engine);
    linker
        .func_wrap(HOST_MODULE, "emit", emit)
        .and_then(|linker| linker.func_wrap(HOST_MODULE, "log", log))
        .map_err(|error| {
            Stop::Error(SandboxError::Engine {
                message: error.to_string(),
            })
        })?;

    let instantiate_started = Instant::now();
    let instance = linker
        .instantiate(&mut *store, &module)
        .map_err(|error| classify(error, store, limits))?;
    stats.instantiate_ms = millis_since(instantiate_started);

    let (memory, alloc, process) = exports(&instance, store)?;
    let mut guest = Guest {
        store,
        memory,
        alloc,
        limits,
    };

    let mut descriptors = Vec::with_capacity(inputs.len().saturating_mul(DESCRIPTOR_BYTES));
    for input in inputs {
        let name = guest.place_bytes(input.name.as_bytes(), 1)?;
        let shape: Vec<u8> = input
            .shape
            .iter()
            .flat_map(|dim| dim.to_le_bytes())
            .collect();
        let shape_address = guest.place_bytes(&shape, 8)?;
        let data_len = usize::try_from(input.data.len()).map_err(|_| too_large(input.name))?;
        let data = guest.place(data_len, 16, |destination| {
            input.data.fill(destination).map_err(|source| {
                Stop::Error(SandboxError::Input {
                    name: quote(input.name),
                    source,
                })
            })
        })?;
        for field in [
            name,
            wasm_u32(input.name.len()).map_err(|_| too_large(input.name))?,
            input.dtype.code(),
            wasm_u32(input.shape.len()).map_err(|_| too_large(input.name))?,
            shape_address,
            data,
            wasm_u32(data_len).map_err(|_| too_large(input.name))?,
            0,
        ] {
            descriptors.extend_from_slice(&field.to_le_bytes());
        }
    }
    let table = guest.place_bytes(&descriptors, 4)?;
    let params_address = guest.place_bytes(params.as_bytes(), 1)?;
    let count = wasm_u32(inputs.len()).map_err(|_| too_large("inputs"))?;
    let params_len = wasm_u32(params.len()).map_err(|_| too_large("params"))?;

    let process_started = Instant::now();
    let status = process
        .call(
            &mut *guest.store,
            (
                table as i32,
                count as i32,
                params_address as i32,
                params_len as i32,
            ),
        )
        .map_err(|error| classify(error, guest.store, limits))?;
    stats.process_ms = millis_since(process_started);
    stats.memory_bytes = memory.data_size(&*guest.store) as u64;

    let state = guest.store.data();
    if status != 0 {
        let detail = last_error_line(&state.log)
            .map(|line| format!(": {line}"))
            .unwrap_or_default();
        return Err(Finding::new(
            Code::PluginFailed,
            format!("the plugin reported failure (status {status}){detail}"),
        )
        .into());
    }
    if state.outputs.is_empty() {
        return Err(Finding::new(
            Code::PluginNoOutput,
            "the plugin returned success without emitting any tensor",
        )
        .into());
    }
    Ok(memory)
}

/// Converts WAT text, checks the ABI section and compiles, all on a helper thread, so that
/// text or a module built to be slow to parse or compile cannot hold the caller past its
/// deadline (the thread is abandoned and finishes on its own).
fn compile(
    engine: &Engine,
    bytes: Vec<u8>,
    deadline: Instant,
    limits: &Limits,
) -> Result<Module, Stop> {
    let (sender, receiver) = mpsc::channel();
    let compiler = engine.clone();
    thread::Builder::new()
        .name("modelvet-compile".into())
        .spawn(move || {
            let prepared = engine::binary(&bytes).and_then(|binary| {
                engine::check_abi_section(&binary)?;
                Ok(binary.into_owned())
            });
            let _ = sender.send(prepared.map(|binary| Module::new(&compiler, &binary)));
        })
        .map_err(|error| {
            Stop::Error(SandboxError::Engine {
                message: error.to_string(),
            })
        })?;
    match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Err(refused)) => Err(refused.into()),
        Ok(Ok(Ok(module))) => Ok(module),
        Ok(Ok(Err(error))) => Err(Finding::new(
            Code::PluginInvalidModule,
            format!(
                "the module does not compile: {}",
                quote(&first_line(&format!("{error:#}")))
            ),
        )
        .into()),
        Err(_) => Err(timeout(limits, "while compiling")),
    }
}

/// Increments the engine's epoch once, at the deadline, unless dropped first.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, deadline: Instant) -> std::io::Result<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("modelvet-epoch".into())
            .spawn(move || {
                let wait = deadline.saturating_duration_since(Instant::now());
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Exports = (
    Memory,
    TypedFunc<(i32, i32), i32>,
    TypedFunc<(i32, i32, i32, i32), i32>,
);

fn exports(instance: &Instance, store: &mut Store<HostState>) -> Result<Exports, Stop> {
    let memory = instance
        .get_memory(&mut *store, MEMORY_EXPORT)
        .ok_or_else(|| engine::abi_mismatch(format!("`{MEMORY_EXPORT}` is not a memory")))?;
    let alloc = instance
        .get_typed_func(&mut *store, ALLOC_EXPORT)
        .map_err(|_| engine::abi_mismatch(format!("`{ALLOC_EXPORT}` has the wrong type")))?;
    let process = instance
        .get_typed_func(&mut *store, PROCESS_EXPORT)
        .map_err(|_| engine::abi_mismatch(format!("`{PROCESS_EXPORT}` has the wrong type")))?;
    Ok((memory, alloc, process))
}

/// The guest's memory and allocator, for placing inputs.
struct Guest<'s> {
    store: &'s mut Store<HostState>,
    memory: Memory,
    alloc: TypedFunc<(i32, i32), i32>,
    limits: &'s Limits,
}

impl Guest<'_> {
    fn place_bytes(&mut self, bytes: &[u8], align: u32) -> Result<u32, Stop> {
        self.place(bytes.len(), align, |destination| {
            destination.copy_from_slice(bytes);
            Ok(())
        })
    }

    /// Allocates `len` bytes in the guest and fills them in place. Empty regions are
    /// allocated too, so every address the guest sees is one its own allocator handed out.
    fn place(
        &mut self,
        len: usize,
        align: u32,
        fill: impl FnOnce(&mut [u8]) -> Result<(), Stop>,
    ) -> Result<u32, Stop> {
        let size = wasm_u32(len).map_err(|_| {
            Finding::new(
                Code::PluginMemoryLimit,
                format!("an input of {len} bytes does not fit a 32-bit address space"),
            )
        })?;
        let address =
            self.alloc
                .call(&mut *self.store, (size as i32, align as i32))
                .map_err(|error| classify(error, self.store, self.limits))? as u32;
        let memory = self.memory.data_mut(&mut *self.store);
        let memory_len = memory.len();
        let range = guest_range(address, size, memory_len)
            .filter(|_| address != 0 && address % align == 0)
            .ok_or_else(|| {
                Finding::new(
                    Code::PluginBadOutput,
                    format!(
                        "`{ALLOC_EXPORT}({size}, {align})` returned address {address}, which is null, misaligned or outside the {memory_len}-byte memory"
                    ),
                )
            })?;
        let destination = memory.get_mut(range).unwrap_or_default();
        fill(destination)?;
        Ok(address)
    }
}

/// `address..address + len` when it lies inside a memory of `memory_len` bytes.
fn guest_range(address: u32, len: u32, memory_len: usize) -> Option<Range<usize>> {
    let start = usize::try_from(address).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= memory_len).then_some(start..end)
}

fn wasm_u32(value: usize) -> Result<u32, std::num::TryFromIntError> {
    u32::try_from(value)
}

fn too_large(what: &str) -> Stop {
    Stop::Error(SandboxError::InvalidInput {
        name: quote(what),
        reason: "larger than a 32-bit plugin can address".into(),
    })
}

/// The ABI's `emit`: checks the declared tensor and records where its bytes are.
#[allow(clippy::too_many_arguments)]
fn emit(
    mut caller: Caller<'_, HostState>,
    name_address: i32,
    name_len: i32,
    dtype: i32,
    shape_address: i32,
    rank: i32,
    data_address: i32,
    data_len: i32,
) -> wasmtime::Result<i32> {
    let Some(memory) = caller
        .get_export(MEMORY_EXPORT)
        .and_then(Extern::into_memory)
    else {
        return fault(
            &mut caller,
            bad_output("the plugin has no memory to emit from".into()),
        );
    };
    let checked = check_emit(
        memory.data(&caller),
        [
            name_address as u32,
            name_len as u32,
            dtype as u32,
            shape_address as u32,
            rank as u32,
            data_address as u32,
            data_len as u32,
        ],
    );
    let emitted = match checked {
        Ok(emitted) => emitted,
        Err(finding) => return fault(&mut caller, *finding),
    };
    let state = caller.data_mut();
    if state
        .outputs
        .iter()
        .any(|output| output.name == emitted.name)
    {
        let finding = bad_output(format!(
            "output `{}` was emitted twice",
            quote(&emitted.name)
        ));
        return fault(&mut caller, finding);
    }
    let bytes = emitted.range.len() as u64;
    let total = state.output_bytes.saturating_add(bytes);
    if state.outputs.len() >= state.max_outputs || total > state.memory_limit {
        let finding = Finding::new(
            Code::PluginOutputLimit,
            format!(
                "output `{}` would make {} outputs of {total} bytes; the limits are {} outputs and {} bytes",
                quote(&emitted.name),
                state.outputs.len() + 1,
                state.max_outputs,
                state.memory_limit
            ),
        );
        return fault(&mut caller, finding);
    }
    state.output_bytes = total;
    state.outputs.push(emitted);
    Ok(0)
}

/// The checks of one `emit` call against the guest's memory as it is now.
fn check_emit(memory: &[u8], arguments: [u32; 7]) -> Result<Emitted, Box<Finding>> {
    let [name_address, name_len, dtype, shape_address, rank, data_address, data_len] = arguments;
    let range = |what: &str, address: u32, len: u32| {
        guest_range(address, len, memory.len()).ok_or_else(|| {
            bad_output(format!(
                "the {what} at address {address} with length {len} lies outside the {}-byte memory",
                memory.len()
            ))
        })
    };
    let name_bytes = memory
        .get(range("output name", name_address, name_len)?)
        .unwrap_or_default();
    let name = std::str::from_utf8(name_bytes)
        .map_err(|_| {
            bad_output(format!(
                "output name `{}` is not valid UTF-8",
                crate::finding::quote_bytes(name_bytes)
            ))
        })?
        .to_owned();
    let dtype = DType::from_code(dtype).ok_or_else(|| {
        bad_output(format!(
            "output `{}` has unknown dtype code {dtype}",
            quote(&name)
        ))
    })?;
    let rank_len = usize::try_from(rank).unwrap_or(usize::MAX);
    if rank_len > MAX_RANK {
        return Err(bad_output(format!(
            "output `{}` has {rank} dimensions, more than {MAX_RANK}",
            quote(&name)
        )));
    }
    let shape_bytes = memory
        .get(range(
            "output shape",
            shape_address,
            rank.saturating_mul(8),
        )?)
        .unwrap_or_default();
    let shape: Vec<u64> = shape_bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut dimension = [0u8; 8];
            dimension.copy_from_slice(chunk);
            u64::from_le_bytes(dimension)
        })
        .collect();
    tensor::check_tensor(&name, &shape).map_err(bad_output)?;
    let data = range("output data", data_address, data_len)?;
    let expected = tensor::byte_len(dtype, &shape);
    if expected != Some(u64::from(data_len)) {
        return Err(Box::new(
            (*bad_output(format!(
                "output `{}` claims {data_len} bytes but {dtype} × {shape:?} is {}",
                quote(&name),
                expected.map_or_else(
                    || "too large to count".to_owned(),
                    |bytes| format!("{bytes} bytes")
                )
            )))
            .with_mismatch(
                expected.map_or_else(|| "overflow".to_owned(), |bytes| bytes.to_string()),
                data_len.to_string(),
            ),
        ));
    }
    Ok(Emitted {
        name,
        dtype,
        shape,
        range: data,
    })
}

/// The ABI's `log`: keeps a bounded, sanitised copy of the line.
fn log(
    mut caller: Caller<'_, HostState>,
    level: i32,
    address: i32,
    len: i32,
) -> wasmtime::Result<()> {
    let Some(memory) = caller
        .get_export(MEMORY_EXPORT)
        .and_then(Extern::into_memory)
    else {
        return fault(
            &mut caller,
            bad_output("the plugin has no memory to log from".into()),
        );
    };
    let (address, len) = (address as u32, len as u32);
    let Some(range) = guest_range(address, len, memory.data_size(&caller)) else {
        let finding = bad_output(format!(
            "the log line at address {address} with length {len} lies outside the {}-byte memory",
            memory.data_size(&caller)
        ));
        return fault(&mut caller, finding);
    };
    let state = caller.data();
    if state.log.len() >= state.max_log_lines || state.log_bytes >= state.max_log_bytes {
        caller.data_mut().log_dropped += 1;
        return Ok(());
    }
    let budget = MAX_LOG_LINE_BYTES.min(state.max_log_bytes - state.log_bytes);
    let kept = range.start..range.end.min(range.start.saturating_add(budget));
    let bytes = memory.data(&caller).get(kept).unwrap_or_default();
    let message = sanitize(&String::from_utf8_lossy(bytes));
    let level = match level {
        0 => LogLevel::Debug,
        2 => LogLevel::Warning,
        3 => LogLevel::Error,
        _ => LogLevel::Info,
    };
    let state = caller.data_mut();
    state.log_bytes = state.log_bytes.saturating_add(message.len());
    state.log.push(LogLine { level, message });
    Ok(())
}

/// Replaces control characters (ESC and the rest) and bidirectional overrides, which could
/// rewrite a terminal or reorder what a reader sees.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn fault<T>(
    caller: &mut Caller<'_, HostState>,
    finding: impl Into<Box<Finding>>,
) -> wasmtime::Result<T> {
    let state = caller.data_mut();
    if state.fault.is_none() {
        state.fault = Some(*finding.into());
    }
    Err(wasmtime::Error::msg("the plugin broke plugin ABI v1"))
}

fn bad_output(message: String) -> Box<Finding> {
    Box::new(Finding::new(Code::PluginBadOutput, message))
}

fn timeout(limits: &Limits, when: &str) -> Stop {
    Stop::from(
        Finding::new(
            Code::PluginTimeout,
            format!(
                "the plugin was stopped {when} at its wall-clock limit of {} ms",
                limits.timeout.as_millis()
            ),
        )
        .with_hint("raise `--timeout-ms` if the plugin legitimately needs longer"),
    )
}

/// Turns a trap or an error from wasmtime into the finding that explains it.
fn classify(error: wasmtime::Error, store: &mut Store<HostState>, limits: &Limits) -> Stop {
    if let Some(finding) = store.data_mut().fault.take() {
        return Stop::from(finding);
    }
    let Some(trap) = error.downcast_ref::<Trap>() else {
        return Stop::from(Finding::new(
            Code::PluginTrap,
            format!(
                "the plugin failed: {}",
                quote(&first_line(&format!("{error:#}")))
            ),
        ));
    };
    let finding = match trap {
        Trap::Interrupt => return timeout(limits, "while running"),
        Trap::OutOfFuel => Finding::new(
            Code::PluginFuelExhausted,
            format!(
                "the plugin used up its fuel budget of {}",
                limits.fuel.unwrap_or_default()
            ),
        ),
        Trap::StackOverflow => Finding::new(
            Code::PluginStackOverflow,
            format!(
                "the plugin exhausted its {}-byte wasm stack (deep or endless recursion)",
                limits.stack_bytes
            ),
        ),
        Trap::UnreachableCodeReached => {
            let detail = last_error_line(&store.data().log)
                .map(|line| format!(": {line}"))
                .unwrap_or_default();
            Finding::new(Code::PluginPanic, format!("the plugin panicked{detail}"))
        }
        other => Finding::new(Code::PluginTrap, format!("the plugin trapped: {other}")),
    };
    Stop::from(finding)
}

fn last_error_line(log: &[LogLine]) -> Option<&str> {
    log.iter()
        .rev()
        .find(|line| line.level == LogLevel::Error)
        .map(|line| line.message.as_str())
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

fn millis_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            if self.fault.is_none() {
                self.fault = Some(
                    Finding::new(
                        Code::PluginMemoryLimit,
                        format!(
                            "the plugin asked for {desired} bytes of memory (from {current}), more than its limit of {} bytes",
                            self.memory_limit
                        ),
                    )
                    .with_mismatch(self.memory_limit.to_string(), desired.to_string())
                    .with_hint("raise `--memory-mb` if the plugin legitimately needs it"),
                );
            }
            return Err(wasmtime::Error::msg("memory limit"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_elements {
            if self.fault.is_none() {
                self.fault = Some(engine::resource_limit(format!(
                    "the plugin asked for a table of {desired} elements (from {current}), more than the limit of {}",
                    self.table_elements
                )));
            }
            return Err(wasmtime::Error::msg("table limit"));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_ranges_are_checked_without_overflow() {
        assert_eq!(guest_range(0, 4, 4), Some(0..4));
        assert_eq!(guest_range(1, 4, 4), None);
        assert_eq!(
            guest_range(u32::MAX, u32::MAX, usize::MAX),
            None.or(guest_range(u32::MAX, u32::MAX, usize::MAX))
        );
        assert_eq!(
            guest_range(u32::MAX, 2, 1 << 33),
            Some(4294967295..4294967297)
        );
        assert_eq!(guest_range(8, 0, 8), Some(8..8));
    }

    #[test]
    fn emitted_tensors_must_be_consistent() {
        let mut memory = vec![0u8; 256];
        memory[..3].copy_from_slice(b"out");
        memory[8..16].copy_from_slice(&2u64.to_le_bytes());
        let ok = check_emit(&memory, [0, 3, DType::F32.code(), 8, 1, 16, 8]).unwrap();
        assert_eq!(
            (ok.name.as_str(), ok.shape.as_slice(), ok.range),
            ("out", &[2u64][..], 16..24)
        );

        let refused = |memory: &[u8], arguments: [u32; 7]| {
            assert_eq!(
                check_emit(memory, arguments).unwrap_err().code,
                Code::PluginBadOutput,
                "{arguments:?}"
            );
        };
        let (f32, u8) = (DType::F32.code(), DType::U8.code());
        for arguments in [
            // More bytes claimed than dtype × shape.
            [0, 3, f32, 8, 1, 16, 9],
            // Data past the end of memory; a length overflowing the address space.
            [0, 3, u8, 8, 1, 255, 2],
            [0, 3, u8, 8, 1, u32::MAX, u32::MAX],
            // Unknown dtype, too many dimensions, name outside memory.
            [0, 3, 99, 8, 1, 16, 8],
            [0, 3, u8, 8, 9, 16, 8],
            [250, 10, u8, 8, 1, 16, 2],
        ] {
            refused(&memory, arguments);
        }
        // Invalid UTF-8 and control characters in the name.
        for name in [b"o\xffx", b"o\x1bx"] {
            memory[..3].copy_from_slice(name);
            refused(&memory, [0, 3, f32, 8, 1, 16, 8]);
        }
        // A shape whose product overflows.
        memory[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        memory[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        memory[..3].copy_from_slice(b"out");
        refused(&memory, [0, 3, f32, 8, 2, 32, 8]);
    }

    #[test]
    fn log_text_loses_escapes() {
        assert_eq!(
            sanitize("a\u{1b}[31mb\u{202e}c\n"),
            "a\u{fffd}[31mb\u{fffd}c\u{fffd}"
        );
    }
}
