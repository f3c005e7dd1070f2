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
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import html
import json
import math
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import zcbench
from zcbench import metrics
from zcbench.store import ScoreFile, _safe, iter_score_files

PUBLISHED = Path(__file__).with_name("published.yaml")
DEFAULT_BASELINE = "params"
FRACTIONS = (0.1, 0.2, 0.5)
FIGURE_FORMATS = ("png", "pdf")
TABLE_FORMATS = ("md", "tex", "html", "csv")

# Axis labels with units for the ground-truth columns the built-in spaces use.
METRIC_LABELS = {
    "valid_ppl": "validation perplexity",
    "test_ppl": "test perplexity",
    "glue": "GLUE average score (0-100)",
    "top1": "top-1 accuracy (%)",
}


class ReportError(RuntimeError):
    """Nothing to report (empty results dir, filters matching nothing); str() is one line."""


# --------------------------------------------------------------------------- loading
@dataclass
class Run:
    """One score file: (space, proxy, seed, data config, proxy version)."""

    space: str  # space label: name, plus options when any
    space_name: str
    space_options: dict
    proxy: str
    seed: int
    run_key: str
    version: str
    data: dict
    meta: dict
    path: Path
    config: str = ""
    _records: dict | None = None

    @property
    def records(self) -> dict:
        if self._records is None:
            sf = ScoreFile(self.path.parent.parent.parent.parent, self.space_name, self.proxy, self.seed, self.data,
                           self.version)
            if sf.path == self.path:
                self._records = sf.read()
            else:  # a file written by another layout version: read it plainly
                self._records = _read_jsonl(self.path)
        return self._records


def _read_jsonl(path: Path) -> dict:
    out: dict = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        rec["score"] = float(rec["score"]) if rec.get("score") is not None else math.nan
        out.setdefault(rec["arch_id"], rec)
    return out


def config_id(meta: dict) -> str:
    """Seed-independent identity of a run's configuration: proxy version + data config minus the seed."""
    data = json.loads(json.dumps(meta.get("data", {})))
    batch = data.get("batch")
    if isinstance(batch, dict):
        batch.pop("seed", None)
    blob = json.dumps({"v": str(meta.get("proxy_version", "")), "data": data}, sort_keys=True)
    return f"v{meta.get('proxy_version', '?')}-{hashlib.sha1(blob.encode()).hexdigest()[:6]}"


def default_space_options(name: str) -> dict:
    """The options of the shipped ``conf/space/<name>.yaml`` (a space's standard configuration)."""
    import yaml

    try:
        import zcbench.conf

        path = Path(zcbench.conf.__file__).parent / "space" / f"{name}.yaml"
        return (yaml.safe_load(path.read_text()) or {}).get("options") or {} if path.exists() else {}
    except Exception:
        return {}


def space_label(name: str, options: dict) -> str:
    """``name`` for the space's standard configuration; ``name(k=v,...)`` for options that differ
    from ``conf/space/<name>.yaml`` (runs scored with the shipped defaults, passed explicitly or
    not, are one space)."""
    defaults = default_space_options(name)
    options = {k: v for k, v in (options or {}).items() if k not in defaults or defaults[k] != v}
    if not options:
        return name
    if options.get("table"):  # a project-built ground-truth table: its name stands for its options
        return f"{name}[table={Path(str(options['table'])).name}]"
    return name + "(" + ",".join(f"{k}={options[k]}" for k in sorted(options)) + ")"


def _split(values) -> list[str] | None:
    if not values:
        return None
    out = []
    for v in values:
        out += [x.strip() for x in str(v).split(",") if x.strip()]
    return out or None


def load_runs(results_dir, spaces=None, proxies=None) -> list[Run]:
    """Every score file under ``results_dir/scores`` (optionally only some spaces / proxies)."""
    runs = []
    for meta, path in iter_score_files(Path(results_dir)):
        name = meta["space"]
        opts = (meta.get("data") or {}).get("space_options") or {}
        label = space_label(name, opts)
        if spaces and name not in spaces and label not in spaces:
            continue
        if proxies and meta["proxy"] not in proxies:
            continue
        runs.append(Run(space=label, space_name=name, space_options=opts, proxy=meta["proxy"], seed=int(meta["seed"]),
                        run_key=meta["run_key"], version=str(meta.get("proxy_version", "")),
                        data=meta.get("data") or {}, meta=meta, path=path, config=config_id(meta)))
    return runs


def _version_key(v: str):
    try:
        return (1, int(v), "")
    except ValueError:
        return (0, 0, v)


def select_configs(runs: list[Run], all_configs: bool = False) -> tuple[dict, list[str]]:
    """Group runs into rows: {(space label, proxy label): [runs, one per seed]}.

    A (space, proxy) scored under several configurations (another batch size, a bumped proxy
    version...) is reported once, with the configuration of the highest proxy version, then
    the most seeds, then the most records; the others are named in the returned notes.
    With ``all_configs`` every configuration is its own row, labelled ``proxy@config``.
    """
    by: dict = {}
    for r in runs:
        by.setdefault((r.space, r.proxy), {}).setdefault(r.config, []).append(r)
    groups, notes = {}, []
    for (space, proxy), configs in sorted(by.items()):
        if all_configs and len(configs) > 1:
            for cid, rs in sorted(configs.items()):
                groups[(space, f"{proxy}@{cid}")] = sorted(rs, key=lambda r: r.seed)
            continue

        def rank(item):
            cid, rs = item
            return (_version_key(rs[0].version), len({r.seed for r in rs}), sum(len(r.records) for r in rs))

        ordered = sorted(configs.items(), key=rank, reverse=True)
        cid, rs = ordered[0]
        groups[(space, proxy)] = sorted(rs, key=lambda r: r.seed)
        for other, ors in ordered[1:]:
            notes.append(f"{space}/{proxy}: configuration {other} (seeds {sorted({r.seed for r in ors})}) not "
                         f"reported; using {cid} (use --all-configs to list every configuration)")
    return groups, notes


@dataclass
class SpaceInfo:
    """Ground truth and description of one space label."""

    label: str
    name: str
    options: dict
    metric: str = ""
    higher_is_better: bool = True
    truth: pd.Series | None = None  # raw ground truth by arch ID (not oriented)
    truth_all: pd.DataFrame | None = None  # every ground-truth column of the stored archs
    records: pd.DataFrame | None = None  # arch_id, truth per benchmark record (Space.record_truths)
    description: str = ""
    modality: str = ""
    n_stored: int = 0
    error: str = ""
    doc: str = ""

    @property
    def oriented(self) -> pd.Series | None:
        return None if self.truth is None else metrics.orient(self.truth, self.higher_is_better)

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric, self.higher_is_better)

    def ceiling(self) -> dict | None:
        """Agreement of two held-out measurements of the same trained models (valid vs test).

        The best rank correlation any proxy can be expected to reach is bounded by how well
        the ground truth agrees with itself; with a validation and a test column of the same
        runs, their Spearman rho / Kendall tau are a (loose, optimistic) estimate of that ceiling.
        """
        if self.options.get("table"):  # project-built table: seed-vs-seed agreement (docs/groundtruth.md)
            d = table_info(self)
            c = d["ceiling"] if d else None
            return {"a": f"seed {c['seed_a']}", "b": f"seed {c['seed_b']}", "n": c["n"], "rho": c["rho"],
                    "tau": c["tau"]} if c else None
        if self.truth_all is None:
            return None
        cols = [c for c in self.truth_all.columns if c.startswith("valid")]
        for c in cols:
            other = "test" + c[len("valid"):]
            if other in self.truth_all.columns:
                d = self.truth_all[[c, other]].dropna()
                if len(d) >= 4:
                    corr = metrics.correlate(d[c], d[other], n_resamples=0)
                    return {"a": c, "b": other, "n": corr.n, "rho": corr.spearman_rho, "tau": corr.kendall_tau}
        return None


