"""The ``leaderboard`` job: a static website built from the results store.

Size: over 500 lines because it is the whole static site (overview, space, proxy, metrics,
reproduction and submit pages) written as plain string templates in one place; moving the
pages into ``zcbench/site/`` modules is the natural split when it grows further.

Plain HTML + one CSS file + two small JS files (``zcbench/site/``), no CDN, no build step,
no ``fetch()``: every number is written into the pages themselves, so the site works when
opened from ``file://`` as well as when served. All links are relative.

What a visitor sees first (``index.html``): a proxy x space matrix of Spearman rho (one
column per space with ground truth, colour scale, CI in the cell's tooltip, a mark where the
paired bootstrap says the proxy beats the ``#params`` baseline, every empty cell explained),
rows ordered by mean rank over those spaces, cost (s/arch) as a column; a filter box over
proxy names and families; then one paragraph on the protocol, the spaces that have no ground
truth (what was measured there and why there is no correlation), cost-vs-rho Pareto fronts
across spaces, rank stability across seeds, community submissions, notes and downloads.

Layout of the output folder (default ``<results-dir>/site``)::

    index.html                 the overview (above)
    spaces/<slug>.html         one page per space: leaderboard table, bar chart (noise-ceiling
                               band for project-built tables), Pareto, rank stability, provenance
    proxies/<proxy>.html       definition and citation (the proxy's docstrings), per-space and
                               per-seed numbers, figures; run keys and hashes in "Provenance"
    metrics.html               what every column means (the tables' header tooltips link here)
    reproduction.html          ours vs the published numbers (zcbench/published.yaml)
    submit.html                "Add your proxy": from an empty file to a verified submission
    assets/style.css, assets/sort.js, assets/filter.js
    figures/...png             site figures (this module) and per-proxy scatter plots (zcbench.report)
    data/leaderboard.csv       the report table, per_seed.csv, reproduction.csv, submissions.json

Stable URLs: every space page is ``spaces/<slug>.html`` with ``slug = space_slug(label)``
(readable, derived from the space label only), every proxy page ``proxies/<name>.html``;
every table and section has an ``id`` (``#matrix``, ``#table-<slug>``, ``#space-<slug>``...).

Internal keys (run keys, configuration ids, data-config hashes, commits, sha256) appear only
inside elements of class ``provenance``; tests/test_leaderboard_browser.py checks this.

Other modules add sections with :func:`register_section` (or a ``site_sections(data)``
function in one of :data:`SECTION_PROVIDERS`); see docs/leaderboard.md.
"""
from __future__ import annotations

import argparse
import html
import importlib
import json
import math
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import zcbench
from zcbench import report as rp
from zcbench.families import (FAMILIES, FAMILY_TEXT, PROXY_FAMILY, family_from_needs,  # noqa: F401 (re-exported)
                              proxy_family)
from zcbench.store import safe_name

MARKER = ".zcbench-site"
E = html.escape
ASSETS = ("style.css", "sort.js", "filter.js")
FLAGSHIP = ("gpt2", "flexibert")  # shown first, in this order
SIGNIFICANCE = 0.05  # the "beats #params" mark: paired bootstrap p < 0.05 and delta rho > 0

SPACE_TITLES = {"gpt2": "GPT-2", "gpt2_lm1b": "GPT-2 (LM1B)", "flexibert": "FlexiBERT", "transxl": "Transformer-XL",
                "transxl_homogeneous": "Transformer-XL (homogeneous)", "autoformer": "AutoFormer"}

# ----------------------------------------------------------------------------- columns
#: id -> (header, one-line explanation). Headers carry the explanation as a tooltip and
#: link to metrics.html#m-<id>, where the long text lives.
COLUMNS = {
    "rank": ("Rank", "Position by mean Spearman ρ within the space (1 = best)."),
    "proxy": ("Proxy", "The zero-cost proxy; the link opens its definition, citation and every number."),
    "family": ("Family", "What the proxy looks at: gradient, activation, attention, data-free or searched."),
    "rho": ("ρ", "Spearman rank correlation between proxy score and trained quality (oriented so that higher is "
                  "better), mean ± standard deviation over seeds."),
    "rho_ci": ("ρ 95% CI", "Percentile bootstrap over architectures of the seed-mean ρ (sorts by the lower bound)."),
    "tau": ("τ", "Kendall's τ-b, mean ± standard deviation over seeds."),
    "tau_ci": ("τ 95% CI", "Percentile bootstrap over architectures of the seed-mean τ."),
    "top10": ("top-10%", "Share of the truly best 10% of architectures that the proxy also puts in its top 10%."),
    "top20": ("top-20%", "As top-10%, for the best 20%."),
    "top50": ("top-50%", "As top-10%, for the best 50%."),
    "d_rho": ("Δρ vs #params", "ρ(proxy) − ρ(#params) on the same architectures, with its paired-bootstrap 95% CI."),
    "p": ("p", "Two-sided paired-bootstrap p-value of Δρ = 0."),
    "beats": ("▲ beats #params", "Marked when Δρ > 0 and p < 0.05: the proxy ranks significantly better than "
                                 "counting parameters on this space."),
    "cost": ("Cost/arch", "Median wall-clock seconds to score one architecture (CPU unless stated), model build and "
                       "minibatch passes included."),
    "mean_rank": ("Mean rank", "Mean of the proxy's rank over the spaces with ground truth it was scored on."),
    "n": ("n", "Architectures with a finite score and ground truth (median over seeds)."),
    "seeds": ("Seeds", "Number of seeds (model initialisation + minibatch + sample); each seed is a full run."),
    "nonfinite": ("NaN/inf", "Non-finite scores / score records; non-finite scores are excluded from ρ and counted."),
    "stability": ("Seed stability", "Kendall τ between the proxy rankings of two seeds, mean over seed pairs "
                                    "(1 = the same order of proxies in every seed)."),
    "verified": ("Status", "verified: the site re-scored a random sample of the submission's architectures with "
                           "the submitted code and got the submitted scores; not verified: it did not, or could not."),
}


# ----------------------------------------------------------------------------- extension
@dataclass
class Section:
    """A block of HTML on a page. ``page``: "index", "space:<label>" or "proxy:<name>"."""

    page: str
    id: str
    title: str
    html: str
    order: int = 50  # index: 10 matrix, 20 about, 30 no-truth spaces, 40 figures, 60 submissions, 90 notes


_SECTION_FUNCS: list[Callable] = []
#: Modules asked for ``site_sections(data) -> list[Section]`` when present (import errors are
#: reported in the build's notes, never silently dropped).
SECTION_PROVIDERS = ("zcbench.generalization", "zcbench.predict", "zcbench.robustness")


def register_section(fn: Callable) -> Callable:
    """Register ``fn(data) -> list[Section]``: extra sections for the site (e.g. ensembles)."""
    _SECTION_FUNCS.append(fn)
    return fn


def extra_sections(data: rp.ReportData, notes: list) -> list[Section]:
    out: list[Section] = []
    funcs = list(_SECTION_FUNCS)
    for mod_name in SECTION_PROVIDERS:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        except Exception as exc:  # a provider that fails to import must not sink the site
            notes.append(f"section provider {mod_name} failed to import: {' '.join(str(exc).split())}")
            continue
        if hasattr(mod, "site_sections"):
            funcs.append(mod.site_sections)
    for fn in funcs:
        try:
            out.extend(fn(data) or [])
        except Exception as exc:
            notes.append(f"site section {getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')} failed: "
                         f"{' '.join(str(exc).split())}")
    return out


class SiteError(RuntimeError):
    """The output folder cannot be used (e.g. a non-empty folder zcbench did not write)."""


# ----------------------------------------------------------------------------- names
def space_slug(label: str) -> str:
    """Readable, stable file/anchor name of a space label: ``gpt2[table=gpt2_wt2]`` -> ``gpt2-table-gpt2_wt2``."""
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", label).strip("-.")
    return slug or "space"


def proxy_page_name(proxy: str) -> str:
    return f"{safe_name(proxy)}.html"


def space_page_name(space: str) -> str:
    return f"{space_slug(space)}.html"


DATASET_TITLES = {"sklearn_digits": "digits", "wikitext-2": "WikiText-2", "wikitext-103": "WikiText-103",
                  "lm1b": "LM1B"}
_TABLE_TITLES: dict = {}


def _table_title(table: str, info) -> str:
    if table not in _TABLE_TITLES:
        d = rp.table_info(info) if info is not None else None
        ds = (d or {}).get("dataset")
        _TABLE_TITLES[table] = f"{DATASET_TITLES.get(ds, ds)} (ours)" if ds else f"{table} (ours)"
    return _TABLE_TITLES[table]


def space_title(label: str, info=None) -> str:
    """Visitor-facing name of a space label (no option hashes); project-built tables say "(ours)"."""
    name = info.name if info is not None else label.split("[")[0]
    base = SPACE_TITLES.get(name, name)
    table = (info.options.get("table") if info is not None else None) or (
        re.search(r"table=([\w.-]+)", label).group(1) if "table=" in label else None)
    if table:
        return f"{base} · {_table_title(str(table), info)}"
    if "[" in label:
        return f"{base} ({label[label.index('[') + 1:].rstrip(']')})"
    return base


def has_truth(data: rp.ReportData, label: str) -> bool:
    info = data.spaces.get(label)
    return info is not None and info.truth is not None


