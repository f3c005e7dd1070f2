"""logsynflow — synflow with log-compressed gradients.

Formula (Cavagnero et al., "FreeREA: Training-Free Evolution-based Architecture
Search", WACV 2023; the version LPZero/TF-TAS-style code computes)::

    logsynflow = sum_l sum_ij | W_l,ij * log(1 + |dR/dW_l,ij|) |

on the same linearised, all-ones pass as ``synflow`` (``W = |theta|``, float64; see
that proxy for the pass and its deviations). The logarithm keeps a few very large
gradients (which grow with depth) from dominating the sum.

Layers counted: every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output
head (include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only. Default
layer set ``zcbench`` (nn.Linear + nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

import torch

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na


@register_proxy("logsynflow")
class LogSynflow(Proxy):
    needs = frozenset({"synflow"})
    citation = "Cavagnero et al., FreeREA, WACV 2023"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"include_output": False}

    def score(self, ctx) -> float:
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            w, g = ctx.synflow["weights"].get(wl.name), ctx.synflow["grads"].get(wl.name)
            if w is not None and g is not None:
                total += float((d(w) * torch.log1p(d(g).abs())).abs().sum())
        return total
