"""common.py: what the reference models and the fixture scripts share.

kiln's reference tests compare a compiled model with an independent PyTorch implementation
(gpt2_ref.py, bert_ref.py, seed_layer_ref.py).  This file holds the pieces those scripts
have in common and that PyTorch 1.13 on Debian does not provide:

  - safetensors files, written and read by hand (there is no `safetensors` package here);
  - the random initialisation every reference model uses, chosen so that every tensor
    changes the output by more than the test tolerance;
  - thread settings for a small shared machine;
  - tracing: the models hand their intermediate values to trace() under the names kiln's
    specs give them, which dump_ref.py writes for `kiln diff --bisect`.
"""

import contextlib
import json
import os
import struct

import numpy as np

# Set before torch starts its thread pool: idle OpenMP threads must not spin on a 2-core
# machine that other jobs share.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402  (after the environment variable above)

torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------
# safetensors
#
# Layout: u64 little-endian N, then N bytes of JSON header, then the raw data.  The header
# maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into
# the data section) and may hold "__metadata__" (string to string).  We pad the header with
# spaces to a multiple of 8 so that the data, and so every f32 tensor, is aligned for mmap.

_ST_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
              "I32": np.dtype("<i4"), "I64": np.dtype("<i8")}


def safetensors_save(path, tensors):
    """Write `tensors` (name -> numpy array or torch tensor) to `path` as safetensors.

    Tensors are stored in name order, each as little-endian data of its own dtype (f32,
    f64, i32 or i64).  The output is a pure function of the input: same tensors, same bytes.
    """
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.asarray(a)
        tag = next((t for t, dt in _ST_DTYPES.items() if dt == a.dtype.newbyteorder("<")), None)
        if tag is None:
            raise ValueError(f"{name}: dtype {a.dtype} has no safetensors tag here")
        raw = np.ascontiguousarray(a, dtype=_ST_DTYPES[tag]).tobytes()
        header[name] = {"dtype": tag, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def safetensors_load(path):
    """Read a safetensors file; return name -> numpy array (a copy), in file order.

    Checks what a careful reader must: the header fits, offsets are in range, contiguous
    and match dtype x shape.  Raises ValueError on any violation.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = {}
    expect = 0
    entries = sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                     key=lambda kv: kv[1]["data_offsets"][0])
    for name, info in entries:
        dt = _ST_DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if b != expect or e - b != count * dt.itemsize or e > len(data):
            raise ValueError(f"{path}: {name}: bad data_offsets {b}..{e}")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).copy()
        expect = e
    if expect != len(data):
        raise ValueError(f"{path}: {len(data) - expect} trailing bytes after the last tensor")
    return out


# ---------------------------------------------------------------------------------------
# Random initialisation
#
# Every tensor must matter: a kiln bug that drops a bias, swaps a LayerNorm's weight and
# bias, or reads a matrix transposed must move the output by more than the tolerance.  So
# LayerNorm weights are 1 + 0.1 N (not all ones), biases 0.02 N (not zero), embedding
# tables 0.02 N as in the original models (small embeddings also make the first
# LayerNorm's eps visible), and the other matrices N / sqrt(fan_in), which keeps
# activations near unit scale so that attention is far from uniform and the GELU/ReLU
# nonlinearities are exercised in their curved range.  (GELU's erf and tanh forms differ
# by at most 4.7e-4, about 2e-4 of the value, so no choice here separates them by much more
# than the 1e-4 tolerance; check_cases.py measures the margin, 2-5x.)

def init_random(module, seed):
    """Overwrite every parameter of `module` with random values drawn from `seed`.

    Parameters are visited in `named_parameters()` order, so a module with the same
    structure and seed always gets the same values.  The rule per parameter (by name and
    rank) is described above.  Returns `module`.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            z = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.dim() == 1 and leaf == "weight":   # LayerNorm gain
                p.copy_(1.0 + 0.1 * z)
            elif p.dim() == 1:                       # any bias
                p.copy_(0.02 * z)
            elif "embedding" in name or name.startswith(("wte.", "wpe.")):
                p.copy_(0.02 * z)
            else:                                    # a projection matrix
                fan_in = p.shape[0] if getattr(p, "conv1d", False) else p.shape[1]
                p.copy_(z / fan_in ** 0.5)
    return module


# ---------------------------------------------------------------------------------------
# Tracing
#
# The reference models pass the values kiln's specs name to trace(name, tensor), with the
# spec's names ("h.0.attn.probs", "encoder.layer.1.attention.output"), and go on with the
# tensor it returns (the same one).  Outside a `with tracing() as values:` block it does
# nothing; inside, values[name] is a copy of each.  A value whose computation is fused in
# the reference (nn.Linear's matmul and bias add) is computed on the side by
# trace_linear_mm, only while tracing, so the models' own arithmetic never changes.

_trace = None


def trace(name, t):
    """Record t as `name` while tracing (an empty name records nothing); return t."""
    if _trace is not None and name:
        _trace[name] = t.detach().clone()
    return t


def trace_linear_mm(name, linear, x):
    """While tracing, record x @ W^T of nn.Linear `linear` (its value before the bias)."""
    if _trace is not None and name:
        _trace[name] = (x @ linear.weight.t()).detach().clone()


@contextlib.contextmanager
def tracing():
    """Collect the traced values of the code run inside the block into the dict it yields."""
    global _trace
    old, _trace = _trace, {}
    try:
        yield _trace
    finally:
        _trace = old
