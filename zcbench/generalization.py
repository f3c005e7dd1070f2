"""Generalization across corpora: does a proxy that ranks well on WikiText-103 rank well on LM1B?

LTS (Javaheripi et al., NeurIPS 2022) trained its GPT-2 pool on two corpora; the ``gpt2``
and ``gpt2_lm1b`` spaces hold the two tables (same search space and model code, each table
its own settings, see docs/spaces/lts.md). ``generalization_table`` reads the stored scores
of both spaces (``results/scores``, the report's loader and configuration choice) and
returns, for every proxy scored on either, its Spearman ρ on each corpus (mean over the
stored seeds), the number of architectures and seeds behind each value, the difference
ρ(LM1B) − ρ(WikiText-103), and whether it beats the baseline (non-embedding parameters) on
LM1B *on the same architectures* (the baseline's ρ is recomputed on the proxy's own scored
set, so a proxy scored on a sample is compared on that sample). Nothing is hard-coded: every
number is computed from the score files and the ground-truth tables at call time.

``python -m zcbench.generalization`` writes ``results/report/generalization.md``.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import pandas as pd

from zcbench import metrics

SOURCE, TARGET, BASELINE = "gpt2", "gpt2_lm1b", "params_nonembedding"


def _per_seed(data, space: str, proxy: str) -> dict:
    """seed -> arch_id -> score of the reported configuration of (space, proxy)."""
    from zcbench.report.tables import run_scores

    return {r.seed: run_scores(r) for r in data.groups.get((space, proxy), [])}


def _rho(scores: pd.Series, oriented: pd.Series) -> tuple[float, int]:
    """Spearman rho and n; rho is NaN for constant scores (no ranking)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN/inf scores are excluded and counted in n
        c = metrics.correlate(scores, oriented, n_resamples=0)
    return (math.nan if c.constant else float(c.spearman_rho)), int(c.n)


def _config(data, space: str, proxy: str) -> str:
    rs = data.groups.get((space, proxy), [])
    if not rs:
        return ""
    d = rs[0].data or {}
    return f"{d['batch_size']}x{d['seq_len']}" if "batch_size" in d and "seq_len" in d else "no data"


def generalization_table(results_dir="results", source: str = SOURCE, target: str = TARGET,
                         baseline: str = BASELINE, data_dir=None) -> pd.DataFrame:
    """One row per proxy: ρ on ``source`` and ``target`` (mean over seeds), n, seeds, difference,
    the baseline's ρ on the proxy's own ``target`` architectures, and whether the proxy beats it.

    Columns: proxy, rho_<s>, n_<s>, seeds_<s>, batch_<s> for both spaces, d_rho (target −
    source), rank_<s>, base_rho_<target>, beats_base_<target>. Rows with a score on only one
    corpus keep NaN for the other (never dropped)."""
    from zcbench.report.tables import build

    data = build(results_dir, spaces=[source, target], n_resamples=0, data_dir=data_dir, cache=False)
    return table_from_data(data, source, target, baseline)


