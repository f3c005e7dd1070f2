"""Peak memory of the whole catalogue on the *largest* stored network of each space.

    python bench/bench_peak_memory.py                               # the papers' default batches
    python bench/bench_peak_memory.py --batch gpt2:4x192 --batch flexibert:16x128
    python bench/bench_peak_memory.py --hvp-chunk 4 --hvp-chunk 0     # GraSP's H g over chunks vs whole

For each ``SPACE:BxT`` the script finds the stored architecture with the most parameters
(counted on the meta device, nothing allocated), then scores it with every registered
per-architecture proxy in a fresh subprocess (bench_cost_growth's worker: one torch thread,
``getrusage(RUSAGE_SELF).ru_maxrss``), and prints the peak RSS next to the 8 GB budget of
issue 8 for one and for two workers (two workers can meet two such networks at once).
``--hvp-chunk K`` (repeatable; 0 = the whole minibatch, the default) scores with the run option
``hvp_chunk=K`` (GraSP's Hessian-vector product over chunks of K examples) and prints GraSP's
value, so that the runs' peaks, times and values can be compared.

``--pair`` scores the space's *two* largest stored networks at the same time, each in its own
worker process as above, and samples the resident memory of both (and of this script) from /proc
every half second: the worst case two sweep workers can meet, measured rather than bounded by twice
the largest network's peak.

    python bench/bench_peak_memory.py --batch gpt2:16x192 --hvp-chunk 4 --pair

``--sweep-pair`` asks which pair a real two-worker sweep meets: it replays ``shard=0/2,1/2`` in
the ID order and in the runner's scoring order (``zcbench.runner.scoring_order``: shard 0 largest
first, shard 1 smallest first) with the per-network wall times stored in the space's GraSP score
file at that minibatch, prints the largest pair (by parameters) scored at the same time in each,
and measures the scoring order's pair as ``--pair`` does.

    python bench/bench_peak_memory.py --batch gpt2:16x192 --hvp-chunk 4 --sweep-pair
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

DEFAULT = ["gpt2:16x192", "flexibert:128x128"]


def by_size(space):
    """Stored architectures with their parameter counts (meta device), largest first."""
    return sorted(((a, space.model_params(a)) for a in space.stored()), key=lambda an: -an[1])


def largest(space):
    return by_size(space)[0]


def stored_walls(name: str, b: int, t: int, seed: int = 0) -> dict:
    """arch_id -> seconds a sweep worker spent on it (``pass_seconds``) from the stored GraSP score
    file of this space at B x T (GraSP was scored with every other proxy on each network)."""
    import json

    best = {}
    for meta in sorted((REPO / "results" / "scores" / name / "grasp").glob(f"seed{seed}-*.meta.json")):
        m = json.loads(meta.read_text())
        if (m.get("data", {}).get("batch_size"), m.get("data", {}).get("seq_len")) != (b, t):
            continue
        recs = [json.loads(ln) for ln in meta.with_name(meta.name[: -len(".meta.json")] + ".jsonl").read_text().splitlines()]
        walls = {r["arch_id"]: r["pass_seconds"] for r in recs}
        if len(walls) > len(best):
            best = walls
    return best


def sweep_pairs(name: str, b: int, t: int) -> tuple:
    """Two shards (``shard=0/2,1/2``) in the ID order and in the runner's scoring order
    (``zcbench.runner.scoring_order``), replayed with the stored per-network wall times: the largest
    pair of networks (by parameters) that the two workers score at the same time in each."""
    import statistics

    import zcbench
    from zcbench.runner import scoring_order, select_archs

    space = zcbench.create_space(name)
    sized = by_size(space)
    size = {a.id: n for a, n in sized}
    rank = {a.id: i + 1 for i, (a, _) in enumerate(sized)}
    walls = stored_walls(name, b, t)
    if not walls:
        raise SystemExit(f"no stored GraSP score file of {name} at {b}x{t}: its wall times replay the sweep")
    med = statistics.median(walls.values())

    def replay(shards):
        spans = []
        for order in shards:
            t0, spans_i = 0.0, []
            for a in order:
                w = walls.get(a.id, med)
                spans_i.append((t0, t0 + w, a))
                t0 += w
            spans.append(spans_i)
        best = max(((size[a.id] + size[c.id], a, c) for s0, e0, a in spans[0] for s1, e1, c in spans[1]
                    if s0 < e1 and s1 < e0), key=lambda x: x[0])
        return best[1], best[2]

    shards = [select_archs(space, None, 0, f"{i}/2") for i in range(2)]
    out = {}
    for label, orders in (("ID order", shards),
                          ("scoring order", [scoring_order(space, s, f"{i}/2") for i, s in enumerate(shards)])):
        a, c = replay(orders)
        out[label] = (a, c)
        print(f"{name} {b}x{t} two shards, {label} (stored wall times of {len(walls)} networks): largest pair at once "
              f"{a.id} (#{rank[a.id]}, {size[a.id] / 1e6:.1f} M) + {c.id} (#{rank[c.id]}, {size[c.id] / 1e6:.1f} M)",
              flush=True)
    return [(a, size[a.id]) for a in out["scoring order"]]


def pair_peak(name: str, b: int, t: int, k: int, timeout: float, two=None) -> None:
    """Two networks (default: the two largest) scored at once (two worker processes); peak of their
    summed RSS."""
    import os
    import threading

    import zcbench
    from bench_cost_growth import run_point
    from bench_full_leaderboard import tree_rss

    two = two or by_size(zcbench.create_space(name))[:2]
    recs, errors, peak = {}, [], {"sum": 0, "max": 0, "workers": 0}
    page = os.sysconf("SC_PAGE_SIZE")
    done = threading.Event()

    def point(arch):
        try:
            recs[arch.id] = run_point(dict(space=name, arch=arch.id, batch_size=b, seq_len=t, seed=0, proxies=None,
                                           hvp_chunk=k or None), timeout)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{arch.id}: {exc}")

    def sample():
        while not done.wait(0.5):
            s, m = tree_rss(os.getpid())
            own = int(open("/proc/self/statm").read().split()[1]) * page
            peak["sum"], peak["max"] = max(peak["sum"], s), max(peak["max"], m)
            peak["workers"] = max(peak["workers"], s - own)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    workers = [threading.Thread(target=point, args=(a,)) for a, _ in two]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    sampler.join()
    if errors:
        raise SystemExit("pair failed: " + "; ".join(errors))
    gib = peak["sum"] / 2**30
    each = ", ".join(f"{a.id} ({n / 1e6:.1f} M params) alone-peak {recs[a.id]['rss_peak_mb'] / 1024:.2f} GiB"
                     for a, n in two)
    print(f"{name} {b}x{t} hvp_chunk={k or 'null'} pair: {each}; at once, sampled every 0.5 s: "
          f"{gib:.2f} GiB with this script ({peak['workers'] / 2**30:.2f} GiB the two workers alone; largest "
          f"process {peak['max'] / 2**30:.2f} GiB), "
          f"{'within' if gib <= 8 / 1.0737 else 'OVER'} 8 GB", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", action="append", default=None, help="SPACE:BxT (repeatable)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--hvp-chunk", type=int, action="append", default=None,
                    help="run option hvp_chunk=K (repeatable; 0 = whole minibatch)")
    ap.add_argument("--pair", action="store_true",
                    help="score the two largest networks at once (two workers) and sample their summed RSS")
    ap.add_argument("--sweep-pair", action="store_true",
                    help="replay a two-shard sweep (ID order vs the runner's scoring order) with the stored wall "
                         "times, then score the largest pair the scoring order meets at once, as --pair does")
    args = ap.parse_args(argv)
    if args.pair or args.sweep_pair:
        for spec in args.batch or DEFAULT:
            name, _, shape = spec.partition(":")
            b, t = (int(x) for x in shape.lower().split("x"))
            two = sweep_pairs(name, b, t) if args.sweep_pair else None
            for k in args.hvp_chunk or [0]:
                pair_peak(name, b, t, k, args.timeout, two)
        return 0
    import zcbench
    from bench_cost_growth import run_point

    for spec in args.batch or DEFAULT:
        name, _, shape = spec.partition(":")
        b, t = (int(x) for x in shape.lower().split("x"))
        space = zcbench.create_space(name)
        arch, n = largest(space)
        for k in args.hvp_chunk or [0]:
            rec = run_point(dict(space=name, arch=arch.id, batch_size=b, seq_len=t, seed=0, proxies=None,
                                 hvp_chunk=k or None), args.timeout)
            gib = rec["rss_peak_mb"] / 1024
            print(f"{name} {b}x{t} hvp_chunk={k or 'null'}: largest stored arch {arch.id} ({n / 1e6:.1f} M params): "
                  f"catalogue {rec['catalogue']:.1f} CPU s (fwd+bwd {rec['fwd_bwd']:.2f} s, "
                  f"{rec['catalogue'] / rec['fwd_bwd']:.2f}x), grasp {rec['grasp']!r}, peak RSS {gib:.2f} GiB; "
                  f"1 worker {'within' if gib <= 8 / 1.0737 else 'OVER'} 8 GB, 2 such at once "
                  f"{'within' if 2 * gib <= 8 / 1.0737 else 'OVER'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
