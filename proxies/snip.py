"""snip — connection sensitivity summed over the network.

Formula (Lee et al., "SNIP: Single-shot Network Pruning based on Connection
Sensitivity", ICLR 2019; as a proxy: Abdelfattah et al., ICLR 2021; LPZero's
``snip.py``)::

    snip = sum_l sum_ij | W_l,ij * dL/dW_l,ij |

Upstream multiplies each weight by a mask of ones and reads the mask's gradient;
``dL/dmask = W * dL/dW`` exactly, so one ordinary backward gives the same number.
Layers: weight layers (``include_output`` for the head). Deviation: eval mode.

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


@register_proxy("snip")
class Snip(Proxy):
    needs = frozenset({"backward"})
    citation = "Lee et al., SNIP, ICLR 2019; Abdelfattah et al., ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        layers = layers_or_na(ctx, "weight layers", include_output=self.options["include_output"])
        return sum_over_weight_grads(ctx, layers, lambda w, g: (d(w) * d(g)).abs().sum())
