"""Project-built ground-truth tables: ``python -m zcbench groundtruth build|ceiling ...``.

``build`` samples ``n_archs`` architectures of a space (seeded by ``sample_seed``;
a larger ``n_archs`` later extends the same sample), trains each under a recipe
(``conf/recipe/<name>.yaml``, training code in ``zcbench.recipes``) once per
training seed, and appends one row per (arch, seed) to a table folder::

    results/groundtruth/<table>/table.yaml    header: space, space options, recipe, metric,
                                              command, machine, commit, dates, summary
    results/groundtruth/<table>/table.jsonl   one JSON row per (arch, seed)
    results/groundtruth/<table>/builds.jsonl  one line per build invocation

Resumable and shardable: a (arch, seed) already in ``table.jsonl`` is skipped;
each row is appended with one ``write`` under an exclusive ``flock`` and fsynced
before the next training starts (the scheme of ``zcbench.store``), so a kill
loses at most the training in flight and shards (``shard=i/n``, e.g. through the
Hydra joblib launcher) append to the same file safely.

The *noise ceiling* of a table is the rank agreement of two training seeds of the
same architectures (Spearman rho / Kendall tau, bootstrap CI): no proxy can be
expected to rank the architectures more consistently than training itself does.

Scoring proxies against a table: ``python -m zcbench run proxy=... space=<s> table=<name or path>``
(the runner reapplies the table's space options; see ``table_run_config``).
Format and recipes: docs/groundtruth.md.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import platform
import random
import socket
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from zcbench import metrics
from zcbench.data import DataError, GroundTruthTable, read_groundtruth_table, resolve_table
from zcbench.errors import BuildError, ConfigError
from zcbench.provenance import source_commit
from zcbench.store import atomic_write_text

USAGE = """usage:
  python -m zcbench groundtruth build [hydra overrides]     e.g. recipe=lm_wt2 n_archs=100 seeds=[0,1]
  python -m zcbench groundtruth ceiling table=<name or path> [results_dir=results] [bootstrap=1000]"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _json_value(v):
    return str(v) if isinstance(v, float) and not math.isfinite(v) else v


