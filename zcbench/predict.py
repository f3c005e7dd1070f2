"""Few-shot predictors built from stored proxy scores: ``python -m zcbench predict space=<s>``.

Size: over 500 lines because the protocol, the feature table, every predictor and the report
of issue #21 read top-down in one file.

Question (issue #21): with ``k`` trained (labelled) architectures, do all the zero-cost
proxies *together* rank the remaining architectures better than the parameter count?
NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets & Benchmarks) asked it
for CNN spaces, with proxies as features of a gradient-boosted predictor; here it is asked
on the Transformer spaces whose scores are in the results store.

Nothing is scored here: the features are the per-architecture scores already stored under
``results/scores`` (read through :func:`zcbench.report.load_runs` / ``select_configs``,
the report's own choice of one configuration per (space, proxy)), the labels the space's
ground truth, oriented so that higher is better (:func:`zcbench.metrics.orient`).

Protocol
--------
* Features: for each proxy, its scores at ``proxy_seed`` (default 0; a proxy stored
  without that seed uses its lowest stored seed, named in the notes) — one scoring pass
  per architecture, as a practitioner would run it. Proxies with more than 5 % non-finite
  scores or constant scores on the space are left out (named in the notes); remaining
  non-finite scores are set to the median rank / left as NaN for the trees (counted).
* Splits: for each ``k`` in ``ks`` and ``split`` in ``range(n_splits)`` a uniform sample of
  ``k`` architectures (``random.Random(f"predict:{seed}:{k}:{split}")`` over the sorted
  IDs) is labelled; every other architecture of the pool is held out. Every predictor sees
  the same splits (paired comparisons).
* Fitting sees only the labelled architectures' truth. Proxy scores of unlabelled
  architectures are used where a practitioner has them too (zero cost): proxy *ranks*
  are percentile ranks over the whole pool. No held-out truth enters any fit
  (``tests/test_predict.py::test_no_heldout_leak`` perturbs it and checks every prediction
  is unchanged).
* Held-out quality: Spearman rho and Kendall tau-b between the predictions and the
  oriented truth of the held-out architectures; a constant prediction has no ranking and
  counts as 0 (``n_constant`` in the splits table).

Predictors (``PREDICTORS``)
---------------------------
``params``           the stored ``params`` proxy alone (no fitting): the baseline.
``best_single``      the proxy with the largest |rho| on the k labelled, sign-corrected.
``rank_avg_top3``    mean pool-rank of the 3 proxies with the largest |rho| on the k
                     labelled (each sign-corrected).
``ridge_ranks``      RidgeCV (alphas 10^-2 ... 10^3, efficient leave-one-out) from the
                     proxies' pool ranks to the labelled truth's rank.
``hgb``              HistGradientBoostingRegressor on the raw proxy scores (NaN kept;
                     ``min_samples_leaf = max(2, k // 10)``, 100 iterations, learning rate 0.1,
                     no early stopping, ``random_state = split``).
``hgb_genes``        the same with the architecture's flattened genes as extra features
                     (:func:`zcbench.search.etas.flatten_genes`; strings as category codes).
``zerolm_alpha``     ZeroLM's benchmark-sampling alpha (Chen et al., arXiv:2503.18646):
                     :func:`zcbench.search.zerolm_alpha.fit_alpha` on the k labelled over the
                     stored capacities ``results/zerolm/components_<space>_seed0_mean_sq.csv``;
                     only where those exist (the LTS / FlexiBERT spaces, not project tables).

Statistics
----------
Per (k, predictor): mean and std over splits of held-out rho / tau, and a 95 % percentile
bootstrap CI of the split mean (resampling splits, ``n_boot`` = 2000, seed 0). Against
``params``: the per-split difference of held-out rho, bootstrapped over splits (paired);
a predictor *significantly beats* ``params`` at ``k`` when the lower end of its
Bonferroni-corrected interval (level 1 - 0.05 / #compared predictors) is above 0. The
splits share architectures, so these intervals describe split-to-split variation of this
pool, not a population of pools. The noise ceiling of the space's table (valid vs test, or
seed vs seed for project-built tables: ``SpaceInfo.ceiling``) is printed and drawn.

Complementarity (:func:`forward_selection`): at k = 50, greedily add the proxy that most
raises the ridge predictor's mean held-out rho over the same splits; the curve (best 1,
2, 3 ... proxies) and the picks. Selection uses the held-out mean itself, so the curve is
an optimistic description of complementarity, not a predictor.

Outputs (``out``, default ``<results_dir>/predict``): ``<space>.md`` / ``<space>.csv``
(summary), ``<space>_splits.csv``, ``<space>_forward.csv``, ``<space>.png`` (figure) and
``summary.md`` (the smallest k per space). :func:`ensemble_tables` reads them back for the
leaderboard. Documentation: ``docs/predict.md``.
"""
from __future__ import annotations

import math
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from zcbench.errors import ConfigError

