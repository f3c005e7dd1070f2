"""Ranking metrics, all from scipy/pandas (no hand-rolled statistics).

Convention: ``ground_truth`` is oriented so that *higher is better* before any
metric is computed (perplexity is negated), so a positive τ/ρ always means the
proxy ranks architectures the way training does.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass
class Correlation:
    n: int  # pairs used
    n_excluded: int  # NaN/inf scores left out (never silently)
    kendall_tau: float  # tau-b
    spearman_rho: float
    tau_ci: tuple[float, float]
    rho_ci: tuple[float, float]
    top_overlap: dict  # {"top10%": fraction, ...}
    constant: bool = False  # proxy gave the same score to every architecture

    def as_dict(self) -> dict:
        return asdict(self)


def orient(truth: pd.Series, higher_is_better: bool) -> pd.Series:
    return truth if higher_is_better else -truth


def finite_mask(scores: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(scores.to_numpy(dtype=float)), index=scores.index)


def top_k_overlap(scores: np.ndarray, truth: np.ndarray, fraction: float) -> float:
    """LTS's common ratio: |top-k% by proxy ∩ top-k% by truth| / k (both higher = better)."""
    k = max(1, int(round(fraction * len(scores))))
    top_s = set(pd.Series(scores).nlargest(k, keep="first").index)
    top_t = set(pd.Series(truth).nlargest(k, keep="first").index)
    return len(top_s & top_t) / k


def bootstrap_ci(x: np.ndarray, y: np.ndarray, statistic, n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Paired percentile bootstrap CI of ``statistic(x, y)`` via scipy.stats.bootstrap."""
    if len(x) < 4:
        return (math.nan, math.nan)
    res = stats.bootstrap((x, y), statistic, paired=True, vectorized=False, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def _tau(x, y):
    return stats.kendalltau(x, y).statistic  # variant="b" is scipy's default


def _rho(x, y):
    return stats.spearmanr(x, y).statistic


def correlate(scores: pd.Series, truth: pd.Series, *, fractions=(0.1, 0.2, 0.5), n_resamples: int = 1000,
              seed: int = 0, label: str = "") -> Correlation:
    """Correlate proxy scores with oriented ground truth, aligned on index (arch ID).

    Non-finite scores are excluded and counted, with a warning naming how many.
    """
    df = pd.concat({"s": scores.astype(float), "t": truth.astype(float)}, axis=1, join="inner")
    ok = np.isfinite(df["s"].to_numpy()) & np.isfinite(df["t"].to_numpy())
    excluded = int((~ok).sum())
    if excluded:
        warnings.warn(f"{label or 'scores'}: {excluded} of {len(df)} architectures have NaN/inf scores and are "
                      f"excluded from the correlation", stacklevel=2)
    df = df[ok]
    n = len(df)
    x, y = df["s"].to_numpy(), df["t"].to_numpy()
    if n < 2 or np.all(x == x[0]):
        nan2 = (math.nan, math.nan)
        return Correlation(n, excluded, math.nan, math.nan, nan2, nan2, {f"top{int(f*100)}%": math.nan for f in fractions},
                           constant=n >= 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tau, rho = float(_tau(x, y)), float(_rho(x, y))
        tau_ci = bootstrap_ci(x, y, _tau, n_resamples, seed) if n_resamples else (math.nan, math.nan)
        rho_ci = bootstrap_ci(x, y, _rho, n_resamples, seed) if n_resamples else (math.nan, math.nan)
    overlap = {f"top{int(f*100)}%": top_k_overlap(x, y, f) for f in fractions}
    return Correlation(n, excluded, tau, rho, tau_ci, rho_ci, overlap)


def mean_std_over_seeds(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean ± sample std of ``value`` over seeds for each group (pandas)."""
    g = df.groupby(by)[value]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n_seeds": g.count()}).reset_index()
