"""Search efficiency of each proxy: trainings saved on the stored pool (issue #21, item 2).

For every space with ground truth and every proxy in the results store, two searches are
*simulated* on the space's stored pool: "training" an architecture = looking its ground
truth up in the table, proxy scores are the stored ones (seed ``proxy_seed``, read with
:func:`zcbench.predict.load_space_data`, so the same proxies and exclusions as ``predict``).

Methods
-------
``etas``    ETAS regularized evolution (Yang & Liu, Findings of ACL 2024, Algorithm 1), run by
            :func:`zcbench.search.etas.search_one` with the paper's GPT-2 settings (N0 = 300,
            n0 = 3, N_m = 100, n_m = 3, mutation probability 0.3; ``conf/preset/etas_gpt2.yaml``)
            except for the stopping rule: to measure *when* a search reaches the top 1 %, the
            patience stop is switched off and the iterations extended until ``budget``
            trainings (default 50; the paper's rule stops at <= 33). One deviation for the
            set-level ``ntsr``: its stored score (rank fusion over the whole table) is used
            as is, not re-fused within each candidate set as ``python -m zcbench etas`` does.
``etas(none)`` the same evolution with every score equal (uniformly random choices): what
            the evolution alone gives, without a proxy.
``random``  plain random search, the floor: the pool in a uniformly random order
            (``random.Random(f"random:{space}:{seed}")``).

Columns (per space, method and proxy, over ``seeds``, default 10 seeds 0..9)
------------------------------------------------------------------------
``to_top1_median``  median number of trainings until an architecture of the pool's top 1 %
                    (the ceil(1 % of the pool) best by ground truth) has been trained; seeds
                    that never reach it within the budget count as infinitely many (so the
                    median is ``inf`` when fewer than half reach it);
``reach_top1``      fraction of seeds that reach the top 1 % within the budget;
``regret20_median`` median over seeds of (best ground truth in the pool - best ground truth
                    among the first 20 trainings), in the metric's units, >= 0 (perplexity
                    for the LTS tables, GLUE score for FlexiBERT, accuracy for AutoFormer).

Command (writes ``<results_dir>/predict/efficiency.csv`` and ``efficiency.md``)::

    python -m zcbench.search.efficiency [--spaces gpt2 flexibert] [--seeds 10] [--budget 100]

:func:`efficiency_table` reads the CSV back (for the leaderboard). Documentation:
``docs/predict.md``.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BUDGET = 50
N_SEEDS = 10
TOP_FRACTION = 0.01
REGRET_AT = 20
NONE = "none"


class StoredScorer:
    """Duck-typed ``etas.PoolScores``: ``scores(ids)`` from a column of stored scores."""

    def __init__(self, scores: pd.Series):
        self.table = scores.astype(float)

    def scores(self, ids) -> np.ndarray:
        return self.table.reindex(list(ids)).to_numpy(dtype=float)


def fast_index(pool):
    """An ``etas.GeneIndex`` whose ``distances`` are vectorised over the numeric gene columns and
    memoised per child genotype (the same Gower distance; ``tests/test_predict.py`` checks it
    against ``GeneIndex.distances``). Searches for many proxies and seeds meet the same mutated
    children again and again, so the cache makes the simulation ~10x faster."""
    from zcbench.search.etas import GeneIndex, flatten_genes

    class FastGeneIndex(GeneIndex):
        def __init__(self, archs):
            super().__init__(archs)
            self.num_cols = list(self.numeric)
            self._col = {c: j for j, c in enumerate(self.num_cols)}
            if self.num_cols:
                self.X = np.stack([self.numeric[c][0] for c in self.num_cols], axis=1)
                self.P = np.stack([self.numeric[c][1] for c in self.num_cols], axis=1)
                self.R = np.array([self.numeric[c][2] for c in self.num_cols])
            self._cache: dict = {}

        def distances(self, genes) -> np.ndarray:
            key = repr(genes)
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            q = flatten_genes(genes)
            dist = np.zeros(self.n)
            if self.num_cols:
                v = np.full(len(self.num_cols), np.nan)
                qm = np.zeros(len(self.num_cols), dtype=bool)
                for c, val in q.items():
                    j = self._col.get(c)
                    if j is not None and val is not None:
                        v[j], qm[j] = float(val), True
                with np.errstate(invalid="ignore"):
                    diff = np.abs(self.X - v)
                    term = np.where(self.R > 0, diff / np.where(self.R > 0, self.R, 1.0), (self.X != v))
                inside = np.where(self.P, np.minimum(term, 1.0), 1.0)
                dist += np.where(qm, inside, self.P.astype(float)).sum(axis=1)
            for c, (x, present) in self.cat.items():
                val = q.get(c)
                if val is None:
                    dist += present
                    continue
                dist += np.where(present, (x != str(val)).astype(float), 1.0)
            dist += sum(1 for c in q if c not in self.numeric and c not in self.cat)
            self._cache[key] = dist
            return dist

    return FastGeneIndex(pool)


def etas_config(budget: int = BUDGET):
    """ETAS's GPT-2 settings with the patience stop off and enough iterations for ``budget``."""
    from zcbench.search.etas import ETASConfig

    cfg = ETASConfig(N0=300, n0=3, N_m=100, n_m=3, mutation_prob=0.3)
    cfg.M = int(math.ceil(max(0, budget - cfg.n0) / cfg.n_m))
    cfg.patience = cfg.M + 1
    return cfg


