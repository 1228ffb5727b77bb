//! The wasmtime engine configuration and the checks a compiled module must pass before it is
//! instantiated: ABI version markers, the import allowlist, required exports and declared
//! memory and table sizes. Nothing here runs guest code.

use std::borrow::Cow;

use wasmtime::{Config, Engine, ExternType, FuncType, Module, OptLevel, ValType};

use crate::finding::{quote, Code, Finding};
use crate::sandbox::{Limits, ABI_VERSION};

/// The wasmtime release this build pins (Cargo.toml requires exactly this version).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The ABI's custom section and its content for v1.
pub const ABI_SECTION: &str = "modelvet.abi";
pub const ABI_MARKER_EXPORT: &str = "modelvet_abi_v1";
pub const MEMORY_EXPORT: &str = "memory";
pub const ALLOC_EXPORT: &str = "modelvet_alloc";
pub const PROCESS_EXPORT: &str = "modelvet_process";
/// The import module of the host functions.
pub const HOST_MODULE: &str = "modelvet";

/// A fresh engine for one invocation, with only the wasm features plugins need.
pub fn engine(limits: &Limits) -> Result<Engine, String> {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .consume_fuel(limits.fuel.is_some())
        .max_wasm_stack(limits.stack_bytes)
        .parallel_compilation(true)
        // Traps carry no guest backtrace: frame names come from the untrusted name section.
        // Without backtraces, neither the address map nor native unwind tables are used; not
        // generating them shortens the compile that every run pays (start-up is measured in
        // benches/plugin_vs_native.rs).
        .wasm_backtrace_max_frames(None)
        .generate_address_map(false)
        .native_unwind_info(false)
        // What Rust's wasm32 output uses (reference types, for its tables, are on by default).
        .wasm_simd(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        // Everything else off: less code reachable from hostile bytes.
        .wasm_relaxed_simd(false)
        // Threads, shared memory, GC, exceptions, typed function references and the
        // component model are compiled out (their cargo features are off).
        .wasm_memory64(false)
        .wasm_multi_memory(false)
        .wasm_tail_call(false)
        .wasm_stack_switching(false)
        .wasm_wide_arithmetic(false)
        .wasm_custom_page_sizes(false);
    Engine::new(&config).map_err(|error| error.to_string())
}

/// The module's bytes in binary form: WAT text (handy for hand-written plugins and tests) is
/// converted first, so the ABI checks see exactly what the compiler sees.
pub fn binary(bytes: &[u8]) -> Result<Cow<'_, [u8]>, Box<Finding>> {
    wat::parse_bytes(bytes).map_err(|error| {
        Box::new(Finding::new(
            Code::PluginInvalidModule,
            format!(
                "not a WebAssembly module: {}",
                quote(&error.to_string().chars().take(500).collect::<String>())
            ),
        ))
    })
}

/// The ABI version in the module's custom section, checked before compiling.
pub fn check_abi_section(binary: &[u8]) -> Result<(), Box<Finding>> {
    let mut versions = Vec::new();
    for payload in wasmtime::wasmparser::Parser::new(0).parse_all(binary) {
        match payload {
            Ok(wasmtime::wasmparser::Payload::CustomSection(reader)) => {
                if reader.name() == ABI_SECTION {
                    versions.push(reader.data().to_vec());
                }
            }
            Ok(_) => {}
            // The compiler reports malformed modules with better messages.
            Err(_) => return Ok(()),
        }
    }
    let expected = ABI_VERSION.to_string();
    match versions.as_slice() {
        [version] if version.as_slice() == expected.as_bytes() => Ok(()),
        [] => Err(abi_mismatch(format!(
            "the module has no `{ABI_SECTION}` custom section; it is not a modelvet plugin"
        ))),
        [version] => Err(abi_mismatch(format!(
            "the module speaks plugin ABI `{}`, this host speaks `{expected}`",
            crate::finding::quote_bytes(version)
        ))),
        _ => Err(abi_mismatch(format!(
            "the module has {} `{ABI_SECTION}` sections",
            versions.len()
        ))),
    }
}

