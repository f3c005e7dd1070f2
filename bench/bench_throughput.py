"""Throughput of a sweep with 1 vs 2 joblib workers: architectures scored per minute.

    python bench/bench_throughput.py                    # gpt2, grad_norm (or snip/params), 8 archs
    python bench/bench_throughput.py --n-archs 16 --proxy snip --workers 1 2 4

For each worker count W the same work -- ``--n-archs`` architectures of ``--space``
split into ``shard=0/K ... K-1/K`` jobs (K = the largest W) -- runs as one
``python -m zcbench run -m ... hydra/launcher=joblib hydra.launcher.n_jobs=W`` into a
fresh results folder, so nothing is resumed. Two numbers per W:

* end-to-end: architectures / wall-clock of the whole command (Python and torch start-up,
  Hydra composition, worker spawn, batch construction and scoring), what a user waits;
* scoring: architectures / the span between the first and the last stored record,
  (record stamps have one-second resolution, so use it only with runs of a minute or more).

A warm-up run first fills the tokenizer cache so that no timed run trains it. Joblib gives
each of W workers ``cpu_count // W`` threads for torch, so W=1 already uses every core
through intra-op parallelism; the ratio shows what process-level parallelism adds on top.
The numbers depend on the machine and on its load: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_proxy() -> str:
    sys.path.insert(0, str(REPO))
    from zcbench.registry import list_proxies

    names = list_proxies()
    return next((p for p in ("grad_norm", "snip") if p in names), "params")


def zc(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "zcbench", *args], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"command failed ({out.returncode}): zcbench {' '.join(args)}\n{out.stderr[-3000:]}")
    return wall, out


def stored_records(results: Path) -> list[dict]:
    recs = []
    for f in (results / "scores").glob("*/*/*.jsonl"):
        recs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return recs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="gpt2")
    ap.add_argument("--proxy", default=None, help="default: grad_norm, else snip, else params")
    ap.add_argument("--n-archs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", action="store_true", help="keep the results folders (printed)")
    args = ap.parse_args()
    proxy = args.proxy or default_proxy()
    n_shards = max(args.workers)
    common = [f"proxy={proxy}", f"space={args.space}", f"seed={args.seed}", f"n_archs={args.n_archs}",
              f"batch_size={args.batch_size}", f"seq_len={args.seq_len}", "bootstrap=0", "progress=false"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    tmp = Path(tempfile.mkdtemp(prefix="zcbench-bench-"))

    print(f"space={args.space} proxy={proxy} n_archs={args.n_archs} batch_size={args.batch_size} "
          f"seq_len={args.seq_len} shards={n_shards} cpus={os.cpu_count()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (joblib: cpus // workers)')} "
          f"load={os.getloadavg()[0]:.1f}", flush=True)
    zc(["run", *common, "n_archs=1", f"results_dir={tmp / 'warmup'}"], env)  # tokenizer cache, page cache

    shards = ",".join(f"{i}/{n_shards}" for i in range(n_shards))
    rates = {}
    for w in args.workers:
        res = tmp / f"w{w}"
        wall, _ = zc(["run", "-m", *common, f"shard={shards}", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={w}",
                      f"results_dir={res}"], env)
        recs = stored_records(res)
        if len(recs) != args.n_archs or len({r["arch_id"] for r in recs}) != args.n_archs:
            sys.exit(f"expected {args.n_archs} stored scores with {w} workers, found {len(recs)}")
        stamps = sorted(dt.datetime.fromisoformat(r["time"]) for r in recs)
        first_start = min(dt.datetime.fromisoformat(r["time"]).timestamp() - r["pass_seconds"] for r in recs)
        span = stamps[-1].timestamp() - first_start
        per_arch = sum(r["pass_seconds"] for r in recs) / len(recs)
        rates[w] = 60 * args.n_archs / wall
        print(f"workers={w}: {rates[w]:7.2f} archs/min end-to-end ({wall:6.1f} s)   "
              f"{60 * args.n_archs / span:7.2f} archs/min scoring ({span:6.1f} s)   "
              f"{per_arch:6.2f} s/arch inside a worker", flush=True)
    base = args.workers[0]
    for w in args.workers[1:]:
        print(f"ratio {w} vs {base} workers: {rates[w] / rates[base]:.2f}x end-to-end")
    if args.keep:
        print(f"results kept in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
