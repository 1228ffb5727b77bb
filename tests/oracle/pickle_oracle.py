#!/usr/bin/env python3
"""Differential oracle for modelvet's pickle analysis: CPython decides, modelvet must agree.

Builds pickle streams from a fixed seed (opcode-aware generation and mutation: whitespace and
sign variants in numeric lines, escape and quote variants, PROTO/FRAME placement, memo
aliasing, long and dotted names, extra stack items at STOP, truncation, byte noise) and feeds
each one to CPython's real unpicklers, the C one (`pickle.Unpickler`) and the pure-Python one
(`pickle._Unpickler`), with `find_class` and `persistent_load` hooked to record and refuse.
Nothing is ever imported or called: the hooks raise before any object is built from a global,
and the extension registry is left empty, so an EXT opcode ends in a recorded lookup error.

Output (stdout or --out), one JSON object per line:
    {"data": "<hex>", "c": EVENT, "py": EVENT}
where EVENT is null or ["import", module, name] or ["ext", code]: the first thing each
unpickler did that reaches code. modelvet must reject every stream with an event, naming the
imported global as the stream spells it.

Usage:
    pickle_oracle.py --seed 1 --count 5000 [--out FILE] [--corpus DIR]   # generate + judge
    pickle_oracle.py --judge FILE...                                       # judge given files
Only the standard library is used; the process caps its own address space so that a hostile
length cannot make CPython allocate without bound.
"""

import argparse
import io
import json
import os
import pickle
import random
import resource
import struct
import sys
import warnings

if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)


class Refused(Exception):
    pass


def _hooked(base):
    class Hooked(base):
        event = None

        def find_class(self, module, name):
            if self.event is None:
                self.event = ["import", module, name]
            raise Refused()

        def persistent_load(self, pid):
            raise Refused()

    return Hooked


C_UNPICKLER = _hooked(pickle.Unpickler)
PY_UNPICKLER = _hooked(pickle._Unpickler)


def judge_one(cls, data):
    """The first code-reaching event when `cls` unpickles `data` (all streams in it)."""
    stream = io.BytesIO(data)
    while True:
        unpickler = cls(stream, encoding="latin1")
        try:
            unpickler.load()
        except Refused:
            return unpickler.event
        except ValueError as error:
            # EXT with an unregistered code: the registry was consulted.
            text = str(error)
            if text.startswith("unregistered extension code"):
                return ["ext", int(text.rsplit(" ", 1)[-1])]
            return unpickler.event
        except RecursionError:
            return unpickler.event
        except BaseException:  # noqa: BLE001 - any failure ends this reading
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                raise
            return unpickler.event
        if unpickler.event is not None:
            return unpickler.event
        # A complete stream: loaders that read several (legacy torch.save, joblib) go on.
        if stream.tell() >= len(data):
            return None


def judge(data):
    return {"data": data.hex(), "c": judge_one(C_UNPICKLER, data), "py": judge_one(PY_UNPICKLER, data)}


# ----- generation

