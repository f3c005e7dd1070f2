"""Robustness of each proxy's ranking to the minibatch and the batch size (issue #21, item 3).

Two columns per (space, proxy), both from the results store (nothing is scored here):

* **Seed spread** — ``rho_seed_std``: the sample standard deviation over the stored seeds
  of Spearman rho between the proxy's scores and the oriented ground truth (each seed draws
  another minibatch *and* another weight initialisation; data-free proxies vary only with
  the initialisation, weight-free ones not at all). The configuration per (space, proxy) is
  the report's (:func:`zcbench.report.select_configs`); ``n_seeds`` says how many seeds. Where
  that configuration has one seed (the papers' minibatch, scored once), the spread is that of
  the same proxy version's configuration with the most complete seeds; ``minibatch`` names the
  configuration measured (``16x192``, ``data-free``).
* **Batch size** — on a fixed GPT-2 subset (the 30 architectures ``python -m zcbench run
  space=gpt2 seed=0 n_archs=30`` samples), rho at batch sizes 1, 4 and 16 x 192 tokens
  (16 = LPZero's GPT-2 setting, ``conf/space/gpt2.yaml``; 4 = the stored standard runs,
  restricted to the subset). A batch-``b`` run is accepted only when its data configuration
  equals the standard run's with the batch size as the *only* change (checked key by key);
  rho is computed on the architectures scored at every batch size (``n_batch``).
  ``sign_flip`` marks proxies whose rho has a different sign at some batch size (|rho| of
  0 counts as no sign); ``rho_b1_b16`` is the Spearman agreement of the batch-1 and batch-16
  scores themselves. Produced by (seed 0, one worker, ~40 min CPU for both batch sizes)::

      python -m zcbench run proxy=[<every data-using proxy>] space=gpt2 seed=0 n_archs=30 \\
          batch_size=1 results_dir=results    # and batch_size=16

Command (writes ``<results_dir>/predict/robustness.csv`` and ``.md``)::

    python -m zcbench.robustness [--results-dir results]

:func:`robustness_table` computes the table; :func:`load_robustness` reads the CSV back
(for the leaderboard). Documentation: ``docs/predict.md``.
"""
from __future__ import annotations

import argparse
import copy
import html
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

BATCHES = (1, 4, 16)
BATCH_SPACE = "gpt2"
BATCH_SEED = 0


def _rho(scores: pd.Series, truth: pd.Series) -> tuple[float, int]:
    d = pd.concat([scores, truth], axis=1, join="inner").replace([np.inf, -np.inf], np.nan).dropna()
    if len(d) < 3 or d.iloc[:, 0].nunique() < 2:
        return math.nan, len(d)
    return float(stats.spearmanr(d.iloc[:, 0], d.iloc[:, 1]).statistic), len(d)


def _series(run) -> pd.Series:
    return pd.Series({i: rec["score"] for i, rec in run.records.items()}, dtype=float)


def with_batch(data: dict, batch_size: int) -> dict:
    """``data`` (a run's data configuration) with only the batch size changed."""
    out = copy.deepcopy(data)
    out["batch_size"] = batch_size
    if isinstance(out.get("batch"), dict):
        out["batch"]["batch_size"] = batch_size
    return out


