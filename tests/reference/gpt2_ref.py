"""gpt2_ref.py: GPT-2 in plain PyTorch, the reference for models/gpt2.yaml.

Written from the architecture (Radford et al. 2019; the layout of Hugging Face's GPT2Model),
independently of kiln's spec, so that a test compares two implementations, not one with
itself.  state_dict() names are exactly Hugging Face's GPT2Model names, so a file this
module writes is a file HF would write, and real GPT-2 checkpoints load into it.

    input_ids [B, T] (int)  ->  logits [B, T, vocab_size] (f32)

    x = wte[input_ids] + wpe[0..T-1]
    for each block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))     (pre-LayerNorm)
    logits = ln_f(x) @ wte^T                                          (tied LM head)

attn is causal multi-head self-attention with scale 1/sqrt(head_dim); mlp is
c_proj(gelu_tanh(c_fc(x))).  Linear layers are HF "Conv1D": weight [in, out], y = x @ W + b.
All LayerNorms use eps 1e-5.

The few plain attributes (Attention.causal, Attention.scale, MLP.act, ...) exist so that
check_cases.py can break one thing at a time and confirm the fixtures notice; their
defaults are the model.  The trace() calls name intermediate values as models/gpt2.yaml
does (`prefix` is "h.<i>." and so on, set by GPT2), for dump_ref.py; they change nothing.
"""

import math

import torch
import torch.nn as nn

from common import trace

LN_EPS = 1e-5


def gelu_tanh(x):
    """GELU, tanh approximation (HF "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class Conv1D(nn.Module):
    """HF's Conv1D: a linear layer whose weight is stored [n_in, n_out]; y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))   # [in, out]
        self.bias = nn.Parameter(torch.empty(n_out))           # [out]
        self.weight.conv1d = True                              # tells init_random the fan-in

    def forward(self, x, names=("", "")):
        """names: what to trace the product and the biased result as."""
        return trace(names[1], trace(names[0], x @ self.weight) + self.bias)


class Attention(nn.Module):
    """Causal multi-head self-attention.  c_attn: [C, 3C], columns q | k | v; c_proj: [C, C]."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        assert n_embd % n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.c_attn = Conv1D(n_embd, 3 * n_embd)
        self.c_proj = Conv1D(n_embd, n_embd)
        self.causal = True
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.prefix = ""                                     # "h.<i>.attn." for trace()

    def forward(self, x, past=None):                         # x [B, T, C]
        """With past = (k, v) of the P earlier positions ([B, H, P, D] each), the T queries
        are positions P .. P+T-1 and attend over all P+T keys.  Returns (y, (k, v))."""
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        p = self.prefix
        qkv = self.c_attn(x, (p + "c_attn", p + "qkv"))
        q, k, v = (trace(p + n, t) for n, t in zip("qkv", qkv.split(C, dim=-1)))  # [B, T, C]

        def heads(t, n):                                     # [B, T, C] -> [B, H, T, D]
            return trace(p + n + "_t", trace(p + n + "_heads", t.view(B, T, H, D)).transpose(1, 2))

        q, k, v = heads(q, "q"), heads(k, "k"), heads(v, "v")
        if past is not None:                                 # past_key_values, as HF keeps them
            k = torch.cat([past[0], k], dim=2)               # [B, H, P+T, D]
            v = torch.cat([past[1], v], dim=2)
        trace(p + "k_all", k)
        trace(p + "v_all", v)
        S = k.shape[2]
        att = trace(p + "qk", q @ k.transpose(-2, -1))        # [B, H, T, S]
        att = trace(p + "scaled", att * self.scale)
        if self.causal:
            future = torch.ones(T, S, dtype=torch.bool).triu(S - T + 1)   # key j > P + query i
            att = att.masked_fill(future, float("-inf"))
        att = trace(p + "probs", trace(p + "masked", att).softmax(dim=-1))
        y = trace(p + "ctx_t", trace(p + "ctx", att @ v).transpose(1, 2))
        y = trace(p + "merged", y.reshape(B, T, C))         # heads side by side again
        return self.c_proj(y, (p + "c_proj", p + "out")), (k, v)


class MLP(nn.Module):
    """c_fc [C, 4C] -> gelu_tanh -> c_proj [4C, C]."""

    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = Conv1D(n_embd, 4 * n_embd)
        self.c_proj = Conv1D(4 * n_embd, n_embd)
        self.act = gelu_tanh
        self.prefix = ""                                     # "h.<i>.mlp." for trace()

    def forward(self, x):
        p = self.prefix
        h = trace(p + "act", self.act(self.c_fc(x, (p + "c_fc", p + "fc"))))
        return self.c_proj(h, (p + "c_proj", p + "out"))


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.attn = Attention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.mlp = MLP(n_embd)
        self.prefix = ""                                     # "h.<i>." for trace()

    def forward(self, x, past=None):
        p = self.prefix
        a, present = self.attn(trace(p + "ln_1", self.ln_1(x)), past)
        x = trace(p + "res_attn", x + a)
        return trace(p + "out", x + self.mlp(trace(p + "ln_2", self.ln_2(x)))), present


class GPT2(nn.Module):
    """GPT2Model plus the tied LM head.  Parameters are the spec's params of the same names."""

    INPUTS = ("input_ids",)
    OUTPUTS = ("logits",)
    PARAMS = ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions")

    def __init__(self, n_layer, n_head, n_embd, vocab_size, n_positions):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)      # [vocab_size, C]; also the LM head
        self.wpe = nn.Embedding(n_positions, n_embd)     # [n_positions, C]
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=LN_EPS)
        for i, block in enumerate(self.h):               # the spec's names, for trace()
            block.prefix = f"h.{i}."
            block.attn.prefix = f"h.{i}.attn."
            block.mlp.prefix = f"h.{i}.mlp."

    def forward(self, input_ids, past_key_values=None):
        """input_ids [B, T] int  ->  {"logits": [B, T, vocab_size], "past_key_values": [(k, v)
        per block]}.  With past_key_values (from an earlier call) the ids continue that text:
        positions P .. P+T-1, P + T <= n_positions."""
        T = input_ids.shape[1]
        P = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        pos = trace("pos", torch.arange(P, P + T))
        x = trace("embed", trace("tok_emb", self.wte(input_ids.long())) +
                  trace("pos_emb", self.wpe(pos)))       # [B, T, C]
        present = []
        for i, block in enumerate(self.h):
            x, kv = block(x, None if past_key_values is None else past_key_values[i])
            present.append(kv)
        logits = trace("logits", trace("ln_f", self.ln_f(x)) @ self.wte.weight.t())
        return {"logits": logits, "past_key_values": present}


def greedy(model, prompt_ids, n_new):
    """Greedy continuation with the key/value cache: one forward over the prompt [B, P], then
    one per new token.  Returns (ids [B, n_new], gaps [n_new]: the smallest distance between
    the best and second-best logit over the batch at each step)."""
    out, gaps = [], []
    with torch.inference_mode():
        r = model(prompt_ids)
        for _ in range(n_new):
            last = r["logits"][:, -1, :]                         # [B, vocab]
            top2 = last.topk(2, dim=-1).values
            gaps.append(float((top2[:, 0] - top2[:, 1]).min()))
            nxt = last.argmax(dim=-1, keepdim=True)              # [B, 1]
            out.append(nxt)
            r = model(nxt, r["past_key_values"])
    return torch.cat(out, dim=1), gaps
