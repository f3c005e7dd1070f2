"""The ``leaderboard`` job: a static website built from the results store.

Size: over 500 lines because it is the whole static site (overview, space, proxy, metrics,
reproduction and submit pages) written as plain string templates in one place; moving the
pages into ``zcbench/site/`` modules is the natural split when it grows further.

Plain HTML + one CSS file + one JS file (``zcbench/site/``), no CDN, no build step, no
``fetch()``: every number is written into the pages themselves, so the site works when
opened from ``file://`` as well as when served. All links are relative.

Layout of the output folder (default ``<results-dir>/site``)::

    index.html                 one sortable table per space (the baseline row highlighted)
    reproduction.html          ours vs the published tau / rho (zcbench/published.yaml)
    spaces/<space>.html        description, ground-truth provenance (manifest sha256), figures
    proxies/<proxy>.html       formula and citation (proxy docstrings), per-space numbers,
                               per-seed numbers, figures, provenance of every number
    assets/style.css, assets/sort.js
    figures/<space>/...png     made by zcbench.report
    data/leaderboard.csv       the report table, per_seed.csv, reproduction.csv

The numbers are those of :func:`zcbench.report.build` (see docs/metrics.md); the page
structure is documented in docs/report.md.
"""
from __future__ import annotations

import argparse
import html
import json
import math
import shutil
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pandas as pd

import zcbench
from zcbench import report as rp
from zcbench.store import safe_name

MARKER = ".zcbench-site"
E = html.escape


class SiteError(RuntimeError):
    """The output folder cannot be used (e.g. a non-empty folder zcbench did not write)."""


# --------------------------------------------------------------------------- page pieces
def _page(title: str, body: str, depth: int, prov: str, data_json: str | None = None) -> str:
    up = "../" * depth
    data = ""
    if data_json is not None:
        safe = data_json.replace("</", "<\\/")
        data = f'<script type="application/json" id="zcb-data">{safe}</script>\n'
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
<nav><a href="{up}index.html">Leaderboard</a><a href="{up}reproduction.html">Reproduction</a>
<a href="{up}data/leaderboard.csv">CSV</a></nav></header>
<main>
{body}
<footer>{prov}</footer>
</main>
{data}<script src="{up}assets/sort.js"></script>
</body>
</html>
"""


def _prov_html(data: rp.ReportData) -> str:
    p = data.provenance
    commit = p["zcbench_commit"] or "unknown (not a git checkout)"
    return (f"Built {E(p['built'])} by zcbench {E(p['zcbench_version'])} (commit <code>{E(commit)}</code>) from "
            f"<code>{E(p['results_dir'])}</code>. Correlations recomputed from per-architecture scores; "
            f"{p['bootstrap_resamples']} bootstrap resamples (seed {p['bootstrap_seed']}), 95% percentile CIs. "
            f"Baseline for the paired test: <code>{E(p['baseline'])}</code>.")


def _num(x) -> str:
    """data-value attribute content: the raw number, or empty for missing."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return ""
    return repr(v) if math.isfinite(v) else ""


def _th(label: str, typ: str = "num", first: str | None = None, left: bool = False, title: str = "") -> str:
    first = first or ("desc" if typ == "num" else "asc")
    cls = ' class="l"' if left else ""
    t = f' title="{E(title)}"' if title else ""
    return (f'<th{cls} data-type="{typ}" data-first="{first}" aria-sort="none"{t}>'
            f'<button type="button">{E(label)}</button></th>')


def _td(text: str, value=None, left: bool = False, cls: str = "", raw_html: bool = False,
        sval: str | None = None) -> str:
    """A cell; ``value`` (number) or ``sval`` (string) becomes data-value, the key sort.js compares."""
    classes = " ".join(c for c in (("l" if left else ""), cls) if c)
    c = f' class="{classes}"' if classes else ""
    v = f' data-value="{E(_num(value))}"' if value is not None else ""
    if sval is not None:
        v = f' data-value="{E(sval)}"'
    return f"<td{c}{v}>{text if raw_html else E(text)}</td>"


def proxy_page_name(proxy: str) -> str:
    return f"{safe_name(proxy)}.html"


