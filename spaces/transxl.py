"""Transformer-XL LTS search spaces: ``transxl`` (heterogeneous) and ``transxl_homogeneous``.

Benchmark: LiteTransformerSearch (Javaheripi et al., NeurIPS 2022), tables
``random_TransXL_wt103`` (200 decoders with per-layer ``n_head`` / ``d_inner``)
and ``random_TransXL_wt103_homogeneous`` (identical layers; 99 configurations
and parameter entries, 98 with perplexities — ``config_6_j4`` has none in
``ppl_summary.yaml``, so 98 stored architectures). Trained on WikiText-103 with
its 267,735-word vocabulary (``n_token`` 267736); ground truth ``valid_ppl`` /
``test_ppl``, lower is better. Upstream: microsoft/archai
``archai/nlp/nas/saved_logs`` (mirrored in pprp/LPZero).

Model (``MemTransformerLM``) — archai's ``mem_transformer`` (NVIDIA's
Transformer-XL, Dai et al., ACL 2019) with ``attn_type`` 0, re-written here:

* adaptive input embedding (``_adaptive.AdaptiveEmbedding``, scaled by
  ``sqrt(d_model)``), dropout 0.1 (space option ``dropout``, used everywhere
  upstream has dropout except attention, whose dropout is 0);
* ``n_layer`` post-LN decoder layers. Attention: one bias-free projection
  ``d_model -> 3 H Dh`` (``Dh = d_model // n_head[i]``), a bias-free projection
  of the sinusoidal relative position embedding ``r_net``, per-layer global
  content / position biases ``u`` and ``v`` (``r_w_bias``, ``r_r_bias``,
  ``H x Dh`` each), scores ``((q + u) k + rel_shift((q + v) r)) / sqrt(Dh)``
  with the causal mask, bias-free output projection, dropout, then
  ``LayerNorm(x + attn)``. FFN: ``d_model -> d_inner[i]`` (ReLU) ``-> d_model``
  with biases and dropout, then ``LayerNorm(x + ffn)``;
* projected adaptive log-softmax tied to the input embedding
  (``_adaptive.ProjectedAdaptiveLogSoftmax``). ``forward`` returns the mean NLL.
* Memory is off: archai trains with ``mem_len`` 192 (the previous segment's
  hidden states are extra keys), but a zero-cost proxy sees one segment from
  scratch, which is exactly archai's first step (empty memory); no parameters
  depend on ``mem_len``. Any ``seq_len`` works (relative positions have no table).

Initialisation (archai ``weights_init``): linear weights N(0, 0.02), biases 0,
embedding tables N(0, 0.02), projections N(0, 0.01), LayerNorm weights
N(1, 0.02) and biases 0, ``u``/``v`` N(0, 0.02), cluster weights N(0, 0.02).

Parameter counting (``param_counts``; archai's ``MemTransformerLM.get_params``
as written to ``params_summary.yaml``), via ``gpt2.lts_counts`` on the model
built on the meta device: ``AdaEmb`` = the adaptive embedding; ``Attn`` = the
attention module *including its LayerNorm* (archai keeps the post-attention
LayerNorm inside ``RelPartialLearnableMultiHeadAttn``); ``FFN`` = the FFN core
(archai's ``CoreNet`` ``Sequential``; its LayerNorm is outside); ``nonembedding``
= Attn + FFN + every LayerNorm, so the attention LayerNorm (``2 d_model`` per
layer) is counted twice — an upstream quirk reproduced on purpose; ``total`` =
distinct parameters, including ``u``/``v`` (model attributes upstream, in no
bucket) and the softmax-only tensors. Measured: identical to the upstream table
for all 200 + 99 configurations (tests/test_space_transxl.py).

Search spaces:
``transxl``: ``n_layer`` 5..8 (archai's LTS ``Evolution`` default
``n_layer_choice``), ``d_model`` {64, 128, 256, 512} and ``n_head`` {2, 4, 8}
(same source), per-layer ``d_inner`` an integer in ``[max(512, 2 d_model), 2048]``,
``d_embed`` {128, 256, 512}, ``div_val`` {1, 2, 4}. archai's search uses
512..2048 and ``d_inner >= int(1.7 d_model)``; every stored Transformer-XL net
satisfies the stricter ``d_inner >= 2 d_model`` (smallest ratio exactly 2.0),
which is used here. ``d_embed`` / ``div_val`` ranges are those the table spans.
``transxl_homogeneous``: the ranges the 99 stored nets span — ``n_layer`` 5..7,
``d_model`` {64, 128, 256}, ``n_head`` {2, 4}, ``d_inner`` in
``[max(512, 2 d_model), 2048]``, ``d_embed`` {128, 256}, ``div_val`` {1, 2, 4};
``n_head`` and ``d_inner`` are single integers shared by all layers.

Minibatches: WikiText-2 byte-level BPE with the vocabulary capped at
``n_token`` = 267736 (``zcbench.text``). The upstream models read WikiText-103
*word* ids; the cap only bounds ids. The 2 MB WikiText-2 corpus yields about
26k BPE tokens, so only the first two vocabulary bands (ids < 39997) ever
occur: the tables of bands 3-4 (and their projections / biases) get no
gradient from any minibatch. The same holds for GPT-2's third band.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zcbench.introspect import Tap, index_taps, tag
from zcbench.registry import register_space
from zcbench.space import ModelOutput
from zcbench.spaces._adaptive import AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax, init_adaptive
from zcbench.spaces._lts import LTSSpace

WEIGHT_INIT_STD = 0.02
PROJ_INIT_STD = 0.01
DROPOUT = 0.1
DROPATT = 0.0
LN_EPS = 1e-5


def sinusoid_positions(klen: int, d_model: int, device, dtype) -> torch.Tensor:
    """Transformer-XL's relative position embedding for distances ``klen-1 .. 0``: (klen, d_model)."""
    pos = torch.arange(klen - 1, -1, -1.0, device=device, dtype=dtype)
    inv_freq = 1.0 / (10000 ** (torch.arange(0.0, d_model, 2.0, device=device, dtype=dtype) / d_model))
    angles = pos[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Align position scores (B, H, Q, K) so entry (i, j) uses distance i - j (Dai et al., App. B)."""
    B, H, Q, K = x.shape
    padded = torch.cat([x.new_zeros(B, H, Q, 1), x], dim=-1).view(B, H, K + 1, Q)
    return padded[:, :, 1:].reshape(B, H, Q, K)


class RelPartialLearnableAttention(nn.Module):
    """Relative multi-head attention with post-LN, as archai's ``RelPartialLearnableMultiHeadAttn``."""

    def __init__(self, d_model: int, n_head: int, dropout: float = DROPOUT, dropatt: float = DROPATT):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        self.n_head, self.d_head = n_head, d_model // n_head
        inner = n_head * self.d_head
        self.qkv_net = nn.Linear(d_model, 3 * inner, bias=False)
        self.r_net = nn.Linear(d_model, inner, bias=False)
        self.o_net = nn.Linear(inner, d_model, bias=False)
        self.layer_norm = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")  # inside, as upstream (counts in Attn)
        self.dropatt = nn.Dropout(dropatt)
        self.drop = nn.Dropout(dropout)
        self.attn_probs = Tap("attn_probs")
        self.head_out = Tap("head_out")

    def forward(self, x, r, u, v):
        B, T, _ = x.shape
        H, Dh = self.n_head, self.d_head
        q, k, val = self.qkv_net(x).view(B, T, 3, H, Dh).unbind(2)  # each (B, T, H, Dh)
        rk = self.r_net(r).view(r.size(0), H, Dh)  # (K, H, Dh)
        content = torch.einsum("bihd,bjhd->bhij", q + u, k)
        position = rel_shift(torch.einsum("bihd,jhd->bhij", q + v, rk))
        scores = (content + position) / math.sqrt(Dh)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        probs = self.attn_probs(F.softmax(scores.masked_fill(future, float("-inf")), dim=-1))
        heads = self.head_out(torch.einsum("bhij,bjhd->bhid", self.dropatt(probs), val))  # (B, H, T, Dh)
        out = self.drop(self.o_net(heads.transpose(1, 2).reshape(B, T, H * Dh)))
        return self.layer_norm(x + out)


class PositionwiseFF(nn.Module):
    """The FFN core (archai's ``CoreNet``): Linear, ReLU, dropout, Linear, dropout."""

    def __init__(self, d_model: int, d_inner: int, dropout: float = DROPOUT):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)
        self.act = Tap("ffn_act")
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(F.relu(self.fc1(x))))))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_inner: int, dropout: float = DROPOUT, dropatt: float = DROPATT):
        super().__init__()
        self.attn = tag(RelPartialLearnableAttention(d_model, n_head, dropout, dropatt), "attn")
        d_head = d_model // n_head
        # global content (u) and position (v) biases; model attributes upstream, in no bucket
        self.r_w_bias = nn.Parameter(torch.empty(n_head, d_head))
        self.r_r_bias = nn.Parameter(torch.empty(n_head, d_head))
        self.ff = tag(PositionwiseFF(d_model, d_inner, dropout), "ffn")
        self.ff_norm = tag(nn.LayerNorm(d_model, eps=LN_EPS), "norm")
        self.out = Tap("block_out")

    def forward(self, x, r):
        x = self.attn(x, r, self.r_w_bias, self.r_r_bias)
        return self.out(self.ff_norm(x + self.ff(x)))


