"""The ``run`` job: score architectures of a space with proxies, store, correlate, print.

Size: over 500 lines because it is the run job end to end (configuration checks, architecture
selection, the scoring loop, set-level proxies, summaries, shard merge, ``run --help``).

Everything here is independent of Hydra; ``zcbench.cli`` turns the composed
config into a ``RunConfig`` and calls ``run``; ``zcbench.evaluate`` calls the same
``run_job`` and returns its per-architecture frame.

Where scores go (docs/quickstart.md): ``RunConfig.results_dir=None`` keeps them in
memory (``zcbench.evaluate``'s default); the CLI's default is the user folder
``user_results_dir()`` (``$ZCBENCH_HOME/results``, default ``~/.local/share/zcbench/results``),
never the repository; the committed ``results/`` are written only when asked for
(``official=true`` or an explicit ``results_dir=``), see ``official_results_dir()``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

import zcbench
from zcbench import metrics
from zcbench.engine import release_memory, score_arch
from zcbench.proxy import Proxy
from zcbench.registry import create_space, get_proxy
from zcbench.store import ScoreFile, atomic_write_text, run_key, summary_path, write_summary

# Proxies whose needs are within this set use no minibatch, so their scores do not
# depend on batch size, sequence length, corpus or device.
DATA_FREE_NEEDS = frozenset({"arch", "weights"})


from zcbench.errors import ConfigError  # noqa: E402,F401  (defined in zcbench.errors; importable here as before)


@dataclass
class RunConfig:
    space: str
    proxies: list[str]
    seed: int = 0
    batch_size: int = 16
    seq_len: int = 128
    n_archs: int | None = None
    target: str | None = None
    device: str = "cpu"
    data_dir: str | None = None
    results_dir: str | None = None  # None: scores stay in memory (see the module docstring)
    shard: str | None = None  # "i/n"
    space_options: dict = field(default_factory=dict)
    proxy_options: dict = field(default_factory=dict)
    bootstrap: int = 1000
    progress: bool = True
    echo: bool = True  # print one correlation line per proxy (the CLI); zcbench.evaluate is quiet
    replace_summary: bool = False  # let a narrower run replace a stored summary (zcbench.store.write_summary)
    allow_modified_data: bool = False  # score on ground-truth files whose sha256 differs from the manifest
    hvp_chunk: int | None = None  # GraSP's Hessian-vector product over chunks of K examples (engine.score_arch)


def user_results_dir() -> Path:
    """The default results folder of CLI runs: ``$ZCBENCH_HOME/results``, where ``ZCBENCH_HOME``
    defaults to ``$XDG_DATA_HOME/zcbench`` (``~/.local/share/zcbench``). Never inside the repository."""
    home = os.environ.get("ZCBENCH_HOME")
    if not home:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        home = os.path.join(base, "zcbench")
    return Path(home).expanduser().resolve() / "results"


def official_results_dir() -> Path:
    """The committed results store ``<checkout>/results`` (written only with ``official=true``)."""
    root = Path(zcbench.__file__).resolve().parents[1]
    if not ((root / "pyproject.toml").is_file() and (root / "results").is_dir()):
        raise ConfigError("official=true writes the committed results/ of a source checkout, and this "
                          f"installation ({root}) is not one; pass results_dir=DIR instead")
    return root / "results"


class MemoryScores:
    """The in-memory counterpart of ``store.ScoreFile`` (same run key, same records, nothing on disk)."""

    path = None

    def __init__(self, space: str, proxy: str, seed: int, data_cfg: dict, proxy_version: str):
        self.key = run_key(seed, data_cfg, proxy_version)
        self.meta = {"space": space, "proxy": proxy, "seed": seed, "data": data_cfg,
                     "proxy_version": proxy_version, "run_key": self.key}
        self.records: dict[str, dict] = {}

    def ensure_meta(self, extra: dict | None = None) -> None:
        self.meta.update(extra or {})

    def read(self) -> dict[str, dict]:
        return dict(self.records)

    def append(self, record: dict) -> None:
        rec = dict(record)
        rec["score"] = float(rec["score"]) if rec.get("score") is not None else math.nan
        self.records.setdefault(rec["arch_id"], rec)

    def replace(self, records: list[dict]) -> None:
        self.records = {}
        for r in records:
            self.append(r)


def open_scores(rc: "RunConfig", space: str, proxy: str, seed: int, data_cfg: dict, version: str):
    """A ``ScoreFile`` under ``rc.results_dir``, or ``MemoryScores`` when it is None."""
    if rc.results_dir is None:
        return MemoryScores(space, proxy, seed, data_cfg, version)
    return ScoreFile(rc.results_dir, space, proxy, seed, data_cfg, version)


class FunctionProxy(Proxy):
    """A plain Python function ``fn(ctx) -> float`` used as a proxy without registering it.

    ``ctx`` is the engine's ``Context``. What the engine computes for it is read from the
    function's attributes, when set: ``needs`` (default: a forward and backward pass of the
    minibatch, so ``ctx.model``, ``ctx.output`` and ``ctx.grad(p)`` are available), ``taps``,
    ``tap_grads``, ``citation``. Its version hashes the function's source, so an edited
    function never resumes the old one's stored scores.
    """

    def __init__(self, fn, name: str | None = None):
        super().__init__()
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        if self.name == "<lambda>":
            self.name = "lambda"
        self.needs = frozenset(getattr(fn, "needs", {"forward", "backward"}))
        self.taps = frozenset(getattr(fn, "taps", ()))
        self.tap_grads = frozenset(getattr(fn, "tap_grads", ()))
        self.citation = getattr(fn, "citation", "")
        try:
            src = inspect.getsource(fn).encode()
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            src = code.co_code if code is not None else repr(fn).encode()
        self.version = "fn" + hashlib.sha1(src).hexdigest()[:8]

    def score(self, ctx) -> float:
        return self.fn(ctx)


def coerce_proxy(obj, options: dict | None = None) -> Proxy:
    """A proxy from a registered name, a ``Proxy`` instance, a ``Proxy`` subclass or a function."""
    options = options or {}
    if isinstance(obj, str):
        return get_proxy(obj, **options)
    if isinstance(obj, Proxy):
        if options:
            raise ConfigError(f"proxy {obj.name}: pass a Proxy instance's options to its constructor")
        return obj
    if isinstance(obj, type) and issubclass(obj, Proxy):
        p = obj(**options)
        if not p.name:
            p.name = obj.__name__
        return p
    if callable(obj):
        if options:
            raise ConfigError(f"proxy {getattr(obj, '__name__', obj)!r}: a function proxy takes no options")
        return FunctionProxy(obj)
    raise ConfigError("a proxy is a registered name, a zcbench Proxy class or instance, or a function "
                      f"ctx -> float; got {type(obj).__name__}")


def proxy_label(obj) -> str:
    """The name under which ``RunConfig.proxy_options`` holds the options of a ``proxies`` entry."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Proxy) or (isinstance(obj, type) and issubclass(obj, Proxy)):
        return obj.name or getattr(obj, "__name__", type(obj).__name__)
    return getattr(obj, "__name__", type(obj).__name__)


