"""The report table: one row per (space, proxy), recomputed from per-architecture scores.

See :mod:`zcbench.report` for the columns. Statistics come from :mod:`zcbench.metrics`.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import zcbench
from zcbench import metrics
from zcbench.errors import ReportError
from zcbench.provenance import source_commit
from zcbench.report.cache import RowCache
from zcbench.report.load import Run, SpaceInfo, load_runs, load_search, load_space, select_configs

DEFAULT_BASELINE = "params"
FRACTIONS = (0.1, 0.2, 0.5)


def run_scores(run: Run) -> pd.Series:
    """arch ID -> score of one run (NaN/inf kept as floats)."""
    return pd.Series({k: r["score"] for k, r in run.records.items()}, dtype=float)


@dataclass
class ReportData:
    table: pd.DataFrame  # THE table: one row per (space, proxy)
    per_seed: pd.DataFrame  # one row per (space, proxy, seed)
    scores: pd.DataFrame  # long per-arch scores: space, proxy, seed, arch_id, score, truth
    spaces: dict  # label -> SpaceInfo
    groups: dict  # (space, proxy) -> [Run]
    search: pd.DataFrame
    baseline: str
    notes: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    cache_stats: dict = field(default_factory=dict)  # report row cache: {"hits": h, "misses": m}
    use_cache: bool = True  # build(cache=...): also the figure and like-for-like caches


def build(results_dir="results", *, spaces=None, proxies=None, baseline: str = DEFAULT_BASELINE,
          target: str | None = None, data_dir=None, n_resamples: int = 1000, seed: int = 0,
          all_configs: bool = False, cache: bool = True) -> ReportData:
    """Read ``results_dir`` and compute the report table (see the module docstring).

    Rows whose inputs are byte-identical to an earlier build come from the content-keyed
    cache under ``<results_dir>/cache/report/`` (:mod:`zcbench.report.cache`; ``cache=False``
    recomputes everything)."""
    results_dir = Path(results_dir)
    row_cache = RowCache(results_dir, enabled=cache)
    if not (results_dir / "scores").is_dir():
        raise ReportError(f"no scores under {results_dir}/scores: run `python -m zcbench run ...` first")
    want = None if proxies is None else set(proxies) | {baseline}
    runs = load_runs(results_dir, spaces, want)
    if not runs:
        filt = (f" for space(s) {', '.join(spaces)}" if spaces else "") + (
            f" and proxy(s) {', '.join(proxies)}" if proxies else "")
        raise ReportError(f"no score files under {results_dir}/scores{filt}")
    groups, notes = select_configs(runs, all_configs)
    space_infos: dict[str, SpaceInfo] = {}
    for r in runs:
        if r.space not in space_infos:
            space_infos[r.space] = load_space(r.space, r.space_name, r.space_options, target, data_dir)
            if space_infos[r.space].error:
                notes.append(f"{r.space}: {space_infos[r.space].error}; correlations left empty")

    per_seed_rows, score_rows, rows = [], [], []
    excluded: dict = {}
    for (space, plabel), rs in groups.items():
        info = space_infos[space]
        truth = info.truth
        oriented = info.oriented
        series = {r.seed: run_scores(r) for r in rs}
        for r in rs:
            s = series[r.seed]
            recs = r.records
            ps = {"space": space, "proxy": plabel, "seed": r.seed, "run_key": r.run_key, "n_records": len(recs)}
            status = pd.Series([rec.get("status", "") for rec in recs.values()], dtype=object)
            for st, col in (("nan", "n_nan"), ("inf", "n_inf"), ("n/a", "n_na"), ("error", "n_error")):
                ps[col] = int((status == st).sum())
            ps["sec_median"] = float(pd.Series([rec.get("seconds", math.nan) for rec in recs.values()],
                                               dtype=float).median()) if recs else math.nan
            if oriented is not None:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    c = metrics.correlate(s, oriented, fractions=FRACTIONS, n_resamples=0, label=f"{space}/{plabel}")
                if any("excluded" in str(w.message) for w in caught):
                    excluded.setdefault((space, plabel), []).append((r.seed, c.n_excluded, c.n + c.n_excluded))
                ps.update(n=c.n, n_excluded=c.n_excluded, tau=c.kendall_tau, rho=c.spearman_rho, constant=c.constant,
                          **{k.replace("%", ""): v for k, v in c.top_overlap.items()})
            per_seed_rows.append(ps)
            t = truth.reindex(s.index) if truth is not None else pd.Series(math.nan, index=s.index)
            score_rows.append(pd.DataFrame({"space": space, "proxy": plabel, "seed": r.seed, "arch_id": s.index,
                                            "score": s.to_numpy(), "truth": t.to_numpy(dtype=float)}))
        key = _row_key(row_cache, space, plabel, rs, info, groups, baseline, n_resamples, seed)
        row = row_cache.get(key)
        if row is None:
            row = _group_row(space, plabel, rs, series, info, groups, baseline, n_resamples, seed)
            row_cache.put(key, row)
        rows.append(row)

    per_seed = pd.DataFrame(per_seed_rows)
    for col in ("n", "n_excluded", "tau", "rho", "constant", "top10", "top20", "top50"):
        if col not in per_seed.columns:
            per_seed[col] = math.nan
    table = pd.DataFrame(rows)
    # mean ± std over seeds, via metrics.mean_std_over_seeds
    for value in ("rho", "tau", "top10", "top20", "top50"):
        ok = per_seed.dropna(subset=[value])
        if ok.empty:
            table[value] = math.nan
            if value in ("rho", "tau"):
                table[f"{value}_std"] = math.nan
            continue
        ms = metrics.mean_std_over_seeds(ok, ["space", "proxy"], value)
        ms = ms.rename(columns={"mean": value, "std": f"{value}_std", "n_seeds": f"n_seeds_{value}"})
        keep = [value, f"{value}_std"] if value in ("rho", "tau") else [value]
        table = table.merge(ms[["space", "proxy"] + keep], on=["space", "proxy"], how="left")
    n_used = per_seed.groupby(["space", "proxy"])["n"].median().rename("n_archs").reset_index()
    table = table.merge(n_used, on=["space", "proxy"], how="left")
    table = _rank(table)
    table = table[[c for c in TABLE_COLUMNS if c in table.columns]]
    scores = pd.concat(score_rows, ignore_index=True) if score_rows else pd.DataFrame()
    for (space, plabel), items in excluded.items():
        seeds = ",".join(str(sd) for sd, _, _ in items)
        counts = sorted({f"{k} of {n}" for _, k, n in items})
        notes.append(f"{space}/{plabel}: NaN/inf scores excluded from the correlation: {' / '.join(counts)} "
                     f"architectures (seeds {seeds})")
    for _, x in table[table["constant"].astype(bool)].iterrows():
        notes.append(f"{x['space']}/{x['proxy']}: constant scores (every architecture scored the same): no ranking")
    prov = {"zcbench_version": zcbench.__version__, "zcbench_commit": source_commit(),
            "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "results_dir": str(results_dir), "baseline": baseline, "bootstrap_resamples": n_resamples,
            "bootstrap_seed": seed, "confidence": 0.95}
    table.attrs.update(baseline=baseline)
    return ReportData(table=table, per_seed=per_seed, scores=scores, spaces=space_infos, groups=groups,
                      search=load_search(results_dir, spaces), baseline=baseline, notes=notes, provenance=prov,
                      cache_stats={"hits": row_cache.hits, "misses": row_cache.misses}, use_cache=cache)


TABLE_COLUMNS = [
    "space", "proxy", "rank", "rho", "rho_std", "rho_ci_lo", "rho_ci_hi", "tau", "tau_std", "tau_ci_lo", "tau_ci_hi",
    "top10", "top20", "top50", "d_rho", "d_rho_ci_lo", "d_rho_ci_hi", "p_vs_base", "n_paired", "n_archs", "n_common",
    "ci_basis", "n_seeds", "seeds", "sec_per_arch", "sec_total", "pass_sec_per_arch", "device", "n_records", "n_nan",
    "n_inf", "n_na", "n_error", "constant", "is_baseline", "metric", "higher_is_better", "proxy_name", "proxy_version",
    "config", "run_keys", "data_config", "zcbench_versions", "zcbench_commits", "citation",
]


def _row_key(row_cache: RowCache, space, plabel, rs, info: SpaceInfo, groups, baseline, n_resamples, seed) -> str:
    """Content key of a row: its score files' bytes and metadata, the baseline's (paired test),
    the oriented ground truth, and the options (see :mod:`zcbench.report.cache`)."""
    def files(runs):
        return [[r.seed, row_cache.file_hash(r.path), json.dumps(r.meta, sort_keys=True, default=str)] for r in runs]

    oriented = info.oriented
    base = groups.get((space, baseline)) if rs[0].proxy != baseline else None
    return row_cache.key({
        "space": space, "proxy": plabel, "runs": files(rs), "baseline": baseline,
        "baseline_runs": files(base) if base else None, "n_resamples": int(n_resamples), "seed": int(seed),
        "metric": info.metric, "higher_is_better": bool(info.higher_is_better),
        "truth": None if oriented is None else [[str(k), float(v)] for k, v in sorted(oriented.items())],
    })


def _group_row(space, plabel, rs, series, info: SpaceInfo, groups, baseline, n_resamples, seed) -> dict:
    proxy_name = rs[0].proxy
    recs = [rec for r in rs for rec in r.records.values()]
    status = pd.Series([rec.get("status", "") for rec in recs], dtype=object)
    secs = pd.Series([rec.get("seconds", math.nan) for rec in recs], dtype=float)
    pass_secs = pd.Series([rec.get("pass_seconds", math.nan) for rec in recs], dtype=float)
    row = {
        "space": space, "proxy": plabel, "proxy_name": proxy_name, "n_seeds": len(rs),
        "seeds": ",".join(str(r.seed) for r in rs), "n_records": len(recs),
        "n_nan": int((status == "nan").sum()), "n_inf": int((status == "inf").sum()),
        "n_na": int((status == "n/a").sum()), "n_error": int((status == "error").sum()),
        "sec_per_arch": float(secs.median()) if len(secs) else math.nan,
        "sec_total": float(secs.sum()) if len(secs) else math.nan,
        "pass_sec_per_arch": float(pass_secs.median()) if len(pass_secs) else math.nan,
        "device": rs[0].data.get("device", "none (no model)") if isinstance(rs[0].data, dict) else "",
        "is_baseline": proxy_name == baseline, "metric": info.metric, "higher_is_better": info.higher_is_better,
        "proxy_version": rs[0].version, "config": rs[0].config, "run_keys": ",".join(r.run_key for r in rs),
        "data_config": json.dumps({k: v for k, v in rs[0].data.items() if k != "batch"} |
                                  ({"batch": {k: v for k, v in rs[0].data["batch"].items() if k != "seed"}}
                                   if isinstance(rs[0].data.get("batch"), dict) else {}), sort_keys=True),
        "zcbench_versions": ",".join(sorted({str(r.meta.get("zcbench_version", "?")) for r in rs})),
        "zcbench_commits": ",".join(sorted({str(r.meta.get("zcbench_commit", "not recorded")) for r in rs})),
        "citation": rs[0].meta.get("citation", ""),
        "constant": False,
    }
    oriented = info.oriented
    nan_ci = {"rho_ci_lo": math.nan, "rho_ci_hi": math.nan, "tau_ci_lo": math.nan, "tau_ci_hi": math.nan}
    row.update(nan_ci, n_common=0, ci_basis="")
    row.update(d_rho=math.nan, d_rho_ci_lo=math.nan, d_rho_ci_hi=math.nan, p_vs_base=math.nan, n_paired=0)
    if oriented is None:
        row["ci_basis"] = "no ground truth"
        return row
    seeds = [r.seed for r in rs]
    strata = metrics.make_strata([series[sd] for sd in seeds], oriented)
    row["constant"] = bool(all(len(st.ids) >= 2 and np.all(st.scores == st.scores[0]) for st in strata))
    row["n_common"] = len(set.intersection(*(set(st.ids) for st in strata)))
    if row["constant"]:
        row["ci_basis"] = "constant scores"
    elif min(len(st.ids) for st in strata) < 4:
        row["ci_basis"] = "fewer than 4 architectures in some seed"
    else:
        for kind in ("rho", "tau"):
            _, res, basis = metrics.seed_mean_bootstrap(strata, kind, n_resamples, seed)
            row[f"{kind}_ci_lo"], row[f"{kind}_ci_hi"] = metrics.bootstrap_interval(res)
            row["ci_basis"] = basis
    # paired bootstrap against the baseline
    base_key = (space, baseline)
    if proxy_name != baseline and base_key in groups and not row["constant"]:
        base_series = {r.seed: run_scores(r) for r in groups[base_key]}
        first = next(iter(base_series.values()))
        # Parameter counts do not depend on the seed: a seed the baseline lacks uses any baseline seed.
        bases = [base_series.get(sd, first) for sd in seeds]
        row.update(metrics.paired_test(metrics.make_strata([series[sd] for sd in seeds], oriented, bases), n_resamples, seed))
    return row


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["_r"] = table["rho"].fillna(-np.inf)
    table = table.sort_values(["space", "_r", "proxy"], ascending=[True, False, True], kind="stable")
    table["rank"] = table.groupby("space")["rho"].rank(ascending=False, method="min")
    table = table.drop(columns="_r").reset_index(drop=True)
    return table
