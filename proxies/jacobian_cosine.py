"""jacobian_cosine — Celotti et al.'s Jacobian cosine similarity score.

Formula (Celotti, Balafrej & Calvet, "Improving Zero-Shot Neural Architecture
Search with Parameters Scoring", 2020 — the "Jacobian cosine"; used on BERT by
Serianni & Kalita, ACL 2023, and listed by LPZero as "Jacobian Cosine")::

    Jn    = rows of J normalised to unit length      (J as in jacob_cov: one row per example)
    S     = 1 - 1/(B^2 - B) * sum_{i != j} | (Jn Jn^T)_ij |^(1/20)

Higher = more dissimilar per-example Jacobians = predicted better. The training-free-
nas notebook divides the off-diagonal sum by 2 (each pair counted once); that is a
positive affine change of the same sum and leaves every ranking unchanged, so we keep
the published formula. The diagonal (i = j) is excluded exactly: the notebook's
``cosines - I`` leaves round-off of order 1e-16 there, which the 1/20-th power turns
into terms of order 0.16 each. As in ``jacob_cov``, rows are examples (Celotti's
definition), not the hidden dimensions of the position-embedding gradient that the
training-free-nas notebook used.

Layers counted: none: the input Jacobian at the embedding tap (no weight layer).
"""
from __future__ import annotations

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies.jacob_cov import jacobian_rows


@register_proxy("jacobian_cosine")
class JacobianCosine(Proxy):
    needs = frozenset({"jacobian"})
    citation = "Celotti et al. 2020; Serianni & Kalita, ACL 2023"
    layers_counted = "none: the input Jacobian at the embedding tap (no weight layer)"
    defaults = {"power": 1.0 / 20}

    def score(self, ctx) -> float:
        J = jacobian_rows(ctx)
        Jn = J / J.norm(dim=1, keepdim=True)
        cos = Jn @ Jn.T
        cos.fill_diagonal_(0.0)
        B = J.shape[0]
        return float(1.0 - cos.abs().pow(self.options["power"]).sum() / (B * B - B))