def ordered_spaces(data: rp.ReportData) -> list[str]:
    """Flagship spaces first, then other spaces with ground truth, then those without."""
    labels = list(dict.fromkeys(data.table["space"]))

    def key(lab):
        info = data.spaces.get(lab)
        name = info.name if info is not None else lab.split("[")[0]
        flag = FLAGSHIP.index(name) if name in FLAGSHIP and lab == name else len(FLAGSHIP)
        return (0 if has_truth(data, lab) else 1, flag, lab)

    return sorted(labels, key=key)


# ----------------------------------------------------------------------------- small HTML helpers
def _num(x) -> str:
    """data-value attribute content: the raw number, or empty for missing."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return ""
    return repr(v) if math.isfinite(v) else ""


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _th(col: str, typ: str = "num", first: str | None = None, left: bool = False, label: str | None = None,
        cls: str = "", sortable: bool = True) -> str:
    head, text = COLUMNS[col]
    label = label or head
    first = first or ("desc" if typ == "num" else "asc")
    classes = " ".join(c for c in (("l" if left else ""), cls) if c)
    c = f' class="{classes}"' if classes else ""
    inner = f'<button type="button">{E(label)}</button>' if sortable else E(label)
    sort = f' data-type="{typ}" data-first="{first}" aria-sort="none"' if sortable else ""
    return f'<th{c}{sort} title="{E(text)}" data-col="{col}">{inner}</th>'


def _td(text: str, value=None, left: bool = False, cls: str = "", raw_html: bool = False,
        sval: str | None = None, title: str = "") -> str:
    classes = " ".join(c for c in (("l" if left else ""), cls) if c)
    c = f' class="{classes}"' if classes else ""
    v = f' data-value="{E(_num(value))}"' if value is not None else ""
    if sval is not None:
        v = f' data-value="{E(sval)}"'
    t = f' title="{E(title)}"' if title else ""
    return f"<td{c}{v}{t}>{text if raw_html else E(text)}</td>"


def _kv(pairs) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{E(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _img(src: str, alt: str, caption: str, fid: str = "") -> str:
    i = f' id="{E(fid)}"' if fid else ""
    return (f'<figure{i}><img src="{E(src)}" alt="{E(alt)}" loading="lazy"><figcaption>{E(caption)}'
            "</figcaption></figure>")


def _fam_tag(fam: str) -> str:
    return f'<span class="fam fam-{E(fam)}" title="{E(FAMILY_TEXT.get(fam, fam))}">{E(fam)}</span>'


def rho_colour(rho: float) -> tuple[str, str]:
    """(background, text colour) of a rho cell: blue for positive, red for negative, white at 0."""
    r = max(-1.0, min(1.0, float(rho)))
    light = 97 - 52 * abs(r)
    hue, sat = (212, 62) if r >= 0 else (8, 70)
    return f"hsl({hue}, {sat}%, {light:.0f}%)", ("#fff" if light < 60 else "#1d2329")


def _beats(x) -> bool:
    return (not bool(x.get("is_baseline"))) and _finite(x.get("d_rho")) and float(x["d_rho"]) > 0 \
        and _finite(x.get("p_vs_base")) and float(x["p_vs_base"]) < SIGNIFICANCE


def _prov_html(data: rp.ReportData) -> str:
    p = data.provenance
    commit = p.get("zcbench_commit") or "unknown (not a git checkout)"
    return (f'<div class="provenance">Built {E(str(p.get("built", "")))} by zcbench {E(str(p.get("zcbench_version")))} '
            f"(commit <code>{E(commit)}</code>). Correlations recomputed from per-architecture scores; "
            f"{p.get('bootstrap_resamples')} bootstrap resamples (seed {p.get('bootstrap_seed')}), 95% percentile "
            f"CIs; baseline of the paired test: <code>{E(str(p.get('baseline')))}</code>.</div>")


NAV = (("index.html", "Overview"), ("metrics.html", "Metrics"), ("reproduction.html", "Reproduction"),
       ("submit.html", "Add your proxy"), ("data/leaderboard.csv", "CSV"))


def _page(title: str, body: str, depth: int, data: rp.ReportData, spaces: list[str] | None = None,
          data_json: str | None = None) -> str:
    up = "../" * depth
    extra = ""
    if data_json is not None:
        safe = data_json.replace("</", "<\\/")
        extra = f'<script type="application/json" id="zcb-data">{safe}</script>\n'
    links = "".join(f'<a href="{up}{href}">{E(t)}</a>' for href, t in NAV)
    tabs = ""
    if spaces:
        tabs = '<nav class="tabs" aria-label="spaces">' + "".join(
            f'<a href="{up}spaces/{space_page_name(s)}">{E(space_title(s, data.spaces.get(s)))}</a>'
            for s in spaces) + "</nav>"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{E(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{up}assets/style.css">
</head>
<body>
<header class="top"><a class="brand" href="{up}index.html">zcbench</a>
<nav class="main">{links}</nav>{tabs}</header>
<main>
{body}
<footer>{_prov_html(data)}</footer>
</main>
{extra}<script src="{up}assets/sort.js"></script>
<script src="{up}assets/filter.js"></script>
</body>
</html>
"""


def _filter_bar(n: int) -> str:
    chips = "".join(f'<button type="button" class="chip" data-family="{f}" aria-pressed="false" '
                    f'title="{E(FAMILY_TEXT[f])}">{E(f)}</button>' for f in FAMILIES)
    return ('<div class="filter" id="filter"><label for="proxy-filter">Filter proxies</label> '
            '<input type="search" id="proxy-filter" placeholder="name, e.g. snip" autocomplete="off"> '
            f'<span class="chips" role="group" aria-label="family">{chips}</span> '
            f'<span class="muted" id="filter-count" data-total="{n}">{n} proxies</span></div>')


# ----------------------------------------------------------------------------- visitor notes
_CONFIG_NOTE = re.compile(r"configuration \S+ \(seeds .*\) not reported")


def split_notes(data: rp.ReportData) -> tuple[list[str], list[str]]:
    """(visitor-facing notes, provenance-only notes). Notes naming internal configuration ids, and
    the "no ground truth" notes the no-truth section explains, go to provenance only."""
    visitor, internal = [], []
    for n in data.notes:
        if _CONFIG_NOTE.search(n) or "no stored ground truth" in n or "correlations left empty" in n:
            internal.append(n)
            continue
        label, sep, rest = n.partition("/")
        lab = label.split(":")[0]
        if lab in data.spaces and sep:
            n = f"{space_title(lab, data.spaces[lab])}: {rest}"
        elif ":" in n and n.split(":")[0] in data.spaces:
            lab = n.split(":")[0]
            n = f"{space_title(lab, data.spaces[lab])}:{n.split(':', 1)[1]}"
        visitor.append(n)
    return visitor, internal


# ----------------------------------------------------------------------------- overview matrix
def mean_ranks(data: rp.ReportData, spaces: list[str]) -> pd.DataFrame:
    """Per proxy: mean rank over ``spaces`` (those it has a finite rho on), the count, median cost."""
    tab = data.table[data.table["space"].isin(spaces)]
    rows = []
    for proxy, g in data.table.groupby("proxy", sort=False):
        gg = tab[tab["proxy"] == proxy]
        ranks = gg["rank"][gg["rho"].notna()]
        rows.append({"proxy": proxy, "proxy_name": g["proxy_name"].iloc[0],
                     "mean_rank": float(ranks.mean()) if len(ranks) else math.nan, "n_spaces": int(len(ranks)),
                     "cost": float(gg["sec_per_arch"].median()) if len(gg) else float(g["sec_per_arch"].median()),
                     "is_baseline": bool(g["is_baseline"].any())})
    out = pd.DataFrame(rows)
    # proxies scored on more of the spaces first (a mean over one space is not comparable), then mean rank
    out["_k"] = out["mean_rank"].fillna(np.inf)
    out["_c"] = -out["n_spaces"]
    return out.sort_values(["_c", "_k", "proxy"]).drop(columns=["_k", "_c"]).reset_index(drop=True)


def fmt_cost(sec) -> str:
    """Seconds per architecture, short: 38 µs, 20 ms, 1.5 s."""
    if not _finite(sec):
        return "—"
    sec = float(sec)
    if sec < 1e-3:
        return f"{sec * 1e6:.0f} µs"
    if sec < 1:
        return f"{sec * 1e3:.0f} ms"
    return f"{sec:.1f} s" if sec < 100 else f"{sec:.0f} s"


def _missing_reason(data: rp.ReportData, space: str, x) -> str:
    if x is None:
        return "not scored on this space (no stored run)"
    if bool(x["constant"]):
        return "constant scores: every architecture got the same score, so there is no ranking"
    if not _finite(x["n_archs"]) or float(x["n_archs"]) < 2:
        return "no finite scores with ground truth (see NaN/inf on the space page)"
    return "no correlation could be computed"


