"""The ``report`` job: one table of every (space, proxy) from the results store, and its outputs.

Everything is recomputed from the per-architecture scores in
``results/scores/<space>/<proxy>/<run_key>.jsonl`` and the space's own ground truth
(``zcbench.create_space(space).stored()``, oriented by :func:`zcbench.metrics.orient`);
the ``summaries/`` written by ``run`` are not read. All statistics come from
:mod:`zcbench.metrics` (scipy/pandas); see ``docs/metrics.md`` for what each column means
and ``docs/report.md`` for the command and its files.

The one DataFrame (:func:`build`, ``ReportData.table``) has a row per (space, proxy):

* ``rho`` / ``tau`` with ``*_std``: mean and sample std over seeds
  (:func:`metrics.mean_std_over_seeds`) of Spearman rho / Kendall tau-b, each seed from
  :func:`metrics.correlate`;
* ``rho_ci_lo`` ... ``tau_ci_hi``: 95% percentile bootstrap CI of the seed-mean statistic,
  resampling architectures (those scored in every seed) with scipy.stats.bootstrap under the
  settings of :func:`metrics.bootstrap_ci` (paired, percentile, same seed); vectorised over
  resamples so that one resample serves every seed. With one seed the interval is exactly
  :func:`metrics.bootstrap_ci`'s (tests/test_report.py checks this);
* ``top10`` / ``top20`` / ``top50``: top-k% overlap, mean over seeds;
* ``d_rho`` / ``d_rho_ci_*`` / ``p_vs_base``: paired bootstrap of the seed-mean
  ``rho(proxy) - rho(baseline)`` on the same resampled architectures (baseline: ``params``);
* ``sec_per_arch``: median seconds per architecture of the score records;
* counts: ``n_archs`` (pairs used per seed), ``n_records``, ``n_nan``, ``n_inf``, ``n_na``,
  ``n_error``; provenance: seeds, run keys, proxy version, data config, zcbench version.

Outputs from that table: Markdown, LaTeX (booktabs), HTML and CSV, ranked by rho per space;
the reproduction table against the published numbers in ``zcbench/published.yaml``; and
figures (PNG/PDF).

The package, read top-down:

* :mod:`~zcbench.report.load`: score files -> :class:`Run`; a space's ground truth -> :class:`SpaceInfo`;
* :mod:`~zcbench.report.tables`: :func:`build` -> :class:`ReportData` (THE table);
* :mod:`~zcbench.report.reproduction`: ours vs ``published.yaml``;
* :mod:`~zcbench.report.render`: display strings and the md/tex/html/csv files;
* :mod:`~zcbench.report.figures`: PNG/PDF figures;
* :mod:`~zcbench.report.cli`: ``python -m zcbench report``.

The bootstrap statistics live in :mod:`zcbench.metrics` (core layer). Every public name of
the submodules is importable from ``zcbench.report`` as before the split.
"""
from __future__ import annotations

from zcbench.errors import ReportError
from zcbench.metrics import (STATISTICS, Stratum, like_for_like, make_strata, paired_bootstrap, paired_test,
                             seed_mean_ci)
from zcbench.report.cli import add_common_args, build_from_args, fingerprint_args, main_report, split_values
from zcbench.report.cache import FileCache, frame_digest, inputs_fingerprint, up_to_date, write_stamp
from zcbench.report.figures import (FIGURE_FORMATS, figure_cache, pareto_front, plot_bar, plot_heatmap, plot_pareto,
                                    plot_scatter, plot_search, rank_matrix, space_digest, write_figures)
from zcbench.report.load import (METRIC_LABELS, Run, SpaceInfo, config_id, default_minibatch, load_runs, load_search,
                                 load_space, metric_label, run_minibatch, select_configs, space_label, table_info)
from zcbench.report.render import (TABLE_FORMATS, display_reproduction, display_table, fmt_ci, fmt_diff, fmt_float,
                                   fmt_int, fmt_p, fmt_pm, fmt_sec, html_table, latex_table, markdown_table,
                                   prov_line, write_tables)
from zcbench.report.reproduction import PUBLISHED, load_published, reproduction_table
from zcbench.report.tables import DEFAULT_BASELINE, FRACTIONS, TABLE_COLUMNS, ReportData, build, run_scores

__all__ = [
    "DEFAULT_BASELINE", "FIGURE_FORMATS", "FRACTIONS", "METRIC_LABELS", "PUBLISHED", "STATISTICS", "TABLE_COLUMNS",
    "TABLE_FORMATS", "FileCache", "ReportData", "ReportError", "Run", "SpaceInfo", "Stratum", "add_common_args",
    "build", "build_from_args", "config_id", "default_minibatch", "display_reproduction", "display_table",
    "figure_cache", "fingerprint_args", "fmt_ci", "fmt_diff", "fmt_float", "fmt_int", "fmt_p", "fmt_pm", "fmt_sec", "frame_digest",
    "html_table", "inputs_fingerprint", "latex_table", "like_for_like", "load_published", "load_runs", "load_search", "load_space",
    "main_report", "make_strata", "markdown_table", "metric_label", "paired_bootstrap", "paired_test", "pareto_front",
    "plot_bar", "plot_heatmap", "plot_pareto", "plot_scatter", "plot_search", "prov_line", "rank_matrix",
    "reproduction_table", "run_minibatch", "run_scores", "seed_mean_ci", "select_configs", "space_digest",
    "space_label", "split_values", "table_info", "up_to_date", "write_figures", "write_stamp", "write_tables",
]