def table_info(info: SpaceInfo | None) -> dict | None:
    """Recipe, size and noise ceiling of the project-built table behind a space label, if any."""
    if info is None or not info.options.get("table"):
        return None
    from zcbench.groundtruth import describe_table

    return describe_table(str(info.options["table"]))


def metric_label(metric: str, higher_is_better: bool) -> str:
    base = METRIC_LABELS.get(metric, metric or "ground truth")
    return f"{base} ({'higher' if higher_is_better else 'lower'} is better)"


_SPACE_CACHE: dict = {}


def load_space(label: str, name: str, options: dict, target: str | None = None, data_dir=None) -> SpaceInfo:
    """Ground truth of a space (cached per process: the upstream tables do not change under us)."""
    from zcbench.data import resolve_data_dir

    try:
        resolved = str(resolve_data_dir(data_dir))
    except Exception:
        resolved = str(data_dir)
    key = (label, name, json.dumps(options, sort_keys=True, default=str), target, resolved)
    if key not in _SPACE_CACHE:
        _SPACE_CACHE[key] = _load_space(label, name, options, target, data_dir)
    return _SPACE_CACHE[key]


def _load_space(label: str, name: str, options: dict, target: str | None, data_dir) -> SpaceInfo:
    info = SpaceInfo(label=label, name=name, options=options)
    try:
        space = zcbench.create_space(name, data_dir=data_dir, **options)
    except Exception as exc:  # unregistered plug-in, bad options, missing data dir
        info.error = f"cannot create space {name!r}: {' '.join(str(exc).split())}"
        return info
    info.description = getattr(space, "description", "") or ""
    info.modality = getattr(space, "modality", "") or ""
    mod = sys.modules.get(type(space).__module__)
    info.doc = (mod.__doc__ or "") if mod is not None else ""
    if target and (not space.metrics or target in space.metrics):
        space.metric = target
    info.metric, info.higher_is_better = space.metric, bool(space.higher_is_better)
    try:
        stored = space.stored()
    except Exception as exc:  # DataError: ground-truth files missing
        info.error = f"no ground truth for {name}: {' '.join(str(exc).split())}"
        return info
    info.n_stored = len(stored)
    rows = {a.id: a.truth for a in stored if a.truth}
    if rows:
        info.truth_all = pd.DataFrame.from_dict(rows, orient="index").astype(float)
        if info.metric in info.truth_all.columns:
            info.truth = info.truth_all[info.metric].dropna()
    try:  # per-record truth, for papers that correlate over the raw table (duplicates kept)
        recs = space.record_truths(info.metric)
        info.records = pd.DataFrame(recs, columns=["arch_id", "truth"]) if recs else None
    except Exception:
        info.records = None
    if info.truth is None or info.truth.empty:
        info.truth = None
        if not info.error:
            info.error = f"space {name} has no stored ground truth ({info.metric or 'no metric'})"
    return info


def load_search(results_dir, spaces=None) -> pd.DataFrame:
    """Search curves from ``results/search/*.csv`` and ``*.json`` (format in docs/report.md)."""
    folder = Path(results_dir) / "search"
    frames = []
    for path in sorted(folder.glob("*.csv")) + sorted(folder.glob("*.json")):
        try:
            if path.suffix == ".csv":
                df = pd.read_csv(path)
            else:
                obj = json.loads(path.read_text())
                recs = obj.get("records", []) if isinstance(obj, dict) else obj
                if isinstance(obj, dict):
                    recs = [{**{k: v for k, v in obj.items() if k != "records"}, **r} for r in recs]
                df = pd.DataFrame(recs)
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable search results ({exc}); skipped")
            continue
        missing = {"space", "method", "seed", "n_evaluated", "best_truth"} - set(df.columns)
        if missing:
            warnings.warn(f"{path}: search results lack column(s) {', '.join(sorted(missing))}; skipped")
            continue
        df["source"] = path.name
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["space", "method", "seed", "n_evaluated", "best_truth", "source"])
    out = pd.concat(frames, ignore_index=True)
    out["n_evaluated"] = out["n_evaluated"].astype(int)
    out["best_truth"] = out["best_truth"].astype(float)
    if spaces:
        out = out[out["space"].isin(spaces)]
    return out


# --------------------------------------------------------------------------- statistics
def _scores(run: Run) -> pd.Series:
    return pd.Series({k: r["score"] for k, r in run.records.items()}, dtype=float)


def _finite_ids(series_list: list[pd.Series], truth: pd.Series) -> list[str]:
    """Architectures with a finite value in every series and a finite ground truth (sorted IDs)."""
    ids = set(truth.index[np.isfinite(truth.to_numpy(dtype=float))])
    for s in series_list:
        ids &= set(s.index[metrics.finite_mask(s).to_numpy()])
    return sorted(ids)


@dataclass
class Stratum:
    """One seed's architectures: proxy scores, oriented truth and (optionally) baseline scores, aligned."""

    ids: tuple
    scores: np.ndarray
    truth: np.ndarray
    base: np.ndarray | None = None


def make_strata(series: list[pd.Series], truth: pd.Series, base: list[pd.Series] | None = None) -> list[Stratum]:
    out = []
    for i, s in enumerate(series):
        ids = _finite_ids([s] + ([base[i]] if base is not None else []), truth)
        out.append(Stratum(tuple(ids), s.reindex(ids).to_numpy(dtype=float), truth.reindex(ids).to_numpy(dtype=float),
                           None if base is None else base[i].reindex(ids).to_numpy(dtype=float)))
    return out


def _corr(kind: str, x: np.ndarray, t: np.ndarray):
    """rho or tau-b along the last axis; x, t are (n,) or (batch, n).

    Spearman rho is computed as scipy.stats.spearmanr defines it, the Pearson correlation of
    average ranks (scipy.stats.rankdata + scipy.stats.pearsonr, vectorised over resamples);
    Kendall tau-b is scipy.stats.kendalltau per resample, as in metrics.correlate.
    """
    if kind == "rho":
        return stats.pearsonr(stats.rankdata(x, axis=-1), stats.rankdata(t, axis=-1), axis=-1).statistic
    fx, ft = x.reshape(-1, x.shape[-1]), t.reshape(-1, t.shape[-1])
    return np.array([stats.kendalltau(a, b).statistic for a, b in zip(fx, ft)], dtype=float).reshape(x.shape[:-1])


def _value(kind: str):
    if kind == "d_rho":
        return lambda st, i: _corr("rho", st.scores[i], st.truth[i]) - _corr("rho", st.base[i], st.truth[i])
    return lambda st, i: _corr(kind, st.scores[i], st.truth[i])


