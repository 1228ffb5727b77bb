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
