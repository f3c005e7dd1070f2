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


# --------------------------------------------------------------------------- seed-mean bootstrap (report)
def finite_ids(series_list: list[pd.Series], truth: pd.Series) -> list[str]:
    """Architectures with a finite value in every series and a finite ground truth (sorted IDs)."""
    ids = set(truth.index[np.isfinite(truth.to_numpy(dtype=float))])
    for s in series_list:
        ids &= set(s.index[finite_mask(s).to_numpy()])
    return sorted(ids)


@dataclass
class Stratum:
    """One seed's architectures: proxy scores, oriented truth and (optionally) baseline scores, aligned."""

    ids: tuple
    scores: np.ndarray
    truth: np.ndarray
    base: np.ndarray | None = None


def make_strata(series: list[pd.Series], truth: pd.Series, base: list[pd.Series] | None = None) -> list[Stratum]:
    out = []
    for i, s in enumerate(series):
        ids = finite_ids([s] + ([base[i]] if base is not None else []), truth)
        out.append(Stratum(tuple(ids), s.reindex(ids).to_numpy(dtype=float), truth.reindex(ids).to_numpy(dtype=float),
                           None if base is None else base[i].reindex(ids).to_numpy(dtype=float)))
    return out


def rank_corr(kind: str, x: np.ndarray, t: np.ndarray):
    """rho or tau-b along the last axis; x, t are (n,) or (batch, n).

    Spearman rho is computed as scipy.stats.spearmanr defines it, the Pearson correlation of
    average ranks (scipy.stats.rankdata + scipy.stats.pearsonr, vectorised over resamples);
    Kendall tau-b is scipy.stats.kendalltau per resample, as in metrics.correlate.
    """
    if kind == "rho":
        return stats.pearsonr(stats.rankdata(x, axis=-1), stats.rankdata(t, axis=-1), axis=-1).statistic
    fx, ft = x.reshape(-1, x.shape[-1]), t.reshape(-1, t.shape[-1])
    return np.array([stats.kendalltau(a, b).statistic for a, b in zip(fx, ft)], dtype=float).reshape(x.shape[:-1])


def _value(kind: str):
    if kind == "d_rho":
        return lambda st, i: rank_corr("rho", st.scores[i], st.truth[i]) - rank_corr("rho", st.base[i], st.truth[i])
    return lambda st, i: rank_corr(kind, st.scores[i], st.truth[i])


