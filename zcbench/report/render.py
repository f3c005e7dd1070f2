"""Output of the report table: display strings, Markdown, LaTeX (booktabs), HTML and CSV files.

The ``fmt_*`` helpers are the one place numbers become text (the leaderboard site uses them too).
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

import pandas as pd

from zcbench.report.load import SpaceInfo, table_info
from zcbench.report.reproduction import reproduction_table
from zcbench.report.tables import DEFAULT_BASELINE, ReportData
from zcbench.store import safe_name

TABLE_FORMATS = ("md", "tex", "html", "csv")


def fmt_float(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{nd}f}"


def fmt_pm(m, s, nd=3, latex=False, constant=False) -> str:
    if constant:
        return "constant"
    if m is None or not math.isfinite(float(m)):
        return "—"
    if s is None or not math.isfinite(float(s)):
        return fmt_float(m, nd)
    return f"{m:.{nd}f} $\\pm$ {s:.{nd}f}" if latex else f"{m:.{nd}f} ± {s:.{nd}f}"


def fmt_ci(lo, hi, nd=2) -> str:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "—"
    return f"[{lo:.{nd}f}, {hi:.{nd}f}]"


def fmt_p(p) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def fmt_sec(s) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    return f"{s:.3g}"


def fmt_diff(d, lo=None, hi=None) -> str:
    if d is None or not math.isfinite(d):
        return "—"
    return f"{d:+.3f}" + ("" if lo is None else f" {fmt_ci(lo, hi)}")


def fmt_int(x) -> str:
    return "—" if x is None or pd.isna(x) else str(int(x))


def display_table(table: pd.DataFrame, baseline: str = DEFAULT_BASELINE, latex: bool = False) -> pd.DataFrame:
    """Human-readable version of the table (strings), ranked as the table is."""
    r, t, pm, delta = ("$\\rho$", "$\\tau$", "$\\pm$", "$\\Delta$") if latex else ("ρ", "τ", "±", "Δ")
    rows = []
    for _, x in table.iterrows():
        const = bool(x["constant"])
        rows.append({
            "Space": x["space"],
            "Rank": fmt_int(x["rank"]),
            "Proxy": x["proxy"] + (" (baseline)" if x["is_baseline"] else ""),
            f"{r} mean {pm} std": fmt_pm(x["rho"], x["rho_std"], latex=latex, constant=const),
            f"{r} 95% CI": fmt_ci(x["rho_ci_lo"], x["rho_ci_hi"]),
            f"{t} mean {pm} std": fmt_pm(x["tau"], x["tau_std"], latex=latex),
            f"{t} 95% CI": fmt_ci(x["tau_ci_lo"], x["tau_ci_hi"]),
            "top-10%": fmt_float(x["top10"], 2),
            f"{delta}{r} vs {baseline} [95% CI]": fmt_diff(x["d_rho"], x["d_rho_ci_lo"], x["d_rho_ci_hi"]),
            "p": fmt_p(x["p_vs_base"]),
            "s/arch": fmt_sec(x["sec_per_arch"]),
            "n": fmt_int(x["n_archs"]),
            "seeds": str(x["n_seeds"]),
            "NaN/inf": f"{int(x['n_nan'] + x['n_inf'])}/{int(x['n_records'])}",
        })
    return pd.DataFrame(rows)  # LaTeX escaping happens in latex_table


def display_reproduction(rep: pd.DataFrame, latex: bool = False) -> pd.DataFrame:
    r, t, delta = ("$\\rho$", "$\\tau$", "$\\Delta$") if latex else ("ρ", "τ", "Δ")
    rows = []
    for _, x in rep.iterrows():
        other = str(x.get("different_table", False)) == "True"  # published.yaml same_table: false
        rows.append({
            "Source": f"{x['source']} ({x['table']})",
            "Space": x["space"], "Paper name": x["paper_name"], "Proxy": x["proxy"],
            f"{r} is": x.get("statistic", "Spearman"),
            f"{t} paper": fmt_float(x["tau_paper"]), f"{t} ours": fmt_pm(x["tau_ours"], x["tau_std"], latex=latex),
            f"{delta}{t}": "different table" if other else fmt_diff(x["d_tau"]),
            f"{r} paper": fmt_float(x["rho_paper"]), f"{r} ours": fmt_pm(x["rho_ours"], x["rho_std"], latex=latex),
            f"{delta}{r}": "different table" if other else fmt_diff(x["d_rho"]),
            f"paper {r} in our CI": "different table" if other else {True: "yes", False: "no"}.get(x["in_ci"], "—"),
            "n paper/ours": f"{'?' if pd.isna(x['n_paper']) else int(x['n_paper'])}/{fmt_int(x['n_ours'])}",
        })
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep] + body)


def _latex_escape_cells(df: pd.DataFrame) -> pd.DataFrame:
    def esc(v: str) -> str:
        s = str(v)
        if "$" in s:  # already LaTeX (math): only escape bare percent signs
            return re.sub(r"(?<!\\)%", r"\\%", s)
        for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&"), ("#", "\\#"),
                     ("—", "--"), ("<", "$<$"), ("[", "{[}"), ("]", "{]}")):
            s = s.replace(a, b)
        return s

    out = df.copy()
    for c in out.columns:
        out[c] = out[c].map(esc)
    out.columns = [esc(c) for c in out.columns]
    return out


def latex_table(df: pd.DataFrame, caption: str, label: str) -> str:
    """booktabs tabular via pandas Styler.to_latex (hrules=True gives top/mid/bottomrule)."""
    body = _latex_escape_cells(df)
    sty = body.style.hide(axis="index")
    caption = re.sub(r"(?<!\\)%", r"\\%", caption.replace("±", "$\\pm$"))
    return sty.to_latex(hrules=True, caption=caption, label=label, position="htbp", position_float="centering",
                        column_format="l" * len(df.columns))


def html_table(df: pd.DataFrame, caption: str, highlight: list[bool] | None = None) -> str:
    sty = df.style.hide(axis="index").set_caption(caption)
    if highlight is not None:
        flags = list(highlight)
        sty = sty.apply(lambda _col: ["background-color: #fff3c4" if f else "" for f in flags], axis=0)
    return sty.to_html()


def _caption(info: SpaceInfo | None, rows: pd.DataFrame) -> str:
    n = rows["n_archs"].dropna()
    n_txt = f"n = {int(n.max())} architectures" if len(n) else "no ground truth"
    m = info.metric_label if info and info.metric else "ground truth"
    d = table_info(info)
    return (f"{rows['space'].iloc[0]}: rank correlation with {m}; {n_txt}; mean ± std over seeds"
            + (f"; {d['text']}" if d else ""))


def write_tables(data: ReportData, out: Path, formats=TABLE_FORMATS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    tab, base = data.table, data.baseline
    rep = reproduction_table(tab, data=data)
    if "csv" in formats:
        for name, df in (("leaderboard", tab), ("reproduction", rep), ("per_seed", data.per_seed)):
            p = out / f"{name}.csv"
            df.to_csv(p, index=False)
            written.append(p)
    spaces = list(dict.fromkeys(tab["space"]))
    if "md" in formats:
        parts = [f"# zcbench leaderboard\n\n{prov_line(data)}\n"]
        for sp in spaces:
            rows = tab[tab["space"] == sp]
            parts.append(f"## {sp}\n\n{_caption(data.spaces.get(sp), rows)}. Ranked by ρ. "
                         f"Δρ / p: paired bootstrap against `{base}` on the same architectures.\n")
            parts.append(markdown_table(display_table(rows, base).drop(columns="Space")) + "\n")
        if data.notes:
            parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in data.notes) + "\n")
        p = out / "leaderboard.md"
        p.write_text("\n".join(parts))
        written.append(p)
        p = out / "reproduction.md"
        p.write_text("# Reproduction: ours vs published\n\n" + prov_line(data) + "\n\n"
                     + (markdown_table(display_reproduction(rep)) if len(rep) else "No published numbers for "
                        "these spaces.") + "\n")
        written.append(p)
    if "tex" in formats:
        parts = [f"% zcbench leaderboard; {prov_line(data)}\n% needs \\usepackage{{booktabs}}\n"]
        for sp in spaces:
            rows = tab[tab["space"] == sp]
            parts.append(latex_table(display_table(rows, base, latex=True).drop(columns="Space"),
                                     _caption(data.spaces.get(sp), rows).replace("±", "$\\pm$"),
                                     f"tab:zcbench-{safe_name(sp)}"))
        p = out / "leaderboard.tex"
        p.write_text("\n".join(parts))
        written.append(p)
        p = out / "reproduction.tex"
        p.write_text("% needs \\usepackage{booktabs}\n" + (latex_table(
            display_reproduction(rep, latex=True), "Reproduction: zcbench vs published rank correlations",
            "tab:zcbench-reproduction") if len(rep) else "% no published numbers for these spaces\n"))
        written.append(p)
    if "html" in formats:
        parts = []
        for sp in spaces:
            rows = tab[tab["space"] == sp]
            parts.append(html_table(display_table(rows, base).drop(columns="Space"),
                                    _caption(data.spaces.get(sp), rows), list(rows["is_baseline"])))
        p = out / "leaderboard.html"
        p.write_text(_html_doc("zcbench leaderboard", "\n".join(parts), data))
        written.append(p)
        p = out / "reproduction.html"
        p.write_text(_html_doc("zcbench reproduction", html_table(display_reproduction(rep),
                               "Ours vs published") if len(rep) else "<p>No published numbers.</p>", data))
        written.append(p)
    return written


def prov_line(data: ReportData) -> str:
    p = data.provenance
    return (f"zcbench {p['zcbench_version']} (commit {p['zcbench_commit'] or 'unknown'}), built {p['built']} "
            f"from {p['results_dir']}; {p['bootstrap_resamples']} bootstrap resamples (seed {p['bootstrap_seed']})")


def _html_doc(title: str, body: str, data: ReportData) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border-bottom:1px solid #ccc;padding:3px 8px;text-align:right}caption{text-align:left;"
            "font-weight:bold}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(prov_line(data))}</p>{body}</body></html>\n")
