"""``python -m zcbench search ...``: LPZero proxy search and its experiments.

``main_search(cfg)`` takes the composed Hydra config of ``conf/search.yaml``; ``task``
picks what runs:

``search``   one GP (or random) search on ``n_archs`` architectures sampled with
             ``seed`` from the space's stored table; writes
             ``<out>/history.csv`` and ``<out>/result.yaml`` and, with ``name=...``,
             the best expression to ``results/lpzero/proxies/<name>.yaml``;
``ablation`` ``study=rps|n_unary|population`` over ``seeds``; writes
             ``results/lpzero/ablation_<study>.csv`` (+ ``_summary.csv`` and a PNG);
``transfer`` evaluate ``transfer_proxies`` (names or files) and ``params`` on the full stored
             table of every space in ``eval_spaces``; writes
             ``results/lpzero/transfer.csv``;
``cache``    only capture the inputs of ``n_archs`` architectures (null = all).
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from zcbench.search.lpzero.evaluate import Evaluator, spearman, valid_scores
from zcbench.search.lpzero.expr import Expr, load_expr_file, parse
from zcbench.search.lpzero.gp import Fitness, SearchConfig, search
from zcbench.search.lpzero.inputs import Bank, CacheConfig, load_or_capture, nbytes


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _plain(node):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def space_and_archs(space_name: str, cfg, n_archs, seed: int):
    """``(space, archs, space options)``: the stored architectures with a finite ground truth, sorted by
    ID, or a seeded sample of ``n_archs`` of them; options from the search config or ``conf/space``."""
    from zcbench.registry import create_space

    if cfg.get("space") is not None and str(cfg.space.name) == space_name:
        opts = _plain(cfg.space.get("options"))
    else:  # another space: its own conf/space/<name>.yaml options, as `run space=<name>` would use
        from omegaconf import OmegaConf

        from zcbench.config import conf_dir

        f = Path(conf_dir()) / "space" / f"{space_name}.yaml"
        opts = _plain(OmegaConf.load(f).get("options")) if f.exists() else {}
    space = create_space(space_name, data_dir=cfg.get("data_dir"), target=cfg.get("target")
                         if str(cfg.space.name) == space_name else None, **opts)
    stored = [a for a in space.stored() if space.metric in a.truth and math.isfinite(space.truth(a))]
    stored.sort(key=lambda a: a.id)
    if n_archs is not None and n_archs < len(stored):
        archs = random.Random(seed).sample(stored, int(n_archs))
    else:
        archs = stored
    return space, archs, opts


def cache_config(cfg, space_name: str, opts: dict) -> CacheConfig:
    """The input-cache key of a search config (what the captured inputs depend on)."""
    return CacheConfig(space=space_name, seed=int(cfg.data_seed), batch_size=int(cfg.batch_size),
                       seq_len=int(cfg.seq_len), rows=int(cfg.rows), cols=int(cfg.cols),
                       subsample_seed=int(cfg.subsample_seed), device=str(cfg.device), space_options=opts)


def oriented_truth(space, archs) -> np.ndarray:
    """Ground truth of ``archs``, negated when lower is better (higher = better)."""
    t = np.array([space.truth(a) for a in archs], dtype=float)
    return t if space.higher_is_better else -t


def build_fitness(cfg, space_name: str, n_archs, seed: int):
    space, archs, opts = space_and_archs(space_name, cfg, n_archs, seed)
    cc = cache_config(cfg, space_name, opts)
    t0 = time.perf_counter()
    per_arch = load_or_capture(space, archs, cc)
    t_cache = time.perf_counter() - t0
    bank = Bank([a.id for a in archs], per_arch)
    ev = Evaluator(bank)
    info = {"space": space_name, "n_archs": len(archs), "cache_key": cc.key, "cache_dir": str(cc.folder()),
            "cache_seconds": round(t_cache, 2), "bytes_per_arch": int(np.mean([nbytes(per_arch[a.id]) for a in archs])),
            "bank_bytes": bank.nbytes, "metric": space.metric}
    return Fitness(ev, oriented_truth(space, archs)), archs, info


def _search_config(cfg, **over) -> SearchConfig:
    d = dict(population=int(cfg.population), generations=int(cfg.generations),
             tournament_ratio=float(cfg.tournament_ratio), crossover=float(cfg.crossover),
             mutation=float(cfg.mutation), mutation_gene_prob=float(cfg.mutation_gene_prob),
             n_unary=int(cfg.n_unary), rps=bool(cfg.rps), method=str(cfg.method), seed=int(cfg.seed),
             max_tries=int(cfg.max_tries))
    d.update(over)
    if d["method"] not in ("gp", "random"):
        raise ValueError(f"method must be gp or random, got {d['method']!r}")
    return SearchConfig(**d)


def _command(cfg) -> str:
    over = [a for a in sys.argv[1:]]
    return "python -m zcbench search " + " ".join(shlex.quote(a) for a in over)


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        return
    keys = list(rows[0])
    for r in rows[1:]:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _yaml_dump(path: Path, d: dict) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True))


def _top_unique(population, n: int) -> list[dict]:
    out, seen = [], set()
    for f, s in population:
        if s not in seen:
            seen.add(s)
            out.append({"rho": float(f), "formula": s})
        if len(out) == n:
            break
    return out


def _arch_seed(cfg) -> int:
    return int(cfg.seed if cfg.get("arch_seed") is None else cfg.arch_seed)


def task_search(cfg) -> dict:
    space_name = str(cfg.space.name)
    fit, archs, info = build_fitness(cfg, space_name, cfg.n_archs, _arch_seed(cfg))
    sc = _search_config(cfg)
    _log(f"[lpzero] {space_name}: {info['n_archs']} archs, {info['bytes_per_arch'] / 2**20:.2f} MiB/arch cached, "
         f"search {sc}")
    res = search(fit, sc, log=_log)
    root = Path(cfg.results_dir) / "lpzero"
    tag = f"{space_name}-{sc.method}{'-rps' if sc.rps and sc.method == 'gp' else ''}-u{sc.n_unary}-p{sc.population}" \
          f"-g{sc.generations}-s{sc.seed}"
    out = Path(cfg.out) if cfg.get("out") else root / "runs" / tag
    _write_csv(out / "history.csv", res.history)
    summary = {
        "expression": res.best.to_dict(), "fitness_spearman": float(res.best_fitness),
        "search": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sc.__dict__.items()},
        "data": {"space": space_name, "n_archs": info["n_archs"], "arch_sample_seed": _arch_seed(cfg),
                 "data_seed": int(cfg.data_seed), "batch_size": int(cfg.batch_size), "seq_len": int(cfg.seq_len),
                 "rows": int(cfg.rows), "cols": int(cfg.cols), "subsample_seed": int(cfg.subsample_seed),
                 "metric": info["metric"], "cache_key": info["cache_key"]},
        "timing": {"cache_seconds": info["cache_seconds"], "init_seconds": round(res.init_seconds, 3),
                   "search_seconds": round(res.seconds, 3),
                   "seconds_per_generation": round((res.seconds - res.init_seconds) / max(1, sc.generations), 5),
                   "distinct_evaluations": res.n_evals, "rule_rejects": res.n_rule_rejects,
                   "score_rejects": res.n_score_rejects, "bytes_per_arch": info["bytes_per_arch"]},
        "top10": _top_unique(res.population, 10),
        "command": _command(cfg),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _yaml_dump(out / "result.yaml", summary)
    if cfg.get("name"):
        _yaml_dump(root / "proxies" / f"{cfg.name}.yaml", summary)
        _log(f"[lpzero] saved {root / 'proxies' / f'{cfg.name}.yaml'}")
    print(f"{space_name} | lpzero search ({sc.method}{', RPS' if sc.rps and sc.method == 'gp' else ''}) | "
          f"best rho = {res.best_fitness:.4f} on {info['n_archs']} archs | {res.best.formula} | "
          f"{res.seconds:.1f}s ({summary['timing']['seconds_per_generation'] * 1000:.2f} ms/generation)",
          flush=True)
    return summary


STUDIES = {
    "rps": [{"label": "random", "method": "random", "rps": False}, {"label": "gp", "method": "gp", "rps": False},
            {"label": "gp+rps", "method": "gp", "rps": True}],
    "n_unary": [{"label": f"n_unary={n}", "n_unary": n} for n in (2, 3, 4, 5)],
    "population": [{"label": f"population={p}", "population": p} for p in (80, 100, 200)],
}


def task_ablation(cfg) -> list[dict]:
    study = str(cfg.study)
    if study not in STUDIES:
        raise ValueError(f"study must be one of {', '.join(STUDIES)}, got {study!r}")
    space_name = str(cfg.space.name)
    seeds = [int(s) for s in cfg.seeds]
    rows, finals = [], []
    # the architecture sample stays fixed (arch_seed, default seed); the search seed varies
    fit, archs, info = build_fitness(cfg, space_name, cfg.n_archs, _arch_seed(cfg))
    for variant in STUDIES[study]:
        over = {k: v for k, v in variant.items() if k != "label"}
        for s in seeds:
            sc = _search_config(cfg, seed=s, **over)
            fit.memo.clear()  # evaluation counts start from zero for each run
            fit.n_evals = 0
            res = search(fit, sc)
            _log(f"[lpzero ablation {study}] {variant['label']} seed {s}: best rho {res.best_fitness:.4f} "
                 f"({res.seconds:.1f}s) {res.best.formula}")
            for h in res.history:
                rows.append({"study": study, "variant": variant["label"], "seed": s, "generation": h["generation"],
                             "best_rho": h["best_rho"], "n_evals": h["n_evals"]})
            finals.append({"study": study, "variant": variant["label"], "seed": s, "best_rho": res.best_fitness,
                           "best": res.best.formula, "n_evals": res.n_evals, "rule_rejects": res.n_rule_rejects,
                           "score_rejects": res.n_score_rejects, "seconds": round(res.seconds, 2),
                           "population": sc.population, "generations": sc.generations, "n_unary": sc.n_unary,
                           "n_archs": info["n_archs"], "space": space_name})
    root = Path(cfg.results_dir) / "lpzero"
    _write_csv(root / f"ablation_{study}.csv", rows)
    _write_csv(root / f"ablation_{study}_final.csv", finals)
    _plot_ablation(root / f"ablation_{study}.png", rows, study, space_name, info["n_archs"])
    return finals


def _plot_ablation(path: Path, rows: list[dict], study: str, space: str, n_archs: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas as pd
    except ImportError:  # pragma: no cover
        return
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, g in df.groupby("variant", sort=False):
        piv = g.pivot(index="generation", columns="seed", values="best_rho")
        m, s = piv.mean(axis=1), piv.std(axis=1).fillna(0)
        ax.plot(m.index, m.values, label=f"{label} ({piv.shape[1]} seeds)")
        ax.fill_between(m.index, (m - s).values, (m + s).values, alpha=0.2)
    ax.set_xlabel("generation")
    ax.set_ylabel("best Spearman rho (search sample)")
    ax.set_title(f"LPZero search, {study} ablation: {space}, {n_archs} archs")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def resolve_proxy_file(name_or_path: str, results_dir: str = "results") -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml", ".json") and p.exists():
        return p
    cand = Path(results_dir) / "lpzero" / "proxies" / f"{name_or_path}.yaml"
    if cand.exists():
        return cand
    repo = Path(__file__).resolve().parents[3]
    cand2 = repo / "results" / "lpzero" / "proxies" / f"{name_or_path}.yaml"
    if cand2.exists():
        return cand2
    from zcbench.errors import ConfigError

    looked = list(dict.fromkeys(str(x.resolve()) for x in (p, cand, cand2)))  # each candidate once
    raise ConfigError(f"no searched proxy {name_or_path!r}: no file at {', '.join(looked)}")


def task_transfer(cfg) -> list[dict]:
    """rho of each proxy (and params) on the full stored table of every space in eval_spaces."""
    from zcbench.registry import get_proxy

    exprs = {}
    for name in cfg.transfer_proxies:
        e, d = load_expr_file(resolve_proxy_file(str(name), str(cfg.results_dir)))
        exprs[str(name)] = (e, d.get("data", {}).get("space", "?"))
    rows = []
    for sp in cfg.eval_spaces:
        sp = str(sp)
        space, archs, opts = space_and_archs(sp, cfg, None, 0)
        cc = cache_config(cfg, sp, opts)
        n_all = len(archs)
        if cfg.get("eval_cached_only"):
            # only architectures whose inputs are already on disk (arch-id order is a hash:
            # unrelated to quality); the CSV records how many of the table were used
            archs = [a for a in archs if (cc.folder() / f"{a.id}.pt").exists()]
        per_arch = load_or_capture(space, archs, cc)
        bank = Bank([a.id for a in archs], per_arch)
        ev = Evaluator(bank)
        truth = oriented_truth(space, archs)
        params = get_proxy("params")
        from zcbench.engine import score_arch

        pv = np.array([score_arch(space, a, [params])["params"].value for a in archs])
        rows.append({"proxy": "params", "searched_on": "-", "eval_space": sp, "n_archs": len(archs),
                     "table_size": n_all, "spearman": spearman(pv, truth), "n_invalid": 0, "formula": "-"})
        for name, (e, src) in exprs.items():
            s = ev.scores(e)
            ok = np.isfinite(s)
            rho = spearman(s[ok], truth[ok]) if ok.sum() > 2 else float("nan")
            rows.append({"proxy": name, "searched_on": src, "eval_space": sp, "n_archs": int(ok.sum()),
                         "table_size": n_all, "spearman": rho, "n_invalid": int((~ok).sum()), "formula": e.formula})
            _log(f"[lpzero transfer] {name} (searched on {src}) on {sp}: rho {rho:.4f} over {ok.sum()} archs")
    _write_csv(Path(cfg.results_dir) / "lpzero" / str(cfg.get("transfer_out") or "transfer.csv"), rows)
    return rows


def task_cache(cfg) -> dict:
    space_name = str(cfg.space.name)
    space, archs, opts = space_and_archs(space_name, cfg, cfg.n_archs, _arch_seed(cfg))
    cc = cache_config(cfg, space_name, opts)
    t0 = time.perf_counter()
    per = load_or_capture(space, archs, cc)
    out = {"space": space_name, "n_archs": len(archs), "seconds": round(time.perf_counter() - t0, 1),
           "bytes_per_arch": int(np.mean([nbytes(v) for v in per.values()])), "folder": str(cc.folder())}
    print(json.dumps(out))
    return out


TASKS = {"search": task_search, "ablation": task_ablation, "transfer": task_transfer, "cache": task_cache}


def main_search(cfg):
    """Entry point for ``python -m zcbench search`` (composed ``conf/search.yaml``)."""
    import torch

    torch.set_num_threads(int(cfg.get("threads") or 1))
    task = str(cfg.get("task") or "search")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return TASKS[task](cfg)


__all__ = ["main_search", "Expr", "parse", "valid_scores"]
