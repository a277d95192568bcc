#!/usr/bin/python3
"""make_fixtures.py: PyTorch's answers for the BERT text front ends (tests/text/bert.sh).

    OMP_WAIT_POLICY=passive /usr/bin/python3 tests/text/make_fixtures.py      (make reference)

For a small BertForMaskedLM with random weights (tests/reference/bert_mlm_ref.py) and the
127-token vocabulary tests/text/bert-mlm/vocab.txt, writes into tests/text/bert-mlm/:

    args                    the kiln -D flags of the configuration
    model.safetensors       the weights, as HF's BertForMaskedLM names them ("bert.*",
                            "cls.predictions.*"), plus bert.pooler.dense.* so that
                            models/bert.yaml (BertModel with pooler) loads the same file
    fill_mask.<name>.text   a text with [MASK]s
    fill_mask.<name>.expected
                            what `--text` must print for it: per [MASK], in text order, the
                            TOP most likely tokens with their softmax probability, as
                            "[MASK] k: token p" with p to 6 decimals (kiln prints 4)
    embed.txt               texts for --embed --input-file, one per line, with a blank line
                            (skipped), a CRLF line end and a line longer than the model's 16
                            positions (cut, with a warning)
    embed.mean.npy          f32 [n_texts, hidden]: the mean of last_hidden_state over each
                            text's tokens ([CLS] and [SEP] included)
    embed.cls.npy           f32 [n_texts, hidden]: last_hidden_state at [CLS]
    embed.first.npy         f32 [1, hidden]: embed.mean.npy's first row (for --text)

Every text runs alone, unpadded, in float64 from the stored float32 weights: kiln batches
texts with padding, so its vectors equal these only if its padding mask and pooling are
right.  The tokenizer here is a minimal uncased WordPiece written for this ASCII vocabulary
(lowercase, split at spaces and punctuation, greedy longest match with "##" pieces,
"[MASK]" parsed as the mask token), independent of kiln's.

Seeds are tried in order until every printed ranking is unambiguous: consecutive
probabilities among each mask's TOP + 1 best differ by at least MIN_GAP, so float32
rounding cannot reorder them.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402  (thread limits before any torch work)
from bert_mlm_ref import BertMLM  # noqa: E402

OUT = os.path.join(HERE, "bert-mlm")
PARAMS = dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, intermediate_size=64,
              vocab_size=127, max_position_embeddings=16, type_vocab_size=2, max_batch=3)
TOP = 5
MIN_GAP = 1e-3
WORD_SCALE = 0.5        # word-embedding std: the decoder is tied to them, so this sets how
                        # peaked the predictions are (0.02, BERT's init, gives ~uniform ones)

FILL_MASK = {
    "one": "The cat sat on the [MASK] .",
    "two": "[MASK] dogs ran to the big [MASK] today!",
    "adjacent": "hello [MASK][MASK] world",
    "long": "the [MASK] fox jumped over the lazy dog and the cat sat on the mat again today, "
            "then ran home",     # 24 tokens: cut to 16 (a warning), the [MASK] kept
}

EMBED_LINES = [
    "The cat sat on the mat.",
    "",
    "a dog runs to the house\r",
    "the quick brown fox jumped over the lazy dog and the cat sat on the mat again today",
    "hello, world!",
    "   ",
    "cats and dogs",
]

SPECIAL = re.compile(r"(\[MASK\]|\[CLS\]|\[SEP\]|\[PAD\]|\[UNK\])")


def tokenize(text, vocab, max_len):
    """[CLS] pieces [SEP], pieces cut from the end to fit max_len (truncation=True)."""
    pieces = []
    for part in SPECIAL.split(text):
        if SPECIAL.fullmatch(part):
            pieces.append(vocab[part])
            continue
        for word in re.findall(r"[a-z0-9]+|[^\sa-z0-9]", part.lower()):
            start, out = 0, []
            while start < len(word):
                end = len(word)
                while end > start and (("##" if start else "") + word[start:end]) not in vocab:
                    end -= 1
                if end == start:
                    out = [vocab["[UNK]"]]
                    break
                out.append(vocab[("##" if start else "") + word[start:end]])
                start = end
            pieces += out
    pieces = pieces[:max_len - 2]
    return [vocab["[CLS]"]] + pieces + [vocab["[SEP]"]]


def run(model, ids):
    """logits [T, V] and last_hidden_state [T, H] for one unpadded text, in float64."""
    x = torch.tensor([ids])
    with torch.inference_mode():
        out = model(input_ids=x, token_type_ids=torch.zeros_like(x),
                    attention_mask=torch.ones_like(x))
    return out["logits"][0], out["last_hidden_state"][0]


def make_model(seed):
    model = BertMLM(**{k: PARAMS[k] for k in BertMLM.PARAMS})
    common.init_random(model, seed)
    with torch.no_grad():
        w = model.bert.embeddings.word_embeddings.weight
        w.copy_(w / 0.02 * WORD_SCALE)
    return model.eval()


def main():
    with open(os.path.join(OUT, "vocab.txt")) as f:
        tokens = f.read().split("\n")[:-1]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(tokens) == PARAMS["vocab_size"]
    T = PARAMS["max_position_embeddings"]
    texts = {k: tokenize(v, vocab, T) for k, v in FILL_MASK.items()}

    for seed in range(1, 500):
        model = make_model(seed)
        m64 = make_model(seed).double()
        results, worst = {}, 1.0
        for name, ids in texts.items():
            logits, _ = run(m64, ids)
            lines = []
            for k, j in enumerate(i for i, t in enumerate(ids) if t == vocab["[MASK]"]):
                p = logits[j].softmax(-1)
                order = torch.argsort(p, descending=True)[:TOP + 1]
                gaps = p[order[:-1]] - p[order[1:]]
                worst = min(worst, float(gaps.min()))
                lines += [f"[MASK] {k + 1}: {tokens[int(i)]} {float(p[i]):.6f}"
                          for i in order[:TOP]]
            results[name] = lines
        if worst >= MIN_GAP:
            break
    else:
        raise SystemExit(f"no seed below 500 gives gaps >= {MIN_GAP}")

    state = model.state_dict()
    state["bert.pooler.dense.weight"] = torch.randn(PARAMS["hidden_size"], PARAMS["hidden_size"],
                                                    generator=torch.Generator().manual_seed(seed))
    state["bert.pooler.dense.bias"] = torch.zeros(PARAMS["hidden_size"])
    common.safetensors_save(os.path.join(OUT, "model.safetensors"), state)
    with open(os.path.join(OUT, "args"), "w") as f:
        f.write(" ".join(f"-D {k}={v}" for k, v in PARAMS.items()) + "\n")
    for name, text in FILL_MASK.items():
        with open(os.path.join(OUT, f"fill_mask.{name}.text"), "w") as f:
            f.write(text)
        with open(os.path.join(OUT, f"fill_mask.{name}.expected"), "w") as f:
            f.write("\n".join(results[name]) + "\n")

    with open(os.path.join(OUT, "embed.txt"), "w", newline="") as f:
        f.write("".join(line + "\n" for line in EMBED_LINES))
    mean, cls = [], []
    for line in EMBED_LINES:
        line = line.rstrip("\r")
        if not line.strip():
            continue
        _, h = run(m64, tokenize(line, vocab, T))
        mean.append(h.mean(0).float().numpy())
        cls.append(h[0].float().numpy())
    np.save(os.path.join(OUT, "embed.mean.npy"), np.stack(mean))
    np.save(os.path.join(OUT, "embed.cls.npy"), np.stack(cls))
    np.save(os.path.join(OUT, "embed.first.npy"), np.stack(mean[:1]))
    print(f"tests/text/bert-mlm: seed {seed}, smallest gap {worst:.4f}, "
          f"{len(mean)} embedding texts")


if __name__ == "__main__":
    main()