def space_page_name(space: str) -> str:
    return f"{safe_name(space)}.html"


def leaderboard_table(rows: pd.DataFrame, baseline: str, depth: int, table_id: str) -> str:
    """One sortable table; ``depth`` = folder depth of the page (for relative links)."""
    up = "../" * depth
    head = "".join([
        _th("Rank", first="asc"),
        _th("Proxy", "str", left=True),
        _th("ρ mean ± std", title="Spearman rho with the oriented ground truth, mean ± sample std over seeds"),
        _th("ρ 95% CI", title="percentile bootstrap over architectures (sorts by the lower bound)"),
        _th("τ mean ± std", title="Kendall tau-b, mean ± sample std over seeds"),
        _th("τ 95% CI"),
        _th("top-10%", title="overlap of the top 10% by proxy and by ground truth"),
        _th(f"Δρ vs {baseline}", title=f"paired bootstrap: rho(proxy) - rho({baseline}) on the same architectures"),
        _th("p", first="asc", title=f"two-sided bootstrap p-value of Δρ = 0 vs {baseline}"),
        _th("s/arch", first="asc", title="median seconds per architecture"),
        _th("n", title="architectures with a finite score and ground truth (median over seeds)"),
        _th("seeds"),
        _th("NaN/inf", first="asc", title="non-finite scores / score records"),
    ])
    body = []
    for _, x in rows.iterrows():
        cls = ' class="baseline"' if x["is_baseline"] else ""
        tip = (f"seeds {x['seeds']}; run keys {x['run_keys']}; proxy version {x['proxy_version']}; "
               f"zcbench {x['zcbench_versions']}")
        nonfinite = int(x["n_nan"] + x["n_inf"])
        d = rp.fmt_diff(x["d_rho"], x["d_rho_ci_lo"], x["d_rho_ci_hi"])
        link = f'<a href="{up}proxies/{proxy_page_name(x["proxy_name"])}">{E(x["proxy"])}</a>'
        if x["is_baseline"]:
            link += ' <span class="muted">(baseline)</span>'
        cells = [
            _td("—" if not math.isfinite(x["rank"]) else str(int(x["rank"])), x["rank"]),
            _td(link, left=True, cls="proxy", raw_html=True, sval=str(x["proxy"])),
            _td(rp.fmt_pm(x["rho"], x["rho_std"], constant=bool(x["constant"])), x["rho"]),
            _td(rp.fmt_ci(x["rho_ci_lo"], x["rho_ci_hi"]), x["rho_ci_lo"]),
            _td(rp.fmt_pm(x["tau"], x["tau_std"], constant=bool(x["constant"])), x["tau"]),
            _td(rp.fmt_ci(x["tau_ci_lo"], x["tau_ci_hi"]), x["tau_ci_lo"]),
            _td(rp.fmt_float(x["top10"], 2), x["top10"]),
            _td(d, x["d_rho"]),
            _td(rp.fmt_p(x["p_vs_base"]), x["p_vs_base"]),
            _td(rp.fmt_sec(x["sec_per_arch"]), x["sec_per_arch"]),
            _td("—" if not math.isfinite(x["n_archs"]) else str(int(x["n_archs"])), x["n_archs"]),
            _td(str(x["n_seeds"]), x["n_seeds"]),
            _td(f"{nonfinite}/{int(x['n_records'])}", nonfinite),
        ]
        body.append(f'<tr{cls} data-proxy="{E(x["proxy"])}" title="{E(tip)}">' + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table class="zcb-sortable" id="{E(table_id)}">'
            f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></div>")


def _img(src: str, alt: str, caption: str) -> str:
    return f'<figure><img src="{E(src)}" alt="{E(alt)}" loading="lazy"><figcaption>{E(caption)}</figcaption></figure>'


def _kv(pairs) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{E(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _space_caption(data: rp.ReportData, space: str, rows: pd.DataFrame) -> str:
    info = data.spaces.get(space)
    metric = info.metric_label if info and info.metric else "no ground truth"
    n = rows["n_archs"].dropna()
    seeds = sorted({int(s) for ss in rows["seeds"] for s in str(ss).split(",") if s != ""})
    return (f"Ground truth: {metric}; n = {int(n.max()) if len(n) else 0} architectures; "
            f"seeds {', '.join(map(str, seeds))}; {len(rows)} proxies. Ranked by ρ; click a column header to sort."
            + (f" Ground truth: {d['text']}." if (d := rp.table_info(info)) else ""))


# --------------------------------------------------------------------------- pages
def index_page(data: rp.ReportData, title: str) -> str:
    tab = data.table
    parts = [f"<h1>{E(title)}</h1>",
             '<p class="lead">Rank correlation of zero-cost proxies with trained performance, recomputed from '
             "per-architecture scores. Positive = the proxy ranks architectures the way training does. "
             f'<span class="legend-baseline">Highlighted</span>: the <code>{E(data.baseline)}</code> baseline; '
             f"Δρ and p test each proxy against it on the same architectures (paired bootstrap).</p>"]
    for sp in dict.fromkeys(tab["space"]):
        rows = tab[tab["space"] == sp]
        info = data.spaces.get(sp)
        desc = f" — {E(info.description)}" if info and info.description else ""
        parts.append(f'<section class="space" id="space-{E(safe_name(sp))}">'
                     f'<h2><a href="spaces/{space_page_name(sp)}">{E(sp)}</a></h2>'
                     f'<p class="muted">{E(_space_caption(data, sp, rows))}{desc}</p>')
        parts.append(leaderboard_table(rows, data.baseline, 0, f"table-{safe_name(sp)}"))
        if (Path("figures") / safe_name(sp) / "bar_rho.png").as_posix() in data.provenance.get("figures", ()):
            parts.append(_img(f"figures/{safe_name(sp)}/bar_rho.png", f"rho per proxy on {sp}",
                              f"{sp}: Spearman ρ per proxy with 95% CI; dashed line: {data.baseline}."))
        parts.append("</section>")
    if data.notes:
        parts.append("<h2>Notes</h2><ul class=\"notes\">" + "".join(f"<li>{E(n)}</li>" for n in data.notes) + "</ul>")
    parts.append("<h2>Downloads</h2><p><a href=\"data/leaderboard.csv\">leaderboard.csv</a> (every column, "
                 "documented in docs/metrics.md) · <a href=\"data/per_seed.csv\">per_seed.csv</a> · "
                 "<a href=\"data/reproduction.csv\">reproduction.csv</a></p>")
    payload = json.loads(tab.to_json(orient="records"))
    return _page(title, "\n".join(parts), 0, _prov_html(data),
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
               module=cls.__module__)
    return out


def proxy_page(data: rp.ReportData, proxy_name: str, figures: set) -> str:
    tab = data.table[data.table["proxy_name"] == proxy_name]
    doc = _proxy_doc(proxy_name)
    citation = doc["citation"] or (tab["citation"].iloc[0] if len(tab) else "")
    parts = [f"<h1>{E(proxy_name)}</h1>"]
    parts.append(_kv([
        ("citation", E(citation or "—")),
        ("needs", E(doc["needs"] or "—")),
        ("proxy version", E(doc["version"] or ", ".join(sorted(set(tab["proxy_version"]))))),
        ("implementation", f"<code>{E(doc['module'])}</code>" if doc["module"] else
         E(f"not registered in this installation ({doc.get('error', '')})")),
    ]))
    text = "\n\n".join(t for t in (doc["module_doc"], doc["doc"]) if t)
    if text:
        parts.append(f"<h2>Definition</h2><pre>{E(text)}</pre>")
    parts.append("<h2>Results per space</h2>")
    head = "".join([_th("Space", "str", left=True), _th("Rank", first="asc"), _th("ρ mean ± std"), _th("ρ 95% CI"),
                    _th("τ mean ± std"), _th("τ 95% CI"), _th("top-10%"), _th("top-20%"), _th("top-50%"),
                    _th(f"Δρ vs {data.baseline}"), _th("p", first="asc"), _th("s/arch", first="asc"), _th("n"),
                    _th("seeds", "str")])
    body = []
    for _, x in tab.iterrows():
        of = int((data.table["space"] == x["space"]).sum())
        rank = "—" if not math.isfinite(x["rank"]) else f"{int(x['rank'])} of {of}"
        d = rp.fmt_diff(x["d_rho"], x["d_rho_ci_lo"], x["d_rho_ci_hi"])
        cells = [
            f'<td class="l" data-value="{E(x["space"])}"><a href="../spaces/{space_page_name(x["space"])}">'
            f'{E(x["space"])}</a>{" <code>" + E(x["proxy"]) + "</code>" if x["proxy"] != proxy_name else ""}</td>',
            _td(rank, x["rank"]), _td(rp.fmt_pm(x["rho"], x["rho_std"]), x["rho"]),
            _td(rp.fmt_ci(x["rho_ci_lo"], x["rho_ci_hi"]), x["rho_ci_lo"]), _td(rp.fmt_pm(x["tau"], x["tau_std"]), x["tau"]),
            _td(rp.fmt_ci(x["tau_ci_lo"], x["tau_ci_hi"]), x["tau_ci_lo"]), _td(rp.fmt_float(x["top10"], 2), x["top10"]),
            _td(rp.fmt_float(x["top20"], 2), x["top20"]), _td(rp.fmt_float(x["top50"], 2), x["top50"]), _td(d, x["d_rho"]),
            _td(rp.fmt_p(x["p_vs_base"]), x["p_vs_base"]), _td(rp.fmt_sec(x["sec_per_arch"]), x["sec_per_arch"]),
            _td("—" if not math.isfinite(x["n_archs"]) else str(int(x["n_archs"])), x["n_archs"]),
            _td(str(x["seeds"]), left=False),
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    parts.append(f'<div class="table-wrap"><table class="zcb-sortable" id="proxy-spaces"><thead><tr>{head}</tr>'
                 f"</thead><tbody>{''.join(body)}</tbody></table></div>")
    figs = []
    for _, x in tab.iterrows():
        rel = f"figures/{safe_name(x['space'])}/proxies/{safe_name(x['proxy'])}.png"
        if rel in figures:
            figs.append(_img(f"../{rel}", f"{x['proxy']} on {x['space']}",
                             f"{x['space']}: score vs ground truth and rank vs rank (first seed)."))
    if figs:
        parts.append("<h2>Figures</h2><div class=\"figs\">" + "".join(figs) + "</div>")
    # per seed
    ps = data.per_seed[data.per_seed["proxy"].isin(tab["proxy"])]
    if len(ps):
        parts.append("<h2>Per seed</h2>")
        rows = []
        for _, s in ps.iterrows():
            rows.append("<tr>" + "".join([
                _td(str(s["space"]), left=True), _td(str(s["seed"]), s["seed"]),
                _td(rp.fmt_float(s.get("rho", math.nan)), s.get("rho")), _td(rp.fmt_float(s.get("tau", math.nan)), s.get("tau")),
                _td("—" if pd.isna(s.get("n")) else str(int(s["n"])), s.get("n")),
                _td(str(int(s["n_nan"])), s["n_nan"]), _td(str(int(s["n_inf"])), s["n_inf"]),
                _td(str(int(s["n_na"])), s["n_na"]), _td(str(int(s["n_error"])), s["n_error"]),
                _td(rp.fmt_sec(s["sec_median"]), s["sec_median"]),
                f'<td class="l"><code>{E(str(s["run_key"]))}</code></td>']) + "</tr>")
        head = "".join([_th("Space", "str", left=True), _th("seed", first="asc"), _th("ρ"), _th("τ"), _th("n"),
                        _th("NaN", first="asc"), _th("inf", first="asc"), _th("n/a", first="asc"),
                        _th("error", first="asc"), _th("s/arch (median)", first="asc"),
                        _th("run key", "str", left=True)])
        parts.append(f'<div class="table-wrap"><table class="zcb-sortable" id="proxy-seeds"><thead><tr>{head}</tr>'
                     f"</thead><tbody>{''.join(rows)}</tbody></table></div>")
    parts.append("<h2>Provenance</h2>")
    for _, x in tab.iterrows():
        parts.append(f"<h3>{E(x['space'])}</h3>" + _kv([
            ("seeds", E(str(x["seeds"]))), ("run keys", f"<code>{E(x['run_keys'])}</code>"),
            ("configuration", f"<code>{E(x['config'])}</code>"),
            ("data config", f"<code>{E(x['data_config'])}</code>"),
            ("device", E(str(x["device"]))), ("zcbench version (scoring)", E(x["zcbench_versions"])),
            ("zcbench commit (scoring)", E(x["zcbench_commits"])),
            ("ground truth", E(f"{x['metric']} ({'higher' if x['higher_is_better'] else 'lower'} is better)")),
            ("CI basis", E(str(x["ci_basis"]))),
        ]))
    return _page(f"{proxy_name} — zcbench", "\n".join(parts), 1, _prov_html(data))


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
                   f"<td class=\"l\"><code>{E(f['sha256'])}</code></td></tr>" for f in main_files)
    out = [_kv([("manifest table", f"<code>{E(table)}</code>"), ("description", E(info.get("description", ""))),
                ("upstream", f"<code>{E(info['repo'])}</code> at commit <code>{E(info['commit'])}</code>"),
                ("license", E(info.get("license", ""))), ("cite", E(info.get("cite", ""))),
                ("notes", E(info.get("notes", "") or "—")), ("local check", E(verified))]),
           '<div class="table-wrap"><table><thead><tr><th class="l">file</th><th>bytes</th>'
           f'<th class="l">sha256</th></tr></thead><tbody>{rows}</tbody></table></div>']
    if configs:
        crow = "".join(f"<tr><td class=\"l\"><code>{E(f['path'])}</code></td><td class=\"l\"><code>"
                       f"{E(f['sha256'])}</code></td></tr>" for f in configs)
        out.append(f"<details><summary>{len(configs)} architecture files (model_config.yaml) with sha256</summary>"
                   f'<div class="table-wrap"><table><tbody>{crow}</tbody></table></div></details>')
    return "\n".join(out)


def space_page(data: rp.ReportData, space: str, figures: set, data_dir) -> str:
    info = data.spaces.get(space)
    rows = data.table[data.table["space"] == space]
    parts = [f"<h1>{E(space)}</h1>"]
    if info is not None:
        ceiling = info.ceiling() if info.truth is not None else None
        pairs = [("description", E(info.description or "—")), ("modality", E(info.modality or "—")),
                 ("ground truth", E(info.metric_label if info.metric else "—")),
                 ("stored architectures", str(info.n_stored)),
                 ("space options", f"<code>{E(json.dumps(info.options, sort_keys=True))}</code>")]
        if ceiling:
            pairs.append(("ground-truth agreement", E(
                f"{ceiling['a']} vs {ceiling['b']}: ρ = {ceiling['rho']:.4f}, τ = {ceiling['tau']:.4f} "
                f"(n = {ceiling['n']}); a rough noise ceiling, see docs/metrics.md")))
        if info.error:
            pairs.append(("note", E(info.error)))
        parts.append(_kv(pairs))
        if info.doc:
            parts.append(f"<details><summary>Space documentation (module docstring)</summary><pre>{E(info.doc)}</pre>"
                         "</details>")
        parts.append("<h2>Ground-truth provenance</h2>")
        parts.append(_manifest_html(info.name, data_dir))
    parts.append("<h2>Leaderboard</h2>")
    parts.append(f'<p class="muted">{E(_space_caption(data, space, rows))}</p>')
    parts.append(leaderboard_table(rows, data.baseline, 1, f"table-{safe_name(space)}"))
    figs = []
    for stem, cap in (("bar_rho", f"Spearman ρ per proxy, 95% CI; dashed: {data.baseline}"),
                      ("heatmap", "Rank correlation between proxies (and the ground truth)"),
                      ("pareto", "Cost vs ρ; red: the Pareto front"),
                      ("search", "Search curves: best ground truth found vs architectures evaluated")):
        rel = f"figures/{safe_name(space)}/{stem}.png"
        if rel in figures:
            figs.append(_img(f"../{rel}", f"{stem} for {space}", cap))
    if figs:
        parts.append("<h2>Figures</h2><div class=\"figs\">" + "".join(figs) + "</div>")
    return _page(f"{space} — zcbench", "\n".join(parts), 1, _prov_html(data))


def reproduction_page(data: rp.ReportData) -> str:
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
        head = "".join(_th(c, "str" if c in ("Source", "Space", "Paper name", "Proxy", "n paper/ours") else "num",
                           left=c in ("Source", "Paper name", "Proxy")) for c in cols)
        body = []
        for i, (_, x) in enumerate(disp.iterrows()):
            raw = rep.iloc[i]
            vals = {"τ paper": raw["tau_paper"], "τ ours": raw["tau_ours"], "Δτ": raw["d_tau"],
                    "ρ paper": raw["rho_paper"], "ρ ours": raw["rho_ours"], "Δρ": raw["d_rho"]}
            cells = []
            for c in cols:
                if c == "Proxy":
                    cells.append(f'<td class="l"><a href="proxies/{proxy_page_name(raw["proxy"])}">'
                                 f"{E(str(x[c]))}</a></td>")
                else:
                    cells.append(_td(str(x[c]), vals.get(c), left=c in ("Source", "Paper name")))
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f'<div class="table-wrap"><table class="zcb-sortable" id="reproduction"><thead><tr>{head}</tr>'
                     f"</thead><tbody>{''.join(body)}</tbody></table></div>")
        srcs = rep.drop_duplicates("source")
        parts.append("<h2>Sources</h2><ul>" + "".join(
            f"<li><code>{E(s['source'])}</code>: {E(s['paper'])}, {E(s['table'])}</li>" for _, s in srcs.iterrows())
            + "</ul>")
    return _page("Reproduction — zcbench", "\n".join(parts), 0, _prov_html(data))


# --------------------------------------------------------------------------- build
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
    for name in ("style.css", "sort.js"):
        (dest / name).write_bytes((src / name).read_bytes())


def build_site(data: rp.ReportData, out, *, title: str = "zcbench leaderboard", figures: bool = True,
               data_dir=None) -> Path:
    """Write the whole site into ``out`` (replaced if zcbench wrote it before); returns index.html."""
    out = Path(out)
    _prepare_out(out)
    copy_assets(out)
    rp.write_tables(data, out / "data", formats=("csv",))
    fig_set: set = set()
    if figures:
        for p in rp.write_figures(data, out / "figures", formats=("png",)):
            fig_set.add(p.relative_to(out).as_posix())
    data.provenance["figures"] = sorted(fig_set)
    (out / "index.html").write_text(index_page(data, title), encoding="utf-8")
    (out / "reproduction.html").write_text(reproduction_page(data), encoding="utf-8")
    (out / "proxies").mkdir(exist_ok=True)
    for name in dict.fromkeys(data.table["proxy_name"]):
        (out / "proxies" / proxy_page_name(name)).write_text(proxy_page(data, name, fig_set), encoding="utf-8")
    (out / "spaces").mkdir(exist_ok=True)
    for sp in dict.fromkeys(data.table["space"]):
        (out / "spaces" / space_page_name(sp)).write_text(space_page(data, sp, fig_set, data_dir), encoding="utf-8")
    return out / "index.html"


def main_leaderboard(argv: list[str] | None = None) -> int:
    """``python -m zcbench leaderboard``: the static leaderboard site from a results dir."""
    ap = argparse.ArgumentParser(prog="python -m zcbench leaderboard", description=main_leaderboard.__doc__)
    rp.add_common_args(ap)
    ap.add_argument("--out", default=None, help="site folder (default: <results-dir>/site); replaced on each build")
    ap.add_argument("--title", default="zcbench leaderboard")
    ap.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results_dir) / "site"
    try:
        data = rp.build_from_args(args)
        index = build_site(data, out, title=args.title, figures=not args.no_figures, data_dir=args.data_dir)
    except (rp.ReportError, SiteError) as exc:
        print(f"zcbench leaderboard: error: {exc}", file=sys.stderr)
        return 2
    for n in data.notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"wrote the leaderboard site to {out} (open {index.resolve().as_uri()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_leaderboard())