KS = (5, 10, 20, 50, 100)
N_SPLITS = 20
BASELINE = "params"
PREDICTORS = ("params", "params_nonembedding", "best_single", "rank_avg_top3", "ridge_ranks", "hgb", "hgb_genes", "zerolm_alpha")
MAX_BAD_FRACTION = 0.05
TOP_M = 3
RIDGE_ALPHAS = np.logspace(-2, 3, 12)
HGB_ITER = 100


class PredictError(ConfigError):
    """Bad input to ``predict`` (unknown space, no ground truth, bad option); str() is one line."""


# --------------------------------------------------------------------------- data
@dataclass
class SpaceData:
    """Everything the predictors need for one space label, aligned on ``ids``."""

    space: str
    ids: list  # pool: architectures with ground truth and a score for every kept proxy
    scores: pd.DataFrame  # ids x proxies, raw scores (NaN where non-finite)
    truth: pd.Series  # oriented ground truth (higher = better)
    genes: pd.DataFrame | None = None  # ids x flattened gene columns (numeric codes)
    components: pd.DataFrame | None = None  # ZeroLM capacities: attn, ffn
    metric: str = ""
    ceiling: dict | None = None
    notes: list = field(default_factory=list)

    def __post_init__(self):
        self.ids = list(self.ids)
        self.scores = self.scores.reindex(self.ids)
        self.truth = self.truth.reindex(self.ids).astype(float)
        # percentile ranks over the whole pool (zero-cost: no labels involved); NaN -> median
        self.ranks = self.scores.rank(pct=True).fillna(0.5)
        # positional arrays used by the predictors (rows = ids)
        self.R = self.ranks.to_numpy(dtype=float)
        self.S = self.scores.to_numpy(dtype=float)
        self.y = self.truth.to_numpy(dtype=float)
        self.G = None if self.genes is None else self.genes.reindex(self.ids).to_numpy(dtype=float)
        self.C = None if self.components is None else self.components.reindex(self.ids)
        self.pos = {i: n for n, i in enumerate(self.ids)}

    def index(self, ids) -> np.ndarray:
        return np.array([self.pos[i] for i in ids], dtype=int)

    @property
    def proxies(self) -> list:
        return list(self.scores.columns)


def genes_frame(archs) -> pd.DataFrame:
    """Flattened genes (``etas.flatten_genes``) as numeric columns; strings become category codes."""
    from zcbench.search.etas import flatten_genes

    df = pd.DataFrame({a.id: flatten_genes(a.genes) for a in archs}).T
    out = {}
    for c in df.columns:
        col = df[c]
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().sum() == col.notna().sum():
            out[c] = num.astype(float)
        else:
            codes = {v: i for i, v in enumerate(sorted({str(v) for v in col.dropna()}))}
            out[c] = col.map(lambda v: codes[str(v)] if v is not None and not (isinstance(v, float) and
                                                                                 math.isnan(v)) else np.nan)
    return pd.DataFrame(out, index=df.index).astype(float)


def zerolm_components(space_name: str, options: dict, results_dir) -> pd.DataFrame | None:
    """Stored ZeroLM capacities (written by ``zcbench.search.zerolm_alpha``) for a standard space."""
    if options:
        return None
    path = Path(results_dir) / "zerolm" / f"components_{space_name}_seed0_mean_sq.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, index_col="arch_id")[["attn", "ffn"]].astype(float)


def space_labels(results_dir) -> list[str]:
    """Space labels with stored scores (the report's labels, e.g. ``gpt2[table=gpt2_wt2]``)."""
    from zcbench.report import load_runs

    return sorted({r.space for r in load_runs(results_dir)})


def load_space_data(results_dir, space: str, data_dir=None, proxy_seed: int = 0, with_genes: bool = True,
                    proxies=None) -> SpaceData:
    """Stored scores of every proxy on ``space`` (a report space label) and its ground truth."""
    import zcbench
    from zcbench.report import load_runs, load_space, select_configs

    results_dir = Path(results_dir)
    runs = [r for r in load_runs(results_dir) if r.space == space]
    if not runs:
        raise PredictError(f"no stored scores for space {space!r} under {results_dir}/scores; "
                           f"spaces with scores: {', '.join(space_labels(results_dir)) or 'none'}")
    groups, _ = select_configs(runs)
    r0 = runs[0]
    info = load_space(space, r0.space_name, r0.space_options, None, data_dir)
    if info.error or info.oriented is None:
        raise PredictError(f"space {space!r} has no ground truth to predict: {info.error or 'no truth'}")
    truth = info.oriented
    notes, cols = [], {}
    for (_, proxy), rs in sorted(groups.items()):
        if proxies is not None and proxy not in proxies:
            continue
        by_seed = {r.seed: r for r in rs}
        seed = proxy_seed if proxy_seed in by_seed else min(by_seed)
        if seed != proxy_seed:
            notes.append(f"{proxy}: no seed {proxy_seed} stored; used seed {seed}")
        recs = by_seed[seed].records
        cols[proxy] = pd.Series({i: rec["score"] for i, rec in recs.items()}, dtype=float)
    scores = pd.DataFrame(cols)
    ids = sorted(set(truth.index) & set(scores.index))
    scores = scores.reindex(ids).replace([np.inf, -np.inf], np.nan)
    keep = []
    for p in scores.columns:
        bad = int(scores[p].isna().sum())
        if bad > MAX_BAD_FRACTION * len(ids):
            notes.append(f"{p}: {bad} of {len(ids)} scores missing or non-finite; left out")
        elif scores[p].nunique(dropna=True) < 2:
            notes.append(f"{p}: constant scores; left out")
        else:
            if bad:
                notes.append(f"{p}: {bad} of {len(ids)} scores missing or non-finite; ranked at the median")
            keep.append(p)
    if BASELINE not in keep:
        raise PredictError(f"space {space!r}: the baseline proxy {BASELINE!r} has no usable stored scores")
    genes = None
    if with_genes:
        sp = zcbench.create_space(r0.space_name, data_dir=data_dir, **r0.space_options)
        by_id = {a.id: a for a in sp.stored()}
        genes = genes_frame([by_id[i] for i in ids if i in by_id]).reindex(ids)
    # the stored capacities are for a space's standard configuration (label == name), whatever
    # options its runs spelled out explicitly
    comps = zerolm_components(r0.space_name, {} if space == r0.space_name else r0.space_options, results_dir)
    if comps is not None:
        if not set(ids) <= set(comps.index):
            notes.append("zerolm_alpha: stored components do not cover the pool; predictor skipped")
            comps = None
        else:
            comps = comps.reindex(ids)
    return SpaceData(space=space, ids=ids, scores=scores[keep], truth=truth, genes=genes, components=comps,
                     metric=info.metric, ceiling=info.ceiling(), notes=notes)


