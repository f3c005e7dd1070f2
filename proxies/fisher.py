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

Computed from the engine's ``layer_grad_stats``: each layer's term is reduced as the standard
backward produces its output gradient, so no layer output or gradient is held (the same
products and sums as from ``layer_outputs``, bit for bit: ``tests/test_engine.py``).

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
    needs = frozenset({"layer_grad_stats"})
    citation = "Theis et al. 2018; Turner et al., BlockSwap, ICLR 2020; Abdelfattah et al., ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def layer_stat(self, layer, act, grad):
        """sum_k Delta_l,k / fan_in(l), reduced as the standard backward reaches the layer (the
        engine then keeps no layer output nor its gradient)."""
        if layer.role == "output" and not self.options["include_output"]:
            return None
        if isinstance(layer.module, torch.nn.Linear):
            # every token is a sample n and the channels are summed afterwards, so
            # sum_k Delta_k = ||a * g||_F^2 / (2 N): no per-channel float64 copy needed
            prod = act * grad
            return ("tokens", sum_sq(prod), prod.numel() // prod.shape[-1])
        # conv: (N, C, *spatial) -> sum over spatial first, then square per (n, k)
        g_nk = (act * grad).flatten(2).sum(-1, dtype=torch.float64)
        return ("channels", (0.5 * d(g_nk).pow(2).mean(0)).sum())

    def score(self, ctx) -> float:
        total = 0.0
        stats = ctx.layer_stats_of(self)
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            st = stats.get(wl.name)
            if st is None:  # the layer took no part in the objective
                continue
            fan_in = wl.weight[0].numel()
            if st[0] == "tokens":
                total += fan_in * 0.5 * st[1] / st[2]
            else:
                total += float(fan_in * st[1])
        return total
