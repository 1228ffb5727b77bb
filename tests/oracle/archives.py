#!/usr/bin/env python3
"""Differential oracle for modelvet's tar and zip readers: Python's own `tarfile` and `zipfile`.

From a fixed seed, builds thousands of tar and zip variants (written by `tarfile`/`zipfile`,
assembled by hand, and mutated: v7/ustar/GNU/pax headers, Python-only number syntax, signed
and odd checksums, base-256 fields, long names, pax records in odd shapes, global headers,
unknown type flags, truncation at every block, junk before and after, comments, several end
records, zip64 end records) and writes each to OUT/NNNNN.bin, with Python's verdict in
OUT/manifest.json:

  {"file": "00001.bin", "what": "<generator>",
   "tar": {"open": bool, "is_tarfile": bool | null, "error": str | null,
           "members": [{"name": str, "type": int, "size": int, "offset": int,
                        "offset_data": int, "sparse": bool}]},
   "zip": {"is_zipfile": bool, "open": bool, "error": str | null, "concat": int | null,
           "members": [{"name": str, "header_offset": int, "compress_size": int,
                        "file_size": int}]}}

Names are the member names as bytes (surrogateescape) decoded as UTF-8 with replacement, so
they compare with Rust's `String::from_utf8_lossy`. `error` is the exception `tarfile` raised
while listing after it opened the archive (or while opening it). Standard library only: the
Rust test tests/it/archive_oracle.rs runs this script under `cargo test`.

Usage: archives.py OUT [--seed N] [--tar N] [--zip N]
       archives.py OUT --files FILE...   (Python's answers for existing files, same manifest)
"""

import argparse
import io
import json
import os
import random
import struct
import sys
import tarfile
import zipfile

BLOCK = 512
MAX_LISTED = 500


# ---- Python's answers ------------------------------------------------------------------------


def show(name):
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    return name.decode("utf-8", "replace")


def py_tar(data):
    result = {"open": False, "is_tarfile": None, "error": None, "members": []}
    try:
        result["is_tarfile"] = tarfile.is_tarfile(io.BytesIO(data))
    except Exception as error:  # noqa: BLE001 - any exception is an answer
        result["is_tarfile"] = None
        result["is_tarfile_error"] = type(error).__name__
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except Exception as error:  # noqa: BLE001
        result["error"] = type(error).__name__
        return result
    result["open"] = True
    try:
        while True:
            member = archive.next()
            if member is None:
                break
            result["members"].append(
                {
                    "name": show(member.name),
                    "type": member.type[0] if member.type else 0,
                    "size": member.size,
                    "offset": member.offset,
                    "offset_data": member.offset_data,
                    "sparse": member.sparse is not None,
                }
            )
            if len(result["members"]) > MAX_LISTED:
                result["error"] = "Runaway"
                break
    except Exception as error:  # noqa: BLE001
        result["error"] = type(error).__name__
    return result


