"""activation_distance — Serianni & Kalita's activation-pattern similarity sum.

Formula (Serianni & Kalita, "Training-free Neural Architecture Search for RNNs and
Transformers", ACL 2023, ``activation_distance`` in the training-free-nas notebook,
reused unchanged by LPZero; a variant of Mellor et al.'s NASWOT kernel)::

    x_l   = [a_l > 0] for the tokens of ONE example      (T x F binary matrix)
    K_l   = x_l x_l^T + (1 - x_l)(1 - x_l)^T             (T x T: units on which two tokens agree)
    score = sum_l sum_ij K_l,ij

over the FFN activations (``ffn_act`` taps; upstream hooked ELECTRA's
``intermediate_act_fn``). As in the notebook the kernel is built over the tokens of
the first example of the minibatch (option ``example``) and summed, not
log-determined. A model without ``ffn_act`` taps is n/a.

Option ``layers="weight_layers"`` is what LPZero's GPT-2 code hooked instead
(``compute_act_dist``, GPT-2 branch of pprp/LPZero ``measures/activation_distance.py``,
behind LPZero Table 4): the outputs of **every** weight layer except the output head —
on GPT-2 the fused q/k/v, the attention output projection, the FFN's first layer
(before its nonlinearity; ``GELU(x) > 0`` iff ``x > 0``, so the codes are the same) and
second layer. It reads them through the engine's ``layer_stats`` (each layer's term as the
standard forward produces its output; no backward, nothing held).

Layers counted: the ffn_act taps (default) or the outputs of the weight layers
(layers=weight_layers).
"""
from __future__ import annotations

import torch

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import layers_or_na, taps_or_na


@register_proxy("activation_distance")
class ActivationDistance(Proxy):
    needs = frozenset({"forward"})
    taps = frozenset({"ffn_act"})
    citation = "Serianni & Kalita, ACL 2023; Mellor et al., ICML 2021"
    layers_counted = "the ffn_act taps (default) or the outputs of the weight layers (layers=weight_layers)"
    defaults = {"example": 0, "layers": "ffn_act"}
    added_options = frozenset({"layers"})  # at its default, runs stored before it existed stay valid

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.options["layers"] not in ("ffn_act", "weight_layers"):
            raise ValueError(f"activation_distance: layers must be 'ffn_act' or 'weight_layers', "
                             f"got {self.options['layers']!r}")
        if self.options["layers"] == "weight_layers":
            self.needs, self.taps = frozenset({"layer_stats"}), frozenset()

    def _term(self, out) -> float:
        a = out[self.options["example"]]
        x = (a > 0).reshape(a.shape[0], -1).to(torch.float64)
        # sum_ij K_ij = ||sum_i x_i||^2 + ||sum_i (1 - x_i)||^2  (same number, O(T F) instead of O(T^2 F))
        s = x.sum(0)
        return float((s * s).sum() + ((x.shape[0] - s) ** 2).sum())

    def layer_stat(self, layer, out, grad):
        """layers=weight_layers: each weight layer's term, as the forward produces its output."""
        return None if layer.role == "output" else self._term(out)

    def score(self, ctx) -> float:
        if self.options["layers"] == "weight_layers":
            stats = ctx.layer_stats_of(self)
            terms = [stats[wl.name] for wl in layers_or_na(ctx, "weight layers") if wl.name in stats]
        else:
            terms = [self._term(rec.activation) for rec in taps_or_na(ctx, "ffn_act")]
        total = 0.0
        for t in terms:
            total += t
        return total
