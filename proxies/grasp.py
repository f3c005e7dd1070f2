"""grasp — gradient signal preservation (Hessian-gradient product), summed.

Formula (Wang et al., "Picking Winning Tickets Before Training by Preserving
Gradient Flow", ICLR 2020; as a proxy: Abdelfattah et al., ICLR 2021; LPZero's
``grasp.py``)::

    grasp = sum_l sum_ij ( -W_l,ij * (H g)_l,ij ),     g = dL/dW,  H = d^2L/dW^2

with ``H g`` restricted to the weight layers (the reference code differentiates
``sum_l <stopgrad(g_l), g_l>`` with respect to the same layer weights). The sign is
Abdelfattah's (their comment: "accuracy seems to be negatively correlated with this
metric, so we add -ve sign"). NOTE: LPZero negates GraSP again before correlating
(``eval_rank_gpt2.py``: ``if m == "grasp": scores = -s``), so LPZero's published GraSP
correlations correspond to ``-grasp`` here.

Deviations: the reference runs two forward passes (one for ``g``, one with
``create_graph``); we build the standard backward with ``create_graph=True`` and
take the Hessian-vector product from it, which is the same quantity for the same
batch. Eval mode.

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
from zcbench.proxies._common import d, layers_or_na


@register_proxy("grasp")
class Grasp(Proxy):
    needs = frozenset({"backward", "hvp"})
    citation = "Wang et al., GraSP, ICLR 2020; Abdelfattah et al., ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            hg = ctx.hvp.get(wl.name)
            if hg is not None:
                total += float((-d(wl.weight) * d(hg)).sum())
        return total