def py_zip(data):
    result = {"is_zipfile": False, "open": False, "error": None, "concat": None, "members": []}
    try:
        result["is_zipfile"] = zipfile.is_zipfile(io.BytesIO(data))
    except Exception as error:  # noqa: BLE001
        result["is_zipfile"] = None
        result["is_zipfile_error"] = type(error).__name__
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as error:  # noqa: BLE001
        result["error"] = type(error).__name__
        return result
    result["open"] = True
    endrec = zipfile._EndRecData(io.BytesIO(data))
    concat = endrec[zipfile._ECD_LOCATION] - endrec[zipfile._ECD_SIZE] - endrec[zipfile._ECD_OFFSET]
    if endrec[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    result["concat"] = concat
    for info in archive.infolist()[:MAX_LISTED]:
        result["members"].append(
            {
                "name": show(info.orig_filename),
                "header_offset": info.header_offset,
                "compress_size": info.compress_size,
                "file_size": info.file_size,
            }
        )
    return result


# ---- tar assembly by hand ---------------------------------------------------------------------


def octal(value, width):
    return ("%0*o" % (width - 1, value)).encode() + b"\0"


def seal(block, signed=False, style="standard"):
    block = bytearray(block)
    block[148:156] = b" " * 8
    if signed:
        total = 256 + sum(struct.unpack_from("148b8x356b", block))
    else:
        total = 256 + sum(struct.unpack_from("148B8x356B", block))
    if style == "standard":
        field = ("%06o" % total).encode() + b"\0 " if total >= 0 else ("-%05o" % -total).encode() + b"\0 "
    elif style == "nul":
        field = ("%07o" % total).encode() + b"\0" if total >= 0 else ("-%06o" % -total).encode() + b"\0"
    elif style == "python":
        field = ("0o%o" % total).encode() if total >= 0 else ("-0o%o" % -total).encode()
        field = field.ljust(8, b" ")[:8]
    elif style == "base256":
        field = bytes([0x80]) + total.to_bytes(7, "big") if total >= 0 else bytes([0xFF]) + (256**7 + total).to_bytes(7, "big")
    else:
        raise ValueError(style)
    block[148:156] = field
    return bytes(block)


def header(name, typeflag=b"0", size=0, link=b"", magic="ustar", prefix=b"", size_field=None,
           fields=None, signed=False, chk="standard"):
    block = bytearray(BLOCK)
    name = name if isinstance(name, bytes) else name.encode()
    block[0:len(name[:100])] = name[:100]
    block[100:108] = octal(0o644, 8)
    block[108:116] = octal(1000, 8)
    block[116:124] = octal(1000, 8)
    block[124:136] = size_field if size_field is not None else octal(size, 12)
    block[136:148] = octal(1700000000, 12)
    block[156:157] = typeflag
    block[157:157 + len(link[:100])] = link[:100]
    if magic == "ustar":
        block[257:265] = b"ustar\x0000"
    elif magic == "gnu":
        block[257:265] = b"ustar  \0"
    if magic != "v7":
        block[265:269] = b"user"
        block[297:302] = b"group"
        block[329:337] = octal(0, 8)
        block[337:345] = octal(0, 8)
    block[345:345 + len(prefix[:155])] = prefix[:155]
    for (start, end), value in (fields or {}).items():
        block[start:end] = value.ljust(end - start, b"\0")[: end - start]
    return seal(bytes(block), signed=signed, style=chk)


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def pax_records(pairs):
    out = b""
    for key, value in pairs:
        key = key if isinstance(key, bytes) else key.encode()
        value = value if isinstance(value, bytes) else value.encode()
        body = b" " + key + b"=" + value + b"\n"
        length = len(body) + 1
        while length != len(body) + len(str(length)):
            length += 1
        out += str(length).encode() + body
    return out


def entry(block, data=b""):
    return block + pad(data)


END = b"\0" * (2 * BLOCK)

NAMES = ["pickle", "storages", "tensors", "sys_info", "data.pkl", "a/b/c.bin", "dir/", "x" * 99,
         "y" * 100, "é/ü.pkl", "sp ace", "../up", "/abs", "ünïcode-" + "z" * 120]


def random_name(rng):
    name = rng.choice(NAMES)
    if rng.random() < 0.2:
        name += str(rng.randrange(1000))
    return name


def random_number_field(rng, value, width):
    """Python-accepted spellings of `value` for a `width`-byte field, and some it refuses."""
    choice = rng.randrange(14)
    text = "%o" % value
    if choice == 0:
        return octal(value, width)
    if choice == 1:
        return (" " * (width - 2 - len(text)) + text + " ").encode().ljust(width, b"\0")[:width]
    if choice == 2:
        return (text + "\0").encode().ljust(width, b"x")
    if choice == 3:
        return ("0o" + text).encode().ljust(width, b"\0")[:width]
    if choice == 4 and len(text) > 1:
        return (text[0] + "_" + text[1:]).encode().ljust(width, b"\0")[:width]
    if choice == 5:
        return ("+" + text).encode().ljust(width, b"\0")[:width]
    if choice == 6:
        return ("\x1c" + text + "\x1f").encode().ljust(width, b"\0")[:width]
    if choice == 7:
        return bytes([0x80]) + value.to_bytes(width - 1, "big")
    if choice == 8:
        return (" \t" + text + "\n\r").encode().ljust(width, b"\0")[:width]
    if choice == 9:
        return text.encode().ljust(width, b" ")[:width]
    # Refused or odd: invalid digit, inner space, negative, empty, non-ASCII, double underscore.
    odd = rng.choice([b"9", b"1 2", b"-1", b"", b"\xe91", b"1__2", b"_1", b"0x1", b"\0\0junk",
                      b"   ", b"-0", b"0o", b"\x0b7\x0c"])
    return odd.ljust(width, b"\0")[:width]


def tar_by_tarfile(rng):
    out = io.BytesIO()
    fmt = rng.choice([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
    kwargs = {}
    if fmt == tarfile.PAX_FORMAT and rng.random() < 0.3:
        kwargs["pax_headers"] = {"comment": "hi", "path": "global-name"} if rng.random() < 0.3 else {"comment": "x"}
    with tarfile.open(fileobj=out, mode="w", format=fmt, **kwargs) as archive:
        for index in range(rng.randrange(1, 5)):
            name = random_name(rng) + ("" if index == 0 else str(index))
            info = tarfile.TarInfo(name)
            kind = rng.random()
            data = b""
            if kind < 0.15:
                info.type = tarfile.DIRTYPE
            elif kind < 0.25:
                info.type = tarfile.SYMTYPE
                info.linkname = random_name(rng)
            else:
                data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 511, 512, 513, 1500])))
                info.size = len(data)
                if rng.random() < 0.2 and fmt != tarfile.USTAR_FORMAT:
                    info.uid = 8 ** 8  # base-256 in GNU, a pax record in PAX
            try:
                archive.addfile(info, io.BytesIO(data) if data else None)
            except ValueError:
                pass  # a name or link the format cannot hold
    return out.getvalue()


