//! CT window + normalise on a 64 × 512 × 512 f32 volume: the `ct-window` plugin in the sandbox
//! against the same kernel compiled natively, measured in one run and printed as ratios, plus
//! the per-run start-up (compile + instantiate) of the plugin.
//!
//!     cargo bench --bench plugin_vs_native [-- RUNS]
//!
//! Both sides transform the volume in place (as the plugin does); the plugin's output must
//! equal the native output bit for bit, or the benchmark fails.

// A benchmark's report is its output, and a failure is how it says the plugin went wrong.
#![allow(clippy::print_stdout, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use modelvet::sandbox::{self, Limits, Outcome, Plugin};
use modelvet::tensor::{DType, Tensor, TensorData};
use modelvet::verify::artifact::VerifiedArtifact;
use modelvet_plugin_sdk::kernels;

const SHAPE: [u64; 3] = [64, 512, 512];
const CENTER: f32 = 40.0;
const WIDTH: f32 = 400.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(11);
    let elements = SHAPE.iter().product::<u64>() as usize;
    let volume = hounsfield_volume(elements);
    let bytes: Vec<u8> = volume
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();

    // The plugin, pinned by its digest, through the same entry point `modelvet run` uses.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/demo-model/plugins/ct-window.wasm"
    );
    let wasm = std::fs::read(path)?;
    let pin = modelvet::digest::sha256_bytes(&wasm);
    let artifact = VerifiedArtifact::from_pin("ct-window.wasm".into(), wasm, &pin)
        .map_err(|finding| finding.message.clone())?;
    let plugin = Plugin::new("ct-window", artifact);
    let limits = Limits {
        memory_bytes: 1 << 30,
        ..Limits::default()
    };
    let params = format!("{{\"center\": {CENTER}, \"width\": {WIDTH}}}");
    let input = Tensor {
        name: "image",
        dtype: DType::F32,
        shape: &SHAPE,
        data: TensorData::Memory(&bytes),
    };
    // Native and plugin runs alternate, so that a noisy neighbour hits both alike.
    let (mut process, mut startup, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut native_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        // Native: the SDK's kernel, in place on a fresh copy (the copy is not timed).
        let mut native_output = volume.clone();
        let started = Instant::now();
        kernels::window_level_in_place(&mut native_output, CENTER, WIDTH)?;
        native_times.push(started.elapsed());

        let completed = match sandbox::invoke(&plugin, &limits, &[input], &params)? {
            Outcome::Completed(completed) => completed,
            Outcome::Failed(failure) => return Err(failure.finding.message.into()),
        };
        let stats = &completed.stats;
        process.push(millis(stats.process_ms));
        startup.push(millis(stats.compile_ms + stats.instantiate_ms));
        total.push(millis(stats.total_ms));
        let outputs = completed.outputs();
        let [output] = outputs.as_slice() else {
            return Err("the plugin emitted more than one tensor".into());
        };
        let TensorData::Memory(emitted) = output.data else {
            return Err("outputs live in guest memory".into());
        };
        let identical = emitted.len() == native_output.len() * 4
            && emitted
                .chunks_exact(4)
                .zip(&native_output)
                .all(|(chunk, native)| chunk == native.to_le_bytes());
        if !identical {
            return Err("the plugin's output differs from the native kernel's".into());
        }
    }

    // The minimum is the run least disturbed by the shared machine; the median is shown too.
    let native = fastest(&native_times);
    let plugin_process = fastest(&process);
    println!(
        "ct-window on {}x{}x{} f32 ({} MiB), fastest of {runs} runs (median in brackets), outputs bit-identical",
        SHAPE[0],
        SHAPE[1],
        SHAPE[2],
        bytes.len() >> 20
    );
    println!(
        "  native kernel (in place)              {:>7.2} ms  [{:.2}]",
        ms(native),
        ms(median(&mut native_times))
    );
    println!(
        "  plugin modelvet_process (in place)    {:>7.2} ms  [{:.2}]   ratio {:.2}x native [{:.2}x] (target <= 1.5x)",
        ms(plugin_process),
        ms(median(&mut process)),
        ms(plugin_process) / ms(native),
        ms(median(&mut process)) / ms(median(&mut native_times))
    );
    println!(
        "  plugin start-up (compile+instantiate) {:>7.2} ms  [{:.2}]   (target <= 100 ms)",
        ms(fastest(&startup)),
        ms(median(&mut startup))
    );
    println!(
        "  plugin whole invocation               {:>7.2} ms  [{:.2}]   (start-up, 64 MiB copied in, process)",
        ms(fastest(&total)),
        ms(median(&mut total))
    );
    Ok(())
}

/// Plausible CT values: mostly soft tissue around 40 HU, some air and bone, deterministic.
fn hounsfield_volume(elements: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..elements)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            match state & 7 {
                0 => -1000.0 + unit * 50.0,
                1 => 300.0 + unit * 1200.0,
                _ => -100.0 + unit * 300.0,
            }
        })
        .collect()
}

fn millis(value: f64) -> Duration {
    Duration::from_secs_f64(value / 1000.0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn fastest(times: &[Duration]) -> Duration {
    times.iter().min().copied().unwrap_or_default()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
