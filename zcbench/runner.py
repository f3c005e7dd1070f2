"""The ``run`` job: score architectures of a space with proxies, store, correlate, print.

Everything here is independent of Hydra; ``zcbench.cli`` turns the composed
config into a ``RunConfig`` and calls ``run``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import random
import sys
import time
import warnings
from dataclasses import dataclass, field

import pandas as pd
import torch

import zcbench
from zcbench import metrics
from zcbench.engine import score_arch
from zcbench.registry import create_space, get_proxy
from zcbench.store import ScoreFile, atomic_write_text, summary_path

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
    results_dir: str = "results"
    shard: str | None = None  # "i/n"
    space_options: dict = field(default_factory=dict)
    proxy_options: dict = field(default_factory=dict)
    bootstrap: int = 1000
    progress: bool = True


def parse_shard(shard) -> tuple[int, int] | None:
    if shard in (None, "", "null"):
        return None
    try:
        i, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ConfigError(f"shard must look like i/n (e.g. 0/3), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard must satisfy 0 <= i < n, got {shard!r}")
    return i, n


def check_config(rc: RunConfig) -> None:
    def positive_int(key, v, allow_none=False):
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{key} must be a positive integer, got {v!r}")

    positive_int("batch_size", rc.batch_size)
    positive_int("seq_len", rc.seq_len)
    positive_int("n_archs", rc.n_archs, allow_none=True)
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


def source_commit() -> str | None:
    """The git commit of the zcbench source tree that scores, when run from a checkout (provenance)."""
    import subprocess
    from pathlib import Path

    root = Path(zcbench.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() + ("+dirty" if dirty else "")) if out.returncode == 0 else None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _expand(rc: RunConfig):
    """Requested proxies, and the per-arch proxies to score (set proxies' components added)."""
    from zcbench.proxy import SetProxy

    requested = [get_proxy(name, **rc.proxy_options.get(name, {})) for name in rc.proxies]
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


def run(rc: RunConfig, mode: str = "run") -> dict:
    """Score (mode "run") or only combine what is stored (mode "merge"); store, correlate.

    Returns {proxy name: summary dict}. In merge mode the shard setting is ignored
    and every architecture of the selection must already have a score.
    """
    check_config(rc)
    if "table" in rc.space_options:  # a project-built ground-truth table (docs/groundtruth.md)
        from zcbench.groundtruth import table_run_config

        rc = table_run_config(rc)
    space = create_space(rc.space, data_dir=rc.data_dir, target=rc.target, **rc.space_options)
    proxies, set_proxies = _expand(rc)
    shard = rc.shard if mode == "run" else None
    archs = select_archs(space, rc.n_archs, rc.seed, shard)

    batch_info = None
    if any(not set(p.needs) <= DATA_FREE_NEEDS for p in proxies):
        batch_info = space.make_batch(rc.batch_size, rc.seq_len, rc.seed).info
    files = {}
    for p in proxies:
        f = ScoreFile(rc.results_dir, space.name, p.name, rc.seed, data_config(rc, space, p, batch_info), p.version)
        f.ensure_meta({"zcbench_version": zcbench.__version__, "zcbench_commit": source_commit(),
                       "target": getattr(space, "metric", None), "citation": p.citation})
        files[p.name] = f
    done = {name: f.read() for name, f in files.items()}
    todo = [a for a in archs if any(a.id not in done[p.name] for p in proxies)]
    if mode == "merge":
        if todo:
            raise ConfigError(f"{len(todo)} of {len(archs)} architectures have no score yet for "
                              f"{', '.join(p.name for p in proxies)} (seed {rc.seed}); run the missing shards first")
    else:
        _score(space, archs, todo, proxies, files, done, rc)

    summaries = {p.name: summarize(space, p.name, files[p.name], archs, rc) for p in proxies}
    for sp in set_proxies:
        if shard is not None:
            _log(f"{sp.name}: a set-level proxy; combine the shards with `python -m zcbench merge` to fuse it")
            continue
        f = _fuse(space, sp, archs, files, rc)
        summaries[sp.name] = summarize(space, sp.name, f, archs, rc)
    return summaries


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
                             device=rc.device)
        wall = time.perf_counter() - t0
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        for p in need:
            r = results[p.name]
            rec = {"arch_id": arch.id, "key": arch.key, "score": r.value, "status": r.status,
                   "seconds": round(r.seconds, 6), "pass_seconds": round(wall, 6), "message": r.message, "time": stamp}
            files[p.name].append(rec)
            done[p.name][arch.id] = rec


def _fuse(space, sp, archs, files, rc: RunConfig) -> ScoreFile:
    """Compute a set-level proxy from its stored components; rewrite its score file whole."""
    import hashlib

    ids = [a.id for a in archs]
    recs = {c: files[c].read() for c in sp.components}
    comp = pd.DataFrame({c: {i: recs[c][i]["score"] for i in ids} for c in sp.components}, dtype=float)
    fused = sp.combine(comp)
    data_cfg = {"components": {c: files[c].key for c in sp.components},
                "archs": hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()[:10]}
    f = ScoreFile(rc.results_dir, space.name, sp.name, rc.seed, data_cfg, sp.version)
    f.ensure_meta({"zcbench_version": zcbench.__version__, "zcbench_commit": source_commit(),
                   "citation": sp.citation, "set_level": True})
    keys = {a.id: a.key for a in archs}
    lines = []
    for i in ids:
        v = float(fused[i])
        status = "ok" if math.isfinite(v) else "nan"
        secs = sum(recs[c][i]["seconds"] for c in sp.components)
        lines.append(json.dumps({"arch_id": i, "key": keys[i], "score": v if math.isfinite(v) else str(v),
                                 "status": status, "seconds": round(secs, 6), "message": ""}, sort_keys=True))
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
    print(line, flush=True)
    atomic_write_text(summary_path(rc.results_dir, space.name, proxy_name, score_file.key),
                      json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary
