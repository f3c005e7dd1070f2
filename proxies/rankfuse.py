"""``rankfuse:[a,b,...]`` — rank fusion of per-architecture proxies (a set-level proxy).

Each component proxy is scored per architecture, ranked within the scored set (higher
score -> higher rank, ties share the average rank), and the fused score is the mean rank:

    fuse(x) = (1/K) * sum_k rank_k(x),   rank_k over the scored set S

ETAS's NTSR (Eq. 17) is ``rankfuse:[ntkt,sept]`` (see ``proxies/ntsr.py``).
Citation: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024, Eq. 17; generalised here to any components.

An architecture with a NaN/inf component gets a NaN fused score (recorded and excluded
visibly, never imputed). Because a rank depends on the set, fused scores are stored under a
key that includes a hash of the architecture IDs they were computed on (the runner does this
for every :class:`zcbench.proxy.SetProxy`). This file registers the ``rankfuse:`` prefix; it
is an ordinary proxy plug-in — the registry does not know it by name.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from zcbench.proxy import SetProxy
from zcbench.registry import get_proxy, register_proxy_prefix


def mean_rank(scores: pd.DataFrame) -> pd.Series:
    """Mean over columns of within-column ranks (average ties); NaN if any component is non-finite."""
    finite = scores.apply(lambda c: np.isfinite(c.to_numpy(dtype=float)))
    ranks = scores.where(finite).rank(axis=0, method="average", na_option="keep")
    return ranks.mean(axis=1, skipna=False)


class RankFuse(SetProxy):
    """Mean within-set rank of the component proxies (ETAS Eq. 17 generalised)."""

    version = "1"
    citation = "Rank fusion as in ETAS (NTSR, Eq. 17); components as given"

    def __init__(self, components, **kwargs):
        super().__init__(**kwargs)
        comps = tuple(components)
        if len(comps) < 2:
            raise ValueError(f"rankfuse needs at least two component proxies, got {list(comps)}")
        self.components = comps
        if not getattr(type(self), "name", ""):
            self.name = f"rankfuse:[{','.join(comps)}]"

    def combine(self, scores: pd.DataFrame) -> pd.Series:
        return mean_rank(scores[list(self.components)])


@register_proxy_prefix("rankfuse")
def rankfuse_from_name(arg: str, **kwargs) -> RankFuse:
    """``rankfuse:[a,b,...]`` -> a :class:`RankFuse` of the named proxies (each must be registered)."""
    m = re.fullmatch(r"\[([^\[\]]+)\]", arg.strip())
    if not m:
        raise ValueError(f"rankfuse expects rankfuse:[proxy_a,proxy_b,...], got rankfuse:{arg}")
    names = [n.strip() for n in m.group(1).split(",") if n.strip()]
    for n in names:
        get_proxy(n)  # unknown component -> one-line UnknownNameError listing valid names
    proxy = RankFuse(names, **kwargs)
    proxy.name = f"rankfuse:[{','.join(names)}]"
    return proxy
