#!/usr/bin/env bash
# Download throughput against curl, measured in one run from the same loopback nginx:
#   curl -sSf --cacert CA -o OUT URL                    (fetches, nothing else)
#   modelvet fetch MANIFEST ... --no-cache --dest D     (fetches, hashes, verifies, places)
# Wall time (median of MODELVET_BENCH_RUNS, default 3, fresh destination each run), the ratio
# modelvet/curl (target: at most 1.1) and each tool's peak resident memory.
#
#   bash benches/fetch-vs-curl.sh       # size in MiB: MODELVET_BENCH_FETCH_MIB (default 2048)
#
# Both tools download from tests/nginx/setup.sh, over plain HTTP and then over HTTPS with its
# throw-away CA (both pay for TLS: curl with OpenSSL, modelvet with rustls);
# MODELVET_BENCH_FETCH_SCHEME=http or =https runs only one of them. The served file is random
# bytes, warmed into the page cache, so
# nginx never waits for the disk; both tools write their copy to the same filesystem, which is
# part of what is measured (`sync` runs before each timed run, so no run pays for the
# write-back of the one before). The work directory (MODELVET_BENCH_DIR, default a temp dir
# removed at exit) needs room for two copies.
# Without `modelvet fetch` in the build, only curl is measured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIB="${MODELVET_BENCH_FETCH_MIB:-2048}"
RUNS="${MODELVET_BENCH_RUNS:-3}"
# Without a scheme chosen, measure both, plain HTTP first (what `curl -o` over loopback means
# by default) and then HTTPS, each in its own run of this script.
if [[ -z "${MODELVET_BENCH_FETCH_SCHEME:-}" ]]; then
    for scheme in http https; do
        echo "== $scheme"
        MODELVET_BENCH_FETCH_SCHEME="$scheme" bash "${BASH_SOURCE[0]}"
    done
    exit 0
fi
SCHEME="$MODELVET_BENCH_FETCH_SCHEME"
SETUP="$ROOT/tests/nginx/setup.sh"
if [[ -n "${MODELVET_BENCH_DIR:-}" ]]; then
    WORK="$MODELVET_BENCH_DIR"; mkdir -p "$WORK"
    trap 'bash "$SETUP" stop "$WORK/nginx" 2> /dev/null || true' EXIT
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelvet-fetch-bench.XXXXXX")"
    trap 'bash "$SETUP" stop "$WORK/nginx" 2> /dev/null || true; rm -rf "$WORK"' EXIT
fi
log() { printf '%s\n' "$*" >&2; }

(cd "$ROOT" && cargo build --release --quiet)
TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
MODELVET="$TARGET/release/modelvet"

mkdir -p "$WORK/serve"
FILE="$WORK/serve/model.bin"
if ! [[ -s "$FILE" && $(stat -c %s "$FILE") -eq $(( MIB * 1048576 )) ]]; then
    log "writing $FILE ($MIB MiB)"
    head -c "$(( MIB * 1048576 ))" /dev/urandom > "$FILE"
fi
cat "$FILE" > /dev/null  # into the page cache

bash "$SETUP" stop "$WORK/nginx" 2> /dev/null || true
MODELVET_NGINX_SCHEME="$SCHEME" bash "$SETUP" start "$WORK/serve" "$WORK/nginx" > "$WORK/server.txt"
URL="$(sed -n 's/^url=//p' "$WORK/server.txt")"
CA="$(sed -n 's/^ca=//p' "$WORK/server.txt")"