def top_threshold(truth: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Oriented truth value of the ceil(fraction * n)-th best architecture (higher = better)."""
    n_top = max(1, int(math.ceil(fraction * len(truth))))
    return float(np.sort(truth)[::-1][n_top - 1])


def trace_metrics(best_so_far: np.ndarray, truth: np.ndarray, budget: int = BUDGET) -> dict:
    """From the oriented best-so-far after each training: trainings to the top 1 % and regret at 20."""
    best_so_far = np.asarray(best_so_far, dtype=float)[:budget]
    thr = top_threshold(truth)
    hit = np.flatnonzero(best_so_far >= thr)
    at = min(REGRET_AT, len(best_so_far))
    return {"to_top1": float(hit[0] + 1) if len(hit) else math.inf,
            "regret20": float(truth.max() - best_so_far[at - 1]) if at else math.nan,
            "n_trained": int(len(best_so_far))}


def random_search(ids, truth: pd.Series, space_label: str, seed: int, budget: int = BUDGET) -> np.ndarray:
    order = list(sorted(ids))
    random.Random(f"random:{space_label}:{seed}").shuffle(order)
    return np.maximum.accumulate(truth.reindex(order[:budget]).to_numpy(dtype=float))


def etas_search(space, pool, index, scores: pd.Series, seed: int, budget: int = BUDGET) -> np.ndarray:
    """ETAS (etas.search_one) guided by stored ``scores``; oriented best-so-far per training."""
    from zcbench.search.etas import search_one

    res = search_one(space, pool, index, StoredScorer(scores), etas_config(budget), seed)
    sign = 1.0 if space.higher_is_better else -1.0
    return np.array([sign * b for _, b in res["trace"]], dtype=float)[:budget]


def space_efficiency(results_dir, label: str, seeds=range(N_SEEDS), budget: int = BUDGET, data_dir=None,
                     proxy_seed: int = 0, proxies=None, progress: bool = False, on_proxy=None) -> pd.DataFrame:
    """Per-seed rows (space, method, proxy, seed, to_top1, regret20, n_trained) for one space label."""
    import zcbench
    from zcbench.predict import load_space_data
    from zcbench.report import load_runs
    d = load_space_data(results_dir, label, data_dir=data_dir, proxy_seed=proxy_seed, with_genes=False,
                        proxies=proxies if proxies is None else set(proxies) | {"params"})
    r0 = next(r for r in load_runs(results_dir) if r.space == label)
    space = zcbench.create_space(r0.space_name, data_dir=data_dir, **r0.space_options)
    by_id = {a.id: a for a in space.stored()}
    pool = [by_id[i] for i in d.ids]
    index = fast_index(pool)
    truth = d.truth
    t = truth.to_numpy(dtype=float)
    rows = []
    for seed in seeds:
        rows.append({"space": label, "method": "random", "proxy": "—", "seed": seed,
                     **trace_metrics(random_search(d.ids, truth, label, seed, budget), t, budget)})
    first = [NONE] + [p for p in ("params", "params_nonembedding") if p in d.proxies]
    names = first + [p for p in d.proxies if p not in first]
    if proxies is not None:
        names = [n for n in names if n == NONE or n in proxies]
    for name in names:
        t0 = time.perf_counter()
        scores = pd.Series(0.0, index=d.ids) if name == NONE else d.scores[name]
        for seed in seeds:
            rows.append({"space": label, "method": "etas", "proxy": name, "seed": seed,
                         **trace_metrics(etas_search(space, pool, index, scores, seed, budget), t, budget)})
        if progress:
            print(f"  {label} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        if on_proxy is not None:  # write what is done so far (a long run can be stopped and still used)
            on_proxy(pd.DataFrame(rows))
    return pd.DataFrame(rows)


def aggregate(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per (space, method, proxy): median trainings to the top 1 %, fraction reaching it, regret at 20."""
    rows = []
    for (space, method, proxy), g in per_seed.groupby(["space", "method", "proxy"], sort=False):
        to = g.to_top1.to_numpy(dtype=float)
        rows.append({"space": space, "method": method, "proxy": proxy, "n_seeds": len(g),
                     "to_top1_median": float(np.median(to)), "reach_top1": float(np.isfinite(to).mean()),
                     "regret20_median": float(g.regret20.median()), "regret20_mean": float(g.regret20.mean()),
                     "budget": int(g.n_trained.max())})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, command: str, seconds: float) -> str:
    lines = ["# Search efficiency on the stored pools", "",
             f"Command: `{command}` ({seconds:.0f} s). Simulated searches (training = table look-up; scores from "
             "the results store). ETAS = regularized evolution with the paper's GPT-2 settings, patience off, up "
             "to the budget; etas(none) = the same without a proxy; random = plain random search. Columns: median "
             "trainings until the pool's top 1 % is reached (inf = fewer than half the seeds reach it within the "
             "budget), fraction of seeds that reach it, median regret after 20 trainings (metric units). "
             "Definitions: docs/predict.md.", ""]
    for space, g in table.groupby("space", sort=True):
        g = g.assign(_o=g.to_top1_median.replace(math.inf, 1e9)).sort_values(["_o", "regret20_median"])
        lines += [f"## {space}", "", "| method | proxy | trainings to top 1 % (median) | seeds reaching it | "
                  "regret after 20 (median) |", "|---|---|---|---|---|"]
        for _, r in g.iterrows():
            to = "inf" if not np.isfinite(r.to_top1_median) else f"{r.to_top1_median:.1f}"
            lines.append(f"| {r.method} | {r.proxy} | {to} | {r.reach_top1:.0%} | {r.regret20_median:.4g} |")
        lines.append("")
    return "\n".join(lines)


