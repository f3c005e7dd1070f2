"""jacob_cov — Jacobian covariance score of Mellor et al. (NASWOT v1).

Formula (Mellor et al., "Neural Architecture Search without Training", ICML 2021,
v1 "Jacobian covariance"; as a proxy: Abdelfattah et al., ICLR 2021; LPZero's
``jacob_cov.py``)::

    J_b   = d y_b / d e_b                 (flattened, one row per example b)
    C     = corrcoef(J)                   (B x B Pearson correlation of the rows)
    score = - sum_i [ log(lambda_i + k) + 1 / (lambda_i + k) ],   k = 1e-5

over the eigenvalues ``lambda_i`` of ``C``. ``e`` is the input representation at the
``embedding`` tap (LPZero: the word embedding of GPT-2 / Transformer-XL) and
``y_b = sum_t <h_{b,t}, u>`` a fixed random projection of the final hidden state
(``u ~ N(0, I)`` seeded by the run seed; LPZero appended a randomly initialised
``Linear(n_token, 1)`` to the full-vocabulary logits). Higher = less correlated
per-example Jacobians = predicted better.

Deviations: the projection reads the hidden state, not the logits (the adaptive
softmax models produce no full logits); eigenvalues via ``eigvalsh`` of the
symmetric matrix (upstream: ``np.linalg.eig``). training-free-nas (Serianni &
Kalita) instead correlated the hidden dimensions of the position-embedding
gradient; we keep Mellor's per-example definition. A NaN correlation (a constant
Jacobian row) gives a NaN score, as upstream.

Layers counted: none: the input Jacobian at the embedding tap (no weight layer).
"""
from __future__ import annotations

import math

import torch

from zcbench.proxy import NotApplicable, Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import d


def jacobian_rows(ctx) -> torch.Tensor:
    if ctx.jacobian is None:
        raise NotApplicable("no Jacobian was captured")
    J = d(ctx.jacobian)
    J = J.reshape(J.shape[0], -1)
    if J.shape[0] < 2:
        raise NotApplicable("needs at least two examples in the minibatch")
    return J


@register_proxy("jacob_cov")
class JacobCov(Proxy):
    needs = frozenset({"jacobian"})
    citation = "Mellor et al., Neural Architecture Search without Training, ICML 2021"
    layers_counted = "none: the input Jacobian at the embedding tap (no weight layer)"
    defaults = {"k": 1e-5}

    def score(self, ctx) -> float:
        J = jacobian_rows(ctx)
        C = torch.corrcoef(J)
        if not torch.isfinite(C).all():
            return math.nan
        v = torch.linalg.eigvalsh(C)
        k = self.options["k"]
        return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())
