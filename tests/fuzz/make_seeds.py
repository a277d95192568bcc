#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py: write the seed corpora in tests/fuzz/corpus/<harness>/.

Run from anywhere (plain Python 3, no NumPy); the seeds are committed, so this only needs to
run again when a harness's input format changes.  Every seed is small: a few valid inputs of
each kind the parser takes, and a few broken ones next to them, so the fuzzer starts with
both sides of each check.  The spec seeds are the shipped specs and the spec test cases
(models/, tests/errors/, tests/golden/), with `# args: -D ...` turned into the harness's
leading `#-D name=value` lines.
"""
import glob
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clear(harness):
    shutil.rmtree(os.path.join(CORPUS, harness), ignore_errors=True)


# ---- spec ------------------------------------------------------------------------------

def spec_seeds():
    clear("spec")
    for pattern in ("models/*.yaml", "tests/errors/*.yaml", "tests/golden/*.yaml"):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            text = open(path, encoding="utf-8").read()
            defines = []
            for line in text.splitlines():
                if line.startswith("# args:"):
                    words = line[len("# args:"):].split()
                    defines += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-D"]
            head = "".join("#-D %s\n" % d for d in defines)
            folder = os.path.basename(os.path.dirname(path))
            put("spec", "%s-%s" % (folder, os.path.basename(path)), head + text)
    # The shipped models at small sizes, as the reference tests compile them.
    tiny = ["n_layer=1", "n_embd=16", "n_head=2", "vocab_size=32", "n_positions=16"]
    put("spec", "gpt2-tiny.yaml", "".join("#-D %s\n" % d for d in tiny)
        + open(os.path.join(ROOT, "models/gpt2.yaml"), encoding="utf-8").read())
    put("spec", "repeat-nested.yaml", """kiln: 1
name: nest
params: { d: 4, n: 2 }
dims: { seq: 8 }
inputs:
  x: { shape: [seq, d] }
graph:
  - repeat: outer
    count: n
    index: i
    carry: { h: x }
    yield: o
    body:
      - repeat: inner
        count: 2
        index: j
        carry: { y: h }
        yield: z
        body:
          - { op: weight, name: w, tensor: "l{i}.m{j * 2 + 1}.w", shape: [d, d] }
          - { op: matmul, name: m, in: [y, w] }
          - { op: tanh, name: z, in: [m] }
      - { op: add, name: o, in: [inner, h] }
  - { op: softmax, in: [outer] }
  - { op: split, in: [outer], axis: -1, names: [a, b] }
  - { op: concat, name: c, in: [b, a], axis: 1 }
  - { op: slice, name: s, in: [c], axis: 1, start: -3, end: -1 }
  - { op: transpose, name: t, in: [s], perm: [1, 0] }
  - { op: cast, name: ci, in: [t], dtype: i32 }
  - { op: arange, name: r, size: seq, start: 2 }
  - { op: constant, name: k, value: 2 ** -1, dtype: f32 }
  - { op: causal_mask, name: cm, in: [c] }
outputs:
  y: t
  z: cm
  r: r
