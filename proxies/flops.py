"""flops — forward floating-point operations per sequence (a cost baseline).

Counted with ``torch.utils.flop_counter.FlopCounterMode`` around the standard
forward of the minibatch (matrix multiplications, convolutions, attention kernels;
element-wise ops are not counted), divided by the batch size: FLOPs of one example
at the run's ``seq_len``. Like ``params``, a capacity baseline that any zero-cost
proxy should beat (LPZero reports proxy costs in FLOPs; Abdelfattah et al., ICLR 2021,
use FLOPs as a baseline proxy). Higher = larger model = predicted better.

Layers counted: none individually: the forward FLOPs of the whole model (torch's
FlopCounterMode).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy


@register_proxy("flops")
class Flops(Proxy):
    needs = frozenset({"flops"})
    citation = "baseline; Abdelfattah et al., ICLR 2021"
    layers_counted = "none individually: the forward FLOPs of the whole model (torch's FlopCounterMode)"
    defaults = {}

    def score(self, ctx) -> float:
        return ctx.flops / ctx.batch.inputs.shape[0]