/// Imports, exports, memory and tables of a compiled module, checked before instantiation.
pub fn check_module(module: &Module, limits: &Limits) -> Result<(), Box<Finding>> {
    for import in module.imports() {
        let allowed = match (import.module(), import.name(), import.ty()) {
            (HOST_MODULE, "emit", ExternType::Func(ty)) => {
                same_signature(&ty, &vec![ValType::I32; 7], &[ValType::I32])
            }
            (HOST_MODULE, "log", ExternType::Func(ty)) => {
                same_signature(&ty, &vec![ValType::I32; 3], &[])
            }
            _ => false,
        };
        if !allowed {
            let kind = match import.ty() {
                ExternType::Func(_) => "function",
                ExternType::Memory(_) => "memory",
                ExternType::Table(_) => "table",
                ExternType::Global(_) => "global",
                ExternType::Tag(_) => "tag",
            };
            let name = format!("{}.{}", import.module(), import.name());
            let why = if import.module().starts_with("wasi") {
                " (WASI: files, sockets, clocks, environment and randomness are not available)"
            } else if import.module() == HOST_MODULE {
                " (not a host function of plugin ABI v1, or the wrong signature)"
            } else {
                ""
            };
            return Err(Finding::new(
                Code::PluginForbiddenImport,
                format!(
                    "the module imports {kind} `{}`{why}; only `modelvet.emit` and `modelvet.log` are provided",
                    quote(&name)
                ),
            )
            .at(name)
            .into());
        }
    }

    let export = |name: &str| module.get_export(name);
    match export(MEMORY_EXPORT) {
        Some(ExternType::Memory(memory)) => {
            let pages = memory.minimum();
            let bytes = pages.saturating_mul(memory.page_size());
            if bytes > limits.memory_bytes {
                return Err(Finding::new(
                    Code::PluginMemoryLimit,
                    format!(
                        "the module declares {bytes} bytes of initial memory, more than the limit of {} bytes",
                        limits.memory_bytes
                    ),
                )
                .with_mismatch(limits.memory_bytes.to_string(), bytes.to_string())
                .with_hint("raise `--memory-mb` if the plugin really needs it")
                .into());
            }
        }
        _ => {
            return Err(abi_mismatch(format!(
                "the module does not export its `{MEMORY_EXPORT}`"
            )))
        }
    }
    let functions: [(&str, Vec<ValType>, Vec<ValType>); 3] = [
        (ABI_MARKER_EXPORT, vec![], vec![]),
        (ALLOC_EXPORT, vec![ValType::I32; 2], vec![ValType::I32]),
        (PROCESS_EXPORT, vec![ValType::I32; 4], vec![ValType::I32]),
    ];
    for (name, params, results) in functions {
        match export(name) {
            Some(ExternType::Func(ty)) if same_signature(&ty, &params, &results) => {}
            Some(_) => {
                return Err(abi_mismatch(format!(
                    "export `{name}` does not have the type plugin ABI v1 requires"
                )))
            }
            None => {
                return Err(abi_mismatch(format!(
                    "the module does not export `{name}` (plugin ABI v1)"
                )))
            }
        }
    }

    // Tables are bounded by the store's limiter, which also sees tables that are not exported.
    Ok(())
}

fn same_signature(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    let same = |actual: &mut dyn ExactSizeIterator<Item = ValType>, expected: &[ValType]| {
        actual.len() == expected.len()
            && actual
                .zip(expected)
                .all(|(actual, expected)| ValType::eq(&actual, expected))
    };
    same(&mut ty.params(), params) && same(&mut ty.results(), results)
}

pub fn abi_mismatch(message: String) -> Box<Finding> {
    Box::new(
        Finding::new(Code::PluginAbiMismatch, message)
            .with_hint("build the plugin with the modelvet plugin SDK (plugins/sdk)"),
    )
}

pub fn resource_limit(message: String) -> Finding {
    Finding::new(Code::PluginResourceLimit, message)
}
