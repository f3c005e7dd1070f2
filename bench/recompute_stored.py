"""Cross-machine sensitivity: recompute a sample of stored scores here and compare.

For every stored score file of one space (plain space options, not a project-built table,
not a set-level proxy; seed 0, or the lowest stored seed when a proxy has no seed-0 file),
this rebuilds the proxy with the file's stored options, checks that today's code gives the
same run key (same data config and proxy version: otherwise the file is reported as
"key differs" and not compared), rescores a few architectures with the engine and prints
the largest relative difference |new - stored| / max(|stored|, tiny) per proxy. The
stored results are only read; nothing is written under results/.

    python bench/recompute_stored.py --space gpt2 --n 5 --include config_9_j3 --out /tmp/recompute.json

The architectures: every ``--include`` ID/key, then a seeded sample (seed 0) of the rest.
Run with the thread count of the stored runs (``OMP_NUM_THREADS=1``) to separate the CPU
from the thread count. docs/testing.md quotes the table this prints.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def stored_files(results: Path, space: str):
    """proxy -> (meta, jsonl path) of the file to recompute (seed 0 preferred)."""
    from zcbench.store import iter_score_files

    by_proxy = defaultdict(list)
    for meta, path in iter_score_files(results, space):
        if meta.get("set_level") or meta["data"].get("space_options"):
            continue
        by_proxy[meta["proxy"]].append((meta, path))
    out = {}
    for name, files in sorted(by_proxy.items()):
        files.sort(key=lambda mp: (mp[0]["seed"], mp[0]["run_key"]))
        seed = files[0][0]["seed"]
        out[name] = [mp for mp in files if mp[0]["seed"] == seed]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="gpt2")
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--n", type=int, default=5, help="architectures per stored file")
    ap.add_argument("--include", nargs="*", default=[], help="architecture keys or IDs always recomputed")
    ap.add_argument("--proxies", nargs="*", default=None, help="only these proxies")
    ap.add_argument("--out", default=None, help="write every recomputed value here (JSON)")
    args = ap.parse_args(argv)

    import torch

    from zcbench.engine import score_arch
    from zcbench.registry import create_space, get_proxy
    from zcbench.runner import RunConfig, data_config
    from zcbench.store import run_key

    space = create_space(args.space)
    stored_archs = sorted(space.stored(), key=lambda a: a.id)
    want = [a for a in stored_archs if a.id in args.include or a.key in args.include]
    rest = [a for a in stored_archs if a not in want]
    archs = want + random.Random(0).sample(rest, max(0, args.n - len(want)))
    print(f"{args.space}: {len(archs)} architectures: {', '.join(a.key for a in archs)}; "
          f"torch threads {torch.get_num_threads()}", flush=True)

    rows, dump = [], []
    for name, files in stored_files(Path(args.results), args.space).items():
        if args.proxies and name not in args.proxies:
            continue
        for meta, path in files:
            data = meta["data"]
            try:
                p = get_proxy(name, **(data.get("proxy_options") or {}))
            except Exception as exc:  # noqa: BLE001 - report and go on
                rows.append((name, meta["run_key"], "cannot build", f"{type(exc).__name__}: {exc}"))
                continue
            rc = RunConfig(space=args.space, proxies=[name], seed=meta["seed"],
                           batch_size=data.get("batch_size") or 16, seq_len=data.get("seq_len") or 128)
            batch_info = (space.make_batch(rc.batch_size, rc.seq_len, rc.seed).info
                          if "batch" in data else None)
            key = run_key(rc.seed, data_config(rc, space, p, batch_info), p.version)
            if key != meta["run_key"]:
                rows.append((name, meta["run_key"], "key differs", f"today's code gives {key}"))
                continue
            recs = {}
            for line in open(path):
                if line.strip():
                    r = json.loads(line)
                    recs.setdefault(r["arch_id"], r)
            worst, t0, n = 0.0, time.perf_counter(), 0
            for a in archs:
                if a.id not in recs:
                    continue
                old = float(recs[a.id]["score"]) if recs[a.id]["score"] is not None else math.nan
                new = score_arch(space, a, [p], seed=rc.seed, batch_size=rc.batch_size,
                                 seq_len=rc.seq_len)[name].value
                if math.isnan(old) and math.isnan(new):
                    rel = 0.0
                elif math.isnan(old) or math.isnan(new):
                    rel = math.inf
                else:
                    rel = abs(new - old) / max(abs(old), 1e-300) if new != old else 0.0
                worst = max(worst, rel)
                n += 1
                dump.append({"proxy": name, "run_key": key, "arch": a.key, "stored": old, "recomputed": new,
                             "rel_diff": rel})
            rows.append((name, key, f"{worst:.2e}", f"n={n}, {time.perf_counter() - t0:.0f} s"))
            print(f"{name:22s} {key:22s} max rel diff {worst:.2e} (n={n})", flush=True)

    print("\n| proxy | stored run | max relative difference | note |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    if args.out:
        Path(args.out).write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
