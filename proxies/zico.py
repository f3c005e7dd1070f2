"""zico — ZiCo: inverse coefficient of variation of gradients across mini-batches.

Formula (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
Gradients", ICLR 2023, Eq. 9; official code ``caculate_zico``)::

    for every weight layer l, over the G gradient samples g^(1..G) of its weights:
        mu_l    = mean_g |g|       (element-wise)
        sigma_l = std_g g          (element-wise, population std)
    zico = sum_l log( sum_{i: sigma_l,i != 0} mu_l,i / sigma_l,i )

(a layer whose inner sum is 0 is skipped, as in the official code). The G = 2
gradient samples come from the engine's ``multi_batch`` pass: the minibatch split
into two equal halves, one forward+backward each (NASLib/official ``split_data=2``).
With two samples ``mean|g| / std(g) = (|g1| + |g2|) / |g1 - g2|``, evaluated element-wise in
the gradients' float32 (as the official numpy code on float32 gradients) and summed in
float64. Layers: weight layers (``include_output`` for the head). Deviation: eval mode.

Numerical stability (option ``tol``, default 0 = the official rule above, the stored runs).
The ratio is ill-conditioned: an element whose two gradient samples agree to a few float32
ulps contributes ~1e6-1e7 on its own and dominates its layer's sum, so the score moves with
the CPU's / thread count's summation order (stored GPT-2 config_9_j3 seed 0: 102.362 here,
103.430 on another CPU; one element of ``h.0.mlp.c_proj`` carries 3.55e6 of its layer's
4.67e6). ``tol > 0`` counts an element as sigma = 0 (skipped, the official rule for exact
ties) when ``std_g g <= tol * mean_g |g|`` (two samples: ``|g1 - g2| <= tol (|g1| + |g2|)``)
and evaluates the ratios in float64. Measured on 5 GPT-2 networks (``bench/zico_stability.py``,
docs/testing.md): the score from float32 gradients differs from the score from float64
gradients of the same network by up to 4.8e-3 relative at ``tol=0``, 9.1e-5 at ``tol=1e-5``
and 3.1e-5 at ``tol=1e-4``. ``tol`` lowers the number (about 3 % at 1e-4) but keeps the
definition's sigma = 0 rule; it is part of the run key when non-zero.

How the two group gradients are computed (option ``groups``). ``passes`` (default, every stored
run): one forward+backward per half batch. ``factored``: from the standard forward/backward of
the whole minibatch, each weight layer's gradient restricted to one half's examples (its input
rows times its output-gradient rows, scaled to the half's own mean loss; the engine's
``per_example`` need) — the same gradients in exact arithmetic, one forward+backward instead of
two. Layers whose weight is also used outside the module, or whose input is shared by the
examples (Transformer-XL's r_net), fall back to the passes. In float32 the two differ by
round-off (gradients ~2.5e-7 relative), which the tol=0 ratio amplifies up to ~8e-3 (GPT-2,
4 x 192; docs/performance.md); with ``tol=1e-4`` at most ~6e-6. ``groups=factored`` is part of
the run key.

Layers counted: every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output
head (include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only. Default
layer set ``zcbench`` (nn.Linear + nn.Conv1d + nn.Conv2d)
because FlexiBERT's DSC convolutions (nn.Conv1d) are weight layers of those networks and the
stored runs count them; ``layers=reference`` counts nn.Linear + nn.Conv2d only, the layer set
of Abdelfattah et al.'s ``get_layer_metric_array`` and ZiCo's official code (on FlexiBERT DSC
networks this moves ZiCo by 8-10 %; elsewhere both sets are the same layers).
"""
from __future__ import annotations

import math

import torch

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na


@register_proxy("zico")
class ZiCo(Proxy):
    needs = frozenset({"multi_batch"})
    citation = "Li et al., ZiCo, ICLR 2023"
    weight_layer_option = True
    layers_counted = ("every nn.Linear / nn.Conv1d / nn.Conv2d weight layer except the output head "
                      "(include_output=True adds it); layers=reference: nn.Linear / nn.Conv2d only")
    defaults = {"objective": None, "include_output": False, "tol": 0.0, "groups": "passes"}
    added_options = frozenset({"tol", "groups"})  # tol=0, groups=passes keep the stored runs' identity

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        tol = self.options["tol"]
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
            raise ValueError(f"proxy zico: tol must be a number in [0, 1), got {tol!r}")
        if self.options["groups"] not in ("passes", "factored"):
            raise ValueError(f"proxy zico: groups must be one of passes, factored, got {self.options['groups']!r}")

    def score(self, ctx) -> float:
        groups = ctx.multi_batch_grads
        if len(groups) < 2:
            raise NotApplicable("ZiCo needs gradients from at least two groups")
        tol = float(self.options["tol"])
        total = 0.0
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            gs = [g.get(wl.name) for g in groups]
            if any(g is None for g in gs):
                continue
            if tol > 0:
                G = torch.stack([d(g).reshape(-1) for g in gs])
                std, mean_abs = G.std(dim=0, unbiased=False), G.abs().mean(dim=0)
                keep = std > tol * mean_abs
                s = float((mean_abs[keep] / std[keep]).sum())
            elif len(gs) == 2:
                # two samples: mean|g| / std(g) = (|g1| + |g2|) / |g1 - g2|, elementwise
                g1, g2 = gs[0].reshape(-1), gs[1].reshape(-1)
                den = (g1 - g2).abs()
                nz = den != 0
                s = float(((g1.abs() + g2.abs())[nz] / den[nz]).sum(dtype=torch.float64))
            else:
                G = torch.stack([d(g).reshape(-1) for g in gs])
                std = G.std(dim=0, unbiased=False)
                nz = std != 0
                s = float((G.abs().mean(dim=0)[nz] / std[nz]).sum())
            if s != 0:
                total += math.log(s)
        return total
