#!/usr/bin/env bash
# Peak memory (RSS) and wall time of `modelvet scan` on large raw pickles.
#
#   bash benches/pickle-rss.sh
#
# Writes, into a temp dir, pickles of MODELVET_RSS_SIZE_MIB MiB each (default 1024):
#   bytes.pkl       protocol 5 `pickle.dump` of one big bytes object (BINBYTES), plus one
#                   BYTEARRAY8 of the same shape (bytearray.pkl)
#   opcodes.pkl     nothing but small opcodes (`K\x01` + `0`, repeated), protocol 2
#   framed.pkl      the same small opcodes in protocol 4 frames of 64 KiB (read in all three
#                   frame dialects)
#   memo.pkl        every value memoised (MEMOIZE), then popped: the memo grows to its limit
#   stack.pkl       values pushed and never popped: the stack grows to its limit
#   joblib.pkl      joblib-shaped: a pickle, then raw array bytes after a NumpyArrayWrapper
#                   BUILD (a malformed point, so the recovery scan runs over all of them),
#                   then more pickle, ending in an import the recovery scan must find
# and prints peak RSS (from `/usr/bin/time -v`), wall time, exit code and verdict for each.
# The generator is plain python3 (no pickle module use: opcodes are written by hand).
#
# Environment:
#   MODELVET_BIN            binary to measure (default: target/release/modelvet, built if missing)
#   MODELVET_RSS_DIR        work directory (kept); default: a temp dir removed at exit
#   MODELVET_RSS_SIZE_MIB   size of each input in MiB (default 1024)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZE_MIB="${MODELVET_RSS_SIZE_MIB:-1024}"
BIN="${MODELVET_BIN:-$ROOT/target/release/modelvet}"

if [[ -n "${MODELVET_RSS_DIR:-}" ]]; then
    WORK="$MODELVET_RSS_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelvet-rss.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
fi

if [[ ! -x "$BIN" ]]; then
    (cd "$ROOT" && cargo build --release --bin modelvet >&2)
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2
    exit 2
fi

python3 - "$WORK" "$SIZE_MIB" <<'PY'
import os
import struct
import sys

work, size_mib = sys.argv[1], int(sys.argv[2])
MIB = 1 << 20
total = size_mib * MIB
# 1 MiB of float-like bytes that are neither zeros nor text.
block = bytes(((i * 2654435761) >> 7) & 0xFF for i in range(MIB))


def fill(f, nbytes, unit):
    while nbytes >= len(unit):
        f.write(unit)
        nbytes -= len(unit)
    f.write(unit[:nbytes])


def write_if_missing(name, writer):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            writer(f)
        os.replace(path + ".tmp", path)


def big_bytes(opcode, width):
    def writer(f):
        n = total - 16
        f.write(b"\x80\x05" + opcode + n.to_bytes(width, "little"))
        fill(f, n, block)
        f.write(b"\x94.")
    return writer


def opcodes(f):
    f.write(b"\x80\x02N")
    fill(f, total - 4, b"K\x010" * (MIB // 3))
    f.write(b".")


def framed(f):
    f.write(b"\x80\x04")
    frame = 64 << 10
    body = (b"K\x010" * (frame // 3 + 1))[: frame - frame % 3]
    written = 2
    while written + 9 + len(body) + 10 < total:
        f.write(b"\x95" + struct.pack("<Q", len(body)) + body)
        written += 9 + len(body)
    f.write(b"\x95" + struct.pack("<Q", 2) + b"N.")


def memo(f):
    # Every value memoised and popped: the memo grows until its limit.
    f.write(b"\x80\x04N")
    fill(f, total - 4, b"K\x01\x940" * (MIB // 4))
    f.write(b".")


def stack(f):
    # Values pushed and never popped: the stack grows until its limit.
    f.write(b"\x80\x04N")
    fill(f, total - 4, b"K\x01" * (MIB // 2))
    f.write(b".")


def joblib(f):
    head = (
        b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\nq\x00)\x81q\x01}q\x02("
        b"X\x08\x00\x00\x00subclassq\x03cnumpy\nndarray\nq\x04"
        b"X\x05\x00\x00\x00shapeq\x05J\x00\x00\x10\x00\x85q\x06"
        b"X\x05\x00\x00\x00orderq\x07X\x01\x00\x00\x00Cq\x08"
        b"X\x05\x00\x00\x00dtypeq\tcnumpy\ndtype\nq\nX\x02\x00\x00\x00f8q\x0b\x89\x88\x87q\x0cRq\r"
        b"ub"
    )
    tail = b"\x00q\x0ecbuiltins\neval\nq\x0f."
    f.write(head)
    fill(f, total - len(head) - len(tail), block)
    f.write(tail)


write_if_missing("bytes.pkl", big_bytes(b"B", 4))
write_if_missing("bytearray.pkl", big_bytes(b"\x96", 8))
write_if_missing("opcodes.pkl", opcodes)
write_if_missing("framed.pkl", framed)
write_if_missing("memo.pkl", memo)
write_if_missing("stack.pkl", stack)
write_if_missing("joblib.pkl", joblib)
PY

printf '%-15s %10s %9s %5s  %s\n' input peak_rss wall exit verdict
for name in bytes.pkl bytearray.pkl opcodes.pkl framed.pkl memo.pkl stack.pkl joblib.pkl; do
    file="$WORK/$name"
    # Warm the page cache so that wall time measures the scan, not the disk.
    cat "$file" >/dev/null
    set +e
    /usr/bin/time -v -o "$WORK/time.txt" "$BIN" scan --format json "$file" >"$WORK/report.json" 2>/dev/null
    code=$?
    set -e
    rss_kb=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
    wall=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
    verdict=$(python3 -c '
import json, sys
try:
    report = json.load(open(sys.argv[1]))
    f = report["files"][0]
    codes = sorted({x["code"] for x in f["findings"]})
    print(f["verdict"], ",".join(codes))
except Exception as error:
    print("?", error)
' "$WORK/report.json")
    printf '%-15s %7d MB %9s %5s  %s\n' "$name" "$((rss_kb / 1024))" "$wall" "$code" "$verdict"
done
