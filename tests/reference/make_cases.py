#!/usr/bin/python3
"""make_cases.py: write the reference test cases that compare kiln with PyTorch.

    /usr/bin/python3 tests/reference/make_cases.py            # regenerate tests/reference/cases/
    /usr/bin/python3 tests/reference/make_cases.py --fresh --seed N --out DIR [--count K]

The first form rewrites the committed cases listed in COMMITTED below (fixed seeds: the same
PyTorch gives the same bytes).  The second draws K random configurations per model from seed
N (layers, heads, odd head sizes, sequence length from 1 to the bound, batch, padding, int32
or int64 inputs, prefixed weight names) and writes them into DIR in the same layout, for CI
runs that test configurations nobody chose in advance.

A case is a folder <family>.<name>/ holding

    args                 spec path (from the repo root) and every param as -D name=value
    tol                  allowed error as a fraction of max |reference|  (1e-4)
    weights.safetensors  the model's tensors, Hugging Face / PyTorch names, f32
    in.<input>.npy       one per model input (ints as int32 or int64)
    out.<output>.npy     the reference outputs, f32

run_case.sh feeds these to the kiln binary and to `kiln interp`; check_cases.py reloads
them into the reference models and checks that they reproduce.
"""

import argparse
import copy
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402  (sets thread limits before any torch work)
from bert_mlm_ref import BertMLM  # noqa: E402
from bert_ref import Bert  # noqa: E402
from gpt2_ref import GPT2  # noqa: E402
from seed_layer_ref import SeedLayer  # noqa: E402

TOL = 1e-4

# ---------------------------------------------------------------------------------------
# Model families: the spec each one is compiled from, the reference module, and the spec
# params that bound the symbolic dims (batch, seq) beyond the model's own params.

FAMILIES = {
    "gpt2": {"spec": "models/gpt2.yaml", "model": GPT2,
             "bounds": ("max_batch",), "seq_bound": "n_positions"},
    "bert": {"spec": "models/bert.yaml", "model": Bert,
             "bounds": ("max_batch",), "seq_bound": "max_position_embeddings"},
    "bert-mlm": {"spec": "models/bert-mlm.yaml", "model": BertMLM,
                 "bounds": ("max_batch",), "seq_bound": "max_position_embeddings"},
    "seed": {"spec": "models/seed-bert-layer.yaml", "model": SeedLayer,
             "bounds": ("max_batch", "max_seq"), "seq_bound": "max_seq"},
}

# Tensors that Hugging Face's BertForMaskedLM files carry beside the encoder (the MLM head;
# its decoder weight is tied to the word embeddings and so not stored).  A kiln model must
# ignore tensors it does not use; bert.prefix carries these to check that.
BERT_MLM_EXTRAS = {
    "cls.predictions.bias": lambda p: [p["vocab_size"]],
    "cls.predictions.transform.dense.weight": lambda p: [p["hidden_size"], p["hidden_size"]],
    "cls.predictions.transform.dense.bias": lambda p: [p["hidden_size"]],
    "cls.predictions.transform.LayerNorm.weight": lambda p: [p["hidden_size"]],
    "cls.predictions.transform.LayerNorm.bias": lambda p: [p["hidden_size"]],
}

# Tensors that checkpoints of BERT pretrained for masked LM carry beside BertForMaskedLM's
# (bert-base-uncased's file is a BertForPreTraining: pooler and next-sentence head too).
# bert-mlm.pad carries them to check that the MLM model ignores them.
BERT_PRETRAINING_EXTRAS = {
    "bert.pooler.dense.weight": lambda p: [p["hidden_size"], p["hidden_size"]],
    "bert.pooler.dense.bias": lambda p: [p["hidden_size"]],
    "cls.seq_relationship.weight": lambda p: [2, p["hidden_size"]],
    "cls.seq_relationship.bias": lambda p: [2],
}


