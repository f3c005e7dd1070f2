"""Figures of the report (PNG/PDF via matplotlib; seaborn for the heatmap)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zcbench import metrics
from zcbench.report.cache import FileCache, frame_digest
from zcbench.report.render import fmt_float
from zcbench.report.tables import ReportData
from zcbench.store import safe_name

FIGURE_FORMATS = ("png", "pdf")


# --------------------------------------------------------------------------- figures
def _figure(w=7.0, h=4.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _save(fig, path_stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        p = path_stem.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=150 if fmt == "png" else None)
        out.append(p)
    return out


def _n_text(rows: pd.DataFrame) -> str:
    n = rows["n_archs"].dropna()
    seeds = rows["n_seeds"].max() if len(rows) else 0
    return f"n={int(n.max()) if len(n) else 0} archs, {int(seeds)} seed(s)"


def plot_bar(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """LPZero Fig. 1 style: rho per proxy (sorted), 95% CI whiskers, the baseline's rho as a line."""
    rows = data.table[(data.table["space"] == space) & data.table["rho"].notna()].sort_values("rho")
    if rows.empty:
        return []
    fig = _figure(7.5, max(2.5, 0.32 * len(rows) + 1.3))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    rho = rows["rho"].to_numpy(dtype=float)
    lo = rows["rho_ci_lo"].to_numpy(dtype=float)
    hi = rows["rho_ci_hi"].to_numpy(dtype=float)
    # whiskers from the CI; clipped at 0 should a CI (stratified, few archs) not contain the mean
    err = np.vstack([np.where(np.isfinite(lo), np.maximum(rho - lo, 0), 0),
                     np.where(np.isfinite(hi), np.maximum(hi - rho, 0), 0)])
    colors = ["#d9822b" if b else "#4c72b0" for b in rows["is_baseline"]]
    ax.barh(y, rho, xerr=err, color=colors, capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_yticks(y, rows["proxy"])
    base = rows[rows["is_baseline"]]
    if len(base):
        b = float(base["rho"].iloc[0])
        ax.axvline(b, color="#d9822b", ls="--", lw=1)
        ax.text(b, 1.005, f"{data.baseline} {b:.3f}", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                color="#a85f12", fontsize=8)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlim(min(-0.05, np.nanmin(np.where(np.isfinite(lo), lo, rho)) - 0.05), 1.0)
    info = data.spaces.get(space)
    ax.set_xlabel(f"Spearman ρ with {info.metric_label if info else 'ground truth'} (mean over seeds, 95% CI)")
    ax.set_title(f"{space}: proxy ranking quality ({_n_text(rows)})", pad=16)
    return _save(fig, stem, formats)


def _proxy_scores(data: ReportData, space: str, proxy: str) -> pd.DataFrame:
    s = data.scores
    d = s[(s["space"] == space) & (s["proxy"] == proxy)]
    return d


def plot_scatter(data: ReportData, space: str, proxy: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Proxy score vs ground truth (left) and rank vs rank (right), first seed."""
    info = data.spaces.get(space)
    d = _proxy_scores(data, space, proxy)
    if d.empty or info is None or info.truth is None:
        return []
    seed = int(d["seed"].min())
    d = d[(d["seed"] == seed) & np.isfinite(d["score"]) & np.isfinite(d["truth"])]
    if len(d) < 2:
        return []
    row = data.table[(data.table["space"] == space) & (data.table["proxy"] == proxy)].iloc[0]
    fig = _figure(9.5, 4.0)
    ax1, ax2 = fig.subplots(1, 2)
    x, t = d["score"].to_numpy(float), d["truth"].to_numpy(float)
    ax1.scatter(x, t, s=10, alpha=0.7, color="#4c72b0", edgecolors="none")
    if np.all(x > 0) and x.max() / x.min() > 100:
        ax1.set_xscale("log")
    if np.all(t > 0) and t.max() / t.min() > 20:
        ax1.set_yscale("log")
    unit = "parameters (count)" if row["proxy_name"].startswith("params") else "score (arbitrary units)"
    ax1.set_xlabel(f"{proxy} {unit}")
    ax1.set_ylabel(info.metric_label)
    ax1.set_title("score vs ground truth", fontsize=10)
    rs = pd.Series(x).rank().to_numpy()
    rt = pd.Series(metrics.orient(pd.Series(t), info.higher_is_better)).rank().to_numpy()
    ax2.scatter(rs, rt, s=10, alpha=0.7, color="#55a868", edgecolors="none")
    ax2.plot([1, len(d)], [1, len(d)], color="grey", lw=0.8, ls="--")
    ax2.set_xlabel(f"rank by {proxy} (1 = lowest score)")
    ax2.set_ylabel("rank by ground truth (1 = worst)")
    ax2.set_title("rank vs rank", fontsize=10)
    fig.suptitle(f"{space} · {proxy}: ρ={fmt_float(row['rho'])}, τ={fmt_float(row['tau'])} (n={len(d)}, seed {seed})", fontsize=11)
    return _save(fig, stem, formats)


def rank_matrix(data: ReportData, space: str) -> pd.DataFrame:
    """Architectures x proxies: each proxy's score rank averaged over its seeds, plus the oriented truth."""
    s = data.scores[data.scores["space"] == space].copy()
    if s.empty:
        return pd.DataFrame()
    s = s[np.isfinite(s["score"])]
    s["r"] = s.groupby(["proxy", "seed"])["score"].rank(pct=True)
    m = s.pivot_table(index="arch_id", columns="proxy", values="r", aggfunc="mean")
    info = data.spaces.get(space)
    if info is not None and info.oriented is not None:
        m["ground truth"] = info.oriented.reindex(m.index)
    order = [p for p in data.table[data.table["space"] == space]["proxy"] if p in m.columns]
    return m[order + (["ground truth"] if "ground truth" in m.columns else [])]


def plot_heatmap(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Spearman rank correlation between proxies (and the ground truth) on the same architectures."""
    import seaborn as sns

    m = rank_matrix(data, space)
    if m.shape[1] < 2:
        return []
    m = m.loc[:, m.nunique(dropna=True) > 1]  # constant proxies have no ranking to compare
    m = m.dropna()
    if len(m) < 3 or m.shape[1] < 2:
        return []
    corr = m.corr(method="spearman")
    k = corr.shape[0]
    fig = _figure(max(4.5, 0.45 * k + 2.5), max(3.8, 0.4 * k + 1.8))
    ax = fig.add_subplot()
    sns.heatmap(corr, ax=ax, vmin=-1, vmax=1, cmap="RdBu_r", annot=k <= 16, fmt=".2f", annot_kws={"fontsize": 7},
                square=True, cbar_kws={"label": "Spearman ρ between rankings"})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(f"{space}: agreement between proxies (n={len(m)} archs scored by all)")
    return _save(fig, stem, formats)


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Boolean mask of points not dominated by a cheaper-or-equal, better-or-equal point."""
    order = np.lexsort((-quality, cost))
    best = -np.inf
    mask = np.zeros(len(cost), dtype=bool)
    for i in order:
        if quality[i] > best:
            mask[i] = True
            best = quality[i]
    return mask


def plot_pareto(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    rows = data.table[(data.table["space"] == space) & data.table["rho"].notna() & data.table["sec_per_arch"].notna()]
    rows = rows[rows["sec_per_arch"] > 0]
    if rows.empty:
        return []
    cost, rho = rows["sec_per_arch"].to_numpy(float), rows["rho"].to_numpy(float)
    front = pareto_front(cost, rho)
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    ax.scatter(cost[~front], rho[~front], color="#8c8c8c", s=22, label="dominated")
    ax.scatter(cost[front], rho[front], color="#c44e52", s=30, label="Pareto front")
    o = np.argsort(cost[front])
    ax.step(cost[front][o], rho[front][o], where="post", color="#c44e52", lw=1)
    for c, r, name in zip(cost, rho, rows["proxy"]):
        ax.annotate(name, (c, r), fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    devs = sorted({str(d) for d in rows["device"] if not str(d).startswith("none")})
    dev = f"; device: {', '.join(devs)}" if devs else ""
    ax.set_xlabel(f"cost: median seconds per architecture (log scale{dev})")
    ax.set_ylabel("Spearman ρ (mean over seeds)")
    ax.set_title(f"{space}: cost vs ranking quality ({_n_text(rows)})")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, stem, formats)


def plot_search(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Best ground truth found vs architectures evaluated, mean over seeds with min-max band."""
    s = data.search[data.search["space"] == space] if len(data.search) else data.search
    if s is None or s.empty:
        return []
    info = data.spaces.get(space)
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    n_seeds = 0
    for method, g in s.groupby("method"):
        curves = g.pivot_table(index="n_evaluated", columns="seed", values="best_truth", aggfunc="last").sort_index()
        curves = curves.ffill()
        n_seeds = max(n_seeds, curves.shape[1])
        x = curves.index.to_numpy()
        ax.plot(x, curves.mean(axis=1), label=f"{method} ({curves.shape[1]} seeds)", lw=1.4, drawstyle="steps-post")
        ax.fill_between(x, curves.min(axis=1), curves.max(axis=1), alpha=0.2, step="post")
    ax.set_xlabel("architectures evaluated (count)")
    metric = str(s["metric"].dropna().iloc[0]) if "metric" in s.columns and s["metric"].notna().any() else None
    if info is not None and info.metric and metric in (None, info.metric):
        ax.set_ylabel(f"best {info.metric_label} found")
    else:
        ax.set_ylabel(f"best {metric or 'ground truth'} found")
    ax.set_title(f"{space}: search curves (mean over seeds, band = min–max; up to {n_seeds} seeds)")
    ax.legend(fontsize=8)
    return _save(fig, stem, formats)


def figure_cache(data: ReportData, code=()) -> FileCache:
    """The content-keyed figure cache of ``data``'s results folder (:class:`FileCache`)."""
    here = Path(__file__).resolve().parent
    return FileCache(data.provenance.get("results_dir", "results"), "figures",
                     code=[here / "figures.py", here / "render.py", *code], enabled=data.use_cache)


def space_digest(data: ReportData, space: str, scores: pd.DataFrame | None = None) -> dict:
    """What a space's figures are drawn from: its table rows, scores, search curves, ground truth."""
    info = data.spaces.get(space)
    s = data.scores[data.scores["space"] == space] if scores is None else scores
    srch = data.search[data.search["space"] == space] if len(data.search) else data.search
    return {"space": space, "baseline": data.baseline,
            "table": frame_digest(data.table[data.table["space"] == space]), "scores": frame_digest(s),
            "search": frame_digest(srch) if srch is not None else "",
            "info": [info.metric_label, bool(info.higher_is_better),
                     frame_digest(info.truth.to_frame()) if info.truth is not None else ""] if info else None}


def write_figures(data: ReportData, out: Path, formats=FIGURE_FORMATS, per_proxy: bool = True) -> list[Path]:
    """All figures into ``out/<space>/``; per-proxy scatter/rank plots into ``out/<space>/proxies/``.

    A figure whose inputs (:func:`space_digest`, or the proxy's rows for a scatter plot) and
    drawing code are unchanged since an earlier build is copied from the figure cache
    (``<results_dir>/cache/figures``) instead of being redrawn."""
    cache = figure_cache(data)
    fmts = list(formats)
    by_space = dict(tuple(data.scores.groupby("space", sort=False))) if len(data.scores) else {}
    written = []
    for sp in dict.fromkeys(data.table["space"]):
        d = out / safe_name(sp)
        sp_scores = by_space.get(sp, data.scores.iloc[0:0])
        base = space_digest(data, sp, sp_scores)
        for stem, fn in (("bar_rho", plot_bar), ("heatmap", plot_heatmap), ("pareto", plot_pareto),
                         ("search", plot_search)):
            written += cache.draw(cache.key(fn.__name__, stem, fmts, base), d,
                                  lambda fn=fn, stem=stem: fn(data, sp, d / stem, formats))
        if per_proxy:
            by_proxy = dict(tuple(sp_scores.groupby("proxy", sort=False))) if len(sp_scores) else {}
            for p in data.table[data.table["space"] == sp]["proxy"]:
                info = base["info"]
                key = cache.key("plot_scatter", p, fmts, info, frame_digest(by_proxy.get(p, sp_scores.iloc[0:0])),
                                frame_digest(data.table[(data.table["space"] == sp) & (data.table["proxy"] == p)]))
                written += cache.draw(key, d, lambda p=p: plot_scatter(data, sp, p, d / "proxies" / safe_name(p),
                                                                       formats))
    data.cache_stats["figures"] = {"hits": cache.hits, "misses": cache.misses}
    return written
