"""bert_ref.py: BERT's encoder in plain PyTorch, the reference for models/bert.yaml.

Written from the architecture (Devlin et al. 2019; the layout of Hugging Face's BertModel),
independently of kiln's spec.  state_dict() names are exactly Hugging Face's BertModel
names.

    input_ids, token_type_ids, attention_mask [B, T] (int)
        ->  last_hidden_state [B, T, hidden_size], pooler_output [B, hidden_size] (f32)

    x = LayerNorm(word[input_ids] + position[0..T-1] + token_type[token_type_ids])
    for each layer (post-LayerNorm):
        x = LayerNorm(x + dense(self_attention(x, mask)))
        x = LayerNorm(x + dense_out(gelu_erf(dense_in(x))))
    pooler_output = tanh(pooler.dense(x[:, 0]))

Linear layers are nn.Linear (weight [out, in]).  LayerNorm eps is 1e-12 everywhere.  The
padding mask is applied exactly as HF BertModel applies it: the additive term
(1 - attention_mask) * finfo(float32).min is added to the scaled scores of every head and
query before softmax, so padded keys get zero weight; padded query positions still get
outputs (attending to the real tokens), and the fixtures include them.

The plain attributes (SelfAttention.scale, Intermediate.act, ...) exist so that
check_cases.py can break one thing at a time and confirm the fixtures notice.  The trace()
calls name intermediate values as models/bert.yaml does (`prefix` and `result` are set by
Bert), for dump_ref.py; they change nothing.
"""

import math

import torch
import torch.nn as nn

from common import trace, trace_linear_mm

LN_EPS = 1e-12


