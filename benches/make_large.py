#!/usr/bin/env python3
"""Write two large benign model files for benches/scan-vs-reference.sh.

    python3 benches/make_large.py OUT_DIR [--size-mib 512]

- OUT_DIR/checkpoint.pt: a PyTorch zip checkpoint as torch.save writes it: stored members
  `checkpoint/data.pkl` (protocol 2 state_dict pickle using collections.OrderedDict,
  torch._utils._rebuild_tensor_v2 and torch.FloatStorage persistent ids),
  `checkpoint/byteorder`, `checkpoint/data/N` (64-byte aligned through a padding extra
  field, like torch), `checkpoint/version` and `checkpoint/.data/serialization_id`.
- OUT_DIR/model.safetensors: a safetensors file with a few large F32 tensors.

Each file is about --size-mib MiB. Standard library only; never imports pickle (the pickle
is written opcode by opcode). Output is deterministic.
"""

import argparse
import array
import json
import os
import struct
import sys
import zlib

MIB = 1 << 20
N_TENSORS = 8
ROW = 1024  # floats per row of every tensor


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def float_block():
    """1 MiB of float32 values with some variety (not all zeros, not compressible to nothing)."""
    values = array.array("f", (((i * 2654435761) % 2001 - 1000) / 1000.0 for i in range(MIB // 4)))
    if values.itemsize != 4:
        raise SystemExit("unexpected float size")
    if sys.byteorder != "little":
        values.byteswap()
    return values.tobytes()


def write_block_stream(f, nbytes, block, crc=0):
    remaining = nbytes
    while remaining:
        chunk = block if remaining >= len(block) else block[:remaining]
        f.write(chunk)
        crc = zlib.crc32(chunk, crc)
        remaining -= len(chunk)
    return crc


# --- pickle opcodes (protocol 2), enough for a state_dict -------------------------------------
MARK, STOP, BINPERSID, REDUCE, BUILD = b"(", b".", b"Q", b"R", b"b"
EMPTY_DICT, EMPTY_TUPLE, SETITEM, SETITEMS, TUPLE = b"}", b")", b"s", b"u", b"t"
BINGET, BINPUT, LONG_BINPUT, NEWFALSE = b"h", b"q", b"r", b"\x89"
TUPLE1, TUPLE2 = b"\x85", b"\x86"


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def bstr(s):
    b = s.encode()
    return b"X" + u32(len(b)) + b


def bint(v):
    if v < 256:
        return b"K" + bytes([v])
    if v < 65536:
        return b"M" + u16(v)
    if v < 2**31:
        return b"J" + struct.pack("<i", v)
    return b"\x8a\x08" + struct.pack("<q", v)


class Memo:
    def __init__(self):
        self.n = 0

    def put(self):
        b = BINPUT + bytes([self.n]) if self.n < 256 else LONG_BINPUT + u32(self.n)
        self.n += 1
        return b


def state_dict_pickle(tensors):
    """tensors: list of (name, rows, cols, storage_key)."""
    memo = Memo()
    out = bytearray(b"\x80\x02")
    out += glob("collections", "OrderedDict") + memo.put() + EMPTY_TUPLE + REDUCE + memo.put()
    out += MARK
    for name, rows, cols, key in tensors:
        out += bstr(name) + memo.put() + glob("torch._utils", "_rebuild_tensor_v2") + memo.put()
        out += MARK + MARK + bstr("storage") + memo.put() + glob("torch", "FloatStorage") + memo.put()
        out += bstr(key) + memo.put() + bstr("cpu") + memo.put() + bint(rows * cols) + TUPLE + memo.put()
        out += BINPERSID + bint(0)
        out += bint(rows) + bint(cols) + TUPLE2 + memo.put() + bint(cols) + bint(1) + TUPLE2 + memo.put()
        out += NEWFALSE + BINGET + b"\x00" + EMPTY_TUPLE + REDUCE + memo.put()
        out += TUPLE + memo.put() + REDUCE + memo.put()
    out += SETITEMS
    out += EMPTY_DICT + memo.put() + bstr("_metadata") + memo.put() + BINGET + b"\x00" + EMPTY_TUPLE + REDUCE + memo.put()
    out += bstr("") + memo.put() + EMPTY_DICT + memo.put() + bstr("version") + memo.put() + bint(1)
    out += SETITEM + SETITEM + SETITEM + BUILD + STOP
    return bytes(out)


# --- zip writer (stored, 64-byte aligned data, no data descriptors) ---------------------------
class ZipWriter:
    def __init__(self, f):
        self.f = f
        self.central = []

    def add(self, name, size, fill, align=64):
        """fill(f) writes exactly `size` bytes and returns their CRC-32."""
        name_b = name.encode()
        offset = self.f.tell()
        pad = (-(offset + 30 + len(name_b) + 4)) % align
        extra = b"FB" + u16(pad) + b"Z" * pad
        header_at = offset
        self.f.write(self._local(name_b, extra, 0, size))
        crc = fill(self.f)
        end = self.f.tell()
        self.f.seek(header_at + 14)
        self.f.write(u32(crc))
        self.f.seek(end)
        self.central.append((name_b, crc, size, offset))

    @staticmethod
    def _local(name_b, extra, crc, size):
        return (b"PK\x03\x04" + u16(20) + u16(0) + u16(0) + u16(0) + u16(0x21) + u32(crc)
                + u32(size) + u32(size) + u16(len(name_b)) + u16(len(extra)) + name_b + extra)

    def close(self):
        start = self.f.tell()
        for name_b, crc, size, offset in self.central:
            self.f.write(b"PK\x01\x02" + u16(0x031E) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0x21)
                         + u32(crc) + u32(size) + u32(size) + u16(len(name_b)) + u16(0) + u16(0)
                         + u16(0) + u16(0) + u32(0o100644 << 16) + u32(offset) + name_b)
        size = self.f.tell() - start
        n = len(self.central)
        self.f.write(b"PK\x05\x06" + u16(0) + u16(0) + u16(n) + u16(n) + u32(size) + u32(start) + u16(0))


def tensor_rows(total_bytes):
    """Split total_bytes into N_TENSORS tensors of whole ROW-float rows."""
    rows_total = max(N_TENSORS, total_bytes // (ROW * 4))
    base = rows_total // N_TENSORS
    return [base + (1 if i < rows_total % N_TENSORS else 0) for i in range(N_TENSORS)]


def write_checkpoint(path, size_bytes, block):
    rows = tensor_rows(size_bytes)
    tensors = [(f"layers.{i}.weight", r, ROW, str(i)) for i, r in enumerate(rows)]
    pkl = state_dict_pickle(tensors)
    with open(path, "wb") as f:
        z = ZipWriter(f)

        def raw(data):
            return lambda fh: (fh.write(data), zlib.crc32(data))[1]

        z.add("checkpoint/data.pkl", len(pkl), raw(pkl))
        z.add("checkpoint/byteorder", 6, raw(b"little"))
        for (_, r, c, key) in tensors:
            z.add(f"checkpoint/data/{key}", r * c * 4, lambda fh, n=r * c * 4: write_block_stream(fh, n, block))
        z.add("checkpoint/version", 2, raw(b"3\n"))
        sid = b"0" * 40
        z.add("checkpoint/.data/serialization_id", len(sid), raw(sid))
        z.close()


def write_safetensors(path, size_bytes, block):
    rows = tensor_rows(size_bytes)
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for i, r in enumerate(rows):
        n = r * ROW * 4
        header[f"model.layers.{i}.weight"] = {"dtype": "F32", "shape": [r, ROW], "data_offsets": [offset, offset + n]}
        offset += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(u64(len(hb)) + hb)
        write_block_stream(f, offset, block)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--size-mib", type=int, default=512)
    args = ap.parse_args()
    if args.size_mib < 1:
        raise SystemExit("--size-mib must be at least 1")
    os.makedirs(args.out_dir, exist_ok=True)
    block = float_block()
    size = args.size_mib * MIB
    write_checkpoint(os.path.join(args.out_dir, "checkpoint.pt"), size, block)
    write_safetensors(os.path.join(args.out_dir, "model.safetensors"), size, block)


if __name__ == "__main__":
    main()
