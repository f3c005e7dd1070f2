"""Loading for the report: score files of the results store, and each space's ground truth.

Everything is read from ``results/scores/<space>/<proxy>/<run_key>.jsonl`` (+ ``.meta.json``)
and from the space itself (``zcbench.create_space(space).stored()``); the ``summaries/``
written by ``run`` are not read.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import zcbench
from zcbench import metrics
from zcbench.config import default_space_options
from zcbench.errors import ReportError  # noqa: F401  (re-exported: the report's error)
from zcbench.store import ScoreFile, iter_score_files, safe_name

# Axis labels with units for the ground-truth columns the built-in spaces use.
METRIC_LABELS = {
    "valid_ppl": "validation perplexity",
    "test_ppl": "test perplexity",
    "glue": "GLUE average score (0-100)",
    "top1": "top-1 accuracy (%)",
}


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
                self._records = sf.read(quarantine=False)  # a report never changes the store
            else:  # a file written by another layout version: read it plainly
                self._records = _read_jsonl(self.path)
        return self._records


def _read_jsonl(path: Path) -> dict:
    out: dict = {}
    if not path.exists():
        return out
    from zcbench.store import parse_lines

    recs, bad = parse_lines(path.read_text(errors="replace"))  # malformed lines: counted, never a crash
    if bad:
        import warnings

        warnings.warn(f"{path}: {len(bad)} malformed line(s) skipped (first: line {bad[0][0]}, {bad[0][2]})")
    for rec in recs:
        try:
            rec["score"] = float(rec["score"]) if rec.get("score") is not None else math.nan
        except (TypeError, ValueError):
            rec["score"] = math.nan
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


def _component_versions(run: Run) -> tuple:
    """A set-level run's component proxy versions (from ``data.components``' ``<key>-v<version>``),
    so that e.g. ntsr fused from today's ``sept`` (v2) outranks ntsr fused from the old v1 variant."""
    comps = (run.data or {}).get("components") or {}
    return tuple(sorted(_version_key(str(v).rsplit("-v", 1)[-1]) if "-v" in str(v) else (0, 0, "")
                        for v in comps.values()))


def run_minibatch(run: Run, runs: list[Run] | None = None) -> tuple[int, int | None] | None:
    """(batch size, sequence length) a run scored at, from its stored configuration; a set-level
    run's from its components' runs (found in ``runs``); None for a data-free run."""
    d = run.data or {}
    if "batch_size" in d:
        return int(d["batch_size"]), (int(d["seq_len"]) if d.get("seq_len") is not None else None)
    comps = (run.meta or {}).get("component_runs") or {}  # component proxy -> its run key
    for comp, key in sorted(comps.items()):
        other = next((o for o in runs or () if o.space == run.space and o.proxy == comp and o.run_key == key), None)
        if other is not None:
            mb = run_minibatch(other, runs)
        else:  # not loaded (a report filtered to some proxies): the component's metadata beside the run's
            try:
                meta = json.loads((run.path.parent.parent / safe_name(comp) / f"{key}.meta.json").read_text())
            except (OSError, ValueError):
                continue
            d = meta.get("data") or {}
            mb = ((int(d["batch_size"]), int(d["seq_len"]) if d.get("seq_len") is not None else None)
                  if "batch_size" in d else None)
        if mb is not None:  # a data-free component (params) says nothing of the minibatch
            return mb
    return None


_DEFAULT_MINIBATCH: dict = {}


def default_minibatch(space_name: str, options: dict | None = None) -> tuple[int, int] | None:
    """The space's default minibatch, ``conf/space/<name>.yaml``'s batch_size x seq_len (a null
    seq_len is the space's ``default_seq_len()``, the table's tgt_len): for the LTS and FlexiBERT
    spaces the papers' minibatch. None when the space ships no batch size or cannot be built."""
    from zcbench.config import space_conf

    key = (space_name, json.dumps(options or {}, sort_keys=True, default=str))
    if key not in _DEFAULT_MINIBATCH:
        conf = space_conf(space_name)
        b, t = conf.get("batch_size"), conf.get("seq_len")
        if b and t is None:
            try:
                space = zcbench.create_space(space_name, **(options or {}))
                t = int(space.default_seq_len()) if hasattr(space, "default_seq_len") else None
            except Exception:  # noqa: BLE001 - a space that cannot be built has no default to prefer
                b = None
        _DEFAULT_MINIBATCH[key] = (int(b), int(t)) if b and t else None
    return _DEFAULT_MINIBATCH[key]


def select_configs(runs: list[Run], all_configs: bool = False) -> tuple[dict, list[str]]:
    """Group runs into rows: {(space label, proxy label): [runs, one per seed]}.

    A (space, proxy) scored under several configurations (another batch size, a bumped proxy
    version...) is reported once, with the configuration of the highest proxy version, then (for
    set-level runs) the highest component versions, then a configuration *complete at the space's
    default minibatch* (:func:`default_minibatch`, the papers' setting: batch x length equal to
    it and, in its fullest seed, as many architectures as the fullest seed of any configuration),
    then the most seeds, then the most records; the others are named in the returned notes.
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
        fullest = max(len(r.records) for rs in configs.values() for r in rs) if len(configs) > 1 else 0

        def at_default(rs):
            if len(configs) < 2:
                return 0
            mb = run_minibatch(rs[0], runs)
            return int(mb is not None and mb == default_minibatch(rs[0].space_name, rs[0].space_options)
                       and max(len(r.records) for r in rs) >= fullest)

        def rank(item):
            cid, rs = item
            return (_version_key(rs[0].version), _component_versions(rs[0]), at_default(rs),
                    len({r.seed for r in rs}), sum(len(r.records) for r in rs))

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

