"""head_importance — Michel et al.'s attention-head importance, summed over heads.

Formula (Michel, Levy & Neubig, "Are Sixteen Heads Really Better than One?",
NeurIPS 2019, Eq. 3; as a NAS proxy: Serianni & Kalita, ACL 2023)::

    I_{l,h} = E_x | d L(x) / d xi_{l,h} |      (xi = gate of ones multiplying head h's output)
    score   = sum_l sum_h I_{l,h}

computed exactly from one backward: ``d L_b/d xi_{b,h} = B * sum_{t,d} A * dL/dA`` on
the ``head_out`` taps (per-head attention output ``A``, before the output projection;
see the engine's ``head_mask`` need), expectation = mean over the minibatch examples.
A head_out tap that received no gradient contributes 0; a model without head_out taps
is n/a. Higher = more important heads = predicted better.

Variant ``variant="weights"`` reproduces the training-free-nas / LPZero notebook code
instead (``BERT_metrics.ipynb``, LPZero ``attention_head_importance.py``), which did not
use head gates: ``sum |W * dL/dW|`` over the ``nn.Linear`` layers inside the attention
operations except their output projection (q/k/v, WMA weight, LT input, span-conv value;
upstream walked ``layer.operation.operation``), keeping only layers with
``out_features >= min_out_features`` (default 128, upstream's constant, which drops
FlexiBERT's small span-conv kernel generators).

Layers counted: per-head gates on the head_out taps; variant=weights: the attention input
nn.Linear projections.
"""
from __future__ import annotations

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import attention_input_layers, d


@register_proxy("head_importance")
class HeadImportance(Proxy):
    citation = "Michel et al., NeurIPS 2019; Serianni & Kalita, ACL 2023"
    layers_counted = ("per-head gates on the head_out taps; variant=weights: the attention input nn.Linear projections")
    defaults = {"objective": None, "variant": "mask", "min_out_features": 128}
    added_options = frozenset({"min_out_features"})  # at its default, runs stored before it existed stay valid

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        v = self.options["variant"]
        if v not in ("mask", "weights"):
            raise ValueError(f"head_importance: variant must be 'mask' or 'weights', got {v!r}")
        self.needs = frozenset({"head_mask"}) if v == "mask" else frozenset({"backward"})

    def score(self, ctx) -> float:
        if self.options["variant"] == "weights":
            total = 0.0
            k = self.options["min_out_features"]
            layers = [wl for wl in attention_input_layers(ctx) if wl.module.out_features >= k]
            if not layers:
                raise NotApplicable(f"the model has no attention input projection with >= {k} outputs")
            for wl in layers:
                g = ctx.grad(wl.weight)
                if g is not None:
                    total += float((d(wl.weight) * d(g)).abs().sum())
            return total
        if not ctx.head_mask_grads:
            raise NotApplicable("the model has no 'head_out' taps")
        return float(sum(d(g).abs().mean(0).sum() for _, g in ctx.head_mask_grads))
