"""fisher — channel-wise Fisher information of the layer outputs, summed.

Formula (Theis et al., "Faster gaze prediction with dense networks and Fisher
pruning", 2018; Turner et al., "BlockSwap", ICLR 2020; as a proxy: Abdelfattah et
al., ICLR 2021; LPZero's ``fisher.py`` for Transformers)::

    Delta_l,k = 1/2 * mean_n ( a_l,n,k * dL/da_l,n,k )^2
    fisher    = sum_l  fan_in(l) * sum_k Delta_l,k

where ``a_l`` is the output of weight layer ``l`` (channel ``k``) and ``n`` runs over
every token of the minibatch (LPZero reshapes Transformer activations to
``(tokens, channels)``; for convolutions the spatial positions are summed first, as in
Abdelfattah's code). The reference code broadcasts each channel's value to every
weight of that channel before summing, hence the factor ``fan_in(l)`` = weights per
output channel.

Deviations: HF ``Conv1D`` stores its weight transposed, so on LPZero's GPT-2 the
broadcast used ``fan_out`` instead of ``fan_in``; we use the definition (weights per
output channel). Eval mode. Layers called more than once per forward are rejected by
the engine (none of the built-in spaces has one).

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
from zcbench.proxies._common import d, layers_or_na, sum_sq


@register_proxy("fisher")
class Fisher(Proxy):
    needs = frozenset({"layer_outputs"})
    citation = "Theis et al. 2018; Turner et al., BlockSwap, ICLR 2020; Abdelfattah et al., ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            act, grad = ctx.layer_outputs.get(wl.name, (None, None))
            if act is None or grad is None:
                continue
            fan_in = wl.weight[0].numel()
            if isinstance(wl.module, torch.nn.Linear):
                # every token is a sample n and the channels are summed afterwards, so
                # sum_k Delta_k = ||a * g||_F^2 / (2 N): no per-channel float64 copy needed
                prod = act * grad
                n = prod.numel() // prod.shape[-1]
                total += fan_in * 0.5 * sum_sq(prod) / n
            else:  # conv: (N, C, *spatial) -> sum over spatial first, then square per (n, k)
                g_nk = (act * grad).flatten(2).sum(-1, dtype=torch.float64)
                total += float(fan_in * (0.5 * d(g_nk).pow(2).mean(0)).sum())
        return total
