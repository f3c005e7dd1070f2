"""softmax_confidence — Voita et al.'s head confidence on the attention maps.

Formula (Voita et al., "Analyzing Multi-Head Self-Attention", ACL 2019: a head's
confidence is its average maximum attention weight; as a NAS proxy: Serianni &
Kalita, ACL 2023, "softmax confidence")::

    conf_l = mean_{b, h, i} max_j P_l[b, h, i, j]
    score  = sum_l conf_l

with ``P_l`` the attention probabilities (``attn_probs`` tap, B x H x T x T, rows sum
to 1). Layers without attention maps (e.g. FlexiBERT's linear transforms) are
skipped; a model with none is n/a.

Deviation: the training-free-nas notebook took ``torch.max(output, 1)`` on the
(B, H, T, T) softmax output, i.e. the max over *heads*; we use Voita's definition
(max over the attended positions), which is what the paper describes.

Layers counted: none: the attn_probs taps (no weight layer).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, taps_or_na


@register_proxy("softmax_confidence")
class SoftmaxConfidence(Proxy):
    needs = frozenset({"forward"})
    taps = frozenset({"attn_probs"})
    citation = "Voita et al., ACL 2019; Serianni & Kalita, ACL 2023"
    layers_counted = "none: the attn_probs taps (no weight layer)"
    defaults = {}

    def score(self, ctx) -> float:
        return float(sum(d(r.activation).amax(dim=-1).mean() for r in taps_or_na(ctx, "attn_probs")))