# --------------------------------------------------------------------------- splits and predictors
def make_splits(ids, k: int, n_splits: int, seed: int = 0) -> list[tuple[list, list]]:
    """``n_splits`` (labelled, held-out) pairs with ``k`` labelled; deterministic in (seed, k, split)."""
    ids = sorted(ids)
    if not 2 <= k < len(ids) - 1:
        raise PredictError(f"k={k} labelled needs 2 <= k <= {len(ids) - 2} for a pool of {len(ids)}")
    out = []
    for split in range(n_splits):
        rng = random.Random(f"predict:{seed}:{k}:{split}")
        train = sorted(rng.sample(ids, k))
        chosen = set(train)
        out.append((train, [i for i in ids if i not in chosen]))
    return out


def _rank_corr(fn, x, y) -> float:
    """``fn`` (scipy's spearmanr / kendalltau) of x and y; 0 where either is constant or too short."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    r = fn(x, y).statistic
    return float(r) if np.isfinite(r) else 0.0


def _rho(x, y) -> float:
    return _rank_corr(stats.spearmanr, x, y)


def _tau(x, y) -> float:
    return _rank_corr(stats.kendalltau, x, y)


def _rank_cols(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, axis=0)


def column_rhos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of every column of ``x`` with ``y`` (0 for a constant column), vectorised."""
    rx = _rank_cols(x) - (len(y) + 1) / 2.0
    ry = stats.rankdata(y) - (len(y) + 1) / 2.0
    num = ry @ rx
    den = np.sqrt((rx * rx).sum(axis=0) * (ry * ry).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return r


def _top(rhos: np.ndarray, m: int) -> list:
    """Columns with the largest |rho| (ties: lower column index, i.e. proxy name order)."""
    return sorted(range(len(rhos)), key=lambda j: (-abs(rhos[j]), j))[:m]


def _rank_target(y: np.ndarray) -> np.ndarray:
    return stats.rankdata(y) / len(y)


def ridge_loo(x: np.ndarray, y: np.ndarray, alphas=RIDGE_ALPHAS) -> tuple[np.ndarray, float]:
    """Ridge regression with intercept, alpha chosen by the exact leave-one-out error of the centred
    problem (what scikit-learn's RidgeCV does by default); returns (coefficients, intercept)."""
    xm, ym = x.mean(axis=0), y.mean()
    xc, yc = x - xm, y - ym
    u, sv, vt = np.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    best = None
    for a in alphas:
        f = sv ** 2 / (sv ** 2 + a)
        fitted = u @ (f * uty)
        h = (u ** 2) @ f + 1.0 / len(y)
        loo = (yc - fitted) / np.maximum(1.0 - h, 1e-12)
        err = float(np.mean(loo ** 2))
        if best is None or err < best[0] - 1e-15:
            best = (err, a)
    a = best[1]
    coef = vt.T @ ((sv / (sv ** 2 + a)) * uty)
    return coef, float(ym - xm @ coef)


def predict_params(d: SpaceData, tr, te, split: int = 0, column: str = BASELINE) -> np.ndarray:
    return d.R[te, d.proxies.index(column)]


def predict_params_nonembedding(d: SpaceData, tr, te, split: int = 0) -> np.ndarray:
    return predict_params(d, tr, te, split, "params_nonembedding")


def predict_best_single(d: SpaceData, tr, te, split: int = 0) -> np.ndarray:
    rhos = column_rhos(d.R[tr], d.y[tr])
    j = _top(rhos, 1)[0]
    return (1.0 if rhos[j] >= 0 else -1.0) * d.R[te, j]


def predict_rank_avg(d: SpaceData, tr, te, split: int = 0, m: int = TOP_M) -> np.ndarray:
    rhos = column_rhos(d.R[tr], d.y[tr])
    js = _top(rhos, m)
    return np.mean([(1.0 if rhos[j] >= 0 else -1.0) * d.R[te, j] for j in js], axis=0)


def predict_ridge(d: SpaceData, tr, te, split: int = 0, columns=None) -> np.ndarray:
    cols = slice(None) if columns is None else list(columns)
    coef, b = ridge_loo(d.R[tr][:, cols], _rank_target(d.y[tr]))
    return d.R[te][:, cols] @ coef + b


def _hgb(x_train, y, x_test, k: int, split: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingRegressor

    ok = ~np.all(np.isnan(x_train), axis=0)  # a column with no value among the labelled cannot be binned
    x_train, x_test = x_train[:, ok], x_test[:, ok]
    model = HistGradientBoostingRegressor(max_iter=HGB_ITER, learning_rate=0.1, min_samples_leaf=max(2, k // 10),
                                          early_stopping=False, random_state=split)
    return model.fit(x_train, y).predict(x_test)


def predict_hgb(d: SpaceData, tr, te, split: int = 0) -> np.ndarray:
    return _hgb(d.S[tr], _rank_target(d.y[tr]), d.S[te], len(tr), split)


def predict_hgb_genes(d: SpaceData, tr, te, split: int = 0) -> np.ndarray:
    x = np.hstack([d.S, d.G])
    return _hgb(x[tr], _rank_target(d.y[tr]), x[te], len(tr), split)


def predict_zerolm_alpha(d: SpaceData, tr, te, split: int = 0) -> np.ndarray:
    from zcbench.search.zerolm_alpha import combine, fit_alpha

    df = d.C.iloc[tr].assign(truth=d.y[tr])
    return combine(d.C.iloc[te], fit_alpha(df))


PREDICT_FUNCS = {"params": predict_params, "params_nonembedding": predict_params_nonembedding, "best_single": predict_best_single, "rank_avg_top3": predict_rank_avg,
                 "ridge_ranks": predict_ridge, "hgb": predict_hgb, "hgb_genes": predict_hgb_genes,
                 "zerolm_alpha": predict_zerolm_alpha}


def available_predictors(d: SpaceData, predictors=PREDICTORS) -> list[str]:
    out = []
    for p in predictors:
        if p == "hgb_genes" and (d.genes is None or d.genes.shape[1] == 0):
            continue
        if p == "zerolm_alpha" and d.components is None:
            continue
        if p in ("params", "params_nonembedding") and p not in d.proxies:
            continue
        out.append(p)
    return out


def evaluate_splits(d: SpaceData, ks=KS, n_splits: int = N_SPLITS, seed: int = 0, predictors=PREDICTORS) -> pd.DataFrame:
    """One row per (k, split, predictor): held-out rho, tau and whether the prediction was constant."""
    rows = []
    preds = available_predictors(d, predictors)
    for k in ks:
        if k > len(d.ids) - 2:
            d.notes.append(f"k={k}: pool of {len(d.ids)} too small; skipped")
            continue
        for split, (train, test) in enumerate(make_splits(d.ids, k, n_splits, seed)):
            tr, te = d.index(train), d.index(test)
            y = d.y[te]
            for name in preds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pred = np.asarray(PREDICT_FUNCS[name](d, tr, te, split), dtype=float)
                rows.append({"space": d.space, "k": k, "split": split, "predictor": name, "rho": _rho(pred, y),
                             "tau": _tau(pred, y), "constant": bool(np.ptp(pred) == 0), "n_test": len(test)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- statistics
def _boot_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return x[idx].mean(axis=1)


BASELINES = {"params": "params", "params_nonembedding": "nonemb"}


def summarize(splits: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per (space, k, predictor): mean/std/CI of held-out rho and tau, and paired tests vs the baselines.

    For each baseline b in ``BASELINES`` (column suffix ``params`` / ``nonemb``): ``d_rho_<b>`` (mean
    per-split difference), its Bonferroni-corrected bootstrap interval ``d_rho_<b>_lo/_hi``, the
    one-sided bootstrap p-value ``p_<b>`` and ``beats_<b>`` (interval above 0).
    """
    rows = []
    for (space, k), g in splits.groupby(["space", "k"], sort=True):
        wide = {s: g[g.predictor == s].set_index("split") for s in g.predictor.unique()}
        names = sorted(wide)
        for name, w in wide.items():
            rng = np.random.default_rng([seed, int(k), names.index(name)])
            row = {"space": space, "k": int(k), "predictor": name, "n_splits": len(w),
                   "n_test": int(w.n_test.iloc[0]), "n_constant": int(w.constant.sum())}
            for stat in ("rho", "tau"):
                x = w[stat].to_numpy()
                bm = _boot_means(x, n_boot, rng)
                row.update({stat: x.mean(), f"{stat}_std": x.std(ddof=1) if len(x) > 1 else math.nan,
                            f"{stat}_ci_lo": np.percentile(bm, 2.5), f"{stat}_ci_hi": np.percentile(bm, 97.5)})
            for base, tag in BASELINES.items():
                row.update({f"d_rho_{tag}": math.nan, f"d_rho_{tag}_lo": math.nan, f"d_rho_{tag}_hi": math.nan,
                            f"p_{tag}": math.nan, f"beats_{tag}": False})
                if base not in wide or name == base or name in BASELINES:
                    continue
                level = 0.05 / max(1, len([p for p in wide if p not in BASELINES]))
                diff = (w["rho"] - wide[base]["rho"].reindex(w.index)).to_numpy()
                bm = _boot_means(diff, n_boot, rng)
                lo, hi = np.percentile(bm, [100 * level / 2, 100 * (1 - level / 2)])
                row.update({f"d_rho_{tag}": diff.mean(), f"d_rho_{tag}_lo": lo, f"d_rho_{tag}_hi": hi,
                            f"p_{tag}": float((bm <= 0).mean()), f"beats_{tag}": bool(lo > 0)})
            rows.append(row)
    out = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(PREDICTORS)}
    out["_o"] = out.predictor.map(lambda p: order.get(p, len(order)))
    return out.sort_values(["space", "k", "_o"]).drop(columns="_o").reset_index(drop=True)


def smallest_k(summary: pd.DataFrame, against: str = "params") -> dict:
    """Per space: the smallest k at which some predictor significantly beats the baseline ``against``
    (``params`` or ``params_nonembedding``), and which predictors do; ``k`` is None when none does."""
    col = f"beats_{BASELINES[against]}"
    out = {}
    for space, g in summary.groupby("space"):
        hits = g[g[col].astype(bool)]
        if hits.empty:
            out[space] = {"k": None, "predictors": []}
        else:
            k = int(hits.k.min())
            out[space] = {"k": k, "predictors": sorted(hits[hits.k == k].predictor)}
    return out


def forward_selection(d: SpaceData, k: int = 50, n_splits: int = N_SPLITS, seed: int = 0,
                      max_steps: int | None = 10) -> pd.DataFrame:
    """Greedy forward selection of proxies for the ridge predictor at ``k`` (see module docstring)."""
    if k > len(d.ids) - 2:
        return pd.DataFrame(columns=["space", "step", "added", "rho", "rho_std", "selected"])
    splits = [(d.index(tr), d.index(te)) for tr, te in make_splits(d.ids, k, n_splits, seed)]
    chosen, rows, remaining = [], [], list(range(len(d.proxies)))
    steps = len(remaining) if max_steps is None else min(max_steps, len(remaining))
    for step in range(1, steps + 1):
        best = None
        for j in remaining:
            rhos = [_rho(predict_ridge(d, tr, te, columns=chosen + [j]), d.y[te]) for tr, te in splits]
            cand = (float(np.mean(rhos)), -j, j, float(np.std(rhos, ddof=1)))
            if best is None or cand[:2] > best[:2]:
                best = cand
        chosen.append(best[2])
        remaining.remove(best[2])
        rows.append({"space": d.space, "step": step, "added": d.proxies[best[2]], "rho": best[0],
                     "rho_std": best[3], "selected": ",".join(d.proxies[c] for c in chosen)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- outputs
def _safe_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("_")


def _ceiling_text(c: dict | None) -> str:
    if not c:
        return "no noise ceiling (the table has one measurement per architecture)"
    return f"noise ceiling ({c['a']} vs {c['b']}, n={c['n']}): rho {c['rho']:.3f}, tau {c['tau']:.3f}"


def markdown(d: SpaceData, summary: pd.DataFrame, forward: pd.DataFrame, seconds: float, command: str,
             cpu_seconds: float = math.nan) -> str:
    s = summary[summary.space == d.space]
    lines = [f"# Few-shot predictors on {d.space}", "",
             f"Command: `{command}` ({cpu_seconds:.1f} s CPU, {seconds:.1f} s wall). Pool: {len(d.ids)} architectures with ground truth "
             f"({d.metric}, oriented higher = better); {len(d.proxies)} proxies as features: "
             f"{', '.join(d.proxies)}. Held-out Spearman rho / Kendall tau over "
             f"{int(s.n_splits.max()) if len(s) else 0} random splits per k; brackets: 95% bootstrap CI of the "
             "split mean. * / † = significantly above params / params_nonembedding (paired bootstrap of the "
             "per-split Δρ over splits, Bonferroni over predictors). Definitions: docs/predict.md.", "", _ceiling_text(d.ceiling) + ".", ""]
    preds = list(dict.fromkeys(s.predictor))
    lines += ["| k | " + " | ".join(preds) + " |", "|---|" + "---|" * len(preds)]
    for k, g in s.groupby("k"):
        cells = []
        for p in preds:
            r = g[g.predictor == p]
            if r.empty:
                cells.append("—")
                continue
            r = r.iloc[0]
            txt = f"{r.rho:.3f} [{r.rho_ci_lo:.2f}, {r.rho_ci_hi:.2f}] / τ {r.tau:.3f}"
            marks = ("*" if r.beats_params else "") + ("†" if r.beats_nonemb else "")
            txt += f" {marks}" if marks else ""
            cells.append(txt)
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    for base in BASELINES:
        sk = smallest_k(s, base).get(d.space, {"k": None})
        lines += ["", (f"Smallest k at which a predictor significantly beats {base}: "
                       + (f"**{sk['k']}** ({', '.join(sk['predictors'])})." if sk["k"] else
                          "**none** at any k tested."))]
    if len(forward):
        lines += ["", f"## Complementarity (ridge on proxy ranks, k = 50, {N_SPLITS} splits)", "",
                  "Greedy forward selection by mean held-out rho (optimistic: selected on the held-out mean).", "",
                  "| step | added | held-out rho | selected |", "|---|---|---|---|"]
        for _, r in forward.iterrows():
            lines.append(f"| {r.step} | {r.added} | {r.rho:.3f} ± {r.rho_std:.3f} | {r.selected} |")
    if d.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in d.notes]
    return "\n".join(lines) + "\n"


def plot(d: SpaceData, summary: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary[summary.space == d.space]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, stat in zip(axes, ("rho", "tau")):
        for p in dict.fromkeys(s.predictor):
            g = s[s.predictor == p].sort_values("k")
            ls = "--" if p == BASELINE else "-"
            ax.plot(g.k, g[stat], ls, marker="o", ms=3, label=p)
            ax.fill_between(g.k, g[f"{stat}_ci_lo"], g[f"{stat}_ci_hi"], alpha=0.12)
        if d.ceiling:
            ax.axhline(d.ceiling[stat], color="k", lw=0.8, ls=":", label="noise ceiling")
        ax.set_xscale("log")
        ax.set_xticks(sorted(s.k.unique()))
        ax.set_xticklabels([str(k) for k in sorted(s.k.unique())])
        ax.set_xlabel("labelled architectures k")
        ax.set_ylabel(f"held-out {'Spearman ρ' if stat == 'rho' else 'Kendall τ'}")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{d.space}: few-shot predictors from stored proxy scores (95% CI over splits)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_markdown(out: Path) -> str:
    """``summary.md``: one line per space from every summary CSV under ``out`` (``ensemble_tables``)."""
    lines = ["# Few-shot predictors: smallest k that beats the parameter count", "",
             "Per space, the smallest number of labelled architectures k at which some predictor's held-out "
             "Spearman rho is significantly above the baseline's (paired bootstrap over splits, Bonferroni over "
             "predictors), against `params` (all parameters) and `params_nonembedding`. Built by "
             "`python -m zcbench predict`; per-space tables in `<space>.md`, definitions in docs/predict.md.", "",
             "| space | pool | smallest k vs params | smallest k vs params_nonembedding | best predictor at the "
             "largest k (rho) | params / params_nonembedding at the largest k |", "|---|---|---|---|---|---|"]
    for space, f in ensemble_tables_from(out).items():
        cells = []
        for base in BASELINES:
            sk = smallest_k(f, base)[space]
            cells.append(f"{sk['k']} ({', '.join(sk['predictors'])})" if sk["k"] else "none")
        g = f[f.k == f.k.max()]
        best = g.sort_values("rho", ascending=False).iloc[0]
        base_txt = " / ".join(f"{g[g.predictor == b].rho.iloc[0]:.3f}" if (g.predictor == b).any() else "—"
                              for b in BASELINES)
        pool = int(g.n_test.iloc[0] + g.k.iloc[0]) if "n_test" in g.columns else "?"
        lines.append(f"| {space} | {pool} | {cells[0]} | {cells[1]} | {best.predictor} ({best.rho:.3f}, "
                     f"k={int(best.k)}) | {base_txt} |")
    return "\n".join(lines) + "\n"


def run_predict(results_dir="results", space: str = "gpt2", ks=KS, n_splits: int = N_SPLITS, seed: int = 0,
                proxy_seed: int = 0, data_dir=None, out=None, write: bool = True, forward: bool = True,
                n_boot: int = 2000, command: str = "") -> dict:
    """Load, evaluate, summarise (and write) one space; returns the frames and the timing."""
    from zcbench.store import atomic_write_text

    t0, c0 = time.perf_counter(), time.process_time()
    d = load_space_data(results_dir, space, data_dir=data_dir, proxy_seed=proxy_seed)
    splits = evaluate_splits(d, ks, n_splits, seed)
    summary = summarize(splits, n_boot=n_boot, seed=seed)
    fwd = forward_selection(d, 50, n_splits, seed) if forward else pd.DataFrame()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    md = markdown(d, summary, fwd, seconds, command or f"python -m zcbench predict space={space}", cpu)
    res = {"data": d, "splits": splits, "summary": summary, "forward": fwd, "seconds": seconds, "cpu_seconds": cpu,
           "markdown": md}
    if write:
        out = Path(out) if out else Path(results_dir) / "predict"
        stem = _safe_label(space)
        summary = summary.assign(ceiling_rho=d.ceiling["rho"] if d.ceiling else math.nan,
                                 ceiling_tau=d.ceiling["tau"] if d.ceiling else math.nan)
        atomic_write_text(out / f"{stem}.csv", summary.to_csv(index=False))
        atomic_write_text(out / f"{stem}_splits.csv", splits.to_csv(index=False))
        if len(fwd):
            atomic_write_text(out / f"{stem}_forward.csv", fwd.to_csv(index=False))
        atomic_write_text(out / f"{stem}.md", md)
        plot(d, res["summary"], out / f"{stem}.png")
        atomic_write_text(out / "summary.md", summary_markdown(out))
    return res


def ensemble_tables_from(folder) -> dict[str, pd.DataFrame]:
    out = {}
    for p in sorted(Path(folder).glob("*.csv")):
        if p.stem.endswith(("_splits", "_forward")) or p.stem.startswith(("efficiency", "robustness")):
            continue
        df = pd.read_csv(p)
        if {"space", "k", "predictor", "rho", "beats_params"} <= set(df.columns) and len(df):
            for c in ("beats_params", "beats_nonemb"):
                if c in df.columns:
                    df[c] = df[c].astype(bool)
            out[str(df.space.iloc[0])] = df
    return out


def ensemble_tables(results_dir="results") -> dict[str, pd.DataFrame]:
    """For the leaderboard: ``{space label: summary DataFrame}`` read from ``<results_dir>/predict/*.csv``.

    One row per (k, predictor). Columns: ``k, predictor, n_splits, n_test, rho, rho_std, rho_ci_lo,
    rho_ci_hi, tau`` (same four), ``d_rho_params, d_rho_params_lo, d_rho_params_hi, p_params,
    beats_params`` and the same with ``nonemb`` (vs params_nonembedding), ``ceiling_rho, ceiling_tau``
    (NaN where the table has no noise ceiling). Empty dict when ``predict`` has not been run.
    """
    return ensemble_tables_from(Path(results_dir) / "predict")


# --------------------------------------------------------------------------- command line
OPTIONS = {"space": str, "table": str, "ks": str, "n_splits": int, "seed": int, "proxy_seed": int,
           "results_dir": str, "data_dir": str, "out": str, "write": bool, "forward": bool, "n_boot": int}


def parse_overrides(argv, options=OPTIONS) -> dict:
    """``key=value`` arguments typed by ``options``; one-line errors naming the valid keys."""
    out = {}
    for arg in argv:
        if "=" not in arg:
            raise PredictError(f"argument {arg!r} is not key=value; valid keys: {', '.join(options)}")
        key, value = arg.split("=", 1)
        key = key.lstrip("+")
        if key not in options:
            raise PredictError(f"unknown option {key!r}; valid keys: {', '.join(options)}")
        typ = options[key]
        try:
            if typ is bool:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1", "yes")
            elif typ is int:
                out[key] = int(value)
            else:
                out[key] = value
        except ValueError:
            raise PredictError(f"{key}={value!r}: expected {'true/false' if typ is bool else typ.__name__}") from None
    return out


def _ks(value: str) -> tuple:
    try:
        ks = tuple(int(x) for x in value.strip("[]()").split(",") if x.strip())
    except ValueError:
        raise PredictError(f"ks={value!r}: expected a comma-separated list of integers, e.g. ks=[5,10,20]") from None
    if not ks or min(ks) < 2:
        raise PredictError(f"ks={value!r}: every k must be >= 2")
    return ks


def main_predict(argv=None) -> int:
    """``python -m zcbench predict space=<s> [table=<t>] [ks=[5,10]] [n_splits=20] ...``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(main_predict.__doc__ + "\nkeys: " + ", ".join(OPTIONS) + "\nDocumentation: docs/predict.md")
        return 0
    try:
        o = parse_overrides(argv)
        results_dir = o.get("results_dir", "results")
        if o.get("n_splits", N_SPLITS) < 2:
            raise PredictError("n_splits must be >= 2")
        labels = space_labels(results_dir) if Path(results_dir, "scores").is_dir() else []
        if "space" in o:
            space = o["space"] + (f"[table={o['table']}]" if o.get("table") else "")
            spaces = [space]
            if space not in labels:
                raise PredictError(f"unknown space {space!r}; spaces with stored scores: {', '.join(labels) or 'none'}")
        else:
            spaces = labels
        ks = _ks(o["ks"]) if "ks" in o else KS
        done = 0
        for space in spaces:
            try:
                res = run_predict(results_dir, space, ks=ks, n_splits=o.get("n_splits", N_SPLITS),
                                  seed=o.get("seed", 0), proxy_seed=o.get("proxy_seed", 0),
                                  data_dir=o.get("data_dir"), out=o.get("out"), write=o.get("write", True),
                                  forward=o.get("forward", True), n_boot=o.get("n_boot", 2000),
                                  command="python -m zcbench predict " + " ".join(argv))
            except PredictError as exc:
                if len(spaces) == 1:
                    raise
                print(f"predict: {space}: skipped: {exc}", file=sys.stderr)
                continue
            print(res["markdown"])
            done += 1
        if not done:
            raise PredictError("no space with stored scores and ground truth")
        return 0
    except PredictError as exc:
        print(f"zcbench: error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- leaderboard sections
def html_table(head: list, rows: list, table_id: str = "") -> str:
    import html as _h

    tid = f' id="{_h.escape(table_id)}"' if table_id else ""
    th = "".join(f"<th>{_h.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="table-wrap"><table{tid}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def ensemble_html(space: str, summary: pd.DataFrame, forward: pd.DataFrame | None = None,
                  figure: Path | None = None) -> str:
    """The "ensembles" block of a space page: held-out rho [CI] per (k, predictor), smallest k, picks."""
    import base64
    import html as _h

    preds = [p for p in PREDICTORS if p in set(summary.predictor)]
    rows = []
    for k, g in summary.groupby("k"):
        cells = [str(int(k))]
        for p in preds:
            r = g[g.predictor == p]
            if r.empty:
                cells.append("—")
                continue
            r = r.iloc[0]
            marks = ("*" if bool(r.get("beats_params", False)) else "") + (
                "†" if bool(r.get("beats_nonemb", False)) else "")
            cells.append(f"{r.rho:.3f} <span class=\"muted\">[{r.rho_ci_lo:.2f}, {r.rho_ci_hi:.2f}]</span>"
                         + (f" <b>{marks}</b>" if marks else ""))
        rows.append(cells)
    ceil = ""
    if "ceiling_rho" in summary.columns and np.isfinite(summary.ceiling_rho.iloc[0]):
        ceil = f" Noise ceiling of the table: ρ = {summary.ceiling_rho.iloc[0]:.3f}."
    lines = [f'<p class="muted">Held-out Spearman ρ (mean over {int(summary.n_splits.max())} random splits, 95% '
             "bootstrap CI) of predictors fitted on k labelled architectures from the stored proxy scores; "
             "* / † = significantly above params / params_nonembedding (paired bootstrap over splits, "
             f"Bonferroni). Built by <code>python -m zcbench predict</code>; see docs/predict.md.{ceil}</p>",
             html_table(["k"] + preds, rows, f"ensembles-{_safe_label(space)}")]
    items = []
    for base in BASELINES:
        sk = smallest_k(summary, base)[space]
        items.append(f"<li>smallest k that significantly beats <code>{base}</code>: "
                     + (f"<b>{sk['k']}</b> ({_h.escape(', '.join(sk['predictors']))})" if sk["k"] else "<b>none</b>")
                     + "</li>")
    if forward is not None and len(forward):
        picks = ", ".join(f"{_h.escape(str(r.added))} ({r.rho:.3f})" for _, r in forward.head(5).iterrows())
        items.append(f"<li>forward selection (ridge, k = 50): {picks}</li>")
    lines.append("<ul>" + "".join(items) + "</ul>")
    if figure is not None and figure.exists():
        b64 = base64.b64encode(figure.read_bytes()).decode()
        lines.append(f'<figure><img src="data:image/png;base64,{b64}" alt="few-shot predictors on {_h.escape(space)}" '
                     'style="max-width:100%"><figcaption>ρ and τ vs k (95% CI); dotted: noise ceiling'
                     "</figcaption></figure>")
    return "\n".join(lines)


def site_sections(data) -> list:
    """Leaderboard hook (``zcbench.leaderboard.SECTION_PROVIDERS``): an "Ensembles" section on each
    space page with ``results/predict`` output, and an index section with the smallest k per space."""
    from zcbench.leaderboard import Section

    results_dir = Path(data.provenance.get("results_dir", "results"))
    folder = results_dir / "predict"
    tables = ensemble_tables_from(folder)
    out, rows = [], []
    for space, summary in tables.items():
        if space not in data.spaces:
            continue
        fwd_path = folder / f"{_safe_label(space)}_forward.csv"
        fwd = pd.read_csv(fwd_path) if fwd_path.exists() else None
        out.append(Section(page=f"space:{space}", id="ensembles", title="Ensembles: few-shot predictors",
                           html=ensemble_html(space, summary, fwd, folder / f"{_safe_label(space)}.png"), order=45))
        cells = [f"<code>{space}</code>"]
        for base in BASELINES:
            sk = smallest_k(summary, base)[space]
            cells.append(str(sk["k"]) if sk["k"] else "none")
        g = summary[summary.k == summary.k.max()].sort_values("rho", ascending=False).iloc[0]
        cells.append(f"{g.predictor} ({g.rho:.3f}, k = {int(g.k)})")
        rows.append(cells)
    if rows:
        out.append(Section(page="index", id="ensembles", title="Ensembles: do the proxies together beat #params?",
                           html='<p class="muted">Smallest number of labelled architectures k at which some '
                                "few-shot predictor built from the stored proxy scores ranks the held-out rest "
                                "significantly better than the parameter count (docs/predict.md).</p>"
                                + html_table(["space", "smallest k vs params", "smallest k vs params_nonembedding",
                                               "best at the largest k"], rows, "ensembles-summary"), order=45))
    return out