def _seed_mean_bootstrap(strata: list[Stratum], kind: str, n_resamples: int, seed: int, confidence: float = 0.95):
    """Bootstrap of the mean over seeds of a per-seed statistic (``rho``, ``tau`` or ``d_rho``).

    When every seed scored the same architectures, one resample of architectures serves all
    seeds (``joint``: seeds are paired through the architectures); otherwise (e.g. each seed
    drew its own ``n_archs`` sample) each seed's architectures are resampled independently
    (stratified). scipy.stats.bootstrap with the settings of metrics.bootstrap_ci (percentile,
    seeded Generator); with one seed it reproduces metrics.bootstrap_ci exactly.
    Returns (observed value, scipy BootstrapResult or None, basis text).
    """
    value = _value(kind)
    joint = all(st.ids == strata[0].ids for st in strata)

    def stat(*idxs, axis=-1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if joint:
                vals = [value(st, np.asarray(idxs[0], dtype=int)) for st in strata]
            else:
                vals = [value(st, np.asarray(i, dtype=int)) for st, i in zip(strata, idxs)]
        return np.mean(np.asarray(vals, dtype=float), axis=0)

    data = (np.arange(len(strata[0].ids)),) if joint else tuple(np.arange(len(st.ids)) for st in strata)
    observed = float(stat(*data))
    n_min = min(len(st.ids) for st in strata)
    basis = (f"{len(strata[0].ids)} archs, resampled jointly for {len(strata)} seed(s)" if joint else
             f"{n_min}-{max(len(st.ids) for st in strata)} archs per seed, resampled per seed (stratified)")
    if n_min < 4 or not n_resamples or not math.isfinite(observed):
        return observed, None, basis
    res = stats.bootstrap(data, stat, paired=joint, vectorized=True, n_resamples=n_resamples,
                          confidence_level=confidence, method="percentile", batch=250,
                          random_state=np.random.default_rng(seed))
    return observed, res, basis


def _interval(res, confidence: float = 0.95) -> tuple[float, float]:
    if res is None:
        return (math.nan, math.nan)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # a degenerate resample gave NaN: ignore those resamples
        dist = np.asarray(res.bootstrap_distribution, dtype=float)
        dist = dist[np.isfinite(dist)]
        if dist.size < 10:
            return (math.nan, math.nan)
        a = (1 - confidence) / 2
        lo, hi = (float(v) for v in np.quantile(dist, [a, 1 - a]))
    return lo, hi


def seed_mean_ci(matrix: np.ndarray, truth: np.ndarray, kind: str, n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """95% CI of the seed-mean rho/tau for a (seeds, n) score matrix over the same n architectures."""
    ids = tuple(range(truth.shape[0]))
    strata = [Stratum(ids, np.asarray(row, dtype=float), np.asarray(truth, dtype=float)) for row in matrix]
    return _interval(_seed_mean_bootstrap(strata, kind, n_resamples, seed, confidence)[1], confidence)


def paired_test(strata: list[Stratum], n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Is the proxy's rho really higher than the baseline's on the same architectures?

    Each stratum (seed) holds the proxy's and the baseline's scores on the architectures both
    scored finitely. Architectures are resampled with replacement (paired: proxy, baseline
    and truth move together); each resample gives
    d* = mean_s [rho(proxy_s, truth) - rho(base_s, truth)].
    Returns the observed d, the percentile CI of d*, and a two-sided bootstrap p-value for
    H0: d = 0, p = min(1, 2 (1 + #{d* on the far side of 0}) / (B + 1)).
    """
    out = {"d_rho": math.nan, "d_rho_ci_lo": math.nan, "d_rho_ci_hi": math.nan, "p_vs_base": math.nan,
           "n_paired": min((len(st.ids) for st in strata), default=0)}
    if not strata or out["n_paired"] < 4:
        return out
    observed, res, _ = _seed_mean_bootstrap(strata, "d_rho", n_resamples, seed, confidence)
    out["d_rho"] = observed
    if res is None:
        return out
    out["d_rho_ci_lo"], out["d_rho_ci_hi"] = _interval(res, confidence)
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    dist = dist[np.isfinite(dist)]
    if dist.size:
        far = min(int((dist <= 0).sum()), int((dist >= 0).sum()))
        out["p_vs_base"] = min(1.0, 2.0 * (1 + far) / (dist.size + 1))
    return out


def paired_bootstrap(proxy: np.ndarray, base: np.ndarray, truth: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """:func:`paired_test` for (seeds, n) proxy and baseline matrices over the same n architectures."""
    ids = tuple(range(truth.shape[0]))
    strata = [Stratum(ids, np.asarray(p, dtype=float), np.asarray(truth, dtype=float), np.asarray(b, dtype=float))
              for p, b in zip(proxy, base)]
    return paired_test(strata, n_resamples, seed, confidence)


@dataclass
class ReportData:
    table: pd.DataFrame  # THE table: one row per (space, proxy)
    per_seed: pd.DataFrame  # one row per (space, proxy, seed)
    scores: pd.DataFrame  # long per-arch scores: space, proxy, seed, arch_id, score, truth
    spaces: dict  # label -> SpaceInfo
    groups: dict  # (space, proxy) -> [Run]
    search: pd.DataFrame
    baseline: str
    notes: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)


def git_commit(path: Path | None = None) -> str | None:
    """Commit of the zcbench checkout (None for an installed wheel or without git); '+dirty' when modified."""
    root = Path(path or Path(zcbench.__file__).resolve().parent.parent)
    if not (root / ".git").exists():
        return None
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, env=env)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "--no-optional-locks", "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True, timeout=10, env=env)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def build(results_dir="results", *, spaces=None, proxies=None, baseline: str = DEFAULT_BASELINE,
          target: str | None = None, data_dir=None, n_resamples: int = 1000, seed: int = 0,
          all_configs: bool = False) -> ReportData:
    """Read ``results_dir`` and compute the report table (see the module docstring)."""
    results_dir = Path(results_dir)
    if not (results_dir / "scores").is_dir():
        raise ReportError(f"no scores under {results_dir}/scores: run `python -m zcbench run ...` first")
    want = None if proxies is None else set(proxies) | {baseline}
    runs = load_runs(results_dir, spaces, want)
    if not runs:
        filt = (f" for space(s) {', '.join(spaces)}" if spaces else "") + (
            f" and proxy(s) {', '.join(proxies)}" if proxies else "")
        raise ReportError(f"no score files under {results_dir}/scores{filt}")
    groups, notes = select_configs(runs, all_configs)
    space_infos: dict[str, SpaceInfo] = {}
    for r in runs:
        if r.space not in space_infos:
            space_infos[r.space] = load_space(r.space, r.space_name, r.space_options, target, data_dir)
            if space_infos[r.space].error:
                notes.append(f"{r.space}: {space_infos[r.space].error}; correlations left empty")

    per_seed_rows, score_rows, rows = [], [], []
    excluded: dict = {}
    for (space, plabel), rs in groups.items():
        info = space_infos[space]
        truth = info.truth
        oriented = info.oriented
        series = {r.seed: _scores(r) for r in rs}
        for r in rs:
            s = series[r.seed]
            recs = r.records
            ps = {"space": space, "proxy": plabel, "seed": r.seed, "run_key": r.run_key, "n_records": len(recs)}
            status = pd.Series([rec.get("status", "") for rec in recs.values()], dtype=object)
            for st, col in (("nan", "n_nan"), ("inf", "n_inf"), ("n/a", "n_na"), ("error", "n_error")):
                ps[col] = int((status == st).sum())
            ps["sec_median"] = float(pd.Series([rec.get("seconds", math.nan) for rec in recs.values()],
                                               dtype=float).median()) if recs else math.nan
            if oriented is not None:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    c = metrics.correlate(s, oriented, fractions=FRACTIONS, n_resamples=0, label=f"{space}/{plabel}")
                if any("excluded" in str(w.message) for w in caught):
                    excluded.setdefault((space, plabel), []).append((r.seed, c.n_excluded, c.n + c.n_excluded))
                ps.update(n=c.n, n_excluded=c.n_excluded, tau=c.kendall_tau, rho=c.spearman_rho, constant=c.constant,
                          **{k.replace("%", ""): v for k, v in c.top_overlap.items()})
            per_seed_rows.append(ps)
            t = truth.reindex(s.index) if truth is not None else pd.Series(math.nan, index=s.index)
            score_rows.append(pd.DataFrame({"space": space, "proxy": plabel, "seed": r.seed, "arch_id": s.index,
                                            "score": s.to_numpy(), "truth": t.to_numpy(dtype=float)}))
        rows.append(_group_row(space, plabel, rs, series, info, groups, baseline, n_resamples, seed))

    per_seed = pd.DataFrame(per_seed_rows)
    for col in ("n", "n_excluded", "tau", "rho", "constant", "top10", "top20", "top50"):
        if col not in per_seed.columns:
            per_seed[col] = math.nan
    table = pd.DataFrame(rows)
    # mean ± std over seeds, via metrics.mean_std_over_seeds
    for value in ("rho", "tau", "top10", "top20", "top50"):
        ok = per_seed.dropna(subset=[value])
        if ok.empty:
            table[value] = math.nan
            if value in ("rho", "tau"):
                table[f"{value}_std"] = math.nan
            continue
        ms = metrics.mean_std_over_seeds(ok, ["space", "proxy"], value)
        ms = ms.rename(columns={"mean": value, "std": f"{value}_std", "n_seeds": f"n_seeds_{value}"})
        keep = [value, f"{value}_std"] if value in ("rho", "tau") else [value]
        table = table.merge(ms[["space", "proxy"] + keep], on=["space", "proxy"], how="left")
    n_used = per_seed.groupby(["space", "proxy"])["n"].median().rename("n_archs").reset_index()
    table = table.merge(n_used, on=["space", "proxy"], how="left")
    table = _rank(table)
    table = table[[c for c in TABLE_COLUMNS if c in table.columns]]
    scores = pd.concat(score_rows, ignore_index=True) if score_rows else pd.DataFrame()
    for (space, plabel), items in excluded.items():
        seeds = ",".join(str(sd) for sd, _, _ in items)
        counts = sorted({f"{k} of {n}" for _, k, n in items})
        notes.append(f"{space}/{plabel}: NaN/inf scores excluded from the correlation: {' / '.join(counts)} "
                     f"architectures (seeds {seeds})")
    for _, x in table[table["constant"].astype(bool)].iterrows():
        notes.append(f"{x['space']}/{x['proxy']}: constant scores (every architecture scored the same): no ranking")
    prov = {"zcbench_version": zcbench.__version__, "zcbench_commit": git_commit(),
            "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "results_dir": str(results_dir), "baseline": baseline, "bootstrap_resamples": n_resamples,
            "bootstrap_seed": seed, "confidence": 0.95}
    table.attrs.update(baseline=baseline)
    return ReportData(table=table, per_seed=per_seed, scores=scores, spaces=space_infos, groups=groups,
                      search=load_search(results_dir, spaces), baseline=baseline, notes=notes, provenance=prov)


TABLE_COLUMNS = [
    "space", "proxy", "rank", "rho", "rho_std", "rho_ci_lo", "rho_ci_hi", "tau", "tau_std", "tau_ci_lo", "tau_ci_hi",
    "top10", "top20", "top50", "d_rho", "d_rho_ci_lo", "d_rho_ci_hi", "p_vs_base", "n_paired", "n_archs", "n_common",
    "ci_basis", "n_seeds", "seeds", "sec_per_arch", "sec_total", "pass_sec_per_arch", "device", "n_records", "n_nan",
    "n_inf", "n_na", "n_error", "constant", "is_baseline", "metric", "higher_is_better", "proxy_name", "proxy_version",
    "config", "run_keys", "data_config", "zcbench_versions", "zcbench_commits", "citation",
]


def _group_row(space, plabel, rs, series, info: SpaceInfo, groups, baseline, n_resamples, seed) -> dict:
    proxy_name = rs[0].proxy
    recs = [rec for r in rs for rec in r.records.values()]
    status = pd.Series([rec.get("status", "") for rec in recs], dtype=object)
    secs = pd.Series([rec.get("seconds", math.nan) for rec in recs], dtype=float)
    pass_secs = pd.Series([rec.get("pass_seconds", math.nan) for rec in recs], dtype=float)
    row = {
        "space": space, "proxy": plabel, "proxy_name": proxy_name, "n_seeds": len(rs),
        "seeds": ",".join(str(r.seed) for r in rs), "n_records": len(recs),
        "n_nan": int((status == "nan").sum()), "n_inf": int((status == "inf").sum()),
        "n_na": int((status == "n/a").sum()), "n_error": int((status == "error").sum()),
        "sec_per_arch": float(secs.median()) if len(secs) else math.nan,
        "sec_total": float(secs.sum()) if len(secs) else math.nan,
        "pass_sec_per_arch": float(pass_secs.median()) if len(pass_secs) else math.nan,
        "device": rs[0].data.get("device", "none (no model)") if isinstance(rs[0].data, dict) else "",
        "is_baseline": proxy_name == baseline, "metric": info.metric, "higher_is_better": info.higher_is_better,
        "proxy_version": rs[0].version, "config": rs[0].config, "run_keys": ",".join(r.run_key for r in rs),
        "data_config": json.dumps({k: v for k, v in rs[0].data.items() if k != "batch"} |
                                  ({"batch": {k: v for k, v in rs[0].data["batch"].items() if k != "seed"}}
                                   if isinstance(rs[0].data.get("batch"), dict) else {}), sort_keys=True),
        "zcbench_versions": ",".join(sorted({str(r.meta.get("zcbench_version", "?")) for r in rs})),
        "zcbench_commits": ",".join(sorted({str(r.meta.get("zcbench_commit", "not recorded")) for r in rs})),
        "citation": rs[0].meta.get("citation", ""),
        "constant": False,
    }
    oriented = info.oriented
    nan_ci = {"rho_ci_lo": math.nan, "rho_ci_hi": math.nan, "tau_ci_lo": math.nan, "tau_ci_hi": math.nan}
    row.update(nan_ci, n_common=0, ci_basis="")
    row.update(d_rho=math.nan, d_rho_ci_lo=math.nan, d_rho_ci_hi=math.nan, p_vs_base=math.nan, n_paired=0)
    if oriented is None:
        row["ci_basis"] = "no ground truth"
        return row
    seeds = [r.seed for r in rs]
    strata = make_strata([series[sd] for sd in seeds], oriented)
    row["constant"] = bool(all(len(st.ids) >= 2 and np.all(st.scores == st.scores[0]) for st in strata))
    row["n_common"] = len(set.intersection(*(set(st.ids) for st in strata)))
    if row["constant"]:
        row["ci_basis"] = "constant scores"
    elif min(len(st.ids) for st in strata) < 4:
        row["ci_basis"] = "fewer than 4 architectures in some seed"
    else:
        for kind in ("rho", "tau"):
            _, res, basis = _seed_mean_bootstrap(strata, kind, n_resamples, seed)
            row[f"{kind}_ci_lo"], row[f"{kind}_ci_hi"] = _interval(res)
            row["ci_basis"] = basis
    # paired bootstrap against the baseline
    base_key = (space, baseline)
    if proxy_name != baseline and base_key in groups and not row["constant"]:
        base_series = {r.seed: _scores(r) for r in groups[base_key]}
        first = next(iter(base_series.values()))
        # Parameter counts do not depend on the seed: a seed the baseline lacks uses any baseline seed.
        bases = [base_series.get(sd, first) for sd in seeds]
        row.update(paired_test(make_strata([series[sd] for sd in seeds], oriented, bases), n_resamples, seed))
    return row


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["_r"] = table["rho"].fillna(-np.inf)
    table = table.sort_values(["space", "_r", "proxy"], ascending=[True, False, True], kind="stable")
    table["rank"] = table.groupby("space")["rho"].rank(ascending=False, method="min")
    table = table.drop(columns="_r").reset_index(drop=True)
    return table


# --------------------------------------------------------------------------- reproduction
def load_published(path: Path = PUBLISHED) -> pd.DataFrame:
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    rows = []
    for src in doc["sources"]:
        for e in src["entries"]:
            cands = e["proxy"] if isinstance(e["proxy"], list) else [e["proxy"]]
            stat = src.get("statistic", "spearman")
            if stat not in STATISTICS:
                raise ReportError(f"{path}: source {src['id']}: statistic {stat!r}; valid: {', '.join(STATISTICS)}")
            rows.append({"source": src["id"], "paper": src["paper"], "table": src["table"], "space": src["space"],
                         "statistic": stat, "per_record": bool(src.get("per_record", False)),
                         "n_paper": src.get("n_archs"), "paper_name": e["name"], "candidates": cands,
                         "tau_paper": e.get("tau"), "rho_paper": e.get("rho"), "negate": bool(e.get("negate", False))})
    return pd.DataFrame(rows)


STATISTICS = ("spearman", "pearson")


def like_for_like(score_matrix: np.ndarray, truth: np.ndarray, statistic: str, n_resamples: int = 1000,
                  seed: int = 0, confidence: float = 0.95) -> dict:
    """Kendall tau-b and ``statistic`` (Spearman rho or Pearson r) of (seeds x records) scores vs truth.

    Mean and std over seeds; percentile bootstrap CI of the seed mean, resampling records
    (the same resample for every seed). Records whose score is not finite in some seed are
    excluded (and counted), never replaced.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; valid: {', '.join(STATISTICS)}")
    x = np.atleast_2d(np.asarray(score_matrix, dtype=float))
    t = np.asarray(truth, dtype=float)
    ok = np.isfinite(x).all(axis=0) & np.isfinite(t)
    x, t = x[:, ok], t[ok]
    out = {"n": int(ok.sum()), "n_excluded": int((~ok).sum())}
    if out["n"] < 4 or np.any(np.ptp(x, axis=1) == 0):
        return out | {"rho": math.nan, "rho_std": math.nan, "tau": math.nan, "tau_std": math.nan,
                      "rho_ci_lo": math.nan, "rho_ci_hi": math.nan, "tau_ci_lo": math.nan, "tau_ci_hi": math.nan}

    def rho_of(xs, ts):  # Spearman: the report's own rank correlation (_corr)
        return stats.pearsonr(xs, ts, axis=-1).statistic if statistic == "pearson" else _corr("rho", xs, ts)

    rhos = np.array([rho_of(xi, t) for xi in x])
    taus = np.array([_corr("tau", xi, t) for xi in x])
    out.update(rho=float(rhos.mean()), rho_std=float(rhos.std(ddof=1)) if len(x) > 1 else math.nan,
               tau=float(taus.mean()), tau_std=float(taus.std(ddof=1)) if len(x) > 1 else math.nan)
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, out["n"], size=(n_resamples, out["n"]))
        tb = t[idx]
        rb = np.mean([rho_of(xi[idx], tb) for xi in x], axis=0)
        kb = np.mean([_corr("tau", xi[idx], tb) for xi in x], axis=0)
        a = (1 - confidence) / 2
        out.update(rho_ci_lo=float(np.nanquantile(rb, a)), rho_ci_hi=float(np.nanquantile(rb, 1 - a)),
                   tau_ci_lo=float(np.nanquantile(kb, a)), tau_ci_hi=float(np.nanquantile(kb, 1 - a)))
    else:
        out.update(rho_ci_lo=math.nan, rho_ci_hi=math.nan, tau_ci_lo=math.nan, tau_ci_hi=math.nan)
    return out


def _like_for_like_row(data: ReportData, space: str, proxy: str, statistic: str, per_record: bool) -> dict | None:
    """Our numbers computed the way a source computed its published ones (statistic, records)."""
    info = data.spaces.get(space)
    if info is None or info.truth is None or data.scores.empty:
        return None
    s = data.scores[(data.scores["space"] == space) & (data.scores["proxy"] == proxy)]
    if s.empty:
        return None
    wide = s.pivot_table(index="arch_id", columns="seed", values="score", aggfunc="first", dropna=False)
    if per_record and info.records is not None:
        rec = info.records[info.records["arch_id"].isin(wide.index)]
        ids, t = rec["arch_id"].to_numpy(), rec["truth"].to_numpy(dtype=float)
    else:
        tr = info.truth.reindex(wide.index).dropna()
        ids, t = tr.index.to_numpy(), tr.to_numpy(dtype=float)
    if not info.higher_is_better:
        t = -t
    x = wide.reindex(ids).to_numpy(dtype=float).T  # seeds x records
    res = like_for_like(x, t, statistic, int(data.provenance.get("bootstrap_resamples", 1000)),
                        int(data.provenance.get("bootstrap_seed", 0)))
    return res | {"n_seeds": x.shape[0]}


def reproduction_table(table: pd.DataFrame, published: pd.DataFrame | None = None,
                       include_missing: bool = True, data: ReportData | None = None) -> pd.DataFrame:
    """Ours vs the papers' published tau/rho, for the spaces present in ``table``.

    A source may declare how its numbers were computed (``statistic: pearson`` — its "rho"
    is Pearson's r of the raw scores —, ``per_record: true`` — correlated over every record
    of the benchmark table, duplicated networks counted per record). With ``data`` given,
    our columns for such a source are computed the same way (like for like) and
    ``rho_spearman_ours`` keeps our standard Spearman rho over distinct architectures;
    without ``data`` (or for sources that declare nothing) ours is the standard table's.
    """
    pub = load_published() if published is None else published
    present = set(table["space"])
    pub = pub[pub["space"].isin(present)]
    out = []
    for _, p in pub.iterrows():
        mine = table[(table["space"] == p["space"])]
        hit = None
        for c in p["candidates"]:
            m = mine[mine["proxy"] == c]
            if len(m):
                hit = m.iloc[0]
                break
        if hit is None and not include_missing:
            continue
        row = {"source": p["source"], "table": p["table"], "paper": p["paper"], "space": p["space"],
               "paper_name": p["paper_name"], "proxy": hit["proxy"] if hit is not None else p["candidates"][0],
               "tau_paper": p["tau_paper"], "rho_paper": p["rho_paper"], "n_paper": p["n_paper"]}
        statistic = p.get("statistic") or "spearman"
        per_record = bool(p.get("per_record") or False)
        row["statistic"] = ("Pearson r" if statistic == "pearson" else "Spearman") + (", per record" if per_record else "")
        if hit is not None:
            row.update(tau_ours=hit["tau"], tau_std=hit["tau_std"], rho_ours=hit["rho"], rho_std=hit["rho_std"],
                       rho_ci_lo=hit["rho_ci_lo"], rho_ci_hi=hit["rho_ci_hi"], tau_ci_lo=hit["tau_ci_lo"],
                       tau_ci_hi=hit["tau_ci_hi"], n_ours=hit["n_archs"], n_seeds=hit["n_seeds"],
                       rho_spearman_ours=hit["rho"])
            lfl = (_like_for_like_row(data, p["space"], hit["proxy"], statistic, per_record)
                   if data is not None and (statistic != "spearman" or per_record) else None)
            if lfl is not None and math.isfinite(lfl.get("rho", math.nan)):
                row.update({k: lfl[k] for k in ("tau_std", "rho_std", "rho_ci_lo", "rho_ci_hi", "tau_ci_lo",
                                                 "tau_ci_hi", "n_seeds")},
                           tau_ours=lfl["tau"], rho_ours=lfl["rho"], n_ours=lfl["n"])
            elif statistic != "spearman" or per_record:
                row["statistic"] = "Spearman (like-for-like not computed)"
            if bool(p.get("negate") or False):  # the paper correlated -score (published.yaml says why)
                row["proxy"] = "-" + row["proxy"]
                for k in ("tau_ours", "rho_ours", "rho_spearman_ours"):
                    row[k] = -row[k] if row.get(k) is not None else row.get(k)
                for kind in ("rho", "tau"):
                    lo, hi = row.get(f"{kind}_ci_lo"), row.get(f"{kind}_ci_hi")
                    row[f"{kind}_ci_lo"], row[f"{kind}_ci_hi"] = (-hi if hi is not None else hi,
                                                                  -lo if lo is not None else lo)
        out.append(row)
    cols = ["source", "table", "paper", "space", "paper_name", "proxy", "statistic", "tau_paper", "tau_ours", "tau_std",
            "d_tau", "rho_paper", "rho_ours", "rho_std", "d_rho", "rho_ci_lo", "rho_ci_hi", "in_ci", "n_paper", "n_ours",
            "n_seeds", "tau_ci_lo", "tau_ci_hi", "rho_spearman_ours"]
    df = pd.DataFrame(out)
    for c in cols:
        if c not in df.columns:
            df[c] = math.nan
    df["d_tau"] = df["tau_ours"].astype(float) - df["tau_paper"].astype(float)
    df["d_rho"] = df["rho_ours"].astype(float) - df["rho_paper"].astype(float)
    lo, hi, pub_rho = (df[c].astype(float) for c in ("rho_ci_lo", "rho_ci_hi", "rho_paper"))
    df["in_ci"] = np.where(lo.notna() & hi.notna() & pub_rho.notna(), (pub_rho >= lo) & (pub_rho <= hi), None)
    return df[cols]


# --------------------------------------------------------------------------- formatting
def _f(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{nd}f}"


def _pm(m, s, nd=3, latex=False, constant=False) -> str:
    if constant:
        return "constant"
    if m is None or not math.isfinite(float(m)):
        return "—"
    if s is None or not math.isfinite(float(s)):
        return _f(m, nd)
    return f"{m:.{nd}f} $\\pm$ {s:.{nd}f}" if latex else f"{m:.{nd}f} ± {s:.{nd}f}"


def _ci(lo, hi, nd=2) -> str:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "—"
    return f"[{lo:.{nd}f}, {hi:.{nd}f}]"


def _p(p) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def _sec(s) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    return f"{s:.3g}"


def _diff(d, lo=None, hi=None) -> str:
    if d is None or not math.isfinite(d):
        return "—"
    return f"{d:+.3f}" + ("" if lo is None else f" {_ci(lo, hi)}")


def _int(x) -> str:
    return "—" if x is None or pd.isna(x) else str(int(x))


def display_table(table: pd.DataFrame, baseline: str = DEFAULT_BASELINE, latex: bool = False) -> pd.DataFrame:
    """Human-readable version of the table (strings), ranked as the table is."""
    r, t, pm, delta = ("$\\rho$", "$\\tau$", "$\\pm$", "$\\Delta$") if latex else ("ρ", "τ", "±", "Δ")
    rows = []
    for _, x in table.iterrows():
        const = bool(x["constant"])
        rows.append({
            "Space": x["space"],
            "Rank": _int(x["rank"]),
            "Proxy": x["proxy"] + (" (baseline)" if x["is_baseline"] else ""),
            f"{r} mean {pm} std": _pm(x["rho"], x["rho_std"], latex=latex, constant=const),
            f"{r} 95% CI": _ci(x["rho_ci_lo"], x["rho_ci_hi"]),
            f"{t} mean {pm} std": _pm(x["tau"], x["tau_std"], latex=latex),
            f"{t} 95% CI": _ci(x["tau_ci_lo"], x["tau_ci_hi"]),
            "top-10%": _f(x["top10"], 2),
            f"{delta}{r} vs {baseline} [95% CI]": _diff(x["d_rho"], x["d_rho_ci_lo"], x["d_rho_ci_hi"]),
            "p": _p(x["p_vs_base"]),
            "s/arch": _sec(x["sec_per_arch"]),
            "n": _int(x["n_archs"]),
            "seeds": str(x["n_seeds"]),
            "NaN/inf": f"{int(x['n_nan'] + x['n_inf'])}/{int(x['n_records'])}",
        })
    return pd.DataFrame(rows)  # LaTeX escaping happens in latex_table


def display_reproduction(rep: pd.DataFrame, latex: bool = False) -> pd.DataFrame:
    r, t, delta = ("$\\rho$", "$\\tau$", "$\\Delta$") if latex else ("ρ", "τ", "Δ")
    rows = []
    for _, x in rep.iterrows():
        rows.append({
            "Source": f"{x['source']} ({x['table']})",
            "Space": x["space"], "Paper name": x["paper_name"], "Proxy": x["proxy"],
            f"{r} is": x.get("statistic", "Spearman"),
            f"{t} paper": _f(x["tau_paper"]), f"{t} ours": _pm(x["tau_ours"], x["tau_std"], latex=latex),
            f"{delta}{t}": _diff(x["d_tau"]),
            f"{r} paper": _f(x["rho_paper"]), f"{r} ours": _pm(x["rho_ours"], x["rho_std"], latex=latex),
            f"{delta}{r}": _diff(x["d_rho"]),
            f"paper {r} in our CI": {True: "yes", False: "no"}.get(x["in_ci"], "—"),
            "n paper/ours": f"{'?' if pd.isna(x['n_paper']) else int(x['n_paper'])}/{_int(x['n_ours'])}",
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
        parts = [f"# zcbench leaderboard\n\n{_prov_line(data)}\n"]
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
        p.write_text("# Reproduction: ours vs published\n\n" + _prov_line(data) + "\n\n"
                     + (markdown_table(display_reproduction(rep)) if len(rep) else "No published numbers for "
                        "these spaces.") + "\n")
        written.append(p)
    if "tex" in formats:
        parts = [f"% zcbench leaderboard; {_prov_line(data)}\n% needs \\usepackage{{booktabs}}\n"]
        for sp in spaces:
            rows = tab[tab["space"] == sp]
            parts.append(latex_table(display_table(rows, base, latex=True).drop(columns="Space"),
                                     _caption(data.spaces.get(sp), rows).replace("±", "$\\pm$"),
                                     f"tab:zcbench-{_safe(sp)}"))
        p = out / "leaderboard.tex"
        p.write_text("\n".join(parts))
        written.append(p)
        p = out / "reproduction.tex"
        p.write_text(f"% needs \\usepackage{{booktabs}}\n" + (latex_table(
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


def _prov_line(data: ReportData) -> str:
    p = data.provenance
    return (f"zcbench {p['zcbench_version']} (commit {p['zcbench_commit'] or 'unknown'}), built {p['built']} "
            f"from {p['results_dir']}; {p['bootstrap_resamples']} bootstrap resamples (seed {p['bootstrap_seed']})")


def _html_doc(title: str, body: str, data: ReportData) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border-bottom:1px solid #ccc;padding:3px 8px;text-align:right}caption{text-align:left;"
            "font-weight:bold}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(_prov_line(data))}</p>{body}</body></html>\n")


# --------------------------------------------------------------------------- figures
def _figure(w=7.0, h=4.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _save(fig, path_stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        p = path_stem.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=150 if fmt == "png" else None)
        out.append(p)
    return out


def _n_text(rows: pd.DataFrame) -> str:
    n = rows["n_archs"].dropna()
    seeds = rows["n_seeds"].max() if len(rows) else 0
    return f"n={int(n.max()) if len(n) else 0} archs, {int(seeds)} seed(s)"


def plot_bar(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """LPZero Fig. 1 style: rho per proxy (sorted), 95% CI whiskers, the baseline's rho as a line."""
    rows = data.table[(data.table["space"] == space) & data.table["rho"].notna()].sort_values("rho")
    if rows.empty:
        return []
    fig = _figure(7.5, max(2.5, 0.32 * len(rows) + 1.3))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    rho = rows["rho"].to_numpy(dtype=float)
    lo = rows["rho_ci_lo"].to_numpy(dtype=float)
    hi = rows["rho_ci_hi"].to_numpy(dtype=float)
    # whiskers from the CI; clipped at 0 should a CI (stratified, few archs) not contain the mean
    err = np.vstack([np.where(np.isfinite(lo), np.maximum(rho - lo, 0), 0),
                     np.where(np.isfinite(hi), np.maximum(hi - rho, 0), 0)])
    colors = ["#d9822b" if b else "#4c72b0" for b in rows["is_baseline"]]
    ax.barh(y, rho, xerr=err, color=colors, capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_yticks(y, rows["proxy"])
    base = rows[rows["is_baseline"]]
    if len(base):
        b = float(base["rho"].iloc[0])
        ax.axvline(b, color="#d9822b", ls="--", lw=1)
        ax.text(b, 1.005, f"{data.baseline} {b:.3f}", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                color="#a85f12", fontsize=8)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlim(min(-0.05, np.nanmin(np.where(np.isfinite(lo), lo, rho)) - 0.05), 1.0)
    info = data.spaces.get(space)
    ax.set_xlabel(f"Spearman ρ with {info.metric_label if info else 'ground truth'} (mean over seeds, 95% CI)")
    ax.set_title(f"{space}: proxy ranking quality ({_n_text(rows)})", pad=16)
    return _save(fig, stem, formats)


def _proxy_scores(data: ReportData, space: str, proxy: str) -> pd.DataFrame:
    s = data.scores
    d = s[(s["space"] == space) & (s["proxy"] == proxy)]
    return d


def plot_scatter(data: ReportData, space: str, proxy: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Proxy score vs ground truth (left) and rank vs rank (right), first seed."""
    info = data.spaces.get(space)
    d = _proxy_scores(data, space, proxy)
    if d.empty or info is None or info.truth is None:
        return []
    seed = int(d["seed"].min())
    d = d[(d["seed"] == seed) & np.isfinite(d["score"]) & np.isfinite(d["truth"])]
    if len(d) < 2:
        return []
    row = data.table[(data.table["space"] == space) & (data.table["proxy"] == proxy)].iloc[0]
    fig = _figure(9.5, 4.0)
    ax1, ax2 = fig.subplots(1, 2)
    x, t = d["score"].to_numpy(float), d["truth"].to_numpy(float)
    ax1.scatter(x, t, s=10, alpha=0.7, color="#4c72b0", edgecolors="none")
    if np.all(x > 0) and x.max() / x.min() > 100:
        ax1.set_xscale("log")
    if np.all(t > 0) and t.max() / t.min() > 20:
        ax1.set_yscale("log")
    unit = "parameters (count)" if row["proxy_name"].startswith("params") else "score (arbitrary units)"
    ax1.set_xlabel(f"{proxy} {unit}")
    ax1.set_ylabel(info.metric_label)
    ax1.set_title("score vs ground truth", fontsize=10)
    rs = pd.Series(x).rank().to_numpy()
    rt = pd.Series(metrics.orient(pd.Series(t), info.higher_is_better)).rank().to_numpy()
    ax2.scatter(rs, rt, s=10, alpha=0.7, color="#55a868", edgecolors="none")
    ax2.plot([1, len(d)], [1, len(d)], color="grey", lw=0.8, ls="--")
    ax2.set_xlabel(f"rank by {proxy} (1 = lowest score)")
    ax2.set_ylabel("rank by ground truth (1 = worst)")
    ax2.set_title("rank vs rank", fontsize=10)
    fig.suptitle(f"{space} · {proxy}: ρ={_f(row['rho'])}, τ={_f(row['tau'])} (n={len(d)}, seed {seed})", fontsize=11)
    return _save(fig, stem, formats)


def rank_matrix(data: ReportData, space: str) -> pd.DataFrame:
    """Architectures x proxies: each proxy's score rank averaged over its seeds, plus the oriented truth."""
    s = data.scores[data.scores["space"] == space].copy()
    if s.empty:
        return pd.DataFrame()
    s = s[np.isfinite(s["score"])]
    s["r"] = s.groupby(["proxy", "seed"])["score"].rank(pct=True)
    m = s.pivot_table(index="arch_id", columns="proxy", values="r", aggfunc="mean")
    info = data.spaces.get(space)
    if info is not None and info.oriented is not None:
        m["ground truth"] = info.oriented.reindex(m.index)
    order = [p for p in data.table[data.table["space"] == space]["proxy"] if p in m.columns]
    return m[order + (["ground truth"] if "ground truth" in m.columns else [])]


def plot_heatmap(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Spearman rank correlation between proxies (and the ground truth) on the same architectures."""
    import seaborn as sns

    m = rank_matrix(data, space)
    if m.shape[1] < 2:
        return []
    m = m.loc[:, m.nunique(dropna=True) > 1]  # constant proxies have no ranking to compare
    m = m.dropna()
    if len(m) < 3 or m.shape[1] < 2:
        return []
    corr = m.corr(method="spearman")
    k = corr.shape[0]
    fig = _figure(max(4.5, 0.45 * k + 2.5), max(3.8, 0.4 * k + 1.8))
    ax = fig.add_subplot()
    sns.heatmap(corr, ax=ax, vmin=-1, vmax=1, cmap="RdBu_r", annot=k <= 16, fmt=".2f", annot_kws={"fontsize": 7},
                square=True, cbar_kws={"label": "Spearman ρ between rankings"})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(f"{space}: agreement between proxies (n={len(m)} archs scored by all)")
    return _save(fig, stem, formats)


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Boolean mask of points not dominated by a cheaper-or-equal, better-or-equal point."""
    order = np.lexsort((-quality, cost))
    best = -np.inf
    mask = np.zeros(len(cost), dtype=bool)
    for i in order:
        if quality[i] > best:
            mask[i] = True
            best = quality[i]
    return mask


def plot_pareto(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    rows = data.table[(data.table["space"] == space) & data.table["rho"].notna() & data.table["sec_per_arch"].notna()]
    rows = rows[rows["sec_per_arch"] > 0]
    if rows.empty:
        return []
    cost, rho = rows["sec_per_arch"].to_numpy(float), rows["rho"].to_numpy(float)
    front = pareto_front(cost, rho)
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    ax.scatter(cost[~front], rho[~front], color="#8c8c8c", s=22, label="dominated")
    ax.scatter(cost[front], rho[front], color="#c44e52", s=30, label="Pareto front")
    o = np.argsort(cost[front])
    ax.step(cost[front][o], rho[front][o], where="post", color="#c44e52", lw=1)
    for c, r, name in zip(cost, rho, rows["proxy"]):
        ax.annotate(name, (c, r), fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    devs = sorted({str(d) for d in rows["device"] if not str(d).startswith("none")})
    dev = f"; device: {', '.join(devs)}" if devs else ""
    ax.set_xlabel(f"cost: median seconds per architecture (log scale{dev})")
    ax.set_ylabel("Spearman ρ (mean over seeds)")
    ax.set_title(f"{space}: cost vs ranking quality ({_n_text(rows)})")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, stem, formats)


def plot_search(data: ReportData, space: str, stem: Path, formats=FIGURE_FORMATS) -> list[Path]:
    """Best ground truth found vs architectures evaluated, mean over seeds with min-max band."""
    s = data.search[data.search["space"] == space] if len(data.search) else data.search
    if s is None or s.empty:
        return []
    info = data.spaces.get(space)
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    n_seeds = 0
    for method, g in s.groupby("method"):
        curves = g.pivot_table(index="n_evaluated", columns="seed", values="best_truth", aggfunc="last").sort_index()
        curves = curves.ffill()
        n_seeds = max(n_seeds, curves.shape[1])
        x = curves.index.to_numpy()
        ax.plot(x, curves.mean(axis=1), label=f"{method} ({curves.shape[1]} seeds)", lw=1.4, drawstyle="steps-post")
        ax.fill_between(x, curves.min(axis=1), curves.max(axis=1), alpha=0.2, step="post")
    ax.set_xlabel("architectures evaluated (count)")
    metric = str(s["metric"].dropna().iloc[0]) if "metric" in s.columns and s["metric"].notna().any() else None
    if info is not None and info.metric and metric in (None, info.metric):
        ax.set_ylabel(f"best {info.metric_label} found")
    else:
        ax.set_ylabel(f"best {metric or 'ground truth'} found")
    ax.set_title(f"{space}: search curves (mean over seeds, band = min–max; up to {n_seeds} seeds)")
    ax.legend(fontsize=8)
    return _save(fig, stem, formats)


def write_figures(data: ReportData, out: Path, formats=FIGURE_FORMATS, per_proxy: bool = True) -> list[Path]:
    """All figures into ``out/<space>/``; per-proxy scatter/rank plots into ``out/<space>/proxies/``."""
    written = []
    for sp in dict.fromkeys(data.table["space"]):
        d = out / _safe(sp)
        written += plot_bar(data, sp, d / "bar_rho", formats)
        written += plot_heatmap(data, sp, d / "heatmap", formats)
        written += plot_pareto(data, sp, d / "pareto", formats)
        written += plot_search(data, sp, d / "search", formats)
        if per_proxy:
            for p in data.table[data.table["space"] == sp]["proxy"]:
                written += plot_scatter(data, sp, p, d / "proxies" / _safe(p), formats)
    return written


# --------------------------------------------------------------------------- command line
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


def build_from_args(args) -> ReportData:
    if args.bootstrap < 0:
        raise ReportError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    return build(args.results_dir, spaces=_split(args.space), proxies=_split(args.proxy), baseline=args.baseline,
                 target=args.target, data_dir=args.data_dir, n_resamples=args.bootstrap, seed=args.bootstrap_seed,
                 all_configs=args.all_configs)


def _formats(value: str, allowed, what: str) -> tuple[str, ...]:
    fm = tuple(x.strip() for x in value.split(",") if x.strip())
    bad = [x for x in fm if x not in allowed]
    if bad:
        raise ReportError(f"unknown {what} format(s) {', '.join(bad)}; valid: {', '.join(allowed)}")
    return fm


def main_report(argv: list[str] | None = None) -> int:
    """``python -m zcbench report``: tables (md, tex, html, csv) and figures from a results dir."""
    ap = argparse.ArgumentParser(prog="python -m zcbench report", description=main_report.__doc__)
    add_common_args(ap)
    ap.add_argument("--out", default=None, help="output folder (default: <results-dir>/report)")
    ap.add_argument("--formats", default=",".join(TABLE_FORMATS), help="table formats: md,tex,html,csv")
    ap.add_argument("--figures", default=",".join(FIGURE_FORMATS), help="figure formats: png,pdf ('' = none)")
    ap.add_argument("--no-proxy-figures", action="store_true", help="skip the per-proxy scatter/rank plots")
    args = ap.parse_args(argv)
    try:
        fmts = _formats(args.formats, TABLE_FORMATS, "table")
        figs = _formats(args.figures, FIGURE_FORMATS, "figure")
        data = build_from_args(args)
    except ReportError as exc:
        print(f"zcbench report: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.results_dir) / "report"
    written = write_tables(data, out, fmts)
    if figs:
        written += write_figures(data, out / "figures", figs, per_proxy=not args.no_proxy_figures)
    for n in data.notes:
        print(f"note: {n}", file=sys.stderr)
    for sp in dict.fromkeys(data.table["space"]):
        rows = data.table[data.table["space"] == sp]
        print(f"{sp}: {len(rows)} proxies; best {rows.iloc[0]['proxy']} (ρ={_f(rows.iloc[0]['rho'])})")
    print(f"wrote {len(written)} files under {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_report())
