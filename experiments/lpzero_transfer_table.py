"""Build results/lpzero/transfer.md from results/lpzero/transfer.csv (+ held-out checks).

    ZCBENCH_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python experiments/lpzero_transfer_table.py

Reads the CSV written by ``python -m zcbench search task=transfer ...`` and, for every
searched proxy, recomputes on its own space (from the input cache, no network pass):
the 50-architecture search sample (same seed as the search), ρ on that sample and ρ on
the held-out rest of the table; `params` is scored on the same subsets for comparison.
For every cell with invalid architectures it names the inputs those architectures lack.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zcbench.search.lpzero.cli import cache_config, oriented_truth, space_and_archs  # noqa: E402
from zcbench.search.lpzero.evaluate import Evaluator, spearman  # noqa: E402
from zcbench.search.lpzero.expr import load_expr_file  # noqa: E402
from zcbench.search.lpzero.inputs import INPUTS, Bank, load_or_capture  # noqa: E402

OUT = ROOT / "results" / "lpzero"
SPACES = ["gpt2", "flexibert", "transxl"]


def cfg_for(space: str):
    base = OmegaConf.load(ROOT / "conf" / "search.yaml")
    base.pop("defaults", None)
    base.pop("hydra", None)
    sp = OmegaConf.load(ROOT / "conf" / "space" / f"{space}.yaml")
    return OmegaConf.merge(base, {"space": sp})


_loaded: dict = {}


def load_space(space: str):
    if space not in _loaded:
        cfg = cfg_for(space)
        sp, archs, opts = space_and_archs(space, cfg, None, 0)
        cc = cache_config(cfg, space, opts)
        per = load_or_capture(sp, archs, cc, log=False)
        from zcbench.engine import score_arch
        from zcbench.registry import get_proxy

        params = get_proxy("params")
        pv = np.array([score_arch(sp, a, [params])["params"].value for a in archs], dtype=float)
        _loaded[space] = (cfg, sp, archs, cc, per, pv)
    return _loaded[space]


def rho_on(scores, truth, idx):
    s, t = scores[idx], truth[idx]
    ok = np.isfinite(s)
    return (spearman(s[ok], t[ok]) if ok.sum() > 2 else float("nan")), int(ok.sum()), int((~ok).sum())


def main() -> None:
    rows = list(csv.DictReader(open(OUT / "transfer.csv")))
    proxies = [r["proxy"] for r in rows if r["eval_space"] == rows[0]["eval_space"]]
    cell = {(r["proxy"], r["eval_space"]): r for r in rows}
    eval_spaces = [s for s in SPACES if any(r["eval_space"] == s for r in rows)]

    own, invalid_notes = {}, []
    for p in proxies:
        if p == "params":
            continue
        e, d = load_expr_file(OUT / "proxies" / f"{p}.yaml")
        data = d["data"]
        src = data["space"]
        cfg, sp, archs, cc, per, pv = load_space(src)
        assert cc.key == data["cache_key"], (p, cc.key, data["cache_key"])
        _, sample, _ = space_and_archs(src, cfg, int(data["n_archs"]), int(data["arch_sample_seed"]))
        ids = [a.id for a in archs]
        in_sample = np.isin(ids, [a.id for a in sample])
        truth = oriented_truth(sp, archs)
        s = Evaluator(Bank(ids, per)).scores(e)
        own[p] = {
            "src": src, "formula": e.formula, "fitness": float(d["fitness_spearman"]),
            "sample": rho_on(s, truth, in_sample), "heldout": rho_on(s, truth, ~in_sample),
            "params_sample": rho_on(pv, truth, in_sample), "params_heldout": rho_on(pv, truth, ~in_sample),
            "command": d.get("command", ""), "seconds": d.get("timing", {}).get("search_seconds"),
        }
    for (p, es), r in cell.items():
        if int(r["n_invalid"]) == 0 or p == "params":
            continue
        e, _ = load_expr_file(OUT / "proxies" / f"{p}.yaml")
        cfg, sp, archs, cc, per, pv = load_space(es)
        ids = [a.id for a in archs]
        s = Evaluator(Bank(ids, per)).scores(e)
        bad = [i for i, a in enumerate(ids) if not np.isfinite(s[i])]
        lacks = {k: sum(1 for i in bad if per[ids[i]][k][0].shape[0] == 0) for k in INPUTS}
        nonfinite = sum(1 for i in bad if all(per[ids[i]][k][0].shape[0] > 0 for k in e.inputs))
        truth = oriented_truth(sp, archs)
        ok = np.isfinite(s)
        invalid_notes.append(
            f"* `{p}` on {es}: {len(bad)} of {len(ids)} architectures invalid (score NaN): "
            + ", ".join(f"{n} have no `{k}` items" for k, n in lacks.items() if n and k in e.inputs)
            + (f", {nonfinite} non-finite for another reason" if nonfinite else "")
            + f". `params` on the same {int(ok.sum())} valid architectures: ρ = {spearman(pv[ok], truth[ok]):.3f}.")

    def fmt(r):
        return f"{float(r['spearman']):.3f} ({r['n_archs']}/{r['table_size']}" + \
            (f", {r['n_invalid']} invalid" if int(r["n_invalid"]) else "") + ")"

    L = ["# LPZero generalisation: searched-on space × evaluation space", "",
         "Spearman ρ of each proxy with the ground truth of every architecture of the evaluation",
         "space's stored table (GPT-2 LTS and Transformer-XL LTS: −valid perplexity, 200 each;",
         "FlexiBERT / NAS-Bench-BERT: GLUE, 491 distinct networks). Cell: ρ (architectures scored /",
         "architectures with ground truth). **Bold** = own space, *all* architectures (the 50 of the",
         "search sample included). Generated by `experiments/lpzero_transfer_table.py` from",
         "`transfer.csv`; see README.md for the commands.", "",
         "| searched on / proxy | formula | ρ on the 50 (fitness) | " + " | ".join(eval_spaces) + " |",
         "|---|---|---|" + "---|" * len(eval_spaces)]
    for p in proxies:
        if p == "params":
            fit = "–"
            name, form = "– / `params` (baseline)", "–"
        else:
            o = own[p]
            fit = f"{o['fitness']:.3f}"
            name, form = f"{o['src']} / `{p}`", f"`{o['formula']}`"
        cells = []
        for es in eval_spaces:
            c = fmt(cell[(p, es)])
            cells.append(f"**{c}**" if p != "params" and own[p]["src"] == es else c)
        L.append(f"| {name} | {form} | {fit} | " + " | ".join(cells) + " |")
    L += ["", "## Own space: search sample vs held-out architectures", "",
          "The diagonal above includes the 50 architectures the proxy was fitted on; here they are",
          "separated (same sample: `random.Random(arch_sample_seed).sample` of the id-sorted table).", "",
          "| proxy | space | ρ on the 50 (recomputed) | ρ held-out (n) | `params` on the 50 | `params` held-out |",
          "|---|---|---|---|---|---|"]
    for p, o in own.items():
        L.append(f"| `{p}` | {o['src']} | {o['sample'][0]:.3f} | {o['heldout'][0]:.3f} ({o['heldout'][1]}"
                 + (f", {o['heldout'][2]} invalid" if o['heldout'][2] else "") + ") | "
                 f"{o['params_sample'][0]:.3f} | {o['params_heldout'][0]:.3f} ({o['params_heldout'][1]}) |")
    L += ["", "## Invalid architectures", ""]
    L += invalid_notes or ["None: every proxy is finite on every architecture of every space."]
    L += ["", "Every other cell: 0 invalid (all architectures with ground truth scored)."]
    (OUT / "transfer.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