def weight_names(family, keys, prefix):
    """state_dict key -> tensor name in the file, for the weight-name prefix `prefix`.

    A module whose names already carry a prefix (BertMLM: "bert.", as HF's BertForMaskedLM)
    writes them as they are for that prefix and without it for "" (the plain layout); its
    other names (cls.predictions.*) never change.  Any other module: prefix + key.
    """
    own = getattr(FAMILIES[family]["model"], "OWN_PREFIX", "")
    return {k: prefix + k[len(own):] if k.startswith(own) else k for k in keys}


# ---------------------------------------------------------------------------------------
# The committed cases.  Each: id, params (every spec param), batch, seq, int dtype of the
# integer inputs, seed, and optionally the weight-name prefix and per-row lengths (BERT
# padding: row b has lengths[b] real tokens, then padding).

COMMITTED = [
    # gpt2.small: batch 2 = max_batch, seq 12 < n_positions 32.
    dict(id="gpt2.small", params=dict(n_layer=2, n_head=4, n_embd=64, vocab_size=97,
                                      n_positions=32, max_batch=2),
         batch=2, seq=12, ints="int64", seed=101),
    # gpt2.hd7: head_dim 7 (no vector width divides it); seq = n_positions; batch 1 < bound.
    dict(id="gpt2.hd7", params=dict(n_layer=2, n_head=3, n_embd=21, vocab_size=53,
                                    n_positions=16, max_batch=3),
         batch=1, seq=16, ints="int32", seed=102),
    # gpt2.seq1: one token (attention over a single key), head_dim 5, one layer.
    dict(id="gpt2.seq1", params=dict(n_layer=1, n_head=2, n_embd=10, vocab_size=31,
                                     n_positions=8, max_batch=4),
         batch=2, seq=1, ints="int32", seed=103),
    # gpt2.prefix: names as GPT2LMHeadModel.save_pretrained writes them ("transformer.h.0...";
    # the LM head is tied to wte, so no lm_head.weight).
    dict(id="gpt2.prefix", params=dict(n_layer=2, n_head=2, n_embd=32, vocab_size=64,
                                       n_positions=16, max_batch=1),
         batch=1, seq=9, ints="int64", seed=104, prefix="transformer."),
    # gpt2.ctx1: n_positions 1, so the cache holds no earlier token and the position dim's
    # bound (past: n_positions - 1) is 0; batch 2 of 3.
    dict(id="gpt2.ctx1", params=dict(n_layer=2, n_head=2, n_embd=12, vocab_size=29,
                                     n_positions=1, max_batch=3),
         batch=2, seq=1, ints="int64", seed=105),
    # bert.pad: batch 2, the second row padded (mask 0 on its last 4 tokens), types 0 then 1.
    dict(id="bert.pad", params=dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32,
                                    intermediate_size=64, vocab_size=89,
                                    max_position_embeddings=24, type_vocab_size=2, max_batch=2),
         batch=2, seq=10, lengths=[10, 6], ints="int64", seed=201),
    # bert.prefix: names as BertForMaskedLM writes them ("bert.encoder..." plus the cls.*
    # MLM head, which the model must ignore); head_dim 5, 3 token types, rows of 9, 4, 1.
    dict(id="bert.prefix", params=dict(num_hidden_layers=2, num_attention_heads=3,
                                       hidden_size=15, intermediate_size=37, vocab_size=50,
                                       max_position_embeddings=12, type_vocab_size=3,
                                       max_batch=3),
         batch=3, seq=9, lengths=[9, 4, 1], ints="int32", seed=202, prefix="bert."),
    # bert.seq1: one token per row (the pooler reads that token).
    dict(id="bert.seq1", params=dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32,
                                     intermediate_size=64, vocab_size=89,
                                     max_position_embeddings=24, type_vocab_size=2, max_batch=2),
         batch=2, seq=1, lengths=[1, 1], ints="int32", seed=203),
    # bert.hd32: head_dim 32, whole vectors on every ISA (two of AVX-512's, as BERT-base's 64
    # are four) and a multiple of every matmul microkernel's width; batch 2, rows of 13 (no
    # multiple of a tile's rows) and 7 tokens.
    dict(id="bert.hd32", params=dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=64,
                                     intermediate_size=96, vocab_size=71,
                                     max_position_embeddings=20, type_vocab_size=2, max_batch=2),
         batch=2, seq=13, lengths=[13, 7], ints="int64", seed=204),
    # bert-mlm.pad: BertForMaskedLM names as HF writes them ("bert.encoder...",
    # "cls.predictions..."), plus a pretraining checkpoint's pooler and next-sentence head,
    # which the model must ignore; batch 2, the second row padded after 5 of 11 tokens.
    dict(id="bert-mlm.pad", params=dict(num_hidden_layers=2, num_attention_heads=4,
                                        hidden_size=32, intermediate_size=64, vocab_size=83,
                                        max_position_embeddings=16, type_vocab_size=2,
                                        max_batch=2),
         batch=2, seq=11, lengths=[11, 5], ints="int64", seed=211, prefix="bert.",
         extras=BERT_PRETRAINING_EXTRAS),
    # bert-mlm.hd7: head_dim 7, names without the "bert." prefix, seq at its bound, batch 1
    # below its bound of 2.
    dict(id="bert-mlm.hd7", params=dict(num_hidden_layers=2, num_attention_heads=3,
                                        hidden_size=21, intermediate_size=40, vocab_size=61,
                                        max_position_embeddings=9, type_vocab_size=2,
                                        max_batch=2),
         batch=1, seq=9, lengths=[9], ints="int32", seed=212, prefix=""),
    # seed.basic: head_dim 8, default 4x FFN, batch 2, seq 11 < max_seq 16.
    dict(id="seed.basic", params=dict(hidden_size=32, attention_heads=4, intermediate_size=128,
                                      max_batch=2, max_seq=16),
         batch=2, seq=11, seed=301),
    # seed.odd: head_dim 3, FFN width 40, batch 3 = max_batch, seq = max_seq.
    dict(id="seed.odd", params=dict(hidden_size=15, attention_heads=5, intermediate_size=40,
                                    max_batch=3, max_seq=7),
         batch=3, seq=7, seed=302),
    # seed.seq1: one position, single head.
    dict(id="seed.seq1", params=dict(hidden_size=12, attention_heads=1, intermediate_size=48,
                                     max_batch=4, max_seq=8),
         batch=3, seq=1, seed=303),
]


