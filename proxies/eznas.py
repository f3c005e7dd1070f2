"""eznas — EZNAS-A, the zero-cost program discovered by Akhauri et al.

Formula (Akhauri, Munoz, Jain & Iyer, "EZNAS: Evolving Zero-Cost Proxies For Neural
Architecture Scoring", NeurIPS 2022; the published program, as implemented in
LPZero's/PicoNAS's ``eznas-a``)::

    for every weight layer l with gradient G_l = dL/dW_l:
        s_l = || sigmoid( log|det( sign(G_l) )| ) ||_F
    eznas = mean_l s_l

``log|det|`` is taken over the last two dimensions (EZNAS scored convolutions, where
these are the k x k kernels), so it is defined only where they form a square matrix:
on Transformers only the square projections (e.g. GPT-2's attention output
projection, d x d) qualify, the other layers are skipped, and a model with none is
n/a. Expect a near-degenerate proxy on Transformers: the log-determinant of a random
d x d sign matrix is of order d log d, so the sigmoid saturates at 1 for every
non-singular layer (0.5 for a singular one). That is a finding about the proxy,
reproduced faithfully, not a bug. Real minibatch and loss (EZNAS's "T3 gradient on
data"); eval mode.
"""
from __future__ import annotations

import torch

from zcbench.engine import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d, layers_or_na


@register_proxy("eznas")
class EZNAS(Proxy):
    needs = frozenset({"backward"})
    citation = "Akhauri et al., EZNAS, NeurIPS 2022"
    defaults = {"objective": None, "include_output": False}

    def score(self, ctx) -> float:
        vals = []
        for wl in layers_or_na(ctx, "weight layers", include_output=self.options["include_output"]):
            g = ctx.grad(wl.weight)
            if g is None or g.dim() < 2 or g.shape[-1] != g.shape[-2]:
                continue
            logabsdet = torch.linalg.slogdet(torch.sign(d(g))).logabsdet
            vals.append(float(torch.linalg.vector_norm(torch.sigmoid(logabsdet))))
        if not vals:
            raise NotApplicable("no weight layer has square trailing dimensions")
        return sum(vals) / len(vals)