FETCH=0
if "$MODELVET" fetch --help > /dev/null 2>&1; then
    FETCH=1
    # A new manifest (the port changes every run) is new bytes for version 1: a kept rollback
    # state would refuse it as a reused version.
    rm -rf "$WORK/manifest.json" "$WORK/manifest.json.sig" "$WORK/state"
    [[ -f "$WORK/snakeoil.key" ]] || "$MODELVET" key generate --out "$WORK/snakeoil" > /dev/null
    [[ -f "$WORK/trust.json" ]] || "$MODELVET" trust init --key "$WORK/snakeoil.pub" --out "$WORK/trust.json" > /dev/null
    # MODELVET_BENCH_CHUNK_MIB: record chunk digests, so that fetch uses parallel ranges.
    chunk=()
    [[ -n "${MODELVET_BENCH_CHUNK_MIB:-}" ]] && chunk=(--chunk-size "$(( MODELVET_BENCH_CHUNK_MIB * 1048576 ))")
    "$MODELVET" manifest create "$WORK/serve" --name bench/fetch --version 1 "${chunk[@]}" \
        --expires 2099-01-01T00:00:00Z --source-prefix "$URL" --out "$WORK/manifest.json" > /dev/null
    "$MODELVET" sign "$WORK/manifest.json" --key "$WORK/snakeoil.key" > /dev/null
fi

python3 - "$MODELVET" "$WORK" "$RUNS" "$URL" "$CA" "$FETCH" "$MIB" "$SCHEME" <<'PY'
import os, shutil, statistics, sys, time

modelvet, work, runs, url, ca, fetch, mib, scheme = sys.argv[1:]
runs, fetch = int(runs), fetch == "1"

GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

def spawn(cmd):
    """Wall seconds and the child's peak RSS (KiB) from wait4; stdout is kept in a file and
    shown only if the run fails."""
    stdout = f"{work}/stdout.txt"
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        with open(stdout, errors="replace") as report:
            sys.stderr.write(report.read()[-4000:])
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss

def run(cmd):
    """Wall seconds and peak RSS (KiB) of one run of `cmd`. After fork, wait4's figure is at
    least the forking Python's own size, so GNU time (a small process) measures when present."""
    if not GNU_TIME:
        return spawn(cmd)
    report = f"{work}/time.txt"
    elapsed, _ = spawn([GNU_TIME, "-f", "%M", "-o", report, *cmd])
    with open(report) as lines:
        return elapsed, int(lines.read().split()[-1])

def measure(cmd, out):
    """Median wall time, largest peak RSS and every time over `runs`, each into a fresh
    destination."""
    times, peaks = [], []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        os.sync()  # the last run's dirty pages are written back outside the timing
        elapsed, peak = run(cmd)
        times.append(elapsed)
        peaks.append(peak)
    shutil.rmtree(out, ignore_errors=True)
    return statistics.median(times), max(peaks), times

tls = ["--cacert", ca] if scheme == "https" else []
file_url = url + "model.bin"
curl_out = f"{work}/out-curl"
curl = measure(["curl", "-sSf", *tls, "--create-dirs", "-o", f"{curl_out}/model.bin", file_url], curl_out)

size = int(mib) * 1048576

def row(name, result):
    median, peak, times = result
    every = ", ".join(f"{t:.2f}" for t in times)
    print(f"{name:<9} {median:>8.3f} {size / 1048576 / median:>8.0f} {peak / 1024:>9.1f} MiB   {every}")

print(f"{mib} MiB over {scheme} from nginx on loopback; {runs} runs each, median wall time")
print(f"{'tool':<9} {'wall s':>8} {'MiB/s':>8} {'peak RSS':>13}   every run (s)")
if not GNU_TIME:
    floor = spawn(["true"])[1]
    print(f"(peak RSS from wait4, which reads at least {floor / 1024:.1f} MiB here; install GNU time for exact figures)")
row("curl", curl)
if not fetch:
    print("modelvet fetch not available: curl only")
    sys.exit(0)

dest = f"{work}/out-modelvet"
cmd = [modelvet, "fetch", f"{work}/manifest.json", "--trust", f"{work}/trust.json",
       "--state", f"{work}/state", "--no-cache", "--dest", dest]
cmd += ["--ca-cert", ca] if scheme == "https" else ["--unsafe-allow-http"]
mv = measure(cmd, dest)
row("modelvet", mv)
ratio = mv[0] / curl[0]
print(f"modelvet/curl wall time: {ratio:.2f} (target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")
PY
