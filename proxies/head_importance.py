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
instead, which did not use head gates: ``sum |W * dL/dW|`` over the ``nn.Linear``
layers of the attention operations (their extra ``out_features >= 128`` filter, which
skipped FlexiBERT's small kernel generators, is not reproduced).
"""
from __future__ import annotations

from zcbench.engine import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na, linear_only


@register_proxy("head_importance")
class HeadImportance(Proxy):
    citation = "Michel et al., NeurIPS 2019; Serianni & Kalita, ACL 2023"
    defaults = {"objective": None, "variant": "mask"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        v = self.options["variant"]
        if v not in ("mask", "weights"):
            raise ValueError(f"head_importance: variant must be 'mask' or 'weights', got {v!r}")
        self.needs = frozenset({"head_mask"}) if v == "mask" else frozenset({"backward"})

    def score(self, ctx) -> float:
        if self.options["variant"] == "weights":
            total = 0.0
            for wl in linear_only(layers_or_na(ctx, "attention weight layers", roles=("attn",))):
                g = ctx.grad(wl.weight)
                if g is not None:
                    total += float((d(wl.weight) * d(g)).abs().sum())
            return total
        if not ctx.head_mask_grads:
            raise NotApplicable("the model has no 'head_out' taps")
        return float(sum(d(g).abs().mean(0).sum() for _, g in ctx.head_mask_grads))