def seed_spread(results_dir, data_dir=None) -> pd.DataFrame:
    """Per (space, proxy): rho per stored seed, its mean and sample std."""
    from zcbench.report import load_runs, load_space, select_configs

    from zcbench.report import run_minibatch

    runs = load_runs(results_dir)
    groups, _ = select_configs(runs)
    by_config: dict = {}
    for r in runs:
        by_config.setdefault((r.space, r.proxy), {}).setdefault(r.config, []).append(r)
    rows, infos = [], {}
    for (space, proxy), rs in groups.items():
        if space not in infos:
            infos[space] = load_space(space, rs[0].space_name, rs[0].space_options, None, data_dir)
        truth = infos[space].oriented
        if truth is None:
            continue
        if len(rs) < 2:
            # the reported configuration has one seed (e.g. the papers' minibatch, scored once): the
            # spread is measured on the configuration of the same proxy version with the most
            # complete seeds, and the minibatch column says which
            full = max(len(r.records) for r in rs)
            others = [sorted(o, key=lambda r: r.seed) for o in by_config[(space, proxy)].values()
                      if o[0].version == rs[0].version and len(o) >= 2
                      and all(len(r.records) >= full for r in o)]
            if others:
                rs = max(others, key=lambda o: (len(o), sum(len(r.records) for r in o)))
        mb = run_minibatch(rs[0], runs)
        rhos = [_rho(_series(r), truth)[0] for r in rs]
        ok = [x for x in rhos if np.isfinite(x)]
        rows.append({"space": space, "proxy": proxy, "minibatch": f"{mb[0]}x{mb[1]}" if mb else "data-free",
                     "n_seeds": len(rs), "seeds": ",".join(str(r.seed) for r in rs),
                     "rho_seeds": ",".join(f"{x:.4f}" for x in rhos), "rho_mean": np.mean(ok) if ok else math.nan,
                     "rho_seed_std": float(np.std(ok, ddof=1)) if len(ok) > 1 else math.nan})
    return pd.DataFrame(rows)


def batch_sensitivity(results_dir, space: str = BATCH_SPACE, batches=BATCHES, seed: int = BATCH_SEED,
                      data_dir=None) -> pd.DataFrame:
    """Per proxy of ``space``: rho at each batch size on the common subset (see module docstring)."""
    from zcbench.report import load_runs, load_space, select_configs

    runs = [r for r in load_runs(results_dir) if r.space == space]
    if not runs:
        return pd.DataFrame()
    groups, _ = select_configs(runs)
    truth = load_space(space, runs[0].space_name, runs[0].space_options, None, data_dir).oriented
    rows = []
    for (_, proxy), rs in sorted(groups.items()):
        std = next((r for r in rs if r.seed == seed), None)
        if std is None or not isinstance(std.data.get("batch"), dict):
            continue  # data-free proxy, or no run at this seed
        found = {}
        for b in batches:
            want = with_batch(std.data, b)
            match = [r for r in runs if r.proxy == proxy and r.seed == seed and r.version == std.version
                     and r.data == want]
            if match:
                found[b] = max(match, key=lambda r: len(r.records))
        small = [b for b in batches if b != std.data.get("batch_size")]
        if not any(b in found for b in small):
            continue
        series = {b: _series(r) for b, r in found.items()}
        subset_ids = set.intersection(*(set(series[b].index) for b in small if b in series))
        common = sorted(set.intersection(subset_ids, *(set(s.index) for s in series.values())))
        row = {"space": space, "proxy": proxy, "n_batch": len(common), "seed": seed}
        signs = []
        for b in batches:
            if b in series and len(common) >= 3:
                r, _ = _rho(series[b].reindex(common), truth)
                row[f"rho_b{b}"] = r
                if np.isfinite(r) and r != 0:
                    signs.append(np.sign(r))
            else:
                row[f"rho_b{b}"] = math.nan
        lo, hi = min(batches), max(batches)
        if lo in series and hi in series and len(common) >= 3:
            row[f"rho_b{lo}_b{hi}"] = _rho(series[lo].reindex(common), series[hi].reindex(common))[0]
        row["batches_found"] = ",".join(str(b) for b in batches if b in series)
        row["sign_flip"] = bool(len(set(signs)) > 1)
        rows.append(row)
    return pd.DataFrame(rows)


def robustness_table(results_dir="results", data_dir=None) -> pd.DataFrame:
    """Seed spread for every (space, proxy), joined with the batch-size columns where they exist."""
    spread = seed_spread(results_dir, data_dir)
    batch = batch_sensitivity(results_dir, data_dir=data_dir)
    if batch.empty:
        return spread
    return spread.merge(batch.drop(columns=["seed"]), on=["space", "proxy"], how="left")