def append_row(path: Path, record: dict) -> None:
    """One JSON line, written with a single ``write`` under ``flock`` and fsynced (as ``ScoreFile.append``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps({k: _json_value(v) for k, v in record.items()}, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class _Lock:
    """Exclusive lock on ``<folder>/.lock`` around header reads/writes of concurrent shards."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / ".lock"

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def done_keys(folder: Path) -> set[tuple[str, int]]:
    """(arch_id, seed) of every finished row (a torn last line, from a machine crash, is ignored)."""
    path = folder / "table.jsonl"
    out = set()
    if path.exists():
        for line in path.read_text().split("\n"):
            try:
                row = json.loads(line)
                out.add((row["arch_id"], int(row["seed"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return out


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": socket.gethostname(), "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": str(torch.__version__), "threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------
# noise ceiling
# ---------------------------------------------------------------------------
def per_seed_frame(table: GroundTruthTable) -> pd.DataFrame:
    """arch_id x seed matrix of the metric (NaN where a seed is missing)."""
    return pd.DataFrame({a.arch_id: a.seeds for a in table.archs}).T.sort_index(axis=1)


def noise_ceiling(values: pd.DataFrame, higher_is_better: bool, n_resamples: int = 1000, seed: int = 0) -> dict | None:
    """Seed-vs-seed rank agreement over the architectures trained with both seeds.

    ``values``: arch x seed. With more than two seed columns the two seeds with the most
    architectures in common are compared. Returns None with fewer than 3 such architectures.
    """
    cols = list(values.columns)
    best = None
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            n = int(values[[a, b]].dropna().shape[0])
            if best is None or n > best[0]:
                best = (n, a, b)
    if best is None or best[0] < 3:
        return None
    _, a, b = best
    d = values[[a, b]].dropna()
    x, y = metrics.orient(d[a], higher_is_better), metrics.orient(d[b], higher_is_better)
    c = metrics.correlate(x, y, n_resamples=n_resamples, seed=seed, label=f"seed {a} vs seed {b}")
    # The truth proxies are scored against is the mean of k seeds, more reliable than one seed:
    # the Spearman-Brown projection k r / (1 + (k - 1) r) estimates how well two independent
    # k-seed means would agree (an approximation for rank correlations; docs/groundtruth.md).
    k = int(values.notna().sum(axis=1).median())
    r = c.spearman_rho
    sb = k * r / (1 + (k - 1) * r) if math.isfinite(r) and r > 0 else math.nan
    return {"seed_a": int(a), "seed_b": int(b), "n": c.n, "n_excluded": c.n_excluded, "rho": r,
            "tau": c.kendall_tau, "rho_ci": list(c.rho_ci), "tau_ci": list(c.tau_ci),
            "k_seeds": k, "rho_mean_of_k": sb}


def table_ceiling(table: GroundTruthTable, n_resamples: int = 1000, seed: int = 0) -> dict | None:
    return noise_ceiling(per_seed_frame(table), table.higher_is_better, n_resamples, seed)


def ceiling_line(name: str, c: dict | None) -> str:
    if not c:
        return f"{name}: noise ceiling: fewer than 3 architectures trained with two seeds"

    def ci(v):
        return f" [{v[0]:.3f}, {v[1]:.3f}]" if all(map(math.isfinite, v)) else ""

    return (f"{name}: noise ceiling (seed {c['seed_a']} vs seed {c['seed_b']}, n={c['n']}): "
            f"Spearman rho = {c['rho']:.3f}{ci(c['rho_ci'])} | Kendall tau = {c['tau']:.3f}{ci(c['tau_ci'])}"
            + (f" | mean of {c['k_seeds']} seeds (Spearman-Brown): rho ~ {c['rho_mean_of_k']:.3f}"
               if c.get("k_seeds", 1) > 1 and math.isfinite(c.get("rho_mean_of_k", math.nan)) else ""))


# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------
def sample_archs(space, n: int, sample_seed: int) -> list:
    """The first ``n`` distinct architectures drawn by ``space.sample`` (a prefix-stable sample)."""
    rng = random.Random(sample_seed)
    out, seen, tries = [], set(), 0
    while len(out) < n:
        a = space.sample(rng)
        tries += 1
        if a.id not in seen:
            seen.add(a.id)
            out.append(a)
        elif tries > 100 * n:
            raise BuildError(f"space {space.name} gave only {len(out)} distinct architectures in {tries} draws")
    return out


def table_folder(table: str, results_dir: str) -> Path:
    p = Path(table)
    return p if (len(p.parts) > 1 or p.is_absolute()) else Path(results_dir) / "groundtruth" / table


def _header(cfg: dict, space, recipe: dict, command: str) -> dict:
    ev = recipe["eval"]
    return {
        "name": None,  # filled with the folder name
        "format": "zcbench-groundtruth/1",
        "space": space.name,
        "space_options": recipe.get("space_options") or {},
        "recipe_name": recipe["name"],
        "recipe": recipe,
        "recipe_hash": _hash(recipe),
        "metric": ev["metric"],
        "higher_is_better": bool(ev["higher_is_better"]),
        "max_seq_len": (recipe.get("scoring") or {}).get("max_seq_len"),
        "sample_seed": cfg["sample_seed"],
        "command": command,
        "machine": machine(),
        "zcbench_commit": source_commit(),
        "created": _now(),
    }


def open_table(folder: Path, header: dict) -> dict:
    """Create ``table.yaml`` or check that the existing one was built with the same recipe and sample."""
    with _Lock(folder):
        path = folder / "table.yaml"
        if path.exists():
            old = yaml.safe_load(path.read_text()) or {}
            for key in ("space", "recipe_hash", "sample_seed", "metric"):
                if old.get(key) != header[key]:
                    raise BuildError(f"table {folder} was built with {key}={old.get(key)!r}, this build has "
                                     f"{header[key]!r}; use another table=... name")
            return old
        header = dict(header, name=folder.name)
        atomic_write_text(path, yaml.safe_dump(header, sort_keys=False))
        return header


def update_summary(folder: Path, bootstrap: int) -> dict:
    """Rewrite the header's ``summary`` (sizes, noise ceiling, timing) from the rows on disk."""
    with _Lock(folder):
        t = read_groundtruth_table(folder)
        secs = [s for a in t.archs for s in a.train_seconds.values() if s is not None]
        c = table_ceiling(t, bootstrap)
        summary = {"n_archs": len(t.archs), "n_rows": t.n_rows,
                   "n_archs_all_seeds": sum(len(a.seeds) >= 2 for a in t.archs),
                   "train_seconds_mean": round(sum(secs) / len(secs), 3) if secs else None,
                   "train_hours_total": round(sum(secs) / 3600, 3),
                   "noise_ceiling": c, "updated": _now()}
        meta = dict(t.meta, summary=summary)
        atomic_write_text(folder / "table.yaml", yaml.safe_dump(meta, sort_keys=False))
    return summary


def build(cfg: dict, command: str = "") -> dict:
    """Train the missing (arch, seed) pairs of this shard into the table; returns the header summary."""
    from zcbench.recipes import TASKS
    from zcbench.registry import create_space
    from zcbench.config import parse_shard

    recipe = cfg["recipe"]
    space_name = cfg.get("space") or recipe["space"]
    if space_name != recipe["space"]:
        raise BuildError(f"recipe {recipe['name']} is for space {recipe['space']}, not {space_name}")
    if recipe.get("task") not in TASKS:
        raise BuildError(f"recipe {recipe['name']}: unknown task {recipe.get('task')!r}; valid: {', '.join(TASKS)}")
    seeds = [int(s) for s in cfg["seeds"]]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise BuildError(f"seeds must list at least two distinct training seeds (the noise ceiling needs them), got {seeds}")
    n_archs = cfg["n_archs"]
    if isinstance(n_archs, bool) or not isinstance(n_archs, int) or n_archs < 1:
        raise BuildError(f"n_archs must be a positive integer, got {n_archs!r}")
    torch.set_num_threads(int(cfg.get("threads") or 1))

    space = create_space(space_name, data_dir=cfg.get("data_dir"), **(recipe.get("space_options") or {}))
    folder = table_folder(str(cfg.get("table") or recipe["name"]), cfg.get("results_dir", "results"))
    open_table(folder, _header(cfg, space, recipe, command))
    archs = sample_archs(space, n_archs, int(cfg["sample_seed"]))
    sh = parse_shard(cfg.get("shard"))
    if sh:
        archs = archs[sh[0]::sh[1]]
    started, added = _now(), 0
    prepare, train = TASKS[recipe["task"]]
    todo = [(a, s) for a in archs for s in seeds if (a.id, s) not in done_keys(folder)]
    _log(f"{folder.name}: {len(archs) * len(seeds) - len(todo)} of {len(archs) * len(seeds)} trainings of this "
         f"shard already in {folder / 'table.jsonl'}; {len(todo)} to go")
    data = prepare(space, recipe) if todo else None
    metric = recipe["eval"]["metric"]
    for k, (arch, seed) in enumerate(todo, 1):
        if (arch.id, seed) in done_keys(folder):  # another process of the same shard got there first
            continue
        t0 = time.perf_counter()
        result = train(space, arch, recipe, data, seed)
        secs = time.perf_counter() - t0
        params = space.model_params(arch)
        row = {"arch_id": arch.id, "genes": arch.genes, "seed": seed, **result, "train_seconds": round(secs, 3),
               "params": int(params), "finished_at": _now(), "host": socket.gethostname()}
        append_row(folder / "table.jsonl", row)
        added += 1
        _log(f"[{k}/{len(todo)}] {arch.id} seed {seed}: {metric} = {result[metric]:.4f} "
             f"(train loss {result['train_loss']:.4f}, {params:,} params, {secs:.1f} s)")
    append_row(folder / "builds.jsonl", {"command": command, "shard": cfg.get("shard"), "n_archs": n_archs,
                                         "seeds": seeds, "started": started, "finished": _now(),
                                         "rows_added": added, "machine": machine()})
    summary = update_summary(folder, int(cfg.get("bootstrap", 1000)))
    print(f"{folder.name}: {summary['n_archs']} architectures, {summary['n_rows']} rows "
          f"({summary['n_archs_all_seeds']} with >= 2 seeds)", flush=True)
    print(ceiling_line(folder.name, summary["noise_ceiling"]), flush=True)
    return summary


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# scoring proxies against a table (called by zcbench.runner.run)
# ---------------------------------------------------------------------------
def table_ref(folder: Path, results_dir=None) -> str:
    """How a table is named in score metadata: its name when it is the folder of that name under
    ``<results_dir>/groundtruth`` or ``./results/groundtruth`` (where ``resolve_table`` finds names),
    else its path — so the run key does not depend on the working directory or on how the results
    folder was spelled."""
    folder = folder.resolve()
    for root in (results_dir, "results"):
        if root and folder == (Path(root).expanduser() / "groundtruth" / folder.name).resolve():
            return folder.name
    return str(folder)


def table_run_config(rc):
    """RunConfig with the ``table`` space option resolved: the table's space options applied
    (they win over the space's defaults, so proxies see the trained networks) and its
    reference normalised. ``table: null`` is dropped (no effect on run keys)."""
    opts = dict(rc.space_options)
    ref = opts.pop("table", None)
    if not ref:
        return dataclasses.replace(rc, space_options=opts)
    try:
        folder = resolve_table(ref, rc.results_dir)
        t = read_groundtruth_table(folder)
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    if t.space != rc.space:
        raise ConfigError(f"table {ref} was built for space {t.space}; run it with space={t.space}")
    if not t.archs:
        raise ConfigError(f"table {ref} has no rows yet ({folder / 'table.jsonl'})")
    max_len = t.meta.get("max_seq_len")
    if max_len and rc.seq_len is not None and rc.seq_len > int(max_len):
        raise ConfigError(f"seq_len={rc.seq_len} exceeds the {max_len} positions of table {t.name}'s networks; "
                          f"pass seq_len={max_len} (or less)")
    opts.update(t.space_options)
    opts["table"] = table_ref(folder, rc.results_dir)
    return dataclasses.replace(rc, space_options=opts)


def find_tables(results_dir="results") -> list[GroundTruthTable]:
    out = []
    for p in sorted((Path(results_dir) / "groundtruth").glob("*/table.yaml")):
        try:
            out.append(read_groundtruth_table(p.parent))
        except DataError:
            continue
    return out


def describe_table(ref: str, results_dir="results") -> dict | None:
    """Recipe, size and noise ceiling of a table for the report/leaderboard (None if unreadable)."""
    try:
        t = read_groundtruth_table(resolve_table(ref, results_dir))
    except DataError:
        return None
    r = t.meta.get("recipe") or {}
    summary = t.meta.get("summary") or {}
    # the summary's ceiling (with CIs) unless rows were added since it was written (a build in progress)
    c = summary.get("noise_ceiling") if summary.get("n_rows") == t.n_rows else table_ceiling(t, n_resamples=0)
    return {"name": t.name, "recipe": t.meta.get("recipe_name"), "task": r.get("task"),
            "dataset": (r.get("data") or {}).get("dataset") or (r.get("data") or {}).get("corpus"),
            "metric": t.metric, "n_archs": len(t.archs), "n_rows": t.n_rows, "ceiling": c,
            "text": f"project-built table {t.name} (recipe {t.meta.get('recipe_name')}, {len(t.archs)} archs, "
                    f"{t.n_rows} trainings; docs/groundtruth.md); "
                    + (f"noise ceiling (seed vs seed, n={c['n']}): ρ = {c['rho']:.3f}, τ = {c['tau']:.3f}"
                       + (f"; for the mean of {c['k_seeds']} seeds the truth is scored against, ρ ≈ "
                          f"{c['rho_mean_of_k']:.3f} (Spearman-Brown)"
                          if c.get("k_seeds", 1) > 1 and math.isfinite(c.get("rho_mean_of_k", math.nan)) else "")
                       if c else "noise ceiling: n/a (fewer than 3 archs with two seeds)")}


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def _cmd_ceiling(argv: list[str]) -> int:
    opts = {"results_dir": "results", "bootstrap": "1000"}
    for arg in argv:
        k, sep, v = arg.partition("=")
        if not sep or k not in ("table", "results_dir", "bootstrap"):
            print(f"zcbench: error: groundtruth ceiling takes table=..., results_dir=..., bootstrap=...; got {arg!r}",
                  file=sys.stderr)
            return 2
        opts[k] = v
    if "table" not in opts:
        print("zcbench: error: groundtruth ceiling needs table=<name or path>", file=sys.stderr)
        return 2
    try:
        t = read_groundtruth_table(resolve_table(opts["table"], opts["results_dir"]))
    except DataError as exc:
        print(f"zcbench: error: {exc}", file=sys.stderr)
        return 2
    print(f"{t.name}: space {t.space}, recipe {t.meta.get('recipe_name')}, metric {t.metric} "
          f"({'higher' if t.higher_is_better else 'lower'} is better), {len(t.archs)} architectures, {t.n_rows} rows")
    print(ceiling_line(t.name, table_ceiling(t, int(opts["bootstrap"]))))
    return 0


def _cmd_build(argv: list[str]) -> None:
    from omegaconf import OmegaConf

    from zcbench.config import hydra_job

    command = "python -m zcbench groundtruth build " + " ".join(argv)

    def entry(cfg) -> None:
        plain = OmegaConf.to_container(cfg, resolve=True)
        plain["space"] = (plain.get("space") or {}).get("name") if isinstance(plain.get("space"), dict) else plain.get("space")
        build(plain, command=command)

    hydra_job("groundtruth", entry, argv)


def main_groundtruth(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    if argv[0] == "build":
        _cmd_build(argv[1:])
    elif argv[0] == "ceiling":
        sys.exit(_cmd_ceiling(argv[1:]))
    else:
        print(f"zcbench: error: unknown groundtruth action {argv[0]!r}; valid: build, ceiling", file=sys.stderr)
        sys.exit(2)