def family_of(case_id):
    return case_id.split(".", 1)[0]


def model_params(family, params):
    """The subset of spec params the reference module's constructor takes."""
    return {k: params[k] for k in FAMILIES[family]["model"].PARAMS}


def args_line(family, params):
    """The `args` file: spec path, then every param in the module's order, then the bounds."""
    names = FAMILIES[family]["model"].PARAMS + FAMILIES[family]["bounds"]
    missing = [n for n in names if n not in params]
    assert not missing and len(names) == len(params), (family, sorted(params))
    return " ".join([FAMILIES[family]["spec"]] + [f"-D {n}={params[n]}" for n in names])


# ---------------------------------------------------------------------------------------
# Inputs

def make_inputs(case, gen):
    """Return input name -> numpy array for `case`, drawn from torch generator `gen`."""
    fam, p, B, T = family_of(case["id"]), case["params"], case["batch"], case["seq"]
    ints = np.dtype(case.get("ints", "int64"))
    if fam == "gpt2":
        ids = torch.randint(0, p["vocab_size"], (B, T), generator=gen)
        ids[0, 0] = p["vocab_size"] - 1        # both ends of the embedding table are read
        ids[-1, -1] = 0
        return {"input_ids": ids.numpy().astype(ints)}
    if fam in ("bert", "bert-mlm"):
        lengths = case["lengths"]
        ids = torch.randint(1, p["vocab_size"], (B, T), generator=gen)
        ids[0, 0] = p["vocab_size"] - 1
        types = torch.zeros(B, T, dtype=torch.int64)
        mask = torch.zeros(B, T, dtype=torch.int64)
        for b, n in enumerate(lengths):
            mask[b, :n] = 1
            ids[b, n:] = 0                                    # [PAD] is id 0
            # Segments as a tokenizer makes them: type 0, then 1, 2, ... up to the last real
            # token; padding has type 0.
            cuts = sorted(torch.randint(1, n + 1, (p["type_vocab_size"] - 1,),
                                        generator=gen).tolist()) if n > 1 else []
            for c in cuts:
                types[b, c:n] += 1
        return {"input_ids": ids.numpy().astype(ints),
                "token_type_ids": types.numpy().astype(ints),
                "attention_mask": mask.numpy().astype(ints)}
    if fam == "seed":
        x = torch.randn(B, T, p["hidden_size"], generator=gen)
        return {"hidden_states": x.numpy().astype(np.float32)}
    raise ValueError(fam)


