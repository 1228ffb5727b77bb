#!/usr/bin/env bash
# Time `modelvet scan` against picklescan and ModelAudit on two large benign model files.
#
#   bash benches/scan-vs-reference.sh
#
# Steps: build modelvet (release); write a PyTorch zip checkpoint and a safetensors file of
# MODELVET_BENCH_SIZE_MIB MiB each with benches/make_large.py; install picklescan and
# modelaudit into a throw-away venv; run every tool MODELVET_BENCH_RUNS times on every file
# (after one untimed warm-up run, so all tools read from the page cache); print the median
# wall time, the exit codes and the ratios picklescan/modelvet and modelaudit/modelvet.
#
# Environment:
#   MODELVET_BENCH_DIR           work directory (kept); default: a temp dir removed at exit
#   MODELVET_BENCH_SIZE_MIB      size of each generated file in MiB (default 512)
#   MODELVET_BENCH_RUNS          timed runs per tool and file (default 5)
#   MODELVET_BENCH_SKIP_MODELVET=1  skip building and timing modelvet (to test the reference half)
#
# Exit codes of the scanners are reported, not judged: modelvet exits 1 on the checkpoint
# because it refuses every pickle, ModelAudit exits 1 because it reports pickle opcodes.
# Needs: cargo, python3 (3.9+) with venv, network access to PyPI for the reference tools.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZE_MIB="${MODELVET_BENCH_SIZE_MIB:-512}"
RUNS="${MODELVET_BENCH_RUNS:-5}"
SKIP_MODELVET="${MODELVET_BENCH_SKIP_MODELVET:-0}"

if [[ -n "${MODELVET_BENCH_DIR:-}" ]]; then
    WORK="$MODELVET_BENCH_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelvet-bench.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
fi

log() { printf '%s\n' "$*" >&2; }

# The reference tools must not phone home from a benchmark.
export PROMPTFOO_DISABLE_TELEMETRY=1 NO_ANALYTICS=1

# 1. modelvet
MODELVET="$ROOT/target/release/modelvet"
if [[ "$SKIP_MODELVET" == "1" ]]; then
    log "skipping modelvet (MODELVET_BENCH_SKIP_MODELVET=1)"
    MODELVET=""
else
    log "building modelvet (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
fi

# 2. large files
DATA="$WORK/data-${SIZE_MIB}mib"
if [[ -s "$DATA/checkpoint.pt" && -s "$DATA/model.safetensors" ]]; then
    log "reusing $DATA"
else
    log "writing ${SIZE_MIB} MiB checkpoint and safetensors files to $DATA"
    python3 "$ROOT/benches/make_large.py" "$DATA" --size-mib "$SIZE_MIB"
fi

# 3. reference tools, each optional
VENV="$WORK/venv"
PICKLESCAN=""
MODELAUDIT=""
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV" || log "warning: could not create a venv; reference tools skipped"
fi
if [[ -x "$VENV/bin/python" ]]; then
    for pkg in picklescan modelaudit; do
        if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('$pkg')" >/dev/null 2>&1; then
            log "installing $pkg"
            "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$pkg" \
                || log "warning: pip install $pkg failed; it is left out"
        fi
    done
    [[ -x "$VENV/bin/picklescan" ]] && PICKLESCAN="$VENV/bin/picklescan"
    [[ -x "$VENV/bin/modelaudit" ]] && MODELAUDIT="$VENV/bin/modelaudit"
fi
[[ -n "$PICKLESCAN" ]] || log "warning: picklescan unavailable"
[[ -n "$MODELAUDIT" ]] || log "warning: modelaudit unavailable"

version_of() {
    "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "?"
}
PICKLESCAN_VERSION="$( [[ -n "$PICKLESCAN" ]] && version_of picklescan || echo -)"
MODELAUDIT_VERSION="$( [[ -n "$MODELAUDIT" ]] && version_of modelaudit || echo -)"
MODELVET_VERSION="$( [[ -n "$MODELVET" ]] && "$MODELVET" --version 2>/dev/null | head -n1 || echo -)"

# 4 + 5. time and report
export BENCH_RUNS="$RUNS" BENCH_MODELVET="$MODELVET" BENCH_PICKLESCAN="$PICKLESCAN" BENCH_MODELAUDIT="$MODELAUDIT"
export BENCH_FILES="$DATA/checkpoint.pt:$DATA/model.safetensors" BENCH_LOGS="$WORK/logs"
export BENCH_VERSIONS="modelvet ${MODELVET_VERSION:--}; picklescan ${PICKLESCAN_VERSION}; modelaudit ${MODELAUDIT_VERSION}"
mkdir -p "$BENCH_LOGS"
python3 - <<'PY'
import os
import statistics
import subprocess
import time

runs = int(os.environ["BENCH_RUNS"])
files = os.environ["BENCH_FILES"].split(":")
logs = os.environ["BENCH_LOGS"]
tools = []
if os.environ["BENCH_MODELVET"]:
    tools.append(("modelvet", [os.environ["BENCH_MODELVET"], "scan", "--format", "json"]))
if os.environ["BENCH_PICKLESCAN"]:
    tools.append(("picklescan", [os.environ["BENCH_PICKLESCAN"], "--path"]))
if os.environ["BENCH_MODELAUDIT"]:
    tools.append(("modelaudit", [os.environ["BENCH_MODELAUDIT"], "scan", "--no-cache", "--format", "json"]))


def run(argv, log_path):
    with open(log_path, "wb") as out:
        start = time.perf_counter()
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        return time.perf_counter() - start, rc


results = {}
for path in files:
    name = os.path.basename(path)
    for tool, argv in tools:
        log_path = os.path.join(logs, f"{tool}-{name}.log")
        run(argv + [path], log_path)  # warm-up, untimed
        times, codes = [], set()
        for _ in range(runs):
            t, rc = run(argv + [path], log_path)
            times.append(t)
            codes.add(rc)
        results[(name, tool)] = (statistics.median(times), sorted(codes))
        print(f"  {name:18} {tool:11} median {statistics.median(times):8.3f} s  exit {sorted(codes)}", flush=True)

size = os.path.getsize(files[0]) / (1 << 20)
print()
print(f"files: ~{size:.0f} MiB each; {runs} timed runs after 1 warm-up; median wall seconds")
print(f"versions: {os.environ['BENCH_VERSIONS']}; logs of the last run: {logs}")
names = [t for t, _ in tools]
header = f"{'file':18} " + " ".join(f"{t + ' s (exit)':>20}" for t in names)
ratios = [t for t in ("picklescan", "modelaudit") if t in names]
header += "".join(f" {t + '/modelvet':>22}" for t in ratios)
print(header)
print("-" * len(header))
for path in files:
    name = os.path.basename(path)
    row = f"{name:18} "
    for t in names:
        med, codes = results[(name, t)]
        cell = "%.3f (%s)" % (med, ",".join(map(str, codes)))
        row += f"{cell:>20} "
    for t in ratios:
        if "modelvet" in names and results[(name, "modelvet")][0] > 0:
            row += f"{results[(name, t)][0] / results[(name, 'modelvet')][0]:>22.1f}"
        else:
            row += f"{'n/a':>22}"
    print(row.rstrip())
PY
