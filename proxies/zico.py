"""zico — ZiCo: inverse coefficient of variation of gradients across mini-batches.

Formula (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
Gradients", ICLR 2023, Eq. 9; official code ``caculate_zico``)::

    for every weight layer l, over the G gradient samples g^(1..G) of its weights:
        mu_l    = mean_g |g|       (element-wise)
        sigma_l = std_g g          (element-wise, population std)
    zico = sum_l log( sum_{i: sigma_l,i != 0} mu_l,i / sigma_l,i )

(a layer whose inner sum is 0 is skipped, as in the official code). The G = 2
gradient samples come from the engine's ``multi_batch`` pass: the minibatch split
into two equal halves, one forward+backward each (NASLib/official ``split_data=2``).
With two samples ``mean|g| / std(g) = (|g1| + |g2|) / |g1 - g2|``, evaluated element-wise in
the gradients' float32 (as the official numpy code on float32 gradients) and summed in
float64. Layers: weight layers (``include_output`` for the head). Deviation: eval mode.

Layers counted: every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output
head (include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only. Default
layer set ``zcbench`` (nn.Linear + nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

import math

import torch

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na


@register_proxy("zico")
class ZiCo(Proxy):
    needs = frozenset({"multi_batch"})
    citation = "Li et al., ZiCo, ICLR 2023"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        groups = ctx.multi_batch_grads
        if len(groups) < 2:
            raise NotApplicable("ZiCo needs gradients from at least two groups")
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            gs = [g.get(wl.name) for g in groups]
            if any(g is None for g in gs):
                continue
            if len(gs) == 2:
                # two samples: mean|g| / std(g) = (|g1| + |g2|) / |g1 - g2|, elementwise
                g1, g2 = gs[0].reshape(-1), gs[1].reshape(-1)
                den = (g1 - g2).abs()
                nz = den != 0
                s = float(((g1.abs() + g2.abs())[nz] / den[nz]).sum(dtype=torch.float64))
            else:
                G = torch.stack([d(g).reshape(-1) for g in gs])
                std = G.std(dim=0, unbiased=False)
                nz = std != 0
                s = float((G.abs().mean(dim=0)[nz] / std[nz]).sum())
            if s != 0:
                total += math.log(s)
        return total
