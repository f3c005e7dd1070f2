"""Benchmark: LPZero GP search speed on cached inputs (the goal: 1000 generations over
50 architectures in <= 15 minutes on 2 CPU cores).

    python bench/bench_lpzero_search.py                     # gpt2, S=50, p=80, G=1000, 1 thread
    python bench/bench_lpzero_search.py --generations 200 --threads 2

Prints: capture seconds per architecture (only for architectures not cached yet),
cached bytes per architecture, seconds for the initial population, seconds per
generation, total search seconds, distinct candidate evaluations and evaluations per
second. Everything runs on CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="gpt2")
    ap.add_argument("--n-archs", type=int, default=50)
    ap.add_argument("--population", type=int, default=80)
    ap.add_argument("--generations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-rps", action="store_true")
    args = ap.parse_args(argv)

    import torch
    from omegaconf import OmegaConf

    torch.set_num_threads(args.threads)
    from zcbench.search.lpzero.cli import build_fitness, _search_config
    from zcbench.search.lpzero.gp import search

    conf = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "search.yaml")
    conf.pop("defaults", None)
    conf.pop("hydra", None)
    cfg = OmegaConf.merge(conf, {"space": {"name": args.space, "options": {}}, "n_archs": args.n_archs,
                                 "population": args.population, "generations": args.generations,
                                 "seed": args.seed, "batch_size": args.batch_size, "seq_len": args.seq_len,
                                 "rps": not args.no_rps})
    t0 = time.perf_counter()
    fit, archs, info = build_fitness(cfg, args.space, args.n_archs, args.seed)
    t_cache = time.perf_counter() - t0
    sc = _search_config(cfg)
    res = search(fit, sc)
    per_gen = (res.seconds - res.init_seconds) / max(1, sc.generations)
    out = {
        "space": args.space, "n_archs": len(archs), "population": sc.population, "generations": sc.generations,
        "rps": sc.rps, "threads": args.threads, "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cache_or_capture_seconds": round(t_cache, 2), "bytes_per_arch": info["bytes_per_arch"],
        "init_population_seconds": round(res.init_seconds, 2), "seconds_per_generation": round(per_gen, 5),
        "search_seconds": round(res.seconds, 2), "distinct_evaluations": res.n_evals,
        "evaluations_per_second": round(res.n_evals / res.seconds, 2) if res.seconds else None,
        "best_rho": round(float(res.best_fitness), 4), "best": res.best.formula,
    }
    print(f"LPZero search bench | {args.space} S={len(archs)} p={sc.population} G={sc.generations} "
          f"RPS={sc.rps} threads={args.threads} | {per_gen * 1000:.2f} ms/generation | total "
          f"{res.seconds:.1f} s (init {res.init_seconds:.1f} s) | {res.n_evals} distinct evaluations | "
          f"cached inputs {info['bytes_per_arch'] / 2**20:.2f} MiB/arch | load avg {out['load_avg_1min']}")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
