#!/usr/bin/env bash
# Scans every real ONNX model of the `onnx` wheel's backend test data (and, optionally, the
# node-test models generated from the wheel's test cases) with the built modelvet binary,
# and prints how many were accepted, warned about and rejected. Every one must be accepted.
#
#   bash benches/onnx_corpus.sh              # data of the installed `onnx` package
#   MODELVET_ONNX_NODE_CASES=1 bash benches/onnx_corpus.sh   # also ~1900 generated node models
#
# Needs: python3 with `onnx` (pip install onnx); builds modelvet (release) unless MODELVET_BIN
# is set. Exit status 1 if any model is not accepted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${MODELVET_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    MODELVET_BIN="$ROOT/target/release/modelvet"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
DATA="$(python3 -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))')"
DIRS=("$DATA")
if [[ "${MODELVET_ONNX_NODE_CASES:-0}" == 1 ]]; then
    python3 - "$WORK/node" <<'PY'
import os, sys, warnings
warnings.simplefilter("ignore")
from onnx.backend.test.case import node
for case in node.collect_testcases(None):
    d = os.path.join(sys.argv[1], case.name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
PY
    DIRS+=("$WORK/node")
fi
python3 - "$MODELVET_BIN" "${DIRS[@]}" <<'PY'
import collections, json, os, subprocess, sys
binary, dirs = sys.argv[1], sys.argv[2:]
counts = collections.Counter()
bad = []
for top in dirs:
    for root, _, files in os.walk(top):
        for name in sorted(files):
            if not name.endswith(".onnx"):
                continue
            path = os.path.join(root, name)
            run = subprocess.run([binary, "scan", "--format", "json", path], capture_output=True)
            try:
                report = json.loads(run.stdout)
                verdict = report["verdict"]
                why = "; ".join(f"{f['code']}: {f['message']}" for f in report["files"][0]["findings"])
            except (ValueError, KeyError, IndexError):
                verdict, why = f"error (exit {run.returncode})", run.stderr.decode(errors="replace")
            counts[verdict] += 1
            if verdict != "accept":
                bad.append((path, verdict, why[:300]))
print(f"models={sum(counts.values())} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
for path, verdict, out in bad[:20]:
    print(f"  {verdict}: {path}\n    {out}")
sys.exit(1 if bad else 0)
PY
