"""synaptic_diversity — nuclear-norm product of attention weights and their gradients.

Formula (Zhou et al., TF-TAS, CVPR 2022, "synaptic diversity" of MSA modules; in
the form Serianni & Kalita, ACL 2023, computed on BERT, reused by LPZero)::

    synaptic_diversity = sum_{m in attention} ||W_m||_nuc * ||dL/dW_m||_nuc

over the ``nn.Linear`` layers inside modules with role ``attn`` (training-free-nas:
every ``nn.Linear`` under ``ElectraLayer.operation``, i.e. q/k/v, output projection
and operation-specific projections), on the real minibatch with the real weights.
Convolutions inside an attention operation (FlexiBERT's DSC depthwise/pointwise
kernels) are not ``nn.Linear`` and are skipped, as upstream. n/a when the model has
no attention linear layer. TF-TAS's own DSS-indicator (linearised network) is ``dss``.

Layers counted: the nn.Linear layers tagged attn (never a convolution).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import layers_or_na, linear_only, nuclear, sum_over_weight_grads


@register_proxy("synaptic_diversity")
class SynapticDiversity(Proxy):
    needs = frozenset({"backward"})
    citation = "Zhou et al., TF-TAS, CVPR 2022; Serianni & Kalita, ACL 2023"
    layers_counted = "the nn.Linear layers tagged attn (never a convolution)"
    defaults = {"objective": None}

    def score(self, ctx) -> float:
        layers = linear_only(layers_or_na(ctx, "attention weight layers", roles=("attn",)))
        return sum_over_weight_grads(ctx, layers, lambda w, g: nuclear(w) * nuclear(g))