def tar_by_hand(rng):
    parts = []
    magic = rng.choice(["v7", "v7", "ustar", "gnu"])
    for index in range(rng.randrange(1, 4)):
        name = random_name(rng)
        typeflag = rng.choice([b"0", b"\0", b"7", b"0", b"5", b"2", b"1", b"A", b"Z", b"V", b"3", b"M", b"N"])
        data = b"pickle-bytes-" * rng.randrange(0, 80)
        size = len(data)
        if typeflag == b"\0" and rng.random() < 0.3:
            name = name.rstrip("/") + "/"
        fields = {}
        if rng.random() < 0.3:
            slot = rng.choice([(100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345)])
            fields[slot] = random_number_field(rng, 0o644, slot[1] - slot[0])
        size_field = random_number_field(rng, size, 12) if rng.random() < 0.3 else None
        prefix = b""
        if magic != "v7" and rng.random() < 0.2:
            prefix = b"pre/fix"
        signed = rng.random() < 0.3
        if signed:
            name = "\xff\xfe" + name  # high bytes make the signed sum differ
        chk = rng.choice(["standard", "standard", "nul", "python", "base256"])
        block = header(name.encode("latin-1", "replace") if signed else name, typeflag, size,
                       link=random_name(rng).encode() if typeflag in b"12" else b"",
                       magic=magic, prefix=prefix, size_field=size_field, fields=fields,
                       signed=signed, chk=chk)
        parts.append(entry(block, data if typeflag not in (b"1", b"2", b"3", b"5") else b""))
    if rng.random() < 0.8:
        parts.append(END)
    return b"".join(parts)