def efficiency_table(results_dir="results") -> pd.DataFrame:
    """For the leaderboard: ``<results_dir>/predict/efficiency.csv`` (empty frame when not built).

    Columns: space, method (etas / random), proxy (``none`` = ETAS without a proxy, ``—`` for
    random search), n_seeds, to_top1_median, reach_top1, regret20_median, regret20_mean, budget.
    """
    path = Path(results_dir) / "predict" / "efficiency.csv"
    if not path.exists():
        return pd.DataFrame(columns=["space", "method", "proxy", "n_seeds", "to_top1_median", "reach_top1",
                                     "regret20_median", "regret20_mean", "budget"])
    return pd.read_csv(path)


def main(argv=None) -> int:
    from zcbench.predict import PredictError, space_labels
    from zcbench.store import atomic_write_text

    ap = argparse.ArgumentParser(prog="python -m zcbench.search.efficiency", description=__doc__.split("\n")[0])
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--spaces", nargs="*", default=None, help="space labels (default: every one with truth)")
    ap.add_argument("--seeds", type=int, default=N_SEEDS)
    ap.add_argument("--budget", type=int, default=BUDGET)
    ap.add_argument("--out", default=None, help="default <results-dir>/predict")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    if a.seeds < 1 or a.budget < REGRET_AT:
        print(f"zcbench: error: --seeds must be >= 1 and --budget >= {REGRET_AT}", file=sys.stderr)
        return 2
    labels = space_labels(a.results_dir)
    spaces = a.spaces or labels
    bad = [s for s in spaces if s not in labels]
    if bad:
        print(f"zcbench: error: unknown space {bad[0]!r}; spaces with stored scores: {', '.join(labels)}",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    out = Path(a.out) if a.out else Path(a.results_dir) / "predict"
    command = "python -m zcbench.search.efficiency " + " ".join(argv if argv is not None else sys.argv[1:])
    state = {"md": ""}

    def write(new: pd.DataFrame) -> None:
        """Merge ``new`` per-seed rows into the stored ones (other spaces / methods kept) and rewrite."""
        old_path = out / "efficiency_seeds.csv"
        per_seed = new
        if old_path.exists():
            old = pd.read_csv(old_path)
            key = ["space", "method", "proxy"]
            done = set(map(tuple, new[key].drop_duplicates().to_numpy()))
            old = old[[tuple(x) not in done for x in old[key].to_numpy()]]
            per_seed = pd.concat([old, new], ignore_index=True)
        table = aggregate(per_seed)
        atomic_write_text(out / "efficiency.csv", table.to_csv(index=False))
        atomic_write_text(out / "efficiency_seeds.csv", per_seed.to_csv(index=False))
        state["md"] = markdown(table, command.strip(), time.perf_counter() - t0)
        atomic_write_text(out / "efficiency.md", state["md"])

    done = 0
    for s in spaces:
        try:
            space_efficiency(a.results_dir, s, range(a.seeds), a.budget, a.data_dir, progress=True, on_proxy=write)
            done += 1
        except PredictError as exc:
            print(f"efficiency: {s}: skipped: {exc}", file=sys.stderr)
    if not done:
        print("zcbench: error: no space with stored scores and ground truth", file=sys.stderr)
        return 2
    print(state["md"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