def overview_matrix(data: rp.ReportData, spaces: list[str]) -> str:
    mr = mean_ranks(data, spaces)
    tab = data.table.set_index(["space", "proxy"])
    head = (_th("proxy", "str", left=True) +
            "".join(f'<th data-type="num" data-first="desc" aria-sort="none" data-col="space" data-space="'
                    f'{E(s)}" title="{E(_space_head_title(data, s))}"><button type="button">'
                    f'{E(space_title(s, data.spaces.get(s)))}</button></th>' for s in spaces) +
            _th("mean_rank", first="asc", cls="opt") + _th("cost", first="asc"))
    body = []
    for _, m in mr.iterrows():
        fam = proxy_family(m["proxy_name"])
        cls = ["baseline"] if m["is_baseline"] else []
        link = f'<a href="proxies/{proxy_page_name(m["proxy_name"])}">{E(m["proxy"])}</a>'
        tag = " " + _fam_tag(fam)
        if m["is_baseline"]:
            tag += ' <span class="muted">(baseline)</span>'
        cells = [_td(link + tag, left=True, cls="proxy", raw_html=True, sval=str(m["proxy"]))]
        for s in spaces:
            x = tab.loc[(s, m["proxy"])] if (s, m["proxy"]) in tab.index else None
            if x is not None and _finite(x["rho"]):
                bg, fg = rho_colour(x["rho"])
                tip = (f"{space_title(s, data.spaces.get(s))}: ρ = {rp.fmt_float(x['rho'])}, 95% CI "
                       f"{rp.fmt_ci(x['rho_ci_lo'], x['rho_ci_hi'])}; τ = {rp.fmt_float(x['tau'])}; "
                       f"n = {rp.fmt_int(x['n_archs'])}, {int(x['n_seeds'])} seed(s); rank "
                       f"{rp.fmt_int(x['rank'])}")
                if not x["is_baseline"]:
                    tip += f"; Δρ vs #params {rp.fmt_diff(x['d_rho'], x['d_rho_ci_lo'], x['d_rho_ci_hi'])}, " \
                           f"p = {rp.fmt_p(x['p_vs_base'])}"
                mark = ' <span class="beats" aria-label="beats #params">▲</span>' if _beats(x) else ""
                cells.append(f'<td class="cell" data-value="{_num(x["rho"])}" data-space="{E(s)}" '
                             f'style="background:{bg};color:{fg}" title="{E(tip)}">{rp.fmt_float(x["rho"], 2)}'
                             f"{mark}</td>")
            else:
                why = _missing_reason(data, s, x)
                cells.append(f'<td class="cell na" data-value="" data-space="{E(s)}" title="{E(why)}">'
                             f'<abbr title="{E(why)}">n/a</abbr></td>')
        rank_txt = "—" if not _finite(m["mean_rank"]) else f"{m['mean_rank']:.1f}"
        cells.append(_td(rank_txt, m["mean_rank"], cls="opt",
                         title=f"over {m['n_spaces']} of {len(spaces)} spaces with ground truth"))
        cells.append(_td(fmt_cost(m["cost"]), m["cost"],
                         title="median seconds per architecture over the spaces shown"))
        c = f' class="{" ".join(cls)}"' if cls else ""
        body.append(f'<tr{c} data-proxy="{E(m["proxy"])}" data-family="{fam}">' + "".join(cells) + "</tr>")
    legend = ('<p class="legend muted" id="matrix-legend">Cells: Spearman ρ between proxy score and trained '
              'quality, mean over seeds (hover for the 95% CI, τ, n and the paired test). '
              '<span class="swatch" style="background:' + rho_colour(0.9)[0] + '"></span> high ρ · '
              '<span class="swatch" style="background:' + rho_colour(0)[0] + '"></span> 0 · '
              '<span class="swatch" style="background:' + rho_colour(-0.9)[0] + '"></span> negative. '
              '<span class="beats">▲</span> beats #params (Δρ &gt; 0, paired bootstrap p &lt; 0.05). '
              '<abbr title="hover a cell for the reason">n/a</abbr>: not scored or no ranking (hover for why). '
              'Rows: mean rank over the spaces shown; column definitions: <a href="metrics.html">metrics</a>.</p>')
    key = ('<p class="key muted">Cells: Spearman ρ with trained quality, mean over seeds (hover: 95% CI) · '
           '<span class="beats">▲</span> beats #params · <a href="#matrix-legend">key</a></p>')
    return (key + f'<div class="table-wrap"><table class="zcb-sortable matrix" id="matrix" data-filterable="1">'
            f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></div>" + legend)


def _space_head_title(data: rp.ReportData, s: str) -> str:
    info = data.spaces.get(s)
    rows = data.table[data.table["space"] == s]
    n = rows["n_archs"].dropna()
    metric = info.metric_label if info is not None and info.metric else "ground truth"
    return f"{space_title(s, info)}: {metric}; {int(n.max()) if len(n) else 0} architectures"


# ----------------------------------------------------------------------------- tables
def leaderboard_table(rows: pd.DataFrame, baseline: str, depth: int, table_id: str) -> str:
    """One sortable table per space; ``depth`` = folder depth of the page (for relative links)."""
    up = "../" * depth
    head = "".join([
        _th("rank", first="asc", cls="opt3"), _th("proxy", "str", left=True),
        _th("family", "str", left=True, cls="opt2"), _th("rho", label="ρ mean ± std"), _th("rho_ci", cls="opt3"), _th("tau", label="τ mean ± std", cls="opt"),
        _th("top10", cls="opt"), _th("d_rho", label=f"Δρ vs {baseline}"), _th("p", first="asc", cls="opt"),
        _th("cost", first="asc"), _th("n", cls="opt2"), _th("seeds", cls="opt2"),
        _th("nonfinite", first="asc", cls="opt2"),
    ])
    body = []
    for _, x in rows.iterrows():
        fam = proxy_family(x["proxy_name"])
        cls = ' class="baseline"' if x["is_baseline"] else ""
        nonfinite = int(x["n_nan"] + x["n_inf"])
        d = rp.fmt_diff(x["d_rho"])
        if _beats(x):
            d += ' <span class="beats" title="beats #params">▲</span>'
        link = f'<a href="{up}proxies/{proxy_page_name(x["proxy_name"])}">{E(x["proxy"])}</a>'
        if x["is_baseline"]:
            link += ' <span class="muted">(baseline)</span>'
        cells = [
            _td("—" if not _finite(x["rank"]) else str(int(x["rank"])), x["rank"], cls="opt3"),
            _td(link, left=True, cls="proxy", raw_html=True, sval=str(x["proxy"])),
            _td(_fam_tag(fam), left=True, cls="opt2", raw_html=True, sval=fam),
            _td(rp.fmt_pm(x["rho"], x["rho_std"], constant=bool(x["constant"])), x["rho"]),
            _td(rp.fmt_ci(x["rho_ci_lo"], x["rho_ci_hi"]), x["rho_ci_lo"], cls="opt3"),
            _td(rp.fmt_pm(x["tau"], x["tau_std"], constant=bool(x["constant"])), x["tau"], cls="opt"),
            _td(rp.fmt_float(x["top10"], 2), x["top10"], cls="opt"),
            _td(d, x["d_rho"], raw_html=True, title=f"95% CI {rp.fmt_ci(x['d_rho_ci_lo'], x['d_rho_ci_hi'])}"),
            _td(rp.fmt_p(x["p_vs_base"]), x["p_vs_base"], cls="opt"),
            _td(fmt_cost(x["sec_per_arch"]), x["sec_per_arch"]),
            _td(rp.fmt_int(x["n_archs"]), x["n_archs"], cls="opt2"),
            _td(str(x["n_seeds"]), x["n_seeds"], cls="opt2"),
            _td(f"{nonfinite}/{int(x['n_records'])}", nonfinite, cls="opt2"),
        ]
        body.append(f'<tr{cls} data-proxy="{E(x["proxy"])}" data-family="{fam}">' + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table class="zcb-sortable" id="{E(table_id)}" data-filterable="1">'
            f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></div>")


def cost_table(rows: pd.DataFrame, depth: int, table_id: str) -> str:
    """What exists for a space without ground truth: who was scored, on how many archs, at what cost."""
    up = "../" * depth
    head = (_th("proxy", "str", left=True) + _th("family", "str", left=True) + _th("cost", first="asc") +
            '<th data-type="num" data-first="desc" aria-sort="none" title="architectures scored (all seeds)">'
            '<button type="button">scored</button></th>' + _th("seeds") + _th("nonfinite", first="asc"))
    body = []
    for _, x in rows.sort_values("sec_per_arch").iterrows():
        fam = proxy_family(x["proxy_name"])
        body.append(f'<tr data-proxy="{E(x["proxy"])}" data-family="{fam}">' + "".join([
            _td(f'<a href="{up}proxies/{proxy_page_name(x["proxy_name"])}">{E(x["proxy"])}</a>', left=True,
                cls="proxy", raw_html=True, sval=str(x["proxy"])),
            _td(_fam_tag(fam), left=True, raw_html=True, sval=fam),
            _td(fmt_cost(x["sec_per_arch"]), x["sec_per_arch"]),
            _td(str(int(x["n_records"])), x["n_records"]), _td(str(x["n_seeds"]), x["n_seeds"]),
            _td(f"{int(x['n_nan'] + x['n_inf'])}/{int(x['n_records'])}", x["n_nan"] + x["n_inf"]),
        ]) + "</tr>")
    return (f'<div class="table-wrap"><table class="zcb-sortable" id="{E(table_id)}" data-filterable="1">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def _no_truth_reason(info) -> str:
    name = info.name if info is not None else "this space"
    return (f"No table of trained {name} networks is public, so there is nothing to correlate the scores "
            "with: the numbers below are what the proxies cost on sampled architectures. A project-built "
            "table (python -m zcbench groundtruth build) adds a column to the overview once it exists.")


# ----------------------------------------------------------------------------- figures
def _figure(w, h):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _panels(n: int, w: float = 10.0, h: float = 3.6):
    cols = min(2, n)
    rows = math.ceil(n / cols)
    fig = _figure(w if cols > 1 else w * 0.6, h * rows)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def plot_pareto_across(data: rp.ReportData, spaces: list[str], path: Path) -> Path | None:
    """Cost (s/arch, log) vs rho, one panel per space; the Pareto front in red, labelled."""
    spaces = [s for s in spaces if data.table[(data.table["space"] == s) & data.table["rho"].notna()
                                              & (data.table["sec_per_arch"] > 0)].shape[0]]
    if not spaces:
        return None
    fig, axes = _panels(len(spaces))
    for ax, s in zip(axes, spaces):
        r = data.table[(data.table["space"] == s) & data.table["rho"].notna() & (data.table["sec_per_arch"] > 0)]
        cost, rho = r["sec_per_arch"].to_numpy(float), r["rho"].to_numpy(float)
        front = rp.pareto_front(cost, rho)
        ax.scatter(cost[~front], rho[~front], s=18, color="#8da0b3")
        ax.scatter(cost[front], rho[front], s=26, color="#c0392b", zorder=3)
        order = np.argsort(cost[front])
        ax.plot(cost[front][order], rho[front][order], color="#c0392b", lw=1)
        for c, q, name in zip(cost[front], rho[front], r["proxy"][front]):
            ax.annotate(name, (c, q), textcoords="offset points", xytext=(4, 3), fontsize=7)
        base = r[r["is_baseline"]]
        if len(base):
            ax.axhline(float(base["rho"].iloc[0]), color="#d9822b", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("seconds per architecture (log)", fontsize=8)
        ax.set_ylabel("Spearman ρ", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.text(0.02, 0.04, space_title(s, data.spaces.get(s)), transform=ax.transAxes, fontsize=9,
                fontweight="bold", va="bottom")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def seed_ranks(data: rp.ReportData, space: str) -> pd.DataFrame:
    """Rank of each proxy (by rho) within each seed of ``space``; one row per (proxy, seed)."""
    ps = data.per_seed[(data.per_seed["space"] == space)].dropna(subset=["rho"])
    if ps.empty:
        return pd.DataFrame(columns=["proxy", "seed", "rho", "rank"])
    ps = ps[["proxy", "seed", "rho"]].copy()
    # ranks are comparable only among the same proxies: keep the seeds that scored at least half of the
    # space's proxies, and the proxies scored in every kept seed
    counts = ps.groupby("seed")["proxy"].nunique()
    seeds = counts[counts >= max(2, counts.max() / 2)].index
    ps = ps[ps["seed"].isin(seeds)]
    full = ps.groupby("proxy")["seed"].nunique()
    ps = ps[ps["proxy"].isin(full[full == len(seeds)].index)].copy()
    ps["rank"] = ps.groupby("seed")["rho"].rank(ascending=False, method="min")
    return ps


def seed_stability(data: rp.ReportData, space: str) -> dict:
    """Kendall tau between the proxy rankings of every pair of seeds (proxies scored in both)."""
    from scipy import stats

    ps = seed_ranks(data, space)
    seeds = sorted(ps["seed"].unique())
    taus, max_move = [], 0
    piv = ps.pivot_table(index="proxy", columns="seed", values="rho")
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            d = piv[[a, b]].dropna()
            if len(d) >= 3:
                taus.append(float(stats.kendalltau(d[a], d[b]).statistic))
                ra, rb = d[a].rank(ascending=False), d[b].rank(ascending=False)
                max_move = max(max_move, int((ra - rb).abs().max()))
    return {"seeds": [int(s) for s in seeds], "tau": float(np.mean(taus)) if taus else math.nan,
            "pairs": len(taus), "max_move": max_move}


def plot_stability(data: rp.ReportData, spaces: list[str], path: Path) -> Path | None:
    """Rank of every proxy in each seed (dots) and its range (line), proxies ordered by mean rank."""
    spaces = [s for s in spaces if seed_ranks(data, s)["seed"].nunique() >= 2]
    if not spaces:
        return None
    n_prox = max(seed_ranks(data, s)["proxy"].nunique() for s in spaces)
    fig, axes = _panels(len(spaces), h=max(3.0, 0.17 * n_prox + 1.2))
    colours = ["#2f5d8a", "#d9822b", "#3a9a5b", "#8e44ad", "#7f8c8d"]
    for ax, s in zip(axes, spaces):
        ps = seed_ranks(data, s)
        order = ps.groupby("proxy")["rank"].mean().sort_values(ascending=False)
        y = {p: i for i, p in enumerate(order.index)}
        for p, g in ps.groupby("proxy"):
            ax.plot([g["rank"].min(), g["rank"].max()], [y[p], y[p]], color="#b8c2cc", lw=2, zorder=1)
        for j, (seed, g) in enumerate(ps.groupby("seed")):
            ax.scatter(g["rank"], [y[p] for p in g["proxy"]], s=14, color=colours[j % len(colours)],
                       label=f"seed {seed}", zorder=2)
        ax.set_yticks(range(len(order)), order.index, fontsize=6.5)
        ax.set_xlabel("rank by ρ within the seed (1 = best)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        st = seed_stability(data, s)
        ax.text(0.02, 0.02, f"{space_title(s, data.spaces.get(s))}\nτ between seeds {rp.fmt_float(st['tau'], 2)}",
                transform=ax.transAxes, fontsize=8, ha="left", va="bottom", fontweight="bold")
        ax.legend(fontsize=6.5, loc="upper right")
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def ceiling_band(data: rp.ReportData, space: str) -> dict | None:
    """Noise ceiling of a project-built table (seed-vs-seed rho and its CI), else None."""
    d = rp.table_info(data.spaces.get(space))
    c = d.get("ceiling") if d else None
    if not c or not _finite(c.get("rho")):
        return None
    lo, hi = (c.get("rho_ci") or [math.nan, math.nan])[:2]
    return {"rho": float(c["rho"]), "lo": float(lo) if _finite(lo) else float(c["rho"]),
            "hi": float(hi) if _finite(hi) else float(c["rho"]), "n": c.get("n")}


def plot_bar_band(data: rp.ReportData, space: str, path: Path) -> Path | None:
    """rho per proxy with 95% CI whiskers, the baseline dashed and, for project-built tables, the noise
    ceiling (seed-vs-seed agreement of the ground truth, 95% CI) as a shaded band."""
    rows = data.table[(data.table["space"] == space) & data.table["rho"].notna()].sort_values("rho")
    if rows.empty:
        return None
    fig = _figure(7.5, max(2.5, 0.26 * len(rows) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    rho = rows["rho"].to_numpy(float)
    lo, hi = rows["rho_ci_lo"].to_numpy(float), rows["rho_ci_hi"].to_numpy(float)
    err = np.vstack([np.where(np.isfinite(lo), np.maximum(rho - lo, 0), 0),
                     np.where(np.isfinite(hi), np.maximum(hi - rho, 0), 0)])
    colours = ["#d9822b" if b else "#4c72b0" for b in rows["is_baseline"]]
    ax.barh(y, rho, xerr=err, color=colours, capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_yticks(y, rows["proxy"], fontsize=7)
    base = rows[rows["is_baseline"]]
    if len(base):
        ax.axvline(float(base["rho"].iloc[0]), color="#d9822b", ls="--", lw=1, label="#params")
    band = ceiling_band(data, space)
    if band:
        ax.axvspan(band["lo"], band["hi"], color="#3a9a5b", alpha=0.18, label="noise ceiling (95% CI)")
        ax.axvline(band["rho"], color="#3a9a5b", lw=1.2)
    ax.axvline(0, color="#444", lw=0.6)
    ax.set_xlabel("Spearman ρ (95% CI)", fontsize=8)
    ax.set_xlim(min(-0.1, float(np.nanmin(np.r_[rho, lo])) - 0.05), 1.0)
    ax.tick_params(axis="x", labelsize=7)
    if len(base) or band:
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def write_site_figures(data: rp.ReportData, out: Path, spaces: list[str]) -> set:
    """The site's own figures (no titles inside the image: captions are HTML, so never cut)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    cache = rp.figure_cache(data, code=[Path(__file__)])
    made = set()
    truth = [s for s in spaces if has_truth(data, s)]
    digests = {s: _site_digest(data, s) for s in truth}

    def draw(rel: str, kind: str, spaces_drawn: list[str], fn) -> None:
        key = cache.key(kind, rel, [digests[s] for s in spaces_drawn])
        if cache.draw(key, out, lambda: [p for p in [fn(out / rel)] if p]):
            made.add(rel)

    draw("figures/index/pareto.png", "pareto", truth, lambda p: plot_pareto_across(data, truth, p))
    draw("figures/index/stability.png", "stability", truth, lambda p: plot_stability(data, truth, p))
    for s in truth:
        slug = space_slug(s)
        for stem, fn in (("bar", plot_bar_band), ("pareto", lambda d, sp, p: plot_pareto_across(d, [sp], p)),
                         ("stability", lambda d, sp, p: plot_stability(d, [sp], p))):
            draw(f"figures/site/{slug}/{stem}.png", stem, [s], lambda p, fn=fn, s=s: fn(data, s, p))
    data.cache_stats["site_figures"] = {"hits": cache.hits, "misses": cache.misses}
    return made


def _site_digest(data: rp.ReportData, space: str) -> dict:
    """What the site's figures of a space are drawn from (its rows, seeds, noise ceiling, title)."""
    return {**rp.space_digest(data, space), "seeds": rp.frame_digest(seed_ranks(data, space)),
            "ceiling": json.dumps(ceiling_band(data, space), sort_keys=True, default=str),
            "title": space_title(space, data.spaces.get(space))}


# ----------------------------------------------------------------------------- pages
ABOUT = (
    "zcbench asks, per search space of Transformer architectures, whether a zero-cost proxy — a score computed "
    "from an untrained network and at most one minibatch — ranks the architectures the way their trained "
    "quality does, and whether it beats simply counting parameters. Protocol: every stored architecture of the "
    "space is built at initialisation (seeded), each proxy scores it from one minibatch (or from weights alone); "
    "Spearman ρ and Kendall τ against the published ground truth (perplexity negated, so higher is better) are "
    "computed per seed and averaged over seeds; 95% confidence intervals come from a bootstrap over "
    "architectures, and a paired bootstrap tests each proxy against #params on the same architectures. "
    "Cost is the median wall-clock time per architecture. Everything is recomputed from the per-architecture "
    "scores stored in the repository.")


def index_page(data: rp.ReportData, title: str, spaces: list[str], figures: set, sections: list[Section],
               submissions: list | None = None) -> str:
    truth = [s for s in spaces if has_truth(data, s)]
    no_truth = [s for s in spaces if not has_truth(data, s)]
    n_prox = data.table["proxy"].nunique()
    parts: list[tuple[int, str]] = []
    lead = (f'<h1>{E(title)}</h1><p class="lead">Zero-cost proxies for Transformer search: how well {n_prox} '
            f"proxies rank trained architectures on {len(truth)} spaces with ground truth "
            f'(<a href="#about">how it is measured</a>).</p>')
    parts.append((0, lead))
    parts.append((10, f'<section id="overview"><h2 class="sr">Overview</h2>{_filter_bar(n_prox)}'
                      f"{overview_matrix(data, truth)}</section>"))
    parts.append((20, f'<section id="about"><h2>What this is</h2><p>{E(ABOUT)}</p>'
                      '<p>Per-space tables (all columns, sortable): ' + " · ".join(
                          f'<a href="spaces/{space_page_name(s)}">{E(space_title(s, data.spaces.get(s)))}</a>'
                          for s in spaces) + '. Column definitions: <a href="metrics.html">metrics</a>. '
                      'Compare with the papers: <a href="reproduction.html">reproduction</a>. '
                      'Add your own: <a href="submit.html">submit a proxy</a>.</p></section>'))
    if no_truth:
        blocks = []
        for s in no_truth:
            info = data.spaces.get(s)
            rows = data.table[data.table["space"] == s]
            cheapest = rows.sort_values("sec_per_arch").iloc[0] if len(rows) else None
            what = (f"{len(rows)} prox{'y' if len(rows) == 1 else 'ies'} scored "
                    f"({int(rows['n_records'].max()) if len(rows) else 0} score records at most)"
                    + (f"; cheapest: {cheapest['proxy']} at {fmt_cost(cheapest['sec_per_arch'])} per architecture"
                       if cheapest is not None else ""))
            blocks.append(f'<div class="card" id="space-{space_slug(s)}"><h3><a href="spaces/{space_page_name(s)}">'
                          f"{E(space_title(s, info))}</a></h3><p>{E(_no_truth_reason(info))}</p>"
                          f'<p class="muted">{E(what)}.</p></div>')
        parts.append((30, '<section id="no-ground-truth"><h2>Spaces without ground truth</h2>'
                          + "".join(blocks) + "</section>"))
    figs = []
    if "figures/index/pareto.png" in figures:
        figs.append(_img("figures/index/pareto.png", "cost versus rho per space",
                         "Cost vs ρ per space (log seconds per architecture). Red: the Pareto front — no other "
                         "proxy is both cheaper and better; dashed: #params.", "fig-pareto"))
    if "figures/index/stability.png" in figures:
        figs.append(_img("figures/index/stability.png", "rank of each proxy in each seed",
                         "Rank stability across seeds: each dot is a proxy's rank in one seed, the grey line its "
                         "range; τ between seeds = Kendall τ of the proxy orders of two seeds (mean over pairs).",
                         "fig-stability"))
    stab_rows = []
    for s in truth:
        st = seed_stability(data, s)
        if st["pairs"]:
            stab_rows.append(f'<tr><td class="l"><a href="spaces/{space_page_name(s)}">'
                             f"{E(space_title(s, data.spaces.get(s)))}</a></td><td>{len(st['seeds'])}</td>"
                             f"<td>{rp.fmt_float(st['tau'], 2)}</td><td>{st['max_move']}</td></tr>")
    stab = ""
    if stab_rows:
        stab = ('<div class="table-wrap"><table id="stability"><thead><tr><th class="l">Space</th><th>Seeds</th>'
                f'<th title="{E(COLUMNS["stability"][1])}">τ between seeds</th>'
                '<th title="largest change of a proxy\'s rank between two seeds">max rank change</th></tr></thead>'
                f"<tbody>{''.join(stab_rows)}</tbody></table></div>")
    if figs or stab:
        parts.append((40, '<section id="figures"><h2>Cost, quality and stability</h2><div class="figs">'
                          + "".join(figs) + "</div>" + stab + "</section>"))
    parts.append((60, submissions_section(data, truth, submissions or [])))
    for sec in sections:
        if sec.page == "index":
            parts.append((sec.order, f'<section id="{E(sec.id)}"><h2>{E(sec.title)}</h2>{sec.html}</section>'))
    visitor, internal = split_notes(data)
    if visitor:
        parts.append((90, '<section id="notes"><h2>Notes</h2><ul class="notes">' +
                          "".join(f"<li>{E(n)}</li>" for n in visitor) + "</ul></section>"))
    parts.append((95, '<section id="downloads"><h2>Downloads</h2><p><a href="data/leaderboard.csv">leaderboard.csv'
                      '</a> (every column, documented on the <a href="metrics.html">metrics</a> page) · '
                      '<a href="data/per_seed.csv">per_seed.csv</a> · <a href="data/reproduction.csv">'
                      "reproduction.csv</a></p></section>"))
    parts.append((99, '<section id="provenance"><h2>Provenance</h2><details class="provenance"><summary>'
                      f"Build notes ({len(internal)})</summary><ul>" +
                      "".join(f"<li>{E(n)}</li>" for n in internal) + "</ul></details></section>"))
    body = "\n".join(h for _, h in sorted(parts, key=lambda t: t[0]))
    payload = json.loads(data.table.to_json(orient="records"))
    return _page(title, body, 0, data, spaces,
                 json.dumps({"baseline": data.baseline, "provenance": data.provenance, "rows": payload}))


def _proxy_doc(name: str) -> dict:
    """Class/module docstrings, citation, needs and version of a registered proxy (empty when unavailable)."""
    out = {"registered": False, "doc": "", "module_doc": "", "citation": "", "needs": "", "version": "", "module": ""}
    try:
        p = zcbench.get_proxy(name)
    except Exception as exc:  # not registered here, or needs options
        out["error"] = " ".join(str(exc).split())
        return out
    cls = type(p)
    mod = sys.modules.get(cls.__module__)
    out.update(registered=True, doc=textwrap.dedent(cls.__doc__ or "").strip(),
               module_doc=(mod.__doc__ or "").strip() if mod else "", citation=getattr(p, "citation", "") or "",
               needs=", ".join(sorted(getattr(p, "needs", ()) or ())), version=str(getattr(p, "version", "")),
               module=cls.__module__, layers=str(getattr(p, "layers_counted", "") or ""))
    return out


def proxy_page(data: rp.ReportData, proxy_name: str, figures: set, spaces: list[str],
               sections: list[Section]) -> str:
    order = {s: i for i, s in enumerate(spaces)}
    tab = data.table[data.table["proxy_name"] == proxy_name].copy()
    tab = tab.iloc[sorted(range(len(tab)), key=lambda i: order.get(tab["space"].iloc[i], 99))]
    doc = _proxy_doc(proxy_name)
    fam = proxy_family(proxy_name)
    citation = doc["citation"] or (tab["citation"].iloc[0] if len(tab) else "")
    parts = [f"<h1>{E(proxy_name)}</h1>", _kv([
        ("family", _fam_tag(fam) + f" <span class=\"muted\">{E(FAMILY_TEXT[fam])}</span>"),
        ("citation", E(citation or "—")), ("needs", E(doc["needs"] or "—")),
        *([("layers counted", E(doc["layers"]))] if doc.get("layers") else []),
        ("proxy version", E(doc["version"] or ", ".join(sorted(set(tab["proxy_version"]))))),
        ("implementation", f"<code>{E(doc['module'])}</code>" if doc["module"] else
         E("not registered in this installation")),
    ])]
    text = "\n\n".join(t for t in (doc["module_doc"], doc["doc"]) if t)
    parts.append('<h2 id="results">Results per space</h2>')
    head = "".join([_th("proxy", "str", left=True, label="Space"), _th("rank", first="asc"),
                    _th("rho", label="ρ mean ± std"), _th("rho_ci", cls="opt3"),
                    _th("tau", label="τ mean ± std", cls="opt"), _th("top10", cls="opt"), _th("top50", cls="opt2"), _th("d_rho"), _th("p", first="asc", cls="opt"),
                    _th("cost", first="asc"), _th("n", cls="opt2"), _th("seeds", cls="opt2")])
    body = []
    for _, x in tab.iterrows():
        s = x["space"]
        of = int((data.table["space"] == s).sum())
        truth = has_truth(data, s)
        rank = "—" if not _finite(x["rank"]) else f"{int(x['rank'])} of {of}"
        d = rp.fmt_diff(x["d_rho"]) + (' <span class="beats" title="beats #params">▲</span>' if _beats(x) else "")
        name = space_title(s, data.spaces.get(s)) + ("" if x["proxy"] == proxy_name else f" ({x['proxy']})")
        cells = [
            _td(f'<a href="../spaces/{space_page_name(s)}">{E(name)}</a>', left=True, raw_html=True, sval=name),
            _td(rank if truth else "no ground truth", x["rank"]), _td(rp.fmt_pm(x["rho"], x["rho_std"]), x["rho"]),
            _td(rp.fmt_ci(x["rho_ci_lo"], x["rho_ci_hi"]), x["rho_ci_lo"], cls="opt3"),
            _td(rp.fmt_pm(x["tau"], x["tau_std"]), x["tau"], cls="opt"),
            _td(rp.fmt_float(x["top10"], 2), x["top10"], cls="opt"),
            _td(rp.fmt_float(x["top50"], 2), x["top50"], cls="opt2"),
            _td(d, x["d_rho"], raw_html=True, title=f"95% CI {rp.fmt_ci(x['d_rho_ci_lo'], x['d_rho_ci_hi'])}"),
            _td(rp.fmt_p(x["p_vs_base"]), x["p_vs_base"], cls="opt"),
            _td(fmt_cost(x["sec_per_arch"]), x["sec_per_arch"]),
            _td(rp.fmt_int(x["n_archs"]), x["n_archs"], cls="opt2"), _td(str(x["n_seeds"]), x["n_seeds"], cls="opt2"),
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    parts.append(f'<div class="table-wrap"><table class="zcb-sortable" id="proxy-spaces"><thead><tr>{head}</tr>'
                 f"</thead><tbody>{''.join(body)}</tbody></table></div>")
    if text:
        first = text.split("\n\n")[0]
        parts.append(f'<h2 id="definition">Definition</h2><p>{E(" ".join(first.split()))}</p>'
                     f'<details class="provenance"><summary>Formula, citation and implementation notes '
                     f"(docstring; may cite upstream commits)</summary>"
                     f"<pre>{E(text)}</pre></details>")
    ps = data.per_seed[data.per_seed["proxy"].isin(tab["proxy"]) & data.per_seed["space"].isin(tab["space"])]
    if len(ps):
        parts.append('<h2 id="per-seed">Per seed</h2>')
        rows = []
        for _, s in ps.iterrows():
            rows.append("<tr>" + "".join([
                _td(space_title(s["space"], data.spaces.get(s["space"])), left=True), _td(str(s["seed"]), s["seed"]),
                _td(rp.fmt_float(s.get("rho", math.nan)), s.get("rho")),
                _td(rp.fmt_float(s.get("tau", math.nan)), s.get("tau")),
                _td(rp.fmt_int(s.get("n")), s.get("n")),
                _td(f"{int(s['n_nan'])}/{int(s['n_inf'])}/{int(s['n_na'])}/{int(s['n_error'])}",
                    s["n_nan"] + s["n_inf"] + s["n_na"] + s["n_error"], cls="opt"),
                _td(fmt_cost(s["sec_median"]), s["sec_median"])]) + "</tr>")
        head = ('<th class="l" data-type="str" data-first="asc" aria-sort="none"><button type="button">Space'
                '</button></th><th data-type="num" data-first="asc" aria-sort="none"><button type="button">seed'
                "</button></th>" + _th("rho", label="ρ") + _th("tau", label="τ") + _th("n") +
                '<th class="opt" data-type="num" data-first="asc" aria-sort="none" title="NaN / inf / n/a / error '
                'records"><button type="button">NaN/inf/n/a/err</button></th>' + _th("cost", first="asc"))
        parts.append(f'<div class="table-wrap"><table class="zcb-sortable" id="proxy-seeds"><thead><tr>{head}</tr>'
                     f"</thead><tbody>{''.join(rows)}</tbody></table></div>")
    figs = []
    for _, x in tab.iterrows():
        rel = f"figures/{safe_name(x['space'])}/proxies/{safe_name(x['proxy'])}.png"
        if rel in figures:
            figs.append(_img(f"../{rel}", f"{x['proxy']} on {x['space']}",
                             f"{space_title(x['space'], data.spaces.get(x['space']))}: score vs ground truth and "
                             "rank vs rank (first seed)."))
    if figs:
        parts.append('<h2 id="figures">Figures</h2><div class="figs">' + "".join(figs) + "</div>")
    for sec in sections:
        if sec.page == f"proxy:{proxy_name}":
            parts.append(f'<section id="{E(sec.id)}"><h2>{E(sec.title)}</h2>{sec.html}</section>')
    prov = ['<h2 id="provenance">Provenance</h2><div class="provenance">']
    for _, x in tab.iterrows():
        runs = "".join(f"<li>seed {E(str(s['seed']))}: <code>{E(str(s['run_key']))}</code></li>"
                       for _, s in ps[(ps["space"] == x["space"]) & (ps["proxy"] == x["proxy"])].iterrows())
        prov.append(f"<h3>{E(space_title(x['space'], data.spaces.get(x['space'])))}</h3>" + _kv([
            ("space label", f"<code>{E(x['space'])}</code>"),
            ("run keys", f"<ul class=\"plain\">{runs}</ul>" if runs else f"<code>{E(x['run_keys'])}</code>"),
            ("configuration", f"<code>{E(x['config'])}</code>"),
            ("data config", f"<code>{E(x['data_config'])}</code>"),
            ("device", E(str(x["device"]))), ("zcbench version (scoring)", E(x["zcbench_versions"])),
            ("zcbench commit (scoring)", f"<code>{E(x['zcbench_commits'])}</code>"),
            ("ground truth", E(f"{x['metric']} ({'higher' if x['higher_is_better'] else 'lower'} is better)")),
            ("CI basis", E(str(x["ci_basis"]))),
        ]))
    prov.append("</div>")
    parts.extend(prov)
    return _page(f"{proxy_name} — zcbench", "\n".join(parts), 1, data, spaces)


def _manifest_html(table: str, data_dir) -> str:
    from zcbench import fetch
    from zcbench.data import DataError

    try:
        info = fetch.table_info(table)
    except DataError:
        return ("<p>No downloadable ground-truth table for this space in <code>zcbench/manifest.json</code> "
                "(its architectures are sampled; see the space's documentation).</p>")
    files = info["files"]
    main_files = [f for f in files if not f["path"].endswith("model_config.yaml")]
    configs = [f for f in files if f["path"].endswith("model_config.yaml")]
    try:
        problems = fetch.verify(table, data_dir)
        verified = ("all files present with the manifest's sha256 in the data dir used for this build"
                    if not problems else f"{len(problems)} problem(s) in the local data dir, e.g. {problems[0]}")
    except Exception as exc:  # no data dir
        verified = f"not checked ({' '.join(str(exc).split())})"
    rows = "".join(f"<tr><td class=\"l\"><code>{E(f['path'])}</code></td><td>{f['size']}</td>"
                   f"<td class=\"l hash\"><code>{E(f['sha256'])}</code></td></tr>" for f in main_files)
    out = [_kv([("manifest table", f"<code>{E(table)}</code>"), ("description", E(info.get("description", ""))),
                ("upstream", f"<code>{E(info['repo'])}</code> at commit <code>{E(info['commit'])}</code>"),
                ("license", E(info.get("license", ""))), ("cite", E(info.get("cite", ""))),
                ("notes", E(info.get("notes", "") or "—")), ("local check", E(verified))]),
           '<div class="table-wrap"><table><thead><tr><th class="l">file</th><th>bytes</th>'
           f'<th class="l">sha256</th></tr></thead><tbody>{rows}</tbody></table></div>']
    if configs:
        crow = "".join(f"<tr><td class=\"l\"><code>{E(f['path'])}</code></td><td class=\"l hash\"><code>"
                       f"{E(f['sha256'])}</code></td></tr>" for f in configs)
        out.append(f"<details><summary>{len(configs)} architecture files (model_config.yaml) with sha256</summary>"
                   f'<div class="table-wrap"><table><tbody>{crow}</tbody></table></div></details>')
    return "\n".join(out)


def minibatch_protocol(rows, space_name: str) -> str:
    """What minibatch the rows of a space were scored at, read from their stored run configuration,
    beside the space's default (``conf/space/<name>.yaml``; for the LTS and FlexiBERT spaces the
    papers' minibatch), e.g. ``4 × 192: 25 proxies; data-free: 8 proxies (default of this space,
    conf/space/gpt2.yaml: 16 × the table's tgt_len)``."""
    from zcbench.config import space_conf

    counts: dict = {}
    for cfg in rows.get("data_config", []):
        try:
            d = json.loads(cfg) if isinstance(cfg, str) and cfg else {}
        except ValueError:
            d = {}
        key = (f"{d['batch_size']} × {d['seq_len']}" if "batch_size" in d and "seq_len" in d
               else f"{d['batch_size']} examples" if "batch_size" in d
               else "set-level (fused from its components' runs)" if "components" in d else "data-free")
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    parts = [f"{k}: {n} prox{'y' if n == 1 else 'ies'}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    conf = space_conf(space_name)
    b, t = conf.get("batch_size"), conf.get("seq_len")
    if b:
        default = f"{b} × {t}" if t else f"{b} × the table's tgt_len"
        parts.append(f"(default of this space, conf/space/{space_name}.yaml: {default})")
    return "; ".join(parts[:-1]) + " " + parts[-1] if b else "; ".join(parts)


def space_page(data: rp.ReportData, space: str, figures: set, data_dir, spaces: list[str],
               sections: list[Section]) -> str:
    info = data.spaces.get(space)
    rows = data.table[data.table["space"] == space]
    title = space_title(space, info)
    slug = space_slug(space)
    truth = has_truth(data, space)
    parts = [f"<h1>{E(title)}</h1>"]
    if info is not None:
        pairs = [("description", E(info.description or "—")), ("modality", E(info.modality or "—")),
                 ("ground truth", E(info.metric_label if truth else "none — see below")),
                 ("stored architectures", str(info.n_stored))]
        d = rp.table_info(info)
        if d:
            pairs.append(("table", E(f"project-built ({d.get('recipe')}, {d.get('n_archs')} architectures, "
                                     f"{d.get('n_rows')} trainings; docs/groundtruth.md)")))
        protocol = minibatch_protocol(rows, info.name)
        if protocol:
            pairs.append(("minibatch protocol", E(protocol)))
        ceiling = info.ceiling() if truth else None
        if ceiling:
            pairs.append(("noise ceiling", E(
                f"{ceiling['a']} vs {ceiling['b']}: ρ = {ceiling['rho']:.3f}, τ = {ceiling['tau']:.3f} "
                f"(n = {ceiling['n']}): how well the ground truth agrees with itself, a rough upper bound "
                "for any proxy")))
        parts.append(_kv(pairs))
    parts.append(_filter_bar(int(rows["proxy"].nunique())))
    if truth:
        parts.append(f'<section id="space-{E(slug)}"><h2>Leaderboard</h2>'
                     f'<p class="muted">{E(_space_caption(data, space, rows))}</p>'
                     + leaderboard_table(rows, data.baseline, 1, f"table-{slug}") + "</section>")
    else:
        parts.append(f'<section id="space-{E(slug)}"><h2>What was measured</h2><p>{E(_no_truth_reason(info))}</p>'
                     + cost_table(rows, 1, f"table-{slug}") + "</section>")
    figs = []
    for stem, cap in (("bar", "Spearman ρ per proxy with 95% CI; dashed: #params"
                       + ("; green band: the noise ceiling (seed-vs-seed agreement of this table's ground truth, "
                          "95% CI)" if ceiling_band(data, space) else "")),
                      ("pareto", "Cost vs ρ; red: the Pareto front"),
                      ("stability", "Rank of each proxy in each seed")):
        rel = f"figures/site/{slug}/{stem}.png"
        if rel in figures:
            figs.append(_img(f"../{rel}", f"{stem} for {title}", cap, f"fig-{stem}"))
    for stem, cap in (("heatmap", "Rank correlation between proxies (and the ground truth)"),
                      ("search", "Search curves: best ground truth found vs architectures evaluated")):
        rel = f"figures/{safe_name(space)}/{stem}.png"
        if rel in figures:
            figs.append(_img(f"../{rel}", f"{stem} for {title}", cap, f"fig-{stem}"))
    if figs:
        parts.append('<h2 id="figures">Figures</h2><div class="figs">' + "".join(figs) + "</div>")
    for sec in sections:
        if sec.page == f"space:{space}":
            parts.append(f'<section id="{E(sec.id)}"><h2>{E(sec.title)}</h2>{sec.html}</section>')
    parts.append('<h2 id="provenance">Provenance</h2><div class="provenance">')
    if info is not None:
        parts.append(_kv([("space label", f"<code>{E(space)}</code>"),
                          ("space options", f"<code>{E(json.dumps(info.options, sort_keys=True))}</code>")]
                         + ([("note", E(info.error))] if info.error else [])))
        if info.doc:
            parts.append(f"<details><summary>Space documentation (module docstring)</summary><pre>{E(info.doc)}</pre>"
                         "</details>")
        parts.append("<h3>Ground-truth files</h3>" + _manifest_html(info.name, data_dir))
    parts.append("</div>")
    return _page(f"{title} — zcbench", "\n".join(parts), 1, data, spaces)


def _space_caption(data: rp.ReportData, space: str, rows: pd.DataFrame) -> str:
    info = data.spaces.get(space)
    metric = info.metric_label if info and info.metric else "no ground truth"
    n = rows["n_archs"].dropna()
    seeds = sorted({int(s) for ss in rows["seeds"] for s in str(ss).split(",") if s != ""})
    return (f"Ground truth: {metric}; n = {int(n.max()) if len(n) else 0} architectures; "
            f"seeds {', '.join(map(str, seeds))}; {len(rows)} proxies. Ranked by ρ; click a column header to sort; "
            "hover a header for its meaning.")


def metrics_page(data: rp.ReportData, spaces: list[str]) -> str:
    items = "".join(f'<dt id="m-{k}">{E(h)}</dt><dd>{E(t)}</dd>' for k, (h, t) in COLUMNS.items())
    fams = "".join(f'<li id="family-{f}">{_fam_tag(f)} {E(FAMILY_TEXT[f])}</li>' for f in FAMILIES)
    body = ("<h1>Metrics</h1><p class=\"lead\">What every column of the leaderboard means. The numbers are recomputed "
            "from per-architecture scores at build time; statistics come from zcbench.metrics (scipy).</p>"
            f'<dl class="defs">{items}</dl><h2 id="families">Proxy families</h2><ul class="plain">{fams}</ul>'
            '<h2 id="orientation">Orientation</h2><p>Ground truth is oriented so that higher is better '
            "(perplexity is negated), so a positive ρ always means the proxy ranks like training does.</p>"
            '<h2 id="ceiling">Noise ceiling</h2><p>For tables the project trained itself, every architecture was '
            "trained with two seeds; the rank agreement between the two seeds bounds what any proxy can reach and "
            "is drawn as a band on the space's bar chart.</p>")
    return _page("Metrics — zcbench", body, 0, data, spaces)


def reproduction_page(data: rp.ReportData, spaces: list[str]) -> str:
    rep = rp.reproduction_table(data.table, data=data)
    parts = ["<h1>Reproduction</h1>",
             '<p class="lead">Our numbers (mean ± std over seeds) next to those the papers printed. '
             "“in CI”: the published ρ lies inside our 95% bootstrap CI. Sources and the name mapping live in "
             "<code>zcbench/published.yaml</code>.</p>"]
    if rep.empty:
        parts.append("<p>No published numbers for the spaces in these results.</p>")
    else:
        disp = rp.display_reproduction(rep)
        cols = list(disp.columns)
        strs = ("Source", "Space", "Paper name", "Proxy", "n paper/ours")
        opt = {c for c in cols if c.startswith(("Δ", "n paper", "paper ")) or c.endswith(" is")}
        head = "".join(
            f'<th class="{"l" if c in ("Source", "Paper name", "Proxy") else ""}{" opt" if c in opt else ""}" '
            f'data-type="{"str" if c in strs else "num"}" data-first="desc" aria-sort="none"><button type="button">'
            f'{E(c)}</button></th>' for c in cols)
        body = []
        scored = set(data.table["proxy_name"])
        for i, (_, x) in enumerate(disp.iterrows()):
            raw = rep.iloc[i]
            vals = {"τ paper": raw.get("tau_paper"), "τ ours": raw.get("tau_ours"), "Δτ": raw.get("d_tau"),
                    "ρ paper": raw.get("rho_paper"), "ρ ours": raw.get("rho_ours"), "Δρ": raw.get("d_rho")}
            cells = []
            for c in cols:
                if c == "Proxy" and raw["proxy"] in scored:
                    cells.append(f'<td class="l"><a href="proxies/{proxy_page_name(raw["proxy"])}">'
                                 f"{E(str(x[c]))}</a></td>")
                elif c == "Proxy":
                    cells.append(f'<td class="l" title="not scored in these results">{E(str(x[c]))}</td>')
                elif c == "Space":
                    cells.append(_td(space_title(str(x[c]), data.spaces.get(str(x[c]))), cls="wrap",
                                     sval=str(x[c])))
                else:
                    cells.append(_td(str(x[c]), vals.get(c), left=c in ("Source", "Paper name"),
                                     cls=("wrap" if c not in ("Proxy",) and not c.startswith(("τ ", "ρ "))
                                          or c.endswith(" is") else "")
                                     + (" opt" if c in opt else "")))
            body.append(f'<tr data-source="{E(str(raw["source"]))}" data-proxy="{E(str(raw["proxy"]))}" '
                        f'data-space="{E(str(raw["space"]))}">' + "".join(cells) + "</tr>")
        parts.append(f'<div class="table-wrap"><table class="zcb-sortable" id="reproduction"><thead><tr>{head}</tr>'
                     f"</thead><tbody>{''.join(body)}</tbody></table></div>")
        srcs = rep.drop_duplicates("source")
        parts.append("<h2>Sources</h2><ul>" + "".join(
            f"<li><code>{E(s['source'])}</code>: {E(s['paper'])}, {E(s['table'])}</li>" for _, s in srcs.iterrows())
            + "</ul>")
    return _page("Reproduction — zcbench", "\n".join(parts), 0, data, spaces)


# ----------------------------------------------------------------------------- submissions
def submissions_section(data: rp.ReportData, truth: list[str], subs: list) -> str:
    """Community rows: one per submitted bundle, verified ones plain, unverified ones struck."""
    intro = ('<p>Proxies submitted as bundles (<a href="submit.html">how to submit</a>). A row is '
             '<span class="badge ok">verified</span> when the site re-scored a random sample of the bundle\'s '
             "architectures with the submitted code and got the submitted scores; otherwise it is shown "
             '<span class="badge bad">not verified</span> with the reason.</p>')
    if not subs:
        return f'<section id="submissions"><h2>Community submissions</h2>{intro}<p class="muted">None yet.</p></section>'
    head = ('<th class="l" data-col="proxy">Proxy</th><th class="l" data-col="verified" '
            f'title="{E(COLUMNS["verified"][1])}">Status</th>' +
            "".join(f'<th title="{E(_space_head_title(data, s))}">{E(space_title(s, data.spaces.get(s)))}</th>'
                    for s in truth) + '<th class="opt">checked</th>')
    body = []
    for sub in subs:
        ok = sub.verified
        badge = (f'<span class="badge ok">verified</span>' if ok else
                 f'<span class="badge bad" title="{E("; ".join(sub.problems))}">not verified</span>'
                 f'<div class="why">{E(sub.problems[0] if sub.problems else "")}</div>')
        cells = [f'<td class="l proxy">{E(sub.name)} {_fam_tag(sub.family)}</td>', f'<td class="l">{badge}</td>']
        for s in truth:
            r = sub.rho.get(s)
            if r is not None and _finite(r["rho"]):
                bg, fg = rho_colour(r["rho"])
                cells.append(f'<td class="cell" style="background:{bg};color:{fg}" title="{E(space_title(s))}: '
                             f'ρ = {rp.fmt_float(r["rho"])} on n = {r["n"]}, {r["n_seeds"]} seed(s)">'
                             f'{rp.fmt_float(r["rho"], 2)}</td>')
            else:
                cells.append('<td class="cell na" title="not in this bundle"><abbr title="not in this bundle">'
                             "n/a</abbr></td>")
        cells.append(f'<td class="opt">{sub.n_checked} of {sub.n_scores}</td>')
        cls = "verified" if ok else "unverified"
        body.append(f'<tr class="{cls}" data-proxy="{E(sub.name)}" data-family="{E(sub.family)}" '
                    f'data-status="{cls}">' + "".join(cells) + "</tr>")
    return (f'<section id="submissions"><h2>Community submissions</h2>{intro}<div class="table-wrap">'
            f'<table id="submissions-table" data-filterable="1"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table></div></section>")


def submit_page(data: rp.ReportData, spaces: list[str]) -> str:
    truth = [space_title(s, data.spaces.get(s)) for s in spaces if has_truth(data, s)]
    steps = [
        ("1. Write the proxy", "<p>One Python file with one class. It declares what it needs from the engine "
         "(<code>needs</code>: e.g. <code>{\"backward\"}</code> for weight gradients, <code>{\"forward\"}</code> for "
         "activations, <code>{\"weights\"}</code> or <code>{\"arch\"}</code> for data-free scores) and returns one "
         "number per network; higher must mean better. Put the formula and the citation in the docstring.</p>"
         "<pre>from zcbench import register_proxy\nfrom zcbench.proxy import Proxy\n\n\n@register_proxy()\nclass "
         "WeightSq(Proxy):\n    \"\"\"Sum of squared weights at initialisation (a toy).\"\"\"\n\n    name = "
         "\"weight_sq\"\n    needs = frozenset({\"weights\"})\n    family = \"data-free\"\n    citation = \"your paper\"\n\n"
         "    def score(self, ctx):\n        return float(sum((p.detach() ** 2).sum() for p in "
         "ctx.model.parameters()))</pre><p>Save it as <code>my_proxy.py</code>.</p>"),
        ("2. Try it on a few architectures", "<pre>python -m zcbench submit proxy=my_proxy.py spaces=[gpt2] "
         "n_archs=10 seeds=[0] out=/tmp/try</pre><p>prints ρ per space and writes a bundle; small settings "
         "are for trying only.</p>"),
        ("3. Run the canonical protocol", "<pre>python -m zcbench submit proxy=my_proxy.py</pre><p>scores every "
         "stored architecture of every space with ground truth (" + E(", ".join(truth)) + ") with seeds 0, 1, 2 "
         "and the spaces' standard minibatches, and writes one self-describing bundle: the scores, your source "
         "file and its sha256, the zcbench version and commit, the sha256 of the ground-truth files, the "
         "minibatch configuration, the machine and the seeds.</p>"),
        ("4. Submit the bundle", "<p>Open a pull request that adds the bundle under <code>results/submissions/"
         "</code>. The leaderboard build validates its schema and provenance, re-scores a random sample of its "
         "architectures with the submitted code, and shows the row as <span class=\"badge ok\">verified</span> "
         "only when the scores agree.</p>"),
    ]
    body = ("<h1>Add your proxy</h1><p class=\"lead\">From an empty file to a verified row on this leaderboard. "
            "The full guide, with the bundle's fields, is docs/submitting.md in the repository.</p>"
            + "".join(f'<section id="step-{i + 1}"><h2>{E(t)}</h2>{h}</section>' for i, (t, h) in enumerate(steps)))
    return _page("Add your proxy — zcbench", body, 0, data, spaces)


# ----------------------------------------------------------------------------- build
def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise SiteError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SiteError(f"{out} is not empty and was not written by zcbench leaderboard; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by `python -m zcbench leaderboard`; the folder is replaced on each build\n")


def copy_assets(out: Path) -> None:
    dest = out / "assets"
    dest.mkdir(parents=True, exist_ok=True)
    src = resources.files("zcbench") / "site"
    for name in ASSETS:
        (dest / name).write_bytes((src / name).read_bytes())


def build_site(data: rp.ReportData, out, *, title: str = "zcbench leaderboard", figures: bool = True,
               data_dir=None, submissions: list | None = None, stamp: str | None = None) -> Path:
    """Write the whole site into ``out`` (replaced if zcbench wrote it before); returns index.html.

    The site is written into a sibling temporary folder first and moved into place at the end, so
    a failed build never leaves a half-written (or emptier) site where the old one was.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        _prepare_out(out)  # raises SiteError with the reason
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    _prepare_out(tmp)
    try:
        _write_site(data, tmp, title=title, figures=figures, data_dir=data_dir, submissions=submissions)
        if stamp:
            rp.write_stamp(tmp, stamp)  # the inputs' fingerprint travels with the site it describes
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(out.name + ".old")  # swap by renames: a site is in place at every moment
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out / "index.html"


def _write_site(data: rp.ReportData, out: Path, *, title, figures, data_dir, submissions) -> None:
    copy_assets(out)
    rp.write_tables(data, out / "data", formats=("csv",))
    spaces = ordered_spaces(data)
    fig_set: set = set()
    if figures:
        fig_set |= write_site_figures(data, out, spaces)
        for p in rp.write_figures(data, out / "figures", formats=("png",)):
            fig_set.add(p.relative_to(out).as_posix())
    data.provenance["figures"] = sorted(fig_set)
    sections = extra_sections(data, data.notes)
    subs = list(submissions or [])
    if subs:
        (out / "data" / "submissions.json").write_text(json.dumps([s.as_dict() for s in subs], indent=1) + "\n")
    (out / "index.html").write_text(index_page(data, title, spaces, fig_set, sections, subs), encoding="utf-8")
    (out / "metrics.html").write_text(metrics_page(data, spaces), encoding="utf-8")
    (out / "reproduction.html").write_text(reproduction_page(data, spaces), encoding="utf-8")
    (out / "submit.html").write_text(submit_page(data, spaces), encoding="utf-8")
    (out / "proxies").mkdir(exist_ok=True)
    for name in dict.fromkeys(data.table["proxy_name"]):
        (out / "proxies" / proxy_page_name(name)).write_text(proxy_page(data, name, fig_set, spaces, sections),
                                                             encoding="utf-8")
    (out / "spaces").mkdir(exist_ok=True)
    for sp in spaces:
        (out / "spaces" / space_page_name(sp)).write_text(space_page(data, sp, fig_set, data_dir, spaces, sections),
                                                          encoding="utf-8")


def main_leaderboard(argv: list[str] | None = None) -> int:
    """``python -m zcbench leaderboard``: the static leaderboard site from a results dir."""
    from zcbench.options import one_line_parser

    ap = one_line_parser("python -m zcbench leaderboard", description=main_leaderboard.__doc__)  # one-line errors
    rp.add_common_args(ap)
    ap.add_argument("--out", default=None, help="site folder (default: <results-dir>/site); replaced on each build")
    ap.add_argument("--title", default="zcbench leaderboard")
    ap.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    ap.add_argument("--submissions", default=None,
                    help="folder of submission bundles (default: <results-dir>/submissions when it exists)")
    ap.add_argument("--verify-sample", type=int, default=3,
                    help="architectures per space re-scored to verify each submission (default 3)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results_dir) / "site"
    sub_dir = Path(args.submissions) if args.submissions else Path(args.results_dir) / "submissions"
    try:
        stamp = None if args.no_cache else rp.fingerprint_args(args, out, extra_dirs=[sub_dir])
        if stamp and not args.force and rp.up_to_date(out, stamp):
            print(f"{out} is up to date: built from exactly these inputs (options, code, results, data, "
                  "submissions); --force rebuilds")
            return 0
        data = rp.build_from_args(args)
        subs = []
        if args.submissions or sub_dir.is_dir():
            from zcbench.submit import SubmitError, ingest_folder

            try:
                subs = ingest_folder(sub_dir, data_dir=args.data_dir, sample=args.verify_sample)
            except SubmitError as exc:
                raise SiteError(str(exc)) from exc
        index = build_site(data, out, title=args.title, figures=not args.no_figures, data_dir=args.data_dir,
                           submissions=subs, stamp=stamp)
    except (rp.ReportError, SiteError) as exc:
        print(f"zcbench leaderboard: error: {exc}", file=sys.stderr)
        return 2
    for n in data.notes:
        print(f"note: {n}", file=sys.stderr)
    for s in subs:
        print(f"submission {s.name}: {'verified' if s.verified else 'NOT verified: ' + '; '.join(s.problems)}",
              file=sys.stderr)
    print(f"wrote the leaderboard site to {out} (open {index.resolve().as_uri()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_leaderboard())
