"""Ours vs the papers: the published numbers (``zcbench/published.yaml``) beside the report's,
computed like for like where a source says how it computed its own (statistic, records)."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from zcbench import metrics
from zcbench.errors import ReportError
from zcbench.report.cache import RowCache
from zcbench.report.tables import ReportData

PUBLISHED = Path(__file__).resolve().parent.parent / "published.yaml"


def load_published(path: Path = PUBLISHED) -> pd.DataFrame:
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    rows = []
    for src in doc["sources"]:
        for e in src["entries"]:
            cands = e["proxy"] if isinstance(e["proxy"], list) else [e["proxy"]]
            stat = src.get("statistic", "spearman")
            if stat not in metrics.STATISTICS:
                raise ReportError(f"{path}: source {src['id']}: statistic {stat!r}; valid: {', '.join(metrics.STATISTICS)}")
            rows.append({"source": src["id"], "paper": src["paper"], "table": src["table"], "space": src["space"],
                         "statistic": stat, "per_record": bool(src.get("per_record", False)),
                         "n_paper": src.get("n_archs"), "paper_name": e["name"], "candidates": cands,
                         "tau_paper": e.get("tau"), "rho_paper": e.get("rho"), "negate": bool(e.get("negate", False)),
                         "same_table": bool(src.get("same_table", True)), "table_note": src.get("table_note", "")})
    return pd.DataFrame(rows)


def _like_for_like_row(data: ReportData, space: str, proxy: str, statistic: str, per_record: bool) -> dict | None:
    """Our numbers computed the way a source computed its published ones (statistic, records)."""
    info = data.spaces.get(space)
    if info is None or info.truth is None or data.scores.empty:
        return None
    s = data.scores[(data.scores["space"] == space) & (data.scores["proxy"] == proxy)]
    if s.empty:
        return None
    wide = s.pivot_table(index="arch_id", columns="seed", values="score", aggfunc="first", dropna=False)
    if per_record and info.records is not None:
        rec = info.records[info.records["arch_id"].isin(wide.index)]
        ids, t = rec["arch_id"].to_numpy(), rec["truth"].to_numpy(dtype=float)
    else:
        tr = info.truth.reindex(wide.index).dropna()
        ids, t = tr.index.to_numpy(), tr.to_numpy(dtype=float)
    if not info.higher_is_better:
        t = -t
    x = wide.reindex(ids).to_numpy(dtype=float).T  # seeds x records
    n_boot = int(data.provenance.get("bootstrap_resamples", 1000))
    boot_seed = int(data.provenance.get("bootstrap_seed", 0))
    # the bootstrap is the expensive part: keyed by its exact inputs in the report's row cache

    def digest(a: np.ndarray) -> list:
        return [list(a.shape), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()]

    cache = RowCache(data.provenance.get("results_dir", "results"), enabled=data.use_cache)
    key = cache.key({"kind": "like_for_like", "x": digest(x), "t": digest(t), "statistic": statistic,
                     "resamples": n_boot, "seed": boot_seed})
    res = cache.get(key)
    if res is None:
        res = metrics.like_for_like(x, t, statistic, n_boot, boot_seed)
        cache.put(key, res)
    return res | {"n_seeds": x.shape[0]}


def reproduction_table(table: pd.DataFrame, published: pd.DataFrame | None = None,
                       include_missing: bool = True, data: ReportData | None = None) -> pd.DataFrame:
    """Ours vs the papers' published tau/rho, for the spaces present in ``table``.

    A source may declare how its numbers were computed (``statistic: pearson`` — its "rho"
    is Pearson's r of the raw scores —, ``per_record: true`` — correlated over every record
    of the benchmark table, duplicated networks counted per record). With ``data`` given,
    our columns for such a source are computed the same way (like for like) and
    ``rho_spearman_ours`` keeps our standard Spearman rho over distinct architectures;
    without ``data`` (or for sources that declare nothing) ours is the standard table's.
    """
    pub = load_published() if published is None else published
    present = set(table["space"])
    pub = pub[pub["space"].isin(present)]
    out = []
    for _, p in pub.iterrows():
        mine = table[(table["space"] == p["space"])]
        hit = None
        for c in p["candidates"]:
            m = mine[mine["proxy"] == c]
            if len(m):
                hit = m.iloc[0]
                break
        if hit is None and not include_missing:
            continue
        row = {"source": p["source"], "table": p["table"], "paper": p["paper"], "space": p["space"],
               "paper_name": p["paper_name"], "proxy": hit["proxy"] if hit is not None else p["candidates"][0],
               "tau_paper": p["tau_paper"], "rho_paper": p["rho_paper"], "n_paper": p["n_paper"]}
        statistic = p.get("statistic") or "spearman"
        per_record = bool(p.get("per_record") or False)
        row["statistic"] = ("Pearson r" if statistic == "pearson" else "Spearman") + (", per record" if per_record else "")
        if hit is not None:
            row.update(tau_ours=hit["tau"], tau_std=hit["tau_std"], rho_ours=hit["rho"], rho_std=hit["rho_std"],
                       rho_ci_lo=hit["rho_ci_lo"], rho_ci_hi=hit["rho_ci_hi"], tau_ci_lo=hit["tau_ci_lo"],
                       tau_ci_hi=hit["tau_ci_hi"], n_ours=hit["n_archs"], n_seeds=hit["n_seeds"],
                       rho_spearman_ours=hit["rho"])
            lfl = (_like_for_like_row(data, p["space"], hit["proxy"], statistic, per_record)
                   if data is not None and (statistic != "spearman" or per_record) else None)
            if lfl is not None and math.isfinite(lfl.get("rho", math.nan)):
                row.update({k: lfl[k] for k in ("tau_std", "rho_std", "rho_ci_lo", "rho_ci_hi", "tau_ci_lo",
                                                 "tau_ci_hi", "n_seeds")},
                           tau_ours=lfl["tau"], rho_ours=lfl["rho"], n_ours=lfl["n"])
            elif statistic != "spearman" or per_record:
                row["statistic"] = "Spearman (like-for-like not computed)"
            if bool(p.get("negate") or False):  # the paper correlated -score (published.yaml says why)
                row["proxy"] = "-" + row["proxy"]
                for k in ("tau_ours", "rho_ours", "rho_spearman_ours"):
                    row[k] = -row[k] if row.get(k) is not None else row.get(k)
                for kind in ("rho", "tau"):
                    lo, hi = row.get(f"{kind}_ci_lo"), row.get(f"{kind}_ci_hi")
                    row[f"{kind}_ci_lo"], row[f"{kind}_ci_hi"] = (-hi if hi is not None else hi,
                                                                  -lo if lo is not None else lo)
        row["different_table"] = not bool(p.get("same_table", True))  # published.yaml: the paper's table is not ours
        row["table_note"] = p.get("table_note", "") or ""
        out.append(row)
    cols = ["source", "table", "paper", "space", "paper_name", "proxy", "statistic", "tau_paper", "tau_ours", "tau_std",
            "d_tau", "rho_paper", "rho_ours", "rho_std", "d_rho", "rho_ci_lo", "rho_ci_hi", "in_ci", "n_paper", "n_ours",
            "n_seeds", "tau_ci_lo", "tau_ci_hi", "rho_spearman_ours"]
    df = pd.DataFrame(out)
    for c in cols:
        if c not in df.columns:
            df[c] = math.nan
    df["d_tau"] = df["tau_ours"].astype(float) - df["tau_paper"].astype(float)
    df["d_rho"] = df["rho_ours"].astype(float) - df["rho_paper"].astype(float)
    lo, hi, pub_rho = (df[c].astype(float) for c in ("rho_ci_lo", "rho_ci_hi", "rho_paper"))
    df["in_ci"] = np.where(lo.notna() & hi.notna() & pub_rho.notna(), (pub_rho >= lo) & (pub_rho <= hi), None)
    # A number from another table (other networks, other training) has no meaningful difference to ours.
    diff = df["different_table"].fillna(False).astype(bool) if "different_table" in df else pd.Series(False, df.index)
    df.loc[diff, ["d_tau", "d_rho"]] = math.nan
    df.loc[diff, "in_ci"] = None
    return df[cols + ["different_table", "table_note"]] if "different_table" in df else df[cols]
