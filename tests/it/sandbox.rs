//! `modelvet run` against hostile plugins, written as WAT text and compiled by the test (or by
//! modelvet itself, which accepts WAT): every one must be stopped or refused with exit 1, in
//! time, with the right code, and nothing may be written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use modelvet::tensor::{write_tensor_file, DType, Tensor, TensorData, TensorFormat};

/// The parts of a plugin module that the cases vary; the rest is a minimal, well-behaved
/// ABI v1 plugin (a bump allocator and a `modelvet_process` that emits its first input).
struct Wat<'a> {
    imports: &'a str,
    memory: &'a str,
    extra: &'a str,
    process: &'a str,
    alloc: &'a str,
    abi_section: &'a str,
}

const HOST_IMPORTS: &str = r#"
  (import "modelvet" "emit" (func $emit (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "modelvet" "log" (func $log (param i32 i32 i32)))"#;

/// Emits input 0 as it came, field by field from its descriptor.
const EMIT_FIRST_INPUT: &str = r#"
    (call $emit
      (i32.load offset=0 (local.get $inputs)) (i32.load offset=4 (local.get $inputs))
      (i32.load offset=8 (local.get $inputs)) (i32.load offset=16 (local.get $inputs))
      (i32.load offset=12 (local.get $inputs)) (i32.load offset=20 (local.get $inputs))
      (i32.load offset=24 (local.get $inputs)))"#;

const BUMP_ALLOC: &str = r#"
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (block $fits
      (br_if $fits (i32.le_u (i32.add (local.get $ptr) (local.get $size))
                             (i32.mul (memory.size) (i32.const 65536))))
      (drop (memory.grow (i32.add (i32.div_u (local.get $size) (i32.const 65536)) (i32.const 1)))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (local.get $ptr)"#;

impl Default for Wat<'_> {
    fn default() -> Self {
        Wat {
            imports: HOST_IMPORTS,
            memory: r#"(memory (export "memory") 2)"#,
            extra: "",
            process: EMIT_FIRST_INPUT,
            alloc: BUMP_ALLOC,
            abi_section: r#"(@custom "modelvet.abi" "1")"#,
        }
    }
}

impl Wat<'_> {
    fn text(&self) -> String {
        format!(
            r#"(module {imports}
  {memory}
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "hello \1b[31mred\e2\80\ae")
  (data (i32.const 64) "\ff\feX")
  {extra}
  (func (export "modelvet_abi_v1"))
  (func (export "modelvet_alloc") (param $size i32) (param $align i32) (result i32) {alloc})
  (func (export "modelvet_process") (param $inputs i32) (param $count i32) (param $params i32)
        (param $params_len i32) (result i32) {process})
  {abi_section})"#,
            imports = self.imports,
            memory = self.memory,
            extra = self.extra,
            alloc = self.alloc,
            process = self.process,
            abi_section = self.abi_section,
        )
    }
}

struct Run {
    code: i32,
    report: Value,
    elapsed: Duration,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

/// Writes the plugin (as WAT text, or compiled to wasm by the `wat` crate) and a 2×3 F32 input,
/// pins the plugin by its digest, and runs it.
fn run_plugin(wat: &Wat, compiled: bool, extra_args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let text = wat.text();
    let (plugin, bytes) = if compiled {
        (
            dir.path().join("plugin.wasm"),
            wat::parse_str(&text).unwrap(),
        )
    } else {
        (dir.path().join("plugin.wat"), text.into_bytes())
    };
    std::fs::write(&plugin, &bytes).unwrap();
    let input = dir.path().join("in.safetensors");
    write_input(&input);
    let output = dir.path().join("out.safetensors");
    let pin = modelvet::digest::sha256_bytes(&bytes).to_string();
    let mut args = vec![
        "run".to_owned(),
        plugin.display().to_string(),
        "--sha256".into(),
        pin,
        "--input".into(),
        input.display().to_string(),
        "--output".into(),
        output.display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    let started = Instant::now();
    let result = Command::new(env!("CARGO_BIN_EXE_modelvet"))
        .args(&args)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8(result.stdout).unwrap();
    let report = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&result.stderr)
        )
    });
    Run {
        code: result.status.code().unwrap(),
        report,
        elapsed,
        output,
        _dir: dir,
    }
}

