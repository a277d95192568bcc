"""make_greedy.py: greedy generation fixtures for kiln's key/value cache (tests/api/kv_cache.c).

For a small GPT-2 with random weights (gpt2_ref.py), writes into tests/reference/greedy/<id>/:
    args                 the kiln -D flags of the configuration
    weights.safetensors  the weights (Hugging Face GPT2Model names)
    prompt.npy           int32 [B, P] prompt ids
    greedy.npy           int32 [B, N] the ids PyTorch's greedy decoding with past_key_values
                         picks after the prompt (one forward over the prompt, then one per token)
    gap                  the smallest best-minus-second logit over all steps and rows: the
                         margin by which the fixture's argmax is unambiguous

Seeds are tried in order until every step's gap is at least MIN_GAP, so that float32 rounding
differences between two correct implementations cannot change a pick.  Computed in float64.

    OMP_WAIT_POLICY=passive /usr/bin/python3 tests/reference/make_greedy.py   (make reference)
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import gpt2_ref  # noqa: E402

MIN_GAP = 1e-3
N_NEW = 32
CASES = [
    # id, batch, prompt length, params
    ("gpt2.b1", 1, 5, dict(n_layer=2, n_head=4, n_embd=64, vocab_size=97, n_positions=48)),
    ("gpt2.b3", 3, 7, dict(n_layer=2, n_head=3, n_embd=21, vocab_size=61, n_positions=40)),
]


def main():
    torch.set_num_threads(1)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "greedy")
    for cid, batch, plen, p in CASES:
        for seed in range(1, 200):
            model = common.init_random(gpt2_ref.GPT2(**p), seed).eval()
            gen = torch.Generator().manual_seed(seed)
            prompt = torch.randint(0, p["vocab_size"], (batch, plen), generator=gen)
            ids, gaps = gpt2_ref.greedy(model.double(), prompt, N_NEW)
            if min(gaps) >= MIN_GAP:
                break
        else:
            raise SystemExit(f"{cid}: no seed below 200 gives gaps >= {MIN_GAP}")
        d = os.path.join(root, cid)
        os.makedirs(d, exist_ok=True)
        model = model.float()
        common.safetensors_save(os.path.join(d, "weights.safetensors"), model.state_dict())
        np.save(os.path.join(d, "prompt.npy"), prompt.numpy().astype(np.int32))
        np.save(os.path.join(d, "greedy.npy"), ids.numpy().astype(np.int32))
        flags = " ".join(f"-D {k}={v}" for k, v in p.items())
        with open(os.path.join(d, "args"), "w") as f:
            f.write(f"models/gpt2.yaml {flags} -D max_batch={batch}\n")
        with open(os.path.join(d, "gap"), "w") as f:
            f.write(f"{min(gaps):.6g}\n")
        print(f"{cid}: seed {seed}, batch {batch}, prompt {plen}, {N_NEW} tokens, min gap "
              f"{min(gaps):.3g}")


if __name__ == "__main__":
    main()
