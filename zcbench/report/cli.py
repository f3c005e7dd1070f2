"""``python -m zcbench report``: the command line of the report job."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zcbench.errors import ReportError
from zcbench.report.cache import up_to_date, write_stamp
from zcbench.report.figures import FIGURE_FORMATS, write_figures
from zcbench.report.render import TABLE_FORMATS, fmt_float, write_tables
from zcbench.report.tables import DEFAULT_BASELINE, ReportData, build


def split_values(values) -> list[str] | None:
    """Repeated and/or comma-separated command-line values as one list (None when empty)."""
    if not values:
        return None
    out = []
    for v in values:
        out += [x.strip() for x in str(v).split(",") if x.strip()]
    return out or None


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--results-dir", default="results", help="results folder written by `run` (default: results)")
    ap.add_argument("--space", action="append", default=None, metavar="NAME",
                    help="only these spaces (repeat or comma-separate; default: all)")
    ap.add_argument("--proxy", action="append", default=None, metavar="NAME",
                    help="only these proxies (the baseline is always kept)")
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="proxy every other is tested against (params)")
    ap.add_argument("--target", default=None, help="ground-truth column, where a space has it (default: the "
                                                   "space's own, e.g. valid_ppl)")
    ap.add_argument("--data-dir", default=None, help="ground-truth data dir (default: $ZCBENCH_DATA, else cache)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0 = no CIs / tests)")
    ap.add_argument("--bootstrap-seed", type=int, default=0)
    ap.add_argument("--all-configs", action="store_true",
                    help="one row per configuration instead of the newest per (space, proxy)")
    ap.add_argument("--no-cache", action="store_true",
                    help="recompute every row (default: reuse rows whose inputs are byte-identical, "
                         "from <results-dir>/cache/report)")
    ap.add_argument("--force", action="store_true",
                    help="build even when the output folder is up to date (built from these very inputs: "
                         "options, code, results, data; its .inputs.sha256)")


def fingerprint_args(args, out, extra_dirs=()) -> str:
    """The inputs' fingerprint of a report/leaderboard command (:func:`zcbench.report.cache.inputs_fingerprint`)."""
    from zcbench.report.cache import inputs_fingerprint

    opts = {k: v for k, v in vars(args).items() if k not in ("force",)}
    return inputs_fingerprint(args.results_dir, out, opts, data_dir=args.data_dir, extra_dirs=extra_dirs)


def build_from_args(args) -> ReportData:
    if args.bootstrap < 0:
        raise ReportError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    data = build(args.results_dir, spaces=split_values(args.space), proxies=split_values(args.proxy), baseline=args.baseline,
                 target=args.target, data_dir=args.data_dir, n_resamples=args.bootstrap, seed=args.bootstrap_seed,
                 all_configs=args.all_configs, cache=not getattr(args, "no_cache", False))
    require_scorable(data)
    return data


def require_scorable(data: ReportData) -> None:
    """Refuse to write outputs in which no (space, proxy) has a correlation (e.g. no data dir):
    they would replace a useful report or site with one of empty cells (issue #19)."""
    import pandas as pd

    broken = {label: info.error for label, info in data.spaces.items()  # (report/load.py's unreadable-data errors)
              if str(getattr(info, "error", None) or "").startswith(("no ground truth for", "cannot create space"))}
    if broken:  # a space with scores whose ground truth cannot be read: its column would go empty
        label, err = next(iter(broken.items()))
        more = f" (and {len(broken) - 1} more space(s))" if len(broken) > 1 else ""
        raise ReportError(f"{label}: {err}{more}; fix the data (data_dir/ZCBENCH_DATA) or leave the space out "
                          f"with --space; previous outputs were left untouched")
    if "rho" in data.table and pd.to_numeric(data.table["rho"], errors="coerce").notna().any():
        return
    why = data.notes[0] if data.notes else "no scores in the results folder"
    raise ReportError(f"nothing scorable: no (space, proxy) has a correlation ({why}); "
                      f"previous outputs were left untouched")


def _formats(value: str, allowed, what: str) -> tuple[str, ...]:
    fm = tuple(x.strip() for x in value.split(",") if x.strip())
    bad = [x for x in fm if x not in allowed]
    if bad:
        raise ReportError(f"unknown {what} format(s) {', '.join(bad)}; valid: {', '.join(allowed)}")
    return fm


def main_report(argv: list[str] | None = None) -> int:
    """``python -m zcbench report``: tables (md, tex, html, csv) and figures from a results dir."""
    from zcbench.options import one_line_parser

    ap = one_line_parser("python -m zcbench report", description=main_report.__doc__)  # one-line errors
    add_common_args(ap)
    ap.add_argument("--out", default=None, help="output folder (default: <results-dir>/report)")
    ap.add_argument("--formats", default=",".join(TABLE_FORMATS), help="table formats: md,tex,html,csv")
    ap.add_argument("--figures", default=",".join(FIGURE_FORMATS), help="figure formats: png,pdf ('' = none)")
    ap.add_argument("--no-proxy-figures", action="store_true", help="skip the per-proxy scatter/rank plots")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results_dir) / "report"
    try:
        fmts = _formats(args.formats, TABLE_FORMATS, "table")
        figs = _formats(args.figures, FIGURE_FORMATS, "figure")
        stamp = None if args.no_cache else fingerprint_args(args, out)
        if stamp and not args.force and up_to_date(out, stamp):
            print(f"{out} is up to date: built from exactly these inputs (options, code, results, data); "
                  "--force rebuilds")
            return 0
        data = build_from_args(args)
    except ReportError as exc:
        print(f"zcbench report: error: {exc}", file=sys.stderr)
        return 2
    written = write_tables(data, out, fmts)
    if figs:
        written += write_figures(data, out / "figures", figs, per_proxy=not args.no_proxy_figures)
    for n in data.notes:
        print(f"note: {n}", file=sys.stderr)
    for sp in dict.fromkeys(data.table["space"]):
        rows = data.table[data.table["space"] == sp]
        print(f"{sp}: {len(rows)} proxies; best {rows.iloc[0]['proxy']} (ρ={fmt_float(rows.iloc[0]['rho'])})")
    if stamp:
        write_stamp(out, stamp)  # last: an interrupted build is never up to date
    print(f"wrote {len(written)} files under {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_report())
