"""seed_layer_ref.py: one post-LayerNorm encoder layer built from stock PyTorch modules, the
reference for models/seed-bert-layer.yaml.

Unlike gpt2_ref.py and bert_ref.py this one deliberately uses nn.MultiheadAttention itself,
so the fixtures pin down what PyTorch's own module computes and its own tensor layout:

    self_attention.in_proj_weight [3H, H]  rows q | k | v (nn.Linear layout, y = x W^T + b)
    self_attention.in_proj_bias   [3H]
    self_attention.out_proj.weight [H, H], .bias [H]
    norm1.*, norm2.*               LayerNorm(H), eps 1e-5
    ffn.0.* [I, H], ffn.2.* [H, I] Linear -> ReLU -> Linear

    hidden_states [B, T, H] f32  ->  output [B, T, H] f32
    a = MHA(x, x, x);  x = norm1(x + a);  output = norm2(x + ffn(x))

No mask.  check_cases.py re-derives the attention by hand from these tensors and requires
agreement to ~1e-6, which guards against a misunderstanding of the module's layout here.
"""

import torch.nn as nn


class SeedLayer(nn.Module):
    """Parameters are the spec's params of the same names (intermediate_size: 4 * hidden)."""

    INPUTS = ("hidden_states",)
    OUTPUTS = ("output",)
    PARAMS = ("hidden_size", "attention_heads", "intermediate_size")

    def __init__(self, hidden_size, attention_heads, intermediate_size=None):
        super().__init__()
        inter = intermediate_size or 4 * hidden_size
        self.self_attention = nn.MultiheadAttention(hidden_size, attention_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(nn.Linear(hidden_size, inter), nn.ReLU(),
                                 nn.Linear(inter, hidden_size))

    def forward(self, hidden_states):
        """hidden_states [B, T, H] -> {"output": [B, T, H]}."""
        x = hidden_states
        a, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.norm1(x + a)
        return {"output": self.norm2(x + self.ffn(x))}
