"""Wall time and peak memory of the full default leaderboard: every registered proxy x every
stored architecture of each space, one seed, through Hydra's joblib launcher.

    python bench/bench_full_leaderboard.py --seed 1                       # W=2 workers, results/
    python bench/bench_full_leaderboard.py --seed 1 --workers 1 --results-dir /tmp/lb

Per space it runs one sweep

    python -m zcbench run -m proxy=[every per-architecture proxy] space=S seed=K \\
        batch_size=B seq_len=T shard=0/W,...,W-1/W hydra/launcher=joblib hydra.launcher.n_jobs=W

(the shards interleave the sorted architecture IDs, so the W jobs get equal shares of large
and small networks, and each scores its share in size order — even shards largest first, odd
shards smallest first, ``zcbench.runner.scoring_order`` — so that two workers do not meet their
largest networks at once), then ``python -m zcbench merge`` over the same proxies, which checks that
every architecture has every score and scores the set-level proxies (``ntsr``) from the stored
components. Joblib gives each worker ``cpu_count // W`` torch threads.

Printed per space and in total: wall time, architectures per minute, the peak resident memory
of the whole process tree (sum over the runner and its workers, sampled every second from
/proc) and of its largest process, and how many scores already existed before the run (a
resumed run is not a measurement of the full cost: use a fresh ``--results-dir`` or a seed
without scores). The run is resumable like any ``zcbench run``: kill it and start it again. Killed
with Ctrl-C or SIGTERM, the script stops the sweep and still prints (and writes to ``--json``)
what it measured until then, marked ``interrupted``.
The default batches are the reproduction table's (scripts/reproduce_tables.sh), which are
smaller than the papers'; pass ``--space gpt2:16x192 --space flexibert:128x128`` for those.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def _process_table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """(ppid -> child pids, pid -> resident bytes) of every process, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(d))  # fields[1] = ppid
            rss[int(d)] = int(Path(f"/proc/{d}/statm").read_text().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
    return children, rss


def _descendants(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    children = _process_table()[0] if children is None else children
    out, stack = [], [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def tree_rss(root: int) -> tuple[int, int]:
    """(sum, max) resident bytes over ``root`` and all its descendants, from /proc."""
    children, rss = _process_table()
    tree = [root] + _descendants(root, children)
    return sum(rss.get(p, 0) for p in tree), max(rss.get(p, 0) for p in tree)


def run_monitored(cmd: list[str], env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    peak = {"sum": 0, "max": 0}
    done = threading.Event()

    def sample():
        while not done.wait(1.0):
            s, m = tree_rss(proc.pid)
            peak["sum"], peak["max"] = max(peak["sum"], s), max(peak["max"], m)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    interrupted = False
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the sweep, keep what was measured (scores stay stored)
        interrupted = True
        for pid in _descendants(proc.pid) + [proc.pid]:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        rc = proc.wait()
    done.set()
    th.join()
    return {"rc": rc, "wall_s": time.perf_counter() - t0, "peak_tree_rss": peak["sum"], "peak_proc_rss": peak["max"],
            "interrupted": interrupted}


def count_scores(results_dir: Path, space: str, proxies: list[str], seed: int, batch: tuple[int, int]) -> int:
    """(proxy, architecture) scores stored for this seed at this minibatch (data-free proxies, whose
    run key holds no minibatch, count whatever their batch): distinct architectures per proxy."""
    n = 0
    for p in proxies:
        best = 0  # the proxy's fullest matching configuration (a data-free proxy may have several versions)
        for meta in (results_dir / "scores" / space / p).glob(f"seed{seed}-*.meta.json"):
            data = json.loads(meta.read_text()).get("data") or {}
            if "batch_size" in data and (data["batch_size"], data.get("seq_len")) != batch:
                continue
            f = meta.with_name(meta.name.replace(".meta.json", ".jsonl"))
            if f.exists():
                ids = {json.loads(line)["arch_id"] for line in f.read_text().splitlines() if line.strip()}
                best = max(best, len(ids))
        n += best
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--space", action="append", default=None,
                    help="NAME:BxT (repeatable; default gpt2:4x192 flexibert:16x128)")
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--n-archs", type=int, default=None, help="a seeded sample of K archs per space (a quick check)")
    ap.add_argument("--json", default=None, help="also write the measurements to this file")
    ap.add_argument("--hvp-chunk", type=int, default=None,
                    help="GraSP's Hessian-vector product over chunks of K examples (run option hvp_chunk: "
                         "bounded memory, one more forward+backward, same scores to round-off)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    sys.path.insert(0, str(REPO))
    import zcbench
    from zcbench.proxy import SetProxy
    from zcbench.registry import get_proxy, list_proxies

    names = list_proxies()
    set_level = [n for n in names if isinstance(get_proxy(n), SetProxy)]
    per_arch = [n for n in names if n not in set_level]
    spaces = args.space or ["gpt2:4x192", "flexibert:16x128"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results_dir = Path(args.results_dir)
    out = {"seed": args.seed, "workers": args.workers, "cpu_count": os.cpu_count(), "hvp_chunk": args.hvp_chunk,
           "proxies": names,
           "zcbench_version": zcbench.__version__, "spaces": {}}
    print(f"{len(names)} registered proxies ({len(per_arch)} per architecture + set-level {set_level}); "
          f"seed {args.seed}; {args.workers} joblib worker(s); results in {results_dir}", flush=True)
    for spec in spaces:
        name, _, shape = spec.partition(":")
        b, t = (int(x) for x in shape.lower().split("x"))
        before = count_scores(results_dir, name, per_arch, args.seed, (b, t))
        shards = ",".join(f"{i}/{args.workers}" for i in range(args.workers))
        common = [f"proxy=[{','.join(per_arch)}]", f"space={name}", f"seed={args.seed}", f"batch_size={b}",
                  f"seq_len={t}", f"results_dir={results_dir}", "progress=false", "bootstrap=0",
                  f"n_archs={'null' if args.n_archs is None else args.n_archs}"]
        if args.hvp_chunk is not None:
            common.append(f"hvp_chunk={args.hvp_chunk}")
        run = run_monitored([sys.executable, "-m", "zcbench", "run", "-m", *common, f"shard={shards}",
                             "hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.workers}"], env)
        if run["interrupted"]:  # what was measured until the kill; rerun the same command to resume
            after = count_scores(results_dir, name, per_arch, args.seed, (b, t))
            out["spaces"][name] = {"batch": f"{b}x{t}", "interrupted": True, "scores_before": before,
                                   "scores_after": after, "sweep_wall_s": run["wall_s"],
                                   "peak_tree_rss_gib": run["peak_tree_rss"] / 2**30,
                                   "peak_proc_rss_gib": run["peak_proc_rss"] / 2**30}
            print(f"{name} ({b}x{t}): INTERRUPTED after {run['wall_s'] / 60:.1f} min: {after - before} scores "
                  f"added ({after} stored), peak RSS {run['peak_tree_rss'] / 2**30:.2f} GiB all processes / "
                  f"{run['peak_proc_rss'] / 2**30:.2f} GiB largest; the same command resumes", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
            return 130
        if run["rc"] != 0:
            print(f"{name}: the sweep failed (exit {run['rc']})", file=sys.stderr)
            return run["rc"]
        merge = run_monitored([sys.executable, "-m", "zcbench", "merge",
                               f"proxy=[{','.join(names)}]", *common[1:]], env)
        if merge["rc"] != 0:
            print(f"{name}: merge failed (exit {merge['rc']})", file=sys.stderr)
            return merge["rc"]
        after = count_scores(results_dir, name, per_arch, args.seed, (b, t))
        n_archs = after // max(1, len(per_arch))
        wall = run["wall_s"] + merge["wall_s"]
        res = {"batch": f"{b}x{t}", "n_archs": n_archs, "scores_before": before, "scores_after": after,
               "wall_s": wall, "sweep_wall_s": run["wall_s"], "merge_wall_s": merge["wall_s"],
               "archs_per_min": n_archs / wall * 60 if wall else None,
               "peak_tree_rss_gib": max(run["peak_tree_rss"], merge["peak_tree_rss"]) / 2**30,
               "peak_proc_rss_gib": max(run["peak_proc_rss"], merge["peak_proc_rss"]) / 2**30}
        out["spaces"][name] = res
        print(f"{name} ({b}x{t}): {n_archs} archs, {wall / 60:.1f} min wall ({res['archs_per_min']:.1f} archs/min), "
              f"peak RSS {res['peak_tree_rss_gib']:.2f} GiB all processes / {res['peak_proc_rss_gib']:.2f} GiB largest"
              + (f"; RESUMED: {before} of {after} scores existed before" if before else ""), flush=True)
    total = sum(r["wall_s"] for r in out["spaces"].values())
    out["total_wall_s"] = total
    out["peak_tree_rss_gib"] = max(r["peak_tree_rss_gib"] for r in out["spaces"].values())
    print(f"total: {total / 60:.1f} min wall, peak RSS {out['peak_tree_rss_gib']:.2f} GiB "
          f"(goals: issue 8, reproduction batches <= 60 min; issue 18, papers' minibatches <= 2 h; <= 8 GB)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