fn write_input(path: &Path) {
    let values: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    let tensor = Tensor {
        name: "image",
        dtype: DType::F32,
        shape: &[2, 3],
        data: TensorData::Memory(&values),
    };
    write_tensor_file(path, TensorFormat::Safetensors, &[tensor]).unwrap();
}

/// Every finding code of the run, top level and per stage.
fn codes(report: &Value) -> Vec<String> {
    let top = report["findings"].as_array().into_iter().flatten();
    let stages = report["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|stage| stage["findings"].as_array().into_iter().flatten());
    top.chain(stages)
        .map(|finding| finding["code"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_refused(run: &Run, code: &str) {
    assert_eq!(run.code, 1, "{code}: {:#}", run.report);
    assert_eq!(codes(&run.report), [code], "{:#}", run.report);
    assert_eq!(run.report["verdict"], "reject");
    assert!(run.report.get("output").is_none());
    assert!(!run.output.exists(), "{code}: an output was written");
}

#[test]
fn a_well_behaved_plugin_runs_from_text_and_from_binary() {
    for compiled in [false, true] {
        let run = run_plugin(&Wat::default(), compiled, &[]);
        assert_eq!(run.code, 0, "{:#}", run.report);
        assert_eq!(run.report["verdict"], "accept");
        let stage = &run.report["stages"][0];
        assert_eq!(stage["pinned_by"]["kind"], "operator-digest");
        assert_eq!(stage["outputs"][0]["name"], "image");
        assert_eq!(stage["outputs"][0]["shape"], serde_json::json!([2, 3]));
        let written = modelvet::tensor::TensorFile::open(&run.output, "x").unwrap();
        let [tensor] = written.tensors()[..] else {
            panic!("one output")
        };
        let mut bytes = vec![0; 24];
        tensor.data.fill(&mut bytes).unwrap();
        assert_eq!(bytes[..4], 1.0f32.to_le_bytes());
    }
}

#[test]
fn endless_loops_are_stopped_at_the_timeout() {
    let endless_start = Wat {
        extra: "(func $spin (loop $forever (br $forever))) (start $spin)",
        ..Wat::default()
    };
    let endless_process = Wat {
        process: "(loop $forever (br $forever)) (i32.const 0)",
        ..Wat::default()
    };
    for wat in [&endless_start, &endless_process] {
        let run = run_plugin(wat, true, &["--timeout-ms", "300"]);
        assert_refused(&run, "plugin-timeout");
        // The deadline covers compiling too; process start-up and teardown come on top.
        assert!(
            run.elapsed < Duration::from_millis(300 + 400),
            "stopped after {:?}",
            run.elapsed
        );
        assert!(run.elapsed >= Duration::from_millis(300));
    }
}

#[test]
fn fuel_bounds_a_run_deterministically() {
    let endless = Wat {
        process: "(loop $forever (br $forever)) (i32.const 0)",
        ..Wat::default()
    };
    let run = run_plugin(&endless, true, &["--fuel", "100000"]);
    assert_refused(&run, "plugin-fuel-exhausted");
    let fine = run_plugin(&Wat::default(), true, &["--fuel", "100000"]);
    assert_eq!(fine.code, 0, "{:#}", fine.report);
    let consumed = fine.report["stages"][0]["stats"]["fuel_consumed"]
        .as_u64()
        .unwrap();
    assert!(consumed > 0 && consumed < 100_000);
}

#[test]
fn memory_is_capped_when_growing_and_when_declared() {
    let bomb = Wat {
        process: "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (i32.const 0)",
        ..Wat::default()
    };
    let run = run_plugin(&bomb, true, &["--memory-mb", "64"]);
    assert_refused(&run, "plugin-memory-limit");

    let huge_initial = Wat {
        memory: r#"(memory (export "memory") 65536)"#,
        ..Wat::default()
    };
    let run = run_plugin(&huge_initial, true, &[]);
    assert_refused(&run, "plugin-memory-limit");

    let max_pages = Wat {
        memory: r#"(memory (export "memory") 1025)"#,
        ..Wat::default()
    };
    let run = run_plugin(&max_pages, true, &["--memory-mb", "64"]);
    assert_refused(&run, "plugin-memory-limit");
}

#[test]
fn traps_map_to_their_codes() {
    let cases = [
        (
            "plugin-stack-overflow",
            Wat {
                extra: "(func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))",
                process: "(drop (call $down (i32.const 0))) (i32.const 0)",
                ..Wat::default()
            },
        ),
        (
            "plugin-trap",
            Wat {
                process: "(drop (i32.load (i32.const -4))) (i32.const 0)",
                ..Wat::default()
            },
        ),
        (
            "plugin-panic",
            Wat {
                process: "(call $log (i32.const 3) (i32.const 16) (i32.const 5)) (unreachable)",
                ..Wat::default()
            },
        ),
        (
            "plugin-resource-limit",
            Wat {
                extra: "(table 10000000 funcref)",
                ..Wat::default()
            },
        ),
        (
            "plugin-resource-limit",
            Wat {
                extra: "(table $t 1 funcref)",
                process: "(drop (table.grow $t (ref.null func) (i32.const 100000000))) (i32.const 0)",
                ..Wat::default()
            },
        ),
        (
            "plugin-failed",
            Wat {
                process: "(call $log (i32.const 3) (i32.const 16) (i32.const 5)) (i32.const 7)",
                ..Wat::default()
            },
        ),
        (
            "plugin-no-output",
            Wat {
                process: "(i32.const 0)",
                ..Wat::default()
            },
        ),
    ];
    for (code, wat) in &cases {
        let run = run_plugin(wat, true, &[]);
        assert_refused(&run, code);
    }
}

#[test]
fn imports_outside_the_abi_are_refused_by_name_before_instantiation() {
    // A `start` that would loop forever proves nothing ran: refusal is immediate.
    let endless_start = "(func $spin (loop $forever (br $forever))) (start $spin)";
    for (import, name) in [
        (
            r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1.path_open",
        ),
        (
            r#"(import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1.sock_accept",
        ),
        (
            r#"(import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))"#,
            "wasi_snapshot_preview1.clock_time_get",
        ),
        (
            r#"(import "wasi:sockets/tcp@0.2.0" "connect" (func))"#,
            "wasi:sockets/tcp@0.2.0.connect",
        ),
        (
            r#"(import "env" "system" (func (param i32) (result i32)))"#,
            "env.system",
        ),
        (
            r#"(import "modelvet" "emit" (func (param i32) (result i32)))"#,
            "modelvet.emit",
        ),
        (r#"(import "modelvet" "open" (func))"#, "modelvet.open"),
        (r#"(import "env" "memory" (memory 1))"#, "env.memory"),
    ] {
        let imports = format!("{HOST_IMPORTS}\n  {import}");
        let memory = if name == "env.memory" {
            r#"(export "memory" (memory 0))"#
        } else {
            Wat::default().memory
        };
        let wat = Wat {
            imports: &imports,
            memory,
            extra: endless_start,
            ..Wat::default()
        };
        let started = Instant::now();
        let run = run_plugin(&wat, true, &["--timeout-ms", "60000"]);
        assert_refused(&run, "plugin-forbidden-import");
        let finding = &run.report["stages"][0]["findings"][0];
        assert_eq!(finding["location"], name);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn the_host_checks_every_pointer_and_length_the_guest_hands_back() {
    let emit = |name: &str, dtype: &str, shape: &str, rank: &str, data: &str, len: &str| {
        format!(
            "(i64.store (i32.const 512) (i64.const 2)) (i64.store (i32.const 520) (i64.const 3))
             (call $emit {name} {dtype} {shape} {rank} {data} {len})"
        )
    };
    let good_name = "(i32.const 16) (i32.const 5)";
    let cases = [
        // Data far outside memory.
        emit(
            good_name,
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const -65536)",
            "(i32.const 24)",
        ),
        // A length that overflows the address space.
        emit(
            good_name,
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const 1024)",
            "(i32.const -1)",
        ),
        // More bytes than dtype × shape.
        emit(
            good_name,
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const 1024)",
            "(i32.const 1000)",
        ),
        // More bytes than the memory holds.
        emit(
            good_name,
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const 131060)",
            "(i32.const 24)",
        ),
        // A name that is not UTF-8.
        emit(
            "(i32.const 64) (i32.const 3)",
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const 1024)",
            "(i32.const 24)",
        ),
        // A name outside memory, an unknown dtype, too many dimensions, a shape outside memory.
        emit(
            "(i32.const -2) (i32.const 5)",
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const 1024)",
            "(i32.const 24)",
        ),
        emit(
            good_name,
            "(i32.const 99)",
            "(i32.const 512)",
            "(i32.const 2)",
            "(i32.const 1024)",
            "(i32.const 24)",
        ),
        emit(
            good_name,
            "(i32.const 10)",
            "(i32.const 512)",
            "(i32.const 9)",
            "(i32.const 1024)",
            "(i32.const 24)",
        ),
        emit(
            good_name,
            "(i32.const 10)",
            "(i32.const -8)",
            "(i32.const 2)",
            "(i32.const 1024)",
            "(i32.const 24)",
        ),
        // The same name twice.
        format!("(drop {}) {}", EMIT_FIRST_INPUT, EMIT_FIRST_INPUT),
        // A log line outside memory.
        "(call $log (i32.const 1) (i32.const -16) (i32.const 64)) (i32.const 0)".to_owned(),
    ];
    for process in &cases {
        let wat = Wat {
            process,
            ..Wat::default()
        };
        let run = run_plugin(&wat, true, &[]);
        assert_refused(&run, "plugin-bad-output");
    }

    let bad_alloc = Wat {
        alloc: "(i32.const -8)",
        ..Wat::default()
    };
    assert_refused(&run_plugin(&bad_alloc, true, &[]), "plugin-bad-output");
    let null_alloc = Wat {
        alloc: "(i32.const 0)",
        ..Wat::default()
    };
    assert_refused(&run_plugin(&null_alloc, true, &[]), "plugin-bad-output");
}

#[test]
fn too_many_outputs_are_refused() {
    // 300 outputs of the input, under 300 distinct one-byte names.
    let process = r#"
    (local $i i32)
    (loop $next
      (i32.store8 (i32.const 600) (local.get $i))
      (drop (call $emit (i32.const 600) (i32.const 1)
        (i32.load offset=8 (local.get $inputs)) (i32.load offset=16 (local.get $inputs))
        (i32.load offset=12 (local.get $inputs)) (i32.load offset=20 (local.get $inputs))
        (i32.load offset=24 (local.get $inputs))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 300))))
    (i32.const 0)"#;
    let wat = Wat {
        process,
        ..Wat::default()
    };
    let run = run_plugin(&wat, true, &[]);
    // Byte values below 0x20 are control characters: the first emission is refused as a bad
    // name before the count limit; both end the run.
    assert_eq!(run.code, 1);
    assert!(!run.output.exists());
}

#[test]
fn a_log_flood_is_capped_and_escapes_are_stripped() {
    let process = format!(
        r#"
    (local $i i32)
    (loop $next
      (call $log (i32.const 1) (i32.const 16) (i32.const 20))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 1000000))))
    {EMIT_FIRST_INPUT}"#
    );
    let wat = Wat {
        process: &process,
        ..Wat::default()
    };
    let run = run_plugin(&wat, true, &[]);
    assert_eq!(run.code, 0, "{:#}", run.report);
    let stage = &run.report["stages"][0];
    assert_eq!(stage["log"].as_array().unwrap().len(), 200);
    assert_eq!(stage["log_dropped"], 1_000_000 - 200);
    let message = stage["log"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains('\u{1b}') && !message.contains('\u{202e}'),
        "{message:?}"
    );
    assert!(
        message.starts_with("hello \u{fffd}[31mred\u{fffd}"),
        "{message:?}"
    );
}