DANGEROUS = [
    ("os", "system"),
    ("posix", "system"),
    ("subprocess", "Popen"),
    ("builtins", "eval"),
    ("__builtin__", "eval"),
    ("builtins", "getattr"),
    ("runpy", "_run_code"),
    ("os.path", "join"),
    ("torch.serialization", "load"),
    ("nt", "system"),
]
SAFE = [
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
]
INT_LINES = [
    b"1", b"\x0b1", b" 1", b"1 ", b"\t-1", b"+1", b"-0", b"0x1f", b"0X1F", b"0o17", b"0b101",
    b"1_000", b"0_1", b"01", b"00", b"007", b"1\x00junk", b"\x00", b"\x00abc", b"1L",
    b"99999999999999999999999", b"-99999999999999999999999 ", b"0x_1f", b"1__0", b"_1",
    b"1_", b"\x0c2\r", b"\r3", b"", b" ", b"0x", b"1.5", b"abc", b"--1", b"+-1", b"1e5",
    b"\xa01", b"\x851", b"1\xa0", b"08", b"0b2", b"\x1c1", b"12345678901234567890",
]
FLOAT_LINES = [
    b"1.5", b" 1.5", b"1.5 ", b"1e999", b"-1e999", b"inf", b"-Infinity", b"nan", b"NaN",
    b"1_0.5", b".5", b"5.", b"1e5", b"1E+5", b"1e", b"0x1p3", b"1.5\x00x", b"\x00", b"",
    b"+.5e-3", b"in", b"infinit", b"1.5L", b"1,5", b"\t2.0\r", b"1__0.5", b"1_e5",
]
STR_LINES = [
    b"'a'", b'"a"', b"'os'", b"'\\x6fs'", b"'\\157s'", b"'\\777'", b"'a\\'", b"'\\q'", b"'\xff'",
    b"'a\"", b"'", b"''", b"'\\x4'", b"'\\\\'", b"'\\n'", b"'a'b'", b'"\'"',
]
UNICODE_LINES = [
    b"os", b"o\\u0073", b"\\\\u0041", b"\\\\uZZZZ", b"\\u00", b"\\U0010ffff", b"\\U00110000",
    b"\\", b"a\\", b"\\x41", b"\\\\\\u0041", b"\\\\\\\\u0041", b"\\ud800", b"\xe9", b"\\uD83D",
    b"\\U0000006f\\u0073", b"\\u+041", b"\\u 041",
]
KEY_LINES = [b"1", b" 1", b"1 ", b"+1", b"01", b"1_0", b"-1", b"-0", b"1\x00x", b"\x0b1", b"a", b""]


def line_op(op, arg):
    return op + arg + b"\n"


