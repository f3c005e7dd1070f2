"""ETAS: proxy-guided regularized evolution over a benchmark's stored pool (tabular NAS).

Size: over 500 lines because Algorithm 1, its scorer over stored scores, the result tables and
the ETAS correlation table are one method, read top-down in one file.

Paper: J. Yang and Y. Liu, "ETAS: Zero-Shot Transformer Architecture Search via Network
Trainability and Expressivity", Findings of ACL 2024, Algorithm 1 (appendix). Entry
point: ``main_etas(cfg)`` (Hydra config ``conf/etas.yaml``; ``python -m zcbench etas
space=gpt2 proxy=ntsr``); ``run_etas(...)`` is the same without Hydra.

Algorithm (per seed)
--------------------
1. Warm-up: draw ``N0`` distinct architectures uniformly from the pool, rank them with
   the proxy, *evaluate* the top ``n0`` (look their ground truth up in the table).
2. Parents = the ``n0`` best evaluated architectures (by ground truth).
3. Each iteration: mutate parents (a parent drawn uniformly per child) into ``N_m``
   distinct, not yet evaluated candidates; the proxy ranks the candidates and the top
   ``n_m`` are evaluated; parents = the ``n0`` best of everything evaluated.
4. Stop after ``M`` iterations, or after ``patience`` consecutive iterations without a
   better best ground truth.
Budget: at most ``n0 + M * n_m`` evaluations (33 with the defaults).

Against the paper (Algorithm 1 and appendix A.3/A.4, read from the text): steps 1-4 are
Algorithm 1 line by line (warm-up of N_0 ranked by the proxy, top n_0 evaluated as the
parent population, N_m mutants per iteration, the proxy's top n_m evaluated, parents =
top n_0 of the observed set, stop at M or after five iterations without improvement).
Settings: ``conf/preset/etas_gpt2.yaml`` (A.4.2: N_0 = 300, n_0 = n_m = 3, N_m = 100,
mutation probability 0.3, M = 10; the default) and ``conf/preset/etas_autoformer.yaml``
(A.4.1: N_0 = 500, mutation probability 0.4, the rest alike); select with
``preset=...``. Two differences, both forced by searching a stored table: candidates are
snapped into the pool (below) instead of being trained, and "mutation probability" —
which the paper does not define further — is read as the chance of each further gene
change after the first (AutoFormer's own evolution resamples each gene with that
probability; see docs/fidelity.md).

The pool and the table
----------------------
The pool is the space's stored architectures that have the target metric (gpt2: 200,
flexibert: 491 distinct networks). Every count is capped at what the pool can give:
``N0`` = min(N0, |pool|) (with N0 = 300 > 200 on gpt2 the warm-up ranks the whole pool),
and an iteration offers min(N_m, #not yet evaluated) candidates.

Mutation inside the pool: the child's genes are the parent's after ``space.mutate``
(one gene), repeated while a uniform draw is below ``mutation_prob`` (so 1 + Geometric
gene changes, mean 1/(1 - p)); the child is then *snapped* to the nearest pool
architecture that is neither evaluated nor already a candidate, by a Gower distance on
the flattened genes: every leaf of the gene dict (lists by index, e.g. ``n_head.3``,
``encoder_layers.1.feed_forward_dimension``) is a column; numeric columns contribute
|x - y| / (range of that column over the pool), categorical columns (any string value)
and booleans 0/1 for equal/different, and a leaf present on one side only (different
depths) contributes 1. Distance ties break uniformly at random (seeded). When the
neighbourhood is used up the nearest remaining architecture is taken, however far.

Proxies
-------
Scores come from the results store: before searching, the runner scores the pool once
for the proxy (``proxy_seed``, ``batch_size``, ``seq_len``; resumable, shared with
``python -m zcbench run``), so the search itself is look-ups. A set-level proxy such as
``ntsr`` (``rankfuse:[...]``) is re-fused *within each candidate set* (warm-up sample,
then each iteration's candidates) from its stored per-architecture components. ``none``
scores everything equal: the choice is uniformly random (the tie-break). NaN/inf scores
rank last. Ties in the proxy break by a per-seed random order of the pool.

The random draws (warm-up sample, mutations, tie-breaks) use per-seed generators that do
not depend on the proxy, so for a given seed all proxies start from the same warm-up set.

Outputs
-------
``<search_dir>/etas-<space>-<proxy>.csv``: one row per evaluation, columns
``space, method, seed, n_evaluated, best_truth, metric`` (``best_truth`` in the metric's
own units: perplexity (lower is better) for the LTS spaces, GLUE (higher) for flexibert).
``<table_dir>/search_<space>.md`` / ``.csv``: per method, mean ± std over seeds of the best
ground truth reached and the evaluations used, rebuilt from every CSV of that space.
"""
from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