def build_model(family, params, seed):
    """The reference module for `family` with random weights from `seed`, in eval mode."""
    model = FAMILIES[family]["model"](**model_params(family, params))
    return common.init_random(model, seed).eval()


def run_reference(model, inputs):
    """Outputs of `model` on numpy `inputs` as float32 numpy arrays, computed in float64.

    The weights are the stored float32 values; computing with them in float64 makes the
    fixture the exact answer for those weights (to ~1e-15), so a kiln result is measured
    against the truth rather than against another float32 rounding.
    """
    m64 = copy.deepcopy(model).double()
    with torch.inference_mode():
        tin = {k: torch.from_numpy(v).double() if v.dtype.kind == "f" else torch.from_numpy(v)
               for k, v in inputs.items()}
        out = m64(**tin)
    return {k: out[k].float().numpy() for k in type(model).OUTPUTS}


def write_case(case, root):
    """Write `case` into root/<id>/ (replacing what is there); return the folder."""
    fam = family_of(case["id"])
    d = os.path.join(root, case["id"])
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    gen = torch.Generator().manual_seed(case["seed"])
    model = build_model(fam, case["params"], case["seed"])
    inputs = make_inputs(case, gen)
    outputs = run_reference(model, inputs)

    prefix = case.get("prefix", "")
    state = model.state_dict()
    names = weight_names(fam, state, prefix)
    tensors = {names[k]: v for k, v in state.items()}
    extras = case.get("extras", BERT_MLM_EXTRAS if (fam, prefix) == ("bert", "bert.") else {})
    for name, shape in extras.items():
        tensors[name] = 0.02 * torch.randn(shape(case["params"]), generator=gen)
    common.safetensors_save(os.path.join(d, "weights.safetensors"), tensors)
    for k, v in inputs.items():
        np.save(os.path.join(d, f"in.{k}.npy"), np.ascontiguousarray(v))
    for k, v in outputs.items():
        np.save(os.path.join(d, f"out.{k}.npy"), np.ascontiguousarray(v))
    with open(os.path.join(d, "args"), "w") as f:
        f.write(args_line(fam, case["params"]) + "\n")
    with open(os.path.join(d, "tol"), "w") as f:
        f.write(f"{case.get('tol', TOL):g}\n")
    return d


# ---------------------------------------------------------------------------------------
# Random configurations (--fresh)