def global_p0(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sbu(text):
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def payload(rng, module, name):
    """One way of importing module.name and calling it."""
    kind = rng.randrange(9)
    arg = sbu("id") if rng.random() < 0.5 else b"S'id'\n"
    if kind == 0:
        return global_p0(module, name) + b"(" + arg + b"tR"
    if kind == 1:
        return global_p0(module, name) + b"q\x00" + arg + b"\x85R"
    if kind == 2:
        return sbu(module) + b"\x94" + sbu(name) + b"\x94\x93\x94" + arg + b"\x85R"
    if kind == 3:
        return b"(" + arg + b"i" + module.encode() + b"\n" + name.encode() + b"\n"
    if kind == 4:
        return b"(" + global_p0(module, name) + arg + b"o"
    if kind == 5:
        return b"V" + module.encode() + b"\np7\n0V" + name.encode() + b"\np8\n0g7\ng8\n\x93)R"
    if kind == 6:
        return sbu(module) + b"q\x05" + b"0" + sbu(name) + b"r\x06\x00\x00\x000h\x05j\x06\x00\x00\x00\x93)R"
    if kind == 7:
        return global_p0(module, name) + b")\x81"
    code = rng.choice([1, 2, 255, 256, 65535, 1 << 20])
    if code < 256:
        return b"\x82" + bytes([code]) + b")R"
    if code < 65536:
        return b"\x83" + struct.pack("<H", code) + b")R"
    return b"\x84" + struct.pack("<I", code) + b")R"


def filler(rng):
    """A value pushed with an opcode whose argument parsing is lenient somewhere."""
    kind = rng.randrange(12)
    if kind == 0:
        return line_op(b"I", rng.choice(INT_LINES))
    if kind == 1:
        return line_op(b"L", rng.choice(INT_LINES))
    if kind == 2:
        return line_op(b"F", rng.choice(FLOAT_LINES))
    if kind == 3:
        return line_op(b"S", rng.choice(STR_LINES))
    if kind == 4:
        return line_op(b"V", rng.choice(UNICODE_LINES))
    if kind == 5:
        return b"K" + bytes([rng.randrange(256)])
    if kind == 6:
        return b"\x80" + bytes([rng.choice([0, 1, 2, 3, 4, 5, 6, 255])])
    if kind == 7:
        return b"N"
    if kind == 8:
        return b"]" + line_op(b"p", rng.choice(KEY_LINES)) + b"0"
    if kind == 9:
        return b"(" + b"K\x01" * rng.randrange(3) + rng.choice([b"t", b"l", b"d", b"1", b"0"])
    if kind == 10:
        return b"I01\n" if rng.random() < 0.5 else b"I00\n"
    return b"\x88\x89"


def frame(body, rng):
    length = len(body) + rng.choice([0, 0, 0, -1, 1, 5, -3, 1 << 40])
    return b"\x95" + struct.pack("<Q", max(0, length) & 0xFFFFFFFFFFFFFFFF) + body


def long_name(rng):
    parts = ["".join(rng.choice("abcdefghij_") for _ in range(rng.randrange(1, 300))) for _ in range(rng.randrange(1, 12))]
    return ".".join("m" + part for part in parts)


def generate_one(rng):
    module, name = rng.choice(DANGEROUS + SAFE)
    if rng.random() < 0.08:
        module = long_name(rng)
    if rng.random() < 0.05:
        name = long_name(rng)
    parts = []
    if rng.random() < 0.6:
        parts.append(b"\x80" + bytes([rng.choice([2, 3, 4, 5])]))
    for _ in range(rng.randrange(0, 4)):
        parts.append(filler(rng))
    body = payload(rng, module, name)
    if rng.random() < 0.2:
        body = frame(body, rng)
    parts.append(body)
    for _ in range(rng.randrange(0, 3)):
        parts.append(filler(rng))
    parts.append(b".")
    data = b"".join(parts)
    roll = rng.random()
    if roll < 0.15:
        data = data[: rng.randrange(0, len(data) + 1)]
    elif roll < 0.35:
        data = mutate(rng, data)
    elif roll < 0.45 and len(data) > 2:
        # PROTO somewhere in the middle.
        at = rng.randrange(1, len(data))
        data = data[:at] + b"\x80" + bytes([rng.randrange(7)]) + data[at:]
    return data


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not data:
            break
        at = rng.randrange(len(data))
        choice = rng.randrange(5)
        if choice == 0:
            data[at] = rng.randrange(256)
        elif choice == 1:
            data.insert(at, rng.choice(b" \t\x0b\x0c\r\n\x00\\'\"_+-0xL.(N"))
        elif choice == 2:
            del data[at]
        elif choice == 3:
            data[at:at] = rng.choice([b"N", b"0", b"\x80\x02", b"(", b"K\x00", b"\x95" + bytes(8)])
        else:
            data[at:at] = bytes(data[at: at + rng.randrange(1, 8)])
    return bytes(data)


def corpus(directory):
    for root, _, files in os.walk(directory):
        for file in sorted(files):
            path = os.path.join(root, file)
            try:
                with open(path, "rb") as handle:
                    data = handle.read(1 << 20)
            except OSError:
                continue
            yield data


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--out")
    parser.add_argument("--corpus", action="append", default=[],
                        help="also judge these files and mutations of them")
    parser.add_argument("--judge", nargs="*", help="judge exactly these files")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    warnings.simplefilter("ignore")
    out = open(args.out, "w") if args.out else sys.stdout
    rng = random.Random(args.seed)
    if args.judge is not None:
        for path in args.judge:
            with open(path, "rb") as handle:
                out.write(json.dumps(judge(handle.read())) + "\n")
        return
    for directory in args.corpus:
        for data in corpus(directory):
            out.write(json.dumps(judge(data)) + "\n")
            for _ in range(3):
                out.write(json.dumps(judge(mutate(rng, data))) + "\n")
    for _ in range(args.count):
        out.write(json.dumps(judge(generate_one(rng))) + "\n")


if __name__ == "__main__":
    main()
