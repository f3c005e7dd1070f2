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
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

DEFAULT = ["gpt2:16x192", "flexibert:128x128"]


def largest(space):
    import torch

    best = None
    for a in space.stored():
        with torch.device("meta"):
            n = sum(p.numel() for p in space.build(a).parameters())
        if best is None or n > best[1]:
            best = (a, n)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", action="append", default=None, help="SPACE:BxT (repeatable)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--hvp-chunk", type=int, action="append", default=None,
                    help="run option hvp_chunk=K (repeatable; 0 = whole minibatch)")
    args = ap.parse_args(argv)
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