def fresh_cases(seed, count):
    """`count` random cases per family, all drawn from `seed`."""
    rng = np.random.default_rng(seed)

    def pick(*xs):
        return xs[int(rng.integers(len(xs)))]

    def head_shape():
        heads = int(rng.integers(1, 5))
        hd = pick(1, 2, 3, 4, 5, 7, 8, 9, 13, 16)         # odd sizes on purpose
        return heads, hd

    def batch_seq(max_batch, bound):
        # Sequence length: often an edge (1 or the bound), otherwise anywhere between.
        seq = pick(1, bound, int(rng.integers(1, bound + 1)), int(rng.integers(1, bound + 1)))
        return int(rng.integers(1, max_batch + 1)), seq

    cases = []
    for k in range(count):
        case_seed = seed * 1000 + k
        heads, hd = head_shape()
        p = dict(n_layer=int(rng.integers(1, 4)), n_head=heads, n_embd=heads * hd,
                 vocab_size=int(rng.integers(8, 129)), n_positions=int(rng.integers(1, 41)),
                 max_batch=int(rng.integers(1, 4)))
        b, t = batch_seq(p["max_batch"], p["n_positions"])
        cases.append(dict(id=f"gpt2.r{seed}.{k}", params=p, batch=b, seq=t, seed=case_seed,
                          ints=pick("int32", "int64"), prefix=pick("", "", "transformer.")))

        heads, hd = head_shape()
        h = heads * hd
        p = dict(num_hidden_layers=int(rng.integers(1, 4)), num_attention_heads=heads,
                 hidden_size=h, intermediate_size=pick(4 * h, int(rng.integers(1, 97))),
                 vocab_size=int(rng.integers(8, 129)),
                 max_position_embeddings=int(rng.integers(1, 41)),
                 type_vocab_size=int(rng.integers(1, 4)), max_batch=int(rng.integers(1, 4)))
        b, t = batch_seq(p["max_batch"], p["max_position_embeddings"])
        lengths = [pick(t, int(rng.integers(1, t + 1))) for _ in range(b)]
        cases.append(dict(id=f"bert.r{seed}.{k}", params=p, batch=b, seq=t, lengths=lengths,
                          seed=case_seed + 1, ints=pick("int32", "int64"),
                          prefix=pick("", "", "bert.")))

        heads, hd = head_shape()
        h = heads * hd
        p = dict(hidden_size=h, attention_heads=heads,
                 intermediate_size=pick(4 * h, int(rng.integers(1, 97))),
                 max_batch=int(rng.integers(1, 4)), max_seq=int(rng.integers(1, 41)))
        b, t = batch_seq(p["max_batch"], p["max_seq"])
        cases.append(dict(id=f"seed.r{seed}.{k}", params=p, batch=b, seq=t, seed=case_seed + 2))

    # bert-mlm draws from its own generator, so the cases above stay what they were before
    # it existed.
    rng = np.random.default_rng([seed, 2])
    for k in range(count):
        heads, hd = head_shape()
        h = heads * hd
        p = dict(num_hidden_layers=int(rng.integers(1, 4)), num_attention_heads=heads,
                 hidden_size=h, intermediate_size=pick(4 * h, int(rng.integers(1, 97))),
                 vocab_size=int(rng.integers(8, 129)),
                 max_position_embeddings=int(rng.integers(1, 41)),
                 type_vocab_size=int(rng.integers(1, 4)), max_batch=int(rng.integers(1, 4)))
        b, t = batch_seq(p["max_batch"], p["max_position_embeddings"])
        lengths = [pick(t, int(rng.integers(1, t + 1))) for _ in range(b)]
        cases.append(dict(id=f"bert-mlm.r{seed}.{k}", params=p, batch=b, seq=t,
                          lengths=lengths, seed=seed * 1000 + k + 3,
                          ints=pick("int32", "int64"), prefix=pick("bert.", "bert.", "")))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", action="store_true", help="random configurations from --seed")
    ap.add_argument("--seed", type=int, default=0, help="seed for --fresh")
    ap.add_argument("--count", type=int, default=2, help="cases per model family for --fresh")
    ap.add_argument("--out", help="output folder (default: tests/reference/cases)")
    a = ap.parse_args()

    root = a.out or os.path.join(HERE, "cases")
    if a.fresh:
        if not a.out:
            ap.error("--fresh needs --out DIR (the committed cases stay as they are)")
        cases = fresh_cases(a.seed, a.count)
    else:
        cases = COMMITTED
        # Drop case folders that are no longer listed, so a renamed case leaves nothing stale.
        keep = {c["id"] for c in cases}
        if os.path.isdir(root):
            for name in sorted(os.listdir(root)):
                if name not in keep and os.path.isfile(os.path.join(root, name, "args")):
                    shutil.rmtree(os.path.join(root, name))
    os.makedirs(root, exist_ok=True)
    for case in cases:
        d = write_case(case, root)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{case['id']:<16} B={case['batch']} T={case['seq']:<3} {size / 1024:7.1f} KiB  "
              f"{args_line(family_of(case['id']), case['params'])}")


if __name__ == "__main__":
    main()