def table_from_data(data, source: str = SOURCE, target: str = TARGET, baseline: str = BASELINE) -> pd.DataFrame:
    """``generalization_table`` from an already built ``zcbench.report.tables.ReportData``."""
    proxies = sorted({p for (s, p) in data.groups if s in (source, target)})
    rows = []
    for p in proxies:
        row = {"proxy": p}
        for sp in (source, target):
            info = data.spaces.get(sp)
            per_seed = _per_seed(data, sp, p)
            vals = [(_rho(s, info.oriented)) for s in per_seed.values()] if info is not None and \
                info.oriented is not None else []
            all_vals = [(r, n) for r, n in vals if n >= 3]
            row[f"constant_{sp}"] = bool(vals) and all(n >= 3 and not math.isfinite(r) for r, n in vals)
            vals = [(r, n) for r, n in vals if n >= 3 and math.isfinite(r)]
            row[f"rho_{sp}"] = sum(r for r, _ in vals) / len(vals) if vals else math.nan
            ns = [n for _, n in (vals or all_vals)]
            row[f"n_{sp}"] = int(pd.Series(ns).median()) if ns else 0
            row[f"seeds_{sp}"] = len(vals)
            row[f"batch_{sp}"] = _config(data, sp, p)
        # the baseline on exactly the proxy's scored target architectures, seed by seed
        info = data.spaces.get(target)
        base = _per_seed(data, target, baseline)
        pairs = []
        if info is not None and info.oriented is not None and base:
            for seed, s in _per_seed(data, target, p).items():
                b = base.get(seed, next(iter(base.values())))  # data-free baselines: any seed is the same
                ids = [i for i in s.index if math.isfinite(s[i])]
                if len(ids) >= 3:
                    pairs.append(_rho(b.reindex(ids), info.oriented)[0])
        row[f"base_rho_{target}"] = sum(pairs) / len(pairs) if pairs else math.nan
        rt, bt = row[f"rho_{target}"], row[f"base_rho_{target}"]
        row[f"beats_base_{target}"] = bool(math.isfinite(rt) and math.isfinite(bt) and p != baseline and rt > bt)
        row["d_rho"] = row[f"rho_{target}"] - row[f"rho_{source}"]
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for sp in (source, target):
        df[f"rank_{sp}"] = df[f"rho_{sp}"].rank(ascending=False, method="min")
    return df.sort_values([f"rho_{target}", f"rho_{source}"], ascending=False, na_position="last").reset_index(drop=True)


def agreement(df: pd.DataFrame, source: str = SOURCE, target: str = TARGET) -> dict:
    """How well the proxies' ρ on one corpus predicts their ρ on the other (over proxies with both)."""
    both = df.dropna(subset=[f"rho_{source}", f"rho_{target}"])
    if len(both) < 3:
        return {"n_proxies": len(both), "rho": math.nan, "tau": math.nan}
    c = metrics.correlate(both[f"rho_{source}"], both[f"rho_{target}"], n_resamples=0)
    return {"n_proxies": int(c.n), "rho": float(c.spearman_rho), "tau": float(c.kendall_tau)}


def _f(x, nd=3) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:+.{nd}f}" if nd < 0 else \
        f"{x:.{nd}f}"


def _rho_text(r, space: str) -> str:
    return "constant" if r.get(f"constant_{space}") else _f(r[f"rho_{space}"])