from zcbench.config import parse_shard  # noqa: E402,F401  (``i/n`` -> (i, n); importable from here as before)


def check_config(rc: RunConfig) -> None:
    def positive_int(key, v, allow_none=False):
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{key} must be a positive integer, got {v!r}")

    positive_int("batch_size", rc.batch_size)
    positive_int("seq_len", rc.seq_len, allow_none=True)  # None: the space's default_seq_len()
    positive_int("n_archs", rc.n_archs, allow_none=True)
    positive_int("hvp_chunk", rc.hvp_chunk, allow_none=True)
    if isinstance(rc.seed, bool) or not isinstance(rc.seed, int) or rc.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {rc.seed!r}")
    if isinstance(rc.bootstrap, bool) or not isinstance(rc.bootstrap, int) or rc.bootstrap < 0:
        raise ConfigError(f"bootstrap must be a non-negative integer (resamples), got {rc.bootstrap!r}")
    if not rc.proxies:
        raise ConfigError("proxy must name at least one proxy")
    try:
        dev = torch.device(rc.device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be a torch device such as cpu or cuda:0, got {rc.device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={rc.device} but no CUDA device is available here; use device=cpu")
    parse_shard(rc.shard)


def select_archs(space, n_archs: int | None, seed: int, shard=None):
    """The architectures of this run: all stored, or a seeded sample of ``n_archs``."""
    stored = sorted(space.stored(), key=lambda a: a.id)
    if stored:
        if n_archs is not None and n_archs > len(stored):  # a printed cap, never a silent one
            _log(f"note: n_archs={n_archs} but space {space.name} stores {len(stored)} architectures; "
                 f"scoring all {len(stored)}")
        archs = stored if n_archs is None or n_archs >= len(stored) else random.Random(seed).sample(stored, n_archs)
    else:
        if n_archs is None:
            raise ConfigError(f"space {space.name} has no stored architectures; set n_archs=K to score K sampled ones")
        rng = random.Random(seed)
        archs, seen = [], set()
        while len(archs) < n_archs:
            a = space.sample(rng)
            if a.id not in seen:
                seen.add(a.id)
                archs.append(a)
    sh = parse_shard(shard)
    if sh:
        i, n = sh
        archs = archs[i::n]
    return archs


def scoring_order(space, archs: list, shard) -> list:
    """The order in which one shard scores ``archs`` (its membership is unchanged): with two or
    more shards, by model size (parameters of the built model, counted on the meta device) —
    even shards largest first, odd shards smallest first, and from the third shard on each pair
    of shards starts further into its list — so that shards running side by side do not meet
    their largest networks at the same time (peak memory of a two-worker sweep: the largest
    network beside a small one, not the two largest together; docs/performance.md section 6).
    Without shards, or when a model cannot be built on the meta device, the order is kept."""
    sh = parse_shard(shard)
    if not sh or sh[1] < 2 or len(archs) < 2:
        return list(archs)
    i, n = sh
    sizes = {}
    try:
        for a in archs:
            sizes[a.id] = space.model_params(a)
    except Exception as exc:  # noqa: BLE001 - the order is an optimisation: keep the stored one
        _log(f"shard {i}/{n}: models not countable on the meta device ({type(exc).__name__}); "
             "scoring in ID order")
        return list(archs)
    order = sorted(archs, key=lambda a: (-sizes[a.id], a.id))
    if i % 2:
        order.reverse()
    k = (i // 2) * len(order) // -(-n // 2)  # pairs of shards beyond the first start further in
    _log(f"shard {i}/{n}: {len(order)} architectures in size order, {'smallest' if i % 2 else 'largest'} first"
         + (f" from position {k + 1}" if k else ""))
    return order[k:] + order[:k]


def data_config(rc: RunConfig, space, proxy, batch_info: dict | None) -> dict:
    cfg = {"space_options": rc.space_options}
    if not set(proxy.needs) <= {"arch"}:
        cfg["device"] = torch.device(rc.device).type
    if not set(proxy.needs) <= DATA_FREE_NEEDS:
        cfg.update(batch_size=rc.batch_size, seq_len=rc.seq_len, batch=batch_info or {})
    opts = proxy.identity_options if hasattr(proxy, "identity_options") else getattr(proxy, "options", None)
    if opts:
        cfg["proxy_options"] = opts
    return cfg


# The code's commit for the score files' provenance: zcbench.provenance (importable from here as before).
from zcbench.provenance import source_commit  # noqa: E402,F401


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def expand_proxies(rc: RunConfig):
    """Requested proxies, and the per-arch proxies to score (set proxies' components added)."""
    from zcbench.proxy import SetProxy

    requested = [coerce_proxy(p, rc.proxy_options.get(proxy_label(p), {})) for p in rc.proxies]
    names = [p.name for p in requested]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"two proxies of this run share the name {dup[0]!r}; give one another name")
    per_arch: dict[str, object] = {}
    for p in requested:
        if isinstance(p, SetProxy):
            for c in p.components:
                if c not in per_arch:
                    per_arch[c] = get_proxy(c, **rc.proxy_options.get(c, {}))
        elif p.name not in per_arch:
            per_arch[p.name] = p
    sets = [p for p in requested if isinstance(p, SetProxy)]
    return list(per_arch.values()), sets


@dataclass
class JobResult:
    summaries: dict  # proxy name -> summary dict (as written to summaries/)
    frame: pd.DataFrame  # per architecture: key, one score column per proxy, the ground truth


FALLBACK_SEQ_LEN = RunConfig.seq_len  # 128


def resolve_seq_len(rc: RunConfig, space) -> RunConfig:
    """``seq_len=None`` (the LTS spaces' conf default) becomes the space's ``default_seq_len()``:
    the length its table's networks were trained on (``tgt_len``)."""
    if rc.seq_len is not None:
        return rc
    import dataclasses

    default = getattr(space, "default_seq_len", None)
    # a space without a table length (plug-ins without a conf file) keeps RunConfig's historical
    # default of 128, so its run keys are the ones earlier versions wrote
    return dataclasses.replace(rc, seq_len=int(default()) if default is not None else FALLBACK_SEQ_LEN)


def check_not_all_failed(space, archs, proxies, done) -> None:
    """A run in which every architecture failed for a proxy stops with one line (no n=0 summary)."""
    for p in proxies:
        recs = [done[p.name].get(a.id) for a in archs]
        if archs and all(r is not None and r.get("status") == "error" for r in recs):
            msg = " ".join(str(recs[0].get("message") or "").split())[:300]
            raise ConfigError(f"{space.name}/{p.name}: all {len(archs)} architectures failed; first error: {msg}")


def run(rc: RunConfig, mode: str = "run") -> dict:
    """Score (mode "run") or only combine what is stored (mode "merge"); store, correlate.

    Returns {proxy name: summary dict}. In merge mode the shard setting is ignored
    and every architecture of the selection must already have a score.
    """
    return run_job(rc, mode).summaries


def run_job(rc: RunConfig, mode: str = "run") -> JobResult:
    """``run``, returning the per-architecture frame too (``zcbench.evaluate``)."""
    check_config(rc)
    from zcbench.fetch import allow_modified_data

    allow_modified_data(getattr(rc, "allow_modified_data", False))  # verify-on-read of pinned data files
    if "table" in rc.space_options:  # a project-built ground-truth table (docs/groundtruth.md)
        from zcbench.groundtruth import table_run_config

        rc = table_run_config(rc)
    space = create_space(rc.space, data_dir=rc.data_dir, target=rc.target, **rc.space_options)
    rc = resolve_seq_len(rc, space)
    proxies, set_proxies = expand_proxies(rc)
    shard = rc.shard if mode == "run" else None
    archs = select_archs(space, rc.n_archs, rc.seed, shard)

    batch_info = None
    if any(not set(p.needs) <= DATA_FREE_NEEDS for p in proxies):
        batch_info = space.make_batch(rc.batch_size, rc.seq_len, rc.seed).info
    files = {}
    for p in proxies:
        f = open_scores(rc, space.name, p.name, rc.seed, data_config(rc, space, p, batch_info), p.version)
        f.ensure_meta({"zcbench_version": zcbench.__version__, "zcbench_commit": source_commit(),
                       "target": getattr(space, "metric", None), "citation": p.citation})
        files[p.name] = f
    done = {name: f.read() for name, f in files.items()}
    todo = [a for a in archs if any(a.id not in done[p.name] for p in proxies)]
    if mode != "merge" and any(set(p.needs) - {"arch"} for p in proxies):  # memory matters: models are built
        todo = scoring_order(space, todo, shard)
    if mode == "merge":
        if todo:
            raise ConfigError(f"{len(todo)} of {len(archs)} architectures have no score yet for "
                              f"{', '.join(p.name for p in proxies)} (seed {rc.seed}); run the missing shards first")
    else:
        _score(space, archs, todo, proxies, files, done, rc)
        check_not_all_failed(space, archs, proxies, done)

    summaries = {p.name: summarize(space, p.name, files[p.name], archs, rc) for p in proxies}
    for sp in set_proxies:
        if shard is not None:
            _log(f"{sp.name}: a set-level proxy; combine the shards with `python -m zcbench merge` to fuse it")
            continue
        f = _fuse(space, sp, archs, files, rc)
        files[sp.name] = f
        summaries[sp.name] = summarize(space, sp.name, f, archs, rc)
    return JobResult(summaries, _frame(space, archs, files, summaries, rc))


def _frame(space, archs, files: dict, summaries: dict, rc: RunConfig) -> pd.DataFrame:
    """Per-architecture scores (NaN where a proxy gave none; statuses in ``.attrs``) and raw ground truth."""
    recs = {name: files[name].read() for name in summaries}
    rows = {}
    for a in archs:
        row = {"key": a.key}
        for name in summaries:
            r = recs[name].get(a.id)
            row[name] = float(r["score"]) if r is not None else math.nan
        for m in (space.metrics or (space.metric,)):
            if m in a.truth:
                row[m] = float(a.truth[m])
        rows[a.id] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "arch_id"
    df.attrs.update({
        "space": space.name, "seed": rc.seed, "metric": space.metric, "higher_is_better": space.higher_is_better,
        "n_archs": len(archs), "results_dir": str(rc.results_dir) if rc.results_dir is not None else None,
        "correlations": {n: s["correlation"] for n, s in summaries.items()},
        "status_counts": {n: s["status_counts"] for n, s in summaries.items()},
        "run_keys": {n: s["run_key"] for n, s in summaries.items()},
    })
    return df


def _score(space, archs, todo, proxies, files, done, rc: RunConfig) -> None:
    skipped = len(archs) - len(todo)
    if skipped:
        _log(f"resuming: {skipped} of {len(archs)} architectures already scored for every requested proxy")
    from tqdm import tqdm

    bar = tqdm(todo, desc=f"{space.name} × {','.join(p.name for p in proxies)}", unit="arch",
               disable=not rc.progress, file=sys.stderr, dynamic_ncols=True)
    for arch in bar:
        need = [p for p in proxies if arch.id not in done[p.name]]
        t0 = time.perf_counter()
        results = score_arch(space, arch, need, seed=rc.seed, batch_size=rc.batch_size, seq_len=rc.seq_len,
                             device=rc.device, hvp_chunk=rc.hvp_chunk)
        wall = time.perf_counter() - t0
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        for p in need:
            r = results[p.name]
            rec = {"arch_id": arch.id, "key": arch.key, "score": r.value, "status": r.status,
                   "seconds": round(r.seconds, 6), "pass_seconds": round(wall, 6), "message": r.message, "time": stamp}
            if rc.hvp_chunk is not None and "hvp" in p.needs:  # how it was computed (same value to round-off)
                rec["hvp_chunk"] = rc.hvp_chunk
            files[p.name].append(rec)
            done[p.name][arch.id] = rec
        del results
        release_memory()  # the network's freed pages back to the OS before the next one


def seed_free_key(data_cfg: dict, proxy_version: str) -> str:
    """A run's configuration without its seed (the minibatch's ``batch.seed`` dropped) + proxy
    version: equal for the seeds of one configuration, so a set-level proxy's run groups its seeds."""
    data = json.loads(json.dumps(data_cfg))
    if isinstance(data.get("batch"), dict):
        data["batch"].pop("seed", None)
    blob = json.dumps({"data": data, "v": str(proxy_version)}, sort_keys=True)
    return f"{hashlib.sha1(blob.encode()).hexdigest()[:10]}-v{proxy_version}"


def set_data_config(space_options: dict, components: dict, n_archs: int) -> dict:
    """Data config of a set-level proxy's run: the space options (a table run is filed under its
    table), each component's seed-free configuration (``components``: name -> (data config,
    version)) and the size of the set the ranks were taken in. Like a per-architecture run's,
    it holds no seed: the seeds of one configuration (each ranking its seed's set: all stored
    architectures, or the seeded sample of ``n_archs``) share it; the hash of the set's IDs is
    kept in the metadata (``archs``)."""
    return {"space_options": space_options,
            "components": {c: seed_free_key(cfg, v) for c, (cfg, v) in components.items()},
            "n_archs": int(n_archs)}


def arch_set_hash(ids) -> str:
    return hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()[:10]


def _fuse(space, sp, archs, files, rc: RunConfig) -> ScoreFile:
    """Compute a set-level proxy from its stored components; rewrite its score file whole."""
    ids = [a.id for a in archs]
    recs = {c: files[c].read() for c in sp.components}
    comp = pd.DataFrame({c: {i: recs[c][i]["score"] for i in ids} for c in sp.components}, dtype=float)
    fused = sp.combine(comp)
    data_cfg = set_data_config(rc.space_options,
                               {c: (files[c].meta["data"], files[c].meta["proxy_version"]) for c in sp.components},
                               len(ids))
    f = open_scores(rc, space.name, sp.name, rc.seed, data_cfg, sp.version)
    f.ensure_meta({"zcbench_version": zcbench.__version__, "zcbench_commit": source_commit(),
                   "citation": sp.citation, "set_level": True,
                   "component_runs": {c: files[c].key for c in sp.components}, "archs": arch_set_hash(ids)})
    keys = {a.id: a.key for a in archs}
    lines = []
    for i in ids:
        v = float(fused[i])
        status = "ok" if math.isfinite(v) else "nan"
        secs = sum(recs[c][i]["seconds"] for c in sp.components)
        lines.append(json.dumps({"arch_id": i, "key": keys[i], "score": v if math.isfinite(v) else str(v),
                                 "status": status, "seconds": round(secs, 6), "message": ""}, sort_keys=True))
    if isinstance(f, MemoryScores):
        f.replace([json.loads(line) for line in lines])
    else:
        atomic_write_text(f.path, "\n".join(lines) + "\n")
    return f


def summarize(space, proxy_name: str, score_file: ScoreFile, archs, rc: RunConfig) -> dict:
    recs = score_file.read()
    ids = [a.id for a in archs if a.id in recs]
    scores = pd.Series({i: recs[i]["score"] for i in ids}, dtype=float)
    statuses = pd.Series({i: recs[i]["status"] for i in ids}, dtype=object)
    counts = statuses.value_counts().to_dict()
    summary = {"space": space.name, "proxy": proxy_name, "seed": rc.seed, "run_key": score_file.key,
               "n_archs": len(archs), "n_scored": len(ids), "status_counts": counts,
               "seconds_per_arch": float(pd.Series([recs[i]["seconds"] for i in ids]).mean()) if ids else math.nan,
               "metric": space.metric, "higher_is_better": space.higher_is_better,
               "zcbench_version": zcbench.__version__, "shard": rc.shard}
    have_truth = [a for a in archs if a.id in recs and space.metric in a.truth]
    if len(have_truth) >= 2:
        truth = pd.Series({a.id: space.truth(a) for a in have_truth}, dtype=float)
        truth = metrics.orient(truth, space.higher_is_better)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            corr = metrics.correlate(scores, truth, n_resamples=rc.bootstrap, seed=rc.seed,
                                     label=f"{space.name}/{proxy_name}")
        for w in caught:
            _log(f"WARNING: {w.message}")
        summary["correlation"] = corr.as_dict()
        c = corr
        def ci(lo_hi):
            return f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if all(map(math.isfinite, lo_hi)) else ""

        line = (f"{space.name} | {proxy_name} | seed {rc.seed} | n={c.n}"
                + (f" (+{c.n_excluded} NaN/inf excluded)" if c.n_excluded else "")
                + f" | Kendall tau = {c.kendall_tau:.3f}{ci(c.tau_ci)} | Spearman rho = {c.spearman_rho:.3f}{ci(c.rho_ci)}"
                + f" | vs {space.metric} ({'higher' if space.higher_is_better else 'lower'} is better)")
        if c.constant:
            line += " | CONSTANT scores: no ranking"
    else:
        summary["correlation"] = None
        line = (f"{space.name} | {proxy_name} | seed {rc.seed} | n={len(ids)} scored | "
                + ("no ground truth for these architectures" if not have_truth else
                   f"only {len(have_truth)} architecture with ground truth: a correlation needs at least 2"))
    if rc.echo:
        print(line, flush=True)
    no_truth = len(ids) - len(have_truth)
    if no_truth and len(have_truth) >= 2:  # e.g. a truncated ppl_summary.yaml: say so, never shrink n silently
        _log(f"WARNING: {space.name}/{proxy_name}: {no_truth} of {len(ids)} scored architectures have no "
             f"{space.metric} in the ground truth; n={len(have_truth)}")
    summary["n_without_truth"] = no_truth
    from zcbench.fetch import modified_files

    if modified_files():  # allow_modified_data=true: the provenance says which files differed
        summary["modified_data"] = modified_files()
        _log(f"WARNING: ground truth read from {len(modified_files())} modified data file(s) "
             f"(allow_modified_data=true): {modified_files()[0]}")
    if rc.results_dir is None:  # in memory (zcbench.evaluate): nothing to write
        return summary
    note = write_summary(summary_path(rc.results_dir, space.name, proxy_name, score_file.key), summary,
                         ids, replace=getattr(rc, "replace_summary", False))
    if note not in ("written", "unchanged"):
        _log(f"note: {note}")
    return summary


# ---- command-line helpers of ``python -m zcbench run`` (used by zcbench.cli) -------------------
def results_overrides(argv: list[str]) -> list[str]:
    """Make the results folder explicit before Hydra composes: ``official=true`` means the committed
    ``results/`` (``official_results_dir``); no ``results_dir=`` means ``user_results_dir()``."""
    import re

    given = [a for a in argv if re.match(r"^\+{0,2}results_dir=", a)]
    official = [a for a in argv if re.match(r"^\+{0,2}official=", a)]
    on = any(a.split("=", 1)[1].strip().lower() in ("true", "1", "yes") for a in official)
    if on and given:
        raise ConfigError("official=true writes the committed results/; leave results_dir out (or drop official)")
    if on:
        return argv + [f"results_dir={official_results_dir()}"]
    if not given:
        return argv + [f"results_dir={user_results_dir()}"]
    return argv


def run_help(conf_path: str | None = None) -> str:
    """``python -m zcbench run --help``: one line per key of ``conf/config.yaml`` (its own comments)."""
    import re

    if conf_path is None:
        from zcbench.config import conf_dir

        conf_path = str(Path(conf_dir()) / "config.yaml")
    from zcbench.registry import list_proxies, list_spaces

    lines = ["usage: python -m zcbench run [key=value ...]    (Hydra overrides; -m key=a,b sweeps)", "",
             "keys (default, then meaning):",
             f"  {'space=NAME':26s} search space: {', '.join(list_spaces())}",
             f"  {'proxy=NAME|[A,B]':26s} proxies to score (`python -m zcbench list proxies`)"]
    top = re.compile(r"^(\w+):\s*(.*?)\s*(?:#\s*(.*))?$")
    for raw in Path(conf_path).read_text().splitlines():
        m = top.match(raw)
        if not m or m.group(1) in ("defaults", "hydra", "space", "proxies"):
            continue
        key, val, comment = m.group(1), m.group(2), (m.group(3) or "").strip()
        lines.append(f"  {key + '=' + val:26s} {comment}".rstrip())
    lines += ["", f"Results go to {user_results_dir()} unless results_dir=DIR or official=true (the committed",
              "results/ of a checkout); a rerun resumes there. More: docs/quickstart.md, docs/architecture.md."]
    return "\n".join(lines)
