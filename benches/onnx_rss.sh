#!/usr/bin/env bash
# Peak memory of `modelvet scan` on a large ONNX model: proves the ONNX walk streams.
#
#   bash benches/onnx_rss.sh            # prints "max_rss_kib=<n> size_bytes=<n> exit=<n>"
#
# Builds modelvet (release) unless MODELVET_BIN is set, writes a model of
# MODELVET_ONNX_SIZE_MIB MiB (default 1024) with benches/onnx_large.py (standard library
# only: a Relu graph with large raw_data initializers, a few nodes after them, and a
# subgraph), runs `/usr/bin/time -v modelvet scan --format json FILE` and prints the
# "Maximum resident set size". The target is well under 64 MiB whatever the model's size.
# Environment: MODELVET_BENCH_DIR (work directory, kept), MODELVET_BIN, MODELVET_ONNX_SIZE_MIB.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZE_MIB="${MODELVET_ONNX_SIZE_MIB:-1024}"
if [[ -n "${MODELVET_BENCH_DIR:-}" ]]; then
    WORK="$MODELVET_BENCH_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
fi
if [[ -z "${MODELVET_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    MODELVET_BIN="$ROOT/target/release/modelvet"
fi
MODEL="$WORK/large-$SIZE_MIB.onnx"
[[ -f "$MODEL" ]] || python3 "$ROOT/benches/onnx_large.py" "$MODEL" "$SIZE_MIB"
set +e
/usr/bin/time -v "$MODELVET_BIN" scan --format json "$MODEL" >"$WORK/report.json" 2>"$WORK/time.txt"
CODE=$?
set -e
RSS="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
echo "max_rss_kib=$RSS size_bytes=$(stat -c %s "$MODEL") exit=$CODE"
