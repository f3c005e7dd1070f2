"""plain — first-order Taylor saliency, signed, summed over the network.

Formula (Mozer & Smolensky, "Skeletonization", NeurIPS 1988 — the first-order
estimate of a weight's effect on the loss; as a zero-cost proxy named ``plain``:
Abdelfattah et al., ICLR 2021, and NASLib)::

    plain = sum_l sum_ij W_l,ij * dL/dW_l,ij

i.e. SNIP without the absolute value. Layers: weight layers (``include_output``
for the head). Deviation: eval mode.
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na, sum_over_weight_grads


@register_proxy("plain")
class Plain(Proxy):
    needs = frozenset({"backward"})
    citation = "Mozer & Smolensky, NeurIPS 1988; Abdelfattah et al., ICLR 2021"
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        layers = layers_or_na(ctx, "weight layers", include_output=self.options["include_output"])
        return sum_over_weight_grads(ctx, layers, lambda w, g: (d(w) * d(g)).sum())
