#!/usr/bin/env bash
# Verify throughput against `openssl dgst -sha256`, measured in one run on the same files:
#   1. one large file (default 4 GiB): modelvet should take no longer than openssl
#   2. two files (default 2 x 2 GiB): modelvet hashes them in parallel, openssl one by one
# and modelvet's peak resident memory, which must stay bounded whatever the model size.
#
#   bash benches/verify-vs-openssl.sh            # sizes in MiB: MODELVET_BENCH_ONE_MIB, MODELVET_BENCH_TWO_MIB
#
# The work directory (MODELVET_BENCH_DIR, default a temp dir removed at exit) needs room for
# both models. Files are random bytes; the page cache is warmed before timing, so both tools
# read from memory and the comparison is of hashing, not of the disk.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ONE_MIB="${MODELVET_BENCH_ONE_MIB:-4096}"
TWO_MIB="${MODELVET_BENCH_TWO_MIB:-2048}"
RUNS="${MODELVET_BENCH_RUNS:-3}"
if [[ -n "${MODELVET_BENCH_DIR:-}" ]]; then
    WORK="$MODELVET_BENCH_DIR"; mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelvet-verify-bench.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
fi
log() { printf '%s\n' "$*" >&2; }

(cd "$ROOT" && cargo build --release --quiet)
MODELVET="$ROOT/target/release/modelvet"

make_file() {  # path size_mib
    [[ -s "$1" && $(stat -c %s "$1") -eq $(( $2 * 1048576 )) ]] && return
    log "writing $1 ($2 MiB)"
    head -c "$(( $2 * 1048576 ))" /dev/urandom > "$1"
}

release() {  # dir: key, trust, manifest, signature, all made by modelvet itself
    local dir="$1"
    rm -f "$WORK/$2.json" "$WORK/$2.json.sig"
    [[ -f "$WORK/snakeoil.key" ]] || "$MODELVET" key generate --out "$WORK/snakeoil" > /dev/null
    [[ -f "$WORK/trust.json" ]] || "$MODELVET" trust init --key "$WORK/snakeoil.pub" --out "$WORK/trust.json" > /dev/null
    "$MODELVET" manifest create "$dir" --name "bench/$2" --version 1 \
        --expires 2099-01-01T00:00:00Z --out "$WORK/$2.json" > /dev/null
    "$MODELVET" sign "$WORK/$2.json" --key "$WORK/snakeoil.key" > /dev/null
}

mkdir -p "$WORK/one" "$WORK/two"
make_file "$WORK/one/model.bin" "$ONE_MIB"
make_file "$WORK/two/part-1.bin" "$TWO_MIB"
make_file "$WORK/two/part-2.bin" "$TWO_MIB"
release "$WORK/one" one
release "$WORK/two" two

python3 - "$MODELVET" "$WORK" "$RUNS" <<'PY'
import os, resource, statistics, subprocess, sys, time

modelvet, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def timed(cmd):
    """Median wall time over `runs`, and the peak RSS (KiB) of the child processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

def peak_rss_kib(cmd):
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execvp(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return usage.ru_maxrss

def verify(name):
    return [modelvet, "verify", f"{work}/{name}", "--manifest", f"{work}/{name}.json",
            "--trust", f"{work}/trust.json", "--unsafe-no-rollback-check"]

cases = [
    ("one file", verify("one"), ["openssl", "dgst", "-sha256", f"{work}/one/model.bin"]),
    ("two files", verify("two"), ["openssl", "dgst", "-sha256", f"{work}/two/part-1.bin", f"{work}/two/part-2.bin"]),
]
print(f"{'case':<10} {'modelvet s':>11} {'openssl s':>10} {'openssl/modelvet':>17} {'modelvet peak RSS':>18}")
for name, mv, ossl in cases:
    for cmd in (mv, ossl):  # warm the page cache
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    t_mv, t_ossl = timed(mv), timed(ossl)
    rss = peak_rss_kib(mv)
    print(f"{name:<10} {t_mv:>11.3f} {t_ossl:>10.3f} {t_ossl / t_mv:>17.2f} {rss / 1024:>15.1f} MiB")
print(f"({runs} runs each, median; openssl hashes files one after the other, modelvet one per core)")
PY
