"""Why LPZero's GPT-2 Synflow (Table 4: rho 0.730) is lower than ours (0.874): its scoring pass.

    python experiments/gpt2_synflow_protocol_check.py      # writes results/ablations/gpt2_synflow_protocol.md

pprp/LPZero scored Synflow on GPT-2 (``measures/synflow.py`` at 960858b2, runner
``eval_rank_gpt2.py`` at aef14eeb) with a pass that differs from Tanaka et al.'s and from ours
(proxies/synflow.py) in three ways, all read from that code:

* **train mode** — the freshly built ``HfGPT2Flex`` is never put in ``eval()``: dropout 0.1 stays
  active inside the synflow forward;
* **output** — it sums the adaptive softmax's head-cluster logits (shortlist + cluster logits,
  through |W|, |b| and |proj|), where ours sums a fixed positive projection of the final
  hidden state (our model contract returns no logits);
* **mask** — its in-place ``abs_()`` over the whole ``state_dict`` also turns the causal-mask
  fill value -1e4 into +1e4, so masked (future) positions get the largest attention scores;

and it feeds all-ones input embeddings plus |position embeddings| (ours: the network's own
|embedding| of token 1). This script re-runs the pass on our GPT-2 networks with each of those
switches and correlates every variant with the LTS perplexities (Spearman rho / Kendall tau of
the score against -valid_ppl, all 200 networks), so the effect of each is measured, not argued.
It is a diagnostic, not a proxy: dropout inside a synflow pass is not part of any paper's
definition. Layers: every ``nn.Linear`` but the head (there is none in the adaptive softmax),
sum |W * dR/dW|, float64, |theta| everywhere.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau, spearmanr
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zcbench.registry import create_space  # noqa: E402

PROJECTION_SEED_OFFSET = 7919  # as the engine's positive projection


def synflow_variant(model, seq_len: int, *, train: bool, anticausal: bool, head_logits: bool, seed: int) -> float:
    m = copy.deepcopy(model).double()
    with torch.no_grad():
        for p in m.parameters():
            p.abs_()
    m.train(train)
    torch.manual_seed(seed)  # the dropout masks of the train-mode variants
    pos = torch.arange(seq_len)
    x = m.drop(torch.ones(1, seq_len, m.wpe.weight.shape[1], dtype=torch.float64) + m.wpe(pos)[None])
    causal = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    fill = torch.tensor(1e4 if anticausal else -1e4, dtype=torch.float64)
    for blk in m.h:
        att = blk.attn
        h = blk.ln_1(x)
        B, T, D = h.shape
        q, k, v = (t.view(B, T, att.n_head, att.d_head).transpose(1, 2) for t in att.c_attn(h).split(D, dim=-1))
        scores = torch.where(causal, (q @ k.transpose(-1, -2)) / math.sqrt(att.d_head), fill)
        o = (att.attn_drop(F.softmax(scores, dim=-1)) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + att.resid_drop(att.c_proj(o))
        x = x + blk.mlp(blk.ln_2(x))
    hidden = m.ln_f(x).reshape(-1, x.shape[-1])
    if head_logits:
        crit = m.crit
        w0, b0 = crit._weight_bias(0)
        if crit.n_clusters > 0:
            w0, b0 = torch.cat([w0, crit.cluster_weight], 0), torch.cat([b0, crit.cluster_bias], 0)
        R = crit._logits(hidden, w0, b0, crit._proj(0)).sum()
    else:
        g = torch.Generator().manual_seed(seed + PROJECTION_SEED_OFFSET)
        R = (hidden * torch.randn(hidden.shape[-1], generator=g, dtype=torch.float64).abs()).sum()
    layers = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    grads = torch.autograd.grad(R, [mod.weight for mod in layers], allow_unused=True)
    return float(sum((mod.weight.detach() * g).abs().sum() for mod, g in zip(layers, grads) if g is not None))


VARIANTS = {  # name -> (train, anticausal, head_logits)
    "LPZero's pass (train, +1e4 mask, head logits)": (True, True, True),
    "eval, +1e4 mask, head logits": (False, True, True),
    "eval, causal, head logits": (False, False, True),
    "eval, causal, positive projection": (False, False, False),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-archs", type=int, default=None, help="default: all 200")
    ap.add_argument("--seq-len", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "results/ablations/gpt2_synflow_protocol.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    space = create_space("gpt2")
    archs = sorted(space.stored(), key=lambda a: a.id)[: args.n_archs]
    ppl = np.array([space.truth(a) for a in archs], dtype=float)
    scores = {v: [] for v in VARIANTS}
    t0 = time.perf_counter()
    for i, arch in enumerate(archs):
        torch.manual_seed(args.seed)
        model = space.build(arch)
        for v, (train, anti, head) in VARIANTS.items():
            scores[v].append(synflow_variant(model, args.seq_len, train=train, anticausal=anti, head_logits=head,
                                             seed=args.seed))
        print(f"\r{i + 1}/{len(archs)} archs, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    lines = ["# GPT-2 LTS: LPZero's Synflow pass, switch by switch", "",
             f"Generated by `python experiments/gpt2_synflow_protocol_check.py` ({len(archs)} networks, seed {args.seed}, "
             f"one example of {args.seq_len} positions, float64, CPU, "
             f"{time.perf_counter() - t0:.0f} s). Spearman rho / Kendall tau of the score against -valid_ppl. "
             "LPZero Table 4: Synflow 0.730 / 0.632; zcbench's `synflow` (3 seeds): 0.874 / 0.710.", "",
             "| pass | rho | tau | finite |", "|---|---|---|---|"]
    for v, vals in scores.items():
        x = np.array(vals, dtype=float)
        ok = np.isfinite(x)
        lines.append(f"| {v} | {spearmanr(x[ok], -ppl[ok])[0]:.3f} | {kendalltau(x[ok], -ppl[ok])[0]:.3f} | "
                     f"{int(ok.sum())}/{len(x)} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
