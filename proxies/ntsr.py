"""ntsr — ETAS's NTSR: mean within-set rank of NTKT and SEPT (Eq. 17).

Paper: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024. NTSR ranks the candidate set by
the trainability indicator (``ntkt``, the NTK trace) and by the expressivity indicator
(``sept``, the separation-rank bound) and scores each architecture by the mean of its
two ranks (higher = better). ETAS published on its own GPT-2 table (tau/rho): NTSR
0.81/0.98.

This is exactly ``rankfuse:[ntkt,sept]`` (``RankFuse`` in ``proxies/rankfuse.py``): a set-level
proxy scored by the runner from the stored component scores; the fused value of an
architecture depends on the set it was ranked in (the runner keys it by the set).
Ties share the average rank; a NaN/inf component makes the fused score NaN.

Layers counted: none directly: the within-set ranks of ntkt and sept (see those proxies).
"""
from __future__ import annotations

from zcbench.proxies.rankfuse import RankFuse
from zcbench.registry import register_proxy


@register_proxy("ntsr")
class NTSR(RankFuse):
    version = "1"
    citation = "Yang & Liu, ETAS, Findings of ACL 2024 (NTSR, Eq. 17)"
    layers_counted = "none directly: the within-set ranks of ntkt and sept (see those proxies)"
    COMPONENTS = ("ntkt", "sept")

    def __init__(self, **kwargs):
        super().__init__(self.COMPONENTS, **kwargs)