def markdown(df: pd.DataFrame, source: str = SOURCE, target: str = TARGET, baseline: str = BASELINE,
             command: str = "") -> str:
    """The generalization view as Markdown (every number from ``df``)."""
    a = agreement(df, source, target)
    winners = df[df[f"beats_base_{target}"]]["proxy"].tolist() if not df.empty else []
    lines = [f"# Generalization: Spearman ρ on {source} (WikiText-103) vs {target} (LM1B)", ""]
    if command:
        lines += [f"Generated by `{command}` from the stored scores and the LTS tables; no number is typed in.", ""]
    lines += [
        "Same GPT-2 search space and model code, two training corpora (LTS, Javaheripi et al., NeurIPS 2022). "
        "ρ: Spearman correlation of the proxy with validation perplexity (negated), mean over the stored seeds; "
        "n: architectures with a finite score (median over seeds); batch: the minibatch (batch × length) of "
        "the reported configuration; constant: every architecture got the same score (no ranking); "
        "Δ = ρ(LM1B) − ρ(WikiText-103). "
        f"`{baseline} (same archs)` is the baseline's ρ on exactly the architectures the proxy was scored on "
        "in LM1B, and ✓ marks proxies above it.", ""]
    if math.isfinite(a["rho"]):
        lines += [f"Across the {a['n_proxies']} proxies scored on both corpora, their ρ on WikiText-103 and their ρ "
                  f"on LM1B agree with Spearman {a['rho']:.3f} / Kendall {a['tau']:.3f}.", ""]
    lines += [("Proxies above non-embedding parameters on LM1B (same architectures): "
               + (", ".join(f"`{w}`" for w in winners) if winners else "none")) + ".", ""]
    head = ["proxy", f"ρ {source}", "n", "seeds", "batch", f"ρ {target}", "n", "seeds", "batch", "Δ",
            f"{baseline} (same archs)", "beats"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cells = [f"`{r['proxy']}`", _rho_text(r, source), str(r[f"n_{source}"] or "—"), str(r[f"seeds_{source}"]),
                 r[f"batch_{source}"] or "—", _rho_text(r, target), str(r[f"n_{target}"] or "—"),
                 str(r[f"seeds_{target}"]), r[f"batch_{target}"] or "—",
                 "—" if not math.isfinite(r["d_rho"]) else f"{r['d_rho']:+.3f}", _f(r[f"base_rho_{target}"]),
                 "✓" if r[f"beats_base_{target}"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def site_sections(data) -> list:
    """Leaderboard section (``zcbench.leaderboard.SECTION_PROVIDERS``): the view on the index page,
    when the site's data holds scores of both spaces."""
    import html

    from zcbench.leaderboard import Section

    have = {s for (s, _) in data.groups}
    if not {SOURCE, TARGET} <= have:
        return []
    df = table_from_data(data)
    if df.empty:
        return []
    a = agreement(df)
    winners = df[df[f"beats_base_{TARGET}"]]["proxy"].tolist()
    E = html.escape
    head = ["proxy", "ρ WikiText-103", "n", "ρ LM1B", "n", "Δ (LM1B − WT103)", f"{BASELINE} on the same LM1B archs",
            "beats it on LM1B"]
    rows = []
    for _, r in df.iterrows():
        cells = [E(str(r["proxy"])), _rho_text(r, SOURCE), str(r[f"n_{SOURCE}"] or "—"), _rho_text(r, TARGET),
                 str(r[f"n_{TARGET}"] or "—"), "—" if not math.isfinite(r["d_rho"]) else f"{r['d_rho']:+.3f}",
                 _f(r[f"base_rho_{TARGET}"]), "yes" if r[f"beats_base_{TARGET}"] else ""]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    intro = ("Same GPT-2 search space and model code, trained on two corpora (LTS): Spearman ρ with validation "
             "perplexity on WikiText-103 (<code>gpt2</code>) and One Billion Word (<code>gpt2_lm1b</code>), mean "
             "over stored seeds, and the difference. The baseline column is non-embedding parameters' ρ on exactly "
             "the LM1B architectures the proxy was scored on.")
    agree = (f" Over the {a['n_proxies']} proxies scored on both, ρ on one corpus and ρ on the other agree with "
             f"Spearman {a['rho']:.3f}." if math.isfinite(a["rho"]) else "")
    beat = " Above non-embedding parameters on LM1B: " + (", ".join(E(w) for w in winners) if winners else "none") + "."
    body = (f"<p>{intro}{agree}{beat}</p><div class=\"table-wrap\"><table class=\"zcb-sortable\" "
            f"id=\"table-generalization\"><thead><tr>" + "".join(f"<th>{E(h)}</th>" for h in head)
            + "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")
    return [Section(page="index", id="generalization", title="Does it transfer? WikiText-103 vs LM1B (GPT-2)",
                    html=body, order=45)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zcbench.generalization",
                                 description="ρ on WikiText-103 (gpt2) vs LM1B (gpt2_lm1b) for every stored proxy")
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--out", default=None, help="Markdown file (default <results-dir>/report/generalization.md)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    from zcbench.data import DataError
    from zcbench.errors import ReportError
    from zcbench.store import atomic_write_text

    try:
        df = generalization_table(args.results_dir, data_dir=args.data_dir)
    except (ReportError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if df.empty:
        print(f"error: no scores of {SOURCE} or {TARGET} under {args.results_dir}/scores", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.results_dir) / "report" / "generalization.md"
    text = markdown(df, command="python -m zcbench.generalization" + (
        f" --results-dir {args.results_dir}" if args.results_dir != "results" else ""))
    atomic_write_text(out, text)
    print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