""")


# ---- expr ------------------------------------------------------------------------------

def expr_seeds():
    clear("expr")
    for i, e in enumerate([
        "n_embd / n_head", "4 * n_embd", "1 / sqrt(head_dim)", "-2 ** 2", "2 ** -1 ** 2",
        "min(1, 2, 3) + max(neg, i)", "7 // 2 - 7 % -3", "(1 + (2 * (3 - 4)))", "1e-5",
        ".5 + 1.e3", "exp(log(half))", "big * 10", "tiny / 2", "1 / 0", "sqrt(-1)",
        "n_embd / 5", "foo + 1", "sqrt(1, 2)", "nope(3)", "(1", "1 2", "x2 - 1",
        "((((((((((((((((((((1))))))))))))))))))))", "1" * 80, "-" * 70 + "1",
    ]):
        put("expr", "e%02d" % i, e)
    # Substituting "(-5)" for neg nests one level deeper than the limit allows.
    put("expr", "nesting-after-substitution", "-" * 62 + "neg" + "-" * 10 + "1")


# ---- safetensors -----------------------------------------------------------------------

def st_file(tensors, pad_to=None, metadata=None, raw_header=None):
    """tensors: list of (name, dtype, shape, bytes).  Returns the file's bytes."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad_to is not None:
        while len(h) % 4 != pad_to:
            h += b" "
    return struct.pack("<Q", len(h)) + h + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def safetensors_seeds():
    clear("safetensors")
    model = [("wte", "F32", [4, 2], f32(*range(8))), ("ln.bias", "F32", [2], f32(1, 2)),
             ("pos", "I32", [3], struct.pack("<3i", 0, 1, 2)),
             ("step", "I64", [], struct.pack("<q", 7)), ("empty", "F32", [0, 3], b"")]
    put("safetensors", "valid", st_file(model, pad_to=0))
    put("safetensors", "valid-misaligned", st_file(model, pad_to=1))
    put("safetensors", "valid-prefixed", st_file(
        [("transformer." + n, d, s, b) for n, d, s, b in model], pad_to=2,
        metadata={"format": "pt"}))
    put("safetensors", "other-dtypes", st_file(
        [("model.wte", "BF16", [4, 2], b"\0" * 16), ("h", "F16", [2], b"\0" * 4),
         ("b", "BOOL", [1], b"\1"), ("q", "F8_E4M3", [2], b"\0\0")]))
    put("safetensors", "wrong-shape", st_file([("wte", "F32", [2, 4], f32(*range(8)))]))
    put("safetensors", "overlap", st_file([], raw_header=json.dumps(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()) + b"\0" * 12)
    put("safetensors", "past-end", st_file([], raw_header=b'{"wte":{"dtype":"F32","shape":[4,2],'
                                                         b'"data_offsets":[0,32]}}') + b"\0" * 8)
    put("safetensors", "big-shape", st_file([], raw_header=b'{"a":{"dtype":"F32","shape":'
                                                          b'[4294967296,4294967296],'
                                                          b'"data_offsets":[0,0]}}'))
    put("safetensors", "bad-json", struct.pack("<Q", 12) + b'{"a":{"dtype"')
    put("safetensors", "short", b"\x05\0\0")
    put("safetensors", "huge-len", struct.pack("<Q", 1 << 62) + b"{}")
    put("safetensors", "dup-meta", st_file([], raw_header=b'{"__metadata__":{},"__metadata__":{}}'))
    put("safetensors", "unicode", st_file([("w\u00e9\u4e2d", "F32", [1], f32(0.5))]))


# ---- npy -------------------------------------------------------------------------------

def npy(descr, shape, data, version=(1, 0), fortran=False, header=None):
    if header is None:
        shp = "(%d,)" % shape[0] if len(shape) == 1 else \
            "(" + ", ".join("%d" % d for d in shape) + ")"
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, "True" if fortran else "False", shp)
    h = header.encode("latin-1")
    lenfmt = "<H" if version[0] == 1 else "<I"
    pre = 6 + 2 + struct.calcsize(lenfmt)
    pad = (64 - (pre + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(lenfmt, len(h)) + h + data


def npy_seeds():
    clear("npy")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/unit/data/*.npy"))):
        put("npy", os.path.basename(path), open(path, "rb").read())
    put("npy", "i64-2x3", npy("<i8", [2, 3], struct.pack("<6q", 0, 1, -1, 2**40, 5, 6)))
    put("npy", "v3-utf8", npy("<f4", [1], f32(1.5), version=(3, 0)))
    put("npy", "rank6", npy("<i4", [1, 1, 1, 1, 1, 2], struct.pack("<2i", 1, 2)))
    put("npy", "rank7", npy("<i4", [1] * 7, struct.pack("<i", 1)))
    put("npy", "python2-long", npy(None, None, struct.pack("<3i", 1, 2, 3),
                                   header="{'descr': '<i4', 'fortran_order': False, "
                                          "'shape': (3L,), }"))
    put("npy", "reordered-keys", npy(None, None, f32(1, 2),
                                     header='{"shape": (2,), "fortran_order": False, '
                                            '"descr": "f4"}'))
    put("npy", "overflow", npy("<f4", [2**62, 2**62], b""))
    put("npy", "truncated", npy("<f4", [4], f32(1, 2)))
    put("npy", "trailing", npy("<f4", [1], f32(1, 2)))
    put("npy", "dup-key", npy(None, None, f32(1),
                              header="{'descr': '<f4', 'descr': '<f4', 'shape': (1,)}"))
    put("npy", "cut-header", b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f4', 'fortran_or")


# ---- tokenizers: text ------------------------------------------------------------------

def text_seeds():
    texts = {
        "ascii": "Hello, world! It's 2024; we'll see.\n  Done.",
        "unicode": "Caf\u00e9 F\u00fchrer C\u1eeda Vi\u1ec7t \u4e2d\u6587 "
                   "\u0645\u0631\u062d\u0628\u0627 \U0001f999\u200d\U0001f525 \u00a0\u2028\u3000x",
        "specials": "Paris is the [MASK] of France.[SEP]<|endoftext|>[CLS][UNK][PAD]",
        "shakespeare": "ROMEO:\nBut, soft! what light through yonder window breaks?\n",
        "whitespace": " \t\n\r  \u0085 a  b\n\n",
        "long-word": "a" * 101 + " " + "pneumonoultramicroscopicsilicovolcanoconiosis",
    }
    raw = {
        "invalid-utf8": b"ok \xff\xfe \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf end",
        "nul": b"a\0b\0\0c",
        "cut-emoji": b"\xf0\x9f\xa6",
        "ids-le16": struct.pack("<8H", 0, 1, 50256, 100, 101, 102, 103, 65535),
    }
    for harness in ("tokenizer_bpe", "tokenizer_wordpiece", "tokenizer_char"):
        clear(harness)
        for name, t in texts.items():
            put(harness, name, t)
        for name, b in raw.items():
            put(harness, name, b)


# ---- tokenizers: files -----------------------------------------------------------------

def gpt2_byte_chars():
    """GPT-2's byte -> character map, as in OpenAI's encoder.py."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xa1, 0xac + 1)) + \
        list(range(0xae, 0xff + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def tokenizer_load_seeds():
    clear("tokenizer_load")
    chars = gpt2_byte_chars()
    merges = ["\u0120 t", "h e", "\u0120t he", "l l", "o \u0120", "e r"]
    vocab = {c: i for i, c in enumerate(chars)}
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    enc = json.dumps(vocab, ensure_ascii=False)
    bpe = "#version: 0.2\n" + "\n".join(merges) + "\n"
    sep = "\n=====\n"
    put("tokenizer_load", "bpe-openai", "\x00" + enc + sep + bpe)
    put("tokenizer_load", "bpe-hf", "\x01" + enc + sep + bpe.replace("\n", "\r\n"))
    put("tokenizer_load", "bpe-bad-merge", "\x00" + enc + sep + "#version: 0.2\nqq zz\n")
    put("tokenizer_load", "bpe-no-merges", "\x01" + enc)
    put("tokenizer_load", "bpe-few-tokens", "\x00" + '{"a": 0, "b": 1}' + sep + "a b\n")
    put("tokenizer_load", "bpe-id-range", "\x00" + enc.replace(": 0,", ": 999,", 1) + sep)
    wp = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "paris", "is", "of", "france",
          ".", "##s", "##ing", "run", "a", "b", "\u4e2d", "caf", "##e"]
    put("tokenizer_load", "wordpiece", "\x02" + "\n".join(wp) + "\n")
    put("tokenizer_load", "wordpiece-crlf-dups", "\x02" + "\r\n".join(wp + ["the", ""]))
    put("tokenizer_load", "wordpiece-empty", "\x02")
    itos = ["\n", " ", "!", "a", "b", "c", "\u00e9", "\U0001f999", "R", "O", "M", "E", ":"]
    put("tokenizer_load", "char", "\x03" + json.dumps({"type": "char", "itos": itos}))
    put("tokenizer_load", "char-dup", "\x03" + json.dumps({"type": "char", "itos": ["a", "a"]}))
    put("tokenizer_load", "char-multi", "\x03" + json.dumps({"type": "char", "itos": ["ab"]}))
    put("tokenizer_load", "char-bad-type", "\x03" + '{"type": "bpe", "itos": []}')
    put("tokenizer_load", "json-truncated", "\x03" + '{"type": "char", "itos": ["a", "b')


# ---- model_inputs ----------------------------------------------------------------------

def model_inputs_seeds():
    clear("model_inputs")
    sep = b"\n@@mask@@\n"
    ids = npy("<i4", [1, 4], struct.pack("<4i", 1, 2, 3, 15))
    put("model_inputs", "ids-i32", ids)
    put("model_inputs", "ids-i64", npy("<i8", [2, 3], struct.pack("<6q", 0, 1, 2, 3, 4, 5)))
    put("model_inputs", "ids-out-of-range", npy("<i4", [1, 2], struct.pack("<2i", 3, 16)))
    put("model_inputs", "ids-negative", npy("<i4", [2, 1], struct.pack("<2i", -1, 0)))
    put("model_inputs", "ids-i64-wide", npy("<i8", [1, 1], struct.pack("<q", 2**32 + 1)))
    put("model_inputs", "ids-above-bound", npy("<i4", [1, 9], struct.pack("<9i", *range(9))))
    put("model_inputs", "ids-f32", npy("<f4", [1, 2], f32(1, 2)))
    put("model_inputs", "ids-rank3", npy("<i4", [1, 1, 1], struct.pack("<i", 1)))
    put("model_inputs", "mask-given", ids + sep + npy("<f4", [1, 4], f32(1, 1, 0, 1)))
    put("model_inputs", "mask-nan", ids + sep + npy("<f4", [1, 4], f32(1, float("nan"), 0, 1)))
    put("model_inputs", "mask-inf", ids + sep + npy("<f4", [1, 4], f32(1, 1, float("-inf"), 1)))
    put("model_inputs", "mask-conflict", ids + sep + npy("<f4", [1, 3], f32(1, 1, 1)))
    put("model_inputs", "mask-i32", ids + sep + npy("<i4", [1, 4], struct.pack("<4i", 1, 1, 1, 1)))
    put("model_inputs", "ids-broken", b"\x93NUMPY\x01\x00")


if __name__ == "__main__":
    spec_seeds()
    expr_seeds()
    safetensors_seeds()
    npy_seeds()
    text_seeds()
    tokenizer_load_seeds()
    model_inputs_seeds()
    for h in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, h))
        size = sum(os.path.getsize(os.path.join(CORPUS, h, f)) for f in files)
        print("%-22s %3d seeds, %6d bytes" % (h, len(files), size))
