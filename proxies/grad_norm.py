"""grad_norm — sum over weight layers of the Frobenius norm of the loss gradient.

Formula (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021,
``grad_norm``; LPZero's ``lpzero/predictor/measures/grad_norm.py`` for GPT-2)::

    grad_norm = sum_l || dL/dW_l ||_F

over the weight layers ``l`` (``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``; the
output head only with ``include_output=True``), with ``L`` the objective of one
forward/backward of the minibatch (the mean training loss by default). Note that
this is the *sum of per-layer norms*, as in the reference code, not the norm of the
concatenated gradient.

Deviations: scored in eval mode (upstream called ``net.train()``; see the engine);
layers are selected by type through zcbench's model contract instead of HF
``Conv1D``, which selects the same attention/MLP projections on GPT-2.

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


@register_proxy("grad_norm")
class GradNorm(Proxy):
    needs = frozenset({"backward"})
    citation = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        layers = layers_or_na(ctx, "weight layers", include_output=self.options["include_output"])
        return sum_over_weight_grads(ctx, layers, lambda w, g: d(g).norm())
