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
"""
from __future__ import annotations

import torch

from zcbench.engine import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import taps_or_na


@register_proxy("activation_distance")
class ActivationDistance(Proxy):
    needs = frozenset({"forward"})
    taps = frozenset({"ffn_act"})
    citation = "Serianni & Kalita, ACL 2023; Mellor et al., ICML 2021"
    defaults = {"example": 0}

    def score(self, ctx) -> float:
        total = 0.0
        for rec in taps_or_na(ctx, "ffn_act"):
            a = rec.activation[self.options["example"]]
            x = (a > 0).reshape(a.shape[0], -1).to(torch.float64)
            # sum_ij K_ij = ||sum_i x_i||^2 + ||sum_i (1 - x_i)||^2  (same number, O(T F) instead of O(T^2 F))
            s = x.sum(0)
            total += float((s * s).sum() + ((x.shape[0] - s) ** 2).sum())
        return total
