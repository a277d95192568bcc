#!/usr/bin/python3
"""dump_ref.py: PyTorch's intermediate values of a reference case, by the spec's names.

    /usr/bin/python3 tests/reference/dump_ref.py CASE_DIR OUT_DIR

CASE_DIR is a case folder (make_cases.py: args, weights.safetensors, in.*.npy, out.*.npy).
The reference model of its family is loaded from its weights and run on its inputs in
float64, as make_cases.py runs it, and every value it traces (common.trace) is written as
OUT_DIR/NAME.npy (float32; integer values int32), NAME being the name kiln's spec gives that
value (`h.1.attn.probs`, `encoder.layer.0.attention.output`).  That is the layout of
`kiln interp --dump-dir` and of a `kiln build --dump` binary's --dump-dir, so

    kiln diff --bisect SPEC -D ... --weights CASE_DIR/weights.safetensors \\
              --input NAME=CASE_DIR/in.NAME.npy ... --ref-dir OUT_DIR

names the first value where kiln and PyTorch part (docs/inspect.md).

Covered: gpt2 (embeddings, every layer's ln_1, c_attn, qkv, q/k/v and their heads, the
attention's qk, scaled, masked, probs, ctx, the projections and residuals, the MLP, ln_f,
logits), bert (embeddings, the padding mask's steps, every layer's projections, heads,
scores, probs, context, dense layers, residuals and LayerNorms, the pooler) and the seed
layer (the module outputs and their residuals; nn.MultiheadAttention's inside is its own).
GPT-2's key/value cache values (k_all, v_all) and the scores over them (qk, scaled, masked,
probs) are padded to n_positions rows or columns as kiln's cache holds them: zero keys and
values, scores 0 and -inf after masking, probability 0.  Values PyTorch's layout does not
have are simply absent; the bisection compares the names both sides have.
"""

import argparse
import copy
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402  (sets thread limits before any torch work)
from check_cases import CaseError, load_model, read_case  # noqa: E402

# gpt2: values over the key/value cache, padded to n_positions along `axis` with `fill`.
GPT2_CACHE = {"attn.k_all": (2, 0.0), "attn.v_all": (2, 0.0), "attn.qk": (-1, 0.0),
              "attn.scaled": (-1, 0.0), "attn.masked": (-1, float("-inf")),
              "attn.probs": (-1, 0.0)}


def seed_trace(model, hidden_states):
    """The seed layer's values by spec name, from hooks on its stock modules."""
    mha = model.self_attention
    H = mha.embed_dim
    x = hidden_states
    in_proj = x @ mha.in_proj_weight.t()
    qkv = in_proj + mha.in_proj_bias
    a, _ = mha(x, x, x, need_weights=False)
    res1 = x + a
    norm1 = model.norm1(res1)
    f0 = model.ffn[0](norm1)
    f1 = model.ffn[1](f0)
    f2 = model.ffn[2](f1)
    res2 = norm1 + f2
    out = model.norm2(res2)
    return {"attn.in_proj": in_proj, "attn.qkv": qkv, "attn.q": qkv[..., :H],
            "attn.k": qkv[..., H:2 * H], "attn.v": qkv[..., 2 * H:], "attn.out": a,
            "res1": res1, "norm1": norm1, "ffn.0": norm1 @ model.ffn[0].weight.t(),
            "ffn.0.out": f0, "ffn.1": f1, "ffn.2": f1 @ model.ffn[2].weight.t(),
            "ffn.2.out": f2, "res2": res2, "output": out}


def traced_values(case, model):
    """name -> float64 (or integer) tensor of every traced value of `case`, and the outputs."""
    m64 = copy.deepcopy(model).double()
    tin = {k: torch.from_numpy(v).double() if v.dtype.kind == "f" else torch.from_numpy(v)
           for k, v in case["inputs"].items()}
    with torch.inference_mode():
        if case["family"] == "seed":
            values = seed_trace(m64, **tin)
            return values, {"output": values["output"]}
        with common.tracing() as values:
            out = m64(**tin)
    return values, out


def pad_cache(name, t, n_positions):
    """gpt2: a value over the cache, as kiln holds it (n_positions rows or columns)."""
    for suffix, (axis, fill) in GPT2_CACHE.items():
        if name.endswith("." + suffix) and t.shape[axis] < n_positions:
            shape = list(t.shape)
            shape[axis] = n_positions - t.shape[axis]
            return torch.cat([t, torch.full(shape, fill, dtype=t.dtype)], dim=axis)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case", help="a case folder (tests/reference/cases/<id>)")
    ap.add_argument("out", help="the folder to write NAME.npy into (created)")
    a = ap.parse_args()
    try:
        case = read_case(a.case)
        model, _, _ = load_model(case, a.case)
    except (CaseError, OSError, ValueError, KeyError) as e:
        print(f"dump_ref: {a.case}: {e}", file=sys.stderr)
        return 2
    if case["family"] not in ("gpt2", "bert", "seed"):
        print(f"dump_ref: {case['family']}: no traced reference (gpt2, bert and seed have one)",
              file=sys.stderr)
        return 2
    values, out = traced_values(case, model)
    # The traced model must be the fixture's: its outputs reproduce out.*.npy.
    for k, ref in case["outputs"].items():
        err = float(np.abs(out[k].float().numpy() - ref).max() / max(np.abs(ref).max(), 1e-30))
        if err > 1e-6:
            print(f"dump_ref: output {k} is {err:.1e} x max|ref| off out.{k}.npy", file=sys.stderr)
            return 1
    os.makedirs(a.out, exist_ok=True)
    for name, t in values.items():
        if case["family"] == "gpt2":
            t = pad_cache(name, t, case["params"]["n_positions"])
        arr = t.numpy()
        arr = arr.astype(np.int32) if arr.dtype.kind in "iu" else arr.astype(np.float32)
        np.save(os.path.join(a.out, f"{name}.npy"), np.ascontiguousarray(arr))
    print(f"dump_ref: {len(values)} values of {case['id']} into {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
