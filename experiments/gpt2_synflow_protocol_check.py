"""Why LPZero's GPT-2 Synflow (Table 4) ranks the networks worse than ours: its scoring pass.

    python experiments/gpt2_synflow_protocol_check.py             # ~12 min CPU: scores, .csv, .md
    python experiments/gpt2_synflow_protocol_check.py --from-csv  # rebuild the .md from the .csv

Writes results/ablations/gpt2_synflow_protocol.{csv,meta.json,md}: the per-network scores of
every variant, the run's settings, and the page. The page holds no number typed into this
script: the paper's come from zcbench/published.yaml and zcbench's own from the stored scores.

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
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
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


def published_synflow(source: str = "lpzero_gpt2") -> tuple[float, float]:
    """LPZero Table 4's Synflow (rho, tau), read from zcbench/published.yaml."""
    from zcbench.report.reproduction import load_published

    pub = load_published()
    row = pub[(pub.source == source) & (pub.paper_name == "Synflow")].iloc[0]
    return float(row.rho_paper), float(row.tau_paper)


def stored_synflow(results_dir, space) -> tuple[float, float, list[int]]:
    """zcbench's ``synflow`` on plain gpt2 as the report shows it (its reported configuration):
    Spearman rho / Kendall tau against -valid_ppl per stored seed, averaged over the seeds."""
    from zcbench.report.load import load_runs, select_configs

    groups, _ = select_configs(load_runs(results_dir, spaces=["gpt2"], proxies=["synflow"]))
    runs = groups[("gpt2", "synflow")]
    truth = {a.id: space.truth(a) for a in space.stored()}
    rhos, taus = [], []
    for r in runs:
        ids = [i for i, rec in r.records.items() if i in truth and math.isfinite(rec["score"])]
        x = np.array([r.records[i]["score"] for i in ids], dtype=float)
        y = -np.array([truth[i] for i in ids], dtype=float)
        rhos.append(spearmanr(x, y)[0])
        taus.append(kendalltau(x, y)[0])
    return float(np.mean(rhos)), float(np.mean(taus)), [r.seed for r in runs]


def render(table: pd.DataFrame, meta: dict, results_dir) -> str:
    """The Markdown page from the per-network scores (``table``) and the run's ``meta``; the
    paper's and zcbench's own numbers are read from published.yaml and the stored scores now."""
    space = create_space("gpt2")
    p_rho, p_tau = published_synflow()
    z_rho, z_tau, z_seeds = stored_synflow(results_dir, space)
    ppl = table["valid_ppl"].to_numpy(dtype=float)
    lines = ["# GPT-2 LTS: LPZero's Synflow pass, switch by switch", "",
             f"Generated by `python experiments/gpt2_synflow_protocol_check.py` ({len(table)} networks, seed "
             f"{meta['seed']}, one example of {meta['seq_len']} positions, float64, CPU, {meta['seconds']:.0f} s; "
             f"per-network scores in `{Path(meta['csv']).name}`, this page rebuilt from them with `--from-csv`). "
             "Spearman rho / Kendall tau of the score against -valid_ppl. "
             f"LPZero Table 4 (zcbench/published.yaml): Synflow {p_rho:.3f} / {p_tau:.3f}; zcbench's `synflow` "
             f"(stored scores, the report's configuration, "
             f"{'seed ' + str(z_seeds[0]) if len(z_seeds) == 1 else 'mean over seeds ' + ', '.join(map(str, z_seeds))}): "
             f"{z_rho:.3f} / {z_tau:.3f}.", "",
             "| pass | rho | tau | finite |", "|---|---|---|---|"]
    for v in VARIANTS:
        x = table[v].to_numpy(dtype=float)
        ok = np.isfinite(x)
        lines.append(f"| {v} | {spearmanr(x[ok], -ppl[ok])[0]:.3f} | {kendalltau(x[ok], -ppl[ok])[0]:.3f} | "
                     f"{int(ok.sum())}/{len(x)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-archs", type=int, default=None, help="default: all 200")
    ap.add_argument("--seq-len", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "results/ablations/gpt2_synflow_protocol.md"))
    ap.add_argument("--results", default=str(REPO / "results"), help="stored scores of zcbench's own synflow")
    ap.add_argument("--from-csv", action="store_true",
                    help="rebuild the Markdown from the stored per-network scores (<out>.csv), without re-running")
    args = ap.parse_args(argv)
    out = Path(args.out)
    csv, meta_path = out.with_suffix(".csv"), out.with_suffix(".meta.json")
    if args.from_csv:
        if not csv.exists() or not meta_path.exists():
            print(f"error: --from-csv needs {csv} and {meta_path} (written by a full run)", file=sys.stderr)
            return 2
        text = render(pd.read_csv(csv), json.loads(meta_path.read_text()), args.results)
        out.write_text(text)
        print(text)
        return 0
    torch.set_num_threads(1)
    space = create_space("gpt2")
    archs = sorted(space.stored(), key=lambda a: a.id)[: args.n_archs]
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
    table = pd.DataFrame({"arch_id": [a.id for a in archs], "key": [a.key for a in archs],
                          "valid_ppl": [space.truth(a) for a in archs], **scores})
    meta = {"seed": args.seed, "seq_len": args.seq_len, "seconds": time.perf_counter() - t0, "csv": str(csv)}
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv, index=False, float_format="%.17g")
    meta_path.write_text(json.dumps({**meta, "csv": csv.name}, indent=2))
    text = render(table, meta, args.results)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
