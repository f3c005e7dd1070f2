"""Is LPZero's FlexiBERT gradient a signal or round-off? A direct test.

    python experiments/flexibert_roundoff_check.py [--n-archs 60]   # writes results/ablations/flexibert_roundoff.md

LPZero's ``eval_rank_bert.py`` back-propagates ``ones_like(last_hidden_state)`` from the bare
FlexiBERT backbone (our proxy option ``objective=hidden_sum``). Every encoder layer ends in a
LayerNorm with gamma = 1, beta = 0 at initialisation, so the summed output is a constant and the
gradient is zero in exact arithmetic: what the gradient proxies then rank is floating-point
round-off. If that is so, the ranking of architectures by a gradient proxy must change when only
the *arithmetic* changes (float32 vs float64, same networks, same minibatch) or when only the
minibatch changes; with the replaced-token-detection loss (a real signal) it must not.

For a seeded sample of the stored networks, built as the authors built them
(``variant=upstream_pt``), this computes four gradient statistics of the literature on
one minibatch —

* ``synaptic_saliency``  sum |W * G| over the FFN layers (Serianni & Kalita; LPZero),
* ``head_importance``    sum |W * G| over the attention input projections with >= 128 outputs
                         (the training-free-nas / LPZero code: ``head_importance variant=weights``),
* ``snip``               sum |W * G| over every weight layer but the head,
* ``grad_norm``          sum_l ||G_l||_F,

under (a) float32, minibatch seed 0; (b) float64, the same networks and minibatch; (c) float32,
minibatch seed 1 — for both objectives, and prints the Spearman rank agreement of (a) with (b)
and of (a) with (c), the gradient's size, and each statistic's Kendall tau with GLUE.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zcbench.proxy import weight_layers  # noqa: E402
from zcbench.proxies._common import ATTN_OUTPUT_PROJECTIONS  # noqa: E402
from zcbench.registry import create_space  # noqa: E402

STATS = ("synaptic_saliency", "head_importance", "snip", "grad_norm")


def statistics(model, batch, objective: str, dtype) -> tuple[dict, float]:
    model = model.to(dtype)
    out = model(batch.inputs, batch.targets)
    scalar = out.loss if objective == "loss" else out.hidden.sum()
    layers = [wl for wl in weight_layers(model) if wl.role != "output"]
    grads = torch.autograd.grad(scalar, [wl.weight for wl in layers], allow_unused=True)
    res = dict.fromkeys(STATS, 0.0)
    gmax = 0.0
    for wl, g in zip(layers, grads):
        if g is None:
            continue
        w, g = wl.weight.detach().double(), g.double()
        sal = float((w * g).abs().sum())
        gmax = max(gmax, float(g.abs().max()))
        res["snip"] += sal
        res["grad_norm"] += float(g.norm())
        if wl.role == "ffn" and isinstance(wl.module, torch.nn.Linear):
            res["synaptic_saliency"] += sal
        leaf = wl.name.rsplit(".", 1)[-1]
        if (wl.role == "attn" and isinstance(wl.module, torch.nn.Linear) and leaf not in ATTN_OUTPUT_PROJECTIONS
                and wl.module.out_features >= 128):
            res["head_importance"] += sal
    return res, gmax


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-archs", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0, help="architecture sample and model init")
    ap.add_argument("--out", default=str(REPO / "results/ablations/flexibert_roundoff.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    space = create_space("flexibert", variant="upstream_pt")
    archs = sorted(space.stored(), key=lambda a: a.id)
    archs = random.Random(args.seed).sample(archs, min(args.n_archs, len(archs)))
    truth = np.array([space.truth(a) for a in archs], dtype=float)
    batches = {s: space.make_batch(args.batch_size, args.seq_len, s) for s in (0, 1)}
    runs = {  # name -> (objective, dtype, minibatch seed)
        "hidden_sum f32 b0": ("hidden_sum", torch.float32, 0), "hidden_sum f64 b0": ("hidden_sum", torch.float64, 0),
        "hidden_sum f32 b1": ("hidden_sum", torch.float32, 1),
        "loss f32 b0": ("loss", torch.float32, 0), "loss f64 b0": ("loss", torch.float64, 0),
        "loss f32 b1": ("loss", torch.float32, 1),
    }
    vals = {r: {s: [] for s in STATS} for r in runs}
    gmax = {r: [] for r in runs}
    t0 = time.perf_counter()
    for i, arch in enumerate(archs):
        for r, (obj, dtype, bseed) in runs.items():
            torch.manual_seed(args.seed)
            model = space.build(arch).eval()
            res, gm = statistics(model, batches[bseed], obj, dtype)
            for s in STATS:
                vals[r][s].append(res[s])
            gmax[r].append(gm)
        print(f"\r{i + 1}/{len(archs)} archs, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)

    lines = [
        "# FlexiBERT: is the authors' gradient a signal or round-off?",
        "",
        f"Generated by `python experiments/flexibert_roundoff_check.py --n-archs {args.n_archs}` "
        f"(seed {args.seed}; {len(archs)} stored networks built as `variant=upstream_pt`, minibatch "
        f"{args.batch_size} x {args.seq_len} WikiText-2 windows, eval mode, CPU, one thread; "
        f"{time.perf_counter() - t0:.0f} s).",
        "",
        "Spearman rank agreement of the architectures' scores when only the arithmetic changes "
        "(float32 vs float64: same networks, same minibatch) and when only the minibatch changes "
        "(seed 0 vs seed 1); Kendall tau with GLUE of the float32 / minibatch-0 scores. "
        "`hidden_sum` = LPZero's `output.backward(ones_like(last_hidden_state))`; `loss` = the "
        "replaced-token-detection loss (zcbench's default).",
        "",
        "| statistic | objective | rank agreement f32 vs f64 | rank agreement batch 0 vs 1 | tau vs GLUE (f32) | tau vs GLUE (f64) |",
        "|---|---|---|---|---|---|",
    ]
    for s in STATS:
        for obj in ("hidden_sum", "loss"):
            a, b, c = (np.array(vals[f"{obj} {k}"][s]) for k in ("f32 b0", "f64 b0", "f32 b1"))
            lines.append(f"| {s} | {obj} | {spearmanr(a, b)[0]:.3f} | {spearmanr(a, c)[0]:.3f} | "
                         f"{kendalltau(a, truth)[0]:.3f} | {kendalltau(b, truth)[0]:.3f} |")
    lines += ["", "Largest gradient entry over all weight layers (median over the networks):", "",
              "| run | max abs gradient |", "|---|---|"]
    for r in runs:
        lines.append(f"| {r} | {np.median(gmax[r]):.3g} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
