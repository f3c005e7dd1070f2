"""synaptic_saliency — SNIP-style saliency of the feed-forward (MLP) weights.

Formula (Zhou et al., TF-TAS, CVPR 2022, "synaptic saliency" of MLP modules; in the
form Serianni & Kalita, ACL 2023, computed on BERT, reused by LPZero)::

    synaptic_saliency = sum_{n in FFN} sum_ij | W_n,ij * dL/dW_n,ij |

over the ``nn.Linear`` layers inside modules with role ``ffn`` (training-free-nas:
``ElectraLayer.intermediate`` and ``.output``), real minibatch, real weights. n/a
when the model has no FFN linear layer. TF-TAS's DSS-indicator is ``dss``.

Layers counted: the nn.Linear layers tagged ffn (never a convolution).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na, linear_only, sum_over_weight_grads


@register_proxy("synaptic_saliency")
class SynapticSaliency(Proxy):
    needs = frozenset({"backward"})
    citation = "Zhou et al., TF-TAS, CVPR 2022; Serianni & Kalita, ACL 2023"
    layers_counted = "the nn.Linear layers tagged ffn (never a convolution)"
    defaults = {"objective": None}

    def score(self, ctx) -> float:
        layers = linear_only(layers_or_na(ctx, "FFN weight layers", roles=("ffn",)))
        return sum_over_weight_grads(ctx, layers, lambda w, g: (d(w) * d(g)).abs().sum())
