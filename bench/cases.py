"""cases.py: the benchmark's cases and everything derived from a case's configuration.

bench.py times kiln against PyTorch and ONNX Runtime on each case listed in CASES.  This file
says, for each case, which spec and reference module it uses, at which size, on which
inputs, and how much arithmetic and weight traffic one forward pass needs (the roofline
floor).  It also writes a case's files into its work folder:

    bench/work/<case>/
        weights.safetensors   the module's state_dict, Hugging Face names, f32
        in.<input>.npy        each input, int64 (kiln narrows to i32 as it reads them)
        model.onnx            the same module exported by torch.onnx.export (opset 14)
        in.<input>.bin        the inputs again as raw little-endian data, for ort_runner.js
        stamp.json            what the files were made from; a match skips remaking them

The reference modules are tests/reference/{gpt2_ref,bert_ref}.py, imported as they are: the
benchmark runs the same PyTorch code the reference tests trust.
"""

import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402  (safetensors writer, init_random)
from bert_ref import Bert  # noqa: E402
from gpt2_ref import GPT2  # noqa: E402

# Bumped whenever what a work folder holds changes, so that old folders are remade.
STAMP_VERSION = 1

# ---------------------------------------------------------------------------------------
# Model sizes.  Full: the published sizes (bert-base-uncased, GPT-2 small), the specs'
# defaults.  Quick (BENCH_QUICK=1): 2 layers, width 128, a small vocabulary, so that a smoke
# run of the whole harness takes seconds even with unoptimised kernels.

BERT_BASE = dict(num_hidden_layers=12, num_attention_heads=12, hidden_size=768,
                 intermediate_size=3072, vocab_size=30522, max_position_embeddings=512,
                 type_vocab_size=2, max_batch=1)
BERT_QUICK = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=128,
                  intermediate_size=512, vocab_size=1000, max_position_embeddings=512,
                  type_vocab_size=2, max_batch=1)
GPT2_SMALL = dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=1024,
                  max_batch=1)
GPT2_QUICK = dict(n_layer=2, n_head=2, n_embd=128, vocab_size=1000, n_positions=1024,
                  max_batch=1)

FAMILIES = {
    "bert": {"spec": "models/bert.yaml", "module": Bert},
    "gpt2": {"spec": "models/gpt2.yaml", "module": GPT2},
}

# The cases, in the order they run and print.  id: names the work folder and the results;
# title: for people; batch, seq: the input shape; seed: weights and inputs.
CASES = [
    dict(id="bert-seq128", family="bert", title="BERT-base, seq 128", batch=1, seq=128,
         seed=1128, full=BERT_BASE, quick=BERT_QUICK),
    dict(id="bert-seq512", family="bert", title="BERT-base, seq 512", batch=1, seq=512,
         seed=1512, full=BERT_BASE, quick=BERT_QUICK),
    dict(id="gpt2-prefill128", family="gpt2", title="GPT-2 small, prefill 128 tokens",
         batch=1, seq=128, seed=2128, full=GPT2_SMALL, quick=GPT2_QUICK),
]


def case_params(case, quick):
    """Every spec param of `case` at its full or quick size (a new dict)."""
    return dict(case["quick"] if quick else case["full"])


def case_title(case, quick):
    """`case`'s title, marked as the quick size when it is one."""
    return case["title"] + (" (quick size: 2 layers, width 128)" if quick else "")


# ---------------------------------------------------------------------------------------
# Arithmetic and traffic of one forward pass
#
# FLOPs count multiplies and adds of the matrix products only (one multiply-add = 2 FLOPs);
# LayerNorm, GELU, softmax, embedding gathers and bias adds are O(tokens x width) and left out,
# as is usual (they are under 1% here).  With B batch, T seq, L layers, C width, H heads of
# D = C / H, I the feed-forward width and V the vocabulary:
#
#   matmuls with weights  2 x B x T x P_tok, where P_tok is the number of weights every token
#                         is multiplied by:
#                           BERT:  L x (4 C^2 + 2 C I)           q, k, v, o; FFN in and out
#                           GPT-2: L x (4 C^2 + 2 C 4C) + C V    c_attn, c_proj; c_fc, c_proj;
#                                                                the tied LM head (logits at
#                                                                every position)
#                         plus BERT's pooler, 2 x B x C^2 (on the first token only)
#   attention             4 x B x L x H x T^2 x D: scores Q K^T (2 T^2 D per head) and
#                         probabilities x V (2 T^2 D), the full T x T square.  GPT-2's causal
#                         mask makes half of it zeros; we count the square, as PyTorch and
#                         ONNX Runtime compute it, so a kiln that skips the masked half gets
#                         that saving credited as speed, not as fewer FLOPs.
#
# Weight bytes: every matrix the matmuls read, once per forward, in f32 (4 bytes).  Read once
# from memory at full bandwidth, they bound the time from below as the FLOPs do at peak.

