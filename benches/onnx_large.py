"""Writes a large, valid ONNX model for benches/onnx_rss.sh, with the standard library only.

    python3 benches/onnx_large.py OUT.onnx SIZE_MIB

The graph is Y = Relu(X + W0 + W1 + ...) with float initializers of 64 MiB each in
`raw_data`, then an `If` node whose subgraph holds one more small initializer: the nodes come
after the bulk, so a scanner must get past every payload to see them. Written in pieces, so
generating it needs no more memory than one initializer's bytes.
"""
import struct
import sys


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(number, wire):
    return varint((number << 3) | wire)


def vfield(number, v):
    return key(number, 0) + varint(v)


def lfield(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def value_info(name, dims):
    shape = b"".join(lfield(1, vfield(1, d)) for d in dims)
    tensor_type = vfield(1, 1) + lfield(2, shape)
    return lfield(1, name.encode()) + lfield(2, lfield(1, tensor_type))


def node(op, inputs, outputs, attributes=b""):
    out = b"".join(lfield(1, i.encode()) for i in inputs)
    out += b"".join(lfield(2, o.encode()) for o in outputs)
    return out + lfield(4, op.encode()) + attributes


CHUNK_FLOATS = 16 << 20  # 64 MiB per initializer


def main():
    path, size_mib = sys.argv[1], int(sys.argv[2])
    count = max(1, size_mib // 64)
    payload = struct.pack("<f", 0.5) * CHUNK_FLOATS
    # The graph's header: every initializer is a (tag, length, TensorProto) written in turn.
    inits = []
    for i in range(count):
        head = vfield(1, CHUNK_FLOATS) + vfield(2, 1) + lfield(8, f"W{i}".encode())
        inits.append(head + key(9, 2) + varint(len(payload)))
    sub = lfield(2, b"then") + lfield(5, vfield(1, 1) + vfield(2, 1) + lfield(8, b"S") + lfield(9, struct.pack("<f", 1.0)))
    sub += lfield(1, node("Identity", ["S"], ["Z"])) + lfield(12, value_info("Z", [1]))
    tail = b""
    prev = "X"
    for i in range(count):
        tail += lfield(1, node("Add", [prev, f"W{i}"], [f"A{i}"]))
        prev = f"A{i}"
    tail += lfield(1, node("Relu", [prev], ["Y"]))
    attr = lfield(1, b"then_branch") + vfield(20, 5) + lfield(6, sub)
    attr2 = lfield(1, b"else_branch") + vfield(20, 5) + lfield(6, sub)
    tail += lfield(1, node("If", ["C"], ["Z"], lfield(5, attr) + lfield(5, attr2)))
    tail += lfield(11, value_info("X", [CHUNK_FLOATS])) + lfield(11, value_info("C", []))
    tail += lfield(12, value_info("Y", [CHUNK_FLOATS])) + lfield(12, value_info("Z", [1]))
    tail += lfield(2, b"large")
    graph_len = sum(1 + len(varint(len(h) + len(payload))) + len(h) + len(payload) for h in inits) + len(tail)
    with open(path, "wb") as f:
        f.write(vfield(1, 8) + lfield(2, b"modelvet-bench"))
        f.write(key(7, 2) + varint(graph_len))
        for h in inits:
            f.write(key(5, 2) + varint(len(h) + len(payload)) + h)
            f.write(payload)
        f.write(tail)
        f.write(lfield(8, vfield(2, 17)))


if __name__ == "__main__":
    main()