#[test]
fn a_plugin_must_carry_abi_v1() {
    let cases = [
        Wat {
            abi_section: "",
            ..Wat::default()
        },
        Wat {
            abi_section: r#"(@custom "modelvet.abi" "2")"#,
            ..Wat::default()
        },
        Wat {
            memory: "(memory 2)",
            ..Wat::default()
        },
    ];
    for wat in &cases {
        assert_refused(&run_plugin(wat, true, &[]), "plugin-abi-mismatch");
    }
    let not_wasm = Wat {
        process: "(this is not wat",
        ..Wat::default()
    };
    assert_refused(&run_plugin(&not_wasm, false, &[]), "plugin-invalid-module");
    // WAT text is parsed before any check, so it is capped far below binary modules.
    let padding = format!(";; {}\n", "x".repeat(modelvet::sandbox::MAX_WAT_BYTES));
    let huge_text = Wat {
        extra: &padding,
        ..Wat::default()
    };
    let run = run_plugin(&huge_text, false, &[]);
    assert_refused(&run, "plugin-invalid-module");
    assert!(
        run.report.to_string().contains("WAT text"),
        "{}",
        run.report
    );
}

#[test]
fn a_plugin_must_be_pinned_and_match_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("spin.wat");
    // It would never end; refused plugins must not start at all.
    let endless = Wat {
        extra: "(func $spin (loop $forever (br $forever))) (start $spin)",
        ..Wat::default()
    };
    std::fs::write(&plugin, endless.text()).unwrap();
    let input = dir.path().join("in.safetensors");
    write_input(&input);
    let output = dir.path().join("out.safetensors");
    let run = |pin: &[&str]| {
        let mut args = vec![
            "run",
            plugin.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--timeout-ms",
            "60000",
        ];
        args.extend_from_slice(pin);
        crate::support::modelvet_json(&args, &[])
    };
    let wrong = modelvet::digest::sha256_bytes(b"other bytes").to_string();
    let (code, report) = run(&["--sha256", &wrong]);
    assert_eq!(code, 1);
    assert_eq!(codes(&report), ["plugin-pin-mismatch"]);
    assert_eq!(report["stages"], serde_json::json!([]));
    assert_eq!(report["findings"][0]["expected"], format!("sha256:{wrong}"));

    let (code, report) = run(&[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&report), ["plugin-unpinned"]);
    assert!(!output.exists());
}

