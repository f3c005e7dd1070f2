"""meco — MeCo: minimum eigenvalue of the Pearson correlation of feature maps.

Formula (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass
via Minimum Eigenvalue of Correlation", NeurIPS 2023; official ``meco.py``)::

    P_l   = corrcoef(F_l)        F_l: channels x positions matrix of layer l's output
    meco  = sum_l lambda_min(P_l)

(NaN/inf entries of P set to 0 before the eigen-decomposition, as in the official
code.) For Transformers the feature maps are the residual-stream outputs of the
blocks (``block_out`` taps, option ``tap``): channels = the D hidden units, positions
= the tokens. Deviations: MeCo scores one (random) image through every module's
output; a single text example has fewer tokens than hidden units (T < D makes P
rank-deficient and lambda_min = 0 for every network), so the positions are the
tokens of the whole minibatch (option ``examples="first"`` restores one example),
and the layers are the blocks rather than every submodule. Single forward, real
text; eigenvalues via ``eigvalsh`` in float64.

Layers counted: none: the block_out taps' activations (no weight layer).
"""
from __future__ import annotations

import torch

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, taps_or_na


@register_proxy("meco")
class MeCo(Proxy):
    needs = frozenset({"forward"})
    citation = "Jiang et al., MeCo, NeurIPS 2023"
    layers_counted = "none: the block_out taps' activations (no weight layer)"
    defaults = {"tap": "block_out", "examples": "all"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.options["examples"] not in ("all", "first"):
            raise ValueError("meco: examples must be 'all' or 'first'")
        if self.options["tap"] not in ("block_out", "ffn_act", "embedding"):
            raise ValueError("meco: tap must be one of block_out, ffn_act, embedding (B x T x C tensors)")
        self.taps = frozenset({self.options["tap"]})

    def score(self, ctx) -> float:
        total = 0.0
        for rec in taps_or_na(ctx, self.options["tap"]):
            a = d(rec.activation)
            if self.options["examples"] == "first":
                a = a[:1]
            F = a.reshape(-1, a.shape[-1])  # (positions, channels)
            P = torch.corrcoef(F.T)  # channels x channels
            P = torch.nan_to_num(P, nan=0.0, posinf=0.0, neginf=0.0)
            total += float(torch.linalg.eigvalsh(P).min())
        return total
