"""plain — first-order Taylor saliency, signed, summed over the network.

Formula (Mozer & Smolensky, "Skeletonization", NeurIPS 1988 — the first-order
estimate of a weight's effect on the loss; as a zero-cost proxy named ``plain``:
Abdelfattah et al., ICLR 2021, and NASLib)::

    plain = sum_l sum_ij W_l,ij * dL/dW_l,ij

i.e. SNIP without the absolute value. Layers: weight layers (``include_output``
for the head). Deviation: eval mode.

Layers counted: every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output
head (include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only. Default
layer set ``zcbench`` (nn.Linear + nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na, sum_over_weight_grads


@register_proxy("plain")
class Plain(Proxy):
    needs = frozenset({"backward"})
    citation = "Mozer & Smolensky, NeurIPS 1988; Abdelfattah et al., ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        layers = layers_or_na(ctx, "weight layers", include_output=self.options["include_output"])
        return sum_over_weight_grads(ctx, layers, lambda w, g: (d(w) * d(g)).sum())
