"""Set-level proxies: scores defined on a set of architectures from per-arch components.

``rankfuse:[a,b,...]`` is the general rank-fusion utility: each component proxy is
scored per architecture, ranked within the scored set (higher score → higher rank,
ties share the average rank), and the fused score is the mean rank. ETAS's NTSR
(Eq. 17) is ``rankfuse:[ntkt,sept]``. An architecture with a NaN/inf component
gets a NaN fused score (recorded and excluded visibly, never imputed).

Because a rank depends on the set, fused scores are stored under a key that
includes a hash of the architecture IDs they were computed on.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from zcbench.engine import Proxy
from zcbench.registry import register_proxy_prefix


class SetProxy(Proxy):
    """Base class: ``components`` are proxy names; ``combine`` maps their scores to one."""

    components: tuple[str, ...] = ()
    needs = frozenset()

    def combine(self, scores: pd.DataFrame) -> pd.Series:
        raise NotImplementedError

    def score(self, ctx) -> float:  # pragma: no cover - set proxies have no per-arch score
        raise TypeError(f"{self.name} is defined on a set of architectures; score it through the runner")


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
def _rankfuse_from_name(arg: str, **kwargs) -> RankFuse:
    m = re.fullmatch(r"\[([^\[\]]+)\]", arg.strip())
    if not m:
        raise ValueError(f"rankfuse expects rankfuse:[proxy_a,proxy_b,...], got rankfuse:{arg}")
    from zcbench.registry import get_proxy

    names = [n.strip() for n in m.group(1).split(",") if n.strip()]
    for n in names:
        get_proxy(n)  # unknown component -> one-line UnknownNameError listing valid names
    proxy = RankFuse(names, **kwargs)
    proxy.name = f"rankfuse:[{','.join(names)}]"
    return proxy