def seed_mean_bootstrap(strata: list[Stratum], kind: str, n_resamples: int, seed: int, confidence: float = 0.95):
    """Bootstrap of the mean over seeds of a per-seed statistic (``rho``, ``tau`` or ``d_rho``).

    When every seed scored the same architectures, one resample of architectures serves all
    seeds (``joint``: seeds are paired through the architectures); otherwise (e.g. each seed
    drew its own ``n_archs`` sample) each seed's architectures are resampled independently
    (stratified). scipy.stats.bootstrap with the settings of metrics.bootstrap_ci (percentile,
    seeded Generator); with one seed it reproduces metrics.bootstrap_ci exactly.
    Returns (observed value, scipy BootstrapResult or None, basis text).
    """
    value = _value(kind)
    joint = all(st.ids == strata[0].ids for st in strata)

    def stat(*idxs, axis=-1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if joint:
                vals = [value(st, np.asarray(idxs[0], dtype=int)) for st in strata]
            else:
                vals = [value(st, np.asarray(i, dtype=int)) for st, i in zip(strata, idxs)]
        return np.mean(np.asarray(vals, dtype=float), axis=0)

    data = (np.arange(len(strata[0].ids)),) if joint else tuple(np.arange(len(st.ids)) for st in strata)
    observed = float(stat(*data))
    n_min = min(len(st.ids) for st in strata)
    basis = (f"{len(strata[0].ids)} archs, resampled jointly for {len(strata)} seed(s)" if joint else
             f"{n_min}-{max(len(st.ids) for st in strata)} archs per seed, resampled per seed (stratified)")
    if n_min < 4 or not n_resamples or not math.isfinite(observed):
        return observed, None, basis
    res = stats.bootstrap(data, stat, paired=joint, vectorized=True, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", batch=250,
                          random_state=np.random.default_rng(seed))
    return observed, res, basis


def bootstrap_interval(res, confidence: float = 0.95) -> tuple[float, float]:
    if res is None:
        return (math.nan, math.nan)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # a degenerate resample gave NaN: ignore those resamples
        dist = np.asarray(res.bootstrap_distribution, dtype=float)
        dist = dist[np.isfinite(dist)]
        if dist.size < 10:
            return (math.nan, math.nan)
        a = (1 - confidence) / 2
        lo, hi = (float(v) for v in np.quantile(dist, [a, 1 - a]))
    return lo, hi


def seed_mean_ci(matrix: np.ndarray, truth: np.ndarray, kind: str, n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """95% CI of the seed-mean rho/tau for a (seeds, n) score matrix over the same n architectures."""
    ids = tuple(range(truth.shape[0]))
    strata = [Stratum(ids, np.asarray(row, dtype=float), np.asarray(truth, dtype=float)) for row in matrix]
    return bootstrap_interval(seed_mean_bootstrap(strata, kind, n_resamples, seed, confidence)[1], confidence)


def paired_test(strata: list[Stratum], n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Is the proxy's rho really higher than the baseline's on the same architectures?

    Each stratum (seed) holds the proxy's and the baseline's scores on the architectures both
    scored finitely. Architectures are resampled with replacement (paired: proxy, baseline
    and truth move together); each resample gives
    d* = mean_s [rho(proxy_s, truth) - rho(base_s, truth)].
    Returns the observed d, the percentile CI of d*, and a two-sided bootstrap p-value for
    H0: d = 0, p = min(1, 2 (1 + #{d* on the far side of 0}) / (B + 1)).
    """
    out = {"d_rho": math.nan, "d_rho_ci_lo": math.nan, "d_rho_ci_hi": math.nan, "p_vs_base": math.nan,
           "n_paired": min((len(st.ids) for st in strata), default=0)}
    if not strata or out["n_paired"] < 4:
        return out
    observed, res, _ = seed_mean_bootstrap(strata, "d_rho", n_resamples, seed, confidence)
    out["d_rho"] = observed
    if res is None:
        return out
    out["d_rho_ci_lo"], out["d_rho_ci_hi"] = bootstrap_interval(res, confidence)
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    dist = dist[np.isfinite(dist)]
    if dist.size:
        far = min(int((dist <= 0).sum()), int((dist >= 0).sum()))
        out["p_vs_base"] = min(1.0, 2.0 * (1 + far) / (dist.size + 1))
    return out


def paired_bootstrap(proxy: np.ndarray, base: np.ndarray, truth: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """:func:`paired_test` for (seeds, n) proxy and baseline matrices over the same n architectures."""
    ids = tuple(range(truth.shape[0]))
    strata = [Stratum(ids, np.asarray(p, dtype=float), np.asarray(truth, dtype=float), np.asarray(b, dtype=float))
              for p, b in zip(proxy, base)]
    return paired_test(strata, n_resamples, seed, confidence)


STATISTICS = ("spearman", "pearson")


def like_for_like(score_matrix: np.ndarray, truth: np.ndarray, statistic: str, n_resamples: int = 1000,
                  seed: int = 0, confidence: float = 0.95) -> dict:
    """Kendall tau-b and ``statistic`` (Spearman rho or Pearson r) of (seeds x records) scores vs truth.

    Mean and std over seeds; percentile bootstrap CI of the seed mean, resampling records
    (the same resample for every seed). Records whose score is not finite in some seed are
    excluded (and counted), never replaced.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; valid: {', '.join(STATISTICS)}")
    x = np.atleast_2d(np.asarray(score_matrix, dtype=float))
    t = np.asarray(truth, dtype=float)
    ok = np.isfinite(x).all(axis=0) & np.isfinite(t)
    x, t = x[:, ok], t[ok]
    out = {"n": int(ok.sum()), "n_excluded": int((~ok).sum())}
    if out["n"] < 4 or np.any(np.ptp(x, axis=1) == 0):
        return out | {"rho": math.nan, "rho_std": math.nan, "tau": math.nan, "tau_std": math.nan,
                      "rho_ci_lo": math.nan, "rho_ci_hi": math.nan, "tau_ci_lo": math.nan, "tau_ci_hi": math.nan}

    def rho_of(xs, ts):  # Spearman: rank_corr, as in the report table
        return stats.pearsonr(xs, ts, axis=-1).statistic if statistic == "pearson" else rank_corr("rho", xs, ts)

    rhos = np.array([rho_of(xi, t) for xi in x])
    taus = np.array([rank_corr("tau", xi, t) for xi in x])
    out.update(rho=float(rhos.mean()), rho_std=float(rhos.std(ddof=1)) if len(x) > 1 else math.nan,
               tau=float(taus.mean()), tau_std=float(taus.std(ddof=1)) if len(x) > 1 else math.nan)
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, out["n"], size=(n_resamples, out["n"]))
        tb = t[idx]
        rb = np.mean([rho_of(xi[idx], tb) for xi in x], axis=0)
        kb = np.mean([rank_corr("tau", xi[idx], tb) for xi in x], axis=0)
        a = (1 - confidence) / 2
        out.update(rho_ci_lo=float(np.nanquantile(rb, a)), rho_ci_hi=float(np.nanquantile(rb, 1 - a)),
                   tau_ci_lo=float(np.nanquantile(kb, a)), tau_ci_hi=float(np.nanquantile(kb, 1 - a)))
    else:
        out.update(rho_ci_lo=math.nan, rho_ci_hi=math.nan, tau_ci_lo=math.nan, tau_ci_hi=math.nan)
    return out
