"""dss — TF-TAS's DSS-indicator: synaptic diversity of MSA + synaptic saliency of MLP.

Formula (Zhou et al., "Training-free Transformer Architecture Search", CVPR 2022)::

    dss = sum_{m in MSA} ||dR/dW_m||_nuc * ||W_m||_nuc  +  sum_{n in rest} sum_ij |dR/dW_n,ij * W_n,ij|

As in TF-TAS's ``dss.py`` the indicator is computed on the *linearised* network
(|theta|, an all-ones input of batch size 1, R = sum of the output): it shares the
``synflow`` pass (see ``synflow`` for the pass and its deviations). MSA = weight
layers with role ``attn`` (TF-TAS: the ``qkv`` and square projection matrices); the
saliency term covers every other weight layer (MLP, patch/embedding projections;
TF-TAS also included the classifier head — here only with ``include_output=True``,
the catalogue-wide convention). Nuclear norms of convolution kernels are taken on
the ``(out, fan_in)`` matrix.

Not to be confused with ``synaptic_diversity`` / ``synaptic_saliency`` (Serianni &
Kalita's variants), which use the real minibatch and the real weights.

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
from zcbench.proxies._common import d, layers_or_na, nuclear


@register_proxy("dss")
class DSS(Proxy):
    needs = frozenset({"synflow"})
    citation = "Zhou et al., Training-free Transformer Architecture Search (TF-TAS), CVPR 2022"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"include_output": False}

    def score(self, ctx) -> float:
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            w, g = ctx.synflow["weights"].get(wl.name), ctx.synflow["grads"].get(wl.name)
            if w is None or g is None:
                continue
            if wl.role == "attn":
                total += float(nuclear(g) * nuclear(w))
            else:
                total += float((d(w) * d(g)).abs().sum())
        return total