def tar_extended(rng):
    """GNU long names and pax headers in chains, with Python's loose record syntax."""
    parts = []
    for _ in range(rng.randrange(1, 4)):
        chain = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            kind = rng.choice(["L", "K", "x", "x", "g", "X"])
            if kind in "LK":
                text = (random_name(rng) * rng.randrange(1, 4)).encode()
                if rng.random() < 0.3:
                    text += b"/"
                payload = text + (b"\0" if rng.random() < 0.7 else b"")
                size = len(payload)
                if rng.random() < 0.2:
                    size = max(0, size - rng.randrange(1, 4))  # name continues in the padding
                chain.append(entry(header("././@LongLink", kind.encode(), size, magic="gnu"), payload))
            else:
                pairs = []
                for _ in range(rng.randrange(0, 4)):
                    key = rng.choice(["path", "path", "size", "linkpath", "comment", "hdrcharset", "mtime",
                                      "uid", "GNU.sparse.major"])
                    value = {
                        "path": random_name(rng) + rng.choice(["", "/", "//"]),
                        "size": rng.choice(["0", "5", "100", "1_0", " 7 ", "-1", "abc", "", "9999999"]),
                        "linkpath": random_name(rng),
                        "hdrcharset": rng.choice(["BINARY", "ISO-IR 10646 2000 UTF-8"]),
                    }.get(key, "v")
                    pairs.append((key, value))
                payload = pax_records(pairs)
                mangle = rng.random()
                if mangle < 0.1:
                    payload += b"0 path=zero\n"
                elif mangle < 0.2:
                    payload = payload.replace(b"\n", b"!", 1)
                elif mangle < 0.3 and payload:
                    payload = b"9" + payload[1:]
                size = len(payload)
                if rng.random() < 0.15:
                    size = max(0, size - rng.randrange(1, 8))  # records continue in the padding
                chain.append(entry(header("PaxHeaders/x", kind.encode(), size), payload))
        data = b"member-data-" * rng.randrange(0, 60)
        typeflag = rng.choice([b"0", b"0", b"\0", b"5", b"2", b"Q"])
        block = header(random_name(rng), typeflag, len(data), link=b"target" if typeflag == b"2" else b"",
                       magic=rng.choice(["ustar", "gnu", "v7"]))
        parts.extend(chain)
        parts.append(entry(block, data if typeflag not in (b"2", b"5") else b""))
    parts.append(END)
    return b"".join(parts)


def tar_sparse(rng):
    block = bytearray(header("holes", b"S", 10, magic="gnu"))
    block[386:398] = octal(0, 12)
    block[398:410] = octal(10, 12)
    block[482] = 1 if rng.random() < 0.3 else 0
    block[483:495] = octal(rng.choice([10, 4096]), 12)
    block = seal(bytes(block))
    return entry(block, b"0123456789") + entry(header("after", b"0", 3), b"abc") + END


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(8)
        if choice == 0 and data:
            data = data[: rng.randrange(len(data) + 1)]
        elif choice == 1 and len(data) >= BLOCK:
            data = data[: BLOCK * rng.randrange(1, len(data) // BLOCK + 1)]
        elif choice == 2:
            data += rng.choice([b"garbage", b"\0" * 512, b"\0" * 700 + b"x", bytes(rng.randrange(256) for _ in range(600))])
        elif choice == 3:
            data = bytearray(rng.choice([b"JUNK", b"\0" * 512, b"\0" * 100])) + data
        elif choice in (4, 5) and data:
            at = rng.randrange(len(data))
            data[at] = rng.choice([0, 0xFF, 0x80, ord("7"), ord(" "), rng.randrange(256)])
            # Re-seal the header the byte fell in, so that mutations get past the checksum.
            start = at - at % BLOCK
            if rng.random() < 0.7 and start + BLOCK <= len(data) and any(data[start:start + BLOCK]):
                data[start:start + BLOCK] = seal(bytes(data[start:start + BLOCK]), style=rng.choice(["standard", "nul"]))
        elif choice == 6:
            data += END
        elif choice == 7 and len(data) >= 2 * BLOCK:
            # Drop a block in the middle.
            at = BLOCK * rng.randrange(len(data) // BLOCK)
            del data[at:at + BLOCK]
    return bytes(data)


def tar_truncations(rng, base):
    """The same archive cut at every block boundary and inside blocks."""
    out = []
    for cut in range(0, len(base) + 1, BLOCK):
        out.append(base[:cut])
        if cut + 100 < len(base):
            out.append(base[: cut + 100])
    return out


# ---- zip assembly -----------------------------------------------------------------------------


def zip_by_zipfile(rng):
    out = io.BytesIO()
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for index in range(rng.randrange(0, 4)):
            data = b"data-" * rng.randrange(0, 50)
            archive.writestr("archive/member%d.pkl" % index, data)
        if rng.random() < 0.4:
            archive.comment = bytes(rng.randrange(256) for _ in range(rng.choice([1, 20, 300, 65535])))
    return out.getvalue()


def eocd_of(data):
    """The last end-record signature with a whole record after it, or -1."""
    end = len(data)
    while True:
        at = data.rfind(b"PK\x05\x06", 0, end)
        if at < 0 or at + 22 <= len(data):
            return at
        end = at + 3


def zip64_end(data):
    """Rewrites the end record of a zipfile-written archive into zip64 form."""
    at = eocd_of(data)
    if at < 0:
        return data
    (sig, disk, cd_disk, n_disk, n, cd_size, cd_offset, comment_len) = struct.unpack("<4s4H2LH", data[at:at + 22])
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n_disk, n, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, comment_len)
    return data[:at] + record + locator + eocd + data[at + 22:]


def zip_mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 3)):
        choice = rng.randrange(9)
        if choice == 0:
            data = bytearray(rng.choice([b"JUNK" * 10, b"\0" * 100, b"MZ stub"])) + data
        elif choice == 1:
            data += rng.choice([b"trailing", b"\0" * 30, b"PK\x05\x06", b"PK\x05\x06" + b"\0" * 18])
        elif choice == 2:
            at = eocd_of(bytes(data))
            if at >= 0:
                # A second end record after the first (as a comment would hold one).
                data += bytes(data[at:at + 22])
        elif choice == 3:
            at = eocd_of(bytes(data))
            if at >= 0:
                # Comment length that runs past the end of the file, or falls short of it.
                struct.pack_into("<H", data, at + 20, rng.choice([0, 5, 100, 65535]))
        elif choice == 4 and data:
            data = data[: rng.randrange(len(data) + 1)]
        elif choice == 5:
            data = bytearray(zip64_end(bytes(data)))
        elif choice == 6 and data:
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
        elif choice == 7:
            at = eocd_of(bytes(data))
            if at >= 0:
                # Junk between the central directory and the end record.
                data[at:at] = b"JUNK" * rng.randrange(1, 4)
        elif choice == 8:
            at = eocd_of(bytes(data))
            if at >= 0:
                struct.pack_into("<H", data, at + rng.choice([4, 6, 8]), rng.choice([1, 2]))
    return bytes(data)


