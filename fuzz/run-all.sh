#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, seeded with the repository's fixtures.
# Works on the stable toolchain: cargo-fuzz needs nightly-only flags, which RUSTC_BOOTSTRAP
# unlocks.  Install once with `cargo install cargo-fuzz --locked`.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in pickle zip tar compressed safetensors gguf onnx tensorflow scan manifest envelope sha256sums monai tensor_file plugin receipt hdf5 template; do
    mkdir -p "corpus/$target"
    # Seed with every fixture: the format parsers must survive each other's inputs too.
    find ../fixtures -type f -size -256k ! -name '*.py' ! -name '*.md' \
        -exec cp -n {} "corpus/$target/" \; 2>/dev/null || true
    echo "--- $target (${SECONDS_EACH}s)"
    cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
        | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|panicked|SUMMARY" || true
done
