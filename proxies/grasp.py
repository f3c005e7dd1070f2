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

Option ``hvp`` (an estimator change, opt-in; ``exact`` is the default and the paper's):
``hvp=forward_difference`` takes ``H g`` as ``(grad L(W + h g) - grad L(W)) / h`` (engine need
``hvp_fd``; ``h`` moves the weight layers by ``HVP_FD_EPS`` = 1e-5 of their norm) instead of the
double backward: the standard backward stays plain and one plain forward+backward replaces the
double backward (measured by ``bench/bench_grasp_finite_difference.py``: 0.94-0.96x one
forward+backward against 3.0-3.1x for the exact product's own passes, on 10 GPT-2 networks at
4 x 192 and 10 FlexiBERT networks at 16 x 128). It is not round-off: on those networks the
relative error of the sum was at most 4.0e-3 (GPT-2) and 1.3e-3 (FlexiBERT), Kendall tau 1.0 to
the exact values; larger steps were much worse (up to 0.97 at 1e-3). Its runs are stored under
their own run key; eval mode only.

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
    defaults = {"objective": None, "include_output": False, "hvp": "exact"}
    added_options = frozenset({"hvp"})  # hvp=exact keeps the stored runs' identity
    HVP = ("exact", "forward_difference")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.options["hvp"] not in self.HVP:
            raise ValueError(f"proxy grasp: hvp must be one of {', '.join(self.HVP)}, got {self.options['hvp']!r}")
        if self.options["hvp"] == "forward_difference":
            self.needs = frozenset({"backward", "hvp_fd"})

    def score(self, ctx) -> float:
        products = ctx.hvp_fd if self.options["hvp"] == "forward_difference" else ctx.hvp
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            hg = products.get(wl.name)
            if hg is not None:
                total += float((-d(wl.weight) * d(hg)).sum())
        return total
