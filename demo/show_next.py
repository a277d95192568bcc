#!/usr/bin/env python3
"""demo/show_next.py VOCAB IDS LOGITS: print the input text and, for its last position, the
most likely next characters with their probabilities.  Standard library only (no NumPy), so
the demo runs on a machine without it."""
import ast
import json
import math
import struct
import sys


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: not a .npy file")
    major = data[6]
    hlen_size = 2 if major == 1 else 4
    hlen = int.from_bytes(data[8:8 + hlen_size], "little")
    start = 8 + hlen_size + hlen
    header = ast.literal_eval(data[8 + hlen_size:start].decode("latin1"))
    code = {"<f4": "f", "<i4": "i", "<i8": "q"}[header["descr"]]
    shape = header["shape"]
    n = math.prod(shape)
    return shape, struct.unpack_from(f"<{n}{code}", data, start)


def main():
    vocab_path, ids_path, logits_path = sys.argv[1:4]
    itos = json.load(open(vocab_path))["itos"]
    (b, t), ids = read_npy(ids_path)
    (b2, t2, v), logits = read_npy(logits_path)
    text = "".join(itos[i] for i in ids[:t])
    print("   input text:")
    for line in text.split("\n"):
        print("   | " + line)
    last = logits[(t - 1) * v: t * v]
    m = max(last)
    exps = [math.exp(x - m) for x in last]
    total = sum(exps)
    top = sorted(range(v), key=lambda i: -last[i])[:5]
    print("   most likely next characters:")
    for i in top:
        print(f"     {itos[i]!r:6} p = {exps[i] / total:.3f}")


if __name__ == "__main__":
    main()