#[test]
fn operator_mistakes_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("p.wat");
    std::fs::write(&plugin, Wat::default().text()).unwrap();
    let pin = modelvet::digest::sha256_bytes(&std::fs::read(&plugin).unwrap()).to_string();
    let input = dir.path().join("in.safetensors");
    write_input(&input);
    let not_tensors = dir.path().join("notes.txt");
    std::fs::write(&not_tensors, "hello").unwrap();
    let p = plugin.to_str().unwrap();
    let out = dir.path().join("out.safetensors");
    let out = out.to_str().unwrap();
    for args in [
        vec![
            "run",
            p,
            "--sha256",
            &pin,
            "--input",
            not_tensors.to_str().unwrap(),
            "--output",
            out,
        ],
        vec![
            "run",
            p,
            "--sha256",
            &pin,
            "--input",
            "missing.safetensors",
            "--output",
            out,
        ],
        vec![
            "run",
            p,
            "--sha256",
            &pin,
            "--input",
            input.to_str().unwrap(),
            "--output",
            out,
            "--params",
            "[1]",
        ],
        vec![
            "run",
            p,
            "--sha256",
            &pin,
            "--input",
            input.to_str().unwrap(),
            "--output",
            out,
            "--memory-mb",
            "5000",
        ],
        vec![
            "run",
            p,
            "--sha256",
            &pin,
            "--input",
            input.to_str().unwrap(),
            "--output",
            out,
            "--timeout-ms",
            "0",
        ],
        vec!["run", "--input", input.to_str().unwrap(), "--output", out],
    ] {
        let (code, _, stderr) = crate::support::modelvet(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}

/// Reads one F32 or U8 tensor file written by `modelvet run`.
fn read_single(path: &Path) -> (Vec<u64>, Vec<u8>) {
    let file = modelvet::tensor::TensorFile::open(path, "x").unwrap();
    let [tensor] = file.tensors()[..] else {
        panic!("one tensor expected in {}", path.display())
    };
    let mut bytes = vec![0; tensor.data.len() as usize];
    tensor.data.fill(&mut bytes).unwrap();
    (tensor.shape.to_vec(), bytes)
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect()
}

fn demo_plugin(name: &str) -> PathBuf {
    crate::support::fixture(&format!("demo-model/plugins/{name}.wasm"))
}

/// Runs an example plugin file pinned by its digest.
fn run_example(plugin: &str, input: &Path, output: &Path, params: &str) -> (i32, Value) {
    let path = demo_plugin(plugin);
    let pin = modelvet::digest::sha256_bytes(&std::fs::read(&path).unwrap()).to_string();
    crate::support::modelvet_json(
        &[
            "run",
            path.to_str().unwrap(),
            "--sha256",
            &pin,
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--params",
            params,
        ],
        &[],
    )
}

#[test]
fn example_plugins_equal_the_native_kernels_bit_for_bit() {
    use modelvet_plugin_sdk::kernels;
    let dir = tempfile::tempdir().unwrap();
    let slice = crate::support::fixture("ct-slice/ct-slice.safetensors");
    let (shape, bytes) = read_single(&slice);
    let hounsfield = f32s(&bytes);

    for (center, width) in [(40.0f32, 400.0f32), (300.0, 1500.0), (-600.0, 1.5)] {
        let out = dir.path().join("windowed.safetensors");
        let params = format!(r#"{{"center": {center}, "width": {width}}}"#);
        let (code, report) = run_example("ct-window", &slice, &out, &params);
        assert_eq!(code, 0, "{report:#}");
        let (out_shape, out_bytes) = read_single(&out);
        let mut native = vec![0.0f32; hounsfield.len()];
        kernels::window_level(&hounsfield, &mut native, center, width).unwrap();
        assert_eq!(out_shape, shape);
        let native_bytes: Vec<u8> = native.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(
            out_bytes == native_bytes,
            "ct-window {params} differs from native"
        );
    }

    // Threshold and sigmoid-threshold on windowed values; argmax over three channels with
    // ties and NaN.
    let windowed = dir.path().join("windowed.safetensors");
    run_example("ct-window", &slice, &windowed, "{}");
    let scores = f32s(&read_single(&windowed).1);
    for (params, sigmoid) in [
        (r#"{"threshold": 0.25}"#, false),
        (r#"{"threshold": 0.6, "activation": "sigmoid"}"#, true),
    ] {
        let out = dir.path().join("mask.safetensors");
        let (code, report) = run_example("label-mask", &windowed, &out, params);
        assert_eq!(code, 0, "{report:#}");
        let mut native = vec![0u8; scores.len()];
        let threshold: f32 = if sigmoid { 0.6 } else { 0.25 };
        if sigmoid {
            kernels::sigmoid_threshold(&scores, &mut native, threshold).unwrap();
        } else {
            kernels::threshold(&scores, &mut native, threshold).unwrap();
        }
        assert_eq!(read_single(&out).1, native, "label-mask {params}");
    }

    let plane = 64 * 64;
    let channels: Vec<f32> = (0..3 * plane)
        .map(|i| match i % 97 {
            0 => f32::NAN,
            n if n % 5 == 0 => 1.0,
            n => (n as f32 * 0.37).sin(),
        })
        .collect();
    let logits = dir.path().join("logits.npy");
    let data: Vec<u8> = channels.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_tensor_file(
        &logits,
        TensorFormat::Npy,
        &[Tensor {
            name: "logits",
            dtype: DType::F32,
            shape: &[3, 64, 64],
            data: TensorData::Memory(&data),
        }],
    )
    .unwrap();
    let labels = dir.path().join("labels.npy");
    let (code, report) = run_example("label-mask", &logits, &labels, r#"{"mode": "argmax"}"#);
    assert_eq!(code, 0, "{report:#}");
    let (label_shape, label_bytes) = read_single(&labels);
    let mut native = vec![0u8; plane];
    kernels::argmax_channels(&channels, 3, plane, &mut native).unwrap();
    assert_eq!(label_shape, [64, 64]);
    assert_eq!(label_bytes, native);
}

/// `modelvet run --manifest ... --plugin ct-window --plugin label-mask`, as the README shows.
fn run_demo_chain(dir: &Path, state: &Path, output: &Path) -> (i32, Value) {
    let manifest = crate::support::root().join("manifests/demo/manifest.json");
    let trust = crate::support::root().join("manifests/demo/trust.json");
    let slice = crate::support::fixture("ct-slice/ct-slice.safetensors");
    crate::support::modelvet_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--plugin",
            "ct-window",
            "--plugin",
            "label-mask",
            "--input",
            slice.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    )
}

#[test]
fn the_demo_manifest_pins_and_chains_both_plugins() {
    use modelvet_plugin_sdk::kernels;
    let work = tempfile::tempdir().unwrap();
    let output = work.path().join("mask.safetensors");
    let (code, report) = run_demo_chain(
        &crate::support::fixture("demo-model"),
        &work.path().join("state"),
        &output,
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["manifest"]["name"], "modelvet-demo/ct-segmenter");
    let stages = report["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    for (stage, name) in stages.iter().zip(["ct-window", "label-mask"]) {
        assert_eq!(stage["plugin"], name);
        assert_eq!(stage["pinned_by"]["kind"], "manifest");
        // The manifest's declared limits apply.
        assert_eq!(stage["limits"]["timeout_ms"], 5000);
        assert_eq!(stage["limits"]["memory_bytes"], 256 << 20);
    }
    assert_eq!(report["output"]["tensors"][0]["name"], "mask");

    // The chain equals the native kernels, bit for bit.
    let (_, slice) = read_single(&crate::support::fixture("ct-slice/ct-slice.safetensors"));
    let hounsfield = f32s(&slice);
    let mut windowed = vec![0.0; hounsfield.len()];
    kernels::window_level(&hounsfield, &mut windowed, 40.0, 400.0).unwrap();
    let mut mask = vec![0u8; windowed.len()];
    kernels::threshold(&windowed, &mut mask, 0.5).unwrap();
    assert_eq!(read_single(&output).1, mask);
}

#[test]
fn a_tampered_or_unlisted_plugin_never_starts() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    crate::support::copy_dir(&crate::support::fixture("demo-model"), &model);
    // Same size, other bytes: a module that would loop forever if it were ever started.
    let plugin = model.join("plugins/ct-window.wasm");
    let size = std::fs::metadata(&plugin).unwrap().len() as usize;
    let endless = wat::parse_str(
        Wat {
            extra: "(func $spin (loop $forever (br $forever))) (start $spin)",
            ..Wat::default()
        }
        .text(),
    )
    .unwrap();
    let mut padded = endless.clone();
    padded.resize(size, 0);
    std::fs::write(&plugin, &padded).unwrap();
    let output = work.path().join("mask.safetensors");
    let started = Instant::now();
    let (code, report) = run_demo_chain(&model, &work.path().join("state"), &output);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(codes(&report), ["plugin-pin-mismatch"]);
    assert_eq!(report["stages"], serde_json::json!([]));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!output.exists());
}

/// The committed example plugins are exactly what their sources build to (needs the
/// wasm32-unknown-unknown target and rustc 1.95.0, which `.ci/run` provides).
#[test]
fn example_plugins_rebuild_to_the_pinned_bytes() {
    let script = crate::support::root().join("plugins/build.sh");
    let result = Command::new("bash")
        .arg(&script)
        .arg("--check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    match result.status.code() {
        Some(0) => {}
        // Another compiler, or no wasm target and no way to add it: only CI must run this.
        Some(3) if std::env::var_os("CI").is_none() => eprintln!("skipped: {stderr}"),
        Some(_) if std::env::var_os("CI").is_none() && stderr.contains("rustup") => {
            eprintln!("skipped: {stderr}")
        }
        other => panic!(
            "plugins/build.sh --check failed ({other:?}):\n{}\n{stderr}",
            String::from_utf8_lossy(&result.stdout)
        ),
    }
}
