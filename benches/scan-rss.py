#!/usr/bin/env python3
"""Peak memory of `modelvet scan` on 1 GiB inputs of every format it reads.

    python3 benches/scan-rss.py [--size-mib 1024] [--dir DIR] [--keep]

Writes one file per format into a temporary directory (sparse-free, real bytes, written in
chunks so this script stays small), runs `target/release/modelvet scan --format json` on each
under `/usr/bin/time -v`, and prints the format, the size, modelvet's verdict, wall time and
peak resident memory (Maximum resident set size). The target: at most 64 MB for every input.
Standard library only; build first with `cargo build --release`.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

MIB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = bytes(range(256)) * (MIB // 256)


def filler(handle, size):
    """Writes `size` bytes of a fixed pattern (incompressible enough, not zeros)."""
    while size > 0:
        part = CHUNK[: min(size, len(CHUNK))]
        handle.write(part)
        size -= len(part)


def u64(v):
    return struct.pack("<Q", v)


def u32(v):
    return struct.pack("<I", v)


def safetensors(path, size):
    header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    header += b" " * ((-len(header)) % 8)
    with open(path, "wb") as f:
        f.write(u64(len(header)) + header)
        filler(f, size)


def gguf(path, size):
    def gstr(s):
        return u64(len(s)) + s
    head = b"GGUF" + u32(3) + u64(1) + u64(1)
    head += gstr(b"general.architecture") + u32(8) + gstr(b"llama")
    head += gstr(b"w") + u32(1) + u64(size) + u32(24) + u64(0)  # one I8 tensor
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head)
        filler(f, size)


def npy(path, size):
    header = ("{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % size).encode()
    header += b" " * ((-(10 + len(header) + 1)) % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        filler(f, size)


def raw_pickle(path, size):
    """`pickle.dump(bytes)` at protocol 4: one BINBYTES8 argument of `size` bytes."""
    with open(path, "wb") as f:
        f.write(b"\x80\x04\x8e" + u64(size))
        filler(f, size)
        f.write(b"\x94.")


def small_ops_pickle(path, size):
    """A stream of `size` bytes of tiny opcodes (BININT1 then POP), then STOP."""
    block = (b"K\x010") * (MIB // 3)
    with open(path, "wb") as f:
        f.write(b"\x80\x04N")
        written = 0
        while written + len(block) < size:
            f.write(block)
            written += len(block)
        f.write(b".")


def torch_zip(path, size):
    sys.path.insert(0, os.path.join(ROOT, "benches"))
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "make_large.py"),
                    os.path.dirname(path), "--size-mib", str(size // MIB)], check=True,
                   stdout=subprocess.DEVNULL)
    os.replace(os.path.join(os.path.dirname(path), "checkpoint.pt"), path)
    os.remove(os.path.join(os.path.dirname(path), "model.safetensors"))


def tar(path, size):
    import tarfile
    data = os.path.join(os.path.dirname(path), "member.bin")
    with open(data, "wb") as f:
        filler(f, size)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        t.add(data, arcname="member.bin")
    os.remove(data)


def deflated_zip(path, size):
    """An `np.savez_compressed`-style zip: deflated `.npy` members of 120 MiB each (under the
    128 MiB per-member bound, so each is inflated whole) up to `size` of content."""
    import zipfile
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % (120 * MIB // 4)
    header += b" " * (118 - len(header)) + b"\n"
    npy_head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for index in range(max(1, size // (120 * MIB))):
            with z.open(f"arr_{index}.npy", "w", force_zip64=True) as member:
                member.write(npy_head)
                filler(member, 120 * MIB - len(npy_head))


def gzip_file(path, size):
    """A gzip stream whose content is `size` bytes (it compresses well: the pattern repeats)."""
    import gzip
    with gzip.open(path, "wb", compresslevel=1) as f:
        filler(f, size)


def unknown(path, size):
    with open(path, "wb") as f:
        state = 0x9E3779B97F4A7C15
        block = bytearray()
        for _ in range(MIB // 8):
            state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
            block += struct.pack("<Q", state)
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def json_text(path, size):
    with open(path, "w") as f:
        f.write('{"vocab": [')
        line = '"token", ' * 1000
        written = 0
        while written < size:
            f.write(line)
            written += len(line)
        f.write('"end"]}')


FORMATS = [
    ("safetensors", "model.safetensors", safetensors),
    ("gguf", "model.gguf", gguf),
    ("npy", "array.npy", npy),
    ("torch-zip", "checkpoint.pt", torch_zip),
    ("pickle (one 1 GiB bytes)", "big-bytes.pkl", raw_pickle),
    ("pickle (small opcodes)", "small-ops.pkl", small_ops_pickle),
    ("tar", "archive.tar", tar),
    ("zip (deflated members)", "arrays.npz", deflated_zip),
    ("gzip", "data.gz", gzip_file),
    ("json", "tokenizer.json", json_text),
    ("unknown", "blob.bin", unknown),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir")
    parser.add_argument("--only", help="comma-separated format names")
    args = parser.parse_args()
    binary = os.path.join(ROOT, "target", "release", "modelvet")
    if not os.path.exists(binary):
        sys.exit("build first: cargo build --release")
    work = args.dir or tempfile.mkdtemp(prefix="modelvet-rss-")
    os.makedirs(work, exist_ok=True)
    size = args.size_mib * MIB
    print(f"{'format':<28} {'size MiB':>9} {'verdict':>8} {'wall s':>7} {'peak RSS MB':>12}")
    for name, file, make in FORMATS:
        if args.only and not any(name.startswith(o) for o in args.only.split(",")):
            continue
        path = os.path.join(work, file)
        make(path, size)
        run = subprocess.run(["/usr/bin/time", "-v", binary, "scan", "--format", "json", path],
                             capture_output=True, text=True)
        rss_kb = next((int(line.split()[-1]) for line in run.stderr.splitlines()
                       if "Maximum resident set size" in line), -1)
        wall = next((line.split()[-1] for line in run.stderr.splitlines()
                     if "Elapsed (wall clock)" in line), "?")
        try:
            verdict = json.loads(run.stdout)["verdict"]
        except (ValueError, KeyError):
            verdict = f"exit {run.returncode}"
        print(f"{name:<28} {os.path.getsize(path) / MIB:>9.0f} {verdict:>8} {wall:>7} {rss_kb / 1000:>12.1f}")
        os.remove(path)
    if not args.dir:
        os.rmdir(work)


if __name__ == "__main__":
    main()