def gelu_erf(x):
    """Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


class Embeddings(nn.Module):
    def __init__(self, vocab_size, hidden, max_position_embeddings, type_vocab_size):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden)                 # [V, H]
        self.position_embeddings = nn.Embedding(max_position_embeddings, hidden)  # [P, H]
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden)      # [types, H]
        self.LayerNorm = nn.LayerNorm(hidden, eps=LN_EPS)

    def forward(self, input_ids, token_type_ids):
        T = input_ids.shape[1]
        words = trace("embeddings.words", self.word_embeddings(input_ids.long()))
        pos = self.position_embeddings(trace("embeddings.positions", torch.arange(T)))
        types = trace("embeddings.types", self.token_type_embeddings(token_type_ids.long()))
        x = trace("embeddings.sum", trace("embeddings.sum1", words + trace("embeddings.pos", pos))
                  + types)
        return trace("embeddings", self.LayerNorm(x))


class SelfAttention(nn.Module):
    """query/key/value: nn.Linear [H, H] each; heads are consecutive slices of head_dim."""

    def __init__(self, hidden, n_head):
        super().__init__()
        assert hidden % n_head == 0, "hidden_size must be a multiple of num_attention_heads"
        self.n_head = n_head
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.scale = 1.0 / math.sqrt(hidden // n_head)
        self.prefix = ""                           # "encoder.layer.<i>.attention.self."

    def forward(self, x, additive_mask):          # x [B, T, H]; additive_mask [B, 1, 1, T]
        B, T, C = x.shape
        nh, d = self.n_head, C // self.n_head
        p = self.prefix

        def heads(linear, n):                      # x W^T + b: [B, T, C] -> [B, nh, T, d]
            trace_linear_mm(p + n + "_mm", linear, x)
            t = trace(p + n + "_h", trace(p + n, linear(x)).view(B, T, nh, d))
            return trace(p + n + "_t", t.transpose(1, 2))

        q, k, v = heads(self.query, "q"), heads(self.key, "k"), heads(self.value, "v")
        scores = trace(p + "scaled", trace(p + "qk", q @ k.transpose(-2, -1)) * self.scale)
        scores = trace(p + "masked", scores + additive_mask)        # [B, nh, T, T]
        probs = trace(p + "probs", scores.softmax(dim=-1))
        ctx = trace(p + "ctx_t", trace(p + "ctx", probs @ v).transpose(1, 2))
        return trace(p + "out", ctx.reshape(B, T, C))


class DenseNorm(nn.Module):
    """BertSelfOutput / BertOutput: LayerNorm(residual + dense(x)).  (Dropout is eval-off.)"""

    def __init__(self, n_in, hidden):
        super().__init__()
        self.dense = nn.Linear(n_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.prefix = self.result = ""             # for trace(): "...attention.output.", ...

    def forward(self, x, residual):
        trace_linear_mm(self.prefix + "dense_mm", self.dense, x)
        r = residual + trace(self.prefix + "dense", self.dense(x))
        return trace(self.result, self.LayerNorm(trace(self.prefix + "residual", r)))


class Attention(nn.Module):
    def __init__(self, hidden, n_head):
        super().__init__()
        self.self = SelfAttention(hidden, n_head)
        self.output = DenseNorm(hidden, hidden)

    def forward(self, x, additive_mask):
        return self.output(self.self(x, additive_mask), x)


class Intermediate(nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.dense = nn.Linear(hidden, intermediate)
        self.act = gelu_erf
        self.prefix = ""                           # "encoder.layer.<i>." for trace()

    def forward(self, x):
        trace_linear_mm(self.prefix + "intermediate.dense_mm", self.dense, x)
        h = trace(self.prefix + "intermediate.dense", self.dense(x))
        return trace(self.prefix + "intermediate", self.act(h))


class Layer(nn.Module):
    def __init__(self, hidden, n_head, intermediate):
        super().__init__()
        self.attention = Attention(hidden, n_head)
        self.intermediate = Intermediate(hidden, intermediate)
        self.output = DenseNorm(intermediate, hidden)

    def forward(self, x, additive_mask):
        x = self.attention(x, additive_mask)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, n_layer, hidden, n_head, intermediate):
        super().__init__()
        self.layer = nn.ModuleList(Layer(hidden, n_head, intermediate) for _ in range(n_layer))

    def forward(self, x, additive_mask):
        for layer in self.layer:
            x = layer(x, additive_mask)
        return x


class Pooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = torch.tanh

    def forward(self, x):                          # x [B, T, H] -> [B, H]
        x0 = trace("pooler.token0", trace("pooler.first", x[:, 0:1])[:, 0])
        trace_linear_mm("pooler.dense_mm", self.dense, x0)
        return trace("pooler", self.act(trace("pooler.dense", self.dense(x0))))


class Bert(nn.Module):
    """BertModel with its pooler.  Parameters are the spec's params of the same names."""

    INPUTS = ("input_ids", "token_type_ids", "attention_mask")
    OUTPUTS = ("last_hidden_state", "pooler_output")
    PARAMS = ("num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size",
              "vocab_size", "max_position_embeddings", "type_vocab_size")

    def __init__(self, num_hidden_layers, num_attention_heads, hidden_size, intermediate_size,
                 vocab_size, max_position_embeddings, type_vocab_size):
        super().__init__()
        self.embeddings = Embeddings(vocab_size, hidden_size, max_position_embeddings,
                                     type_vocab_size)
        self.encoder = Encoder(num_hidden_layers, hidden_size, num_attention_heads,
                               intermediate_size)
        self.pooler = Pooler(hidden_size)
        self.use_mask = True
        for i, layer in enumerate(self.encoder.layer):      # the spec's names, for trace()
            p = f"encoder.layer.{i}."
            layer.attention.self.prefix = p + "attention.self."
            layer.attention.output.prefix = p + "attention.output."
            layer.attention.output.result = p + "attention.output"
            layer.intermediate.prefix = p
            layer.output.prefix = p + "output."
            layer.output.result = p + "out"

    def forward(self, input_ids, token_type_ids, attention_mask):
        """All inputs [B, T] int; attention_mask 1 for real tokens, 0 for padding."""
        x = self.embeddings(input_ids, token_type_ids)
        dtype = x.dtype
        # HF's get_extended_attention_mask: [B, 1, 1, T], 0 where attended, finfo.min where
        # padded.  finfo(float32).min even when computing in float64, as the float32 model
        # does, so a float64 run reproduces it.
        keep = attention_mask[:, None, None, :].to(dtype)
        additive = (1.0 - keep) * torch.finfo(torch.float32).min
        if not self.use_mask:
            additive = torch.zeros_like(additive)
        trace("mask.keep", keep[:, 0, 0])                   # the spec's steps, [B, T] each
        trace("mask.drop", 1.0 - keep[:, 0, 0])
        trace("mask.additive", additive[:, 0, 0])
        trace("mask", additive)
        h = self.encoder(x, additive)
        return {"last_hidden_state": h, "pooler_output": self.pooler(h)}
