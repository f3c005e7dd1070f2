"""ZiCo's round-off sensitivity, and what its ``tol`` option buys.

For a few stored GPT-2 networks this scores ``zico`` twice per tolerance: with the model in
float32 (as the runner does) and with the same initialisation cast to float64 (gradients
without float32 round-off), and prints the relative difference of the two scores. A
difference of the round-off size means another CPU or thread count (other summation
orders) can move the stored number by as much.

    OMP_NUM_THREADS=1 python bench/zico_stability.py --n 5 --include config_9_j3

Numbers quoted in proxies/zico.py and docs/testing.md come from this script.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="gpt2")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--include", nargs="*", default=["config_9_j3"])
    ap.add_argument("--tols", nargs="*", type=float, default=[0.0, 1e-6, 1e-5, 1e-4])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=192)
    args = ap.parse_args(argv)

    from zcbench.engine import score_arch
    from zcbench.registry import create_space, get_proxy

    space = create_space(args.space)
    stored = sorted(space.stored(), key=lambda a: a.id)
    want = [a for a in stored if a.key in args.include or a.id in args.include]
    archs = want + random.Random(1).sample([a for a in stored if a not in want], max(0, args.n - len(want)))
    proxies = [get_proxy("zico", tol=t) for t in args.tols]
    for p, t in zip(proxies, args.tols):
        p.name = f"zico_tol{t:g}"

    build32 = space.build
    worst = {t: 0.0 for t in args.tols}
    print("| network | " + " | ".join(f"tol={t:g}: f32 / f64 (rel. diff)" for t in args.tols) + " |")
    print("|---|" + "---|" * len(args.tols))
    for a in archs:
        res = {}
        for name, build in (("f32", build32), ("f64", lambda arch: build32(arch).double())):
            space.build = build
            try:
                res[name] = score_arch(space, a, proxies, seed=0, batch_size=args.batch_size, seq_len=args.seq_len)
            finally:
                space.build = build32
        cells = []
        for p, t in zip(proxies, args.tols):
            v32, v64 = res["f32"][p.name].value, res["f64"][p.name].value
            rel = abs(v32 - v64) / abs(v64)
            worst[t] = max(worst[t], rel)
            cells.append(f"{v32:.4f} / {v64:.4f} ({rel:.1e})")
        print(f"| {a.key} | " + " | ".join(cells) + " |", flush=True)
    print("| max | " + " | ".join(f"{worst[t]:.1e}" for t in args.tols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