def load_robustness(results_dir="results") -> pd.DataFrame:
    """For the leaderboard: ``<results_dir>/predict/robustness.csv`` (empty frame when not built).

    Columns: space, proxy, minibatch, n_seeds, seeds, rho_seeds, rho_mean, rho_seed_std, and for the
    batch-size subset n_batch, rho_b1, rho_b4, rho_b16, rho_b1_b16, batches_found, sign_flip.
    """
    path = Path(results_dir) / "predict" / "robustness.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["space", "proxy", "rho_seed_std"])


def markdown(table: pd.DataFrame, command: str) -> str:
    lines = ["# Robustness of the proxies' rankings", "",
             f"Command: `{command}`. Seed spread: std over the stored seeds (minibatch + initialisation) of "
             "Spearman rho vs the oriented ground truth. Batch size (GPT-2 only, fixed subset of the 30 "
             f"architectures `n_archs=30 seed={BATCH_SEED}` samples, 192 tokens per sequence): rho at 1, 4 and 16 "
             "sequences per batch on the architectures scored at all three; ⚠ = the sign of rho changes with the "
             "batch. Definitions: docs/predict.md.", ""]
    has_batch = "rho_b1" in table.columns
    for space, g in table.groupby("space", sort=True):
        g = g.sort_values("rho_mean", ascending=False)
        show_batch = has_batch and g.rho_b1.notna().any()
        head = "| proxy | minibatch | seeds | rho mean | rho std over seeds |"
        sep = "|---|---|---|---|---|"
        if show_batch:
            head += " n | rho b=1 | rho b=4 | rho b=16 | rho(b=1 scores, b=16 scores) | sign flip |"
            sep += "---|---|---|---|---|---|"
        lines += [f"## {space}", "", head, sep]
        for _, r in g.iterrows():
            cells = [r.proxy, str(r.get("minibatch", "")).replace("x", " × "), str(int(r.n_seeds)), f"{r.rho_mean:.3f}",
                     "—" if not np.isfinite(r.rho_seed_std) else f"{r.rho_seed_std:.4f}"]
            if show_batch:
                if np.isfinite(r.get("n_batch", math.nan)):
                    cells += [str(int(r.n_batch))] + [
                        "—" if not np.isfinite(r[f"rho_b{b}"]) else f"{r[f'rho_b{b}']:.3f}" for b in BATCHES]
                    x = r.get("rho_b1_b16", math.nan)
                    cells += ["—" if not np.isfinite(x) else f"{x:.3f}", "⚠ yes" if r.sign_flip is True or
                              r.sign_flip == 1 else "no"]
                else:
                    cells += ["—"] * 6
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    from zcbench.store import atomic_write_text

    ap = argparse.ArgumentParser(prog="python -m zcbench.robustness", description=__doc__.split("\n")[0])
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--out", default=None, help="default <results-dir>/predict")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    if not (Path(a.results_dir) / "scores").is_dir():
        print(f"zcbench: error: no scores under {a.results_dir}/scores", file=sys.stderr)
        return 2
    table = robustness_table(a.results_dir, a.data_dir)
    out = Path(a.out) if a.out else Path(a.results_dir) / "predict"
    command = "python -m zcbench.robustness " + " ".join(argv if argv is not None else sys.argv[1:])
    atomic_write_text(out / "robustness.csv", table.to_csv(index=False))
    md = markdown(table, command.strip())
    atomic_write_text(out / "robustness.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------- leaderboard sections
def proxy_columns(results_dir="results") -> pd.DataFrame:
    """The new per-(space, proxy) leaderboard columns in one frame: ETAS trainings to the pool's top 1 %
    (median, fraction of seeds reaching it), regret after 20 trainings, rho std over seeds, rho at batch
    1 / 4 / 16 and the sign-flip flag. Read from ``results/predict/{efficiency,robustness}.csv``."""
    from zcbench.search.efficiency import efficiency_table

    eff = efficiency_table(results_dir)
    eff = eff[eff.method == "etas"].rename(columns={"to_top1_median": "etas_to_top1", "reach_top1": "etas_reach_top1",
                                                    "regret20_median": "etas_regret20"})
    rob = load_robustness(results_dir)
    keep_e = ["space", "proxy", "etas_to_top1", "etas_reach_top1", "etas_regret20"]
    keep_r = [c for c in ("space", "proxy", "rho_seed_std", "minibatch", "n_seeds", "n_batch", "rho_b1", "rho_b4", "rho_b16",
                          "sign_flip") if c in rob.columns]
    if eff.empty:
        return rob[keep_r]
    if rob.empty:
        return eff[keep_e]
    return rob[keep_r].merge(eff[keep_e], on=["space", "proxy"], how="outer")


def _f(x, nd=3) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "—"
    if math.isinf(x):
        return "not reached"
    return "—" if not np.isfinite(x) else f"{x:.{nd}f}"


def _spread_of(r) -> str:
    """`` (4 × 192, 3 seeds)``: which stored configuration a seed spread was measured on."""
    mb, n = r.get("minibatch"), r.get("n_seeds")
    if not isinstance(mb, str) or not mb or not np.isfinite(float(n if n is not None else math.nan)):
        return ""
    return f" ({html.escape(mb.replace('x', ' × '))}, {int(n)} seeds)"


def site_sections(data) -> list:
    """Leaderboard hook: per space page, a "Search efficiency and robustness" table of every proxy."""
    import html as _h

    from zcbench.leaderboard import Section
    from zcbench.predict import html_table
    from zcbench.search.efficiency import efficiency_table

    results_dir = Path(data.provenance.get("results_dir", "results"))
    cols = proxy_columns(results_dir)
    if cols.empty:
        return []
    eff = efficiency_table(results_dir)
    out = []
    for space, g in cols.groupby("space"):
        if space not in data.spaces:
            continue
        has_batch = "rho_b1" in g.columns and g.rho_b1.notna().any()
        head = ["proxy", "ETAS trainings to top 1 % (median)", "seeds reaching it", "regret after 20",
                "ρ std over seeds"] + (["ρ b=1", "ρ b=4", "ρ b=16", "sign flips"] if has_batch else [])
        order = g.assign(_o=g.get("etas_to_top1", pd.Series(dtype=float)).fillna(1e9).replace(math.inf, 1e8))
        rows = []
        for _, r in order.sort_values(["_o", "proxy"]).iterrows():
            reach = r.get("etas_reach_top1", math.nan)
            cells = [_h.escape(str(r.proxy)), _f(r.get("etas_to_top1"), 1),
                     "—" if not np.isfinite(reach if reach is not None else math.nan) else f"{reach:.0%}",
                     _f(r.get("etas_regret20"), 3), _f(r.get("rho_seed_std"), 4) + _spread_of(r)]
            if has_batch:
                flip = r.get("sign_flip")
                cells += [_f(r.get("rho_b1")), _f(r.get("rho_b4")), _f(r.get("rho_b16")),
                          "—" if not isinstance(flip, (bool, np.bool_)) else ("⚠ yes" if flip else "no")]
            rows.append(cells)
        floor = eff[(eff.space == space) & (eff.method == "random")]
        floor_txt = ""
        if len(floor):
            f = floor.iloc[0]
            med = (f"median {_f(f.to_top1_median, 1)} trainings to the top 1 %" if np.isfinite(f.to_top1_median)
                   else "fewer than half the seeds reach the top 1 % within the budget")
            floor_txt = (f" Random search (the floor): {med} ({f.reach_top1:.0%} of seeds reach it), median regret "
                         f"after 20 trainings {_f(f.regret20_median)}.")
        out.append(Section(
            page=f"space:{space}", id="efficiency-robustness", title="Search efficiency and robustness", order=46,
            html=('<p class="muted">ETAS regularized evolution guided by each proxy, simulated on the stored pool '
                  "(training = table look-up, 10 seeds): median trainings until one of the pool's top 1 % is "
                  "trained, and regret (pool best − best found) after 20 trainings; ρ std over the stored "
                  "minibatch seeds (in brackets the configuration it was measured on: the reported one, or, where "
                  "that has a single seed, the same proxy version's configuration with the most seeds); ρ at batch sizes 1 / 4 / 16 on a fixed 30-architecture subset (GPT-2). "
                  f"docs/predict.md.{floor_txt}</p>" + html_table(head, rows, f"robust-{space}"))))
    return out
