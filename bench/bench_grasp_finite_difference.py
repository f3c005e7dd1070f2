"""Would a finite-difference Hessian-vector product do for GraSP? Error and cost, measured.

    python bench/bench_grasp_finite_difference.py                        # gpt2 4x192, flexibert 16x128
    python bench/bench_grasp_finite_difference.py --batch gpt2:4x64 --n-archs 6 --json out.json

GraSP (``proxies/grasp.py``) is ``-sum_l <W_l, (H g)_l>`` over the weight layers. The engine takes
``H g`` exactly, by a double backward through a ``create_graph`` backward. A finite difference
would replace it by one (forward) or two (central) plain forward+backward passes at shifted weights:

    forward:  H g ~ (grad L(W + h g) - grad L(W)) / h             (grad L(W) is the standard pass's)
    central:  H g ~ (grad L(W + h g) - grad L(W - h g)) / (2 h)

with the step ``h = eps * ||W|| / ||g||`` over the weight layers (the shift is ``eps`` of the
weights' norm). For each network of a seeded sample of stored architectures (seed 0 model and
minibatch, eval mode, one torch thread) the script prints the exact value, the relative error
of each estimate at each ``eps``, and the CPU seconds of one forward+backward, of the exact
product's extra passes and of each estimate's extra passes; then, per ``eps``, the largest
relative error and Kendall's tau between estimate and exact over the sample. It changes nothing
in the package: it answers whether an ``hvp=finite_difference`` option would be faithful
(docs/performance.md §3, "A finite-difference GraSP, measured").
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EPS = [1e-3, 1e-4, 1e-5]


def grasp_value(weights, hg, scored) -> float:
    return float(sum(-(weights[i].detach().double() * hg[i].double()).sum() for i in scored))


def measure(space, arch, B: int, T: int) -> dict:
    import torch

    from zcbench.proxy import weight_layers

    torch.manual_seed(0)
    model = space.build(arch).eval()
    batch = space.make_batch(B, T, 0)
    wls = weight_layers(model)
    W = [wl.weight for wl in wls]
    scored = [i for i, wl in enumerate(wls) if wl.role != "output"]  # grasp's default layer set

    def grads(create_graph=False):
        loss = model(batch.inputs, batch.targets).loss
        return torch.autograd.grad(loss, W, create_graph=create_graph)

    t0 = time.process_time()
    g = [x.detach() for x in grads()]
    t_fb = time.process_time() - t0
    t0 = time.process_time()
    gg = grads(create_graph=True)
    z = sum((a * b).sum() for a, b in zip(g, gg))
    hg = [x.detach() for x in torch.autograd.grad(z, W)]
    t_exact = time.process_time() - t0
    del gg, z
    exact = grasp_value(W, hg, scored)
    gnorm = float(torch.sqrt(sum((x.double() ** 2).sum() for x in g)))
    wnorm = float(torch.sqrt(sum((w.detach().double() ** 2).sum() for w in W)))
    saved = [w.detach().clone() for w in W]

    def shifted_grads(h):
        with torch.no_grad():
            for w, s, gi in zip(W, saved, g):
                w.copy_(s).add_(gi, alpha=h)
        try:
            return [x.detach() for x in grads()]
        finally:
            with torch.no_grad():
                for w, s in zip(W, saved):
                    w.copy_(s)

    out = {"arch": arch.id, "exact": exact, "s_fwd_bwd": t_fb, "s_exact_extra": t_exact, "forward": {}, "central": {}}
    for eps in EPS:
        h = eps * wnorm / gnorm
        t0 = time.process_time()
        gp = shifted_grads(h)
        t_f = time.process_time() - t0
        fwd = grasp_value(W, [(a.double() - b.double()) / h for a, b in zip(gp, g)], scored)
        t0 = time.process_time()
        gm = shifted_grads(-h)
        t_c = t_f + time.process_time() - t0
        cen = grasp_value(W, [(a.double() - b.double()) / (2 * h) for a, b in zip(gp, gm)], scored)
        out["forward"][str(eps)] = {"value": fwd, "s_extra": t_f}
        out["central"][str(eps)] = {"value": cen, "s_extra": t_c}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", action="append", help="SPACE:BxT (repeatable; default gpt2:4x192 flexibert:16x128)")
    ap.add_argument("--n-archs", type=int, default=10, help="a seeded sample of K stored architectures per space")
    ap.add_argument("--data-dir", default=None, help="ground-truth data (default: ZCBENCH_DATA / ../shared/data)")
    ap.add_argument("--json", default=None, help="also write the measurements to this file")
    args = ap.parse_args(argv)
    import torch
    from scipy.stats import kendalltau

    import zcbench

    torch.set_num_threads(1)
    report = {}
    for spec in args.batch or ["gpt2:4x192", "flexibert:16x128"]:
        try:
            name, bt = spec.split(":")
            B, T = (int(x) for x in bt.lower().split("x"))
        except ValueError:
            ap.error(f"--batch {spec!r}: expected SPACE:BxT, e.g. gpt2:4x192")
        space = zcbench.create_space(name, **({"data_dir": args.data_dir} if args.data_dir else {}))
        stored = list(space.stored())
        archs = random.Random(0).sample(stored, min(args.n_archs, len(stored)))
        print(f"## {name} {B}x{T}: {len(archs)} stored networks (seeded sample)")
        rows = []
        for a in archs:
            r = measure(space, a, B, T)
            rows.append(r)
            rel = " ".join(f"{k[0]}{e}:{(r[k][e]['value'] - r['exact']) / abs(r['exact']):+.1e}"
                           for k in ("forward", "central") for e in r[k])
            print(f"{r['arch']} exact {r['exact']:+.6g}  fwd+bwd {r['s_fwd_bwd']:.2f}s  exact extra "
                  f"{r['s_exact_extra'] / r['s_fwd_bwd']:.2f}x  forward extra "
                  f"{r['forward'][str(EPS[0])]['s_extra'] / r['s_fwd_bwd']:.2f}x  central extra "
                  f"{r['central'][str(EPS[0])]['s_extra'] / r['s_fwd_bwd']:.2f}x  rel. error {rel}", flush=True)
        ex = [r["exact"] for r in rows]
        summary = {}
        for kind in ("forward", "central"):
            for e in map(str, EPS):
                est = [r[kind][e]["value"] for r in rows]
                worst = max(abs(v - x) / abs(x) for v, x in zip(est, ex))
                tau = float(kendalltau(ex, est)[0]) if len(rows) > 1 else float("nan")
                summary[f"{kind} eps={e}"] = {"max_rel_error": worst, "kendall_tau_vs_exact": tau}
                print(f"{kind:8s} eps={e:6s} largest relative error {worst:.2e}  Kendall tau vs exact {tau:.3f}")
        ratio = lambda k: sum(r[k] for r in rows) / sum(r["s_fwd_bwd"] for r in rows)  # noqa: E731
        print(f"extra passes / one forward+backward, summed over the sample: exact {ratio('s_exact_extra'):.2f}x, "
              f"forward {sum(r['forward'][str(EPS[0])]['s_extra'] for r in rows) / sum(r['s_fwd_bwd'] for r in rows):.2f}x, "
              f"central {sum(r['central'][str(EPS[0])]['s_extra'] for r in rows) / sum(r['s_fwd_bwd'] for r in rows):.2f}x")
        report[spec] = {"networks": rows, "summary": summary}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
