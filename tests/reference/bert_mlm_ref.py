"""bert_mlm_ref.py: BERT with its masked-language-model head in plain PyTorch, the reference
for models/bert-mlm.yaml.

Written from the architecture (Devlin et al. 2019, section 3.1 and appendix A.1; the layout
of Hugging Face's BertForMaskedLM), independently of kiln's spec.  The encoder is
bert_ref.py's (embeddings and post-LayerNorm layers, HF padding mask); this file adds the
MLM head and arranges the modules so that state_dict() names are exactly the tensors a
BertForMaskedLM safetensors file holds:

    bert.embeddings.*, bert.encoder.layer.{i}.*          the encoder (no pooler)
    cls.predictions.transform.dense.{weight,bias}        Linear [H, H]
    cls.predictions.transform.LayerNorm.{weight,bias}    LayerNorm(H), eps 1e-12
    cls.predictions.bias                                 [vocab_size]

    input_ids, token_type_ids, attention_mask [B, T] (int)
        ->  logits [B, T, vocab_size], last_hidden_state [B, T, hidden_size] (f32)

    h = encoder(...)
    t = LayerNorm(gelu_erf(transform.dense(h)))
    logits = t @ word_embeddings^T + cls.predictions.bias

The decoder is tied to the word embeddings: HF's cls.predictions.decoder.weight is the same
tensor as bert.embeddings.word_embeddings.weight, and save_pretrained stores it once (under
the embeddings' name), so this module has no decoder parameter of its own and reads the
embedding table directly.

As in bert_ref.py, plain attributes (Head.act, Head.use_norm, Head.use_bias) let
check_cases.py break one thing at a time.
"""

import torch
import torch.nn as nn

import bert_ref


class Encoder(nn.Module):
    """BertModel without the pooler (BertForMaskedLM builds it with add_pooling_layer=False)."""

    def __init__(self, num_hidden_layers, num_attention_heads, hidden_size, intermediate_size,
                 vocab_size, max_position_embeddings, type_vocab_size):
        super().__init__()
        self.embeddings = bert_ref.Embeddings(vocab_size, hidden_size, max_position_embeddings,
                                              type_vocab_size)
        self.encoder = bert_ref.Encoder(num_hidden_layers, hidden_size, num_attention_heads,
                                        intermediate_size)
        self.use_mask = True

    def forward(self, input_ids, token_type_ids, attention_mask):
        x = self.embeddings(input_ids, token_type_ids)
        # HF's extended attention mask, as in bert_ref.Bert: [B, 1, 1, T], finfo(f32).min where
        # padded, 0 elsewhere.
        keep = attention_mask[:, None, None, :].to(x.dtype)
        additive = (1.0 - keep) * torch.finfo(torch.float32).min
        if not self.use_mask:
            additive = torch.zeros_like(additive)
        return self.encoder(x, additive)


class Transform(nn.Module):
    """BertPredictionHeadTransform: LayerNorm(gelu(dense(h)))."""

    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=bert_ref.LN_EPS)
        self.act = bert_ref.gelu_erf
        self.use_norm = True

    def forward(self, h):
        t = self.act(self.dense(h))
        return self.LayerNorm(t) if self.use_norm else t


class Predictions(nn.Module):
    """BertLMPredictionHead: transform, then the decoder tied to the word embeddings."""

    def __init__(self, hidden, vocab_size):
        super().__init__()
        self.transform = Transform(hidden)
        self.bias = nn.Parameter(torch.zeros(vocab_size))      # [V], the decoder's bias
        self.use_bias = True

    def forward(self, h, word_embeddings):                      # h [B, T, H], table [V, H]
        logits = self.transform(h) @ word_embeddings.t()
        return logits + self.bias if self.use_bias else logits


class Head(nn.Module):
    """BertOnlyMLMHead: holds `predictions` (so the names read cls.predictions.*)."""

    def __init__(self, hidden, vocab_size):
        super().__init__()
        self.predictions = Predictions(hidden, vocab_size)

    def forward(self, h, word_embeddings):
        return self.predictions(h, word_embeddings)


class BertMLM(nn.Module):
    """BertForMaskedLM.  Parameters are the spec's params of the same names."""

    INPUTS = ("input_ids", "token_type_ids", "attention_mask")
    OUTPUTS = ("logits", "last_hidden_state")
    PARAMS = bert_ref.Bert.PARAMS
    # The module's own names carry this prefix (HF's layout); a file without it is the
    # "plain" layout, which the spec's weight_prefixes also accepts.
    OWN_PREFIX = "bert."

    def __init__(self, num_hidden_layers, num_attention_heads, hidden_size, intermediate_size,
                 vocab_size, max_position_embeddings, type_vocab_size):
        super().__init__()
        self.bert = Encoder(num_hidden_layers, num_attention_heads, hidden_size,
                            intermediate_size, vocab_size, max_position_embeddings,
                            type_vocab_size)
        self.cls = Head(hidden_size, vocab_size)

    def forward(self, input_ids, token_type_ids, attention_mask):
        """All inputs [B, T] int; attention_mask 1 for real tokens, 0 for padding."""
        h = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.cls(h, self.bert.embeddings.word_embeddings.weight)
        return {"logits": logits, "last_hidden_state": h}