def flop_count(case, params):
    """Return (flops, formula, weight_bytes) of one forward pass of `case` at `params`."""
    B, T = case["batch"], case["seq"]
    if case["family"] == "bert":
        L, C, H = (params["num_hidden_layers"], params["hidden_size"],
                   params["num_attention_heads"])
        I = params["intermediate_size"]
        p_tok = L * (4 * C * C + 2 * C * I)
        pooler = 2 * B * C * C
        formula = ("2*B*T*L*(4*C^2 + 2*C*I) + 2*B*C^2 + 4*B*L*H*T^2*D"
                   f" with B={B} T={T} L={L} C={C} I={I} H={H} D={C // H}")
        weights = 4 * (p_tok + C * C)
    else:
        L, C, H = params["n_layer"], params["n_embd"], params["n_head"]
        V = params["vocab_size"]
        p_tok = L * (4 * C * C + 2 * C * 4 * C) + C * V
        pooler = 0
        formula = ("2*B*T*(L*(4*C^2 + 8*C^2) + C*V) + 4*B*L*H*T^2*D"
                   f" with B={B} T={T} L={L} C={C} V={V} H={H} D={C // H}")
        weights = 4 * p_tok
    D = C // H
    attention = 4 * B * L * H * T * T * D
    return 2 * B * T * p_tok + pooler + attention, formula, weights


# ---------------------------------------------------------------------------------------
# Module, inputs, files

def build_module(case, params):
    """The reference module for `case` with random weights from its seed, in eval mode."""
    cls = FAMILIES[case["family"]]["module"]
    module = cls(**{k: params[k] for k in cls.PARAMS})
    return common.init_random(module, case["seed"]).eval()


def make_inputs(case, params):
    """Input name -> int64 numpy array [B, T], drawn from the case's seed.

    BERT: random word ids (never 0, [PAD]), segment A for the first half and B for the
    rest, no padding (mask all ones: batch 1 needs none).  GPT-2: random token ids.
    """
    gen = torch.Generator().manual_seed(case["seed"] + 1)
    B, T = case["batch"], case["seq"]
    if case["family"] == "bert":
        ids = torch.randint(1, params["vocab_size"], (B, T), generator=gen)
        types = torch.zeros(B, T, dtype=torch.int64)
        types[:, T // 2:] = 1
        mask = torch.ones(B, T, dtype=torch.int64)
        return {"input_ids": ids.numpy(), "token_type_ids": types.numpy(),
                "attention_mask": mask.numpy()}
    ids = torch.randint(0, params["vocab_size"], (B, T), generator=gen)
    return {"input_ids": ids.numpy()}


class _TupleOutputs(torch.nn.Module):
    """Wraps a reference module so that forward returns its outputs as a tuple in OUTPUTS
    order (torch.onnx.export wants tensors, not the dict the modules return)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *inputs):
        out = self.module(**dict(zip(self.module.INPUTS, inputs)))
        return tuple(out[k] for k in self.module.OUTPUTS)


def export_onnx(module, inputs, path):
    """Export `module` on `inputs` (name -> numpy) to ONNX at `path`, opset 14, static shapes.

    Opset 14 is what PyTorch 1.13 exports best (it has Trilu for GPT-2's causal mask); the
    shapes are fixed because each case runs at one shape.  Constant folding is on, as a user
    exporting for deployment would have it.
    """
    args = tuple(torch.from_numpy(inputs[k]) for k in module.INPUTS)
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(_TupleOutputs(module), args, tmp, opset_version=14,
                          input_names=list(module.INPUTS), output_names=list(module.OUTPUTS),
                          do_constant_folding=True)
    os.replace(tmp, path)


def write_case_files(case, params, module, inputs, work):
    """Write the case's weights, inputs and ONNX model into `work` (see the file comment),
    unless stamp.json there says they are already made from the same things.  Returns True
    if it wrote them, False if it kept what was there."""
    stamp = {"version": STAMP_VERSION, "case": case["id"], "params": params,
             "batch": case["batch"], "seq": case["seq"], "seed": case["seed"],
             "torch": torch.__version__}
    stamp_path = os.path.join(work, "stamp.json")
    names = (["weights.safetensors", "model.onnx"]
             + [f"in.{k}.npy" for k in inputs] + [f"in.{k}.bin" for k in inputs])
    if os.path.exists(stamp_path) and all(os.path.exists(os.path.join(work, n)) for n in names):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                return False
    os.makedirs(work, exist_ok=True)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    common.safetensors_save(os.path.join(work, "weights.safetensors"), module.state_dict())
    for k, v in inputs.items():
        np.save(os.path.join(work, f"in.{k}.npy"), np.ascontiguousarray(v))
        np.ascontiguousarray(v, dtype="<i8").tofile(os.path.join(work, f"in.{k}.bin"))
    export_onnx(module, inputs, os.path.join(work, "model.onnx"))
    with open(stamp_path, "w") as f:
        json.dump(stamp, f, indent=1)
    return True


def run_torch(module, inputs):
    """One forward pass of `module` under inference_mode; returns output name -> tensor, for
    the names in module.OUTPUTS (GPT2 also returns its past_key_values, which no case uses)."""
    tin = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.inference_mode():
        out = module(**tin)
    return {k: out[k] for k in module.OUTPUTS}


def run_float64(module, inputs):
    """The outputs of `module` computed in float64 from its float32 weights, as float64 numpy:
    the exact answer for those weights to ~1e-15, against which every system's float32
    rounding is measured (as tests/reference/make_cases.py does)."""
    m64 = copy.deepcopy(module).double()
    with torch.inference_mode():
        out = m64(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return {k: out[k].numpy() for k in module.OUTPUTS}