# ---- main -------------------------------------------------------------------------------------


def cases(rng, tar_count, zip_count):
    produced = 0
    seeds = []
    while produced < tar_count:
        roll = rng.random()
        if roll < 0.2:
            data, what = tar_by_tarfile(rng), "tar-tarfile"
        elif roll < 0.45:
            data, what = tar_by_hand(rng), "tar-hand"
        elif roll < 0.7:
            data, what = tar_extended(rng), "tar-extended"
        elif roll < 0.73:
            data, what = tar_sparse(rng), "tar-sparse"
        else:
            base = rng.choice(seeds) if seeds else tar_by_tarfile(rng)
            data, what = mutate(rng, base), "tar-mutated"
        if what != "tar-mutated" and len(seeds) < 50:
            seeds.append(data)
        yield what, data
        produced += 1
        if produced % 400 == 1:
            for cut in tar_truncations(rng, data):
                yield "tar-truncated", cut
                produced += 1
    for _ in range(zip_count):
        data = zip_by_zipfile(rng)
        if rng.random() < 0.8:
            data = zip_mutate(rng, data)
        yield "zip", data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tar", type=int, default=2000)
    parser.add_argument("--zip", type=int, default=600)
    parser.add_argument("--files", nargs="+", default=None)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    if args.files:
        for path in args.files:
            with open(path, "rb") as handle:
                data = handle.read()
            manifest.append({"file": os.path.abspath(path), "what": "fixture",
                             "tar": py_tar(data), "zip": py_zip(data)})
        with open(os.path.join(args.out, "manifest.json"), "w") as handle:
            json.dump(manifest, handle)
        return
    rng = random.Random(args.seed)
    for index, (what, data) in enumerate(cases(rng, args.tar, args.zip)):
        name = "%05d.bin" % index
        with open(os.path.join(args.out, name), "wb") as handle:
            handle.write(data)
        manifest.append({"file": name, "what": what, "tar": py_tar(data), "zip": py_zip(data)})
    with open(os.path.join(args.out, "manifest.json"), "w") as handle:
        json.dump(manifest, handle)
    print("%d cases in %s" % (len(manifest), args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