class MemTransformerLM(nn.Module):
    """Heterogeneous Transformer-XL decoder without memory (see module docstring)."""

    def __init__(self, genes: dict, dropout: float | None = None):
        """``genes``: per-layer lists; ``dropout`` / ``dropatt`` / ``weight_init_std`` /
        ``proj_init_std`` default to the WikiText-103 tables' values when absent;
        ``dropout`` (argument) overrides the genes' value."""
        super().__init__()
        g = genes
        dropout = g.get("dropout", DROPOUT) if dropout is None else dropout
        self.weight_init_std = float(g.get("weight_init_std", WEIGHT_INIT_STD))
        self.proj_init_std = float(g.get("proj_init_std", PROJ_INIT_STD))
        d_model = g["d_model"]
        self.d_model = d_model
        self.word_emb = tag(AdaptiveEmbedding(g["n_token"], g["d_embed"], d_model, g["cutoffs"], g["div_val"]),
                            "embedding")
        self.drop = nn.Dropout(dropout)
        self.emb_tap = Tap("embedding")
        self.layers = nn.ModuleList(
            tag(DecoderLayer(d_model, g["n_head"][i], g["d_inner"][i], dropout, g.get("dropatt", DROPATT)), "block") for i in range(g["n_layer"])
        )
        self.crit = tag(ProjectedAdaptiveLogSoftmax(g["n_token"], g["d_embed"], d_model, g["cutoffs"], g["div_val"],
                                                    g["tie_projs"], self.word_emb, g["tie_weight"]), "output")
        if g.get("primer_square"):
            raise ValueError("primer_square is not part of the Transformer-XL LTS spaces")
        index_taps(self)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.layers[0].ff_norm.weight.is_meta:  # shapes only (parameter counting)
            return
        std = self.weight_init_std
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.normal_(m.weight, 1.0, std)
                nn.init.zeros_(m.bias)
        for layer in self.layers:
            nn.init.normal_(layer.r_w_bias, 0.0, std)
            nn.init.normal_(layer.r_r_bias, 0.0, std)
        init_adaptive(self.word_emb, self.crit, std, self.proj_init_std)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        T = inputs.size(1)
        x = self.emb_tap(self.drop(self.word_emb(inputs)))
        r = self.drop(sinusoid_positions(T, self.d_model, x.device, x.dtype))
        for layer in self.layers:
            x = layer(x, r)
        loss = None
        if targets is not None:
            h = self.drop(x)
            loss = self.crit(h.reshape(-1, h.size(-1)), targets.reshape(-1)).mean()
        return ModelOutput(loss=loss, hidden=x)