NONE = "none"


# ============================================================================
# Configuration
# ============================================================================
@dataclass
class ETASConfig:
    space: str = "gpt2"
    proxy: str = "ntsr"
    seeds: list = field(default_factory=lambda: [0, 1, 2, 3, 4])
    N0: int = 300
    n0: int = 3
    N_m: int = 100
    n_m: int = 3
    mutation_prob: float = 0.3
    M: int = 10
    patience: int = 5
    results_dir: str = "results"
    batch_size: int = 16
    seq_len: int = 128
    device: str = "cpu"
    data_dir: str | None = None
    target: str | None = None
    proxy_seed: int = 0
    proxy_options: dict = field(default_factory=dict)
    space_options: dict = field(default_factory=dict)
    search_dir: str | None = None  # default <results_dir>/search
    table_dir: str | None = None  # default <results_dir>/etas
    progress: bool = False

    def check(self) -> None:
        from zcbench.runner import ConfigError

        for key in ("N0", "n0", "N_m", "n_m"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{key} must be a positive integer, got {v!r}")
        for key in ("M", "patience"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{key} must be a non-negative integer, got {v!r}")
        if not 0.0 <= float(self.mutation_prob) < 1.0:
            raise ConfigError(f"mutation_prob must lie in [0, 1), got {self.mutation_prob!r}")
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")


# ============================================================================
# Gene encoding and snapping
# ============================================================================
def flatten_genes(genes, prefix: str = "") -> dict:
    """Leaves of a gene dict/list as ``{path: value}`` (lists by index)."""
    out = {}
    if isinstance(genes, dict):
        for k in sorted(genes):
            out.update(flatten_genes(genes[k], f"{prefix}{k}."))
    elif isinstance(genes, (list, tuple)):
        for i, v in enumerate(genes):
            out.update(flatten_genes(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = genes
    return out


class GeneIndex:
    """Gower distance from any genes to every pool architecture (see module docstring)."""

    def __init__(self, archs):
        self.archs = list(archs)
        flat = [flatten_genes(a.genes) for a in self.archs]
        cols = sorted(set().union(*flat))
        self.cols = cols
        self.numeric, self.cat = {}, {}
        n = len(self.archs)
        for c in cols:
            vals = [f.get(c) for f in flat]
            present = np.array([v is not None for v in vals])
            if any(isinstance(v, str) for v in vals if v is not None):
                self.cat[c] = (np.array([str(v) if v is not None else "" for v in vals], dtype=object), present)
            else:
                x = np.array([float(v) if v is not None else np.nan for v in vals])
                rng = np.nanmax(x) - np.nanmin(x) if present.any() else 0.0
                self.numeric[c] = (x, present, rng if rng > 0 else 0.0)
        self.n = n

    def distances(self, genes) -> np.ndarray:
        q = flatten_genes(genes)
        dist = np.zeros(self.n)
        for c, (x, present, rng) in self.numeric.items():
            v = q.get(c)
            if v is None:
                dist += present  # leaf only on the pool side
                continue
            v = float(v)
            if rng > 0:
                term = np.abs(x - v) / rng
            else:
                term = (x != v).astype(float)
            dist += np.where(present, np.minimum(term, 1.0), 1.0)
        for c, (x, present) in self.cat.items():
            v = q.get(c)
            if v is None:
                dist += present
                continue
            dist += np.where(present, (x != str(v)).astype(float), 1.0)
        dist += sum(1 for c in q if c not in self.numeric and c not in self.cat)  # leaves no pool arch has
        return dist

    def nearest(self, genes, exclude: set, rng: random.Random):
        d = self.distances(genes)
        ok = np.array([a.id not in exclude for a in self.archs])
        if not ok.any():
            return None
        d = np.where(ok, d, np.inf)
        best = np.flatnonzero(np.isclose(d, d.min(), rtol=0, atol=1e-12))
        return self.archs[int(best[rng.randrange(len(best))])]


def mutate_in_pool(space, index: GeneIndex, parent, exclude: set, rng: random.Random, mutation_prob: float):
    """One child of ``parent``: space.mutate (1 + Geometric(mutation_prob) times), snapped into the pool."""
    child = space.mutate(parent, rng)
    while rng.random() < mutation_prob:
        child = space.mutate(child, rng)
    return index.nearest(child.genes, exclude, rng)


# ============================================================================
# Proxy scores over the pool (from the results store)
# ============================================================================
class PoolScores:
    """Proxy scores of every pool architecture, read from the runner's results store."""

    def __init__(self, cfg: ETASConfig, space, pool):
        self.name = cfg.proxy
        self.ids = [a.id for a in pool]
        self.set_proxy = None
        if cfg.proxy == NONE:
            self.table = pd.DataFrame({NONE: 0.0}, index=self.ids)
            return
        from zcbench.proxy import SetProxy
        from zcbench.runner import RunConfig, data_config, expand_proxies, run
        from zcbench.store import ScoreFile

        rc = RunConfig(space=cfg.space, proxies=[cfg.proxy], seed=cfg.proxy_seed, batch_size=cfg.batch_size,
                       seq_len=cfg.seq_len, n_archs=None, target=cfg.target, device=cfg.device,
                       data_dir=cfg.data_dir, results_dir=cfg.results_dir, space_options=dict(cfg.space_options),
                       proxy_options=dict(cfg.proxy_options), bootstrap=0, progress=cfg.progress)
        run(rc)  # scores whatever the store lacks (the whole stored table), then correlates
        from zcbench.runner import resolve_seq_len

        rc = resolve_seq_len(rc, space)  # seq_len null: the table's tgt_len, as run() used
        per_arch, sets = expand_proxies(rc)
        from zcbench.runner import DATA_FREE_NEEDS

        batch_info = None
        if any(not set(p.needs) <= DATA_FREE_NEEDS for p in per_arch):
            batch_info = space.make_batch(rc.batch_size, rc.seq_len, rc.seed).info
        cols = {}
        for p in per_arch:
            f = ScoreFile(rc.results_dir, space.name, p.name, rc.seed, data_config(rc, space, p, batch_info),
                          p.version)
            recs = f.read()
            missing = [i for i in self.ids if i not in recs]
            if missing:
                raise RuntimeError(f"{p.name}: {len(missing)} pool architectures have no stored score")
            cols[p.name] = {i: recs[i]["score"] for i in self.ids}
        self.table = pd.DataFrame(cols, dtype=float)
        if sets:
            sp = sets[0]
            if not isinstance(sp, SetProxy):  # pragma: no cover
                raise TypeError(sp)
            self.set_proxy = sp

    def scores(self, ids) -> np.ndarray:
        sub = self.table.loc[list(ids)]
        if self.set_proxy is not None:
            return self.set_proxy.combine(sub).to_numpy(dtype=float)
        return sub.iloc[:, 0].to_numpy(dtype=float)


# ============================================================================
# The search
# ============================================================================
def search_one(space, pool, index: GeneIndex, scorer: PoolScores, cfg: ETASConfig, seed: int) -> dict:
    """One ETAS run; returns the evaluation trace and counters."""
    sign = 1.0 if space.higher_is_better else -1.0
    truth = {a.id: space.truth(a) for a in pool}
    r_init = random.Random(f"etas-init:{space.name}:{seed}")
    r_mut = random.Random(f"etas-mut:{space.name}:{seed}")
    r_tie = random.Random(f"etas-tie:{space.name}:{seed}")
    tiebreak = {a.id: r_tie.random() for a in sorted(pool, key=lambda a: a.id)}

    def top_by_proxy(archs, k):
        s = scorer.scores([a.id for a in archs])
        s = np.where(np.isfinite(s), s, -np.inf)
        order = sorted(range(len(archs)), key=lambda j: (-s[j], tiebreak[archs[j].id]))
        return [archs[j] for j in order[:k]]

    evaluated: list = []  # in evaluation order
    trace: list = []
    best = -math.inf

    def evaluate(a):
        nonlocal best
        evaluated.append(a)
        best = max(best, sign * truth[a.id])
        trace.append((len(evaluated), sign * best))

    warm = r_init.sample(pool, min(cfg.N0, len(pool)))
    for a in top_by_proxy(warm, min(cfg.n0, len(warm))):
        evaluate(a)
    counts = {"warmup_ranked": len(warm), "iterations": 0, "candidates": [], "chosen": []}
    stale = 0
    for _ in range(cfg.M):
        done = {a.id for a in evaluated}
        if len(done) >= len(pool):
            break
        parents = sorted(evaluated, key=lambda a: -sign * truth[a.id])[: cfg.n0]
        want = min(cfg.N_m, len(pool) - len(done))
        cands, seen = [], set(done)
        while len(cands) < want:
            child = mutate_in_pool(space, index, r_mut.choice(parents), seen, r_mut, cfg.mutation_prob)
            if child is None:
                break
            seen.add(child.id)
            cands.append(child)
        before = best
        chosen = top_by_proxy(cands, min(cfg.n_m, len(cands)))
        for a in chosen:
            evaluate(a)
        counts["iterations"] += 1
        counts["candidates"].append(len(cands))
        counts["chosen"].append(len(chosen))
        stale = 0 if best > before else stale + 1
        if stale >= cfg.patience:
            break
    return {"trace": trace, "evaluated": [a.id for a in evaluated], "best": sign * best, **counts}


def pool_of(space) -> list:
    return [a for a in sorted(space.stored(), key=lambda a: a.id) if space.metric in a.truth]


def run_etas(cfg: ETASConfig, write: bool = True) -> pd.DataFrame:
    """All seeds of one (space, proxy); returns the trace rows (and writes the CSV + table)."""
    from zcbench.registry import create_space

    cfg.check()
    if "table" in cfg.space_options:  # a project-built table (table=...): its space options, as `run` applies them
        from zcbench.groundtruth import table_run_config
        from zcbench.runner import RunConfig

        rc = table_run_config(RunConfig(space=cfg.space, proxies=[], seq_len=cfg.seq_len, results_dir=cfg.results_dir,
                                        space_options=dict(cfg.space_options)))
        cfg.space_options = rc.space_options
    space = create_space(cfg.space, data_dir=cfg.data_dir, target=cfg.target, **cfg.space_options)
    pool = pool_of(space)
    if not pool:
        from zcbench.runner import ConfigError

        raise ConfigError(f"space {cfg.space} has no stored architectures with {space.metric}: nothing to search")
    index = GeneIndex(pool)
    scorer = PoolScores(cfg, space, pool)
    rows = []
    for seed in cfg.seeds:
        res = search_one(space, pool, index, scorer, cfg, int(seed))
        for n, b in res["trace"]:
            rows.append({"space": space.name, "method": cfg.proxy, "seed": int(seed), "n_evaluated": n,
                         "best_truth": b, "metric": space.metric})
        print(f"etas | {space.name} | {cfg.proxy} | seed {seed} | best {space.metric} = {res['best']:.4g} after "
              f"{len(res['evaluated'])} evaluations ({res['iterations']} iterations)", flush=True)
    df = pd.DataFrame(rows)
    if write:
        from zcbench.store import atomic_write_text, safe_name

        sdir = Path(cfg.search_dir or Path(cfg.results_dir) / "search")
        atomic_write_text(sdir / f"etas-{space.name}-{safe_name(cfg.proxy)}.csv", df.to_csv(index=False))
        summarize_search(sdir, space, Path(cfg.table_dir or Path(cfg.results_dir) / "etas"))
    return df


def final_per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """Per (space, method, seed): final best, evaluations used, evaluations until that best was first reached."""
    df = df.sort_values("n_evaluated")
    key = ["space", "method", "seed"]
    last = df.groupby(key).tail(1).set_index(key)
    first = df.merge(last[["best_truth"]].reset_index(), on=key + ["best_truth"]).groupby(key).n_evaluated.min()
    last = last.assign(evals_to_best=first).reset_index()
    return last.rename(columns={"n_evaluated": "evaluations"})[key + ["best_truth", "evaluations", "evals_to_best",
                                                                      "metric"]]


def summarize_search(search_dir: Path, space, table_dir: Path) -> pd.DataFrame:
    """Rebuild ``search_<space>.{csv,md}`` from every ETAS trace CSV of ``space``."""
    from zcbench.store import atomic_write_text

    files = sorted(Path(search_dir).glob(f"etas-{space.name}-*.csv"))
    if not files:
        return pd.DataFrame()
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    last = final_per_seed(df)
    g = last.groupby("method")
    table = pd.DataFrame({"best_mean": g.best_truth.mean(), "best_std": g.best_truth.std(ddof=1),
                          "evals_mean": g.evaluations.mean(), "evals_std": g.evaluations.std(ddof=1),
                          "to_best_mean": g.evals_to_best.mean(), "to_best_std": g.evals_to_best.std(ddof=1),
                          "n_seeds": g.seed.count()}).reset_index()
    truths = [space.truth(a) for a in pool_of(space)]
    opt = max(truths) if space.higher_is_better else min(truths)
    table = table.sort_values(["best_mean", "to_best_mean"], ascending=[not space.higher_is_better, True])
    atomic_write_text(Path(table_dir) / f"search_{space.name}.csv", table.to_csv(index=False))
    arrow = "higher" if space.higher_is_better else "lower"
    lines = [f"# ETAS regularized evolution on {space.name} ({len(truths)} stored architectures)", "",
             f"Best ground truth reached ({space.metric}, {arrow} is better; pool optimum {opt:.4g}), "
             "mean ± std over seeds; evaluations (table look-ups) used until the search stopped, and until "
             "its final best was first evaluated. Built from "
             f"`{Path(search_dir).as_posix()}/etas-{space.name}-*.csv` by zcbench.search.etas.", "",
             f"| method | best {space.metric} | evaluations used | evaluations to best | seeds |",
             "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r.method} | {r.best_mean:.4g} ± {r.best_std:.3g} | {r.evals_mean:.1f} ± {r.evals_std:.1f} "
                     f"| {r.to_best_mean:.1f} ± {r.to_best_std:.1f} | {r.n_seeds} |")
    atomic_write_text(Path(table_dir) / f"search_{space.name}.md", "\n".join(lines) + "\n")
    return table


# ============================================================================
# Hydra entry point
# ============================================================================
def _default_seq_len(space_name: str, space_options: dict, cfg) -> int:
    """``seq_len: null`` (the LTS spaces' conf): the space's table length (``default_seq_len``)."""
    from zcbench.registry import create_space

    opts = {k: v for k, v in space_options.items() if v is not None}
    space = create_space(space_name, data_dir=cfg.get("data_dir"), **opts)
    return int(space.default_seq_len())


def config_from_hydra(cfg) -> list[ETASConfig]:
    """ETASConfig per requested proxy from a DictConfig composed from conf/etas.yaml.

    Accepts ``space`` as a config group node (with ``name``) or a string, and the proxy
    selection as ``proxies`` (what zcbench.cli's override rewriting produces) or ``proxy``;
    a list runs every proxy in turn.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    def plain(node):
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node

    space = cfg.space
    space_name = str(space.name) if isinstance(space, DictConfig) else str(space)
    space_options = plain(space.get("options")) or {} if isinstance(space, DictConfig) else {}
    sel = cfg.get("proxies", None)
    if sel is None:
        sel = cfg.get("proxy", "ntsr")
    names = [str(x) for x in sel] if isinstance(sel, ListConfig) else [str(sel)]
    seeds = plain(cfg.get("seeds", [0, 1, 2, 3, 4]))
    seeds = [int(seeds)] if isinstance(seeds, int) else [int(s) for s in seeds]
    overrides = plain(cfg.get("proxy_options", {})) or {}
    out = []
    for name in names:
        popts = {}
        if name != NONE:  # defaults from conf/proxy/<name>.yaml, as `run` merges them (same store keys)
            from zcbench.config import proxy_options

            popts = proxy_options([name], {k: v for k, v in overrides.items() if k == name})
            popts.update({k: v for k, v in overrides.items() if k != name})  # e.g. options of components
        out.append(ETASConfig(
            space=space_name, proxy=name, seeds=seeds, N0=int(cfg.N0), n0=int(cfg.n0), N_m=int(cfg.N_m),
            n_m=int(cfg.n_m), mutation_prob=float(cfg.mutation_prob), M=int(cfg.M), patience=int(cfg.patience),
            results_dir=str(cfg.results_dir), batch_size=int(cfg.batch_size), seq_len=int(cfg.seq_len) if cfg.seq_len is not None else _default_seq_len(space_name, space_options, cfg),
            device=str(cfg.device), data_dir=cfg.get("data_dir"), target=cfg.get("target"),
            proxy_seed=int(cfg.get("proxy_seed", 0)), proxy_options=popts, space_options=space_options,
            search_dir=cfg.get("search_dir"), table_dir=cfg.get("table_dir"),
            progress=bool(cfg.get("progress", False))))
    return out


def main_etas(cfg) -> None:
    """``python -m zcbench etas ...``: run ETAS for every requested proxy (see module docstring)."""
    for c in config_from_hydra(cfg):
        run_etas(c)


# ============================================================================
# ETAS's proxies on the LTS tables, beside the published numbers
# ============================================================================
PUBLISHED_SOURCE = "etas_gpt2_wt103"  # zcbench/published.yaml: ETAS Table 3, their own 500-network GPT-2 table


def published_pairs(source: str = PUBLISHED_SOURCE) -> dict:
    """{zcbench proxy name: (Kendall tau, Spearman rho)} of one published.yaml source (every candidate name)."""
    import yaml

    path = Path(__file__).resolve().parents[1] / "published.yaml"
    doc = yaml.safe_load(path.read_text())
    src = next((s for s in doc["sources"] if s["id"] == source), None)
    if src is None:
        raise KeyError(f"{path}: no source {source!r}")
    out = {}
    for e in src["entries"]:
        for name in e["proxy"] if isinstance(e["proxy"], list) else [e["proxy"]]:
            out[name] = (e.get("tau"), e.get("rho"))
    return out


TABLE_PROXIES = ("params", "params_nonembedding", "sept", "ntkt", "ntsr")


def correlation_table(spaces, results_dir: str, batch_size: int, seq_len: int, seed: int = 0, data_dir=None,
                      out: str | None = None, proxies=TABLE_PROXIES, command: str = "") -> pd.DataFrame:
    """Score (or read from the store) ETAS's proxies on ``spaces`` and write the comparison table."""
    from zcbench.runner import RunConfig, run
    from zcbench.store import atomic_write_text

    rows = []
    for name in spaces:
        from omegaconf import OmegaConf

        from zcbench.config import conf_dir

        conf = Path(conf_dir()) / "space" / f"{name}.yaml"
        opts = OmegaConf.to_container(OmegaConf.load(conf)).get("options") or {} if conf.exists() else {}
        rc = RunConfig(space=name, proxies=list(proxies), seed=seed, batch_size=batch_size, seq_len=seq_len,
                       data_dir=data_dir, results_dir=results_dir, space_options=opts, bootstrap=1000,
                       progress=False)
        for proxy, summ in run(rc).items():
            c = summ["correlation"] or {}
            rows.append({"space": name, "proxy": proxy, "n": c.get("n"), "kendall_tau": c.get("kendall_tau"),
                         "spearman_rho": c.get("spearman_rho"), "tau_ci": c.get("tau_ci"), "rho_ci": c.get("rho_ci"),
                         "seconds_per_arch": summ["seconds_per_arch"], "run_key": summ["run_key"]})
    df = pd.DataFrame(rows)
    if out:
        outp = Path(out)
        atomic_write_text(outp / "correlations.csv", df.to_csv(index=False))
        lines = ["# ETAS proxies on the LTS tables", "",
                 f"Command: `{command}`" if command else "", "",
                 f"Minibatch for ntkt: batch_size={batch_size}, seq_len={seq_len} (WikiText-2 windows, seed {seed}, "
                 "CPU, eval mode). sept and params need no data. Published: Yang & Liu (Findings of ACL 2024) on "
                 "*their own* GPT-2 table (not LTS), Kendall tau / Spearman rho. Ours: vs validation perplexity "
                 "(negated), 95% bootstrap CI in brackets.", "",
                 "| proxy | published (ETAS GPT-2) | " + " | ".join(f"ours {s}" for s in spaces) + " |",
                 "|---|---|" + "---|" * len(spaces)]
        published = published_pairs()
        for proxy in proxies:
            pub = published.get(proxy)
            cells = [f"{pub[0]:.2f} / {pub[1]:.2f}" if pub else "—"]
            for s in spaces:
                r = df[(df.space == s) & (df.proxy == proxy)]
                if r.empty or r.kendall_tau.isna().all():
                    cells.append("—")
                    continue
                r = r.iloc[0]
                cells.append(f"{r.kendall_tau:.3f} / {r.spearman_rho:.3f} "
                             f"[{r.rho_ci[0]:.2f}, {r.rho_ci[1]:.2f}] (n={r.n})")
            lines.append(f"| {proxy} | " + " | ".join(cells) + " |")
        lines += ["", "Definitions, deviations and costs: docs/etas.md. ntsr = mean within-set rank of ntkt and sept "
                  "(ranked over each table's full set)."]
        atomic_write_text(outp / "correlations.md", "\n".join(x for x in lines) + "\n")
    return df


def _table_main(argv) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m zcbench.search.etas table")
    ap.add_argument("--spaces", nargs="+", default=["gpt2", "transxl"])
    ap.add_argument("--results-dir", default="results/etas")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/etas")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    command = "python -m zcbench.search.etas table " + " ".join(argv)
    correlation_table(a.spaces, a.results_dir, a.batch_size, a.seq_len, a.seed, a.data_dir, a.out, command=command)
    print((Path(a.out) / "correlations.md").read_text())


if __name__ == "__main__":
    # python -m zcbench.search.etas table [--spaces ...]   the correlation table
    # python -m zcbench.search.etas [hydra overrides]       the search (what `python -m zcbench etas` runs)
    if len(sys.argv) > 1 and sys.argv[1] == "table":
        _table_main(sys.argv[2:])
    else:
        from zcbench.config import hydra_job

        hydra_job("etas", main_etas, sys.argv[1:])
