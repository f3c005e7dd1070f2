"""attention_confidence — "head confidence": how peaked each head's output is over tokens.

Formula (Serianni & Kalita, ACL 2023, after Voita et al., "Analyzing Multi-Head
Self-Attention", ACL 2019; training-free-nas ``attention_confidence`` applied to
head outputs, reused by LPZero)::

    conf_l = mean_{b, h, d} max_t A_l[b, h, t, d]
    score  = sum_l conf_l

with ``A_l`` the per-head attention output (``head_out`` tap, B x H x T x Dh). Layers
without a head_out tap are skipped; a model with none is n/a.

Deviation: the notebook hooked the outputs of the q/k/v projections (B x T x D) and
took the max over the token axis; we take the same statistic on the heads' outputs,
the tensor the model contract exposes for every attention-like operation. The
softmax-map version is ``softmax_confidence``.

Layers counted: none: the head_out taps' activations (no weight layer).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, taps_or_na


@register_proxy("attention_confidence")
class AttentionConfidence(Proxy):
    needs = frozenset({"forward"})
    taps = frozenset({"head_out"})
    citation = "Serianni & Kalita, ACL 2023; Voita et al., ACL 2019"
    layers_counted = "none: the head_out taps' activations (no weight layer)"
    defaults = {}

    def score(self, ctx) -> float:
        return float(sum(d(r.activation).amax(dim=2).mean() for r in taps_or_na(ctx, "head_out")))