_FIXED = {
    "n_token": 267736,
    "cutoffs": [19997, 39997, 199997, 267736],
    "tie_weight": True,
    "tie_projs": [False, True, True, True],
    "primer_square": False,
}


@register_space("transxl")
class TransXLSpace(LTSSpace):
    description = ("Transformer-XL LTS (Javaheripi et al., NeurIPS 2022): 200 heterogeneous decoders, "
                   "WikiText-103 perplexity")
    table = "random_TransXL_wt103"
    N_LAYER = (5, 6, 7, 8)
    D_MODEL = (64, 128, 256, 512)
    N_HEAD = (2, 4, 8)
    D_EMBED = (128, 256, 512)
    DIV_VAL = (1, 2, 4)
    d_inner_factor = 2.0
    FIXED = _FIXED
    transxl = True

    def _model(self, genes: dict) -> nn.Module:
        return MemTransformerLM(genes)


@register_space("transxl_homogeneous")
class TransXLHomogeneousSpace(TransXLSpace):
    description = ("Transformer-XL LTS, homogeneous layers (Javaheripi et al., NeurIPS 2022): "
                   "98 decoders with perplexities, WikiText-103")
    table = "random_TransXL_wt103_homogeneous"
    homogeneous = True
    N_LAYER = (5, 6, 7)
    D_MODEL = (64, 128, 256)
    N_HEAD = (2, 4)
    D_EMBED = (128, 256)
